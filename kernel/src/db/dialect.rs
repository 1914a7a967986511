//! Where SQLite and PostgreSQL differ, in one place: services ask the
//! [`Dialect`] for a fragment instead of matching on the backend.

use super::Db;

/// Which SQL dialect a pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn of(db: &Db) -> Dialect {
        Self::of_url(db.connect_options().database_url.as_str())
    }

    pub fn of_url(url: &str) -> Dialect {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        }
    }
}

impl Dialect {
    /// The backend behind a connection or transaction
    /// (`Connection::backend_name`).
    pub fn of_backend(name: &str) -> Dialect {
        if name.eq_ignore_ascii_case("PostgreSQL") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        }
    }

    /// What operators and backups call it.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// Appended to a SELECT that reads a row it will then change. SQLite
    /// needs none: a write transaction holds the database's one write lock
    /// from its BEGIN IMMEDIATE (`db::begin_write`).
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// Like [`for_update`](Self::for_update), but rows another transaction
    /// holds are skipped, so nodes claim different work.
    pub fn for_update_skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// A record's JSON field as an expression. On SQLite `->>` rather than
    /// json_extract: the value is the same, but json_extract results carry
    /// a JSON subtype, and SQLite (3.45 on) never takes such a value from
    /// an index, so sorting or summing a json_extract read every record
    /// even with an index holding the field. Queries and indexes must spell
    /// it identically for SQLite to match them, so both come from here.
    pub fn json_field(self, field: &str) -> String {
        match self {
            Dialect::Sqlite => format!("(data ->> '$.{field}')"),
            Dialect::Postgres => format!("(data->'{field}')"),
        }
    }

    /// Appended to a text parameter that is stored in a JSON column.
    pub fn json_cast(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => "::jsonb",
        }
    }

    /// The floating-point type aggregates are cast to.
    pub fn real_type(self) -> &'static str {
        match self {
            Dialect::Sqlite => "REAL",
            Dialect::Postgres => "float8",
        }
    }

    /// An ORDER BY direction. SQLite sorts NULL lowest; PostgreSQL is told
    /// to agree, so pages come in the same order on both.
    pub fn sort_direction(self, descending: bool) -> &'static str {
        match (descending, self) {
            (false, Dialect::Sqlite) => "ASC",
            (true, Dialect::Sqlite) => "DESC",
            (false, Dialect::Postgres) => "ASC NULLS FIRST",
            (true, Dialect::Postgres) => "DESC NULLS LAST",
        }
    }
}

/// Serialises the transactions that take the lock `key` until they end: a
/// transaction-scoped advisory lock on PostgreSQL. SQLite needs none — a
/// write transaction already holds the one write lock.
pub async fn lock_in_transaction(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: i64,
) -> sqlx::Result<()> {
    if Dialect::of_backend(tx.backend_name()) == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_differ_only_where_the_backends_do() {
        assert_eq!(Dialect::Sqlite.for_update(), "");
        assert_eq!(Dialect::Postgres.for_update(), " FOR UPDATE");
        assert_eq!(Dialect::Sqlite.json_field("a"), "(data ->> '$.a')");
        assert_eq!(Dialect::Postgres.json_field("a"), "(data->'a')");
        assert_eq!(Dialect::of_backend("PostgreSQL"), Dialect::Postgres);
        assert_eq!(Dialect::of_backend("SQLite"), Dialect::Sqlite);
        assert_eq!(Dialect::of_url("postgres://x/y"), Dialect::Postgres);
        assert_eq!(Dialect::Postgres.sort_direction(true), "DESC NULLS LAST");
    }
}
