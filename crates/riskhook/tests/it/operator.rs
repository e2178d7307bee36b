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
