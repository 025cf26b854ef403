#!/usr/bin/env bash
# Newcomer's first command: runs the real client-credential flow against the
# in-process fake Entra ID and Exchange-like server. Needs only npm and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
exec deno task demo
