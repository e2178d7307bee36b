#!/usr/bin/env bash
# Side-by-side intake benchmark on one machine, in one run:
#   1. the embedder example (verify + parse, nothing stored) at fixed concurrency;
#   2. `riskhook serve` (SQLite, synchronous=FULL, scoring) at the same concurrency;
#   3. `riskhook serve` at half of its measured maximum, open loop, for the latency target;
#   4. resident memory of `riskhook serve` (peak, VmHWM) over 2 and 3;
#   5. time from start to a ready /readyz on an existing database (median of 5);
#   6. with BENCH_POSTGRES_URL (a server URL; needs psql): `riskhook serve` on a fresh
#      PostgreSQL database at the same concurrency.
# Results go to stdout and target/bench-intake/*.json. Needs python3 and curl.
#
#   scripts/bench-intake.sh            # 20 s per phase, 64 connections
#   DURATION=60s CONC=64 scripts/bench-intake.sh
#   RISKHOOK_BIN=/tmp/rh-b scripts/bench-intake.sh   # measure that riskhook binary (an A/B
#                                      # build) instead of building this tree's
set -euo pipefail
# Resolved before the cd below, so that a path relative to the caller's directory works.
RISKHOOK_BIN=${RISKHOOK_BIN:+$(readlink -m "$RISKHOOK_BIN")}
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20s}
CONC=${CONC:-64}
SECRET=bench-secret-not-for-production
OUT=target/bench-intake
mkdir -p "$OUT"
rm -f "$OUT"/bench.db*

if [ -n "$RISKHOOK_BIN" ]; then
  [ -x "$RISKHOOK_BIN" ] || { echo "bench-intake: RISKHOOK_BIN is not an executable: $RISKHOOK_BIN" >&2; exit 1; }
  BIN=$RISKHOOK_BIN
else
  cargo build --release -q -p riskhook --bin riskhook
  BIN=target/release/riskhook
fi
echo "riskhook: $BIN"
cargo build --release -q -p riskhook-loadgen
cargo build --release -q -p riskhook-didit --features axum --example embed
LOADGEN=target/release/riskhook-loadgen
EMBED=target/release/examples/embed
export RISKHOOK_DIDIT_SECRET=$SECRET

wait_ready() { # url
  for _ in $(seq 1 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "server did not come up: $1" >&2; return 1
}
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

echo "== 1. embed example (verify + parse only), $CONC connections, $DURATION"
DIDIT_WEBHOOK_SECRET=$SECRET EMBED_LISTEN=127.0.0.1:3901 "$EMBED" 2>/dev/null &
EMBED_PID=$!
wait_ready http://127.0.0.1:3901/
"$LOADGEN" http://127.0.0.1:3901/webhooks/didit --concurrency "$CONC" --duration "$DURATION" --quiet --json > "$OUT/embed.json"
kill "$EMBED_PID"; wait "$EMBED_PID" 2>/dev/null || true

echo "== 2. riskhook serve (SQLite, scoring), $CONC connections, $DURATION"
RISKHOOK_LISTEN=127.0.0.1:3902 RISKHOOK_DATABASE_URL="sqlite://$OUT/bench.db" RISKHOOK_LOG_FILTER=warn "$BIN" serve &
SERVE_PID=$!
wait_ready http://127.0.0.1:3902/readyz
"$LOADGEN" http://127.0.0.1:3902/webhooks/didit --concurrency "$CONC" --duration "$DURATION" --quiet --json > "$OUT/serve.json"
MAX=$(field "$OUT/serve.json" 'd["throughput_per_second"]')
HALF=$(python3 -c "print(round($MAX/2))")

echo "== 3. riskhook serve at half its maximum: $HALF/s open loop, $DURATION"
"$LOADGEN" http://127.0.0.1:3902/webhooks/didit --rate "$HALF" --duration "$DURATION" --quiet --json > "$OUT/serve-half.json"
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$SERVE_PID/status")
curl -s http://127.0.0.1:3902/metrics > "$OUT/metrics.txt"
kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true

echo "== 4. start to ready on the existing database ($(du -h "$OUT/bench.db" | cut -f1)), 5 runs"
READY=()
for _ in 1 2 3 4 5; do
  START=$(date +%s%N)
  RISKHOOK_LISTEN=127.0.0.1:3903 RISKHOOK_DATABASE_URL="sqlite://$OUT/bench.db" RISKHOOK_LOG_FILTER=warn "$BIN" serve &
  PID=$!
  until curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:3903/readyz | grep -q 200; do sleep 0.005; done
  END=$(date +%s%N)
  READY+=($(( (END - START) / 1000000 )))
  kill "$PID"; wait "$PID" 2>/dev/null || true
done
READY_MEDIAN=$(printf '%s\n' "${READY[@]}" | sort -n | sed -n 3p)

if [ -n "${BENCH_POSTGRES_URL:-}" ]; then
  echo "== 6. riskhook serve (PostgreSQL, scoring), $CONC connections, $DURATION"
  psql "$BENCH_POSTGRES_URL" -q -c 'DROP DATABASE IF EXISTS riskhook_bench WITH (FORCE)' -c 'CREATE DATABASE riskhook_bench'
  PG_DB="${BENCH_POSTGRES_URL%/*}/riskhook_bench"
  RISKHOOK_LISTEN=127.0.0.1:3904 RISKHOOK_DATABASE_URL="$PG_DB" RISKHOOK_LOG_FILTER=warn "$BIN" serve &
  PG_PID=$!
  wait_ready http://127.0.0.1:3904/readyz
  "$LOADGEN" http://127.0.0.1:3904/webhooks/didit --concurrency "$CONC" --duration "$DURATION" --quiet --json > "$OUT/serve-postgres.json"
  kill "$PG_PID"; wait "$PG_PID" 2>/dev/null || true
  psql "$BENCH_POSTGRES_URL" -q -c 'DROP DATABASE IF EXISTS riskhook_bench WITH (FORCE)'
fi

python3 - "$OUT" "$RSS_KB" "$READY_MEDIAN" "${READY[*]}" <<'PY'
import json, sys
out, rss_kb, ready, readies = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
e = json.load(open(f"{out}/embed.json")); s = json.load(open(f"{out}/serve.json")); h = json.load(open(f"{out}/serve-half.json"))
def row(name, r):
    l = r["latency_ms"]
    return f"| {name} | {r['throughput_per_second']:.0f} | {l['p50']:.2f} | {l['p90']:.2f} | {l['p99']:.2f} | {l['p99_9']:.2f} | {dict(r['outcomes'])} |"
print("| run | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | outcomes |")
print("|---|---|---|---|---|---|---|")
print(row("embed example (verify+parse)", e))
print(row("riskhook serve (SQLite+scoring)", s))
print(row("riskhook serve at half max (open loop)", h))
ratio = s["throughput_per_second"] / e["throughput_per_second"]
print(f"\nserve / embed throughput: {ratio:.2f} (target >= 0.50)")
print(f"p99 at half max: {h['latency_ms']['p99']:.2f} ms (target < 10)")
print(f"peak RSS of serve: {rss_kb/1024:.1f} MB (target < 64)")
print(f"start to ready on an existing database: median {ready} ms of [{readies}] (target < 200)")
import os
summary = {"embed": e, "serve": s, "serve_half": h, "ratio": ratio, "rss_mb": rss_kb/1024, "ready_ms": ready}
if os.path.exists(f"{out}/serve-postgres.json") and os.environ.get("BENCH_POSTGRES_URL"):
    p = json.load(open(f"{out}/serve-postgres.json"))
    print(row("riskhook serve (PostgreSQL+scoring)", p))
    print(f"PostgreSQL / SQLite serve throughput: {p['throughput_per_second'] / s['throughput_per_second']:.2f}")
    summary["serve_postgres"] = p
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
PY
