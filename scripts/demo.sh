#!/usr/bin/env bash
# The demo: a real task on a real repository, through a real microVM.
#   delegate → the agent fixes a failing test and asks for review (VM snapshotted, QEMU ended)
#   review   → the snapshot is restored; we look around and edit a file in the paused workspace
#   resume   → the agent gets our answer, acts on it, keeps our edit, finishes
#   apply    → a local branch with its commits, on which the repository's tests pass
# Uses the broker at $AGENTVM_URL if one answers, otherwise starts one for the duration.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
agentvm() { node "$root/dist/cli.js" "$@"; }

port=${AGENTVM_PORT:-7878}
export AGENTVM_URL=${AGENTVM_URL:-http://127.0.0.1:$port}
work=$(mktemp -d "${TMPDIR:-/tmp}/agentvm-demo-XXXXXX")
broker_pid=""
healthy() { node -e "fetch(process.argv[1] + '/v1/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))" "$AGENTVM_URL"; }
cleanup() {
  if [ -n "$broker_pid" ]; then
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

if ! healthy; then
  echo "== starting a broker on $AGENTVM_URL (log: $work/broker.log)"
  node "$root/dist/cli.js" serve --port "$port" --stop-vms-on-exit >"$work/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 1 50); do
    healthy && break
    sleep 0.2
  done
fi

repo="$work/demo-repo"
sh scripts/make-demo-repo.sh "$repo" >/dev/null
echo "== the demo repository ($repo) has a failing test:"
(cd "$repo" && node --test 2>&1 | grep -E '^# (pass|fail)' || true)

echo
echo "== agentvm delegate --repo $repo --profile demo \"Make the failing test pass\""
agentvm delegate --repo "$repo" --profile demo --detach "Make the failing test pass" >"$work/id"
id=$(cat "$work/id")
agentvm logs -f "$id"

echo
echo "== agentvm review $id"
agentvm review "$id"
echo "== agentvm exec $id -- git log --oneline"
agentvm exec "$id" -- git log --oneline
echo "== the reviewer adds a note in the paused workspace"
agentvm exec "$id" -- sh -c 'echo "Reviewed: the fix is right." > REVIEW-NOTES.md'

echo
echo "== agentvm resume $id --message \"yes, add one\""
agentvm resume "$id" --message "yes, add one"

echo
echo "== agentvm diff $id (first lines)"
agentvm diff "$id" | head -20
echo "..."
echo "== agentvm apply $id --repo $repo"
agentvm apply "$id" --repo "$repo"
git -C "$repo" checkout -q "agentvm/$id"
echo "== tests on branch agentvm/$id:"
(cd "$repo" && node --test 2>&1 | grep -E '^# (pass|fail)')
echo
echo "demo finished: agent $id, repository $repo"
echo "(the repository and the broker log stay in $work for you to look at; rm -rf $work removes them)"
