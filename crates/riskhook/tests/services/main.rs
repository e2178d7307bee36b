//! Whole-application tests that need something besides the Rust toolchain: PostgreSQL
//! (`RISKHOOK_TEST_POSTGRES_URL`, default 127.0.0.1:5432), NATS with JetStream
//! (`RISKHOOK_TEST_NATS_URL`, default 127.0.0.1:4222) or a `nats-server` binary to start, root
//! (a tmpfs, a private PostgreSQL cluster), or Chromium with chromedriver.
//!
//! Its own harness (`harness = false`; `riskhook_store_postgres::test_support::harness`, on
//! libtest-mimic): before running anything it looks for each of those once, and marks the tests
//! needing an absent one *ignored*, so the summary counts them (`test result: ok. 3 passed;
//! 0 failed; 12 ignored`) and a line on stderr says why. With `RISKHOOK_REQUIRE_SERVICES=1`
//! (PostgreSQL, NATS, root) or `RISKHOOK_REQUIRE_BROWSER=1` (the browser), as in CI, nothing is
//! ignored for that reason: the tests run, and fail when what they need is absent.
//!
//! The test code is what it was in the `it` binary (same modules, same names); it shares
//! `it`'s helpers.

#![allow(clippy::unwrap_used)]

use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use riskhook_store_postgres::test_support::harness::{Runtime, Suite};
use riskhook_store_postgres::test_support::{ADVICE, required, unavailable};

mod cli;
mod faults;
#[allow(dead_code)] // `it`'s helpers: this binary uses some of them.
#[path = "../it/helpers.rs"]
mod helpers;
mod instances;
mod nats;
mod postgres_text;
mod workbench_browser;

/// Adds each test as `module::function`, its name in libtest's style.
macro_rules! tests {
    ($suite:ident: $($($segment:ident)::+ on $runtime:expr, unless $absent:expr;)*) => {$(
        $suite.test(
            // `stringify!` may space and wrap a long path: the name has no whitespace.
            &stringify!($($segment)::+).split_whitespace().collect::<String>(),
            $runtime,
            $absent,
            $($segment)::+,
        );
    )*};
}

fn main() -> ExitCode {
    let postgres = unavailable();
    let postgres = postgres.as_deref();
    let nats = unless_required(nats_unreachable());
    let nats = nats.as_deref();
    let nats_server = unless_required(
        nats::nats_server_binary()
            .is_none()
            .then(|| format!("no nats-server binary to start (Debian's nats-server); {ADVICE}")),
    );
    let nats_server = nats_server.as_deref();
    let root = unless_required((!faults::is_root()).then(|| {
        format!(
            "not running as root (needed to mount a tmpfs and run a PostgreSQL cluster); {ADVICE}"
        )
    }));
    let root = root.as_deref();
    let browser = if std::env::var(workbench_browser::REQUIRE_VAR).as_deref() == Ok("1") {
        None
    } else {
        workbench_browser::browser_missing().map(|why| {
            format!(
                "{why}: install Debian's chromium and chromium-driver, or set {}=1 to make this a failure",
                workbench_browser::REQUIRE_VAR
            )
        })
    };
    let browser = browser.as_deref();
    let (current, multi) = (Runtime::CurrentThread, Runtime::MultiThread(2));

    let mut suite = Suite::new();
    tests!(suite:
        cli::migrate_creates_a_missing_postgres_database_and_names_a_refusing_server_at_once
            on current, unless postgres;
        faults::disk_full::a_full_disk_answers_503_keeps_the_database_sound_and_intake_recovers_when_space_returns
            on multi, unless root;
        faults::postgres_down::with_postgres_stopped_intake_answers_503_and_everything_resumes_when_it_returns
            on multi, unless root;
        faults::sigkill::every_acknowledged_event_survives_twenty_sigkills_under_load_on_sqlite
            on multi, unless None;
        faults::sigkill::every_acknowledged_event_survives_twenty_sigkills_under_load_on_postgres
            on multi, unless postgres;
        faults::sigkill::one_of_three_postgres_instances_killed_mid_load_loses_and_doubles_nothing
            on multi, unless postgres;
        instances::three_instances_on_one_database_end_like_one_instance_fed_one_by_one
            on current, unless postgres;
        postgres_text::control_characters_get_the_same_4xx_on_postgres_as_on_sqlite
            on current, unless postgres;
        nats::every_change_reaches_jetstream_once_in_order_per_user_on_its_users_subject
            on current, unless nats;
        nats::a_republished_message_is_stored_once_even_after_a_dead_dispatchers_lease
            on current, unless nats;
        nats::with_nats_unreachable_the_service_runs_and_notifications_wait
            on current, unless None;
        nats::readyz_says_nats_is_not_configured_without_a_nats_section
            on current, unless None;
        nats::notifications_waiting_for_a_nats_that_comes_up_later_arrive_in_order
            on current, unless nats_server;
        nats::a_user_and_password_in_the_url_or_a_token_from_the_environment_authenticate
            on current, unless nats_server;
        workbench_browser::browser_harness_opens_a_page
            on current, unless browser;
        workbench_browser::a_reviewer_and_an_admin_take_a_frozen_user_through_four_eyes_in_the_workbench
            on current, unless browser;
    );
    suite.run()
}

/// `why`, unless `RISKHOOK_REQUIRE_SERVICES=1`: then nothing is ignored for it, and the tests
/// fail when they find it missing.
fn unless_required(why: Option<String>) -> Option<String> {
    if required() { None } else { why }
}

/// Why the NATS test server cannot be reached, or `None`: one TCP connection to its host and
/// port, with a short timeout. The tests connect for real; this only decides whether they run.
fn nats_unreachable() -> Option<String> {
    let url = nats::nats_url();
    let authority = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let authority = authority.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:4222")
    };
    let shown = format!("NATS not reachable at {host_port}");
    let addresses = match host_port.to_socket_addrs() {
        Ok(addresses) => addresses.collect::<Vec<_>>(),
        Err(e) => return Some(format!("{shown} ({e}); {ADVICE}")),
    };
    let mut last = String::from("no address");
    for address in addresses {
        match TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
            Ok(_) => return None,
            Err(e) => last = e.to_string(),
        }
    }
    Some(format!("{shown} ({last}); {ADVICE}"))
}
