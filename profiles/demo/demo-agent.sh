#!/bin/sh
# agentvm's demo agent: a scripted stand-in for a coding agent (no model involved).
# It runs the repository's tests, fixes the bug behind the failing one, asks a human for review
# with `agentctl review`, acts on the answer, and commits everything it and the reviewer changed.
# Needs only sh (dash), coreutils, git, node >= 18 and agentctl, and runs in the workspace.
set -eu

start=$(git rev-parse HEAD)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_tests() {
  # TAP lines are easy to read back with grep; node 18 and 20 both support this reporter.
  status=0
  node --test --test-reporter=tap >"$log" 2>&1 || status=$?
  # The summary and the failures are what a reader of the timeline needs; the full TAP stays here.
  grep -E '^(not ok [0-9]+ - |# (tests|pass|fail) )' "$log" || cat "$log"
  return $status
}

commit() {
  git add -A
  git commit -q -m "$1"
  echo "committed: $1"
}

agentctl progress "Running the test suite (node --test)"
if run_tests; then
  agentctl done "All tests already pass; nothing to fix."
  exit 0
fi

failing=$(grep -E '^not ok [0-9]+ - ' "$log" | sed -E 's/^not ok [0-9]+ - //' | head -n 1)
fail_count=$(grep -cE '^not ok [0-9]+ - ' "$log" || true)
agentctl progress "$fail_count failing test(s); first: $failing"

# The scripted diagnosis: Array.prototype.sort() without a comparator orders numbers as text.
culprit=$(grep -rlF '.sort()' src | head -n 1 || true)
if [ -z "$culprit" ]; then
  agentctl done "Could not find the cause of: $failing"
  exit 1
fi

agentctl progress "Cause: $culprit sorts numbers as strings; sorting numerically"
sed -i 's/\.sort()/.sort((a, b) => a - b)/' "$culprit"
git --no-pager diff --stat

agentctl progress "Re-running the tests"
if ! run_tests; then
  agentctl done "The fix in $culprit did not make the tests pass"
  exit 1
fi

commit "Fix numeric sorting in $(basename "$culprit" .js)"

answer=$(agentctl review "Fixed '$failing': $culprit sorted numbers as text, so [10, 2, 9] had median 2. All tests pass; shall I also add a regression test? (answer yes to add one)")
echo "reviewer answered: $answer"

# Whatever the reviewer edited in the paused VM goes in its own commit, before the agent's next.
if [ -n "$(git status --porcelain)" ]; then
  commit "Apply reviewer's edits"
fi

case $answer in
  *[Yy][Ee][Ss]*)
    agentctl progress "Adding a regression test for multi-digit values"
    cat >test/median-regression.test.js <<'JS'
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { median } = require('../src/stats.js');

test('median of multi-digit values uses numeric order', () => {
  assert.equal(median([100, 20, 3]), 20);
  assert.equal(median([1, 10, 2, 30]), 6);
});
JS
    if ! run_tests; then
      agentctl done "The regression test fails; left it uncommitted for a look"
      exit 1
    fi
    commit "Add a regression test for numeric median"
    ;;
  *)
    agentctl progress "No regression test requested"
    ;;
esac

agentctl done "Fixed the failing test '$failing'; $(git rev-list --count "$start..HEAD") commit(s), all tests pass."
