//! The verifier end to end (freshness, every scheme, keyring, parsing): the spec's vectors as
//! whole deliveries, and properties that must hold for any body, timestamp and key.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use riskhook_didit::canonical::CanonicalForm;
use riskhook_didit::signature::{
    Key, Keyring, Scheme, Secret, SignatureHeaders, SignedHeaders, sign_raw, sign_v2,
};
use riskhook_didit::webhook::{Delivery, Rejection, Verification, Verifier};

const SECRET: &str = "tno2NTeRC1ZK3sBOYlBJDyEzBVENl3pQ1AcZyAW0xnQ";
const NOW: i64 = 1_780_045_046;

fn key() -> Key {
    Key::new("spec", &Secret::new(SECRET)).unwrap()
}

fn verifier() -> Verifier {
    Verifier::new(Keyring::new(vec![key()]).unwrap())
}

fn verify(
    body: &[u8],
    raw: Option<&str>,
    v2: Option<&str>,
    ts: i64,
) -> Result<Verification, Rejection> {
    let timestamp = ts.to_string();
    let delivery = Delivery {
        timestamp: Some(&timestamp),
        signatures: SignatureHeaders {
            raw,
            v2,
            simple: None,
        },
        body,
    };
    verifier().verify(&delivery, NOW).map(|(_, v)| v)
}

/// Spec vector B: non-ASCII names, raw body ASCII-escaped as Didit's Python serialiser sends it.
const VECTOR_B: &str = r#"{"decision":{"id_verifications":[{"first_name":"Jos\u00e9","last_name":"Espa\u00f1ola M\u00fcller","node_id":"feature_ocr","status":"Declined"}]},"session_id":"11111111-2222-3333-4444-555555555555","status":"Declined","timestamp":1780045046,"vendor_data":"user-42","webhook_type":"status.updated"}"#;

#[test]
fn vector_b_verifies_by_raw_bytes_and_by_each_v2_form() {
    let raw = "3453bb3e6f54c4a77d552a2096baf575c7b9f53bc9229bf37e2603f7135c32a3";
    let v2 = "69f629c8869d814deeb88926f4e5f222285601a538c85470fcb75576cd8934a8";
    let body = VECTOR_B.as_bytes();
    assert_eq!(
        verify(body, Some(raw), None, NOW).unwrap().scheme,
        Scheme::Raw
    );
    assert_eq!(
        verify(body, None, Some(v2), NOW).unwrap().scheme,
        Scheme::V2(CanonicalForm::Python)
    );
    // "ASCII-escaped" V2, as one Didit page labels it: equal to the raw-body MAC here.
    assert_eq!(
        verify(body, None, Some(raw), NOW).unwrap().scheme,
        Scheme::V2(CanonicalForm::PythonAscii)
    );
    // The same body delivered as raw UTF-8 (a proxy decoded the escapes) still verifies by V2.
    let utf8 = VECTOR_B
        .replace("\\u00e9", "é")
        .replace("\\u00f1", "ñ")
        .replace("\\u00fc", "ü");
    assert_eq!(
        verify(utf8.as_bytes(), Some(raw), Some(v2), NOW)
            .unwrap()
            .scheme,
        Scheme::V2(CanonicalForm::Python)
    );
}

#[test]
fn vector_c_numbers_verify_in_the_python_and_javascript_forms() {
    let body = br#"{"a":98.0,"b":1e-05,"c":1.1812083616449413e+38,"d":36.8421052631579,"e":-0.0,"f":0.00025,"g":1E2}"#;
    let python = "fcd7fc09eb8ee5ca7406b7d60cb119834801619d3b66012f5cc0de2761ef7039";
    let js = "c2cddc30c599b48fbdaf0aaa67b1fb3646d64c85af4e2fb17b5aed20b276f022";
    // Not a Didit event (no webhook_type), so the signature passes and parsing refuses it:
    // proof that the signature step accepted it.
    for (sig, _form) in [
        (python, CanonicalForm::Python),
        (js, CanonicalForm::JavaScript),
    ] {
        let err = verify(body, None, Some(sig), NOW).unwrap_err();
        assert_eq!(err.code(), "not-a-didit-event", "{sig}");
    }
    assert_eq!(
        verify(body, None, Some(&"0".repeat(64)), NOW)
            .unwrap_err()
            .code(),
        "bad-signature"
    );
}

#[test]
fn edge_numbers_and_non_ascii_names_round_trip_through_sign_and_verify() {
    let body = format!(
        r#"{{"decision":{{"id_verifications":[{{"first_name":"Zoë","last_name":"Ōtsuka 山田 😀","age":98.0}}],"x":{{"tiny":1e-05,"serial":1.1812083616449413e+38,"neg_zero":-0.0,"big":1180591620717411303424}}}},"session_id":"s","status":"Approved","timestamp":{NOW},"webhook_type":"status.updated"}}"#
    );
    let headers = SignedHeaders::sign(&key(), body.as_bytes(), NOW);
    let v2 = headers.signature_v2.clone().unwrap();
    assert_eq!(
        verify(body.as_bytes(), Some(&headers.signature), None, NOW)
            .unwrap()
            .scheme,
        Scheme::Raw
    );
    assert_eq!(
        verify(body.as_bytes(), None, Some(&v2), NOW)
            .unwrap()
            .scheme,
        Scheme::V2(CanonicalForm::Python)
    );
    // 2^70 must stay exact: one unit more is a different message.
    let altered = body.replace("1180591620717411303424", "1180591620717411303425");
    assert_eq!(
        verify(altered.as_bytes(), None, Some(&v2), NOW)
            .unwrap_err()
            .code(),
        "bad-signature"
    );
}

fn event_body() -> impl Strategy<Value = Vec<u8>> {
    (
        "[a-z0-9-]{1,36}",
        prop::sample::select(vec!["Approved", "Declined", "In Review", "Not Started"]),
        any::<Option<String>>(),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        // serde_json (used below to re-encode) keeps integers exactly only within 64 bits;
        // bigger ones are covered by the canonical tests and the 2^70 case above.
        any::<i64>(),
    )
        .prop_map(|(session, status, vendor, score, big)| {
            let vendor = vendor.map_or("null".to_owned(), |v| serde_json::to_string(&v).unwrap());
            format!(
                r#"{{"decision":{{"face_matches":[{{"score":{score:?}}}],"n":{big}}},"session_id":"{session}","status":"{status}","timestamp":{NOW},"vendor_data":{vendor},"webhook_type":"status.updated"}}"#
            )
            .into_bytes()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_signed_delivery_verifies(body in event_body()) {
        let h = SignedHeaders::sign(&key(), &body, NOW);
        prop_assert!(verify(&body, Some(&h.signature), None, NOW).is_ok());
        prop_assert!(verify(&body, None, h.signature_v2.as_deref(), NOW).is_ok());
    }

    #[test]
    fn any_change_to_the_body_fails(body in event_body(), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let h = SignedHeaders::sign(&key(), &body, NOW);
        let mut tampered = body;
        let i = at.index(tampered.len());
        tampered[i] ^= flip;
        // A flip may only re-space the JSON (V2 ignores whitespace by design); the raw
        // signature must catch every change.
        prop_assert!(verify(&tampered, Some(&h.signature), None, NOW).is_err());
    }

    #[test]
    fn any_other_timestamp_fails(body in event_body(), delta in -299i64..=299) {
        prop_assume!(delta != 0);
        let h = SignedHeaders::sign(&key(), &body, NOW);
        // The header moved within the window: the MAC-covered body timestamp betrays it.
        let err = verify(&body, Some(&h.signature), None, NOW + delta).unwrap_err();
        prop_assert_eq!(err.code(), "timestamp-mismatch");
    }

    #[test]
    fn any_other_key_fails(body in event_body(), secret in "[A-Za-z0-9_-]{1,64}") {
        prop_assume!(secret != SECRET);
        let other = Key::new("other", &Secret::new(secret)).unwrap();
        let raw = sign_raw(&other, &body);
        let v2 = sign_v2(&other, &body, CanonicalForm::Python).unwrap();
        let err = verify(&body, Some(&raw), Some(&v2), NOW).unwrap_err();
        prop_assert_eq!(err.code(), "bad-signature");
    }

    #[test]
    fn any_reencoding_of_the_same_json_still_verifies_through_v2(body in event_body(), pretty in any::<bool>()) {
        let v2 = sign_v2(&key(), &body, CanonicalForm::Python).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        // Another key order, whitespace and \u escapes of every non-ASCII character.
        let reencoded = if pretty {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            let mut pairs: Vec<(String, serde_json::Value)> = value.as_object().unwrap().clone().into_iter().collect();
            pairs.reverse();
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{} : {}", serde_json::to_string(k).unwrap(), serde_json::to_string(v).unwrap()))
                .collect();
            format!("{{ {} }}", inner.join(" ,\n"))
        };
        let escaped: String = reencoded
            .chars()
            .flat_map(|c| {
                if c.is_ascii() {
                    vec![c.to_string()]
                } else {
                    let mut units = [0u16; 2];
                    c.encode_utf16(&mut units).iter().map(|u| format!("\\u{u:04X}")).collect()
                }
            })
            .collect();
        let result = verify(escaped.as_bytes(), None, Some(&v2), NOW);
        prop_assert!(result.is_ok(), "{:?}", result.err().map(|e| e.to_string()));
    }
}

fn verify_event(
    verifier: &Verifier,
    body: &[u8],
    signatures: SignatureHeaders<'_>,
) -> Result<(riskhook_didit::payload::DiditEvent, Verification), Rejection> {
    let timestamp = NOW.to_string();
    let delivery = Delivery {
        timestamp: Some(&timestamp),
        signatures,
        body,
    };
    verifier.verify(&delivery, NOW)
}

/// Issue 11, finding 1: a body verified by `X-Signature-Simple` whose `data` object names
/// another session, status and user. Only the four signed top-level fields may be read.
#[test]
fn a_simple_signature_trusts_only_the_fields_it_signs() {
    let body = br#"{"webhook_type":"status.updated","session_id":"11111111-2222-3333-4444-555555555555","status":"In Review","timestamp":1780045046,"event_id":"evt-forged","vendor_data":"victim","data":{"session_id":"99999999-0000-0000-0000-000000000000","status":"Approved","vendor_data":"someone-else","decision":{"status":"Approved"}}}"#;
    let simple = riskhook_didit::signature::sign_simple(&key(), body);
    let signatures = SignatureHeaders {
        raw: None,
        v2: None,
        simple: Some(&simple),
    };
    let (event, verification) =
        verify_event(&verifier().allow_simple(true), body, signatures).unwrap();
    assert_eq!(verification.scheme, Scheme::Simple);
    assert!(!verification.trusts_body());
    assert_eq!(
        event.session_id(),
        Some("11111111-2222-3333-4444-555555555555")
    );
    assert_eq!(event.status(), Some("In Review"));
    assert_eq!(event.timestamp, Some(NOW));
    assert_eq!(event.kind.as_str(), "status.updated");
    // Nothing outside the signed message survives: no user, no decision, no delivery id.
    assert_eq!(event.vendor_data(), None);
    assert!(event.decision().is_none());
    assert_eq!(event.event_id, None);
    assert_eq!(event.delivery_key(), None);
    assert_eq!(
        event.content_key(),
        "status.updated|11111111-2222-3333-4444-555555555555|In Review|1780045046"
    );

    // A nested envelope names its type in `event`, which the Simple message does not cover.
    let nested = br#"{"event":"status.updated","session_id":"s-1","status":"Approved","timestamp":1780045046,"data":{"session_id":"s-2"}}"#;
    let simple = riskhook_didit::signature::sign_simple(&key(), nested);
    let signatures = SignatureHeaders {
        raw: None,
        v2: None,
        simple: Some(&simple),
    };
    let err = verify_event(&verifier().allow_simple(true), nested, signatures).unwrap_err();
    assert_eq!(err.status(), 422, "{err}");
}

/// Issue 11, finding 7: the JavaScript canonical form spells `777001.0` as `777001`, so both
/// bodies verify under one V2 signature; neither may turn the number into an identifier.
#[test]
fn identifiers_come_only_from_json_strings() {
    let signed = br#"{"webhook_type":"status.updated","session_id":777001,"status":"Approved","timestamp":1780045046,"vendor_data":42}"#;
    let reencoded = br#"{"webhook_type":"status.updated","session_id":777001.0,"status":"Approved","timestamp":1780045046,"vendor_data":42.0}"#;
    let v2 = sign_v2(&key(), signed, CanonicalForm::JavaScript).unwrap();
    let mut ids = Vec::new();
    for body in [&signed[..], &reencoded[..]] {
        let signatures = SignatureHeaders {
            raw: None,
            v2: Some(&v2),
            simple: None,
        };
        let (event, verification) = verify_event(&verifier(), body, signatures).unwrap();
        assert!(matches!(verification.scheme, Scheme::V2(_)));
        assert_eq!(event.session_id(), None);
        assert_eq!(event.vendor_data(), None);
        ids.push((event.subject_id().map(str::to_owned), event.content_key()));
    }
    assert_eq!(ids[0], ids[1]);
}
