//! Approval flows run by the kernel (contract 1.2.0; `start_with` since 1.3.0).
//!
//! Define flows in the install and upgrade hooks (defining is idempotent),
//! start an approval for one of your records on behalf of the calling user,
//! and change the record when the outcome event arrives in
//! [`crate::Plugin::on_event`]: topics `kernel.approval.approved`,
//! `.rejected`, `.withdrawn` and `.returned` (sent back to an earlier step),
//! keyed by instance id, with a JSON payload carrying `instance_id`,
//! `subject_id`, `outcome`, `status`, `actor` and `comment`. Approvers act
//! through the kernel's to-do list, not through the plugin; the kernel
//! decides who the approvers are from their role bindings.
//!
//! ```ignore
//! use tianshan_sdk::approvals::{self, Flow, Level, Step};
//!
//! approvals::define(&Flow::new("disposal", "Asset disposal")
//!     .step(Step::any("County review", "assets.approver", Level::County))
//!     .step(Step::all("Prefecture sign-off", "assets.approver", Level::Prefecture)))?;
//! let instance = approvals::start("disposal", &record.id, "Dispose laptop", None, &json!({"value": 5200}))?;
//! ```

use serde::Serialize;

use crate::bindings::tianshan::plugin::approvals as wit;
use crate::{Error, Result};

pub use wit::{Instance, Level, Mode};

/// One step of a flow.
#[derive(Debug, Clone)]
pub struct Step(wit::Step);

impl Step {
    /// 或签: the first approver to approve completes the step.
    pub fn any(name: &str, role: &str, level: Level) -> Step {
        Step(wit::Step {
            name: name.to_string(),
            role: role.to_string(),
            level,
            mode: Mode::AnyOne,
        })
    }

    /// 会签: every approver of the step must approve.
    pub fn all(name: &str, role: &str, level: Level) -> Step {
        Step(wit::Step {
            name: name.to_string(),
            role: role.to_string(),
            level,
            mode: Mode::All,
        })
    }
}

/// A flow: steps run in order.
#[derive(Debug, Clone)]
pub struct Flow(wit::Flow);

impl Flow {
    pub fn new(name: &str, title: &str) -> Flow {
        Flow(wit::Flow {
            name: name.to_string(),
            title: title.to_string(),
            steps: Vec::new(),
        })
    }

    pub fn step(mut self, step: Step) -> Flow {
        self.0.steps.push(step.0);
        self
    }
}

/// Maps the kernel's approval errors to HTTP-style errors.
pub fn to_error(e: wit::ApprovalError) -> Error {
    match e {
        wit::ApprovalError::NotFound => Error::not_found("approval not found"),
        wit::ApprovalError::Forbidden(m) => coded(403, "forbidden", m),
        wit::ApprovalError::Conflict(m) => coded(409, "conflict", m),
        wit::ApprovalError::Invalid(m) => coded(422, "validation_failed", m),
        wit::ApprovalError::Unavailable(m) => Error::new(503, "unavailable", m),
    }
}

/// A refusal with a code of its own comes as `approval_…: detail` (or
/// `delegation_…`), so a page says why in the user's language rather than
/// the kernel's English; anything else keeps the generic code.
fn coded(status: u16, generic: &'static str, m: String) -> Error {
    if let Some((code, rest)) = m.split_once(": ")
        && (code.starts_with("approval_") || code.starts_with("delegation_"))
        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        return Error::new(status, code.to_string(), rest);
    }
    Error::new(status, generic, m)
}

/// Creates or replaces a flow of this plugin.
pub fn define(flow: &Flow) -> Result<()> {
    wit::define_flow(&flow.0).map_err(to_error)
}

/// Starts `flow` for record `subject_id`, applied for by the caller at
/// `org` (none: the org the request acts in); `form` is the summary
/// approvers see.
pub fn start(
    flow: &str,
    subject_id: &str,
    title: &str,
    org: Option<&str>,
    form: &impl Serialize,
) -> Result<Instance> {
    let form = serde_json::to_string(form)
        .map_err(|e| Error::internal(format!("cannot encode form: {e}")))?;
    wit::start(flow, subject_id, title, org, &form).map_err(to_error)
}

/// Applies `writes` and starts `flow` in one transaction (contract 1.3):
/// either the records are written and their approval is running, or
/// nothing happened — no application is left behind without its approval.
/// An empty `subject_id` names the record of the first write. Answers the
/// instance and what [`storage::transact`](crate::storage::transact)
/// would.
///
/// ```ignore
/// let (instance, docs) = approvals::start_with(
///     "leave", "", "Annual leave", None, &json!({ "days": 3 }),
///     vec![Write::insert("applications", &application)?],
/// )?;
/// let application_id = &docs[0].as_ref().unwrap().id;
/// ```
pub fn start_with(
    flow: &str,
    subject_id: &str,
    title: &str,
    org: Option<&str>,
    form: &impl Serialize,
    writes: Vec<crate::storage::Write>,
) -> Result<(
    Instance,
    Vec<Option<crate::storage::Doc<serde_json::Value>>>,
)> {
    let form = serde_json::to_string(form)
        .map_err(|e| Error::internal(format!("cannot encode form: {e}")))?;
    let writes = crate::storage::to_wit_writes(writes);
    match wit::start_with(flow, subject_id, title, org, &form, &writes) {
        Ok((instance, records)) => Ok((instance, crate::storage::decode_all(records)?)),
        Err(wit::StartWithError::Write((index, e))) => Err(crate::storage::write_error(index, e)),
        Err(wit::StartWithError::Approval(e)) => Err(to_error(e)),
    }
}

/// An instance of this plugin, if the caller reaches its org.
pub fn get(id: &str) -> Result<Option<Instance>> {
    wit::get(id).map_err(to_error)
}

/// This plugin's instances for one record, newest first.
pub fn for_subject(subject_id: &str) -> Result<Vec<Instance>> {
    wit::list_for_subject(subject_id).map_err(to_error)
}

/// Withdraws the caller's own running application.
pub fn withdraw(id: &str) -> Result<Instance> {
    wit::withdraw(id).map_err(to_error)
}

/// How an approval ended, from a `kernel.approval.<outcome>` event. The
/// match over it is exhaustive, so a new outcome cannot fall through to a
/// default branch unnoticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Rejected,
    /// Rejected to an earlier step (`to_step`): the same approval runs on
    /// from there, so its final outcome is still to come.
    Returned,
    Withdrawn,
}

/// The payload of a `kernel.approval.<outcome>` event, typed.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Outcome {
    pub instance_id: String,
    pub flow: String,
    /// The record the plugin started the approval for.
    pub subject_id: String,
    #[serde(rename = "outcome")]
    pub decision: Decision,
    /// Who decided (a user id; `system` when the kernel did).
    #[serde(default)]
    pub actor: String,
    /// The decider's display name, so a record's history names a person
    /// without a lookup; none for the kernel or a user without one.
    #[serde(default)]
    pub actor_name: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

impl crate::Event {
    /// The payload decoded from JSON; a payload that does not fit `T` is
    /// an error naming the event (returning it asks for a redelivery).
    ///
    /// ```ignore
    /// #[derive(serde::Deserialize)]
    /// struct Registered { card_id: String }
    /// let r: Registered = event.json()?;
    /// ```
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.payload).map_err(|e| {
            Error::new(
                400,
                "invalid_event",
                format!(
                    "event {} ({}) does not fit its type: {e}",
                    self.id, self.topic
                ),
            )
        })
    }

    /// The approval outcome, when this is a `kernel.approval.*` event.
    ///
    /// ```ignore
    /// if let Some(outcome) = event.approval()? {
    ///     match outcome.decision {
    ///         Decision::Approved => book(&outcome.subject_id)?,
    ///         Decision::Rejected | Decision::Withdrawn => release(&outcome.subject_id)?,
    ///         Decision::Returned => note_returned(&outcome.subject_id)?,
    ///     }
    /// }
    /// ```
    pub fn approval(&self) -> Result<Option<Outcome>> {
        if !self.topic.starts_with("kernel.approval.") {
            return Ok(None);
        }
        self.json().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    fn event(topic: &str, payload: &str) -> Event {
        Event {
            id: "evt-1".into(),
            topic: topic.into(),
            key: Some("inst-1".into()),
            org: Some("org-650102".into()),
            source: "kernel".into(),
            payload: payload.as_bytes().to_vec(),
        }
    }

    #[test]
    fn an_event_payload_decodes_as_json() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        struct Registered {
            card_id: String,
        }
        let e = event("assets.registered", r#"{"card_id":"c-7","extra":1}"#);
        assert_eq!(
            e.json::<Registered>().unwrap(),
            Registered {
                card_id: "c-7".into()
            }
        );
        let bad = event("assets.registered", r#"{"id":"c-7"}"#)
            .json::<Registered>()
            .unwrap_err();
        assert_eq!(bad.code(), "invalid_event");
        assert!(
            bad.message().contains("evt-1") && bad.message().contains("assets.registered"),
            "{}",
            bad.message()
        );
        assert!(bad.message().contains("card_id"), "{}", bad.message());
    }

    #[test]
    fn approval_outcomes_are_typed() {
        // The kernel's payload (kernel/src/services/approvals/mod.rs `notify`).
        let payload = |outcome: &str| {
            format!(
                r#"{{"instance_id":"inst-1","flow":"disposal","subject_id":"card-9",
                   "outcome":"{outcome}","status":"{outcome}","current_step":1,
                   "actor":"u-1","comment":null}}"#
            )
        };
        for (word, decision) in [
            ("approved", Decision::Approved),
            ("rejected", Decision::Rejected),
            ("returned", Decision::Returned),
            ("withdrawn", Decision::Withdrawn),
        ] {
            let e = event(&format!("kernel.approval.{word}"), &payload(word));
            let outcome = e.approval().unwrap().expect("an approval event");
            assert_eq!(outcome.decision, decision);
            assert_eq!(
                (outcome.instance_id.as_str(), outcome.flow.as_str()),
                ("inst-1", "disposal")
            );
            assert_eq!(outcome.subject_id, "card-9");
            assert_eq!(outcome.actor, "u-1");
            assert_eq!(outcome.comment, None);
        }
        let with_comment = payload("approved").replace("null", r#""同意""#);
        let outcome = event("kernel.approval.approved", &with_comment)
            .approval()
            .unwrap()
            .unwrap();
        assert_eq!(outcome.comment.as_deref(), Some("同意"));
    }

    #[test]
    fn other_events_are_not_approvals() {
        assert!(
            event("kernel.job.nightly", r#"{"job":"nightly"}"#)
                .approval()
                .unwrap()
                .is_none()
        );
        // An approval topic whose payload does not fit is an error, so the
        // handler's `?` asks for a redelivery instead of dropping it.
        let e = event("kernel.approval.approved", "{}")
            .approval()
            .unwrap_err();
        assert_eq!(e.code(), "invalid_event");
    }

    #[test]
    fn approval_errors_keep_the_kernels_code() {
        let e = to_error(wit::ApprovalError::Invalid(
            "approval_applicant_only: no approver but you".into(),
        ));
        assert_eq!((e.status(), e.code()), (422, "approval_applicant_only"));
        let e = to_error(wit::ApprovalError::Invalid("bad flow".into()));
        assert_eq!((e.status(), e.code()), (422, "validation_failed"));
    }

    #[test]
    fn a_flow_without_approver_has_its_own_code() {
        let e = to_error(wit::ApprovalError::Invalid(
            "approval_no_approver: step 1 (review) has no approver: nobody holds org-admin at org org-1".into(),
        ));
        assert_eq!((e.status(), e.code()), (422, "approval_no_approver"));
        let e = to_error(wit::ApprovalError::Invalid("something else".into()));
        assert_eq!(e.code(), "validation_failed");
        let e = to_error(wit::ApprovalError::Conflict(
            "approval_decided: the approval is approved already".into(),
        ));
        assert_eq!((e.status(), e.code()), (409, "approval_decided"));
        // A field's name in front is not a code.
        let e = to_error(wit::ApprovalError::Invalid("title: too long".into()));
        assert_eq!(e.code(), "validation_failed");
    }
}
