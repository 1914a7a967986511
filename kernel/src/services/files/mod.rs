//! Attachments: photos, scans, drawings, documents.
//!
//! A file's metadata (org, name, type, size, SHA-256, who and when) is a
//! row in `files`; its content is stored by hash in a [`BlobStore`]: the
//! local disk by default, the database itself (`files.backend =
//! "database"`), which is what several nodes without shared disk use, or
//! an S3-compatible object store (`"s3"`, `crate::services::files::s3`).
//! Content is checked against an allowlist of types by its leading bytes,
//! not by what the uploader claims, and must agree with the declared type.
//! Reads and writes are limited to the orgs the caller reaches, like
//! storage; a plugin sees the files it stored and those users uploaded
//! through the kernel API, never another plugin's.

pub mod s3;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{self, Audit};
use crate::core::config::FilesConfig;
use crate::core::error::ServiceError;
use crate::core::scope::Scope;
use crate::db::{Db, now};

/// A stored file's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileInfo {
    pub id: String,
    pub org_id: String,
    /// The plugin that stored it; none for uploads through the kernel API.
    pub plugin_id: Option<String>,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_by: Option<String>,
    pub created_at: i64,
}

fn row_to_info(r: &AnyRow) -> FileInfo {
    FileInfo {
        id: r.get(0),
        org_id: r.get(1),
        plugin_id: r.get(2),
        name: r.get(3),
        content_type: r.get(4),
        size: r.get(5),
        sha256: r.get(6),
        created_by: r.get(7),
        created_at: r.get(8),
    }
}

const INFO_COLUMNS: &str =
    "id, org_id, plugin_id, name, content_type, size, sha256, created_by, created_at";

/// Content types the kernel accepts and how to recognise them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Png,
    Jpeg,
    Gif,
    Webp,
    Pdf,
    /// docx, xlsx, pptx, odt… and plain zip archives.
    Zip,
    Text,
}

fn family_of_declared(content_type: &str) -> Option<Family> {
    let base = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(match base.as_str() {
        "image/png" => Family::Png,
        "image/jpeg" => Family::Jpeg,
        "image/gif" => Family::Gif,
        "image/webp" => Family::Webp,
        "application/pdf" => Family::Pdf,
        "application/zip"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        | "application/vnd.oasis.opendocument.text"
        | "application/vnd.oasis.opendocument.spreadsheet" => Family::Zip,
        "text/plain" | "text/csv" => Family::Text,
        _ => return None,
    })
}

fn family_of_content(content: &[u8]) -> Option<Family> {
    let starts = |magic: &[u8]| content.starts_with(magic);
    if starts(b"\x89PNG\r\n\x1a\n") {
        Some(Family::Png)
    } else if starts(b"\xFF\xD8\xFF") {
        Some(Family::Jpeg)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some(Family::Gif)
    } else if content.len() >= 12 && starts(b"RIFF") && &content[8..12] == b"WEBP" {
        Some(Family::Webp)
    } else if starts(b"%PDF-") {
        Some(Family::Pdf)
    } else if starts(b"PK\x03\x04") {
        Some(Family::Zip)
    } else if std::str::from_utf8(content).is_ok() && !content.contains(&0) {
        Some(Family::Text)
    } else {
        None
    }
}

/// Checks the declared type against the allowlist and the content.
pub fn check_type(content_type: &str, content: &[u8]) -> Result<(), ServiceError> {
    let declared = family_of_declared(content_type).ok_or_else(|| {
        ServiceError::invalid(
            "content",
            format!(
                "type {content_type:?} is not accepted; accepted: PNG, JPEG, GIF, WebP, PDF, \
             Office/OpenDocument files, zip, plain text and CSV"
            ),
        )
    })?;
    match family_of_content(content) {
        Some(found) if found == declared => Ok(()),
        _ => Err(ServiceError::invalid(
            "content",
            format!("the content is not a {content_type} file"),
        )),
    }
}

fn valid_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= 255
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control)
}

/// Where file content lives, by SHA-256.
pub trait BlobStore: Send + Sync {
    fn put(
        &self,
        sha256: &str,
        content: &[u8],
    ) -> futures_util::future::BoxFuture<'_, std::io::Result<()>>;
    fn get(&self, sha256: &str) -> futures_util::future::BoxFuture<'_, std::io::Result<Vec<u8>>>;
}

/// Content on the local disk, two levels of hash-prefix folders.
pub struct DiskStore {
    root: PathBuf,
}

impl DiskStore {
    pub fn new(root: PathBuf) -> Self {
        DiskStore { root }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2]).join(sha256)
    }
}

impl BlobStore for DiskStore {
    fn put(
        &self,
        sha256: &str,
        content: &[u8],
    ) -> futures_util::future::BoxFuture<'_, std::io::Result<()>> {
        let path = self.path(sha256);
        let content = content.to_vec();
        Box::pin(async move {
            if tokio::fs::try_exists(&path).await? {
                return Ok(());
            }
            let dir = path.parent().expect("hash path has a parent").to_path_buf();
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                use std::io::Write;
                std::fs::create_dir_all(&dir)?;
                // Write, sync, then rename: a crash never leaves a partial
                // file under the final name.
                let tmp = dir.join(format!(".tmp-{}", crate::core::ids::new_record_id()));
                let mut file = std::fs::File::create(&tmp)?;
                file.write_all(&content)?;
                file.sync_all()?;
                std::fs::rename(&tmp, &path)?;
                std::fs::File::open(&dir)?.sync_all()
            })
            .await
            .map_err(std::io::Error::other)?
        })
    }

    fn get(&self, sha256: &str) -> futures_util::future::BoxFuture<'_, std::io::Result<Vec<u8>>> {
        let path = self.path(sha256);
        Box::pin(async move { tokio::fs::read(path).await })
    }
}

/// Content in the kernel's database (`file_blobs`), shared by all nodes.
pub struct DatabaseStore {
    db: Db,
}

impl BlobStore for DatabaseStore {
    fn put(
        &self,
        sha256: &str,
        content: &[u8],
    ) -> futures_util::future::BoxFuture<'_, std::io::Result<()>> {
        let sha256 = sha256.to_string();
        let content = content.to_vec();
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO file_blobs (sha256, content) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(&sha256)
            .bind(content)
            .execute(&self.db)
            .await
            .map_err(std::io::Error::other)?;
            Ok(())
        })
    }

    fn get(&self, sha256: &str) -> futures_util::future::BoxFuture<'_, std::io::Result<Vec<u8>>> {
        let sha256 = sha256.to_string();
        Box::pin(async move {
            sqlx::query_scalar("SELECT content FROM file_blobs WHERE sha256 = $1")
                .bind(&sha256)
                .fetch_optional(&self.db)
                .await
                .map_err(std::io::Error::other)?
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        })
    }
}

/// Who stores or reads: a user through the kernel API, or a plugin call.
pub struct Requester<'a> {
    pub scope: &'a Scope,
    /// Set for plugin calls: the plugin sees its own files and user uploads.
    pub plugin: Option<&'a str>,
}

pub struct Files {
    db: Db,
    blobs: Arc<dyn BlobStore>,
    audit: Arc<Audit>,
    pub max_bytes: usize,
}

impl Files {
    /// Opens the configured blob store; an unknown backend or incomplete
    /// S3 settings are refused at start.
    pub fn new(
        db: Db,
        config: &FilesConfig,
        data_dir: &std::path::Path,
        audit: Arc<Audit>,
    ) -> anyhow::Result<Self> {
        let blobs: Arc<dyn BlobStore> = match config.backend.as_str() {
            "database" => Arc::new(DatabaseStore { db: db.clone() }),
            "disk" => Arc::new(DiskStore::new(
                config.dir.clone().unwrap_or_else(|| data_dir.join("files")),
            )),
            "s3" => Arc::new(crate::services::files::s3::S3Blobs(Arc::new(
                crate::services::files::s3::S3Store::new(&config.s3, config.max_bytes, |name| {
                    std::env::var(name).ok()
                })?,
            ))),
            other => {
                anyhow::bail!("files.backend {other:?}: expected \"disk\", \"database\" or \"s3\"")
            }
        };
        Ok(Files {
            db,
            blobs,
            audit,
            max_bytes: config.max_bytes,
        })
    }

    pub async fn put(
        &self,
        who: &Requester<'_>,
        name: &str,
        content_type: &str,
        content: &[u8],
        org: Option<&str>,
    ) -> Result<FileInfo, ServiceError> {
        if content.len() > self.max_bytes {
            return Err(ServiceError::TooLarge {
                size: content.len(),
                limit: self.max_bytes,
            });
        }
        if content.is_empty() {
            return Err(ServiceError::invalid("content", "the file is empty"));
        }
        if !valid_name(name) {
            return Err(ServiceError::invalid(
                "content",
                "name: 1-255 bytes, no slashes or control characters",
            ));
        }
        check_type(content_type, content)?;
        let org = org.unwrap_or(&who.scope.acting_org);
        if !who.scope.reaches(org) {
            return Err(ServiceError::OutsideReach(org.to_string()));
        }
        let sha256 = hex::encode(Sha256::digest(content));
        // Content first: a crash after it leaves an unreferenced blob,
        // never a row without content.
        self.blobs.put(&sha256, content).await?;
        let info = FileInfo {
            id: crate::core::ids::new_record_id(),
            org_id: org.to_string(),
            plugin_id: who.plugin.map(str::to_string),
            name: name.to_string(),
            content_type: content_type.to_string(),
            size: content.len() as i64,
            sha256,
            created_by: who.scope.actor.clone(),
            created_at: now(),
        };
        let mut tx = self.audit.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO files ({INFO_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&info.id)
        .bind(&info.org_id)
        .bind(&info.plugin_id)
        .bind(&info.name)
        .bind(&info.content_type)
        .bind(info.size)
        .bind(&info.sha256)
        .bind(&info.created_by)
        .bind(info.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit(
            &audit::Entry::new(&who.scope.actor_name, "file.store", "ok")
                .org(info.org_id.clone())
                .target(format!("file/{}", info.id))
                .detail(serde_json::json!({
                    "name": info.name, "size": info.size, "sha256": info.sha256,
                    "plugin": info.plugin_id,
                })),
        )
        .await?;
        Ok(info)
    }

    /// The file's metadata if the requester may see it.
    pub async fn info(&self, who: &Requester<'_>, id: &str) -> Result<FileInfo, ServiceError> {
        let row = sqlx::query(&format!(
            "SELECT {INFO_COLUMNS} FROM files WHERE id = $1 AND deleted_at IS NULL"
        ))
        .bind(id)
        .fetch_optional(&self.db)
        .await?;
        let info = row
            .as_ref()
            .map(row_to_info)
            .ok_or(ServiceError::NotFound("file".into()))?;
        let plugin_ok = match who.plugin {
            Some(plugin) => info.plugin_id.as_deref().is_none_or(|p| p == plugin),
            None => true,
        };
        if !plugin_ok || !who.scope.reaches(&info.org_id) {
            return Err(ServiceError::NotFound("file".into()));
        }
        Ok(info)
    }

    pub async fn read(
        &self,
        who: &Requester<'_>,
        id: &str,
    ) -> Result<(FileInfo, Vec<u8>), ServiceError> {
        let info = self.info(who, id).await?;
        let content = self.blobs.get(&info.sha256).await?;
        // Content is addressed by its hash; a mismatch means the store was
        // tampered with or damaged, and is not served.
        if hex::encode(Sha256::digest(&content)) != info.sha256 {
            tracing::error!(file = %id, "stored content does not match its hash");
            return Err(ServiceError::Unavailable("file storage".into()));
        }
        Ok((info, content))
    }

    /// Marks a file deleted; its content stays for the audit trail. A
    /// plugin deletes the files it stored, and a user's upload only once it
    /// is attached to one of the plugin's records in reach (a record's data
    /// names the file id): seeing an upload is not owning it, and without
    /// this any plugin could delete every upload in the caller's reach.
    pub async fn delete(&self, who: &Requester<'_>, id: &str) -> Result<(), ServiceError> {
        let info = self.info(who, id).await?;
        if let Some(plugin) = who.plugin
            && info.plugin_id.is_none()
            && !self.attached(who.scope, plugin, id).await?
        {
            return Err(ServiceError::invalid(
                "content",
                format!(
                    "file {id} is a user's upload not attached to any of {plugin}'s records;                  a plugin deletes only its own files and those attached to its records"
                ),
            ));
        }
        let mut tx = self.audit.begin().await?;
        sqlx::query("UPDATE files SET deleted_at = $1 WHERE id = $2")
            .bind(now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit(
            &audit::Entry::new(&who.scope.actor_name, "file.delete", "ok")
                .org(info.org_id.clone())
                .target(format!("file/{id}")),
        )
        .await?;
        Ok(())
    }
}

impl Files {
    /// Whether a record of `plugin` that `scope` reaches names file `id`
    /// as a JSON string. Ids are 26 characters of Crockford base32, so the
    /// quoted id matches nothing but a reference to it (LIKE needs no
    /// escaping for them; `info` has already found the id real).
    async fn attached(&self, scope: &Scope, plugin: &str, id: &str) -> Result<bool, ServiceError> {
        if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Ok(false);
        }
        let orgs: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT org_id FROM records WHERE plugin_id = $1 AND CAST(data AS TEXT) LIKE $2
             LIMIT 100",
        )
        .bind(plugin)
        .bind(format!("%\"{id}\"%"))
        .fetch_all(&self.db)
        .await?;
        Ok(orgs.iter().any(|org| scope.reaches(org)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_must_match_the_declared_type() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert!(check_type("image/png", png).is_ok());
        assert!(check_type("image/jpeg", png).is_err());
        // An HTML page claiming to be text is still text; one claiming to
        // be a PNG is refused, and HTML itself is not on the list.
        assert!(check_type("image/png", b"<script>alert(1)</script>").is_err());
        assert!(check_type("text/html", b"<p>hi</p>").is_err());
        assert!(check_type("application/pdf", b"%PDF-1.7\n").is_ok());
        assert!(check_type("text/csv; charset=utf-8", "名称,数量\n".as_bytes()).is_ok());
        assert!(check_type("text/plain", b"\0\x01binary").is_err());
        assert!(
            check_type(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                b"PK\x03\x04rest"
            )
            .is_ok()
        );
    }

    #[test]
    fn names_cannot_carry_paths() {
        assert!(valid_name("照片 1.jpg"));
        assert!(!valid_name("../etc/passwd"));
        assert!(!valid_name("a\\b"));
        assert!(!valid_name(" "));
        assert!(!valid_name("a\nb"));
    }
}
