//! The kernel API of datacenter: HTTP handlers over the service.

use crate::core::error::{ApiError, ApiResult, ErrorCode};
use crate::http::routes::Routes;
use crate::http::session::{Caller, Session, parse_json, read_body};
use crate::node::Kernel;
use crate::services::datacenter::*;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

// ------------------------------------------------------------- HTTP API

type AppState = Arc<Kernel>;

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/v1/datacenter/indicators", list_indicators)
        .get("/api/v1/datacenter/indicators/{code}", show_indicator)
        .get(
            "/api/v1/datacenter/indicators/{code}/values",
            indicator_values,
        )
        .post("/api/v1/datacenter/indicators/{code}/values", enter_values)
        .put("/api/v1/datacenter/indicators/{code}/sharing", set_sharing)
        .get("/api/v1/datacenter/plan", plan_progress)
        .get("/api/v1/datacenter/overview", overview)
        .get("/api/v1/datacenter/stream", stream)
        .get("/api/v1/open/datasets", open_list)
        .get("/api/v1/open/datasets/{code}", open_values)
}

/// Resolves an org id or code; `None` when unknown.
pub(crate) async fn resolve_org(k: &Kernel, id_or_code: &str) -> ApiResult<Option<String>> {
    if k.authz.orgs().exists(id_or_code) {
        return Ok(Some(id_or_code.to_string()));
    }
    Ok(sqlx::query_scalar("SELECT id FROM orgs WHERE code = $1")
        .bind(id_or_code)
        .fetch_optional(&k.db)
        .await?)
}

/// The org a user asks about, if they may use `permission` there; 404
/// otherwise, so an org outside reach looks like a missing one. Without
/// one, the org they act for, where they need it too (403 there). An org
/// asked for is checked on its own: a county officer with only a plugin
/// role where they act still reads their own unit's figures.
async fn org_for(
    k: &Kernel,
    session: &Session,
    org: Option<&str>,
    permission: &str,
) -> ApiResult<String> {
    let Some(asked) = org else {
        session.require(k, session.org(), permission).await?;
        return Ok(session.org().to_string());
    };
    match resolve_org(k, asked).await? {
        Some(id) if session.may(k, &id, permission) => Ok(id),
        _ => Err(ApiError::not_found(format!("org {asked} not found")).with_field("org")),
    }
}

/// The orgs `rows` name, by id, with their codes and names: files carry
/// the code, the JSON answer names each org so a page needs no further
/// call per row (the open page has no session to make one).
async fn orgs_named(k: &Kernel, rows: &[Row]) -> ApiResult<BTreeMap<String, OrgInfo>> {
    let mut out = BTreeMap::new();
    for org in rows
        .iter()
        .map(|r| &r.org)
        .collect::<std::collections::BTreeSet<_>>()
    {
        let row = sqlx::query(
            "SELECT id, parent_id, level, code, name_zh, name_en FROM orgs WHERE id = $1",
        )
        .bind(org)
        .fetch_optional(&k.db)
        .await?;
        if let Some(r) = row {
            out.insert(org.clone(), OrgInfo::from_row(&r));
        }
    }
    Ok(out)
}

fn codes_of(orgs: &BTreeMap<String, OrgInfo>) -> BTreeMap<String, String> {
    orgs.iter()
        .map(|(id, o)| (id.clone(), o.code.clone()))
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ValuesParams {
    org: Option<String>,
    from: Option<String>,
    to: Option<String>,
    rollup: Option<bool>,
    group: Option<GroupBy>,
    per: Option<Granularity>,
    format: Option<String>,
}

async fn list_indicators(
    State(k): State<AppState>,
    Caller(session): Caller,
) -> ApiResult<Json<Value>> {
    session
        .require(&k, session.org(), "kernel.datacenter.read")
        .await?;
    let indicators = k.datacenter.catalogue(Reader::User).await?;
    Ok(Json(json!({ "indicators": indicators })))
}

async fn show_indicator(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    session
        .require(&k, session.org(), "kernel.datacenter.read")
        .await?;
    let indicator = k.datacenter.readable(&code, Reader::User).await?;
    Ok(Json(json!({ "indicator": indicator })))
}

async fn answer(
    k: &Kernel,
    indicator: &Indicator,
    q: &ValueQuery,
    format: Option<&str>,
) -> ApiResult<Response> {
    let format = format.unwrap_or("json");
    if !matches!(format, "json" | "csv" | "xlsx") {
        return Err(ApiError::validation(
            "format",
            format!("format {format:?}: use json, csv or xlsx"),
        ));
    }
    let rows = k.datacenter.query(indicator, &k.authz.orgs(), q).await?;
    let orgs = orgs_named(k, &rows).await?;
    let filename = indicator.code.replace('.', "-");
    match format {
        "json" => Ok(Json(json!({
            "indicator": indicator.code,
            "unit": indicator.unit,
            "aggregation": indicator.aggregation,
            "rollup": q.rollup,
            "rows": rows,
            "orgs": orgs,
        }))
        .into_response()),
        "csv" => {
            let codes = codes_of(&orgs);
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{filename}.csv\""),
                    ),
                ],
                to_csv(indicator, &rows, &codes),
            )
                .into_response())
        }
        "xlsx" => {
            let codes = codes_of(&orgs);
            let bytes = to_xlsx(indicator, &rows, &codes).map_err(ApiError::internal)?;
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_string(),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{filename}.xlsx\""),
                    ),
                ],
                bytes,
            )
                .into_response())
        }
        _ => unreachable!("checked above"),
    }
}

async fn indicator_values(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(code): Path<String>,
    Query(p): Query<ValuesParams>,
) -> ApiResult<Response> {
    let org = org_for(&k, &session, p.org.as_deref(), "kernel.datacenter.read").await?;
    let indicator = k.datacenter.readable(&code, Reader::User).await?;
    let q = ValueQuery {
        org,
        from: p.from,
        to: p.to,
        rollup: p.rollup.unwrap_or(true),
        group: p.group.unwrap_or_default(),
        per: p.per,
    };
    answer(&k, &indicator, &q, p.format.as_deref()).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueInput {
    org: Option<String>,
    period: String,
    value: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValuesInput {
    values: Vec<ValueInput>,
}

/// Manual entry, for the kernel's own (the plan's) indicators: a plugin's
/// indicators are written by that plugin only, so its numbers stay its own.
async fn enter_values(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(code): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    session
        .require(&k, session.org(), "kernel.datacenter.write")
        .await?;
    let input: ValuesInput = parse_json(&read_body(body, 1 << 20).await?)?;
    let indicator = k.datacenter.readable(&code, Reader::User).await?;
    if indicator.owner != KERNEL_OWNER {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "indicator {code} belongs to plugin {}; only it publishes values",
                indicator.owner
            ),
        ));
    }
    let mut points = Vec::with_capacity(input.values.len());
    for v in input.values {
        let org = org_for(&k, &session, v.org.as_deref(), "kernel.datacenter.read").await?;
        session.require(&k, &org, "kernel.datacenter.write").await?;
        points.push(Point {
            org,
            period: v.period,
            value: v.value,
        });
    }
    let n = k
        .datacenter
        .publish(
            &indicator,
            KERNEL_OWNER,
            session.user_id(),
            session.org(),
            &points,
        )
        .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({ "stored": n })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantInput {
    plugin: String,
    access: Access,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SharingInput {
    sharing: Sharing,
    #[serde(default)]
    grants: Vec<GrantInput>,
}

/// Sharing is a platform decision: it is asked at the root org.
async fn set_sharing(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(code): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    session
        .require(&k, &k.root_org, "kernel.datacenter.share")
        .await?;
    let input: SharingInput = parse_json(&read_body(body, 1 << 20).await?)?;
    let mut grants: Vec<Grant> = Vec::new();
    for g in input.grants {
        if !crate::core::ids::is_valid_id(&g.plugin) {
            return Err(ApiError::validation(
                "grants",
                format!("{:?} is not a plugin id", g.plugin),
            ));
        }
        grants.retain(|x| x.plugin != g.plugin);
        grants.push(Grant {
            plugin: g.plugin,
            access: g.access,
        });
    }
    let indicator = k
        .datacenter
        .set_sharing(&code, session.user_id(), input.sharing, &grants)
        .await?;
    Ok(Json(json!({ "indicator": indicator })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanParams {
    org: Option<String>,
    period: Option<String>,
}

async fn plan_progress(
    State(k): State<AppState>,
    Caller(session): Caller,
    Query(p): Query<PlanParams>,
) -> ApiResult<Json<Value>> {
    let org = org_for(&k, &session, p.org.as_deref(), "kernel.datacenter.read").await?;
    let progress = k
        .datacenter
        .plan(&k.authz.orgs(), &org, p.period.as_deref())
        .await?;
    Ok(Json(
        json!({ "org": org, "period": p.period, "indicators": progress }),
    ))
}

async fn open_list(State(k): State<AppState>) -> ApiResult<Json<Value>> {
    let datasets = k.datacenter.catalogue(Reader::Anonymous).await?;
    Ok(Json(json!({ "datasets": datasets })))
}

/// Open data: rolled-up values of open indicators, for any org, without
/// login. Raw per-org rows are not served here; `group=org` shows the
/// level below.
async fn open_values(
    State(k): State<AppState>,
    Path(code): Path<String>,
    Query(p): Query<ValuesParams>,
) -> ApiResult<Response> {
    let indicator = k.datacenter.readable(&code, Reader::Anonymous).await?;
    let org = match p.org.as_deref() {
        None => k.root_org.clone(),
        Some(asked) => resolve_org(&k, asked).await?.ok_or_else(|| {
            ApiError::not_found(format!("org {asked} not found")).with_field("org")
        })?,
    };
    if p.rollup == Some(false) {
        return Err(ApiError::validation(
            "rollup",
            "the open API serves rolled-up values only",
        ));
    }
    let q = ValueQuery {
        org,
        from: p.from,
        to: p.to,
        rollup: true,
        group: p.group.unwrap_or_default(),
        per: p.per,
    };
    answer(&k, &indicator, &q, p.format.as_deref()).await
}

// ------------------------------------------------------------- the wall

/// One org as the wall names it.
#[derive(serde::Serialize)]
pub(crate) struct OrgInfo {
    id: String,
    parent: Option<String>,
    level: String,
    code: String,
    name: BTreeMap<String, String>,
}

impl OrgInfo {
    /// From `SELECT id, parent_id, level, code, name_zh, name_en`.
    fn from_row(r: &sqlx::any::AnyRow) -> OrgInfo {
        use sqlx::Row as _;
        OrgInfo {
            id: r.get(0),
            parent: r.get(1),
            level: r.get(2),
            code: r.get(3),
            name: BTreeMap::from([
                ("zh-CN".to_string(), r.get(4)),
                ("en".to_string(), r.get(5)),
            ]),
        }
    }
}

/// `org` and its active children, children by code (the order the wall's
/// schematic map lays them out in).
pub(crate) async fn org_and_children(k: &Kernel, org: &str) -> ApiResult<(OrgInfo, Vec<OrgInfo>)> {
    let rows = sqlx::query(
        "SELECT id, parent_id, level, code, name_zh, name_en FROM orgs
         WHERE (id = $1 OR parent_id = $1) AND active = 1 ORDER BY code",
    )
    .bind(org)
    .fetch_all(&k.db)
    .await?;
    let mut own = None;
    let mut children = Vec::new();
    for r in rows {
        let info = OrgInfo::from_row(&r);
        if info.id == org {
            own = Some(info);
        } else {
            children.push(info);
        }
    }
    let own = own.ok_or_else(|| ApiError::not_found(format!("org {org} not found")))?;
    Ok((own, children))
}

/// `GET /api/v1/datacenter/overview?org=&period=`: everything the LED wall
/// shows of one org in one answer (`services/datacenter/overview.rs`), the
/// org and the orgs one level below, and the approvals running in its
/// subtree when the caller may read approvals there (null otherwise).
/// Reach is checked as for `plan`: an org outside it is 404.
async fn overview(
    State(k): State<AppState>,
    Caller(session): Caller,
    Query(p): Query<PlanParams>,
) -> ApiResult<Json<Value>> {
    let org = org_for(&k, &session, p.org.as_deref(), "kernel.datacenter.read").await?;
    let orgs = k.authz.orgs();
    let overview = k
        .datacenter
        .overview(&orgs, &org, p.period.as_deref())
        .await?;
    let approvals_running = if session.may(&k, &org, crate::services::approvals::READ_PERMISSION) {
        let subtree = orgs.subtree(&org).into_iter().collect();
        Some(k.approvals.running_count(&subtree).await?)
    } else {
        None
    };
    let (own, children) = org_and_children(&k, &org).await?;
    Ok(Json(json!({
        "org": own,
        "children": children,
        "period": p.period,
        "progress": overview.progress,
        "rankings": overview.rankings,
        "trends": overview.trends,
        "approvals_running": approvals_running,
        "generated_at": crate::core::calendar::now_ms(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamParams {
    org: Option<String>,
}

/// Wall streams one user may hold open on one node; past it, 429.
pub const MAX_STREAMS_PER_USER: u32 = 10;
/// How often a stream checks again that its caller is signed in and still
/// reaches the org.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(30);
/// Reconnect delay the stream asks of the browser's `EventSource`.
const RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /api/v1/datacenter/stream?org=`: server-sent events telling the
/// wall that values in the org's subtree changed on this node — `changed`
/// (`{"code"}`) after a publish or a manual entry, `resync` (`{}`) when the
/// stream fell behind and the wall should read everything again — and a
/// heartbeat comment every 15 s. The org is checked as for `overview`
/// (404 outside reach; 429 past ten streams of one user on this node); the
/// stream ends when the caller signs out or loses the org, and when the
/// node shuts down (the browser then reconnects).
async fn stream(
    State(k): State<AppState>,
    Caller(session): Caller,
    headers: axum::http::HeaderMap,
    Query(p): Query<StreamParams>,
) -> ApiResult<Response> {
    use axum::response::sse::Event;
    use futures_util::StreamExt as _;
    let org = org_for(&k, &session, p.org.as_deref(), "kernel.datacenter.read").await?;
    let slot = k
        .datacenter
        .open_stream(session.user_id(), MAX_STREAMS_PER_USER)
        .ok_or_else(|| {
            let mut e = ApiError::new(
                ErrorCode::TooManyAttempts,
                format!("at most {MAX_STREAMS_PER_USER} wall streams at a time; close one"),
            );
            e.retry_after = Some(10);
            e
        })?;
    let state = WallStream {
        _slot: slot,
        changes: k.datacenter.changes(),
        closing: k.datacenter.closing(),
        k,
        session,
        headers,
        org,
        checked: std::time::Instant::now(),
    };
    let first = Event::default().retry(RETRY).comment("tianshan wall");
    let events = futures_util::stream::once(async move { first })
        .chain(futures_util::stream::unfold(state, WallStream::next))
        .map(Ok::<_, std::convert::Infallible>);
    Ok(crate::http::session::event_stream(events))
}

/// One open wall stream: who watches which org.
struct WallStream {
    k: Arc<Kernel>,
    session: Session,
    headers: axum::http::HeaderMap,
    org: String,
    changes: tokio::sync::broadcast::Receiver<Arc<Change>>,
    closing: tokio::sync::watch::Receiver<bool>,
    checked: std::time::Instant,
    _slot: crate::services::datacenter::overview::Slot,
}

enum Woke {
    Closing,
    Recheck,
    Got(std::result::Result<Arc<Change>, tokio::sync::broadcast::error::RecvError>),
}

impl WallStream {
    async fn next(mut self) -> Option<(axum::response::sse::Event, WallStream)> {
        use axum::response::sse::Event;
        use tokio::sync::broadcast::error::RecvError;
        loop {
            if *self.closing.borrow() {
                return None;
            }
            let wait = RECHECK.saturating_sub(self.checked.elapsed());
            let woke = tokio::select! {
                _ = self.closing.wait_for(|c| *c) => Woke::Closing,
                _ = tokio::time::sleep(wait) => Woke::Recheck,
                got = self.changes.recv() => Woke::Got(got),
            };
            match woke {
                Woke::Closing | Woke::Got(Err(RecvError::Closed)) => return None,
                Woke::Recheck => {
                    if !self.still_allowed().await {
                        return None;
                    }
                    self.checked = std::time::Instant::now();
                }
                Woke::Got(Ok(change)) => {
                    let orgs = self.k.authz.orgs();
                    // Only changes inside the org the caller was let see.
                    if change.orgs.iter().any(|o| orgs.is_within(o, &self.org)) {
                        let data = json!({ "code": change.code }).to_string();
                        return Some((Event::default().event("changed").data(data), self));
                    }
                }
                // Fell behind: which orgs changed is lost, so the wall
                // reads its own org again (it learns nothing of others).
                Woke::Got(Err(RecvError::Lagged(_))) => {
                    return Some((Event::default().event("resync").data("{}"), self));
                }
            }
        }
    }

    /// Whether the caller is still signed in (a session that went idle
    /// counts as signed out: this check is no activity) and still may read
    /// the org.
    async fn still_allowed(&self) -> bool {
        let Some(session) =
            crate::http::session::still_signed_in(&self.k, &self.session, &self.headers).await
        else {
            return false;
        };
        session.may(&self.k, &self.org, "kernel.datacenter.read")
    }
}
