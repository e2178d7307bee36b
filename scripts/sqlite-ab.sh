#!/usr/bin/env bash
# A/B of SQLite intake for two riskhook builds (or two ways of running one), alternating on this
# machine, with wrk replaying pre-signed deliveries: for each rep, a fresh request file (the
# freshness window is 300 s), then A and B each on a fresh database for SECONDS. Prints, per run,
# deliveries/s, p99, riskhook's CPU per delivery (utime+stime from /proc around the wrk run)
# and peak RSS, then the medians. Any non-2xx answer fails the run.
#
# Usage: scripts/sqlite-ab.sh A B [REPS=3] [SECONDS=10]
#   A, B   executables run as `A serve` (a riskhook binary, or a wrapper script that execs one,
#          e.g. with LD_PRELOAD set)
# Environment: SHARED_BENCH (default <repo>/../shared/bench), N (requests per file, 45000),
#   PORT (18191)
#
#   scripts/sqlite-ab.sh /tmp/rh-before target/release/riskhook 3 10
set -uo pipefail
[ $# -ge 2 ] || { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
A=$(readlink -f "$1"); B=$(readlink -f "$2"); REPS=${3:-3}; DUR=${4:-10}
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
SB=$(readlink -f "${SHARED_BENCH:-$ROOT/../shared/bench}")
N=${N:-45000}; PORT=${PORT:-18191}
for tool in wrk python3; do command -v $tool >/dev/null || { echo "sqlite-ab: needs $tool" >&2; exit 1; }; done
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
export RISKHOOK_DIDIT_SECRET=ab-secret RISKHOOK_LISTEN=127.0.0.1:$PORT RUST_LOG=warn
declare -A RPS CPU
for rep in $(seq 1 "$REPS"); do
  python3 "$SB/gen_requests.py" -n "$N" -o "$WORK/req.txt" --secret ab-secret --didit >/dev/null
  for side in A B; do
    bin=${!side}; rm -rf "$WORK/db"; mkdir "$WORK/db"
    RISKHOOK_DATABASE_URL="sqlite://$WORK/db/riskhook.db" "$bin" serve >"$WORK/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    # The server's own pid: a wrapper script may have exec'd it or be its parent.
    spid=$(pgrep -P "$pid" | head -1); spid=${spid:-$pid}
    t0=$(awk '{print $14+$15}' "/proc/$spid/stat")
    out=$(wrk -t1 -c32 -d"${DUR}s" --timeout 10s --latency -s "$SB/replay.lua" "http://127.0.0.1:$PORT" -- file="$WORK/req.txt" path=/webhooks/didit max=200000)
    t1=$(awk '{print $14+$15}' "/proc/$spid/stat")
    hwm=$(awk '/VmHWM/{print $2}' "/proc/$spid/status")
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    if echo "$out" | grep -q "Non-2xx\|Socket errors"; then
      echo "sqlite-ab: $side rep $rep had failures:" >&2; echo "$out" >&2; tail -5 "$WORK/serve.log" >&2; exit 1
    fi
    rps=$(echo "$out" | awk '/Requests\/sec/{printf "%d", $2}')
    reqs=$(echo "$out" | awk '/requests in/{print $1}')
    p99=$(echo "$out" | awk '$1=="99%"{print $2}')
    cpu=$(( (t1 - t0) * 1000000 / $(getconf CLK_TCK) / reqs ))
    echo "rep $rep $side: ${rps}/s p99 $p99 | riskhook ${cpu} us CPU/delivery | peak RSS $((hwm / 1024)) MB"
    RPS[$side]+="$rps "; CPU[$side]+="$cpu "
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ma=$(echo "${RPS[A]}" | median); mb=$(echo "${RPS[B]}" | median)
echo "medians: A $ma/s, $(echo "${CPU[A]}" | median) us CPU/delivery; B $mb/s, $(echo "${CPU[B]}" | median) us CPU/delivery"
echo "ratio B/A $(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.2f", b / a}')"
