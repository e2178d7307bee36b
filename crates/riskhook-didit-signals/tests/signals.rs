//! Tests of the Didit → signals mapping (`riskhook_didit_signals::extract`) against the fixture
//! deliveries in `fixtures/didit/` and hand-written events: the value of every schema signal,
//! provenance paths, what stays absent and when, determinism, and freedom from panics on
//! mangled payloads.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use riskhook_core::signals::{Kind, SCHEMA, Signals, definition, groups};
use riskhook_didit::payload::DiditEvent;
use riskhook_didit_signals::extract;
use serde_json::{Value, json};

const EVENT_ID: &str = "evt_test";

// ---------------------------------------------------------------------------------------------
// Inputs: fixtures by short name, and hand-written events for what no fixture exercises.
// ---------------------------------------------------------------------------------------------

/// Short names of the fixtures the tables use.
const FIXTURES: &[(&str, &str)] = &[
    ("full", "status-updated-approved-full.json"),
    ("sanctions", "status-updated-declined-sanctions.json"),
    ("risky", "status-updated-in-review-risky.json"),
    ("console", "status-updated-console-test.json"),
    ("in-review", "status-updated-in-review.json"),
    ("approved", "status-updated-approved.json"),
    ("resubmitted", "status-updated-resubmitted.json"),
    ("not-started", "status-updated-not-started.json"),
    ("kyb", "status-updated-kyb.json"),
    ("user-status", "user-status-updated.json"),
];

/// Hand-written events, by name.
const SYNTHETIC: &[&str] = &[
    "nodes",
    "kyb-by-id",
    "blocklist-match",
    "blocklist-elsewhere",
    "expires-today",
    "expiry-no-timestamp",
    "expiry-unreadable",
    "status-in-decision-only",
];

/// 2026-05-29T08:57:26Z.
const TIMESTAMP: i64 = 1_780_045_046;
const OWN_SESSION: &str = "0a0a0a0a-0000-4000-8000-000000000001";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("fixtures").join("didit"))
        .find(|dir| dir.is_dir())
        .expect("a fixtures/didit directory above the crate")
}

fn fixture_json(file: &str) -> Value {
    let path = fixture_dir().join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Every `*.json` fixture file, sorted.
fn fixture_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.ends_with(".json").then_some(name)
        })
        .collect();
    names.sort();
    names
}

/// The JSON of a named input: a fixture's short name or a synthetic event's name.
fn input(name: &str) -> Value {
    if let Some((_, file)) = FIXTURES.iter().find(|(short, _)| *short == name) {
        return fixture_json(file);
    }
    match name {
        "nodes" => several_nodes(),
        "kyb-by-id" => json!({
            "webhook_type": "status.updated",
            "timestamp": TIMESTAMP,
            "session_id": OWN_SESSION,
            "business_session_id": "0b0b0b0b-0000-4000-8000-000000000002",
            "status": "In Progress",
        }),
        "blocklist-match" => session_with(json!({
            "liveness_checks": [{
                "status": "Approved",
                "warnings": [],
                "matches": [
                    {"session_id": "other-3", "is_blocklisted": false},
                    {"session_id": null, "is_blocklisted": true, "source": "list_entry"},
                ],
            }],
        })),
        "blocklist-elsewhere" => session_with(json!({
            "id_verifications": [{"status": "Approved", "warnings": [], "matches": []}],
            "face_matches": [{"status": "Declined", "warnings": [warning("FACEMATCH", "FACE_IN_BLOCKLIST", "error")]}],
        })),
        "expires-today" => with_expiry("2026-05-29", Some(TIMESTAMP)),
        "expiry-no-timestamp" => with_expiry("2000-01-01", None),
        "expiry-unreadable" => with_expiry("soon", Some(TIMESTAMP)),
        "status-in-decision-only" => json!({
            "webhook_type": "status.updated",
            "timestamp": TIMESTAMP,
            "session_id": OWN_SESSION,
            "decision": {"status": "Approved", "session_kind": "user"},
        }),
        other => panic!("no input named {other}"),
    }
}

fn warning(feature: &str, risk: &str, log_type: &str) -> Value {
    json!({"feature": feature, "risk": risk, "log_type": log_type, "node_id": "n"})
}

fn session_with(decision: Value) -> Value {
    let mut decision = decision;
    decision["session_id"] = json!(OWN_SESSION);
    decision["status"] = json!("In Review");
    json!({
        "webhook_type": "status.updated",
        "event_id": "5f9e2f5e-0000-4000-8000-00000000000e",
        "timestamp": TIMESTAMP,
        "session_id": OWN_SESSION,
        "status": "In Review",
        "decision": decision,
    })
}

fn with_expiry(expiration_date: &str, timestamp: Option<i64>) -> Value {
    let mut event = session_with(json!({
        "id_verifications": [{"status": "Approved", "expiration_date": expiration_date, "warnings": []}],
    }));
    match timestamp {
        Some(t) => event["timestamp"] = json!(t),
        None => {
            event.as_object_mut().unwrap().remove("timestamp");
        }
    }
    event
}

/// Several workflow nodes per feature, with every risk the fixtures never raise.
fn several_nodes() -> Value {
    let id = |risk| warning("ID_VERIFICATION", risk, "warning");
    session_with(json!({
        "id_verifications": [
            {
                "node_id": "ocr-1", "status": "Approved", "expiration_date": "2026-05-28",
                "age": 30.9, "document_type": "Passport", "issuing_state": "FRA",
                "nationality": "FRA", "warnings": [],
                "matches": [{"session_id": OWN_SESSION}],
            },
            {
                "node_id": "ocr-2", "status": "In Review", "expiration_date": "2030-01-01",
                "age": 41, "document_type": "Identity Card", "nationality": "BEL",
                "warnings": [
                    id("SCREEN_CAPTURE_DETECTED"),
                    id("PRINTED_COPY_DETECTED"),
                    warning("ID_VERIFICATION", "PORTRAIT_MANIPULATION_DETECTED", "error"),
                    warning("ID_VERIFICATION", "ID_DOCUMENT_IN_BLOCKLIST", "error"),
                ],
                "matches": [
                    {"session_id": "other-1"},
                    {"session_id": null},
                    {"session_id": OWN_SESSION},
                ],
            },
        ],
        "liveness_checks": [
            {"status": "Approved", "method": "active_3d", "score": 88.0, "warnings": [], "matches": []},
            {
                "status": "Declined", "method": "PASSIVE", "score": 55.5,
                "warnings": [
                    warning("LIVENESS", "LIVENESS_FACE_ATTACK", "error"),
                    warning("LIVENESS", "POSSIBLE_DUPLICATED_FACE", "information"),
                ],
                "matches": [
                    {"session_id": "other-2", "is_blocklisted": true},
                    {"session_id": "other-1"},
                ],
            },
        ],
        "face_matches": [
            {"status": "Approved", "score": 95.0, "warnings": []},
            {"status": "Pending Something", "score": 80.5, "warnings": []},
        ],
        "aml_screenings": [
            {
                "status": "In Review", "hits": null,
                "warnings": [warning("AML", "COULD_NOT_PERFORM_AML_SCREENING", "warning")],
            },
            {
                "status": "Approved", "warnings": [],
                "hits": [
                    {"match": true, "match_score": 95, "risk_score": 60, "datasets": ["PEP Level 3"], "review_status": "Unreviewed"},
                    {"match_score": 93, "risk_score": 70, "datasets": ["PEP"]},
                    {"match": true, "match_score": 90, "risk_score": 88, "datasets": ["Adverse Media", "Warnings and Regulatory Enforcement"]},
                    {"match": false, "match_score": 99, "risk_score": 99, "datasets": ["Sanctions"]},
                    {"match": true, "match_score": 99, "risk_score": 99, "datasets": ["Sanctions", "PEP Level 1"], "review_status": "False Positive"},
                ],
            },
        ],
        "phone_verifications": [{
            "status": "Declined", "is_disposable": true, "is_virtual": false,
            "carrier": {"name": "Hosted Lines Ltd", "type": "VoIP"}, "country_code": "GB",
            "warnings": [warning("PHONE", "HIGH_RISK_PHONE_NUMBER", "error")],
        }],
        "email_verifications": [{
            "status": "Expired", "is_undeliverable": null, "is_breached": false, "breaches": [],
            "warnings": [warning("EMAIL", "UNDELIVERABLE_EMAIL_DETECTED", "error")],
        }],
        "ip_analyses": [
            {
                "status": "Approved", "is_vpn_or_tor": false, "is_data_center": false,
                "ip_country_code": "FR", "ip": {"distance_from_id_document": 12.5}, "warnings": [],
            },
            {
                "status": "Not Finished",
                "id_document": {"distance_from_ip": {"direction": "N", "distance": 40.0}},
                "warnings": [],
            },
        ],
        "poa_verifications": [{
            "status": "Resub Requested",
            "document_metadata": {"is_tampered": false, "overlay_manipulation": {"detected": true}},
            "warnings": [
                warning("PROOF_OF_ADDRESS", "NAME_MISMATCH_ID_VERIFICATION", "warning"),
                warning("PROOF_OF_ADDRESS", "POA_COUNTRY_MISMATCH_WITH_PROVIDED", "warning"),
                warning("PROOF_OF_ADDRESS", "EXPIRED_DOCUMENT", "error"),
            ],
        }],
    }))
}

#[track_caller]
fn event(json: &Value) -> DiditEvent {
    DiditEvent::from_value(json.clone()).unwrap()
}

/// The signals of a named input; `untrusted:<name>` extracts as if only X-Signature-Simple had
/// verified it.
fn signals_of(name: &str) -> Signals {
    match name.strip_prefix("untrusted:") {
        Some(name) => extract(&event(&input(name)), EVENT_ID, false),
        None => extract(&event(&input(name)), EVENT_ID, true),
    }
}

/// A signal's value as JSON (`true`, `3`, `42.1`, `"Approved"`, `["A","B"]`), or `absent`.
fn render(signals: &Signals, name: &str) -> String {
    signals.get(name).map_or_else(
        || "absent".to_owned(),
        |s| serde_json::to_string(&s.value).unwrap(),
    )
}

fn names(signals: &Signals) -> BTreeSet<&str> {
    signals.iter().map(|(name, _)| name).collect()
}

// ---------------------------------------------------------------------------------------------
// The value table: one row per (input, signal, expected value as JSON or `absent`).
// ---------------------------------------------------------------------------------------------

#[rustfmt::skip]
const VALUES: &[(&str, &str, &str)] = &[
    // The full fixture: every feature ran and passed; one informational breach warning.
    ("full", "session.status", r#""Approved""#),
    ("full", "session.kind", r#""user""#),
    ("full", "session.body_trusted", "true"),
    ("full", "document.status", r#""Approved""#),
    ("full", "document.verified", "true"),
    ("full", "document.expired", "false"),
    ("full", "document.tampered", "false"),
    ("full", "document.screen_capture", "false"),
    ("full", "document.printed_copy", "false"),
    ("full", "document.age", "38"),
    ("full", "document.nationality", r#""ESP""#),
    ("full", "document.issuing_state", r#""ESP""#),
    ("full", "document.type", r#""Identity Card""#),
    ("full", "liveness.status", r#""Approved""#),
    ("full", "liveness.passed", "true"),
    ("full", "liveness.method", r#""PASSIVE""#),
    ("full", "liveness.score", "96.12"),
    ("full", "liveness.face_attack", "false"),
    ("full", "liveness.duplicate_face", "false"),
    ("full", "face.status", r#""Approved""#),
    ("full", "face.passed", "true"),
    ("full", "face.match_score", "93.72"),
    ("full", "aml.status", r#""Approved""#),
    ("full", "aml.screening_failed", "false"),
    ("full", "aml.total_hits", "0"),
    ("full", "aml.sanctions_hits", "0"),
    ("full", "aml.pep_hits", "0"),
    ("full", "aml.pep_level", "0"),
    ("full", "aml.adverse_media_hits", "0"),
    ("full", "aml.enforcement_hits", "0"),
    ("full", "aml.max_match_score", "0.0"),
    ("full", "aml.max_risk_score", "0.0"),
    ("full", "phone.status", r#""Approved""#),
    ("full", "phone.verified", "true"),
    ("full", "phone.disposable", "false"),
    ("full", "phone.voip", "false"),
    ("full", "phone.high_risk", "false"),
    ("full", "phone.country", r#""ES""#),
    ("full", "email.status", r#""Approved""#),
    ("full", "email.verified", "true"),
    ("full", "email.disposable", "false"),
    ("full", "email.breached", "true"),
    ("full", "email.breach_count", "2"),
    ("full", "email.undeliverable", "false"),
    ("full", "ip.status", r#""Approved""#),
    ("full", "ip.vpn_or_tor", "false"),
    ("full", "ip.data_center", "false"),
    ("full", "ip.country", r#""ES""#),
    ("full", "ip.country_mismatch", "false"),
    ("full", "ip.distance_from_document_km", "3.84"),
    ("full", "poa.status", r#""Approved""#),
    ("full", "poa.verified", "true"),
    ("full", "poa.name_mismatch", "false"),
    ("full", "poa.address_mismatch", "false"),
    ("full", "poa.manipulated", "false"),
    ("full", "poa.expired", "false"),
    ("full", "duplicates.count", "0"),
    ("full", "duplicates.blocklisted", "false"),
    ("full", "risk.codes", r#"["BREACHED_EMAIL_DETECTED"]"#),
    ("full", "risk.decline_codes", "[]"),
    ("full", "risk.review_codes", "[]"),

    // Declined by AML: one sanctions hit counted, the False Positive PEP hit not.
    ("sanctions", "session.status", r#""Declined""#),
    ("sanctions", "aml.status", r#""Declined""#),
    ("sanctions", "aml.total_hits", "1"),
    ("sanctions", "aml.sanctions_hits", "1"),
    ("sanctions", "aml.pep_hits", "0"),
    ("sanctions", "aml.pep_level", "0"),
    ("sanctions", "aml.max_match_score", "98.0"),
    ("sanctions", "aml.max_risk_score", "95.0"),
    ("sanctions", "risk.decline_codes", r#"["POSSIBLE_MATCH_FOUND"]"#),
    ("sanctions", "document.type", r#""Passport""#),
    ("sanctions", "phone.status", "absent"),
    ("sanctions", "poa.verified", "absent"),

    // In review with many risks.
    ("risky", "session.status", r#""In Review""#),
    ("risky", "document.verified", "false"),
    ("risky", "document.age", "28"),
    ("risky", "liveness.score", "61.3"),
    ("risky", "liveness.method", r#""FLASHING""#),
    ("risky", "face.status", r#""In Review""#),
    ("risky", "face.passed", "false"),
    ("risky", "face.match_score", "42.1"),
    ("risky", "phone.voip", "true"),
    ("risky", "phone.country", r#""US""#),
    ("risky", "phone.verified", "false"),
    ("risky", "email.disposable", "true"),
    ("risky", "email.breached", "false"),
    ("risky", "email.breach_count", "0"),
    ("risky", "ip.vpn_or_tor", "true"),
    ("risky", "ip.data_center", "true"),
    ("risky", "ip.country", r#""NL""#),
    ("risky", "ip.country_mismatch", "true"),
    ("risky", "ip.distance_from_document_km", "9611.2"),
    ("risky", "duplicates.count", "1"),
    ("risky", "duplicates.blocklisted", "false"),
    ("risky", "poa.status", "absent"),
    ("risky", "risk.codes", r#"["COUNTRY_FROM_DOCUMENT_DOES_NOT_MATCH_COUNTRY_FROM_IP","DISPOSABLE_EMAIL_DETECTED","LOW_FACE_MATCH_SIMILARITY","LOW_LIVENESS_SCORE","POSSIBLE_DUPLICATED_USER","PRIVATE_NETWORK_DETECTED","VOIP_NUMBER_DETECTED"]"#),
    ("risky", "risk.review_codes", r#"["COUNTRY_FROM_DOCUMENT_DOES_NOT_MATCH_COUNTRY_FROM_IP","DISPOSABLE_EMAIL_DETECTED","LOW_FACE_MATCH_SIMILARITY","LOW_LIVENESS_SCORE","POSSIBLE_DUPLICATED_USER","PRIVATE_NETWORK_DETECTED","VOIP_NUMBER_DETECTED"]"#),
    ("risky", "risk.decline_codes", "[]"),

    // The console's "Try Webhook" delivery: no event_id, sandbox, still mapped.
    ("console", "session.status", r#""Approved""#),
    ("console", "document.nationality", r#""USA""#),
    ("console", "liveness.score", "99.03"),
    ("console", "face.match_score", "95.26"),
    ("console", "ip.status", "absent"),

    // Feature status left In Review by a reviewer who approved the session.
    ("approved", "session.status", r#""Approved""#),
    ("approved", "face.status", r#""In Review""#),
    ("in-review", "aml.status", "absent"),
    ("in-review", "ip.distance_from_document_km", "0.41"),

    // No decision: only the session.
    ("resubmitted", "session.status", r#""Resubmitted""#),
    ("resubmitted", "session.kind", r#""user""#),
    ("resubmitted", "document.status", "absent"),
    ("resubmitted", "risk.codes", "absent"),
    ("not-started", "session.status", r#""Not Started""#),
    ("not-started", "session.body_trusted", "true"),
    ("not-started", "duplicates.count", "absent"),

    // KYB: no person features, so no duplicates either.
    ("kyb", "session.kind", r#""business""#),
    ("kyb", "aml.status", r#""Approved""#),
    ("kyb", "document.status", "absent"),
    ("kyb", "duplicates.count", "absent"),
    ("kyb", "risk.codes", "[]"),
    ("kyb-by-id", "session.kind", r#""business""#),

    // Not a session event: nothing.
    ("user-status", "session.status", "absent"),
    ("user-status", "session.body_trusted", "absent"),

    // Several nodes per feature: worst status, lowest/highest scores, every other risk.
    ("nodes", "session.kind", r#""user""#),
    ("nodes", "document.status", r#""In Review""#),
    ("nodes", "document.verified", "false"),
    ("nodes", "document.expired", "true"),
    ("nodes", "document.tampered", "true"),
    ("nodes", "document.screen_capture", "true"),
    ("nodes", "document.printed_copy", "true"),
    ("nodes", "document.age", "30"),
    ("nodes", "document.nationality", r#""FRA""#),
    ("nodes", "document.issuing_state", r#""FRA""#),
    ("nodes", "document.type", r#""Passport""#),
    ("nodes", "liveness.status", r#""Declined""#),
    ("nodes", "liveness.passed", "false"),
    ("nodes", "liveness.method", r#""ACTIVE_3D""#),
    ("nodes", "liveness.score", "55.5"),
    ("nodes", "liveness.face_attack", "true"),
    ("nodes", "liveness.duplicate_face", "true"),
    ("nodes", "face.status", r#""Pending Something""#),
    ("nodes", "face.passed", "false"),
    ("nodes", "face.match_score", "80.5"),
    ("nodes", "aml.status", r#""In Review""#),
    ("nodes", "aml.screening_failed", "true"),
    ("nodes", "aml.total_hits", "3"),
    ("nodes", "aml.sanctions_hits", "0"),
    ("nodes", "aml.pep_hits", "2"),
    ("nodes", "aml.pep_level", "1"),
    ("nodes", "aml.adverse_media_hits", "1"),
    ("nodes", "aml.enforcement_hits", "1"),
    ("nodes", "aml.max_match_score", "95.0"),
    ("nodes", "aml.max_risk_score", "88.0"),
    ("nodes", "phone.status", r#""Declined""#),
    ("nodes", "phone.disposable", "true"),
    ("nodes", "phone.voip", "true"),
    ("nodes", "phone.high_risk", "true"),
    ("nodes", "phone.country", r#""GB""#),
    ("nodes", "email.status", r#""Expired""#),
    ("nodes", "email.verified", "false"),
    ("nodes", "email.breached", "false"),
    ("nodes", "email.breach_count", "0"),
    ("nodes", "email.undeliverable", "true"),
    ("nodes", "ip.status", r#""Not Finished""#),
    ("nodes", "ip.country", r#""FR""#),
    ("nodes", "ip.distance_from_document_km", "40.0"),
    ("nodes", "poa.status", r#""Resub Requested""#),
    ("nodes", "poa.verified", "false"),
    ("nodes", "poa.name_mismatch", "true"),
    ("nodes", "poa.address_mismatch", "true"),
    ("nodes", "poa.manipulated", "true"),
    ("nodes", "poa.expired", "true"),
    ("nodes", "duplicates.count", "2"),
    ("nodes", "duplicates.blocklisted", "true"),
    ("nodes", "risk.codes", r#"["COULD_NOT_PERFORM_AML_SCREENING","EXPIRED_DOCUMENT","HIGH_RISK_PHONE_NUMBER","ID_DOCUMENT_IN_BLOCKLIST","LIVENESS_FACE_ATTACK","NAME_MISMATCH_ID_VERIFICATION","POA_COUNTRY_MISMATCH_WITH_PROVIDED","PORTRAIT_MANIPULATION_DETECTED","POSSIBLE_DUPLICATED_FACE","PRINTED_COPY_DETECTED","SCREEN_CAPTURE_DETECTED","UNDELIVERABLE_EMAIL_DETECTED"]"#),
    ("nodes", "risk.decline_codes", r#"["EXPIRED_DOCUMENT","HIGH_RISK_PHONE_NUMBER","ID_DOCUMENT_IN_BLOCKLIST","LIVENESS_FACE_ATTACK","PORTRAIT_MANIPULATION_DETECTED","UNDELIVERABLE_EMAIL_DETECTED"]"#),
    ("nodes", "risk.review_codes", r#"["COULD_NOT_PERFORM_AML_SCREENING","NAME_MISMATCH_ID_VERIFICATION","POA_COUNTRY_MISMATCH_WITH_PROVIDED","PRINTED_COPY_DETECTED","SCREEN_CAPTURE_DETECTED"]"#),

    // Blocklists without a duplicate session; expiry judged on the event's day, never the clock.
    ("blocklist-match", "duplicates.count", "1"),
    ("blocklist-match", "duplicates.blocklisted", "true"),
    ("blocklist-elsewhere", "duplicates.blocklisted", "true"),
    ("expires-today", "document.expired", "false"),
    ("expiry-no-timestamp", "document.expired", "false"),
    ("expiry-unreadable", "document.expired", "false"),
    ("status-in-decision-only", "session.status", r#""Approved""#),

    // Only X-Signature-Simple verified the body: the decision is not read.
    ("untrusted:full", "session.body_trusted", "false"),
    ("untrusted:full", "session.status", r#""Approved""#),
    ("untrusted:full", "session.kind", r#""user""#),
    ("untrusted:full", "document.status", "absent"),
    ("untrusted:full", "risk.codes", "absent"),
    ("untrusted:status-in-decision-only", "session.status", "absent"),
];

#[test]
fn every_row_of_the_value_table_holds() {
    let mut cache: BTreeMap<&str, Signals> = BTreeMap::new();
    let mut failures = Vec::new();
    for &(name, signal, expected) in VALUES {
        let signals = cache.entry(name).or_insert_with(|| signals_of(name));
        let got = render(signals, signal);
        if got != expected {
            let from = signals
                .get(signal)
                .map(|s| s.source.path.as_str())
                .unwrap_or("-");
            failures.push(format!(
                "  {name:<20} {signal:<30} expected {expected}\n  {:<51} got      {got} (from {from})",
                ""
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        VALUES.len(),
        failures.join("\n")
    );
}

#[test]
fn the_value_table_pins_every_signal_and_both_values_of_every_flag() {
    for &(name, signal, _) in VALUES {
        assert!(
            definition(signal).is_some(),
            "row for unknown signal {signal} ({name})"
        );
    }
    let mut missing = Vec::new();
    for def in SCHEMA {
        let expected: BTreeSet<&str> = VALUES
            .iter()
            .filter(|(_, signal, _)| *signal == def.name)
            .map(|(_, _, expected)| *expected)
            .collect();
        if expected.iter().all(|e| *e == "absent") {
            missing.push(format!("{}: no concrete value", def.name));
        }
        if def.kind == Kind::Bool && !(expected.contains("true") && expected.contains("false")) {
            missing.push(format!("{}: not both true and false", def.name));
        }
    }
    assert!(
        missing.is_empty(),
        "the table does not cover:\n{}",
        missing.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Provenance.
// ---------------------------------------------------------------------------------------------

#[rustfmt::skip]
const PATHS: &[(&str, &str, &str)] = &[
    ("full", "session.status", "status"),
    ("full", "session.kind", "decision.session_kind"),
    ("full", "session.body_trusted", "$"),
    ("kyb", "session.kind", "session_kind"),
    ("kyb-by-id", "session.kind", "business_session_id"),
    ("not-started", "session.kind", "session_kind"),
    ("status-in-decision-only", "session.status", "decision.status"),
    ("full", "document.verified", "decision.id_verifications[*].status"),
    ("full", "document.screen_capture", "decision.id_verifications[*].warnings"),
    ("full", "document.age", "decision.id_verifications[0].age"),
    ("full", "ip.vpn_or_tor", "decision.ip_analyses[*]"),
    ("full", "ip.distance_from_document_km", "decision.ip_analyses[0].ip.distance_from_id_document"),
    ("full", "email.breached", "decision.email_verifications[0].is_breached"),
    ("full", "email.breach_count", "decision.email_verifications[0].breaches"),
    ("full", "aml.max_match_score", "decision.aml_screenings[*].hits"),
    ("full", "duplicates.count", "decision.*[*].matches"),
    ("full", "duplicates.blocklisted", "decision.*[*]"),
    ("full", "risk.codes", "decision.*[*].warnings"),
    ("risky", "face.match_score", "decision.face_matches[0].score"),
    ("risky", "ip.vpn_or_tor", "decision.ip_analyses[0].is_vpn_or_tor"),
    ("risky", "ip.country_mismatch", "decision.ip_analyses[0].warnings"),
    ("sanctions", "aml.sanctions_hits", "decision.aml_screenings[*].hits"),
    ("sanctions", "aml.max_match_score", "decision.aml_screenings[0].hits[0].match_score"),
    ("nodes", "document.status", "decision.id_verifications[1].status"),
    ("nodes", "document.expired", "decision.id_verifications[0].expiration_date"),
    ("nodes", "document.tampered", "decision.id_verifications[1].warnings"),
    ("nodes", "liveness.method", "decision.liveness_checks[0].method"),
    ("nodes", "face.match_score", "decision.face_matches[1].score"),
    ("nodes", "aml.pep_level", "decision.aml_screenings[1].hits[1].datasets"),
    ("nodes", "aml.max_risk_score", "decision.aml_screenings[1].hits[2].risk_score"),
    ("nodes", "aml.screening_failed", "decision.aml_screenings[0].warnings"),
    ("nodes", "phone.voip", "decision.phone_verifications[0].carrier.type"),
    ("nodes", "ip.distance_from_document_km", "decision.ip_analyses[1].id_document.distance_from_ip"),
    ("nodes", "poa.manipulated", "decision.poa_verifications[0].document_metadata.overlay_manipulation.detected"),
    ("nodes", "duplicates.blocklisted", "decision.id_verifications[1].warnings"),
    ("blocklist-match", "duplicates.blocklisted", "decision.liveness_checks[0].matches[1].is_blocklisted"),
    ("blocklist-elsewhere", "duplicates.blocklisted", "decision.*[*].warnings"),
    ("expires-today", "document.expired", "decision.id_verifications[*]"),
];

#[test]
fn every_row_of_the_path_table_holds() {
    let mut failures = Vec::new();
    for &(name, signal, expected) in PATHS {
        let signals = signals_of(name);
        let got = signals
            .get(signal)
            .map_or("absent", |s| s.source.path.as_str());
        if got != expected {
            failures.push(format!(
                "  {name:<20} {signal:<30} expected {expected}, got {got}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "paths differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_signal_names_our_event_id() {
    for (name, _) in FIXTURES {
        for (signal, s) in signals_of(name).iter() {
            assert_eq!(s.source.event_id, EVENT_ID, "{name} {signal}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What is set, and when.
// ---------------------------------------------------------------------------------------------

const SESSION_ONLY: [&str; 3] = ["session.body_trusted", "session.kind", "session.status"];

#[test]
fn the_full_fixture_sets_every_group() {
    let signals = signals_of("full");
    let present: BTreeSet<&str> = names(&signals)
        .into_iter()
        .filter_map(|n| n.split_once('.').map(|(group, _)| group))
        .collect();
    assert_eq!(present, groups().into_iter().collect::<BTreeSet<_>>());
}

#[test]
fn events_without_a_decision_set_only_the_session() {
    for name in ["resubmitted", "not-started"] {
        let signals = signals_of(name);
        assert_eq!(
            names(&signals),
            SESSION_ONLY.into_iter().collect(),
            "{name}"
        );
    }
    let in_progress = extract(
        &event(&fixture_json("status-updated-in-progress.json")),
        EVENT_ID,
        true,
    );
    assert_eq!(names(&in_progress), SESSION_ONLY.into_iter().collect());
}

#[test]
fn an_untrusted_body_sets_only_the_session_from_top_level_fields() {
    for file in fixture_files() {
        let event = event(&fixture_json(&file));
        let signals = extract(&event, EVENT_ID, false);
        let outside: Vec<&str> = names(&signals)
            .into_iter()
            .filter(|n| !n.starts_with("session."))
            .collect();
        assert!(outside.is_empty(), "{file}: {outside:?}");
        if event.session().is_some() {
            assert_eq!(render(&signals, "session.body_trusted"), "false", "{file}");
            assert_eq!(
                signals
                    .get("session.status")
                    .map(|s| s.source.path.as_str()),
                Some("status"),
                "{file}"
            );
        }
    }
    // The decision is not covered by X-Signature-Simple, so its status is not read either.
    let only_in_decision = event(&input("status-in-decision-only"));
    let signals = extract(&only_in_decision, EVENT_ID, false);
    assert_eq!(render(&signals, "session.status"), "absent");
    assert_eq!(render(&signals, "session.kind"), r#""user""#);
}

#[test]
fn events_that_are_not_about_a_session_set_nothing() {
    for file in fixture_files() {
        let event = event(&fixture_json(&file));
        if event.session().is_none() {
            let signals = extract(&event, EVENT_ID, true);
            assert!(signals.is_empty(), "{file}: {:?}", names(&signals));
        }
    }
}

#[test]
fn the_sanctions_decline_counts_the_sanctions_hit_and_not_the_false_positive() {
    let signals = signals_of("sanctions");
    let int = |name: &str| match signals.get(name).map(|s| &s.value) {
        Some(riskhook_core::signals::SignalValue::Int(i)) => *i,
        other => panic!("{name}: {other:?}"),
    };
    assert!(int("aml.sanctions_hits") >= 1);
    assert_eq!(
        int("aml.pep_hits"),
        0,
        "the PEP hit is a reviewed False Positive"
    );
    assert_eq!(int("aml.total_hits"), int("aml.sanctions_hits"));
    assert_eq!(render(&signals, "aml.max_match_score"), "98.0");
}

#[test]
fn the_risky_review_raises_each_of_its_risks() {
    let signals = signals_of("risky");
    for flag in [
        "ip.vpn_or_tor",
        "ip.data_center",
        "ip.country_mismatch",
        "email.disposable",
        "phone.voip",
    ] {
        assert_eq!(render(&signals, flag), "true", "{flag}");
    }
    assert_eq!(render(&signals, "face.match_score"), "42.1");
    let Some(riskhook_core::signals::SignalValue::Int(duplicates)) =
        signals.get("duplicates.count").map(|s| &s.value)
    else {
        panic!("duplicates.count missing");
    };
    assert!(*duplicates >= 1);
    assert!(render(&signals, "risk.codes").contains(r#""LOW_LIVENESS_SCORE""#));
}

#[test]
fn the_console_test_delivery_is_mapped_like_any_other() {
    let signals = signals_of("console");
    assert_eq!(render(&signals, "session.status"), r#""Approved""#);
    assert_eq!(render(&signals, "document.verified"), "true");
    assert_eq!(render(&signals, "aml.total_hits"), "0");
    assert_eq!(render(&signals, "risk.codes"), "[]");
}

#[test]
fn every_schema_signal_is_produced_by_at_least_one_fixture() {
    let mut produced = BTreeSet::new();
    for file in fixture_files() {
        let signals = extract(&event(&fixture_json(&file)), EVENT_ID, true);
        for (name, signal) in signals.iter() {
            let def = definition(name).unwrap();
            assert_eq!(signal.value.kind(), def.kind, "{file}: {name}");
            produced.insert(name.to_owned());
        }
    }
    let never: Vec<&str> = SCHEMA
        .iter()
        .map(|d| d.name)
        .filter(|n| !produced.contains(*n))
        .collect();
    assert!(never.is_empty(), "no fixture produces {never:?}");
}

// ---------------------------------------------------------------------------------------------
// Determinism and totality.
// ---------------------------------------------------------------------------------------------

fn every_input() -> Vec<(String, Value)> {
    let mut inputs: Vec<(String, Value)> = fixture_files()
        .into_iter()
        .map(|file| {
            let json = fixture_json(&file);
            (file, json)
        })
        .collect();
    inputs.extend(
        SYNTHETIC
            .iter()
            .map(|name| ((*name).to_owned(), input(name))),
    );
    inputs
}

#[test]
fn extracting_twice_gives_identical_signals_and_bytes() {
    for (name, json) in every_input() {
        for trusted in [true, false] {
            let first = extract(&event(&json), EVENT_ID, trusted);
            let second = extract(&event(&json), EVENT_ID, trusted);
            assert_eq!(first, second, "{name}");
            assert_eq!(
                serde_json::to_string(&first).unwrap(),
                serde_json::to_string(&second).unwrap(),
                "{name}"
            );
        }
    }
}

/// Every node of a JSON tree, as JSON pointers, parents before children.
fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return,
    };
    for (key, child) in children {
        let pointer = format!("{at}/{key}");
        out.push(pointer.clone());
        pointers(child, &pointer, out);
    }
}

/// What a mutation does to the node it targets.
const MUTATIONS: usize = 10;

fn mutate(root: &mut Value, pointer: &str, mutation: usize) {
    let replacement = match mutation {
        0 => Value::Null,
        1 => json!("x"),
        2 => json!(-1),
        3 => json!(1e300),
        4 => json!(true),
        5 => json!({}),
        6 => json!([]),
        7 => json!([null, 7, "y"]),
        8 => json!("2026-02-30T99"),
        _ => {
            // Drop the key (or array element).
            let Some((parent, last)) = pointer.rsplit_once('/') else {
                return;
            };
            match root.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(items)) => {
                    if let Ok(i) = last.parse::<usize>()
                        && i < items.len()
                    {
                        items.remove(i);
                    }
                }
                _ => {}
            }
            return;
        }
    };
    if let Some(node) = root.pointer_mut(pointer) {
        *node = replacement;
    }
}

/// Parses (which may refuse) and extracts both ways; only a panic fails.
fn extract_any(json: Value) {
    if let Ok(event) = DiditEvent::from_value(json) {
        for trusted in [true, false] {
            let signals = extract(&event, EVENT_ID, trusted);
            for (name, signal) in signals.iter() {
                assert_eq!(Some(signal.value.kind()), definition(name).map(|d| d.kind));
            }
        }
    }
}

#[test]
fn every_single_mutation_of_every_input_extracts_without_panicking() {
    // Each field position is mutated once, in the first input that has it: the fixtures share
    // most of their shape, and array elements of one array share theirs.
    let mut positions = BTreeSet::new();
    for (_, json) in every_input() {
        let mut nodes = Vec::new();
        pointers(&json, "", &mut nodes);
        for pointer in &nodes {
            let position: Vec<&str> = pointer
                .split('/')
                .map(|part| {
                    if part.parse::<usize>().is_ok() {
                        "*"
                    } else {
                        part
                    }
                })
                .collect();
            if !positions.insert(position.join("/")) {
                continue;
            }
            for mutation in 0..MUTATIONS {
                let mut mutated = json.clone();
                mutate(&mut mutated, pointer, mutation);
                extract_any(mutated);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Several mutations in a row reach combinations the single-mutation loop does not.
    #[test]
    fn random_mutation_sequences_extract_without_panicking(
        which in 0..FIXTURES.len() + SYNTHETIC.len(),
        steps in prop::collection::vec((any::<usize>(), 0..MUTATIONS), 1..8),
    ) {
        let name = FIXTURES
            .get(which)
            .map(|(short, _)| *short)
            .or_else(|| SYNTHETIC.get(which - FIXTURES.len()).copied())
            .unwrap();
        let mut json = input(name);
        for (node, mutation) in steps {
            let mut nodes = Vec::new();
            pointers(&json, "", &mut nodes);
            if nodes.is_empty() {
                break;
            }
            let pointer = nodes[node % nodes.len()].clone();
            mutate(&mut json, &pointer, mutation);
        }
        extract_any(json);
    }
}
