token=$({{TOKEN_COMMAND}}) || exit
printf 'oauth2-bearer = "%s"\n' "$token" |
  curl -sS -K - --cacert {{CA_FILE}} --user '{{MAILBOX}}:' \
    "pop3s://{{HOST}}:{{POP3_PORT}}/{{MESSAGE}}"
