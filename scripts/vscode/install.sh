#!/usr/bin/env bash
# Installs the VS Code server bundled in the code-server npm package into .tools/ (git-ignored),
# keyed by version, plus the Debian packages the harness needs. Idempotent: a finished install
# leaves a marker file and later runs return at once.
set -euo pipefail

version="${CODE_SERVER_VERSION:-4.100.3}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
prefix="$root/.tools/code-server-$version"
marker="$prefix/.installed"

need_apt=()
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
command -v rg >/dev/null 2>&1 || need_apt+=(ripgrep)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ "${#need_apt[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ -f "$marker" ]; then
  echo "$prefix"
  exit 0
fi

rm -rf "$prefix"
mkdir -p "$prefix"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# @vscode/ripgrep downloads rg from GitHub in postinstall; it first looks in a cache under TMPDIR,
# so a tarball of Debian's rg under the expected name makes the download unnecessary.
(cd "$tmp" && npm pack --silent "code-server@$version" >/dev/null)
tar -xzf "$tmp"/code-server-*.tgz -C "$tmp" package/lib/vscode/npm-shrinkwrap.json
rg_version="$(node -e '
  const s = require(process.argv[1]);
  const p = s.packages["node_modules/@vscode/ripgrep"];
  process.stdout.write(p.version);
' "$tmp/package/lib/vscode/npm-shrinkwrap.json")"
(cd "$tmp" && npm pack --silent "@vscode/ripgrep@$rg_version" >/dev/null)
tar -xzf "$tmp"/vscode-ripgrep-*.tgz -C "$tmp" package/lib/postinstall.js
rg_tag="$(sed -n "s/^const VERSION = '\(.*\)';/\1/p" "$tmp/package/lib/postinstall.js")"
cache="$tmp/vscode-ripgrep-cache-$rg_version"
mkdir -p "$cache/stage"
cp "$(command -v rg)" "$cache/stage/rg"
tar -czf "$cache/ripgrep-$rg_tag-x86_64-unknown-linux-musl.tar.gz" -C "$cache/stage" rg

export TMPDIR="$tmp"
export npm_config_unsafe_perm=true
export npm_config_yes=true
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "code-server@$version" >&2

test -f "$prefix/node_modules/code-server/lib/vscode/out/server-main.js"
touch "$marker"
echo "$prefix"
