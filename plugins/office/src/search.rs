//! Search over outgoing and incoming documents: a phrase in the title or
//! the body, within the caller's reach (the kernel scopes every find), the
//! matches marked in a snippet. This reads with the storage's substring
//! filter; the kernel's full-text index (issue 21 item 6) is not built
//! yet, so a search scans the collection.

use serde_json::Value;
use std::collections::BTreeMap;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::collection;

use crate::model::snippet;

pub fn routes(router: Router) -> Router {
    router.get("/search", search).requires("office.view")
}

/// The most results answered.
const MAX_RESULTS: usize = 50;

fn search(req: &Request) -> Result<Response> {
    let q = req.query_param("q").unwrap_or_default();
    let q = q.trim();
    if q.is_empty() {
        return Err(Error::invalid("q", "query_required", "type what to find"));
    }
    if q.chars().count() > 50 {
        return Err(Error::invalid(
            "q",
            "query_too_long",
            "a phrase has 50 characters at most",
        ));
    }
    let mut results: BTreeMap<(i64, String), Value> = BTreeMap::new();
    for kind in ["outgoing", "incoming"] {
        for field in ["title", "body"] {
            let found = collection(kind)
                .find()
                .contains(field, q)
                .sort_desc("updated-at")
                .limit(MAX_RESULTS as u32)
                .page::<Value>()?;
            for doc in found.records {
                let key = (-doc.updated_at, doc.id.clone());
                if results.contains_key(&key) {
                    continue;
                }
                let text = |k: &str| doc.data[k].as_str().unwrap_or("").to_string();
                let pieces = snippet(&text("body"), q, 40)
                    .or_else(|| snippet(&text("title"), q, 40))
                    .unwrap_or_default();
                results.insert(
                    key,
                    json!({
                        "kind": kind, "id": doc.id, "org": doc.org,
                        "title": text("title"), "no": text("no"),
                        "status": text("status"), "snippet": pieces,
                        "title_hits": snippet(&text("title"), q, 200).unwrap_or_default(),
                    }),
                );
            }
        }
    }
    let results: Vec<Value> = results.into_values().take(MAX_RESULTS).collect();
    Ok(Response::json(&json!({ "q": q, "results": results })))
}
