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

/// Placeholders for a statement whose values are bound in the order the
/// placeholders are written: `$1, $2, …` on PostgreSQL, `?` on SQLite.
///
/// Why not `$N` on SQLite too: sqlx's SQLite driver learns which value a
/// `$N` takes by asking SQLite the placeholder's name, and SQLite finds a
/// name by walking the statement's list of names, so binding n numbered
/// placeholders costs n²/2 steps. A 900-value insert of telemetry readings
/// spent 29 % of ingestion there (`perf record` on the telemetry bench).
/// Anonymous `?` have no names: SQLite answers at once and sqlx binds them
/// in order. A statement takes all its placeholders from one `Marks`
/// (SQLite numbers a `?` after the highest `$N` before it), and no value
/// can be used twice: bind it again instead.
pub struct Marks {
    dialect: Dialect,
    next: usize,
}

impl Marks {
    pub fn new(dialect: Dialect) -> Marks {
        Marks { dialect, next: 1 }
    }

    /// The next value's placeholder.
    pub fn mark(&mut self) -> String {
        let n = self.next;
        self.next += 1;
        match self.dialect {
            Dialect::Sqlite => "?".to_string(),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// `n` placeholders separated by commas, for an `IN (…)`.
    pub fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.mark()).collect::<Vec<_>>().join(",")
    }

    /// `(…),(…)`: `rows` rows of `columns` placeholders, for a multi-row
    /// insert.
    pub fn rows(&mut self, rows: usize, columns: usize) -> String {
        (0..rows)
            .map(|_| format!("({})", self.list(columns)))
            .collect::<Vec<_>>()
            .join(",")
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

    #[test]
    fn marks_number_on_postgres_and_stay_anonymous_on_sqlite() {
        let mut pg = Marks::new(Dialect::Postgres);
        assert_eq!(pg.mark(), "$1");
        assert_eq!(pg.rows(2, 2), "($2,$3),($4,$5)");
        assert_eq!(pg.list(2), "$6,$7");
        let mut lite = Marks::new(Dialect::Sqlite);
        assert_eq!(lite.rows(2, 3), "(?,?,?),(?,?,?)");
        assert_eq!(lite.list(1), "?");
    }
}
