//! Operating riskhook under `/v1`: API keys (create, list, revoke), the outbox of `user.updated`
//! notifications (deliveries and their endpoints, retry, re-enable). Reading deliveries and
//! endpoints needs the read role; everything that changes something here needs admin.
//!
//! A key's secret is returned once, by the request that creates it, and is stored only as its
//! hash: no route can show it again.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use riskhook_store::{
    ApiKeyRecord, DeliveryFilter, DeliveryRecord, DeliveryStatus, EndpointRecord, Role,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Authorized, Body, Params, next_cursor, page_limit, role};
use super::openapi;
use crate::error::{ApiError, Result};
use crate::state::AppState;
use crate::text::{Field, TextError};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(retry_delivery))
        .routes(routes!(list_endpoints))
        .routes(routes!(enable_endpoint))
}

/// Now in Unix milliseconds: the outbox's unit.
fn now_ms(state: &AppState) -> i64 {
    (state.clock)().saturating_mul(1000)
}

// --- Keys -----------------------------------------------------------------------------------

/// A key's label: not blank, at most 100 characters, trimmed, one line without control
/// characters.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
struct KeyName(String);

impl KeyName {
    const FIELD: Field = Field {
        name: "name",
        max_chars: 100,
        lines: false,
    };
}

impl TryFrom<String> for KeyName {
    type Error = TextError;

    fn try_from(text: String) -> Result<Self, TextError> {
        Self::FIELD.read(&text).map(KeyName)
    }
}

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateKeyIn {
    /// A label for people, e.g. who or what uses the key.
    #[schema(value_type = String, min_length = 1, max_length = 100)]
    name: KeyName,
    /// The person (or service) the key belongs to: four eyes needs two different ones, and a
    /// key never counts as a second person for whoever made it. Defaults to `name`.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    principal: Option<KeyName>,
    /// What the key may do: `read` < `review` < `admin`.
    #[schema(schema_with = openapi::role)]
    role: Role,
}

/// A stored API key (never its secret nor its hash).
#[derive(Debug, Serialize, ToSchema)]
struct KeyOut {
    /// The public id (`key_…`): what logs and the audit log name.
    id: String,
    name: String,
    /// The person (or service) the key belongs to.
    principal: String,
    #[schema(schema_with = openapi::role)]
    role: Role,
    /// Unix seconds.
    created_at: i64,
    /// `created_at` as RFC 3339 (UTC).
    created_at_rfc3339: String,
    /// The key that created it (`cli` from the command line).
    created_by: String,
    /// When it was revoked; a revoked key no longer authenticates.
    revoked_at: Option<i64>,
    /// `revoked_at` as RFC 3339 (UTC).
    revoked_at_rfc3339: Option<String>,
}

impl From<ApiKeyRecord> for KeyOut {
    fn from(k: ApiKeyRecord) -> Self {
        Self {
            id: k.id,
            name: k.name,
            principal: k.principal,
            role: k.role,
            created_at: k.created_at,
            created_at_rfc3339: crate::time::rfc3339(k.created_at),
            created_by: k.created_by,
            revoked_at: k.revoked_at,
            revoked_at_rfc3339: crate::time::rfc3339(k.revoked_at),
        }
    }
}

/// A new key, with its secret: shown this once, stored only as its hash.
#[derive(Serialize, ToSchema)]
struct CreatedKeyOut {
    #[serde(flatten)]
    key: KeyOut,
    /// The bearer token. Keep it now: it cannot be shown again.
    secret: String,
}

impl std::fmt::Debug for CreatedKeyOut {
    // The secret must not reach a log through a stray `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKeyOut")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Keys stored in the database, oldest first (keys from the configuration file are not listed).
#[derive(Debug, Serialize, ToSchema)]
struct KeysOut {
    keys: Vec<KeyOut>,
}

/// Creates an API key; its secret is in this answer only.
#[utoipa::path(
    post,
    path = "/v1/keys",
    tag = "keys",
    request_body = CreateKeyIn,
    security(("bearer" = ["admin"])),
    responses(
        (status = 201, description = "Created; the secret is shown this once", body = CreatedKeyOut),
        (status = 400, description = "The body is not JSON"),
        (status = 409, description = "A key with this id exists"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "A blank name or an unknown role"),
    )
)]
async fn create_key(
    auth: Authorized<role::Admin>,
    State(state): State<AppState>,
    Body(body): Body<CreateKeyIn>,
) -> Result<(StatusCode, Json<CreatedKeyOut>)> {
    let principal = body.principal.as_ref().unwrap_or(&body.name);
    let generated = crate::keys::generate(&body.name.0, &principal.0, body.role);
    let record = state
        .store
        .create_key(generated.record, auth.key_id(), (state.clock)())
        .await?;
    tracing::info!(
        by = auth.key_id(),
        key = record.id,
        role = record.role.as_str(),
        "API key created"
    );
    Ok((
        StatusCode::CREATED,
        Json(CreatedKeyOut {
            key: record.into(),
            secret: generated.secret,
        }),
    ))
}

/// The keys stored in the database, revoked ones included.
#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "keys",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The stored keys", body = KeysOut))
)]
async fn list_keys(
    _admin: Authorized<role::Admin>,
    State(state): State<AppState>,
) -> Result<Json<KeysOut>> {
    let keys = state.store.keys().await?;
    Ok(Json(KeysOut {
        keys: keys.into_iter().map(KeyOut::from).collect(),
    }))
}

/// Revokes a stored key: it stops authenticating at once. Revoking twice changes nothing.
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    tag = "keys",
    params(("id" = String, Path, description = "The key id (`key_…`)")),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The key, revoked", body = KeyOut),
        (status = 404, description = "No such stored key"),
    )
)]
async fn revoke_key(
    auth: Authorized<role::Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<KeyOut>> {
    let record = state
        .store
        .revoke_key(&id, auth.key_id(), (state.clock)())
        .await?;
    tracing::info!(by = auth.key_id(), key = record.id, "API key revoked");
    Ok(Json(record.into()))
}

// --- Deliveries -----------------------------------------------------------------------------

fn delivery_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DeliveryStatus>, D::Error> {
    let text = String::deserialize(d)?;
    DeliveryStatus::parse(&text).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown status `{text}`: expected pending, delivered or failed"
        ))
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeliveryQuery {
    /// Only deliveries in this state.
    #[serde(default, deserialize_with = "delivery_status")]
    #[param(schema_with = openapi::delivery_status)]
    status: Option<DeliveryStatus>,
    /// Only to this endpoint.
    endpoint: Option<String>,
    /// Only about this user.
    user_id: Option<String>,
    /// Cursor: the `next` of the previous page (deliveries older than this id).
    before: Option<String>,
    /// At most this many (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// One notification to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
struct DeliveryOut {
    /// Our id (`dlv_…`).
    id: String,
    /// The notification's id: the Standard Webhooks `webhook-id`, the same on every attempt.
    message_id: String,
    endpoint_id: String,
    user_id: String,
    /// e.g. `user.updated`.
    event_type: String,
    #[schema(schema_with = openapi::delivery_status)]
    status: DeliveryStatus,
    /// Attempts since it was created or last retried by hand.
    attempts: u32,
    /// When the next attempt is due, Unix milliseconds.
    next_attempt_at: i64,
    /// `next_attempt_at` as RFC 3339 (UTC).
    next_attempt_at_rfc3339: String,
    /// The HTTP status of the last attempt.
    last_status: Option<u16>,
    /// What went wrong on the last attempt.
    last_error: Option<String>,
    /// Unix milliseconds.
    created_at: i64,
    /// `created_at` as RFC 3339 (UTC).
    created_at_rfc3339: String,
    delivered_at: Option<i64>,
    /// `delivered_at` as RFC 3339 (UTC).
    delivered_at_rfc3339: Option<String>,
}

impl From<DeliveryRecord> for DeliveryOut {
    fn from(d: DeliveryRecord) -> Self {
        Self {
            id: d.id,
            message_id: d.message_id,
            endpoint_id: d.endpoint_id,
            user_id: d.user_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            next_attempt_at_rfc3339: crate::time::rfc3339_ms(d.next_attempt_at),
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            created_at_rfc3339: crate::time::rfc3339_ms(d.created_at),
            delivered_at: d.delivered_at,
            delivered_at_rfc3339: crate::time::rfc3339_ms(d.delivered_at),
        }
    }
}

/// A delivery with the body it sends.
#[derive(Debug, Serialize, ToSchema)]
struct DeliveryDetailOut {
    #[serde(flatten)]
    delivery: DeliveryOut,
    /// The JSON body sent to the endpoint.
    #[schema(value_type = Object)]
    payload: Value,
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
struct DeliveriesOut {
    deliveries: Vec<DeliveryOut>,
    /// Pass as `before` for the next page; null on the last page.
    next: Option<String>,
}

/// Outbound deliveries, newest first, filtered.
#[utoipa::path(
    get,
    path = "/v1/deliveries",
    tag = "deliveries",
    params(DeliveryQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveriesOut),
        (status = 400, description = "A filter could not be read"),
    )
)]
async fn list_deliveries(
    _reader: Authorized<role::Read>,
    State(state): State<AppState>,
    Params(query): Params<DeliveryQuery>,
) -> Result<Json<DeliveriesOut>> {
    let limit = page_limit(query.limit);
    let filter = DeliveryFilter {
        status: query.status,
        endpoint_id: query.endpoint,
        user_id: query.user_id,
        before: query.before,
        limit,
    };
    let deliveries = state.store.deliveries(&filter).await?;
    let next = next_cursor(&deliveries, limit, |d| d.id.clone());
    Ok(Json(DeliveriesOut {
        deliveries: deliveries.into_iter().map(DeliveryOut::from).collect(),
        next,
    }))
}

/// One delivery, with its body.
#[utoipa::path(
    get,
    path = "/v1/deliveries/{id}",
    tag = "deliveries",
    params(("id" = String, Path, description = "The delivery id (`dlv_…`)")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The delivery", body = DeliveryDetailOut),
        (status = 404, description = "No such delivery"),
    )
)]
async fn get_delivery(
    _reader: Authorized<role::Read>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryDetailOut>> {
    let delivery = state
        .store
        .delivery(&id)
        .await?
        .ok_or(ApiError::NotFound("delivery"))?;
    // Written by riskhook as JSON; shown as JSON so clients need not parse twice.
    let payload = serde_json::from_str(&delivery.payload)
        .unwrap_or_else(|_| Value::String(delivery.payload.clone()));
    Ok(Json(DeliveryDetailOut {
        delivery: delivery.into(),
        payload,
    }))
}

/// Puts a failed delivery back in the queue, due now, with its attempts reset.
#[utoipa::path(
    post,
    path = "/v1/deliveries/{id}/retry",
    tag = "deliveries",
    params(("id" = String, Path, description = "The delivery id")),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Queued again", body = DeliveryOut),
        (status = 404, description = "No such delivery"),
        (status = 409, description = "The delivery has not failed"),
    )
)]
async fn retry_delivery(
    auth: Authorized<role::Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryOut>> {
    let delivery = state
        .store
        .retry_delivery(&id, auth.key_id(), now_ms(&state))
        .await?;
    Ok(Json(delivery.into()))
}

// --- Endpoints ------------------------------------------------------------------------------

/// A configured notification endpoint's state.
#[derive(Debug, Serialize, ToSchema)]
struct EndpointOut {
    /// Its id in the configuration.
    id: String,
    /// Whether the current configuration still has it.
    configured: bool,
    /// False after it answered `410 Gone`, until enabled again.
    enabled: bool,
    /// When it was disabled, Unix milliseconds.
    disabled_at: Option<i64>,
    /// `disabled_at` as RFC 3339 (UTC).
    disabled_at_rfc3339: Option<String>,
    disabled_reason: Option<String>,
}

impl From<EndpointRecord> for EndpointOut {
    fn from(e: EndpointRecord) -> Self {
        Self {
            enabled: e.disabled_at.is_none(),
            id: e.id,
            configured: e.configured,
            disabled_at: e.disabled_at,
            disabled_at_rfc3339: crate::time::rfc3339_ms(e.disabled_at),
            disabled_reason: e.disabled_reason,
        }
    }
}

/// Every endpoint ever configured.
#[derive(Debug, Serialize, ToSchema)]
struct EndpointsOut {
    endpoints: Vec<EndpointOut>,
}

/// Notification endpoints and whether each is enabled.
#[utoipa::path(
    get,
    path = "/v1/endpoints",
    tag = "deliveries",
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The endpoints", body = EndpointsOut))
)]
async fn list_endpoints(
    _reader: Authorized<role::Read>,
    State(state): State<AppState>,
) -> Result<Json<EndpointsOut>> {
    let endpoints = state.store.endpoints().await?;
    Ok(Json(EndpointsOut {
        endpoints: endpoints.into_iter().map(EndpointOut::from).collect(),
    }))
}

/// Enables an endpoint again (after `410 Gone`); its waiting deliveries resume.
#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/enable",
    tag = "deliveries",
    params(("id" = String, Path, description = "The endpoint id from the configuration")),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Enabled", body = EndpointOut),
        (status = 404, description = "No such endpoint"),
        (status = 409, description = "Not possible in the endpoint's current state"),
    )
)]
async fn enable_endpoint(
    auth: Authorized<role::Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EndpointOut>> {
    let endpoint = state
        .store
        .enable_endpoint(&id, auth.key_id(), now_ms(&state))
        .await?;
    Ok(Json(endpoint.into()))
}
