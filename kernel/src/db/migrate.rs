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
