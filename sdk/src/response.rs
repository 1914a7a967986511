use serde::Serialize;

use crate::Error;

/// An HTTP response. Header names are stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

const JSON: &str = "application/json";

impl Response {
    /// 200 with `value` serialised as JSON. A value that cannot be
    /// serialised gives a 500 error response.
    pub fn json(value: &impl Serialize) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::bytes(JSON, body),
            Err(error) => Error::internal(format!("cannot serialise the response: {error}")).into(),
        }
    }

    /// 200 `text/plain; charset=utf-8`.
    pub fn text(text: impl Into<String>) -> Self {
        Self::bytes("text/plain; charset=utf-8", text.into().into_bytes())
    }

    /// 200 `text/html; charset=utf-8`.
    pub fn html(html: impl Into<String>) -> Self {
        Self::bytes("text/html; charset=utf-8", html.into().into_bytes())
    }

    /// 200 with any content type.
    pub fn bytes(content_type: impl Into<String>, body: Vec<u8>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".to_owned(), content_type.into())],
            body,
        }
    }

    /// An empty body with `status`, e.g. `Response::empty(204)`.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Change the status, e.g. `Response::json(&created).with_status(201)`.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Set a header, replacing any header of the same name.
    pub fn header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        let name = name.as_ref().to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }

    /// Add a header, keeping others of the same name (e.g. `set-cookie`).
    pub fn append_header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.headers
            .push((name.as_ref().to_ascii_lowercase(), value.into()));
        self
    }

    pub(crate) fn without_body(mut self) -> Self {
        self.body = Vec::new();
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first header called `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All headers, names lower-case.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Status, headers and body.
    pub fn into_parts(self) -> (u16, Vec<(String, String)>, Vec<u8>) {
        (self.status, self.headers, self.body)
    }
}

impl From<Error> for Response {
    fn from(error: Error) -> Self {
        Self {
            status: error.status(),
            headers: vec![("content-type".to_owned(), JSON.to_owned())],
            body: error.to_json(),
        }
    }
}
