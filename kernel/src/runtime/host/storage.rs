//! The `storage` import (contract 1.2): a plugin's document collections, in
//! the scope the kernel decided for the call (`HostState::scope`).

use crate::runtime::bindings::tianshan::plugin::storage;
use crate::runtime::host::HostState;

/// A connection for one storage read, from `plugin`'s share; it goes back
/// when the host call returns, so guest code never runs holding it.
async fn read_connection(
    services: &crate::runtime::host::Services,
    plugin: &str,
) -> Result<crate::db::ReadConn, storage::StorageError> {
    services
        .reads
        .acquire(plugin)
        .await
        .map_err(storage::StorageError::Unavailable)
}

/// Adds the `storage` import to the plugins' linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    storage::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}

/// The one mapping of a service error onto the `storage` interface's.
pub(super) fn storage_error(e: crate::core::error::ServiceError) -> storage::StorageError {
    use crate::core::error::ServiceError as E;
    match e {
        E::NotFound(_) => storage::StorageError::NotFound,
        E::Stale(r) => storage::StorageError::Conflict(r),
        E::AlreadyExists => storage::StorageError::AlreadyExists,
        E::OutsideReach(o) => storage::StorageError::ForbiddenOrg(o),
        E::UnknownCollection(c) => storage::StorageError::UnknownCollection(c),
        E::Unavailable(m) => storage::StorageError::Unavailable(m),
        e @ (E::Invalid { .. }
        | E::Forbidden(_)
        | E::Conflict(_)
        | E::TooLarge { .. }
        | E::ApplicantOnly(_)
        | E::NoApprover(_)
        | E::ReasonRequired { .. }) => storage::StorageError::Invalid(e.to_string()),
        E::Refused(r) => {
            storage::StorageError::Invalid(format!("{}: {}", r.code.as_str(), r.message))
        }
    }
}

fn unavailable() -> storage::StorageError {
    storage::StorageError::Unavailable("storage is not available in this kernel".into())
}

pub(super) fn to_record(r: crate::services::storage::Record) -> storage::Record {
    storage::Record {
        id: r.id,
        org: r.org,
        revision: r.revision,
        data: r.data,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn conditions(filter: Vec<storage::Condition>) -> Vec<crate::services::storage::Condition> {
    use crate::services::storage::Op;
    filter
        .into_iter()
        .map(|c| crate::services::storage::Condition {
            field: c.field,
            op: match c.op {
                storage::Op::Eq => Op::Eq,
                storage::Op::Ne => Op::Ne,
                storage::Op::In => Op::In,
                storage::Op::Gt => Op::Gt,
                storage::Op::Gte => Op::Gte,
                storage::Op::Lt => Op::Lt,
                storage::Op::Lte => Op::Lte,
                storage::Op::Prefix => Op::Prefix,
                storage::Op::Contains => Op::Contains,
            },
            value: c.value,
        })
        .collect()
}

pub(super) fn from_wit_write(w: storage::Write) -> crate::services::storage::Write {
    use crate::services::storage::Write as W;
    match w {
        storage::Write::Insert((collection, id, org, data)) => W::Insert {
            collection,
            id,
            org,
            data,
        },
        storage::Write::Update((collection, id, expected_revision, data)) => W::Update {
            collection,
            id,
            expected_revision,
            data,
        },
        storage::Write::Delete((collection, id, expected_revision)) => W::Delete {
            collection,
            id,
            expected_revision,
        },
    }
}

impl storage::Host for HostState {
    async fn get(
        &mut self,
        collection: String,
        id: String,
    ) -> Result<Option<storage::Record>, storage::StorageError> {
        let (scope, services) = self.read_scope().ok_or_else(unavailable)?;
        let mut conn = read_connection(&services, &self.plugin.id).await?;
        let found = services
            .storage
            .get_on(&mut conn, &scope, &collection, &id)
            .await;
        conn.settle(&found);
        found.map(|r| r.map(to_record)).map_err(storage_error)
    }

    async fn insert(
        &mut self,
        collection: String,
        id: Option<String>,
        org: Option<String>,
        data: String,
    ) -> Result<storage::Record, storage::StorageError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        services
            .storage
            .insert(&scope, &collection, id, org, &data)
            .await
            .map(to_record)
            .map_err(storage_error)
    }

    async fn update(
        &mut self,
        collection: String,
        id: String,
        expected_revision: u64,
        data: String,
    ) -> Result<storage::Record, storage::StorageError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        services
            .storage
            .update(&scope, &collection, &id, expected_revision, &data)
            .await
            .map(to_record)
            .map_err(storage_error)
    }

    async fn delete(
        &mut self,
        collection: String,
        id: String,
        expected_revision: Option<u64>,
    ) -> Result<(), storage::StorageError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        services
            .storage
            .delete(&scope, &collection, &id, expected_revision)
            .await
            .map_err(storage_error)
    }

    async fn find(
        &mut self,
        collection: String,
        query: storage::Query,
    ) -> Result<storage::Page, storage::StorageError> {
        let (scope, services) = self.read_scope().ok_or_else(unavailable)?;
        let query = crate::services::storage::Query {
            filter: conditions(query.filter),
            sort: query
                .sort
                .into_iter()
                .map(|k| crate::services::storage::SortKey {
                    field: k.field,
                    descending: k.descending,
                })
                .collect(),
            limit: query.limit,
            cursor: query.cursor,
            within_org: query.within_org,
            with_total: query.with_total,
        };
        let mut conn = read_connection(&services, &self.plugin.id).await?;
        let page = services
            .storage
            .query_on(&mut conn, &scope, &collection, &query)
            .await;
        conn.settle(&page);
        let page = page.map_err(storage_error)?;
        Ok(storage::Page {
            records: page.records.into_iter().map(to_record).collect(),
            next_cursor: page.next_cursor,
            total: page.total,
        })
    }

    async fn count(
        &mut self,
        collection: String,
        filter: Vec<storage::Condition>,
        within_org: Option<String>,
    ) -> Result<u64, storage::StorageError> {
        let (scope, services) = self.read_scope().ok_or_else(unavailable)?;
        let mut conn = read_connection(&services, &self.plugin.id).await?;
        let count = services
            .storage
            .count_on(
                &mut conn,
                &scope,
                &collection,
                &conditions(filter),
                within_org.as_deref(),
            )
            .await;
        conn.settle(&count);
        count.map_err(storage_error)
    }

    async fn aggregate(
        &mut self,
        collection: String,
        filter: Vec<storage::Condition>,
        within_org: Option<String>,
        group_by: Vec<String>,
        measures: Vec<storage::Measure>,
    ) -> Result<Vec<storage::Group>, storage::StorageError> {
        use crate::services::storage::AggregateOp as A;
        let (scope, services) = self.read_scope().ok_or_else(unavailable)?;
        let measures: Vec<crate::services::storage::Measure> = measures
            .into_iter()
            .map(|m| crate::services::storage::Measure {
                op: match m.op {
                    storage::AggregateOp::Count => A::Count,
                    storage::AggregateOp::Sum => A::Sum,
                    storage::AggregateOp::Avg => A::Avg,
                    storage::AggregateOp::Min => A::Min,
                    storage::AggregateOp::Max => A::Max,
                },
                field: m.field,
            })
            .collect();
        let mut conn = read_connection(&services, &self.plugin.id).await?;
        let groups = services
            .storage
            .aggregate_on(
                &mut conn,
                &scope,
                &collection,
                &conditions(filter),
                within_org.as_deref(),
                &group_by,
                &measures,
            )
            .await;
        conn.settle(&groups);
        let groups = groups.map_err(storage_error)?;
        Ok(groups
            .into_iter()
            .map(|g| storage::Group {
                key: g.key,
                values: g.values,
            })
            .collect())
    }

    async fn transact(
        &mut self,
        writes: Vec<storage::Write>,
    ) -> Result<Vec<Option<storage::Record>>, (u32, storage::StorageError)> {
        let (scope, services) = self.scope().ok_or_else(|| (0, unavailable()))?;
        let writes = writes.into_iter().map(from_wit_write).collect();
        services
            .storage
            .transact(&scope, writes)
            .await
            .map(|out| out.into_iter().map(|r| r.map(to_record)).collect())
            .map_err(|(i, e)| (i, storage_error(e)))
    }

    async fn history(
        &mut self,
        collection: String,
        id: String,
    ) -> Result<Vec<storage::RevisionEntry>, storage::StorageError> {
        let (scope, services) = self.read_scope().ok_or_else(unavailable)?;
        let mut conn = read_connection(&services, &self.plugin.id).await?;
        let entries = services
            .storage
            .history_on(&mut conn, &scope, &collection, &id)
            .await;
        conn.settle(&entries);
        let entries = entries.map_err(storage_error)?;
        Ok(entries
            .into_iter()
            .map(|e| storage::RevisionEntry {
                revision: e.revision,
                op: e.op,
                data: e.data,
                at: e.at,
                actor: e.actor,
            })
            .collect())
    }
}
