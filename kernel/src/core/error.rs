//! The one error shape of the HTTP API: `{"error":{"code","message","field"?}}`.
//!
//! Codes are stable: clients and docs key on them. The table in
//! [`ErrorCode::status`] is the single place that maps a code to a status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every error code the kernel answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // 4xx: the caller's mistake
    BadRequest,
    InvalidJson,
    ValidationFailed,
    Unauthenticated,
    InvalidCredentials,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    TooManyAttempts,
    /// The password was right but an administrator set it: choose a new
    /// one (`POST /api/v1/auth/password` with the username) before logging in.
    PasswordChangeRequired,
    InvalidPackage,
    ContractUnsupported,
    PluginNotFound,
    /// A plugin id only the platform administrator may give.
    PluginIdReserved,
    /// The applicant would be the only approver of their own application.
    ApprovalApplicantOnly,
    // 5xx: a plugin or the kernel failed
    PluginDisabled,
    PluginTrapped,
    PluginPanicked,
    PluginTimeout,
    PluginMemoryExceeded,
    PluginBusy,
    PluginBadResponse,
    PluginHookFailed,
    /// `/readyz`: a part this node needs (database, NATS, plugins) is not
    /// working; `field` names it.
    NotReady,
    Internal,
    MemoryBudgetExhausted,
    /// A plugin answered with a body past the gateway's cap.
    PluginResponseTooLarge,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            BadRequest | InvalidJson => StatusCode::BAD_REQUEST,
            ValidationFailed
            | InvalidPackage
            | ContractUnsupported
            | PluginHookFailed
            | ApprovalApplicantOnly => StatusCode::UNPROCESSABLE_ENTITY,
            Unauthenticated | InvalidCredentials => StatusCode::UNAUTHORIZED,
            Forbidden | PluginIdReserved | PasswordChangeRequired => StatusCode::FORBIDDEN,
            NotFound | PluginNotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            PluginDisabled | PluginBusy | NotReady | MemoryBudgetExhausted => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            PluginTimeout => StatusCode::GATEWAY_TIMEOUT,
            PluginBadResponse | PluginResponseTooLarge => StatusCode::BAD_GATEWAY,
            PluginTrapped | PluginPanicked | PluginMemoryExceeded | Internal => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadRequest => "bad_request",
            InvalidJson => "invalid_json",
            ValidationFailed => "validation_failed",
            Unauthenticated => "unauthenticated",
            InvalidCredentials => "invalid_credentials",
            Forbidden => "forbidden",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Conflict => "conflict",
            PayloadTooLarge => "payload_too_large",
            TooManyAttempts => "too_many_attempts",
            PasswordChangeRequired => "password_change_required",
            InvalidPackage => "invalid_package",
            ContractUnsupported => "contract_unsupported",
            PluginNotFound => "plugin_not_found",
            PluginIdReserved => "plugin_id_reserved",
            ApprovalApplicantOnly => "approval_applicant_only",
            PluginDisabled => "plugin_disabled",
            PluginTrapped => "plugin_trapped",
            PluginPanicked => "plugin_panicked",
            PluginTimeout => "plugin_timeout",
            PluginMemoryExceeded => "plugin_memory_exceeded",
            PluginBusy => "plugin_busy",
            PluginBadResponse => "plugin_bad_response",
            PluginHookFailed => "plugin_hook_failed",
            NotReady => "not_ready",
            Internal => "internal",
            MemoryBudgetExhausted => "memory_budget_exhausted",
            PluginResponseTooLarge => "plugin_response_too_large",
        }
    }
}

/// An error answered to an API caller. Internal details go to the log, never
/// into `message`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    /// Seconds, for throttled and busy answers.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message).with_field(field)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// Logs the cause and answers a generic 500 without leaking it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal, "internal error; see the kernel log")
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn body(&self) -> serde_json::Value {
        let mut error = serde_json::json!({
            "code": self.code.as_str(),
            "message": self.message,
        });
        if let Some(field) = &self.field {
            error["field"] = serde_json::Value::String(field.clone());
        }
        serde_json::json!({ "error": error })
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal(format!("database: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_one_shape() {
        let e = ApiError::validation("name", "must not be empty");
        assert_eq!(
            e.body(),
            serde_json::json!({"error":{"code":"validation_failed","message":"must not be empty","field":"name"}})
        );
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn plugin_failures_are_5xx() {
        for code in [
            ErrorCode::PluginTrapped,
            ErrorCode::PluginPanicked,
            ErrorCode::PluginTimeout,
            ErrorCode::PluginMemoryExceeded,
            ErrorCode::PluginBusy,
            ErrorCode::PluginResponseTooLarge,
        ] {
            assert!(code.status().is_server_error(), "{code:?}");
        }
    }

    #[test]
    fn codes_serialize_as_their_names() {
        for code in [ErrorCode::PluginMemoryExceeded, ErrorCode::InvalidJson] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().into())
            );
        }
    }
}
