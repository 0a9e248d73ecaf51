#!/bin/sh
# The protected page: the claims Apache's mod_auth_openidc received from QRLogin, as it hands
# them to applications (OIDC_CLAIM_* environment variables and REMOTE_USER), HTML-escaped.
escape() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'; }
printf 'Content-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n\r\n'
printf '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Protected · Apache</title></head>\n<body>\n'
printf '<h1>Signed in through QRLogin</h1>\n'
printf '<p>REMOTE_USER: <code data-testid="remote-user">%s</code></p>\n' "$(printf '%s' "${REMOTE_USER:-}" | escape)"
printf '<table data-testid="claims">\n<tr><th>claim</th><th>value</th></tr>\n'
env | LC_ALL=C sort | sed -n 's/^OIDC_CLAIM_\([A-Za-z0-9_]*\)=/\1 /p' | while read -r name value; do
    printf '<tr><td>%s</td><td data-claim="%s">%s</td></tr>\n' "$name" "$name" "$(printf '%s' "$value" | escape)"
done
printf '</table>\n</body></html>\n'
