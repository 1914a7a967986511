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
        .get("/api/v1/open/datasets", open_list)
        .get("/api/v1/open/datasets/{code}", open_values)
}

/// Resolves an org id or code; `None` when unknown.
async fn resolve_org(k: &Kernel, id_or_code: &str) -> ApiResult<Option<String>> {
    if k.authz.orgs().exists(id_or_code) {
        return Ok(Some(id_or_code.to_string()));
    }
    Ok(sqlx::query_scalar("SELECT id FROM orgs WHERE code = $1")
        .bind(id_or_code)
        .fetch_optional(&k.db)
        .await?)
}

/// The org a user asks about, if they may use `permission` there; 404
/// otherwise, so an org outside reach looks like a missing one.
async fn org_for(
    k: &Kernel,
    session: &Session,
    org: Option<&str>,
    permission: &str,
) -> ApiResult<String> {
    let Some(asked) = org else {
        return Ok(session.org().to_string());
    };
    match resolve_org(k, asked).await? {
        Some(id) if session.may(k, &id, permission) => Ok(id),
        _ => Err(ApiError::not_found(format!("org {asked} not found")).with_field("org")),
    }
}

async fn org_codes(k: &Kernel, rows: &[Row]) -> ApiResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for org in rows
        .iter()
        .map(|r| &r.org)
        .collect::<std::collections::BTreeSet<_>>()
    {
        let code: Option<String> = sqlx::query_scalar("SELECT code FROM orgs WHERE id = $1")
            .bind(org)
            .fetch_optional(&k.db)
            .await?;
        if let Some(code) = code {
            out.insert(org.clone(), code);
        }
    }
    Ok(out)
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
    let filename = indicator.code.replace('.', "-");
    match format {
        "json" => Ok(Json(json!({
            "indicator": indicator.code,
            "unit": indicator.unit,
            "aggregation": indicator.aggregation,
            "rollup": q.rollup,
            "rows": rows,
        }))
        .into_response()),
        "csv" => {
            let codes = org_codes(k, &rows).await?;
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
            let codes = org_codes(k, &rows).await?;
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
    session
        .require(&k, session.org(), "kernel.datacenter.read")
        .await?;
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
    session
        .require(&k, session.org(), "kernel.datacenter.read")
        .await?;
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
