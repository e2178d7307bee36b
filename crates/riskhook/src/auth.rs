//! API-key authentication for `/v1`: the [`Caller`] extractor and role checks. Keys come from
//! the configuration (compared in constant time) or from the database (`riskhook keys create`).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use std::collections::HashMap;

use riskhook_store::{ApiKeyRecord, Person};

use crate::config::Role;
use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller of a `/v1` route.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's id (never the key).
    pub key_id: String,
    /// What it may do.
    pub role: Role,
    /// The person the key belongs to.
    pub principal: String,
    /// For a key in the database: the key that made it and when. Configuration keys were set
    /// up by the operator and have neither.
    made: Option<(String, i64)>,
}

/// How far [`Caller::person`] follows keys made by keys: far beyond any real chain, and a
/// bound on a hand-edited database whose keys made each other.
const MAX_KEY_CHAIN: usize = 64;

impl Caller {
    /// The person behind the key, for four eyes: everyone up the chain of keys that made it
    /// (each saw the secret of the key they made) and when it was made.
    pub async fn person(&self, state: &AppState) -> Result<Person, ApiError> {
        let Some((created_by, created_at)) = &self.made else {
            return Ok(Person::on_their_own(self.principal.clone()));
        };
        let stored: HashMap<String, ApiKeyRecord> = state
            .store
            .keys()
            .await?
            .into_iter()
            .map(|k| (k.id.clone(), k))
            .collect();
        let mut made_by = Vec::new();
        let mut maker = created_by.as_str();
        for _ in 0..MAX_KEY_CHAIN {
            if let Some(key) = state.config.api_keys.by_id(maker) {
                made_by.push(key.principal.clone());
                break;
            }
            // `cli` (the operator at the database) or a key no longer known: the chain ends.
            let Some(key) = stored.get(maker) else { break };
            made_by.push(key.principal.clone());
            maker = &key.created_by;
        }
        Ok(Person {
            principal: self.principal.clone(),
            made_by,
            key_created_at: Some(*created_at),
        })
    }

    /// Refuses with 403 unless the caller's role includes `needed`.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                key_id: self.key_id.clone(),
                has: self.role.as_str(),
                needs: needed.as_str(),
            })
        }
    }
}

impl Caller {
    /// The caller a presented secret stands for: a configured key (compared in constant time)
    /// or an unrevoked stored one (found by its hash, never compared as a secret).
    pub async fn authenticate(state: &AppState, presented: &str) -> Result<Option<Self>, ApiError> {
        if let Some(key) = state.config.api_keys.authenticate(presented) {
            return Ok(Some(Self::configured(key)));
        }
        let stored = state
            .store
            .key_by_hash(&crate::keys::secret_hash(presented))
            .await?;
        Ok(stored.map(Self::stored))
    }

    /// The caller of a key known by id (a workbench session's key), if it still exists and is
    /// not revoked: its role and person are read afresh each time.
    pub async fn by_key_id(state: &AppState, key_id: &str) -> Result<Option<Self>, ApiError> {
        if let Some(key) = state.config.api_keys.by_id(key_id) {
            return Ok(Some(Self::configured(key)));
        }
        let stored = state.store.key(key_id).await?;
        Ok(stored.filter(|k| k.revoked_at.is_none()).map(Self::stored))
    }

    fn configured(key: &crate::config::ApiKey) -> Self {
        Caller {
            key_id: key.id.clone(),
            role: key.role,
            principal: key.principal.clone(),
            made: None,
        }
    }

    fn stored(key: ApiKeyRecord) -> Self {
        Caller {
            key_id: key.id,
            role: key.role,
            principal: key.principal,
            made: Some((key.created_by, key.created_at)),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        Caller::authenticate(state, presented)
            .await?
            .ok_or(ApiError::Unauthorized)
    }
}
