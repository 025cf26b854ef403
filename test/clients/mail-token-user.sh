#!/bin/sh
# Prints a token for the signed-in user {{USER}} from the cached sign-in (renewed
# with its refresh token). Standard input is not the client's terminal, so it never
# starts a sign-in on the client's screen: without a usable sign-in it exits 3.
exec {{TOOL}} -tenantID '{{TENANT}}' -clientId '{{PUBLIC_CLIENT_ID}}' \
  -DeviceCode -LoginHint {{USER}} -OutputFormat Token < /dev/null
