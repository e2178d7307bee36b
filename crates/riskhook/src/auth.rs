//! API-key authentication for `/v1`: the [`Caller`] extractor and role checks. Keys come from
//! the configuration (compared in constant time) or from the database (`riskhook keys create`).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

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
}

impl Caller {
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
        if let Some(key) = state.config.api_keys.authenticate(presented) {
            return Ok(Caller {
                key_id: key.id.clone(),
                role: key.role,
            });
        }
        // Keys made by `riskhook keys create` live in the database, found by their hash: the
        // lookup compares digests, never the secret itself.
        let stored = state
            .store
            .key_by_hash(&crate::keys::secret_hash(presented))
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Caller {
            key_id: stored.id,
            role: stored.role,
        })
    }
}
