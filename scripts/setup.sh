#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs before agentvm runs: npm packages, the bundles,
# host packages (QEMU, the cloud kernel, debootstrap, ...) and the guest image. Idempotent: a
# second run checks and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund
fi

echo "== build"
node scripts/build.mjs

echo "== host requirements"
node dist/cli.js doctor --fix

echo "== guest image"
node dist/cli.js image build
