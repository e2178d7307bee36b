-- Every verified Didit delivery, stored once, with the bytes exactly as received.
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT, -- arrival order
    id              TEXT    NOT NULL UNIQUE,           -- evt_<uuid v7>
    provider        TEXT    NOT NULL,
    received_at     INTEGER NOT NULL,                  -- Unix seconds
    webhook_type    TEXT    NOT NULL,
    delivery_key    TEXT,                              -- Didit event_id, when present
    content_key     TEXT    NOT NULL,                  -- type|subject|status|timestamp
    subject_id      TEXT,
    session_id      TEXT,
    status          TEXT,
    event_timestamp INTEGER,
    vendor_data     TEXT,
    key_id          TEXT    NOT NULL,
    scheme          TEXT    NOT NULL,
    body_trusted    INTEGER NOT NULL CHECK (body_trusted IN (0, 1)),
    raw             BLOB    NOT NULL
);
-- The two keys that make a delivery exactly-once: a duplicate by either is ignored.
-- SQLite treats NULLs as distinct, so events without event_id are keyed by content alone.
CREATE UNIQUE INDEX events_delivery_key ON events (provider, delivery_key);
CREATE UNIQUE INDEX events_content_key ON events (provider, content_key);
CREATE INDEX events_session ON events (session_id);
CREATE INDEX events_vendor_data ON events (vendor_data);

-- Each session's current state: the greatest status observation (timestamp, lifecycle stage,
-- name) seen so far, so that arrival order does not matter.
CREATE TABLE sessions (
    session_id       TEXT    PRIMARY KEY,
    status           TEXT    NOT NULL,
    status_timestamp INTEGER NOT NULL,
    status_event_id  TEXT    NOT NULL REFERENCES events (id),
    vendor_data      TEXT,
    first_seen_at    INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX sessions_vendor_data ON sessions (vendor_data);
