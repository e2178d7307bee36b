//! API-key authentication for `/v1`: the [`Caller`] extractor and role checks. Keys come from
//! the configuration (compared in constant time) or from the database (`riskhook keys create`).
//!
//! The configured keys are this module's types ([`ApiKey`], [`ApiKeys`]): `config` parses
//! `[[api_keys]]` and builds them, but a key's hash is opaque outside this module.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use std::collections::HashMap;
use std::fmt;

use riskhook_store::{ApiKeyRecord, Person, Role};
use sha2::Digest;
use subtle::ConstantTimeEq;

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

    fn configured(key: &ApiKey) -> Self {
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

/// One configured API key: its id, role and the SHA-256 of the key.
#[derive(Clone)]
pub struct ApiKey {
    /// Shown in logs and audit entries instead of the key.
    pub id: String,
    /// The person (or service) the key belongs to: four eyes needs two different ones.
    pub principal: String,
    /// What it may do.
    pub role: Role,
    hash: ApiKeyHash,
}

impl ApiKey {
    /// A configured key (its fields already validated by the configuration).
    pub(crate) fn new(id: String, principal: String, role: Role, hash: ApiKeyHash) -> Self {
        Self {
            id,
            principal,
            role,
            hash,
        }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("principal", &self.principal)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The SHA-256 of a configured API key, parsed from the `sha256:<hex>` form [`api_key_hash`]
/// writes. No `Debug`: it stays inside [`ApiKey`], whose `Debug` leaves it out.
#[derive(Clone)]
pub(crate) struct ApiKeyHash([u8; 32]);

impl ApiKeyHash {
    /// `None` unless `text` is `sha256:` and 64 hex characters.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut hash = [0u8; 32];
        text.strip_prefix("sha256:")
            .and_then(|h| hex::decode_to_slice(h, &mut hash).ok())?;
        Some(Self(hash))
    }
}

/// The configured API keys.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys(Vec<ApiKey>);

impl ApiKeys {
    /// The keys as configured (ids already checked to be unique).
    pub(crate) fn new(keys: Vec<ApiKey>) -> Self {
        Self(keys)
    }

    /// The key `presented` matches, if any. Every configured hash is compared, in constant
    /// time, whatever matches first, so timing reveals neither which key nor how close.
    pub fn authenticate(&self, presented: &str) -> Option<&ApiKey> {
        let digest: [u8; 32] = sha2::Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for key in &self.0 {
            if bool::from(key.hash.0.ct_eq(&digest)) && found.is_none() {
                found = Some(key);
            }
        }
        found
    }

    /// The configured key with this id.
    pub fn by_id(&self, id: &str) -> Option<&ApiKey> {
        self.0.iter().find(|k| k.id == id)
    }

    /// Whether any key is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// `sha256:<hex>` of an API key: what goes in the configuration.
pub fn api_key_hash(key: &str) -> String {
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    )
}
