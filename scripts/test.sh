#!/usr/bin/env bash
# The README's test command: all set-up, then every test tier (unit, cli, privileged, vm, boot), then one
# plain summary line "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx biome check .
npx tsc --noEmit
report=$(mktemp)
set +e
SEALROOT_SKIP_BUILD=1 npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
rc=$?
set -e
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$report" || echo "tests: 0 passed, 1 failed"
rm -f "$report"
exit $rc
