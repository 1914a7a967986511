use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// An HTTP request routed to the plugin.
///
/// The path is relative to the plugin's mount point `/api/v1/p/{plugin}` and
/// always starts with `/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    params: Vec<(&'static str, String)>,
}

impl Request {
    /// A request, e.g. to test handlers on the host:
    /// `Request::new("POST", "/items").with_body(br#"{"a":1}"#.to_vec())`.
    pub fn new(method: impl AsRef<str>, path: impl Into<String>) -> Self {
        Self {
            method: method.as_ref().to_ascii_uppercase(),
            path: path.into(),
            ..Self::default()
        }
    }

    pub(crate) fn from_parts(
        method: String,
        path: String,
        query: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Self {
        Self {
            method,
            path,
            query,
            headers,
            body,
            params: Vec::new(),
        }
    }

    /// Set the raw query string (without `?`).
    pub fn with_query(mut self, query: impl Into<String>) -> Self {
        self.query = query.into();
        self
    }

    /// Add a header.
    pub fn with_header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.headers
            .push((name.as_ref().to_ascii_lowercase(), value.into()));
        self
    }

    /// Set the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub(crate) fn set_params(&mut self, params: Vec<(&'static str, String)>) {
        self.params = params;
    }

    /// Upper-case method, e.g. `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Path below the plugin's mount point, starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Raw query string without the leading `?`; empty when absent.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The first query parameter called `name`, percent-decoded (`+` is a
    /// space). `Some("")` for `?name` or `?name=`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_pairs(&self.query)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Every query parameter, percent-decoded, in order.
    pub fn query_params(&self) -> impl Iterator<Item = (String, String)> + '_ {
        query_pairs(&self.query)
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All headers; names are lower-case and may repeat.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text; otherwise 400 `invalid_utf8`.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body)
            .map_err(|e| Error::bad_request("invalid_utf8", format!("the body is not UTF-8: {e}")))
    }

    /// The body parsed as JSON; otherwise 400 `invalid_json` with serde's
    /// message, naming the field when serde says which (a missing or
    /// unknown field), so a form can show the error under it.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let message = e.to_string();
            let error = Error::bad_request("invalid_json", message.clone());
            match field_in(&message) {
                Some(field) => error.with_field(field),
                None => error,
            }
        })
    }

    /// The caller's language: `?lang=`, else `Accept-Language`; `en` or
    /// `zh-CN` (the default), the two the platform speaks.
    pub fn lang(&self) -> &'static str {
        let asked = self
            .query_param("lang")
            .or_else(|| self.header("accept-language").map(str::to_string))
            .unwrap_or_default();
        if asked.trim_start().starts_with("en") {
            "en"
        } else {
            "zh-CN"
        }
    }

    /// The percent-decoded value of the path parameter `{name}` (or
    /// `{*name}`) of the matched route. A name the route doesn't have is a
    /// bug in the plugin: 500 `internal`.
    pub fn param(&self, name: &str) -> Result<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| Error::internal(format!("the route has no parameter `{name}`")))
    }
}

fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|s| !s.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k, true), percent_decode(v, true))
    })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decode `%XX` escapes (and `+` as space when `plus_is_space`). Malformed
/// escapes are kept as they are; invalid UTF-8 becomes U+FFFD.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    if !s.bytes().any(|b| b == b'%' || (plus_is_space && b == b'+')) {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// The field serde's message names: "missing field `number`", "unknown
/// field `x`, expected …", "duplicate field `y`".
fn field_in(message: &str) -> Option<String> {
    for lead in ["missing field `", "unknown field `", "duplicate field `"] {
        if let Some(rest) = message.split(lead).nth(1) {
            return rest.split('`').next().map(str::to_string);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("a%20b+c", false), "a b+c");
        assert_eq!(percent_decode("%E4%BD%A0%e5%a5%bd", true), "你好");
        assert_eq!(percent_decode("100%", true), "100%");
        assert_eq!(percent_decode("%zz%4", true), "%zz%4");
        assert_eq!(percent_decode("%41", true), "A");
        assert_eq!(percent_decode("%FF", true), "\u{FFFD}");
        assert_eq!(percent_decode("plain", true), "plain");
    }

    #[test]
    fn query_params() {
        let req =
            Request::new("get", "/").with_query("q=hello+world&lang=zh-CN&empty&x=%26%3D&q=2");
        assert_eq!(req.method(), "GET");
        assert_eq!(req.query_param("q").as_deref(), Some("hello world"));
        assert_eq!(req.query_param("lang").as_deref(), Some("zh-CN"));
        assert_eq!(req.query_param("empty").as_deref(), Some(""));
        assert_eq!(req.query_param("x").as_deref(), Some("&="));
        assert_eq!(req.query_param("missing"), None);
        assert_eq!(req.query_params().count(), 5);
        assert_eq!(Request::new("GET", "/").query_param("q"), None);
    }

    #[test]
    fn a_body_missing_a_field_names_it() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Form {
            number: u32,
        }
        let req = Request::from_parts(
            "POST".into(),
            "/".into(),
            String::new(),
            Vec::new(),
            b"{}".to_vec(),
        );
        let e = req.json::<Form>().unwrap_err();
        assert_eq!((e.code(), e.field()), ("invalid_json", Some("number")));
    }

    #[test]
    fn headers_and_json() {
        let req = Request::new("POST", "/")
            .with_header("Content-Type", "application/json")
            .with_body(br#"{"a":1}"#.to_vec());
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header("CONTENT-TYPE"), Some("application/json"));
        let v: serde_json::Value = req.json().unwrap();
        assert_eq!(v["a"], 1);

        let bad = Request::new("POST", "/").with_body(b"{oops".to_vec());
        let err = bad.json::<serde_json::Value>().unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(err.code(), "invalid_json");
        assert!(err.message().contains("line 1"), "{}", err.message());
    }

    #[test]
    fn missing_param_is_internal() {
        let err = Request::new("GET", "/").param("id").unwrap_err();
        assert_eq!(err.status(), 500);
    }
}
