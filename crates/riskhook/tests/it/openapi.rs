//! The OpenAPI document against the router that serves it, both ways.
//!
//! - Documented → routed: every operation of the served `/openapi.json` is sent through the
//!   router (`oneshot`, no key) and must reach its handler: 401 from the key check, not the
//!   router's 404 or 405.
//! - Routed → documented: the router's `/v1` paths are read from the router itself (axum's
//!   `Debug` of a `Router` lists its paths; this does not look at the document), every method
//!   is probed on each (405 means not routed), and the set of routed (method, path) pairs must
//!   equal the documented set. A route added with a plain `.route()` fails here.
//!
//! Neither can pass on an empty set: both check that well-known routes are present.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{app_router, oneshot};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `path` with each `{param}` replaced by a sample value.
pub(crate) fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "probe-id"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The (method, path) pairs the served document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method.to_lowercase()).is_some() {
                pairs.insert((method.to_owned(), path.clone()));
            }
        }
    }
    pairs
}

/// Every path the router has, read from its `Debug` output (quoted strings that start with
/// `/`), independently of the document.
fn router_paths(router: &axum::Router) -> BTreeSet<String> {
    let text = format!("{router:?}");
    let mut paths = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("\"/") {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        paths.insert(after[..end].to_owned());
        rest = &after[end..];
    }
    paths
}

async fn served_doc(router: &axum::Router) -> Value {
    let (status, content_type, doc) = oneshot(router, "GET", "/openapi.json", None).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    doc
}

#[tokio::test]
async fn openapi_json_is_served_without_a_key_as_openapi_3_1() {
    let (router, _dir) = app_router().await;
    let doc = served_doc(&router).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "riskhook");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        serde_json::json!({
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: configured in `[[api_keys]]` or created with `POST /v1/keys`"
        })
    );
    // The served document is the library's.
    let library = serde_json::to_value(riskhook::routes::openapi_document()).unwrap();
    assert_eq!(doc, library);
}

#[tokio::test]
async fn every_operation_names_its_role_and_answers_problems() {
    let (router, _dir) = app_router().await;
    let doc = served_doc(&router).await;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    // Every schema reference resolves.
    let text = doc.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
    for (method, path) in documented(&doc) {
        let operation = &doc["paths"][&path][method.to_lowercase()];
        let security = &operation["security"][0]["bearer"];
        assert!(
            ["read", "review", "admin"].contains(&security[0].as_str().unwrap_or("")),
            "{method} {path}: {security}"
        );
        let summary = operation["summary"].as_str().unwrap_or_default();
        assert!(
            !summary.is_empty() && !summary.contains('\n'),
            "{method} {path}: the summary should be one line: {summary:?}"
        );
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|code| code.starts_with('2')),
            "{method} {path}: no success response"
        );
        for code in ["401", "403", "503"] {
            assert!(responses.contains_key(code), "{method} {path}: no {code}");
        }
        for (code, response) in responses {
            if code.starts_with('4') || code.starts_with('5') {
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {code}"
                );
            } else if code != "204" {
                assert!(
                    response["content"]["application/json"]["schema"].is_object(),
                    "{method} {path} {code}: no body schema"
                );
            }
        }
        if method == "POST" && operation.get("requestBody").is_some() {
            assert!(
                operation["requestBody"]["content"]["application/json"]["schema"].is_object(),
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let (router, _dir) = app_router().await;
    let doc = served_doc(&router).await;
    let documented = documented(&doc);
    for known in [
        ("GET", "/v1/cases"),
        ("POST", "/v1/cases/{id}/resolve"),
        ("POST", "/v1/actions/{id}/approve"),
        ("DELETE", "/v1/keys/{id}"),
        ("GET", "/v1/users/{id}"),
        ("POST", "/v1/policy/reload"),
    ] {
        assert!(
            documented.contains(&(known.0.to_owned(), known.1.to_owned())),
            "{known:?} not documented"
        );
    }
    for (method, path) in &documented {
        assert!(path.starts_with("/v1/"), "{path}: only /v1 is documented");
        let (status, content_type, body) = oneshot(&router, method, &concrete(path), None).await;
        assert_eq!(
            status, 401,
            "{method} {path} should reach its handler's key check: {body}"
        );
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    }
}

#[tokio::test]
async fn every_routed_v1_endpoint_is_documented() {
    let (router, _dir) = app_router().await;
    let paths = router_paths(&router);
    // The listing works: it sees routes the document does not describe.
    for other in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert!(paths.contains(other), "{other} not found in {paths:?}");
    }
    let mut routed = BTreeSet::new();
    for path in paths.iter().filter(|p| p.starts_with("/v1/")) {
        for method in METHODS {
            let (status, _, body) = oneshot(&router, method, &concrete(path), None).await;
            if status != 405 {
                assert_eq!(status, 401, "{method} {path} answers without a key: {body}");
                routed.insert((method.to_owned(), path.clone()));
            }
        }
    }
    assert!(routed.len() >= 24, "only {} /v1 routes found", routed.len());
    let documented = documented(&served_doc(&router).await);
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routed but not documented: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
}
