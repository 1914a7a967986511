use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

/// `Result` with the SDK's [`Error`] as the default error type.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// A typed error: an HTTP status, a stable machine-readable code, a message
/// for humans and optionally the request field at fault.
///
/// Turned into a response with the kernel's error shape:
/// `{"error":{"code":"…","message":"…","field":"…","params":{…}}}` (`field`
/// and `params` only when set).
///
/// The message is for logs and API users; a page shows the user the text
/// its i18n files hold for `code.{code}`, filled from `params` (so a
/// zh-CN screen never shows the English message). Give an error a code of
/// its own and the values its text needs: `Error::new(422,
/// "date_in_future", "…").with_field("acquired_on").with_param("today",
/// today)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: u16,
    code: Cow<'static, str>,
    message: String,
    field: Option<String>,
    params: Option<Map<String, Value>>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a Map<String, Value>>,
}

impl Error {
    /// An error with any status and code.
    pub fn new(
        status: u16,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            field: None,
            params: None,
        }
    }

    /// 400 with a caller-chosen code, e.g. `bad_request("missing_id", "…")`.
    pub fn bad_request(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// 422 `validation_failed` on `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(422, "validation_failed", message).with_field(field)
    }

    /// 422 with a code of its own on `field`: the usual refusal of one
    /// input, e.g. `Error::invalid("period", "period_invalid", "expected YYYY-MM")`.
    pub fn invalid(
        field: impl Into<String>,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(422, code, message).with_field(field)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "conflict", message)
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    /// Name the request field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Adds a value the message's translation needs (`{key}` in the
    /// page's `code.{code}` text).
    pub fn with_param(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.params
            .get_or_insert_with(Map::new)
            .insert(key.to_string(), value.into());
        self
    }

    /// Replaces the code (keeping status, message, field and params): a
    /// generic error given the specific code a page has words for.
    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = code.into();
        self
    }

    /// The values for the message's translation.
    pub fn params(&self) -> Option<&Map<String, Value>> {
        self.params.as_ref()
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The stable code, e.g. `validation_failed`.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The field at fault, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The JSON body in the kernel's error shape.
    pub fn to_json(&self) -> Vec<u8> {
        let body = Body {
            error: Inner {
                code: &self.code,
                message: &self.message,
                field: self.field.as_deref(),
                params: self.params.as_ref(),
            },
        };
        // Serialising plain strings cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)?;
        if let Some(field) = &self.field {
            write!(f, " (field {field})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// The hooks ([`crate::Plugin::install`], [`crate::Plugin::upgrade`],
/// [`crate::Plugin::on_event`]) answer the kernel with a `String`; this
/// lets `?` carry an SDK error there as its [`Display`](fmt::Display) text
/// (`422 validation_failed: … (field …)`), with no
/// `map_err(|e| e.to_string())` at every call.
///
/// ```
/// use tianshan_sdk::{Error, Result};
///
/// fn define() -> Result<()> {
///     Err(Error::conflict("flow exists"))
/// }
///
/// fn install() -> Result<(), String> {
///     define()?;
///     Ok(())
/// }
///
/// assert_eq!(install(), Err("409 conflict: flow exists".to_string()));
/// ```
impl From<Error> for String {
    fn from(error: Error) -> Self {
        error.to_string()
    }
}

/// Malformed or mistyped JSON is the caller's fault (400 `invalid_json`);
/// I/O errors are internal.
impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        match error.classify() {
            serde_json::error::Category::Io => Self::internal(error.to_string()),
            _ => Self::bad_request("invalid_json", error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(result: Result<()>) -> Result<(), String> {
        result?;
        Ok(())
    }

    #[test]
    fn hooks_carry_sdk_errors_with_question_mark() {
        assert_eq!(hook(Ok(())), Ok(()));
        assert_eq!(
            hook(Err(Error::validation("name", "name is empty"))),
            Err("422 validation_failed: name is empty (field name)".to_string())
        );
        let e: String = Error::new(503, "storage_unavailable", "db down").into();
        assert_eq!(e, "503 storage_unavailable: db down");
    }

    #[test]
    fn params_travel_with_the_code() {
        let e = Error::validation("acquired_on", "acquired_on 2030-01-01 is after today")
            .with_code("date_in_future")
            .with_param("date", "2030-01-01");
        let body: Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(body["error"]["code"], "date_in_future");
        assert_eq!(body["error"]["field"], "acquired_on");
        assert_eq!(body["error"]["params"]["date"], "2030-01-01");
        let plain: Value = serde_json::from_slice(&Error::not_found("x").to_json()).unwrap();
        assert!(plain["error"].get("params").is_none());
    }
}
