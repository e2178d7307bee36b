//! Extractors of the `/v1` API: [`Authorized`] (a key with at least a given role, checked
//! before anything else of the request is read, so a key without the role learns nothing about
//! the body's validity), and the JSON body and query-string extractors, axum's own with their
//! rejections turned into [`ApiError`] so that every failure answers
//! `application/problem+json` (axum's answer `text/plain`). Parsing into typed DTOs happens
//! here; handlers get values that are already valid.

use std::marker::PhantomData;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Default page size of list routes.
pub(crate) const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of list routes: larger `limit`s are lowered to it.
pub(crate) const MAX_LIMIT: u32 = 500;

/// A list route's page size: [`DEFAULT_LIMIT`] when absent, at most [`MAX_LIMIT`].
pub(crate) fn page_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// The cursor of the next page: the last item's key when the page is full (a short page is
/// the last one).
pub(crate) fn next_cursor<T, K>(page: &[T], limit: u32, key: impl Fn(&T) -> K) -> Option<K> {
    let full = usize::try_from(limit).is_ok_and(|limit| page.len() >= limit);
    if full { page.last().map(key) } else { None }
}

/// The roles a route can require, as types for [`Authorized`].
pub(crate) mod role {
    use riskhook_store::Role;

    /// A role [`super::Authorized`] can demand.
    pub(crate) trait Needed {
        /// The least role allowed.
        const ROLE: Role;
    }

    /// Any key.
    #[derive(Debug)]
    pub(crate) struct Read;
    /// Review or admin keys.
    #[derive(Debug)]
    pub(crate) struct Review;
    /// Admin keys.
    #[derive(Debug)]
    pub(crate) struct Admin;

    impl Needed for Read {
        const ROLE: Role = Role::Read;
    }
    impl Needed for Review {
        const ROLE: Role = Role::Review;
    }
    impl Needed for Admin {
        const ROLE: Role = Role::Admin;
    }
}

/// The caller, authenticated (401 otherwise) and holding at least the role `R` needs (403
/// otherwise). Put it first among a handler's extractors.
#[derive(Debug)]
pub(crate) struct Authorized<R> {
    /// Who is calling.
    pub(crate) caller: Caller,
    role: PhantomData<R>,
}

impl<R: role::Needed> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(R::ROLE)?;
        Ok(Authorized {
            caller,
            role: PhantomData,
        })
    }
}

impl<R> Authorized<R> {
    /// The key's id: the actor recorded in the audit log.
    pub(crate) fn key_id(&self) -> &str {
        &self.caller.key_id
    }
}

/// A JSON request body. As `Option<Body<T>>`, a request without a `Content-Type` gives `None`
/// (for bodies whose fields are all optional).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Body<T>(pub(crate) T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = <Json<T> as FromRequest<S>>::from_request(req, state)
            .await
            .map_err(json_rejection)?;
        Ok(Body(value))
    }
}

impl<S, T> OptionalFromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let value = <Json<T> as OptionalFromRequest<S>>::from_request(req, state)
            .await
            .map_err(json_rejection)?;
        Ok(value.map(|Json(value)| Body(value)))
    }
}

/// Query-string parameters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Params<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(value) =
            Query::<T>::from_request_parts(parts, state)
                .await
                .map_err(|e: QueryRejection| ApiError::Malformed {
                    status: e.status(),
                    detail: e.body_text(),
                })?;
        Ok(Params(value))
    }
}

/// Syntax and media-type problems are 400/415; JSON of the wrong shape (a missing field, an
/// unknown value, a blank reason) is 422.
fn json_rejection(e: JsonRejection) -> ApiError {
    match e {
        JsonRejection::JsonDataError(e) => ApiError::Invalid(e.body_text()),
        other => ApiError::Malformed {
            status: other.status(),
            detail: other.body_text(),
        },
    }
}
