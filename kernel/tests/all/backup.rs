//! `tianshan backup` under write load, `tianshan restore` into a new data
//! dir, a kernel started on it serving every record, file and audit entry,
//! and `tianshan audit verify` passing on it. On SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::services::PgDatabase;
use crate::support::TestKernel;

const NOTES: &str = "/api/v1/p/notes/notes";

pub fn tianshan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tianshan"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running tianshan")
}

pub fn succeeded(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn upload(k: &TestKernel, name: &str, body: &[u8]) -> String {
    let (status, bytes, _) = k.raw(
        "POST",
        &format!("/api/v1/files?name={name}"),
        None,
        Some(body.to_vec()),
        &[("content-type", "text/plain")],
    );
    let out: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(status, 201, "{out}");
    out["file"]["id"].as_str().unwrap().to_string()
}

/// Every audit record the kernel shows, seq → hash.
pub fn audit_hashes(k: &TestKernel) -> BTreeMap<i64, String> {
    let mut all = BTreeMap::new();
    let mut before = String::new();
    loop {
        let (status, page) = k.get(&format!("/api/v1/audit?limit=1000{before}"));
        assert_eq!(status, 200, "{page}");
        for r in page["records"].as_array().unwrap() {
            all.insert(
                r["seq"].as_i64().unwrap(),
                r["hash"].as_str().unwrap().to_string(),
            );
        }
        match page["next_before"].as_i64() {
            Some(seq) => before = format!("&before={seq}"),
            None => return all,
        }
    }
}

/// Writers creating notes until stopped; returns the ids acknowledged.
fn write_load(k: &TestKernel, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Vec<String>>> {
    (0..3)
        .map(|w| {
            let (base, token, stop) = (k.base.clone(), k.token.clone(), stop.clone());
            std::thread::spawn(move || {
                let agent = crate::support::agent();
                let mut acked = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = json!({"title": format!("load-{w}-{i}"), "publish": false});
                    let mut r = agent
                        .post(format!("{base}{NOTES}"))
                        .header("Authorization", format!("Bearer {token}"))
                        .send(body.to_string())
                        .expect("write during backup");
                    assert_eq!(r.status(), 201, "a write failed during the backup");
                    let v: Value = r.body_mut().read_json().unwrap();
                    acked.push(v["id"].as_str().unwrap().to_string());
                    i += 1;
                }
                acked
            })
        })
        .collect()
}

fn round_trip(database: Option<(&str, &str)>) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut args: Vec<&str> = vec![];
    if let Some((source, _)) = database {
        args.extend(["--database-url", source]);
    }
    let k = TestKernel::start_in(&data, &args);
    k.install_ok("notes");

    // Records, files and (through them) audit entries before the backup.
    let mut notes = Vec::new();
    for i in 0..20 {
        let (status, out) = k.request(
            "POST",
            NOTES,
            None,
            Some(
                json!({"title": format!("before-{i}"), "publish": false})
                    .to_string()
                    .into_bytes(),
            ),
        );
        assert_eq!(status, 201, "{out}");
        notes.push(out["id"].as_str().unwrap().to_string());
    }
    let files: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| {
            let content = format!("file {i}: 天山 backup content\n").repeat(50 + i);
            let id = upload(&k, &format!("f{i}.txt"), content.as_bytes());
            (id, content.into_bytes())
        })
        .collect();
    let audit_before = audit_hashes(&k);
    assert!(audit_before.len() >= 24, "{}", audit_before.len());

    // Back up while writers keep the database busy.
    let stop = Arc::new(AtomicBool::new(false));
    let writers = write_load(&k, stop.clone());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let archive = tmp.path().join("backup.tar.gz");
    let archive_s = archive.to_str().unwrap();
    let data_s = data.to_str().unwrap();
    let mut backup_args = vec!["backup", "--data-dir", data_s, "--out", archive_s];
    if let Some((source, _)) = database {
        backup_args.extend(["--database-url", source]);
    }
    let out = succeeded(&tianshan(&backup_args), "backup");
    assert!(out.contains("Backed up"), "{out}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let during: usize = writers.into_iter().map(|w| w.join().unwrap().len()).sum();
    assert!(during > 0, "no writes happened during the backup");
    // Writes went on after the backup as well.
    let (status, _) = k.request(
        "POST",
        NOTES,
        None,
        Some(
            json!({"title": "after", "publish": false})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(status, 201);
    drop(k);

    // The archive holds no compiled code and lists checksums.
    let listing = Command::new("tar")
        .arg("tzf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("MANIFEST.json"), "{listing}");
    assert!(!listing.contains("cache/"), "{listing}");
    assert_eq!(listing.matches("files/").count(), 3, "{listing}");

    // A non-empty target is refused, and nothing in it is touched.
    let mut refuse_args = vec!["restore", "--from", archive_s, "--data-dir", data_s];
    if let Some((source, _)) = database {
        refuse_args.extend(["--database-url", source]);
    }
    let refused = tianshan(&refuse_args);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Restore into a new dir beside the old one (so the audit key, which
    // lives beside the data dir and never in a backup, is the same).
    let restored = tmp.path().join("restored");
    let restored_s = restored.to_str().unwrap();
    let mut restore_args = vec!["restore", "--from", archive_s, "--data-dir", restored_s];
    if let Some((_, target)) = database {
        restore_args.extend(["--database-url", target]);
    }
    let out = succeeded(&tianshan(&restore_args), "restore");
    assert!(out.contains("every checksum matched"), "{out}");

    let mut verify_args = vec!["audit", "verify", "--data-dir", restored_s];
    if let Some((_, target)) = database {
        verify_args.extend(["--database-url", target]);
    }
    let out = succeeded(&tianshan(&verify_args), "audit verify");
    assert!(out.contains("audit chain intact"), "{out}");

    let mut serve_args: Vec<&str> = vec![];
    if let Some((_, target)) = database {
        serve_args.extend(["--database-url", target]);
    }
    let k = TestKernel::start_in(&restored, &serve_args);
    for id in &notes {
        let (status, body) = k.get(&format!("{NOTES}/{id}"));
        assert_eq!(status, 200, "note {id} lost in the restore: {body}");
    }
    for (id, content) in &files {
        let (status, bytes, _) = k.raw("GET", &format!("/api/v1/files/{id}"), None, None, &[]);
        assert_eq!(status, 200, "file {id} lost in the restore");
        assert_eq!(&bytes, content, "file {id} changed in the restore");
    }
    let audit_after = audit_hashes(&k);
    for (seq, hash) in &audit_before {
        assert_eq!(
            audit_after.get(seq),
            Some(hash),
            "audit record {seq} lost or changed in the restore"
        );
    }
    // The restored kernel keeps appending to the same keyed chain.
    drop(k);
    let out = succeeded(&tianshan(&verify_args), "audit verify after serving");
    assert!(out.contains("audit chain intact"), "{out}");
}

#[test]
fn backup_under_load_restores_into_a_new_dir_on_sqlite() {
    round_trip(None);
}

#[test]
fn backup_under_load_restores_into_a_new_database_on_postgres() {
    if Command::new("pg_dump").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "pg_dump is needed under CI (apt-get install postgresql-client)"
        );
        eprintln!("skipped: pg_dump not installed (apt-get install postgresql-client)");
        return;
    }
    if !crate::support::have(crate::support::Service::Postgres) {
        return;
    }
    let source = PgDatabase::create();
    let target = PgDatabase::create();
    round_trip(Some((&source.url, &target.url)));
}

/// Damaging one byte of an archive makes restore refuse it and leave the
/// target empty.
#[test]
fn a_damaged_backup_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let k = TestKernel::start_in(&data, &[]);
    drop(k);
    let archive = tmp.path().join("b.tar.gz");
    succeeded(
        &tianshan(&[
            "backup",
            "--data-dir",
            data.to_str().unwrap(),
            "--out",
            archive.to_str().unwrap(),
        ]),
        "backup",
    );
    // Re-pack with one byte of the database flipped but the old manifest.
    let unpacked = tmp.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    assert!(
        Command::new("tar")
            .arg("xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .unwrap()
            .success()
    );
    let db = unpacked.join("tianshan.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&db, bytes).unwrap();
    let damaged = tmp.path().join("damaged.tar.gz");
    assert!(
        Command::new("tar")
            .arg("czf")
            .arg(&damaged)
            .arg("-C")
            .arg(&unpacked)
            .args(["tianshan.db", "MANIFEST.json"])
            .status()
            .unwrap()
            .success()
    );
    let target = tmp.path().join("target");
    let out = tianshan(&[
        "restore",
        "--from",
        damaged.to_str().unwrap(),
        "--data-dir",
        target.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("checksum"), "{stderr}");
    assert!(is_empty(&target), "a refused restore left files behind");
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}
