//! Test plugin for the host services of contract 1.2: storage (CRUD,
//! queries, aggregates, transactions, history), messaging (publish, the
//! event handler, retries) and scheduled jobs.

use tianshan_sdk::prelude::*;
use tianshan_sdk::serde_json::Value;
use tianshan_sdk::storage::{AggregateOp, Write, collection};

struct Notes;

impl Plugin for Notes {
    fn routes() -> Router {
        Router::new()
            .post("/notes", create)
            .get("/notes", list)
            .get("/notes/{id}", show)
            .put("/notes/{id}", update)
            .delete("/notes/{id}", remove)
            .get("/notes/{id}/history", history)
            .get("/stats", stats)
            .post("/batch", batch)
            .get("/inbox", inbox)
            .post("/publish", publish)
            .post("/undeclared", undeclared)
            .post("/files", store_file)
            .get("/files/{id}", read_file)
            .delete("/files/{id}", delete_file)
            .get("/bench/get", bench_get)
            .get("/bench/query", bench_query)
            .post("/bench/insert", bench_insert)
            .post("/bench/insert-bulk", bench_insert_bulk)
    }

    fn on_event(event: Event) -> core::result::Result<(), String> {
        handle_event(&event).map_err(|e| e.message().to_string())
    }
}

fn body(req: &Request) -> Result<Value> {
    req.json::<Value>()
}

fn create(req: &Request) -> Result<Response> {
    let mut data = body(req)?;
    let id = data.get("id").and_then(Value::as_str).map(str::to_string);
    let org = data.get("org").and_then(Value::as_str).map(str::to_string);
    if let Some(map) = data.as_object_mut() {
        map.remove("id");
        map.remove("org");
    }
    if data
        .get("title")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(Error::validation("title", "title is required"));
    }
    let doc = collection("notes").insert_with(id.as_deref(), org.as_deref(), &data)?;
    if data.get("publish").and_then(Value::as_bool).unwrap_or(true) {
        messaging::Event::json("notes.created", &json!({ "id": doc.id, "note": data }))?
            .key(doc.id.clone())
            .publish()?;
    }
    Ok(Response::json(&doc).with_status(201))
}

fn list(req: &Request) -> Result<Response> {
    let mut find = collection("notes").find();
    if let Some(topic) = req.query_param("topic") {
        find = find.eq("topic", topic);
    }
    if let Some(prefix) = req.query_param("prefix") {
        find = find.prefix("title", &prefix);
    }
    if let Some(text) = req.query_param("contains") {
        find = find.contains("title", &text);
    }
    if let Some(min) = req.query_param("min_priority") {
        let min: i64 = min
            .parse()
            .map_err(|_| Error::validation("min_priority", "an integer"))?;
        find = find.gte("priority", min);
    }
    if let Some(topics) = req.query_param("topics") {
        find = find.one_of("topic", topics.split(',').map(str::to_string));
    }
    if let Some(field) = req.query_param("sort") {
        find = if req.query_param("desc").is_some() {
            find.sort_desc(&field)
        } else {
            find.sort(&field)
        };
    }
    if let Some(limit) = req.query_param("limit") {
        find = find.limit(limit.parse().unwrap_or(0));
    }
    if req.query_param("total").is_some() {
        find = find.with_total();
    }
    let page = find
        .cursor(req.query_param("cursor"))
        .within(req.query_param("within"))
        .page::<Value>()?;
    Ok(Response::json(&page))
}

fn show(req: &Request) -> Result<Response> {
    let doc = collection("notes").fetch::<Value>(req.param("id")?)?;
    Ok(Response::json(&doc))
}

fn update(req: &Request) -> Result<Response> {
    let input = body(req)?;
    let revision = input
        .get("revision")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::validation("revision", "the revision you read is required"))?;
    let data = input.get("data").cloned().unwrap_or(Value::Null);
    let doc = collection("notes").update(req.param("id")?, revision, &data)?;
    Ok(Response::json(&doc))
}

fn remove(req: &Request) -> Result<Response> {
    let revision = req.query_param("revision").and_then(|r| r.parse().ok());
    collection("notes").delete(req.param("id")?, revision)?;
    Ok(Response::empty(204))
}

fn history(req: &Request) -> Result<Response> {
    let entries = collection("notes").history(req.param("id")?)?;
    let list: Vec<Value> = entries
        .into_iter()
        .map(|e| json!({ "revision": e.revision, "op": e.op, "data": e.data, "actor": e.actor }))
        .collect();
    Ok(Response::json(&list))
}

fn stats(req: &Request) -> Result<Response> {
    let notes = collection("notes");
    let group = req.query_param("group");
    let group_by: Vec<&str> = group.as_deref().into_iter().collect();
    let groups = notes.aggregate(
        &notes.find().within(req.query_param("within")),
        &group_by,
        &[
            (AggregateOp::Count, None),
            (AggregateOp::Sum, Some("priority")),
            (AggregateOp::Avg, Some("priority")),
            (AggregateOp::Min, Some("priority")),
            (AggregateOp::Max, Some("priority")),
        ],
    )?;
    Ok(Response::json(&groups))
}

/// `[{"op":"insert","data":{…}}, {"op":"update","id":…,"revision":…,"data":…},
/// {"op":"delete","id":…}]`, all or nothing.
fn batch(req: &Request) -> Result<Response> {
    let ops = body(req)?;
    let ops = ops
        .as_array()
        .ok_or_else(|| Error::validation("body", "a JSON array of writes"))?;
    let mut writes = Vec::new();
    for op in ops {
        let id = op.get("id").and_then(Value::as_str).map(str::to_string);
        let data = op.get("data").cloned().unwrap_or(json!({}));
        writes.push(match op.get("op").and_then(Value::as_str) {
            Some("insert") => Write::Insert {
                collection: "notes".into(),
                id,
                org: None,
                data,
            },
            Some("update") => Write::Update {
                collection: "notes".into(),
                id: id.unwrap_or_default(),
                expected_revision: op.get("revision").and_then(Value::as_u64).unwrap_or(0),
                data,
            },
            Some("delete") => Write::Delete {
                collection: "notes".into(),
                id: id.unwrap_or_default(),
                expected_revision: None,
            },
            _ => return Err(Error::validation("op", "insert, update or delete")),
        });
    }
    let out = tianshan_sdk::storage::transact(writes)?;
    Ok(Response::json(&out))
}

fn inbox(_: &Request) -> Result<Response> {
    let page = collection("inbox").find().limit(1000).page::<Value>()?;
    Ok(Response::json(&page.records))
}

fn publish(req: &Request) -> Result<Response> {
    let input = body(req)?;
    let topic = input
        .get("topic")
        .and_then(Value::as_str)
        .unwrap_or("notes.custom");
    let mut event =
        messaging::Event::json(topic, &input.get("payload").cloned().unwrap_or(json!({})))?;
    if let Some(key) = input.get("key").and_then(Value::as_str) {
        event = event.key(key);
    }
    if let Some(key) = input.get("idempotency_key").and_then(Value::as_str) {
        event = event.idempotency_key(key);
    }
    if let Some(org) = input.get("org").and_then(Value::as_str) {
        event = event.org(org);
    }
    let id = event.publish()?;
    Ok(Response::json(&json!({ "id": id })))
}

/// Stores the body as a file named by `?name=`, of the request's type.
fn store_file(req: &Request) -> Result<Response> {
    let name = req
        .query_param("name")
        .unwrap_or_else(|| "upload.bin".into());
    let content_type = req
        .header("content-type")
        .unwrap_or("application/octet-stream");
    let info = files::put(&name, content_type, req.body(), None)?;
    Ok(Response::json(&json!({
        "id": info.id, "org": info.org, "name": info.name, "size": info.size, "sha256": info.sha256,
    }))
    .with_status(201))
}

fn read_file(req: &Request) -> Result<Response> {
    let id = req.param("id")?;
    let info = files::info(id)?;
    Ok(Response::bytes(info.content_type, files::read(id)?))
}

/// 204 when deleted, 404 when there was nothing the plugin could delete;
/// a refusal comes back as the kernel's error.
fn delete_file(req: &Request) -> Result<Response> {
    if files::delete(req.param("id")?)? {
        Ok(Response::empty(204))
    } else {
        Err(Error::not_found("no such file"))
    }
}

fn undeclared(_: &Request) -> Result<Response> {
    let doc = collection("secrets").insert(&json!({ "x": 1 }))?;
    Ok(Response::json(&doc))
}

/// `n` gets of one record inside one request: the storage host call's
/// cost without the HTTP and instantiation around it.
fn bench_get(req: &Request) -> Result<Response> {
    let id = req
        .query_param("id")
        .ok_or_else(|| Error::validation("id", "required"))?;
    let n: u32 = req
        .query_param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let notes = collection("notes");
    let mut found = 0;
    for _ in 0..n {
        if notes.get::<Value>(&id)?.is_some() {
            found += 1;
        }
    }
    Ok(Response::json(&json!({ "found": found })))
}

/// `n` indexed queries (one page of 20 by topic) inside one request.
fn bench_query(req: &Request) -> Result<Response> {
    let topic = req.query_param("topic").unwrap_or_default();
    let n: u32 = req
        .query_param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let notes = collection("notes");
    let mut rows = 0;
    for _ in 0..n {
        rows += notes
            .find()
            .eq("topic", topic.as_str())
            .limit(20)
            .page::<Value>()?
            .records
            .len();
    }
    Ok(Response::json(&json!({ "rows": rows })))
}

/// `n` inserts, each its own transaction (with history and audit).
fn bench_insert(req: &Request) -> Result<Response> {
    let n: u32 = req
        .query_param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let notes = collection("notes");
    for i in 0..n {
        notes.insert(&json!({ "title": format!("bench {i}"), "topic": "bench", "priority": i }))?;
    }
    Ok(Response::json(&json!({ "inserted": n })))
}

/// `n` inserts through `transact`, 500 to a call: the kernel writes a
/// call's consecutive inserts in bulk, history and audit included.
fn bench_insert_bulk(req: &Request) -> Result<Response> {
    let n: u32 = req
        .query_param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let mut done = 0;
    while done < n {
        let chunk = (n - done).min(500);
        let writes = (done..done + chunk)
            .map(|i| {
                Write::insert(
                    "notes",
                    &json!({ "title": format!("bulk {i}"), "topic": "bulk", "priority": i }),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        tianshan_sdk::storage::transact(writes)?;
        done += chunk;
    }
    Ok(Response::json(&json!({ "inserted": n })))
}

/// Records each event once in `inbox` under the event id; a redelivery
/// bumps `times`, so tests see duplicates. A payload with `fail_times: n`
/// fails the first n attempts.
fn handle_event(event: &Event) -> Result<()> {
    let payload: Value =
        tianshan_sdk::serde_json::from_slice(&event.payload).unwrap_or(Value::Null);
    if let Some(fail_times) = payload.get("fail_times").and_then(Value::as_u64) {
        let attempts = collection("attempts");
        let tried = match attempts.get::<Value>(&event.id)? {
            Some(doc) => {
                let n = doc.data["n"].as_u64().unwrap_or(0) + 1;
                attempts.update(&event.id, doc.revision, &json!({ "n": n }))?;
                n
            }
            None => {
                attempts.insert_with(Some(&event.id), None, &json!({ "n": 1 }))?;
                1
            }
        };
        if tried <= fail_times {
            return Err(Error::internal(format!(
                "failing on purpose, attempt {tried}"
            )));
        }
    }
    let inbox = collection("inbox");
    let record = json!({
        "topic": event.topic,
        "key": event.key,
        "source": event.source,
        "org": event.org,
        "payload": payload,
        "times": 1,
    });
    match inbox.insert_with(Some(&event.id), None, &record) {
        Ok(_) => Ok(()),
        Err(e) if e.status() == 409 => {
            let doc = inbox.fetch::<Value>(&event.id)?;
            let mut data = doc.data;
            data["times"] = json!(data["times"].as_u64().unwrap_or(1) + 1);
            inbox.update(&event.id, doc.revision, &data)?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

tianshan_sdk::export_plugin!(Notes);
