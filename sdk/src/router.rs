use crate::{Error, Request, Response, Result};

/// A request handler: a plain `fn(&Request) -> Result<Response>` or a
/// closure. Functions and closures that capture nothing are zero-sized, so
/// boxing them does not allocate.
pub type Handler = Box<dyn Fn(&Request) -> Result<Response>>;

struct Route {
    method: &'static str,
    pattern: &'static str,
    handler: Handler,
    /// Checked before the handler runs: a route cannot forget it.
    permission: Option<&'static str>,
}

/// Routes requests by method and path.
///
/// Patterns are matched segment by segment against the request path:
/// literal segments must be equal, `{name}` matches one non-empty segment and
/// a trailing `{*name}` matches the rest of the path (possibly empty). The
/// first route registered that matches wins. Parameters are read with
/// [`Request::param`], percent-decoded.
///
/// No matching path gives 404 `not_found`; a matching path without a route
/// for the method gives 405 `method_not_allowed` with an `allow` header.
/// `HEAD` is answered by the `GET` route, without the body.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self { routes: Vec::new() }
    }

    /// Route `method` (upper-case, e.g. `"GET"`) and `pattern` to `handler`.
    pub fn route(
        mut self,
        method: &'static str,
        pattern: &'static str,
        handler: impl Fn(&Request) -> Result<Response> + 'static,
    ) -> Self {
        self.routes.push(Route {
            method,
            pattern,
            handler: Box::new(handler),
            permission: None,
        });
        self
    }

    /// The route added last needs `permission` (at the acting org); the
    /// router checks it before the handler runs, answering 403 otherwise.
    ///
    /// ```ignore
    /// Router::new()
    ///     .get("/rooms", list).requires("rooms.view")
    ///     .post("/rooms", create).requires("rooms.manage")
    /// ```
    pub fn requires(mut self, permission: &'static str) -> Self {
        if let Some(route) = self.routes.last_mut() {
            route.permission = Some(permission);
        }
        self
    }

    /// The permissions routes declare, as (method, pattern, permission).
    pub fn permissions(
        &self,
    ) -> impl Iterator<Item = (&'static str, &'static str, &'static str)> + '_ {
        self.routes
            .iter()
            .filter_map(|r| r.permission.map(|p| (r.method, r.pattern, p)))
    }

    /// Route `GET pattern`.
    pub fn get(
        self,
        pattern: &'static str,
        handler: impl Fn(&Request) -> Result<Response> + 'static,
    ) -> Self {
        self.route("GET", pattern, handler)
    }

    /// Route `POST pattern`.
    pub fn post(
        self,
        pattern: &'static str,
        handler: impl Fn(&Request) -> Result<Response> + 'static,
    ) -> Self {
        self.route("POST", pattern, handler)
    }

    /// Route `PUT pattern`.
    pub fn put(
        self,
        pattern: &'static str,
        handler: impl Fn(&Request) -> Result<Response> + 'static,
    ) -> Self {
        self.route("PUT", pattern, handler)
    }

    /// Route `PATCH pattern`.
    pub fn patch(
        self,
        pattern: &'static str,
        handler: impl Fn(&Request) -> Result<Response> + 'static,
    ) -> Self {
        self.route("PATCH", pattern, handler)
    }

    /// Route `DELETE pattern`.
    pub fn delete(
        self,
        pattern: &'static str,
        handler: impl Fn(&Request) -> Result<Response> + 'static,
    ) -> Self {
        self.route("DELETE", pattern, handler)
    }

    /// Dispatch `request` to its handler; errors become error responses.
    /// Usable on the host to test a plugin's routes.
    pub fn handle(&self, request: Request) -> Response {
        self.dispatch(request).unwrap_or_else(Response::from)
    }

    /// Like [`Router::handle`], logging server errors (5xx) to the kernel.
    pub(crate) fn handle_logged(&self, request: Request) -> Response {
        self.dispatch(request).unwrap_or_else(|error| {
            if error.status() >= 500 {
                crate::log::error(error.to_string());
            }
            Response::from(error)
        })
    }

    fn dispatch(&self, mut request: Request) -> Result<Response> {
        let mut params = Vec::new();
        let mut allow: Vec<&'static str> = Vec::new();
        for route in &self.routes {
            params.clear();
            if !match_path(route.pattern, request.path(), &mut params) {
                continue;
            }
            if route.method.eq_ignore_ascii_case(request.method()) {
                if let Some(permission) = route.permission {
                    crate::authz::require(permission)?;
                }
                request.set_params(params);
                return (route.handler)(&request);
            }
            // HEAD is GET without the body.
            if route.method == "GET" && request.method() == "HEAD" {
                if let Some(permission) = route.permission {
                    crate::authz::require(permission)?;
                }
                request.set_params(params);
                return (route.handler)(&request).map(Response::without_body);
            }
            if !allow.contains(&route.method) {
                allow.push(route.method);
            }
        }
        if allow.is_empty() {
            return Err(Error::not_found(format!(
                "no route for {} {}",
                request.method(),
                request.path()
            )));
        }
        let allow = allow.join(", ");
        let error = Error::new(
            405,
            "method_not_allowed",
            format!(
                "{} is not allowed on {}; allowed: {allow}",
                request.method(),
                request.path()
            ),
        );
        // A 405 is an answer, not a failure of the plugin.
        Ok(Response::from(error).header("allow", allow))
    }
}

/// Match `path` against `pattern`, pushing decoded parameters to `params`.
fn match_path(pattern: &'static str, path: &str, params: &mut Vec<(&'static str, String)>) -> bool {
    let mut pattern = pattern.strip_prefix('/').unwrap_or(pattern);
    let mut path = path.strip_prefix('/').unwrap_or(path);
    loop {
        let (pat_seg, pat_rest) = split(pattern);
        if let Some(name) = pat_seg.strip_prefix("{*").and_then(|s| s.strip_suffix('}')) {
            params.push((name, crate::request::percent_decode(path, false)));
            return true;
        }
        let (seg, rest) = split(path);
        if let Some(name) = pat_seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if seg.is_empty() {
                return false;
            }
            params.push((name, crate::request::percent_decode(seg, false)));
        } else if pat_seg != seg {
            return false;
        }
        match (pat_rest, rest) {
            (None, None) => return true,
            (Some(p), Some(r)) => {
                pattern = p;
                path = r;
            }
            // `/files/{*rest}` also matches `/files`, with an empty rest.
            (Some(p), None) if p.starts_with("{*") && !p.contains('/') => {
                pattern = p;
                path = "";
            }
            _ => return false,
        }
    }
}

fn split(s: &str) -> (&str, Option<&str>) {
    match s.split_once('/') {
        Some((seg, rest)) => (seg, Some(rest)),
        None => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn body(resp: &Response) -> Value {
        serde_json::from_slice(resp.body()).unwrap()
    }

    fn echo_params(req: &Request) -> Result<Response> {
        Ok(Response::json(&json!({
            "route": "greet",
            "name": req.param("name")?,
        })))
    }

    fn router() -> Router {
        Router::new()
            .get("/", |_| Ok(Response::text("root")))
            .get("/greet/{name}", echo_params)
            .post("/echo", |req| {
                let v: Value = req.json()?;
                Ok(Response::json(&v))
            })
            .get("/orgs/{org}/users/{id}", |req| {
                Ok(Response::json(&json!([
                    req.param("org")?,
                    req.param("id")?
                ])))
            })
            .get("/files/{*rest}", |req| {
                Ok(Response::text(req.param("rest")?))
            })
            .put("/greet/{name}", |_| Ok(Response::empty(204)))
            .delete("/items/{id}", |_| Err(Error::conflict("in use")))
            .patch("/items/{id}", |_| {
                Err(Error::validation("name", "too long"))
            })
    }

    #[test]
    fn matches_literals_and_params() {
        let r = router();
        let resp = r.handle(Request::new("GET", "/"));
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body(), b"root");
        assert_eq!(
            resp.header_value("content-type"),
            Some("text/plain; charset=utf-8")
        );

        let resp = r.handle(Request::new("GET", "/greet/%E5%B0%8F%E6%98%8E"));
        assert_eq!(resp.status(), 200);
        assert_eq!(body(&resp), json!({"route": "greet", "name": "小明"}));
        assert_eq!(resp.header_value("content-type"), Some("application/json"));

        let resp = r.handle(Request::new("GET", "/orgs/acme/users/42"));
        assert_eq!(body(&resp), json!(["acme", "42"]));

        let resp = r.handle(Request::new("PUT", "/greet/bob"));
        assert_eq!(resp.status(), 204);
        assert!(resp.body().is_empty());
    }

    #[test]
    fn params_need_a_segment() {
        let r = router();
        assert_eq!(r.handle(Request::new("GET", "/greet/")).status(), 404);
        assert_eq!(r.handle(Request::new("GET", "/greet")).status(), 404);
        assert_eq!(r.handle(Request::new("GET", "/greet/a/b")).status(), 404);
        assert_eq!(
            r.handle(Request::new("GET", "/orgs/acme/users")).status(),
            404
        );
    }

    #[test]
    fn catch_all() {
        let r = router();
        let resp = r.handle(Request::new("GET", "/files/a/b/c.txt"));
        assert_eq!(resp.body(), b"a/b/c.txt");
        let resp = r.handle(Request::new("GET", "/files/"));
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body(), b"");
        let resp = r.handle(Request::new("GET", "/files"));
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body(), b"");
        let resp = r.handle(Request::new("GET", "/files/a%20b"));
        assert_eq!(resp.body(), b"a b");
        assert_eq!(r.handle(Request::new("GET", "/filesx")).status(), 404);
    }

    #[test]
    fn head_uses_get() {
        let resp = router().handle(Request::new("HEAD", "/greet/bob"));
        assert_eq!(resp.status(), 200);
        assert!(resp.body().is_empty());
        assert_eq!(resp.header_value("content-type"), Some("application/json"));
        assert_eq!(router().handle(Request::new("HEAD", "/echo")).status(), 405);
    }

    #[test]
    fn not_found() {
        let resp = router().handle(Request::new("GET", "/nope"));
        assert_eq!(resp.status(), 404);
        assert_eq!(body(&resp)["error"]["code"], "not_found");
        assert_eq!(resp.header_value("content-type"), Some("application/json"));
        assert_eq!(Router::new().handle(Request::new("GET", "/")).status(), 404);
    }

    #[test]
    fn method_not_allowed() {
        let resp = router().handle(Request::new("DELETE", "/greet/bob"));
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.header_value("allow"), Some("GET, PUT"));
        assert_eq!(body(&resp)["error"]["code"], "method_not_allowed");

        let resp = router().handle(Request::new("GET", "/echo"));
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.header_value("allow"), Some("POST"));
    }

    #[test]
    fn errors_have_the_kernel_shape() {
        let r = router();
        let resp = r.handle(Request::new("PATCH", "/items/1"));
        assert_eq!(resp.status(), 422);
        assert_eq!(
            body(&resp),
            json!({"error": {"code": "validation_failed", "message": "too long", "field": "name"}})
        );
        let resp = r.handle(Request::new("DELETE", "/items/1"));
        assert_eq!(resp.status(), 409);
        assert_eq!(
            body(&resp),
            json!({"error": {"code": "conflict", "message": "in use"}})
        );

        let resp = r.handle(Request::new("POST", "/echo").with_body(b"{".to_vec()));
        assert_eq!(resp.status(), 400);
        assert_eq!(body(&resp)["error"]["code"], "invalid_json");

        let resp = r.handle(Request::new("POST", "/echo").with_body(br#"{"x":[1,2]}"#.to_vec()));
        assert_eq!(resp.status(), 200);
        assert_eq!(body(&resp), json!({"x": [1, 2]}));
    }

    #[test]
    fn first_route_wins_and_closures_capture() {
        let greeting = String::from("hi");
        let r = Router::new()
            .get("/a/{x}", move |_| Ok(Response::text(greeting.clone())))
            .get("/a/b", |_| Ok(Response::text("literal")));
        assert_eq!(r.handle(Request::new("GET", "/a/b")).body(), b"hi");
    }

    #[test]
    fn response_builders() {
        let resp = Response::json(&json!({"a": 1}))
            .with_status(201)
            .header("X-Thing", "1")
            .header("x-thing", "2")
            .append_header("set-cookie", "a=1")
            .append_header("set-cookie", "b=2");
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.header_value("x-thing"), Some("2"));
        assert_eq!(
            resp.headers()
                .iter()
                .filter(|(n, _)| n == "set-cookie")
                .count(),
            2
        );
        let resp = Response::bytes("image/png", vec![1, 2]);
        assert_eq!(resp.header_value("Content-Type"), Some("image/png"));
        assert_eq!(
            Response::html("<p>").header_value("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(Response::empty(204).headers().len(), 0);
    }

    #[test]
    fn serde_errors_convert() {
        let e: Error = serde_json::from_str::<Value>("nope").unwrap_err().into();
        assert_eq!((e.status(), e.code()), (400, "invalid_json"));
        assert_eq!(Error::internal("x").status(), 500);
        assert_eq!(Error::not_found("x").code(), "not_found");
        assert_eq!(Error::forbidden("x").status(), 403);
        assert_eq!(Error::bad_request("missing_id", "x").code(), "missing_id");
        assert_eq!(
            Error::validation("f", "m").to_string(),
            "422 validation_failed: m (field f)"
        );
    }
}
