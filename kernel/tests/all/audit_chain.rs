//! The keyed audit chain end to end: a serving kernel signs records with a
//! key kept beside (not in) the data dir and anchors the chain head to a
//! file; `tianshan audit verify` then finds a record rewritten in the
//! database and a tail cut off it, which the old unkeyed chain let pass.

use std::time::{Duration, Instant};

use crate::backup::{succeeded, tianshan};
use crate::support::TestKernel;

async fn sql(db: &std::path::Path, statement: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::raw_sql(statement).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

fn run_sql(db: &std::path::Path, statement: &str) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(sql(db, statement));
}

#[test]
fn a_rewritten_record_and_a_cut_tail_are_found() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("test.toml");
    std::fs::write(&config, "[audit]\nanchor-interval-secs = 1\n").unwrap();
    let k = TestKernel::start_in(&data, &["--config", config.to_str().unwrap()]);
    // The key was created beside the data dir, private.
    let key = tmp.path().join("tianshan-audit.key");
    assert!(key.exists(), "no audit key beside the data dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the audit key is readable by others");
    }
    // Refused logins are audited: a few records to work on.
    for i in 0..5 {
        let (status, _) = k.request(
            "POST",
            "/api/v1/auth/login",
            Some(""),
            Some(
                format!(r#"{{"username":"nobody{i}","password":"wrong-password-{i}"}}"#)
                    .into_bytes(),
            ),
        );
        assert_eq!(status, 401);
    }
    let head = crate::backup::audit_hashes(&k)
        .into_iter()
        .next_back()
        .unwrap()
        .0;
    // Wait until an anchor covers the head.
    let anchors = tmp.path().join("data.audit-anchors");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&anchors).unwrap_or_default();
        let anchored = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["seq"].as_i64())
            .max()
            .unwrap_or(0);
        if anchored >= head {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no anchor for record {head}: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The console's check: the kernel walks the chain with its key.
    let (status, verdict) = k.get("/api/v1/audit/verify");
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["intact"], true, "{verdict}");
    assert!(verdict["keyed"].as_i64().unwrap() >= 5, "{verdict}");
    drop(k);
    let data_s = data.to_str().unwrap();
    let out = succeeded(
        &tianshan(&["audit", "verify", "--data-dir", data_s]),
        "audit verify",
    );
    assert!(out.contains("intact") && out.contains("anchor"), "{out}");
    assert!(!out.contains("(0 keyed)"), "{out}");

    // Cut the tail: the remaining chain is valid, the anchor is not met.
    let db = data.join("tianshan.db");
    run_sql(&db, &format!("DELETE FROM audit WHERE seq > {}", head - 2));
    let out = tianshan(&["audit", "verify", "--data-dir", data_s]);
    assert!(!out.status.success(), "a cut tail passed verification");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tail was cut"), "{stderr}");

    // Rewrite a record in place.
    run_sql(&db, "UPDATE audit SET outcome = 'denied' WHERE seq = 3");
    let out = tianshan(&["audit", "verify", "--data-dir", data_s]);
    assert!(
        !out.status.success(),
        "a rewritten record passed verification"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("record 3"), "{stderr}");
    // And the kernel says so too, naming the record.
    let k = TestKernel::start_in(&data, &["--config", config.to_str().unwrap()]);
    let (status, verdict) = k.get("/api/v1/audit/verify");
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["intact"], false, "{verdict}");
    assert!(verdict["seq"].as_i64().unwrap() <= 3, "{verdict}");
    drop(k);

    // Without the key a keyed chain cannot be vouched for.
    let out = tianshan(&[
        "audit",
        "verify",
        "--data-dir",
        data_s,
        "--audit-key-file",
        tmp.path().join("no-such.key").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
}

fn query_algs(db: &std::path::Path) -> Vec<(i64, Option<String>)> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use sqlx::Connection;
            let url = format!("sqlite://{}", db.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let rows = sqlx::query_as("SELECT seq, alg FROM audit ORDER BY seq")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
            rows
        })
}

/// Issue 10 item 10: `[audit] algorithm = "hmac-sm3"` signs the chain with
/// HMAC-SM3 (for 密评); a chain that switched algorithm verifies as a
/// whole, and a rewritten SM3 record is found.
#[test]
fn an_sm3_keyed_chain_verifies_and_a_rewrite_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let sm3 = tmp.path().join("sm3.toml");
    std::fs::write(&sm3, "[audit]\nalgorithm = \"hmac-sm3\"\n").unwrap();
    let refused_logins = |k: &TestKernel, n: usize| {
        for i in 0..n {
            let body = format!(r#"{{"username":"nobody{i}","password":"wrong-password-{i}"}}"#);
            let (status, _) = k.request(
                "POST",
                "/api/v1/auth/login",
                Some(""),
                Some(body.into_bytes()),
            );
            assert_eq!(status, 401);
        }
    };
    // First with the default (HMAC-SHA256), then switched to SM3.
    let k = TestKernel::start_in(&data, &[]);
    refused_logins(&k, 2);
    drop(k);
    let k = TestKernel::start_in(&data, &["--config", sm3.to_str().unwrap()]);
    refused_logins(&k, 3);
    let (status, verdict) = k.get("/api/v1/audit/verify");
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["intact"], true, "{verdict}");
    drop(k);

    let db = data.join("tianshan.db");
    let algs = query_algs(&db);
    let first_sm3 = algs
        .iter()
        .find(|(_, alg)| alg.as_deref() == Some("hmac-sm3"))
        .map(|(seq, _)| *seq)
        .expect("no record signed with hmac-sm3");
    assert!(
        algs.iter()
            .any(|(_, alg)| alg.as_deref() == Some("hmac-sha256")),
        "{algs:?}"
    );
    assert!(
        algs.iter()
            .filter(|(seq, _)| *seq >= first_sm3)
            .all(|(_, alg)| alg.as_deref() == Some("hmac-sm3")),
        "{algs:?}"
    );
    let data_s = data.to_str().unwrap();
    let out = succeeded(
        &tianshan(&["audit", "verify", "--data-dir", data_s]),
        "audit verify",
    );
    assert!(out.contains("intact"), "{out}");

    // Rewrite an SM3 record in place.
    run_sql(
        &db,
        &format!("UPDATE audit SET outcome = 'rewritten' WHERE seq = {first_sm3}"),
    );
    let out = tianshan(&["audit", "verify", "--data-dir", data_s]);
    assert!(!out.status.success(), "a rewritten SM3 record passed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("record {first_sm3}")), "{stderr}");
    let k = TestKernel::start_in(&data, &["--config", sm3.to_str().unwrap()]);
    let (status, verdict) = k.get("/api/v1/audit/verify");
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["intact"], false, "{verdict}");
    assert_eq!(verdict["seq"].as_i64(), Some(first_sm3), "{verdict}");
}
