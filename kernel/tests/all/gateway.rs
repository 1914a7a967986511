//! The gateway: round trips, identity stamping, auth, error shape, metrics.

use crate::support::{TestKernel, metric_value};

#[test]
fn hello_round_trip_through_the_gateway() {
    let k = TestKernel::start();
    k.install_ok("hello");

    let (status, body) = k.get("/api/v1/p/hello/");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plugin"], "hello");
    assert_eq!(body["version"], "0.1.0");

    let payload = serde_json::json!({"name": "天山", "n": [1, 2, 3], "nested": {"ok": true}});
    let (status, body) = k.request(
        "POST",
        "/api/v1/p/hello/echo",
        None,
        Some(payload.to_string().into_bytes()),
    );
    assert_eq!(status, 200);
    assert_eq!(body, payload);

    let (status, body) = k.get("/api/v1/p/hello/greet/%E5%A4%A9%E5%B1%B1");
    assert_eq!(status, 200, "{body}");

    // Typed SDK errors keep the one error shape.
    let (status, body) = k.get("/api/v1/p/hello/fail");
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "validation_failed");
    assert_eq!(body["error"]["field"], "name");

    let (status, body) = k.get("/api/v1/p/hello/no/such/route");
    assert_eq!(status, 404);
    assert!(body["error"]["code"].is_string(), "{body}");
}

#[test]
fn the_kernel_stamps_the_caller_and_plugins_cannot_forge_it() {
    let k = TestKernel::start();
    k.install_ok("hello");
    // Headers that look like identity are just headers; credentials are
    // stripped before the plugin sees the request.
    let (status, bytes, _) = k.raw(
        "GET",
        "/api/v1/p/hello/whoami",
        None,
        None,
        &[("x-tianshan-user", "mallory"), ("x-user-id", "root")],
    );
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["username"], "admin", "{body}");
    assert!(
        body["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "platform-admin")
    );

    // Without a session the non-public route is refused by the kernel.
    let (status, body) = k.request("GET", "/api/v1/p/hello/whoami", Some(""), None);
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthenticated");

    // A forged bearer token is refused, not downgraded to anonymous.
    let (status, body) = k.request("GET", "/api/v1/p/hello/", Some("forged-token"), None);
    assert_eq!(status, 401, "{body}");
}

#[test]
fn login_and_admin_api_are_never_open() {
    let k = TestKernel::start();
    let (status, body) = k.request(
        "POST",
        "/api/v1/auth/login",
        Some(""),
        Some(br#"{"username":"admin","password":"wrong-password"}"#.to_vec()),
    );
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_credentials");
    let (status, unknown) = k.request(
        "POST",
        "/api/v1/auth/login",
        Some(""),
        Some(br#"{"username":"nobody","password":"wrong-password"}"#.to_vec()),
    );
    assert_eq!(status, 401);
    assert_eq!(
        unknown, body,
        "unknown user and wrong password answer alike"
    );

    for (method, path) in [
        ("GET", "/api/v1/plugins"),
        ("POST", "/api/v1/plugins"),
        ("GET", "/api/v1/me"),
        ("DELETE", "/api/v1/plugins/hello"),
    ] {
        let (status, body) = k.request(method, path, Some(""), None);
        assert_eq!(status, 401, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "unauthenticated");
    }

    let (status, me) = k.get("/api/v1/me");
    assert_eq!(status, 200);
    assert_eq!(me["user"]["username"], "admin");

    // Logging out ends the token.
    let token = k.login("admin", crate::support::ADMIN_PASSWORD);
    let (status, _) = k.request("POST", "/api/v1/auth/logout", Some(&token), None);
    assert_eq!(status, 204);
    let (status, _) = k.request("GET", "/api/v1/me", Some(&token), None);
    assert_eq!(status, 401);
}

#[test]
fn errors_have_one_shape_everywhere() {
    let k = TestKernel::start();
    for (method, path, status, code) in [
        ("GET", "/nope", 404, "not_found"),
        ("DELETE", "/healthz", 405, "method_not_allowed"),
        ("GET", "/api/v1/p/absent/", 404, "plugin_not_found"),
        ("GET", "/ui/absent/", 404, "plugin_not_found"),
    ] {
        let (got, body) = k.request(method, path, None, None);
        assert_eq!(got, status, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], code, "{method} {path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let (status, body) = k.request(
        "POST",
        "/api/v1/auth/login",
        Some(""),
        Some(b"{not json".to_vec()),
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_json");

    let (status, _) = k.get("/healthz");
    assert_eq!(status, 200);
}

#[test]
fn oversized_bodies_get_413_and_the_plugin_never_runs() {
    use std::io::{Read, Write};
    let k = TestKernel::start();
    k.install_ok("hello");
    // A raw client: the kernel answers 413 and closes without reading the
    // rest, so a client still writing may see the connection break before
    // it reads the answer (hyper does no lingering close). Both are a
    // refusal; what must hold is the answer when it arrives, that the
    // plugin never ran, and that the kernel goes on serving.
    let address = k.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let big = vec![b'x'; 9 << 20];
    let head = format!(
        "POST /api/v1/p/hello/echo HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        k.token,
        big.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(&big);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 413"),
        "{answer}"
    );
    if !answer.is_empty() {
        assert!(answer.contains("payload_too_large"), "{answer}");
    }
    let text = k.metrics();
    assert_eq!(
        metric_value(
            &text,
            r#"tianshan_plugin_requests_total{plugin="hello",version="0.1.0",class="2xx"}"#
        ),
        None,
        "the plugin ran: {text}"
    );
    assert_eq!(k.get("/api/v1/p/hello/").0, 200);
}

#[test]
fn metrics_count_requests_errors_and_latency_per_plugin() {
    let k = TestKernel::start();
    k.install_ok("hello");
    k.install_ok("panicker");
    for _ in 0..3 {
        assert_eq!(k.get("/api/v1/p/hello/").0, 200);
    }
    assert_eq!(k.get("/api/v1/p/panicker/").0, 500);
    let text = k.metrics();
    assert_eq!(
        metric_value(
            &text,
            r#"tianshan_plugin_requests_total{plugin="hello",version="0.1.0",class="2xx"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"tianshan_plugin_errors_total{plugin="panicker",code="plugin_panicked"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"tianshan_plugin_request_duration_seconds_count{plugin="hello"}"#
        ),
        Some(3.0)
    );
    assert_eq!(metric_value(&text, "tianshan_plugins_installed"), Some(2.0));
}

#[test]
fn ui_assets_are_served_with_types_and_the_menu_is_in_the_manifest() {
    let k = TestKernel::start();
    k.install_ok("welcome");
    let (status, bytes, headers) = k.raw("GET", "/ui/welcome/", Some(""), None, &[]);
    assert_eq!(status, 200);
    let html = String::from_utf8(bytes).unwrap();
    assert!(html.contains("<html"), "{html}");
    let content_type = headers.iter().find(|(k, _)| k == "content-type").unwrap();
    assert!(content_type.1.starts_with("text/html"), "{content_type:?}");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "x-content-type-options" && v == "nosniff")
    );

    // The client would normalise a literal `..` away before sending, so the
    // dots go percent-encoded: the request must reach the UI handler and
    // find no such asset, not a file outside the package.
    let (status, body) = k.get("/ui/welcome/%2e%2e/%2e%2e/etc/passwd");
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has no UI asset"),
        "{body}"
    );

    let (_, show) = k.get("/api/v1/plugins/welcome");
    assert!(
        !show["manifest"]["menu"].as_array().unwrap().is_empty(),
        "{show}"
    );
}
