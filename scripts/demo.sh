#!/usr/bin/env bash
# The README's main job: all set-up, then a short demo of the chain of trust on a repository made with
# Debian's ostree CLI: commit a tree, make a key, sign, verify, and watch a tampered signature and a
# tampered object be refused, each with its one-line reason.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
S="$PWD/dist/sealroot"
W=$(mktemp -d /tmp/sealroot-demo.XXXXXX)
trap 'rm -rf "$W"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
refused() { printf '$ %s\n' "$*"; if "$@"; then echo "demo: expected a refusal" >&2; exit 1; else echo "(refused, exit $?)"; fi; }

step "1. Commit a small tree with Debian's ostree CLI"
mkdir -p "$W/tree/usr/bin" "$W/tree/usr/lib"
printf '#!/bin/sh\necho hello\n' >"$W/tree/usr/bin/hello"; chmod 0755 "$W/tree/usr/bin/hello"
printf 'NAME=demo\nVERSION_ID=1\n' >"$W/tree/usr/lib/os-release"
run ostree init --repo="$W/repo" --mode=bare-user
run ostree commit --repo="$W/repo" -b demo/stable --tree=dir="$W/tree" --timestamp=@1735689600 -s demo
C=$(ostree rev-parse --repo="$W/repo" demo/stable)

step "2. Make a key pair (ostree's formats)"
run "$S" keygen --out "$W/key"
run cat "$W/key.pub"

step "3. Sign the commit and verify it"
run "$S" sign --repo "$W/repo" --commit "$C" --secret-key "$W/key.secret"
run "$S" verify-commit --repo "$W/repo" --ref demo/stable --keys "$W/key.pub"

step "4. A tampered signature is refused"
cp -a "$W/repo" "$W/repo-badsig"
M="$W/repo-badsig/objects/${C:0:2}/${C:2}.commitmeta"
printf '\xff' | dd of="$M" bs=1 seek=40 conv=notrunc status=none
refused "$S" verify-commit --repo "$W/repo-badsig" --commit "$C" --keys "$W/key.pub"

step "5. A tampered commit object is refused"
cp -a "$W/repo" "$W/repo-badobj"
O="$W/repo-badobj/objects/${C:0:2}/${C:2}.commit"
chmod u+w "$O"; printf 'X' | dd of="$O" bs=1 seek=$(( $(stat -c %s "$O") - 40 )) conv=notrunc status=none
refused "$S" verify-commit --repo "$W/repo-badobj" --commit "$C" --keys "$W/key.pub"

step "6. A key that did not sign is refused"
run "$S" keygen --out "$W/other"
refused "$S" verify-commit --repo "$W/repo" --commit "$C" --keys "$W/other.pub"

printf '\ndemo: all steps behaved as expected\n'
