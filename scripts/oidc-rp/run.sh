#!/usr/bin/env bash
# A real OpenID Connect relying party that this project did not write signs users in through
# QRLogin: Apache with Debian's mod_auth_openidc, configured only with QRLogin's discovery URL, a
# client id and its secret, protects /protected/; headless Chromium opens it, lands on QRLogin's
# /authorize page, signs in (by QR code approved on a phone over the API, where the page does
# it, and by the password fallback), and must end on the protected page showing the claims
# Apache received.
#
#   scripts/oidc-rp/run.sh
#
# Installs what is missing (apache2, libapache2-mod-auth-openidc, chromium, curl; a venv
# .venv-oidc-rp with Playwright and cryptography). Apache runs from a config in a temp folder
# on 127.0.0.1 at a free port, in the foreground, not as the system's apache2 service.
# Environment: QRLOGIN_BIN (the qrlogin binary, default .build/debug/qrlogin, built only when
# missing), QRLOGIN_ARTIFACTS (screenshots, logs; default .artifacts/oidc-rp),
# OIDC_RP_FLOWS (password, qr, both; default auto: both, qr skipped where the login page does not
# yet make its QR code a login for the app).
# Exits non-zero, with Apache's error log and the server log, on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=scripts/oidc-rp

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
fail() { echo "oidc relying party: FAILED: $*" >&2; exit 1; }

missing=()
[ -x /usr/sbin/apache2 ] || missing+=(apache2)
[ -f /usr/lib/apache2/modules/mod_auth_openidc.so ] || missing+=(libapache2-mod-auth-openidc)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v curl >/dev/null || missing+=(curl)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    # policy-rc.d-less machines would start the system's apache2 on install; it is not used here.
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; then
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
fi
module_version=$(dpkg-query -W -f='${Version}' libapache2-mod-auth-openidc)
module_version=${module_version%%-*}
apache_version=$(/usr/sbin/apache2 -v | sed -n 's|^Server version: Apache/\([^ ]*\).*|\1|p')

venv=.venv-oidc-rp
requirements=$here/requirements.txt
. scripts/lib/venv.sh
python_venv "$venv" "$requirements"

bin=${QRLOGIN_BIN:-.build/debug/qrlogin}
if [ ! -x "$bin" ]; then
    echo "== building qrlogin"
    swift build --product qrlogin
    bin=$(swift build --show-bin-path)/qrlogin
fi
bin=$(realpath "$bin")

artifacts=${QRLOGIN_ARTIFACTS:-.artifacts/oidc-rp}
mkdir -p "$artifacts"
artifacts=$(realpath "$artifacts")
work=$(mktemp -d)
# Apache's children run as www-data when started by root: they read the config, the CGI script
# and the folders it lives in.
chmod 755 "$work"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
op_port=$(free_port)
rp_port=$(free_port)
while [ "$rp_port" = "$op_port" ]; do rp_port=$(free_port); done
op="http://127.0.0.1:$op_port"
rp="http://127.0.0.1:$rp_port"

server=""
apache=""
status=1
cleanup() {
    set +e
    if [ -n "$apache" ] && kill -0 "$apache" 2>/dev/null; then
        kill -TERM "$apache"
        for _ in $(seq 1 50); do kill -0 "$apache" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$apache" 2>/dev/null
    fi
    if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
        kill -TERM "$server"
        wait "$server" 2>/dev/null
    fi
    cp "$work/error.log" "$artifacts/apache-error.log" 2>/dev/null
    cp "$work/access.log" "$artifacts/apache-access.log" 2>/dev/null
    cp "$work/serve.log" "$artifacts/serve.log" 2>/dev/null
    if [ "$status" != 0 ]; then
        echo "---- Apache error log (last 60 lines; all in $artifacts/apache-error.log)" >&2
        tail -n 60 "$work/error.log" >&2 2>/dev/null
        echo "---- qrlogin serve log (last 30 lines)" >&2
        tail -n 30 "$work/serve.log" >&2 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "== qrlogin serve at $op with the client 'apache' registered"
db="$work/qrlogin.sqlite"
"$bin" clients add --database "$db" --id apache --name "Intranet (Apache)" --type confidential \
    --redirect-uri "$rp/protected/redirect_uri" \
    --grant-type authorization_code --grant-type refresh_token --json >"$work/client.json" \
    || fail "qrlogin clients add"
secret=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["secret"])' "$work/client.json") \
    || fail "no secret in: $(cat "$work/client.json")"
"$bin" serve --host 127.0.0.1 --port "$op_port" --database "$db" --rate-limits off --bcrypt-cost 4 \
    >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 150); do curl -fs "$op/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$op/.well-known/openid-configuration" >/dev/null || fail "qrlogin serve did not come up at $op"

echo "== Apache $apache_version with mod_auth_openidc $module_version at $rp"
mkdir -p "$work/run" "$work/htdocs" "$work/cgi"
cp "$here/claims.cgi" "$work/cgi/claims.cgi"
chmod 755 "$work/run" "$work/htdocs" "$work/cgi" "$work/cgi/claims.cgi"
passphrase=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
modules=/usr/lib/apache2/modules
user_lines=""
if [ "$(id -u)" = 0 ]; then
    user_lines=$'User www-data\nGroup www-data'
    chown www-data "$work/run"
fi
cat >"$work/httpd.conf" <<EOF
# A standalone Apache for this check only (not /etc/apache2).
ServerRoot "$work"
ServerName 127.0.0.1
Listen 127.0.0.1:$rp_port
PidFile "$work/run/httpd.pid"
DefaultRuntimeDir "$work/run"
Mutex file:$work/run default
ErrorLog "$work/error.log"
LogLevel warn auth_openidc:debug
$user_lines

LoadModule mpm_event_module $modules/mod_mpm_event.so
LoadModule authn_core_module $modules/mod_authn_core.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule authz_user_module $modules/mod_authz_user.so
LoadModule alias_module $modules/mod_alias.so
<IfModule !log_config_module>
    LoadModule log_config_module $modules/mod_log_config.so
</IfModule>
LoadModule cgid_module $modules/mod_cgid.so
LoadModule auth_openidc_module $modules/mod_auth_openidc.so

ScriptSock "$work/run/cgid.sock"
LogFormat "%h \"%r\" %>s %b \"%{Location}o\"" short
CustomLog "$work/access.log" short
DocumentRoot "$work/htdocs"
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
MinSpareThreads 1
MaxSpareThreads 16

# What the relying party is told: where QRLogin's discovery document is, who it is, its secret.
OIDCProviderMetadataURL $op/.well-known/openid-configuration
OIDCClientID apache
OIDCClientSecret $secret
OIDCRedirectURI $rp/protected/redirect_uri
OIDCCryptoPassphrase $passphrase
OIDCScope "openid profile"
OIDCPKCEMethod S256

ScriptAliasMatch "^/protected/?$" "$work/cgi/claims.cgi"
<Directory "$work/cgi">
    Require all granted
</Directory>
<Location /protected>
    AuthType openid-connect
    Require valid-user
</Location>
EOF
/usr/sbin/apache2 -f "$work/httpd.conf" -t >"$work/configtest.log" 2>&1 || { cat "$work/configtest.log" >&2; fail "Apache rejected its config"; }
/usr/sbin/apache2 -f "$work/httpd.conf" -DFOREGROUND >"$work/apache.out" 2>&1 &
apache=$!
code=""
for _ in $(seq 1 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$rp/protected/" 2>/dev/null || true)
    [ "$code" = 302 ] && break
    kill -0 "$apache" 2>/dev/null || { cat "$work/apache.out" >&2; fail "Apache exited at start"; }
    sleep 0.1
done
[ "$code" = 302 ] || { cat "$work/apache.out" >&2; fail "Apache at $rp/protected/ answered $code, not a redirect to QRLogin"; }

echo "== Chromium: $rp/protected/ -> QRLogin -> back"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
"$venv/bin/python" "$here/signin.py" --op "$op" --rp "$rp" --artifacts "$artifacts" \
    --label "Apache mod_auth_openidc $module_version" --flows "${OIDC_RP_FLOWS:-auto}"
status=0
