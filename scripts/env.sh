# Sourced by the other scripts: makes the pinned Deno available on PATH,
# installing it from the npm registry into .tools/ on first use.
DENO_VERSION=2.9.6
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
if ! "$TOOLS/node_modules/.bin/deno" --version 2>/dev/null | grep -q "deno $DENO_VERSION"; then
  mkdir -p "$TOOLS"
  echo "Installing deno@$DENO_VERSION from npm into .tools/ ..." >&2
  (cd "$TOOLS" && npm install --no-save --no-audit --no-fund --silent "deno@$DENO_VERSION" >&2)
fi
export PATH="$TOOLS/node_modules/.bin:$PATH"
# Deno reaches the npm registry through the system CA bundle on some machines.
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi
export NO_COLOR=1
