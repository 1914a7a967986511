//! The audit trail: every kernel write and every notable security decision,
//! append-only and hash-chained. Each record's hash covers its fields and the
//! previous record's hash, so editing or deleting any record breaks the chain
//! at that point, and `tianshan audit verify` names the first bad record.
//! Secrets never enter a record: callers pass ids and outcomes, not
//! passwords or tokens.
//!
//! A bare SHA-256 chain only proves that nobody edited a record *without
//! recomputing the hashes after it*; anyone who can write to the database
//! can do exactly that. So records are keyed: their hash is an HMAC-SHA256
//! (or HMAC-SM3, `[audit] algorithm`) under a key kept outside the database ([`AuditKey`], a file created
//! 0600 at first start), and the record names the key's id and algorithm
//! (migration 14). Without the key nobody can forge a record that verifies.
//! Cutting the tail off a keyed chain still leaves a valid chain, so the
//! kernel also writes the chain head periodically to the log and to an
//! anchor file ([`run_anchors`]) operators ship elsewhere; verification
//! against the anchors finds a cut tail. Records from before keying keep
//! their plain SHA-256 and still verify; the first keyed record chains from
//! the last plain one, so rewriting the old part is detected as well.

use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
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

pub use crate::core::config::{ALG_HMAC_SHA256, ALG_HMAC_SM3, Algorithm};

/// The secret that keys the chain. Kept outside the database: whoever holds
/// it can forge records, whoever lacks it cannot.
#[derive(Clone)]
pub struct AuditKey {
    /// Public name of the key, stored in each record it signed: the first
    /// 16 hex digits of a hash of the secret, so a verifier can tell which
    /// key a record needs without the secret appearing anywhere.
    pub id: String,
    secret: [u8; 32],
    /// What it signs new records with; verification follows each record's.
    pub alg: Algorithm,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AuditKey {
    pub fn from_secret(secret: [u8; 32]) -> AuditKey {
        let mut h = Sha256::new();
        h.update(b"tianshan-audit-key-id:");
        h.update(secret);
        let id = hex::encode(h.finalize())[..16].to_string();
        AuditKey {
            id,
            secret,
            alg: Algorithm::default(),
        }
    }

    /// The same key, signing new records with `alg`.
    pub fn with_algorithm(mut self, alg: Algorithm) -> AuditKey {
        self.alg = alg;
        self
    }

    pub fn generate() -> AuditKey {
        use rand::Rng;
        Self::from_secret(rand::rng().random())
    }

    /// Reads a key file: 64 hex digits (whitespace around them ignored).
    pub fn load(path: &Path) -> anyhow::Result<AuditKey> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading audit key {}: {e}", path.display()))?;
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "audit key {}: expected 64 hex digits (32 bytes)",
                    path.display()
                )
            })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(path = %path.display(),
                    "the audit key is readable by others than its owner: chmod 600 it");
            }
        }
        Ok(Self::from_secret(bytes))
    }

    /// Loads the key file, or creates it (mode 0600) when it does not exist
    /// yet. Creation is atomic (write a temporary file, then hard-link it
    /// into place, which fails if another process got there first), so two
    /// kernels starting at once end up with the same key.
    pub fn load_or_create(path: &Path) -> anyhow::Result<(AuditKey, bool)> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("creating {} for the audit key: {e}", dir.display()))?;
        let key = Self::generate();
        let tmp = dir.join(format!(".audit-key-{}", std::process::id()));
        let written = (|| -> std::io::Result<()> {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp)?;
            writeln!(file, "{}", hex::encode(key.secret))?;
            file.sync_all()?;
            std::fs::hard_link(&tmp, path)
        })();
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => Ok((key, true)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((Self::load(path)?, false))
            }
            Err(e) => anyhow::bail!(
                "creating the audit key {}: {e} (set audit.key-file or \
                 TIANSHAN_AUDIT_KEY_FILE to a writable place outside the data dir)",
                path.display()
            ),
        }
    }

    /// A 32-byte key for another purpose, derived from the secret:
    /// HMAC-SHA256(secret, "tianshan-derive:" || purpose). Every node holding
    /// the same secret derives the same key; the derived key reveals nothing
    /// of the secret, nor of keys for other purposes.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("HMAC takes any key");
        mac.update(b"tianshan-derive:");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn mac(&self, alg: Algorithm, input: &[u8]) -> String {
        fn hmac<D: Mac + hmac::digest::KeyInit>(secret: &[u8], input: &[u8]) -> String {
            let mut mac = <D as Mac>::new_from_slice(secret).expect("HMAC takes any key");
            mac.update(input);
            hex::encode(mac.finalize().into_bytes())
        }
        match alg {
            Algorithm::HmacSha256 => hmac::<Hmac<Sha256>>(&self.secret, input),
            Algorithm::HmacSm3 => hmac::<Hmac<sm3::Sm3>>(&self.secret, input),
        }
    }
}

fn record_hash(
    seq: i64,
    at: i64,
    entry: &Entry,
    prev_hash: &str,
    key: Option<(&AuditKey, Algorithm)>,
) -> String {
    // A fixed field order and JSON encoding of each field make the input
    // unambiguous.
    let mut canonical = serde_json::json!([
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
    match key {
        None => hex::encode(Sha256::digest(canonical.to_string().as_bytes())),
        Some((key, alg)) => {
            // The algorithm and key id are part of what is signed, so a
            // record cannot be moved under another key's name or algorithm.
            if let Some(fields) = canonical.as_array_mut() {
                fields.push(alg.name().into());
                fields.push(key.id.clone().into());
            }
            key.mac(alg, canonical.to_string().as_bytes())
        }
    }
}

pub struct Audit {
    db: Db,
    key: Option<AuditKey>,
    /// Appends are serialised so each record chains from the one before.
    append_lock: tokio::sync::Mutex<()>,
}

impl Audit {
    /// The key this trail signs with (none for an unkeyed trail).
    pub fn key(&self) -> Option<&AuditKey> {
        self.key.as_ref()
    }

    /// An unkeyed trail (plain SHA-256 chain): for tests and tools that
    /// only read.
    pub fn new(db: Db) -> Self {
        Audit {
            db,
            key: None,
            append_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The kernel's trail: every record from now on is signed with `key`
    /// (every write goes through [`Audit::begin`]).
    pub fn keyed(db: Db, key: AuditKey) -> Self {
        Audit {
            db,
            key: Some(key),
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
        self.begin().await?.commit(entry).await
    }

    /// Begins the one audited write: a write transaction, taken in turn
    /// with every other append on this node (and, on PostgreSQL, on every
    /// node), whose change and audit record commit together or not at all.
    /// Dropping it without [`AuditedWrite::commit`] rolls the change back.
    pub async fn begin(&self) -> sqlx::Result<AuditedWrite<'_>> {
        let turn = self.append_lock.lock().await;
        let tx = crate::db::begin_write(&self.db).await?;
        Ok(AuditedWrite {
            _turn: turn,
            tx,
            key: self.key.as_ref(),
            records: Vec::new(),
        })
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

/// A change in progress and the right to append its audit record: see
/// [`Audit::begin`]. Derefs to the transaction's connection, so queries run
/// on `&mut *write` as on any connection.
pub struct AuditedWrite<'a> {
    _turn: tokio::sync::MutexGuard<'a, ()>,
    tx: sqlx::Transaction<'static, sqlx::Any>,
    key: Option<&'a AuditKey>,
    /// Records of the change so far, appended in order at commit.
    records: Vec<Entry>,
}

impl AuditedWrite<'_> {
    /// Adds a record of this change; it is appended when the change
    /// commits, after those added before it.
    pub fn record(&mut self, entry: Entry) {
        self.records.push(entry);
    }

    /// Appends `entry` after any records added so far and commits them
    /// with the change; the sequence number of the last record.
    pub async fn commit(mut self, entry: &Entry) -> sqlx::Result<i64> {
        self.records.push(entry.clone());
        self.finish().await
    }

    /// Commits a change whose records were all added with
    /// [`record`](Self::record). A change with no record is refused: every
    /// write is audited.
    pub async fn finish(mut self) -> sqlx::Result<i64> {
        let records = std::mem::take(&mut self.records);
        let seq = match records.as_slice() {
            [] => {
                return Err(sqlx::Error::Protocol(
                    "an audited write committed without an audit record".into(),
                ));
            }
            [one] => append_with(&mut self.tx, one, self.key).await?,
            many => append_all_with(&mut self.tx, many, self.key).await?,
        };
        self.tx.commit().await?;
        for entry in &records {
            crate::metrics::ops::note_audit(&entry.action, &entry.outcome);
        }
        Ok(seq)
    }
}

impl std::ops::Deref for AuditedWrite<'_> {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for AuditedWrite<'_> {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
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

async fn append_with(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    entry: &Entry,
    key: Option<&AuditKey>,
) -> sqlx::Result<i64> {
    crate::db::dialect::lock_in_transaction(tx, crate::db::LOCK_AUDIT).await?;
    let last = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    let (seq, prev_hash) = match last {
        Some(row) => (row.get::<i64, _>(0) + 1, row.get::<String, _>(1)),
        None => (1, GENESIS.to_string()),
    };
    let at = now();
    let hash = record_hash(seq, at, entry, &prev_hash, key.map(|k| (k, k.alg)));
    sqlx::query(
        "INSERT INTO audit (seq, at, actor, org_id, action, target, outcome, detail, prev_hash, hash, alg, key_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
    .bind(key.map(|k| k.alg.name()))
    .bind(key.map(|k| k.id.clone()))
    .execute(&mut **tx)
    .await?;
    Ok(seq)
}

/// Appends `entries` in order, as appending them one by one would (same
/// chain, same rows), with one statement per hundred records: bulk writes
/// audit every record without paying a round trip per record. On
/// PostgreSQL a transaction lock serialises appends across nodes.
async fn append_all_with(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    entries: &[Entry],
    key: Option<&AuditKey>,
) -> sqlx::Result<i64> {
    if entries.is_empty() {
        return Ok(0);
    }
    crate::db::dialect::lock_in_transaction(tx, crate::db::LOCK_AUDIT).await?;
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
            "INSERT INTO audit (seq, at, actor, org_id, action, target, outcome, detail, prev_hash, hash, alg, key_id) VALUES ",
        );
        let dialect = crate::db::Dialect::of_backend(tx.backend_name());
        sql.push_str(&crate::db::Marks::new(dialect).rows(chunk.len(), 12));
        let mut q = sqlx::query(&sql);
        for entry in chunk {
            let hash = record_hash(seq, at, entry, &prev, key.map(|k| (k, k.alg)));
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
                .bind(hash.clone())
                .bind(key.map(|k| k.alg.name()))
                .bind(key.map(|k| k.id.clone()));
            prev = hash;
            seq += 1;
        }
        q.execute(&mut **tx).await?;
    }
    Ok(seq - 1)
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
    Intact {
        records: i64,
        /// Of them, signed with a key (the rest predate keying).
        keyed: i64,
        /// Anchors the chain was checked against.
        anchors: usize,
    },
    Broken {
        seq: i64,
        reason: String,
    },
}

/// One chain head written to the anchor file: the database must still hold
/// record `seq` with exactly this `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// Unix seconds when it was written.
    pub at: i64,
    pub seq: i64,
    pub hash: String,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub node: Option<String>,
}

/// Reads an anchor file (one JSON object a line; blank lines skipped).
pub fn read_anchors(path: &Path) -> anyhow::Result<Vec<Anchor>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading anchors {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Walks the whole chain in order, checking each keyed record against
/// `keys` (by key id) and the chain against `anchors`.
pub async fn verify(db: &Db, keys: &[AuditKey], anchors: &[Anchor]) -> sqlx::Result<Verdict> {
    let rows = sqlx::query(
        "SELECT seq, at, actor, org_id, action, target, outcome, detail, prev_hash, hash, alg, key_id
         FROM audit ORDER BY seq",
    )
    .fetch_all(db)
    .await?;
    let mut anchors = anchors.to_vec();
    anchors.sort_by_key(|a| a.seq);
    let mut pending = anchors.iter().peekable();
    let mut expected_prev = GENESIS.to_string();
    let mut keyed = 0i64;
    let broken = |seq: i64, reason: String| Ok(Verdict::Broken { seq, reason });
    for (expected_seq, row) in (1..).zip(rows.iter()) {
        let record = row_to_record(row);
        // The stored detail text is hashed as stored.
        let detail_text: String = row.get(7);
        let alg: Option<String> = row.get(10);
        let key_id: Option<String> = row.get(11);
        if record.seq != expected_seq {
            return broken(
                expected_seq,
                format!("record {expected_seq} is missing (next is {})", record.seq),
            );
        }
        if record.prev_hash != expected_prev {
            return broken(
                record.seq,
                "does not chain from the record before it (a record was removed or altered)".into(),
            );
        }
        // Each record is checked with the algorithm it names.
        let alg = alg.as_deref().map(|a| Algorithm::from_name(a).ok_or(a));
        let key = match (alg, key_id.as_deref()) {
            (None, None) if keyed > 0 => {
                // Once the chain is keyed, a plain record is a forgery by
                // someone without the key.
                return broken(
                    record.seq,
                    "is not keyed although records before it are (forged without the key)".into(),
                );
            }
            (None, None) => None,
            (Some(Ok(alg)), Some(id)) => match keys.iter().find(|k| k.id == id) {
                Some(key) => Some((key, alg)),
                None => {
                    return broken(
                        record.seq,
                        format!(
                            "is signed with audit key {id}, which was not given \
                             (--audit-key-file or audit.key-file)"
                        ),
                    );
                }
            },
            (alg, _) => {
                let alg: Option<&str> = alg.map(|a| match a {
                    Ok(known) => known.name(),
                    Err(name) => name,
                });
                return broken(
                    record.seq,
                    format!("has an unknown signature algorithm {alg:?}"),
                );
            }
        };
        let mut entry = record.entry.clone();
        entry.detail =
            serde_json::from_str(&detail_text).unwrap_or(serde_json::Value::String(detail_text));
        if record_hash(record.seq, record.at, &entry, &record.prev_hash, key) != record.hash {
            return broken(
                record.seq,
                "its content does not match its hash (the record was edited)".into(),
            );
        }
        if key.is_some() {
            keyed += 1;
        }
        while let Some(anchor) = pending.next_if(|a| a.seq <= record.seq) {
            if anchor.seq == record.seq && anchor.hash != record.hash {
                return broken(
                    record.seq,
                    format!(
                        "differs from the chain head anchored at {} (the chain was rewritten)",
                        anchor.at
                    ),
                );
            }
        }
        expected_prev = record.hash;
    }
    let records = rows.len() as i64;
    if let Some(anchor) = anchors.last().filter(|a| a.seq > records) {
        return broken(
            records + 1,
            format!(
                "is missing: the chain ends at record {records}, but an anchor written at {} \
                 saw it reach record {} (the tail was cut)",
                anchor.at, anchor.seq
            ),
        );
    }
    Ok(Verdict::Intact {
        records,
        keyed,
        anchors: anchors.len(),
    })
}

/// The newest record's (seq, hash, key id), if any.
pub async fn head(db: &Db) -> sqlx::Result<Option<(i64, String, Option<String>)>> {
    let row = sqlx::query("SELECT seq, hash, key_id FROM audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
}

/// Appends the current head to the anchor file (and the log) unless it is
/// the one `last` already anchored; returns what it anchored.
pub async fn anchor_once(
    db: &Db,
    path: &Path,
    node: &str,
    last: Option<&Anchor>,
) -> anyhow::Result<Option<Anchor>> {
    let Some((seq, hash, key_id)) = head(db).await? else {
        return Ok(None);
    };
    if last.is_some_and(|a| a.seq == seq && a.hash == hash) {
        return Ok(None);
    }
    let anchor = Anchor {
        at: crate::db::now(),
        seq,
        hash,
        key_id,
        node: Some(node.to_string()),
    };
    let line = serde_json::to_string(&anchor)? + "\n";
    let path_owned: PathBuf = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        if let Some(dir) = path_owned.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path_owned)?;
        file.write_all(line.as_bytes())?;
        file.sync_all()
    })
    .await??;
    // The log is the second copy: log shippers carry it off the machine.
    tracing::info!(seq = anchor.seq, hash = %anchor.hash, key_id = ?anchor.key_id,
        file = %path.display(), "audit anchor");
    Ok(Some(anchor))
}

/// Anchors the chain head every `interval` while the kernel serves.
pub async fn run_anchors(db: Db, path: PathBuf, interval: std::time::Duration, node: String) {
    let mut last: Option<Anchor> = None;
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        match anchor_once(&db, &path, &node, last.as_ref()).await {
            Ok(Some(anchor)) => last = Some(anchor),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, file = %path.display(),
                "could not write the audit anchor"),
        }
    }
}

/// CSV of records for auditors; fields quoted per RFC 4180.
pub fn to_csv(records: &[Record]) -> String {
    let mut out = String::from("seq,at,actor,org_id,action,target,outcome,detail,hash\r\n");
    for r in records {
        out.push_str(&crate::core::csv::row(&[
            r.seq.to_string(),
            r.at.to_string(),
            r.entry.actor.clone(),
            r.entry.org_id.clone().unwrap_or_default(),
            r.entry.action.clone(),
            r.entry.target.clone().unwrap_or_default(),
            r.entry.outcome.clone(),
            r.entry.detail.to_string(),
            r.hash.clone(),
        ]));
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

    #[test]
    fn derived_keys_follow_the_secret_and_the_purpose() {
        let key = AuditKey::from_secret([1; 32]);
        let cursor = key.derive("storage-cursor-v1");
        assert_eq!(
            cursor,
            AuditKey::from_secret([1; 32]).derive("storage-cursor-v1")
        );
        assert_ne!(cursor, key.derive("another-purpose"));
        assert_ne!(
            cursor,
            AuditKey::from_secret([2; 32]).derive("storage-cursor-v1")
        );
        assert_ne!(cursor, [1; 32]);
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
        assert_eq!(
            verify(&db, &[], &[]).await.unwrap(),
            Verdict::Intact {
                records: 5,
                keyed: 0,
                anchors: 0
            }
        );

        sqlx::query("UPDATE audit SET outcome = 'denied' WHERE seq = 3")
            .execute(&db)
            .await
            .unwrap();
        match verify(&db, &[], &[]).await.unwrap() {
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
            verify(&db, &[], &[]).await.unwrap(),
            Verdict::Broken { seq: 2, .. }
        ));
    }

    async fn keyed_chain(db: &Db, key: &AuditKey, n: usize) {
        let audit = Audit {
            db: db.clone(),
            key: Some(key.clone()),
            append_lock: tokio::sync::Mutex::new(()),
        };
        for i in 0..n {
            audit
                .try_record(&Entry::new("u1", "user.update", "ok").target(format!("u-{i}")))
                .await
                .unwrap();
        }
    }

    /// The attack: someone with write access to the database edits a
    /// record and recomputes every hash after it, as the plain chain
    /// allowed. Without the key the recomputed hashes are not HMACs.
    #[tokio::test]
    async fn a_rewritten_keyed_chain_is_found() {
        let (_dir, db) = db().await;
        let key = AuditKey::generate();
        // Two old plain records, then keyed ones chaining from them.
        let plain = Audit::new(db.clone());
        for _ in 0..2 {
            plain
                .try_record(&Entry::new("u1", "auth.login", "ok"))
                .await
                .unwrap();
        }
        keyed_chain(&db, &key, 4).await;
        let intact = verify(&db, std::slice::from_ref(&key), &[]).await.unwrap();
        assert_eq!(
            intact,
            Verdict::Intact {
                records: 6,
                keyed: 4,
                anchors: 0
            }
        );
        // Without the key the keyed part cannot be checked: that fails too.
        assert!(matches!(
            verify(&db, &[], &[]).await.unwrap(),
            Verdict::Broken { seq: 3, .. }
        ));

        // Rewrite record 4 and re-chain everything after it the way the
        // plain chain would have accepted.
        sqlx::query("UPDATE audit SET outcome = 'denied' WHERE seq = 4")
            .execute(&db)
            .await
            .unwrap();
        let rows = sqlx::query(
            "SELECT seq, at, actor, org_id, action, target, outcome, detail, prev_hash, hash FROM audit WHERE seq >= 4 ORDER BY seq",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        let mut prev: String = sqlx::query_scalar("SELECT hash FROM audit WHERE seq = 3")
            .fetch_one(&db)
            .await
            .unwrap();
        for row in &rows {
            let r = row_to_record(row);
            let forged = record_hash(r.seq, r.at, &r.entry, &prev, None);
            sqlx::query("UPDATE audit SET prev_hash = $1, hash = $2 WHERE seq = $3")
                .bind(&prev)
                .bind(&forged)
                .bind(r.seq)
                .execute(&db)
                .await
                .unwrap();
            prev = forged;
        }
        match verify(&db, std::slice::from_ref(&key), &[]).await.unwrap() {
            Verdict::Broken { seq, reason } => {
                assert_eq!(seq, 4);
                assert!(reason.contains("edited"), "{reason}");
            }
            other => panic!("rewrite not detected: {other:?}"),
        }
        // Nor can the forger drop the key columns to pass as plain records.
        sqlx::query("UPDATE audit SET alg = NULL, key_id = NULL WHERE seq >= 4")
            .execute(&db)
            .await
            .unwrap();
        match verify(&db, std::slice::from_ref(&key), &[]).await.unwrap() {
            Verdict::Broken { seq, reason } => {
                assert_eq!(seq, 4);
                assert!(reason.contains("not keyed"), "{reason}");
            }
            other => panic!("downgrade not detected: {other:?}"),
        }
    }

    #[test]
    fn hmac_sm3_matches_a_reference_implementation() {
        // OpenSSL 3: HMAC-SM3 of "tianshan" under the key 00 01 .. 1f.
        let key = AuditKey::from_secret(std::array::from_fn(|i| i as u8));
        assert_eq!(
            key.mac(Algorithm::HmacSm3, b"tianshan"),
            "605bab9d0bcf94317ff0956c31b2f05dd81fa06f628b2d94068ccaa47403bd17"
        );
        assert_ne!(
            key.mac(Algorithm::HmacSha256, b"tianshan"),
            key.mac(Algorithm::HmacSm3, b"tianshan")
        );
        assert_eq!(Algorithm::from_name("hmac-sm3"), Some(Algorithm::HmacSm3));
        assert_eq!(Algorithm::from_name("sm3"), None);
    }

    /// A chain that switched from HMAC-SHA256 to HMAC-SM3 verifies record
    /// by record; relabelling a record's algorithm breaks it.
    #[tokio::test]
    async fn a_chain_mixing_algorithms_verifies_and_a_relabel_is_found() {
        let (_dir, db) = db().await;
        let key = AuditKey::generate();
        keyed_chain(&db, &key, 2).await;
        let sm3 = key.clone().with_algorithm(Algorithm::HmacSm3);
        keyed_chain(&db, &sm3, 2).await;
        let algs: Vec<String> = sqlx::query_scalar("SELECT alg FROM audit ORDER BY seq")
            .fetch_all(&db)
            .await
            .unwrap();
        assert_eq!(algs, ["hmac-sha256", "hmac-sha256", "hmac-sm3", "hmac-sm3"]);
        // The verifier needs the key, not the algorithm the node signs with.
        assert_eq!(
            verify(&db, std::slice::from_ref(&key), &[]).await.unwrap(),
            Verdict::Intact {
                records: 4,
                keyed: 4,
                anchors: 0
            }
        );
        sqlx::query("UPDATE audit SET alg = 'hmac-sha256' WHERE seq = 3")
            .execute(&db)
            .await
            .unwrap();
        assert!(matches!(
            verify(&db, std::slice::from_ref(&key), &[]).await.unwrap(),
            Verdict::Broken { seq: 3, .. }
        ));
        sqlx::query("UPDATE audit SET alg = 'sm3' WHERE seq = 3")
            .execute(&db)
            .await
            .unwrap();
        match verify(&db, std::slice::from_ref(&key), &[]).await.unwrap() {
            Verdict::Broken { seq: 3, reason } => {
                assert!(reason.contains("unknown signature algorithm"), "{reason}")
            }
            other => panic!("unknown algorithm passed: {other:?}"),
        }
    }

    /// The attack: delete the newest records. The rest is still a valid
    /// keyed chain; only an anchor written before the cut shows it.
    #[tokio::test]
    async fn a_cut_tail_is_found_against_the_anchors() {
        let (dir, db) = db().await;
        let key = AuditKey::generate();
        keyed_chain(&db, &key, 3).await;
        let anchors = dir.path().join("anchors");
        let first = anchor_once(&db, &anchors, "n1", None).await.unwrap();
        assert!(first.is_some());
        // Nothing new: no second line.
        assert!(
            anchor_once(&db, &anchors, "n1", first.as_ref())
                .await
                .unwrap()
                .is_none()
        );
        keyed_chain(&db, &key, 3).await;
        anchor_once(&db, &anchors, "n1", first.as_ref())
            .await
            .unwrap();
        let read = read_anchors(&anchors).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(
            verify(&db, std::slice::from_ref(&key), &read)
                .await
                .unwrap(),
            Verdict::Intact {
                records: 6,
                keyed: 6,
                anchors: 2
            }
        );

        sqlx::query("DELETE FROM audit WHERE seq > 4")
            .execute(&db)
            .await
            .unwrap();
        // The chain alone still verifies: that is why anchors exist.
        assert!(matches!(
            verify(&db, std::slice::from_ref(&key), &[]).await.unwrap(),
            Verdict::Intact { records: 4, .. }
        ));
        match verify(&db, std::slice::from_ref(&key), &read)
            .await
            .unwrap()
        {
            Verdict::Broken { seq, reason } => {
                assert_eq!(seq, 5);
                assert!(reason.contains("tail was cut"), "{reason}");
            }
            other => panic!("cut tail not detected: {other:?}"),
        }
    }

    #[test]
    fn a_key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("audit.key");
        let (created, fresh) = AuditKey::load_or_create(&path).unwrap();
        assert!(fresh);
        let (again, fresh) = AuditKey::load_or_create(&path).unwrap();
        assert!(!fresh);
        assert_eq!(created.id, again.id);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The secret never shows in debug output.
        assert!(!format!("{created:?}").contains(&hex::encode(created.secret)));
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
        assert!(csv.contains(",'=cmd(),"), "{csv}");
        assert!(csv.contains("\"a,b\""));
    }
}
