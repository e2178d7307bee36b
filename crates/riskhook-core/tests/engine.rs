//! The risk engine, data-driven: signals in, a decision, a score and the fired rules out.
//!
//! Each case is one line, `check(signals, expect)`. `signals` is a one-line spec
//! (`aml.sanctions_hits=1 face.match_score=42.5 risk.codes=[A,B] session.status='In Review'`)
//! typed by the schema; `expect` is the assessment rendered as `decision score rule rule…`,
//! with the fired rules in policy order. Every rule of the default policy is shown firing
//! alone and staying quiet on a nearby value; then come combinations, "not checked", the
//! explanation (`reads`), reproducibility, and a property test that `assess` is total.
//!
//! Loading errors live in `policy_errors.rs`; the policy's shipped cases in `default_cases.rs`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use proptest::prelude::*;
use riskhook_core::assessment::{Assessment, Decision};
use riskhook_core::policy::{DEFAULT_POLICY, Policy, Reads, fired_ids};
use riskhook_core::signals::{Kind, SCHEMA, SignalValue, Signals, SnapshotError, definition};

/// Every case is evaluated at this instant (2026-05-29, like the fixtures).
const NOW: i64 = 1_780_045_046;

static DEFAULT: LazyLock<Policy> = LazyLock::new(|| Policy::load(DEFAULT_POLICY).unwrap());

/// Parses a one-line signal spec: `name=value` pairs separated by spaces, each value read as
/// its schema kind. Strings with spaces are quoted with `'`; lists are `[A,B]` (items may be
/// quoted too); floats accept `NaN`, `inf` and `-inf`.
fn signals(spec: &str) -> Signals {
    let mut out = Signals::new();
    let mut rest = spec.trim_start();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .unwrap_or_else(|| panic!("`{rest}`: expected name=value"));
        let def = definition(name).unwrap_or_else(|| panic!("unknown signal `{name}`"));
        let (raw, after) = take_value(after);
        out.set(def.name, typed(def.kind, raw), "evt_test", "spec");
        rest = after.trim_start();
    }
    out
}

/// Splits one value (quoted, bracketed or bare) off the front of `s`.
fn take_value(s: &str) -> (&str, &str) {
    let end = if let Some(quoted) = s.strip_prefix('\'') {
        return quoted
            .split_once('\'')
            .unwrap_or_else(|| panic!("unclosed quote in `{s}`"));
    } else if s.starts_with('[') {
        s.find(']')
            .unwrap_or_else(|| panic!("unclosed list in `{s}`"))
            + 1
    } else {
        s.find(char::is_whitespace).unwrap_or(s.len())
    };
    s.split_at(end)
}

fn typed(kind: Kind, raw: &str) -> SignalValue {
    fn bad<T>(kind: Kind, raw: &str) -> T {
        panic!("`{raw}` is not a {}", kind.cel_name())
    }
    match kind {
        Kind::Bool => SignalValue::Bool(raw.parse().unwrap_or_else(|_| bad(kind, raw))),
        Kind::Int => SignalValue::Int(raw.parse().unwrap_or_else(|_| bad(kind, raw))),
        Kind::Float => SignalValue::Float(raw.parse().unwrap_or_else(|_| bad(kind, raw))),
        Kind::String => SignalValue::String(raw.to_owned()),
        Kind::StringList => {
            let inner = raw
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .unwrap_or_else(|| bad(kind, raw));
            SignalValue::StringList(
                inner
                    .split(',')
                    .map(|item| item.trim().trim_matches('\''))
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )
        }
    }
}

/// `decision score fired…`: what `check` compares.
fn render(assessment: &Assessment) -> String {
    let mut out = format!("{} {}", assessment.decision.as_str(), assessment.score);
    for id in fired_ids(assessment) {
        out.push(' ');
        out.push_str(id);
    }
    out
}

#[track_caller]
fn check_with(policy: &Policy, spec: &str, expect: &str) {
    let actual = render(&policy.assess(signals(spec), NOW));
    assert_eq!(actual, expect, "\nsignals: {spec}");
}

/// The default policy on `spec` must render as `expect`.
#[track_caller]
fn check(spec: &str, expect: &str) {
    check_with(&DEFAULT, spec, expect);
}

/// The rules the default policy could not evaluate on `spec`, in policy order.
fn not_evaluated(spec: &str) -> Vec<String> {
    DEFAULT
        .assess(signals(spec), NOW)
        .not_evaluated
        .into_iter()
        .map(|n| n.rule_id)
        .collect()
}

/// One case per rule of the default policy: the least input that fires it, and the decision
/// and score it gives on its own.
const FIRES_ALONE: &[(&str, &str)] = &[
    ("aml.sanctions_hits=1", "freeze 100 aml.sanctions_hit"),
    ("aml.enforcement_hits=1", "review 40 aml.enforcement_hit"),
    ("aml.pep_hits=1", "review 35 aml.pep"),
    ("aml.pep_level=1", "approve 20 aml.pep_level_1"),
    ("aml.adverse_media_hits=1", "review 35 aml.adverse_media"),
    (
        "aml.screening_failed=true",
        "review 30 aml.screening_failed",
    ),
    (
        "liveness.face_attack=true",
        "freeze 100 liveness.face_attack",
    ),
    ("liveness.status=Declined", "freeze 40 liveness.failed"),
    ("liveness.passed=false", "review 20 liveness.not_passed"),
    (
        "liveness.duplicate_face=true",
        "review 30 liveness.duplicate_face",
    ),
    ("face.match_score=69.9", "review 35 face.low_match"),
    (
        "face.match_score=39.9",
        "freeze 70 face.low_match face.very_low_match",
    ),
    ("document.tampered=true", "freeze 100 document.tampered"),
    (
        "document.screen_capture=true",
        "review 40 document.not_genuine_capture",
    ),
    (
        "document.printed_copy=true",
        "review 40 document.not_genuine_capture",
    ),
    ("document.expired=true", "review 35 document.expired"),
    (
        "document.verified=false",
        "approve 20 document.not_verified",
    ),
    ("document.age=17", "freeze 100 document.underage"),
    (
        "duplicates.blocklisted=true",
        "freeze 100 duplicates.blocklisted",
    ),
    ("duplicates.count=1", "review 25 duplicates.other_sessions"),
    ("ip.vpn_or_tor=true", "approve 15 ip.vpn_or_tor"),
    ("ip.data_center=true", "approve 10 ip.data_center"),
    ("ip.country_mismatch=true", "approve 15 ip.country_mismatch"),
    ("email.disposable=true", "approve 15 email.disposable"),
    ("email.undeliverable=true", "approve 10 email.undeliverable"),
    ("email.breached=true", "approve 5 email.breached"),
    (
        "phone.disposable=true",
        "approve 15 phone.disposable_or_voip",
    ),
    ("phone.voip=true", "approve 15 phone.disposable_or_voip"),
    ("phone.high_risk=true", "review 25 phone.high_risk"),
    ("poa.manipulated=true", "review 60 poa.manipulated"),
    ("poa.name_mismatch=true", "approve 20 poa.mismatch"),
    ("poa.address_mismatch=true", "approve 20 poa.mismatch"),
    ("session.status=Declined", "review 30 didit.declined"),
    ("session.status='In Review'", "approve 15 didit.in_review"),
    (
        "session.body_trusted=false",
        "review 30 didit.unauthenticated_body",
    ),
];

#[test]
fn every_rule_of_the_default_policy_fires_alone_with_its_own_points_and_decision() {
    for (spec, expect) in FIRES_ALONE {
        check(spec, expect);
    }
    let covered: BTreeSet<&str> = FIRES_ALONE
        .iter()
        .flat_map(|(_, expect)| expect.split(' ').skip(2))
        .collect();
    let rules: Vec<String> = DEFAULT.rules().into_iter().map(|r| r.id).collect();
    let missing: Vec<&String> = rules
        .iter()
        .filter(|id| !covered.contains(id.as_str()))
        .collect();
    assert!(missing.is_empty(), "rules never shown firing: {missing:?}");
    assert_eq!(rules.len(), DEFAULT.rule_count());
}

#[test]
fn each_rule_reports_the_points_decision_and_reason_the_policy_gives_it() {
    let all = signals(
        "aml.sanctions_hits=1 aml.enforcement_hits=1 aml.pep_hits=1 aml.pep_level=1 \
         aml.adverse_media_hits=1 aml.screening_failed=true liveness.face_attack=true \
         liveness.status=Declined liveness.passed=false liveness.duplicate_face=true \
         face.match_score=1.0 \
         document.tampered=true document.screen_capture=true document.printed_copy=true \
         document.expired=true document.verified=false document.age=3 \
         duplicates.blocklisted=true duplicates.count=9 ip.vpn_or_tor=true \
         ip.data_center=true ip.country_mismatch=true email.disposable=true \
         email.undeliverable=true email.breached=true phone.disposable=true phone.voip=true \
         phone.high_risk=true poa.manipulated=true poa.name_mismatch=true \
         poa.address_mismatch=true session.status=Declined session.body_trusted=false",
    );
    let assessment = DEFAULT.assess(&all, NOW);
    let rules = DEFAULT.rules();
    // Everything but `didit.in_review` and `liveness.not_passed`, which cannot fire with
    // `session.status=Declined` and `liveness.status=Declined`.
    assert_eq!(assessment.fired.len(), rules.len() - 2);
    let fired = fired_ids(&assessment);
    assert!(!fired.contains(&"didit.in_review") && !fired.contains(&"liveness.not_passed"));
    for firing in &assessment.fired {
        let rule = rules.iter().find(|r| r.id == firing.rule_id).unwrap();
        assert_eq!(
            (firing.points, firing.decision, firing.reason.as_str()),
            (rule.points, rule.decision, rule.reason.as_str()),
            "{}",
            rule.id
        );
    }
    assert_eq!(assessment.score, 100);
    assert!(assessment.not_evaluated.is_empty());
}

#[test]
fn sanctions_and_watchlist_rules_need_a_hit_and_pep_level_1_means_most_exposed() {
    check("aml.sanctions_hits=0", "approve 0");
    check("aml.enforcement_hits=0", "approve 0");
    check("aml.pep_hits=0", "approve 0");
    check("aml.adverse_media_hits=0", "approve 0");
    check("aml.screening_failed=false", "approve 0");
    check("aml.sanctions_hits=3", "freeze 100 aml.sanctions_hit");
    // Levels run 1 (most exposed) to 4; 0 means no PEP hit.
    check("aml.pep_level=0", "approve 0");
    check("aml.pep_level=2", "approve 0");
    check("aml.pep_level=4", "approve 0");
    check(
        "aml.pep_hits=1 aml.pep_level=1",
        "review 55 aml.pep aml.pep_level_1",
    );
    check("aml.pep_hits=2 aml.pep_level=3", "review 35 aml.pep");
    // What a clean screening looks like after the Didit mapping.
    check(
        "aml.status=Approved aml.screening_failed=false aml.total_hits=0 aml.sanctions_hits=0 \
         aml.pep_hits=0 aml.pep_level=0 aml.adverse_media_hits=0 aml.enforcement_hits=0 \
         aml.max_match_score=0.0 aml.max_risk_score=0.0",
        "approve 0",
    );
    // Informational signals no default rule reads.
    check(
        "aml.total_hits=7 aml.status=Declined aml.max_match_score=99.0 aml.max_risk_score=99.0",
        "approve 0",
    );
}

#[test]
fn biometric_rules_fire_below_their_thresholds_and_not_at_them() {
    check("liveness.face_attack=false", "approve 0");
    check("liveness.passed=true", "approve 0");
    check("liveness.status=Approved liveness.passed=true", "approve 0");
    check("liveness.duplicate_face=false", "approve 0");
    check("face.match_score=70.0", "approve 0");
    check("face.match_score=95.5", "approve 0");
    check("face.match_score=40.0", "review 35 face.low_match");
    check(
        "face.match_score=0.0",
        "freeze 70 face.low_match face.very_low_match",
    );
    // Liveness score and method and the face-match status are not read by the policy.
    check(
        "liveness.score=1.0 liveness.method=PASSIVE face.status=Declined face.passed=false",
        "approve 0",
    );
    check(
        "liveness.face_attack=true liveness.status=Declined liveness.passed=false",
        "freeze 100 liveness.face_attack liveness.failed",
    );
}

#[test]
fn document_rules_fire_on_their_flag_and_an_adult_verified_document_is_quiet() {
    check("document.tampered=false", "approve 0");
    check("document.expired=false", "approve 0");
    check("document.verified=true", "approve 0");
    check("document.age=18", "approve 0");
    check("document.age=0", "freeze 100 document.underage");
    check("document.age=-1", "freeze 100 document.underage");
    check(
        "document.screen_capture=false document.printed_copy=false",
        "approve 0",
    );
    check(
        "document.screen_capture=true document.printed_copy=true",
        "review 40 document.not_genuine_capture",
    );
    check(
        "document.expired=true document.verified=false",
        "review 55 document.expired document.not_verified",
    );
    check(
        "document.status=Approved document.verified=true document.expired=false document.tampered=false \
         document.screen_capture=false document.printed_copy=false document.age=38 \
         document.nationality=ESP document.issuing_state=ESP document.type='Identity Card'",
        "approve 0",
    );
}

#[test]
fn duplicate_and_blocklist_rules_need_a_match() {
    check("duplicates.blocklisted=false", "approve 0");
    check("duplicates.count=0", "approve 0");
    check(
        "duplicates.blocklisted=true duplicates.count=2",
        "freeze 100 duplicates.blocklisted duplicates.other_sessions",
    );
}

#[test]
fn network_and_contact_rules_only_add_points() {
    check(
        "ip.vpn_or_tor=false ip.data_center=false ip.country_mismatch=false",
        "approve 0",
    );
    check(
        "email.disposable=false email.undeliverable=false email.breached=false",
        "approve 0",
    );
    check(
        "phone.disposable=false phone.voip=false phone.high_risk=false",
        "approve 0",
    );
    check(
        "phone.disposable=true phone.voip=true",
        "approve 15 phone.disposable_or_voip",
    );
    // Informational signals no default rule reads.
    check(
        "ip.country=NL ip.distance_from_document_km=9611.2 email.breach_count=40 phone.country=US \
         email.verified=false phone.verified=false ip.status=Declined",
        "approve 0",
    );
}

#[test]
fn proof_of_address_rules_fire_on_manipulation_or_a_mismatch() {
    check("poa.manipulated=false", "approve 0");
    check(
        "poa.name_mismatch=false poa.address_mismatch=false",
        "approve 0",
    );
    check(
        "poa.name_mismatch=true poa.address_mismatch=true",
        "approve 20 poa.mismatch",
    );
    // Stale or unverified proof of address is not scored by the default policy.
    check(
        "poa.expired=true poa.verified=false poa.status=Declined",
        "approve 0",
    );
    check(
        "poa.manipulated=true poa.name_mismatch=true",
        "freeze 80 poa.manipulated poa.mismatch",
    );
}

#[test]
fn didits_own_verdict_matches_its_status_exactly() {
    check("session.status=Approved", "approve 0");
    check("session.status=declined", "approve 0");
    check("session.status='Declined '", "approve 0");
    check("session.status='In Progress'", "approve 0");
    check("session.status='Not Started'", "approve 0");
    check("session.status=Resubmitted", "approve 0");
    check("session.body_trusted=true", "approve 0");
    check("session.kind=business", "approve 0");
    // Didit's codes are kept for the record; the default policy does not score them.
    check(
        "risk.codes=[POSSIBLE_MATCH_FOUND,LOW_FACE_MATCH_SIMILARITY] risk.decline_codes=[POSSIBLE_MATCH_FOUND]",
        "approve 0",
    );
}

#[test]
fn nothing_checked_approves_with_a_score_of_zero_and_nothing_fired() {
    let assessment = DEFAULT.assess(Signals::new(), NOW);
    assert_eq!(render(&assessment), "approve 0");
    assert!(assessment.fired.is_empty());
    assert!(assessment.signals.is_empty());
    assert_eq!(assessment.evaluated_at, NOW);
    assert_eq!(assessment.policy.name, "default");
    assert_eq!(assessment.policy.hash, DEFAULT.hash());
}

#[test]
fn weak_signals_add_up_to_review_at_30_and_freeze_at_70() {
    check(
        "ip.vpn_or_tor=true ip.data_center=true",
        "approve 25 ip.vpn_or_tor ip.data_center",
    );
    check(
        "ip.vpn_or_tor=true ip.data_center=true email.breached=true",
        "review 30 ip.vpn_or_tor ip.data_center email.breached",
    );
    check(
        "ip.vpn_or_tor=true ip.data_center=true ip.country_mismatch=true email.disposable=true \
         email.undeliverable=true",
        "review 65 ip.vpn_or_tor ip.data_center ip.country_mismatch email.disposable email.undeliverable",
    );
    check(
        "ip.vpn_or_tor=true ip.data_center=true ip.country_mismatch=true email.disposable=true \
         email.undeliverable=true email.breached=true",
        "freeze 70 ip.vpn_or_tor ip.data_center ip.country_mismatch email.disposable email.undeliverable email.breached",
    );
    // A weak signal on top of a review-level fact pushes it over the freeze line.
    check(
        "duplicates.count=1 poa.name_mismatch=true phone.voip=true ip.vpn_or_tor=true",
        "freeze 75 duplicates.other_sessions ip.vpn_or_tor phone.disposable_or_voip poa.mismatch",
    );
}

/// The facts `default.toml`'s header calls review-level: PEP status, adverse media, an expired
/// document, a weak face match. Each imposes review and scores 35.
const REVIEW_FACTS: &[(&str, &str)] = &[
    ("aml.pep_hits=1", "aml.pep"),
    ("aml.adverse_media_hits=1", "aml.adverse_media"),
    ("document.expired=true", "document.expired"),
    ("face.match_score=55.0", "face.low_match"),
];

#[test]
fn any_two_review_facts_together_reach_the_freeze_line() {
    for (spec, id) in REVIEW_FACTS {
        check(spec, &format!("review 35 {id}"));
    }
    // As the header promises: any two of them, 35 + 35 = 70, freeze by the score alone.
    let mut pairs = 0;
    for (i, (a, _)) in REVIEW_FACTS.iter().enumerate() {
        for (b, _) in &REVIEW_FACTS[i + 1..] {
            let assessment = DEFAULT.assess(signals(&format!("{a} {b}")), NOW);
            assert_eq!(
                (
                    assessment.decision,
                    assessment.score,
                    assessment.fired.len()
                ),
                (Decision::Freeze, 70, 2),
                "{a} {b}: {}",
                render(&assessment)
            );
            // No rule imposes freeze: each imposes review, the sum crosses the line.
            assert!(
                assessment
                    .fired
                    .iter()
                    .all(|f| f.decision == Some(Decision::Review))
            );
            pairs += 1;
        }
    }
    assert_eq!(pairs, 6);
    check(
        "aml.pep_hits=1 aml.adverse_media_hits=1",
        "freeze 70 aml.pep aml.adverse_media",
    );
    check(
        "aml.pep_hits=1 document.expired=true",
        "freeze 70 aml.pep document.expired",
    );
    check(
        "face.match_score=55.0 document.expired=true",
        "freeze 70 face.low_match document.expired",
    );
}

#[test]
fn two_review_facts_reach_freeze_only_when_their_points_reach_70() {
    check(
        "aml.enforcement_hits=1 aml.pep_hits=1",
        "freeze 75 aml.enforcement_hit aml.pep",
    );
    check(
        "document.screen_capture=true document.expired=true",
        "freeze 75 document.not_genuine_capture document.expired",
    );
    // Lighter review-level facts stay below the line together.
    check(
        "duplicates.count=1 phone.high_risk=true",
        "review 50 duplicates.other_sessions phone.high_risk",
    );
    check(
        "liveness.duplicate_face=true duplicates.count=1",
        "review 55 liveness.duplicate_face duplicates.other_sessions",
    );
    check(
        "liveness.status='In Review' liveness.passed=false aml.pep_hits=1",
        "review 55 aml.pep liveness.not_passed",
    );
    check(
        "aml.screening_failed=true liveness.duplicate_face=true",
        "review 60 aml.screening_failed liveness.duplicate_face",
    );
}

#[test]
fn a_declined_liveness_check_freezes_and_one_short_of_approved_goes_to_review() {
    // Didit declined it: nobody proved they were present. 40 points, and freeze by decision.
    check(
        "liveness.status=Declined liveness.passed=false",
        "freeze 40 liveness.failed",
    );
    // Any other status short of Approved (`liveness.passed` is false unless every check was
    // Approved): a person looks, but it is not a failure.
    for status in [
        "'In Review'",
        "'Not Finished'",
        "Expired",
        "'Resub Requested'",
    ] {
        check(
            &format!("liveness.status={status} liveness.passed=false"),
            "review 20 liveness.not_passed",
        );
    }
    check(
        "liveness.status=Approved liveness.passed=true liveness.score=96.1",
        "approve 0",
    );
    // The two rules never fire together.
    check(
        "liveness.status=Declined liveness.passed=false liveness.score=12.5",
        "freeze 40 liveness.failed",
    );
    // With both signals checked, neither is left unevaluated.
    for spec in [
        "liveness.status=Declined liveness.passed=false",
        "liveness.status='In Review' liveness.passed=false",
        "liveness.status=Approved liveness.passed=true",
    ] {
        let ids = not_evaluated(spec);
        assert!(
            !ids.iter()
                .any(|id| id == "liveness.failed" || id == "liveness.not_passed"),
            "{spec}: {ids:?}"
        );
    }
}

#[test]
fn a_rule_decision_is_stricter_than_the_score_and_never_lowered_by_it() {
    check(
        "liveness.status=Declined liveness.passed=false",
        "freeze 40 liveness.failed",
    );
    check("duplicates.count=1", "review 25 duplicates.other_sessions");
    check(
        "liveness.status=Declined liveness.passed=false ip.vpn_or_tor=true",
        "freeze 55 liveness.failed ip.vpn_or_tor",
    );
    check(
        "phone.high_risk=true email.breached=true",
        "review 30 email.breached phone.high_risk",
    );
    check("liveness.passed=false", "review 20 liveness.not_passed");
}

#[test]
fn the_score_is_clamped_at_100() {
    check(
        "aml.sanctions_hits=1 liveness.face_attack=true document.tampered=true",
        "freeze 100 aml.sanctions_hit liveness.face_attack document.tampered",
    );
    let assessment = DEFAULT.assess(
        signals("aml.sanctions_hits=1 liveness.face_attack=true document.tampered=true"),
        NOW,
    );
    let raw: i32 = assessment.fired.iter().map(|f| f.points).sum();
    assert_eq!(raw, 300);
}

#[test]
fn negative_points_lower_the_score_which_is_clamped_at_zero() {
    let policy = Policy::load(
        r#"
name = "offsets"
[thresholds]
review = 30
freeze = 70
[[rules]]
id = "vpn"
when = "ip.vpn_or_tor"
points = 50
reason = "VPN."
[[rules]]
id = "verified_phone"
when = "phone.verified"
points = -30
reason = "A verified phone offsets some risk."
[[rules]]
id = "verified_email"
when = "email.verified"
points = -30
reason = "A verified email offsets some risk."
"#,
    )
    .unwrap();
    check_with(&policy, "ip.vpn_or_tor=true", "review 50 vpn");
    check_with(
        &policy,
        "ip.vpn_or_tor=true phone.verified=true",
        "approve 20 vpn verified_phone",
    );
    check_with(
        &policy,
        "phone.verified=true email.verified=true",
        "approve 0 verified_phone verified_email",
    );
    // Clamping happens once, on the total: -60 then +50 is 0, not 50.
    check_with(
        &policy,
        "ip.vpn_or_tor=true phone.verified=true email.verified=true",
        "approve 0 vpn verified_phone verified_email",
    );
}

#[test]
fn rules_read_the_evaluation_time_as_now() {
    let policy = Policy::load(
        r#"
name = "clock"
[thresholds]
review = 30
freeze = 70
[[rules]]
id = "after_cutoff"
when = "now >= 1780045046 && ip.vpn_or_tor"
points = 30
reason = "VPNs are reviewed from the cut-off on."
"#,
    )
    .unwrap();
    let vpn = signals("ip.vpn_or_tor=true");
    assert_eq!(render(&policy.assess(&vpn, NOW)), "review 30 after_cutoff");
    assert_eq!(render(&policy.assess(&vpn, NOW - 1)), "approve 0");
    assert_eq!(policy.assess(&vpn, NOW - 1).evaluated_at, NOW - 1);
}

#[test]
fn a_signal_that_was_not_checked_fires_nothing() {
    // Each rule's signals checked with their "bad" value fire it (above); here the same rules
    // see nothing at all, or only a neighbouring signal of their group.
    check("", "approve 0");
    check("face.status=Approved face.passed=true", "approve 0");
    check("aml.status=Approved aml.total_hits=0", "approve 0");
    check("liveness.score=10.0", "approve 0");
    check("document.status=Declined", "approve 0");
    check("session.status=Approved session.kind=user", "approve 0");
}

/// The `reads unchecked signals: …` error of `rule` on `spec`, if it is listed as not evaluated.
fn not_evaluated_error(policy: &Policy, spec: &str, rule: &str) -> Option<String> {
    policy
        .assess(signals(spec), NOW)
        .not_evaluated
        .into_iter()
        .find(|n| n.rule_id == rule)
        .map(|n| n.error)
}

#[test]
fn every_rule_reading_an_unchecked_signal_is_listed_as_not_evaluated() {
    // Nothing checked: no rule fires and every one of them says it could not be evaluated,
    // including those written `x == value`, which CEL evaluates to a plain false on null.
    let every: Vec<String> = DEFAULT.rules().into_iter().map(|r| r.id).collect();
    assert_eq!(not_evaluated(""), every);
    let errors: Vec<(String, String)> = DEFAULT
        .assess(Signals::new(), NOW)
        .not_evaluated
        .into_iter()
        .map(|n| (n.rule_id, n.error))
        .collect();
    let error = |id: &str| {
        errors
            .iter()
            .find(|(rule, _)| rule == id)
            .map(|(_, e)| e.as_str())
            .unwrap()
    };
    // Comparisons and bare flags fail on null, and `==` rules are false on null: either way
    // the reason is the check that was missing, named, never CEL's own words about null.
    assert_eq!(
        error("aml.sanctions_hit"),
        "reads unchecked signals: aml.sanctions_hits"
    );
    assert_eq!(
        error("ip.vpn_or_tor"),
        "reads unchecked signals: ip.vpn_or_tor"
    );
    for (id, names) in [
        ("aml.pep_level_1", "aml.pep_level"),
        ("liveness.failed", "liveness.status"),
        ("liveness.not_passed", "liveness.passed, liveness.status"),
        ("document.not_verified", "document.verified"),
        ("didit.declined", "session.status"),
        ("didit.in_review", "session.status"),
        ("didit.unauthenticated_body", "session.body_trusted"),
    ] {
        assert_eq!(
            error(id),
            format!("reads unchecked signals: {names}"),
            "{id}"
        );
    }
}

#[test]
fn an_equality_rule_over_an_unchecked_signal_is_not_evaluated_and_names_what_was_missing() {
    let policy = Policy::load(
        r#"
name = "equality"
[thresholds]
review = 30
freeze = 70
[[rules]]
id = "declined_pep"
when = "aml.pep_level == 1 || session.status == 'Declined'"
points = 30
reason = "A level-1 PEP, or a session Didit declined."
"#,
    )
    .unwrap();
    // Neither checked: `null == 1 || null == 'Declined'` is false, listed with both names
    // (in alphabetical order).
    assert_eq!(
        not_evaluated_error(&policy, "", "declined_pep").as_deref(),
        Some("reads unchecked signals: aml.pep_level, session.status")
    );
    // One checked and false: still not a clean no, listed with the one that is missing.
    assert_eq!(
        not_evaluated_error(&policy, "session.status=Approved", "declined_pep").as_deref(),
        Some("reads unchecked signals: aml.pep_level")
    );
    assert_eq!(
        not_evaluated_error(&policy, "aml.pep_level=0", "declined_pep").as_deref(),
        Some("reads unchecked signals: session.status")
    );
    // Both checked and false: a clean no, not listed.
    assert_eq!(
        not_evaluated_error(
            &policy,
            "aml.pep_level=0 session.status=Approved",
            "declined_pep"
        ),
        None
    );
    // True on what was checked: it fires, whatever was not checked.
    check_with(&policy, "session.status=Declined", "review 30 declined_pep");
    assert!(
        policy
            .assess(signals("session.status=Declined"), NOW)
            .not_evaluated
            .is_empty()
    );
    // The default policy's `==` rules the same way, one by one.
    assert_eq!(
        not_evaluated_error(&DEFAULT, "aml.pep_hits=0", "aml.pep_level_1").as_deref(),
        Some("reads unchecked signals: aml.pep_level")
    );
    assert_eq!(
        not_evaluated_error(&DEFAULT, "liveness.passed=true", "liveness.not_passed").as_deref(),
        Some("reads unchecked signals: liveness.status")
    );
    assert_eq!(
        not_evaluated_error(&DEFAULT, "session.kind=user", "didit.declined").as_deref(),
        Some("reads unchecked signals: session.status")
    );
    assert_eq!(
        not_evaluated_error(&DEFAULT, "session.status=Approved", "didit.declined"),
        None
    );
}

#[test]
fn an_inequality_rule_over_an_unchecked_signal_is_true_on_null_and_fires() {
    // The other side of CEL's equality across types: `null != 'x'` is true. A rule written
    // `x != value` fires when `x` was not checked, unless it also asks `x != null`.
    let policy = Policy::load(
        r#"
name = "inequality"
[thresholds]
review = 30
freeze = 70
[[rules]]
id = "not_approved"
when = "face.status != 'Approved'"
points = 30
reason = "The face match was not approved."
[[rules]]
id = "checked_not_approved"
when = "face.status != null && face.status != 'Approved'"
points = 30
reason = "The face match ran and was not approved."
"#,
    )
    .unwrap();
    check_with(&policy, "", "review 30 not_approved");
    assert_eq!(
        not_evaluated_error(&policy, "", "checked_not_approved").as_deref(),
        Some("reads unchecked signals: face.status")
    );
    check_with(
        &policy,
        "face.status='In Review'",
        "review 60 not_approved checked_not_approved",
    );
    check_with(&policy, "face.status=Approved", "approve 0");
    // `liveness.not_passed` reads `liveness.status != 'Declined'` this way, guarded by
    // `liveness.passed == false`: the Didit mapping sets both together.
    check("liveness.passed=false", "review 20 liveness.not_passed");
}

#[test]
fn a_checked_group_is_evaluated_and_only_the_rules_of_unchecked_groups_are_listed() {
    let aml_checked = not_evaluated(
        "aml.sanctions_hits=0 aml.enforcement_hits=0 aml.pep_hits=0 aml.pep_level=0 \
         aml.adverse_media_hits=0 aml.screening_failed=false",
    );
    assert!(!aml_checked.iter().any(|id| id.starts_with("aml.")));
    assert!(aml_checked.contains(&"face.low_match".to_owned()));
}

#[test]
fn an_or_rule_fires_when_one_checked_side_is_true_and_is_not_evaluated_when_the_other_is_null() {
    check("phone.voip=true", "approve 15 phone.disposable_or_voip");
    check("phone.voip=false", "approve 0");
    assert!(not_evaluated("phone.voip=false").contains(&"phone.disposable_or_voip".to_owned()));
    assert!(!not_evaluated("phone.voip=true").contains(&"phone.disposable_or_voip".to_owned()));
    assert!(
        !not_evaluated("phone.voip=false phone.disposable=false")
            .contains(&"phone.disposable_or_voip".to_owned())
    );
}

#[test]
fn a_firing_records_every_signal_its_rule_reads_with_null_for_unchecked_ones() {
    let assessment = DEFAULT.assess(signals("phone.voip=true ip.vpn_or_tor=true"), NOW);
    let phone = assessment
        .fired
        .iter()
        .find(|f| f.rule_id == "phone.disposable_or_voip")
        .unwrap();
    let expected: Reads = [
        ("phone.disposable".to_owned(), None),
        ("phone.voip".to_owned(), Some(SignalValue::Bool(true))),
    ]
    .into_iter()
    .collect();
    assert_eq!(phone.reads, expected);
    let json = serde_json::to_string(&phone.reads).unwrap();
    assert_eq!(json, r#"{"phone.disposable":null,"phone.voip":true}"#);

    let face = DEFAULT.assess(signals("face.match_score=42.5"), NOW);
    for firing in &face.fired {
        assert_eq!(
            firing.reads.get("face.match_score"),
            Some(&Some(SignalValue::Float(42.5)))
        );
        assert_eq!(firing.reads.len(), 1);
    }
}

/// A realistic, busy input: the risky fixture's signals, give or take.
const BUSY: &str = "session.status='In Review' session.kind=user session.body_trusted=true \
    document.verified=false document.age=28 document.type='Driving License' liveness.passed=false \
    liveness.score=61.3 face.match_score=42.1 ip.vpn_or_tor=true ip.data_center=true \
    ip.country=NL ip.distance_from_document_km=9611.2 email.disposable=true phone.voip=true \
    duplicates.count=1 aml.total_hits=0 aml.max_match_score=0.0 \
    risk.codes=[LOW_LIVENESS_SCORE,'VOIP_NUMBER_DETECTED']";

#[test]
fn assessing_the_same_signals_twice_gives_identical_json() {
    let busy = signals(BUSY);
    let first = DEFAULT.assess(&busy, NOW).to_json();
    let second = DEFAULT.assess(&busy, NOW).to_json();
    assert_eq!(first, second);
    assert!(first.contains(r#""evaluated_at":1780045046"#));
}

#[test]
fn a_stored_snapshot_reassessed_under_the_same_policy_gives_identical_json() {
    let stored = DEFAULT.assess(signals(BUSY), NOW).to_json();
    let parsed: Assessment = serde_json::from_str(&stored).unwrap();
    let snapshot = Arc::unwrap_or_clone(parsed.signals).validate().unwrap();
    let again = DEFAULT.assess(&snapshot, parsed.evaluated_at).to_json();
    assert_eq!(again, stored);
}

#[test]
fn huge_and_odd_values_are_scored_like_any_other() {
    check(
        "duplicates.count=9223372036854775807",
        "review 25 duplicates.other_sessions",
    );
    check("duplicates.count=-9223372036854775808", "approve 0");
    check("document.age=9223372036854775807", "approve 0");
    check(
        "document.age=-9223372036854775808",
        "freeze 100 document.underage",
    );
    check("face.match_score=1e308", "approve 0");
    check(
        "face.match_score=-1e308",
        "freeze 70 face.low_match face.very_low_match",
    );
    check(
        "face.match_score=-0.0",
        "freeze 70 face.low_match face.very_low_match",
    );
    check("session.status='Déclined ☠'", "approve 0");
    check("risk.codes=[]", "approve 0");
}

#[test]
fn a_non_finite_score_is_not_checked_rather_than_passed_or_failed() {
    // NaN and the infinities are not measurements: `Signals::set` ignores them, so the signal
    // reads as not checked and its rules are listed as not evaluated (not passed, not failed).
    for value in ["NaN", "inf", "-inf"] {
        let spec = format!("face.match_score={value}");
        let assessment = DEFAULT.assess(signals(&spec), NOW);
        assert_eq!(render(&assessment), "approve 0", "{spec}");
        assert!(
            assessment.signals.get("face.match_score").is_none(),
            "{spec}"
        );
        assert!(assessment.signals.is_empty(), "{spec}");
        let ids = not_evaluated(&spec);
        assert!(ids.contains(&"face.low_match".to_owned()), "{spec}");
        assert!(ids.contains(&"face.very_low_match".to_owned()), "{spec}");
    }
    // A non-finite value does not overwrite a finite one either.
    check(
        "face.match_score=42.5 face.match_score=NaN",
        "review 35 face.low_match",
    );
    check(
        "face.match_score=42.5 face.match_score=-inf",
        "review 35 face.low_match",
    );
}

#[test]
fn a_non_finite_float_never_reaches_a_snapshot_and_a_stored_one_is_refused() {
    // Ignored on the way in, so the stored assessment holds no such value and reads back.
    for spec in [
        "face.match_score=NaN ip.vpn_or_tor=true",
        "liveness.score=inf ip.vpn_or_tor=true",
        "ip.distance_from_document_km=-inf ip.vpn_or_tor=true",
    ] {
        let stored = DEFAULT.assess(signals(spec), NOW).to_json();
        assert!(!stored.contains(r#""value":null"#), "{stored}");
        let parsed: Assessment = serde_json::from_str(&stored).unwrap();
        let snapshot = Arc::unwrap_or_clone(parsed.signals).validate().unwrap();
        assert_eq!(snapshot.len(), 1, "{spec}");
        assert_eq!(
            DEFAULT.assess(&snapshot, parsed.evaluated_at).to_json(),
            stored
        );
    }
    // A snapshot that holds one anyway (JSON cannot, TOML can) fails validation.
    for value in ["nan", "inf", "-inf"] {
        let snapshot: Signals = toml::from_str(&format!(
            "[\"face.match_score\"]\nvalue = {value}\nsource = {{ event_id = \"e\", path = \"p\" }}\n"
        ))
        .unwrap();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(
            snapshot.validate(),
            Err(SnapshotError::WrongType {
                name: "face.match_score".to_owned(),
                expected: "double",
            }),
            "{value}"
        );
    }
    // A finite value round-trips through the same TOML.
    let finite: Signals = toml::from_str(
        "[\"face.match_score\"]\nvalue = 42.5\nsource = { event_id = \"e\", path = \"p\" }\n",
    )
    .unwrap();
    assert_eq!(
        finite
            .validate()
            .unwrap()
            .get("face.match_score")
            .map(|s| &s.value),
        Some(&SignalValue::Float(42.5))
    );
}

/// Any value of `kind`, leaning towards edge cases (NaN and the infinities included:
/// `Signals::set` ignores them).
fn value(kind: Kind) -> BoxedStrategy<SignalValue> {
    let text = prop_oneof![
        Just(String::new()),
        Just("Declined".to_owned()),
        Just("In Review".to_owned()),
        Just("'\"\\\u{0}\u{202e}☠".to_owned()),
        any::<String>(),
    ];
    match kind {
        Kind::Bool => any::<bool>().prop_map(SignalValue::Bool).boxed(),
        Kind::Int => prop_oneof![-3i64..120, any::<i64>(), Just(i64::MAX), Just(i64::MIN)]
            .prop_map(SignalValue::Int)
            .boxed(),
        Kind::Float => prop_oneof![
            0.0f64..=100.0,
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
        ]
        .prop_map(SignalValue::Float)
        .boxed(),
        Kind::String => text.prop_map(SignalValue::String).boxed(),
        Kind::StringList => prop::collection::vec(text, 0..6)
            .prop_map(SignalValue::StringList)
            .boxed(),
    }
}

/// A random subset of the schema, each signal with a random value of its kind.
fn any_signals() -> impl Strategy<Value = Signals> {
    SCHEMA
        .iter()
        .map(|def| {
            prop::option::weighted(0.4, value(def.kind)).prop_map(move |v| v.map(|v| (def.name, v)))
        })
        .collect::<Vec<_>>()
        .prop_map(|pairs| {
            let mut signals = Signals::new();
            for (name, value) in pairs.into_iter().flatten() {
                signals.set(name, value, "evt_prop", "prop");
            }
            signals
        })
}

proptest! {
    // No regression files in the source tree: a shrunk failure becomes a `check` line above.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn assess_never_panics_and_always_scores_0_to_100(signals in any_signals(), now in any::<i64>()) {
        let assessment = DEFAULT.assess(&signals, now);
        prop_assert!(assessment.score <= 100);
        prop_assert_eq!(assessment.evaluated_at, now);
        prop_assert_eq!(&*assessment.signals, &signals);
        let all_finite = assessment
            .signals
            .iter()
            .all(|(_, s)| !matches!(s.value, SignalValue::Float(f) if !f.is_finite()));
        prop_assert!(all_finite, "a non-finite float was kept");
        prop_assert_eq!(
            assessment.fired.len() + assessment.not_evaluated.len() <= DEFAULT.rule_count(),
            true
        );
        let by_score = if assessment.score >= 70 {
            Decision::Freeze
        } else if assessment.score >= 30 {
            Decision::Review
        } else {
            Decision::Approve
        };
        prop_assert!(assessment.decision >= by_score);
        let floor = assessment.fired.iter().filter_map(|f| f.decision).max();
        prop_assert_eq!(assessment.decision, by_score.max(floor.unwrap_or(Decision::Approve)));
    }

    #[test]
    fn any_snapshot_reassesses_to_identical_json(signals in any_signals(), now in any::<i64>()) {
        let stored = DEFAULT.assess(&signals, now).to_json();
        prop_assert_eq!(&DEFAULT.assess(&signals, now).to_json(), &stored);
        let parsed: Assessment = serde_json::from_str(&stored).unwrap();
        let snapshot = Arc::unwrap_or_clone(parsed.signals).validate().unwrap();
        prop_assert_eq!(DEFAULT.assess(&snapshot, parsed.evaluated_at).to_json(), stored);
    }
}
