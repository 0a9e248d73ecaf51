#!/usr/bin/env bash
# The soak run (not part of the test command): mixed traffic (logins, waits, expiries, cancels,
# denials, logouts, remote logouts) against one `qrlogin serve` on SQLite for MINUTES (default
# 10), printing the server's RSS, open file descriptors and the store's size and rows every
# minute, then judging the minutes after the warm-up: RSS growth under 5%, descriptors and rows
# flat. The server runs as in production (release build, rate limits off for the one client
# address), with a short --retention and --cleanup-interval so that what ended is deleted
# within the run, and --request-ttl 20 so that expiries come every minute. Its metrics are on
# (--metrics-port), scraped every minute and checked at the end (soak.py says what).
# Usage: scripts/soak.sh [MINUTES] [path/to/qrlogin]   (default: builds and uses the release binary)
# Environment: QRLOGIN_SOAK_WARMUP (minutes, default 3), QRLOGIN_SOAK_WORKERS (default 12).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
bin=${2:-}
if [ -z "$bin" ]; then
  swift build -c release --product qrlogin
  bin=.build/release/qrlogin
fi
[ -x "$bin" ] || { echo "soak: not an executable: $bin" >&2; exit 2; }

venv=.venv-test
. scripts/lib/venv.sh
python_venv "$venv" scripts/cluster-tests/requirements.txt

workdir=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$workdir"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 12000))
metrics_port=$((port + 1))
url="http://127.0.0.1:$port"
"$bin" serve --host 127.0.0.1 --port "$port" --database "$workdir/soak.sqlite" --public-url "$url" \
  --rate-limits off --bcrypt-cost 4 --request-ttl 20 --retention 60 --cleanup-interval 15 --log-level warning \
  --metrics-port "$metrics_port" \
  >"$workdir/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -fs -o /dev/null "$url/health" && break; sleep 0.1; done
status=0
"$venv/bin/python" scripts/soak/soak.py --url "$url" --pid "$server" --database "$workdir/soak.sqlite" --minutes "$minutes" \
  --metrics-url "http://127.0.0.1:$metrics_port/metrics" --warmup "${QRLOGIN_SOAK_WARMUP:-3}" --workers "${QRLOGIN_SOAK_WORKERS:-12}" || status=$?
kill -TERM "$server"
wait "$server" || { echo "soak: the server did not stop cleanly"; status=1; }
server=""
if grep -qE ' (error|critical) ' "$workdir/serve.log"; then
  echo "soak: the server logged errors:"; grep -E ' (error|critical) ' "$workdir/serve.log" | head -n 20; status=1
fi
exit $status
