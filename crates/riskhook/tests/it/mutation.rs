//! The mutation run through the real HTTP intake on SQLite: every original is delivered once,
//! then mutants of them (the generator of `riskhook-didit/tests/mutation.rs`), and the database
//! must hold exactly the originals. A mutant accepted legitimately is a duplicate of its
//! original; anything else stored is a forged or altered event that got in.
//! `RISKHOOK_HTTP_MUTATIONS=N` changes the size of the main run (2,000).

use std::collections::BTreeMap;

use crate::helpers::{fixture, fixture_names, key, now, spawn_app};

#[path = "../../../riskhook-didit/tests/mutation/mutate.rs"]
#[allow(
    dead_code,
    reason = "shared with riskhook-didit's mutation test, which uses the parts this one does not"
)]
mod mutate;

use mutate::{HEADER_NAMES, Identity, Mix, Original, count, mutate, rng};

/// Every fixture stamped `t`, `t - 7`, …: distinct content keys, all inside the window.
fn originals(t: i64) -> Vec<Original> {
    fixture_names()
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Original::new(
                name,
                &fixture(name),
                &key(),
                t - 7 * i64::try_from(i).unwrap(),
            )
        })
        .collect()
}

fn header_pairs(headers: &mutate::Headers) -> Vec<(&'static str, String)> {
    HEADER_NAMES
        .iter()
        .zip(headers)
        .filter_map(|(name, value)| Some((*name, value.clone()?)))
        .collect()
}

/// Delivers the originals, then `n` mutants of them; asserts that the database holds the
/// originals and nothing else, byte for byte.
async fn deliver_and_check(seed: u64, n: usize, mix: Mix, originals: &[Original]) {
    let app = spawn_app().await;
    for original in originals {
        let reply = app
            .post_with_headers(original.body.clone(), &header_pairs(&original.headers))
            .await;
        assert_eq!(reply.status, 200, "{}: {reply:?}", original.name);
    }
    let mut rng = rng(seed);
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for i in 0..n {
        let original = &originals[i % originals.len()];
        let mutant = mutate(&mut rng, mix, original, originals);
        let reply = app
            .post_with_headers(mutant.body.clone(), &header_pairs(&mutant.headers))
            .await;
        *statuses.entry(reply.status).or_default() += 1;
        assert!(
            reply.status < 500,
            "{}: {reply:?}\n{}",
            original.name,
            mutant.what
        );
    }
    println!("{n} mutants over HTTP, by status: {statuses:?}");

    let stored = app.store.events(None, 10_000).await.unwrap();
    let mut unexpected = Vec::new();
    for event in &stored {
        let identity = Identity {
            kind: event.webhook_type.clone(),
            delivery_key: event.delivery_key.clone(),
            content_key: event.content_key.clone(),
            session_id: event.session_id.clone(),
            subject_id: event.subject_id.clone(),
            status: event.status.clone(),
            vendor_data: event.vendor_data.clone(),
            timestamp: event.event_timestamp,
        };
        let legitimate = originals
            .iter()
            .any(|o| o.identity == identity && o.body == event.raw);
        if !legitimate {
            unexpected.push(format!(
                "{identity:?} via {}: {}",
                event.scheme,
                String::from_utf8_lossy(&event.raw[..event.raw.len().min(300)])
            ));
        }
    }
    assert!(
        unexpected.is_empty(),
        "{} stored events are not originals:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    assert_eq!(
        stored.len(),
        originals.len(),
        "every original is stored once"
    );
    // Enough mutants must have been accepted (as duplicates) for the run to mean something.
    assert!(
        statuses.get(&200).copied().unwrap_or(0) > n / 50,
        "{statuses:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_deliveries_over_http_store_only_the_originals() {
    let originals = originals(now());
    let n = count("RISKHOOK_HTTP_MUTATIONS", 2_000);
    deliver_and_check(0x5eed_1001, n, Mix::All, &originals).await;
}

/// Issue 11, finding 7: a V2 delivery whose numeric ids are respelled (`777001` → `777001.0`)
/// verifies, and must not be stored as another session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_ids_respelled_over_http_store_only_the_originals() {
    let originals: Vec<Original> = originals(now())
        .iter()
        .filter(|o| o.is_flat_session_event())
        .enumerate()
        .map(|(n, o)| o.with_numeric_ids(n, &key()))
        .collect();
    deliver_and_check(0x5eed_1002, 300, Mix::ReencodingsOnly, &originals).await;
}
