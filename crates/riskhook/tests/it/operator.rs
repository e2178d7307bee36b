//! The operator's commands against a real database file: `keys create|list|revoke` and
//! `audit verify`, including a tampered audit log being caught.

use std::process::{Command, Output};

fn riskhook(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_riskhook"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RISKHOOK_DATABASE_URL", db)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The key id printed by `keys create`.
fn created_id(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .find(|w| w.starts_with("key_"))
        .unwrap()
        .to_owned()
}

#[test]
fn keys_are_created_listed_and_revoked_and_the_audit_chain_catches_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ops.db");
    let db = format!("sqlite://{}", path.display());
    ok(&riskhook(&db, &["migrate"]));

    let alice = ok(&riskhook(
        &db,
        &["keys", "create", "--name", "alice", "--role", "review"],
    ));
    let secret = alice
        .lines()
        .find_map(|l| l.strip_prefix("API key (shown once, store it now): "))
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("rhk_"), "{alice}");
    let alice_id = created_id(&alice);
    let bob_id = created_id(&ok(&riskhook(
        &db,
        &["keys", "create", "--name", "bob", "--role", "admin"],
    )));
    let list = ok(&riskhook(&db, &["keys", "list"]));
    assert!(list.contains(&alice_id) && list.contains(&bob_id), "{list}");
    assert!(!list.contains(&secret), "secrets are never listed: {list}");
    ok(&riskhook(&db, &["keys", "revoke", &alice_id]));
    let list = ok(&riskhook(&db, &["keys", "list"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with(&alice_id) && l.contains("revoked")),
        "{list}"
    );
    let bad_role = riskhook(&db, &["keys", "create", "--name", "x", "--role", "root"]);
    assert!(!bad_role.status.success());
    let unknown = riskhook(&db, &["keys", "revoke", "key_nope"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("key_nope not found"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    let verified = ok(&riskhook(&db, &["audit", "verify"]));
    assert!(
        verified.starts_with("audit chain intact: 3 entries"),
        "{verified}"
    );

    // Someone with write access to the file edits entry 2. The append-only trigger stops a
    // plain UPDATE; dropping it first is what a deliberate tamperer would do.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let refused = conn.execute("UPDATE audit_log SET actor = 'someone' WHERE seq = 2", []);
    assert!(refused.is_err(), "the audit log refuses updates");
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update;
         UPDATE audit_log SET after = replace(after, 'admin', 'read') WHERE seq = 2;",
    )
    .unwrap();
    drop(conn);
    let broken = riskhook(&db, &["audit", "verify"]);
    assert_eq!(broken.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("broken at entry 2"), "{stderr}");
    assert!(stderr.contains("was changed"), "{stderr}");
}

#[test]
fn a_deleted_audit_entry_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ops.db");
    let db = format!("sqlite://{}", path.display());
    ok(&riskhook(&db, &["migrate"]));
    for name in ["a", "b", "c"] {
        ok(&riskhook(
            &db,
            &["keys", "create", "--name", name, "--role", "read"],
        ));
    }
    assert!(ok(&riskhook(&db, &["audit", "verify"])).contains("3 entries"));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_delete;
         DELETE FROM audit_log WHERE seq = 2;",
    )
    .unwrap();
    drop(conn);
    let broken = riskhook(&db, &["audit", "verify"]);
    assert_eq!(broken.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("broken at entry 2"), "{stderr}");
}

// --- Issue 11, finding 4: a keyed, anchored chain --------------------------------------------

/// The audit key the tests below configure (as serve and the CLI read it: an environment
/// variable).
const AUDIT_KEY: &str = "the operator tests' audit key, 32+ bytes";

fn riskhook_with(db: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_riskhook"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RISKHOOK_DATABASE_URL", db)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

fn failed(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the service on `db` (publishing checkpoints to `anchors`, keyed with `key`), sends it a
/// few events, and stops it cleanly: its last checkpoint is of the final head. Returns the
/// head's position.
async fn serve_some_events(db: &str, anchors: &std::path::Path, key: Option<&str>) -> i64 {
    let anchors = anchors.display().to_string();
    let mut extra = vec![("RISKHOOK_AUDIT__ANCHOR_FILE", anchors.as_str())];
    if let Some(key) = key {
        extra.push(("RISKHOOK_AUDIT__KEY", key));
    }
    let app = crate::helpers::spawn_app_on(db, &extra).await;
    for name in [
        "status-updated-in-review.json",
        "status-updated-approved.json",
        "status-updated-declined-sanctions.json",
    ] {
        let reply = app.deliver(&crate::helpers::fixture(name)).await;
        assert!((200..300).contains(&reply.status), "{name}: {reply:?}");
    }
    let head = app.store.audit_head().await.unwrap().unwrap().seq;
    app.stop().await;
    head
}

/// The attacker's tool (the finding's (b)): change entry `seq`'s `after`, then recompute every
/// hash of the chain with SHA-256, marking every entry unkeyed, as someone without the key can.
fn rewrite_chain(path: &std::path::Path, seq: i64) {
    use riskhook_core::audit::{AuditFields, GENESIS};
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("DROP TRIGGER audit_log_no_update;")
        .unwrap();
    conn.execute(
        "UPDATE audit_log SET after = '{\"forged\":true}' WHERE seq = ?1",
        [seq],
    )
    .unwrap();
    type Row = (i64, String, i64, String, String, String);
    type Texts = (Option<String>, Option<String>, Option<String>);
    let rows: Vec<(Row, Texts)> = conn
        .prepare(
            "SELECT seq, id, at, actor, action, subject, reason, before, after FROM audit_log
             ORDER BY seq",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                (
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ),
                (r.get(6)?, r.get(7)?, r.get(8)?),
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut prev = GENESIS.to_owned();
    for ((seq, id, at, actor, action, subject), (reason, before, after)) in &rows {
        let hash = AuditFields {
            seq: *seq,
            id,
            at: *at,
            actor,
            action,
            subject,
            reason: reason.as_deref(),
            before: before.as_deref(),
            after: after.as_deref(),
            prev_hash: &prev,
        }
        .hash();
        conn.execute(
            "UPDATE audit_log SET prev_hash = ?2, hash = ?3, keyed = 0 WHERE seq = ?1",
            rusqlite::params![seq, prev, hash],
        )
        .unwrap();
        prev = hash;
    }
}

/// (a) Someone with the database file removes the last entries (dropping the trigger first):
/// the chain itself still verifies, but not against the anchors the service published.
#[tokio::test]
async fn removing_the_last_audit_entries_is_caught_against_the_anchors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("riskhook.db");
    let db = format!("sqlite://{}", path.display());
    let anchors = dir.path().join("anchors.jsonl");
    let head = serve_some_events(&db, &anchors, None).await;
    assert!(head >= 4, "{head} entries");
    let file = anchors.display().to_string();
    let verified = ok(&riskhook(&db, &["audit", "verify", "--anchors", &file]));
    assert!(
        verified.contains(&format!("(newest at entry {head})")),
        "{verified}"
    );

    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "DROP TRIGGER audit_log_no_delete;
         DELETE FROM audit_log WHERE seq > {};",
        head - 2
    ))
    .unwrap();
    drop(conn);
    // The shortened chain is a valid chain: that is why anchors are needed.
    let fooled = ok(&riskhook(&db, &["audit", "verify"]));
    assert!(fooled.starts_with("audit chain intact"), "{fooled}");
    let stderr = failed(&riskhook(&db, &["audit", "verify", "--anchors", &file]));
    assert!(
        stderr.contains(&format!(
            "the chain ends at entry {} but an anchor says entry {head} exists",
            head - 2
        )),
        "{stderr}"
    );
    // The same from an anchor copied by hand out of the log.
    let last = std::fs::read_to_string(&anchors).unwrap();
    let last: serde_json::Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
    let typed = format!("{head}:{}", last["hash"].as_str().unwrap());
    let stderr = failed(&riskhook(&db, &["audit", "verify", "--anchor", &typed]));
    assert!(stderr.contains("but an anchor says"), "{stderr}");
}

/// (b) Someone edits an entry and recomputes every hash with SHA-256 (the finding's attack):
/// without the key or anchors that passes; the key catches it, and so do the anchors without
/// the key. The service then refuses to key the rewritten chain by itself.
#[tokio::test]
async fn a_chain_rehashed_without_the_key_is_caught_with_the_key_and_against_the_anchors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("riskhook.db");
    let db = format!("sqlite://{}", path.display());
    let anchors = dir.path().join("anchors.jsonl");
    let head = serve_some_events(&db, &anchors, Some(AUDIT_KEY)).await;
    let key = [("RISKHOOK_AUDIT__KEY", AUDIT_KEY)];
    let file = anchors.display().to_string();
    let verified = ok(&riskhook_with(
        &db,
        &key,
        &["audit", "verify", "--anchors", &file],
    ));
    assert!(
        verified.starts_with(&format!(
            "audit chain intact: {head} entries ({head} keyed, checked with the audit key)"
        )),
        "{verified}"
    );
    // Without the key, keyed entries cannot be checked: a failure unless asked for.
    let stderr = failed(&riskhook(&db, &["audit", "verify"]));
    assert!(
        stderr.contains("cannot be checked without the audit key"),
        "{stderr}"
    );
    ok(&riskhook(&db, &["audit", "verify", "--without-key"]));
    // An anchor file line whose mac was made with another key is reported as forged.
    let forged = dir.path().join("forged.jsonl");
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&anchors)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let mut moved = first.clone();
    moved["at"] = serde_json::json!(first["at"].as_i64().unwrap() + 1);
    std::fs::write(&forged, format!("{moved}\n")).unwrap();
    let stderr = failed(&riskhook_with(
        &db,
        &key,
        &[
            "audit",
            "verify",
            "--anchors",
            &forged.display().to_string(),
        ],
    ));
    assert!(stderr.contains("is forged"), "{stderr}");

    rewrite_chain(&path, 2);
    let fooled = ok(&riskhook(&db, &["audit", "verify"]));
    assert!(fooled.starts_with("audit chain intact"), "{fooled}");
    let stderr = failed(&riskhook_with(&db, &key, &["audit", "verify"]));
    assert!(
        stderr.contains(&format!("none of the {head} entries is keyed")),
        "{stderr}"
    );
    let stderr = failed(&riskhook(&db, &["audit", "verify", "--anchors", &file]));
    assert!(stderr.contains("differs from the anchor's"), "{stderr}");
    // Nothing with the key appends to it until an operator starts keying it again.
    let stderr = failed(&riskhook_with(
        &db,
        &key,
        &["keys", "create", "--name", "x", "--role", "read"],
    ));
    assert!(stderr.contains("written without the audit key"), "{stderr}");
}

/// (c) A forged entry inserted with plain SQL is refused unless it extends the head; at the
/// head (the trigger cannot check a MAC), the key finds it.
#[tokio::test]
async fn a_forged_insert_is_refused_by_the_database_or_found_by_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("riskhook.db");
    let db = format!("sqlite://{}", path.display());
    let anchors = dir.path().join("anchors.jsonl");
    let head = serve_some_events(&db, &anchors, Some(AUDIT_KEY)).await;
    let key = [("RISKHOOK_AUDIT__KEY", AUDIT_KEY)];
    let conn = rusqlite::Connection::open(&path).unwrap();
    let head_hash: String = conn
        .query_row("SELECT hash FROM audit_log WHERE seq = ?1", [head], |r| {
            r.get(0)
        })
        .unwrap();
    let second_hash: String = conn
        .query_row("SELECT hash FROM audit_log WHERE seq = 2", [], |r| r.get(0))
        .unwrap();
    let forge = |seq: i64, prev: &str| {
        let entry = riskhook_store::NewAuditEntry::system(
            1_780_000_000,
            "case.resolved",
            "user:u-1".to_owned(),
            "{\"status\":\"approved\"}".to_owned(),
        )
        .link(seq, format!("aud_forged_{seq}"), prev.to_owned(), None);
        conn.execute(
            "INSERT INTO audit_log (seq, id, at, actor, action, subject, reason, before, after,
                                    prev_hash, hash, keyed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0)",
            rusqlite::params![
                entry.seq,
                entry.id,
                entry.at,
                entry.actor,
                entry.action,
                entry.subject,
                entry.reason,
                entry.before,
                entry.after,
                entry.prev_hash,
                entry.hash
            ],
        )
    };
    let refused = forge(3, &second_hash).expect_err("in the middle");
    assert!(refused.to_string().contains("extend the head"), "{refused}");
    forge(head + 1, &head_hash).expect("at the head, the database cannot tell");
    let stderr = failed(&riskhook_with(&db, &key, &["audit", "verify"]));
    assert!(
        stderr.contains(&format!(
            "broken at entry {}: it is not keyed but follows a keyed entry",
            head + 1
        )),
        "{stderr}"
    );
}

/// A key configured for a database that already has unkeyed entries: the service refuses to
/// start until `audit start-keying` has checked the chain and keyed it from its next entry;
/// then the chain is an unkeyed prefix and a keyed suffix, which verifies only with the key.
#[tokio::test]
async fn an_existing_chain_is_keyed_from_its_next_entry_by_start_keying() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("riskhook.db").display());
    let anchors = dir.path().join("anchors.jsonl");
    let unkeyed = serve_some_events(&db, &anchors, None).await;
    let key = [("RISKHOOK_AUDIT__KEY", AUDIT_KEY)];
    let config = crate::helpers::test_config(&db, &key);
    let refused = riskhook::app::App::build(config)
        .await
        .expect_err("refused");
    assert!(
        format!("{refused:#}").contains("audit start-keying"),
        "{refused:#}"
    );
    let file = anchors.display().to_string();
    let started = ok(&riskhook_with(
        &db,
        &key,
        &["audit", "start-keying", "--anchors", &file],
    ));
    let keyed_from = unkeyed + 1;
    assert!(
        started.starts_with(&format!("audit chain keyed from entry {keyed_from}")),
        "{started}"
    );
    let head = serve_some_events(&db, &anchors, Some(AUDIT_KEY)).await;
    let verified = ok(&riskhook_with(
        &db,
        &key,
        &["audit", "verify", "--anchors", &file],
    ));
    assert!(
        verified.starts_with(&format!(
            "audit chain intact: {head} entries ({} keyed, checked with the audit key)",
            head - unkeyed
        )),
        "{verified}"
    );
    // A second start-keying is refused: the chain is keyed already.
    let stderr = failed(&riskhook_with(&db, &key, &["audit", "start-keying"]));
    assert!(stderr.contains("keyed already"), "{stderr}");
}
