//! What every server-sent-event stream of the kernel needs besides its
//! data: a bound on the streams one user holds open on this node, and the
//! node's shutdown, which ends them (an open stream would otherwise hold a
//! graceful shutdown forever).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Open streams of one kind, counted per user, and their shutdown.
pub struct StreamSlots {
    closing: watch::Sender<bool>,
    open: Mutex<HashMap<String, u32>>,
}

impl Default for StreamSlots {
    fn default() -> Self {
        StreamSlots {
            closing: watch::channel(false).0,
            open: Mutex::new(HashMap::new()),
        }
    }
}

impl StreamSlots {
    /// A slot for `user`; none when they hold `max` already or the node is
    /// shutting down. The slot frees itself when dropped.
    pub fn open(self: &Arc<Self>, user: &str, max: u32) -> Option<StreamSlot> {
        if *self.closing.borrow() {
            return None;
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(user.to_string()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            slots: self.clone(),
            user: user.to_string(),
        })
    }

    /// Open streams on this node, all users.
    pub fn open_streams(&self) -> u32 {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }

    /// The node is shutting down: every stream ends.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

/// One open stream of one user.
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    user: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_holds_at_most_max_and_a_dropped_slot_frees_one() {
        let slots = Arc::new(StreamSlots::default());
        let a = slots.open("u", 2).unwrap();
        let _b = slots.open("u", 2).unwrap();
        assert!(slots.open("u", 2).is_none());
        assert!(slots.open("v", 2).is_some(), "another user has their own");
        drop(a);
        assert_eq!(slots.open_streams(), 1);
        assert!(slots.open("u", 2).is_some());
        slots.close();
        assert!(slots.open("w", 2).is_none(), "none while shutting down");
    }
}
