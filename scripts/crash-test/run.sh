#!/usr/bin/env bash
# The crash-safety test of the embedded SQLite store: `qrlogin serve` on a SQLite file in a
# mktemp folder (rate limits off), complete logins under load, and kill -9 of the server at a
# random moment, several times; after each restart, crash_test.py checks that what the clients
# saw answered survived (confirms, tokens, revocations), that the database passes
# integrity_check, and that a DPoP proof accepted before the crash is refused after it.
# Usage: scripts/crash-test/run.sh [path/to/qrlogin]   (default .build/debug/qrlogin)
# Every server it or crash_test.py starts is stopped on exit, whatever happens. The work folder
# (database, server-N.log per server started) is removed after a pass and kept after a failure
# (QRLOGIN_KEEP_CRASH_DIR=1 keeps it always).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-.build/debug/qrlogin}
[ -x "$bin" ] || { echo "crash test: not an executable: $bin" >&2; exit 2; }
bin=$(realpath "$bin")
started=$SECONDS

venv=.venv-test
. scripts/lib/venv.sh
python_venv "$venv" scripts/cluster-tests/requirements.txt

workdir=$(mktemp -d)
status=1
cleanup() {
  set +e
  # server.pids lists every server started: the first by this script, the restarts by
  # crash_test.py. Only a process whose command line still names this work folder is killed: a
  # pid that has exited may have been reused.
  if [ -f "$workdir/server.pids" ]; then
    while read -r pid; do
      if grep -qaF -- "$workdir/" "/proc/$pid/cmdline" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; fi
    done <"$workdir/server.pids"
  fi
  if [ "$status" != 0 ]; then
    for log in "$workdir"/server-*.log; do
      [ -f "$log" ] || continue
      lines=$(grep -E ' (warning|error|critical) ' "$log" | tail -n 15)
      [ -z "$lines" ] || printf '%s\n%s\n' "---- $log: warnings and errors (last 15)" "$lines"
    done
  fi
  if [ "$status" = 0 ] && [ -z "${QRLOGIN_KEEP_CRASH_DIR:-}" ]; then
    rm -rf "$workdir"
  else
    echo "crash test: database and logs kept in $workdir (qrlogin.sqlite, server-N.log)"
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# A port nothing listens on, below the kernel's ephemeral range (32768 and up by default): a
# port in that range can be the local end of an outgoing connection, and the restarted server
# could not bind it.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 12000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  echo "crash test: no free port found" >&2
  return 1
}
port=$(free_port)
url="http://127.0.0.1:$port"
database="$workdir/qrlogin.sqlite"
# crash_test.py restarts the server with exactly this command line.
server=("$bin" serve --host 127.0.0.1 --port "$port" --database "$database" --public-url "$url"
  --rate-limits off --bcrypt-cost 4)

"${server[@]}" </dev/null >"$workdir/server-0.log" 2>&1 &
echo $! >>"$workdir/server.pids"
# crash_test.py kills it: no job notice from this shell ("Killed ...") for that.
disown
for _ in $(seq 1 300); do
  curl -fs -o /dev/null --max-time 2 "$url/health" && break
  kill -0 "$(tail -n 1 "$workdir/server.pids")" 2>/dev/null || { tail -n 30 "$workdir/server-0.log" >&2; echo "crash test: the server exited" >&2; exit 1; }
  sleep 0.1
done
curl -fs -o /dev/null --max-time 2 "$url/health" || { echo "crash test: no GET /health 200 from $url within 30 s" >&2; exit 1; }
echo "== crash test: qrlogin serve on $url, database $database"

set +e
timeout 300 "$venv/bin/python" scripts/crash-test/crash_test.py --url "$url" --database "$database" \
  --work-dir "$workdir" -- "${server[@]}"
status=$?
set -e
echo "== crash test took $((SECONDS - started)) s"
exit $status
