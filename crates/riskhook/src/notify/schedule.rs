//! What an attempt's result means for its delivery: delivered, gone, or when to try again.
//!
//! Pure functions of the result, the attempt count, `now` and a random number, so the whole
//! retry schedule is unit-tested without a clock, a network or a database. The dispatcher
//! supplies `now` from its clock and the random number from its jitter source.

use std::time::{Duration, UNIX_EPOCH};

use riskhook_store::Attempt;

/// How often and how patiently a delivery is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before a delivery is `failed` (at least 1).
    pub max_attempts: u32,
    /// The backoff after the first failure; it doubles with every further failure.
    pub initial: Duration,
    /// The backoff never grows past this, and a `Retry-After` is honoured up to it.
    pub max: Duration,
}

/// What one attempt observed on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// The endpoint answered.
    Status {
        /// The HTTP status.
        status: u16,
        /// Its `Retry-After`, already turned into a wait.
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused or reset, timeout, DNS failure. The text names the
    /// failure, never the URL (it may carry a token).
    Failed {
        /// What went wrong.
        error: String,
    },
}

/// The outcome to record for an attempt that was attempt number `attempts_before + 1`.
///
/// 2xx is delivered; 410 disables the endpoint (the Standard Webhooks convention for "stop
/// sending"); anything else, 3xx included (redirects are not followed), is a failure, retried
/// after [`retry_delay`] unless it was the last allowed attempt. `random` is in `[0, 1)`.
pub fn decide(
    policy: &RetryPolicy,
    attempts_before: u32,
    observed: Observed,
    now_ms: i64,
    random: f64,
) -> Attempt {
    let (status, error, retry_after) = match observed {
        Observed::Status { status, .. } if (200..300).contains(&status) => {
            return Attempt::Delivered { status };
        }
        Observed::Status { status: 410, .. } => return Attempt::Gone,
        Observed::Status {
            status,
            retry_after,
        } => (Some(status), describe_status(status), retry_after),
        Observed::Failed { error } => (None, error, None),
    };
    let failures = attempts_before.saturating_add(1);
    if failures >= policy.max_attempts {
        return Attempt::Exhausted { status, error };
    }
    let delay = retry_delay(policy, failures, retry_after, random);
    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    Attempt::Retry {
        next_attempt_at: now_ms.saturating_add(delay_ms),
        status,
        error,
    }
}

/// The wait before the next attempt after `failures` failed ones (at least 1): the larger of
/// the backoff and the receiver's `Retry-After`, the latter capped at `policy.max` so that a
/// receiver cannot park a delivery for longer than the operator allows between attempts.
pub fn retry_delay(
    policy: &RetryPolicy,
    failures: u32,
    retry_after: Option<Duration>,
    random: f64,
) -> Duration {
    let backoff = backoff(policy, failures, random);
    match retry_after {
        Some(wait) => backoff.max(wait.min(policy.max)),
        None => backoff,
    }
}

/// Exponential backoff with "equal jitter": the ceiling `min(max, initial × 2^(failures−1))`,
/// then a random point in its upper half. Jitter spreads out the retries of many deliveries
/// that failed together (an endpoint outage) so they do not return as one burst; keeping the
/// lower half (unlike "full jitter") keeps the wait from collapsing to nothing.
pub fn backoff(policy: &RetryPolicy, failures: u32, random: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(63);
    let ceiling = policy
        .initial
        .checked_mul(1u32.checked_shl(doublings).unwrap_or(u32::MAX))
        .unwrap_or(Duration::MAX)
        .min(policy.max);
    let random = if random.is_finite() {
        random.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let half = ceiling / 2;
    half + (ceiling - half).mul_f64(random)
}

/// A `Retry-After` value as a wait from `now_ms`: delay-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`). A date in the past means "now". `None` when unreadable.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long numbers saturate; the caller caps the wait anyway.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = i64::try_from(at.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    let wait = u64::try_from(at_ms.saturating_sub(now_ms)).unwrap_or(0);
    Some(Duration::from_millis(wait))
}

fn describe_status(status: u16) -> String {
    if (300..400).contains(&status) {
        format!("HTTP {status} (redirects are not followed; configure the final URL)")
    } else {
        format!("HTTP {status}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        initial: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };

    fn status(status: u16) -> Observed {
        Observed::Status {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_stays_in_the_upper_half() {
        let secs = |failures, random| backoff(&POLICY, failures, random).as_secs_f64();
        let ceilings = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0];
        for (i, ceiling) in ceilings.into_iter().enumerate() {
            let failures = u32::try_from(i + 1).expect("small");
            assert_eq!(secs(failures, 0.0), ceiling / 2.0, "failures {failures}");
            assert_eq!(secs(failures, 1.0), ceiling, "failures {failures}");
            let mid = secs(failures, 0.5);
            assert!(
                mid > ceiling / 2.0 && mid < ceiling,
                "failures {failures}: {mid}"
            );
        }
        // Huge attempt counts and odd random numbers neither overflow nor escape the range.
        assert_eq!(secs(u32::MAX, 1.0), 60.0);
        assert_eq!(secs(40, f64::NAN), 30.0);
        assert_eq!(secs(3, -4.0), 2.0);
        assert_eq!(secs(3, 9.0), 4.0);
        assert_eq!(secs(0, 1.0), 1.0);
    }

    #[test]
    fn retry_after_wins_when_longer_and_is_capped_at_the_maximum_backoff() {
        let wait = |ra: u64| retry_delay(&POLICY, 1, Some(Duration::from_secs(ra)), 1.0);
        assert_eq!(wait(0), Duration::from_secs(1), "the backoff is a floor");
        assert_eq!(wait(30), Duration::from_secs(30));
        assert_eq!(wait(86_400), Duration::from_secs(60), "capped");
        assert_eq!(retry_delay(&POLICY, 1, None, 1.0), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        // 2015-10-21T07:28:00Z.
        let now_ms = 1_445_412_480_000;
        let cases: [(&str, Option<u64>); 9] = [
            ("120", Some(120_000)),
            (" 0 ", Some(0)),
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(0)),
            ("Wed, 21 Oct 2015 07:30:30 GMT", Some(150_000)),
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(0)),
            ("Wednesday, 21-Oct-15 07:29:00 GMT", Some(60_000)),
            ("-5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(
                parse_retry_after(value, now_ms),
                expected.map(Duration::from_millis),
                "{value:?}"
            );
        }
        assert_eq!(
            parse_retry_after("99999999999999999999999", now_ms),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn two_hundreds_deliver_410_disables_and_other_answers_retry() {
        let now = 1_000_000;
        assert_eq!(
            decide(&POLICY, 0, status(204), now, 0.0),
            Attempt::Delivered { status: 204 }
        );
        assert_eq!(decide(&POLICY, 3, status(410), now, 0.0), Attempt::Gone);
        for code in [301, 400, 404, 429, 500, 503] {
            let Attempt::Retry {
                next_attempt_at,
                status,
                error,
            } = decide(&POLICY, 1, status(code), now, 1.0)
            else {
                panic!("{code} must be retried");
            };
            assert_eq!(next_attempt_at, now + 2_000, "{code}");
            assert_eq!(status, Some(code));
            assert!(error.starts_with(&format!("HTTP {code}")), "{error}");
        }
        let refused = decide(
            &POLICY,
            0,
            Observed::Failed {
                error: "connection refused".to_owned(),
            },
            now,
            0.0,
        );
        assert_eq!(
            refused,
            Attempt::Retry {
                next_attempt_at: now + 500,
                status: None,
                error: "connection refused".to_owned(),
            }
        );
    }

    #[test]
    fn a_retry_after_moves_the_next_attempt() {
        let observed = Observed::Status {
            status: 503,
            retry_after: Some(Duration::from_secs(7)),
        };
        let Attempt::Retry {
            next_attempt_at, ..
        } = decide(&POLICY, 0, observed, 0, 0.0)
        else {
            panic!("must be retried");
        };
        assert_eq!(next_attempt_at, 7_000);
    }

    #[test]
    fn the_last_allowed_attempt_exhausts_the_delivery() {
        assert!(matches!(
            decide(&POLICY, 3, status(500), 0, 0.0),
            Attempt::Retry { .. }
        ));
        assert_eq!(
            decide(&POLICY, 4, status(500), 0, 0.0),
            Attempt::Exhausted {
                status: Some(500),
                error: "HTTP 500".to_owned(),
            }
        );
        // A success on the last attempt still counts.
        assert_eq!(
            decide(&POLICY, 4, status(200), 0, 0.0),
            Attempt::Delivered { status: 200 }
        );
        let once = RetryPolicy {
            max_attempts: 1,
            ..POLICY
        };
        assert!(matches!(
            decide(&once, 0, status(502), 0, 0.0),
            Attempt::Exhausted { .. }
        ));
    }
}
