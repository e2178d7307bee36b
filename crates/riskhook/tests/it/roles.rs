//! Keys and roles on the `/v1` API: each role is refused what it may not do, a missing or
//! revoked key is 401, a key created through the API works with its role, and every operation
//! of the OpenAPI document admits exactly the roles its security requirement names.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, READ_KEY, REVIEW_KEY, app_router, oneshot, spawn_app_with_keys};

#[tokio::test]
async fn each_role_is_refused_what_it_may_not_do() {
    let app = spawn_app_with_keys(None).await;
    let reason = json!({ "reason": "r" });
    let review_only: [(Method, &str, Value); 8] = [
        (Method::POST, "/v1/cases/case_x/claim", json!({})),
        (
            Method::POST,
            "/v1/cases/case_x/resolve",
            json!({ "outcome": "approve", "reason": "r" }),
        ),
        (Method::POST, "/v1/users/u/freeze", reason.clone()),
        (Method::POST, "/v1/users/u/unfreeze", reason.clone()),
        (Method::POST, "/v1/actions/act_x/approve", json!({})),
        (Method::POST, "/v1/actions/act_x/reject", json!({})),
        (
            Method::POST,
            "/v1/keys",
            json!({ "name": "n", "role": "read" }),
        ),
        (Method::GET, "/v1/keys", json!({})),
    ];
    for (method, path, body) in &review_only {
        let reply = app
            .api_json(method.clone(), path, Some(READ_KEY), body)
            .await;
        assert_eq!(reply.status, 403, "read {method} {path}: {reply:?}");
        assert_eq!(reply.json["code"], "forbidden");
        assert_eq!(
            reply.content_type.as_deref(),
            Some("application/problem+json")
        );
    }
    let admin_only: [(Method, &str, Value); 6] = [
        (
            Method::POST,
            "/v1/keys",
            json!({ "name": "n", "role": "read" }),
        ),
        (Method::GET, "/v1/keys", json!({})),
        (Method::DELETE, "/v1/keys/key_x", json!({})),
        (Method::POST, "/v1/deliveries/dlv_x/retry", json!({})),
        (Method::POST, "/v1/endpoints/e/enable", json!({})),
        (Method::POST, "/v1/policy/reload", json!({})),
    ];
    for (method, path, body) in &admin_only {
        let reply = app
            .api_json(method.clone(), path, Some(REVIEW_KEY), body)
            .await;
        assert_eq!(reply.status, 403, "review {method} {path}: {reply:?}");
        assert_eq!(reply.json["code"], "forbidden");
    }
    // Reading is open to every role.
    for key in [READ_KEY, REVIEW_KEY, ADMIN_KEY] {
        for path in [
            "/v1/cases",
            "/v1/actions",
            "/v1/audit",
            "/v1/deliveries",
            "/v1/endpoints",
        ] {
            let reply = app.api(Method::GET, path, Some(key)).await;
            assert_eq!(reply.status, 200, "{path}: {reply:?}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn without_a_valid_key_every_route_is_401() {
    let app = spawn_app_with_keys(None).await;
    for (method, path) in [
        (Method::GET, "/v1/cases"),
        (Method::GET, "/v1/cases/case_x"),
        (Method::POST, "/v1/cases/case_x/claim"),
        (Method::POST, "/v1/users/u/freeze"),
        (Method::GET, "/v1/audit"),
        (Method::POST, "/v1/keys"),
        (Method::GET, "/v1/deliveries"),
    ] {
        for key in [None, Some("rk_wrong"), Some("rhk_0000")] {
            let reply = app.api(method.clone(), path, key).await;
            assert_eq!(reply.status, 401, "{method} {path} {key:?}: {reply:?}");
            assert_eq!(reply.json["code"], "unauthorized");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_key_created_through_the_api_works_with_its_role_until_revoked() {
    let app = spawn_app_with_keys(None).await;
    let created = app
        .api_json(
            Method::POST,
            "/v1/keys",
            Some(ADMIN_KEY),
            &json!({ "name": "  night shift  ", "role": "review" }),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let secret = created.json["secret"].as_str().unwrap().to_owned();
    let id = created.json["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("rhk_"), "{created:?}");
    assert_eq!(created.json["name"], "night shift");
    assert_eq!(created.json["role"], "review");
    assert_eq!(created.json["created_by"], "admin");

    // It authenticates, with its role and no more.
    let cases = app.api(Method::GET, "/v1/cases", Some(&secret)).await;
    assert_eq!(cases.status, 200, "{cases:?}");
    let freeze = app
        .api_json(
            Method::POST,
            "/v1/users/nobody/freeze",
            Some(&secret),
            &json!({ "reason": "r" }),
        )
        .await;
    assert_eq!(
        freeze.status, 404,
        "review may act (no such user): {freeze:?}"
    );
    let keys = app.api(Method::GET, "/v1/keys", Some(&secret)).await;
    assert_eq!(keys.status, 403, "{keys:?}");

    // Listed without its secret or hash.
    let keys = app.api(Method::GET, "/v1/keys", Some(ADMIN_KEY)).await;
    assert_eq!(keys.status, 200, "{keys:?}");
    let listed = keys.json["keys"].as_array().unwrap();
    assert!(listed.iter().any(|k| k["id"] == id.as_str()), "{keys:?}");
    let text = keys.json.to_string();
    let hash = riskhook::keys::secret_hash(&secret);
    assert!(!text.contains(&secret) && !text.contains(&hash), "{text}");
    assert!(
        listed
            .iter()
            .all(|k| k.get("secret").is_none() && k.get("hash").is_none())
    );

    let blank = app
        .api_json(
            Method::POST,
            "/v1/keys",
            Some(ADMIN_KEY),
            &json!({ "name": " ", "role": "read" }),
        )
        .await;
    assert_eq!(blank.status, 422, "{blank:?}");
    let unknown_role = app
        .api_json(
            Method::POST,
            "/v1/keys",
            Some(ADMIN_KEY),
            &json!({ "name": "x", "role": "root" }),
        )
        .await;
    assert_eq!(unknown_role.status, 422, "{unknown_role:?}");

    let revoked = app
        .api(Method::DELETE, &format!("/v1/keys/{id}"), Some(ADMIN_KEY))
        .await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    assert!(revoked.json["revoked_at"].is_i64(), "{revoked:?}");
    let refused = app.api(Method::GET, "/v1/cases", Some(&secret)).await;
    assert_eq!(
        refused.status, 401,
        "a revoked key no longer works: {refused:?}"
    );
    app.stop().await;
}

/// The role an operation of the served document needs, from its security requirement.
fn documented_role(operation: &Value) -> &str {
    let requirements = operation["security"].as_array().unwrap();
    assert_eq!(requirements.len(), 1, "{operation}");
    let roles = requirements[0]["bearer"].as_array().unwrap();
    assert_eq!(roles.len(), 1, "{operation}");
    roles[0].as_str().unwrap()
}

#[tokio::test]
async fn every_documented_operation_admits_exactly_the_roles_it_names() {
    let (router, _dir) = app_router().await;
    let (_, _, doc) = oneshot(&router, "GET", "/openapi.json", None).await;
    let keys = [
        ("read", READ_KEY),
        ("review", REVIEW_KEY),
        ("admin", ADMIN_KEY),
    ];
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = crate::openapi::concrete(path);
        for (method, operation) in item.as_object().unwrap() {
            let needed = documented_role(operation);
            let rank = keys.iter().position(|(r, _)| *r == needed).unwrap();
            for (i, (role, key)) in keys.iter().enumerate() {
                let (status, _, body) =
                    oneshot(&router, &method.to_uppercase(), &concrete, Some(key)).await;
                if i < rank {
                    assert_eq!(status, 403, "{role} {method} {path}: {body}");
                    assert_eq!(body["code"], "forbidden");
                } else {
                    assert!(
                        status != 401 && status != 403 && status != 405,
                        "{role} {method} {path}: {status} {body}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 24, "only {checked} operations documented");
}
