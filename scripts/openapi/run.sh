#!/usr/bin/env bash
# The OpenAPI contract's checks: the document (Sources/QRLoginServer/Resources/openapi.json)
# is valid OpenAPI 3.1 (openapi-spec-validator); the answers the Swift HTTP tests recorded match
# it (validate_responses.py, when a recording is given); and schemathesis fuzzes a running
# `qrlogin serve` (SQLite in a temporary folder, rate limits off) from the document, failing on
# any 5xx and on any answer whose status, content type, headers or body the document does not
# describe. Everything it starts is stopped on exit.
#
#   scripts/openapi/run.sh [path/to/qrlogin] [--responses FILE.jsonl]
#
# Environment: QRLOGIN_FUZZ_EXAMPLES (examples per operation, default 40),
# QRLOGIN_FUZZ_SEED (default 1, so CI runs the same cases; any number for new ones).
# A long run: QRLOGIN_FUZZ_EXAMPLES=2000 QRLOGIN_FUZZ_SEED=$RANDOM scripts/openapi/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=.build/debug/qrlogin
responses=""
while [ $# -gt 0 ]; do
  case $1 in
  --responses) responses=${2:?}; shift 2 ;;
  *) bin=$1; shift ;;
  esac
done
[ -x "$bin" ] || { echo "openapi: not an executable: $bin" >&2; exit 2; }
started=$SECONDS
root=$(pwd)
document=Sources/QRLoginServer/Resources/openapi.json

venv=.venv-openapi
requirements=scripts/openapi/requirements.txt
. scripts/lib/venv.sh
python_venv "$venv" "$requirements"

echo "== openapi-spec-validator"
"$venv/bin/openapi-spec-validator" "$document"

if [ -n "$responses" ]; then
  echo "== the answers the HTTP tests received, against the document"
  "$venv/bin/python" scripts/openapi/validate_responses.py "$document" "$responses"
fi

workdir=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ -z "${QRLOGIN_KEEP_FUZZ_DIR:-}" ]; then rm -rf "$workdir"; else echo "openapi: work folder kept: $workdir"; fi
}
trap cleanup EXIT
port=$((20000 + RANDOM % 12000))
url="http://127.0.0.1:$port"
"$bin" serve --host 127.0.0.1 --port "$port" --database "$workdir/fuzz.sqlite" --public-url "$url" \
  --rate-limits off --bcrypt-cost 4 --log-level warning >"$workdir/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -fs -o /dev/null "$url/health" && break; sleep 0.1; done
curl -fs -o /dev/null "$url/health" || { cat "$workdir/serve.log"; echo "openapi: the server did not start"; exit 1; }

examples=${QRLOGIN_FUZZ_EXAMPLES:-40}
seed=${QRLOGIN_FUZZ_SEED:-1}
echo "== schemathesis: $examples examples per operation, seed $seed, against $url"
# The checks: no 5xx, and every answer's status, content type, headers and body as documented;
# a method a path lacks gets 405 with an Allow header that names the document's methods.
# (Not "positive data acceptance": the document does not spell out every rule the server
# checks, e.g. that names have no control characters, so a 400 for such a value is right.)
status=0
# fuzz_hooks.py signs in and puts real DPoP proofs and a phone token on the operations that need
# them, so the fuzzer gets past authentication.
(cd "$workdir" && PYTHONPATH="$root/scripts/openapi" SCHEMATHESIS_HOOKS=fuzz_hooks QRLOGIN_FUZZ_PUBLIC_URL="$url" \
  "$root/$venv/bin/schemathesis" run "$url/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method,allow_header_conformance \
  --max-examples "$examples" --seed "$seed" --workers 1 --no-color) >"$workdir/schemathesis.txt" 2>&1 || status=$?
sed -n '/SUMMARY/,$p' "$workdir/schemathesis.txt"
if [ "$status" != 0 ]; then
  sed -n '/FAILURES/,/SUMMARY/p' "$workdir/schemathesis.txt" | head -n 150
  echo "openapi: schemathesis found answers that break the document"; exit 1
fi
kill -TERM "$server"
wait "$server" || { cat "$workdir/serve.log"; echo "openapi: the server did not stop cleanly"; exit 1; }
server=""
if grep -qE ' (error|critical) ' "$workdir/serve.log"; then
  grep -E ' (error|critical) ' "$workdir/serve.log" | head -n 20; echo "openapi: the server logged errors while fuzzed"; exit 1
fi
echo "== openapi checks passed in $((SECONDS - started)) s"
