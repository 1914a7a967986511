//! The kernel API of dashboards (`services/datacenter/dashboards.rs`):
//! definitions per org, the panels plugins offer, and one answer with
//! every panel's data for the wall.
//!
//! A dashboard belongs to an org. Reading it (and its data) needs
//! `kernel.datacenter.read` there, changing it `kernel.datacenter.write`
//! there (and at the org it moves to); outside reach a dashboard answers
//! 404 like one that does not exist.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::core::error::{ApiError, ApiResult};
use crate::http::routes::Routes;
use crate::http::session::{Caller, Session, parse_json, read_body};
use crate::node::Kernel;
use crate::services::datacenter::dashboards::{Dashboard, Definition, PanelKind};

type AppState = Arc<Kernel>;

const READ: &str = "kernel.datacenter.read";
const WRITE: &str = "kernel.datacenter.write";

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/v1/dashboards", list)
        .post("/api/v1/dashboards", create)
        .get("/api/v1/dashboards/panels", offered_panels)
        .get("/api/v1/dashboards/{id}", show)
        .put("/api/v1/dashboards/{id}", replace)
        .delete("/api/v1/dashboards/{id}", remove)
        .get("/api/v1/dashboards/{id}/data", data)
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("dashboard {id} not found"))
}

/// The dashboard if the caller may use `permission` at its org.
async fn reachable(
    k: &Kernel,
    session: &Session,
    id: &str,
    permission: &str,
) -> ApiResult<Dashboard> {
    match k.datacenter.dashboard(id).await? {
        Some(d) if session.may(k, &d.org, READ) => {
            if permission != READ {
                session.require(k, &d.org, permission).await?;
            }
            Ok(d)
        }
        _ => Err(not_found(id)),
    }
}

/// An org named in a body or a query: within reach for `permission`, or
/// 404 naming `org`; the org the caller acts for when none.
async fn org_in_reach(
    k: &Kernel,
    session: &Session,
    asked: Option<&str>,
    permission: &str,
) -> ApiResult<String> {
    let Some(asked) = asked else {
        session.require(k, session.org(), permission).await?;
        return Ok(session.org().to_string());
    };
    match crate::http::datacenter::resolve_org(k, asked).await? {
        Some(id) if session.may(k, &id, READ) => {
            session.require(k, &id, permission).await?;
            Ok(id)
        }
        _ => Err(ApiError::not_found(format!("org {asked} not found")).with_field("org")),
    }
}

/// `GET /api/v1/dashboards`: the dashboards of every org the caller reads,
/// newest change first, with `editable` where they may change them.
async fn list(State(k): State<AppState>, Caller(session): Caller) -> ApiResult<Json<Value>> {
    let items: Vec<Value> = k
        .datacenter
        .dashboards()
        .await?
        .into_iter()
        .filter(|d| session.may(&k, &d.org, READ))
        .map(|d| {
            let editable = session.may(&k, &d.org, WRITE);
            let mut v = serde_json::to_value(&d).unwrap_or_default();
            v["editable"] = json!(editable);
            v
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
struct Body_ {
    #[serde(default)]
    org: Option<String>,
    #[serde(flatten)]
    definition: Value,
}

/// The body's org and definition (an unknown field is refused by the
/// definition's own parse, naming it).
fn split(bytes: &[u8]) -> ApiResult<(Option<String>, Definition)> {
    let body: Body_ = parse_json(bytes)?;
    let definition: Definition = serde_json::from_value(body.definition)
        .map_err(|e| ApiError::validation("body", e.to_string()))?;
    Ok((body.org, definition))
}

async fn create(
    State(k): State<AppState>,
    Caller(session): Caller,
    body: Body,
) -> ApiResult<Response> {
    let (org, def) = split(&read_body(body, 256 << 10).await?)?;
    let org = org_in_reach(&k, &session, org.as_deref(), WRITE).await?;
    let dashboard = k
        .datacenter
        .create_dashboard(session.user_id(), &org, def)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "dashboard": dashboard }))).into_response())
}

async fn show(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = reachable(&k, &session, &id, READ).await?;
    let editable = session.may(&k, &d.org, WRITE);
    Ok(Json(json!({ "dashboard": d, "editable": editable })))
}

async fn replace(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let current = reachable(&k, &session, &id, WRITE).await?;
    let (org, def) = split(&read_body(body, 256 << 10).await?)?;
    let org = match org {
        Some(org) => org_in_reach(&k, &session, Some(&org), WRITE).await?,
        None => current.org,
    };
    let dashboard = k
        .datacenter
        .replace_dashboard(&id, session.user_id(), &org, def)
        .await?;
    Ok(Json(json!({ "dashboard": dashboard })))
}

async fn remove(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let current = reachable(&k, &session, &id, WRITE).await?;
    k.datacenter
        .delete_dashboard(&id, session.user_id(), &current.org)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/dashboards/panels`: the panels enabled plugins offer in
/// their manifests, for the editor's palette — a plugin installed for one
/// org's subtree offers its panels where the caller reaches that org.
async fn offered_panels(
    State(k): State<AppState>,
    Caller(session): Caller,
) -> ApiResult<Json<Value>> {
    session.require(&k, session.org(), READ).await?;
    let mut items = Vec::new();
    for plugin in k.plugins.list() {
        if !plugin.enabled()
            || plugin
                .org_id
                .as_deref()
                .is_some_and(|org| !session.may(&k, org, READ))
        {
            continue;
        }
        for decl in &plugin.manifest.panels {
            items.push(json!({
                "plugin": plugin.manifest.id,
                "plugin_name": plugin.manifest.name,
                "id": decl.id,
                "panel": decl.panel(&plugin.manifest.id),
            }));
        }
    }
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataParams {
    org: Option<String>,
    period: Option<String>,
}

/// `GET /api/v1/dashboards/{id}/data?org=&period=`: the definition and each
/// panel's data at `org` (the dashboard's own by default; any org the
/// viewer reads otherwise), in the panels' order.
async fn data(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
    Query(p): Query<DataParams>,
) -> ApiResult<Json<Value>> {
    let d = reachable(&k, &session, &id, READ).await?;
    if let Some(period) = p.period.as_deref()
        && !(period.len() == 4 && period.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ApiError::validation("period", "a year, as YYYY"));
    }
    let org = match p.org.as_deref() {
        Some(asked) => org_in_reach(&k, &session, Some(asked), READ).await?,
        None => d.org.clone(),
    };
    let orgs = k.authz.orgs();
    let mut panels = Vec::with_capacity(d.panels.len());
    for panel in &d.panels {
        let data = if panel.kind == PanelKind::Approvals {
            if session.may(&k, &org, crate::services::approvals::READ_PERMISSION) {
                let subtree = orgs.subtree(&org).into_iter().collect();
                json!({ "running": k.approvals.running_count(&subtree).await? })
            } else {
                json!({ "running": null })
            }
        } else if let (PanelKind::Positions, Some(plugin)) = (panel.kind, &panel.plugin) {
            // A plugin not installed (or not the viewer's) shows as such,
            // the other panels still draw.
            match crate::http::telemetry::positions_of(&k, &session, plugin, &org).await {
                Ok(answer) => answer,
                Err(e) if e.status().is_client_error() => json!({ "unavailable": plugin }),
                Err(e) => return Err(e),
            }
        } else {
            k.datacenter
                .panel_data(&orgs, &org, p.period.as_deref(), panel)
                .await?
        };
        panels.push(json!({ "panel": panel, "data": data }));
    }
    let (own, children) = crate::http::datacenter::org_and_children(&k, &org).await?;
    Ok(Json(json!({
        "dashboard": d,
        "org": own,
        "children": children,
        "panels": panels,
        "generated_at": crate::core::calendar::now_ms(),
    })))
}
