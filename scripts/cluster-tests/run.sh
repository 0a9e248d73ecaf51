#!/usr/bin/env bash
# The cluster and fault tests: a private PostgreSQL (scripts/postgres.sh), 3 `qrlogin serve`
# instances on it behind nginx (scripts/cluster.sh, rate limits off; check 4 starts a second,
# short-lived cluster with limits on), then cluster_test.py: cross-instance logins, races,
# replays, shared rate limits, readiness while PostgreSQL is down, and faults under load
# (kill -9 of an instance with `qrlogin login` as the PCs, PostgreSQL restarts, the LISTEN
# connections terminated). Prints each check, a table of the figures and the JSON report.
# Usage: scripts/cluster-tests/run.sh [path/to/qrlogin] [--report FILE]   (default .build/debug/qrlogin)
# Everything it starts is stopped on exit, whatever happens. The work folder (instance, nginx and
# PostgreSQL logs) is removed after a pass and kept after a failure (QRLOGIN_KEEP_CLUSTER_DIR=1
# keeps it always).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=.build/debug/qrlogin
report=""
while [ $# -gt 0 ]; do
  case $1 in
  --report) report=${2:?}; shift 2 ;;
  *) bin=$1; shift ;;
  esac
done
[ -x "$bin" ] || { echo "cluster tests: not an executable: $bin" >&2; exit 2; }
bin=$(realpath "$bin")
started=$SECONDS

venv=.venv-test
. scripts/lib/venv.sh
python_venv "$venv" scripts/cluster-tests/requirements.txt

# The test's own files; PostgreSQL gets a mktemp folder of its own (its server user must reach it).
workdir=$(mktemp -d)
pgdir=$(mktemp -d)
[ -n "$report" ] || report="$workdir/report.json"
status=1
cleanup() {
  set +e
  if [ -f "$workdir/cli.pids" ]; then
    while read -r pid; do kill -KILL "$pid" 2>/dev/null; done <"$workdir/cli.pids"
  fi
  scripts/cluster.sh stop "$workdir/cluster-limits" 2>/dev/null
  scripts/cluster.sh stop "$workdir/cluster" 2>/dev/null
  scripts/postgres.sh stop "$pgdir" 2>/dev/null
  if [ "$status" != 0 ]; then
    for log in "$workdir"/cluster/instance-*.log; do
      [ -f "$log" ] || continue
      echo "---- $log: warnings and errors (last 15)"
      grep -E ' (warning|error|critical) ' "$log" | tail -n 15
    done
    echo "---- $workdir/cluster/nginx-error.log (last 10)"
    tail -n 10 "$workdir/cluster/nginx-error.log" 2>/dev/null
  fi
  if [ "$status" = 0 ] && [ -z "${QRLOGIN_KEEP_CLUSTER_DIR:-}" ]; then
    rm -rf "$workdir" "$pgdir"
  else
    echo "cluster tests: logs kept in $workdir (cluster/instance-N.log, cluster/nginx-*.log) and $pgdir/postgres.log"
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# N consecutive ports that nothing listens on, from a random base below the kernel's ephemeral
# range (32768 and up by default): a port in it can be the local end of any outgoing connection,
# such as an instance's own connections to PostgreSQL, and a server could not bind it.
free_ports() {
  local n=$1 base p taken
  for _ in $(seq 1 50); do
    base=$((20000 + RANDOM % 12000)) taken=0
    for p in $(seq "$base" $((base + n - 1))); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then taken=1; break; fi
    done
    [ $taken = 1 ] || { echo "$base"; return 0; }
  done
  echo "cluster tests: no $n free consecutive ports found" >&2
  return 1
}
# nginx and 3 instances, the rate-limit cluster's nginx and 3 instances, PostgreSQL.
port=$(free_ports 9)
limits_port=$((port + 4)) pg_port=$((port + 8))

database=$(scripts/postgres.sh start "$pgdir" "$pg_port")
public=$(scripts/cluster.sh start "$workdir/cluster" --binary "$bin" --database "$database" --instances 3 --port "$port" \
  -- --rate-limits off --bcrypt-cost 4)
echo "== cluster: $public -> instances on 127.0.0.1:$((port + 1))..$((port + 3)), PostgreSQL on 127.0.0.1:$pg_port"

set +e
timeout 900 "$venv/bin/python" scripts/cluster-tests/cluster_test.py --public "$public" \
  --instance "http://127.0.0.1:$((port + 1))" --instance "http://127.0.0.1:$((port + 2))" --instance "http://127.0.0.1:$((port + 3))" \
  --pg-dir "$pgdir" --cluster-dir "$workdir/cluster" --limits-dir "$workdir/cluster-limits" --limits-port "$limits_port" \
  --binary "$bin" --work-dir "$workdir" --report "$report"
status=$?
set -e
if [ -f "$report" ]; then echo "== report ($report)"; cat "$report"; fi
echo "== cluster tests took $((SECONDS - started)) s"
exit $status
