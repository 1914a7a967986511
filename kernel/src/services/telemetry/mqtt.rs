//! MQTT ingestion: one client per node subscribed (QoS 1, as a shared
//! subscription so several nodes split the load) to
//! `<mqtt-topic>/<external-id>`. Messages are batched for up to
//! [`BATCH_WINDOW`] or [`BATCH_MESSAGES`], stored in one transaction, and
//! acknowledged only after the commit: a reading the broker saw acked is
//! stored, and one the kernel died holding is redelivered.
//!
//! Payloads are JSON, times in milliseconds since the UNIX epoch:
//! - one reading: `{"channel": "kwh", "at": 1764547200000, "value": 1520.5}`;
//! - several channels at one time: `{"at": …, "values": {"kwh": 1520.5, "power_kw": 3.2}}`;
//! - a batch: `{"readings": [{"channel", "at", "value", "device"?}, …]}`,
//!   where `device` (an external id) lets a gateway speak for several.

use std::sync::Arc;
use std::time::Duration;

// MQTT 5: its Receive Maximum lets the kernel take up to
// `RECEIVE_MAXIMUM` unacknowledged messages, where an MQTT 3.1.1 client
// gets the broker's own limit (Mosquitto's default is 20).
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{Incoming, Protocol, Quality, Rejection, Telemetry};

/// The longest the first message of a batch waits for company.
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// How long a batch waits for one more message before it is stored.
const BATCH_GAP: Duration = Duration::from_millis(3);
/// Unacknowledged messages the broker may send this node.
const RECEIVE_MAXIMUM: u16 = 1_000;
/// Messages that close a batch early.
pub const BATCH_MESSAGES: usize = 2_000;
/// Largest payload taken; larger ones are refused as malformed.
const MAX_PAYLOAD: usize = 1 << 20;

/// Where the broker is: host, port, and a user name and password if any.
pub type Broker = (String, u16, Option<(String, String)>);

/// `mqtt://[user:password@]host[:port]`.
pub fn parse_url(url: &str) -> Result<Broker, String> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| format!("{url}: an MQTT URL starts with mqtt://"))?;
    let rest = rest.trim_end_matches('/');
    let (credentials, host_port) = match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            (Some((user.to_string(), password.to_string())), host)
        }
        None => (None, rest),
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("{url}: the port is not a number"))?,
        ),
        None => (host_port, 1883),
    };
    if host.is_empty() {
        return Err(format!("{url}: no host"));
    }
    Ok((host.to_string(), port, credentials))
}

/// One reading as a payload names it, before its device is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    pub device: String,
    pub channel: String,
    pub at: i64,
    pub value: f64,
}

/// The readings of one payload sent by `device` (the topic's last
/// segment), or why it is malformed.
pub fn parse_payload(device: &str, payload: &[u8]) -> Result<Vec<Raw>, String> {
    if payload.len() > MAX_PAYLOAD {
        return Err(format!(
            "payload of {} bytes; at most {MAX_PAYLOAD}",
            payload.len()
        ));
    }
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let at_of = |v: &Value| -> Result<i64, String> {
        v.get("at")
            .and_then(Value::as_i64)
            .ok_or_else(|| "`at` (milliseconds since the epoch) is required".to_string())
    };
    let one = |v: &Value, device: &str| -> Result<Raw, String> {
        Ok(Raw {
            device: v
                .get("device")
                .and_then(Value::as_str)
                .unwrap_or(device)
                .to_string(),
            channel: v
                .get("channel")
                .and_then(Value::as_str)
                .ok_or("`channel` is required")?
                .to_string(),
            at: at_of(v)?,
            value: v
                .get("value")
                .and_then(Value::as_f64)
                .ok_or("`value` must be a number")?,
        })
    };
    if let Some(list) = v.get("readings") {
        let list = list.as_array().ok_or("`readings` must be a list")?;
        if list.len() > super::MAX_READINGS_PER_BATCH {
            return Err(format!(
                "{} readings; at most {}",
                list.len(),
                super::MAX_READINGS_PER_BATCH
            ));
        }
        return list.iter().map(|r| one(r, device)).collect();
    }
    if let Some(values) = v.get("values") {
        let values = values.as_object().ok_or("`values` must be an object")?;
        let at = at_of(&v)?;
        return values
            .iter()
            .map(|(channel, value)| {
                Ok(Raw {
                    device: device.to_string(),
                    channel: channel.clone(),
                    at,
                    value: value
                        .as_f64()
                        .ok_or_else(|| format!("`values.{channel}` must be a number"))?,
                })
            })
            .collect();
    }
    Ok(vec![one(&v, device)?])
}

/// Resolves payloads to devices: the readings of known ones, and
/// rejections for the rest.
pub async fn resolve(
    telemetry: &Telemetry,
    protocol: Protocol,
    source: &str,
    payloads: Vec<(String, Result<Vec<Raw>, String>)>,
) -> (Vec<Incoming>, Vec<Rejection>) {
    let mut readings = Vec::new();
    let mut rejections = Vec::new();
    for (device, parsed) in payloads {
        let raws = match parsed {
            Ok(raws) => raws,
            Err(why) => {
                rejections.push(Rejection {
                    source: source.to_string(),
                    plugin: None,
                    device: Some(device),
                    reason: "malformed",
                    detail: why,
                });
                continue;
            }
        };
        for raw in raws {
            match telemetry.by_external(protocol, &raw.device).await {
                Ok(Some(d)) => readings.push(Incoming {
                    device: d,
                    channel: raw.channel,
                    at: raw.at,
                    value: raw.value,
                    quality: Quality::Good,
                }),
                Ok(None) => rejections.push(Rejection {
                    source: source.to_string(),
                    plugin: None,
                    device: Some(raw.device),
                    reason: "unknown_device",
                    detail: format!("{} = {} at {}", raw.channel, raw.value, raw.at),
                }),
                Err(e) => rejections.push(Rejection {
                    source: source.to_string(),
                    plugin: None,
                    device: Some(raw.device),
                    reason: "lookup_failed",
                    detail: e.to_string(),
                }),
            }
        }
    }
    (readings, rejections)
}

/// Runs the MQTT client until the process ends: reconnects with backoff,
/// resubscribes on every connection.
pub async fn run(
    telemetry: Arc<Telemetry>,
    url: String,
    topic: String,
    group: String,
    client_id: String,
) {
    let (host, port, credentials) = match parse_url(&url) {
        Ok(parts) => parts,
        Err(e) => {
            tracing::error!(error = %e, "telemetry MQTT disabled");
            return;
        }
    };
    let mut options = MqttOptions::new(client_id, host, port);
    options
        .set_keep_alive(Duration::from_secs(30))
        // The broker keeps the session for a week, so messages sent while
        // this node was away wait for it.
        .set_clean_start(false)
        .set_session_expiry_interval(Some(7 * 24 * 3600))
        .set_receive_maximum(Some(RECEIVE_MAXIMUM))
        .set_manual_acks(true)
        .set_max_packet_size(Some(MAX_PAYLOAD as u32 + 1024));
    if let Some((user, password)) = credentials {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 10_000);
    let filter = if group.is_empty() {
        format!("{topic}/+")
    } else {
        format!("$share/{group}/{topic}/+")
    };
    let (to_batcher, from_poller) = mpsc::channel::<Publish>(BATCH_MESSAGES * 4);
    tokio::spawn(batch(telemetry, client.clone(), topic.clone(), from_poller));
    let mut backoff = Duration::from_millis(200);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(200);
                tracing::info!(%filter, "telemetry MQTT connected");
                if let Err(e) = client.subscribe(filter.clone(), QoS::AtLeastOnce).await {
                    tracing::warn!(error = %e, "telemetry MQTT subscribe failed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if to_batcher.send(p).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, retry_ms = backoff.as_millis() as u64, "telemetry MQTT connection lost");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// A batch of publishes, parsed and resolved to devices, waiting to be
/// stored.
struct Prepared {
    messages: Vec<Publish>,
    found: Vec<Incoming>,
    rejected: Vec<Rejection>,
}

/// Collects publishes into batches and parses them, while the batch before
/// is being stored: parsing overlaps the previous commit instead of
/// waiting for it. One batch is stored at a time, in order.
async fn batch(
    telemetry: Arc<Telemetry>,
    client: AsyncClient,
    topic: String,
    mut incoming: mpsc::Receiver<Publish>,
) {
    let (to_store, ready) = mpsc::channel::<Prepared>(1);
    let storer = tokio::spawn(store(telemetry.clone(), client, ready));
    let prefix = format!("{topic}/");
    while let Some(first) = incoming.recv().await {
        let mut messages = vec![first];
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
        // The broker holds back what it sent and we have not acked (its
        // in-flight limit), so waiting for a full batch would only stall:
        // take what is there, pause briefly for stragglers, then store.
        while messages.len() < BATCH_MESSAGES {
            match incoming.try_recv() {
                Ok(p) => {
                    messages.push(p);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            let pause = (tokio::time::Instant::now() + BATCH_GAP).min(deadline);
            match tokio::time::timeout_at(pause, incoming.recv()).await {
                Ok(Some(p)) => messages.push(p),
                Ok(None) | Err(_) => break,
            }
        }
        let payloads: Vec<(String, Result<Vec<Raw>, String>)> = messages
            .iter()
            .map(|p| {
                let topic = String::from_utf8_lossy(&p.topic);
                let device = topic.strip_prefix(&prefix).unwrap_or(&topic).to_string();
                let parsed = parse_payload(&device, &p.payload);
                (device, parsed)
            })
            .collect();
        let (found, rejected) = resolve(&telemetry, Protocol::Mqtt, "mqtt", payloads).await;
        let prepared = Prepared {
            messages,
            found,
            rejected,
        };
        if to_store.send(prepared).await.is_err() {
            break;
        }
    }
    drop(to_store);
    let _ = storer.await;
}

/// Stores each prepared batch, then acks its messages.
async fn store(
    telemetry: Arc<Telemetry>,
    client: AsyncClient,
    mut ready: mpsc::Receiver<Prepared>,
) {
    while let Some(Prepared {
        messages,
        found,
        rejected,
    }) = ready.recv().await
    {
        // Until the batch is stored nothing is acked; retry rather than
        // drop, so a database outage delays readings instead of losing them.
        let mut wait = Duration::from_millis(100);
        loop {
            match telemetry
                .ingest("mqtt", found.clone(), rejected.clone())
                .await
            {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, messages = messages.len(), "telemetry batch not stored; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
        for p in &messages {
            if let Err(e) = client.ack(p).await {
                tracing::warn!(error = %e, "telemetry MQTT ack failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".into(), 1883, None)
        );
        assert_eq!(
            parse_url("mqtt://u:p@broker").unwrap(),
            ("broker".into(), 1883, Some(("u".into(), "p".into())))
        );
        assert!(parse_url("http://x").is_err());
        assert!(parse_url("mqtt://x:port").is_err());
    }

    #[test]
    fn payload_shapes() {
        let one = parse_payload("m1", br#"{"channel":"kwh","at":5,"value":1.5}"#).unwrap();
        assert_eq!(
            one,
            [Raw {
                device: "m1".into(),
                channel: "kwh".into(),
                at: 5,
                value: 1.5
            }]
        );
        let many = parse_payload("m1", br#"{"at":5,"values":{"kwh":1,"kw":2}}"#).unwrap();
        assert_eq!(many.len(), 2);
        let batch = parse_payload(
            "gw",
            br#"{"readings":[{"device":"m2","channel":"kwh","at":5,"value":1},{"channel":"kwh","at":6,"value":2}]}"#,
        )
        .unwrap();
        assert_eq!(batch[0].device, "m2");
        assert_eq!(batch[1].device, "gw");
        assert!(parse_payload("m1", b"{").is_err());
        assert!(
            parse_payload("m1", br#"{"channel":"kwh","value":1}"#)
                .unwrap_err()
                .contains("at")
        );
        assert!(parse_payload("m1", br#"{"channel":"kwh","at":1,"value":"x"}"#).is_err());
    }
}
