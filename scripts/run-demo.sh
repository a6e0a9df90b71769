#!/usr/bin/env bash
# The README's demo command: set up this machine, then delegate a real task on the demo repository
# and walk it through review, resume and apply. See README.md "Walk-through" for each step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec bash scripts/demo.sh "$@"
