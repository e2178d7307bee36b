-- Sign-in sessions of the review workbench (/ui): the SHA-256 of the cookie's token (never the
-- token), the API key it signed in with, its CSRF token, when it was last seen (sessions idle
-- out) and a one-time message for the next page.
CREATE TABLE ui_sessions (
    token_hash   TEXT    PRIMARY KEY,
    key_id       TEXT    NOT NULL,
    csrf_token   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    flash        TEXT
) WITHOUT ROWID;
CREATE INDEX ui_sessions_last_seen ON ui_sessions (last_seen_at);
