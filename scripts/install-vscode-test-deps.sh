#!/usr/bin/env bash
# What the VS Code end-to-end test (tests/vscode/) needs, cached outside the repository
# so reruns install nothing: ripgrep + libkrb5-dev (apt), code-server and playwright-core (npm)
# under $FLOE_CI_CACHE (default ~/.cache/floe-runtime-ci). Recipe: DESIGN §6 / shared recipe
# "code-server". Prints the code-server directory on success. Idempotent.
set -euo pipefail
CACHE="${FLOE_CI_CACHE:-$HOME/.cache/floe-runtime-ci}"
CS_VERSION=4.100.3
CS="$CACHE/code-server-$CS_VERSION"
STAMP="$CS/.installed"
if [ -f "$STAMP" ] && [ -x "$CS/node_modules/.bin/code-server" ]; then
  echo "$CS"
  exit 0
fi
need=()
command -v rg >/dev/null 2>&1 || need+=(ripgrep)
[ -e /usr/include/gssapi/gssapi.h ] || [ -e /usr/include/krb5.h ] || need+=(libkrb5-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${need[*]} (install them with apt-get as root)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
mkdir -p "$CS"
# @vscode/ripgrep's postinstall downloads rg from GitHub unless this tarball exists.
TMP="$CACHE/tmp"
mkdir -p "$TMP/vscode-ripgrep-cache-1.15.11" "$TMP/rgbuild"
cp "$(command -v rg)" "$TMP/rgbuild/rg"
tar -C "$TMP/rgbuild" -czf "$TMP/vscode-ripgrep-cache-1.15.11/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" rg
cd "$CS"
echo '{"name":"floe-ci-code-server","private":true}' > package.json
TMPDIR="$TMP" npm_config_unsafe_perm=true npm_config_yes=true npm_config_dangerously_allow_all_scripts=true \
  npm install --no-audit --no-fund --loglevel=error "code-server@$CS_VERSION" playwright-core@1.65.1 >&2
touch "$STAMP"
echo "$CS"
