//! The kernel API of approvals: HTTP handlers over the service.

use crate::core::error::{ApiError, ApiResult, ServiceError};
use crate::http::routes::Routes;
use crate::http::session::{Caller, Session, parse_json, read_body};
use crate::services::approvals::*;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

// ---------------------------------------------------------------- HTTP API

type AppState = Arc<crate::node::Kernel>;

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/v1/todos", todos)
        .get("/api/v1/approvals/{id}", show)
        .post_each(
            "/api/v1/approvals/{id}/{action}",
            "{action}",
            &[
                "approve",
                "reject",
                "withdraw",
                "reassign",
                "add-approver",
                "copy-to",
                "comment",
                "attach",
                "urge",
                "claim",
                "unclaim",
                "delegate",
                "read",
            ],
            act,
        )
        .get("/api/v1/me/delegation", show_delegation)
        .put("/api/v1/me/delegation", set_delegation)
        .delete("/api/v1/me/delegation", clear_delegation)
        .get("/api/v1/approval-flows", list_flows)
        .put("/api/v1/approval-flows/{plugin}/{name}", set_flow_policy)
}

/// The caller's delegation while away (出差代理), `{delegation: null}` when
/// none is set or it is over.
async fn show_delegation(
    State(k): State<AppState>,
    Caller(session): Caller,
) -> ApiResult<Json<Value>> {
    let delegation = k.approvals.delegation_of(session.user_id()).await?;
    Ok(Json(json!({ "delegation": delegation })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DelegationBody {
    delegate: String,
    from: String,
    until: String,
    #[serde(default)]
    note: Option<String>,
}

/// `{delegate, from, until, note}`: while away, the steps entered hand the
/// caller's tasks to a colleague of the same unit.
async fn set_delegation(
    State(k): State<AppState>,
    Caller(session): Caller,
    body: Body,
) -> ApiResult<Json<Value>> {
    let b: DelegationBody = parse_json(&read_body(body, 1 << 16).await?)?;
    let delegation = k
        .approvals
        .set_delegation(
            session.user_id(),
            b.delegate.trim(),
            b.from.trim(),
            b.until.trim(),
            b.note,
        )
        .await?;
    Ok(Json(json!({ "delegation": delegation })))
}

async fn clear_delegation(
    State(k): State<AppState>,
    Caller(session): Caller,
) -> ApiResult<StatusCode> {
    k.approvals.clear_delegation(session.user_id()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every plugin's flows with their separation-of-duties setting: the
/// platform administrator's view, since only they may change it.
async fn list_flows(State(k): State<AppState>, Caller(session): Caller) -> ApiResult<Json<Value>> {
    session
        .require(&k, &k.root_org, crate::identity::authz::PLATFORM_DECISION)
        .await?;
    Ok(Json(json!({ "flows": k.approvals.flows().await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowPolicy {
    /// Let an applicant approve their own instances of this flow (a unit
    /// of one person); off by default.
    #[serde(default)]
    allow_self_approval: Option<bool>,
    /// 审批人去重: approve a step for the person who approved the step
    /// just before; off by default.
    #[serde(default)]
    auto_approve_repeat: Option<bool>,
}

async fn set_flow_policy(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path((plugin, name)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Value>> {
    session
        .require(&k, &k.root_org, crate::identity::authz::PLATFORM_DECISION)
        .await?;
    let bytes = read_body(body, 4096).await?;
    let policy: FlowPolicy = parse_json(&bytes)?;
    if policy.allow_self_approval.is_none() && policy.auto_approve_repeat.is_none() {
        return Err(ApiError::validation(
            "allow_self_approval",
            "set allow_self_approval or auto_approve_repeat",
        ));
    }
    let missing = |e: ServiceError| match e {
        ServiceError::NotFound(_) => ApiError::not_found(format!("{plugin} has no flow {name:?}")),
        e => e.into(),
    };
    if let Some(allowed) = policy.allow_self_approval {
        k.approvals
            .set_self_approval(&plugin, &name, allowed, session.user_id())
            .await
            .map_err(missing)?;
    }
    if let Some(on) = policy.auto_approve_repeat {
        k.approvals
            .set_auto_approve_repeat(&plugin, &name, on, session.user_id())
            .await
            .map_err(missing)?;
    }
    let flow = k
        .approvals
        .flows()
        .await?
        .into_iter()
        .find(|f| f["plugin"] == plugin.as_str() && f["name"] == name.as_str())
        .unwrap_or(Value::Null);
    Ok(Json(flow))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TodoQuery {
    kind: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn todos(
    State(k): State<AppState>,
    Caller(session): Caller,
    Query(q): Query<TodoQuery>,
) -> ApiResult<Json<Value>> {
    let kind = match q.kind.as_deref() {
        None | Some("") | Some("pending") => TodoKind::Pending,
        Some("copied") => TodoKind::Copied,
        Some("started") => TodoKind::Started,
        Some(_) => {
            return Err(ApiError::validation("kind", "pending, copied or started"));
        }
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let offset = q.offset.unwrap_or(0).max(0);
    Ok(Json(
        k.approvals
            .todos(session.user_id(), kind, limit, offset)
            .await?,
    ))
}

/// The instance when `session` may see it: participants and copied users,
/// and admins holding [`READ_PERMISSION`] at its org. Anyone else gets 404,
/// so the existence of an approval does not leak.
async fn visible(k: &crate::node::Kernel, session: &Session, id: &str) -> ApiResult<Instance> {
    let inst = k
        .approvals
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("approval not found"))?;
    if k.approvals.is_participant(id, session.user_id()).await?
        || session.may(k, &inst.org, READ_PERMISSION)
    {
        Ok(inst)
    } else {
        Err(ApiError::not_found("approval not found"))
    }
}

async fn show(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let inst = visible(&k, &session, &id).await?;
    Ok(Json(k.approvals.detail(&inst, session.user_id()).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    comment: Option<String>,
    to_step: Option<i64>,
    to: Option<String>,
    user: Option<String>,
    users: Option<Vec<String>>,
    text: Option<String>,
    #[serde(rename = "ref")]
    reference: Option<String>,
    name: Option<String>,
}

fn required(value: Option<String>, field: &'static str) -> ApiResult<String> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::validation(field, format!("{field} is required")))
}

async fn act(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path((id, action)): Path<(String, String)>,
    body: Body,
) -> ApiResult<impl IntoResponse> {
    let bytes = read_body(body, 1 << 20).await?;
    let b: ActionBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        ActionBody::default()
    } else {
        parse_json(&bytes)?
    };
    let action = match action.as_str() {
        "approve" => Action::Approve { comment: b.comment },
        "reject" => Action::Reject {
            to_step: b.to_step,
            comment: b.comment,
        },
        "withdraw" => Action::Withdraw { comment: b.comment },
        "reassign" => Action::Reassign {
            to: required(b.to, "to")?,
            comment: b.comment,
        },
        "add-approver" => Action::AddApprover {
            user: required(b.user, "user")?,
            comment: b.comment,
        },
        "copy-to" => Action::CopyTo {
            users: b
                .users
                .ok_or_else(|| ApiError::validation("users", "users is required"))?,
        },
        "comment" => Action::Comment {
            text: required(b.text, "text")?,
        },
        "attach" => Action::Attach {
            reference: required(b.reference, "ref")?,
            name: required(b.name, "name")?,
        },
        "urge" => Action::Urge { comment: b.comment },
        "claim" => Action::Claim,
        "unclaim" => Action::Unclaim,
        "read" => Action::Read,
        "delegate" => Action::Delegate {
            to: required(b.to, "to")?,
            comment: b.comment,
        },
        _ => return Err(ApiError::not_found("no such approval action")),
    };
    let inst = visible(&k, &session, &id).await?;
    let inst = k.approvals.act(&inst.id, session.user_id(), action).await?;
    Ok((
        StatusCode::OK,
        Json(k.approvals.detail(&inst, session.user_id()).await?),
    ))
}
