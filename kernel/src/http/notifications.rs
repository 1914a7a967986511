//! The notification centre's kernel API: each signed-in person's own
//! notifications, marking them read, and a stream of server-sent events
//! that tells the portal's bell at once (`services/notifications/`).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::response::sse::Event;
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::core::error::{ApiError, ApiResult, ErrorCode};
use crate::core::streams::StreamSlot;
use crate::http::routes::Routes;
use crate::http::session::{Caller, Session, parse_json, read_body, still_signed_in};
use crate::services::notifications::{MAX_PAGE, Marking, Notification};

type AppState = Arc<crate::node::Kernel>;

/// Streams one person may hold open on one node (tabs, a phone); past
/// it, 429.
pub const MAX_STREAMS_PER_USER: u32 = 8;
/// How often a stream checks its caller is still signed in and counts
/// again (what another node's signal, if lost, would have told).
const RECHECK: std::time::Duration = std::time::Duration::from_secs(30);
/// Reconnect delay the stream asks of the browser's `EventSource`.
const RETRY: std::time::Duration = std::time::Duration::from_secs(3);

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/v1/me/notifications", list)
        .post("/api/v1/me/notifications/read", read)
        .get("/api/v1/me/notifications/stream", stream)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    #[serde(default)]
    unread: Option<String>,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

fn number(field: &str, value: Option<&str>) -> ApiResult<Option<i64>> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::validation(field, "a whole number"))
        })
        .transpose()
}

/// `GET me/notifications?unread=true&before=&limit=`: newest first, with
/// the unread count and the `next` page's `before`.
async fn list(
    State(k): State<AppState>,
    Caller(session): Caller,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<Value>> {
    let unread_only = match p.unread.as_deref() {
        None | Some("") | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(ApiError::validation("unread", "true or false")),
    };
    let before = number("before", p.before.as_deref())?;
    let limit = number("limit", p.limit.as_deref())?.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            format!("1 to {MAX_PAGE} at a time"),
        ));
    }
    let page = k
        .notifications
        .list(session.user_id(), unread_only, before, limit)
        .await?;
    Ok(Json(json!(page)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadBody {
    #[serde(default)]
    ids: Option<Vec<i64>>,
    #[serde(default)]
    all: bool,
}

/// `POST me/notifications/read {"ids":[…]}` or `{"all":true}`: marks the
/// caller's own read (anyone else's ids change nothing); answers the
/// unread count.
async fn read(
    State(k): State<AppState>,
    Caller(session): Caller,
    body: Body,
) -> ApiResult<Json<Value>> {
    let b: ReadBody = parse_json(&read_body(body, 1 << 16).await?)?;
    let marking = match (b.all, b.ids) {
        (true, None) => Marking::All,
        (false, Some(ids)) => Marking::Ids(ids),
        _ => {
            return Err(ApiError::validation(
                "ids",
                "name the notifications (ids) or all of them (all: true)",
            ));
        }
    };
    let unread = k
        .notifications
        .mark_read(session.user_id(), marking)
        .await?;
    Ok(Json(json!({ "unread": unread })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamParams {
    #[serde(default)]
    since: Option<String>,
}

/// `GET me/notifications/stream?since=`: server-sent events for the
/// caller's bell — `unread` (`{"unread"}`) first and whenever the count
/// changes, `notification` (the notification and `unread`) for each new
/// one, its id as the event id — and a heartbeat comment every 15 s.
/// `since` (or the `Last-Event-ID` the browser sends on reconnecting)
/// names the last notification the client has: the ones after it are
/// sent first, so a reconnect loses nothing. 429 past eight streams of
/// one person on this node; the stream ends when the caller signs out and
/// when the node shuts down (the browser then reconnects).
async fn stream(
    State(k): State<AppState>,
    Caller(session): Caller,
    headers: HeaderMap,
    Query(p): Query<StreamParams>,
) -> ApiResult<Response> {
    let last_event = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let since = match number("since", p.since.as_deref())? {
        Some(n) => Some(n),
        // A Last-Event-ID that is not ours is ignored, not refused: the
        // browser sends what it was given.
        None => last_event.and_then(|v| v.parse::<i64>().ok()),
    };
    let user = session.user_id().to_string();
    let slot = k
        .notifications
        .streams
        .open(&user, MAX_STREAMS_PER_USER)
        .ok_or_else(|| {
            let mut e = ApiError::new(
                ErrorCode::TooManyAttempts,
                format!("at most {MAX_STREAMS_PER_USER} notification streams at a time; close one"),
            );
            e.retry_after = Some(10);
            e
        })?;
    let wakes = k.notifications.wakes();
    let newest = match since {
        Some(n) => n,
        None => k.notifications.newest(&user).await?,
    };
    let state = BellStream {
        wakes,
        closing: k.notifications.streams.closing(),
        k,
        session,
        headers,
        user,
        newest,
        unread: None,
        checked: std::time::Instant::now(),
        queue: Vec::new(),
        _slot: slot,
    };
    let first = Event::default()
        .retry(RETRY)
        .comment("tianshan notifications");
    let events = futures_util::stream::once(async move { first })
        .chain(futures_util::stream::unfold(state, BellStream::next))
        .map(Ok::<_, std::convert::Infallible>);
    Ok(crate::http::session::event_stream(events))
}

/// One open bell: whose, the newest notification sent, the count last sent.
struct BellStream {
    k: AppState,
    session: Session,
    headers: HeaderMap,
    user: String,
    wakes: tokio::sync::broadcast::Receiver<Arc<str>>,
    closing: tokio::sync::watch::Receiver<bool>,
    newest: i64,
    unread: Option<i64>,
    checked: std::time::Instant,
    /// Events read but not sent yet, oldest last.
    queue: Vec<Event>,
    _slot: StreamSlot,
}

enum Woke {
    Closing,
    Recheck,
    Mine,
    Lagged,
    Other,
}

impl BellStream {
    async fn next(mut self) -> Option<(Event, BellStream)> {
        loop {
            if let Some(event) = self.queue.pop() {
                return Some((event, self));
            }
            if *self.closing.borrow() {
                return None;
            }
            // The first round tells the count (and what a reconnect missed).
            if self.unread.is_none() {
                self.catch_up().await;
                continue;
            }
            let wait = RECHECK.saturating_sub(self.checked.elapsed());
            let woke = tokio::select! {
                _ = self.closing.wait_for(|c| *c) => Woke::Closing,
                _ = tokio::time::sleep(wait) => Woke::Recheck,
                got = self.wakes.recv() => match got {
                    Ok(user) if *user == *self.user => Woke::Mine,
                    Ok(_) => Woke::Other,
                    Err(RecvError::Lagged(_)) => Woke::Lagged,
                    Err(RecvError::Closed) => Woke::Closing,
                },
            };
            match woke {
                Woke::Closing => return None,
                Woke::Other => {}
                Woke::Recheck => {
                    still_signed_in(&self.k, &self.session, &self.headers).await?;
                    self.checked = std::time::Instant::now();
                    self.catch_up().await;
                }
                Woke::Mine | Woke::Lagged => self.catch_up().await,
            }
        }
    }

    /// Queues the notifications after the newest sent and, when it
    /// changed, the unread count.
    async fn catch_up(&mut self) {
        let notes = &self.k.notifications;
        let (fresh, unread) = match (
            notes.after(&self.user, self.newest).await,
            notes.unread(&self.user).await,
        ) {
            (Ok(fresh), Ok(unread)) => (fresh, unread),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "notification stream: read failed");
                // Tried again at the next wake-up or recheck.
                self.unread.get_or_insert(-1);
                return;
            }
        };
        let mut events: Vec<Event> = fresh
            .iter()
            .map(|n: &Notification| {
                Event::default()
                    .event("notification")
                    .id(n.id.to_string())
                    .data(json!({ "notification": n, "unread": unread }).to_string())
            })
            .collect();
        if let Some(last) = fresh.last() {
            self.newest = last.id;
        }
        if self.unread != Some(unread) {
            events.push(
                Event::default()
                    .event("unread")
                    .data(json!({ "unread": unread }).to_string()),
            );
            self.unread = Some(unread);
        }
        events.reverse();
        self.queue = events;
    }
}
