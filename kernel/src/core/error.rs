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
    /// Nobody holds a step's role where the step's level names.
    ApprovalNoApprover,
    /// Sending an approval back needs a reason the applicant can act on.
    ApprovalReasonRequired,
    /// The approval is decided (`params.status`): nothing more to act on.
    ApprovalDecided,
    /// A colleague claimed the step (签收); it comes back if they unclaim it.
    ApprovalClaimed,
    /// The caller delegated the step (委派) and waits for the opinion.
    ApprovalLent,
    /// The caller acted on the current step already.
    ApprovalActed,
    /// The caller is not an approver of the current step.
    ApprovalNotApprover,
    /// A delegate (委派) gives an opinion; sending back or passing the task
    /// on is its owner's decision.
    ApprovalDelegateOpinionOnly,
    /// Only the applicant may do this (withdraw, urge).
    ApprovalApplicantAction,
    /// The approval was not copied to the caller.
    ApprovalNotCopied,
    /// The step cannot be claimed: every approver signs it (会签), or
    /// nobody else approves it.
    ApprovalNotClaimable,
    /// The step is not claimed, so there is nothing to unclaim.
    ApprovalNotClaimed,
    /// Urged within the last hour already.
    ApprovalUrgedRecently,
    /// The named user approves the current step already.
    ApprovalAlreadyApprover,
    /// Only the applicant and approvers may do this.
    ApprovalNotParticipant,
    /// The named user is not an active user (`field` names where).
    ApprovalUnknownUser,
    /// Not a date `YYYY-MM-DD` (`field` names which).
    DateInvalid,
    /// A delegation while away (出差代理) whose last day comes before its first.
    DelegationDaysOrder,
    /// A delegation whose days are over already.
    DelegationDaysOver,
    /// A delegation longer than `params.max` days.
    DelegationTooLong,
    /// A delegation to oneself.
    DelegationSelf,
    /// A stand-in from another unit than one's own.
    DelegationNotColleague,
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
    /// Every code, for the checks that each one has its words in the kit.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::BadRequest,
        ErrorCode::InvalidJson,
        ErrorCode::ValidationFailed,
        ErrorCode::Unauthenticated,
        ErrorCode::InvalidCredentials,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::TooManyAttempts,
        ErrorCode::PasswordChangeRequired,
        ErrorCode::InvalidPackage,
        ErrorCode::ContractUnsupported,
        ErrorCode::PluginNotFound,
        ErrorCode::PluginIdReserved,
        ErrorCode::ApprovalApplicantOnly,
        ErrorCode::ApprovalNoApprover,
        ErrorCode::ApprovalReasonRequired,
        ErrorCode::ApprovalDecided,
        ErrorCode::ApprovalClaimed,
        ErrorCode::ApprovalLent,
        ErrorCode::ApprovalActed,
        ErrorCode::ApprovalNotApprover,
        ErrorCode::ApprovalDelegateOpinionOnly,
        ErrorCode::ApprovalApplicantAction,
        ErrorCode::ApprovalNotCopied,
        ErrorCode::ApprovalNotClaimable,
        ErrorCode::ApprovalNotClaimed,
        ErrorCode::ApprovalUrgedRecently,
        ErrorCode::ApprovalAlreadyApprover,
        ErrorCode::ApprovalNotParticipant,
        ErrorCode::ApprovalUnknownUser,
        ErrorCode::DateInvalid,
        ErrorCode::DelegationDaysOrder,
        ErrorCode::DelegationDaysOver,
        ErrorCode::DelegationTooLong,
        ErrorCode::DelegationSelf,
        ErrorCode::DelegationNotColleague,
        ErrorCode::PluginDisabled,
        ErrorCode::PluginTrapped,
        ErrorCode::PluginPanicked,
        ErrorCode::PluginTimeout,
        ErrorCode::PluginMemoryExceeded,
        ErrorCode::PluginBusy,
        ErrorCode::PluginBadResponse,
        ErrorCode::PluginHookFailed,
        ErrorCode::NotReady,
        ErrorCode::Internal,
        ErrorCode::MemoryBudgetExhausted,
        ErrorCode::PluginResponseTooLarge,
    ];

    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            BadRequest | InvalidJson => StatusCode::BAD_REQUEST,
            ValidationFailed
            | InvalidPackage
            | ContractUnsupported
            | PluginHookFailed
            | ApprovalApplicantOnly
            | ApprovalNoApprover
            | ApprovalReasonRequired
            | ApprovalAlreadyApprover
            | ApprovalUnknownUser
            | DateInvalid
            | DelegationDaysOrder
            | DelegationDaysOver
            | DelegationTooLong
            | DelegationSelf
            | DelegationNotColleague => StatusCode::UNPROCESSABLE_ENTITY,
            Unauthenticated | InvalidCredentials => StatusCode::UNAUTHORIZED,
            Forbidden
            | PluginIdReserved
            | PasswordChangeRequired
            | ApprovalNotApprover
            | ApprovalApplicantAction
            | ApprovalNotCopied
            | ApprovalNotParticipant => StatusCode::FORBIDDEN,
            NotFound | PluginNotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict
            | ApprovalDecided
            | ApprovalClaimed
            | ApprovalLent
            | ApprovalActed
            | ApprovalDelegateOpinionOnly
            | ApprovalNotClaimable
            | ApprovalNotClaimed
            | ApprovalUrgedRecently => StatusCode::CONFLICT,
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
            ApprovalNoApprover => "approval_no_approver",
            ApprovalReasonRequired => "approval_reason_required",
            ApprovalDecided => "approval_decided",
            ApprovalClaimed => "approval_claimed",
            ApprovalLent => "approval_lent",
            ApprovalActed => "approval_acted",
            ApprovalNotApprover => "approval_not_approver",
            ApprovalDelegateOpinionOnly => "approval_delegate_opinion_only",
            ApprovalApplicantAction => "approval_applicant_action",
            ApprovalNotCopied => "approval_not_copied",
            ApprovalNotClaimable => "approval_not_claimable",
            ApprovalNotClaimed => "approval_not_claimed",
            ApprovalUrgedRecently => "approval_urged_recently",
            ApprovalAlreadyApprover => "approval_already_approver",
            ApprovalNotParticipant => "approval_not_participant",
            ApprovalUnknownUser => "approval_unknown_user",
            DateInvalid => "date_invalid",
            DelegationDaysOrder => "delegation_days_order",
            DelegationDaysOver => "delegation_days_over",
            DelegationTooLong => "delegation_too_long",
            DelegationSelf => "delegation_self",
            DelegationNotColleague => "delegation_not_colleague",
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
    /// Values the code's words are filled from (`{"status":"approved"}`).
    pub params: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            params: Vec::new(),
        }
    }

    pub fn with_param(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.params.push((name, value.into()));
        self
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
        if !self.params.is_empty() {
            error["params"] = self
                .params
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into();
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

/// What any host service call fails with — storage, files, messaging,
/// approvals, the data center: one vocabulary, mapped once to HTTP (below)
/// and once to each WIT interface's error (the service's `host.rs`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    /// What was asked for is not there: `what` names it (`record`, `file`,
    /// `approval`, an indicator's code).
    #[error("{0} not found")]
    NotFound(String),
    /// An org outside the caller's reach. Answered exactly as an org that
    /// does not exist (404), so a caller cannot learn which orgs exist.
    #[error("org {0} not found")]
    OutsideReach(String),
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// A record changed since the caller read it; its current revision.
    #[error("record changed; current revision is {0}")]
    Stale(u64),
    /// The change collides with the current state.
    #[error("{0}")]
    Conflict(String),
    #[error("a record with this id exists already")]
    AlreadyExists,
    #[error("collection {0} is not declared in the plugin's manifest")]
    UnknownCollection(String),
    /// Bad input; `field` names it when one field is to blame.
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        message: String,
    },
    #[error("{size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    /// The applicant would be the only approver of their own application.
    #[error("{0}")]
    ApplicantOnly(String),
    /// A step nobody can approve: nobody holds its role at its org.
    #[error("{0}")]
    NoApprover(String),
    /// Sending back without a reason (`field` names where it goes).
    #[error("say why it goes back: the applicant reads the reason")]
    ReasonRequired { field: &'static str },
    /// A rule of the service refuses the action, with a code of its own so
    /// a page says why in the user's language (each code has its words in
    /// the kit's i18n); `message` is the English detail for logs and API
    /// users.
    #[error("{}", .0.message)]
    Refused(Box<Refusal>),
    /// The database or a store failed; the cause is in the log.
    #[error("{0} is unavailable")]
    Unavailable(String),
}

/// What [`ServiceError::Refused`] carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub params: Vec<(&'static str, String)>,
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// Bad input not tied to one field.
    pub fn refused(message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: None,
            message: message.into(),
        }
    }

    /// A refusal with its own code ([`ServiceError::Refused`]).
    pub fn rule(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError::Refused(Box::new(Refusal {
            code,
            message: message.into(),
            field: None,
            params: Vec::new(),
        }))
    }

    /// Names the field a refusal is about; other errors stay as they are.
    pub fn on_field(mut self, field: impl Into<String>) -> Self {
        if let ServiceError::Refused(r) = &mut self {
            r.field = Some(field.into());
        }
        self
    }

    /// Adds a value the refusal's words are filled from.
    pub fn with_param(mut self, name: &'static str, value: impl Into<String>) -> Self {
        if let ServiceError::Refused(r) = &mut self {
            r.params.push((name, value.into()));
        }
        self
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "service query failed");
        ServiceError::Unavailable("the database".into())
    }
}

impl From<std::io::Error> for ServiceError {
    fn from(e: std::io::Error) -> Self {
        tracing::error!(error = %e, "file content I/O failed");
        ServiceError::Unavailable("file storage".into())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(_) => ApiError::not_found(e.to_string()),
            ServiceError::OutsideReach(_) => ApiError::not_found(e.to_string()).with_field("org"),
            ServiceError::Forbidden(m) => ApiError::new(ErrorCode::Forbidden, m),
            ServiceError::Stale(_) | ServiceError::Conflict(_) | ServiceError::AlreadyExists => {
                ApiError::new(ErrorCode::Conflict, e.to_string())
            }
            ServiceError::UnknownCollection(_) => ApiError::internal(e.to_string()),
            ServiceError::Invalid { field, message } => {
                let error = ApiError::new(ErrorCode::ValidationFailed, message);
                match field {
                    Some(field) => error.with_field(field),
                    None => error,
                }
            }
            ServiceError::TooLarge { .. } => {
                ApiError::new(ErrorCode::PayloadTooLarge, e.to_string())
            }
            ServiceError::ApplicantOnly(m) => {
                ApiError::new(ErrorCode::ApprovalApplicantOnly, m).with_field("flow")
            }
            ServiceError::NoApprover(m) => {
                ApiError::new(ErrorCode::ApprovalNoApprover, m).with_field("flow")
            }
            ServiceError::ReasonRequired { field } => {
                ApiError::new(ErrorCode::ApprovalReasonRequired, e.to_string()).with_field(field)
            }
            ServiceError::Refused(r) => {
                let Refusal {
                    code,
                    message,
                    field,
                    params,
                } = *r;
                let mut error = ApiError::new(code, message);
                error.field = field;
                error.params = params;
                error
            }
            // The cause is logged where it happened; the caller learns
            // which part failed and that trying again may work.
            ServiceError::Unavailable(what) => ApiError::new(
                ErrorCode::Internal,
                format!("{what} is unavailable; try again"),
            ),
        }
    }
}

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

    /// Outside the caller's orgs reads as "not there" from every service.
    #[test]
    fn every_service_answers_an_org_outside_reach_as_not_found() {
        let e: ApiError = ServiceError::OutsideReach("org-x".into()).into();
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert_eq!(e.field.as_deref(), Some("org"));
        let e: ApiError = ServiceError::invalid("title", "must not be empty").into();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.field.as_deref(), Some("title"));
        let e: ApiError = ServiceError::Stale(3).into();
        assert_eq!(e.status(), StatusCode::CONFLICT);
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

    /// Users read Chinese: a page shows any kernel code in the reader's
    /// words, so each one has them in both of the kit's languages.
    #[test]
    fn every_code_has_words_in_the_kit() {
        for (lang, text) in [
            ("zh-CN", include_str!("../../portal/kit/i18n/zh-CN.json")),
            ("en", include_str!("../../portal/kit/i18n/en.json")),
        ] {
            let texts: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(text).unwrap();
            for code in ErrorCode::ALL {
                let key = format!("code.{}", code.as_str());
                assert!(
                    texts
                        .get(&key)
                        .and_then(|v| v.as_str())
                        .is_some_and(|v| !v.is_empty()),
                    "{lang}: no text for {key}"
                );
            }
        }
        let mut names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len(), "a code listed twice");
    }

    #[test]
    fn a_refusal_answers_its_own_code_field_and_params() {
        let e: ApiError = ServiceError::rule(ErrorCode::DelegationTooLong, "180 days at most")
            .on_field("until")
            .with_param("max", "180")
            .into();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            e.body(),
            serde_json::json!({"error":{"code":"delegation_too_long","message":"180 days at most",
                "field":"until","params":{"max":"180"}}})
        );
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
