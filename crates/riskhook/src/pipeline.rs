//! The ingest pipeline after verification: turn a verified delivery into the record the store
//! keeps, and store it exactly once. The one place that sequences what happens to an event.

use riskhook_didit::axum::VerifiedDiditEvent;
use riskhook_store::{EventRecord, IngestOutcome, Store, StoreError};

/// The record to store for a verified delivery, under our new id `id`.
pub fn new_event(verified: &VerifiedDiditEvent, id: String) -> EventRecord {
    let VerifiedDiditEvent {
        event,
        verification,
        raw,
        received_at,
    } = verified;
    EventRecord {
        id,
        received_at: *received_at,
        webhook_type: event.kind.as_str().to_owned(),
        delivery_key: event.delivery_key().map(str::to_owned),
        content_key: event.content_key(),
        subject_id: event.subject_id().map(str::to_owned),
        session_id: event.session_id().map(str::to_owned),
        status: event.status().map(str::to_owned),
        event_timestamp: event.timestamp,
        vendor_data: event.vendor_data().map(str::to_owned),
        key_id: verification.key_id.clone(),
        scheme: verification.scheme.as_str().to_owned(),
        body_trusted: verification.trusts_body(),
        raw: raw.to_vec(),
    }
}

/// A new event id: `evt_` and a UUIDv7, so ids sort by creation time.
pub fn new_event_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
}

/// Stores a verified delivery and applies its effects, in one transaction.
pub async fn ingest(
    store: &dyn Store,
    verified: &VerifiedDiditEvent,
) -> Result<IngestOutcome, StoreError> {
    store.ingest(new_event(verified, new_event_id())).await
}
