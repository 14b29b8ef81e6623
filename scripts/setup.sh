#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine, run as root from a clone: Debian packages, npm packages, the
# binary. Idempotent: each step is skipped when already done, so both README commands can call it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages and why:
#   ostree            Debian's CLI (2022.7, no composefs/ed25519): makes commits for the demo and the seal tests
#   fsverity          reference `fsverity digest` for tests and bench/fsverity
#   libsodium23       reference ed25519 verifier for the differential test
#   erofs-utils       fsck.erofs / dump.erofs cross-checks of written images
#   attr              getfattr/setfattr for inspecting xattrs by hand and in tests
#   qemu-system-x86   the VM and boot tiers (TCG: real fs-verity with Debian 13's kernel)
#   busybox-static    the minimal initramfs; cpio zstd xz-utils build and unpack initramfs/kernel modules
#   gpg e2fsprogs     the private apt config that fetches the kernel; mke2fs -O verity for VM disks
#   time              GNU time -v: peak memory in the benchmarks
#   dracut-core       Debian's real dracut (with kmod's depmod) for the dracut initramfs kinds; not
#                     `dracut`, which conflicts with initramfs-tools and pulls in mail and RAID tools
#   ostree-boot       Debian's ostree-prepare-root 2022.7: the C baseline row of bench/boot
#   swtpm swtpm-tools a real TPM 2.0 (libtpms) for the measured-boot tests: `swtpm socket` serves the
#                     commands sys/tpm.ts marshals; swtpm-tools has swtpm_setup for provisioned states
APT_PACKAGES=(ostree fsverity libsodium23 erofs-utils attr ca-certificates qemu-system-x86 busybox-static
  cpio zstd xz-utils gpg e2fsprogs debian-archive-keyring time dracut-core kmod ostree-boot swtpm swtpm-tools)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x node_modules/.bin/vitest ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm install, not npm ci: npm 11 leaves other platforms' optional packages (biome, bun) out of the
  # lock file and then `npm ci` refuses it as out of sync. install keeps the locked versions.
  echo "setup: npm install (locked versions)"
  npm install --no-audit --no-fund --loglevel=error
fi

if [ ! -x dist/sealroot ] || [ -n "$(find src -newer dist/sealroot -name '*.ts' -print -quit)" ]; then
  echo "setup: building dist/sealroot"
  npm run -s build
fi
