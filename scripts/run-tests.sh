#!/usr/bin/env bash
# The README's test command: set up this machine from scratch if needed, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test
