//! The default policy's own test cases, `policy/cases/*.toml`, run the way `riskhook policy
//! test crates/riskhook-core/policy/default.toml crates/riskhook-core/policy/cases` runs them:
//! each case's payload file (relative to the case) is read, turned into signals by the Didit
//! mapping, assessed, and checked against the case's expectations. They run here, beside the
//! mapping their payloads need; the policy and its cases live in `riskhook-core`.
//!
//! The format is `riskhook_core::cases::Case`; the cases document the policy as much as they
//! test it, so each says in words why its decision is right.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use riskhook_core::assessment::Assessment;
use riskhook_core::cases::Case;
use riskhook_core::policy::{DEFAULT_POLICY, Policy, fired_ids};
use riskhook_core::signals::SignalValue;
use riskhook_didit_signals::case_payload;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../riskhook-core/policy/cases")
}

/// Every `.toml` file of the cases directory, sorted by name.
fn case_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

/// Parses and checks one case file.
fn run(policy: &Policy, path: &Path) -> Result<Assessment, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let case = Case::parse(&text).map_err(|e| e.to_string())?;
    let payload = match &case.payload {
        Some(relative) => {
            let file = path.parent().unwrap().join(relative);
            Some(
                std::fs::read(&file)
                    .map_err(|e| format!("cannot read payload {}: {e}", file.display()))?,
            )
        }
        None => None,
    };
    if case.description.trim().is_empty() {
        return Err("the description is empty".to_owned());
    }
    case.check(policy, payload.as_deref(), case_payload)
        .map_err(|e| e.to_string())
}

#[test]
fn every_case_of_the_default_policy_holds() {
    let policy = Policy::load(DEFAULT_POLICY).unwrap();
    let files = case_files();
    assert!(files.len() >= 12, "only {} cases", files.len());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            run(&policy, path)
                .err()
                .map(|e| format!("{}: {e}", path.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_of_the_default_policy_fires_in_some_case() {
    let policy = Policy::load(DEFAULT_POLICY).unwrap();
    let mut fired = BTreeSet::new();
    for path in case_files() {
        if let Ok(assessment) = run(&policy, &path) {
            fired.extend(fired_ids(&assessment).into_iter().map(str::to_owned));
        }
    }
    let never: Vec<String> = policy
        .rules()
        .into_iter()
        .map(|r| r.id)
        .filter(|id| !fired.contains(id))
        .collect();
    assert!(never.is_empty(), "no case fires {never:?}");
}

#[test]
fn a_case_that_does_not_hold_is_reported_with_what_went_wrong() {
    let policy = Policy::load(DEFAULT_POLICY).unwrap();
    let case = Case::parse(
        r#"
description = "A sanctions hit is not an approval."
[signals]
"aml.sanctions_hits" = 1
[expect]
decision = "approve"
score = 0
fired = []
not_fired = ["aml.sanctions_hit"]
"#,
    )
    .unwrap();
    let error = case
        .check(&policy, None, case_payload)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "decision is freeze, expected approve; score is 100, expected 0; \
         fired [\"aml.sanctions_hit\"], expected exactly []; `aml.sanctions_hit` fired"
    );
}

#[test]
fn a_case_with_both_or_neither_input_is_refused() {
    let both =
        "description = \"x\"\npayload = \"p.json\"\n[signals]\n[expect]\ndecision = \"approve\"\n";
    let neither = "description = \"x\"\n[expect]\ndecision = \"approve\"\n";
    for text in [both, neither] {
        assert_eq!(
            Case::parse(text).unwrap_err().to_string(),
            "invalid case: give exactly one of `payload` or `[signals]`"
        );
    }
}

#[test]
fn the_fully_checked_fixture_approves_with_every_rule_evaluated() {
    // Its approval must come from checks that ran and passed, not from checks that did not run.
    let policy = Policy::load(DEFAULT_POLICY).unwrap();
    let assessment = run(&policy, &cases_dir().join("fixture-approved-full.toml")).unwrap();
    assert!(
        assessment.not_evaluated.is_empty(),
        "{:?}",
        assessment.not_evaluated
    );
    let breached = &assessment.fired[0];
    assert_eq!(
        breached.reads.get("email.breached"),
        Some(&Some(SignalValue::Bool(true)))
    );
}

#[test]
fn a_fixture_with_checks_that_did_not_run_lists_exactly_their_rules_as_not_evaluated() {
    // What each fixture leaves unevaluated, by the prefix of the rule ids: the checks its
    // workflow did not run, and nothing else. So its decision comes from the checks that ran.
    let policy = Policy::load(DEFAULT_POLICY).unwrap();
    let unscreened = "aml email phone poa";
    let nothing_ran = "aml document duplicates email face ip liveness phone poa";
    for (case, expected) in [
        ("fixture-approved-full.toml", ""),
        ("fixture-in-review-risky.toml", "poa"),
        ("fixture-declined-sanctions.toml", "email phone poa"),
        ("fixture-approved-after-review.toml", "email phone poa"),
        ("fixture-in-review.toml", unscreened),
        (
            "fixture-kyb-approved.toml",
            "document duplicates email face ip liveness phone poa",
        ),
        ("fixture-not-started.toml", nothing_ran),
        ("fixture-resubmitted.toml", nothing_ran),
    ] {
        let assessment = run(&policy, &cases_dir().join(case)).unwrap();
        let prefixes: BTreeSet<&str> = assessment
            .not_evaluated
            .iter()
            .map(|n| n.rule_id.split_once('.').unwrap().0)
            .collect();
        assert_eq!(
            prefixes.into_iter().collect::<Vec<_>>().join(" "),
            expected,
            "{case}"
        );
    }
}
