//! The kernel API under `/api/v1/`: login and sessions, the org tree, users,
//! role bindings, API tokens, the audit trail, plugin management and the
//! portal's menu. Every handler decides access through
//! [`Session::require`](crate::http::session::Session::require) at the org the
//! record belongs to; a record in an org the caller cannot reach answers 404
//! so its existence does not leak.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::audit::{self, Entry};
use crate::core::error::{ApiError, ApiResult, ErrorCode};
use crate::core::ids::random_token;
use crate::db::now;
use crate::http::routes::Routes;
use crate::http::session::{Caller, Session, parse_json, read_body};
use crate::identity::auth::SESSION_COOKIE;
use crate::identity::authz;
use crate::identity::{orgs, users};
use crate::node::Kernel;
use crate::services::messaging::Messaging;

type AppState = Arc<Kernel>;

/// The kernel's own API: identity, plugins, files, audit, the portal.
/// `lib.rs` adds each host service's routes (`kernel_routes`).
pub fn routes() -> Routes {
    Routes::new()
        .post("/api/v1/auth/login", login)
        .post("/api/v1/auth/logout", logout)
        .post("/api/v1/auth/password", change_own_password)
        .get("/api/v1/auth/sessions", list_own_sessions)
        .delete("/api/v1/auth/sessions/{id}", end_own_session)
        .get("/api/v1/auth/csrf", crate::http::session::csrf_token)
        .get("/api/v1/me", me)
        .get("/api/v1/orgs", list_orgs)
        .post("/api/v1/orgs", create_org)
        .get("/api/v1/orgs/directory", org_directory)
        .get("/api/v1/orgs/{id}", show_org)
        .patch("/api/v1/orgs/{id}", update_org)
        .delete("/api/v1/orgs/{id}", delete_org)
        .get("/api/v1/post-ranks", post_ranks)
        .get("/api/v1/users", list_users)
        .post("/api/v1/users", create_user)
        .get("/api/v1/users/{id}", show_user)
        .patch("/api/v1/users/{id}", update_user)
        .post("/api/v1/users/{id}/password", reset_password)
        .post("/api/v1/users/{id}/unlock", unlock_user)
        .get("/api/v1/bindings", list_bindings)
        .post("/api/v1/bindings", create_binding)
        .delete("/api/v1/bindings/{id}", delete_binding)
        .get("/api/v1/tokens", list_tokens)
        .post("/api/v1/tokens", create_token)
        .delete("/api/v1/tokens/{id}", revoke_token)
        .get("/api/v1/audit", list_audit)
        .get("/api/v1/audit/export", export_audit)
        .get("/api/v1/audit/verify", verify_audit)
        .get("/api/v1/plugins", list_plugins)
        .post("/api/v1/plugins", install_plugin)
        .get("/api/v1/plugins/{id}", show_plugin)
        .put("/api/v1/plugins/{id}", upgrade_plugin)
        .delete("/api/v1/plugins/{id}", uninstall_plugin)
        .post("/api/v1/plugins/{id}/enable", enable_plugin)
        .post("/api/v1/plugins/{id}/disable", disable_plugin)
        .get("/api/v1/plugins/{id}/subscriptions", list_subscriptions)
        .put("/api/v1/plugins/{id}/subscriptions", grant_subscriptions)
        .get("/api/v1/plugins/{id}/events", list_published_events)
        .get("/api/v1/events/dead", list_dead_letters)
        .post(
            "/api/v1/events/dead/{subscriber}/{seq}/replay",
            replay_dead_letter,
        )
        .post("/api/v1/files", upload_file)
        .get("/api/v1/files/{id}", download_file)
        .delete("/api/v1/files/{id}", delete_file)
        .get("/api/v1/files/{id}/meta", file_meta)
        .get("/api/v1/portal/menu", portal_menu)
        .get("/api/v1/system", system_status)
}

async fn json_body<T: serde::de::DeserializeOwned>(body: Body) -> ApiResult<T> {
    parse_json(&read_body(body, 1 << 20).await?)
}

fn not_found_org(id: &str) -> ApiError {
    ApiError::not_found(format!("org {id} not found"))
}

/// `Ok` when `org` exists and the caller may see it; otherwise 404, so an
/// org outside the caller's reach is indistinguishable from a missing one.
/// Accepts an org id or an org code (GB/T 2260 or credit code), so clients
/// can name orgs the way people do.
async fn resolve_org(k: &Kernel, id_or_code: &str) -> ApiResult<String> {
    if k.authz.orgs().exists(id_or_code) {
        return Ok(id_or_code.to_string());
    }
    let id: Option<String> = sqlx::query_scalar("SELECT id FROM orgs WHERE code = $1")
        .bind(id_or_code)
        .fetch_optional(&k.db)
        .await?;
    Ok(id.unwrap_or_else(|| id_or_code.to_string()))
}

/// Accepts a user id or a username.
async fn resolve_user(k: &Kernel, id_or_name: &str) -> ApiResult<String> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM users WHERE id = $1 OR username = $1")
            .bind(id_or_name)
            .fetch_optional(&k.db)
            .await?;
    Ok(id.unwrap_or_else(|| id_or_name.to_string()))
}

fn visible_org(k: &Kernel, session: &Session, org: &str) -> ApiResult<()> {
    if k.authz.orgs().exists(org) && session.may(k, org, "kernel.orgs.read") {
        Ok(())
    } else {
        Err(not_found_org(org))
    }
}

// ---------------------------------------------------------------- sessions

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

/// The TCP peer's address, when the server was started with connect info.
struct PeerAddr(Option<std::net::IpAddr>);

impl axum::extract::FromRequestParts<AppState> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(PeerAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.ip()),
        ))
    }
}

async fn login(
    State(k): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let req: LoginRequest = json_body(body).await?;
    let username = req.username.trim().to_string();
    if username.is_empty() {
        return Err(ApiError::validation(
            "username",
            "username must not be empty",
        ));
    }
    let addr = k.throttle.client_of(peer, &headers);
    // The reservation, the check and the count finish even when the client
    // hangs up: a dropped request must neither escape the count nor leave
    // a reservation behind.
    let kernel = k.clone();
    let outcome =
        tokio::spawn(async move { checked_login(&kernel, &username, &req.password, addr).await })
            .await
            .map_err(ApiError::internal)??;
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes() == b"https");
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        outcome.token,
        k.config.auth.session_absolute_secs,
        if secure { "; Secure" } else { "" }
    );
    let body = json!({
        "token": outcome.token,
        "csrf_token": outcome.csrf_token,
        "expires_at": outcome.expires_at,
        "user": {
            "user_id": outcome.identity.user_id,
            "username": outcome.identity.username,
            "display_name": outcome.identity.display_name,
            "org_id": outcome.identity.home_org,
        },
    });
    let mut response = Json(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn checked_login(
    k: &Kernel,
    username: &str,
    password: &str,
    addr: Option<std::net::IpAddr>,
) -> ApiResult<crate::identity::auth::LoginOutcome> {
    let attempt = k.throttle.begin(username, addr).await?;
    let address = addr.map(|a| a.to_string());
    let verified = match k.auth.verify_credentials(username, password).await {
        Ok(verified) => verified,
        Err(e) => {
            k.throttle.failed(attempt).await?;
            k.audit
                .record(
                    Entry::new("anonymous", "auth.login", "failed")
                        .detail(json!({ "username": username, "address": address })),
                )
                .await;
            return Err(e);
        }
    };
    k.throttle
        .succeeded(attempt, Some(&verified.user_id))
        .await?;
    if verified.must_change_password {
        k.audit
            .record(
                Entry::new(&verified.user_id, "auth.login", "password_change_required")
                    .detail(json!({ "address": address })),
            )
            .await;
        return Err(ApiError::new(
            ErrorCode::PasswordChangeRequired,
            "an administrator set this password: choose your own before logging in",
        )
        .with_field("password"));
    }
    let mut write = k.audit.begin().await?;
    let opened = k
        .auth
        .open_session(&mut write, &verified.user_id, address.clone())
        .await?;
    write
        .commit(
            &Entry::new(&verified.user_id, "auth.login", "ok")
                .org(&verified.home_org)
                .detail(json!({ "address": address })),
        )
        .await?;
    k.auth.login_outcome(opened).await
}

async fn logout(State(k): State<AppState>, Caller(session): Caller) -> ApiResult<Response> {
    let mut write = k.audit.begin().await?;
    crate::identity::auth::Auth::logout(&mut write, &session.identity).await?;
    write
        .commit(&Entry::new(session.user_id(), "auth.logout", "ok").org(session.org()))
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("tianshan_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    /// Without a session: whose password (a login that answered
    /// `password_change_required` continues here).
    username: Option<String>,
    current_password: String,
    new_password: String,
}

/// Changing one's password ends every session, this one included. Guesses
/// at the current password are throttled like logins. Without a session the
/// body names the account: knowing its current password is what a login
/// would ask anyway.
async fn change_own_password(
    State(k): State<AppState>,
    PeerAddr(peer): PeerAddr,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let session = crate::http::session::authenticate(&k, &method, &headers).await?;
    let req: PasswordChange = json_body(body).await?;
    let username = match (&session, &req.username) {
        (Some(s), _) => s.identity.username.clone(),
        (None, Some(name)) if !name.trim().is_empty() => name.trim().to_string(),
        (None, _) => {
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "log in first, or name the account in `username`",
            ));
        }
    };
    users::check_password(&req.new_password, &username)?;
    if req.new_password == req.current_password {
        return Err(ApiError::validation(
            "new_password",
            "the new password must differ from the current one",
        ));
    }
    let addr = k.throttle.client_of(peer, &headers);
    let kernel = k.clone();
    tokio::spawn(async move {
        let k = &*kernel;
        let attempt = k.throttle.begin(&username, addr).await?;
        let verified = match k
            .auth
            .verify_credentials(&username, &req.current_password)
            .await
        {
            Ok(verified) => verified,
            Err(_) => {
                k.throttle.failed(attempt).await?;
                let actor = session.as_ref().map_or("anonymous", |s| s.user_id());
                k.audit
                    .record(
                        Entry::new(actor, "auth.password_change", "failed")
                            .detail(json!({ "username": username })),
                    )
                    .await;
                return Err(ApiError::validation(
                    "current_password",
                    "the current password is wrong",
                ));
            }
        };
        k.throttle.succeeded(attempt, None).await?;
        let hash = crate::identity::auth::hash_password_off_thread(&req.new_password).await;
        let mut write = k.audit.begin().await?;
        users::set_password(&mut *write, &verified.user_id, &hash, false).await?;
        users::end_sessions(&mut *write, &verified.user_id).await?;
        write
            .commit(
                &Entry::new(&verified.user_id, "auth.password_change", "ok")
                    .target(&verified.user_id),
            )
            .await?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
    .map_err(ApiError::internal)?
}

/// The caller's own live sessions (self-service: see where you are logged in).
async fn list_own_sessions(
    State(k): State<AppState>,
    Caller(session): Caller,
) -> ApiResult<Json<Value>> {
    let sessions = k
        .auth
        .sessions_of(session.user_id(), session.identity.session_hash.as_deref())
        .await?;
    Ok(Json(json!({ "sessions": sessions })))
}

/// Ends one of the caller's own sessions (a phone left logged in).
async fn end_own_session(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut write = k.audit.begin().await?;
    if !crate::identity::auth::Auth::end_session(&mut write, session.user_id(), &id).await? {
        return Err(ApiError::not_found(format!("session {id} not found")));
    }
    write
        .commit(
            &Entry::new(session.user_id(), "auth.session_end", "ok")
                .org(session.org())
                .target(&id),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(State(k): State<AppState>, Caller(session): Caller) -> ApiResult<Json<Value>> {
    let orgs = orgs::names(&k.db).await?;
    let bindings: Vec<Value> = k
        .authz
        .bindings_of(session.user_id())
        .into_iter()
        .map(|b| {
            let (name, code) = orgs.get(&b.org_id).cloned().unwrap_or_default();
            json!({"id": b.id, "role": b.role, "org_id": b.org_id, "org_name": name, "org_code": code})
        })
        .collect();
    let unit = orgs::get(&k.db, &session.identity.home_org).await?;
    Ok(Json(json!({
        "user": session.principal,
        "unit": unit,
        "home_org": session.identity.home_org,
        "is_platform_admin": session.is_platform_admin(),
        // No CSRF token here: this answer is shown to plugin pages through
        // the portal's bridge. The shell reads it from `GET /api/v1/auth/csrf`.
        "bindings": bindings,
    })))
}

// ---------------------------------------------------------------- orgs

async fn list_orgs(State(k): State<AppState>, Caller(session): Caller) -> ApiResult<Json<Value>> {
    session
        .require(&k, session.org(), "kernel.orgs.read")
        .await?;
    let tree = orgs::tree(&k.db).await?;
    // Only the subtrees the caller's bindings reach.
    let index = k.authz.orgs();
    let roots: Vec<String> = k
        .authz
        .bindings_of(session.user_id())
        .into_iter()
        .map(|b| b.org_id)
        .collect();
    let visible = orgs::subtrees(tree, &|id| roots.iter().any(|r| r == id), &index);
    Ok(Json(json!({ "orgs": visible })))
}

async fn show_org(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    visible_org(&k, &session, &id)?;
    let org = orgs::get(&k.db, &id)
        .await?
        .ok_or_else(|| not_found_org(&id))?;
    Ok(Json(json!({ "org": org })))
}

#[derive(Deserialize)]
struct DirectoryQuery {
    level: Option<String>,
    q: Option<String>,
    limit: Option<i64>,
}

/// The directory of active orgs, for anyone logged in: names and codes
/// only (public facts of government bodies), so a county can name another
/// district's unit as a transfer's receiver. Reading or acting there is
/// still decided by bindings.
async fn org_directory(
    State(k): State<AppState>,
    Caller(_session): Caller,
    Query(q): Query<DirectoryQuery>,
) -> ApiResult<Json<Value>> {
    if let Some(level) = &q.level
        && !orgs::LEVELS.contains(&level.as_str())
    {
        return Err(ApiError::validation(
            "level",
            "one of region, prefecture, county, unit",
        ));
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let query = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let found = orgs::directory(&k.db, q.level.as_deref(), query, limit).await?;
    Ok(Json(json!({ "orgs": found })))
}

async fn create_org(
    State(k): State<AppState>,
    Caller(session): Caller,
    body: Body,
) -> ApiResult<Response> {
    let mut req: orgs::NewOrg = json_body(body).await?;
    req.parent_id = resolve_org(&k, &req.parent_id).await?;
    visible_org(&k, &session, &req.parent_id).map_err(|e| e.with_field("parent_id"))?;
    session
        .require(&k, &req.parent_id, "kernel.orgs.write")
        .await?;
    let mut write = k.audit.begin().await?;
    let org = orgs::create(&mut write, &req).await?;
    write
        .commit(
            &Entry::new(session.user_id(), "org.create", "ok")
                .org(&req.parent_id)
                .target(&org.id)
                .detail(json!({ "code": org.code, "level": org.level })),
        )
        .await?;
    k.authz.reload().await.map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(json!({ "org": org }))).into_response())
}

async fn update_org(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let req: orgs::OrgUpdate = json_body(body).await?;
    let index = k.authz.orgs();
    visible_org(&k, &session, &id)?;
    session.require(&k, &id, "kernel.orgs.write").await?;
    if let Some(parent) = &req.parent_id {
        visible_org(&k, &session, parent).map_err(|e| e.with_field("parent_id"))?;
        session.require(&k, parent, "kernel.orgs.write").await?;
    }
    let mut write = k.audit.begin().await?;
    let org = orgs::update(&mut write, &index, &id, &req).await?;
    write
        .commit(
            &Entry::new(session.user_id(), "org.update", "ok")
                .org(&id)
                .target(&id)
                .detail(serde_json::to_value(&req).unwrap_or_default()),
        )
        .await?;
    k.authz.reload().await.map_err(ApiError::internal)?;
    Ok(Json(json!({ "org": org })))
}

/// Only an empty org can be deleted; one that holds data is deactivated.
async fn delete_org(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    visible_org(&k, &session, &id)?;
    session.require(&k, &id, "kernel.orgs.write").await?;
    let mut write = k.audit.begin().await?;
    orgs::delete_if_empty(&mut write, &id).await?;
    write
        .commit(
            &Entry::new(session.user_id(), "org.delete", "ok")
                .org(&id)
                .target(&id),
        )
        .await?;
    k.authz.reload().await.map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- users

/// The post ranks a profile names, with their labels, for any signed-in
/// user (the console's form, a plugin page showing a rank).
async fn post_ranks(Caller(_session): Caller) -> Json<Value> {
    let ranks: Vec<Value> = users::POST_RANKS
        .iter()
        .map(|(code, zh, en)| json!({ "code": code, "label": { "zh-CN": zh, "en": en } }))
        .collect();
    Json(json!({ "post_ranks": ranks }))
}

#[derive(Deserialize)]
struct UserQuery {
    org: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list_users(
    State(k): State<AppState>,
    Caller(session): Caller,
    Query(query): Query<UserQuery>,
) -> ApiResult<Json<Value>> {
    let org = query.org.unwrap_or_else(|| session.org().to_string());
    visible_org(&k, &session, &org)?;
    session.require(&k, &org, "kernel.users.read").await?;
    let index = k.authz.orgs();
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let rows = sqlx::query(&format!(
        "SELECT {} FROM users
         WHERE ($1 IS NULL OR username > $1)
           AND ($2 IS NULL OR username LIKE '%' || $2 || '%' OR display_name LIKE '%' || $2 || '%')
         ORDER BY username",
        users::USER_COLUMNS
    ))
    .bind(&query.cursor)
    .bind(&query.q)
    .fetch_all(&k.db)
    .await?;
    let users: Vec<users::User> = rows
        .iter()
        .map(users::row_to_user)
        .filter(|u| index.is_within(&u.org_id, &org))
        .take(limit as usize + 1)
        .collect();
    let next = (users.len() > limit as usize).then(|| users[limit as usize - 1].username.clone());
    let users: Vec<_> = users.into_iter().take(limit as usize).collect();
    Ok(Json(json!({ "users": users, "next_cursor": next })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    display_name: String,
    password: String,
    /// The user's unit: an org id or its code.
    #[serde(alias = "org", alias = "unit")]
    org_id: String,
    /// The administrator chose the password: the user replaces it at their
    /// first login.
    #[serde(default)]
    must_change_password: bool,
    #[serde(default)]
    post_rank: Option<String>,
    #[serde(default)]
    position: Option<String>,
    #[serde(default)]
    department: Option<String>,
}

async fn create_user(
    State(k): State<AppState>,
    Caller(session): Caller,
    body: Body,
) -> ApiResult<Response> {
    let mut req: NewUser = json_body(body).await?;
    req.org_id = resolve_org(&k, &req.org_id).await?;
    let username = req.username.trim();
    if !users::is_valid_username(username) {
        return Err(ApiError::validation(
            "username",
            "username must be 3-64 characters of letters, digits, '.', '_' or '-'",
        ));
    }
    if req.display_name.trim().is_empty() {
        return Err(ApiError::validation(
            "display_name",
            "display name must not be empty",
        ));
    }
    visible_org(&k, &session, &req.org_id).map_err(|e| e.with_field("org_id"))?;
    session
        .require(&k, &req.org_id, "kernel.users.write")
        .await?;
    users::check_password(&req.password, username)?;
    let profile = users::ProfileChange {
        post_rank: req.post_rank.clone(),
        position: req.position.clone(),
        department: req.department.clone(),
    };
    let checked_profile = profile.applied_to(&users::Profile::default())?;
    let org = orgs::get(&k.db, &req.org_id)
        .await?
        .ok_or_else(|| not_found_org(&req.org_id))?;
    if org.level != "unit" {
        return Err(ApiError::validation(
            "org_id",
            "a user belongs to a unit, not to a division",
        ));
    }
    let hash = crate::identity::auth::hash_password_off_thread(&req.password).await;
    let mut write = k.audit.begin().await?;
    let id = users::create(
        &mut write,
        username,
        req.display_name.trim(),
        &hash,
        &req.org_id,
        req.must_change_password,
    )
    .await?;
    if !profile.is_empty() {
        users::set_profile(&mut write, &id, &checked_profile).await?;
    }
    write
        .commit(
            &Entry::new(session.user_id(), "user.create", "ok")
                .org(&req.org_id)
                .target(&id)
                .detail(json!({ "username": username, "profile": profile })),
        )
        .await?;
    k.authz.reload().await.map_err(ApiError::internal)?;
    let user = users::get(&k.db, &id)
        .await?
        .ok_or_else(|| ApiError::internal("user vanished"))?;
    Ok((StatusCode::CREATED, Json(json!({ "user": user }))).into_response())
}

/// The user, if the caller may read users at the user's org; else 404.
async fn visible_user(
    k: &Kernel,
    session: &Session,
    id: &str,
    permission: &str,
) -> ApiResult<users::User> {
    let user = users::get(&k.db, id).await?;
    match user {
        Some(u) if session.may(k, &u.org_id, "kernel.users.read") => {
            session.require(k, &u.org_id, permission).await?;
            Ok(u)
        }
        _ => Err(ApiError::not_found(format!("user {id} not found"))),
    }
}

/// Whether the caller could grant `role` at `org`: they hold every
/// permission the role carries there. Nobody hands out more than they have.
fn may_grant(k: &Kernel, session: &Session, role: &str, org: &str) -> bool {
    k.authz
        .role_permissions(role)
        .iter()
        .all(|p| session.may(k, org, p.trim_end_matches('*')))
}

/// Power over a user reaches only as far as the actor does: every role the
/// target holds must be one the actor manages users at and could grant
/// there. Otherwise a prefecture admin could reset the password of a
/// platform administrator homed in one of its units and become them.
/// Answers 403: the target is visible (`visible_user` passed), only out of
/// reach.
async fn require_power_over(k: &Kernel, session: &Session, target: &users::User) -> ApiResult<()> {
    let beyond = k.authz.bindings_of(&target.id).into_iter().find(|b| {
        !session.may(k, &b.org_id, "kernel.users.write")
            || !may_grant(k, session, &b.role, &b.org_id)
    });
    let Some(b) = beyond else { return Ok(()) };
    k.audit
        .record(
            Entry::new(session.user_id(), "access.denied", "denied")
                .org(&target.org_id)
                .target(&target.id)
                .detail(json!({ "reason": "target_beyond_reach", "role": b.role, "at": b.org_id })),
        )
        .await;
    Err(ApiError::new(
        ErrorCode::Forbidden,
        format!(
            "{} holds the role {} at {}, beyond what you manage",
            target.username, b.role, b.org_id
        ),
    ))
}

async fn show_user(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = visible_user(&k, &session, &id, "kernel.users.read").await?;
    let bindings = k.authz.bindings_of(&id);
    let locked_until = k.throttle.locked_until(&user.username).await?;
    Ok(Json(
        json!({ "user": user, "bindings": bindings, "locked_until": locked_until }),
    ))
}

/// Lifts the login block on an account (after someone else's guesses).
async fn unlock_user(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = visible_user(&k, &session, &id, "kernel.users.write").await?;
    require_power_over(&k, &session, &user).await?;
    let mut write = k.audit.begin().await?;
    let cleared = users::Throttle::unlock(&mut write, &user.username).await?;
    write
        .commit(
            &Entry::new(session.user_id(), "user.unlock", "ok")
                .org(&user.org_id)
                .target(&id)
                .detail(json!({ "cleared": cleared })),
        )
        .await?;
    Ok(Json(json!({ "unlocked": true, "cleared": cleared })))
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct UserUpdate {
    display_name: Option<String>,
    org_id: Option<String>,
    disabled: Option<bool>,
    /// A code of `GET /api/v1/post-ranks`; "" clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    post_rank: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    position: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    department: Option<String>,
}

async fn update_user(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let req: UserUpdate = json_body(body).await?;
    let user = visible_user(&k, &session, &id, "kernel.users.write").await?;
    require_power_over(&k, &session, &user).await?;
    if let Some(name) = &req.display_name
        && name.trim().is_empty()
    {
        return Err(ApiError::validation(
            "display_name",
            "display name must not be empty",
        ));
    }
    if let Some(org) = &req.org_id {
        visible_org(&k, &session, org).map_err(|e| e.with_field("org_id"))?;
        session.require(&k, org, "kernel.users.write").await?;
    }
    if req.disabled == Some(true) && id == session.user_id() {
        return Err(ApiError::validation(
            "disabled",
            "you cannot disable yourself",
        ));
    }
    let profile = users::ProfileChange {
        post_rank: req.post_rank.clone(),
        position: req.position.clone(),
        department: req.department.clone(),
    };
    let checked_profile = profile.applied_to(&user.profile)?;
    let mut write = k.audit.begin().await?;
    if !profile.is_empty() {
        users::set_profile(&mut write, &id, &checked_profile).await?;
    }
    sqlx::query(
        "UPDATE users SET display_name = COALESCE($1, display_name), org_id = COALESCE($2, org_id),
                disabled = COALESCE($3, disabled), updated_at = $4 WHERE id = $5",
    )
    .bind(req.display_name.as_deref().map(str::trim))
    .bind(&req.org_id)
    .bind(req.disabled.map(i64::from))
    .bind(now())
    .bind(&id)
    .execute(&mut *write)
    .await?;
    if req.disabled == Some(true) {
        users::end_sessions(&mut *write, &id).await?;
    }
    write
        .commit(
            &Entry::new(session.user_id(), "user.update", "ok")
                .org(&user.org_id)
                .target(&id)
                .detail(serde_json::to_value(&req).unwrap_or_default()),
        )
        .await?;
    let user = users::get(&k.db, &id)
        .await?
        .ok_or_else(|| ApiError::internal("user vanished"))?;
    Ok(Json(json!({ "user": user })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordReset {
    password: String,
    /// Whether the user must replace it at their next login (they should:
    /// the administrator knows it).
    #[serde(default = "yes")]
    must_change_password: bool,
}

fn yes() -> bool {
    true
}

/// An administrator sets a new password; the user's sessions end.
async fn reset_password(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<StatusCode> {
    let req: PasswordReset = json_body(body).await?;
    let user = visible_user(&k, &session, &id, "kernel.users.write").await?;
    require_power_over(&k, &session, &user).await?;
    users::check_password(&req.password, &user.username)?;
    let hash = crate::identity::auth::hash_password_off_thread(&req.password).await;
    let mut write = k.audit.begin().await?;
    users::set_password(&mut *write, &id, &hash, req.must_change_password).await?;
    users::end_sessions(&mut *write, &id).await?;
    write
        .commit(
            &Entry::new(session.user_id(), "user.password_reset", "ok")
                .org(&user.org_id)
                .target(&id)
                .detail(json!({ "must_change_password": req.must_change_password })),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- bindings

#[derive(Deserialize)]
struct BindingQuery {
    user: Option<String>,
}

async fn list_bindings(
    State(k): State<AppState>,
    Caller(session): Caller,
    Query(query): Query<BindingQuery>,
) -> ApiResult<Json<Value>> {
    let user = query.user.unwrap_or_else(|| session.user_id().to_string());
    if user != session.user_id() {
        visible_user(&k, &session, &user, "kernel.users.read").await?;
    }
    let bindings = k.authz.bindings_of(&user);
    Ok(Json(json!({ "bindings": bindings })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBinding {
    /// A user id or username.
    #[serde(alias = "user_id")]
    user: String,
    role: String,
    /// An org id or its code.
    #[serde(alias = "org_id")]
    org: String,
}

async fn create_binding(
    State(k): State<AppState>,
    Caller(session): Caller,
    body: Body,
) -> ApiResult<Response> {
    let mut req: NewBinding = json_body(body).await?;
    req.org = resolve_org(&k, &req.org).await?;
    req.user = resolve_user(&k, &req.user).await?;
    visible_org(&k, &session, &req.org).map_err(|e| e.with_field("org"))?;
    session
        .require(&k, &req.org, "kernel.bindings.write")
        .await?;
    let target = visible_user(&k, &session, &req.user, "kernel.users.read").await?;
    if !authz::is_kernel_role(&req.role) && !k.plugins.declares_role(&req.role) {
        return Err(ApiError::validation(
            "role",
            format!("unknown role {}", req.role),
        ));
    }
    // Nobody grants more than they hold where they grant it.
    if !may_grant(&k, &session, &req.role, &req.org) {
        k.audit
            .record(
                Entry::new(session.user_id(), "access.denied", "denied")
                    .org(&req.org)
                    .detail(json!({ "reason": "role_above_own", "role": req.role })),
            )
            .await;
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "you cannot grant {} here: it carries permissions you do not hold",
                req.role
            ),
        )
        .with_field("role"));
    }
    require_power_over(&k, &session, &target).await?;
    let id = format!("bind-{}", random_token(12));
    let mut write = k.audit.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO bindings (id, user_id, role, org_id, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, role, org_id) DO NOTHING",
    )
    .bind(&id)
    .bind(&req.user)
    .bind(&req.role)
    .bind(&req.org)
    .bind(now())
    .execute(&mut *write)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the user already has this role at this org",
        ));
    }
    write
        .commit(
            &Entry::new(session.user_id(), "binding.create", "ok")
                .org(&req.org)
                .target(&id)
                .detail(json!({ "user": req.user, "role": req.role })),
        )
        .await?;
    k.authz.reload().await.map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "binding": {"id": id, "user_id": req.user, "role": req.role, "org_id": req.org} })),
    )
        .into_response())
}

async fn delete_binding(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let row = sqlx::query("SELECT user_id, role, org_id FROM bindings WHERE id = $1")
        .bind(&id)
        .fetch_optional(&k.db)
        .await?;
    let Some(row) = row else {
        return Err(ApiError::not_found(format!("binding {id} not found")));
    };
    let (user, role, org): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    if !session.may(&k, &org, "kernel.orgs.read") {
        return Err(ApiError::not_found(format!("binding {id} not found")));
    }
    session.require(&k, &org, "kernel.bindings.write").await?;
    if !may_grant(&k, &session, &role, &org) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("you cannot take away {role}: it carries permissions you do not hold"),
        ));
    }
    if let Some(target) = users::get(&k.db, &user).await? {
        require_power_over(&k, &session, &target).await?;
    }
    let mut write = k.audit.begin().await?;
    sqlx::query("DELETE FROM bindings WHERE id = $1")
        .bind(&id)
        .execute(&mut *write)
        .await?;
    write
        .commit(
            &Entry::new(session.user_id(), "binding.delete", "ok")
                .org(&org)
                .target(&id)
                .detail(json!({ "user": user, "role": role })),
        )
        .await?;
    k.authz.reload().await.map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- tokens

async fn list_tokens(State(k): State<AppState>, Caller(session): Caller) -> ApiResult<Json<Value>> {
    let rows = sqlx::query(
        "SELECT id, name, org_id, permissions, created_at, expires_at, revoked_at, last_used_at
         FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC",
    )
    .bind(session.user_id())
    .fetch_all(&k.db)
    .await?;
    let tokens: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<String, _>(0), "name": r.get::<String, _>(1), "org_id": r.get::<String, _>(2),
                "permissions": serde_json::from_str::<Value>(&r.get::<String, _>(3)).unwrap_or_default(),
                "created_at": r.get::<i64, _>(4), "expires_at": r.get::<i64, _>(5),
                "revoked_at": r.get::<Option<i64>, _>(6), "last_used_at": r.get::<Option<i64>, _>(7),
            })
        })
        .collect();
    Ok(Json(json!({ "tokens": tokens })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    org: Option<String>,
    permissions: Vec<String>,
    expires_in_days: u32,
}

/// The secret is in this answer only; the kernel keeps its hash.
async fn create_token(
    State(k): State<AppState>,
    Caller(session): Caller,
    body: Body,
) -> ApiResult<Response> {
    let req: NewToken = json_body(body).await?;
    if session.identity.token_scope.is_some() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "an API token cannot create tokens",
        ));
    }
    if req.name.trim().is_empty() {
        return Err(ApiError::validation("name", "name must not be empty"));
    }
    if req.permissions.is_empty() {
        return Err(ApiError::validation(
            "permissions",
            "list at least one permission",
        ));
    }
    if !(1..=366).contains(&req.expires_in_days) {
        return Err(ApiError::validation(
            "expires_in_days",
            "tokens expire within 1 to 366 days",
        ));
    }
    let org = req.org.unwrap_or_else(|| session.org().to_string());
    visible_org(&k, &session, &org).map_err(|e| e.with_field("org"))?;
    session.require(&k, &org, "kernel.tokens.write").await?;
    // A token can only narrow what its owner may do.
    for permission in &req.permissions {
        if !session.may(&k, &org, permission.trim_end_matches('*')) {
            return Err(ApiError::validation(
                "permissions",
                format!("you do not hold {permission} at {org}"),
            ));
        }
    }
    let expires_at = now() + req.expires_in_days as i64 * 86_400;
    let mut write = k.audit.begin().await?;
    let (id, secret) = crate::identity::auth::Auth::create_api_token(
        &mut write,
        session.user_id(),
        req.name.trim(),
        &org,
        &req.permissions,
        expires_at,
    )
    .await?;
    write
        .commit(
            &Entry::new(session.user_id(), "token.create", "ok")
                .org(&org)
                .target(&id)
                .detail(json!({ "permissions": req.permissions, "expires_at": expires_at })),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "token": secret, "org_id": org, "expires_at": expires_at })),
    )
        .into_response())
}

async fn revoke_token(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut write = k.audit.begin().await?;
    let revoked = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(now())
    .bind(&id)
    .bind(session.user_id())
    .execute(&mut *write)
    .await?;
    if revoked.rows_affected() == 0 {
        return Err(ApiError::not_found(format!("token {id} not found")));
    }
    write
        .commit(&Entry::new(session.user_id(), "token.revoke", "ok").target(&id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- audit

#[derive(Deserialize)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    org: Option<String>,
    outcome: Option<String>,
    before: Option<i64>,
    since: Option<i64>,
    until: Option<i64>,
    limit: Option<i64>,
}

/// Records the caller may see: those of orgs within the acting org's
/// subtree (all of them for an auditor at the root).
async fn audit_records(
    k: &Kernel,
    session: &Session,
    q: &AuditQuery,
    limit: i64,
) -> ApiResult<Vec<audit::Record>> {
    let scope = q.org.clone().unwrap_or_else(|| session.org().to_string());
    visible_org(k, session, &scope)?;
    session.require(k, &scope, "kernel.audit.read").await?;
    let index = k.authz.orgs();
    let at_root = index.parent_of(&scope).is_none();
    let mut filter = audit::Filter {
        actor: q.actor.clone(),
        action: q.action.clone(),
        org_id: None,
        outcome: q.outcome.clone(),
        before_seq: q.before,
        since: q.since,
        until: q.until,
        limit: 1000,
    };
    let mut out = Vec::new();
    loop {
        let batch = k.audit.list(&filter).await?;
        let done = batch.len() < filter.limit as usize;
        filter.before_seq = batch.last().map(|r| r.seq);
        out.extend(batch.into_iter().filter(|r| match &r.entry.org_id {
            Some(org) => index.is_within(org, &scope),
            None => at_root,
        }));
        if done || out.len() >= limit as usize {
            break;
        }
    }
    out.truncate(limit as usize);
    Ok(out)
}

async fn list_audit(
    State(k): State<AppState>,
    Caller(session): Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let records = audit_records(&k, &session, &q, limit).await?;
    let next = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(json!({ "records": records, "next_before": next })))
}

/// `GET /api/v1/audit/verify`: walks the whole chain, as `tianshan audit
/// verify` does, with this node's key and its anchor file (when there is
/// one). The chain spans every org, so only an auditor at the root may ask.
async fn verify_audit(
    State(k): State<AppState>,
    Caller(session): Caller,
) -> ApiResult<Json<Value>> {
    let root = k.root_org.clone();
    visible_org(&k, &session, &root)?;
    session.require(&k, &root, "kernel.audit.read").await?;
    let anchor_file = k.config.audit_anchor_file();
    let anchors = if anchor_file.exists() {
        audit::read_anchors(&anchor_file).map_err(|e| {
            tracing::error!(error = %e, "reading the audit anchors");
            ApiError::new(
                ErrorCode::Internal,
                "the audit anchor file could not be read",
            )
        })?
    } else {
        Vec::new()
    };
    let keys: Vec<audit::AuditKey> = k.audit.key().cloned().into_iter().collect();
    let verdict = audit::verify(&k.db, &keys, &anchors)
        .await
        .map_err(|e| ApiError::internal(format!("verifying the audit chain: {e}")))?;
    Ok(Json(match verdict {
        audit::Verdict::Intact {
            records,
            keyed,
            anchors,
        } => json!({"intact": true, "records": records, "keyed": keyed, "anchors": anchors}),
        audit::Verdict::Broken { seq, reason } => {
            json!({"intact": false, "seq": seq, "reason": reason})
        }
    }))
}

async fn export_audit(
    State(k): State<AppState>,
    Caller(session): Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Response> {
    let limit = q.limit.unwrap_or(100_000).clamp(1, 1_000_000);
    let records = audit_records(&k, &session, &q, limit).await?;
    k.audit
        .record(
            Entry::new(session.user_id(), "audit.export", "ok")
                .org(session.org())
                .detail(json!({"records": records.len()})),
        )
        .await;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tianshan-audit.csv\"",
            ),
        ],
        audit::to_csv(&records),
    )
        .into_response())
}

// ---------------------------------------------------------------- plugins

async fn list_plugins(
    State(k): State<AppState>,
    Caller(session): Caller,
) -> ApiResult<Json<Value>> {
    session
        .require(&k, session.org(), "kernel.plugins.read")
        .await?;
    let plugins: Vec<_> = k
        .plugins
        .list()
        .iter()
        .filter(|p| plugin_visible(&k, &session, p))
        .map(|p| p.summary())
        .collect();
    Ok(Json(json!({ "plugins": plugins })))
}

/// Plugin `id` for a caller who may read plugins where they act and sees
/// this one; else 403, or 404 as if it were not installed.
async fn readable_plugin(
    k: &Kernel,
    session: &Session,
    id: &str,
) -> ApiResult<std::sync::Arc<crate::plugins::ActivePlugin>> {
    session
        .require(k, session.org(), "kernel.plugins.read")
        .await?;
    k.plugins
        .get(id)
        .filter(|p| plugin_visible(k, session, p))
        .ok_or_else(|| crate::plugins::not_installed(id))
}

/// A plugin is visible where it is usable (its org and below) and to those
/// who manage the org it is installed at (above it).
fn plugin_visible(k: &Kernel, session: &Session, plugin: &crate::plugins::ActivePlugin) -> bool {
    match &plugin.org_id {
        None => true,
        Some(org) => {
            let index = k.authz.orgs();
            index.is_within(session.org(), org) || index.is_within(org, session.org())
        }
    }
}

async fn show_plugin(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let plugin = readable_plugin(&k, &session, &id).await?;
    let versions = k.plugins.stored_versions(&id).await?;
    Ok(Json(json!({
        "plugin": plugin.summary(),
        "manifest": plugin.manifest,
        "limits": {
            "memory_mib": plugin.component.limits.memory_bytes >> 20,
            "timeout_ms": plugin.component.limits.timeout.as_millis() as u64,
        },
        "stored_versions": versions,
    })))
}

/// Managing an installed plugin needs `kernel.plugins.manage` at the org
/// it is installed at (the root for platform-wide plugins).
async fn require_plugin_admin(k: &Kernel, session: &Session, id: &str) -> ApiResult<()> {
    let org = match k.plugins.get(id) {
        Some(plugin) if plugin_visible(k, session, &plugin) => {
            plugin.org_id.clone().unwrap_or_else(|| k.root_org.clone())
        }
        // Unknown ids fall through to the handler's own 404, after the
        // platform-level check.
        _ => k.root_org.clone(),
    };
    session.require(k, &org, "kernel.plugins.manage").await
}

#[derive(Deserialize)]
struct InstallQuery {
    /// Install for this org's subtree only (a prefecture's local module).
    org: Option<String>,
}

async fn install_plugin(
    State(k): State<AppState>,
    Caller(session): Caller,
    Query(query): Query<InstallQuery>,
    body: Body,
) -> ApiResult<Response> {
    let scope = match &query.org {
        Some(org) if *org != k.root_org => {
            visible_org(&k, &session, org).map_err(|e| e.with_field("org"))?;
            Some(org.clone())
        }
        _ => None,
    };
    let at = scope.clone().unwrap_or_else(|| k.root_org.clone());
    session.require(&k, &at, "kernel.plugins.manage").await?;
    let bytes = read_body(body, k.config.max_package_bytes).await?;
    // Reserved and already-claimed ids are the platform administrator's
    // to give (plugins.rs `install_as`), not whoever installs first.
    let installer = if session.may(&k, &k.root_org, crate::identity::authz::PLATFORM_DECISION) {
        crate::plugins::Installer::Platform
    } else {
        crate::plugins::Installer::Local
    };
    // The install commits with its audit record; a refusal is audited
    // on its own.
    let record = Entry::new(session.user_id(), "plugin.install", "ok").org(&at);
    let result = k
        .plugins
        .install_as(&bytes, scope.as_deref(), installer, record)
        .await;
    if let Err(e) = &result {
        k.audit
            .record(
                Entry::new(session.user_id(), "plugin.install", "failed")
                    .org(&at)
                    .detail(json!({ "code": e.code.as_str() })),
            )
            .await;
    }
    Ok((StatusCode::CREATED, Json(result?)).into_response())
}

async fn upgrade_plugin(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<crate::plugins::ChangeOutcome>> {
    require_plugin_admin(&k, &session, &id).await?;
    // New code under a reserved id is as much the platform's decision as
    // installing it, wherever the plugin is installed.
    if crate::core::ids::is_reserved_id(&id) {
        session
            .require(&k, &k.root_org, crate::identity::authz::PLATFORM_DECISION)
            .await?;
    }
    let bytes = read_body(body, k.config.max_package_bytes).await?;
    let record = Entry::new(session.user_id(), "plugin.upgrade", "ok").org(&k.root_org);
    let result = k.plugins.upgrade(Some(&id), &bytes, record).await;
    if let Err(e) = &result {
        k.audit
            .record(
                Entry::new(session.user_id(), "plugin.upgrade", "failed")
                    .org(&k.root_org)
                    .target(&id)
                    .detail(json!({ "code": e.code.as_str() })),
            )
            .await;
    }
    Ok(Json(result?))
}

async fn uninstall_plugin(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require_plugin_admin(&k, &session, &id).await?;
    k.plugins
        .uninstall(
            &id,
            Entry::new(session.user_id(), "plugin.uninstall", "ok").org(&k.root_org),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_enabled(
    k: &Kernel,
    session: &Session,
    id: &str,
    enabled: bool,
) -> ApiResult<Json<crate::plugins::PluginSummary>> {
    require_plugin_admin(k, session, id).await?;
    let action = if enabled {
        "plugin.enable"
    } else {
        "plugin.disable"
    };
    let record = Entry::new(session.user_id(), action, "ok").org(&k.root_org);
    let summary = k.plugins.set_enabled(id, enabled, record).await?;
    Ok(Json(summary))
}

async fn enable_plugin(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<crate::plugins::PluginSummary>> {
    set_enabled(&k, &session, &id, true).await
}

async fn disable_plugin(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<crate::plugins::PluginSummary>> {
    set_enabled(&k, &session, &id, false).await
}

// ---------------------------------------------------------------- messaging

/// The topics a plugin asked for in its manifest and which are granted.
async fn list_subscriptions(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let plugin = readable_plugin(&k, &session, &id).await?;
    let granted = k.messaging.granted(&id).await?;
    let beyond = k.messaging.granted_beyond(&id).await?;
    let list: Vec<Value> = plugin
        .manifest
        .subscribes
        .iter()
        .map(|t| {
            json!({ "topic": t, "granted": granted.contains(t), "beyond_subtree": beyond.contains(t) })
        })
        .collect();
    Ok(Json(json!({ "subscriptions": list })))
}

#[derive(Deserialize)]
struct GrantRequest {
    /// The granted set after the call; each must be in the manifest.
    topics: Vec<String>,
    /// For a plugin installed for a subtree: also receive these topics'
    /// events stamped outside it. Only the platform administrator sets it.
    #[serde(default)]
    beyond_subtree: bool,
}

/// Sets which of its requested subscriptions a plugin receives.
async fn grant_subscriptions(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    require_plugin_admin(&k, &session, &id).await?;
    let req: GrantRequest = json_body(body).await?;
    let plugin = k
        .plugins
        .get(&id)
        .ok_or_else(|| crate::plugins::not_installed(&id))?;
    if let Some(t) = req
        .topics
        .iter()
        .find(|t| !plugin.manifest.subscribes.contains(t))
    {
        return Err(ApiError::validation(
            "topics",
            format!("plugin {id} does not ask for {t:?} in its manifest"),
        ));
    }
    // A local module's grants carry its own subtree's events; the region's
    // (or another prefecture's) are the platform administrator's to open.
    let beyond = req.beyond_subtree && plugin.org_id.is_some();
    if beyond {
        session
            .require(&k, &k.root_org, crate::identity::authz::PLATFORM_DECISION)
            .await?;
    }
    let mut write = k.audit.begin().await?;
    Messaging::revoke(&mut write, &id, None).await?;
    Messaging::grant_with(&mut write, &id, &req.topics, session.user_id(), beyond).await?;
    write
        .commit(
            &Entry::new(session.user_id(), "plugin.subscriptions", "ok")
                .org(&k.root_org)
                .target(&id)
                .detail(json!({ "topics": req.topics, "beyond_subtree": beyond })),
        )
        .await?;
    Ok(Json(
        json!({ "plugin": id, "granted": req.topics, "beyond_subtree": beyond }),
    ))
}

#[derive(Deserialize)]
struct DeadQuery {
    limit: Option<i64>,
}

/// Deliveries that failed every attempt, newest first, with delivery
/// counts by status.
async fn list_dead_letters(
    State(k): State<AppState>,
    Caller(session): Caller,
    Query(q): Query<DeadQuery>,
) -> ApiResult<Json<Value>> {
    session
        .require(&k, &k.root_org, "kernel.events.read")
        .await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let dead = k.messaging.dead_letters(limit).await?;
    let counts: serde_json::Map<String, Value> = k
        .messaging
        .counts()
        .await?
        .into_iter()
        .map(|(status, n)| (status, json!(n)))
        .collect();
    Ok(Json(json!({ "dead": dead, "counts": counts })))
}

#[derive(Deserialize)]
struct PublishedQuery {
    topic: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

/// The events a plugin published, newest first, with each subscriber's
/// delivery: for the plugin's administrators (the platform's, or the
/// installing org's for a local module), and only events stamped within
/// the org they act at.
async fn list_published_events(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
    Query(q): Query<PublishedQuery>,
) -> ApiResult<Json<Value>> {
    require_plugin_admin(&k, &session, &id).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let orgs = k.authz.orgs();
    let events: Vec<_> = k
        .messaging
        .published(&id, q.topic.as_deref(), q.before, limit)
        .await?
        .into_iter()
        .filter(|e| {
            e.org_id
                .as_deref()
                .is_none_or(|org| orgs.is_within(org, session.org()))
        })
        .collect();
    let next = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(Json(json!({ "events": events, "next_before": next })))
}

/// Puts a dead delivery back in line with a fresh set of attempts.
async fn replay_dead_letter(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path((subscriber, seq)): Path<(String, i64)>,
) -> ApiResult<Json<Value>> {
    session
        .require(&k, &k.root_org, "kernel.events.manage")
        .await?;
    let mut write = k.audit.begin().await?;
    if !Messaging::replay(&mut write, &subscriber, seq).await? {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no dead delivery of event {seq} to {subscriber}"),
        ));
    }
    write
        .commit(
            &Entry::new(session.user_id(), "event.replay", "ok")
                .org(&k.root_org)
                .target(format!("{subscriber}/{seq}")),
        )
        .await?;
    k.messaging.wake();
    Ok(Json(json!({ "replayed": true })))
}

// ---------------------------------------------------------------- files

fn file_requester_scope(k: &Kernel, session: &Session) -> crate::core::scope::Scope {
    crate::core::scope::Scope::for_user(
        k.authz.orgs(),
        session.org(),
        session.user_id(),
        &session.principal.username,
    )
}

#[derive(Deserialize)]
struct UploadQuery {
    name: String,
    org: Option<String>,
}

/// The body is the file; `Content-Type` its type, `?name=` its name.
async fn upload_file(
    State(k): State<AppState>,
    Caller(session): Caller,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = match &q.org {
        Some(org) => resolve_org(&k, org).await?,
        None => session.org().to_string(),
    };
    visible_org(&k, &session, &org)?;
    session.require(&k, &org, "kernel.files.write").await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let content = read_body(body, k.files.max_bytes).await?;
    let scope = file_requester_scope(&k, &session);
    let who = crate::services::files::Requester {
        scope: &scope,
        plugin: None,
    };
    let info = k
        .files
        .put(&who, &q.name, &content_type, &content, Some(&org))
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "file": info }))))
}

async fn file_meta(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let scope = file_requester_scope(&k, &session);
    let who = crate::services::files::Requester {
        scope: &scope,
        plugin: None,
    };
    let info = k.files.info(&who, &id).await?;
    session
        .require(&k, &info.org_id, "kernel.files.read")
        .await?;
    Ok(Json(json!({ "file": info })))
}

async fn download_file(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let scope = file_requester_scope(&k, &session);
    let who = crate::services::files::Requester {
        scope: &scope,
        plugin: None,
    };
    let (info, content) = k.files.read(&who, &id).await?;
    session
        .require(&k, &info.org_id, "kernel.files.read")
        .await?;
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        utf8_percent_encode(&info.name)
    );
    let mut response = content.into_response();
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, info.content_type.as_str()),
        (header::CONTENT_DISPOSITION, disposition.as_str()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "private, max-age=0"),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            h.insert(name, value);
        }
    }
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", info.sha256)) {
        h.insert(header::ETAG, etag);
    }
    Ok(response)
}

/// RFC 5987 encoding for a header parameter.
fn utf8_percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn delete_file(
    State(k): State<AppState>,
    Caller(session): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let scope = file_requester_scope(&k, &session);
    let who = crate::services::files::Requester {
        scope: &scope,
        plugin: None,
    };
    let info = k.files.info(&who, &id).await?;
    // The uploader may delete; otherwise an org admin where the file is.
    if info.created_by.as_deref() != Some(session.user_id()) {
        session
            .require(&k, &info.org_id, "kernel.files.manage")
            .await?;
    }
    k.files.delete(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- portal

/// The menu entries of enabled plugins the caller may see at the acting org.
async fn portal_menu(State(k): State<AppState>, Caller(session): Caller) -> Json<Value> {
    let mut entries = Vec::new();
    let index = k.authz.orgs();
    let usable = |p: &crate::plugins::ActivePlugin| {
        p.org_id
            .as_deref()
            .is_none_or(|org| index.is_within(session.org(), org))
    };
    for plugin in k.plugins.list().iter().filter(|p| p.enabled() && usable(p)) {
        for entry in &plugin.manifest.menu {
            let visible = entry
                .permission
                .as_deref()
                .is_none_or(|perm| session.may(&k, session.org(), perm));
            if visible {
                entries.push(json!({
                    "plugin": plugin.manifest.id,
                    "plugin_name": plugin.manifest.name,
                    "id": entry.id,
                    "label": entry.label,
                    "url": format!("/ui/{}/{}", plugin.manifest.id, entry.path),
                    "icon": entry.icon,
                }));
            }
        }
    }
    Json(json!({ "entries": entries }))
}

/// What the admin console's system page shows the platform administrator:
/// the kernel's version, its database, NATS, plugins and the delivery queue.
async fn system_status(
    State(k): State<AppState>,
    Caller(session): Caller,
) -> ApiResult<Json<Value>> {
    session
        .require(&k, &k.root_org, "kernel.system.read")
        .await?;
    let started = std::time::Instant::now();
    let schema: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(&k.db)
        .await?;
    let db_ms = started.elapsed().as_secs_f64() * 1000.0;
    let dialect = crate::db::Dialect::of(&k.db).name();
    let plugins: Vec<Value> = k
        .plugins
        .list()
        .iter()
        .map(|p| {
            let s = p.summary();
            json!({"id": s.id, "version": s.version, "state": s.state, "org_id": s.org_id})
        })
        .collect();
    let deliveries: serde_json::Map<String, Value> = k
        .messaging
        .counts()
        .await?
        .into_iter()
        .map(|(status, n)| (status, json!(n)))
        .collect();
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "node": k.node_id,
        "database": {"kind": dialect, "schema_version": schema, "round_trip_ms": db_ms},
        "nats": {"configured": k.config.nats_url.is_some(), "connected": k.bus.is_connected()},
        "plugins": plugins,
        "deliveries": deliveries,
    })))
}
