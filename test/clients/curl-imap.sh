token=$({{TOKEN_COMMAND}}) || exit
printf 'oauth2-bearer = "%s"\n' "$token" |
  curl -sS -K - --cacert {{CA_FILE}} --user '{{MAILBOX}}:' \
    "imaps://{{HOST}}:{{IMAP_PORT}}/INBOX;UID={{MESSAGE}}"
