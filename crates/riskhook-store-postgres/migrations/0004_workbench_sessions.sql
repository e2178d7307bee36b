-- Sign-in sessions of the review workbench (/ui): the SHA-256 of the cookie's token (never the
-- token), the API key it signed in with, its CSRF token, when it was last seen (sessions idle
-- out) and a one-time message for the next page. Shared by every instance.
CREATE TABLE ui_sessions (
    token_hash   TEXT   COLLATE "C" PRIMARY KEY,
    key_id       TEXT   COLLATE "C" NOT NULL,
    csrf_token   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    flash        TEXT
);
CREATE INDEX ui_sessions_last_seen ON ui_sessions (last_seen_at);
