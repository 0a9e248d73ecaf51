#!/usr/bin/env bash
# The OAuth interop check: `qrlogin serve` on a fresh SQLite file, with clients registered by
# `qrlogin clients add`, driven by an independent client library (requests-oauth2client, pinned
# in requirements.txt) through device_flow.py and code_flow.py. Three runs:
#   1. device_flow.py: a public client that must use DPoP, checked by a separate confidential
#      resource server;
#   2. device_flow.py: a confidential client (client_secret_basic) with server DPoP nonces on;
#   3. code_flow.py, DPoP nonces still on: OpenID Connect sign-in of a public web app (authorization
#      code, PKCE, dpop_jkt) through headless Chromium, the phone approving the page's QR code; the
#      ID token checked against the JWKS; then single sign-on into a second app (RS256 ID tokens).
#      The redirect URI is http://127.0.0.1:PORT/cb, served by code_flow.py itself.
# Usage: scripts/oauth-interop/run.sh [path/to/qrlogin]   (default: .build/debug/qrlogin)
# Installs Chromium (apt) when /usr/bin/chromium is missing; Playwright comes from requirements.txt.
# QRLOGIN_ARTIFACTS: where a screenshot goes when a browser step fails (default .artifacts/oauth-interop).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-.build/debug/qrlogin}
fail() { echo "oauth interop: FAILED: $*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; then
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || fail "could not install chromium"
  fi
fi
venv=.venv-oauth
. scripts/lib/venv.sh
python_venv "$venv" scripts/oauth-interop/requirements.txt
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1  # Playwright drives the system's /usr/bin/chromium

workdir=$(mktemp -d)
server=""
stop() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi; }
trap 'stop; rm -rf "$workdir"' EXIT
db="$workdir/oauth.sqlite"
secret_of() { "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["secret"])'; }

"$bin" clients add --database "$db" --id interop-cli --name "Interop CLI" --require-dpop >/dev/null
rs_secret=$("$bin" clients add --database "$db" --id interop-rs --name "Interop API" --type confidential --grant-type none --json | secret_of)
conf_secret=$("$bin" clients add --database "$db" --id interop-kiosk --name "Interop kiosk" --type confidential --json | secret_of)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cb_port=$(free_port)
redirect_uri="http://127.0.0.1:$cb_port/cb"
"$bin" clients add --database "$db" --id interop-web --name "Interop web app" --grant-type authorization_code \
  --grant-type refresh_token --redirect-uri "$redirect_uri" >/dev/null
"$bin" clients add --database "$db" --id interop-web-rs --name "Interop web app (RS256)" --grant-type authorization_code \
  --redirect-uri "$redirect_uri" --id-token-alg RS256 >/dev/null

# Ports below the kernel's ephemeral range (32768 and up), where the outgoing connections of
# the steps before cannot hold them; a port taken all the same is chosen again.
run_server() {
  for _attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 12000))
    while [ "$port" = "$cb_port" ]; do port=$((20000 + RANDOM % 12000)); done
    "$bin" serve --port "$port" --database "$db" --device-interval 1 "$@" >>"$workdir/serve.log" 2>&1 &
    server=$!
    for _ in $(seq 1 100); do
      curl -fs "http://127.0.0.1:$port/health" >/dev/null && return
      kill -0 "$server" 2>/dev/null || break
      sleep 0.1
    done
    last=$(tail -n 3 "$workdir/serve.log")
    if kill -0 "$server" 2>/dev/null || [[ "$last" != *"Address already in use"* ]]; then break; fi
    wait "$server" 2>/dev/null || true
    server=""
  done
  echo "qrlogin serve did not start"; cat "$workdir/serve.log"; exit 1
}

run_server
"$venv/bin/python" scripts/oauth-interop/device_flow.py "http://127.0.0.1:$port" interop-cli \
  --introspector-id interop-rs --introspector-secret "$rs_secret" >"$workdir/run1.log" 2>&1 \
  || { cat "$workdir/run1.log" "$workdir/serve.log"; exit 1; }
tail -n 1 "$workdir/run1.log"
stop

run_server --dpop-nonces on
"$venv/bin/python" scripts/oauth-interop/device_flow.py "http://127.0.0.1:$port" interop-kiosk --secret "$conf_secret" \
  >"$workdir/run2.log" 2>&1 || { cat "$workdir/run2.log" "$workdir/serve.log"; exit 1; }
echo "with DPoP nonces and client_secret_basic: $(tail -n 1 "$workdir/run2.log")"

timeout 90 "$venv/bin/python" scripts/oauth-interop/code_flow.py "http://127.0.0.1:$port" interop-web "$redirect_uri" \
  --client-name "Interop web app" --second-client-id interop-web-rs \
  --artifacts "${QRLOGIN_ARTIFACTS:-.artifacts/oauth-interop}" >"$workdir/run3.log" 2>&1 \
  || { cat "$workdir/run3.log"; tail -n 30 "$workdir/serve.log"; fail "code_flow.py (log above)"; }
grep '^note: ' "$workdir/run3.log" || true
echo "with DPoP nonces: $(tail -n 1 "$workdir/run3.log")"
stop
server=""

if grep -q 'qrl_at_\|qrl_ps_\|qrl_st_\|qrl_dc_\|qrl_oa_\|qrl_rt_\|qrl_cs_\|qrl_ac_\|qrl_ss_' "$workdir/serve.log"; then
  echo "a secret reached the server log"; exit 1
fi
