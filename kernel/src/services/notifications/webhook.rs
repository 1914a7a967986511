//! The outside channel: new notifications POSTed as JSON to the URL an
//! operator configures (`[notifications] webhook-url`) — an SMS gateway,
//! the government app, a mail relay — and the retention sweep.
//!
//! A batch is claimed with a lease (`webhook_due` moved a minute ahead) so
//! that of several nodes one sends it, and a node that dies mid-send hands
//! it to the next after the lease. A failed POST is retried with backoff,
//! [`MAX_ATTEMPTS`] times in all; the receiver sees a notification at
//! least once and tells repeats apart by its `id`.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::Row;

use super::{Kind, Notifications};
use crate::core::config::NotificationsConfig;
use crate::db::now;

/// Notifications one POST carries at most.
pub const BATCH: i64 = 50;
/// Tries before a notification is given up (logged).
pub const MAX_ATTEMPTS: i64 = 10;
/// How long a claimed batch is this node's to send.
const LEASE_SECS: i64 = 60;
/// How often the loop looks for due notifications when nothing woke it.
const POLL: Duration = Duration::from_secs(5);
/// How often old notifications are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
pub const ENV_SECRET: &str = "TIANSHAN_NOTIFICATIONS_WEBHOOK_SECRET";

/// Seconds before the next try after `attempts` failed ones.
pub fn backoff_secs(attempts: i64) -> i64 {
    (10_i64 << attempts.clamp(0, 9)).min(3600)
}

/// `sha256=<hex>` of `body` under `secret`: what a receiver recomputes to
/// know the POST came from this platform.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Runs until the process ends: sweeps old notifications each hour and,
/// with a webhook configured, sends what is due.
pub async fn run(notes: Arc<Notifications>, config: NotificationsConfig) {
    let secret = std::env::var(ENV_SECRET)
        .ok()
        .filter(|s| !s.is_empty())
        .or(config.webhook_secret.clone());
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(
                config.webhook_timeout_secs.max(1),
            )))
            .build(),
    );
    let mut last_sweep: Option<std::time::Instant> = None;
    loop {
        if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
            match notes.sweep(config.retention_days).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "old notifications swept"),
                Err(e) => tracing::warn!(error = %e, "notification sweep failed"),
            }
            last_sweep = Some(std::time::Instant::now());
        }
        if let Some(url) = &config.webhook_url {
            // A full batch is followed at once by the next.
            loop {
                match deliver_due(&notes, &agent, url, secret.as_deref()).await {
                    Ok(n) if n == BATCH as usize => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "notification webhook round failed");
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = notes.webhook_due.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Claims one batch of due notifications and POSTs it; answers how many
/// it claimed.
pub async fn deliver_due(
    notes: &Notifications,
    agent: &ureq::Agent,
    url: &str,
    secret: Option<&str>,
) -> anyhow::Result<usize> {
    let t = now();
    let due: Vec<(i64, i64)> = sqlx::query(
        "SELECT seq, webhook_due FROM notifications
         WHERE webhook_due IS NOT NULL AND webhook_due <= $1 ORDER BY webhook_due, seq LIMIT $2",
    )
    .bind(t)
    .bind(BATCH)
    .fetch_all(&notes.db)
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let mut claimed = Vec::new();
    for (seq, was) in due {
        let n = sqlx::query(
            "UPDATE notifications SET webhook_due = $3 WHERE seq = $1 AND webhook_due = $2",
        )
        .bind(seq)
        .bind(was)
        .bind(t + LEASE_SECS)
        .execute(&notes.db)
        .await?
        .rows_affected();
        if n == 1 {
            claimed.push(seq);
        }
    }
    if claimed.is_empty() {
        return Ok(0);
    }
    let mut items = Vec::with_capacity(claimed.len());
    let mut attempts = Vec::with_capacity(claimed.len());
    for seq in &claimed {
        let row = sqlx::query(
            "SELECT n.seq, n.kind, n.title, n.plugin_id, n.subject, n.link, n.detail, n.created_at,
                    n.webhook_attempts, u.id, u.username, u.display_name
             FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.seq = $1",
        )
        .bind(seq)
        .fetch_optional(&notes.db)
        .await?;
        let Some(r) = row else { continue };
        let kind: String = r.get(1);
        let title: String = r.get(2);
        let detail: Value = serde_json::from_str(&r.get::<String, _>(6)).unwrap_or(Value::Null);
        let zh_title = chinese_title(&title);
        let text = kind_of(&kind).map(|k| k.sentence_zh(&zh_title, &detail));
        attempts.push((*seq, r.get::<i64, _>(8)));
        items.push(json!({
            "id": r.get::<i64, _>(0),
            "kind": kind,
            "title": zh_title,
            "text": text,
            "plugin": r.get::<String, _>(3),
            "subject": r.get::<String, _>(4),
            "link": r.get::<String, _>(5),
            "detail": detail,
            "created_at": r.get::<i64, _>(7),
            "user": {
                "id": r.get::<String, _>(9),
                "username": r.get::<String, _>(10),
                "display_name": r.get::<String, _>(11),
            },
        }));
    }
    let body = json!({ "notifications": items }).to_string().into_bytes();
    let signature = secret.map(|s| signature(s, &body));
    let first = claimed[0];
    let (agent, target) = (agent.clone(), url.to_string());
    let sent = tokio::task::spawn_blocking(move || {
        let mut request = agent
            .post(&target)
            .header("content-type", "application/json")
            .header("x-tianshan-delivery", first.to_string());
        if let Some(sig) = &signature {
            request = request.header("x-tianshan-signature", sig);
        }
        match request.send(&body[..]) {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("answered {}", response.status())),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match sent {
        Ok(()) => {
            for seq in &claimed {
                sqlx::query("UPDATE notifications SET webhook_due = NULL WHERE seq = $1")
                    .bind(seq)
                    .execute(&notes.db)
                    .await?;
            }
        }
        Err(why) => {
            tracing::warn!(url = %redact(url), error = %why, batch = claimed.len(),
                "notification webhook failed; retrying with backoff");
            for (seq, tried) in attempts {
                let tried = tried + 1;
                let due = (tried < MAX_ATTEMPTS).then(|| now() + backoff_secs(tried));
                if due.is_none() {
                    tracing::error!(notification = seq, "notification webhook gave up");
                }
                sqlx::query(
                    "UPDATE notifications SET webhook_due = $2, webhook_attempts = $3 WHERE seq = $1",
                )
                .bind(seq)
                .bind(due)
                .bind(tried)
                .execute(&notes.db)
                .await?;
            }
        }
    }
    Ok(claimed.len())
}

fn kind_of(kind: &str) -> Option<Kind> {
    [Kind::Todo, Kind::Urged, Kind::Copied, Kind::Decided]
        .into_iter()
        .find(|k| k.as_str() == kind)
}

/// A title in one language, or the Chinese of a `{"zh-CN","en"}` one.
fn chinese_title(title: &str) -> String {
    match serde_json::from_str::<Value>(title) {
        Ok(Value::Object(m)) => m
            .get("zh-CN")
            .or_else(|| m.get("en"))
            .and_then(|v| v.as_str())
            .unwrap_or(title)
            .to_string(),
        _ => title.to_string(),
    }
}

/// The URL without its query (it may carry a key) for the log.
fn redact(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_an_hour() {
        assert_eq!(backoff_secs(1), 20);
        assert_eq!(backoff_secs(2), 40);
        assert_eq!(backoff_secs(9), 3600);
        assert_eq!(backoff_secs(40), 3600);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_localized_title_goes_out_in_chinese() {
        assert_eq!(
            chinese_title(r#"{"zh-CN":"办公用房","en":"Office"}"#),
            "办公用房"
        );
        assert_eq!(chinese_title("购置申请"), "购置申请");
        assert_eq!(
            Kind::Decided.sentence_zh("购置申请", &json!({"status": "approved"})),
            "您的申请已通过：购置申请"
        );
    }
}
