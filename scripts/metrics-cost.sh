#!/usr/bin/env bash
# What metrics cost: interleaved runs of `qrlogin-bench --scenario create --scenario status`
# against a server with metrics off and one with them on (--metrics-port, through
# QRLOGIN_METRICS_PORT, which the server the bench starts inherits), PAIRS pairs, each run its
# own fresh server. Prints every run, then the medians per server CPU-second and on/off ratios.
# Usage: scripts/metrics-cost.sh [PAIRS] [REQUESTS]   (default 8 pairs of 40000 requests;
# needs `swift build -c release --product qrlogin --product qrlogin-bench` first)
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-8}
requests=${2:-40000}
bench=.build/release/qrlogin-bench
[ -x "$bench" ] && [ -x .build/release/qrlogin ] || { echo "build the release binaries first (qrlogin, qrlogin-bench)" >&2; exit 2; }
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for i in $(seq 1 "$pairs"); do
  # Alternate which goes first, so a drift of the machine does not favour one side.
  order="off on"; [ $((i % 2)) = 0 ] && order="on off"
  for mode in $order; do
    if [ "$mode" = on ]; then port=$((20000 + RANDOM % 12000)); export QRLOGIN_METRICS_PORT=$port; else unset QRLOGIN_METRICS_PORT; fi
    summary=$("$bench" --scenario create --scenario status --wrk-seconds 0 --requests "$requests" 2>/dev/null | sed -n '/== summary/,$p')
    create=$(echo "$summary" | sed -nE 's/^create: .* ([0-9]+) per server CPU-second.*/\1/p')
    status=$(echo "$summary" | sed -nE 's/^status: .* ([0-9]+) per server CPU-second.*/\1/p')
    echo "pair $i, metrics $mode: create $create, status $status per server CPU-second"
    echo "$mode $create $status" >>"$results"
  done
done
unset QRLOGIN_METRICS_PORT
python3 - "$results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
for index, name in ((1, "create"), (2, "status")):
    off = [int(r[index]) for r in rows if r[0] == "off"]
    on = [int(r[index]) for r in rows if r[0] == "on"]
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(f"{name}: metrics off median {m_off:.0f}, on {m_on:.0f} per server CPU-second; on/off {m_on / m_off:.3f} "
          f"(off {min(off)}..{max(off)}, on {min(on)}..{max(on)})")
PY
