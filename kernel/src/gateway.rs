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
        .route("/api/v1/auth/csrf", get(csrf_token))
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

/// Response headers a plugin may set, besides `x-…` ones
/// ([`plugin_may_set`]). An allowlist rather than a blocklist: a plugin
/// answers on the kernel's own origin, so any header a browser acts on
/// (`strict-transport-security`, `clear-site-data`, `refresh`,
/// `access-control-allow-*`, `alt-svc`, `set-cookie`, a CSP of its own,
/// framing) would be the plugin speaking for the kernel.
const PLUGIN_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "content-disposition",
    "content-language",
    "cache-control",
    "etag",
    "last-modified",
    "expires",
    "vary",
    "retry-after",
    "allow",
];

/// `x-…` headers that browsers act on, or that the kernel sets itself.
const RESERVED_X_HEADERS: &[&str] = &[
    "x-content-type-options",
    "x-frame-options",
    "x-xss-protection",
    "x-permitted-cross-domain-policies",
    "x-dns-prefetch-control",
    "x-download-options",
];

/// Whether a plugin may set the (lower-case) response header `name`.
/// `location` is decided separately ([`allowed_location`]).
fn plugin_may_set(name: &str) -> bool {
    PLUGIN_RESPONSE_HEADERS.contains(&name)
        || (name.starts_with("x-")
            && !name.starts_with("x-tianshan-")
            && !RESERVED_X_HEADERS.contains(&name))
}

/// A redirect a plugin may answer: a 3xx to a path of its own API or UI.
/// Anything else (another origin, another plugin, the kernel's API) would
/// let a plugin send the viewer where the kernel did not mean to.
fn allowed_location(plugin_id: &str, status: StatusCode, value: &str) -> bool {
    if !status.is_redirection() || value.contains("..") || value.contains('\\') {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    if lower.contains("%2e") || lower.contains("%2f") || lower.contains("%5c") {
        return false;
    }
    [format!("/api/v1/p/{plugin_id}"), format!("/ui/{plugin_id}")]
        .iter()
        .any(|base| {
            value
                .strip_prefix(base.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
        })
}

/// At most this many headers in a plugin's answer; hyper's header map
/// panics past 32,768, and no honest answer needs more than a handful.
pub const MAX_PLUGIN_HEADERS: usize = 100;
/// At most this many bytes of header names and values in all.
pub const MAX_PLUGIN_HEADER_BYTES: usize = 64 << 10;
/// At most this many bytes of body; past it the answer is refused as
/// `plugin_response_too_large` rather than buffered and sent.
pub const MAX_PLUGIN_BODY_BYTES: usize = 64 << 20;

/// The policy of every plugin API answer: nothing loads, nothing frames
/// it, and `sandbox` gives a document (an HTML answer opened directly) an
/// opaque origin, so it can never act as the kernel's origin.
const PLUGIN_API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox";

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
        into_http_response(plugin_id, response)
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

/// Turns a plugin's answer into the HTTP answer: the status checked, the
/// headers capped and filtered ([`plugin_may_set`]), the body capped, and
/// the kernel's own CSP and `nosniff` added.
fn into_http_response(
    plugin_id: &str,
    response: crate::runtime::PluginResponse,
) -> ApiResult<Response> {
    let bad = |detail: String| {
        crate::runtime::PluginFailure {
            code: ErrorCode::PluginBadResponse,
            detail,
        }
        .to_api_error(plugin_id)
    };
    let status = StatusCode::from_u16(response.status)
        .ok()
        .filter(|s| (200..=599).contains(&s.as_u16()))
        .ok_or_else(|| bad(format!("status {} out of range", response.status)))?;
    if response.headers.len() > MAX_PLUGIN_HEADERS {
        return Err(bad(format!(
            "{} headers, more than the {MAX_PLUGIN_HEADERS} allowed",
            response.headers.len()
        )));
    }
    let header_bytes: usize = response
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len())
        .sum();
    if header_bytes > MAX_PLUGIN_HEADER_BYTES {
        return Err(bad(format!(
            "{header_bytes} bytes of headers, more than the {MAX_PLUGIN_HEADER_BYTES} allowed"
        )));
    }
    if response.body.len() > MAX_PLUGIN_BODY_BYTES {
        return Err(ApiError::new(
            ErrorCode::PluginResponseTooLarge,
            format!(
                "plugin {plugin_id} answered {} bytes, more than the {} MiB a response may carry",
                response.body.len(),
                MAX_PLUGIN_BODY_BYTES >> 20
            ),
        ));
    }
    let mut out = Response::new(Body::from(response.body));
    *out.status_mut() = status;
    for (name, value) in response.headers {
        let name_lower = name.to_ascii_lowercase();
        let (Ok(header_name), Ok(header_value)) = (
            HeaderName::from_bytes(name_lower.as_bytes()),
            HeaderValue::from_str(&value),
        ) else {
            return Err(bad(format!("invalid header {name:?}")));
        };
        let keep = if name_lower == "location" {
            allowed_location(plugin_id, status, &value)
        } else {
            plugin_may_set(&name_lower)
        };
        // One content type: a second one is how a browser is talked into
        // sniffing or picking the one the kernel did not check.
        let repeated = name_lower == "content-type" && out.headers().contains_key(&header_name);
        if !keep || repeated {
            tracing::debug!(plugin = %plugin_id, header = %name_lower, "plugin response header dropped");
            continue;
        }
        out.headers_mut().append(header_name, header_value);
    }
    let h = out.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PLUGIN_API_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
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
    ("admin.js", include_str!("../portal/admin.js")),
    ("admin.css", include_str!("../portal/admin.css")),
    (
        "i18n/admin.zh-CN.json",
        include_str!("../portal/i18n/admin.zh-CN.json"),
    ),
    (
        "i18n/admin.en.json",
        include_str!("../portal/i18n/admin.en.json"),
    ),
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

/// The UI kit (`/ui/kit/…`): plain ES modules every plugin page imports,
/// compiled into the kernel like the portal.
const KIT: &[(&str, &str)] = &[
    ("kit.js", include_str!("../portal/kit/kit.js")),
    ("kit.css", include_str!("../portal/kit/kit.css")),
    (
        "i18n/zh-CN.json",
        include_str!("../portal/kit/i18n/zh-CN.json"),
    ),
    ("i18n/en.json", include_str!("../portal/kit/i18n/en.json")),
];

/// The id under `/ui/` that is the kit, not a plugin.
pub const KIT_ID: &str = "kit";

/// The policy of every plugin page. `sandbox` without `allow-same-origin`
/// gives the page an opaque origin: no cookie, no session, no CSRF token,
/// no reading of kernel answers, no access to the portal's DOM or storage.
/// The page reaches the API only through the portal's bridge, which lets it
/// reach its own plugin and little else (`kernel/portal/portal.js`,
/// `bridge`). Scripts come only from the kernel (its own and the kit's
/// files), never inline.
pub const PLUGIN_UI_CSP: &str = "sandbox allow-scripts allow-forms allow-popups allow-downloads; \
default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'self'";

fn ui_mime(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let text = mime.type_() == "text" || mime.subtype() == "javascript" || mime.subtype() == "json";
    mime.essence_str().to_string() + if text { "; charset=utf-8" } else { "" }
}

/// A static file of a plugin page or the kit. A sandboxed page has an
/// opaque origin, so its module scripts and `fetch`es of its own files are
/// cross-origin requests without credentials: `Access-Control-Allow-Origin:
/// *` lets it read these static files (and nothing else of the kernel's).
fn ui_file(path: &str, bytes: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, ui_mime(path)),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
            (header::CONTENT_SECURITY_POLICY, PLUGIN_UI_CSP.to_string()),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_string()),
        ],
        bytes,
    )
        .into_response()
}

fn kit_file(path: &str) -> ApiResult<Response> {
    let (_, text) = KIT
        .iter()
        .find(|(p, _)| *p == path)
        .ok_or_else(|| ApiError::not_found(format!("no UI kit file {path}")))?;
    Ok(ui_file(path, Body::from(*text)))
}

async fn plugin_ui(State(k): State<AppState>, uri: Uri, headers: HeaderMap) -> ApiResult<Response> {
    let rest = uri.path().strip_prefix("/ui/").unwrap_or_default();
    let (plugin_id, asset) = rest.split_once('/').unwrap_or((rest, ""));
    if plugin_id == KIT_ID {
        return kit_file(asset);
    }
    let plugin = k
        .plugins
        .get(plugin_id)
        .ok_or_else(|| crate::plugins::not_installed(plugin_id))?;
    let asset = if asset.is_empty() || asset.ends_with('/') {
        format!("{asset}index.html")
    } else {
        asset.to_string()
    };
    // A plugin installed for one org shows its pages only to callers acting
    // in that subtree. Only documents are checked: the page's own scripts,
    // styles and texts are fetched from its opaque origin without the
    // session cookie, and they are code the package ships, not records.
    let document = asset.ends_with(".html") || asset.ends_with(".htm");
    if plugin.org_id.is_some() && document {
        let session = authenticate(&k, &Method::GET, &headers).await?;
        check_plugin_scope(&k, &plugin, session.as_ref())?;
    }
    if !plugin.enabled() {
        return Err(ApiError::new(
            ErrorCode::PluginDisabled,
            format!("plugin {plugin_id} is disabled"),
        ));
    }
    let bytes = plugin.ui.get(&asset).ok_or_else(|| {
        ApiError::not_found(format!("plugin {plugin_id} has no UI asset {asset}"))
    })?;
    Ok(ui_file(&asset, Body::from(bytes.clone())))
}

/// `GET /api/v1/auth/csrf`: the CSRF token of the caller's cookie session,
/// for the portal shell after a reload (the login answer carries it too).
/// `/api/v1/me` does not: it is the shell's alone. A plugin page cannot
/// read this either way (its opaque origin sends no cookie and may not read
/// kernel answers); a request the browser marks as coming from another
/// site is refused outright all the same.
async fn csrf_token(State(k): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
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
        for name in [
            "set-cookie",
            "transfer-encoding",
            "content-length",
            "strict-transport-security",
            "clear-site-data",
            "www-authenticate",
            "refresh",
            "content-security-policy",
            "content-security-policy-report-only",
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "alt-svc",
            "x-frame-options",
            "x-content-type-options",
            "x-tianshan-org",
            "service-worker-allowed",
            "location",
        ] {
            assert!(!plugin_may_set(name), "{name}");
        }
        for name in [
            "content-type",
            "content-disposition",
            "cache-control",
            "x-total",
        ] {
            assert!(plugin_may_set(name), "{name}");
        }
    }

    #[test]
    fn plugins_redirect_only_within_their_own_paths() {
        let found = StatusCode::FOUND;
        assert!(allowed_location("a", found, "/api/v1/p/a/x?y=1"));
        assert!(allowed_location("a", found, "/ui/a/"));
        assert!(allowed_location("a", found, "/ui/a"));
        assert!(!allowed_location("a", StatusCode::OK, "/ui/a/"));
        for away in [
            "https://evil.example/",
            "//evil.example/ui/a/",
            "/ui/ab/",
            "/ui/a/../b/",
            "/ui/a/%2e%2e/b/",
            "/ui/a/..%2fb",
            "/ui/a\\..\\b",
            "/api/v1/bindings",
        ] {
            assert!(!allowed_location("a", found, away), "{away}");
        }
    }

    fn keys(json: &str) -> std::collections::BTreeSet<String> {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).unwrap();
        map.keys().cloned().collect()
    }

    /// Every text of the kit and of the portal exists in both languages,
    /// and every error code the kernel answers has words in the kit.
    #[test]
    fn kit_and_portal_texts_have_the_same_keys_in_both_languages() {
        let lookup = |files: &[(&str, &str)], name: &str| {
            files
                .iter()
                .find(|(p, _)| *p == name)
                .unwrap()
                .1
                .to_string()
        };
        for files in [KIT, PORTAL] {
            let zh = keys(&lookup(files, "i18n/zh-CN.json"));
            let en = keys(&lookup(files, "i18n/en.json"));
            assert_eq!(
                zh.symmetric_difference(&en).collect::<Vec<_>>(),
                Vec::<&String>::new()
            );
        }
        let kit = keys(&lookup(KIT, "i18n/en.json"));
        let codes: Vec<&str> = include_str!("error.rs")
            .lines()
            .filter_map(|l| l.trim().split_once(" => \""))
            .filter_map(|(_, code)| code.strip_suffix("\","))
            .collect();
        assert!(codes.len() > 20, "{codes:?}");
        for code in codes {
            assert!(
                kit.contains(&format!("code.{code}")),
                "no kit text for {code}"
            );
        }
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
