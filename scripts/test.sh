#!/usr/bin/env bash
# The whole test suite: Swift unit, HTTP and live-server tests, then end-to-end checks that
# need tools from outside Swift (a Python venv, Debian packages). Installs what is missing.
# Usage: scripts/test.sh
# Each part also runs on its own: scripts/openapi/run.sh, scripts/crash-test/run.sh, scripts/cluster-tests/run.sh, scripts/oauth-interop/run.sh, scripts/qr-crosscheck/run.sh,
# Benchmarks/run.sh --quick, scripts/browser-tests/run.sh, scripts/oidc-rp/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# Debian packages the checks use; installed only when missing.
need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v curl >/dev/null || need_apt+=(curl)
command -v wrk >/dev/null || need_apt+=(wrk)
for extra in ${QRLOGIN_TEST_APT_PACKAGES:-}; do need_apt+=("$extra"); done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# A venv for the Python-side checks (independent DPoP client, QR decoders).
VENV=.venv-test
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check cryptography

# Everything started below is stopped on exit, whatever happens.
cleanups=()
cleanup() { for ((i=${#cleanups[@]}-1; i>=0; i--)); do eval "${cleanups[$i]}" || true; done; }
trap cleanup EXIT

log "PostgreSQL: a private server for the store conformance and cluster tests"
pgdir=$(mktemp -d)
cleanups+=("scripts/postgres.sh stop '$pgdir'; rm -rf '$pgdir'")
# Ports below the kernel's ephemeral range (32768 and up), which outgoing connections take theirs from.
pg_url=$(scripts/postgres.sh start "$pgdir" "$((12000 + RANDOM % 8000))")

log "swift build"
swift build --build-tests

# Swift Testing prints its verdict last; insist on a run that executed tests and passed.
swift_test() {
  local log=$1; shift
  # A hung test fails the run in 20 minutes rather than at CI's limit.
  if ! timeout 1200 swift test --skip-build "$@" 2>&1 | tee "$log"; then echo "swift test failed (or hung)"; exit 1; fi
  grep -qE 'Test run with [0-9]+ tests? .*passed' "$log" || { echo "swift test ran no Swift Testing tests"; exit 1; }
}

log "swift test"
# The answers the HTTP tests receive are kept, to be checked against the OpenAPI document below.
rm -f .build/http-responses.jsonl
QRLOGIN_RECORD_RESPONSES=$PWD/.build/http-responses.jsonl swift_test .build/swift-test.log

# The store, shared-state and concurrency suites again with PostgreSQL among the stores, and the
# instances-on-one-database tests: a run of their own, so that PostgreSQL's load does not stretch
# the timing tests of the run above.
log "swift test: the store and concurrency suites on PostgreSQL too"
QRLOGIN_TEST_POSTGRES=$pg_url swift_test .build/swift-test-postgres.log --filter 'Conformance|Concurrency|Postgres'
grep -q 'argument kind → postgres' .build/swift-test-postgres.log || { echo "the store tests did not run on PostgreSQL"; exit 1; }
grep -q 'Instances sharing one PostgreSQL database" passed' .build/swift-test-postgres.log || { echo "the PostgreSQL instance tests did not pass"; exit 1; }

log "end-to-end: qrlogin serve on SQLite, driven by an independent Python client"
workdir=$(mktemp -d)
port=$((20000 + RANDOM % 12000))
.build/debug/qrlogin serve --port "$port" --database "$workdir/e2e.sqlite" >"$workdir/serve.log" 2>&1 &
server=$!
cleanups+=("kill $server 2>/dev/null; rm -rf '$workdir'")
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
"$VENV/bin/python" scripts/example_flow.py "http://127.0.0.1:$port" >"$workdir/flow.log" || { cat "$workdir/flow.log" "$workdir/serve.log"; exit 1; }
tail -n 1 "$workdir/flow.log"
kill -TERM $server
wait $server || { echo "server did not shut down cleanly"; cat "$workdir/serve.log"; exit 1; }
if grep -q 'qrl_at_\|qrl_ps_\|qrl_st_' "$workdir/serve.log"; then echo "a secret reached the server log"; exit 1; fi

log "OpenAPI: the document is valid, the HTTP tests' answers match it, and schemathesis fuzzes a live server"
scripts/openapi/run.sh .build/debug/qrlogin --responses .build/http-responses.jsonl

log "crash safety on SQLite: logins under load, kill -9 at random moments, everything clients saw survives"
scripts/crash-test/run.sh .build/debug/qrlogin

log "many instances: three qrlogin serve on PostgreSQL behind nginx (races, replays, rate limits, readiness, faults under load)"
scripts/cluster-tests/run.sh .build/debug/qrlogin

log "OAuth interop: the device grant with DPoP, refresh, introspection and revocation by requests-oauth2client"
scripts/oauth-interop/run.sh .build/debug/qrlogin

log "load harness smoke run (the full run is in BENCHMARKS.md)"
.build/debug/qrlogin-bench --smoke | tail -n 7
if [ "$(nproc)" -ge 2 ]; then
  log "load harness: the server on a CPU and an event loop of its own (--server-cores 1)"
  .build/debug/qrlogin-bench --smoke --server-cores 1 --scenario introspect --scenario refresh | grep -E '^(placement|introspect|refresh)'
fi

log "QR encoder: cross-check against zxing-cpp, zbar and Nayuki's qrcodegen"
scripts/qr-crosscheck/run.sh

log "QR encoder: benchmark smoke run against libqrencode (figures in BENCHMARKS.md)"
Benchmarks/run.sh --quick

log "web pages in headless Chromium"
QRLOGIN_BIN="$(swift build --show-bin-path)/qrlogin" scripts/browser-tests/run.sh

log "OpenID Connect: Apache's mod_auth_openidc signs headless Chromium in through QRLogin (password and QR)"
OIDC_RP_FLOWS=both QRLOGIN_BIN="$(swift build --show-bin-path)/qrlogin" scripts/oidc-rp/run.sh

log "all checks passed"
