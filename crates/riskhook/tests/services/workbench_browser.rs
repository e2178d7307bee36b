//! The review workbench (`/ui`) in a real browser: headless Chromium driven through a
//! chromedriver child process (WebDriver, via fantoccini), against the service on a port-0
//! listener. One story walks the four-eyes path as two people would: a reviewer claims and
//! resolves a frozen user's case, an admin approves it in a second browser profile. A smaller
//! test proves the harness itself against a page that exists without the workbench.
//!
//! The story relies only on the workbench's HTML contract (ids, classes, form names and
//! `data-*` attributes, plus the few flash words it names), never on layout or other wording,
//! so the pages can be restyled without touching this file.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's `chromium` and
//! `chromium-driver`). Without them the harness (`main.rs`) marks both tests ignored, unless
//! `RISKHOOK_REQUIRE_BROWSER=1` (CI), which makes that a failure. With
//! `RISKHOOK_SCREENSHOT_DIR` set, the case page is saved there as `workbench-case.png` (the
//! README's screenshot).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, READ_KEY, REVIEW_KEY, now, spawn_app, spawn_app_with_four_eyes};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// Set to `1` to make a missing browser a failure rather than an ignored test.
pub(crate) const REQUIRE_VAR: &str = "RISKHOOK_REQUIRE_BROWSER";

/// What is missing of chromedriver and Chromium, or `None` when both are installed.
pub(crate) fn browser_missing() -> Option<String> {
    let missing: Vec<&str> = [CHROMEDRIVER, CHROMIUM]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    (!missing.is_empty()).then(|| format!("{} not found", missing.join(" and ")))
}
const SCREENSHOT_VAR: &str = "RISKHOOK_SCREENSHOT_DIR";

/// Chromium's flags. The background-networking ones matter here: without them Chromium keeps
/// dialling out (updates, sync, field trials, QUIC probes), and this machine's closed network
/// refuses those connections, which slows or breaks the session. The window size fixes the
/// layout, and so the screenshot.
const CHROMIUM_ARGS: [&str; 10] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
];

/// How long an explicit wait polls before it fails: generous for a shared two-core machine,
/// yet short enough that a missing element fails the test quickly.
const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);

/// The fixture whose sanctions hit freezes its user and opens a review case.
const SANCTIONS: &str = "status-updated-declined-sanctions.json";

/// Any button that submits its form: `<button>` submits unless told otherwise, so the contract's
/// "submit button" may carry no `type` at all (fantoccini's `Form::submit` would miss it).
const SUBMIT_BUTTON: &str = "button:not([type]), button[type=submit], input[type=submit]";

pub(crate) async fn browser_harness_opens_a_page() {
    let Some(driver) = Chromedriver::start_or_skip().await else {
        return;
    };
    let app = spawn_app().await;
    let browser = driver.browser("harness", &app.url("")).await;

    browser.open("/healthz").await;
    // Chromium shows a JSON answer as text inside a <pre>: the source holds it verbatim.
    browser
        .until(
            "the /healthz answer ({\"status\":\"ok\"}) in the page",
            async || {
                let source = browser.client.source().await.map_err(|e| e.to_string())?;
                if source.contains(r#""status":"ok""#) {
                    Ok(())
                } else {
                    Err("not in the page source yet".to_owned())
                }
            },
        )
        .await;

    browser.close().await;
    app.stop().await;
}

pub(crate) async fn a_reviewer_and_an_admin_take_a_frozen_user_through_four_eyes_in_the_workbench()
{
    let Some(driver) = Chromedriver::start_or_skip().await else {
        return;
    };
    let app = spawn_app_with_four_eyes().await;

    // 1. A sanctions hit freezes a user of this test's own and opens a case for them.
    let user = format!("browser-{}", uuid::Uuid::new_v4().simple());
    let decision = app
        .deliver_as(SANCTIONS, &format!("sess-{user}"), &user, now() - 20)
        .await;
    assert_eq!(decision, "freeze");
    let cases = app
        .api(
            Method::GET,
            &format!("/v1/cases?user_id={user}"),
            Some(READ_KEY),
        )
        .await;
    assert_eq!(cases.status, 200, "{cases:?}");
    assert_eq!(
        cases.json["cases"].as_array().map(Vec::len),
        Some(1),
        "one open case for {user}: {cases:?}"
    );

    // 2. The reviewer signs in (their own browser profile, so their own session cookie).
    let reviewer = driver.browser("reviewer", &app.url("")).await;
    reviewer.sign_in(REVIEW_KEY).await;

    // 3. From the queue to the user's case, which shows the user frozen.
    let row_link = format!(r#"table#queue tr[data-user-id="{user}"] a.case-link"#);
    reviewer
        .wait_for(&row_link, &format!("the queue's row for {user}"))
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking the case link of {user}: {e}"));
    reviewer
        .wait_for_text("#user-status", "the case page's user status", |t| {
            t == "frozen"
        })
        .await;
    let case_path = reviewer.path().await;
    assert!(case_path.starts_with("/ui/cases/case_"), "{case_path}");
    reviewer.screenshot_if_asked("workbench-case.png").await;

    // 4. Claim.
    reviewer.submit("form#claim").await;
    reviewer
        .wait_for_text("#flash", "a flash saying the case was claimed", |t| {
            t.to_lowercase().contains("claimed")
        })
        .await;

    // 5. Resolve as approve: with four eyes on, it waits for a second person, and the user
    // stays frozen meanwhile.
    reviewer
        .wait_for(
            "form#resolve select[name=outcome]",
            "the resolve form's outcome",
        )
        .await
        .select_by_value("approve")
        .await
        .unwrap_or_else(|e| panic!("choosing the outcome approve: {e}"));
    reviewer
        .wait_for(
            "form#resolve textarea[name=reason]",
            "the resolve form's reason",
        )
        .await
        .send_keys("Sanctions hit is a namesake: date of birth and nationality differ.")
        .await
        .unwrap_or_else(|e| panic!("typing the reason: {e}"));
    reviewer.submit("form#resolve").await;
    reviewer
        .wait_for_text(
            "#flash",
            "a flash saying the resolution waits for a second person",
            |t| t.to_lowercase().contains("second person"),
        )
        .await;
    reviewer
        .wait_for_text("#user-status", "the user still frozen", |t| t == "frozen")
        .await;

    // 6. The admin, a different person in a browser of their own, approves.
    let admin = driver.browser("admin", &app.url("")).await;
    admin.sign_in(ADMIN_KEY).await;
    admin.open("/ui/approvals").await;
    admin
        .wait_for(
            &format!(r#"table#approvals tr[data-user-id="{user}"]"#),
            &format!("the approvals row for {user}"),
        )
        .await;
    admin
        .submit(&format!(
            r#"table#approvals tr[data-user-id="{user}"] form.approve"#
        ))
        .await;
    admin
        .wait_for_text("#flash", "a flash saying the action was approved", |t| {
            t.to_lowercase().contains("approved")
        })
        .await;

    // 7. The approval carried out the resolution.
    admin.open(&format!("/ui/users/{user}")).await;
    admin
        .wait_for_text("#user-status", "the user page's status, now active", |t| {
            t == "active"
        })
        .await;

    // 8. Every step above was audited, and the chain still verifies.
    admin.open("/ui/audit").await;
    admin
        .wait_for_text("#chain-status", "the audit chain reported intact", |t| {
            t.to_lowercase().contains("intact")
        })
        .await;

    // 9. Signing out ends the reviewer's session: the queue asks for a key again.
    reviewer.submit("form#sign-out").await;
    reviewer
        .until(
            "a page without form#sign-out after signing out",
            async || match reviewer
                .client
                .find_all(Locator::Css("form#sign-out"))
                .await
            {
                Ok(found) if found.is_empty() => Ok(()),
                Ok(_) => Err("form#sign-out still there".to_owned()),
                Err(e) => Err(e.to_string()),
            },
        )
        .await;
    reviewer.open("/ui/queue").await;
    reviewer
        .expect_sign_in_page("/ui/queue after signing out")
        .await;

    reviewer.close().await;
    admin.close().await;
    app.stop().await;
}

/// A chromedriver child process on a port of its own. Dropping it kills its whole process
/// group, so the Chromium processes it started go too, even when a test panics before closing
/// its sessions.
#[derive(Debug)]
struct Chromedriver {
    child: Child,
    /// `http://127.0.0.1:PORT`, where it answers WebDriver.
    url: String,
}

impl Chromedriver {
    /// A running chromedriver, or `None` (with a visible "skipped" line) when chromedriver or
    /// Chromium is not installed. Panics instead when `RISKHOOK_REQUIRE_BROWSER=1`: in CI a
    /// missing browser must fail, not pass unseen.
    async fn start_or_skip() -> Option<Self> {
        let Some(why) = browser_missing() else {
            return Some(Self::start().await);
        };
        if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
            panic!(
                "{why}, and {REQUIRE_VAR}=1 requires a browser: apt-get install chromium chromium-driver"
            );
        }
        eprintln!(
            "skipped: no chromium/chromedriver ({why}); install Debian's chromium and chromium-driver, or set {REQUIRE_VAR}=1 to make this a failure"
        );
        None
    }

    async fn start() -> Self {
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            // Its banner and log would land in the test output unasked (a child writes to the
            // real stderr, which the test harness does not capture).
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // A group of its own, so that drop can end Chromium along with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
        let mut driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        driver.wait_until_ready().await;
        driver
    }

    /// Polls `/status` until chromedriver says it is ready for sessions.
    async fn wait_until_ready(&mut self) {
        let http = reqwest::Client::new();
        let status_url = format!("{}/status", self.url);
        let started = Instant::now();
        let mut last = String::from("no answer yet");
        while started.elapsed() < WAIT {
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("{CHROMEDRIVER} exited at start ({exit}), last: {last}");
            }
            match http.get(&status_url).send().await {
                Ok(reply) => {
                    let body = reply.text().await.unwrap_or_default();
                    let ready = serde_json::from_str::<Value>(&body)
                        .is_ok_and(|v| v["value"]["ready"] == Value::Bool(true));
                    if ready {
                        return;
                    }
                    last = body;
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("{CHROMEDRIVER} did not become ready at {status_url} within {WAIT:?}, last: {last}");
    }

    /// A new WebDriver session: headless Chromium with a fresh profile, so no two sessions
    /// share cookies. `base` is the service's URL, which page paths are joined to.
    async fn browser(&self, who: &'static str, base: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let Value::Object(capabilities) = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }) else {
            unreachable!("json! of an object literal is an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{who}: chromedriver at {} did not open a Chromium session: {e}",
                    self.url
                )
            });
        Browser {
            client,
            who,
            base: base.trim_end_matches('/').to_owned(),
            _profile: profile,
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The negative id names the process group that start() made (chromedriver's own
        // id), which holds the Chromium processes it launched: only what this test started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now. chromedriver binds it a moment later; another process
/// taking it in between would show as a failed start, not as a wrong answer.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One person's browser: a WebDriver session and its profile directory, with explicit waits
/// whose failures say what was expected and where the browser was.
#[derive(Debug)]
struct Browser {
    client: Client,
    /// Names the session in failure messages ("reviewer", "admin").
    who: &'static str,
    base: String,
    /// Chromium's `--user-data-dir`; removed when the browser is dropped.
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn open(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        if let Err(e) = self.client.goto(&url).await {
            self.fail(&format!("opening {url}: {e}")).await;
        }
    }

    /// Opens `/ui`, which must lead to the sign-in page, signs in with `key`, and expects the
    /// queue.
    async fn sign_in(&self, key: &str) {
        self.open("/ui").await;
        self.expect_sign_in_page("/ui without a session").await;
        self.wait_for("#api-key", "the API key field")
            .await
            .send_keys(key)
            .await
            .unwrap_or_else(|e| panic!("{}: typing the API key: {e}", self.who));
        self.submit("form#sign-in").await;
        self.until("the queue (/ui/queue) after signing in", async || {
            let path = self.client.current_url().await.map_err(|e| e.to_string())?;
            if path.path() != "/ui/queue" {
                return Err(format!("at {path}"));
            }
            self.client
                .find(Locator::Css("table#queue"))
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await;
    }

    /// Waits for the sign-in page, reached through `via`.
    async fn expect_sign_in_page(&self, via: &str) {
        self.until(
            &format!("the sign-in page (/ui/sign-in with form#sign-in) from {via}"),
            async || {
                let url = self.client.current_url().await.map_err(|e| e.to_string())?;
                if url.path() != "/ui/sign-in" {
                    return Err(format!("at {url}"));
                }
                self.client
                    .find(Locator::Css("form#sign-in"))
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        )
        .await;
    }

    /// The current URL's path.
    async fn path(&self) -> String {
        match self.client.current_url().await {
            Ok(url) => url.path().to_owned(),
            Err(e) => panic!("{}: no current URL: {e}", self.who),
        }
    }

    /// Clicks the submit button of the form `form_css` (as a person would, so the browser
    /// follows the POST's redirect).
    async fn submit(&self, form_css: &str) {
        let form = self
            .wait_for(form_css, &format!("the form {form_css}"))
            .await;
        let button = match form.find(Locator::Css(SUBMIT_BUTTON)).await {
            Ok(button) => button,
            Err(e) => {
                self.fail(&format!("a submit button in {form_css}: {e}"))
                    .await
            }
        };
        if let Err(e) = button.click().await {
            self.fail(&format!("clicking the submit button of {form_css}: {e}"))
                .await;
        }
    }

    /// Waits for an element matching `css`; `what` says what it is, for the failure message.
    async fn wait_for(&self, css: &str, what: &str) -> Element {
        self.until(&format!("{what} ({css})"), async || {
            self.client
                .find(Locator::Css(css))
                .await
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// Waits until the text of the element matching `css` (trimmed) satisfies `wanted`;
    /// returns that text. Polling the text, not just the element, also waits out the page
    /// before a navigation, which may hold an older `#flash`.
    async fn wait_for_text(&self, css: &str, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        self.until(&format!("{what} ({css})"), async || {
            let element = self
                .client
                .find(Locator::Css(css))
                .await
                .map_err(|e| e.to_string())?;
            let text = element.text().await.map_err(|e| e.to_string())?;
            let text = text.trim();
            if wanted(text) {
                Ok(text.to_owned())
            } else {
                Err(format!("its text is {text:?}"))
            }
        })
        .await
    }

    /// Polls `probe` until it succeeds or [`WAIT`] runs out; then fails naming `expected`,
    /// the probe's last complaint, the URL and the start of the page.
    async fn until<T>(&self, expected: &str, probe: impl AsyncFn() -> Result<T, String>) -> T {
        let started = Instant::now();
        loop {
            match probe().await {
                Ok(found) => return found,
                Err(why) if started.elapsed() >= WAIT => {
                    self.fail(&format!("expected {expected} within {WAIT:?}; last: {why}"))
                        .await
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Saves a PNG of the page as `$RISKHOOK_SCREENSHOT_DIR/name`, when that is set.
    async fn screenshot_if_asked(&self, name: &str) {
        let Some(dir) = std::env::var_os(SCREENSHOT_VAR) else {
            return;
        };
        let png = match self.client.screenshot().await {
            Ok(png) => png,
            Err(e) => self.fail(&format!("a screenshot: {e}")).await,
        };
        let path = Path::new(&dir).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("screenshot: {}", path.display());
    }

    /// Panics with `message`, the current URL and the start of the page source.
    async fn fail(&self, message: &str) -> ! {
        let url = match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(e) => format!("unknown ({e})"),
        };
        let source = match self.client.source().await {
            Ok(source) => source.chars().take(1500).collect(),
            Err(e) => format!("unavailable ({e})"),
        };
        panic!(
            "{who}: {message}\n  current URL: {url}\n  page source (start): {source}",
            who = self.who
        );
    }

    /// Ends the WebDriver session, which closes its Chromium.
    async fn close(self) {
        let who = self.who;
        self.client
            .close()
            .await
            .unwrap_or_else(|e| panic!("{who}: closing the session: {e}"));
    }
}
