//! The plugin runtime: one wasmtime [`Engine`] with the pooling allocator and
//! epoch interruption, one pre-linked [`PluginPre`] per installed plugin
//! version, and a fresh [`Store`] per request with memory limits and a
//! deadline. Nothing a plugin does in one request survives into the next.
//!
//! Failures of a plugin (trap, panic, deadline, out of memory) come back as a
//! [`PluginFailure`] for that one call; the engine and every other plugin go
//! on serving.

mod cache;
pub mod host;
mod limits;
mod warm;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable, types::ComponentItem};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::core::config::RuntimeConfig;
use crate::core::error::{ApiError, ErrorCode};
pub use host::{AccessPolicy, CallerContext, Principal};
use limits::{CpuShare, LogLimiter, MemoryBudget, MemoryLimiter, Turn};
use warm::Prepared;

/// Bindings generated from `wit/plugin.wit`.
#[allow(unsafe_code, clippy::all)]
pub mod bindings {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit",
        exports: { default: async },
        imports: {
            "tianshan:plugin/storage": async,
            "tianshan:plugin/messaging": async,
            "tianshan:plugin/files": async,
            "tianshan:plugin/approvals": async,
            "tianshan:plugin/datacenter": async,
            "tianshan:plugin/orgs": async,
            "tianshan:plugin/identity": async,
            "tianshan:plugin/telemetry": async,
        },
    });
}

pub use bindings::exports::tianshan::plugin::http_handler::{
    Request as PluginRequest, Response as PluginResponse,
};
pub use bindings::tianshan::plugin::types::Event as PluginEvent;
use bindings::{Plugin, PluginPre};

/// Adds one host service's import to the plugins' linker (each service's
/// `runtime/host/<service>.rs`; the list is `HOST_SERVICES` in `lib.rs`).
pub type LinkHostService = fn(&mut Linker<host::HostState>) -> wasmtime::Result<()>;

/// The contract versions this kernel serves: every released minor of the
/// majors listed here. A plugin built against another major is refused.
pub const CONTRACT_PACKAGE: &str = "tianshan:plugin";
pub const CONTRACT_VERSION: semver::Version = semver::Version::new(1, 4, 0);

/// Interfaces every plugin must export, without their version suffix.
const REQUIRED_EXPORTS: [&str; 3] = ["http-handler", "lifecycle", "event-handler"];

/// Captured guest stderr is capped so a chatty plugin cannot grow the host.
const STDERR_CAPTURE_BYTES: usize = 16 * 1024;

/// The most a plugin hands the kernel in one go (an answer, or a host
/// call's arguments): wasmtime's hostcall fuel, set here so the number is
/// ours. Past it the copy fails and [`classify`] names it
/// `plugin_response_too_large`; the gateway takes at most 64 MiB of body.
const HOSTCALL_BYTES: usize = 128 << 20;
/// How wasmtime words running out of hostcall fuel (its error type is
/// private); `an_answer_past_what_the_kernel_copies_is_named` pins it.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// Why one call into a plugin failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {detail}")]
pub struct PluginFailure {
    pub code: ErrorCode,
    pub detail: String,
}

impl PluginFailure {
    fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        PluginFailure {
            code,
            detail: detail.into(),
        }
    }

    /// The answer the caller gets: the code and a message that names the
    /// plugin, without guest internals.
    pub fn to_api_error(&self, plugin: &str) -> ApiError {
        let message = match self.code {
            ErrorCode::PluginTimeout => {
                format!("plugin {plugin} did not answer before its deadline")
            }
            ErrorCode::PluginMemoryExceeded => {
                format!("plugin {plugin} exceeded its memory limit")
            }
            ErrorCode::PluginPanicked => format!("plugin {plugin} panicked"),
            ErrorCode::PluginBusy => format!("plugin {plugin} is at its concurrency limit; retry"),
            ErrorCode::MemoryBudgetExhausted => format!(
                "the kernel's memory for plugins is in use; plugin {plugin} could not run; retry"
            ),
            ErrorCode::PluginBadResponse => {
                format!("plugin {plugin} gave an invalid response: {}", self.detail)
            }
            ErrorCode::PluginHookFailed => {
                format!("plugin {plugin} refused: {}", self.detail)
            }
            ErrorCode::PluginResponseTooLarge => {
                format!(
                    "plugin {plugin} handed the kernel too much data: {}",
                    self.detail
                )
            }
            _ => format!("plugin {plugin} failed while handling the request"),
        };
        let mut error = ApiError::new(self.code, message);
        if matches!(
            self.code,
            ErrorCode::PluginBusy | ErrorCode::MemoryBudgetExhausted
        ) {
            error.retry_after = Some(1);
        }
        error
    }
}

/// Limits for one plugin version, already clamped to the kernel's maxima.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    pub memory_bytes: usize,
    pub timeout: Duration,
}

/// What the kernel knows about a plugin version, shared by all its stores.
#[derive(Debug)]
pub struct PluginIdentity {
    pub id: String,
    pub version: String,
    pub config: BTreeMap<String, String>,
    /// Capabilities the manifest asked for and the installer granted.
    pub wall_clock: bool,
    /// Storage collections the manifest declares, with indexed fields.
    pub collections: Arc<crate::core::scope::CollectionIndexes>,
    /// Collections whose records orgs below the record's org may read.
    pub read_below: Arc<std::collections::BTreeSet<String>>,
    /// Where the plugin is installed (`None`: everywhere); the reach of
    /// calls the kernel makes itself (events, jobs).
    pub install_org: Option<String>,
}

/// A compiled and pre-linked plugin version, ready to instantiate per call.
pub struct LoadedComponent {
    pre: PluginPre<host::HostState>,
    pub identity: Arc<PluginIdentity>,
    pub limits: PluginLimits,
    pub contract: semver::Version,
    /// Fresh instances of this version made ahead of calls.
    warm: Arc<warm::WarmPool>,
    /// Calls of this version running at once (its share of the instance
    /// pool, and so of the database, which a call uses one connection of
    /// at a time).
    slots: tokio::sync::Semaphore,
    log: Arc<LogLimiter>,
}

impl Drop for LoadedComponent {
    fn drop(&mut self) {
        self.warm.retire();
    }
}

/// Counters exposed on `/metrics` (shared handles into the registry).
#[derive(Debug, Default, Clone)]
pub struct RuntimeStats {
    pub compilations: prometheus_client::metrics::counter::Counter,
    pub cache_hits: prometheus_client::metrics::counter::Counter,
    pub log_dropped: prometheus_client::metrics::family::Family<
        crate::metrics::PluginLabels,
        prometheus_client::metrics::counter::Counter,
    >,
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<host::HostState>,
    cache: cache::CompiledCache,
    config: RuntimeConfig,
    pub stats: RuntimeStats,
    ticker_stop: Arc<AtomicBool>,
    access: std::sync::OnceLock<Arc<dyn AccessPolicy>>,
    services: std::sync::OnceLock<Arc<host::Services>>,
    warm: Arc<warm::WarmShared>,
    budget: Arc<MemoryBudget>,
    cpu: Arc<CpuShare>,
    /// To the thread that drops used stores and prepares instances.
    helper: std::sync::mpsc::SyncSender<warm::Job>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Builds the engine, the linker with every host interface, and starts
    /// the epoch ticker that drives deadlines.
    pub fn new(
        config: RuntimeConfig,
        cache_dir: PathBuf,
        stats: RuntimeStats,
        host_services: &[LinkHostService],
    ) -> anyhow::Result<Self> {
        let engine = Engine::new(&engine_config(&config)).map_err(wasm_err)?;
        let mut linker = Linker::<host::HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(wasm_err)?;
        host::add_to_linker(&mut linker).map_err(wasm_err)?;
        for link in host_services {
            link(&mut linker).map_err(wasm_err)?;
        }

        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            let tick = Duration::from_millis(config.epoch_tick_ms.max(1));
            std::thread::Builder::new()
                .name("tianshan-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })?;
        }

        // Prepared instances hold pool slots: at most an eighth of them.
        let warm = warm::WarmShared::new((config.max_concurrent_instances as usize / 8).max(1));
        let budget = MemoryBudget::configured(config.memory_budget_mib);
        let cpu = CpuShare::new(
            config.heavy_slots,
            Duration::from_millis(config.heavy_after_ms),
        );
        Ok(Runtime {
            cache: cache::CompiledCache::new(cache_dir, &engine)?,
            engine,
            linker,
            config,
            stats,
            ticker_stop,
            access: std::sync::OnceLock::new(),
            services: std::sync::OnceLock::new(),
            warm,
            budget,
            cpu,
            helper: warm::start_helper()?,
        })
    }

    /// Where `authz.allowed` gets its answers; set once by the kernel.
    pub fn set_access_policy(&self, policy: Arc<dyn AccessPolicy>) {
        let _ = self.access.set(policy);
    }

    /// Storage and messaging for plugins; set once by the kernel.
    pub fn set_services(&self, services: Arc<host::Services>) {
        let _ = self.services.set(services);
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Clamps what a manifest asks for to the kernel's maxima.
    pub fn limits_for(&self, memory_mib: Option<u64>, timeout_ms: Option<u64>) -> PluginLimits {
        let memory_mib = memory_mib
            .unwrap_or(self.config.default_memory_mib)
            .clamp(1, self.config.max_memory_mib);
        let timeout_ms = timeout_ms
            .unwrap_or(self.config.default_timeout_ms)
            .clamp(1, self.config.max_timeout_ms);
        PluginLimits {
            memory_bytes: (memory_mib as usize) << 20,
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    /// Validates, compiles (or loads from the on-disk cache) and pre-links a
    /// component. `wasm` must be a WebAssembly component in binary form:
    /// precompiled artifacts from outside are refused.
    pub fn load(
        &self,
        wasm: &[u8],
        identity: PluginIdentity,
        limits: PluginLimits,
    ) -> Result<LoadedComponent, ApiError> {
        if Engine::detect_precompiled(wasm).is_some() {
            return Err(ApiError::new(
                ErrorCode::InvalidPackage,
                "the component is precompiled native code; packages must hold a WebAssembly component",
            ));
        }
        if !is_component(wasm) {
            return Err(ApiError::new(
                ErrorCode::InvalidPackage,
                "plugin.wasm is not a WebAssembly component (build for wasm32-wasip2)",
            ));
        }
        let component = match self.cache.get(&self.engine, wasm) {
            Some(component) => {
                self.stats.cache_hits.inc();
                component
            }
            None => {
                let started = Instant::now();
                let component = Component::new(&self.engine, wasm).map_err(|e| {
                    ApiError::new(
                        ErrorCode::InvalidPackage,
                        format!("plugin.wasm does not compile: {e}"),
                    )
                })?;
                self.stats.compilations.inc();
                tracing::info!(plugin = %identity.id, version = %identity.version,
                    ms = started.elapsed().as_millis() as u64, "compiled plugin component");
                self.cache.put(wasm, &component);
                component
            }
        };
        let contract = contract_version(&self.engine, &component)?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidPackage,
                format!("the component imports something this kernel does not provide: {e:#}"),
            )
        })?;
        let pre = PluginPre::new(instance_pre).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidPackage,
                format!("the component does not export the plugin world: {e:#}"),
            )
        })?;
        let identity = Arc::new(identity);
        let log = LogLimiter::new(
            self.config.log_lines_per_sec,
            self.config.log_burst,
            self.stats
                .log_dropped
                .get_or_create(&crate::metrics::PluginLabels {
                    plugin: identity.id.clone(),
                })
                .clone(),
        );
        let guards = Guards {
            budget: self.budget.clone(),
            log: log.clone(),
        };
        let recipe = (self.engine.clone(), pre.clone(), identity.clone(), guards);
        let make: warm::Prepare = Box::new(move || {
            let (engine, pre, identity, guards) = recipe.clone();
            Box::pin(async move { prepare(&engine, &pre, identity, limits, &guards).await.ok() })
        });
        let warm = warm::WarmPool::new(self.config.prewarm_instances, &self.warm, make);
        Ok(LoadedComponent {
            pre,
            identity,
            limits,
            contract,
            warm,
            slots: tokio::sync::Semaphore::new(
                self.config.max_concurrent_per_plugin.max(1) as usize
            ),
            log,
        })
    }

    /// Hands a prepared instance to one call: the caller, the kernel's
    /// services and a fresh deadline are set now, never before.
    fn arm(
        &self,
        store: &mut Store<host::HostState>,
        caller: Option<CallerContext>,
        plugin: &LoadedComponent,
    ) -> Turn {
        let state = store.data_mut();
        debug_assert!(state.caller.is_none() && state.scope.is_none());
        state.caller = caller;
        state.access = self.access.get().cloned();
        state.services = self.services.get().cloned();
        set_deadline(store, plugin.limits.timeout, Some(&self.cpu))
    }

    /// Hands a used store to the helper thread, to be dropped (its slot
    /// reset) with a refill of the pool if it is short. The hand-over (a
    /// thread wake-up) happens in a task that runs once the answer is on
    /// its way; if the helper is behind, the store is dropped here.
    fn recycle(&self, used: Store<host::HostState>, plugin: &LoadedComponent) {
        if self.config.prewarm_instances == 0 {
            // No helper work wanted: drop here, as before prewarming.
            drop(used);
            return;
        }
        let refill = plugin.warm.wants_more().then(|| plugin.warm.clone());
        let job = warm::Job { used, refill };
        let hand_over = |helper: &std::sync::mpsc::SyncSender<warm::Job>, job| {
            if let Err(
                std::sync::mpsc::TrySendError::Full(job)
                | std::sync::mpsc::TrySendError::Disconnected(job),
            ) = helper.try_send(job)
            {
                drop(job);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let helper = self.helper.clone();
                runtime.spawn(async move { hand_over(&helper, job) });
            }
            Err(_) => hand_over(&self.helper, job),
        }
    }

    /// A fresh instance made for this call, when none is prepared. When the
    /// instance pool is exhausted, prepared instances of every plugin give
    /// their slots back first.
    async fn prepare_inline(&self, plugin: &LoadedComponent) -> Result<Prepared, PluginFailure> {
        let guards = self.guards(plugin);
        let attempt = prepare(
            &self.engine,
            &plugin.pre,
            plugin.identity.clone(),
            plugin.limits,
            &guards,
        );
        match attempt.await {
            Ok(prepared) => Ok(prepared),
            Err((store, _, e))
                if e.is::<wasmtime::PoolConcurrencyLimitError>() && self.warm.evict_all() > 0 =>
            {
                drop(store);
                prepare(
                    &self.engine,
                    &plugin.pre,
                    plugin.identity.clone(),
                    plugin.limits,
                    &guards,
                )
                .await
                .map_err(|(store, stderr, e)| classify(&store, &stderr, e, plugin))
            }
            Err((store, stderr, e)) => Err(classify(&store, &stderr, e, plugin)),
        }
    }

    /// Runs one HTTP request in a fresh instance.
    pub async fn handle_http(
        &self,
        plugin: &LoadedComponent,
        caller: Option<CallerContext>,
        request: PluginRequest,
    ) -> Result<PluginResponse, PluginFailure> {
        self.call(plugin, caller, async |store, instance| {
            instance
                .tianshan_plugin_http_handler()
                .call_handle(store, &request)
                .await
        })
        .await
    }

    /// Runs the install hook (`previous = None`) or the upgrade hook.
    pub async fn run_lifecycle(
        &self,
        plugin: &LoadedComponent,
        previous: Option<&str>,
    ) -> Result<(), PluginFailure> {
        let outcome = self
            .call(plugin, None, async |store, instance| {
                let hooks = instance.tianshan_plugin_lifecycle();
                match previous {
                    None => hooks.call_install(store).await,
                    Some(prev) => hooks.call_upgrade(store, prev).await,
                }
            })
            .await?;
        outcome.map_err(|message| PluginFailure::new(ErrorCode::PluginHookFailed, message))
    }

    /// Delivers one event; `Ok(Err(_))` is the plugin asking for a retry.
    pub async fn deliver_event(
        &self,
        plugin: &LoadedComponent,
        event: PluginEvent,
    ) -> Result<Result<(), String>, PluginFailure> {
        self.call(plugin, None, async |store, instance| {
            // The handler acts in the event's lane, not the plugin's whole
            // install scope (host/mod.rs `limit_to_event`).
            store
                .data_mut()
                .limit_to_event(&event.source, event.org.as_deref());
            instance
                .tianshan_plugin_event_handler()
                .call_handle(store, &event)
                .await
        })
        .await
    }

    /// Creates a store and instantiates the plugin without calling it: the
    /// fixed cost every request pays (used by the gateway benchmark).
    pub async fn instantiate_only(&self, plugin: &LoadedComponent) -> Result<(), PluginFailure> {
        prepare(
            &self.engine,
            &plugin.pre,
            plugin.identity.clone(),
            plugin.limits,
            &self.guards(plugin),
        )
        .await
        .map(drop)
        .map_err(|(store, stderr, e)| classify(&store, &stderr, e, plugin))
    }

    async fn call<R>(
        &self,
        plugin: &LoadedComponent,
        caller: Option<CallerContext>,
        body: impl AsyncFnOnce(&mut Store<host::HostState>, &Plugin) -> wasmtime::Result<R>,
    ) -> Result<R, PluginFailure> {
        // The plugin's share first: past it, a bounded wait, then busy.
        let _slot = match plugin.slots.try_acquire() {
            Ok(slot) => slot,
            Err(_) => {
                let wait = Duration::from_millis(self.config.busy_wait_ms);
                match tokio::time::timeout(wait, plugin.slots.acquire()).await {
                    Ok(Ok(slot)) => slot,
                    _ => {
                        return Err(PluginFailure::new(
                            ErrorCode::PluginBusy,
                            "at its concurrency limit",
                        ));
                    }
                }
            }
        };
        // A new instance needs at least its initial memory; refuse it up
        // front rather than let it fail part-way.
        if self.budget.exhausted(1 << 20) {
            return Err(PluginFailure::new(
                ErrorCode::MemoryBudgetExhausted,
                format!(
                    "plugin memory budget of {} MiB in use",
                    self.budget.limit() >> 20
                ),
            ));
        }
        let Prepared {
            mut store,
            instance,
            stderr,
        } = match plugin.warm.take() {
            Some(prepared) => prepared,
            None => self.prepare_inline(plugin).await?,
        };
        let armed = Instant::now();
        let turn = self.arm(&mut store, caller, plugin);
        // The epoch callback enforces the deadline inside wasm; this outer
        // timeout also covers time spent in host calls.
        let grace = plugin.limits.timeout + Duration::from_millis(250);
        let outcome = match tokio::time::timeout(grace, body(&mut store, &instance)).await {
            Ok(Ok(value)) => {
                forward_stderr(&stderr, plugin);
                Ok(value)
            }
            Ok(Err(e)) => Err(classify(&store, &stderr, e, plugin)),
            Err(_) => Err(PluginFailure::new(
                ErrorCode::PluginTimeout,
                "deadline exceeded in a host call",
            )),
        };
        // A heavy call gives its turn back now, not when its store is
        // dropped on the helper thread.
        drop(turn.lock().unwrap_or_else(|e| e.into_inner()).take());
        if armed.elapsed() < self.cpu.heavy_after() {
            self.cpu.note_light();
        }
        self.recycle(store, plugin);
        outcome
    }

    /// Calls that took a prepared instance and calls that instantiated
    /// inline since start (while prewarming is on).
    pub fn prewarm_stats(&self) -> (u64, u64) {
        (
            self.warm.hits.load(Ordering::Relaxed),
            self.warm.misses.load(Ordering::Relaxed),
        )
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Plugin linear memory held now and the budget, in bytes.
    pub fn memory_budget(&self) -> (usize, usize) {
        (self.budget.used(), self.budget.limit())
    }

    fn guards(&self, plugin: &LoadedComponent) -> Guards {
        Guards {
            budget: self.budget.clone(),
            log: plugin.log.clone(),
        }
    }
}

/// What every store of a plugin version shares with the kernel.
#[derive(Clone)]
struct Guards {
    budget: Arc<MemoryBudget>,
    log: Arc<LogLimiter>,
}

/// A fresh store for one call of a plugin version with the component
/// instantiated in it, under the plugin's memory cap and a deadline; no
/// caller yet (see [`Runtime::arm`]). On failure, the store and its stderr
/// for classifying the error.
async fn prepare(
    engine: &Engine,
    pre: &PluginPre<host::HostState>,
    identity: Arc<PluginIdentity>,
    limits: PluginLimits,
    guards: &Guards,
) -> Result<Prepared, (Store<host::HostState>, MemoryOutputPipe, wasmtime::Error)> {
    let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
    let mut wasi = WasiCtx::builder();
    wasi.stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    if !identity.wall_clock {
        wasi.wall_clock(host::FrozenWallClock);
    }
    let state = host::HostState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        limiter: MemoryLimiter::new(limits.memory_bytes, guards.budget.clone()),
        log_limit: guards.log.clone(),
        plugin: identity,
        caller: None,
        access: None,
        services: None,
        scope: None,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.set_hostcall_fuel(HOSTCALL_BYTES);
    // Instantiation runs start functions, if a component has any: under
    // the same deadline as a call.
    set_deadline(&mut store, limits.timeout, None);
    match pre.instantiate_async(&mut store).await {
        Ok(instance) => Ok(Prepared {
            store,
            instance,
            stderr,
        }),
        Err(e) => Err((store, stderr, e)),
    }
}

/// Traps the store's wasm at `timeout` from now; until then a busy plugin
/// yields its thread every epoch tick. With `share`, a call running past
/// its heavy threshold also waits for a heavy turn at each tick; the turn
/// it holds is returned for the caller to give back when the call ends.
fn set_deadline(
    store: &mut Store<host::HostState>,
    timeout: Duration,
    share: Option<&Arc<CpuShare>>,
) -> Turn {
    let started = Instant::now();
    let deadline = started + timeout;
    let turn = Turn::default();
    let share = share.cloned();
    let held = turn.clone();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        let now = Instant::now();
        if now >= deadline {
            return Err(DeadlineExceeded.into());
        }
        match &share {
            // Over its share of time: queue behind the other heavy calls.
            Some(share) if now - started >= share.heavy_after() => Ok(UpdateDeadline::YieldCustom(
                1,
                share.next_turn(&held, deadline),
            )),
            // Yield so a busy plugin never holds a runtime thread for
            // longer than one tick.
            _ => Ok(UpdateDeadline::Yield(1)),
        }
    });
    turn
}

/// wasmtime has its own error type; at the kernel's edges it becomes anyhow.
fn wasm_err(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

/// The error the epoch callback raises at the deadline.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
struct DeadlineExceeded;

fn engine_config(config: &RuntimeConfig) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    let pagemap = PoolingAllocationConfig::is_pagemap_scan_available();
    let instances = config.max_concurrent_instances.max(1);
    pool.total_component_instances(instances)
        // A Rust component is one core module plus adapter shims.
        .max_core_instances_per_component(16)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(8))
        .total_stacks(instances)
        .max_memory_size((config.max_memory_mib as usize) << 20)
        // Reset a returned slot by rewriting only the pages the plugin
        // dirtied (PAGEMAP_SCAN, Linux 6.7+) and keep them resident: no
        // madvise, no TLB shootdowns, no page faults on the next request.
        // Without the ioctl, wasmtime memsets the first pages instead, so the
        // fallback keeps that window small.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(if pagemap { 8 << 20 } else { 128 << 10 })
        .table_keep_resident(if pagemap { 1 << 20 } else { 16 << 10 })
        // Bounds what stays resident between requests: at most this many
        // idle slots × the window above.
        .max_unused_warm_slots(32);
    let mut cfg = Config::new();
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        .memory_init_cow(true)
        .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(32));
    cfg
}

/// A component, not a core module: the layer field of the header is 1.
fn is_component(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && wasm[0..4] == *b"\0asm" && wasm[6..8] == [1, 0]
}

/// The `tianshan:plugin` version the component was built against, read from
/// the names of its exports; checks that every required export is present.
fn contract_version(engine: &Engine, component: &Component) -> Result<semver::Version, ApiError> {
    let ty = component.component_type();
    let mut found: BTreeMap<&str, semver::Version> = BTreeMap::new();
    for (name, item) in ty.exports(engine) {
        let Some(rest) = name
            .strip_prefix(CONTRACT_PACKAGE)
            .and_then(|r| r.strip_prefix('/'))
        else {
            continue;
        };
        let Some((interface, version)) = rest.split_once('@') else {
            continue;
        };
        if !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
            continue;
        }
        if let (Some(interface), Ok(version)) = (
            REQUIRED_EXPORTS.iter().find(|r| **r == interface),
            semver::Version::parse(version),
        ) {
            found.insert(interface, version);
        }
    }
    let Some(version) = found.values().next().cloned() else {
        return Err(ApiError::new(
            ErrorCode::InvalidPackage,
            format!(
                "the component exports no {CONTRACT_PACKAGE} interface; build it with the Tianshan SDK"
            ),
        ));
    };
    check_contract(&version)?;
    for required in REQUIRED_EXPORTS {
        if !found.contains_key(required) {
            return Err(ApiError::new(
                ErrorCode::InvalidPackage,
                format!("the component does not export {CONTRACT_PACKAGE}/{required}@{version}"),
            ));
        }
    }
    Ok(version)
}

/// Refuses contract versions this kernel cannot serve.
pub fn check_contract(version: &semver::Version) -> Result<(), ApiError> {
    if version.major != CONTRACT_VERSION.major
        || (version.major == 0 && version.minor != CONTRACT_VERSION.minor)
    {
        return Err(ApiError::new(
            ErrorCode::ContractUnsupported,
            format!(
                "plugin is built against {CONTRACT_PACKAGE}@{version}; this kernel serves {CONTRACT_PACKAGE}@{}.x (up to {CONTRACT_VERSION})",
                CONTRACT_VERSION.major
            ),
        ));
    }
    if version > &CONTRACT_VERSION {
        return Err(ApiError::new(
            ErrorCode::ContractUnsupported,
            format!(
                "plugin is built against {CONTRACT_PACKAGE}@{version}, newer than this kernel's {CONTRACT_VERSION}; upgrade the kernel"
            ),
        ));
    }
    Ok(())
}

fn classify(
    store: &Store<host::HostState>,
    stderr: &MemoryOutputPipe,
    error: wasmtime::Error,
    plugin: &LoadedComponent,
) -> PluginFailure {
    let output = String::from_utf8_lossy(&stderr.contents()).into_owned();
    let failure = if store.data().limiter.over_budget() {
        PluginFailure::new(
            ErrorCode::MemoryBudgetExhausted,
            "memory growth refused: the kernel's plugin memory budget is in use",
        )
    } else if store.data().limiter.exceeded() {
        PluginFailure::new(
            ErrorCode::PluginMemoryExceeded,
            format!(
                "memory limit of {} MiB reached",
                plugin.limits.memory_bytes >> 20
            ),
        )
    } else if error.is::<DeadlineExceeded>()
        || error.downcast_ref::<Trap>() == Some(&Trap::Interrupt)
    {
        PluginFailure::new(ErrorCode::PluginTimeout, "deadline exceeded")
    } else if error.is::<wasmtime::PoolConcurrencyLimitError>() {
        PluginFailure::new(ErrorCode::PluginBusy, "instance pool exhausted")
    } else if format!("{error:#}").contains(HOSTCALL_FUEL_EXHAUSTED) {
        PluginFailure::new(
            ErrorCode::PluginResponseTooLarge,
            format!(
                "more than {} MiB in one answer or host call",
                HOSTCALL_BYTES >> 20
            ),
        )
    } else if let Some(at) = output.find("panicked at") {
        PluginFailure::new(ErrorCode::PluginPanicked, output[at..].trim().to_string())
    } else if let Some(trap) = error.downcast_ref::<Trap>() {
        PluginFailure::new(ErrorCode::PluginTrapped, format!("trap: {trap}"))
    } else {
        PluginFailure::new(ErrorCode::PluginTrapped, format!("{error:#}"))
    };
    tracing::warn!(
        plugin = %plugin.identity.id,
        version = %plugin.identity.version,
        code = failure.code.as_str(),
        detail = %failure.detail,
        stderr = %output.trim(),
        "plugin call failed"
    );
    failure
}

fn forward_stderr(stderr: &MemoryOutputPipe, plugin: &LoadedComponent) {
    let bytes = stderr.contents();
    if !bytes.is_empty() {
        let id = &plugin.identity.id;
        limits::rate_limited(&plugin.log, id, || {
            tracing::info!(plugin = %id, stderr = %String::from_utf8_lossy(&bytes).trim(), "plugin stderr");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_released_minor_and_refuses_other_majors() {
        assert!(check_contract(&semver::Version::new(1, 0, 0)).is_ok());
        assert!(check_contract(&semver::Version::new(1, 1, 0)).is_ok());
        let err = check_contract(&semver::Version::new(2, 0, 0)).unwrap_err();
        assert_eq!(err.code, ErrorCode::ContractUnsupported);
        assert!(
            err.message.contains("tianshan:plugin@2.0.0"),
            "{}",
            err.message
        );
        let err = check_contract(&semver::Version::new(0, 9, 0)).unwrap_err();
        assert_eq!(err.code, ErrorCode::ContractUnsupported);
        let err = check_contract(&semver::Version::new(1, 99, 0)).unwrap_err();
        assert!(err.message.contains("upgrade the kernel"));
    }

    #[test]
    fn tells_components_from_modules() {
        assert!(is_component(b"\0asm\x0d\0\x01\0"));
        assert!(!is_component(b"\0asm\x01\0\0\0"));
        assert!(!is_component(b"PK\x03\x04"));
    }

    #[test]
    fn limits_are_clamped_to_kernel_maxima() {
        let runtime = Runtime::new(
            RuntimeConfig::for_tests(),
            std::env::temp_dir(),
            RuntimeStats::default(),
            &[],
        )
        .unwrap();
        let limits = runtime.limits_for(Some(100_000), Some(10_000_000));
        assert_eq!(
            limits.memory_bytes,
            (runtime.config.max_memory_mib as usize) << 20
        );
        assert_eq!(
            limits.timeout.as_millis() as u64,
            runtime.config.max_timeout_ms
        );
        let defaults = runtime.limits_for(None, None);
        assert_eq!(defaults.memory_bytes, 64 << 20);
        assert_eq!(defaults.timeout, Duration::from_secs(5));
    }

    #[test]
    fn refuses_core_modules_and_precompiled_code() {
        let runtime = Runtime::new(
            RuntimeConfig::for_tests(),
            std::env::temp_dir(),
            RuntimeStats::default(),
            &[],
        )
        .unwrap();
        let identity = || PluginIdentity {
            id: "x".into(),
            version: "0.1.0".into(),
            config: Default::default(),
            wall_clock: false,
            collections: Default::default(),
            read_below: Default::default(),
            install_org: None,
        };
        let limits = runtime.limits_for(None, None);
        let core_module = b"\0asm\x01\0\0\0";
        let err = runtime.load(core_module, identity(), limits).err().unwrap();
        assert_eq!(err.code, ErrorCode::InvalidPackage);
        assert!(err.message.contains("not a WebAssembly component"));

        let precompiled = runtime
            .engine()
            .precompile_component(b"\0asm\x0d\0\x01\0")
            .unwrap();
        let err = runtime
            .load(&precompiled, identity(), limits)
            .err()
            .unwrap();
        assert!(err.message.contains("precompiled"), "{}", err.message);
    }
}
