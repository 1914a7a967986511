//! The kernel API of telemetry: the HTTP batch endpoint devices, gateways
//! and bill uploads post readings to, the refused list and counters for
//! administrators, and the live stream of latest values and alerts that
//! plugin pages get through the portal (docs/telemetry.md).

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use axum::response::sse::Event;
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::core::calendar;
use crate::core::error::{ApiError, ApiResult, ErrorCode, ServiceError};
use crate::core::scope::Scope;
use crate::http::routes::Routes;
use crate::http::session::{
    Caller, ORG_HEADER, Session, authenticate, check_plugin_scope, parse_json, read_body,
};
use crate::node::Kernel;
use crate::services::telemetry::live::{self, Slot};
use crate::services::telemetry::mqtt::{self, Raw};
use crate::services::telemetry::{Incoming, MAX_READINGS_PER_BATCH, Protocol, Quality};

type AppState = Arc<Kernel>;

pub fn routes() -> Routes {
    Routes::new()
        .post("/api/v1/telemetry/readings", post_readings)
        .get("/api/v1/telemetry/rejected", rejected)
        .get("/api/v1/telemetry/stats", stats)
        .get("/api/v1/telemetry/stream", stream)
        .get("/api/v1/telemetry/positions", positions)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadingInput {
    device: String,
    channel: String,
    at: i64,
    value: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadingsInput {
    readings: Vec<ReadingInput>,
    #[serde(default)]
    quality: Option<String>,
}

/// `2025-03-01 08:15[:00]` in the region's time, or milliseconds.
fn parse_time(text: &str, utc_offset_minutes: i32) -> Option<i64> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    let (date, time) = text.split_once([' ', 'T']).unwrap_or((text, "00:00"));
    let mut d = date.split(['-', '/']).map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min) = (t.next()??, t.next().flatten().unwrap_or(0));
    let s = t.next().flatten().unwrap_or(0);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 59 {
        return None;
    }
    let days = calendar::days_from_civil(y, m as u32, day as u32);
    // 2025-02-30 would silently become March: refuse it.
    if calendar::civil_from_days(days) != (y, m as u32, day as u32) {
        return None;
    }
    Some(((days * 86_400 + h * 3600 + min * 60 + s) - utc_offset_minutes as i64 * 60) * 1000)
}

/// One cell of an uploaded sheet.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(String),
    Number(f64),
    /// An Excel date-time serial (days since 1899-12-30, local time).
    Date(f64),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.trim().to_string(),
            Cell::Number(n) | Cell::Date(n) => n.to_string(),
        }
    }
}

/// The first sheet of an XLSX workbook, or CSV text (UTF-8, or GB18030 as
/// Excel on Chinese Windows saves it).
fn read_sheet(bytes: &[u8]) -> ApiResult<Vec<Vec<Cell>>> {
    use calamine::{Reader, Xlsx};
    if bytes.starts_with(b"PK\x03\x04") {
        let bad = |e: String| ApiError::validation("body", format!("not a readable workbook: {e}"));
        let mut book: Xlsx<_> =
            Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
        let range = book
            .worksheet_range_at(0)
            .ok_or_else(|| bad("it has no sheet".into()))?
            .map_err(|e| bad(e.to_string()))?;
        return Ok(range
            .rows()
            .map(|row| {
                row.iter()
                    .map(|d| match d {
                        calamine::Data::Float(f) => Cell::Number(*f),
                        calamine::Data::Int(i) => Cell::Number(*i as f64),
                        calamine::Data::DateTime(d) => Cell::Date(d.as_f64()),
                        other => Cell::Text(other.to_string()),
                    })
                    .collect()
            })
            .collect());
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.to_string(),
        Err(_) => encoding_rs::GB18030
            .decode_without_bom_handling_and_without_replacement(bytes)
            .ok_or_else(|| ApiError::validation("body", "neither UTF-8 nor GB18030 text"))?
            .into_owned(),
    };
    Ok(text
        .lines()
        .map(|l| {
            l.split(',')
                .map(|c| Cell::Text(c.trim().to_string()))
                .collect()
        })
        .collect())
}

/// The columns, by the names a meter reader's sheet uses for them.
const COLUMNS: [&[&str]; 4] = [
    &["device", "设备", "设备编号", "表号"],
    &["channel", "通道", "计量项"],
    &["at", "time", "时间", "抄表时间", "日期"],
    &["value", "读数", "数值", "示数"],
];

/// Readings from a sheet: a header row (within the first ten, so a title
/// row above it is fine) naming the four columns, then one reading a row.
fn parse_sheet(rows: Vec<Vec<Cell>>, utc_offset_minutes: i32) -> ApiResult<Vec<Raw>> {
    let position = |row: &[Cell], names: &[&str]| {
        row.iter().position(|c| {
            let name = c.text().to_lowercase();
            names.contains(&name.trim_start_matches('\u{feff}'))
        })
    };
    let (header_at, cols) = rows
        .iter()
        .take(10)
        .enumerate()
        .find_map(|(i, row)| {
            let cols: Option<Vec<usize>> =
                COLUMNS.iter().map(|names| position(row, names)).collect();
            cols.map(|c| (i, c))
        })
        .ok_or_else(|| {
            ApiError::validation(
                "body",
                "no header row naming device, channel, at and value (设备编号, 通道, 时间, 读数)",
            )
        })?;
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate().skip(header_at + 1) {
        if row.iter().all(|c| c.text().is_empty()) {
            continue;
        }
        let cell = |c: usize| row.get(c).cloned().unwrap_or(Cell::Text(String::new()));
        let line = i + 1;
        let at = match cell(cols[2]) {
            // An Excel serial of the region's local time.
            Cell::Date(serial) | Cell::Number(serial) if serial < 1e6 => Some(
                ((serial - 25_569.0) * 86_400_000.0).round() as i64
                    - utc_offset_minutes as i64 * 60_000,
            ),
            other => parse_time(&other.text(), utc_offset_minutes),
        }
        .ok_or_else(|| {
            ApiError::validation(
                "body",
                format!("row {line}: `at` {:?} is not a time", cell(cols[2]).text()),
            )
        })?;
        let value = match cell(cols[3]) {
            Cell::Number(n) => Some(n),
            other => other
                .text()
                .replace([',', '，', ' '], "")
                .parse::<f64>()
                .ok(),
        }
        .ok_or_else(|| {
            ApiError::validation(
                "body",
                format!(
                    "row {line}: `value` {:?} is not a number",
                    cell(cols[3]).text()
                ),
            )
        })?;
        out.push(Raw {
            device: cell(cols[0]).text(),
            channel: cell(cols[1]).text(),
            at,
            value,
        });
    }
    Ok(out)
}

/// Readings of `http` and `manual` devices, by the external id they were
/// registered with. The caller needs `kernel.telemetry.ingest` at every
/// device's org: one device out of reach refuses the whole batch.
async fn post_readings(
    State(k): State<AppState>,
    Caller(session): Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    // Refusals are stored too: only someone who may ingest here may fill
    // the list.
    session
        .require(&k, session.org(), "kernel.telemetry.ingest")
        .await?;
    let bytes = read_body(body, 8 << 20).await?;
    let sheet = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv") || v.contains("spreadsheetml"));
    let (raws, quality) = if sheet {
        let rows = read_sheet(&bytes)?;
        (
            parse_sheet(rows, k.config.utc_offset_minutes)?,
            Quality::Manual,
        )
    } else {
        let input: ReadingsInput = parse_json(&bytes)?;
        let quality = match input.quality.as_deref() {
            None | Some("good") => Quality::Good,
            Some("manual") => Quality::Manual,
            Some("bill") => Quality::Bill,
            Some(other) => {
                return Err(ApiError::validation(
                    "quality",
                    format!("quality {other:?}: good, manual or bill"),
                ));
            }
        };
        let raws = input
            .readings
            .into_iter()
            .map(|r| Raw {
                device: r.device,
                channel: r.channel,
                at: r.at,
                value: r.value,
            })
            .collect();
        (raws, quality)
    };
    if raws.is_empty() || raws.len() > MAX_READINGS_PER_BATCH {
        return Err(ApiError::validation(
            "readings",
            format!("1 to {MAX_READINGS_PER_BATCH} readings at a time"),
        ));
    }
    let source = format!("http:{}", session.user_id());
    let mut readings: Vec<Incoming> = Vec::new();
    let mut unknown: Vec<(String, Result<Vec<Raw>, String>)> = Vec::new();
    let mut found = HashMap::new();
    for raw in raws {
        let device = match found.get(&raw.device) {
            Some(d) => Some(Arc::clone(d)),
            None => {
                let mut d = k.telemetry.by_external(Protocol::Http, &raw.device).await?;
                if d.is_none() {
                    d = k
                        .telemetry
                        .by_external(Protocol::Manual, &raw.device)
                        .await?;
                }
                if let Some(d) = &d {
                    found.insert(raw.device.clone(), d.clone());
                }
                d
            }
        };
        match device {
            Some(device) => readings.push(Incoming {
                device,
                channel: raw.channel,
                at: raw.at,
                value: raw.value,
                quality,
            }),
            None => unknown.push((raw.device.clone(), Ok(vec![raw]))),
        }
    }
    let orgs: BTreeSet<&str> = found.values().map(|d| d.org.as_str()).collect();
    for org in orgs {
        session.require(&k, org, "kernel.telemetry.ingest").await?;
    }
    let (_, rejections) = mqtt::resolve(&k.telemetry, Protocol::Http, &source, unknown).await;
    let recorded = k
        .telemetry
        .ingest_audited(
            &source,
            readings,
            rejections,
            session.user_id(),
            session.org(),
        )
        .await?;
    Ok(Json(json!(recorded)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectedQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

async fn rejected(
    State(k): State<AppState>,
    Caller(session): Caller,
    Query(q): Query<RejectedQuery>,
) -> ApiResult<Json<Value>> {
    session
        .require(&k, &k.root_org, "kernel.telemetry.read")
        .await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let items = k.telemetry.rejected(q.before, limit).await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().and_then(|i| i["id"].as_i64()))
        .flatten();
    Ok(Json(json!({ "items": items, "next_before": next })))
}

async fn stats(State(k): State<AppState>, Caller(session): Caller) -> ApiResult<Json<Value>> {
    session
        .require(&k, &k.root_org, "kernel.telemetry.read")
        .await?;
    Ok(Json(json!({
        "since_start": k.telemetry.stats.snapshot(),
        "live_streams": k.telemetry.live.open_streams(),
    })))
}

// ---------------------------------------------------------------- the stream

/// Live streams one user may hold open on one node; past it, 429.
pub const MAX_STREAMS_PER_USER: u32 = 10;
/// Without a wake-up from this node, a stream polls this often (other
/// nodes store too).
const TICK: Duration = Duration::from_secs(1);
/// At least this long between two polls of one stream, however often this
/// node stores batches.
const MIN_GAP: Duration = Duration::from_millis(200);
/// How often a stream checks again that its caller is signed in, the
/// plugin there, and what they reach.
const RECHECK: Duration = Duration::from_secs(30);
/// A resume from further back than this starts afresh (current values,
/// new alerts) instead of replaying.
const RESUME_WINDOW_MS: i64 = 10 * 60 * 1000;
/// Latest values sent when a stream starts afresh, newest first.
const SNAPSHOT: i64 = 5_000;
/// What a stream remembers of what it sent (to skip it when a poll reads
/// back [`live::OVERLAP_MS`]); past it, it forgets and may send a value
/// twice, which is harmless.
const REMEMBERED: usize = 20_000;
/// Reconnect delay the stream asks of the browser's `EventSource`.
const RETRY: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    plugin: String,
    #[serde(default)]
    devices: Option<String>,
    /// The acting org (`X-Tianshan-Org`; an `EventSource` sends no headers).
    #[serde(default)]
    org: Option<String>,
    /// As the `Last-Event-ID` header, for a client that reopens by hand.
    #[serde(default)]
    last_event_id: Option<String>,
}

/// The scope a call of `plugin` by this caller would have: the plugin's
/// devices at orgs the acting org reaches. Unknown, disabled or outside
/// its install subtree: the plugin is not there.
fn stream_scope(k: &Kernel, plugin: &str, session: &Session) -> ApiResult<Scope> {
    let p = k
        .plugins
        .get(plugin)
        .ok_or_else(|| crate::plugins::not_installed(plugin))?;
    check_plugin_scope(k, &p, Some(session))?;
    if !p.enabled() {
        return Err(ApiError::new(
            ErrorCode::PluginDisabled,
            format!("plugin {plugin} is disabled"),
        ));
    }
    Ok(Scope {
        plugin: plugin.to_string(),
        ..Scope::for_user(
            k.authz.orgs(),
            session.org(),
            session.user_id(),
            &session.identity.username,
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionsQuery {
    plugin: String,
    #[serde(default)]
    org: Option<String>,
}

/// Alerts the live view shows: the newest of the last day.
const RECENT_ALERTS: usize = 20;
const RECENT_ALERTS_MS: i64 = 24 * 3_600_000;

/// `GET /api/v1/telemetry/positions?plugin=&org=`: the newest position of
/// each of the plugin's terminals in `org`'s subtree (the acting org's when
/// none) that the caller reaches, and the newest alerts of the last day —
/// what the wall's and a plugin's live map draw. Reach as for `stream`.
async fn positions(
    State(k): State<AppState>,
    Caller(session): Caller,
    Query(q): Query<PositionsQuery>,
) -> ApiResult<Json<Value>> {
    let org = match q.org.as_deref().filter(|o| !o.is_empty()) {
        Some(asked) => crate::http::datacenter::resolve_org(&k, asked)
            .await?
            .ok_or_else(|| not_in_reach(asked))?,
        None => session.org().to_string(),
    };
    Ok(Json(positions_of(&k, &session, &q.plugin, &org).await?))
}

/// The answer of `positions` for `org`, which must be in the caller's
/// reach (the wall's panels call it for their dashboard's org).
pub(crate) async fn positions_of(
    k: &Kernel,
    session: &Session,
    plugin: &str,
    org: &str,
) -> ApiResult<Value> {
    let scope = stream_scope(k, plugin, session)?;
    if !scope.reaches(org) {
        return Err(not_in_reach(org));
    }
    let (positions, more) = k.telemetry.positions(&scope, org).await?;
    let since = calendar::now_ms() - RECENT_ALERTS_MS;
    let alerts = k
        .telemetry
        .recent_alerts(&scope, org, since, RECENT_ALERTS)
        .await?;
    Ok(json!({
        "plugin": plugin,
        "org": org,
        "positions": positions,
        "more": more,
        "alerts": alerts,
    }))
}

/// An org outside the caller's reach is not told apart from none.
fn not_in_reach(org: &str) -> ApiError {
    ApiError::not_found(format!("org {org} not found")).with_field("org")
}

/// `{stored of latest}.{stored of alerts}`, the two cursors of an event.
fn parse_event_id(id: &str) -> Option<(i64, i64)> {
    let (l, a) = id.trim().split_once('.')?;
    Some((l.parse().ok()?, a.parse().ok()?))
}

/// `GET /api/v1/telemetry/stream?plugin=&devices=a,b&org=`: server-sent
/// events of the plugin's devices the caller reaches — `latest` (device,
/// channel, at, value, quality; the current values first) and `alert`
/// (id, rule, device, org, at, detail) —, a heartbeat comment every 15 s,
/// resumable with `Last-Event-ID` for 10 minutes.
async fn stream(
    State(k): State<AppState>,
    mut headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> ApiResult<Response> {
    if let Some(org) = q.org.as_deref().filter(|o| !o.is_empty())
        && !headers.contains_key(ORG_HEADER)
    {
        let value =
            HeaderValue::from_str(org).map_err(|_| ApiError::validation("org", "not an org id"))?;
        headers.insert(ORG_HEADER, value);
    }
    let session = authenticate(&k, &Method::GET, &headers)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "log in first"))?;
    let scope = stream_scope(&k, &q.plugin, &session)?;
    let devices: Option<Vec<String>> = match q.devices.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(list) => {
            let mut ids: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect();
            ids.sort();
            ids.dedup();
            if ids.len() > live::MAX_DEVICES {
                return Err(ApiError::validation(
                    "devices",
                    format!("at most {} devices per stream", live::MAX_DEVICES),
                ));
            }
            Some(ids)
        }
    };
    let now = calendar::now_ms();
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(q.last_event_id)
        .and_then(|id| parse_event_id(&id))
        .filter(|(l, a)| now - (*l).min(*a) < RESUME_WINDOW_MS);
    let slot = k
        .telemetry
        .live
        .open(session.user_id(), MAX_STREAMS_PER_USER)
        .ok_or_else(|| {
            let mut e = ApiError::new(
                ErrorCode::TooManyAttempts,
                format!("at most {MAX_STREAMS_PER_USER} live streams at a time; close one"),
            );
            e.retry_after = Some(10);
            e
        })?;
    let (latest, alerts) = resume.unwrap_or((now, now));
    let state = Stream {
        changes: k.telemetry.live.changes(),
        closing: k.telemetry.live.closing(),
        k,
        session,
        headers,
        devices,
        scope,
        checked: Instant::now(),
        last_poll: Instant::now()
            .checked_sub(MIN_GAP)
            .unwrap_or_else(Instant::now),
        fresh: resume.is_none(),
        page_latest: None,
        page_alerts: None,
        latest,
        alerts,
        sent_latest: HashMap::new(),
        sent_alerts: HashMap::new(),
        _slot: slot,
    };
    let first = Event::default().retry(RETRY).comment("tianshan live");
    let events = futures_util::stream::once(async move { vec![first] })
        .chain(futures_util::stream::unfold(state, Stream::next))
        .flat_map(|batch| futures_util::stream::iter(batch.into_iter().map(Ok::<_, Infallible>)));
    Ok(crate::http::session::event_stream(events))
}

/// One open stream: its caller, cursors, and what it sent lately. Its
/// memory is bounded: one poll's page and [`REMEMBERED`] entries.
struct Stream {
    k: Arc<Kernel>,
    /// The caller and the request's credentials, to check them again now
    /// and then.
    session: Session,
    headers: HeaderMap,
    devices: Option<Vec<String>>,
    scope: Scope,
    checked: Instant,
    last_poll: Instant,
    changes: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
    /// The current values are still to be sent.
    fresh: bool,
    /// Where the next page starts when the last poll filled one: it
    /// follows at once, without reading back.
    page_latest: Option<live::LatestKey>,
    page_alerts: Option<live::AlertKey>,
    /// Stored-at cursors (this kernel's clocks) of latest values and alerts.
    latest: i64,
    alerts: i64,
    /// (device, channel) → (at, stored) sent within the read-back window.
    sent_latest: HashMap<(String, String), (i64, i64)>,
    /// Alert id → stored, sent within the read-back window.
    sent_alerts: HashMap<i64, i64>,
    _slot: Slot,
}

impl Stream {
    async fn next(mut self) -> Option<(Vec<Event>, Stream)> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            if self.fresh {
                self.fresh = false;
                match self.snapshot().await {
                    Ok(events) if !events.is_empty() => return Some((events, self)),
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "live stream: reading current values failed")
                    }
                }
            }
            if self.page_latest.is_none() && self.page_alerts.is_none() {
                tokio::select! {
                    _ = self.changes.changed() => {}
                    _ = tokio::time::sleep(TICK) => {}
                    _ = self.closing.wait_for(|c| *c) => return None,
                }
                let since = self.last_poll.elapsed();
                if since < MIN_GAP {
                    tokio::time::sleep(MIN_GAP - since).await;
                }
            }
            if self.checked.elapsed() > RECHECK {
                self.scope = self.recheck().await?;
                self.checked = Instant::now();
            }
            self.last_poll = Instant::now();
            match self.poll().await {
                Ok(events) if !events.is_empty() => return Some((events, self)),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "live stream: poll failed");
                    self.page_latest = None;
                    self.page_alerts = None;
                }
            }
        }
    }

    /// The caller's scope now; none (the stream ends) when they are
    /// signed out (or their session went idle: this check is no activity),
    /// no longer reach the org, or the plugin is gone for them.
    async fn recheck(&self) -> Option<Scope> {
        let session =
            crate::http::session::still_signed_in(&self.k, &self.session, &self.headers).await?;
        if !self.k.authz.reaches(session.user_id(), session.org()) {
            return None;
        }
        stream_scope(&self.k, &self.scope.plugin, &session).ok()
    }

    fn latest_event(&self, l: &live::LiveLatest, id: String) -> Event {
        Event::default()
            .event("latest")
            .id(id)
            .data(serde_json::to_string(l).unwrap_or_default())
    }

    /// The current values, newest first; alerts from now on.
    async fn snapshot(&mut self) -> Result<Vec<Event>, ServiceError> {
        let since = self.latest - live::OVERLAP_MS;
        let rows = self
            .k
            .telemetry
            .live_latest(&self.scope, self.devices.as_deref(), None, SNAPSHOT)
            .await?;
        let mut events = Vec::with_capacity(rows.items.len());
        for l in rows.items.iter().rev() {
            if l.stored_at > since {
                self.sent_latest
                    .insert((l.device.clone(), l.channel.clone()), (l.at, l.stored_at));
            }
            events.push(self.latest_event(l, format!("{}.{}", self.latest, self.alerts)));
        }
        // Alerts of the read-back window are not new to this stream.
        let recent = self
            .k
            .telemetry
            .live_alerts(&self.scope, self.devices.as_deref(), (since, 0), live::PAGE)
            .await?;
        for a in recent.items {
            self.sent_alerts.insert(a.id, a.stored_at);
        }
        Ok(events)
    }

    async fn poll(&mut self) -> Result<Vec<Event>, ServiceError> {
        // Read back a little (what committed late), unless a full page
        // left more to read.
        let from_latest = self.page_latest.take().unwrap_or((
            self.latest - live::OVERLAP_MS,
            String::new(),
            String::new(),
        ));
        let from_alerts = self
            .page_alerts
            .take()
            .unwrap_or((self.alerts - live::OVERLAP_MS, 0));
        let latest = self
            .k
            .telemetry
            .live_latest(
                &self.scope,
                self.devices.as_deref(),
                Some(&from_latest),
                live::PAGE,
            )
            .await?;
        let alerts = self
            .k
            .telemetry
            .live_alerts(
                &self.scope,
                self.devices.as_deref(),
                from_alerts,
                live::PAGE,
            )
            .await?;
        if latest.full {
            self.page_latest = latest.last.clone();
        }
        if alerts.full {
            self.page_alerts = alerts.last;
        }
        let mut events = Vec::new();
        let alerts_before = self.alerts;
        for l in &latest.items {
            let key = (l.device.clone(), l.channel.clone());
            if self.sent_latest.get(&key) == Some(&(l.at, l.stored_at)) {
                continue;
            }
            self.latest = self.latest.max(l.stored_at);
            events.push(self.latest_event(l, format!("{}.{alerts_before}", l.stored_at)));
            self.sent_latest.insert(key, (l.at, l.stored_at));
        }
        if let Some((stored, ..)) = latest.last {
            self.latest = self.latest.max(stored);
        }
        for a in &alerts.items {
            if self.sent_alerts.contains_key(&a.id) {
                continue;
            }
            self.alerts = self.alerts.max(a.stored_at);
            events.push(
                Event::default()
                    .event("alert")
                    .id(format!("{}.{}", self.latest, a.stored_at))
                    .data(serde_json::to_string(a).unwrap_or_default()),
            );
            self.sent_alerts.insert(a.id, a.stored_at);
        }
        if let Some((stored, _)) = alerts.last {
            self.alerts = self.alerts.max(stored);
        }
        // Forget what can no longer be read back; past the bound, all of it.
        let (lo_l, lo_a) = (
            self.latest - live::OVERLAP_MS,
            self.alerts - live::OVERLAP_MS,
        );
        self.sent_latest.retain(|_, (_, stored)| *stored > lo_l);
        self.sent_alerts.retain(|_, stored| *stored > lo_a);
        if self.sent_latest.len() > REMEMBERED {
            self.sent_latest.clear();
        }
        if self.sent_alerts.len() > REMEMBERED {
            self.sent_alerts.clear();
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_carry_two_cursors() {
        assert_eq!(
            parse_event_id("1764547200000.1764547199000"),
            Some((1_764_547_200_000, 1_764_547_199_000))
        );
        assert_eq!(parse_event_id("17"), None);
        assert_eq!(parse_event_id("a.b"), None);
    }

    #[test]
    fn times_in_the_region() {
        // 2025-03-01 08:00 in UTC+8 is 00:00 UTC.
        assert_eq!(parse_time("2025-03-01 08:00", 480), Some(1_740_787_200_000));
        assert_eq!(
            parse_time("2025/03/01 08:00:00", 480),
            Some(1_740_787_200_000)
        );
        assert_eq!(parse_time("1740787200000", 480), Some(1_740_787_200_000));
        assert_eq!(parse_time("2025-02-30 08:00", 480), None);
        assert_eq!(parse_time("yesterday", 480), None);
    }

    fn csv(text: &str) -> ApiResult<Vec<Raw>> {
        parse_sheet(read_sheet(text.as_bytes())?, 480)
    }

    #[test]
    fn a_bill_sheet_reads() {
        let rows =
            csv("\u{feff}Device,Channel,At,Value\nm1,kwh,2025-03-01 08:00,1520.5\n\n").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].value, 1520.5);
        assert!(csv("device,at,value\n").is_err());
        assert!(csv("device,channel,at,value\nm1,kwh,soon,1\n").is_err());
        // A title row above Chinese headers.
        let rows =
            csv("2025年3月抄表记录\n表号,计量项,抄表时间,读数\nm1,kwh,2025/03/01 08:00,1520.5\n")
                .unwrap();
        assert_eq!(rows[0].at, 1_740_787_200_000);
    }

    #[test]
    fn a_workbook_reads_with_excel_dates() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (c, h) in ["设备编号", "通道", "时间", "读数"].iter().enumerate() {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        sheet.write_string(1, 0, "m1").unwrap();
        sheet.write_string(1, 1, "kwh").unwrap();
        // 2025-03-01 08:00 local: serial 45717 + 8/24.
        sheet.write_number(1, 2, 45_717.0 + 8.0 / 24.0).unwrap();
        sheet.write_number(1, 3, 1520.5).unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let rows = parse_sheet(read_sheet(&bytes).unwrap(), 480).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].at, 1_740_787_200_000);
        assert_eq!(rows[0].value, 1520.5);
    }
}
