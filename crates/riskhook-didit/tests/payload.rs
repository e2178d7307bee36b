//! Tests of the public `payload` API against the fixture deliveries in `fixtures/didit/` and
//! against hand-written edge cases: identity of every fixture, typed values of the full
//! decision, leniency, rejections, the nested envelope, and freedom from panics.

use std::path::{Path, PathBuf};

use riskhook_didit::payload::{
    AmlDataset, AmlReviewStatus, DiditEvent, EntityStatus, EnvelopeShape, EventBody, EventKind,
    FeatureStatus, LogType, MAX_ID_BYTES, PayloadError, SessionStatus, TransactionStatus,
};
use serde_json::json;

/// `fixtures/didit` of the workspace: the nearest ancestor of this crate that has one.
fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("fixtures").join("didit"))
        .find(|dir| dir.is_dir())
        .expect("a fixtures/didit directory above the crate")
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[track_caller]
fn fixture(name: &str) -> DiditEvent {
    DiditEvent::from_slice(&fixture_bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[track_caller]
fn parse(value: &serde_json::Value) -> DiditEvent {
    DiditEvent::from_slice(value.to_string().as_bytes()).expect("parses")
}

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir is readable")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.ends_with(".json").then_some(name)
        })
        .collect();
    names.sort();
    names
}

const SESSION_42: &str = "93275de1-8777-4794-a2ee-67c7600facbf";

/// file, kind, subject_id, status, timestamp, vendor_data, shape
type Row = (
    &'static str,
    EventKind,
    Option<&'static str>,
    Option<&'static str>,
    Option<i64>,
    Option<&'static str>,
    EnvelopeShape,
);

#[rustfmt::skip]
fn expected() -> Vec<Row> {
    use EnvelopeShape::{Flat, Nested};
    vec![
        ("activity-created.json",                  EventKind::ActivityCreated,          Some("user-42"),                              None,                Some(1_780_048_818), Some("user-42"),              Flat),
        ("business-data-updated.json",             EventKind::BusinessDataUpdated,      Some("biz-northwind"),                        Some("ACTIVE"),      Some(1_780_055_009), Some("biz-northwind"),        Flat),
        ("business-status-updated.json",           EventKind::BusinessStatusUpdated,    Some("biz-northwind"),                        Some("FLAGGED"),     Some(1_780_663_415), Some("biz-northwind"),        Flat),
        ("data-updated.json",                      EventKind::DataUpdated,              Some(SESSION_42),                             Some("Approved"),    Some(1_780_049_233), Some("user-42"),              Flat),
        ("nested-transaction-status-updated.json", EventKind::TransactionStatusUpdated, Some("272407dc-0a0d-4278-ae13-d7b8872d60a2"), Some("DECLINED"),    Some(1_780_047_723), None,                         Nested),
        ("nested-user-status-updated.json",        EventKind::UserStatusUpdated,        Some("user-5530"),                            Some("FLAGGED"),     Some(1_780_047_446), Some("user-5530"),            Nested),
        ("status-updated-approved-full.json",      EventKind::StatusUpdated,            Some("229d0678-e94a-42d8-a620-fe86dd52b38e"), Some("Approved"),    Some(1_780_051_502), Some("user-9051"),            Flat),
        ("status-updated-approved.json",           EventKind::StatusUpdated,            Some(SESSION_42),                             Some("Approved"),    Some(1_780_048_817), Some("user-42"),              Flat),
        ("status-updated-console-test.json",       EventKind::StatusUpdated,            Some("dca91886-674e-4f97-929e-3153380fbd9c"), Some("Approved"),    Some(1_780_045_046), Some("test-vendor-data-123"), Flat),
        ("status-updated-declined-sanctions.json", EventKind::StatusUpdated,            Some("d7124e66-903a-4b14-9356-e1036fc8ab73"), Some("Declined"),    Some(1_780_052_770), Some("user-1187"),            Flat),
        ("status-updated-in-progress.json",        EventKind::StatusUpdated,            Some(SESSION_42),                             Some("In Progress"), Some(1_780_045_109), Some("user-42"),              Flat),
        ("status-updated-in-review-risky.json",    EventKind::StatusUpdated,            Some("44fa3e2f-6b05-4c88-8cd1-78b62c06e11e"), Some("In Review"),   Some(1_780_053_391), Some("user-5530"),            Flat),
        ("status-updated-in-review.json",          EventKind::StatusUpdated,            Some(SESSION_42),                             Some("In Review"),   Some(1_780_045_402), Some("user-42"),              Flat),
        ("status-updated-kyb.json",                EventKind::StatusUpdated,            Some("8ceaf2cd-6423-445f-a177-718ae6c3eaa5"), Some("Approved"),    Some(1_780_055_004), Some("biz-northwind"),        Flat),
        ("status-updated-not-started.json",        EventKind::StatusUpdated,            Some(SESSION_42),                             Some("Not Started"), Some(1_780_045_046), Some("user-42"),              Flat),
        ("status-updated-resubmitted.json",        EventKind::StatusUpdated,            Some("44c7bd24-5cca-4c40-86ea-9456dc5e2661"), Some("Resubmitted"), Some(1_780_054_120), Some("user-3091"),            Flat),
        ("transaction-created.json",               EventKind::TransactionCreated,       Some("85bfe2ce-269c-4a23-9e21-5938d7ed84e5"), Some("IN_REVIEW"),   Some(1_780_056_231), Some("user-42"),              Flat),
        ("transaction-status-updated.json",        EventKind::TransactionStatusUpdated, Some("85bfe2ce-269c-4a23-9e21-5938d7ed84e5"), Some("APPROVED"),    Some(1_780_058_942), Some("user-42"),              Flat),
        ("travel-rule-status-updated.json",        EventKind::TravelRuleStatusUpdated,  Some("696cab6f-38b5-427b-be16-e4b1b0a57529"), Some("COMPLETED"),   Some(1_780_058_412), Some("user-42"),              Flat),
        ("user-data-updated.json",                 EventKind::UserDataUpdated,          Some("user-42"),                              Some("ACTIVE"),      Some(1_780_049_235), Some("user-42"),              Flat),
        ("user-status-updated.json",               EventKind::UserStatusUpdated,        Some("user-1187"),                            Some("BLOCKED"),     Some(1_780_052_773), Some("user-1187"),            Flat),
    ]
}

#[test]
fn every_fixture_parses_with_the_expected_identity() {
    let table = expected();
    let listed: Vec<&str> = table.iter().map(|row| row.0).collect();
    assert_eq!(
        listed,
        fixture_names(),
        "the table must cover exactly the fixture files"
    );

    for (name, kind, subject, status, timestamp, vendor_data, shape) in table {
        let event = fixture(name);
        assert_eq!(event.kind, kind, "{name}: kind");
        assert!(event.kind.is_known(), "{name}: known kind");
        assert_eq!(event.subject_id(), subject, "{name}: subject_id");
        assert_eq!(event.status(), status, "{name}: status");
        assert_eq!(event.timestamp, timestamp, "{name}: timestamp");
        assert_eq!(event.vendor_data(), vendor_data, "{name}: vendor_data");
        assert_eq!(event.shape, shape, "{name}: shape");
        let has_event_id = event.event_id.is_some();
        assert_eq!(
            has_event_id,
            name != "status-updated-console-test.json",
            "{name}: event_id"
        );
    }
}

#[test]
fn fixtures_have_unique_event_ids_and_live_application_metadata() {
    let mut ids = Vec::new();
    for name in fixture_names() {
        let event = fixture(&name);
        ids.extend(event.event_id.clone());
        if event.shape == EnvelopeShape::Flat && name != "status-updated-console-test.json" {
            assert_eq!(event.environment.as_deref(), Some("live"), "{name}");
            assert!(event.application_id.is_some(), "{name}");
            assert!(event.created_at.is_some(), "{name}");
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "event ids are unique");
}

#[test]
fn the_user_42_session_sequence_is_one_session_with_increasing_timestamps() {
    let names = [
        "status-updated-not-started.json",
        "status-updated-in-progress.json",
        "status-updated-in-review.json",
        "status-updated-approved.json",
        "data-updated.json",
    ];
    let events: Vec<DiditEvent> = names.iter().map(|name| fixture(name)).collect();
    assert!(events.iter().all(|e| e.session_id() == Some(SESSION_42)));
    assert!(events.iter().all(|e| e.vendor_data() == Some("user-42")));
    assert!(events.windows(2).all(|w| w[0].timestamp < w[1].timestamp));

    let statuses: Vec<Option<&str>> = events.iter().map(DiditEvent::status).collect();
    assert_eq!(
        statuses,
        [
            Some("Not Started"),
            Some("In Progress"),
            Some("In Review"),
            Some("Approved"),
            Some("Approved")
        ]
    );
    assert!(events[0].decision().is_none() && events[1].decision().is_none());

    // In Review arrives before AML has run: a partial decision.
    let partial = events[2].decision().expect("in-review decision");
    assert!(partial.aml_screenings.is_none() && partial.poa_verifications.is_none());
    let face = &partial.face_matches.as_ref().expect("face matches")[0];
    assert_eq!(face.status, Some(FeatureStatus::InReview));
    assert_eq!(face.score, Some(71.2));

    let approved = events[3].decision().expect("approved decision");
    let reviews = approved.reviews.as_ref().expect("reviews");
    assert_eq!(reviews[0].new_status, Some(SessionStatus::Approved));
    let updated = events[4].decision().expect("data.updated decision");
    let address = updated.id_verifications.as_ref().expect("id")[0]
        .address
        .as_deref();
    assert_eq!(
        address,
        Some("Via Privata Bassano Porrone 8, 20121 Milano MI, Italia")
    );
}

#[test]
fn the_full_fixture_populates_every_feature_array_with_typed_values() {
    let bytes = fixture_bytes("status-updated-approved-full.json");
    assert!(
        (15_000..=30_000).contains(&bytes.len()),
        "size {}",
        bytes.len()
    );
    assert!(bytes.is_ascii(), "ensure_ascii=True on the wire");

    let event = DiditEvent::from_slice(&bytes).expect("parses");
    let d = event.decision().expect("decision");
    assert_eq!(d.status, Some(SessionStatus::Approved));
    assert!(!d.is_legacy() && d.legacy.is_empty());

    macro_rules! non_empty {
        ($($field:ident),*) => {$(
            assert!(
                d.$field.as_ref().is_some_and(|items| !items.is_empty()),
                concat!(stringify!($field), " is Some and non-empty")
            );
        )*};
    }
    non_empty!(
        id_verifications,
        nfc_verifications,
        liveness_checks,
        face_matches,
        phone_verifications,
        email_verifications,
        poa_verifications,
        document_ai_documents,
        questionnaire_responses,
        aml_screenings,
        ip_analyses,
        database_validations
    );

    let id = &d.id_verifications.as_ref().expect("id")[0];
    assert_eq!(id.first_name.as_deref(), Some("José"));
    assert_eq!(id.last_name.as_deref(), Some("Española Müller"));
    assert_eq!(id.age, Some(38.0));
    assert_eq!(id.issuing_state.as_deref(), Some("ESP"));
    assert_eq!(
        id.front_image_quality_score
            .as_ref()
            .and_then(|q| q.overall_score),
        Some(91.6)
    );
    assert!(id.mrz.is_some() && id.parsed_address.is_some());

    let nfc = &d.nfc_verifications.as_ref().expect("nfc")[0];
    let serial = nfc
        .certificate_summary
        .as_ref()
        .and_then(|c| c.serial_number)
        .expect("serial");
    // serde_json's default float parser (without `float_roundtrip`) may land one ULP off.
    let exact = 1.181_208_361_644_941_3e38_f64;
    assert!((serial - exact).abs() <= exact * 1e-15, "serial {serial:e}");
    assert_eq!(
        nfc.authenticity.as_ref().and_then(|a| a.sod_integrity),
        Some(true)
    );

    let liveness = &d.liveness_checks.as_ref().expect("liveness")[0];
    assert_eq!(liveness.score, Some(96.12));
    assert_eq!(liveness.method.as_deref(), Some("PASSIVE"));
    assert_eq!(liveness.face_quality, Some(88.53));

    assert_eq!(d.face_matches.as_ref().expect("face")[0].score, Some(93.72));

    let email = &d.email_verifications.as_ref().expect("email")[0];
    assert_eq!(email.is_breached, Some(true));
    assert_eq!(email.breaches.as_ref().map(Vec::len), Some(2));
    let breach_warning = &email.warnings.as_ref().expect("warnings")[0];
    assert_eq!(breach_warning.log_type, Some(LogType::Information));

    let phone = &d.phone_verifications.as_ref().expect("phone")[0];
    assert_eq!(
        phone.carrier.as_ref().and_then(|c| c.line_type.as_deref()),
        Some("mobile")
    );

    let aml = &d.aml_screenings.as_ref().expect("aml")[0];
    assert_eq!(aml.total_hits, Some(0));
    assert_eq!(aml.hits.as_ref().map(Vec::len), Some(0));

    let ip = &d.ip_analyses.as_ref().expect("ip")[0];
    assert_eq!(ip.is_vpn_or_tor, Some(false));
    assert_eq!(ip.ip_country_code.as_deref(), Some("ES"));
    assert_eq!(ip.time_zone_offset, Some(json!(2)));
    assert_eq!(ip.ip_to_id_document_km(), Some(3.84));

    let poa = &d.poa_verifications.as_ref().expect("poa")[0];
    let metadata = poa.document_metadata.as_ref().expect("metadata");
    assert_eq!(metadata.is_tampered, Some(false));
    assert_eq!(
        poa.name_match_score_id_verification,
        Some(96.842_105_263_157_9)
    );

    assert_eq!(
        d.warnings().len(),
        1,
        "only the breached-email information warning"
    );
}

#[test]
fn the_sanctions_fixture_types_both_aml_hits() {
    let event = fixture("status-updated-declined-sanctions.json");
    let d = event.decision().expect("decision");
    let aml = &d.aml_screenings.as_ref().expect("aml")[0];
    assert_eq!(aml.status, Some(FeatureStatus::Declined));
    assert_eq!(aml.total_hits, Some(2));
    assert_eq!(aml.score, Some(95.0));
    let hits = aml.hits.as_ref().expect("hits");

    let sanctions = &hits[0];
    assert!(sanctions.is_sanctions() && !sanctions.is_pep());
    assert_eq!(sanctions.is_match, Some(true));
    assert_eq!(sanctions.match_score, Some(98.0));
    assert_eq!(sanctions.risk_score, Some(95.0));
    assert_eq!(sanctions.review_status, Some(AmlReviewStatus::Unreviewed));
    assert_eq!(sanctions.sanction_matches.as_ref().map(Vec::len), Some(1));

    let pep = &hits[1];
    assert_eq!(pep.datasets, Some(vec![AmlDataset::PepLevel2]));
    assert!(pep.is_pep() && pep.is_false_positive());
    assert_eq!(pep.is_match, Some(false));

    let warning = &aml.warnings.as_ref().expect("warnings")[0];
    assert_eq!(warning.risk.as_deref(), Some("POSSIBLE_MATCH_FOUND"));
    assert_eq!(warning.log_type, Some(LogType::Error));
}

#[test]
fn the_risky_fixture_carries_every_risk_signal() {
    let event = fixture("status-updated-in-review-risky.json");
    let d = event.decision().expect("decision");

    let ip = &d.ip_analyses.as_ref().expect("ip")[0];
    assert_eq!(
        (ip.is_vpn_or_tor, ip.is_data_center),
        (Some(true), Some(true))
    );
    assert_eq!(ip.ip_to_id_document_km(), Some(9611.2));
    assert_eq!(
        ip.matches.as_ref().expect("ip matches")[0].is_blocklisted,
        Some(false)
    );

    let email = &d.email_verifications.as_ref().expect("email")[0];
    assert_eq!(email.is_disposable, Some(true));
    let phone = &d.phone_verifications.as_ref().expect("phone")[0];
    assert_eq!(phone.is_virtual, Some(true));
    assert_eq!(
        phone.carrier.as_ref().and_then(|c| c.line_type.as_deref()),
        Some("voip")
    );
    assert_eq!(d.face_matches.as_ref().expect("face")[0].score, Some(42.1));
    assert_eq!(
        d.liveness_checks.as_ref().expect("liveness")[0].score,
        Some(61.3)
    );

    let id = &d.id_verifications.as_ref().expect("id")[0];
    let duplicate = &id.matches.as_ref().expect("id matches")[0];
    assert_eq!(duplicate.vendor_data.as_deref(), Some("user-4410"));
    assert_eq!(duplicate.status, Some(SessionStatus::Declined));

    let mut risks: Vec<&str> = d
        .warnings()
        .iter()
        .filter_map(|w| w.risk.as_deref())
        .collect();
    risks.sort_unstable();
    assert_eq!(
        risks,
        [
            "COUNTRY_FROM_DOCUMENT_DOES_NOT_MATCH_COUNTRY_FROM_IP",
            "DISPOSABLE_EMAIL_DETECTED",
            "LOW_FACE_MATCH_SIMILARITY",
            "LOW_LIVENESS_SCORE",
            "POSSIBLE_DUPLICATED_USER",
            "PRIVATE_NETWORK_DETECTED",
            "VOIP_NUMBER_DETECTED",
        ]
    );
}

#[test]
fn resubmitted_kyb_and_console_fixtures_read_their_special_fields() {
    let resubmitted = fixture("status-updated-resubmitted.json");
    let session = resubmitted.session().expect("session");
    assert!(session.decision.is_none());
    let info = session.resubmit_info.as_ref().expect("resubmit_info");
    assert_eq!(
        info.nodes_to_resubmit.as_deref(),
        Some(&["feature_ocr".to_owned()][..])
    );
    assert!(
        info.reasons
            .as_ref()
            .is_some_and(|r| r.contains_key("feature_ocr"))
    );
    assert_eq!(
        session.status.as_ref().map(SessionStatus::is_terminal),
        Some(false)
    );

    let kyb = fixture("status-updated-kyb.json");
    let session = kyb.session().expect("session");
    assert_eq!(session.session_kind.as_deref(), Some("business"));
    assert!(session.business_session_id.is_some());
    let d = session.decision.as_ref().expect("decision");
    assert!(d.registry_checks.as_ref().is_some_and(|r| !r.is_empty()));
    assert!(
        d.document_verifications
            .as_ref()
            .is_some_and(|r| !r.is_empty())
    );
    let people = &d.key_people_checks.as_ref().expect("key people")[0];
    assert_eq!(
        people.ubo_kyc_summary.as_ref().and_then(|s| s.approved),
        Some(1)
    );

    let console = fixture("status-updated-console-test.json");
    assert!(console.is_console_test());
    assert_eq!(console.application_id, None);
    assert!(!fixture("status-updated-approved.json").is_console_test());
}

#[test]
fn entity_and_transaction_fixtures_type_their_bodies() {
    let EventBody::User(user) = fixture("user-status-updated.json").body else {
        panic!("user body");
    };
    assert_eq!(user.previous_status, Some(EntityStatus::Active));
    assert_eq!(user.status, Some(EntityStatus::Blocked));
    assert_eq!(user.reason.as_deref(), Some("session_declined"));

    let EventBody::User(user) = fixture("user-data-updated.json").body else {
        panic!("user body");
    };
    assert!(
        user.changed_fields
            .is_some_and(|f| f.contains(&"address".to_owned()))
    );
    assert!(user.extra.contains_key("full_name"), "profile fields kept");

    let EventBody::Transaction(txn) = fixture("transaction-created.json").body else {
        panic!("transaction body");
    };
    assert_eq!(txn.amount.as_deref(), Some("12500.00"));
    assert_eq!(txn.score, Some(65.0));
    assert_eq!(txn.status, Some(TransactionStatus::InReview));

    let EventBody::TravelRule(transfer) = fixture("travel-rule-status-updated.json").body else {
        panic!("travel rule body");
    };
    assert_eq!(transfer.rail.as_deref(), Some("TRP"));
    assert_eq!(transfer.status, Some(TransactionStatus::Approved));

    let activity = fixture("activity-created.json");
    let EventBody::Other(fields) = &activity.body else {
        panic!("activity body is kept as a map");
    };
    assert_eq!(fields.get("source"), Some(&json!("VERIFICATION")));
    assert_eq!(activity.session_id(), Some(SESSION_42));
}

#[test]
fn unknown_fields_are_kept_at_every_level() {
    let event = parse(&json!({
        "webhook_type": "status.updated",
        "event_id": "e1",
        "timestamp": 1_780_045_046,
        "brand_new_top_level": {"x": [1, 2]},
        "session_id": "s1",
        "status": "Approved",
        "decision": {
            "status": "Approved",
            "risk_summary_v4": "low",
            "id_verifications": [{"status": "Approved", "wallet_verification": {"issuer": "eu"}}],
            "aml_screenings": [{"hits": [{"match": true, "custom_flag": 7}]}],
        },
    }));
    let session = event.session().expect("session");
    assert_eq!(
        session.extra.get("brand_new_top_level"),
        Some(&json!({"x": [1, 2]}))
    );
    assert!(
        !session.extra.contains_key("webhook_type"),
        "envelope keys are lifted out"
    );
    assert!(!session.extra.contains_key("event_id"));
    let d = session.decision.as_ref().expect("decision");
    assert_eq!(d.extra.get("risk_summary_v4"), Some(&json!("low")));
    let id = &d.id_verifications.as_ref().expect("id")[0];
    assert_eq!(
        id.extra.get("wallet_verification"),
        Some(&json!({"issuer": "eu"}))
    );
    let hit = &d.aml_screenings.as_ref().expect("aml")[0]
        .hits
        .as_ref()
        .expect("hits")[0];
    assert_eq!(hit.extra.get("custom_flag"), Some(&json!(7)));

    // A real, unschema'd field in the full fixture.
    let full = fixture("status-updated-approved-full.json");
    let aml = &full
        .decision()
        .expect("decision")
        .aml_screenings
        .as_ref()
        .expect("aml")[0];
    assert_eq!(
        aml.extra.get("ongoing_monitoring_last_check"),
        Some(&json!(null))
    );
}

#[test]
fn unknown_event_types_parse_as_other() {
    let event = parse(&json!({
        "webhook_type": "session.archived",
        "event_id": "e2",
        "timestamp": 1_780_045_046,
        "session_id": "s9",
        "status": "Archived",
        "vendor_data": "user-7",
    }));
    assert_eq!(event.kind, EventKind::Other("session.archived".to_owned()));
    assert!(!event.kind.is_known());
    assert_eq!(event.kind.as_str(), "session.archived");
    let EventBody::Other(fields) = &event.body else {
        panic!("Other body");
    };
    assert_eq!(fields.get("status"), Some(&json!("Archived")));
    assert_eq!(event.subject_id(), Some("s9"));
    assert_eq!(event.session_id(), Some("s9"));
    assert_eq!(event.status(), Some("Archived"));
    assert_eq!(event.vendor_data(), Some("user-7"));
}

#[test]
fn fields_of_unexpected_types_read_as_absent_without_failing_the_event() {
    let body = json!({
        "webhook_type": "status.updated",
        "event_id": 123,
        "timestamp": "not a time",
        "created_at": {"seconds": 1},
        "application_id": ["app"],
        "environment": 5,
        "session_id": 42,
        "status": 7,
        "workflow_version": "3",
        "vendor_data": {"id": 1},
        "metadata": "flat string",
        "resubmit_info": [],
        "decision": {
            "session_number": "abc",
            "features": "ID_VERIFICATION",
            "reviews": {},
            "status": {"nested": true},
            "id_verifications": [
                {"age": 34.5, "status": 5, "warnings": "none", "document_number": 12_345,
                 "matches": [1, "two", {"is_blocklisted": "yes", "session_number": 3.0}],
                 "front_image_quality_score": [1]},
                "garbage",
                null
            ],
            "liveness_checks": {"score": 1},
            "face_matches": [{"score": "88.5"}],
            "ip_analyses": [{"time_zone_offset": -8, "is_vpn_or_tor": "true", "latitude": "x",
                             "ip": 5, "id_document": {"distance_from_ip": {"direction": "N", "distance": "12.5"}}}],
            "aml_screenings": [{"total_hits": "2", "score": null,
                                "hits": [{"match": "yes", "datasets": "Sanctions", "match_score": "98",
                                          "risk_score": "BIG"}]}],
            "nfc_verifications": [{"certificate_summary": {"serial_number": "0x1F"}}],
            "email_verifications": null,
            "id_verification": "legacy string",
        },
    })
    .to_string()
    // An integer beyond 2^64, which `json!` cannot build.
    .replace(r#""BIG""#, "123456789012345678901234567890");
    let event = DiditEvent::from_slice(body.as_bytes()).expect("parses");
    assert_eq!(event.kind, EventKind::StatusUpdated);
    assert_eq!(event.event_id, None);
    assert_eq!(event.timestamp, None);
    assert_eq!(event.created_at, None);
    assert_eq!(event.application_id, None);
    assert_eq!(event.environment, None);

    let session = event.session().expect("session");
    // Envelope values of the wrong type are not lost: they stay among the resource fields.
    assert_eq!(session.extra.get("event_id"), Some(&json!(123)));
    assert_eq!(session.extra.get("timestamp"), Some(&json!("not a time")));
    // Identifiers are read from strings only: a number is not an id (issue 11, finding 7).
    assert_eq!(session.session_id.as_deref(), None);
    assert_eq!(session.status, None);
    assert_eq!(session.workflow_version, Some(3));
    assert_eq!(session.vendor_data, None);
    assert_eq!(session.metadata, Some(json!("flat string")));
    assert_eq!(session.resubmit_info, None);

    let d = session.decision.as_ref().expect("decision");
    assert_eq!(
        (d.session_number, d.features.as_ref(), d.reviews.as_ref()),
        (None, None, None)
    );
    assert_eq!(d.status, None);
    let ids = d.id_verifications.as_ref().expect("id");
    assert_eq!(ids.len(), 1, "non-object elements are skipped");
    assert_eq!(ids[0].age, Some(34.5));
    assert_eq!(ids[0].status, None);
    assert_eq!(ids[0].warnings, None);
    assert_eq!(ids[0].document_number.as_deref(), Some("12345"));
    assert_eq!(ids[0].front_image_quality_score, None);
    let matches = ids[0].matches.as_ref().expect("matches");
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].is_blocklisted, None);
    assert_eq!(matches[0].session_number, Some(3));
    assert_eq!(d.liveness_checks, None);
    assert_eq!(d.face_matches.as_ref().expect("face")[0].score, Some(88.5));
    let ip = &d.ip_analyses.as_ref().expect("ip")[0];
    assert_eq!(ip.time_zone_offset, Some(json!(-8)));
    assert_eq!(ip.is_vpn_or_tor, Some(true));
    assert_eq!(ip.latitude, None);
    assert_eq!(ip.ip_to_id_document_km(), Some(12.5));
    let aml = &d.aml_screenings.as_ref().expect("aml")[0];
    assert_eq!(aml.total_hits, Some(2));
    assert_eq!(aml.score, None);
    let hit = &aml.hits.as_ref().expect("hits")[0];
    assert_eq!((hit.is_match, hit.datasets.as_ref()), (None, None));
    assert_eq!(hit.match_score, Some(98.0));
    assert_eq!(
        hit.risk_score,
        Some(1.234_567_890_123_456_8e29),
        "integers beyond 2^64 parse"
    );
    let cert = &d.nfc_verifications.as_ref().expect("nfc")[0].certificate_summary;
    assert_eq!(cert.as_ref().and_then(|c| c.serial_number), None);
    assert_eq!(d.email_verifications, None, "null feature arrays are None");
    assert_eq!(d.legacy.id_verification, Some(json!("legacy string")));
}

#[test]
fn legacy_v2_decision_keys_are_kept_apart() {
    let event = parse(&json!({
        "webhook_type": "status.updated",
        "session_id": "s3",
        "status": "Declined",
        "decision": {
            "status": "Declined",
            "id_verification": {"status": "Approved", "document_type": "Passport"},
            "face_match": {"status": "Declined", "score": 12.0},
            "aml": {"total_hits": 0},
            "kyc": null,
        },
    }));
    let d = event.decision().expect("decision");
    assert!(d.is_legacy());
    assert_eq!(
        d.legacy.face_match,
        Some(json!({"status": "Declined", "score": 12.0}))
    );
    assert!(d.legacy.aml.is_some() && d.legacy.kyc.is_none());
    assert!(
        d.extra.is_empty(),
        "legacy keys are not duplicated into extra"
    );
}

#[test]
fn bodies_that_are_not_events_are_rejected_as_not_an_event() {
    for body in [
        "[]",
        "\"x\"",
        "{}",
        "null",
        "42",
        r#"{"webhook_type": 5}"#,
        r#"{"webhook_type": {"type": "status.updated"}}"#,
        r#"{"event": ["user.status.updated"]}"#,
        r#"{"webhook_type": null, "event": null, "session_id": "s"}"#,
        r#"{"webhook_type": true, "event": "status.updated"}"#,
    ] {
        let err = DiditEvent::from_slice(body.as_bytes()).expect_err(body);
        assert!(matches!(err, PayloadError::NotAnEvent(_)), "{body}: {err}");
        assert!(!err.is_syntax(), "{body}");
    }
}

#[test]
fn identifiers_holding_a_control_character_or_too_long_are_not_an_event() {
    // Each identifying field the store keys on, for the kinds that carry it, with a control
    // character PostgreSQL refuses (U+0000) and ones it would take but that are no id (a
    // newline, DEL, a C1 control).
    let cases: &[(&str, &str)] = &[
        (
            r#"{"webhook_type":"status.updated","session_id":"s-1","vendor_data":"#,
            r#"}"#,
        ),
        (
            r#"{"webhook_type":"status.updated","vendor_data":"u","session_id":"#,
            r#"}"#,
        ),
        (
            r#"{"webhook_type":"status.updated","session_id":"s","status":"#,
            r#"}"#,
        ),
        (
            r#"{"webhook_type":"status.updated","session_id":"s","event_id":"#,
            r#"}"#,
        ),
        (r#"{"session_id":"s","webhook_type":"#, r#"}"#),
        (r#"{"data":{"session_id":"s"},"event":"#, r#"}"#),
        (
            r#"{"webhook_type":"user.status.updated","vendor_data":"#,
            r#"}"#,
        ),
        (r#"{"webhook_type":"user.status.updated","uuid":"#, r#"}"#),
        (
            r#"{"webhook_type":"transaction.created","transaction_id":"#,
            r#"}"#,
        ),
        (
            r#"{"webhook_type":"transaction.created","applicant_vendor_data":"#,
            r#"}"#,
        ),
        (
            r#"{"webhook_type":"activity.created","vendor_data":"#,
            r#"}"#,
        ),
        (r#"{"webhook_type":"something.new","session_id":"#, r#"}"#),
    ];
    for (head, tail) in cases {
        for bad in [r"\u0000", r"\n", r"\u007f", r"\u0085"] {
            let body = format!(r#"{head}"id{bad}x"{tail}"#);
            let err = DiditEvent::from_slice(body.as_bytes()).expect_err(&body);
            assert!(matches!(err, PayloadError::NotAnEvent(_)), "{body}: {err}");
            let text = err.to_string();
            assert!(text.contains("control character U+00"), "{body}: {text}");
            assert!(
                !text.contains("idx") && !text.contains("id\0"),
                "echoed: {text}"
            );
        }
        // Printable text of any script is an identifier like any other, up to the limit.
        let body = format!(r#"{head}"usuário-ß-日本 1"{tail}"#);
        DiditEvent::from_slice(body.as_bytes()).expect(&body);
        let longest = format!("{}é", "u".repeat(MAX_ID_BYTES - 2));
        let body = format!(r#"{head}"{longest}"{tail}"#);
        DiditEvent::from_slice(body.as_bytes()).expect(&body);
        let body = format!(r#"{head}"{longest}x"{tail}"#);
        let err = DiditEvent::from_slice(body.as_bytes()).expect_err(&body);
        assert!(matches!(err, PayloadError::NotAnEvent(_)), "{body}: {err}");
        assert!(
            err.to_string()
                .ends_with("is 257 bytes long; identifiers are at most 256"),
            "{err}"
        );
    }
    // Control characters outside the identifiers are the payload's business: kept.
    let event = parse(&json!({
        "webhook_type": "status.updated",
        "session_id": "s",
        "metadata": {"note": "line one\nline two\u{0}"},
        "decision": {"id_verification": {"first_name": "A\tB"}},
    }));
    assert_eq!(event.session_id(), Some("s"));
}

#[test]
fn bodies_that_are_not_json_are_rejected_as_syntax_errors() {
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let deep_in_event = format!(
        r#"{{"webhook_type":"status.updated","metadata":{}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let cases: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"".to_vec(),
        b"{\"webhook_type\": \"status.updated\",}".to_vec(),
        b"{\"webhook_type\": \"status.updated\"} trailing".to_vec(),
        b"{\"webhook_type\": \"status.\xff\xfe\"}".to_vec(),
        b"\xef\xbb\xbf{}".to_vec(),
        b"{\"a\": NaN}".to_vec(),
        deep.into_bytes(),
        deep_in_event.into_bytes(),
    ];
    for body in cases {
        let err = DiditEvent::from_slice(&body).expect_err("rejected");
        assert!(err.is_syntax(), "{}: {err}", String::from_utf8_lossy(&body));
        assert!(err.to_string().starts_with("body is not valid JSON"));
    }
}

#[test]
fn nesting_just_under_the_json_depth_limit_parses() {
    // serde_json stops at 128 levels; the event, decision, array and item use four of them.
    let depth = 120;
    let body = format!(
        r#"{{"webhook_type":"status.updated","decision":{{"id_verifications":[{{"mrz":{}1{},"odd":{}2{}}}]}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth),
        r#"{"a":"#.repeat(depth),
        "}".repeat(depth),
    );
    let event = DiditEvent::from_slice(body.as_bytes()).expect("parses");
    let id = &event
        .decision()
        .expect("decision")
        .id_verifications
        .as_ref()
        .expect("id")[0];
    assert!(id.mrz.is_some() && id.extra.contains_key("odd"));
}

#[test]
fn the_nested_envelope_converts_its_iso_timestamp_and_reads_data() {
    let event = fixture("nested-user-status-updated.json");
    assert_eq!(event.shape, EnvelopeShape::Nested);
    assert_eq!(event.timestamp, Some(1_780_047_446)); // 2026-05-29T09:37:26Z
    assert!(
        event
            .event_id
            .as_deref()
            .is_some_and(|id| id.starts_with("evt_"))
    );
    assert_eq!(event.application_id.as_deref(), Some("app_7Kq2mV9xR4tL"));
    let EventBody::User(user) = &event.body else {
        panic!("user body");
    };
    assert_eq!(user.status, Some(EntityStatus::Flagged));
    assert_eq!(user.reason.as_deref(), Some("transaction_rule"));

    // 2026-05-29T11:42:03.481927+02:00: fraction dropped, offset applied.
    let txn = fixture("nested-transaction-status-updated.json");
    assert_eq!(txn.timestamp, Some(1_780_047_723));
    let EventBody::Transaction(body) = &txn.body else {
        panic!("transaction body");
    };
    assert_eq!(body.previous_status, Some(TransactionStatus::InReview));
    assert_eq!(
        body.changed_at.as_deref(),
        Some("2026-05-29T09:42:03.102284Z")
    );

    for (timestamp, expected) in [
        (json!("2026-11-20T10:15:30Z"), Some(1_795_169_730)),
        (json!("2026-11-20T10:15:30.123456Z"), Some(1_795_169_730)),
        (json!("2026-11-20T10:15:30+01:00"), Some(1_795_166_130)),
        (json!(1_780_045_046), Some(1_780_045_046)),
        (json!("2026-02-30T10:15:30Z"), None),
    ] {
        let event = parse(&json!({
            "event": "user.data.updated", "timestamp": timestamp, "data": {"vendor_data": "u"}
        }));
        assert_eq!(event.timestamp, expected, "{timestamp}");
    }
}

#[test]
fn envelope_precedence_and_data_objects_follow_the_spec_recommendation() {
    // webhook_type wins over event.
    let event = parse(&json!({
        "webhook_type": "transaction.created", "event": "user.status.updated",
        "data": {"transaction_id": "t1", "status": "APPROVED"}
    }));
    assert_eq!(event.kind, EventKind::TransactionCreated);
    assert_eq!(event.shape, EnvelopeShape::Flat);
    assert_eq!(event.subject_id(), Some("t1"));

    // A flat envelope with a data object: fields come from data, which wins over top level.
    let event = parse(&json!({
        "webhook_type": "status.updated", "timestamp": 1_780_045_046,
        "session_id": "outer", "workflow_version": 2,
        "data": {"session_id": "inner", "status": "Approved"}
    }));
    let session = event.session().expect("session");
    assert_eq!(session.session_id.as_deref(), Some("inner"));
    assert_eq!(session.workflow_version, Some(2));
    assert_eq!(event.status(), Some("Approved"));

    // A data field that is not an object stays an ordinary field.
    let event = parse(&json!({"event": "activity.created", "data": "opaque", "vendor_data": "v"}));
    let EventBody::Other(fields) = &event.body else {
        panic!("Other body");
    };
    assert_eq!(fields.get("data"), Some(&json!("opaque")));
    assert_eq!(event.subject_id(), Some("v"));
}

#[test]
fn statuses_and_kinds_round_trip_their_wire_strings() {
    for s in [
        "Not Started",
        "In Progress",
        "Awaiting User",
        "In Review",
        "Approved",
        "Declined",
        "Resubmitted",
        "Expired",
        "Kyc Expired",
        "Abandoned",
    ] {
        let status = SessionStatus::parse(s);
        assert!(status.is_known(), "{s}");
        assert_eq!(status.as_str(), s);
    }
    assert_eq!(
        SessionStatus::parse("RESUB_REQUESTED"),
        SessionStatus::Resubmitted
    );
    assert_eq!(SessionStatus::parse("NOT_STARTED").as_str(), "Not Started");
    assert_eq!(
        SessionStatus::parse("approved"),
        SessionStatus::Other("approved".to_owned())
    );
    assert!(SessionStatus::InReview.is_terminal());
    assert!(!SessionStatus::Resubmitted.is_terminal());
    assert!(!SessionStatus::Other("Paused".to_owned()).is_terminal());

    for s in [
        "status.updated",
        "data.updated",
        "user.status.updated",
        "user.data.updated",
        "business.status.updated",
        "business.data.updated",
        "activity.created",
        "transaction.created",
        "transaction.status.updated",
        "travel_rule.status.updated",
    ] {
        let kind = EventKind::parse(s);
        assert!(kind.is_known(), "{s}");
        assert_eq!(kind.as_str(), s);
    }
    assert_eq!(
        FeatureStatus::parse("Resub Requested"),
        FeatureStatus::ResubRequested
    );
}

/// xorshift64*: deterministic pseudo-random bytes without a dev-dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

#[test]
fn no_input_makes_the_parser_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alphabet = br#"{}[]":,0123456789.eE+-truefalsnl webhook_typeventdata\u"#;
    for _ in 0..5_000 {
        let len = rng.below(96);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(4) == 0 {
                    rng.next().to_le_bytes()[0]
                } else {
                    alphabet[rng.below(alphabet.len())]
                }
            })
            .collect();
        let _ = DiditEvent::from_slice(&bytes);
    }

    for name in fixture_names() {
        let bytes = fixture_bytes(&name);
        let step = (bytes.len() / 400).max(1);
        for end in (0..bytes.len())
            .step_by(step)
            .chain(bytes.len().saturating_sub(64)..bytes.len())
        {
            let result = DiditEvent::from_slice(&bytes[..end]);
            assert!(
                result.as_ref().is_err_and(PayloadError::is_syntax),
                "{name}[..{end}]"
            );
        }
        for _ in 0..300 {
            let mut mutated = bytes.clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(mutated.len());
                mutated[at] = rng.next().to_le_bytes()[0];
            }
            let _ = DiditEvent::from_slice(&mutated);
        }
    }
}
