//! Document storage owned by the plugin (contract 1.2.0).
//!
//! Declare collections in `plugin.toml`:
//!
//! ```toml
//! [[collections]]
//! name = "cards"
//! indexes = ["category", "status"]
//! ```
//!
//! then use them through [`collection`]. Records are JSON objects, typed
//! here with serde. The kernel limits every call to the orgs the caller
//! reaches: a record of another county is simply not found.
//!
//! ```ignore
//! use tianshan_sdk::storage::{self, collection};
//!
//! let cards = collection("cards");
//! let card = cards.insert(&json!({ "name": "Laptop", "value": 5200 }))?;
//! let page = cards.find().eq("status", "in_use").sort_desc("value").limit(20).page::<Card>()?;
//! let card = cards.update(&card.id, card.revision, &json!({ "name": "Laptop", "value": 5100 }))?;
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bindings::tianshan::plugin::storage as wit;
use crate::{Error, Result};

pub use wit::AggregateOp;

/// A stored record with its data decoded as `T`.
#[derive(Debug, Clone, Serialize)]
pub struct Doc<T> {
    pub id: String,
    pub org: String,
    /// Pass it back to [`Collection::update`]: a concurrent change since is
    /// refused with 409 instead of being overwritten.
    pub revision: u64,
    pub created_at: i64,
    pub updated_at: i64,
    pub data: T,
}

impl Doc<Value> {
    /// The record with its data decoded as `T` (what `transact` wrote, say).
    pub fn typed<T: DeserializeOwned>(self) -> Result<Doc<T>> {
        let data = serde_json::from_value(self.data).map_err(|e| {
            Error::internal(format!("record {} does not match its type: {e}", self.id))
        })?;
        Ok(Doc {
            id: self.id,
            org: self.org,
            revision: self.revision,
            created_at: self.created_at,
            updated_at: self.updated_at,
            data,
        })
    }
}

/// One page of a query.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub records: Vec<Doc<T>>,
    /// Pass to [`Find::cursor`] for the next page; none on the last page.
    pub next_cursor: Option<String>,
    /// Set when the query asked [`Find::with_total`].
    pub total: Option<u64>,
}

/// One row of [`Collection::aggregate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The group-by values, in order.
    pub key: Vec<Value>,
    /// One per measure; none when no record had a number there.
    pub values: Vec<Option<f64>>,
}

impl Group {
    /// The group-by value at `i` as text; empty when absent or not text.
    pub fn key_text(&self, i: usize) -> &str {
        self.key.get(i).and_then(Value::as_str).unwrap_or_default()
    }

    /// Measure `i`; 0 when no record of the group had a number there.
    pub fn value(&self, i: usize) -> f64 {
        self.values.get(i).copied().flatten().unwrap_or(0.0)
    }
}

/// A revision in a record's history.
pub use wit::RevisionEntry;

/// Maps the kernel's storage errors to HTTP-style errors a handler can
/// return with `?`.
pub fn to_error(e: wit::StorageError) -> Error {
    match e {
        wit::StorageError::NotFound => Error::not_found("record not found"),
        wit::StorageError::Conflict(current) => Error::new(
            409,
            "revision_conflict",
            format!("the record changed meanwhile (now at revision {current}); reload and retry"),
        ),
        wit::StorageError::AlreadyExists => Error::conflict("a record with this id exists already"),
        wit::StorageError::ForbiddenOrg(org) => {
            Error::forbidden(format!("org {org} is outside your reach")).with_field("org")
        }
        wit::StorageError::UnknownCollection(c) => {
            Error::internal(format!("collection {c} is not declared in plugin.toml"))
        }
        wit::StorageError::Invalid(m) => Error::bad_request("invalid_query", m),
        wit::StorageError::Unavailable(m) => Error::new(503, "storage_unavailable", m),
    }
}

fn decode<T: DeserializeOwned>(r: wit::Record) -> Result<Doc<T>> {
    let data = serde_json::from_str(&r.data)
        .map_err(|e| Error::internal(format!("record {} does not match its type: {e}", r.id)))?;
    Ok(Doc {
        id: r.id,
        org: r.org,
        revision: r.revision,
        created_at: r.created_at,
        updated_at: r.updated_at,
        data,
    })
}

fn encode<T: Serialize>(data: &T) -> Result<String> {
    let value = serde_json::to_value(data)
        .map_err(|e| Error::internal(format!("cannot encode record: {e}")))?;
    if !value.is_object() {
        return Err(Error::internal("a record must serialise to a JSON object"));
    }
    Ok(value.to_string())
}

/// A collection declared in the manifest.
pub fn collection(name: impl Into<String>) -> Collection {
    Collection { name: name.into() }
}

#[derive(Debug, Clone)]
pub struct Collection {
    name: String,
}

impl Collection {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn get<T: DeserializeOwned>(&self, id: &str) -> Result<Option<Doc<T>>> {
        wit::get(&self.name, id)
            .map_err(to_error)?
            .map(decode)
            .transpose()
    }

    /// Like [`get`](Self::get), but 404 when absent.
    pub fn fetch<T: DeserializeOwned>(&self, id: &str) -> Result<Doc<T>> {
        self.get(id)?
            .ok_or_else(|| Error::not_found(format!("no record {id} in {}", self.name)))
    }

    /// Inserts with a kernel-assigned, time-ordered id in the org the
    /// request acts in.
    pub fn insert<T: Serialize + DeserializeOwned>(&self, data: &T) -> Result<Doc<T>> {
        self.insert_with(None, None, data)
    }

    /// Inserts with a chosen id (e.g. an event id, which makes a redelivered
    /// event's insert fail with 409 instead of inserting twice) and/or org.
    pub fn insert_with<T: Serialize + DeserializeOwned>(
        &self,
        id: Option<&str>,
        org: Option<&str>,
        data: &T,
    ) -> Result<Doc<T>> {
        let record = wit::insert(&self.name, id, org, &encode(data)?).map_err(to_error)?;
        decode(record)
    }

    pub fn update<T: Serialize + DeserializeOwned>(
        &self,
        id: &str,
        expected_revision: u64,
        data: &T,
    ) -> Result<Doc<T>> {
        let record =
            wit::update(&self.name, id, expected_revision, &encode(data)?).map_err(to_error)?;
        decode(record)
    }

    /// Deletes; `expected_revision` none deletes whatever revision it is.
    /// The history keeps every revision.
    pub fn delete(&self, id: &str, expected_revision: Option<u64>) -> Result<()> {
        wit::delete(&self.name, id, expected_revision).map_err(to_error)
    }

    pub fn find(&self) -> Find {
        Find {
            collection: self.name.clone(),
            query: wit::Query {
                filter: Vec::new(),
                sort: Vec::new(),
                limit: 0,
                cursor: None,
                within_org: None,
                with_total: false,
            },
        }
    }

    pub fn history(&self, id: &str) -> Result<Vec<RevisionEntry>> {
        wit::history(&self.name, id).map_err(to_error)
    }

    /// The history as a page shows it: `revision`, `op`, `at`, `actor` and
    /// the record's `data` as JSON, oldest first.
    pub fn revisions(&self, id: &str) -> Result<Vec<Value>> {
        Ok(self
            .history(id)?
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "revision": r.revision,
                    "op": r.op,
                    "at": r.at,
                    "actor": r.actor,
                    "data": serde_json::from_str::<Value>(&r.data).unwrap_or(Value::Null),
                })
            })
            .collect())
    }

    /// Grouped aggregates: `group_by` fields, then `measures` as
    /// (operation, field) pairs, e.g. `(AggregateOp::Sum, Some("value"))`.
    pub fn aggregate(
        &self,
        filter: &Find,
        group_by: &[&str],
        measures: &[(AggregateOp, Option<&str>)],
    ) -> Result<Vec<Group>> {
        let group_by: Vec<String> = group_by.iter().map(|s| s.to_string()).collect();
        let measures: Vec<wit::Measure> = measures
            .iter()
            .map(|(op, field)| wit::Measure {
                op: *op,
                field: field.map(str::to_string),
            })
            .collect();
        let groups = wit::aggregate(
            &self.name,
            &filter.query.filter,
            filter.query.within_org.as_deref(),
            &group_by,
            &measures,
        )
        .map_err(to_error)?;
        Ok(groups
            .into_iter()
            .map(|g| Group {
                key: g
                    .key
                    .iter()
                    .map(|k| serde_json::from_str(k).unwrap_or(Value::Null))
                    .collect(),
                values: g.values,
            })
            .collect())
    }
}

/// A query under construction; conditions all must hold.
#[derive(Debug, Clone)]
pub struct Find {
    collection: String,
    query: wit::Query,
}

impl Find {
    /// The conditions so far as (field, value), for tests of query builders.
    #[cfg(test)]
    pub(crate) fn conditions(&self) -> Vec<(String, String)> {
        self.query
            .filter
            .iter()
            .map(|c| (c.field.clone(), c.value.clone()))
            .collect()
    }

    fn condition(mut self, field: &str, op: wit::Op, value: Value) -> Self {
        self.query.filter.push(wit::Condition {
            field: field.to_string(),
            op,
            value: value.to_string(),
        });
        self
    }

    pub fn eq(self, field: &str, value: impl Into<Value>) -> Self {
        self.condition(field, wit::Op::Eq, value.into())
    }
    pub fn ne(self, field: &str, value: impl Into<Value>) -> Self {
        self.condition(field, wit::Op::Ne, value.into())
    }
    pub fn one_of(self, field: &str, values: impl IntoIterator<Item = impl Into<Value>>) -> Self {
        let list: Vec<Value> = values.into_iter().map(Into::into).collect();
        self.condition(field, wit::Op::In, Value::Array(list))
    }
    pub fn gt(self, field: &str, value: impl Into<Value>) -> Self {
        self.condition(field, wit::Op::Gt, value.into())
    }
    pub fn gte(self, field: &str, value: impl Into<Value>) -> Self {
        self.condition(field, wit::Op::Gte, value.into())
    }
    pub fn lt(self, field: &str, value: impl Into<Value>) -> Self {
        self.condition(field, wit::Op::Lt, value.into())
    }
    pub fn lte(self, field: &str, value: impl Into<Value>) -> Self {
        self.condition(field, wit::Op::Lte, value.into())
    }
    pub fn prefix(self, field: &str, value: &str) -> Self {
        self.condition(field, wit::Op::Prefix, value.into())
    }
    /// Substring match ignoring ASCII case.
    pub fn contains(self, field: &str, value: &str) -> Self {
        self.condition(field, wit::Op::Contains, value.into())
    }
    pub fn sort(mut self, field: &str) -> Self {
        self.query.sort.push(wit::SortKey {
            field: field.to_string(),
            descending: false,
        });
        self
    }
    pub fn sort_desc(mut self, field: &str) -> Self {
        self.query.sort.push(wit::SortKey {
            field: field.to_string(),
            descending: true,
        });
        self
    }
    /// At most 1000; the default is 50.
    pub fn limit(mut self, limit: u32) -> Self {
        self.query.limit = limit;
        self
    }
    pub fn cursor(mut self, cursor: Option<String>) -> Self {
        self.query.cursor = cursor;
        self
    }
    /// Only this org and its subtree (within the caller's reach).
    pub fn within(mut self, org: Option<String>) -> Self {
        self.query.within_org = org;
        self
    }
    pub fn with_total(mut self) -> Self {
        self.query.with_total = true;
        self
    }

    pub fn page<T: DeserializeOwned>(&self) -> Result<Page<T>> {
        let page = wit::find(&self.collection, &self.query).map_err(to_error)?;
        Ok(Page {
            records: page
                .records
                .into_iter()
                .map(decode)
                .collect::<Result<_>>()?,
            next_cursor: page.next_cursor,
            total: page.total,
        })
    }

    /// Every record of the query, page by page, up to `cap`: reports and
    /// checks stay bounded so one request keeps within its time limit.
    pub fn all<T: DeserializeOwned>(&self, cap: usize) -> Result<Vec<Doc<T>>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.clone().limit(1000).cursor(cursor).page::<T>()?;
            out.extend(page.records);
            match page.next_cursor {
                Some(next) if out.len() < cap => cursor = Some(next),
                _ => break,
            }
        }
        out.truncate(cap);
        Ok(out)
    }

    pub fn count(&self) -> Result<u64> {
        wit::count(
            &self.collection,
            &self.query.filter,
            self.query.within_org.as_deref(),
        )
        .map_err(to_error)
    }
}

/// One write of a [`transact`] call; build them with [`Write::insert`],
/// [`Write::update`] and [`Write::delete`] for typed data. Consecutive
/// inserts are written in bulk by the kernel (history and audit
/// included), so a batch of up to 500 inserts is one fast call.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Insert {
        collection: String,
        id: Option<String>,
        org: Option<String>,
        data: Value,
    },
    Update {
        collection: String,
        id: String,
        expected_revision: u64,
        data: Value,
    },
    Delete {
        collection: String,
        id: String,
        expected_revision: Option<u64>,
    },
}

impl Write {
    /// An insert of typed data with a kernel-assigned id in the acting org.
    pub fn insert(collection: &str, data: &impl Serialize) -> Result<Write> {
        Ok(Write::Insert {
            collection: collection.to_string(),
            id: None,
            org: None,
            data: to_object(data)?,
        })
    }

    /// Like [`Collection::insert_with`]: a chosen id (none: the kernel
    /// assigns one) and/or org (none: the acting org, which in an event
    /// handler is the plugin's install scope, so name the record's org).
    pub fn insert_with(
        collection: &str,
        id: Option<&str>,
        org: Option<&str>,
        data: &impl Serialize,
    ) -> Result<Write> {
        Ok(Write::Insert {
            collection: collection.to_string(),
            id: id.map(str::to_string),
            org: org.map(str::to_string),
            data: to_object(data)?,
        })
    }

    /// An update of `doc` (at the revision it was read at) to `data`.
    ///
    /// ```ignore
    /// let mut room = rooms.fetch::<Room>(id)?;
    /// let changed = Room { status: "booked".into(), ..room.data.clone() };
    /// storage::transact(vec![Write::update("rooms", &room, &changed)?, log_entry])?;
    /// ```
    pub fn update<T>(collection: &str, doc: &Doc<T>, data: &impl Serialize) -> Result<Write> {
        Ok(Write::Update {
            collection: collection.to_string(),
            id: doc.id.clone(),
            expected_revision: doc.revision,
            data: to_object(data)?,
        })
    }

    /// A delete of `doc` at the revision it was read at.
    pub fn delete<T>(collection: &str, doc: &Doc<T>) -> Write {
        Write::Delete {
            collection: collection.to_string(),
            id: doc.id.clone(),
            expected_revision: Some(doc.revision),
        }
    }
}

fn to_object(data: &impl Serialize) -> Result<Value> {
    let value = serde_json::to_value(data)
        .map_err(|e| Error::internal(format!("cannot encode record: {e}")))?;
    if !value.is_object() {
        return Err(Error::internal("a record must serialise to a JSON object"));
    }
    Ok(value)
}

/// Applies every write or none. On failure the error says which write (by
/// index) failed and why.
pub fn transact(writes: Vec<Write>) -> Result<Vec<Option<Doc<Value>>>> {
    let writes = to_wit_writes(writes);
    match wit::transact(&writes) {
        Ok(records) => decode_all(records),
        Err((index, e)) => Err(write_error(index, e)),
    }
}

/// What `transact` answers, decoded.
pub(crate) fn decode_all(records: Vec<Option<wit::Record>>) -> Result<Vec<Option<Doc<Value>>>> {
    records
        .into_iter()
        .map(|r| r.map(decode).transpose())
        .collect()
}

/// The error of the write at `index`, named by it.
pub(crate) fn write_error(index: u32, e: wit::StorageError) -> Error {
    let e = to_error(e);
    Error::new(
        e.status(),
        e.code().to_string(),
        format!("write {index}: {}", e.message()),
    )
}

pub(crate) fn to_wit_writes(writes: Vec<Write>) -> Vec<wit::Write> {
    writes
        .into_iter()
        .map(|w| match w {
            Write::Insert {
                collection,
                id,
                org,
                data,
            } => wit::Write::Insert((collection, id, org, data.to_string())),
            Write::Update {
                collection,
                id,
                expected_revision,
                data,
            } => wit::Write::Update((collection, id, expected_revision, data.to_string())),
            Write::Delete {
                collection,
                id,
                expected_revision,
            } => wit::Write::Delete((collection, id, expected_revision)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
    struct Room {
        name: String,
        status: String,
    }

    fn room_doc() -> Doc<Room> {
        Doc {
            id: "r1".into(),
            org: "org-650102".into(),
            revision: 3,
            created_at: 1,
            updated_at: 2,
            data: Room {
                name: "201".into(),
                status: "free".into(),
            },
        }
    }

    #[test]
    fn a_typed_update_names_the_revision_it_read() {
        let doc = room_doc();
        let changed = Room {
            status: "booked".into(),
            ..doc.data.clone()
        };
        assert_eq!(
            Write::update("rooms", &doc, &changed).unwrap(),
            Write::Update {
                collection: "rooms".into(),
                id: "r1".into(),
                expected_revision: 3,
                data: json!({"name": "201", "status": "booked"}),
            }
        );
        assert_eq!(
            Write::delete("rooms", &doc),
            Write::Delete {
                collection: "rooms".into(),
                id: "r1".into(),
                expected_revision: Some(3),
            }
        );
    }

    #[test]
    fn inserts_take_the_acting_org_or_a_named_one() {
        let data = json!({"name": "202"});
        assert_eq!(
            Write::insert("rooms", &data).unwrap(),
            Write::Insert {
                collection: "rooms".into(),
                id: None,
                org: None,
                data: data.clone(),
            }
        );
        assert_eq!(
            Write::insert_with("rooms", Some("evt-1"), Some("org-650102"), &data).unwrap(),
            Write::Insert {
                collection: "rooms".into(),
                id: Some("evt-1".into()),
                org: Some("org-650102".into()),
                data,
            }
        );
    }

    #[test]
    fn a_record_must_be_an_object() {
        let e = Write::insert("rooms", &json!([1, 2])).unwrap_err();
        assert_eq!(e.status(), 500);
        let e = Write::update("rooms", &room_doc(), &"text").unwrap_err();
        assert!(e.message().contains("JSON object"), "{}", e.message());
    }

    #[test]
    fn a_written_record_reads_as_its_type() {
        let raw = |data: Value| Doc {
            id: "r1".into(),
            org: "org-650102".into(),
            revision: 3,
            created_at: 1,
            updated_at: 2,
            data,
        };
        let doc = raw(json!({"name": "201", "status": "free"}));
        assert_eq!(doc.typed::<Room>().unwrap().data, room_doc().data);
        let bad = raw(json!({"name": 1}));
        assert_eq!(bad.typed::<Room>().unwrap_err().status(), 500);
    }

    #[test]
    fn groups_read_their_keys_and_measures() {
        let g = Group {
            key: vec![json!("in_stock"), json!(3)],
            values: vec![Some(2.0), None],
        };
        assert_eq!(
            (g.key_text(0), g.key_text(1), g.key_text(2)),
            ("in_stock", "", "")
        );
        assert_eq!((g.value(0), g.value(1), g.value(5)), (2.0, 0.0, 0.0));
    }

    #[test]
    fn storage_errors_map_to_statuses() {
        let status = |e| to_error(e).status();
        assert_eq!(status(wit::StorageError::NotFound), 404);
        assert_eq!(status(wit::StorageError::Conflict(4)), 409);
        assert_eq!(status(wit::StorageError::AlreadyExists), 409);
        assert_eq!(status(wit::StorageError::ForbiddenOrg("o".into())), 403);
        assert_eq!(status(wit::StorageError::Invalid("x".into())), 400);
        assert_eq!(status(wit::StorageError::Unavailable("x".into())), 503);
        assert_eq!(
            to_error(wit::StorageError::Conflict(4)).code(),
            "revision_conflict"
        );
    }
}
