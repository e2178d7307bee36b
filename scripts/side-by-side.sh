#!/usr/bin/env bash
# Side-by-side intake throughput of riskhook's stores, in one run, on this machine (issue 14).
# Every run shares the machine's cores between the servers, PostgreSQL and wrk, as on a small host.
#
#   ref        the shared bench's rust_ref: axum, verify HMAC + parse JSON, stores nothing (floor)
#   sqlite     one `riskhook serve` on a fresh SQLite database (synchronous=FULL)
#   pg1        one `riskhook serve` on a fresh PostgreSQL database
#   pg3        three `riskhook serve` on ONE fresh PostgreSQL database, loaded at the same time by
#              three wrk processes, each replaying different deliveries; throughput = the sum
#   pg1-delay  pg1 and pg3 with the database behind `delay-proxy` (DELAY one way, so every round
#   pg3-delay  trip to PostgreSQL gets 2 x DELAY more): a database a network hop away
#
# Each run: wrk -t1 -c32 --latency for SECONDS (per wrk process), replaying pre-signed realistic
# Didit deliveries (2.3-3.0 KB, each distinct; signed as Didit signs for riskhook). Any non-2xx
# answer, or a wrk socket error, fails the run (exit 1, with the tail of the serve log). For each
# run it also prints the CPU it cost per delivery (utime+stime from /proc, sampled around the wrk
# run, divided by the requests completed): of the riskhook processes, of all `postgres` server
# processes (plus the CPU of the backends that exited meanwhile, which the postmaster's cutime
# holds), of the proxy, and of wrk; and how busy the host's cores were. ("server" is riskhook, or
# rust_ref for ref.) And the bytes written per delivery: for sqlite, what riskhook had written
# to disk (/proc/PID/io write_bytes: the WAL and the checkpoints' copies into the database); for
# the pg runs, PostgreSQL's WAL (pg_current_wal_lsn before and after; full-page images after a
# checkpoint included), each also as a multiple of the mean body. At the end: the medians,
# the ratios sqlite/ref, pg1/sqlite, pg3/pg1, pg3-delay/pg1-delay, and each median p99 (for pg3,
# the worst of the three wrk processes' p99).
#
# Usage: scripts/side-by-side.sh RISKHOOK_BIN [REPS=3] [SECONDS=10]
#   RISKHOOK_BIN   the riskhook binary to measure (cargo build --release -p riskhook --bin riskhook)
# Environment:
#   SHARED_BENCH    the shared bench folder (rust_ref/, gen_requests.py, replay.lua); default
#                   <repo>/../shared/bench
#   BENCH_CACHE     where rust_ref is built (as side_by_side.sh does); default
#                   ~/.cache/riskhook-side-by-side
#   DELAY_PROXY     the delay-proxy binary; default: <repo>/target/release/delay-proxy, built
#                   (cargo build --release -p riskhook-loadgen --bin delay-proxy) unless SKIP_DELAY
#   DELAY           one-way delay of the proxy (default 1ms)
#   N               distinct deliveries per request file (default 120000; a run that uses them all
#                   up cycles and is flagged: raise N)
#   PG_HOST PG_PORT PG_USER PG_ADMIN_DB   the PostgreSQL server (default 127.0.0.1 5432 postgres
#                   test); each PostgreSQL run creates a database rh_sbs_<pid>_<n> and drops it
#   SKIP_DELAY=1    skip pg1-delay and pg3-delay
#   ONLY_PG=1       skip ref and sqlite (their ratios are then not printed)
#   MIN_SQLITE_REF MIN_PG1_SQLITE MIN_PG3_PG1 MIN_PG3_DELAY   exit 1 if the ratio sqlite/ref,
#                   pg1/sqlite, pg3/pg1 or pg3-delay/pg1-delay is under it (default: no threshold)
# Needs wrk, psql, python3, curl, cargo. About (6 x SECONDS + 40) s per rep, plus ~30 s up front.
#
#   scripts/side-by-side.sh target/release/riskhook 3 10
#   SKIP_DELAY=1 ONLY_PG=1 scripts/side-by-side.sh target/release/riskhook 1 5
#   MIN_PG3_DELAY=2.5 DELAY=2ms scripts/side-by-side.sh target/release/riskhook
set -uo pipefail
[ $# -ge 1 ] || { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
RH_BIN=$(readlink -f "$1"); REPS=${2:-3}; DUR=${3:-10}
[ -x "$RH_BIN" ] || { echo "side-by-side: no executable riskhook at $1" >&2; exit 1; }
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
SB=${SHARED_BENCH:-$ROOT/../shared/bench}
for f in rust_ref/Cargo.toml gen_requests.py replay.lua; do
  [ -e "$SB/$f" ] || { echo "side-by-side: the shared bench folder is missing or incomplete: no $SB/$f (set SHARED_BENCH)" >&2; exit 1; }
done
SB=$(readlink -f "$SB")
DELAY=${DELAY:-1ms}; N=${N:-120000}; SKIP_DELAY=${SKIP_DELAY:-0}; ONLY_PG=${ONLY_PG:-0}
PG_HOST=${PG_HOST:-127.0.0.1}; PG_PORT=${PG_PORT:-5432}; PG_USER=${PG_USER:-postgres}; PG_ADMIN_DB=${PG_ADMIN_DB:-test}
for tool in wrk psql python3 curl; do
  command -v "$tool" >/dev/null || { echo "side-by-side: needs $tool" >&2; exit 1; }
done
psql_admin() { psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_ADMIN_DB" -v ON_ERROR_STOP=1 -qAt -c "$1"; }
psql_admin 'SELECT 1' >/dev/null || { echo "side-by-side: cannot reach PostgreSQL at $PG_HOST:$PG_PORT as $PG_USER" >&2; exit 1; }

if [ "$ONLY_PG" != 1 ]; then
  # the shared folder may be read-only: build into a cache of our own, as side_by_side.sh does
  C=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/riskhook-side-by-side}; mkdir -p "$C"
  CARGO_TARGET_DIR="$C/target" cargo build --release -q --manifest-path "$SB/rust_ref/Cargo.toml" || exit 1
fi
if [ "$SKIP_DELAY" != 1 ]; then
  if [ -z "${DELAY_PROXY:-}" ]; then
    (cd "$ROOT" && cargo build --release -q -p riskhook-loadgen --bin delay-proxy) || exit 1
    DELAY_PROXY=$ROOT/target/release/delay-proxy
  fi
  [ -x "$DELAY_PROXY" ] || { echo "side-by-side: no delay-proxy at $DELAY_PROXY" >&2; exit 1; }
fi

W=$(mktemp -d); PIDS=(); WRK_PIDS=(); DBS=(); NDB=0
cleanup() {
  # wrk runs in a subshell of ours (to time it): its children go first
  for p in "${WRK_PIDS[@]}" "${PIDS[@]}"; do pkill -P "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for db in "${DBS[@]}"; do psql_admin "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
fail() { echo "side-by-side: $*" >&2; exit 1; }

# utime+stime (+ the reaped children's, cutime+cstime) of PIDS, in clock ticks; gone ones count 0
ticks() {
  local t=0 p f a
  for p in "$@"; do
    f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    f=${f##*) }  # comm may hold spaces: the fields after it start with the state (field 3)
    read -r -a a <<<"$f"
    t=$((t + a[11] + a[12] + a[13] + a[14]))
  done
  echo "$t"
}
pg_pids() { pgrep -x 'postgres|postmaster'; }  # one pgrep: no process counted twice
# bytes the processes had storage write for them (/proc/PID/io write_bytes): for riskhook on
# SQLite, its WAL and the checkpoints' copies into the database
io_bytes() { local t=0 p b; for p in "$@"; do b=$(awk '/^write_bytes/ {print $2}' "/proc/$p/io" 2>/dev/null) || b=0; t=$((t + ${b:-0})); done; echo "$t"; }
# PostgreSQL's WAL position, bytes: the WAL written between two readings
wal_lsn() { psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_ADMIN_DB" -Atc "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"; }
host_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }  # busy total
HZ=$(getconf CLK_TCK); NCPU=$(nproc)

# Request files: three of distinct deliveries (distinct seeds, so nothing repeats across the
# three pg3 instances), generated once; each run re-signs the ones it uses to now (cheap), since
# riskhook and rust_ref only accept a timestamp within 300 s. Every PostgreSQL and SQLite run is on
# a fresh database, so reusing the bodies across runs repeats nothing.
echo "generating 3 x $N deliveries ..."
seed=$(( $(date +%s) % 1000000 )); GEN=()
for i in 1 2 3; do
  python3 "$SB/gen_requests.py" --didit -n "$N" --seed $((seed + i)) -o "$W/body$i.tsv" --secret bench-secret >/dev/null &
  GEN+=($!)
done
wait "${GEN[@]}"
for i in 1 2 3; do [ -s "$W/body$i.tsv" ] || fail "gen_requests.py failed"; done
resign() { # n... : re-sign body files into req$n.tsv (Didit style), in parallel
  local i jobs=()
  for i in "$@"; do
    python3 "$SB/gen_requests.py" --didit --resign "$W/body$i.tsv" -o "$W/req$i.tsv" --secret bench-secret >/dev/null &
    jobs+=($!)
  done
  wait "${jobs[@]}"  # not a bare wait: the servers are background jobs too
}

# wrk into OUT; its own CPU (user+sys of the subshell's children) goes to OUT.cpu in seconds
wrk_bg() { # url file path out
  ( wrk -t1 -c32 -d"${DUR}s" --timeout 10s --latency -s "$SB/replay.lua" "$1" -- file="$2" path="$3" max=200000 >"$4" 2>&1
    times | awk 'NR==2{gsub(/[ms]/," "); print $1*60+$2+$3*60+$4}' >"$4.cpu" ) &
  WRK_PIDS+=($!)
}
parse_wrk() { # out -> "rps p99ms non2xx requests sockerrs cycled"
  python3 - "$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
try:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    reqs = int(re.search(r"(\d+) requests in ", t).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", t)
    p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)]
except AttributeError:
    print("0 0 0 0 0 parse-error"); sys.exit()
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
cyc = re.search(r"cycled=(\w+)", t)
print(f"{rps:.0f} {p99:.2f} {bad.group(1) if bad else 0} {reqs} {sum(map(int, se.groups())) if se else 0} "
      f"{cyc.group(1) if cyc else '?'}")
PY
}

# Starts `riskhook serve` on DBURL in a directory of its own; sets RH_PID, RH_PORT, RH_LOG.
start_rh() { # dburl
  local d; d=$(mktemp -d -p "$W"); RH_PORT=$(port); RH_LOG=$d/serve.log
  (cd "$d" && RISKHOOK_LISTEN=127.0.0.1:$RH_PORT RISKHOOK_DATABASE_URL="$1" RISKHOOK_DIDIT_SECRET=bench-secret \
     RISKHOOK_LOG_FILTER=warn exec "$RH_BIN" serve) >"$RH_LOG" 2>&1 &
  RH_PID=$!; PIDS+=($RH_PID)
}
ready() { # pid port log: /readyz answers 200 (migrations done, database reachable)
  local code
  for _ in $(seq 300); do
    kill -0 "$1" 2>/dev/null || { tail -5 "$3"; fail "riskhook exited before it was ready"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/readyz")
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  tail -5 "$3"; fail "riskhook on port $2 not ready after 30 s (last /readyz: $code)"
}
new_db() { # creates a fresh database; sets DB to its name
  NDB=$((NDB + 1)); DB=rh_sbs_$$_$NDB
  psql_admin "CREATE DATABASE $DB" >/dev/null || fail "CREATE DATABASE $DB failed"
  DBS+=("$DB")
}
drop_db() { psql_admin "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null; }
# stops PIDS and forgets them, so the trap never signals a pid the system has since reused
stop() {
  local p q keep=()
  for p in "$@"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for q in "${PIDS[@]}"; do for p in "$@"; do [ "$p" = "$q" ] && continue 2; done; keep+=("$q"); done
  PIDS=("${keep[@]}")
}
start_proxy() { # sets PX_PID, PX_PORT
  PX_PORT=$(port)
  "$DELAY_PROXY" --listen "127.0.0.1:$PX_PORT" --upstream "$PG_HOST:$PG_PORT" --delay "$DELAY" >"$W/proxy.log" 2>&1 &
  PX_PID=$!; PIDS+=($PX_PID)
  for _ in $(seq 100); do grep -q "listening on" "$W/proxy.log" && return 0; sleep 0.05; done
  cat "$W/proxy.log"; fail "delay-proxy did not start"
}

declare -A R P99 CPU_RH CPU_PG CPU_PX KB
# One measured run. NAME; SERVER_PIDS (space-separated; "" for none); PROXY_PID ("" for none);
# LOGS; then triples url file path, one wrk process each, all at the same time.
measure() {
  local name=$1 spids=$2 ppid=$3 logs=$4; shift 4
  local pg0 rh0 px0 busy0 tot0 busy1 tot1 i=0 out r p b n e c
  WRK_PIDS=()
  read -r busy0 tot0 < <(host_busy)
  rh0=$(ticks $spids); pg0=$(ticks $(pg_pids)); px0=$(ticks $ppid)
  local io0 io1 wal0=0 wal1=0; io0=$(io_bytes $spids)
  case $name in pg*) wal0=$(wal_lsn) ;; esac
  while [ $# -gt 0 ]; do i=$((i + 1)); wrk_bg "$1" "$2" "$3" "$W/wrk$i.out"; shift 3; done
  wait "${WRK_PIDS[@]}"; WRK_PIDS=()
  local rh1 pg1 px1; rh1=$(ticks $spids); pg1=$(ticks $(pg_pids)); px1=$(ticks $ppid)
  read -r busy1 tot1 < <(host_busy)
  io1=$(io_bytes $spids)
  case $name in pg*) wal1=$(wal_lsn) ;; esac
  local rps=0 p99=0 bad=0 reqs=0 errs=0 cyc=no wcpu=0 k
  for k in $(seq "$i"); do
    read -r r p b n e c < <(parse_wrk "$W/wrk$k.out")
    [ "$c" = parse-error ] && { cat "$W/wrk$k.out"; fail "$name: cannot read wrk's output"; }
    rps=$((rps + r)); reqs=$((reqs + n)); bad=$((bad + b)); errs=$((errs + e))
    p99=$(python3 -c "print(max($p99, $p))"); [ "$c" = no ] || cyc=$c
    wcpu=$(python3 -c "print($wcpu + $(cat "$W/wrk$k.out.cpu" 2>/dev/null || echo 0))")
  done
  R[$name]+="$rps "; P99[$name]+="$p99 "
  local line
  line=$(python3 - "$name" "$rps" "$p99" "$reqs" "$HZ" "$((rh1 - rh0))" "$((pg1 - pg0))" "$((px1 - px0))" \
      "$wcpu" "$((busy1 - busy0))" "$((tot1 - tot0))" "$NCPU" "$spids" "$ppid" \
      "$((io1 - io0))" "$((wal1 - wal0))" 2>"$W/cpu" <<'PY'
import sys
name, rps, p99, reqs, hz, rh, pg, px, wcpu, busy, tot, ncpu, spids, ppid, io, wal = sys.argv[1:]
reqs = max(int(reqs), 1); hz = int(hz)
us = lambda ticks: float(ticks) / hz * 1e6 / reqs
s = f"{name:<9}: {int(rps):>6}/s p99 {float(p99):7.2f} ms | us CPU/delivery: server {us(rh):4.0f}"
s += f" postgres {us(pg):4.0f}" if name.startswith("pg") else ""
s += f" proxy {us(px):4.0f}" if ppid else ""
s += f" wrk {float(wcpu) * 1e6 / reqs:3.0f} | host busy {100 * int(busy) / max(int(tot), 1):3.0f}% of {ncpu} cores"
kb = lambda b: int(b) / 1024 / reqs
written = kb(wal) if name.startswith("pg") else kb(io)
if name.startswith("pg"):
    s += f" | KB/delivery: postgres WAL {written:5.1f}"
elif name == "sqlite":
    s += f" | KB/delivery: written to disk {written:5.1f}"
print(s)
print(f"{us(rh):.0f} {us(pg):.0f} {us(px):.0f} {written:.1f}", file=sys.stderr)
PY
  )
  echo "rep $REP $line"
  read -r k p c w <"$W/cpu"; CPU_RH[$name]+="$k "; CPU_PG[$name]+="$p "; CPU_PX[$name]+="$c "; KB[$name]+="$w "
  [ "$cyc" = no ] || echo "  WARNING: $name used up its $N distinct deliveries and replayed some (cycled=$cyc): raise N"
  if [ "$bad" != 0 ] || [ "$errs" != 0 ]; then
    echo "$name: $bad non-2xx answers, $errs socket errors"
    for k in $(seq "$i"); do grep -E "Non-2xx|Socket errors" "$W/wrk$k.out"; done
    for l in $logs; do echo "--- $l"; tail -5 "$l"; done
    exit 1
  fi
}

# pg1 / pg3 (INSTANCES 1 or 3), directly or through a delay-proxy of their own
pg_run() { # name instances delayed(0|1)
  local name=$1 k=$2 delayed=$3 url db px="" j pids=() ports=() logs=() args=()
  new_db; db=$DB
  if [ "$delayed" = 1 ]; then start_proxy; px=$PX_PID; url="postgres://$PG_USER@127.0.0.1:$PX_PORT/$db"
  else url="postgres://$PG_USER@$PG_HOST:$PG_PORT/$db"; fi
  # the first one runs the migrations alone; the others start on a migrated database
  for j in $(seq "$k"); do
    start_rh "$url"; pids+=("$RH_PID"); ports+=("$RH_PORT"); logs+=("$RH_LOG")
    [ "$j" = 1 ] && ready "$RH_PID" "$RH_PORT" "$RH_LOG"
  done
  for j in "${!pids[@]}"; do ready "${pids[$j]}" "${ports[$j]}" "${logs[$j]}"; done
  resign $(seq "$k")
  for j in "${!ports[@]}"; do args+=("http://127.0.0.1:${ports[$j]}" "$W/req$((j + 1)).tsv" /webhooks/didit); done
  measure "$name" "${pids[*]}" "$px" "${logs[*]}" "${args[@]}"
  stop "${pids[@]}" $px; drop_db "$db"
}

SEQ=(); [ "$ONLY_PG" = 1 ] || SEQ+=(ref sqlite); SEQ+=(pg1 pg3); [ "$SKIP_DELAY" = 1 ] || SEQ+=(pg1-delay pg3-delay)
echo "riskhook $RH_BIN; $REPS rep(s) of ${DUR}s each: ${SEQ[*]}; delay $DELAY one way; $NCPU cores"
if [ "$ONLY_PG" != 1 ]; then
  P_REF=$(port)
  BIND=127.0.0.1:$P_REF WEBHOOK_SECRET=bench-secret "$C/target/release/rust_ref" >"$W/ref.log" 2>&1 & REF_PID=$!; PIDS+=($REF_PID)
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$P_REF/noop" && break; sleep 0.1; done
fi
for REP in $(seq "$REPS"); do
  if [ "$ONLY_PG" != 1 ]; then
    # rust_ref checks X-Timestamp + HMAC of "ts.body" (the bench's generic scheme), not Didit's
    python3 "$SB/gen_requests.py" --resign "$W/body1.tsv" -o "$W/ref.tsv" --secret bench-secret >/dev/null
    measure ref "$REF_PID" "" "$W/ref.log" "http://127.0.0.1:$P_REF" "$W/ref.tsv" /api/webhooks/didit
    D=$(mktemp -d -p "$W")
    start_rh "sqlite://$D/rh.db"; ready "$RH_PID" "$RH_PORT" "$RH_LOG"; resign 1
    measure sqlite "$RH_PID" "" "$RH_LOG" "http://127.0.0.1:$RH_PORT" "$W/req1.tsv" /webhooks/didit
    stop "$RH_PID"; rm -rf "$D"
  fi
  pg_run pg1 1 0
  pg_run pg3 3 0
  if [ "$SKIP_DELAY" != 1 ]; then
    pg_run pg1-delay 1 1
    pg_run pg3-delay 3 1
  fi
done

# the mean body, to read the bytes written per delivery against (the body is the TSV's third field)
BODY_KB=$(awk -F'\t' '{ n++; b += length($3) } END { printf "%.2f", b / n / 1024 }' "$W/body1.tsv")
med() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
echo "== medians over $REPS rep(s)"
ARGS=()
for name in "${SEQ[@]}"; do
  ARGS+=("$name=$(med "${R[$name]}"),$(med "${P99[$name]}"),$(med "${CPU_RH[$name]}"),$(med "${CPU_PG[$name]}"),$(med "${CPU_PX[$name]}"),$(med "${KB[$name]}")")
done
python3 - "${ARGS[@]}" <<PY
import sys
m = {}
for a in sys.argv[1:]:
    k, v = a.split("=")
    m[k] = list(map(float, v.split(",")))
body_kb = float("${BODY_KB}")
for k, (rps, p99, rh, pg, px, kb) in m.items():
    cpu = f"server {rh:.0f}" + (f", postgres {pg:.0f}" if k.startswith("pg") else "")
    cpu += f", proxy {px:.0f}" if k.endswith("-delay") else ""
    written = ""
    if k.startswith("pg"):
        written = f"  postgres WAL {kb:.1f} KB/delivery ({kb / body_kb:.1f}x the body)"
    elif k == "sqlite":
        written = f"  written to disk {kb:.1f} KB/delivery ({kb / body_kb:.1f}x the body)"
    print(f"{k:<9}: {rps:>6.0f}/s  p99 {p99:7.2f} ms  us CPU/delivery: {cpu}{written}")
thresholds = {"sqlite/ref": "${MIN_SQLITE_REF:-}", "pg1/sqlite": "${MIN_PG1_SQLITE:-}",
              "pg3/pg1": "${MIN_PG3_PG1:-}", "pg3-delay/pg1-delay": "${MIN_PG3_DELAY:-}"}
ok = True
for ratio, need in thresholds.items():
    a, b = ratio.split("/")
    if a not in m or b not in m:
        continue
    r = m[a][0] / m[b][0] if m[b][0] else float("nan")
    verdict = ""
    if need:
        passed = r >= float(need)
        ok &= passed
        verdict = f"  (need >= {need}: {'ok' if passed else 'FAIL'})"
    print(f"ratio {ratio:<20} {r:6.2f}{verdict}")
sys.exit(0 if ok else 1)
PY
