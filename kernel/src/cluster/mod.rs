//! Signals between nodes over NATS, when `nats-url` is configured.
//!
//! The database stays the source of truth: events, deliveries, job claims
//! and cluster generations are rows, and every node also polls them. NATS
//! only rings the doorbell, so other nodes act at once instead of at their
//! next poll: a node that published an event wakes every dispatcher, and a
//! node that changed plugins or access makes every node re-read its
//! generations. If NATS is down, nothing is lost; nodes fall back to
//! polling (events within 250 ms, cluster changes within a second).

use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::Notify;

/// Subjects the kernel uses; each node ignores its own signals.
pub const EVENTS: &str = "tianshan.signal.events";
pub const CLUSTER: &str = "tianshan.signal.cluster";

pub struct Bus {
    client: Option<async_nats::Client>,
    node: String,
    /// Woken by local changes and by signals from other nodes.
    pub events: Arc<Notify>,
    pub cluster: Arc<Notify>,
}

impl Bus {
    /// A bus that only signals within this node (no NATS configured).
    pub fn local(node: &str) -> Bus {
        Bus {
            client: None,
            node: node.to_string(),
            events: Arc::new(Notify::new()),
            cluster: Arc::new(Notify::new()),
        }
    }

    /// Connects to NATS. The client reconnects by itself after outages; a
    /// server that is down at start is retried in the background.
    pub async fn connect(url: &str, node: &str) -> anyhow::Result<Bus> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("tianshan {node}"))
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("NATS at {url}: {e}"))?;
        tracing::info!(url, "connected to NATS for cross-node signals");
        Ok(Bus {
            client: Some(client),
            ..Bus::local(node)
        })
    }

    pub fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    /// The NATS client, when `nats-url` is configured.
    pub fn client(&self) -> Option<&async_nats::Client> {
        self.client.as_ref()
    }

    /// Connected to NATS right now (it may be configured but down).
    pub fn is_up(&self) -> bool {
        self.client
            .as_ref()
            .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected)
    }

    /// Wakes this node's waiters on `subject` and tells the other nodes.
    pub fn signal(&self, subject: &'static str) {
        match subject {
            EVENTS => self.events.notify_one(),
            _ => self.cluster.notify_one(),
        }
        if let Some(client) = &self.client {
            let client = client.clone();
            let payload = self.node.clone().into_bytes();
            tokio::spawn(async move {
                if let Err(e) = client.publish(subject, payload.into()).await {
                    tracing::warn!(error = %e, subject, "could not signal other nodes");
                }
            });
        }
    }

    /// Forwards other nodes' signals to this node's waiters until the
    /// process ends; counts them in `received`.
    pub async fn listen(self: Arc<Self>, received: prometheus_client::metrics::counter::Counter) {
        let Some(client) = &self.client else { return };
        let mut subscriptions = Vec::new();
        for subject in [EVENTS, CLUSTER] {
            match client.subscribe(subject).await {
                Ok(s) => subscriptions.push(s.map(move |m| (subject, m))),
                Err(e) => {
                    tracing::error!(error = %e, subject, "NATS subscribe failed; polling only");
                    return;
                }
            }
        }
        let mut merged = futures_util::stream::select_all(subscriptions);
        while let Some((subject, message)) = merged.next().await {
            if message.payload.as_ref() == self.node.as_bytes() {
                continue;
            }
            received.inc();
            match subject {
                EVENTS => self.events.notify_one(),
                _ => self.cluster.notify_one(),
            }
        }
    }
}
