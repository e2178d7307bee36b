//! Criterion benchmarks of the webhook protocol on a large (≈23 KB) and a small (≈0.4 KB) Didit
//! delivery: `Verifier::verify` per signature scheme, canonical JSON, and payload parsing.
//!
//! `cargo bench -p riskhook-didit --bench protocol`

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use riskhook_didit::canonical::{CanonicalForm, canonicalize};
use riskhook_didit::payload::DiditEvent;
use riskhook_didit::signature::{
    Key, Keyring, Scheme, Secret, SignatureHeaders, SignedHeaders, sign_raw, sign_simple, sign_v2,
};
use riskhook_didit::webhook::{Delivery, Verifier};

/// The receiver's clock, and every body's `timestamp`, so the freshness and body/header
/// timestamp checks pass.
const NOW: i64 = 1_780_051_502;

const FIXTURES: [&str; 2] = [
    "status-updated-approved-full.json",
    "status-updated-not-started.json",
];

/// The fixture restamped at [`NOW`]: compact, as Didit sends it, and pretty-printed.
fn payload(name: &str) -> (Vec<u8>, Vec<u8>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/didit/").to_owned() + name;
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    value["timestamp"] = NOW.into();
    (
        serde_json::to_vec(&value).unwrap(),
        serde_json::to_vec_pretty(&value).unwrap(),
    )
}

fn key(id: &str, secret: &str) -> Key {
    Key::new(id, &Secret::new(secret)).unwrap()
}

/// Verifies once, outside any timed loop, so a benchmark cannot silently measure a rejection.
fn assert_verifies(verifier: &Verifier, delivery: &Delivery<'_>, scheme: Scheme, key_id: &str) {
    let (_, verification) = verifier.verify(delivery, NOW).unwrap();
    assert_eq!(verification.scheme, scheme);
    assert_eq!(verification.key_id, key_id);
}

fn verify(c: &mut Criterion) {
    let signing = key("current", "whsec_bench_current");
    let single = Verifier::new(Keyring::new(vec![signing.clone()]).unwrap());
    // A rotation in progress: the matching key is last. Every key is tried regardless (the
    // keyring does not stop at the first match), so this costs about three MACs over the body.
    let rotating = Verifier::new(
        Keyring::new(vec![
            key("retired", "whsec_bench_retired"),
            key("previous", "whsec_bench_previous"),
            signing.clone(),
        ])
        .unwrap(),
    );
    let lenient = single.clone().allow_simple(true);

    let mut group = c.benchmark_group("verify");
    for name in FIXTURES {
        let label = name
            .trim_start_matches("status-updated-")
            .trim_end_matches(".json");
        let (body, pretty) = payload(name);
        let signed = SignedHeaders::sign(&signing, &body, NOW);
        let timestamp = Some(signed.timestamp.as_str());

        // X-Signature only: the common case.
        let raw = Delivery {
            timestamp,
            signatures: SignatureHeaders {
                raw: Some(&signed.signature),
                ..Default::default()
            },
            body: &body,
        };
        assert_eq!(signed.signature, sign_raw(&signing, &body));
        assert_verifies(&single, &raw, Scheme::Raw, "current");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("raw/{label}"), |b| {
            b.iter(|| single.verify(black_box(&raw), NOW).unwrap());
        });

        // X-Signature-V2 only, over a body whose bytes differ from the compact encoding, so only
        // canonicalisation can make the MAC match.
        let v2_signature = sign_v2(&signing, &pretty, CanonicalForm::Python).unwrap();
        assert_ne!(sign_raw(&signing, &pretty), v2_signature);
        let v2 = Delivery {
            timestamp,
            signatures: SignatureHeaders {
                v2: Some(&v2_signature),
                ..Default::default()
            },
            body: &pretty,
        };
        assert_verifies(&single, &v2, Scheme::V2(CanonicalForm::Python), "current");
        group.throughput(Throughput::Bytes(pretty.len() as u64));
        group.bench_function(format!("v2/{label}"), |b| {
            b.iter(|| single.verify(black_box(&v2), NOW).unwrap());
        });

        // X-Signature-Simple only, accepted by a lenient receiver.
        let simple_signature = sign_simple(&signing, &body);
        assert_eq!(simple_signature, signed.signature_simple);
        let simple = Delivery {
            timestamp,
            signatures: SignatureHeaders {
                simple: Some(&simple_signature),
                ..Default::default()
            },
            body: &body,
        };
        assert!(
            single.verify(&simple, NOW).is_err(),
            "simple must be opt-in"
        );
        assert_verifies(&lenient, &simple, Scheme::Simple, "current");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("simple/{label}"), |b| {
            b.iter(|| lenient.verify(black_box(&simple), NOW).unwrap());
        });

        // X-Signature against three keys, the matching one last.
        assert_verifies(&rotating, &raw, Scheme::Raw, "current");
        group.bench_function(format!("raw-keyring-3/{label}"), |b| {
            b.iter(|| rotating.verify(black_box(&raw), NOW).unwrap());
        });
    }
    group.finish();
}

fn canonical(c: &mut Criterion) {
    let mut group = c.benchmark_group("canonicalize");
    for name in FIXTURES {
        let label = name
            .trim_start_matches("status-updated-")
            .trim_end_matches(".json");
        let (body, _) = payload(name);
        group.throughput(Throughput::Bytes(body.len() as u64));
        for form in [CanonicalForm::Python, CanonicalForm::JavaScript] {
            canonicalize(&body, form).unwrap();
            group.bench_function(format!("{form}/{label}"), |b| {
                b.iter(|| canonicalize(black_box(&body), form).unwrap());
            });
        }
    }
    group.finish();
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for name in FIXTURES {
        let label = name
            .trim_start_matches("status-updated-")
            .trim_end_matches(".json");
        let (body, _) = payload(name);
        DiditEvent::from_slice(&body).unwrap();
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(label, |b| {
            b.iter(|| DiditEvent::from_slice(black_box(&body)).unwrap());
        });
        // The floor: the same bytes parsed to a JSON tree, which `from_slice` starts with.
        group.bench_function(format!("json-tree/{label}"), |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, verify, canonical, parse);
criterion_main!(benches);
