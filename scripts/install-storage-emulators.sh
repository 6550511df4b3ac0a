#!/usr/bin/env bash
# Azurite (npm), the Azure Storage emulator the ADLS storage tests (tests/runtime/test_storage.py)
# start on 127.0.0.1, cached outside the repository under $FLOE_CI_CACHE (default
# ~/.cache/floe-runtime-ci) so reruns install nothing. Prints the directory holding
# `azurite-blob` on success. Idempotent. (The GCS emulator is a PyPI package in the dev extra.)
set -euo pipefail
CACHE="${FLOE_CI_CACHE:-$HOME/.cache/floe-runtime-ci}"
AZURITE_VERSION=3.37.0
DIR="$CACHE/npm/azurite-$AZURITE_VERSION"
BIN="$DIR/node_modules/.bin"
STAMP="$DIR/.installed"
if [ -f "$STAMP" ] && [ -x "$BIN/azurite-blob" ]; then
  echo "$BIN"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "npm is not installed (Node.js 18+ is needed for Azurite)" >&2; exit 1; }
mkdir -p "$DIR"
cd "$DIR"
echo '{"name":"floe-ci-azurite","private":true}' > package.json
npm install --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >&2
touch "$STAMP"
echo "$BIN"
