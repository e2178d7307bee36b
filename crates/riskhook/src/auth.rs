//! API-key authentication for `/v1`: the [`Caller`] extractor and role checks.

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
        let key = state
            .config
            .api_keys
            .authenticate(presented)
            .ok_or(ApiError::Unauthorized)?;
        Ok(Caller {
            key_id: key.id.clone(),
            role: key.role,
        })
    }
}
