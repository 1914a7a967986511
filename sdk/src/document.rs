//! The approvable document (业务单据): what every business system's
//! applications share — an official number per org and year, the states
//! draft → submitted → approved / rejected / withdrawn → executed, the
//! subject records locked while the document is in flight, the approval's
//! outcome routed by an exhaustive match, and a timeline.
//!
//! ```ignore
//! use tianshan_sdk::document::{self, Numbering, Status, Timeline};
//! const NUMBERS: Numbering = Numbering::official("counters", "新管资");
//! let no = NUMBERS.next(&org, &dates::today()[..4])?;      // 新管资〔2026〕12号
//! let mut doc = Application { no, status: Status::Draft, timeline: Timeline::default(), .. };
//! doc.timeline.push("created", None);
//! // submit: doc.status = doc.status.submit()?; approvals::start(…)
//! // on the outcome event: doc.status = doc.status.decide(outcome.decision);
//! ```
//!
//! The counter collection (`counters` above) must be declared in
//! `plugin.toml` like any other.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::approvals::Decision;
use crate::storage::{Doc, Write, collection};
use crate::{Error, Result};

/// Where a document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being written; its subjects are already locked.
    #[default]
    Draft,
    /// In the kernel's approvals.
    Submitted,
    /// Approved, its effect not yet carried out (a receipt, a hand-over).
    Approved,
    Rejected,
    Withdrawn,
    /// Approved and carried out: the end of the road.
    Executed,
}

impl Status {
    pub fn code(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Withdrawn => "withdrawn",
            Status::Executed => "executed",
        }
    }

    /// Whether the subjects stay locked: until the document has ended.
    pub fn in_flight(self) -> bool {
        matches!(self, Status::Draft | Status::Submitted | Status::Approved)
    }

    /// Draft → submitted; anything else is 409 `not_a_draft`.
    pub fn submit(self) -> Result<Status> {
        match self {
            Status::Draft => Ok(Status::Submitted),
            other => Err(Error::new(
                409,
                "not_a_draft",
                format!("the document is {}", other.code()),
            )),
        }
    }

    /// Where the approval's decision takes a submitted document. A
    /// returned one stays submitted: the kernel sent it back to an earlier
    /// step of the same, still running approval, whose final outcome is yet
    /// to come (making it a draft would ignore that outcome and let a
    /// resubmit start a second approval). Documents not in approval stay as
    /// they are, so a redelivered outcome event changes nothing.
    pub fn decide(self, decision: Decision) -> Status {
        match (self, decision) {
            (Status::Submitted, Decision::Approved) => Status::Approved,
            (Status::Submitted, Decision::Rejected) => Status::Rejected,
            (Status::Submitted, Decision::Withdrawn) => Status::Withdrawn,
            (Status::Submitted, Decision::Returned) => Status::Submitted,
            (other, _) => other,
        }
    }

    /// Approved → executed; anything else is 409 `not_approved`.
    pub fn execute(self) -> Result<Status> {
        match self {
            Status::Approved => Ok(Status::Executed),
            other => Err(Error::new(
                409,
                "not_approved",
                format!("the document is {}", other.code()),
            )),
        }
    }
}

/// What happened to a document, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timeline(pub Vec<Entry>);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// `YYYY-MM-DD` in the region.
    pub on: String,
    /// The username, or `system` for the kernel.
    pub actor: String,
    /// `created`, `submitted`, `approved`, … (a stable code the UI labels).
    pub action: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub note: Value,
}

impl Timeline {
    /// Appends `action` by the caller, today.
    pub fn push(&mut self, action: &str, note: Option<Value>) {
        let actor = crate::identity::caller()
            .map(|p| p.username)
            .unwrap_or_else(|| "system".into());
        self.push_as(&crate::dates::today(), &actor, action, note);
    }

    pub fn push_as(&mut self, on: &str, actor: &str, action: &str, note: Option<Value>) {
        self.0.push(Entry {
            on: on.to_string(),
            actor: actor.to_string(),
            action: action.to_string(),
            note: note.unwrap_or(Value::Null),
        });
    }
}

/// Document numbers per org and year, handed out without gaps or repeats
/// even under concurrent requests (the counter's revision decides).
#[derive(Debug, Clone, Copy)]
pub struct Numbering {
    /// The collection holding the counters.
    pub counters: &'static str,
    pub prefix: &'static str,
    pub form: Form,
}

/// How a number is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The official form of government documents: `新管资〔2026〕12号`.
    Official,
    /// Prefix, year and six digits: `DJ2026000012`, for registers.
    Compact,
}

impl Numbering {
    pub const fn official(counters: &'static str, prefix: &'static str) -> Numbering {
        Numbering {
            counters,
            prefix,
            form: Form::Official,
        }
    }

    pub const fn compact(counters: &'static str, prefix: &'static str) -> Numbering {
        Numbering {
            counters,
            prefix,
            form: Form::Compact,
        }
    }

    /// Number `seq` of `year` in this numbering's form.
    pub fn format(&self, year: &str, seq: i64) -> String {
        match self.form {
            Form::Official => format!("{}〔{year}〕{seq}号", self.prefix),
            Form::Compact => format!("{}{year}{seq:06}", self.prefix),
        }
    }

    /// The next number of `org` in `year`.
    pub fn next(&self, org: &str, year: &str) -> Result<String> {
        let seq = reserve(self.counters, &format!("{}{year}", self.prefix), org, 1)?;
        Ok(self.format(year, seq))
    }
}

/// Reserves `count` consecutive numbers of `series` in `org` from the
/// counters in `counters`, answering the first. Concurrent callers retry on
/// the counter's revision, so no number is handed out twice.
pub fn reserve(counters: &str, series: &str, org: &str, count: i64) -> Result<i64> {
    let counters = collection(counters);
    // Counter ids are record ids: keep them to the characters storage takes.
    let series: String = series
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c.to_string()
            } else {
                format!("_{:x}", c as u32)
            }
        })
        .collect();
    let id = format!("{series}.{}", org.trim_start_matches("org-"));
    for _ in 0..8 {
        match counters.get::<Value>(&id)? {
            Some(doc) => {
                let next = doc.data["next"].as_i64().unwrap_or(1);
                match counters.update(&id, doc.revision, &json!({ "next": next + count })) {
                    Ok(_) => return Ok(next),
                    Err(e) if e.status() == 409 => continue,
                    Err(e) => return Err(e),
                }
            }
            None => match counters.insert_with(Some(&id), Some(org), &json!({ "next": 1 + count }))
            {
                Ok(_) => return Ok(1),
                Err(e) if e.status() == 409 => continue,
                Err(e) => return Err(e),
            },
        }
    }
    Err(Error::new(503, "busy", "numbering is contended; try again"))
}

/// A record a document can hold: it names the document holding it.
pub trait Lockable {
    fn locked_by(&self) -> Option<&str>;
    fn set_locked_by(&mut self, document: Option<String>);
}

/// 409 `locked` unless `subject` is free (or held by `document` itself).
pub fn ensure_free<T: Lockable>(subject: &Doc<T>, document: Option<&str>) -> Result<()> {
    match subject.data.locked_by() {
        Some(holder) if Some(holder) != document => Err(Error::new(
            409,
            "locked",
            format!(
                "{} is held by open document {holder}; finish or withdraw that first",
                subject.id
            ),
        )),
        _ => Ok(()),
    }
}

/// The writes that lock `subjects` to `document` (or free them with
/// `None`), each at the revision it was read at, for a [`crate::storage::transact`]
/// with the document's own write: a subject that changed meanwhile fails
/// the whole transaction.
pub fn lock_writes<T: Lockable + Clone + Serialize>(
    collection: &str,
    subjects: &[Doc<T>],
    document: Option<&str>,
) -> Result<Vec<Write>> {
    subjects
        .iter()
        .map(|s| {
            if document.is_some() {
                ensure_free(s, None)?;
            }
            let mut data = s.data.clone();
            data.set_locked_by(document.map(str::to_string));
            Write::update(collection, s, &data)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_the_official_and_compact_forms() {
        assert_eq!(
            Numbering::official("c", "新管资").format("2026", 12),
            "新管资〔2026〕12号"
        );
        assert_eq!(
            Numbering::compact("c", "DJ").format("2026", 12),
            "DJ2026000012"
        );
    }

    #[test]
    fn states_follow_the_decision() {
        let submitted = Status::Draft.submit().unwrap();
        assert_eq!(submitted.decide(Decision::Approved), Status::Approved);
        assert_eq!(submitted.decide(Decision::Rejected), Status::Rejected);
        assert_eq!(submitted.decide(Decision::Withdrawn), Status::Withdrawn);
        // Returned to an earlier step: the approval runs on, and its final
        // outcome still lands.
        let returned = submitted.decide(Decision::Returned);
        assert_eq!(returned, Status::Submitted);
        assert_eq!(returned.decide(Decision::Approved), Status::Approved);
        // A redelivered outcome changes nothing.
        assert_eq!(
            Status::Approved.decide(Decision::Rejected),
            Status::Approved
        );
        assert_eq!(Status::Approved.execute().unwrap(), Status::Executed);
        assert_eq!(
            Status::Rejected.execute().unwrap_err().code(),
            "not_approved"
        );
        assert_eq!(
            Status::Submitted.submit().unwrap_err().code(),
            "not_a_draft"
        );
        assert!(Status::Approved.in_flight() && !Status::Executed.in_flight());
    }

    #[test]
    fn a_timeline_serialises_as_a_list() {
        let mut t = Timeline::default();
        t.push_as("2026-12-01", "wang", "created", None);
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!([{ "on": "2026-12-01", "actor": "wang", "action": "created" }])
        );
    }
}
