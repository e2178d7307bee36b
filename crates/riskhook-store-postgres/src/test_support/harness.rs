//! The test harness of the test binaries whose tests need a service (PostgreSQL here; NATS, a
//! browser or root in the service's `tests/services`): libtest's arguments, output and summary
//! (through libtest-mimic, `harness = false` in the binary's `[[test]]`), but each test is
//! marked *ignored* before anything runs when what it needs is absent, so that the runner's own
//! summary counts it (`test result: ok. 3 passed; 0 failed; 16 ignored`), and nextest shows it
//! as skipped. libtest itself cannot decide at run time that a test is ignored.
//!
//! The binary probes each service once, at start, and passes the answer (`None`: present, or
//! required by `RISKHOOK_REQUIRE_SERVICES=1`; `Some(why)`: absent) to every test needing it.
//! `cargo test -- --include-ignored` runs ignored tests anyway.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};

/// The tokio runtime a test runs on: what `#[tokio::test]` (current thread) or
/// `#[tokio::test(flavor = "multi_thread", worker_threads = N)]` would give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// `#[tokio::test]`.
    CurrentThread,
    /// `#[tokio::test(flavor = "multi_thread", worker_threads = N)]`.
    MultiThread(usize),
}

/// The tests of one binary, and why some of them are ignored.
#[derive(Default)]
pub struct Suite {
    trials: Vec<Trial>,
    /// Each reason for ignoring, with the number of tests it ignores.
    ignored: BTreeMap<String, usize>,
}

impl fmt::Debug for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suite")
            .field("tests", &self.trials.len())
            .field("ignored", &self.ignored)
            .finish()
    }
}

impl Suite {
    /// An empty suite.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the async test `name` (`module::function`, as libtest would name it), run on
    /// `runtime`; ignored when `absent` says why what it needs is missing (and what to do about
    /// it: the text is shown as it is).
    pub fn test<F, Fut>(
        &mut self,
        name: &str,
        runtime: Runtime,
        absent: Option<&str>,
        test: F,
    ) -> &mut Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        if let Some(why) = absent {
            *self.ignored.entry(why.to_owned()).or_default() += 1;
        }
        let trial = Trial::test(name, move || {
            let mut builder = match runtime {
                Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread(),
                Runtime::MultiThread(workers) => {
                    let mut builder = tokio::runtime::Builder::new_multi_thread();
                    builder.worker_threads(workers);
                    builder
                }
            };
            let runtime = builder
                .enable_all()
                .build()
                .map_err(|e| Failed::from(format!("cannot start a tokio runtime: {e}")))?;
            // A panic (a failed assertion) fails the test: the harness catches it.
            runtime.block_on(test());
            Ok(())
        })
        .with_ignored_flag(absent.is_some());
        self.trials.push(trial);
        self
    }

    /// Runs the suite as libtest would, with the process's arguments (filters, `--list`,
    /// `--ignored`, `--include-ignored`, `--test-threads`, `--exact`), after saying on stderr
    /// why tests are ignored; the exit code is libtest's (101 when a test failed).
    pub fn run(self) -> ExitCode {
        let args = Arguments::from_args();
        if !args.list && !args.include_ignored {
            for (why, count) in &self.ignored {
                let tests = if *count == 1 { "test" } else { "tests" };
                eprintln!("ignored ({count} {tests}): {why}");
            }
        }
        libtest_mimic::run(&args, self.trials).exit_code()
    }
}
