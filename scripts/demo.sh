#!/usr/bin/env bash
# The README's main job: all set-up (scripts/setup.sh), then two boots of the sealed test OS in QEMU with
# sealroot as PID 1 of the initramfs: the signed deployment boots into its OS init on a composefs root with
# verity=require, measured into PCR 15 of a TPM 2.0 (swtpm; the demo prints the event and checks the PCR
# against the replay of the log), and the same disk with one byte of its composefs image changed is refused before the OS
# starts, with sealroot's one-line reason on the console. Everything built is cached under .cache/ (kernel,
# test OS and its disks, initramfs), so a second run only boots. Run as root: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
step() { printf '\n\033[1m== [%ss] %s\033[0m\n' "$(($(date +%s) - T0))" "$*"; }
show() { sed 's/^/    | /'; }

step "1/6 set-up: Debian packages, npm packages, dist/sealroot (skipped when done)"
bash scripts/setup.sh
BUN="$PWD/node_modules/.bin/bun"

step "2/6 kernel: Debian 13's cloud kernel with fs-verity (cached in .cache/kernel)"
KDIR=$(qemu/fetch-kernel.sh)
echo "kernel: $KDIR"

step "3/6 test OS: two builds committed with ostree, each sealed and signed with its own transient key, deployed, written to verity disks, provisioned in one VM boot (cached in .cache/test-os)"
OS=$("$BUN" qemu/build-test-os.ts)
M="$OS/manifest.json"
# paths in the manifest are relative to its directory
q() { node -e "const m=require(process.argv[1]); console.log(($1)(m))" "$M"; }
KEY=$OS/$(q 'm => m.builds.find(b => b.version === 2).keyPub')
COMMIT=$(q 'm => m.builds.find(b => b.version === 2).commit')
DIGEST=$(q 'm => m.builds.find(b => b.version === 2).digest')
TARGET=$(q 'm => m.variants.find(v => v.name === "good").deployments[0].ostree')
GOOD=$OS/$(q 'm => m.variants.find(v => v.name === "good").disk')
BAD=$OS/$(q 'm => m.variants.find(v => v.name === "cfs-flipped").disk')
echo "test OS: $OS"
echo "commit $COMMIT (version 2), signed composefs digest $DIGEST"
echo "trusted key (the only file the initramfs trusts): $(cat "$KEY")"
printf '[composefs]\nenabled = signed\n' >"$OS/demo-signed.conf"

step "4/6 initramfs: busybox + dist/sealroot as PID 1, the build's public key, prepare-root.conf 'enabled = signed' (cached in .cache/initrd)"
INITRD=$("$BUN" initrd/sealroot.ts --kernel-dir "$KDIR" --key "$KEY" --config "$OS/demo-signed.conf")
echo "initramfs: $INITRD ($(stat -c %s "$INITRD") bytes)"

LOGS=.cache/demo
mkdir -p "$LOGS"
boot() { # disk log [qemu args...]
  local disk=$1 log=$2
  shift 2
  timeout 300 qemu-system-x86_64 "$@" -machine q35,accel=tcg -cpu max -smp 1 -m 2048 -nographic -monitor none \
    -serial stdio -no-reboot -nodefaults -kernel "$KDIR/vmlinuz" -initrd "$INITRD" \
    -append "console=ttyS0 panic=-1 loglevel=4 root=LABEL=root rw ostree=$TARGET" \
    -drive "file=$disk,format=raw,if=none,id=d0,cache=unsafe,snapshot=on" -device virtio-blk-pci,drive=d0 \
    </dev/null | tr -d '\r' >"$log" || true
}
# A fresh TPM 2.0 (Debian's swtpm) for the signed boot: QEMU drives its control socket, the guest sees tpm-tis.
TPMDIR=$(mktemp -d)
trap 'kill "${SWTPM_PID:-}" 2>/dev/null || true; rm -rf "$TPMDIR"' EXIT
swtpm socket --tpm2 --tpmstate "dir=$TPMDIR" --ctrl "type=unixio,path=$TPMDIR/ctrl.sock" &
SWTPM_PID=$!
for _ in $(seq 100); do [ -S "$TPMDIR/ctrl.sock" ] && break; sleep 0.05; done
TPM_ARGS=(-chardev "socket,id=chrtpm,path=$TPMDIR/ctrl.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0)
phases() { grep -o '"phase":"[a-z-]*","ok":[a-z]*' "$1" | sed 's/"phase":"\([a-z-]*\)","ok":\(.*\)/\1=\2/' | tr '\n' ' '; }

step "5/6 boot the signed disk with a TPM (QEMU TCG, ~10-20 s): sealroot verifies the signature and the image digest, mounts composefs, measures the boot into PCR 15, switches root"
boot "$GOOD" "$LOGS/good.log" "${TPM_ARGS[@]}"
echo "sealroot's steps: $(phases "$LOGS/good.log")"
echo "serial console, the OS's own init after the switch:"
grep -E '^SEALROOT-OS: (pid|version|root|ostree_booted|files|unreadable|pass|fail)' "$LOGS/good.log" | show
grep -q '^SEALROOT-OS: pass version=2$' "$LOGS/good.log" || { echo "demo: the signed boot did not pass (log $LOGS/good.log)" >&2; exit 1; }
# measured boot: the event sealroot extended, PCR 15 as the OS reads it, and the host's replay of the log
sed -n 's/^SEALROOT-OS: measure_log=//p' "$LOGS/good.log" >"$LOGS/tpm2-measure.log"
EVENT=$(grep -o '"string":"[^"]*"' "$LOGS/tpm2-measure.log" | head -1 | cut -d'"' -f4)
PCR=$(sed -n 's/^SEALROOT-OS: pcr15_sha256=//p' "$LOGS/good.log" | tr 'A-F' 'a-f')
REPLAY=$(dist/sealroot pcr-replay --log "$LOGS/tpm2-measure.log" --pcr 15 | sed -n 's/^15 sha256: //p')
echo "measured event: $EVENT"
echo "PCR 15 (sha256) in the TPM:     $PCR"
echo "PCR 15 (sha256) replayed (host): $REPLAY"
[ -n "$PCR" ] && [ "$PCR" = "$REPLAY" ] || { echo "demo: PCR 15 does not match the log's replay (log $LOGS/good.log)" >&2; exit 1; }
[ "$EVENT" = "sealroot:v1:commit=$COMMIT:composefs=$DIGEST:key=$(q 'm => m.builds.find(b => b.version === 2).keyHex'):policy=signed" ] ||
  { echo "demo: the measured event is not the signed boot's ($EVENT)" >&2; exit 1; }

step "6/6 boot the same disk with one byte of the deployment's .ostree.cfs changed (fs-verity enabled on the tampered file)"
boot "$BAD" "$LOGS/tampered.log"
echo "sealroot's steps: $(phases "$LOGS/tampered.log")"
echo "serial console:"
grep -E '^sealroot: |reboot: Power down' "$LOGS/tampered.log" | show
if grep -q '^SEALROOT-OS:' "$LOGS/tampered.log"; then
  echo "demo: the tampered disk reached the OS init (log $LOGS/tampered.log)" >&2
  exit 1
fi
grep -q '^sealroot: prepare-root refused (image): ' "$LOGS/tampered.log" || { echo "demo: no refusal line (log $LOGS/tampered.log)" >&2; exit 1; }
echo "the OS init never ran: no SEALROOT-OS line on the console"

printf '\ndemo: the signed boot passed and was measured, and the tampered one was refused (%ss; serial logs in %s)\n' "$(($(date +%s) - T0))" "$LOGS"
