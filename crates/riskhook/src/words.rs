//! What riskhook says to people, in the workbench and in the API's explanations: statuses,
//! ages, signal values and why a rule was not evaluated, in words rather than storage names or
//! CEL internals. Pure functions of their
//! arguments (time is passed in), tested below.

use riskhook_core::assessment::UserStatus;
use riskhook_core::review::{ActionKind, CaseStatus, Outcome};
use riskhook_core::signals::SignalValue;

/// A user status as people say it: `in review`, not `in_review`.
pub(crate) fn user_status(status: UserStatus) -> &'static str {
    match status {
        UserStatus::Active => "active",
        UserStatus::InReview => "in review",
        UserStatus::Frozen => "frozen",
        UserStatus::Declined => "declined",
    }
}

pub(crate) fn case_status(status: CaseStatus) -> &'static str {
    match status {
        CaseStatus::Open => "open",
        CaseStatus::Claimed => "claimed",
        CaseStatus::PendingApproval => "waiting for approval",
        CaseStatus::Resolved => "resolved",
    }
}

pub(crate) fn outcome(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Approve => "approve",
        Outcome::Decline => "decline",
        Outcome::Freeze => "freeze",
        Outcome::Unfreeze => "unfreeze",
    }
}

/// What a pending action would do, e.g. `resolve the case: approve` or `unfreeze the user`.
pub(crate) fn action(kind: ActionKind, resolution: Option<Outcome>) -> String {
    match (kind, resolution) {
        (ActionKind::ResolveCase, Some(o)) => format!("resolve the case: {}", outcome(o)),
        (ActionKind::ResolveCase, None) => "resolve the case".to_owned(),
        (ActionKind::Freeze, _) => "freeze the user".to_owned(),
        (ActionKind::Unfreeze, _) => "unfreeze the user".to_owned(),
    }
}

/// How long ago `then` was, roughly, as a person would say it: `just now`, `5 min`,
/// `3 h 20 min`, `2 days 4 h`.
pub(crate) fn age(now: i64, then: i64) -> String {
    let s = now.saturating_sub(then).max(0);
    let (days, hours, minutes) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => "just now".to_owned(),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (1, 0, _) => "1 day".to_owned(),
        (1, h, _) => format!("1 day {h} h"),
        (d, 0, _) => format!("{d} days"),
        (d, h, _) => format!("{d} days {h} h"),
    }
}

/// How long ago, as a phrase: `just now`, `5 min ago`.
pub(crate) fn ago(now: i64, then: i64) -> String {
    match age(now, then).as_str() {
        "just now" => "just now".to_owned(),
        other => format!("{other} ago"),
    }
}

/// A Unix time as UTC, `2026-12-05 11:20:04 UTC` (RFC 3339 in the `datetime` attribute).
pub(crate) fn time(unix: i64) -> String {
    let text = crate::time::rfc3339(unix);
    format!("{} UTC", text.trim_end_matches('Z').replacen('T', " ", 1))
}

/// A Unix time as RFC 3339, for `<time datetime>`.
pub(crate) fn rfc3339(unix: i64) -> String {
    crate::time::rfc3339(unix)
}

/// A signal's value as read by a rule: `yes`/`no`, numbers, lists; `not checked` when the
/// session did not report it.
pub(crate) fn signal_value(value: Option<&SignalValue>) -> String {
    match value {
        None => "not checked".to_owned(),
        Some(SignalValue::Bool(true)) => "yes".to_owned(),
        Some(SignalValue::Bool(false)) => "no".to_owned(),
        Some(SignalValue::Int(n)) => n.to_string(),
        Some(SignalValue::Float(x)) => {
            let text = format!("{x:.2}");
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
        Some(SignalValue::String(s)) => s.clone(),
        Some(SignalValue::StringList(items)) if items.is_empty() => "none".to_owned(),
        Some(SignalValue::StringList(items)) => items.join(", "),
    }
}

/// The check a signal group comes from, as a reviewer knows it.
fn check_of(group: &str) -> &str {
    match group {
        "session" => "the session status",
        "document" => "the ID document check",
        "liveness" => "the liveness check",
        "face" => "the face match",
        "aml" => "the AML screening (sanctions, PEP, adverse media)",
        "phone" => "the phone verification",
        "email" => "the email verification",
        "ip" => "the IP analysis",
        "poa" => "the proof of address",
        "duplicates" => "the duplicate search",
        "risk" => "Didit's risk codes",
        other => other,
    }
}

/// Why a rule was not evaluated, for a reviewer. The engine says either `reads unchecked
/// signals: aml.total_hits, ip.vpn_or_tor` (a check the session never ran or never reported)
/// or gives the evaluator's error; the first becomes the checks that were missing, the second
/// a plain sentence (the technical text stays available beside it).
pub(crate) fn not_evaluated(error: &str) -> String {
    if let Some(list) = error.strip_prefix("reads unchecked signals: ") {
        let mut checks: Vec<&str> = Vec::new();
        for signal in list.split(", ") {
            let group = signal.split_once('.').map_or(signal, |(g, _)| g);
            let check = check_of(group);
            if !checks.contains(&check) {
                checks.push(check);
            }
        }
        let checks = match checks.as_slice() {
            [] => "a check".to_owned(),
            [one] => (*one).to_owned(),
            [first @ .., last] => format!("{} and {last}", first.join(", ")),
        };
        return format!(
            "Not evaluated: the session did not report {checks}, so this rule could not be checked. It did not add points."
        );
    }
    "Not evaluated: the rule could not be computed on this session's data (see the technical detail). It did not add points.".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_a_person_says_them() {
        let cases = [
            (0, "just now"),
            (59, "just now"),
            (60, "1 min"),
            (3_600, "1 h"),
            (3_600 * 3 + 60 * 20, "3 h 20 min"),
            (86_400, "1 day"),
            (86_400 + 3_600 * 5, "1 day 5 h"),
            (86_400 * 3, "3 days"),
            (86_400 * 2 + 3_600 * 4 + 59, "2 days 4 h"),
            (-10, "just now"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(age(1_000_000, 1_000_000 - seconds), expected, "{seconds}s");
        }
        assert_eq!(ago(100, 100), "just now");
        assert_eq!(ago(4_000, 100), "1 h 5 min ago");
    }

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(time(1_796_469_604), "2026-12-05 11:20:04 UTC");
        assert_eq!(time(-1), "1970-01-01 00:00:00 UTC", "clamped");
    }

    #[test]
    fn unchecked_signals_become_the_checks_that_were_missing() {
        assert_eq!(
            not_evaluated("reads unchecked signals: aml.total_hits, aml.pep_hits"),
            "Not evaluated: the session did not report the AML screening (sanctions, PEP, adverse media), so this rule could not be checked. It did not add points."
        );
        let two =
            not_evaluated("reads unchecked signals: ip.vpn_or_tor, document.expired, ip.country");
        assert!(
            two.contains("the IP analysis and the ID document check"),
            "{two}"
        );
        let three =
            not_evaluated("reads unchecked signals: phone.voip, email.breached, poa.expired");
        assert!(
            three.contains(
                "the phone verification, the email verification and the proof of address"
            ),
            "{three}"
        );
    }

    #[test]
    fn evaluator_errors_are_not_shown_as_cel_internals() {
        let text = not_evaluated("No such key: hits (in `aml.hits > 0`)");
        assert!(!text.contains("No such key"), "{text}");
        assert!(text.starts_with("Not evaluated:"), "{text}");
    }

    #[test]
    fn signal_values_in_words() {
        assert_eq!(signal_value(None), "not checked");
        assert_eq!(signal_value(Some(&SignalValue::Bool(true))), "yes");
        assert_eq!(signal_value(Some(&SignalValue::Float(87.5))), "87.5");
        assert_eq!(signal_value(Some(&SignalValue::Float(90.0))), "90");
        assert_eq!(
            signal_value(Some(&SignalValue::StringList(vec!["A".into(), "B".into()]))),
            "A, B"
        );
        assert_eq!(signal_value(Some(&SignalValue::StringList(vec![]))), "none");
    }

    #[test]
    fn statuses_in_words() {
        assert_eq!(user_status(UserStatus::InReview), "in review");
        assert_eq!(
            case_status(CaseStatus::PendingApproval),
            "waiting for approval"
        );
        assert_eq!(
            action(ActionKind::ResolveCase, Some(Outcome::Approve)),
            "resolve the case: approve"
        );
        assert_eq!(action(ActionKind::Unfreeze, None), "unfreeze the user");
    }
}
