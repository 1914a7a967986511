//! Who calls: the session cookie or bearer token behind a request, the
//! acting org it asks for, and the checks every kernel handler starts
//! with ([`Session::require`]); request bodies read within a limit.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, Method, header, request::Parts};
use axum::response::{IntoResponse, Response};

use crate::audit;
use crate::core::error::{ApiError, ApiResult, ErrorCode};
use crate::identity::auth::{CSRF_HEADER, Identity, SESSION_COOKIE};
use crate::identity::authz;
use crate::node::Kernel;
use crate::runtime::Principal;

type AppState = Arc<Kernel>;

pub(crate) async fn read_body(body: Body, limit: usize) -> ApiResult<Vec<u8>> {
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body exceeds {limit} bytes"),
                ))
            } else {
                Err(ApiError::bad_request(format!(
                    "could not read request body: {e}"
                )))
            }
        }
    }
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        let mut err = ApiError::new(ErrorCode::InvalidJson, format!("invalid JSON body: {e}"));
        // serde names a missing or unknown field in backquotes.
        if let Some(field) = e.to_string().split('`').nth(1) {
            err = err.with_field(field);
        }
        err
    })
}

pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Header that picks the org a request acts in (the portal's org switcher).
pub const ORG_HEADER: &str = "x-tianshan-org";

/// An authenticated caller acting in one org, with the roles they hold
/// there. Built by the kernel for every request; plugins see `principal`.
#[derive(Debug, Clone)]
pub struct Session {
    pub identity: Identity,
    pub principal: Principal,
}

impl Session {
    pub fn user_id(&self) -> &str {
        &self.identity.user_id
    }

    pub fn org(&self) -> &str {
        &self.principal.org_id
    }

    pub fn is_platform_admin(&self) -> bool {
        self.principal
            .roles
            .iter()
            .any(|r| r == authz::PLATFORM_ADMIN)
    }

    /// May this caller use `permission` at `org`? Both the user's bindings
    /// and, for an API token, the token's own scope must allow it.
    pub fn may(&self, k: &Kernel, org: &str, permission: &str) -> bool {
        let scoped = match &self.identity.token_scope {
            Some(scope) => {
                scope.permits(permission) && k.authz.orgs().is_within(org, &scope.org_id)
            }
            None => true,
        };
        scoped && k.authz.allowed(self.user_id(), org, permission)
    }

    /// As [`Session::may`], answering 403 (and auditing the denial) when not.
    pub async fn require(&self, k: &Kernel, org: &str, permission: &str) -> ApiResult<()> {
        if self.may(k, org, permission) {
            return Ok(());
        }
        k.audit
            .record(
                audit::Entry::new(self.user_id(), "access.denied", "denied")
                    .org(org)
                    .detail(serde_json::json!({ "permission": permission })),
            )
            .await;
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("you lack the permission {permission} here"),
        ))
    }
}

/// For a long-lived answer (a stream): the caller as they are now, none
/// when they signed out, their session went idle (this check is no
/// activity) or their API token stopped resolving.
pub async fn still_signed_in(
    k: &Kernel,
    session: &Session,
    headers: &HeaderMap,
) -> Option<Session> {
    match session.identity.session_hash.as_deref() {
        Some(hash) => match k.auth.session_live(hash).await {
            Ok(true) => Some(session.clone()),
            _ => None,
        },
        // An API token: resolved again (it has no idle time).
        None => authenticate(k, &Method::GET, headers).await.ok()?,
    }
}

/// Establishes the caller. A bearer token that does not resolve is an error
/// (the client meant to authenticate); a stale cookie just means anonymous.
/// A cookie session on an unsafe method must carry the CSRF token.
pub async fn authenticate(
    k: &Kernel,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Option<Session>> {
    let identity = if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "Authorization must be `Bearer <token>`",
                )
            })?;
        match k.auth.authenticate(token, false).await? {
            Some(identity) => identity,
            None => {
                return Err(ApiError::new(
                    ErrorCode::Unauthenticated,
                    "the token is unknown, expired or revoked; log in again",
                ));
            }
        }
    } else {
        let Some(token) = cookie_value(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let Some(identity) = k.auth.authenticate(token, true).await? else {
            return Ok(None);
        };
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if sent != identity.cookie_csrf.as_deref() {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "a write with a session cookie needs the X-CSRF-Token header from login",
                ));
            }
        }
        identity
    };
    let requested = headers
        .get(ORG_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let org = match requested {
        Some(org) => {
            let reached = k.authz.reaches(&identity.user_id, &org)
                && identity
                    .token_scope
                    .as_ref()
                    .is_none_or(|s| k.authz.orgs().is_within(&org, &s.org_id));
            if !reached {
                return Err(ApiError::not_found(format!("org {org} not found")));
            }
            org
        }
        None => default_org(k, &identity),
    };
    let roles = k.authz.roles_at(&identity.user_id, &org);
    let principal = Principal {
        user_id: identity.user_id.clone(),
        username: identity.username.clone(),
        display_name: identity.display_name.clone(),
        org_id: org,
        roles,
    };
    Ok(Some(Session {
        identity,
        principal,
    }))
}

/// The org a caller acts in without choosing: the token's org, else the
/// highest org any of their bindings names (the widest view they hold),
/// else their own unit.
fn default_org(k: &Kernel, identity: &Identity) -> String {
    if let Some(scope) = &identity.token_scope {
        return scope.org_id.clone();
    }
    let index = k.authz.orgs();
    let bindings = k.authz.bindings_of(&identity.user_id);
    bindings
        .iter()
        .filter(|b| index.is_active(&b.org_id))
        .min_by_key(|b| index.ancestors_and_self(&b.org_id).len())
        .map(|b| b.org_id.clone())
        .unwrap_or_else(|| identity.home_org.clone())
}

/// An authenticated caller; 401 otherwise.
pub struct Caller(pub Session);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, k: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(k, &parts.method, &parts.headers)
            .await?
            .map(Caller)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "log in first"))
    }
}

/// Splits `/api/v1/p/{plugin}/{rest}` into the plugin id and the path the
/// plugin sees (always starting with `/`).
/// `GET /api/v1/auth/csrf`: the CSRF token of the caller's cookie session,
/// for the portal shell after a reload (the login answer carries it too).
/// `/api/v1/me` does not: it is the shell's alone. A plugin page cannot
/// read this either way (its opaque origin sends no cookie and may not read
/// kernel answers); a request the browser marks as coming from another
/// site is refused outright all the same.
pub(crate) async fn csrf_token(
    State(k): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|s| s != "same-origin" && s != "none") {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the CSRF token is given to the portal only",
        ));
    }
    let session = authenticate(&k, &Method::GET, &headers)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "log in first"))?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "csrf_token": session.identity.cookie_csrf })),
    )
        .into_response())
}

/// A plugin installed at an org is usable only by callers acting in that
/// org's subtree; elsewhere it does not exist (404), for anonymous callers
/// too.
pub(crate) fn check_plugin_scope(
    k: &Kernel,
    plugin: &crate::plugins::ActivePlugin,
    session: Option<&Session>,
) -> ApiResult<()> {
    let Some(scope) = &plugin.org_id else {
        return Ok(());
    };
    let inside = session.is_some_and(|s| k.authz.orgs().is_within(s.org(), scope));
    if inside {
        Ok(())
    } else {
        Err(crate::plugins::not_installed(&plugin.manifest.id))
    }
}

/// Heartbeat comments, so proxies and browsers keep an idle stream.
pub const STREAM_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(15);

/// The answer of each of the kernel's server-sent-event streams (the
/// wall, live telemetry, the bell): a heartbeat comment every 15 s, and
/// headers that keep proxies from holding events back in their buffers
/// and caches from keeping them.
pub fn event_stream<S, E>(events: S) -> axum::response::Response
where
    S: futures_util::Stream<Item = Result<axum::response::sse::Event, E>> + Send + 'static,
    E: Into<axum::BoxError>,
{
    use axum::http::HeaderValue;
    use axum::response::IntoResponse;
    use axum::response::sse::{KeepAlive, Sse};
    let mut response = Sse::new(events)
        .keep_alive(
            KeepAlive::new()
                .interval(STREAM_HEARTBEAT)
                .text("heartbeat"),
        )
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
