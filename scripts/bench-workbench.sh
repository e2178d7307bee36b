#!/usr/bin/env bash
# Render time of the review workbench (/ui) with 10,000 open review cases, in one run:
#   1. starts `riskhook serve` (SQLite) on a fresh database in a temporary directory, with a
#      random admin API key in its configuration;
#   2. seeds CASES distinct users, each frozen by a sanctions hit and so each with one open
#      case: the fixture status-updated-declined-sanctions.json with its own vendor_data,
#      session_id and event_id, signed as Didit signs (X-Signature over the raw body), posted
#      over keep-alive connections; prints how long that took;
#   3. signs in to the workbench and times each page with REQUESTS sequential requests on one
#      keep-alive connection after WARMUP (time from sending the request to the last byte of
#      the answer), and GET /v1/cases?limit=50 as a reference;
#   4. times `riskhook audit verify` on the same database (what /ui/audit?full=1 does; a plain
#      /ui/audit checks only the entries appended since its last look);
#   5. prints a table (median, p95, max, size) and stops the server.
# Builds nothing: give the binary (default target/release/riskhook; build it with
# `cargo build --release -p riskhook`). Needs python3 and curl. Takes 1-3 minutes.
#
#   scripts/bench-workbench.sh
#   CASES=10000 REQUESTS=200 WARMUP=20 scripts/bench-workbench.sh target/release/riskhook
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/riskhook}")
CASES=${CASES:-10000}
REQUESTS=${REQUESTS:-200}
WARMUP=${WARMUP:-20}
FIXTURE=$PWD/fixtures/didit/status-updated-declined-sanctions.json
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release -p riskhook" >&2; exit 1; }

DIR=$(mktemp -d)
SERVE_PID=
cleanup() {
  if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
  rm -rf "$DIR"
}
trap cleanup EXIT

SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
KEY=rk_bench_$(python3 -c 'import secrets; print(secrets.token_hex(24))')
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$DIR/riskhook.toml" <<EOF
[[api_keys]]
id = "admin"
role = "admin"
hash = "sha256:$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)"
EOF

echo "== riskhook serve on 127.0.0.1:$PORT, database in $DIR"
RISKHOOK_DIDIT_SECRET=$SECRET RISKHOOK_LISTEN=127.0.0.1:$PORT \
  RISKHOOK_DATABASE_URL="sqlite://$DIR/riskhook.db" RISKHOOK_LOG_FILTER=warn \
  "$BIN" serve --config "$DIR/riskhook.toml" > "$DIR/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.05; done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" || { echo "server did not come up" >&2; cat "$DIR/serve.log" >&2; exit 1; }

PORT=$PORT SECRET=$SECRET KEY=$KEY CASES=$CASES REQUESTS=$REQUESTS WARMUP=$WARMUP \
  FIXTURE=$FIXTURE SERVE_PID=$SERVE_PID BIN=$BIN DB_URL="sqlite://$DIR/riskhook.db" python3 - <<'PY'
import hashlib, hmac, html, http.client, json, os, re, statistics, subprocess, threading, time, urllib.parse, uuid

port = int(os.environ["PORT"]); secret = os.environ["SECRET"].encode(); key = os.environ["KEY"]
cases, requests, warmup = int(os.environ["CASES"]), int(os.environ["REQUESTS"]), int(os.environ["WARMUP"])
fixture = json.load(open(os.environ["FIXTURE"]))

def connect():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)

# --- 2. Seed: one frozen user with one open case per delivery ---------------------------------
def body_for(i, ts):
    d = json.loads(json.dumps(fixture))
    user, session = f"bench-user-{i:05d}", str(uuid.uuid4())
    d["vendor_data"] = user; d["session_id"] = session; d["event_id"] = str(uuid.uuid4())
    d["timestamp"] = ts
    if isinstance(d.get("decision"), dict):
        d["decision"]["vendor_data"] = user; d["decision"]["session_id"] = session
        d["decision"]["session_url"] = f"https://verify.didit.me/session/{session}"
    return json.dumps(d, separators=(",", ":"), sort_keys=True).encode()

failures = []
def seed(indices):
    conn = connect()
    for i in indices:
        ts = int(time.time())
        body = body_for(i, ts)
        headers = {
            "content-type": "application/json",
            "user-agent": "DiditWebhook/2.0 +https://didit.me",
            "x-timestamp": str(ts),
            "x-signature": hmac.new(secret, body, hashlib.sha256).hexdigest(),
        }
        conn.request("POST", "/webhooks/didit", body, headers)
        r = conn.getresponse(); text = r.read()
        if r.status != 200:
            failures.append((i, r.status, text[:200]))
    conn.close()

workers = 8
start = time.perf_counter()
threads = [threading.Thread(target=seed, args=(range(w, cases, workers),)) for w in range(workers)]
for t in threads: t.start()
for t in threads: t.join()
seeded = time.perf_counter() - start
if failures:
    raise SystemExit(f"{len(failures)} deliveries failed, first: {failures[0]}")
print(f"seeded {cases} deliveries in {seeded:.1f} s ({cases / seeded:.0f}/s, {workers} connections)")

conn = connect()
def get(path, headers):
    conn.request("GET", path, headers=headers)
    r = conn.getresponse(); body = r.read()
    return r, body

bearer = {"authorization": f"Bearer {key}"}
r, body = get("/v1/cases?status=open&limit=1", bearer)
assert r.status == 200, (r.status, body[:300])

# --- 3. Sign in ---------------------------------------------------------------------------------
r, body = get("/ui/sign-in", {})
sign_in_cookie = re.search(r"riskhook_sign_in=([^;]+)", r.getheader("set-cookie")).group(1)
csrf = re.search(rb'name="csrf" value="([^"]+)"', body).group(1).decode()
form = urllib.parse.urlencode({"api_key": key, "csrf": csrf, "next": ""})
conn.request("POST", "/ui/sign-in", form, {
    "content-type": "application/x-www-form-urlencoded", "cookie": f"riskhook_sign_in={sign_in_cookie}"})
r = conn.getresponse(); r.read()
assert r.status == 303, r.status
session = re.search(r"riskhook_session=([^;]+)", ", ".join(v for k, v in r.getheaders() if k.lower() == "set-cookie")).group(1)
ui = {"cookie": f"riskhook_session={session}"}

r, queue = get("/ui/queue", ui)
assert r.status == 200, r.status
count = re.search(rb'<p id="queue-count">([^<]*)', queue).group(1).decode()
print(f"queue count: {count.strip()}")
if not count.startswith(f"{cases} cases"):
    raise SystemExit(f"expected {cases} open cases, the queue says: {count}")
case_id, user_id = (html.unescape(x.decode()) for x in
                    re.search(rb'data-case-id="([^"]+)" data-user-id="([^"]+)"', queue).groups())

# The last page of the queue with rows: follow the "next page" links (a full last page still
# links to an empty one).
path, last_page, pages = "/ui/queue", None, 0
while path:
    page = get(path, ui)[1]
    if b"data-case-id=" in page:
        last_page, pages = path, pages + 1
    m = re.search(rb'<a id="next-page" href="([^"]+)"', page)
    path = m and html.unescape(m.group(1).decode())
# What the case and user pages show, so that a fast page is not an empty one.
case_page, user_page = get(f"/ui/cases/{urllib.parse.quote(case_id)}", ui)[1], get(f"/ui/users/{urllib.parse.quote(user_id)}", ui)[1]
print(f"case page: {case_page.count(b'data-rule-id=')} rules listed in its evidence; "
      f"user page: {user_page.count(b'data-rule-id=')} rules in its assessment, {user_page.count(b'/ui/cases/')} case links")
print(f"queue pages with rows: {pages}; the last: {last_page}")

# --- 4. Time each page --------------------------------------------------------------------------
targets = [
    ("/ui/queue", "/ui/queue", ui),
    ("/ui/queue?status=all&decision=freeze", "/ui/queue?status=all&decision=freeze", ui),
    ("/ui/queue?older_than=1s", "/ui/queue?older_than=1s", ui),
    ("/ui/queue, last page (after=…)", last_page, ui),
    ("/ui/cases/{id}", f"/ui/cases/{urllib.parse.quote(case_id)}", ui),
    ("/ui/users/{id}", f"/ui/users/{urllib.parse.quote(user_id)}", ui),
    ("/ui/approvals", "/ui/approvals", ui),
    ("/ui/audit", "/ui/audit", ui),
    ("/ui/audit?full=1 (whole chain)", "/ui/audit?full=1", ui),
    ("/ui/deliveries", "/ui/deliveries", ui),
    ("/ui/policy", "/ui/policy", ui),
    ("GET /v1/cases?limit=50 (JSON API)", "/v1/cases?limit=50", bearer),
]
rows = []
for name, path, headers in targets:
    for _ in range(warmup):
        r, body = get(path, headers)
        assert r.status == 200, (name, r.status, body[:300])
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        r, body = get(path, headers)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status == 200, (name, r.status)
    times.sort()
    rows.append((name, statistics.median(times), times[max(0, round(0.95 * len(times)) - 1)], times[-1], len(body)))

audit = get("/ui/audit", ui)[1]
verdict = re.search(rb'(?s)<p id="chain-status"[^>]*>(.*?)</p>', audit).group(1).decode()
print(f"audit page says: {' '.join(html.unescape(verdict).split())}")
# The same verification outside the page: `riskhook audit verify` on the live database (a
# process start, a connection and the walk; median of 5).
walks = []
for _ in range(5):
    t0 = time.perf_counter()
    subprocess.run([os.environ["BIN"], "audit", "verify", "--database-url", os.environ["DB_URL"]],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    walks.append((time.perf_counter() - t0) * 1000)
print(f"riskhook audit verify on the same database: median {statistics.median(walks):.0f} ms of 5")
rss = [l.split()[1] for l in open(f"/proc/{os.environ['SERVE_PID']}/status") if l.startswith("VmHWM")]
print(f"serve peak RSS: {int(rss[0]) / 1024:.0f} MB; {requests} requests per page after {warmup} warm-up, one keep-alive connection\n")

print("| page | median ms | p95 ms | max ms | bytes |")
print("|---|---|---|---|---|")
for name, med, p95, mx, size in rows:
    print(f"| {name} | {med:.2f} | {p95:.2f} | {mx:.2f} | {size:,} |")
PY
