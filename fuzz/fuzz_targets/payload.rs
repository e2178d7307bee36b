//! Fuzzes the payload parser: any bytes give an event or an error without a panic, parsing is
//! deterministic, and an accepted event's accessors agree with each other.

#![no_main]

use libfuzzer_sys::fuzz_target;
use riskhook_didit::payload::{DiditEvent, EventBody, EventKind};

fuzz_target!(|data: &[u8]| {
    let Ok(event) = DiditEvent::from_slice(data) else {
        return;
    };
    // The same bytes read through a JSON value give the same event.
    let value: serde_json::Value = serde_json::from_slice(data).expect("accepted bytes are JSON");
    let again = DiditEvent::from_value(value).expect("accepted once, accepted again");
    assert_eq!(again, event);

    assert_eq!(EventKind::parse(event.kind.as_str()), event.kind);
    if let Some(key) = event.delivery_key() {
        assert!(!key.is_empty());
        assert_eq!(Some(key), event.event_id.as_deref());
    }

    // The session id is the subject of every event that has one, except activity.created,
    // whose subject is the entity's vendor_data first.
    if let Some(session) = event.session_id()
        && event.kind != EventKind::ActivityCreated
    {
        assert_eq!(event.subject_id(), Some(session));
    }
    if matches!(event.body, EventBody::Session(_)) {
        assert!(event.session().is_some());
    } else {
        assert!(event.session().is_none() && event.decision().is_none());
    }

    // The content key splits back into exactly its four parts: no collisions by separator.
    let key = event.content_key();
    let parts = split_unescaped(&key);
    let timestamp = event.timestamp.map(|t| t.to_string()).unwrap_or_default();
    let expected = [
        event.kind.as_str(),
        event.subject_id().unwrap_or_default(),
        event.status().unwrap_or_default(),
        timestamp.as_str(),
    ];
    assert_eq!(parts, expected, "content key {key:?}");

    let _ = event.vendor_data();
    let _ = event.is_console_test();
});

/// Splits on `|` not preceded by `\`, removing the escapes.
fn split_unescaped(key: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let escaped = chars.next().expect("an escape is followed by a character");
                assert!(escaped == '|' || escaped == '\\', "stray escape in {key:?}");
                parts.last_mut().expect("never empty").push(escaped);
            }
            '|' => parts.push(String::new()),
            c => parts.last_mut().expect("never empty").push(c),
        }
    }
    parts
}
