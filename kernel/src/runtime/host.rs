//! The kernel's side of the imports every plugin sees in contract 1.0:
//! logging, configuration and the caller's identity. Each is answered from
//! state the kernel put into the store; nothing comes from the plugin.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::PluginIdentity;
use super::bindings::tianshan::plugin::{authz, config, identity, log, types};
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
    pub plugin: Arc<PluginIdentity>,
    pub caller: Option<CallerContext>,
    pub access: Option<Arc<dyn AccessPolicy>>,
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
        match level {
            log::Level::Trace => tracing::trace!(target: "plugin", %plugin, %version, "{message}"),
            log::Level::Debug => tracing::debug!(target: "plugin", %plugin, %version, "{message}"),
            log::Level::Info => tracing::info!(target: "plugin", %plugin, %version, "{message}"),
            log::Level::Warn => tracing::warn!(target: "plugin", %plugin, %version, "{message}"),
            log::Level::Error => tracing::error!(target: "plugin", %plugin, %version, "{message}"),
        }
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
