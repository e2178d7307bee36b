//! API keys as stored: an id, a role and the SHA-256 of the secret (never the secret).

use serde::{Deserialize, Serialize};

/// What a key may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read users, sessions, assessments, cases, the audit log, deliveries, the policy.
    Read,
    /// Also work review cases and freeze or unfreeze users.
    Review,
    /// Everything, including keys, the policy and deliveries.
    Admin,
}

impl Role {
    /// `read`, `review` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Review => "review",
            Role::Admin => "admin",
        }
    }

    /// The inverse of [`Role::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Role::Read),
            "review" => Some(Role::Review),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A key stored in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Its public id (`key_…`): what logs and the audit log name.
    pub id: String,
    /// A label for people.
    pub name: String,
    /// The person (or service) it belongs to: four eyes counts people, not keys.
    pub principal: String,
    /// What it may do.
    pub role: Role,
    /// When it was created, Unix seconds.
    pub created_at: i64,
    /// The key that created it (`cli` for the command line).
    pub created_by: String,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// A key to store.
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// Its public id.
    pub id: String,
    /// A label.
    pub name: String,
    /// The person it belongs to.
    pub principal: String,
    /// Its role.
    pub role: Role,
    /// SHA-256 of the secret, lowercase hex.
    pub hash: String,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("id", &self.id)
            .field("principal", &self.principal)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}
