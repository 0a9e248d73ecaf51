#!/usr/bin/env bash
# The OAuth interop check: `qrlogin serve` on a fresh SQLite file, with clients registered by
# `qrlogin clients add`, driven by an independent client library (requests-oauth2client, pinned
# in requirements.txt) through device_flow.py. Two runs:
#   1. a public client that must use DPoP, checked by a separate confidential resource server;
#   2. a confidential client (client_secret_basic) with server DPoP nonces on.
# Usage: scripts/oauth-interop/run.sh [path/to/qrlogin]   (default: .build/debug/qrlogin)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-.build/debug/qrlogin}
venv=.venv-oauth
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install -q --disable-pip-version-check -r scripts/oauth-interop/requirements.txt

workdir=$(mktemp -d)
server=""
stop() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi; }
trap 'stop; rm -rf "$workdir"' EXIT
db="$workdir/oauth.sqlite"
secret_of() { "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["secret"])'; }

"$bin" clients add --database "$db" --id interop-cli --name "Interop CLI" --require-dpop >/dev/null
rs_secret=$("$bin" clients add --database "$db" --id interop-rs --name "Interop API" --type confidential --grant-type none --json | secret_of)
conf_secret=$("$bin" clients add --database "$db" --id interop-kiosk --name "Interop kiosk" --type confidential --json | secret_of)

run_server() {
  port=$((20000 + RANDOM % 20000))
  "$bin" serve --port "$port" --database "$db" --device-interval 1 "$@" >>"$workdir/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && return; sleep 0.1; done
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
stop
server=""

if grep -q 'qrl_at_\|qrl_ps_\|qrl_st_\|qrl_dc_\|qrl_oa_\|qrl_rt_\|qrl_cs_' "$workdir/serve.log"; then
  echo "a secret reached the server log"; exit 1
fi
