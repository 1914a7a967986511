//! Per-store and kernel-wide resource limits.
//!
//! Memory growth past the plugin's cap, or past the kernel's budget for all
//! plugin memory together, is refused (the guest sees allocation failure)
//! and remembered, so the failure that follows is reported as
//! `plugin_memory_exceeded` or `memory_budget_exhausted`, not as a generic
//! trap. Also here: the heavy-call turns that keep long runners to a share
//! of the cores, and the per-plugin log rate limit.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;

/// Tables hold function references; a plugin has no business with more.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Linear memory all live plugin instances hold together, against a limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// `mib` from the configuration; 0 is half the machine's memory.
    pub fn configured(mib: u64) -> Arc<Self> {
        let bytes = if mib > 0 {
            (mib as usize) << 20
        } else {
            physical_memory().map_or(4 << 30, |total| total / 2)
        };
        Self::new(bytes)
    }

    fn try_reserve(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Whether a new instance should be refused: less than `headroom`
    /// bytes are left.
    pub fn exhausted(&self, headroom: usize) -> bool {
        self.used.load(Ordering::Acquire).saturating_add(headroom) > self.limit
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// MemTotal from /proc/meminfo, in bytes.
fn physical_memory() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib << 10)
}

pub struct MemoryLimiter {
    memory_bytes: usize,
    exceeded: bool,
    budget: Arc<MemoryBudget>,
    /// What this store took from the budget; given back on drop.
    reserved: usize,
    over_budget: bool,
}

impl MemoryLimiter {
    pub fn new(memory_bytes: usize, budget: Arc<MemoryBudget>) -> Self {
        MemoryLimiter {
            memory_bytes,
            exceeded: false,
            budget,
            reserved: 0,
            over_budget: false,
        }
    }

    /// Whether the plugin asked for more memory than its cap in this store.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// Whether growth was refused because all plugins together reached
    /// the kernel's budget.
    pub fn over_budget(&self) -> bool {
        self.over_budget
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.budget.release(self.reserved);
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        let more = desired.saturating_sub(current);
        if !self.budget.try_reserve(more) {
            self.over_budget = true;
            return Ok(false);
        }
        self.reserved += more;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// While short calls are about, a slot rests this many times as long as
/// the heavy turn before took: heavy calls then get a third of a slot, and
/// the whole slot when no short call ran during the turn.
const HEAVY_REST: u32 = 2;

/// Turns for heavy calls: a call that has run past `after` runs one epoch
/// tick at a time, and only while it holds one of the slots, so however
/// many long runners there are, they share those slots and leave the other
/// cores to short requests. A busy slot is still a whole core (half of a
/// two-core machine), so while short calls keep ending, each turn is
/// followed by a rest.
pub struct CpuShare {
    slots: Arc<tokio::sync::Semaphore>,
    after: Duration,
    /// Calls that ended before they turned heavy, since start.
    light_done: Arc<AtomicU64>,
}

/// A heavy call's current turn (a slot permit between two epoch ticks).
pub type Turn = Arc<Mutex<Option<Held>>>;

/// A slot permit, with when it was taken and how many short calls had
/// ended by then.
pub struct Held {
    permit: tokio::sync::OwnedSemaphorePermit,
    at: Instant,
    light_done: u64,
}

impl CpuShare {
    /// `slots` 0 is half the cores, at least one.
    pub fn new(slots: u32, after: Duration) -> Arc<Self> {
        let slots = match slots {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get() / 2),
            n => n as usize,
        }
        .max(1);
        Arc::new(CpuShare {
            slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            after,
            light_done: Arc::default(),
        })
    }

    pub fn heavy_after(&self) -> Duration {
        self.after
    }

    /// A call ended before it turned heavy.
    pub fn note_light(&self) {
        self.light_done.fetch_add(1, Ordering::Relaxed);
    }

    /// Gives `turn` back and waits for the next one (FIFO among heavy
    /// calls, so they take turns), but not past the call's `deadline`: the
    /// next tick then stops it on time. If short calls ended during the
    /// turn, the slot first rests [`HEAVY_REST`] times as long as the turn
    /// took, so they keep most of the cores.
    pub fn next_turn(
        &self,
        turn: &Turn,
        deadline: Instant,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let held = turn.lock().unwrap_or_else(|e| e.into_inner()).take();
        let light_done = self.light_done.clone();
        let resting = held.and_then(|held| {
            let short_calls_ran = light_done.load(Ordering::Relaxed) != held.light_done;
            short_calls_ran.then(|| (held.permit, held.at.elapsed() * HEAVY_REST))
        });
        let slots = self.slots.clone();
        let turn = turn.clone();
        Box::pin(async move {
            if let Some((permit, rest)) = resting {
                let until = (Instant::now() + rest).min(deadline);
                tokio::time::sleep_until(until.into()).await;
                drop(permit);
            }
            let next = tokio::time::timeout_at(deadline.into(), slots.acquire_owned());
            if let Ok(Ok(permit)) = next.await {
                *turn.lock().unwrap_or_else(|e| e.into_inner()) = Some(Held {
                    permit,
                    at: Instant::now(),
                    light_done: light_done.load(Ordering::Relaxed),
                });
            }
        })
    }
}

/// A token bucket of log lines for one plugin version: `rate` per second,
/// bursts up to `burst`; what is refused is counted and reported in one
/// summary line when lines are admitted again.
pub struct LogLimiter {
    rate: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
    /// The plugin's series of dropped lines on `/metrics`.
    dropped_total: prometheus_client::metrics::counter::Counter,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    dropped: u64,
}

impl LogLimiter {
    pub fn new(
        rate: u32,
        burst: u32,
        dropped_total: prometheus_client::metrics::counter::Counter,
    ) -> Arc<Self> {
        let burst = f64::from(burst.max(1));
        Arc::new(LogLimiter {
            rate: f64::from(rate),
            burst,
            dropped_total,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
                dropped: 0,
            }),
        })
    }

    /// `Some(dropped)` when one more line may be written, with the number
    /// of lines refused since the last one admitted; `None` to drop it.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Some(std::mem::take(&mut b.dropped))
        } else {
            b.dropped += 1;
            None
        }
    }
}

/// Writes `line` (already formatted) through `write` if the plugin's log
/// rate allows, first reporting how many lines were dropped before it.
pub fn rate_limited(limiter: &LogLimiter, plugin: &str, write: impl FnOnce()) {
    match limiter.admit() {
        Some(0) => write(),
        Some(dropped) => {
            tracing::warn!(target: "plugin", %plugin, dropped,
                "plugin log lines dropped: over the log rate limit");
            write();
        }
        None => {
            limiter.dropped_total.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_cap_is_refused_and_remembered() {
        let mut limiter = MemoryLimiter::new(64 << 20, MemoryBudget::new(1 << 30));
        assert!(limiter.memory_growing(0, 32 << 20, None).unwrap());
        assert!(!limiter.exceeded());
        assert!(
            !limiter
                .memory_growing(32 << 20, (64 << 20) + 65536, None)
                .unwrap()
        );
        assert!(limiter.exceeded());
        assert!(!limiter.over_budget());
    }

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let budget = MemoryBudget::new(48 << 20);
        let mut a = MemoryLimiter::new(64 << 20, budget.clone());
        let mut b = MemoryLimiter::new(64 << 20, budget.clone());
        assert!(a.memory_growing(0, 32 << 20, None).unwrap());
        assert!(!b.memory_growing(0, 32 << 20, None).unwrap());
        assert!(b.over_budget() && !b.exceeded());
        assert!(budget.exhausted(32 << 20));
        drop(a);
        assert_eq!(budget.used(), 0);
        assert!(b.memory_growing(0, 32 << 20, None).unwrap());
    }

    /// Issue 10 item 6: one heavy slot was one core of two for the
    /// loopers. While short calls end during a turn, the slot now rests
    /// twice the turn before the next heavy call gets it; with none, the
    /// next gets it at once.
    #[tokio::test]
    async fn a_heavy_turn_rests_while_short_calls_run() {
        let share = CpuShare::new(1, Duration::from_millis(20));
        let deadline = Instant::now() + Duration::from_secs(30);
        let (a, b) = (Turn::default(), Turn::default());
        // `b` waits for the slot `a` holds; `a` ends its turn after `ran`.
        let handover = async |ran: Duration, light: bool| {
            share.next_turn(&a, deadline).await;
            assert!(a.lock().unwrap().is_some());
            let waiting = tokio::spawn(share.next_turn(&b, deadline));
            tokio::time::sleep(ran).await;
            if light {
                share.note_light();
            }
            let released = Instant::now();
            let a_again = tokio::spawn(share.next_turn(&a, deadline));
            waiting.await.unwrap();
            let waited = released.elapsed();
            // Both give their turns back for the next round.
            drop(b.lock().unwrap().take());
            a_again.await.unwrap();
            drop(a.lock().unwrap().take());
            waited
        };
        let ran = Duration::from_millis(60);
        let waited = handover(ran, true).await;
        assert!(waited >= ran * 2 - Duration::from_millis(5), "{waited:?}");
        let waited = handover(ran, false).await;
        assert!(waited < ran, "no short calls, yet {waited:?}");
    }

    #[test]
    fn the_log_limiter_drops_past_its_rate_and_reports_the_count() {
        let limiter = LogLimiter::new(10, 5, Default::default());
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.admit_at(start), Some(0));
        }
        for _ in 0..100 {
            assert_eq!(limiter.admit_at(start), None);
        }
        // A tenth of a second later one token is back: the next line goes
        // out with the count of those dropped.
        let later = start + Duration::from_millis(100);
        assert_eq!(limiter.admit_at(later), Some(100));
        assert_eq!(limiter.admit_at(later), None);
    }
}
