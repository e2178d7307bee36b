//! The two readings of every payload struct agree: serde's derive (kept for embedders who
//! deserialize these types themselves) and [`FromMap`], which reads deliveries. Checked on
//! every object of every fixture, for every type, and on mutations: every value of a fixture
//! replaced, one at a time, by one of the JSON shapes the models meet in the wild, in turn.

use std::fmt::Debug;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::lenient::FromMap;
use super::*;

fn fixtures() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("fixtures").join("didit"))
        .find(|dir| dir.is_dir())
        .expect("a fixtures/didit directory above the crate");
    let mut all: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read(&path).expect("read");
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, serde_json::from_slice(&text).expect("JSON"))
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(all.len() >= 10, "{} fixtures", all.len());
    all
}

#[track_caller]
fn agree<T: DeserializeOwned + FromMap + PartialEq + Debug>(map: &Map<String, Value>, at: &str) {
    agree_at::<T>(map, || at.to_owned());
}

/// `at` is only made when the readings differ: the mutation test checks many thousands.
#[track_caller]
fn agree_at<T: DeserializeOwned + FromMap + PartialEq + Debug>(
    map: &Map<String, Value>,
    at: impl Fn() -> String,
) {
    let by_serde: T = serde_json::from_value(Value::Object(map.clone()))
        .unwrap_or_else(|e| panic!("{}: serde failed: {e}", at()));
    let by_map = T::from_map(map.clone());
    if by_map != by_serde {
        panic!(
            "{}: {} differs\nfrom the map: {by_map:?}\nby serde: {by_serde:?}",
            at(),
            std::any::type_name::<T>()
        );
    }
}

/// Calls `$check::<T>(map, at)` for every payload type. A struct nested in another is read
/// through [`FromMap`] by both readings of the outer one, so each type's own fields are
/// compared only where that type is read at the top: hence every type, on every object.
macro_rules! every_type {
    ($check:ident, $map:expr, $at:expr) => {{
        let mut types = 0;
        every_type!(@each $check, $map, $at, types;
            Decision, SessionEvent, ResubmitInfo, EntityEvent, TransactionEvent,
            TravelRuleEvent, Review, Warning, Match, AmlScreening, AmlHit, IdVerification,
            ImageQuality, NfcVerification, NfcAuthenticity, CertificateSummary, LivenessCheck,
            FaceMatch, PhoneVerification, Carrier, EmailVerification, Breach, PoaVerification,
            PoaDocumentMetadata, DocumentAiDocument, DocumentAiItem, QuestionnaireResponse,
            IpAnalysis, DatabaseValidation, RegistryCheck, KeyPeopleCheck, UboKycSummary,
            DocumentVerification);
        types
    }};
    (@each $check:ident, $map:expr, $at:expr, $count:ident; $($ty:ident),*) => {
        $( $check::<$ty>($map, $at); $count += 1; )*
    };
}

/// The list above misses no type: one for each `lenient_struct!` and `Decision`, which is
/// written by hand.
#[test]
fn every_payload_type_is_checked() {
    let declared: usize = [
        include_str!("aml.rs"),
        include_str!("decision.rs"),
        include_str!("entity.rs"),
        include_str!("features.rs"),
        include_str!("session.rs"),
    ]
    .iter()
    .map(|source| source.matches("\nlenient_struct! {").count())
    .sum();
    let listed = every_type!(agree, &Map::new(), "an empty object");
    assert_eq!(listed, declared + 1);
}

fn objects<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a Map<String, Value>)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                objects(child, format!("{at}.{key}"), out);
            }
            out.push((at, map));
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                objects(child, format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_object_of_every_fixture_reads_the_same_as_every_type() {
    let mut checked = 0;
    for (name, fixture) in fixtures() {
        let mut found = Vec::new();
        objects(&fixture, name, &mut found);
        for (at, map) in found {
            every_type!(agree, map, &at);
            checked += 1;
        }
    }
    assert!(checked > 300, "{checked} objects");
}

/// Paths to every value in `value`, as JSON pointers.
fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(path.clone());
                pointers(child, &path, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let path = format!("{at}/{i}");
                out.push(path.clone());
                pointers(child, &path, out);
            }
        }
        _ => {}
    }
}

#[test]
fn reading_from_the_map_agrees_with_serde_on_every_mutation() {
    let shapes = [
        json!(null),
        json!(true),
        json!(-7),
        json!(34.0),
        json!("96.5"),
        json!("text"),
        json!([1, "a", null, {"status": "Approved"}]),
        json!({"status": "Declined", "match": "true", "score": "0.5", "extra": [1]}),
    ];
    let mut checked = 0;
    for (name, mut fixture) in fixtures() {
        let mut paths = Vec::new();
        pointers(&fixture, "", &mut paths);
        for (i, path) in paths.iter().enumerate() {
            // One shape a value, taking turns: every shape meets every kind of field across
            // the fixtures, at an eighth of the cost of all of them everywhere.
            for shape in shapes.iter().cycle().skip(i % shapes.len()).take(1) {
                let node = fixture.pointer_mut(path).expect("path");
                let original = std::mem::replace(node, shape.clone());
                // Every type reads the object holding the changed value. (Reading the whole
                // delivery would add nothing: a nested struct is read through `FromMap` by
                // both readings of the outer one.)
                let parent = &path[..path.rfind('/').expect("a pointer")];
                if let Some(Value::Object(map)) = fixture.pointer(parent) {
                    let at = || format!("{name}{parent} with {path} = {shape}");
                    every_type!(agree_at, map, at);
                    checked += 1;
                }
                *fixture.pointer_mut(path).expect("path") = original;
            }
        }
    }
    assert!(checked > 1_500, "{checked} mutations");
}
