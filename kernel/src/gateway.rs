//! The HTTP surface (axum): health, metrics, the kernel API under
//! `/api/v1/`, plugin calls under `/api/v1/p/{plugin}/…`, plugin UI assets
//! under `/ui/{plugin}/…`.
//!
//! Path of one plugin request: [`plugin_call`] → [`authenticate`] (session
//! or token; the kernel decides, the plugin only reads the result) →
//! [`Runtime::handle_http`](crate::runtime::Runtime::handle_http) (fresh
//! store, deadline, memory cap) → the plugin's exported handler → host
//! imports ([`crate::runtime`]'s `host` module) → the answer, checked and
//! passed back.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header, request::Parts,
};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use tracing::Instrument;

use crate::Kernel;
use crate::auth::{CSRF_HEADER, Identity, SESSION_COOKIE};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::metrics::{ErrorLabels, PluginLabels, RequestLabels, status_class};
use crate::runtime::PluginRequest;
use crate::runtime::Principal;
use crate::{audit, authz};

type AppState = Arc<Kernel>;

pub fn router(kernel: Arc<Kernel>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(crate::health::routes(&kernel))
        .merge(crate::openapi::routes())
        .merge(
            crate::api::routes().route_layer(axum::middleware::from_fn(crate::health::track_api)),
        )
        .route("/", get(portal_index))
        .route("/portal/{*path}", get(portal_asset))
        .route("/api/v1/p/{plugin}", any(plugin_call))
        .route("/api/v1/p/{plugin}/", any(plugin_call))
        .route("/api/v1/p/{plugin}/{*path}", any(plugin_call))
        .route("/ui/{plugin}", get(plugin_ui))
        .route("/ui/{plugin}/", get(plugin_ui))
        .route("/ui/{plugin}/{*path}", get(plugin_ui))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(kernel)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Reads a body up to `limit` bytes, answering 413 past it.
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

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
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
fn split_plugin_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/api/v1/p/")?;
    match rest.find('/') {
        Some(i) => Some((&rest[..i], &rest[i..])),
        None => Some((rest, "/")),
    }
}

/// Headers a plugin never sees: credentials stay with the kernel.
fn is_credential_header(name: &HeaderName) -> bool {
    name == header::AUTHORIZATION || name == header::COOKIE || name.as_str() == CSRF_HEADER
}

/// Headers a plugin may not set: framing is the gateway's, and cookies on
/// the kernel's origin are the kernel's.
fn is_reserved_response_header(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-authenticate"
            | "proxy-connection"
            | "content-length"
            | "set-cookie"
    )
}

async fn plugin_call(State(k): State<AppState>, request: axum::extract::Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let Some((plugin_id, path)) = split_plugin_path(parts.uri.path()) else {
        return ApiError::not_found("no plugin in path").into_response();
    };
    let Some(plugin) = k.plugins.get(plugin_id) else {
        return crate::plugins::not_installed(plugin_id).into_response();
    };
    let version = plugin.manifest.version.to_string();
    let result = async {
        if !plugin.enabled() {
            return Err(ApiError::new(
                ErrorCode::PluginDisabled,
                format!("plugin {plugin_id} is disabled"),
            ));
        }
        let session = authenticate(&k, &parts.method, &parts.headers).await?;
        check_plugin_scope(&k, &plugin, session.as_ref())?;
        if session.is_none() && !plugin.manifest.is_public(parts.method.as_str(), path) {
            return Err(ApiError::new(ErrorCode::Unauthenticated, "log in first"));
        }
        let body = read_body(body, k.config.max_body_bytes).await?;
        let headers = parts
            .headers
            .iter()
            .filter(|(name, _)| !is_credential_header(name))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect();
        let request = PluginRequest {
            method: parts.method.as_str().to_string(),
            path: path.to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            headers,
            body,
        };
        let response = k
            .runtime
            .handle_http(
                &plugin.component,
                session.map(|s| crate::runtime::CallerContext {
                    principal: s.principal,
                    scope: s.identity.token_scope,
                }),
                request,
            )
            .await
            .map_err(|failure| {
                k.metrics
                    .plugin_errors
                    .get_or_create(&ErrorLabels {
                        plugin: plugin_id.to_string(),
                        code: failure.code.as_str(),
                    })
                    .inc();
                failure.to_api_error(plugin_id)
            })?;
        into_http_response(response)
    }
    .instrument(tracing::info_span!("plugin_request", plugin = %plugin_id, version = %version, method = %parts.method, path = %path))
    .await;
    let response = result.unwrap_or_else(IntoResponse::into_response);
    k.metrics
        .plugin_requests
        .get_or_create(&RequestLabels {
            plugin: plugin_id.to_string(),
            version,
            class: status_class(response.status().as_u16()),
        })
        .inc();
    k.metrics
        .plugin_latency
        .get_or_create(&PluginLabels {
            plugin: plugin_id.to_string(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// A plugin installed at an org is usable only by callers acting in that
/// org's subtree; elsewhere it does not exist (404), for anonymous callers
/// too.
fn check_plugin_scope(
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

fn into_http_response(response: crate::runtime::PluginResponse) -> ApiResult<Response> {
    let bad = |detail: String| crate::runtime::PluginFailure {
        code: ErrorCode::PluginBadResponse,
        detail,
    };
    let status = StatusCode::from_u16(response.status)
        .ok()
        .filter(|s| (200..=599).contains(&s.as_u16()))
        .ok_or_else(|| {
            bad(format!("status {} out of range", response.status)).to_api_error("plugin")
        })?;
    let mut out = Response::new(Body::from(response.body));
    *out.status_mut() = status;
    for (name, value) in response.headers {
        let name_lower = name.to_ascii_lowercase();
        if is_reserved_response_header(&name_lower) {
            continue;
        }
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name_lower.as_bytes()),
            HeaderValue::from_str(&value),
        ) else {
            return Err(bad(format!("invalid header {name:?}")).to_api_error("plugin"));
        };
        out.headers_mut().append(name, value);
    }
    Ok(out)
}

/// The portal shell: static files compiled into the kernel, so serving it
/// needs no Node build at run time.
const PORTAL: &[(&str, &str)] = &[
    ("index.html", include_str!("../portal/index.html")),
    ("portal.js", include_str!("../portal/portal.js")),
    ("portal.css", include_str!("../portal/portal.css")),
    ("i18n/zh-CN.json", include_str!("../portal/i18n/zh-CN.json")),
    ("i18n/en.json", include_str!("../portal/i18n/en.json")),
];

const PORTAL_CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'";

fn portal_file(path: &str) -> ApiResult<Response> {
    let (_, text) = PORTAL
        .iter()
        .find(|(p, _)| *p == path)
        .ok_or_else(|| ApiError::not_found(format!("no portal file {path}")))?;
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                format!("{}; charset=utf-8", mime.essence_str()),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
            (header::CONTENT_SECURITY_POLICY, PORTAL_CSP.to_string()),
        ],
        *text,
    )
        .into_response())
}

async fn portal_index() -> ApiResult<Response> {
    portal_file("index.html")
}

async fn portal_asset(uri: Uri) -> ApiResult<Response> {
    portal_file(uri.path().trim_start_matches("/portal/"))
}

async fn plugin_ui(State(k): State<AppState>, uri: Uri, headers: HeaderMap) -> ApiResult<Response> {
    let rest = uri.path().strip_prefix("/ui/").unwrap_or_default();
    let (plugin_id, asset) = rest.split_once('/').unwrap_or((rest, ""));
    let plugin = k
        .plugins
        .get(plugin_id)
        .ok_or_else(|| crate::plugins::not_installed(plugin_id))?;
    if plugin.org_id.is_some() {
        let session = authenticate(&k, &Method::GET, &headers).await?;
        check_plugin_scope(&k, &plugin, session.as_ref())?;
    }
    if !plugin.enabled() {
        return Err(ApiError::new(
            ErrorCode::PluginDisabled,
            format!("plugin {plugin_id} is disabled"),
        ));
    }
    let asset = if asset.is_empty() || asset.ends_with('/') {
        format!("{asset}index.html")
    } else {
        asset.to_string()
    };
    let bytes = plugin.ui.get(&asset).ok_or_else(|| {
        ApiError::not_found(format!("plugin {plugin_id} has no UI asset {asset}"))
    })?;
    let mime = mime_guess::from_path(&asset).first_or_octet_stream();
    Ok((
        [
            (header::CONTENT_TYPE, mime.essence_str().to_string() + if mime.type_() == "text" || mime.subtype() == "javascript" || mime.subtype() == "json" { "; charset=utf-8" } else { "" }),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'".to_string(),
            ),
        ],
        bytes.clone(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_paths_split_into_id_and_inner_path() {
        assert_eq!(split_plugin_path("/api/v1/p/hello"), Some(("hello", "/")));
        assert_eq!(split_plugin_path("/api/v1/p/hello/"), Some(("hello", "/")));
        assert_eq!(
            split_plugin_path("/api/v1/p/hello/a/b"),
            Some(("hello", "/a/b"))
        );
        assert_eq!(split_plugin_path("/api/v1/plugins"), None);
    }

    #[test]
    fn credentials_never_reach_plugins_and_plugins_cannot_set_cookies() {
        assert!(is_credential_header(&header::AUTHORIZATION));
        assert!(is_credential_header(&header::COOKIE));
        assert!(is_reserved_response_header("set-cookie"));
        assert!(is_reserved_response_header("transfer-encoding"));
        assert!(!is_reserved_response_header("content-type"));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tianshan_session=tok; b=2"),
        );
        assert_eq!(cookie_value(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie_value(&h, "c"), None);
    }
}
