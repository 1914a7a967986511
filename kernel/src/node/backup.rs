//! `tianshan backup` and `tianshan restore`: one archive holding a
//! consistent copy of a kernel's state, taken while the kernel serves.
//!
//! What goes in: the database (SQLite: `VACUUM INTO`, a transactionally
//! consistent copy that does not stop writers in WAL mode; PostgreSQL:
//! `pg_dump --format=custom`, which reads one snapshot) and, with the disk
//! file store, the content of every file the copied database refers to.
//! Installed plugin packages are rows of the database, so they come along;
//! the compiled-code cache and `bundled/` are left out (rebuilt from the
//! packages). The audit key is left out on purpose: it must live apart
//! from the data it protects (docs/operations.md).
//!
//! The archive is a gzip'd tar whose last entry, `MANIFEST.json`, lists
//! every other entry with its size and SHA-256. Restore extracts into an
//! empty data dir only, refuses any entry that is not a plain file at a
//! plain relative path, and checks every checksum before it moves anything
//! into place.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::core::config::Config;
use crate::db::{Db, Dialect};

pub const FORMAT: u32 = 1;
const MANIFEST: &str = "MANIFEST.json";
const SQLITE_ENTRY: &str = "tianshan.db";
const POSTGRES_ENTRY: &str = "database.pgdump";
const FILES_PREFIX: &str = "files/";

/// What an archive holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The `tianshan` version that wrote it.
    pub kernel_version: String,
    /// Unix seconds.
    pub created_at: i64,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// The newest migration applied to the copied database.
    pub schema_version: i64,
    /// Audit records in the copy (SQLite; on PostgreSQL counted just after
    /// the dump, so at least this many).
    pub audit_records: i64,
    /// Where file content was: `disk` (in the archive), `database` (in the
    /// database copy) or `s3` (not in the archive: back the bucket up).
    pub files_backend: String,
    pub entries: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// A pool of one connection that neither creates nor migrates: a backup
/// must not change the database it copies (a newer `tianshan` binary would
/// otherwise migrate a running older kernel's database).
async fn open_existing(url: &str) -> anyhow::Result<Db> {
    sqlx::any::install_default_drivers();
    let dialect = Dialect::of_url(url);
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if dialect == Dialect::Sqlite {
                    use sqlx::Executor;
                    conn.execute("PRAGMA busy_timeout=30000").await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .with_context(|| format!("opening database {}", crate::db::redact(url)))
}

fn sqlite_path(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| anyhow::anyhow!("not a SQLite URL: {url}"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        bail!("an in-memory database cannot be backed up or restored");
    }
    Ok(PathBuf::from(path))
}

/// Facts read from the copied database.
struct Facts {
    schema_version: i64,
    audit_records: i64,
    /// Content hashes of every file row (deleted ones too: their rows stay).
    blobs: Vec<String>,
}

async fn facts(db: &Db, with_blobs: bool) -> anyhow::Result<Facts> {
    let schema_version: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(db)
            .await?;
    let audit_records: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit")
        .fetch_one(db)
        .await?;
    let blobs = if with_blobs {
        sqlx::query("SELECT DISTINCT sha256 FROM files ORDER BY sha256")
            .fetch_all(db)
            .await?
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Facts {
        schema_version,
        audit_records,
        blobs,
    })
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn files_dir(config: &Config) -> PathBuf {
    config
        .files
        .dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("files"))
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

fn header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mtime(crate::db::now().max(0) as u64);
    header
}

/// Adds a file to the archive and returns its manifest line.
fn add_file<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    source: &Path,
) -> anyhow::Result<Item> {
    let file =
        std::fs::File::open(source).with_context(|| format!("reading {}", source.display()))?;
    let size = file.metadata()?.len();
    let mut reader = Hashing {
        inner: file.take(size),
        hasher: Sha256::new(),
        size: 0,
    };
    let mut header = header(size);
    tar.append_data(&mut header, name, &mut reader)
        .with_context(|| format!("archiving {}", source.display()))?;
    if reader.size != size {
        bail!("{} changed size while being archived", source.display());
    }
    Ok(Item {
        path: name.to_string(),
        size,
        sha256: hex::encode(reader.hasher.finalize()),
    })
}

/// Writes a backup of the kernel described by `config` to `out` (which must
/// not exist yet). Safe while the kernel serves.
pub async fn backup(config: &Config, out: &Path) -> anyhow::Result<Manifest> {
    if out.exists() {
        bail!("{} already exists: give a new file name", out.display());
    }
    let staging = PathBuf::from(format!("{}.staging-{}", out.display(), std::process::id()));
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let result = backup_via(config, out, &staging).await;
    let _ = std::fs::remove_dir_all(&staging);
    result
}

async fn backup_via(config: &Config, out: &Path, staging: &Path) -> anyhow::Result<Manifest> {
    let url = config.database_url();
    let backend = config.files.backend.clone();
    let disk_files = backend == "disk";
    let (database, entry, copy, facts) = match Dialect::of_url(&url) {
        Dialect::Sqlite => {
            let live = sqlite_path(&url)?;
            if !live.exists() {
                bail!("no database at {}", live.display());
            }
            let copy = staging.join(SQLITE_ENTRY);
            let db = open_existing(&url).await?;
            // VACUUM INTO reads one snapshot in one read transaction: a
            // consistent copy while writers go on (WAL mode), compacted.
            let target = copy
                .to_str()
                .ok_or_else(|| anyhow::anyhow!("a non-UTF-8 path: {}", copy.display()))?;
            sqlx::query(&format!("VACUUM INTO '{}'", target.replace('\'', "''")))
                .execute(&db)
                .await
                .context("copying the database (VACUUM INTO)")?;
            db.close().await;
            // Read-write: a read-only open of a WAL-mode copy can fail for want
            // of its -shm file; the copy is ours and is only read.
            let snapshot = open_existing(&format!("sqlite://{target}")).await?;
            let facts = facts(&snapshot, disk_files).await?;
            snapshot.close().await;
            ("sqlite", SQLITE_ENTRY, copy, facts)
        }
        Dialect::Postgres => {
            let copy = staging.join(POSTGRES_ENTRY);
            // pg_dump reads one repeatable-read snapshot of the database.
            let status = tokio::process::Command::new("pg_dump")
                .arg("--format=custom")
                .arg("--no-owner")
                .arg("--no-privileges")
                .arg("--file")
                .arg(&copy)
                .arg("--dbname")
                .arg(&url)
                .status()
                .await
                .context("running pg_dump (install the PostgreSQL client tools)")?;
            if !status.success() {
                bail!("pg_dump failed ({status})");
            }
            // Files rows are never removed and blobs never change, so the
            // hashes listed after the dump cover every file the dump names.
            let db = open_existing(&url).await?;
            let facts = facts(&db, disk_files).await?;
            db.close().await;
            ("postgres", POSTGRES_ENTRY, copy, facts)
        }
    };
    if backend == "s3" {
        tracing::warn!(
            "files.backend is s3: file content is not in this backup; back the bucket up \
             (versioning or replication)"
        );
    }
    let files_root = files_dir(config);
    let partial = PathBuf::from(format!("{}.partial", out.display()));
    let out = out.to_path_buf();
    let mut manifest = Manifest {
        format: FORMAT,
        kernel_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: crate::db::now(),
        database: database.to_string(),
        schema_version: facts.schema_version,
        audit_records: facts.audit_records,
        files_backend: backend,
        entries: Vec::new(),
    };
    let blobs = facts.blobs;
    manifest = tokio::task::spawn_blocking(move || -> anyhow::Result<Manifest> {
        let written = (|| -> anyhow::Result<()> {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options
                .open(&partial)
                .with_context(|| format!("creating {}", partial.display()))?;
            let gz = flate2::write::GzEncoder::new(
                std::io::BufWriter::new(file),
                flate2::Compression::fast(),
            );
            let mut tar = tar::Builder::new(gz);
            manifest.entries.push(add_file(&mut tar, entry, &copy)?);
            for sha in &blobs {
                if !is_sha256_hex(sha) {
                    bail!("the database names a file by a malformed hash {sha:?}");
                }
                let source = files_root.join(&sha[..2]).join(sha);
                let name = format!("{FILES_PREFIX}{}/{sha}", &sha[..2]);
                let item = add_file(&mut tar, &name, &source)
                    .with_context(|| format!("file content {sha} is missing from the store"))?;
                // Content-addressed: a blob whose hash is not its name is
                // damaged, and would be restored damaged.
                if item.sha256 != *sha {
                    bail!(
                        "{} is damaged: its content hashes to {}",
                        source.display(),
                        item.sha256
                    );
                }
                manifest.entries.push(item);
            }
            let text = serde_json::to_vec_pretty(&manifest)?;
            let mut header = header(text.len() as u64);
            tar.append_data(&mut header, MANIFEST, text.as_slice())?;
            let gz = tar.into_inner()?;
            let buffered = gz.finish()?;
            let file = buffered.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(&partial, &out)?;
            Ok(())
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        written.map(|()| manifest)
    })
    .await??;
    Ok(manifest)
}

/// Only `a/b/c` with plain names: no root, no `..`, no `.`.
fn safe_relative(path: &Path) -> bool {
    !path.as_os_str().is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

fn is_empty_or_missing(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", dir.display())),
    }
}

/// Unpacks every entry into `staging` (hashing as it writes) and checks the
/// result against the manifest.
fn unpack_verified(archive: &Path, staging: &Path) -> anyhow::Result<Manifest> {
    let file =
        std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let mut found: BTreeMap<String, Item> = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    for entry in tar.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        let path = entry.path()?.into_owned();
        let name = path.to_string_lossy().into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            bail!("the archive entry {name:?} is not a plain file: refused");
        }
        if !safe_relative(&path) {
            bail!("the archive entry {name:?} points outside the data dir: refused");
        }
        if found.contains_key(&name) || (name == MANIFEST && manifest.is_some()) {
            bail!("the archive holds {name:?} twice: refused");
        }
        if name == MANIFEST {
            let mut text = Vec::new();
            (&mut entry).take(16 << 20).read_to_end(&mut text)?;
            manifest = Some(serde_json::from_slice(&text).context("reading MANIFEST.json")?);
            continue;
        }
        let target = staging.join(&path);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = std::fs::File::create(&target)?;
        let mut reader = Hashing {
            inner: &mut entry,
            hasher: Sha256::new(),
            size: 0,
        };
        std::io::copy(&mut reader, &mut out)?;
        out.sync_all()?;
        let item = Item {
            path: name.clone(),
            size: reader.size,
            sha256: hex::encode(reader.hasher.finalize()),
        };
        found.insert(name, item);
    }
    let manifest = manifest.ok_or_else(|| {
        anyhow::anyhow!("the archive has no MANIFEST.json: not a complete Tianshan backup")
    })?;
    if manifest.format != FORMAT {
        bail!(
            "backup format {} is not the one this tianshan reads ({FORMAT})",
            manifest.format
        );
    }
    for item in &manifest.entries {
        match found.remove(&item.path) {
            None => bail!("{} is listed in the manifest but missing", item.path),
            Some(got) if got != *item => bail!(
                "{} does not match its checksum (the archive is damaged or was altered)",
                item.path
            ),
            Some(_) => {}
        }
    }
    if let Some(extra) = found.keys().next() {
        bail!("{extra} is in the archive but not in its manifest: refused");
    }
    Ok(manifest)
}

/// Restores `archive` into the (empty or missing) data dir of `config`,
/// and, for a PostgreSQL backup, into the (empty) database of `config`.
pub async fn restore(archive: &Path, config: &Config) -> anyhow::Result<Manifest> {
    let data_dir = config.data_dir.clone();
    if !is_empty_or_missing(&data_dir)? {
        bail!(
            "{} is not empty: restore only into a new data dir",
            data_dir.display()
        );
    }
    let files_root = files_dir(config);
    if !is_empty_or_missing(&files_root)? {
        bail!(
            "{} is not empty: restore only into a new files dir",
            files_root.display()
        );
    }
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let result = restore_into(archive, config, &files_root).await;
    if result.is_err() {
        // Leave the target as empty as it was, so the restore can be retried.
        if let Ok(entries) = std::fs::read_dir(&data_dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
            }
        }
    }
    result
}

async fn restore_into(
    archive: &Path,
    config: &Config,
    files_root: &Path,
) -> anyhow::Result<Manifest> {
    let staging = config.data_dir.join(".restoring");
    let archive_owned = archive.to_path_buf();
    let staging_owned = staging.clone();
    let manifest =
        tokio::task::spawn_blocking(move || unpack_verified(&archive_owned, &staging_owned))
            .await??;
    let url = config.database_url();
    match (manifest.database.as_str(), Dialect::of_url(&url)) {
        ("sqlite", Dialect::Sqlite) => {
            let target = sqlite_path(&url)?;
            if target.exists() {
                bail!(
                    "{} exists: restore only into a new database",
                    target.display()
                );
            }
            if let Some(dir) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            move_file(&staging.join(SQLITE_ENTRY), &target)?;
        }
        ("postgres", Dialect::Postgres) => {
            let db = open_existing(&url).await?;
            let tables: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_one(&db)
            .await?;
            db.close().await;
            if tables > 0 {
                bail!(
                    "the database {} already has tables: restore only into an empty database \
                     (createdb NEW)",
                    crate::db::redact(&url)
                );
            }
            let status = tokio::process::Command::new("pg_restore")
                .arg("--no-owner")
                .arg("--no-privileges")
                .arg("--exit-on-error")
                .arg("--single-transaction")
                .arg("--dbname")
                .arg(&url)
                .arg(staging.join(POSTGRES_ENTRY))
                .status()
                .await
                .context("running pg_restore (install the PostgreSQL client tools)")?;
            if !status.success() {
                bail!("pg_restore failed ({status})");
            }
        }
        ("sqlite", Dialect::Postgres) => bail!(
            "this backup holds a SQLite database; restore it without --database-url (into the \
             data dir's SQLite)"
        ),
        ("postgres", Dialect::Sqlite) => bail!(
            "this backup holds a PostgreSQL dump; restore it with --database-url \
             postgres://…/EMPTY_DATABASE"
        ),
        (other, _) => bail!("unknown database kind {other:?} in the manifest"),
    }
    let staged_files = staging.join("files");
    if staged_files.exists() {
        if let Some(parent) = files_root.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if files_root.exists() {
            // An empty folder the operator made: fill it.
            for entry in std::fs::read_dir(&staged_files)? {
                let entry = entry?;
                move_file(&entry.path(), &files_root.join(entry.file_name()))?;
            }
        } else {
            move_file(&staged_files, files_root)?;
        }
    }
    std::fs::remove_dir_all(&staging)?;
    Ok(manifest)
}

/// Rename, or copy and remove when the target is on another file system.
fn move_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            move_file(&entry.path(), &to.join(entry.file_name()))?;
        }
        std::fs::remove_dir(from)?;
    } else {
        std::fs::copy(from, to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        std::fs::File::open(to)?.sync_all()?;
        std::fs::remove_file(from)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive_with(dir: &Path, entries: &[(&str, &[u8], tar::EntryType)]) -> PathBuf {
        let path = dir.join("evil.tar.gz");
        let file = std::fs::File::create(&path).unwrap();
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ));
        for (name, content, kind) in entries {
            let mut header = header(content.len() as u64);
            header.set_entry_type(*kind);
            // Write the raw name so `..` survives (append_data refuses it).
            let bytes = name.as_bytes();
            header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            header.set_cksum();
            tar.append(&header, *content).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        path
    }

    /// The attack: a crafted archive that writes outside the target data
    /// dir, or plants a symlink, when an operator restores it.
    #[test]
    fn archives_that_escape_the_data_dir_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("stage");
        for (name, kind) in [
            ("../escaped", tar::EntryType::Regular),
            ("/tmp/abs", tar::EntryType::Regular),
            ("files/link", tar::EntryType::Symlink),
        ] {
            let archive = archive_with(dir.path(), &[(name, b"x", kind)]);
            let err = unpack_verified(&archive, &staging).unwrap_err().to_string();
            assert!(err.contains("refused"), "{name}: {err}");
        }
        assert!(!dir.path().join("escaped").exists());
    }

    #[test]
    fn a_damaged_or_padded_archive_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = |sha: &str| {
            serde_json::to_vec(&Manifest {
                format: FORMAT,
                kernel_version: "0".into(),
                created_at: 0,
                database: "sqlite".into(),
                schema_version: 1,
                audit_records: 0,
                files_backend: "disk".into(),
                entries: vec![Item {
                    path: "tianshan.db".into(),
                    size: 3,
                    sha256: sha.into(),
                }],
            })
            .unwrap()
        };
        let good = hex::encode(Sha256::digest(b"abc"));
        let reg = tar::EntryType::Regular;
        let ok = archive_with(
            dir.path(),
            &[
                ("tianshan.db", b"abc", reg),
                (MANIFEST, &manifest(&good), reg),
            ],
        );
        unpack_verified(&ok, &dir.path().join("s1")).unwrap();

        let bad = hex::encode(Sha256::digest(b"abd"));
        let damaged = archive_with(
            dir.path(),
            &[
                ("tianshan.db", b"abc", reg),
                (MANIFEST, &manifest(&bad), reg),
            ],
        );
        let err = unpack_verified(&damaged, &dir.path().join("s2"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("checksum"), "{err}");

        let padded = archive_with(
            dir.path(),
            &[
                ("tianshan.db", b"abc", reg),
                ("files/zz/extra", b"x", reg),
                (MANIFEST, &manifest(&good), reg),
            ],
        );
        let err = unpack_verified(&padded, &dir.path().join("s3"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not in its manifest"), "{err}");
    }
}
