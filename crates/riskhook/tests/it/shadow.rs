//! Shadow policies against the real service: evaluated on every new session event and stored
//! in its transaction, changing nothing for the user; reported live like a backtest; counted in
//! the metrics; kept across a restart; refused at start and on reload when broken, without
//! touching intake; promoted only when they load, and audited.

use std::path::Path;
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_KEY, BROKEN_POLICY, READ_KEY, REVIEW_KEY, TestApp, keys_config, lenient_candidate, now,
    spawn_app_with_config,
};

const SANCTIONS: &str = "status-updated-declined-sanctions.json";

/// A service with shadow `id` at `dir/shadow.toml`.
async fn app_with_shadow(dir: &Path, id: &str) -> TestApp {
    let shadow = dir.join("shadow.toml");
    let config = keys_config(
        dir,
        &format!(
            "[[policy.shadow]]\nid = \"{id}\"\npath = {:?}\n",
            shadow.display().to_string()
        ),
    );
    spawn_app_with_config(config).await
}

async fn report(app: &TestApp, id: &str) -> Value {
    let reply = app
        .api(
            Method::GET,
            &format!("/v1/policy/shadow/{id}"),
            Some(READ_KEY),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json
}

#[tokio::test]
async fn shadow_assessments_are_stored_change_nothing_and_survive_a_restart() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join("shadow.toml"), lenient_candidate()).unwrap();
    let app = app_with_shadow(dir.path(), "lenient-a").await;
    let t = now() - 30;
    assert_eq!(
        app.deliver_as(SANCTIONS, "sess-sh-1", "u-sh-1", t).await,
        "freeze"
    );
    let user = app
        .api(Method::GET, "/v1/users/u-sh-1", Some(READ_KEY))
        .await;
    assert_eq!(
        user.json["status"], "frozen",
        "the shadow changes nothing: {user:?}"
    );

    let live = report(&app, "lenient-a").await;
    assert_eq!(live["shadow"], "lenient-a");
    assert_eq!(live["events"], 1);
    assert_eq!(live["decisions"]["freeze"]["review"]["count"], 1);
    assert_eq!(
        live["decisions"]["freeze"]["review"]["examples"],
        json!(["u-sh-1"])
    );
    assert_eq!(live["users"]["frozen"]["in_review"]["count"], 1);
    assert_eq!(
        live["rules"]["aml.sanctions_hit"],
        json!({"current": 1, "candidate": 1})
    );

    let metrics = app.get("/metrics").await;
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metrics.status, 200);
    assert!(
        text.contains(
            r#"riskhook_shadow_disagreements_total{shadow="lenient-a",from="freeze",to="review"} 1"#
        ),
        "{text}"
    );
    assert_eq!(
        app.api(Method::GET, "/v1/policy/shadow/nope", Some(READ_KEY))
            .await
            .status,
        404
    );

    // A restart on the same database and configuration: the stored shadow assessments stay.
    let config = keys_config(
        dir.path(),
        &format!(
            "[[policy.shadow]]\nid = \"lenient-a\"\npath = {:?}\n",
            dir.path().join("shadow.toml").display().to_string()
        ),
    );
    app.stop().await;
    let again = spawn_app_with_config(config).await;
    let after = report(&again, "lenient-a").await;
    assert_eq!(after["events"], 1);
    assert_eq!(after["decisions"], live["decisions"]);
    again.stop().await;
}

#[tokio::test]
async fn a_broken_shadow_is_refused_at_start_and_on_reload_and_never_affects_intake() {
    let dir = tempfile::tempdir().unwrap();
    let shadow = dir.path().join("shadow.toml");
    std::fs::write(&shadow, BROKEN_POLICY).unwrap();
    let config = keys_config(
        dir.path(),
        &format!(
            "[[policy.shadow]]\nid = \"broken-b\"\npath = {:?}\n",
            shadow.display().to_string()
        ),
    );
    let Err(refused) = riskhook::app::App::build(config).await else {
        panic!("a broken shadow must refuse the start");
    };
    let message = format!("{refused:#}");
    for needle in [
        "shadow policy `broken-b`",
        "first.bad",
        "second.bad",
        "line",
    ] {
        assert!(message.contains(needle), "{needle}: {message}");
    }

    std::fs::write(&shadow, lenient_candidate()).unwrap();
    let app = app_with_shadow(dir.path(), "broken-b").await;
    let before = app
        .api(Method::GET, "/v1/policy", Some(READ_KEY))
        .await
        .json["hash"]
        .clone();
    std::fs::write(&shadow, BROKEN_POLICY).unwrap();
    let reload = app
        .api(Method::POST, "/v1/policy/reload", Some(ADMIN_KEY))
        .await;
    assert_eq!(reload.status, 422, "{reload:?}");
    let detail = reload.json["detail"].as_str().unwrap();
    assert!(
        detail.contains("first.bad") && detail.contains("second.bad"),
        "{detail}"
    );
    let after = app
        .api(Method::GET, "/v1/policy", Some(READ_KEY))
        .await
        .json["hash"]
        .clone();
    assert_eq!(before, after, "the policy in force stays");
    // Intake goes on, and the shadow that loaded keeps being evaluated.
    assert_eq!(
        app.deliver_as(SANCTIONS, "sess-sh-b", "u-sh-b", now() - 5)
            .await,
        "freeze"
    );
    assert_eq!(report(&app, "broken-b").await["events"], 1);
    app.stop().await;
}

#[tokio::test]
async fn a_shadow_is_promoted_only_when_it_loads_and_the_promotion_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let shadow = dir.path().join("shadow.toml");
    std::fs::write(&shadow, lenient_candidate()).unwrap();
    let app = app_with_shadow(dir.path(), "lenient-c").await;
    let promote = "/v1/policy/shadow/lenient-c/promote";
    assert_eq!(
        app.api(Method::POST, promote, Some(REVIEW_KEY))
            .await
            .status,
        403
    );
    assert_eq!(
        app.api(
            Method::POST,
            "/v1/policy/shadow/nope/promote",
            Some(ADMIN_KEY)
        )
        .await
        .status,
        404
    );
    std::fs::write(&shadow, BROKEN_POLICY).unwrap();
    let refused = app.api(Method::POST, promote, Some(ADMIN_KEY)).await;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert_eq!(
        app.deliver_as(SANCTIONS, "sess-sh-c1", "u-sh-c1", now() - 5)
            .await,
        "freeze",
        "the policy in force stays"
    );

    std::fs::write(&shadow, lenient_candidate()).unwrap();
    let promoted = app.api(Method::POST, promote, Some(ADMIN_KEY)).await;
    assert_eq!(promoted.status, 200, "{promoted:?}");
    let policy = app.api(Method::GET, "/v1/policy", Some(READ_KEY)).await;
    assert_eq!(policy.json["hash"], promoted.json["hash"]);
    assert_eq!(
        app.deliver_as(SANCTIONS, "sess-sh-c2", "u-sh-c2", now() - 4)
            .await,
        "review",
        "decided by the promoted policy"
    );
    let audit = app
        .api(Method::GET, "/v1/audit?limit=500", Some(READ_KEY))
        .await;
    let activation = audit.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["action"] == "policy.activated")
        .unwrap()
        .clone();
    assert_eq!(activation["actor"], "admin");
    let after: Value = serde_json::from_str(activation["after"].as_str().unwrap()).unwrap();
    assert_eq!(after["hash"], promoted.json["hash"]);
    assert!(
        after["source"]
            .as_str()
            .unwrap()
            .contains("shadow `lenient-c`"),
        "{after}"
    );
    app.stop().await;
}
