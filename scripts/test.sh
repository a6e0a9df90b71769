#!/usr/bin/env bash
# `npm test`: type check, unit tests, then the tests that boot real microVMs (the guest image is
# built by the VM tests' setup when missing). Ends with one "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
skipped=0
status=0

run_suite() {
  local name=$1
  shift
  local log
  log=$(mktemp)
  echo "== $name"
  "$@" 2>&1 | tee "$log"
  local code=${PIPESTATUS[0]}
  local p f s
  p=$(grep -Eo '^ *[0-9]+ passing' "$log" | grep -Eo '[0-9]+' | tail -1)
  f=$(grep -Eo '^ *[0-9]+ failing' "$log" | grep -Eo '[0-9]+' | tail -1)
  s=$(grep -Eo '^ *[0-9]+ pending' "$log" | grep -Eo '[0-9]+' | tail -1)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  skipped=$((skipped + ${s:-0}))
  if [ "$code" -ne 0 ]; then
    status=1
    # A runner that crashed before counting still counts as a failure.
    [ -z "${f:-}" ] && failed=$((failed + 1))
  fi
  rm -f "$log"
}

echo "== typecheck"
if ! npx tsc --noEmit -p tsconfig.json; then
  status=1
  failed=$((failed + 1))
fi

node scripts/build.mjs || status=1

run_suite "unit tests" npx mocha 'test/**/*.unit.test.ts'
run_suite "VM tests" npx mocha --timeout 900000 'test/**/*.vm.test.ts'
if [ "${AGENTVM_SKIP_VSCODE:-0}" != "1" ]; then
  # A real VS Code (code-server's) in headless Chromium, against a real broker and real VMs.
  run_suite "VS Code tests" node scripts/vscode/run.mjs
fi

echo
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
