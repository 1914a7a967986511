//! The OpenAPI 3.1 document of the kernel API at `/api/v1/openapi.json`,
//! and a page that renders it for prefecture developers at `/apidocs/`.
//!
//! The document is generated, not written: its paths are
//! [`api::route_table`](crate::http::api::route_table) (the table the access test also
//! walks) plus this node's operational routes, each with its path
//! parameters, the credentials it takes and the one error shape. The test
//! `openapi::every_kernel_route_is_in_the_document` reads the routers'
//! source and fails when a route is missing here. Each enabled
//! platform-wide plugin that ships `ui/openapi.json` has its paths merged
//! under `/api/v1/p/{id}` (its schemas renamed `{id}.Name`, so plugins
//! cannot collide with each other or with the kernel).

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::node::Kernel;

type AppState = Arc<Kernel>;

/// Routes outside [`crate::http::api::route_table`] that the document also lists:
/// (method, path, summary).
pub const OPERATIONAL_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/healthz", "Liveness: the process serves"),
    (
        "GET",
        "/readyz",
        "Readiness: database, NATS (when configured) and the plugin table",
    ),
    (
        "GET",
        "/metrics",
        "Prometheus metrics (may need the metrics token or its own address)",
    ),
    ("GET", "/api/v1/openapi.json", "This document"),
];

/// Routes anyone may call without credentials.
const PUBLIC: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/openapi.json",
    "/api/v1/auth/login",
    "/api/v1/open/datasets",
    "/api/v1/open/datasets/{code}",
];

/// The document and its page; `kernel_api` is the kernel API's route table.
pub fn routes(kernel_api: Vec<(&'static str, String)>) -> Router<AppState> {
    let kernel_api = Arc::new(kernel_api);
    Router::new()
        .route(
            "/api/v1/openapi.json",
            get(move |state| document_handler(state, kernel_api.clone())),
        )
        .route("/apidocs", get(page))
        .route("/apidocs/", get(page))
        .route("/apidocs/apidocs.js", get(script))
}

const PAGE: &str = include_str!("../../portal/apidocs/index.html");
const SCRIPT: &str = include_str!("../../portal/apidocs/apidocs.js");
// The page's script is its own file (no inline script), everything from
// this origin: no CDN.
const PAGE_CSP: &str =
    "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        SCRIPT,
    )
        .into_response()
}

async fn document_handler(
    axum::extract::State(k): axum::extract::State<AppState>,
    kernel_api: Arc<Vec<(&'static str, String)>>,
) -> Response {
    let plugins: Vec<(String, Value)> = k
        .plugins
        .list()
        .iter()
        // A plugin installed for one subtree is not advertised to everyone.
        .filter(|p| p.enabled() && p.org_id.is_none())
        .filter_map(|p| {
            let bytes = p.ui.get("openapi.json")?;
            match serde_json::from_slice::<Value>(bytes) {
                Ok(doc) => Some((p.manifest.id.clone(), doc)),
                Err(e) => {
                    tracing::warn!(plugin = %p.manifest.id, error = %e,
                        "ui/openapi.json is not JSON; left out of the API document");
                    None
                }
            }
        })
        .collect();
    axum::Json(document(&kernel_api, &plugins)).into_response()
}

fn tag_of(path: &str) -> String {
    let rest = path.strip_prefix("/api/v1/").unwrap_or("operations");
    match rest.split('/').next().unwrap_or("") {
        "" | "openapi.json" => "operations".into(),
        "auth" | "me" | "tokens" => "identity".into(),
        first => first.to_string(),
    }
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            json!({
                "name": name.trim_start_matches('*'),
                "in": "path",
                "required": true,
                "schema": {"type": "string"},
            })
        })
        .collect()
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_lowercase();
    for part in path.trim_start_matches("/api/v1").split('/') {
        let part = part.trim_matches(|c| c == '{' || c == '}');
        if part.is_empty() {
            continue;
        }
        id.push('_');
        id.extend(
            part.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

fn operation(method: &str, path: &str, summary: Option<&str>) -> Value {
    let public = PUBLIC.contains(&path);
    let mut op = json!({
        "operationId": operation_id(method, path),
        "summary": summary.map(str::to_string).unwrap_or_else(|| format!("{method} {path}")),
        "tags": [tag_of(path)],
        "responses": {
            "2XX": {"description": "Success"},
            "4XX": {"$ref": "#/components/responses/Error"},
            "5XX": {"$ref": "#/components/responses/Error"},
        },
    });
    let parameters = path_parameters(path);
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if matches!(method, "POST" | "PUT" | "PATCH") {
        op["requestBody"] = json!({
            "required": false,
            "content": {"application/json": {"schema": {"type": "object"}}},
        });
    }
    op["security"] = if public {
        json!([{}, {"bearer": []}, {"session": []}])
    } else {
        json!([{"bearer": []}, {"session": []}])
    };
    op
}

/// Rewrites `#/components/schemas/X` to `#/components/schemas/{prefix}X`
/// everywhere in a plugin's fragment.
fn prefix_refs(value: &mut Value, prefix: &str) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "$ref"
                    && let Value::String(s) = v
                    && let Some(name) = s.strip_prefix("#/components/schemas/")
                {
                    *s = format!("#/components/schemas/{prefix}{name}");
                } else {
                    prefix_refs(v, prefix);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| prefix_refs(v, prefix)),
        _ => {}
    }
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// The whole document: the kernel's routes and, under their prefixes, the
/// paths of `plugins` ((id, the plugin's own OpenAPI document)).
pub fn document(kernel_api: &[(&'static str, String)], plugins: &[(String, Value)]) -> Value {
    let mut paths = Map::new();
    let mut add = |method: &str, path: &str, summary: Option<&str>| {
        let entry = paths
            .entry(path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[method.to_lowercase()] = operation(method, path, summary);
    };
    for (method, path) in kernel_api {
        add(method, path, None);
    }
    for (method, path, summary) in OPERATIONAL_ROUTES {
        add(method, path, Some(summary));
    }
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "Stable error code, e.g. validation_failed"},
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "The input or part the error is about"},
                },
            }},
        }),
    );
    let mut tags: Vec<Value> = Vec::new();
    for (id, doc) in plugins {
        let prefix = format!("{id}.");
        let mut fragment = doc.clone();
        prefix_refs(&mut fragment, &prefix);
        if let Some(own) = fragment
            .pointer("/components/schemas")
            .and_then(Value::as_object)
        {
            for (name, schema) in own {
                schemas.insert(format!("{prefix}{name}"), schema.clone());
            }
        }
        let Some(own_paths) = fragment.get("paths").and_then(Value::as_object) else {
            continue;
        };
        let tag = format!("plugin:{id}");
        tags.push(json!({
            "name": tag,
            "description": doc.pointer("/info/title").cloned().unwrap_or(Value::String(id.clone())),
        }));
        for (path, item) in own_paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            let full = format!("/api/v1/p/{id}/{}", path.trim_start_matches('/'));
            let mut merged = Map::new();
            for (key, value) in item {
                let mut value = value.clone();
                if METHODS.contains(&key.as_str()) && value.is_object() {
                    // Grouped under the plugin, whatever tags it chose.
                    value["tags"] = json!([tag]);
                    if let Some(op_id) = value.get("operationId").and_then(Value::as_str) {
                        value["operationId"] = Value::String(format!("{id}.{op_id}"));
                    }
                }
                merged.insert(key.clone(), value);
            }
            paths.insert(full, Value::Object(merged));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tianshan kernel API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The kernel API of the Tianshan platform (机关事务管理局). Errors share one shape, \
                {\"error\":{\"code\",\"message\",\"field\"}}; codes are stable. Plugin APIs are under \
                /api/v1/p/{plugin}/.",
        },
        "servers": [{"url": "/"}],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {"Error": {
                "description": "An error in the one shape",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                    "description": "A login token (POST /api/v1/auth/login) or an API token (tsk_…)"},
                "session": {"type": "apiKey", "in": "cookie", "name": crate::identity::auth::SESSION_COOKIE,
                    "description": "The portal's session cookie; writes also need the X-CSRF-Token header"},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_kernel_routes_with_parameters() {
        let doc = document(&crate::http::api::routes().table(), &[]);
        assert_eq!(doc["openapi"], "3.1.0");
        let login = &doc["paths"]["/api/v1/auth/login"]["post"];
        assert_eq!(login["operationId"], "post_auth_login");
        let user = &doc["paths"]["/api/v1/users/{id}"]["patch"];
        assert_eq!(user["parameters"][0]["name"], "id");
        assert!(doc["paths"]["/readyz"]["get"].is_object());
    }

    #[test]
    fn a_plugin_document_is_merged_under_its_prefix() {
        let plugin = json!({
            "openapi": "3.1.0",
            "info": {"title": "Notes", "version": "1"},
            "paths": {"/notes/{id}": {"get": {
                "operationId": "show",
                "responses": {"200": {"content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Note"}}}}},
            }}},
            "components": {"schemas": {"Note": {"type": "object"}}},
        });
        let doc = document(&[], &[("notes".into(), plugin)]);
        let op = &doc["paths"]["/api/v1/p/notes/notes/{id}"]["get"];
        assert_eq!(op["operationId"], "notes.show");
        assert_eq!(op["tags"][0], "plugin:notes");
        assert_eq!(
            op.pointer("/responses/200/content/application~1json/schema/$ref"),
            Some(&json!("#/components/schemas/notes.Note"))
        );
        assert!(doc["components"]["schemas"]["notes.Note"].is_object());
        // A plugin cannot replace the kernel's own schemas.
        assert!(doc["components"]["schemas"]["Error"]["properties"].is_object());
    }
}
