#!/usr/bin/env python3
"""Which B-trees the WAL frames of a riskhook SQLite database belong to: write amplification,
table by table and index by index.

    scripts/wal-census.py DB [WAL]        (WAL defaults to DB-wal)

Reads the frames of the WAL's current generation (those carrying the header's salt), maps each
frame's page to its table or index through SQLite's dbstat view on a private copy (opening the
copy replays the WAL into it, so pages allocated by the WAL are known too), and prints frames
per delivery, each B-tree's share, and distinct pages per delivery (about what a checkpoint of
that WAL writes). "Delivery" is counted as the frames of the `events` table: each stored event
fills a page of its own (the raw body is 2-3 KB), so this is close to the number of deliveries
the WAL holds.

To measure intake, stop `riskhook serve` with SIGKILL while it is under load (a clean stop
checkpoints and truncates the WAL) and run this on the database and its WAL. BENCHMARKS.md,
"Where the writer's pages go", has a census and how it was taken.
"""

import collections
import shutil
import sqlite3
import struct
import sys
import tempfile
from pathlib import Path


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    db = Path(sys.argv[1])
    wal = Path(sys.argv[2]) if len(sys.argv) == 3 else Path(f"{db}-wal")
    data = wal.read_bytes()
    if len(data) < 32 or struct.unpack(">I", data[:4])[0] not in (0x377F0682, 0x377F0683):
        print(f"{wal}: not a SQLite WAL (or empty: was the server stopped cleanly?)", file=sys.stderr)
        return 1
    page_size = struct.unpack(">I", data[8:12])[0]
    salt = data[16:24]
    frames, commits, offset = [], 0, 32
    while offset + 24 + page_size <= len(data):
        page, db_size = struct.unpack(">II", data[offset : offset + 8])
        if data[offset + 8 : offset + 16] != salt:
            break  # an older generation's frame: the current one ends here
        frames.append(page)
        commits += db_size != 0
        offset += 24 + page_size
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.db"
        shutil.copy(db, copy)
        shutil.copy(wal, f"{copy}-wal")
        connection = sqlite3.connect(copy)
        owner = dict(connection.execute("SELECT pageno, name FROM dbstat"))
        connection.close()
    census = collections.Counter(owner.get(page, "(free or new)") for page in frames)
    deliveries = census.get("events", 0)
    if deliveries == 0:
        print(f"{len(frames)} frames, none of them of `events`: no deliveries to count", file=sys.stderr)
        return 1
    print(
        f"page size {page_size} B; {len(frames)} frames in {commits} commits; "
        f"~{deliveries} deliveries; {len(frames) / deliveries:.1f} frames "
        f"({len(frames) * (page_size + 24) / deliveries / 1024:.1f} KiB) and "
        f"{len(set(frames)) / deliveries:.1f} distinct pages per delivery"
    )
    for name, count in census.most_common():
        print(f"{count / deliveries:7.2f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
