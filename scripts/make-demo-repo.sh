#!/bin/sh
# Makes DEST a git repository holding test/fixtures/demo-repo as one commit on branch main.
# Author, committer and dates are fixed, so the commit id is the same on every run.
set -eu

if [ $# -ne 1 ]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi

dest=$1
fixture=$(cd "$(dirname "$0")/../test/fixtures/demo-repo" && pwd)

if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
  echo "$0: $dest exists and is not empty" >&2
  exit 1
fi

mkdir -p "$dest"
cp -R "$fixture/." "$dest/"
cd "$dest"

export GIT_AUTHOR_NAME='agentvm demo' GIT_AUTHOR_EMAIL='demo@agentvm.invalid'
export GIT_COMMITTER_NAME='agentvm demo' GIT_COMMITTER_EMAIL='demo@agentvm.invalid'
export GIT_AUTHOR_DATE='2024-01-01T12:00:00Z' GIT_COMMITTER_DATE='2024-01-01T12:00:00Z'

git init -q -b main
git add -A
git -c commit.gpgsign=false commit -q -m 'Add statistics helpers with tests'
git rev-parse HEAD
