//! The notification centre (通知中心): what reached one person — a new
//! to-do, an urge (催办), a copy (抄送), the outcome of their own
//! application — kept per user with its read state, told at once to their
//! open streams (`http/notifications.rs`), and handed to the operator's
//! outside channel when one is configured (`webhook.rs`).
//!
//! Notes are written in the transaction of the change that causes them
//! (the approval's), so a to-do and its notification exist together or
//! not at all. Streams are woken after the commit: on this node through a
//! broadcast of user ids, on the others through NATS when it is
//! configured; every stream also counts again every 30 s, so a missed
//! signal costs at most that.

pub mod webhook;

use std::sync::Arc;

use futures_util::StreamExt as _;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use tokio::sync::{Notify, broadcast};

use crate::audit::{Audit, Entry};
use crate::cluster::Bus;
use crate::core::error::ServiceError;
use crate::core::streams::StreamSlots;
use crate::db::{Db, now};

type Result<T> = std::result::Result<T, ServiceError>;

/// Notifications one page carries at most.
pub const MAX_PAGE: i64 = 100;
/// Ids one `read` call names at most.
pub const MAX_READ_IDS: usize = 500;
/// Wake-ups a slow stream may fall behind before it counts again.
const BACKLOG: usize = 1024;
/// Where nodes tell each other whose notifications changed.
pub const SIGNAL: &str = "tianshan.signal.notifications";

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A step of an approval waits for the person.
    Todo,
    /// The applicant urged the person's pending step.
    Urged,
    /// An approval was copied to the person.
    Copied,
    /// The person's own application was approved or sent back
    /// (`detail.status`).
    Decided,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Todo => "todo",
            Kind::Urged => "urged",
            Kind::Copied => "copied",
            Kind::Decided => "decided",
        }
    }

    /// The sentence an outside channel (an SMS) carries, in Chinese: the
    /// person reads it outside the portal, where no page translates it.
    pub fn sentence_zh(self, title: &str, detail: &Value) -> String {
        match self {
            Kind::Todo => format!("您有一项待办审批：{title}"),
            Kind::Urged => format!("申请人催办：{title}"),
            Kind::Copied => format!("抄送给您：{title}"),
            Kind::Decided => match detail["status"].as_str() {
                Some("approved") => format!("您的申请已通过：{title}"),
                _ => format!("您的申请已退回：{title}"),
            },
        }
    }
}

/// One notification to write.
pub struct Note<'a> {
    pub user: &'a str,
    pub kind: Kind,
    /// The approval's title, as its plugin gave it (one language or a
    /// `{"zh-CN","en"}` object the portal picks from).
    pub title: &'a str,
    pub plugin: &'a str,
    /// The approval it is about.
    pub subject: &'a str,
    pub actor: Option<&'a str>,
    pub detail: Value,
}

/// One notification as its owner reads it.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub id: i64,
    pub kind: String,
    pub title: String,
    pub plugin: String,
    pub subject: String,
    /// Where the portal opens it (`#/approvals/{id}`).
    pub link: String,
    pub actor: Option<String>,
    pub actor_name: Option<String>,
    pub detail: Value,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

/// A page of one person's notifications.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub items: Vec<Notification>,
    /// Unread notifications in all.
    pub unread: i64,
    /// Pass as `before` for the next (older) page; none at the end.
    pub next: Option<i64>,
}

/// Which notifications a `read` call marks.
pub enum Marking {
    All,
    Ids(Vec<i64>),
}

pub struct Notifications {
    db: Db,
    audit: Arc<Audit>,
    bus: Arc<Bus>,
    node: String,
    wakes: broadcast::Sender<Arc<str>>,
    /// Whether new notes are queued for the outside channel.
    webhook: bool,
    /// Wakes the webhook loop after a commit.
    pub(crate) webhook_due: Arc<Notify>,
    /// The streams open on this node.
    pub streams: Arc<StreamSlots>,
}

/// [`Notifications::settle`] for everyone, and for one person (`$3`).
const SETTLE: &str = "UPDATE notifications SET read_at = $2, webhook_due = NULL
     WHERE subject = $1 AND kind IN ('todo', 'urged') AND read_at IS NULL";
const SETTLE_ONE: &str = "UPDATE notifications SET read_at = $2, webhook_due = NULL
     WHERE subject = $1 AND kind IN ('todo', 'urged') AND read_at IS NULL AND user_id = $3";

const COLUMNS: &str = "n.seq, n.kind, n.title, n.plugin_id, n.subject, n.link, n.actor_id, \
     u.display_name, n.detail, n.created_at, n.read_at";

fn notification_of(r: &sqlx::any::AnyRow) -> Notification {
    let detail: String = r.get(8);
    Notification {
        id: r.get(0),
        kind: r.get(1),
        title: r.get(2),
        plugin: r.get(3),
        subject: r.get(4),
        link: r.get(5),
        actor: r.get(6),
        actor_name: r.get(7),
        detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
        created_at: r.get(9),
        read_at: r.get(10),
    }
}

impl Notifications {
    pub fn new(db: Db, audit: Arc<Audit>, bus: Arc<Bus>, node: &str, webhook: bool) -> Self {
        Notifications {
            db,
            audit,
            bus,
            node: node.to_string(),
            wakes: broadcast::channel(BACKLOG).0,
            webhook,
            webhook_due: Arc::new(Notify::new()),
            streams: Arc::new(StreamSlots::default()),
        }
    }

    /// Writes `note` inside the caller's transaction.
    pub async fn add(&self, conn: &mut sqlx::AnyConnection, note: &Note<'_>) -> Result<()> {
        let at = now();
        sqlx::query(
            "INSERT INTO notifications
                 (user_id, kind, title, plugin_id, subject, link, actor_id, detail, created_at, webhook_due)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(note.user)
        .bind(note.kind.as_str())
        .bind(note.title)
        .bind(note.plugin)
        .bind(note.subject)
        .bind(format!("#/approvals/{}", note.subject))
        .bind(note.actor)
        .bind(note.detail.to_string())
        .bind(at)
        .bind(self.webhook.then_some(at))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Marks read the to-do and urge notifications about `subject` that
    /// nobody read yet — of `user` when given (they acted on it), else of
    /// everyone (the approval ended): they ask for nothing any more, and an
    /// outside channel that has not sent them yet will not.
    pub async fn settle(
        &self,
        conn: &mut sqlx::AnyConnection,
        subject: &str,
        user: Option<&str>,
    ) -> Result<()> {
        let query = match user {
            Some(user) => sqlx::query(SETTLE_ONE)
                .bind(subject)
                .bind(now())
                .bind(user.to_string()),
            None => sqlx::query(SETTLE).bind(subject).bind(now()),
        };
        query.execute(conn).await?;
        Ok(())
    }

    /// After a commit: wakes the streams of everyone whose notifications
    /// about `subject` were made or settled since `since` (seconds), here
    /// and on other nodes.
    pub async fn committed(&self, subject: &str, since: i64) {
        let users: Vec<String> = match sqlx::query_scalar(
            "SELECT DISTINCT user_id FROM notifications
             WHERE subject = $1 AND (created_at >= $2 OR read_at >= $2)",
        )
        .bind(subject)
        .bind(since)
        .fetch_all(&self.db)
        .await
        {
            Ok(users) => users,
            Err(e) => {
                // The streams count again within 30 s anyway.
                tracing::warn!(error = %e, "notified users not read back; streams catch up");
                return;
            }
        };
        if users.is_empty() {
            return;
        }
        self.wake(&users);
        if self.webhook {
            self.webhook_due.notify_one();
        }
    }

    /// Tells `users`' streams that their notifications changed.
    pub fn wake(&self, users: &[String]) {
        for u in users {
            // No receiver is no stream open: nothing to tell.
            let _ = self.wakes.send(Arc::from(u.as_str()));
        }
        if let Some(client) = self.bus.client() {
            let client = client.clone();
            let payload = json!({ "node": self.node, "users": users }).to_string();
            tokio::spawn(async move {
                if let Err(e) = client.publish(SIGNAL, payload.into()).await {
                    tracing::warn!(error = %e, "could not tell other nodes of notifications");
                }
            });
        }
    }

    /// Whose notifications changed on this node from now on.
    pub fn wakes(&self) -> broadcast::Receiver<Arc<str>> {
        self.wakes.subscribe()
    }

    /// Forwards other nodes' wake-ups to this node's streams until the
    /// process ends (with NATS configured).
    pub async fn listen(self: Arc<Self>) {
        let Some(client) = self.bus.client() else {
            return;
        };
        let mut subscription = match client.subscribe(SIGNAL).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "NATS subscribe failed; notification streams poll");
                return;
            }
        };
        while let Some(message) = subscription.next().await {
            let Ok(signal) = serde_json::from_slice::<Value>(&message.payload) else {
                continue;
            };
            if signal["node"].as_str() == Some(self.node.as_str()) {
                continue;
            }
            for u in signal["users"].as_array().into_iter().flatten() {
                if let Some(u) = u.as_str() {
                    let _ = self.wakes.send(Arc::from(u));
                }
            }
        }
    }

    pub async fn unread(&self, user: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL",
        )
        .bind(user)
        .fetch_one(&self.db)
        .await?)
    }

    /// `user`'s notifications, newest first: older than `before` (an id)
    /// when given, unread ones only when asked.
    pub async fn list(
        &self,
        user: &str,
        unread_only: bool,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Page> {
        let limit = limit.clamp(1, MAX_PAGE);
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications n LEFT JOIN users u ON u.id = n.actor_id
             WHERE n.user_id = $1 AND n.seq < $2{} ORDER BY n.seq DESC LIMIT $3",
            if unread_only {
                " AND n.read_at IS NULL"
            } else {
                ""
            }
        );
        let mut items: Vec<Notification> = sqlx::query(&sql)
            .bind(user)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit + 1)
            .fetch_all(&self.db)
            .await?
            .iter()
            .map(notification_of)
            .collect();
        let next = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|n| n.id)
        } else {
            None
        };
        Ok(Page {
            items,
            unread: self.unread(user).await?,
            next,
        })
    }

    /// `user`'s notifications newer than `after` (an id), oldest first, at
    /// most [`MAX_PAGE`]: what a stream that reconnects missed.
    pub async fn after(&self, user: &str, after: i64) -> Result<Vec<Notification>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications n LEFT JOIN users u ON u.id = n.actor_id
             WHERE n.user_id = $1 AND n.seq > $2 ORDER BY n.seq LIMIT $3"
        );
        Ok(sqlx::query(&sql)
            .bind(user)
            .bind(after)
            .bind(MAX_PAGE)
            .fetch_all(&self.db)
            .await?
            .iter()
            .map(notification_of)
            .collect())
    }

    /// The newest id of `user`'s notifications (0: none).
    pub async fn newest(&self, user: &str) -> Result<i64> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM notifications WHERE user_id = $1")
                .bind(user)
                .fetch_one(&self.db)
                .await?;
        Ok(id.unwrap_or(0))
    }

    /// Marks `user`'s own notifications read (ids of others' are ignored,
    /// as if they did not exist) and answers how many stay unread.
    pub async fn mark_read(&self, user: &str, marking: Marking) -> Result<i64> {
        let at = now();
        let mut tx = self.audit.begin().await?;
        let marked = match &marking {
            Marking::All => sqlx::query(
                "UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL",
            )
            .bind(user)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            Marking::Ids(ids) => {
                if ids.is_empty() || ids.len() > MAX_READ_IDS {
                    return Err(ServiceError::invalid(
                        "ids",
                        format!("1 to {MAX_READ_IDS} notification ids"),
                    ));
                }
                let mut marked = 0;
                for id in ids {
                    marked += sqlx::query(
                        "UPDATE notifications SET read_at = $3
                         WHERE seq = $1 AND user_id = $2 AND read_at IS NULL",
                    )
                    .bind(id)
                    .bind(user)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                marked
            }
        };
        tx.commit(
            &Entry::new(user, "notification.read", "ok")
                .target(user)
                .detail(json!({ "all": matches!(marking, Marking::All), "marked": marked })),
        )
        .await?;
        if marked > 0 {
            // The person's other tabs and devices show the new count.
            self.wake(&[user.to_string()]);
        }
        self.unread(user).await
    }

    /// Deletes notifications made more than `days` ago; answers how many.
    pub async fn sweep(&self, days: u32) -> Result<u64> {
        let before = now() - i64::from(days) * 86_400;
        Ok(
            sqlx::query("DELETE FROM notifications WHERE created_at < $1")
                .bind(before)
                .execute(&self.db)
                .await?
                .rows_affected(),
        )
    }
}
