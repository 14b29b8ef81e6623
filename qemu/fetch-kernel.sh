#!/usr/bin/env bash
# Fetches Debian 13 (trixie)'s cloud kernel for the VM test tier and unpacks what the initramfs needs:
# vmlinuz, its config, modules.dep and the modules sealroot uses (virtio_blk, loop, erofs, overlay, plus
# their dependencies), decompressed from .ko.xz to .ko because busybox insmod cannot read xz.
# apt runs with a private configuration under the cache (own sources.list, state, cache, empty dpkg status);
# the host's apt configuration and package state are never touched. Keys come from the host's
# debian-archive-keyring, which (2023.3+deb12u1 and later) carries the trixie keys.
#
# Usage: qemu/fetch-kernel.sh [--update]
#   Prints the kernel directory (…/.cache/kernel/<kver>) on stdout. Without --update a complete cached kernel
#   is reused without touching the network; --update re-resolves the newest trixie package.
#   Env: SEALROOT_CACHE (default <repo>/.cache), SEALROOT_KERNEL_PKG (pin an exact package name).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${SEALROOT_CACHE:-$ROOT/.cache}"
KDIR_BASE="$CACHE/kernel"
MODULES=(virtio_blk loop erofs overlay)
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
log() { echo "fetch-kernel: $*" >&2; }

update=0
[ "${1:-}" = "--update" ] && update=1

if [ "$update" = 0 ] && [ -z "${SEALROOT_KERNEL_PKG:-}" ] && [ -e "$KDIR_BASE/current/kernel.json" ]; then
  readlink -f "$KDIR_BASE/current"
  exit 0
fi

for tool in apt-get apt-cache dpkg-deb xz; do
  command -v "$tool" >/dev/null || { log "Cannot find \"$tool\": not on PATH, expected apt/dpkg/xz-utils"; exit 1; }
done
gpg_keys="$(gpg --show-keys "$KEYRING" 2>/dev/null || true)"
if ! grep -q '13/trixie' <<<"$gpg_keys"; then
  log "Cannot verify trixie \"$KEYRING\": no 13/trixie key in it, expected debian-archive-keyring >= 2023.3+deb12u1"
  exit 1
fi

# --- private apt configuration -------------------------------------------------------------------------
APT="$CACHE/apt-trixie"
mkdir -p "$APT/etc" "$APT/state/lists/partial" "$APT/cache/archives/partial" "$APT/debs"
cat >"$APT/etc/sources.list" <<EOF
deb [signed-by=$KEYRING] http://deb.debian.org/debian trixie main
deb [signed-by=$KEYRING] http://deb.debian.org/debian trixie-updates main
deb [signed-by=$KEYRING] http://deb.debian.org/debian-security trixie-security main
EOF
: >"$APT/state/status"
APT_OPTS=(
  -o "Dir::State=$APT/state"
  -o "Dir::State::status=$APT/state/status"
  -o "Dir::Cache=$APT/cache"
  -o "Dir::Etc::SourceList=$APT/etc/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::Etc::Preferences=/dev/null"
  -o "Dir::Etc::PreferencesParts=/dev/null"
  -o "APT::Architectures=amd64"
  -o "APT::Architecture=amd64"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)

lists_fresh=0
if [ "$update" = 1 ] || [ -z "$(find "$APT/state/lists" -maxdepth 1 -name '*_InRelease' -mmin -1440 -print -quit)" ]; then
  log "apt-get update (private trixie lists in $APT)"
  apt-get "${APT_OPTS[@]}" -qq update >&2
  lists_fresh=1
fi

pkg="${SEALROOT_KERNEL_PKG:-}"
if [ -z "$pkg" ]; then
  # Newest linux-image-6.12.*-cloud-amd64-unsigned across trixie, trixie-updates and trixie-security.
  pkg="$(apt-cache "${APT_OPTS[@]}" pkgnames linux-image-6.12. \
    | grep -E '^linux-image-6\.12\.[0-9]+\+deb13[^-]*-cloud-amd64-unsigned$' \
    | sort -V | tail -n1 || true)"
  if [ -z "$pkg" ]; then
    log "Cannot find a trixie cloud kernel: no linux-image-6.12.*-cloud-amd64-unsigned in the lists (fresh=$lists_fresh), expected one"
    exit 1
  fi
fi
kver="${pkg#linux-image-}"
kver="${kver%-unsigned}"
KDIR="$KDIR_BASE/$kver"
if [ -e "$KDIR/kernel.json" ]; then
  log "reusing $KDIR"
  ln -sfn "$kver" "$KDIR_BASE/current"
  echo "$KDIR"
  exit 0
fi

deb="$(ls -t "$APT/debs/${pkg}_"*.deb 2>/dev/null | head -n1 || true)"
if [ -z "$deb" ]; then
  log "downloading $pkg"
  (cd "$APT/debs" && apt-get "${APT_OPTS[@]}" -qq download "$pkg" >&2)
  deb="$(ls -t "$APT/debs/${pkg}_"*.deb | head -n1)"
fi
deb_sha="$(sha256sum "$deb" | cut -d' ' -f1)"
deb_ver="$(dpkg-deb -f "$deb" Version)"

# --- unpack -------------------------------------------------------------------------------------------
tmp="$KDIR.tmp$$"
rm -rf "$tmp"
mkdir -p "$tmp/x" "$tmp/modules"
dpkg-deb -x "$deb" "$tmp/x"
cp "$tmp/x/boot/vmlinuz-$kver" "$tmp/vmlinuz"
cp "$tmp/x/boot/config-$kver" "$tmp/config"
moddir="$tmp/x/lib/modules/$kver"
[ -d "$moddir" ] || moddir="$tmp/x/usr/lib/modules/$kver"
cp "$moddir/modules.builtin" "$tmp/"

# Load order, dependencies first, each module once. The .deb ships no modules.dep (depmod writes it at
# install time), so dependencies come from each module's own .modinfo "depends=" string.
declare -A seen=()
order=()
: >"$tmp/modules.dep"
mod_path() { find "$moddir/kernel" -name "$1.ko*" -print -quit; }
visit() {
  local name="$1" path alt deps d
  [ -n "${seen[$name]:-}" ] && return 0
  seen[$name]=1
  path="$(mod_path "$name")"
  alt="${name//_/-}"
  [ -n "$path" ] || path="$(mod_path "$alt")"
  if [ -z "$path" ]; then
    if grep -qE "/($name|$alt)\.ko$" "$tmp/modules.builtin"; then return 0; fi
    log "Cannot find module \"$name\" in $kver: absent, expected a module or a built-in"
    exit 1
  fi
  case "$path" in
    *.ko.xz) xz -dc "$path" >"$tmp/modules/$name.ko" ;;
    *.ko.zst) zstd -qdc "$path" >"$tmp/modules/$name.ko" ;;
    *.ko) cp "$path" "$tmp/modules/$name.ko" ;;
    *) log "Cannot decompress \"$path\": unknown suffix, expected .ko, .ko.xz or .ko.zst"; exit 1 ;;
  esac
  deps="$(tr '\0' '\n' <"$tmp/modules/$name.ko" | grep -a -m1 '^depends=' | cut -d= -f2 || true)"
  echo "$name: ${deps//,/ }" >>"$tmp/modules.dep"
  for d in ${deps//,/ }; do visit "${d//-/_}"; done
  order+=("$name")
}
for m in "${MODULES[@]}"; do visit "$m"; done

builtin_of() { grep -E "^CONFIG_$1=" "$tmp/config" | cut -d= -f2 || true; }
{
  printf '{\n'
  printf '  "package": "%s",\n  "version": "%s",\n  "kernelRelease": "%s",\n' "$pkg" "$deb_ver" "$kver"
  printf '  "debSha256": "%s",\n' "$deb_sha"
  printf '  "vmlinuz": "vmlinuz",\n'
  printf '  "modules": [%s],\n' "$(printf '"%s",' "${order[@]}" | sed 's/,$//')"
  printf '  "config": {"FS_VERITY": "%s", "EXT4_FS": "%s", "RD_ZSTD": "%s", "RD_GZIP": "%s", "DEVTMPFS": "%s", "EROFS_FS": "%s", "OVERLAY_FS": "%s", "BLK_DEV_LOOP": "%s", "VIRTIO_BLK": "%s"}\n' \
    "$(builtin_of FS_VERITY)" "$(builtin_of EXT4_FS)" "$(builtin_of RD_ZSTD)" "$(builtin_of RD_GZIP)" \
    "$(builtin_of DEVTMPFS)" "$(builtin_of EROFS_FS)" "$(builtin_of OVERLAY_FS)" "$(builtin_of BLK_DEV_LOOP)" \
    "$(builtin_of VIRTIO_BLK)"
  printf '}\n'
} >"$tmp/kernel.json.part"
rm -rf "$tmp/x"
mv "$tmp/kernel.json.part" "$tmp/kernel.json"
rm -rf "$KDIR"
mv "$tmp" "$KDIR"
ln -sfn "$kver" "$KDIR_BASE/current"
log "kernel $kver ready in $KDIR (modules: ${order[*]})"
echo "$KDIR"
