//! Publishing events to other plugins (contract 1.2.0).
//!
//! Topics start with the plugin's id and a dot (`assets.registered`).
//! Subscribers list topics in their `plugin.toml` (`subscribes = [...]`),
//! an administrator grants them, and they receive each event at least once
//! through [`crate::Plugin::on_event`], in order per key.

use serde::Serialize;

use crate::bindings::tianshan::plugin::messaging as wit;
use crate::{Error, Result};

/// An event to publish.
#[derive(Debug, Clone)]
pub struct Event {
    message: wit::Message,
}

impl Event {
    /// An event with a JSON payload.
    pub fn json(topic: &str, payload: &impl Serialize) -> Result<Event> {
        let payload = serde_json::to_vec(payload)
            .map_err(|e| Error::internal(format!("cannot encode event: {e}")))?;
        Ok(Event {
            message: wit::Message {
                topic: topic.to_string(),
                key: None,
                org: None,
                payload,
                idempotency_key: None,
            },
        })
    }

    /// Events with the same key reach each subscriber in publish order
    /// (e.g. the record id).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.message.key = Some(key.into());
        self
    }

    /// The org the event concerns (default: the org the request acts in).
    pub fn org(mut self, org: impl Into<String>) -> Self {
        self.message.org = Some(org.into());
        self
    }

    /// Publishing again with the same key publishes nothing new.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.message.idempotency_key = Some(key.into());
        self
    }

    /// Publishes; returns the event id.
    pub fn publish(self) -> Result<String> {
        wit::publish(&self.message).map_err(|m| Error::new(500, "publish_failed", m))
    }
}
