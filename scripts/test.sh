#!/usr/bin/env bash
# The project's test command (README.md). Installs what the tests need on a
# fresh Debian machine, runs `deno task ok` (format/lint/type checks and the whole test
# suite), and ends with a line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# Debian packages the tests use: real Dovecot (IMAP/POP3/submission), real
# Chromium (driven by playwright-core for the browser sign-in), openssl (test PKI).
missing=()
[ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd dovecot-pop3d dovecot-submissiond)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x /usr/bin/time ] || missing+=(time)
# Real mail clients that use the tool as their token command (test/e2e/clients_test.ts).
for pkg in getmail6 isync libsasl2-modules-kdexoauth2 neomutt curl tmux fetchmail; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing from Debian: ${missing[*]} ..." >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    echo "Missing Debian packages (install them as root): ${missing[*]}" >&2
  fi
fi

# Real PowerShell 7 for the drop-in tests, as a .NET global tool.
export PATH="$HOME/.dotnet/tools:$PATH"
if ! command -v pwsh >/dev/null 2>&1 && command -v dotnet >/dev/null 2>&1; then
  echo "Installing PowerShell 7 (dotnet tool) ..." >&2
  dotnet tool install --global PowerShell --version 7.6.9 >&2 || echo "PowerShell install failed" >&2
fi

deno install --frozen >&2 || exit 1

# deno task ok (scripts/ok.ts): fmt, lint and type checks, then every test; all of them run
# even when one fails. Its exit status adds 1 for failed tests and 2 for failed checks.
log="$(mktemp)"
deno task ok "$@" 2>&1 | tee "$log"
ok=${PIPESTATUS[0]}
summary="$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -n 1)"
rm -f "$log"
passed=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$summary")
failed=$(sed -nE 's/.*\| ([0-9]+) failed.*/\1/p' <<<"$summary")
skipped=$(sed -nE 's/.*\| ([0-9]+) ignored.*/\1/p' <<<"$summary")
# A failed fmt/lint/check counts as one more failure.
(( ok & 2 )) && failed=$(( ${failed:-0} + 1 ))
# Tests that fail without a summary (a crash) are still a failure.
if (( ok & 1 )) && [ "${failed:-0}" = 0 ]; then failed=1; fi
status=0
[ "$ok" = 0 ] || status=1
echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
exit "$status"
