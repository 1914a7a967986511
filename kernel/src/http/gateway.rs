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
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use tracing::Instrument;

use crate::core::error::{ApiError, ApiResult, ErrorCode};
use crate::http::routes::Routes;
use crate::http::session::{authenticate, check_plugin_scope, read_body};
use crate::http::static_files::{
    open_asset, open_index, open_slash, plugin_ui, portal_asset, portal_index, wall_asset,
    wall_index, wall_slash,
};
use crate::identity::auth::CSRF_HEADER;
use crate::metrics::{ErrorLabels, PluginLabels, RequestLabels, status_class};
use crate::node::Kernel;
use crate::runtime::PluginRequest;

type AppState = Arc<Kernel>;

/// The whole HTTP surface; `kernel_api` is the kernel API (`kernel_routes`
/// in `lib.rs`: the kernel's own routes and every host service's).
pub fn router(kernel: Arc<Kernel>, kernel_api: Routes) -> Router {
    let table = kernel_api.table();
    Router::new()
        .route("/healthz", get(healthz))
        .merge(crate::http::health::routes(&kernel))
        .merge(crate::http::openapi::routes(table))
        .merge(
            kernel_api
                .into_router()
                .route_layer(axum::middleware::from_fn(crate::http::health::track_api)),
        )
        .route("/", get(portal_index))
        .route("/portal/{*path}", get(portal_asset))
        .route("/wall", get(wall_slash))
        .route("/wall/", get(wall_index))
        .route("/wall/{*path}", get(wall_asset))
        .route("/open", get(open_slash))
        .route("/open/", get(open_index))
        .route("/open/{*path}", get(open_asset))
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::session::cookie_value;
    use crate::http::static_files::{KIT, OPEN, PORTAL, WALL};
    use crate::identity::auth::SESSION_COOKIE;
    use axum::http::HeaderMap;

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

    /// Every text of the kit, the portal and the wall exists in both languages,
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
        for files in [KIT, PORTAL, WALL, OPEN] {
            let zh = keys(&lookup(files, "i18n/zh-CN.json"));
            let en = keys(&lookup(files, "i18n/en.json"));
            assert_eq!(
                zh.symmetric_difference(&en).collect::<Vec<_>>(),
                Vec::<&String>::new()
            );
        }
        let kit = keys(&lookup(KIT, "i18n/en.json"));
        let codes: Vec<&str> = include_str!("../core/error.rs")
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
        // The codes the SDK answers with for every plugin (its host-call
        // error mappings) reach pages too: each needs words as well.
        let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/src");
        let mut sdk_codes = Vec::new();
        for entry in std::fs::read_dir(&sdk).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for marker in [
                "Error::new(503, \"",
                "Error::new(422, \"",
                "bad_request(\"",
                "with_code(\"",
            ] {
                for rest in text.split(marker).skip(1) {
                    let code: String = rest.chars().take_while(|c| *c != '"').collect();
                    if code.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !code.is_empty()
                    {
                        sdk_codes.push(code);
                    }
                }
            }
        }
        assert!(sdk_codes.len() > 10, "{sdk_codes:?}");
        let missing: Vec<&String> = sdk_codes
            .iter()
            .filter(|c| !kit.contains(&format!("code.{c}")))
            .collect();
        assert!(
            missing.is_empty(),
            "SDK codes without kit texts: {missing:?}"
        );
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
