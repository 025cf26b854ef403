#!/usr/bin/env bash
# The project's test command (README.md). Installs what the tests need on a
# fresh Debian machine, runs format/lint/type checks and the whole test suite,
# and ends with a line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# Real Dovecot (IMAP/POP3/submission) for the end-to-end tests.
if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing Dovecot from Debian ..." >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      dovecot-imapd dovecot-pop3d dovecot-submissiond >&2
  else
    echo "Dovecot is missing: run as root once or: sudo apt-get install dovecot-imapd dovecot-pop3d dovecot-submissiond" >&2
  fi
fi
command -v openssl >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && apt-get install -y -qq openssl >&2; }

deno install --frozen >&2 || exit 1
checks=0
deno fmt --check || checks=1
deno lint || checks=1
deno task check || checks=1

log="$(mktemp)"
deno test --allow-all --frozen --parallel "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary="$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -n 1)"
rm -f "$log"
passed=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$summary")
failed=$(sed -nE 's/.*\| ([0-9]+) failed.*/\1/p' <<<"$summary")
skipped=$(sed -nE 's/.*\| ([0-9]+) ignored.*/\1/p' <<<"$summary")
[ "$checks" = 0 ] || { echo "fmt/lint/check failed" >&2; failed=$(( ${failed:-0} + 1 )); status=1; }
echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
exit "$status"
