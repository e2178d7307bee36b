#!/usr/bin/env bash
# Policy backtest speed and its effect on intake, in one run:
#   1. starts `riskhook serve` (SQLite) on a fresh database in a temporary directory and loads it
#      with `riskhook-loadgen` (CONC connections, LOAD_DURATION): signed, unique deliveries of
#      every event type, each session event assessed and stored with its signal snapshot;
#   2. counts the stored session events with an assessment (what a backtest replays); if fewer
#      than N, tops them up to N with copies of the loaded session events and their assessments
#      (new ids and keys, same rows otherwise; TOPUP=0 to skip);
#   3. runs `riskhook policy backtest CANDIDATE --json` under /usr/bin/time -v on the database
#      (candidate: the default policy with the sanctions rule lowered to review and the freeze
#      line at 80), sampling its resident memory every 0.2 s: wall time, events/s, CPU%, peak
#      RSS, and RSS at 10%, 50% and 90% of the run (flat = bounded);
#   4. restarts `serve` on the same database and measures intake for PHASE each, side by side:
#      without a backtest, while a backtest runs (started 0.5 s before; stopped at the end of
#      the phase if still running), and without again;
#   5. prints a summary and removes the temporary directory.
# With COMPARE_BIN=OTHER_BINARY (an older commit, say), that build loads the database (step 1),
# which is then copied and migrated by this one, timed (step 2b: the cost of an upgrade's
# migrations on a database of that size); step 3b runs the same backtest with each build on its
# copy, REPS (3) times each, alternating, and prints the ratio. The two copies need twice the
# disk.
# Builds nothing: give the binary (default target/release/riskhook; build it with
# `cargo build --release -p riskhook`); the load generator is the riskhook-loadgen beside it
# (`cargo build --release -p riskhook-loadgen`). Needs python3, curl and /usr/bin/time. With the
# defaults (N=1000000) it needs ~15 GB of disk and ~10 minutes.
#
#   scripts/bench-backtest.sh
#   N=100000 LOAD_DURATION=60s PHASE=10s scripts/bench-backtest.sh target/release/riskhook
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/riskhook}")
LOADGEN=$(dirname "$BIN")/riskhook-loadgen
N=${N:-1000000}
LOAD_DURATION=${LOAD_DURATION:-300s}
CONC=${CONC:-32}
PHASE=${PHASE:-10s}
TOPUP=${TOPUP:-1}
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release -p riskhook" >&2; exit 1; }
[ -x "$LOADGEN" ] || { echo "no load generator at $LOADGEN: cargo build --release -p riskhook-loadgen" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time)" >&2; exit 1; }

DIR=$(mktemp -d)
SERVE_PID=
stop_serve() {
  if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
  SERVE_PID=
}
cleanup() { stop_serve; rm -rf "$DIR"; }
trap cleanup EXIT

export RISKHOOK_DIDIT_SECRET
RISKHOOK_DIDIT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export RISKHOOK_DATABASE_URL="sqlite://$DIR/riskhook.db" RISKHOOK_LOG_FILTER=warn
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT/webhooks/didit

start_serve() { # [binary]
  RISKHOOK_LISTEN=127.0.0.1:$PORT "${1:-$BIN}" serve >> "$DIR/serve.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$PORT/readyz" && return 0; sleep 0.05; done
  echo "server did not come up" >&2; cat "$DIR/serve.log" >&2; exit 1
}

# The candidate: the default policy, sanctions lowered to review, freeze line at 80.
"$BIN" policy show > "$DIR/default.toml" 2>/dev/null || cp crates/riskhook-core/policy/default.toml "$DIR/default.toml"
python3 - "$DIR/default.toml" "$DIR/candidate.toml" <<'PY'
import sys
text = open(sys.argv[1]).read()
cand = text.replace('points = 100\ndecision = "freeze"\nreason = "A sanctions',
                    'points = 40\ndecision = "review"\nreason = "A sanctions', 1)
cand = cand.replace('freeze = 70\n', 'freeze = 80\n', 1)
assert cand.count('freeze = 80') == 1 and 'decision = "review"\nreason = "A sanctions' in cand, "candidate edit failed"
open(sys.argv[2], "w").write(cand)
PY

echo "== 1. load: riskhook serve on 127.0.0.1:$PORT, loadgen --concurrency $CONC --duration $LOAD_DURATION"
start_serve "${COMPARE_BIN:-$BIN}"
"$LOADGEN" "$URL" --concurrency "$CONC" --duration "$LOAD_DURATION" --quiet --json > "$DIR/load.json"
stop_serve
python3 - "$DIR/load.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"loaded: {d['sent']} deliveries in {d['seconds']:.0f} s ({d['throughput_per_second']:.0f}/s); outcomes {d['outcomes']}")
PY

echo "== 2. count (and top up to N=$N session events)"
DB=$DIR/riskhook.db N=$N TOPUP=$TOPUP python3 - <<'PY'
import os, sqlite3, time
db = sqlite3.connect(os.environ["DB"])
n, topup = int(os.environ["N"]), os.environ["TOPUP"] == "1"
def counts():
    total = db.execute("SELECT count(*) FROM events").fetchone()[0]
    session = db.execute("SELECT count(*) FROM events WHERE session_id IS NOT NULL").fetchone()[0]
    assessed = db.execute("SELECT count(*) FROM events e JOIN assessments a ON a.event_id = e.id"
                          " WHERE e.session_id IS NOT NULL").fetchone()[0]
    return total, session, assessed
total, session, assessed = counts()
print(f"from loadgen: {total} events stored, {session} session events, {assessed} of them with an assessment")
if topup and assessed < n:
    # Copies of the loaded session events (and their assessments) with new ids and keys.
    ecols = [r[1] for r in db.execute("PRAGMA table_info(events)") if r[1] != "seq"]
    acols = [r[1] for r in db.execute("PRAGMA table_info(assessments)")]
    fresh = {"id", "delivery_key", "content_key"}
    snapshots = db.execute("SELECT 1 FROM sqlite_schema WHERE name = 'signal_snapshots'").fetchone()
    last = db.execute("SELECT max(seq) FROM events").fetchone()[0]
    t0, copy = time.perf_counter(), 0
    while assessed < n:
        copy += 1
        want = n - assessed
        tag = f"'~c{copy}'"
        esel = ", ".join(f"e.{c} || {tag}" if c in fresh else f"e.{c}" for c in ecols)
        asel = ", ".join(f"a.{c} || {tag}" if c in ("id", "event_id") else f"a.{c}" for c in acols)
        src = (f"SELECT e.id FROM events e JOIN assessments a ON a.event_id = e.id"
               f" WHERE e.seq <= {last} AND e.session_id IS NOT NULL ORDER BY e.seq LIMIT {want}")
        with db:
            db.execute(f"CREATE TEMP TABLE pick AS {src}")
            db.execute(f"INSERT INTO events ({', '.join(ecols)}) SELECT {esel} FROM events e WHERE e.id IN (SELECT id FROM pick) ORDER BY e.seq")
            db.execute(f"INSERT INTO assessments ({', '.join(acols)}) SELECT {asel} FROM assessments a WHERE a.event_id IN (SELECT id FROM pick)")
            if snapshots:
                # The copies' compact snapshots, at the copies' own arrival positions.
                db.execute(f"INSERT INTO signal_snapshots (event_seq, received_at, at, user_id, signals)"
                           f" SELECT c.seq, s.received_at, s.at, s.user_id, s.signals FROM pick p"
                           f" JOIN events o ON o.id = p.id JOIN events c ON c.id = o.id || {tag}"
                           f" JOIN signal_snapshots s ON s.event_seq = o.seq ORDER BY c.seq")
            db.execute("DROP TABLE pick")
        total, session, assessed = counts()
    print(f"topped up with copies in {time.perf_counter() - t0:.0f} s: {total} events stored, "
          f"{session} session events, {assessed} with an assessment")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(f"database: {os.path.getsize(os.environ['DB']) / 2**30:.2f} GiB")
PY

if [ -n "${COMPARE_BIN:-}" ]; then
  echo "== 2b. the database copied for this build and migrated by it (the other keeps its own)"
  OLD_URL=$RISKHOOK_DATABASE_URL
  cp "$DIR/riskhook.db" "$DIR/new.db"
  export RISKHOOK_DATABASE_URL="sqlite://$DIR/new.db"
  t0=$(date +%s.%N)
  "$BIN" migrate
  t1=$(date +%s.%N)
  echo "migrate: $(python3 -c "print(f'{$t1 - $t0:.1f}')") s"
fi

echo "== 3. riskhook policy backtest candidate.toml --json (serve stopped)"
( /usr/bin/time -v "$BIN" policy backtest "$DIR/candidate.toml" --json > "$DIR/backtest.json" 2> "$DIR/backtest.time" ) &
TIME_PID=$!
: > "$DIR/rss.txt"
while kill -0 "$TIME_PID" 2>/dev/null; do
  P=$(pgrep -P "$TIME_PID" -f 'policy backtest' | head -1 || true)
  if [ -n "$P" ]; then
    for _ in $(seq 1 100000); do
      R=$(awk '/VmRSS/ {print $2}' "/proc/$P/status" 2>/dev/null) || break
      [ -n "$R" ] || break
      echo "$(date +%s.%N) $R" >> "$DIR/rss.txt"; sleep 0.2
    done
  fi
  sleep 0.05
done
wait "$TIME_PID"
python3 - "$DIR" <<'PY'
import json, re, sys
d = sys.argv[1]
r = json.load(open(f"{d}/backtest.json"))
t = open(f"{d}/backtest.time").read()
def field(name):
    return re.search(rf"{re.escape(name)}: (.*)", t).group(1).strip()
wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
parts = [float(x) for x in wall.split(":")]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
events = r["events"]
rss = [tuple(map(float, l.split())) for l in open(f"{d}/rss.txt") if l.strip()]
def rss_at(frac):
    if not rss: return float("nan")
    t0, t1 = rss[0][0], rss[-1][0]
    return min(rss, key=lambda x: abs(x[0] - (t0 + frac * (t1 - t0))))[1] / 1024
print(f"events replayed: {events} (from snapshots {r['from_snapshots']}, from bodies {r['from_bodies']}, skipped {r['skipped']})")
print(f"decisions changed: {r['decisions_changed']}; users: {r['users_total']}, changed {r['users_changed']}")
print(f"wall: {secs:.2f} s (report's own: {r['seconds']:.2f} s) -> {events / secs:,.0f} events/s "
      f"({events / r['seconds']:,.0f}/s replay only)")
print(f"CPU: {field('Percent of CPU this job got')} (user {field('User time (seconds)')} s, system {field('System time (seconds)')} s)")
print(f"max RSS: {int(field('Maximum resident set size (kbytes)')) / 1024:.1f} MB; "
      f"RSS at 10% / 50% / 90% of the run: {rss_at(0.1):.1f} / {rss_at(0.5):.1f} / {rss_at(0.9):.1f} MB ({len(rss)} samples)")
PY

if [ -n "${COMPARE_BIN:-}" ]; then
  # The same backtest with another build, on the same database, alternating so that both see
  # the same page cache and the same neighbours: the ratio is what to read, not the rates.
  CMP=$(realpath "$COMPARE_BIN")
  echo "== 3b. side by side with $CMP: ${REPS:-3} alternating runs each, wall seconds"
  for rep in $(seq "${REPS:-3}"); do
    for which in new old; do
      B=$BIN; URL_OF=$RISKHOOK_DATABASE_URL
      [ "$which" = old ] && B=$CMP && URL_OF=$OLD_URL
      t0=$(date +%s.%N)
      RISKHOOK_DATABASE_URL=$URL_OF "$B" policy backtest "$DIR/candidate.toml" --json > "$DIR/cmp-$which.json" 2>/dev/null
      t1=$(date +%s.%N)
      echo "$which $(python3 -c "print($t1 - $t0)")" | tee -a "$DIR/cmp.txt"
    done
  done
  python3 - "$DIR" <<'PY'
import json, statistics, sys
d = sys.argv[1]
runs = {}
for line in open(f"{d}/cmp.txt"):
    which, secs = line.split()
    runs.setdefault(which, []).append(float(secs))
events = json.load(open(f"{d}/cmp-new.json"))["events"]
new, old = statistics.median(runs["new"]), statistics.median(runs["old"])
same = json.load(open(f"{d}/cmp-new.json"))["decisions_changed"] == json.load(open(f"{d}/cmp-old.json"))["decisions_changed"]
print(f"median wall: this build {new:.2f} s ({events / new:,.0f} events/s), compared {old:.2f} s "
      f"({events / old:,.0f} events/s): {old / new:.2f}x; same decisions changed: {same}")
PY
fi

echo "== 4. intake while a backtest runs: loadgen --concurrency $CONC --duration $PHASE each"
start_serve
run_phase() { # name
  "$LOADGEN" "$URL" --concurrency "$CONC" --duration "$PHASE" --quiet --json > "$DIR/intake-$1.json"
}
run_phase before
( "$BIN" policy backtest "$DIR/candidate.toml" --json > "$DIR/backtest2.json" 2> "$DIR/backtest2.err" || true
  date +%s.%N > "$DIR/backtest2.end" ) &
BT_PID=$!
BT_START=$(date +%s.%N)
sleep 0.5
run_phase during
LOAD_END=$(date +%s.%N)
# Stop the backtest if it is still going, so that "after" runs without it.
if [ ! -e "$DIR/backtest2.end" ]; then
  pkill -P "$BT_PID" -f 'policy backtest' 2>/dev/null || true
fi
wait "$BT_PID" 2>/dev/null || true
run_phase after
stop_serve
python3 - "$DIR" "$BT_START" "$LOAD_END" <<'PY'
import json, sys
d, bt_start, load_end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
try:
    bt_end = float(open(f"{d}/backtest2.end").read())
    bt = json.load(open(f"{d}/backtest2.json"))
    print(f"backtest during intake: {bt['events']} events in {bt['seconds']:.1f} s ({bt['events'] / bt['seconds']:,.0f}/s), "
          f"finished {bt_end - bt_start:.1f} s after it started; the 'during' phase ended after {load_end - bt_start:.1f} s")
except (OSError, ValueError):
    print(f"backtest during intake: still running when the 'during' phase ended ({load_end - bt_start:.1f} s after it started); stopped")
rows = {k: json.load(open(f"{d}/intake-{k}.json")) for k in ("before", "during", "after")}
print("\n| intake | deliveries/s | p50 ms | p99 ms | p99.9 ms | failed |")
print("|---|---|---|---|---|---|")
for k, r in rows.items():
    l = r["latency_ms"]
    bad = sum(v for o, v in r["outcomes"].items() if o not in ("accepted", "duplicate"))
    print(f"| {k} a backtest | {r['throughput_per_second']:.0f} | {l['p50']:.2f} | {l['p99']:.2f} | {l['p99_9']:.2f} | {bad} |")
base = (rows["before"]["throughput_per_second"] + rows["after"]["throughput_per_second"]) / 2
print(f"\nduring / mean(before, after): {rows['during']['throughput_per_second'] / base:.2f}")
PY
