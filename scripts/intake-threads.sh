#!/usr/bin/env bash
# Where intake's CPU goes, thread by thread: starts `riskhook serve` (SQLite, a fresh database in a
# temporary directory), replays pre-signed unique deliveries at it with wrk (-t1 -c32, as
# ../shared/bench/side_by_side.sh does, from that folder's gen_requests.py and replay.lua), and
# prints deliveries/s, p99, and for each thread of the server its CPU time (user + system, from
# /proc/PID/task/*/stat) and bytes written per delivery: the request side (tokio-rt-worker), the
# SQLite writer, the checkpointer.
#
#   scripts/intake-threads.sh [BINARY]              default target/release/riskhook
#   DURATION=20 PERF=1 scripts/intake-threads.sh    also perf-record the server (perf.data, DWARF
#                                                   call graphs), for `perf report --comm NAME`
#
# Needs wrk, python3 and curl; BENCH (default ../shared/bench) names the folder of
# gen_requests.py and replay.lua. CPU is counted in clock ticks (10 ms): run 10 s or more.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/riskhook}")
BENCH=${BENCH:-../shared/bench}
DURATION=${DURATION:-10}
PERF=${PERF:-0}
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release -p riskhook" >&2; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }

DIR=$(mktemp -d)
SERVE_PID=
cleanup() { [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT

# Signed "now": valid for the server's 300 s window, so generated right before the run.
python3 "$BENCH/gen_requests.py" --didit -n 120000 -o "$DIR/didit.tsv" --secret bench-secret >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$DIR" && RISKHOOK_LISTEN=127.0.0.1:$PORT RISKHOOK_DATABASE_URL="sqlite://$DIR/rh.db" \
   RISKHOOK_DIDIT_SECRET=bench-secret RISKHOOK_LOG_FILTER=warn exec "$BIN" serve) >"$DIR/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done

# name, CPU ticks, bytes written: summed over the threads of each name
threads() {
  for t in /proc/$SERVE_PID/task/*; do
    echo "$(tr ' ' _ <"$t/comm") $(awk '{print $14 + $15}' "$t/stat") $(awk '/^write_bytes/{print $2}' "$t/io")"
  done | awk '{c[$1] += $2; w[$1] += $3} END {for (k in c) print k, c[k], w[k]}' | sort
}
threads >"$DIR/before"
PERF_PID=
if [ "$PERF" = 1 ]; then
  perf record -e cpu-clock -F 1000 --call-graph dwarf,32768 -p "$SERVE_PID" -o perf.data \
    -- sleep "$DURATION" >/dev/null 2>&1 &
  PERF_PID=$!
fi
wrk -t1 -c32 -d"${DURATION}s" --timeout 10s --latency -s "$BENCH/replay.lua" "http://127.0.0.1:$PORT" \
  -- file="$DIR/didit.tsv" path=/webhooks/didit max=200000 >"$DIR/wrk.out"
[ -z "$PERF_PID" ] || wait "$PERF_PID" || true
threads >"$DIR/after"

N=$(awk '/requests in/ {print $1}' "$DIR/wrk.out")
TICK=$(getconf CLK_TCK)
awk '/Requests\/sec/ {r = $2} / 99%/ {p = $2} /Non-2xx/ {b = $5}
     END {printf "%s deliveries/s, p99 %s, %d non-2xx\n", r, p, b}' "$DIR/wrk.out"
join "$DIR/before" "$DIR/after" | awk -v n="$N" -v tick="$TICK" '
  ($4 - $2) > 0 { printf "  %-18s %6.1f µs CPU  %6.1f KiB written  per delivery\n", $1, ($4 - $2) * 1e6 / tick / n, ($5 - $3) / 1024 / n }'
