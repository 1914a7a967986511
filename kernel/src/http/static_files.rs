//! Files the kernel serves as they are: the portal shell, the UI kit
//! (`/ui/kit/`), and each plugin's UI pages from its package, sandboxed.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::core::error::{ApiError, ApiResult, ErrorCode};
use crate::node::Kernel;

use crate::http::session::{authenticate, check_plugin_scope};

type AppState = Arc<Kernel>;

pub(crate) const PORTAL: &[(&str, &str)] = &[
    ("index.html", include_str!("../../portal/index.html")),
    ("portal.js", include_str!("../../portal/portal.js")),
    ("portal.css", include_str!("../../portal/portal.css")),
    (
        "i18n/zh-CN.json",
        include_str!("../../portal/i18n/zh-CN.json"),
    ),
    ("i18n/en.json", include_str!("../../portal/i18n/en.json")),
    ("admin.js", include_str!("../../portal/admin.js")),
    ("admin.css", include_str!("../../portal/admin.css")),
    (
        "i18n/admin.zh-CN.json",
        include_str!("../../portal/i18n/admin.zh-CN.json"),
    ),
    (
        "i18n/admin.en.json",
        include_str!("../../portal/i18n/admin.en.json"),
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

pub(crate) async fn portal_index() -> ApiResult<Response> {
    portal_file("index.html")
}

pub(crate) async fn portal_asset(uri: Uri) -> ApiResult<Response> {
    portal_file(uri.path().trim_start_matches("/portal/"))
}

/// The LED wall (`/wall/`, docs/wall.md): a page of the kernel's own,
/// compiled in like the portal.
pub(crate) const WALL: &[(&str, &str)] = &[
    ("index.html", include_str!("../../portal/wall/index.html")),
    ("wall.js", include_str!("../../portal/wall/wall.js")),
    ("wall.css", include_str!("../../portal/wall/wall.css")),
    (
        "i18n/zh-CN.json",
        include_str!("../../portal/wall/i18n/zh-CN.json"),
    ),
    (
        "i18n/en.json",
        include_str!("../../portal/wall/i18n/en.json"),
    ),
];

/// The wall's policy: scripts (its own, ECharts from `/ui/kit/vendor/`),
/// texts and API calls from this origin only, inline styles (ECharts sets
/// them), and it may not be framed.
const WALL_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

fn wall_file(path: &str) -> ApiResult<Response> {
    kernel_page_file(WALL, "wall", path)
}

/// A file of one of the kernel's own pages (the wall, the open data page),
/// under the wall's policy.
fn kernel_page_file(files: &[(&str, &'static str)], page: &str, path: &str) -> ApiResult<Response> {
    let (_, text) = files
        .iter()
        .find(|(p, _)| *p == path)
        .ok_or_else(|| ApiError::not_found(format!("no {page} file {path}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, ui_mime(path)),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
            (header::CONTENT_SECURITY_POLICY, WALL_CSP.to_string()),
        ],
        *text,
    )
        .into_response())
}

/// The open data page (`/open/`, docs/api.md "Open data"): public and
/// read-only. Its script reads only `/api/v1/open/`, which serves open
/// indicators' rolled-up values and nothing else, so it needs no session
/// and shows the same to everyone.
pub(crate) const OPEN: &[(&str, &str)] = &[
    ("index.html", include_str!("../../portal/open/index.html")),
    ("open.js", include_str!("../../portal/open/open.js")),
    ("open.css", include_str!("../../portal/open/open.css")),
    (
        "i18n/zh-CN.json",
        include_str!("../../portal/open/i18n/zh-CN.json"),
    ),
    (
        "i18n/en.json",
        include_str!("../../portal/open/i18n/en.json"),
    ),
];

pub(crate) async fn open_index() -> ApiResult<Response> {
    kernel_page_file(OPEN, "open", "index.html")
}

pub(crate) async fn open_asset(uri: Uri) -> ApiResult<Response> {
    kernel_page_file(OPEN, "open", uri.path().trim_start_matches("/open/"))
}

/// `/open` without the slash.
pub(crate) async fn open_slash() -> Response {
    (
        axum::http::StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, "/open/")],
    )
        .into_response()
}

/// `/wall/` (and `/wall/?org=…`): the page, for a signed-in browser only;
/// without a session, the portal's sign-in, which comes back here
/// (`portal.js` `returnTo`). What the wall shows is read by its script
/// through the API, which checks the viewer's reach.
pub(crate) async fn wall_index(
    State(k): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if authenticate(&k, &Method::GET, &headers).await?.is_none() {
        let back = match uri.query() {
            Some(q) => format!("/wall/?{q}"),
            None => "/wall/".to_string(),
        };
        let to = format!("/?next={}", percent_encode(&back));
        return Ok((
            axum::http::StatusCode::SEE_OTHER,
            [
                (header::LOCATION, to),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
        )
            .into_response());
    }
    let mut response = wall_file("index.html")?;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// `/wall` without the slash: one address for the page.
pub(crate) async fn wall_slash(uri: Uri) -> Response {
    let to = match uri.query() {
        Some(q) => format!("/wall/?{q}"),
        None => "/wall/".to_string(),
    };
    (
        axum::http::StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, to)],
    )
        .into_response()
}

/// The wall's script, style and texts: code the kernel ships, not data.
pub(crate) async fn wall_asset(uri: Uri) -> ApiResult<Response> {
    wall_file(uri.path().trim_start_matches("/wall/"))
}

/// Everything but unreserved characters as `%XX`, for a query value.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The UI kit (`/ui/kit/…`): plain ES modules every plugin page imports,
/// compiled into the kernel like the portal.
pub(crate) const KIT: &[(&str, &str)] = &[
    ("kit.js", include_str!("../../portal/kit/kit.js")),
    ("kit.css", include_str!("../../portal/kit/kit.css")),
    (
        "i18n/zh-CN.json",
        include_str!("../../portal/kit/i18n/zh-CN.json"),
    ),
    (
        "i18n/en.json",
        include_str!("../../portal/kit/i18n/en.json"),
    ),
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

fn kit_file(path: &str, query: Option<&str>) -> ApiResult<Response> {
    if let Some(name) = path.strip_prefix("vendor/") {
        return vendor_file(name, query);
    }
    let (_, text) = KIT
        .iter()
        .find(|(p, _)| *p == path)
        .ok_or_else(|| ApiError::not_found(format!("no UI kit file {path}")))?;
    Ok(ui_file(path, Body::from(*text)))
}

/// A front-end library the kit serves (`/ui/kit/vendor/…`): pinned in
/// `kernel/portal/vendor/package-lock.json`, installed by `kernel/build.rs`
/// with `npm ci` and embedded from OUT_DIR. `bytes` is empty when the build
/// had no npm (the kit then degrades: charts show tables, codes are typed).
pub struct VendorFile {
    /// The name under `/ui/kit/vendor/`.
    pub name: &'static str,
    /// The npm package it comes from, and the version the lock pins.
    pub package: &'static str,
    pub version: &'static str,
    /// The global its UMD build sets (`window.echarts`); empty for data
    /// such as a region map.
    pub global: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/vendor.rs"));

/// `/ui/kit/vendor/index.js`: the served libraries as an ES module the kit
/// imports lazily, `{name: {package, version, global, size, url}}`, each `url`
/// versioned (`?v=`) so browsers may keep it.
fn vendor_index() -> String {
    let entries: Vec<String> = VENDOR_FILES
        .iter()
        .map(|f| {
            let entry = serde_json::json!({
                "package": f.package,
                "version": f.version,
                "global": f.global,
                "size": f.bytes.len(),
                "url": format!("/ui/kit/vendor/{}?v={}", f.name, f.version),
            });
            format!("  {}: {entry}", serde_json::Value::from(f.name))
        })
        .collect();
    format!(
        "// The UI kit's libraries (kernel/portal/vendor/package-lock.json); size 0: not \
         installed when the kernel was built.\nexport const vendor = {{\n{}\n}};\n",
        entries.join(",\n")
    )
}

/// One vendor file with the kit's headers; kept a year (`immutable`) when
/// the URL names the version served (`?v=6.1.0`), revalidated otherwise, so
/// a page naming an older version never pins these bytes under it.
fn vendor_file(name: &str, query: Option<&str>) -> ApiResult<Response> {
    if name == "index.js" {
        return Ok(ui_file(name, Body::from(vendor_index())));
    }
    let file = VENDOR_FILES
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no UI kit library {name}")))?;
    let versioned = query
        .unwrap_or_default()
        .split('&')
        .any(|pair| pair.strip_prefix("v=") == Some(file.version));
    let mut response = ui_file(name, Body::from(file.bytes));
    if versioned && !file.bytes.is_empty() {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    Ok(response)
}

pub(crate) async fn plugin_ui(
    State(k): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let rest = uri.path().strip_prefix("/ui/").unwrap_or_default();
    let (plugin_id, asset) = rest.split_once('/').unwrap_or((rest, ""));
    if plugin_id == KIT_ID {
        return kit_file(asset, uri.query());
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
