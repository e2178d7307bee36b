//! Restarts and shutdown: what was acknowledged survives, and in-flight requests finish.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{fixture, now, signed_headers, spawn_app_on, spawn_app_with};

#[tokio::test]
async fn a_restart_keeps_every_acknowledged_event_and_redeliveries_stay_duplicates() {
    let app = spawn_app_with(&[]).await;
    let url = app.db_url.clone();
    // Keep the temporary directory alive across the restart by moving the app's ownership.
    let t = now();
    let names = [
        "status-updated-not-started.json",
        "status-updated-in-progress.json",
        "status-updated-approved.json",
    ];
    let mut sent = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let ts = t - 10 + i64::try_from(i).unwrap();
        let body = riskhook::delivery::restamp(&fixture(name), ts);
        let reply = app.post_signed(&body, ts).await;
        assert_eq!(reply.json["status"], "accepted", "{reply:?}");
        sent.push((body, ts, reply.json["id"].as_str().unwrap().to_owned()));
    }
    let (dir_guard, app) = app.detach_dir();
    app.stop().await;

    let again = spawn_app_on(&url, &[]).await;
    assert_eq!(again.store.count_events().await.unwrap(), 3);
    for (body, ts, id) in &sent {
        let stored = again.store.event(id).await.unwrap().unwrap();
        assert_eq!(&stored.raw, body);
        let reply = again.post_signed(body, *ts).await;
        assert_eq!(reply.json["status"], "duplicate", "{reply:?}");
        assert_eq!(reply.json["id"], id.as_str());
    }
    assert_eq!(again.store.count_events().await.unwrap(), 3);
    again.stop().await;
    drop(dir_guard);
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_delivery_finish_and_commit() {
    let app = spawn_app_with(&[]).await;
    let t = now();
    let body = riskhook::delivery::restamp(&fixture("status-updated-approved.json"), t);
    let mut request = format!(
        "POST /webhooks/didit HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        app.addr,
        body.len()
    );
    for (name, value) in signed_headers(&body, t, &[]) {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let (head, tail) = body.split_at(body.len() / 2);
    stream.write_all(head).await.unwrap();
    stream.flush().await.unwrap();
    // The request is now in flight: headers read, body half sent.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let db_url = app.db_url.clone();
    let (dir_guard, app) = app.detach_dir();
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown must wait for the in-flight request"
    );
    stream.write_all(tail).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"accepted\""), "{response}");
    stopping.await.unwrap();
    // The service closed its database on the way out; what it acknowledged is on disk.
    let reopened = riskhook_store_sqlite::SqliteStore::open(&db_url)
        .await
        .unwrap();
    use riskhook_store::Store;
    assert_eq!(reopened.count_events().await.unwrap(), 1);
    drop(dir_guard);
}
