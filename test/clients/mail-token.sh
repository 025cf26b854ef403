#!/bin/sh
# Prints an access token for {{MAILBOX}} on stdout, and nothing else: the mail
# client's password command. The secret comes from a file (owner-only), so it is
# in no config file and no process list. Exit 3 and a message on stderr when no
# token can be had; the token is cached and renewed 5 minutes before it expires.
exec {{TOOL}} -tenantID '{{TENANT}}' -clientId '{{CLIENT_ID}}' \
  -clientsecret - -targetMailbox {{MAILBOX}} -OutputFormat Token \
  < '{{SECRET_FILE}}'
