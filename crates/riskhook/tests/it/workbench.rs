//! The review workbench through the router (`oneshot`, no server): sign-in and sessions, the
//! HTML of each page, and every refusal (no session, wrong role, bad CSRF token, an ended or
//! revoked session), with the data put in by signed deliveries through the same router and a
//! clock the test moves.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use riskhook::config::Config;
use riskhook::state::AppState;
use riskhook_didit::signature::SignedHeaders;
use tower::ServiceExt;

use crate::helpers::{ADMIN_KEY, READ_KEY, REVIEW_KEY, fixture, key, keys_config, now};

const SANCTIONS: &str = "status-updated-declined-sanctions.json";

/// A router over a fresh database with one key per role, and the clock it reads.
struct Workbench {
    router: Router,
    clock: Arc<AtomicI64>,
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn workbench(extra_toml: &str) -> Workbench {
    let dir = tempfile::tempdir().unwrap();
    let config: Config = keys_config(dir.path(), extra_toml);
    let store = riskhook::store::open(&config.database_url).await.unwrap();
    let policy = riskhook::policy::PolicyHandle::load(config.policy_path.as_deref()).unwrap();
    let clock = Arc::new(AtomicI64::new(now()));
    let read = clock.clone();
    let state = AppState {
        store,
        config: Arc::new(config),
        policy: Arc::new(policy),
        clock: Arc::new(move || read.load(Ordering::SeqCst)),
        outbox: Arc::default(),
    };
    Workbench {
        router: riskhook::routes::router(state.clone()),
        clock,
        state,
        _dir: dir,
    }
}

/// An answer, read whole.
#[derive(Debug)]
struct Page {
    status: u16,
    headers: axum::http::HeaderMap,
    html: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map_or("", |v| v.to_str().unwrap())
    }

    /// The value of the first `name="csrf"` input.
    fn csrf(&self) -> String {
        let at = self
            .html
            .find(r#"name="csrf" value=""#)
            .unwrap_or_else(|| panic!("no csrf field in {}", self.html));
        let rest = &self.html[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

/// A browser: the router plus a cookie jar.
struct Browser<'a> {
    app: &'a Workbench,
    cookies: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a Workbench) -> Self {
        Browser {
            app,
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut request = Request::builder().method(method).uri(path);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header(header::COOKIE, jar.join("; "));
        }
        let body = match form {
            Some(fields) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(
                    fields
                        .iter()
                        .map(|(k, v)| format!("{k}={}", urlencode(v)))
                        .collect::<Vec<_>>()
                        .join("&"),
                )
            }
            None => Body::empty(),
        };
        let response = self
            .app
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for cookie in headers.get_all(header::SET_COOKIE) {
            let text = cookie.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Page {
            status,
            headers,
            html: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send("POST", path, Some(form)).await
    }

    /// Posts a form, follows its redirect and returns the page it lands on.
    async fn submit(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let answer = self.post(path, form).await;
        assert_eq!(answer.status, 303, "{path}: {answer:?}");
        let to = answer.location().to_owned();
        self.get(&to).await
    }

    async fn sign_in(&mut self, api_key: &str) -> Page {
        let form = self.get("/ui/sign-in").await;
        assert_eq!(form.status, 200, "{form:?}");
        let csrf = form.csrf();
        self.post(
            "/ui/sign-in",
            &[("api_key", api_key), ("csrf", &csrf), ("next", "")],
        )
        .await
    }

    /// Signs in and returns the session's CSRF token (read off the queue page).
    async fn signed_in(app: &'a Workbench, api_key: &str) -> (Self, String) {
        let mut browser = Browser::new(app);
        let answer = browser.sign_in(api_key).await;
        assert_eq!(answer.status, 303, "{answer:?}");
        assert_eq!(answer.location(), "/ui/queue");
        let queue = browser.get("/ui/queue").await;
        assert_eq!(queue.status, 200, "{queue:?}");
        let csrf = queue.csrf();
        (browser, csrf)
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Delivers the sanctions fixture for `user` through the router: frozen, a case opened.
async fn sanctioned(app: &Workbench, user: &str) -> String {
    let t = app.clock.load(Ordering::SeqCst) - 5;
    let mut v: serde_json::Value = serde_json::from_slice(&fixture(SANCTIONS)).unwrap();
    let session = user.replace(['<', '>', '"', '&', ' '], "-");
    v["session_id"] = session.clone().into();
    v["vendor_data"] = user.into();
    v["event_id"] = uuid::Uuid::new_v4().to_string().into();
    v["timestamp"] = t.into();
    if let Some(decision) = v.get_mut("decision").and_then(|d| d.as_object_mut()) {
        decision.insert("vendor_data".to_owned(), user.into());
        decision.insert("session_id".to_owned(), session.into());
    }
    let body = serde_json::to_vec(&v).unwrap();
    let mut request = Request::builder()
        .method("POST")
        .uri("/webhooks/didit")
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in SignedHeaders::sign(&key(), &body, t).pairs() {
        request = request.header(name, value);
    }
    let response = app
        .router
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cases = app
        .state
        .store
        .cases(&riskhook_store::CaseFilter {
            user_id: Some(user.to_owned()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    cases[0].id.clone()
}

#[tokio::test]
async fn without_a_session_pages_send_to_sign_in_and_forms_are_refused() {
    let app = workbench("").await;
    let case = sanctioned(&app, "u-anon").await;
    let mut browser = Browser::new(&app);

    let root = browser.get("/ui").await;
    assert_eq!((root.status, root.location()), (303, "/ui/queue"));
    let queue = browser.get("/ui/queue?status=open").await;
    assert_eq!(queue.status, 303);
    assert_eq!(
        queue.location(),
        "/ui/sign-in?next=/ui/queue%3Fstatus%3Dopen"
    );

    let claim = browser
        .post(&format!("/ui/cases/{case}/claim"), &[("csrf", "x")])
        .await;
    assert_eq!(claim.status, 401, "{claim:?}");
    assert!(claim.html.contains("not signed in"), "{}", claim.html);
    // A made-up session cookie is no session either.
    browser
        .cookies
        .insert("riskhook_session".to_owned(), "ab".repeat(32));
    assert_eq!(browser.get("/ui/queue").await.status, 303);
    let stored = app.state.store.case(&case).await.unwrap().unwrap();
    assert_eq!(stored.assignee, None, "nothing was claimed");
}

#[tokio::test]
async fn sign_in_checks_the_key_and_the_forms_own_token() {
    let app = workbench("").await;
    let mut browser = Browser::new(&app);
    let form = browser.get("/ui/sign-in").await;
    assert_eq!(form.status, 200);
    assert!(
        form.html
            .contains(r#"<form id="sign-in" method="post" action="/ui/sign-in">"#),
        "{}",
        form.html
    );
    let csrf = form.csrf();

    let wrong = browser
        .post("/ui/sign-in", &[("api_key", "rk_nope"), ("csrf", &csrf)])
        .await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.html.contains("That key is not valid"),
        "{}",
        wrong.html
    );
    assert!(!browser.cookies.contains_key("riskhook_session"));

    // The sign-in form's token must match its cookie: a cross-site form cannot sign a
    // victim into the attacker's account.
    let csrf = browser.get("/ui/sign-in").await.csrf();
    let forged = browser
        .post(
            "/ui/sign-in",
            &[("api_key", REVIEW_KEY), ("csrf", "0".repeat(64).as_str())],
        )
        .await;
    assert_eq!(forged.status, 403, "{forged:?}");
    assert!(!browser.cookies.contains_key("riskhook_session"));

    let ok = browser
        .post(
            "/ui/sign-in",
            &[
                ("api_key", REVIEW_KEY),
                ("csrf", &csrf),
                ("next", "/ui/policy"),
            ],
        )
        .await;
    assert_eq!((ok.status, ok.location()), (303, "/ui/policy"));
    let cookie = ok
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("riskhook_session="))
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP by default: {cookie}"
    );
    // The database has the token's hash, never the token.
    let token = &browser.cookies["riskhook_session"];
    assert!(app.state.store.ui_session(token).await.unwrap().is_none());

    // An open redirect is not offered.
    let mut other = Browser::new(&app);
    let csrf = other.get("/ui/sign-in").await.csrf();
    let away = other
        .post(
            "/ui/sign-in",
            &[
                ("api_key", REVIEW_KEY),
                ("csrf", &csrf),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(away.location(), "/ui/queue");
}

#[tokio::test]
async fn behind_tls_the_cookie_is_secure() {
    let app = workbench("[ui]\nsecure_cookie = \"always\"\n").await;
    let mut browser = Browser::new(&app);
    let answer = browser.sign_in(READ_KEY).await;
    let cookies: Vec<String> = answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("riskhook_session=") && c.ends_with("; Secure")),
        "{cookies:?}"
    );
}

#[tokio::test]
async fn the_queue_lists_cases_with_strict_headers_and_escaped_text() {
    let app = workbench("").await;
    let case = sanctioned(&app, "u-<b>bold</b>").await;
    let (mut browser, _) = Browser::signed_in(&app, READ_KEY).await;
    let queue = browser.get("/ui/queue").await;
    assert_eq!(queue.status, 200);
    assert_eq!(
        queue.headers[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let csp = queue.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "no script may run: {csp}");
    assert_eq!(queue.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(queue.headers["x-frame-options"], "DENY");
    assert!(!queue.html.contains("<script"), "no scripts on the page");
    assert!(queue.html.contains(&format!(r#"data-case-id="{case}""#)));
    assert!(
        queue.html.contains("u-&#60;b&#62;bold&#60;/b&#62;")
            || queue.html.contains("u-&lt;b&gt;bold&lt;/b&gt;"),
        "escaped: {}",
        queue.html
    );
    assert!(
        !queue.html.contains("<b>bold</b>"),
        "user data is never markup"
    );
    assert!(
        queue.html.contains(r#"<p id="queue-count">1 case,"#),
        "{}",
        queue.html
    );
    assert!(queue.html.contains("freeze"), "decision shown");

    // Filters: nothing is claimed, nothing is older than a day, freeze finds it.
    for (query, expected) in [
        ("status=claimed", 0),
        ("older_than=1d", 0),
        ("decision=freeze", 1),
        ("decision=review", 0),
        ("mine=1", 0),
        ("status=all", 1),
    ] {
        let page = browser.get(&format!("/ui/queue?{query}")).await;
        assert_eq!(page.status, 200, "{query}");
        let rows = page.html.matches("data-case-id=").count();
        assert_eq!(rows, expected, "{query}: {}", page.html);
    }
    let bad = browser.get("/ui/queue?older_than=soon").await;
    assert_eq!(bad.status, 200);
    assert!(
        bad.html.contains("Filter ignored: older than `soon`"),
        "{}",
        bad.html
    );
    // A reader sees no command forms on the case page.
    let page = browser.get(&format!("/ui/cases/{case}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.html.contains(r#"<span id="user-status""#),
        "{}",
        page.html
    );
    assert!(!page.html.contains(r#"id="claim""#) && !page.html.contains(r#"id="resolve""#));
}

#[tokio::test]
async fn the_case_page_explains_every_rule_that_fired() {
    let app = workbench("").await;
    let case = sanctioned(&app, "u-explained").await;
    let (mut browser, _) = Browser::signed_in(&app, REVIEW_KEY).await;
    let page = browser.get(&format!("/ui/cases/{case}")).await;
    assert_eq!(page.status, 200);
    let html = &page.html;
    assert!(html.contains(">frozen</span>"), "{html}");
    assert!(
        html.contains(r#"data-rule-id="aml.sanctions_hit""#),
        "{html}"
    );
    assert!(
        html.contains("<code>aml.sanctions_hits</code> = 1"),
        "the value the rule read: {html}"
    );
    for form in ["claim", "resolve", "unfreeze"] {
        assert!(
            html.contains(&format!(r#"<form id="{form}""#)),
            "{form}: {html}"
        );
    }
    assert!(!html.contains(r#"<form id="freeze""#), "already frozen");
    assert!(html.contains(r#"id="timeline""#));
    // Whatever the policy could not evaluate is said in words, not CEL.
    assert!(!html.contains("No such key"), "{html}");
    let missing = browser.get("/ui/cases/case_missing").await;
    assert_eq!(missing.status, 404);
    assert!(missing.html.contains("No case case_missing."));
}

#[tokio::test]
async fn commands_need_the_sessions_token_and_the_right_role() {
    let app = workbench("").await;
    let case = sanctioned(&app, "u-guarded").await;
    let claim = format!("/ui/cases/{case}/claim");

    let (mut reader, reader_csrf) = Browser::signed_in(&app, READ_KEY).await;
    let refused = reader.post(&claim, &[("csrf", &reader_csrf)]).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(
        refused
            .html
            .contains("read role; this needs the review role"),
        "{}",
        refused.html
    );

    let (mut reviewer, csrf) = Browser::signed_in(&app, REVIEW_KEY).await;
    for token in ["", "not-the-token", reader_csrf.as_str()] {
        let forged = reviewer.post(&claim, &[("csrf", token)]).await;
        assert_eq!(forged.status, 403, "{token}: {forged:?}");
        assert!(forged.html.contains("security token does not match"));
    }
    let missing = reviewer.post(&claim, &[]).await;
    assert!(missing.status >= 400, "{missing:?}");
    let stored = app.state.store.case(&case).await.unwrap().unwrap();
    assert_eq!(stored.assignee, None, "no refused form changed anything");

    let claimed = reviewer.submit(&claim, &[("csrf", &csrf)]).await;
    assert!(
        claimed
            .html
            .contains(r#"<div id="flash" class="flash flash-ok" role="status">Case claimed"#),
        "{}",
        claimed.html
    );
    // The message is shown once.
    let again = reviewer.get(&format!("/ui/cases/{case}")).await;
    assert!(!again.html.contains(r#"id="flash""#));

    // Another person's claim is a conflict, said in words.
    let (mut admin, admin_csrf) = Browser::signed_in(&app, ADMIN_KEY).await;
    let conflict = admin.submit(&claim, &[("csrf", &admin_csrf)]).await;
    assert!(conflict.html.contains("flash-error"), "{}", conflict.html);
    assert!(conflict.html.contains("Not done:"), "{}", conflict.html);

    // A resolution needs an outcome and a reason.
    let resolve = format!("/ui/cases/{case}/resolve");
    let blank = reviewer
        .submit(
            &resolve,
            &[("csrf", &csrf), ("outcome", "decline"), ("reason", "  ")],
        )
        .await;
    assert!(
        blank.html.contains("a reason is required"),
        "{}",
        blank.html
    );
    let declined = reviewer
        .submit(
            &resolve,
            &[
                ("csrf", &csrf),
                ("outcome", "decline"),
                ("reason", "sanctioned <person>"),
            ],
        )
        .await;
    assert!(
        declined
            .html
            .contains("Case resolved: decline. The user is now declined."),
        "{}",
        declined.html
    );
    let audit = reviewer.get("/ui/audit").await;
    assert!(
        audit.html.contains("sanctioned &#60;person&#62;")
            || audit.html.contains("sanctioned &lt;person&gt;"),
        "{}",
        audit.html
    );
    assert!(audit.html.contains("audit chain intact"), "{}", audit.html);
}

#[tokio::test]
async fn four_eyes_in_the_workbench_needs_a_second_person() {
    let app = workbench("[review]\nfour_eyes = true\n").await;
    let case = sanctioned(&app, "u-four-eyes").await;
    let (mut reviewer, csrf) = Browser::signed_in(&app, REVIEW_KEY).await;
    let waiting = reviewer
        .submit(
            &format!("/ui/cases/{case}/resolve"),
            &[
                ("csrf", &csrf),
                ("outcome", "approve"),
                ("reason", "false positive"),
            ],
        )
        .await;
    assert!(waiting.html.contains("flash-wait"), "{}", waiting.html);
    assert!(
        waiting.html.contains("Waiting for a second person"),
        "{}",
        waiting.html
    );
    assert!(waiting.html.contains(">frozen</span>"), "still frozen");

    let approvals = reviewer.get("/ui/approvals").await;
    let action = app
        .state
        .store
        .actions(Some(riskhook_core::review::ActionStatus::Pending), 10)
        .await
        .unwrap()
        .remove(0);
    assert!(
        approvals
            .html
            .contains(&format!(r#"data-action-id="{}""#, action.id))
    );
    assert!(
        approvals.html.contains("another person must decide"),
        "the requester is offered no button"
    );
    // Posting the form anyway is refused by the server, in words.
    let own = reviewer
        .submit(
            &format!("/ui/actions/{}/approve", action.id),
            &[("csrf", &csrf)],
        )
        .await;
    assert!(own.html.contains("four eyes"), "{}", own.html);

    let (mut admin, admin_csrf) = Browser::signed_in(&app, ADMIN_KEY).await;
    let approved = admin
        .submit(
            &format!("/ui/actions/{}/approve", action.id),
            &[("csrf", &admin_csrf), ("reason", "")],
        )
        .await;
    assert!(
        approved.html.contains("Action approved and applied"),
        "{}",
        approved.html
    );
    let user = admin.get("/ui/users/u-four-eyes").await;
    assert!(
        user.html
            .contains(r#"<span id="user-status" class="status status-active">active</span>"#),
        "{}",
        user.html
    );
}

#[tokio::test]
async fn sessions_end_by_signing_out_idling_or_revoking_the_key() {
    let app = workbench("[ui]\nsession_idle = \"10m\"\n").await;
    let (mut browser, csrf) = Browser::signed_in(&app, READ_KEY).await;
    let stolen = browser.cookies.clone();
    let out = browser.post("/ui/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.location()), (303, "/ui/sign-in"));
    assert!(!browser.cookies.contains_key("riskhook_session"));
    // The old cookie is worth nothing: the session is gone from the database.
    let mut thief = Browser::new(&app);
    thief.cookies = stolen;
    assert_eq!(thief.get("/ui/queue").await.status, 303);

    // Idle: fine after 9 minutes, over after 10 more.
    let (mut idle, _) = Browser::signed_in(&app, READ_KEY).await;
    app.clock.fetch_add(9 * 60, Ordering::SeqCst);
    assert_eq!(idle.get("/ui/policy").await.status, 200);
    app.clock.fetch_add(9 * 60, Ordering::SeqCst);
    assert_eq!(
        idle.get("/ui/policy").await.status,
        200,
        "each request renews it"
    );
    app.clock.fetch_add(11 * 60, Ordering::SeqCst);
    let ended = idle.get("/ui/policy").await;
    assert_eq!(
        (ended.status, ended.location()),
        (303, "/ui/sign-in?next=/ui/policy")
    );

    // A stored key, revoked: its sessions end with it.
    let made = riskhook::keys::generate("temp", "temp-person", riskhook_store::Role::Review);
    let secret = made.secret.clone();
    let stored = app
        .state
        .store
        .create_key(made.record, "cli", app.clock.load(Ordering::SeqCst))
        .await
        .unwrap();
    let (mut temp, _) = Browser::signed_in(&app, &secret).await;
    assert_eq!(temp.get("/ui/approvals").await.status, 200);
    app.state
        .store
        .revoke_key(&stored.id, "cli", app.clock.load(Ordering::SeqCst))
        .await
        .unwrap();
    assert_eq!(temp.get("/ui/approvals").await.status, 303);
}

#[tokio::test]
async fn every_page_renders_for_a_signed_in_admin() {
    let app = workbench("").await;
    sanctioned(&app, "u-pages").await;
    let (mut admin, _) = Browser::signed_in(&app, ADMIN_KEY).await;
    for (path, marker) in [
        ("/ui/queue", r#"id="queue""#),
        ("/ui/approvals", "Nothing is waiting for approval"),
        ("/ui/audit", r#"id="chain-status""#),
        ("/ui/deliveries", "<h1>Deliveries</h1>"),
        ("/ui/deliveries?status=all", "<h1>Deliveries</h1>"),
        ("/ui/policy", r#"data-rule-id="aml.sanctions_hit""#),
        ("/ui/users/u-pages", r#"id="user-status""#),
        ("/ui/static/workbench.css", ".flash"),
    ] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.html.contains(marker), "{path}: {}", page.html);
    }
    let find = admin.get("/ui/users?id=u-pages").await;
    assert_eq!((find.status, find.location()), (303, "/ui/users/u-pages"));
    assert_eq!(admin.get("/ui/users/nobody").await.status, 404);
}

#[tokio::test]
async fn the_workbench_can_be_turned_off() {
    let app = workbench("[ui]\nenabled = false\n").await;
    let mut browser = Browser::new(&app);
    for path in ["/ui", "/ui/sign-in", "/ui/queue"] {
        assert_eq!(browser.get(path).await.status, 404, "{path}");
    }
}

#[tokio::test]
async fn the_audit_page_checks_new_entries_and_the_whole_chain_on_request() {
    let app = workbench("").await;
    sanctioned(&app, "u-audit-1").await;
    let (mut reader, _) = Browser::signed_in(&app, READ_KEY).await;
    let first = reader.get("/ui/audit").await;
    assert!(first.html.contains("audit chain intact"), "{}", first.html);
    sanctioned(&app, "u-audit-2").await;
    let second = reader.get("/ui/audit").await;
    assert!(
        second.html.contains("audit chain intact"),
        "{}",
        second.html
    );
    assert!(
        second.html.contains("then the 3 entries appended since"),
        "{}",
        second.html
    );

    // An entry already checked is edited behind riskhook's back (the trigger dropped first).
    let path = app
        .state
        .config
        .database_url
        .expose()
        .strip_prefix("sqlite://")
        .unwrap()
        .to_owned();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update;
         UPDATE audit_log SET reason = 'edited' WHERE seq = 1;",
    )
    .unwrap();
    drop(conn);
    // A look at what is new does not see it; the whole chain, checked on request, does.
    let incremental = reader.get("/ui/audit").await;
    assert!(
        incremental.html.contains("audit chain intact"),
        "{}",
        incremental.html
    );
    let full = reader.get("/ui/audit?full=1").await;
    assert!(full.html.contains("audit chain BROKEN"), "{}", full.html);
    assert!(full.html.contains("entry 1"), "{}", full.html);
    assert!(full.html.contains("flash-error"), "{}", full.html);
    // And every look after that one starts from the first entry again.
    let again = reader.get("/ui/audit").await;
    assert!(again.html.contains("audit chain BROKEN"), "{}", again.html);
}

/// An attacker at the database cuts the checked tail off the chain: there is nothing new to
/// walk, and the incremental look still notices that the head is not the one it checked.
#[tokio::test]
async fn the_audit_page_notices_checked_entries_removed_from_the_end() {
    let app = workbench("").await;
    sanctioned(&app, "u-cut").await;
    let (mut reader, _) = Browser::signed_in(&app, READ_KEY).await;
    let before = reader.get("/ui/audit").await;
    assert!(
        before.html.contains("audit chain intact"),
        "{}",
        before.html
    );
    let head = app.state.store.audit_head().await.unwrap().unwrap().seq;
    let path = app
        .state
        .config
        .database_url
        .expose()
        .strip_prefix("sqlite://")
        .unwrap()
        .to_owned();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq >= {};",
        head - 1
    ))
    .unwrap();
    drop(conn);
    let after = reader.get("/ui/audit").await;
    assert!(after.html.contains("audit chain BROKEN"), "{}", after.html);
    assert!(
        after.html.contains(&format!(
            "checked up to entry {head} but the database now ends at entry {}",
            head - 2
        )),
        "{}",
        after.html
    );
}
