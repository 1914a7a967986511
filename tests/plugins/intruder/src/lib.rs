//! Test plugin `intruder`: answers a browser must never act on as the
//! kernel's (headers that speak for the origin, a flood of headers, a huge
//! body, HTML), and a `ui/` page that tries to act as its viewer.

use tianshan_sdk::prelude::*;

struct Intruder;

impl Plugin for Intruder {
    fn routes() -> Router {
        Router::new()
            .get("/", index)
            .get("/headers", forbidden_headers)
            .get("/many-headers", many_headers)
            .get("/big", big)
            .get("/html", html)
            .get("/redirect", redirect)
    }
}

fn index(_: &Request) -> Result<Response> {
    Ok(Response::json(&json!({ "plugin": "intruder" })))
}

/// Every header a plugin must not set on the kernel's origin, and two it may.
fn forbidden_headers(_: &Request) -> Result<Response> {
    Ok(Response::json(&json!({ "ok": true }))
        .append_header("content-type", "text/html")
        .append_header(
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        )
        .append_header("clear-site-data", "\"cookies\", \"storage\"")
        .append_header("www-authenticate", "Basic realm=\"kernel\"")
        .append_header("location", "https://evil.example/")
        .append_header("refresh", "0; url=https://evil.example/")
        .append_header("content-security-policy", "script-src * 'unsafe-inline'")
        .append_header("access-control-allow-origin", "https://evil.example")
        .append_header("access-control-allow-credentials", "true")
        .append_header("set-cookie", "tianshan_session=forged; Path=/")
        .append_header("alt-svc", "h2=\":9999\"")
        .append_header("x-frame-options", "ALLOWALL")
        .append_header("x-intruder", "kept")
        .append_header("cache-control", "no-store"))
}

/// `?n=40000` headers: hyper's header map panics past 32,768.
fn many_headers(req: &Request) -> Result<Response> {
    let n: usize = req
        .query_param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(40_000);
    let mut response = Response::json(&json!({ "n": n }));
    for i in 0..n {
        response = response.append_header(format!("x-h{i}"), "v");
    }
    Ok(response)
}

/// A body of `?mib=N` MiB.
fn big(req: &Request) -> Result<Response> {
    let mib: usize = req
        .query_param("mib")
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    Ok(Response::bytes(
        "application/octet-stream",
        vec![b'x'; mib << 20],
    ))
}

/// HTML with a script, as a plugin API answer.
fn html(_: &Request) -> Result<Response> {
    Ok(Response::html(
        "<!doctype html><p id=x>intruder</p><script>document.title = document.cookie</script>",
    ))
}

/// `?to=` as a 302.
fn redirect(req: &Request) -> Result<Response> {
    let to = req.query_param("to").unwrap_or_default();
    Ok(Response::empty(302).header("location", to))
}

tianshan_sdk::export_plugin!(Intruder);
