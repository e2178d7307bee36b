//! Sign-in sessions of the review workbench (`/ui`) as stored: the hash of the cookie's token
//! (never the token), the API key it signed in with, its CSRF token, when it was last seen,
//! and the one message the next page shows.
//!
//! They live in the database, not in one process, so every instance behind a load balancer
//! knows them, a restart signs nobody out, and signing out ends the session everywhere.

use std::fmt;

/// A workbench session.
#[derive(Clone, PartialEq, Eq)]
pub struct UiSessionRecord {
    /// SHA-256 (hex) of the session token in the cookie.
    pub token_hash: String,
    /// The API key it signed in with: its role and person are looked up on every request, so
    /// revoking the key ends the session.
    pub key_id: String,
    /// The token every form must send back (compared in constant time).
    pub csrf_token: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; a session idle for longer than the configured time is over.
    pub last_seen_at: i64,
    /// A message for the next page (what the last command did), shown once.
    pub flash: Option<String>,
}

impl fmt::Debug for UiSessionRecord {
    // The CSRF token is a secret of the session's browser: never in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UiSessionRecord")
            .field("token_hash", &self.token_hash)
            .field("key_id", &self.key_id)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("flash", &self.flash)
            .finish_non_exhaustive()
    }
}
