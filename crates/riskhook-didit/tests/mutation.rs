//! A mutation run through `Verifier::verify`: 100,000 mutated signed deliveries (bit flips,
//! byte insertions and deletions, field edits, override attempts, re-encodings, header edits),
//! none of which may be accepted unless its signature covers it and the identifiers the service
//! keys on are the original's. `RISKHOOK_MUTATIONS=N` changes the size of the main run (about
//! 50 s of CPU in a debug build; the runs aimed at issue 11's findings 1 and 7 are fixed and
//! smaller).
//!
//! The generator and the oracle are in `mutation/mutate.rs`, shared with the service's HTTP run.

#![allow(clippy::unwrap_used)]

#[path = "mutation/mutate.rs"]
mod mutate;

use std::path::Path;

use mutate::{Mix, Original, Tally, count, judge, mutate, rng};
use riskhook_didit::signature::{Key, Keyring, Secret};
use riskhook_didit::webhook::Verifier;

const SECRET: &str = "tno2NTeRC1ZK3sBOYlBJDyEzBVENl3pQ1AcZyAW0xnQ";
const T0: i64 = 1_780_045_046;

fn key() -> Key {
    Key::new("mutation", &Secret::new(SECRET)).unwrap()
}

fn verifier(allow_simple: bool) -> Verifier {
    Verifier::new(Keyring::new(vec![key()]).unwrap()).allow_simple(allow_simple)
}

/// Every fixture, each stamped with its own timestamp so that no two share a content key.
fn originals() -> Vec<Original> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/didit");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let fixture = std::fs::read(dir.join(name)).unwrap();
            Original::new(name, &fixture, &key(), T0 - 7 * i64::try_from(i).unwrap())
        })
        .collect()
}

/// The flat session events with numeric `session_id` and `vendor_data`.
fn numeric_id_originals() -> Vec<Original> {
    originals()
        .iter()
        .filter(|o| o.is_flat_session_event())
        .enumerate()
        .map(|(n, o)| o.with_numeric_ids(n, &key()))
        .collect()
}

/// Makes `n` mutants of `originals` with `mix` and judges each at its original's time.
fn run(seed: u64, n: usize, mix: Mix, originals: &[Original], verifier: &Verifier) -> Tally {
    let mut rng = rng(seed);
    let mut tally = Tally::default();
    for i in 0..n {
        let original = &originals[i % originals.len()];
        let mutant = mutate(&mut rng, mix, original, originals);
        let verdict = judge(verifier, original.timestamp, original, &mutant);
        tally.add(mutant.class(), verdict);
    }
    tally
}

#[test]
fn every_original_verifies_as_it_is() {
    let verifier = verifier(false);
    for original in originals().iter().chain(&numeric_id_originals()) {
        let h = &original.headers;
        let delivery = riskhook_didit::webhook::Delivery {
            timestamp: h[0].as_deref(),
            signatures: riskhook_didit::signature::SignatureHeaders {
                raw: h[1].as_deref(),
                v2: h[2].as_deref(),
                simple: h[3].as_deref(),
            },
            body: &original.body,
        };
        let verified = verifier.verify(&delivery, original.timestamp);
        assert!(verified.is_ok(), "{}: {:?}", original.name, verified.err());
    }
}

#[test]
fn mutated_deliveries_are_accepted_only_when_their_signature_covers_them_unchanged() {
    let originals = originals();
    let tally = run(
        0x5eed_0001,
        count("RISKHOOK_MUTATIONS", 100_000),
        Mix::All,
        &originals,
        &verifier(false),
    );
    tally.assert_no_failures();
    // The run must have reached the accepting paths, or it proves nothing.
    assert!(
        tally.legitimate() > tally.total() / 50,
        "{}",
        tally.report()
    );
}

/// Issue 11, finding 7: the canonical forms write `777001.0` as `777001`, so a V2 signature over
/// one verifies the other; identifiers are read from JSON strings only, so neither spelling can
/// name another session.
#[test]
fn numeric_ids_respelled_in_a_v2_signed_delivery_keep_their_identity() {
    let originals = numeric_id_originals();
    let tally = run(
        0x5eed_0002,
        2_000,
        Mix::ReencodingsOnly,
        &originals,
        &verifier(false),
    );
    tally.assert_no_failures();
    assert!(tally.legitimate() > 0, "{}", tally.report());
}

/// Issue 11, finding 1: with `X-Signature-Simple` accepted, no field outside it (a `data` object
/// with another session, status or user) may override the signed ones.
#[test]
fn with_simple_accepted_no_field_outside_it_overrides_a_signed_one() {
    let originals: Vec<Original> = originals()
        .into_iter()
        .filter(Original::is_flat_session_event)
        .collect();
    let tally = run(
        0x5eed_0003,
        5_000,
        Mix::AllButUnsignedFields,
        &originals,
        &verifier(true),
    );
    tally.assert_no_failures();
    assert!(tally.legitimate() > 0, "{}", tally.report());
}

/// `X-Signature-Simple` covers four fields, so with it accepted, an edited `event_id`,
/// `vendor_data`, or the subject of a non-session event (`transaction_id`, `uuid`, …) must not
/// be keyed on: the verifier reads a Simple-verified body from its four signed fields alone.
#[test]
fn with_simple_accepted_identifiers_it_does_not_cover_are_not_trusted() {
    let originals = originals();
    let tally = run(
        0x5eed_0004,
        2_000,
        Mix::UnsignedFieldsOnly,
        &originals,
        &verifier(true),
    );
    tally.assert_no_failures();
}
