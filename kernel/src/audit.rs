//! The audit trail: every kernel write and every notable security decision,
//! append-only and hash-chained. Each record's hash covers its fields and the
//! previous record's hash, so editing or deleting any record breaks the chain
//! at that point, and `tianshan audit verify` names the first bad record.
//! Secrets never enter a record: callers pass ids and outcomes, not
//! passwords or tokens.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::{Db, now};

/// The hash the first record chains from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One thing that happened.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// User id, `system`, or `anonymous`.
    pub actor: String,
    pub org_id: Option<String>,
    /// Dotted verb, e.g. `auth.login`, `org.create`, `plugin.install`.
    pub action: String,
    /// What was acted on (an id), when there is one.
    pub target: Option<String>,
    /// `ok`, `denied`, `failed`.
    pub outcome: String,
    /// Extra facts as JSON (never secrets).
    pub detail: serde_json::Value,
}

impl Entry {
    pub fn new(actor: &str, action: &str, outcome: &str) -> Self {
        Entry {
            actor: actor.to_string(),
            org_id: None,
            action: action.to_string(),
            target: None,
            outcome: outcome.to_string(),
            detail: serde_json::Value::Null,
        }
    }

    pub fn org(mut self, org: impl Into<String>) -> Self {
        self.org_id = Some(org.into());
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// A stored record.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub seq: i64,
    pub at: i64,
    #[serde(flatten)]
    pub entry: Entry,
    pub prev_hash: String,
    pub hash: String,
}

fn record_hash(seq: i64, at: i64, entry: &Entry, prev_hash: &str) -> String {
    // A fixed field order and JSON encoding of each field make the input
    // unambiguous.
    let canonical = serde_json::json!([
        seq,
        at,
        entry.actor,
        entry.org_id,
        entry.action,
        entry.target,
        entry.outcome,
        entry.detail.to_string(),
        prev_hash
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

pub struct Audit {
    db: Db,
    /// Appends are serialised so each record chains from the one before.
    append_lock: tokio::sync::Mutex<()>,
}

impl Audit {
    pub fn new(db: Db) -> Self {
        Audit {
            db,
            append_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Appends a record. A failure to audit is logged loudly but does not
    /// undo the action it describes (which has already happened).
    pub async fn record(&self, entry: Entry) {
        if let Err(e) = self.try_record(&entry).await {
            tracing::error!(error = %e, action = %entry.action, "could not write audit record");
        }
    }

    pub async fn try_record(&self, entry: &Entry) -> sqlx::Result<i64> {
        let _guard = self.append_lock.lock().await;
        let mut tx = crate::db::begin_write(&self.db).await?;
        let seq = append(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Held while a transaction that calls [`append`] is open: appends on
    /// this node chain one after another.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.append_lock.lock().await
    }

    /// A page of records, newest first, optionally filtered.
    pub async fn list(&self, filter: &Filter) -> sqlx::Result<Vec<Record>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, org_id, action, target, outcome, detail, prev_hash, hash FROM audit
             WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR action LIKE $2 || '%')
               AND ($3 IS NULL OR org_id = $3) AND ($4 IS NULL OR outcome = $4)
               AND ($5 IS NULL OR seq < $5) AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7)
             ORDER BY seq DESC LIMIT $8",
        )
        .bind(&filter.actor)
        .bind(&filter.action)
        .bind(&filter.org_id)
        .bind(&filter.outcome)
        .bind(filter.before_seq)
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.limit.clamp(1, 10_000))
        .fetch_all(&self.db)
        .await?;
        Ok(rows.iter().map(row_to_record).collect())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: Option<String>,
    /// Prefix of the action, e.g. `auth.`.
    pub action: Option<String>,
    pub org_id: Option<String>,
    pub outcome: Option<String>,
    /// Cursor: records older than this sequence number.
    pub before_seq: Option<i64>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: i64,
}

/// Appends a record inside the caller's transaction, so it commits (or
/// not) together with the change it describes. On PostgreSQL a transaction
/// lock serialises appends across nodes; on one node the caller holds
/// [`Audit::lock`].
pub async fn append(tx: &mut sqlx::Transaction<'_, sqlx::Any>, entry: &Entry) -> sqlx::Result<i64> {
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(crate::db::LOCK_AUDIT)
            .execute(&mut **tx)
            .await?;
    }
    let last = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    let (seq, prev_hash) = match last {
        Some(row) => (row.get::<i64, _>(0) + 1, row.get::<String, _>(1)),
        None => (1, GENESIS.to_string()),
    };
    let at = now();
    let hash = record_hash(seq, at, entry, &prev_hash);
    sqlx::query(
        "INSERT INTO audit (seq, at, actor, org_id, action, target, outcome, detail, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq)
    .bind(at)
    .bind(&entry.actor)
    .bind(&entry.org_id)
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(&entry.outcome)
    .bind(entry.detail.to_string())
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    Ok(seq)
}

/// Appends `entries` in order inside the caller's transaction, as
/// [`append`] one by one would (same chain, same rows), with one
/// statement per hundred records: bulk writes audit every record without
/// paying a round trip per record.
pub async fn append_all(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    entries: &[Entry],
) -> sqlx::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(crate::db::LOCK_AUDIT)
            .execute(&mut **tx)
            .await?;
    }
    let last = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    let (mut seq, mut prev) = match last {
        Some(row) => (row.get::<i64, _>(0) + 1, row.get::<String, _>(1)),
        None => (1, GENESIS.to_string()),
    };
    let at = now();
    for chunk in entries.chunks(100) {
        let mut sql = String::from(
            "INSERT INTO audit (seq, at, actor, org_id, action, target, outcome, detail, prev_hash, hash) VALUES ",
        );
        for n in 0..chunk.len() {
            let b = 10 * n;
            let marks: Vec<String> = (1..=10).map(|k| format!("${}", b + k)).collect();
            sql.push_str(if n > 0 { ", (" } else { "(" });
            sql.push_str(&marks.join(", "));
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for entry in chunk {
            let hash = record_hash(seq, at, entry, &prev);
            q = q
                .bind(seq)
                .bind(at)
                .bind(entry.actor.clone())
                .bind(entry.org_id.clone())
                .bind(entry.action.clone())
                .bind(entry.target.clone())
                .bind(entry.outcome.clone())
                .bind(entry.detail.to_string())
                .bind(prev.clone())
                .bind(hash.clone());
            prev = hash;
            seq += 1;
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

fn row_to_record(r: &sqlx::any::AnyRow) -> Record {
    Record {
        seq: r.get(0),
        at: r.get(1),
        entry: Entry {
            actor: r.get(2),
            org_id: r.get(3),
            action: r.get(4),
            target: r.get(5),
            outcome: r.get(6),
            detail: serde_json::from_str(&r.get::<String, _>(7)).unwrap_or(serde_json::Value::Null),
        },
        prev_hash: r.get(8),
        hash: r.get(9),
    }
}

/// What verification found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact { records: i64 },
    Broken { seq: i64, reason: String },
}

/// Walks the whole chain in order.
pub async fn verify(db: &Db) -> sqlx::Result<Verdict> {
    let rows = sqlx::query(
        "SELECT seq, at, actor, org_id, action, target, outcome, detail, prev_hash, hash FROM audit ORDER BY seq",
    )
    .fetch_all(db)
    .await?;
    let mut expected_prev = GENESIS.to_string();
    for (expected_seq, row) in (1..).zip(rows.iter()) {
        let record = row_to_record(row);
        // The stored detail text is hashed as stored.
        let detail_text: String = row.get(7);
        if record.seq != expected_seq {
            return Ok(Verdict::Broken {
                seq: expected_seq,
                reason: format!("record {expected_seq} is missing (next is {})", record.seq),
            });
        }
        if record.prev_hash != expected_prev {
            return Ok(Verdict::Broken {
                seq: record.seq,
                reason:
                    "does not chain from the record before it (a record was removed or altered)"
                        .into(),
            });
        }
        let mut entry = record.entry.clone();
        entry.detail =
            serde_json::from_str(&detail_text).unwrap_or(serde_json::Value::String(detail_text));
        if record_hash(record.seq, record.at, &entry, &record.prev_hash) != record.hash {
            return Ok(Verdict::Broken {
                seq: record.seq,
                reason: "its content does not match its hash (the record was edited)".into(),
            });
        }
        expected_prev = record.hash;
    }
    Ok(Verdict::Intact {
        records: rows.len() as i64,
    })
}

/// CSV of records for auditors; fields quoted per RFC 4180.
pub fn to_csv(records: &[Record]) -> String {
    fn quote(s: &str) -> String {
        // A leading = + - @ would make a spreadsheet evaluate the cell.
        let s = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_string()
        };
        format!("\"{}\"", s.replace('"', "\"\""))
    }
    let mut out = String::from("seq,at,actor,org_id,action,target,outcome,detail,hash\r\n");
    for r in records {
        let fields = [
            r.seq.to_string(),
            r.at.to_string(),
            r.entry.actor.clone(),
            r.entry.org_id.clone().unwrap_or_default(),
            r.entry.action.clone(),
            r.entry.target.clone().unwrap_or_default(),
            r.entry.outcome.clone(),
            r.entry.detail.to_string(),
            r.hash.clone(),
        ];
        out.push_str(
            &fields
                .iter()
                .map(|f| quote(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let db = crate::db::connect(&url).await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn an_intact_chain_verifies_and_an_edit_is_found() {
        let (_dir, db) = db().await;
        let audit = Audit::new(db.clone());
        for i in 0..5 {
            audit
                .try_record(&Entry::new("u1", "org.create", "ok").target(format!("org-{i}")))
                .await
                .unwrap();
        }
        assert_eq!(verify(&db).await.unwrap(), Verdict::Intact { records: 5 });

        sqlx::query("UPDATE audit SET outcome = 'denied' WHERE seq = 3")
            .execute(&db)
            .await
            .unwrap();
        match verify(&db).await.unwrap() {
            Verdict::Broken { seq, reason } => {
                assert_eq!(seq, 3);
                assert!(reason.contains("edited"), "{reason}");
            }
            other => panic!("edit not detected: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_deleted_record_is_found() {
        let (_dir, db) = db().await;
        let audit = Audit::new(db.clone());
        for _ in 0..4 {
            audit
                .try_record(&Entry::new("u1", "auth.login", "ok"))
                .await
                .unwrap();
        }
        sqlx::query("DELETE FROM audit WHERE seq = 2")
            .execute(&db)
            .await
            .unwrap();
        assert!(matches!(
            verify(&db).await.unwrap(),
            Verdict::Broken { seq: 2, .. }
        ));
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let record = Record {
            seq: 1,
            at: 0,
            entry: Entry::new("=cmd()", "a,b", "ok"),
            prev_hash: GENESIS.into(),
            hash: "h".into(),
        };
        let csv = to_csv(&[record]);
        assert!(csv.contains("\"'=cmd()\""), "{csv}");
        assert!(csv.contains("\"a,b\""));
    }
}
