//! Per-store resource limits. Memory growth past the plugin's cap is refused
//! (the guest sees allocation failure) and remembered, so the failure that
//! follows is reported as `plugin_memory_exceeded`, not as a generic trap.

use wasmtime::ResourceLimiter;

/// Tables hold function references; a plugin has no business with more.
const MAX_TABLE_ELEMENTS: usize = 100_000;

pub struct MemoryLimiter {
    memory_bytes: usize,
    exceeded: bool,
}

impl MemoryLimiter {
    pub fn new(memory_bytes: usize) -> Self {
        MemoryLimiter {
            memory_bytes,
            exceeded: false,
        }
    }

    /// Whether the plugin asked for more memory than its cap in this store.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.exceeded = true;
            return Ok(false);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_cap_is_refused_and_remembered() {
        let mut limiter = MemoryLimiter::new(64 << 20);
        assert!(limiter.memory_growing(0, 32 << 20, None).unwrap());
        assert!(!limiter.exceeded());
        assert!(
            !limiter
                .memory_growing(32 << 20, (64 << 20) + 65536, None)
                .unwrap()
        );
        assert!(limiter.exceeded());
    }
}
