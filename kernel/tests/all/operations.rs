//! What operators and developers read off a running kernel: `/readyz`
//! (200 when ready, 503 naming the failing part), `/metrics` with the
//! kernel's own series and its restrictions, and the OpenAPI document,
//! which must list every kernel route.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::services::PgDatabase;
use crate::support::{TestKernel, metric_value};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(dir: &Path, text: &str) -> String {
    let path = dir.join("test.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn get_anonymous(k: &TestKernel, path: &str) -> (u16, Value) {
    k.request("GET", path, Some(""), None)
}

#[test]
fn readyz_answers_ready_and_names_what_is_not() {
    let k = TestKernel::start();
    let (status, body) = get_anonymous(&k, "/readyz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["nats"], "not configured");
    assert_eq!(get_anonymous(&k, "/healthz").0, 200);
    drop(k);

    // NATS configured but unreachable: the node still lives, but is not
    // ready.
    let port = free_port().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let nats = format!("nats://127.0.0.1:{port}");
    let k = TestKernel::start_in(&tmp.path().join("data"), &["--nats-url", &nats]);
    let (status, body) = get_anonymous(&k, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "not_ready");
    assert_eq!(body["error"]["field"], "nats");
    assert_eq!(get_anonymous(&k, "/healthz").0, 200);
    drop(k);

    // The database goes away under a running node (PostgreSQL dropped).
    if !crate::support::have(crate::support::Service::Postgres) {
        return;
    }
    let db = PgDatabase::create();
    let tmp = tempfile::tempdir().unwrap();
    let k = TestKernel::start_in(&tmp.path().join("data"), &["--database-url", &db.url]);
    assert_eq!(get_anonymous(&k, "/readyz").0, 200);
    drop(db);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get_anonymous(&k, "/readyz");
        if status == 503 {
            assert_eq!(body["error"]["field"], "database", "{body}");
            assert_eq!(body["error"]["code"], "not_ready");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still ready without a database: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(get_anonymous(&k, "/healthz").0, 200);
}

#[test]
fn metrics_count_api_requests_logins_pool_and_backlog() {
    let k = TestKernel::start();
    let (status, me) = k.get("/api/v1/me");
    assert_eq!(status, 200);
    let id = me["id"]
        .as_str()
        .or(me["user"]["id"].as_str())
        .unwrap_or("x")
        .to_string();
    k.get(&format!("/api/v1/users/{id}"));
    let (status, _) = k.request(
        "POST",
        "/api/v1/auth/login",
        Some(""),
        Some(
            json!({"username": "admin", "password": "wrong-password-1"})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(status, 401);
    let text = k.metrics();
    assert!(
        text.contains(
            r#"tianshan_api_requests_total{method="GET",route="/api/v1/me",status="200"} 1"#
        ),
        "{text}"
    );
    // By route template, not by raw path.
    assert!(text.contains(r#"route="/api/v1/users/{id}""#), "{text}");
    assert!(!text.contains(&format!("/api/v1/users/{id}\"")) || id == "{id}");
    assert!(
        text.contains(r#"route="/api/v1/auth/login",status="401""#),
        "{text}"
    );
    assert_eq!(
        metric_value(&text, "tianshan_login_failures_total"),
        Some(1.0)
    );
    assert!(metric_value(&text, "tianshan_db_pool_max_connections").unwrap() >= 1.0);
    assert!(metric_value(&text, "tianshan_db_pool_connections").is_some());
    assert_eq!(
        metric_value(&text, r#"tianshan_event_deliveries{status="dead"}"#),
        Some(0.0)
    );
    assert!(metric_value(&text, r#"tianshan_event_deliveries{status="pending"}"#).is_some());
    assert!(metric_value(&text, "tianshan_job_runs").is_some());
    // The kernel's registry is still there, and the exposition ends once.
    assert!(text.contains("tianshan_plugins_installed"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn metrics_can_need_a_token_or_their_own_address() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), "[metrics]\ntoken = \"scrape-secret-1\"\n");
    let k = TestKernel::start_in(&tmp.path().join("data"), &["--config", &cfg]);
    let (status, body) = get_anonymous(&k, "/metrics");
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthenticated");
    // A user's token is not the metrics token.
    assert_eq!(k.raw("GET", "/metrics", None, None, &[]).0, 401);
    let (status, bytes, _) = k.raw("GET", "/metrics", Some("scrape-secret-1"), None, &[]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&bytes).contains("tianshan_api_requests_total"));
    drop(k);

    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        tmp.path(),
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let k = TestKernel::start_in(&tmp.path().join("data"), &["--config", &cfg]);
    assert_eq!(
        get_anonymous(&k, "/metrics").0,
        404,
        "metrics still on the public listener"
    );
    let mut response = crate::support::agent()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.body_mut().read_to_string().unwrap();
    assert!(text.contains("tianshan_plugins_installed"), "{text}");
}

/// Every `.route("/api/v1/…", get(…).post(…))` in the kernel's source,
/// as (METHOD, path). Reading the source keeps this independent of the
/// table the document is generated from.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.clone()];
    let mut found = BTreeSet::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let trimmed = rest.trim_start();
            let Some(literal) = trimmed.strip_prefix('"') else {
                continue;
            };
            let Some(end) = literal.find('"') else {
                continue;
            };
            let route = &literal[..end];
            // The handlers: up to the parenthesis closing `.route(`.
            let mut depth = 1;
            let mut close = 0;
            for (i, c) in literal[end + 1..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            close = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let handlers = &literal[end + 1..end + 1 + close];
            if !route.starts_with("/api/v1/") || route.starts_with("/api/v1/p/") {
                continue;
            }
            for method in ["get", "post", "put", "patch", "delete"] {
                let call = format!("{method}(");
                let named = handlers.match_indices(&call).any(|(i, _)| {
                    i == 0
                        || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && handlers.as_bytes()[i - 1] != b'_'
                });
                if named {
                    found.insert((method.to_uppercase(), route.to_string()));
                }
            }
        }
    }
    found
}

#[test]
fn every_kernel_route_is_in_the_openapi_document() {
    let k = TestKernel::start();
    let (status, doc) = get_anonymous(&k, "/api/v1/openapi.json");
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    for path in ["/api/v1/auth/login", "/api/v1/plugins", "/api/v1/orgs"] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    // The kernel API's table, and any /api/v1 route still declared with a
    // bare `.route(` elsewhere in the source.
    let mut routes = routes_in_source();
    routes.extend(
        tianshan_kernel::route_table()
            .into_iter()
            .map(|(method, path)| (method.to_string(), path)),
    );
    assert!(
        routes.len() > 40,
        "the source scan found too little: {routes:?}"
    );
    // A route with a parameter where the table names each value (the
    // approvals' `{action}`) is covered by the documented values.
    let covers = |route: &str, documented: &str| {
        let (a, b): (Vec<&str>, Vec<&str>) =
            (route.split('/').collect(), documented.split('/').collect());
        a.len() == b.len() && a.iter().zip(&b).all(|(r, d)| r == d || r.starts_with('{'))
    };
    let paths = doc["paths"].as_object().unwrap();
    let mut missing = Vec::new();
    for (method, route) in &routes {
        let documented = paths
            .iter()
            .any(|(path, item)| covers(route, path) && item[method.to_lowercase()].is_object());
        if !documented {
            missing.push(format!("{method} {route}"));
        }
    }
    assert!(
        missing.is_empty(),
        "kernel routes missing from the OpenAPI document (every kernel route comes from api::routes, so this means the document skipped one): {missing:?}"
    );
    // The browsable page and its script come from this origin.
    let (status, bytes, headers) = k.raw("GET", "/apidocs/", Some(""), None, &[]);
    assert_eq!(status, 200);
    let html = String::from_utf8_lossy(&bytes);
    assert!(
        html.contains("/apidocs/apidocs.js") && !html.contains("https://"),
        "{html}"
    );
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-security-policy" && v.contains("default-src 'self'"))
    );
    assert_eq!(
        k.raw("GET", "/apidocs/apidocs.js", Some(""), None, &[]).0,
        200
    );
}

/// A plugin's own `ui/openapi.json` appears under its prefix.
#[test]
fn a_plugin_openapi_document_is_merged() {
    let k = TestKernel::start();
    let package = crate::support::packages().bytes("hello");
    let parsed =
        tianshan_kernel::plugins::package::Package::from_bytes(&package, usize::MAX).unwrap();
    let mut with_doc = parsed;
    with_doc.ui.insert(
        "openapi.json".into(),
        json!({
            "openapi": "3.1.0",
            "info": {"title": "Hello", "version": "1"},
            "paths": {"/greet/{name}": {"get": {
                "operationId": "greet",
                "responses": {"200": {"description": "a greeting"}},
            }}},
        })
        .to_string()
        .into_bytes(),
    );
    let manifest = toml::to_string(&with_doc.manifest).unwrap();
    let (status, body) = k.install(with_doc.to_bytes(&manifest).unwrap());
    assert_eq!(status, 201, "{body}");
    let (_, doc) = get_anonymous(&k, "/api/v1/openapi.json");
    let op = &doc["paths"]["/api/v1/p/hello/greet/{name}"]["get"];
    assert_eq!(op["operationId"], "hello.greet", "{doc}");
    assert_eq!(op["tags"][0], "plugin:hello");
}
