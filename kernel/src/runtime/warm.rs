//! Instances made ahead of requests: per plugin version, a few fresh stores
//! with the component instantiated and nothing ever called, filled by a
//! helper thread after a request takes one (the same thread drops used
//! stores, after their answer is on its way).
//!
//! This keeps the one-request-per-instance rule: a prepared instance is
//! handed to exactly one call and dropped after it; it never holds a caller
//! (the caller, the deadline and the kernel services are set when a call
//! takes it, see `Runtime::arm`), and no guest code has run in it (a Rust
//! component has no start function; one that had would run it under the
//! deadline, like an inline instantiation). What moves off the request path
//! is only the instantiation, and only when a core is idle to do it.
//!
//! Prepared instances occupy slots of the pooling allocator, so their number
//! is capped per version and across all plugins, and a call that finds the
//! pool exhausted evicts them all before it gives up (`Runtime::prepare_inline`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use futures_util::future::BoxFuture;
use wasmtime::Store;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::bindings::Plugin;
use super::host::HostState;

/// A store with the component instantiated in it; no guest code called.
pub(super) struct Prepared {
    pub store: Store<HostState>,
    pub instance: Plugin,
    pub stderr: MemoryOutputPipe,
}

/// What all pools share: the bound on idle prepared instances across
/// plugins and the list of pools to evict when the allocator runs out.
pub(super) struct WarmShared {
    idle_total: AtomicUsize,
    /// Calls that found a prepared instance, and calls that did not.
    pub hits: std::sync::atomic::AtomicU64,
    pub misses: std::sync::atomic::AtomicU64,
    cap: usize,
    pools: Mutex<Vec<Weak<WarmPool>>>,
}

impl WarmShared {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(WarmShared {
            idle_total: AtomicUsize::new(0),
            hits: Default::default(),
            misses: Default::default(),
            cap,
            pools: Mutex::new(Vec::new()),
        })
    }

    /// Drops every idle prepared instance of every plugin; returns how many.
    pub fn evict_all(&self) -> usize {
        let pools: Vec<Arc<WarmPool>> = {
            let mut list = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            list.retain(|w| w.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        };
        pools.iter().map(|p| p.clear()).sum()
    }
}

/// Makes one prepared instance of a plugin version; `None` if it cannot.
pub(super) type Prepare = Box<dyn Fn() -> BoxFuture<'static, Option<Prepared>> + Send + Sync>;

/// What the helper thread does after a call: drop the used store, then
/// top up the pool it came from.
pub(super) struct Job {
    pub used: Store<HostState>,
    pub refill: Option<Arc<WarmPool>>,
}

/// Starts the helper thread; it ends when every sender is gone.
///
/// The work runs on its own thread, not on a runtime worker: a worker busy
/// instantiating would not be watching its sockets for the next request.
/// The queue is short; when it is full the worker drops the store itself
/// and no refill is asked for, so under saturation the work stays with the
/// request that caused it and used stores never pile up.
pub(super) fn start_helper() -> std::io::Result<std::sync::mpsc::SyncSender<Job>> {
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Job>(8);
    std::thread::Builder::new()
        .name("tianshan-prewarm".into())
        .spawn(move || {
            while let Ok(job) = receiver.recv() {
                drop(job.used);
                if let Some(pool) = job.refill {
                    pool.fill();
                }
            }
        })?;
    Ok(sender)
}

/// Runs a future that never waits on I/O (instantiation; an epoch yield
/// wakes itself) to completion on this thread.
fn block_on<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::yield_now();
    }
}

/// The prepared instances of one plugin version.
pub(super) struct WarmPool {
    /// How many to keep ready; 0 disables.
    target: usize,
    prepare: Prepare,
    idle: Mutex<Vec<Prepared>>,
    retired: AtomicBool,
    shared: Arc<WarmShared>,
}

impl WarmPool {
    pub fn new(target: usize, shared: &Arc<WarmShared>, prepare: Prepare) -> Arc<Self> {
        let pool = Arc::new(WarmPool {
            target,
            prepare,
            idle: Mutex::new(Vec::new()),
            retired: AtomicBool::new(false),
            shared: shared.clone(),
        });
        if target > 0 {
            let mut list = shared.pools.lock().unwrap_or_else(|e| e.into_inner());
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(&pool));
        }
        pool
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Prepared>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A prepared instance, if one is ready. It leaves the pool for good.
    pub fn take(&self) -> Option<Prepared> {
        let prepared = self.lock().pop();
        if prepared.is_some() {
            self.shared.idle_total.fetch_sub(1, Ordering::AcqRel);
            self.shared.hits.fetch_add(1, Ordering::Relaxed);
        } else if self.target > 0 {
            self.shared.misses.fetch_add(1, Ordering::Relaxed);
        }
        prepared
    }

    /// Whether the pool is below its target and may grow.
    pub fn wants_more(&self) -> bool {
        !self.retired.load(Ordering::Acquire)
            && self.lock().len() < self.target
            && self.shared.idle_total.load(Ordering::Acquire) < self.shared.cap
    }

    /// Makes instances until the pool is full (on the helper thread).
    fn fill(&self) {
        while self.wants_more() {
            let Some(prepared) = block_on((self.prepare)()) else {
                // Could not instantiate (pool exhausted, a failing
                // component): requests instantiate inline.
                return;
            };
            self.put(prepared);
        }
    }

    fn put(&self, prepared: Prepared) {
        let mut idle = self.lock();
        if self.retired.load(Ordering::Acquire) {
            return;
        }
        idle.push(prepared);
        self.shared.idle_total.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops the idle instances; returns how many.
    fn clear(&self) -> usize {
        let drained: Vec<Prepared> = std::mem::take(&mut *self.lock());
        self.shared
            .idle_total
            .fetch_sub(drained.len(), Ordering::AcqRel);
        drained.len()
    }

    /// The plugin version is gone: drop what is ready and make no more.
    pub fn retire(&self) {
        {
            let _idle = self.lock();
            self.retired.store(true, Ordering::Release);
        }
        self.clear();
    }
}

impl Drop for WarmPool {
    fn drop(&mut self) {
        self.clear();
    }
}
