//! The kernel's side of the imports plugins see: logging, configuration,
//! the caller's identity, access decisions (1.1), storage and messaging
//! (1.2). Each is answered from state the kernel put into the store; who
//! is calling and which orgs they reach never come from the plugin.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::PluginIdentity;
use super::bindings::tianshan::plugin::{
    authz, config, files, identity, log, messaging, storage, types,
};
use super::limits::MemoryLimiter;

/// The caller as the kernel established it (session or token), handed to
/// plugins read-only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Principal {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub org_id: String,
    pub roles: Vec<String>,
}

/// The caller of one plugin call, as the gateway authenticated them.
#[derive(Debug, Clone)]
pub struct CallerContext {
    pub principal: Principal,
    /// For API tokens: the token's own, narrower permissions.
    pub scope: Option<crate::auth::TokenScope>,
}

/// The kernel's access decisions, as plugins may ask for them.
pub trait AccessPolicy: Send + Sync {
    fn allowed(&self, caller: &CallerContext, org: &str, permission: &str) -> bool;
}

/// Everything one request's store holds.
pub struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: MemoryLimiter,
    /// The plugin's log rate (host log calls and forwarded stderr).
    pub log_limit: Arc<super::limits::LogLimiter>,
    pub plugin: Arc<PluginIdentity>,
    pub caller: Option<CallerContext>,
    pub access: Option<Arc<dyn AccessPolicy>>,
    pub services: Option<Arc<Services>>,
    /// Built on the first storage or messaging call of the request.
    pub scope: Option<crate::storage::Scope>,
}

/// The kernel services behind the storage and messaging imports.
pub struct Services {
    pub storage: Arc<crate::storage::Storage>,
    pub messaging: Arc<crate::messaging::Messaging>,
    pub files: Arc<crate::files::Files>,
    pub approvals: Arc<crate::approvals::Approvals>,
    pub datacenter: Arc<crate::datacenter::DataCenter>,
    pub authz: Arc<crate::authz::Authz>,
    pub root_org: String,
    /// Where storage reads get their connection, one host call at a time.
    pub reads: Arc<crate::db::PluginReads>,
}

impl HostState {
    /// Who and where for this call, decided from the authenticated caller
    /// (or, for kernel-made calls, the plugin's install scope).
    pub(crate) fn scope(&mut self) -> Option<(crate::storage::Scope, Arc<Services>)> {
        self.read_scope()
    }

    /// The scope for a storage read.
    fn read_scope(&mut self) -> Option<(crate::storage::Scope, Arc<Services>)> {
        let services = self.services.clone()?;
        if let Some(scope) = &self.scope {
            return Some((scope.clone(), services));
        }
        let orgs = services.authz.orgs();
        let (acting_org, actor, actor_name) = match &self.caller {
            Some(c) => (
                c.principal.org_id.clone(),
                Some(c.principal.user_id.clone()),
                c.principal.username.clone(),
            ),
            None => (
                self.plugin
                    .install_org
                    .clone()
                    .unwrap_or_else(|| services.root_org.clone()),
                None,
                format!("plugin:{}", self.plugin.id),
            ),
        };
        let reach = crate::storage::Scope::reach_of(&orgs, &acting_org);
        let scope = self.build_scope(orgs, acting_org, reach, actor, actor_name);
        self.scope = Some(scope.clone());
        Some((scope, services))
    }

    fn build_scope(
        &self,
        orgs: Arc<crate::authz::OrgIndex>,
        acting_org: String,
        reach: crate::storage::Reach,
        actor: Option<String>,
        actor_name: String,
    ) -> crate::storage::Scope {
        crate::storage::Scope {
            plugin: self.plugin.id.clone(),
            collections: self.plugin.collections.clone(),
            read_below: self.plugin.read_below.clone(),
            reach,
            acting_org,
            orgs,
            actor,
            actor_name,
        }
    }

    /// Sets the scope of an event handler call before it runs: for an
    /// event another plugin published, the intersection of this plugin's
    /// install subtree and the subtree of the org the kernel stamped on the
    /// event (where the publishing call acted), so what a payload names
    /// cannot carry a handler outside the publisher's lane: an event from a
    /// prefecture's module lets the region's system act in that prefecture
    /// only. Disjoint lanes (a grant beyond the subtree) reach nothing.
    /// The kernel's own events (jobs, approval outcomes about the plugin's
    /// own records) keep the install scope: the kernel decided them.
    pub(crate) fn limit_to_event(&mut self, source: &str, stamped: Option<&str>) {
        if source == crate::messaging::KERNEL_SOURCE {
            return;
        }
        let Some(services) = self.services.clone() else {
            return;
        };
        let orgs = services.authz.orgs();
        let install = self
            .plugin
            .install_org
            .clone()
            .unwrap_or_else(|| services.root_org.clone());
        let (acting_org, reach) = match stamped.filter(|org| orgs.exists(org)) {
            Some(org) if orgs.is_within(org, &install) => {
                (org.to_string(), crate::storage::Scope::reach_of(&orgs, org))
            }
            Some(org) if orgs.is_within(&install, org) => {
                let reach = crate::storage::Scope::reach_of(&orgs, &install);
                (install, reach)
            }
            _ => (install, crate::storage::Reach::Orgs(Arc::new(Vec::new()))),
        };
        let actor_name = format!("plugin:{}", self.plugin.id);
        self.scope = Some(self.build_scope(orgs, acting_org, reach, None, actor_name));
    }
}

/// A connection for one storage read, from `plugin`'s share; it goes back
/// when the host call returns, so guest code never runs holding it.
async fn read_connection(
    services: &Services,
    plugin: &str,
) -> Result<crate::db::ReadConn, storage::StorageError> {
    services
        .reads
        .acquire(plugin)
        .await
        .map_err(storage::StorageError::Unavailable)
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Without the `clock` capability a plugin reads the UNIX epoch: no wall
/// time leaks in, and behaviour that depends on it shows up in testing.
pub struct FrozenWallClock;

impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// A guest message is cut here so a plugin cannot flood the log.
const MAX_LOG_MESSAGE: usize = 4096;

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_MESSAGE {
            let mut cut = MAX_LOG_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let plugin = &self.plugin.id;
        let version = &self.plugin.version;
        // A plugin logging in a loop must not fill the kernel's disk.
        super::limits::rate_limited(&self.log_limit, plugin, || match level {
            log::Level::Trace => tracing::trace!(target: "plugin", %plugin, %version, "{message}"),
            log::Level::Debug => tracing::debug!(target: "plugin", %plugin, %version, "{message}"),
            log::Level::Info => tracing::info!(target: "plugin", %plugin, %version, "{message}"),
            log::Level::Warn => tracing::warn!(target: "plugin", %plugin, %version, "{message}"),
            log::Level::Error => tracing::error!(target: "plugin", %plugin, %version, "{message}"),
        });
    }
}

impl config::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.plugin.config.get(&key).cloned()
    }
}

impl identity::Host for HostState {
    fn caller(&mut self) -> Option<identity::Principal> {
        self.caller
            .as_ref()
            .map(|c| &c.principal)
            .map(|p| identity::Principal {
                user_id: p.user_id.clone(),
                username: p.username.clone(),
                display_name: p.display_name.clone(),
                org_id: p.org_id.clone(),
                roles: p.roles.clone(),
            })
    }

    fn plugin_id(&mut self) -> String {
        self.plugin.id.clone()
    }

    fn plugin_version(&mut self) -> String {
        self.plugin.version.clone()
    }
}

impl authz::Host for HostState {
    fn allowed(&mut self, permission: String, org: Option<String>) -> bool {
        let (Some(caller), Some(access)) = (&self.caller, &self.access) else {
            return false;
        };
        let org = org.as_deref().unwrap_or(&caller.principal.org_id);
        access.allowed(caller, org, &permission)
    }
}

impl types::Host for HostState {}

fn storage_error(e: crate::storage::StorageError) -> storage::StorageError {
    use crate::storage::StorageError as E;
    match e {
        E::NotFound => storage::StorageError::NotFound,
        E::Conflict(r) => storage::StorageError::Conflict(r),
        E::AlreadyExists => storage::StorageError::AlreadyExists,
        E::ForbiddenOrg(o) => storage::StorageError::ForbiddenOrg(o),
        E::UnknownCollection(c) => storage::StorageError::UnknownCollection(c),
        E::Invalid(m) => storage::StorageError::Invalid(m),
        E::Unavailable(m) => storage::StorageError::Unavailable(m),
    }
}

fn unavailable() -> storage::StorageError {
    storage::StorageError::Unavailable("storage is not available in this kernel".into())
}

fn to_record(r: crate::storage::Record) -> storage::Record {
    storage::Record {
        id: r.id,
        org: r.org,
        revision: r.revision,
        data: r.data,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn conditions(filter: Vec<storage::Condition>) -> Vec<crate::storage::Condition> {
    use crate::storage::Op;
    filter
        .into_iter()
        .map(|c| crate::storage::Condition {
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
        let query = crate::storage::Query {
            filter: conditions(query.filter),
            sort: query
                .sort
                .into_iter()
                .map(|k| crate::storage::SortKey {
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
        use crate::storage::AggregateOp as A;
        let (scope, services) = self.read_scope().ok_or_else(unavailable)?;
        let measures: Vec<crate::storage::Measure> = measures
            .into_iter()
            .map(|m| crate::storage::Measure {
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
        use crate::storage::Write as W;
        let (scope, services) = self.scope().ok_or_else(|| (0, unavailable()))?;
        let writes = writes
            .into_iter()
            .map(|w| match w {
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
            })
            .collect();
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

impl messaging::Host for HostState {
    async fn publish(&mut self, message: messaging::Message) -> Result<String, String> {
        let (scope, services) = self
            .scope()
            .ok_or("messaging is not available in this kernel")?;
        // The event's org is the kernel's stamp of where this call acts (or
        // an org it reaches), never more than the plugin's install subtree:
        // subscribers act on it within that lane only.
        let stamped = message
            .org
            .clone()
            .unwrap_or_else(|| scope.acting_org.clone());
        let in_lane = self
            .plugin
            .install_org
            .as_deref()
            .is_none_or(|install| scope.orgs.is_within(&stamped, install));
        if !scope.reaches(&stamped) || !in_lane {
            return Err(format!("org {stamped} is outside the caller's reach"));
        }
        services
            .messaging
            .publish(
                &scope.plugin,
                &stamped,
                crate::messaging::Message {
                    topic: message.topic,
                    key: message.key,
                    org: Some(stamped.clone()),
                    payload: message.payload,
                    idempotency_key: message.idempotency_key,
                },
                &scope.orgs,
            )
            .await
            .map_err(|e| e.to_string())
    }
}

fn to_file_info(f: crate::files::FileInfo) -> files::FileInfo {
    files::FileInfo {
        id: f.id,
        org: f.org_id,
        name: f.name,
        content_type: f.content_type,
        size: f.size as u64,
        sha256: f.sha256,
        created_at: f.created_at,
    }
}

impl files::Host for HostState {
    async fn put(
        &mut self,
        name: String,
        content_type: String,
        content: Vec<u8>,
        org: Option<String>,
    ) -> Result<files::FileInfo, String> {
        let (scope, services) = self.scope().ok_or("files are not available")?;
        let who = crate::files::Requester {
            scope: &scope,
            plugin: Some(&scope.plugin),
        };
        services
            .files
            .put(&who, &name, &content_type, &content, org.as_deref())
            .await
            .map(to_file_info)
            .map_err(|e| e.to_string())
    }

    async fn info(&mut self, id: String) -> Result<Option<files::FileInfo>, String> {
        let (scope, services) = self.scope().ok_or("files are not available")?;
        let who = crate::files::Requester {
            scope: &scope,
            plugin: Some(&scope.plugin),
        };
        match services.files.info(&who, &id).await {
            Ok(info) => Ok(Some(to_file_info(info))),
            Err(crate::files::FileError::NotFound) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn read(&mut self, id: String) -> Result<Option<Vec<u8>>, String> {
        let (scope, services) = self.scope().ok_or("files are not available")?;
        let who = crate::files::Requester {
            scope: &scope,
            plugin: Some(&scope.plugin),
        };
        match services.files.read(&who, &id).await {
            Ok((_, content)) => Ok(Some(content)),
            Err(crate::files::FileError::NotFound) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn delete(&mut self, id: String) -> Result<bool, String> {
        let (scope, services) = self.scope().ok_or("files are not available")?;
        let who = crate::files::Requester {
            scope: &scope,
            plugin: Some(&scope.plugin),
        };
        match services.files.delete(&who, &id).await {
            Ok(()) => Ok(true),
            Err(crate::files::FileError::NotFound) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}
