//! Applies [`MIGRATIONS`](super::migrations::MIGRATIONS) in order, each in
//! its own transaction, and records each with the SHA-256 of the text it
//! ran. On every start the recorded checksums are compared with this
//! kernel's texts: a released migration that was edited since it was
//! applied stops the start with a message naming it, because the database
//! would silently differ from what the code expects.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::migrations::{MIGRATIONS, Schema};
use super::{Db, Dialect, LOCK_MIGRATIONS, now};

/// The hex SHA-256 of a migration's text in `dialect`.
pub fn checksum(schema: &Schema, dialect: Dialect) -> String {
    hex::encode(Sha256::digest(schema.text(dialect).as_bytes()))
}

pub(super) async fn migrate(pool: &Db, dialect: Dialect) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    if dialect == Dialect::Postgres {
        // Two nodes starting at once must not both apply a migration.
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(LOCK_MIGRATIONS)
            .execute(&mut *conn)
            .await?;
    }
    let result = migrate_locked(&mut conn, dialect).await;
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_MIGRATIONS)
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn migrate_locked(conn: &mut sqlx::AnyConnection, dialect: Dialect) -> anyhow::Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    // Databases from before checksums were kept get the column here; their
    // rows are filled below from this kernel's texts (which were released
    // unchanged) and checked from then on.
    let has_checksum = sqlx::query("SELECT checksum FROM schema_migrations WHERE 1 = 0")
        .fetch_all(&mut *conn)
        .await
        .is_ok();
    if !has_checksum {
        sqlx::query("ALTER TABLE schema_migrations ADD COLUMN checksum TEXT")
            .execute(&mut *conn)
            .await?;
    }
    let applied: Vec<(i64, Option<String>)> =
        sqlx::query("SELECT version, checksum FROM schema_migrations")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    for (version, recorded) in &applied {
        let Some((_, schema)) = MIGRATIONS.iter().find(|(v, _)| v == version) else {
            anyhow::bail!(
                "the database has migration {version}, which this kernel does not know: \
                 it was made by a newer kernel; run that version or restore a backup"
            );
        };
        let expected = checksum(schema, dialect);
        match recorded {
            Some(recorded) if *recorded != expected => anyhow::bail!(
                "migration {version} was edited after it was applied to this database \
                 (recorded checksum {recorded}, this kernel's {expected}); a released \
                 migration must never change — restore its text and add a new migration"
            ),
            Some(_) => {}
            None => {
                sqlx::query("UPDATE schema_migrations SET checksum = $1 WHERE version = $2")
                    .bind(&expected)
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    for (version, schema) in MIGRATIONS {
        if applied.iter().any(|(v, _)| v == version) {
            continue;
        }
        let sql = schema.text(dialect);
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        if !sql.is_empty() {
            sqlx::raw_sql(&sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| anyhow::anyhow!("migration {version}: {e}"))?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, applied_at, checksum) VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(now())
        .bind(checksum(schema, dialect))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_ascend_and_never_repeat() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    }

    /// The approval engine's migration (21: delegation, 审批人去重, 催办,
    /// 签收) on a database of the kernel before it, with a flow and a
    /// running instance's tasks in it: every row keeps its values, the new
    /// columns start off, and the tasks take the new `held` state while
    /// the old CHECK still refuses nonsense.
    #[tokio::test]
    async fn running_approvals_keep_working_across_migration_21() {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/before.db?mode=rwc", dir.path().display());
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL, checksum TEXT)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        for (version, schema) in MIGRATIONS.iter().filter(|(v, _)| *v < 21) {
            sqlx::raw_sql(&schema.text(Dialect::Sqlite))
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query("INSERT INTO schema_migrations VALUES ($1, 0, $2)")
                .bind(version)
                .bind(checksum(schema, Dialect::Sqlite))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        sqlx::raw_sql(
            "INSERT INTO approval_flows (plugin_id, name, title, steps, updated_at, allow_self_approval)
                 VALUES ('office', 'outgoing', '发文', '[]', 1, 1);
             INSERT INTO approval_tasks (id, instance_id, step, round, assignee, status, origin, comment, created_at, acted_at)
                 VALUES ('t1', 'i1', 2, 1, 'user-a', 'approved', 'resolved', '同意', 10, 11),
                        ('t2', 'i1', 3, 1, 'user-b', 'pending', 'resolved', NULL, 12, NULL),
                        ('t3', 'i1', 3, 1, 'user-c', 'pending', 'added', NULL, 13, NULL);",
        )
        .execute(&mut conn)
        .await
        .unwrap();

        migrate_locked(&mut conn, Dialect::Sqlite).await.unwrap();

        type Task = (
            String,
            String,
            String,
            Option<String>,
            i64,
            Option<i64>,
            Option<i64>,
        );
        let tasks: Vec<Task> =
            sqlx::query(
                "SELECT id, status, origin, comment, created_at, acted_at, urged_at FROM approval_tasks ORDER BY id",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6)))
            .collect();
        assert_eq!(
            tasks,
            [
                (
                    "t1".into(),
                    "approved".into(),
                    "resolved".into(),
                    Some("同意".into()),
                    10,
                    Some(11),
                    None
                ),
                (
                    "t2".into(),
                    "pending".into(),
                    "resolved".into(),
                    None,
                    12,
                    None,
                    None
                ),
                (
                    "t3".into(),
                    "pending".into(),
                    "added".into(),
                    None,
                    13,
                    None,
                    None
                ),
            ]
        );
        let flow: (i64, i64) = sqlx::query(
            "SELECT allow_self_approval, auto_approve_repeat FROM approval_flows WHERE name = 'outgoing'",
        )
        .fetch_one(&mut conn)
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
        assert_eq!(flow, (1, 0), "the old setting kept, the new one off");
        sqlx::query("UPDATE approval_tasks SET status = 'held' WHERE id = 't3'")
            .execute(&mut conn)
            .await
            .unwrap();
        assert!(
            sqlx::query("UPDATE approval_tasks SET status = 'lost' WHERE id = 't3'")
                .execute(&mut conn)
                .await
                .is_err()
        );
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'approval_tasks' ORDER BY name",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(
            indexes.contains(&"approval_tasks_assignee".to_string())
                && indexes.contains(&"approval_tasks_instance".to_string()),
            "{indexes:?}"
        );
    }

    #[test]
    fn a_checksum_is_of_the_dialects_text() {
        let (_, first) = &MIGRATIONS[0];
        assert_eq!(
            checksum(first, Dialect::Sqlite),
            checksum(first, Dialect::Sqlite)
        );
        assert_ne!(
            checksum(first, Dialect::Sqlite),
            checksum(first, Dialect::Postgres)
        );
        assert_eq!(checksum(first, Dialect::Sqlite).len(), 64);
    }
}
