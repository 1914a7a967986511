//! Events between nodes through NATS JetStream, when `nats-url` is set and
//! `events.jetstream` is on (the default).
//!
//! The database stays the source of truth: an event and its deliveries
//! commit with the plugin's records and audit, in one transaction, with
//! `streamed = 0`. Then:
//!
//! 1. the relay (every node; woken by the commit, else each second)
//!    publishes unstreamed events to the stream `STREAM` on subject
//!    `STREAM.<topic>`, with `Nats-Msg-Id` = the event id so JetStream drops
//!    a second copy within its duplicate window, waits for the stream's
//!    acknowledgement and marks the event streamed;
//! 2. every node pulls from one shared durable consumer, `STREAM_dispatch`,
//!    so JetStream hands each event to one node, which claims and delivers
//!    that event's deliveries (`Messaging::dispatch_event`) and acknowledges
//!    the message only once each delivery is settled (done, retry scheduled,
//!    or dead);
//! 3. retries, deliveries held back behind an earlier one with the same key,
//!    and everything while NATS is down are the database poller's, as
//!    without NATS. The lease claim makes a delivery happen once whichever
//!    path gets there, so a redelivered message (a node died before its
//!    ack) finds the work done or leased and is simply acknowledged.
//!
//! The message carries the event's reference (seq, id, topic, source, key),
//! not its payload: the payload stays in the database, under its access
//! rules, and NATS never holds plugin data.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull, message::PublishMessage};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::core::config::EventsConfig;
use crate::metrics::StreamStats;
use crate::services::messaging::{EventSink, Messaging, Outgoing, Publisher};
use prometheus_client::metrics::counter::Counter;

/// How often the relay looks for events another node left unpublished
/// (one that died between commit and publish).
const RELAY_INTERVAL: Duration = Duration::from_secs(1);
/// Waits between attempts to set the stream up, and after consumer errors.
const SETUP_RETRY: Duration = Duration::from_secs(5);
/// A message not acknowledged this long is handed to a node again; longer
/// than a delivery's lease so the claim, not JetStream, decides.
const ACK_WAIT: Duration = Duration::from_secs(150);

/// What a stream message says: which event to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub seq: i64,
    pub id: String,
    pub topic: String,
    pub source: String,
    #[serde(default)]
    pub key: Option<String>,
}

pub fn subject(stream: &str, topic: &str) -> String {
    format!("{stream}.{topic}")
}

pub fn consumer_name(stream: &str) -> String {
    format!("{stream}_dispatch")
}

fn stream_config(config: &EventsConfig) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: config.stream.clone(),
        subjects: vec![format!("{}.>", config.stream)],
        max_age: Duration::from_secs(config.stream_max_age_secs),
        storage: jetstream::stream::StorageType::File,
        num_replicas: config.stream_replicas,
        description: Some("Tianshan events (references; the database holds them)".into()),
        ..Default::default()
    }
}

/// Runs the relay and the consumer of this node until the process ends.
/// While the stream cannot be set up (NATS down, JetStream disabled on the
/// server) it retries, and events go by database polling meanwhile.
pub async fn run(
    client: async_nats::Client,
    config: EventsConfig,
    messaging: Arc<Messaging>,
    sink: Arc<dyn EventSink>,
    stats: StreamStats,
) {
    let context = jetstream::new(client);
    let mut warned = false;
    let stream = loop {
        match context
            .create_or_update_stream(stream_config(&config))
            .await
        {
            Ok(_) => match context.get_stream(&config.stream).await {
                Ok(stream) => break stream,
                Err(e) => {
                    if !warned {
                        tracing::warn!(error = %e, stream = %config.stream,
                            "JetStream stream unavailable; events go by database polling");
                    }
                }
            },
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, stream = %config.stream,
                        "JetStream unavailable; events go by database polling until it is");
                }
            }
        }
        warned = true;
        tokio::time::sleep(SETUP_RETRY).await;
    };
    tracing::info!(stream = %config.stream, "events are carried between nodes by JetStream");
    tokio::spawn(relay(
        Stream {
            context,
            name: config.stream.clone(),
        },
        messaging.clone(),
        stats.published.clone(),
    ));
    consume(stream, &config, &messaging, sink.as_ref(), &stats).await;
}

/// Publishes what the outbox holds, oldest first.
async fn relay(stream: Stream, messaging: Arc<Messaging>, published: Counter) {
    loop {
        let _ = tokio::time::timeout(RELAY_INTERVAL, messaging.outbox.notified()).await;
        loop {
            let outcome = messaging.relay(&stream).await;
            match outcome {
                Ok(round) => {
                    published.inc_by(round.published as u64);
                    if round.failed {
                        // The poller takes over at once until the stream
                        // works again.
                        messaging.set_stream_up(false);
                    }
                    if !round.more {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "event relay failed; retrying");
                    break;
                }
            }
        }
    }
}

/// The stream as the relay's destination.
struct Stream {
    context: jetstream::Context,
    name: String,
}

impl Publisher for Stream {
    fn publish<'a>(&'a self, event: &'a Outgoing) -> futures_util::future::BoxFuture<'a, bool> {
        Box::pin(publish(&self.context, &self.name, event))
    }
}

/// Publishes one event and waits for the stream's acknowledgement.
async fn publish(context: &jetstream::Context, stream: &str, event: &Outgoing) -> bool {
    let envelope = Envelope {
        seq: event.seq,
        id: event.id.clone(),
        topic: event.topic.clone(),
        source: event.source.clone(),
        key: event.key.clone(),
    };
    let payload = serde_json::to_vec(&envelope).expect("an envelope serialises");
    let message = PublishMessage::build()
        .payload(payload.into())
        .message_id(&event.id);
    let acked = match context
        .send_publish(subject(stream, &event.topic), message)
        .await
    {
        Ok(ack) => ack.await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match acked {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(%error, event = %event.id, "publishing an event to JetStream failed");
            false
        }
    }
}

async fn consume(
    stream: jetstream::stream::Stream,
    config: &EventsConfig,
    messaging: &Messaging,
    sink: &dyn EventSink,
    stats: &StreamStats,
) {
    let name = consumer_name(&config.stream);
    let set_live = |up: bool| {
        messaging.set_stream_up(up);
        stats.live.set(up as i64);
    };
    loop {
        let consumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    description: Some("Tianshan nodes: each event to one node".into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    // Earlier events are the poller's; a consumer created
                    // again must not replay the stream's whole history.
                    deliver_policy: jetstream::consumer::DeliverPolicy::New,
                    max_ack_pending: 256,
                    ..Default::default()
                },
            )
            .await;
        let messages = match consumer {
            Ok(consumer) => consumer.messages().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(error) => {
                tracing::warn!(%error, consumer = %name, "JetStream consumer unavailable; retrying");
                set_live(false);
                tokio::time::sleep(SETUP_RETRY).await;
                continue;
            }
        };
        set_live(true);
        while let Some(item) = messages.next().await {
            let message = match item {
                Ok(m) => m,
                Err(error) => {
                    // Missed heartbeats (NATS away), a deleted consumer…:
                    // start over with a fresh consumer after a pause.
                    tracing::warn!(%error, "JetStream consumer interrupted; polling meanwhile");
                    break;
                }
            };
            stats.received.inc();
            let envelope: Envelope = match serde_json::from_slice(&message.payload) {
                Ok(e) => e,
                Err(error) => {
                    tracing::warn!(%error, subject = %message.subject, "not a Tianshan event; dropped");
                    let _ = message.ack_with(AckKind::Term).await;
                    continue;
                }
            };
            let ack = match messaging.dispatch_event(&envelope.id, sink).await {
                Ok(_) => AckKind::Ack,
                Err(error) => {
                    // The database is out of reach: ask again shortly.
                    tracing::error!(%error, event = %envelope.id, "delivering a streamed event failed");
                    AckKind::Nak(Some(Duration::from_secs(1)))
                }
            };
            if let Err(error) = message.ack_with(ack).await {
                tracing::warn!(%error, event = %envelope.id, "acknowledging a streamed event failed");
            }
        }
        set_live(false);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_the_stream_follow_the_configured_name() {
        let config = EventsConfig {
            stream: "TS_PROD".into(),
            stream_max_age_secs: 3600,
            ..Default::default()
        };
        assert_eq!(subject("TS_PROD", "notes.created"), "TS_PROD.notes.created");
        assert_eq!(consumer_name("TS_PROD"), "TS_PROD_dispatch");
        let stream = stream_config(&config);
        assert_eq!(stream.subjects, vec!["TS_PROD.>".to_string()]);
        assert_eq!(stream.max_age, Duration::from_secs(3600));
        // Every valid topic is a valid subject below the stream's wildcard.
        assert!(crate::services::messaging::valid_topic("kernel.job.tick"));
        let envelope = Envelope {
            seq: 7,
            id: "01EVENT".into(),
            topic: "notes.created".into(),
            source: "notes".into(),
            key: None,
        };
        let text = serde_json::to_string(&envelope).unwrap();
        assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), envelope);
        assert!(!text.contains("payload"));
    }
}
