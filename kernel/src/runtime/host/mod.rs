//! The kernel's side of the imports plugins see: logging, configuration,
//! the caller's identity, access decisions (1.1), storage and messaging
//! (1.2). Each is answered from state the kernel put into the store; who
//! is calling and which orgs they reach never come from the plugin.

pub mod approvals;
pub mod datacenter;
pub mod files;
pub mod messaging;
pub mod orgs;
pub mod storage;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::runtime::PluginIdentity;
use crate::runtime::bindings::tianshan::plugin::{authz, config, identity, log, types};
use crate::runtime::limits::MemoryLimiter;

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
    pub scope: Option<crate::identity::auth::TokenScope>,
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
    pub log_limit: Arc<crate::runtime::limits::LogLimiter>,
    pub plugin: Arc<PluginIdentity>,
    pub caller: Option<CallerContext>,
    pub access: Option<Arc<dyn AccessPolicy>>,
    pub services: Option<Arc<Services>>,
    /// Built on the first storage or messaging call of the request.
    pub scope: Option<crate::core::scope::Scope>,
}

/// The kernel services behind the storage and messaging imports.
pub struct Services {
    pub storage: Arc<crate::services::storage::Storage>,
    pub messaging: Arc<crate::services::messaging::Messaging>,
    pub files: Arc<crate::services::files::Files>,
    pub approvals: Arc<crate::services::approvals::Approvals>,
    pub datacenter: Arc<crate::services::datacenter::DataCenter>,
    pub telemetry: Arc<crate::services::telemetry::Telemetry>,
    pub authz: Arc<crate::identity::authz::Authz>,
    pub root_org: String,
    /// Where storage reads get their connection, one host call at a time.
    pub reads: Arc<crate::db::PluginReads>,
}

impl HostState {
    /// Who and where for this call, decided from the authenticated caller
    /// (or, for kernel-made calls, the plugin's install scope).
    pub(crate) fn scope(&mut self) -> Option<(crate::core::scope::Scope, Arc<Services>)> {
        self.read_scope()
    }

    /// The scope for a storage read.
    pub(crate) fn read_scope(&mut self) -> Option<(crate::core::scope::Scope, Arc<Services>)> {
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
        let reach = crate::core::scope::Scope::reach_of(&orgs, &acting_org);
        let scope = self.build_scope(orgs, acting_org, reach, actor, actor_name);
        self.scope = Some(scope.clone());
        Some((scope, services))
    }

    fn build_scope(
        &self,
        orgs: Arc<crate::core::scope::OrgIndex>,
        acting_org: String,
        reach: crate::core::scope::Reach,
        actor: Option<String>,
        actor_name: String,
    ) -> crate::core::scope::Scope {
        crate::core::scope::Scope {
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
        if source == crate::services::messaging::KERNEL_SOURCE {
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
            Some(org) if orgs.is_within(org, &install) => (
                org.to_string(),
                crate::core::scope::Scope::reach_of(&orgs, org),
            ),
            Some(org) if orgs.is_within(&install, org) => {
                let reach = crate::core::scope::Scope::reach_of(&orgs, &install);
                (install, reach)
            }
            _ => (
                install,
                crate::core::scope::Reach::Orgs(Arc::new(Vec::new())),
            ),
        };
        let actor_name = format!("plugin:{}", self.plugin.id);
        self.scope = Some(self.build_scope(orgs, acting_org, reach, None, actor_name));
    }
}

/// Adds the imports the runtime answers itself — `types`, `log`,
/// `config`, `identity`, `authz` — to the plugins' linker; the host
/// services add theirs (`LinkHostService`).
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime::component::HasSelf;
    types::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    log::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    config::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    identity::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    authz::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
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
        crate::runtime::limits::rate_limited(&self.log_limit, plugin, || match level {
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
    async fn caller(&mut self) -> Option<identity::Principal> {
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

    async fn plugin_id(&mut self) -> String {
        self.plugin.id.clone()
    }

    async fn plugin_version(&mut self) -> String {
        self.plugin.version.clone()
    }

    /// A user's profile when their unit is in this call's reach, or they
    /// are the caller. Anything else, a failed read included, answers
    /// `none`, so a plugin cannot tell "elsewhere" from "nobody".
    async fn profile_of(&mut self, user: String) -> Option<identity::Profile> {
        if user.is_empty() || user.len() > 64 {
            return None;
        }
        let caller_id = self.caller.as_ref().map(|c| c.principal.user_id.clone());
        let (scope, services) = self.read_scope()?;
        let mut conn = services.reads.acquire(&self.plugin.id).await.ok()?;
        let found = crate::identity::users::by_id_or_username(&mut conn, &user).await;
        let found = match found {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(plugin = %self.plugin.id, error = %e, "identity.profile read failed");
                conn.settle::<()>(&Err(crate::core::error::ServiceError::from(e)));
                return None;
            }
        };
        if caller_id.as_deref() != Some(found.id.as_str()) && !scope.reaches(&found.org_id) {
            return None;
        }
        Some(identity::Profile {
            user_id: found.id,
            username: found.username,
            display_name: found.display_name,
            org_id: found.org_id,
            post_rank: found.profile.post_rank.unwrap_or_default(),
            position: found.profile.position.unwrap_or_default(),
            department: found.profile.department.unwrap_or_default(),
            active: !found.disabled,
        })
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

/// The kernel's roles and bindings answer the plugin's permission checks;
/// an API token narrows them to its own permissions and org.
impl AccessPolicy for crate::identity::authz::PluginAccess {
    fn allowed(&self, caller: &CallerContext, org: &str, permission: &str) -> bool {
        let scoped = caller
            .scope
            .as_ref()
            .is_none_or(|s| s.permits(permission) && self.0.orgs().is_within(org, &s.org_id));
        scoped && self.0.allowed(&caller.principal.user_id, org, permission)
    }
}
