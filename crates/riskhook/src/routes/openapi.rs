//! The OpenAPI 3.1 document of the `/v1` API, served without a key at `GET /openapi.json`, and
//! the schemas of the domain enums the DTOs carry.
//!
//! The document and the router come from the same registrations: every `/v1` handler carries a
//! `#[utoipa::path]` and is routed with `utoipa_axum::routes!`, which adds the route and the
//! operation together (see `routes::v1`). A handler cannot be routed without its operation
//! being documented, and `tests/it/openapi.rs` checks the other direction against the router
//! itself. What every operation would otherwise repeat is added here once, by [`finish`]: the
//! bearer scheme, the 401/403/503 every keyed route can answer, and the problem body of every
//! error response. Each operation states the role it needs as its security requirement's role
//! list (`{"bearer": ["review"]}`), which OpenAPI 3.1 allows for non-OAuth schemes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use riskhook_core::assessment::{Decision, UserStatus};
use riskhook_core::review::{ActionKind, ActionStatus, CaseStatus, Outcome};
use riskhook_didit::axum::Problem;
use riskhook_store::{DeliveryStatus, Role};
use serde_json::Value;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Components, Content, InfoBuilder, OpenApi, Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// The name of the security scheme every `/v1` operation names.
pub(crate) const BEARER: &str = "bearer";

const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document: the body of every error response.
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "documents the body that riskhook_didit::axum::Problem builds; never constructed"
)]
struct ProblemDoc {
    /// `urn:riskhook:problem:<code>`.
    #[schema(rename = "type")]
    problem_type: String,
    /// A short summary, the same for every occurrence of the problem type.
    title: String,
    /// The HTTP status, repeated.
    status: u16,
    /// What exactly was wrong with this request.
    detail: String,
    /// The stable reason code, e.g. `forbidden`, `conflict`, `invalid-request`.
    code: String,
}

/// Responses every keyed operation may give, whatever it does.
const COMMON_RESPONSES: [(&str, &str); 3] = [
    (
        "401",
        "No API key, or one that matches no configured or unrevoked key",
    ),
    ("403", "The key's role does not allow this operation"),
    (
        "503",
        "The database is unavailable; nothing was changed. Retry later",
    ),
];

/// Completes the document the routers collected: info, the security scheme, common responses
/// and problem bodies.
pub(crate) fn finish(mut doc: OpenApi) -> OpenApi {
    doc.info = InfoBuilder::new()
        .title("riskhook")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Review and administration API of riskhook: users and their risk assessments, \
             review cases, account actions with four-eyes approval, the audit log, outbound \
             deliveries and API keys. Every route takes `Authorization: Bearer <key>`; the \
             role each needs (read < review < admin) is listed in its security requirement. \
             Errors are `application/problem+json`.",
        ))
        .build();
    let components = doc.components.get_or_insert_with(Components::new);
    components
        .schemas
        .insert("Problem".to_owned(), ProblemDoc::schema());
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API key: configured in `[[api_keys]]` or created with `POST /v1/keys`",
                ))
                .build(),
        ),
    );
    doc.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
    for item in doc.paths.paths.values_mut() {
        for operation in operations_mut(item) {
            complete(operation);
        }
    }
    doc
}

fn complete(operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    for (code, description) in COMMON_RESPONSES {
        responses
            .entry(code.to_owned())
            .or_insert_with(|| RefOr::T(utoipa::openapi::Response::new(description)));
    }
    for (code, response) in responses.iter_mut() {
        let is_error = code.starts_with('4') || code.starts_with('5');
        if let (true, RefOr::T(response)) = (is_error, response)
            && response.content.is_empty()
        {
            response.content.insert(
                PROBLEM_JSON.to_owned(),
                RefOr::T(Content::new(Some(Ref::from_schema_name("Problem")))),
            );
        }
    }
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

/// The document as JSON, rendered once when the router is built.
pub(crate) fn render(doc: &OpenApi) -> Bytes {
    match serde_json::to_vec(doc) {
        Ok(json) => Bytes::from(json),
        Err(e) => {
            tracing::error!(error = %e, "cannot render the OpenAPI document");
            Bytes::new()
        }
    }
}

/// `GET /openapi.json`.
pub(crate) fn serve(json: Bytes) -> Response {
    if json.is_empty() {
        return Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "openapi-unavailable",
            "OpenAPI document unavailable",
            "the document could not be rendered; see the server log",
        )
        .into_response();
    }
    let mut response = json.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

// --- Schemas of the domain enums (defined in crates that know nothing of OpenAPI) ------------

fn string_enum(values: &[&'static str], nullable: bool) -> Object {
    let mut enumeration: Vec<Value> = values.iter().map(|v| Value::from(*v)).collect();
    let schema_type = if nullable {
        enumeration.push(Value::Null);
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::new(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .enum_values(Some(enumeration))
        .build()
}

const DECISIONS: [Decision; 3] = [Decision::Approve, Decision::Review, Decision::Freeze];
const USER_STATUSES: [UserStatus; 4] = [
    UserStatus::Active,
    UserStatus::InReview,
    UserStatus::Frozen,
    UserStatus::Declined,
];
const OUTCOMES: [Outcome; 4] = [
    Outcome::Approve,
    Outcome::Decline,
    Outcome::Freeze,
    Outcome::Unfreeze,
];

/// `approve`, `review` or `freeze`.
pub(crate) fn decision() -> Object {
    string_enum(&DECISIONS.map(Decision::as_str), false)
}

/// A decision, or null.
pub(crate) fn decision_or_null() -> Object {
    string_enum(&DECISIONS.map(Decision::as_str), true)
}

/// An account status.
pub(crate) fn user_status() -> Object {
    string_enum(&USER_STATUSES.map(UserStatus::as_str), false)
}

/// An account status, or null.
pub(crate) fn user_status_or_null() -> Object {
    string_enum(&USER_STATUSES.map(UserStatus::as_str), true)
}

/// Where a case stands.
pub(crate) fn case_status() -> Object {
    string_enum(
        &[
            CaseStatus::Open,
            CaseStatus::Claimed,
            CaseStatus::PendingApproval,
            CaseStatus::Resolved,
        ]
        .map(CaseStatus::as_str),
        false,
    )
}

/// A case outcome.
pub(crate) fn outcome() -> Object {
    string_enum(&OUTCOMES.map(Outcome::as_str), false)
}

/// A case outcome, or null.
pub(crate) fn outcome_or_null() -> Object {
    string_enum(&OUTCOMES.map(Outcome::as_str), true)
}

/// An account action.
pub(crate) fn action_kind() -> Object {
    string_enum(
        &[
            ActionKind::Freeze,
            ActionKind::Unfreeze,
            ActionKind::ResolveCase,
        ]
        .map(ActionKind::as_str),
        false,
    )
}

/// Where an account action stands.
pub(crate) fn action_status() -> Object {
    string_enum(
        &[
            ActionStatus::Pending,
            ActionStatus::Applied,
            ActionStatus::Rejected,
        ]
        .map(ActionStatus::as_str),
        false,
    )
}

/// Where a delivery stands.
pub(crate) fn delivery_status() -> Object {
    string_enum(
        &[
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .map(DeliveryStatus::as_str),
        false,
    )
}

/// An API key's role.
pub(crate) fn role() -> Object {
    string_enum(
        &[Role::Read, Role::Review, Role::Admin].map(Role::as_str),
        false,
    )
}
