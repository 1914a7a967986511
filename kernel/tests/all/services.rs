//! Host services (contract 1.2) end to end: each storage behaviour as its
//! own test on SQLite and on PostgreSQL, org and plugin isolation, messaging with retries and
//! dead letters, two nodes sharing PostgreSQL, and crash durability.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::identity::{PASSWORD, bind, ok, org, user};
use crate::support;
use crate::support::{TestKernel, packages, with_manifest};
use tianshan_kernel::identity::orgs::unified_social_credit_code;

const NOTES: &str = "/api/v1/p/notes";

/// A fresh PostgreSQL database for one test, dropped at the end.
pub struct PgDatabase {
    pub url: String,
    name: String,
    admin: String,
}

impl PgDatabase {
    pub fn create() -> PgDatabase {
        let admin = std::env::var("TIANSHAN_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("tianshan_test_{}_{}", std::process::id(), rand_suffix());
        run_pg(&admin, &format!("CREATE DATABASE {name}"));
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        PgDatabase {
            url: format!("{base}/{name}"),
            name,
            admin,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        run_pg(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn rand_suffix() -> String {
    tianshan_kernel::core::ids::new_record_id()[16..].to_lowercase()
}

fn run_pg(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {url} is needed for this test: {e}"));
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    });
}

/// Polls `f` until it returns Some or the time is up.
fn eventually<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write_config(dir: &Path, postgres: bool) -> String {
    let path = dir.join("test.toml");
    // Files go in the database when the kernel runs on PostgreSQL, as a
    // multi-node deployment without shared disk would configure it.
    let backend = if postgres { "database" } else { "disk" };
    std::fs::write(
        &path,
        format!(
            "[events]\nmax-attempts = 3\nretry-base-ms = 100\n\n[files]\nmax-bytes = 65536\nbackend = \"{backend}\"\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Starts a kernel (on PostgreSQL when `database` is given) with the
/// notes plugin installed and its subscriptions granted.
fn start(database: Option<&str>) -> (TestKernel, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), database.is_some());
    let mut args = vec!["--config", config.as_str()];
    if let Some(url) = database {
        args.extend(["--database-url", url]);
    }
    let k = TestKernel::start_in(&tmp.path().join("data"), &args);
    k.install_ok("notes");
    ok(
        &k,
        "PUT",
        "/api/v1/plugins/notes/subscriptions",
        json!({"topics": ["notes.*"]}),
        200,
    );
    (k, tmp)
}

fn note(k: &TestKernel, token: Option<&str>, body: Value) -> (u16, Value) {
    k.request(
        "POST",
        &format!("{NOTES}/notes"),
        token,
        Some(body.to_string().into_bytes()),
    )
}

fn created(k: &TestKernel, token: Option<&str>, body: Value) -> Value {
    let (status, out) = note(k, token, body);
    assert_eq!(status, 201, "{out}");
    out
}

fn titles(page: &Value) -> Vec<String> {
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["data"]["title"].as_str().unwrap().to_string())
        .collect()
}

/// A kernel with the notes plugin on SQLite, or on PostgreSQL when
/// `postgres` (`None` when PostgreSQL is not there and CI does not insist).
struct Backend {
    k: TestKernel,
    _dir: tempfile::TempDir,
    _db: Option<PgDatabase>,
}

impl Backend {
    fn start(postgres: bool) -> Option<Backend> {
        if !postgres {
            let (k, dir) = start(None);
            return Some(Backend {
                k,
                _dir: dir,
                _db: None,
            });
        }
        if !support::have(support::Service::Postgres) {
            return None;
        }
        let db = PgDatabase::create();
        let (k, dir) = start(Some(&db.url));
        Some(Backend {
            k,
            _dir: dir,
            _db: Some(db),
        })
    }
}

/// Each storage behaviour as its own test, run once on SQLite and once on
/// PostgreSQL: `services::storage::<behaviour>::on_sqlite` / `on_postgres`.
macro_rules! on_both_backends {
    ($($behaviour:ident),* $(,)?) => {
        mod storage {
            $(
                mod $behaviour {
                    #[test]
                    fn on_sqlite() {
                        let backend = super::super::Backend::start(false).unwrap();
                        super::super::$behaviour(&backend.k);
                    }

                    #[test]
                    fn on_postgres() {
                        if let Some(backend) = super::super::Backend::start(true) {
                            super::super::$behaviour(&backend.k);
                        }
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    insert_then_get_returns_the_record_at_the_acting_org,
    invalid_records_are_refused_naming_the_field,
    update_with_stale_revision_conflicts,
    filters_select_by_value_prefix_text_range_and_set,
    cursor_pages_visit_every_record_exactly_once,
    cursors_hide_sort_values_and_open_only_on_their_query,
    group_by_aggregates_count_sum_min_and_max,
    a_failed_transaction_leaves_no_write_behind,
    delete_keeps_the_history,
    an_undeclared_collection_is_refused,
    every_write_is_audited,
);

/// Issue 14 item 3, the PostgreSQL read stalls. After bulk inserts the
/// kernel analyses `records` itself, instead of leaving the planner without
/// statistics (and gets by id filtering the whole collection) until
/// autovacuum comes round; `analyze_count` counts manual ANALYZEs only, not
/// autovacuum's. And a field index does not lead with plugin and
/// collection, which its predicate fixes and the planner then leaves
/// unconstrained, scanning the whole index.
#[test]
fn postgres_gets_fresh_statistics_and_field_indexes_it_can_use() {
    let Some(backend) = Backend::start(true) else {
        return;
    };
    let url = backend._db.as_ref().unwrap().url.clone();
    let ask = |sql: &'static str| -> Vec<(String,)> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                let rows = sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap();
                conn.close().await.unwrap();
                rows
            })
    };
    let definitions = ask("SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'rx_%'");
    assert!(
        !definitions.is_empty(),
        "the notes plugin declares field indexes"
    );
    for (definition,) in &definitions {
        assert!(
            !definition.contains("(plugin_id, collection"),
            "{definition}"
        );
    }
    let analysed = || -> i64 {
        ask("SELECT analyze_count::text FROM pg_stat_user_tables WHERE relname = 'records'")[0]
            .0
            .parse()
            .unwrap()
    };
    let before = analysed();
    let batch = |from: usize| {
        let writes: Vec<Value> = (from..from + 500)
            .map(|i| json!({"op": "insert", "data": {"title": format!("bulk {i}")}}))
            .collect();
        ok(
            &backend.k,
            "POST",
            &format!("{NOTES}/batch"),
            json!(writes),
            200,
        );
    };
    batch(0);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(analysed(), before, "500 records are below the mark");
    batch(500);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while analysed() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "1,000 bulk-inserted records were never analysed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The boiler note (priority 5 after one update) and 25 more over three
/// topics with priorities 0-24: the set the query tests count in.
fn seed_notes(k: &TestKernel) -> String {
    let first = created(
        k,
        None,
        json!({"title": "Boiler inspection", "topic": "energy", "priority": 3}),
    );
    let id = first["id"].as_str().unwrap().to_string();
    ok(
        k,
        "PUT",
        &format!("{NOTES}/notes/{id}"),
        json!({"revision": 1, "data": {"title": "Boiler inspection", "topic": "energy", "priority": 5}}),
        200,
    );
    for i in 0..25 {
        let topic = ["energy", "vehicles", "assets"][i % 3];
        created(
            k,
            None,
            json!({"title": format!("Note {i:02} {topic}"), "topic": topic, "priority": i, "publish": false}),
        );
    }
    id
}

fn insert_then_get_returns_the_record_at_the_acting_org(k: &TestKernel) {
    let first = created(
        k,
        None,
        json!({"title": "Boiler inspection", "topic": "energy", "priority": 3}),
    );
    let id = first["id"].as_str().unwrap().to_string();
    assert_eq!(first["revision"], 1);
    assert_eq!(first["org"], "org-650000");
    let (status, got) = k.get(&format!("{NOTES}/notes/{id}"));
    assert_eq!(status, 200);
    assert_eq!(got["data"]["title"], "Boiler inspection");
    let (status, _) = k.get(&format!("{NOTES}/notes/01NOPE"));
    assert_eq!(status, 404);
}

fn invalid_records_are_refused_naming_the_field(k: &TestKernel) {
    let (status, body) = note(k, None, json!({"topic": "x"}));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "title");
    let (status, body) = note(k, None, json!({"id": "bad id!", "title": "x"}));
    assert_eq!(status, 400, "{body}");
}

fn update_with_stale_revision_conflicts(k: &TestKernel) {
    let first = created(
        k,
        None,
        json!({"title": "Boiler inspection", "priority": 3}),
    );
    let id = first["id"].as_str().unwrap();
    let updated = ok(
        k,
        "PUT",
        &format!("{NOTES}/notes/{id}"),
        json!({"revision": 1, "data": {"title": "Boiler inspection", "priority": 5}}),
        200,
    );
    assert_eq!(updated["revision"], 2);
    let stale = ok(
        k,
        "PUT",
        &format!("{NOTES}/notes/{id}"),
        json!({"revision": 1, "data": {"title": "lost update"}}),
        409,
    );
    assert_eq!(stale["error"]["code"], "revision_conflict");
    let (_, got) = k.get(&format!("{NOTES}/notes/{id}"));
    assert_eq!(
        got["data"]["priority"], 5,
        "the stale write changed the record"
    );
}

fn filters_select_by_value_prefix_text_range_and_set(k: &TestKernel) {
    seed_notes(k);
    let count = |query: &str| {
        ok(
            k,
            "GET",
            &format!("{NOTES}/notes?{query}"),
            Value::Null,
            200,
        )["records"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count("topic=vehicles&limit=100"), 8);
    assert_eq!(count("prefix=Note%201&limit=100"), 10);
    assert_eq!(count("topics=assets,vehicles&limit=100"), 16);
    let page = ok(
        k,
        "GET",
        &format!("{NOTES}/notes?contains=BOILER"),
        Value::Null,
        200,
    );
    assert_eq!(titles(&page), vec!["Boiler inspection"]);
    let page = ok(
        k,
        "GET",
        &format!("{NOTES}/notes?min_priority=20&sort=priority&desc=1"),
        Value::Null,
        200,
    );
    let priorities: Vec<i64> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["data"]["priority"].as_i64().unwrap())
        .collect();
    assert_eq!(priorities, vec![24, 23, 22, 21, 20]);
}

fn cursor_pages_visit_every_record_exactly_once(k: &TestKernel) {
    seed_notes(k);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("{NOTES}/notes?sort=priority&limit=10&total=1");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = ok(k, "GET", &path, Value::Null, 200);
        assert_eq!(page["total"], 26);
        for r in page["records"].as_array().unwrap() {
            seen.push(r["data"]["priority"].as_i64().unwrap());
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected: Vec<i64> = (0..25).collect();
    expected.push(5);
    expected.sort();
    assert_eq!(seen, expected);
    let bad = ok(
        k,
        "GET",
        &format!("{NOTES}/notes?cursor=zz"),
        Value::Null,
        400,
    );
    assert!(bad["error"]["message"].as_str().unwrap().contains("cursor"));
}

/// A page's cursor names a position without showing the values there: it
/// is sealed, so it neither spells out the sort values of the records
/// around the page break nor opens on another query or when altered.
fn cursors_hide_sort_values_and_open_only_on_their_query(k: &TestKernel) {
    seed_notes(k);
    let get = |path: &str, status| {
        ok(
            k,
            "GET",
            &format!("{NOTES}/notes?{path}"),
            Value::Null,
            status,
        )
    };
    let first = get("sort=title&limit=10", 200);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let last = &first["records"].as_array().unwrap()[9];
    let next = get(&format!("sort=title&limit=10&cursor={cursor}"), 200);
    let following = &next["records"].as_array().unwrap()[0];
    for record in [last, following] {
        for value in [&record["data"]["title"], &record["id"]] {
            let value = value.as_str().unwrap();
            for shown in [cursor.clone(), cursor.to_ascii_lowercase()] {
                assert!(!shown.contains(value), "{value} in {cursor}");
                assert!(
                    !shown.contains(&hex::encode(value)),
                    "hex of {value} in {cursor}"
                );
            }
        }
    }
    // Numbers too: the old cursor was hex of the JSON values.
    let by_priority = get("sort=priority&limit=10", 200);
    let cursor_p = by_priority["next_cursor"].as_str().unwrap().to_string();
    let after = get(&format!("sort=priority&limit=10&cursor={cursor_p}"), 200);
    let priority = after["records"][0]["data"]["priority"].to_string();
    assert!(!cursor_p.contains(&hex::encode(format!("[{priority}"))));
    assert!(!cursor_p.contains(&hex::encode(format!(
        "[{}",
        by_priority["records"][9]["data"]["priority"]
    ))));
    // Another query's cursor, an altered one and a crafted clear one are
    // refused alike.
    let refused = |path: String| {
        let body = get(&path, 400);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cursor"),
            "{body}"
        );
    };
    refused(format!("sort=priority&limit=10&cursor={cursor}"));
    refused(format!("sort=title&desc=1&limit=10&cursor={cursor}"));
    refused(format!("sort=title&topic=energy&limit=10&cursor={cursor}"));
    let mut altered = cursor.clone().into_bytes();
    let i = altered.len() / 2;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    refused(format!(
        "sort=title&limit=10&cursor={}",
        String::from_utf8(altered).unwrap()
    ));
    refused(format!(
        "sort=title&limit=10&cursor={}",
        &cursor[..cursor.len() - 4]
    ));
    let crafted = hex::encode(json!([last["data"]["title"], last["id"]]).to_string());
    refused(format!("sort=title&limit=10&cursor={crafted}"));
}

fn group_by_aggregates_count_sum_min_and_max(k: &TestKernel) {
    seed_notes(k);
    let groups = ok(
        k,
        "GET",
        &format!("{NOTES}/stats?group=topic"),
        Value::Null,
        200,
    );
    let energy = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"][0] == "energy")
        .unwrap_or_else(|| panic!("{groups}"));
    // energy: i = 0,3,…,24 (9 notes, sum 108) plus the boiler note (5).
    assert_eq!(energy["values"][0], 10.0);
    assert_eq!(energy["values"][1], 113.0);
    assert_eq!(energy["values"][3], 0.0);
    assert_eq!(energy["values"][4], 24.0);
}

fn a_failed_transaction_leaves_no_write_behind(k: &TestKernel) {
    let id = seed_notes(k);
    let count = || {
        ok(
            k,
            "GET",
            &format!("{NOTES}/notes?total=1&limit=1"),
            Value::Null,
            200,
        )["total"]
            .as_u64()
            .unwrap()
    };
    let before = count();
    let failed = ok(
        k,
        "POST",
        &format!("{NOTES}/batch"),
        json!([
            {"op": "insert", "data": {"title": "in a failed batch"}},
            {"op": "update", "id": id, "revision": 1, "data": {"title": "stale"}}
        ]),
        409,
    );
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("write 1")
    );
    assert_eq!(count(), before, "a failed transaction left a write behind");
    ok(
        k,
        "POST",
        &format!("{NOTES}/batch"),
        json!([
            {"op": "insert", "id": "batch-1", "data": {"title": "batch one"}},
            {"op": "update", "id": id, "revision": 2, "data": {"title": "Boiler inspection", "topic": "energy", "priority": 6}}
        ]),
        200,
    );
    assert_eq!(count(), before + 1);
    // A bulk insert naming an id that is taken fails at that write, and
    // none of the run is kept.
    let taken = ok(
        k,
        "POST",
        &format!("{NOTES}/batch"),
        json!([
            {"op": "insert", "id": "batch-2", "data": {"title": "new"}},
            {"op": "insert", "id": "batch-3", "data": {"title": "new"}},
            {"op": "insert", "id": "batch-1", "data": {"title": "taken"}}
        ]),
        409,
    );
    assert!(
        taken["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("write 2"),
        "{taken}"
    );
    assert_eq!(
        count(),
        before + 1,
        "a refused bulk insert left a write behind"
    );
}

fn delete_keeps_the_history(k: &TestKernel) {
    let id = seed_notes(k);
    let (status, _) = k.request(
        "DELETE",
        &format!("{NOTES}/notes/{id}?revision=2"),
        None,
        None,
    );
    assert_eq!(status, 204);
    let (status, _) = k.get(&format!("{NOTES}/notes/{id}"));
    assert_eq!(status, 404);
    let history = ok(
        k,
        "GET",
        &format!("{NOTES}/notes/{id}/history"),
        Value::Null,
        200,
    );
    let ops: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, vec!["insert", "update", "delete"]);
}

fn an_undeclared_collection_is_refused(k: &TestKernel) {
    let undeclared = ok(k, "POST", &format!("{NOTES}/undeclared"), json!({}), 500);
    assert!(
        undeclared["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not declared"),
        "{undeclared}"
    );
}

fn every_write_is_audited(k: &TestKernel) {
    let id = seed_notes(k);
    ok(
        k,
        "POST",
        &format!("{NOTES}/batch"),
        json!([{"op": "insert", "id": "batch-1", "data": {"title": "batch one"}}]),
        200,
    );
    let audit = ok(
        k,
        "GET",
        "/api/v1/audit?action=storage.&limit=500",
        Value::Null,
        200,
    );
    let targets: Vec<String> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap_or("").to_string())
        .collect();
    // A record per write to the notes collection: 26 inserts, one update,
    // the batch's insert (the plugin's event handler writes elsewhere).
    let notes = targets
        .iter()
        .filter(|t| t.starts_with("notes/notes/"))
        .count();
    assert_eq!(notes, 28, "{audit}");
    assert_eq!(
        targets
            .iter()
            .filter(|t| **t == format!("notes/notes/{id}"))
            .count(),
        2
    );
    assert!(targets.contains(&"notes/notes/batch-1".to_string()));
}

/// The kernel, not the plugin, decides whose records a call sees. Returns
/// the tokens of a clerk in county A and one in county B.
fn isolation(k: &TestKernel) -> (String, String) {
    let root = "org-650000";
    let prefecture = org(k, root, "prefecture", "650100", "乌鲁木齐市");
    let county_a = org(k, &prefecture, "county", "650102", "天山区");
    let county_b = org(k, &prefecture, "county", "650103", "沙依巴克区");
    let unit = |county: &str, division: &str, name: &str| {
        org(
            k,
            county,
            "unit",
            &unified_social_credit_code(division, 7),
            name,
        )
    };
    let unit_a = unit(&county_a, "650102", "天山区机关事务服务中心");
    let unit_b = unit(&county_b, "650103", "沙依巴克区机关事务服务中心");
    let a = user(k, "clerk.a", &unit_a);
    bind(k, &a, "member", &county_a);
    let b = user(k, "clerk.b", &unit_b);
    bind(k, &b, "member", &county_b);
    let p = user(k, "pref.officer", &unit_a);
    bind(k, &p, "member", &prefecture);
    let token_a = k.login("clerk.a", PASSWORD);
    let token_b = k.login("clerk.b", PASSWORD);
    let token_p = k.login("pref.officer", PASSWORD);

    let mine = created(
        k,
        Some(&token_a),
        json!({"title": "county A budget", "publish": false}),
    );
    let id = mine["id"].as_str().unwrap();
    assert_eq!(mine["org"], county_a.as_str());
    created(
        k,
        Some(&token_b),
        json!({"title": "county B budget", "publish": false}),
    );

    // B sees only B's record; A's is simply not there.
    let page = ok(
        k,
        "GET",
        &format!("{NOTES}/notes?contains=budget"),
        Value::Null,
        200,
    );
    assert_eq!(
        page["records"].as_array().unwrap().len(),
        2,
        "the root sees both"
    );
    let (_, page_b) = k.request(
        "GET",
        &format!("{NOTES}/notes?contains=budget"),
        Some(&token_b),
        None,
    );
    assert_eq!(titles(&page_b), vec!["county B budget"]);
    let (status, _) = k.request("GET", &format!("{NOTES}/notes/{id}"), Some(&token_b), None);
    assert_eq!(status, 404);
    let (status, _) = k.request(
        "PUT",
        &format!("{NOTES}/notes/{id}"),
        Some(&token_b),
        Some(
            json!({"revision": 1, "data": {"title": "defaced"}})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(status, 404);
    let (status, _) = k.request(
        "DELETE",
        &format!("{NOTES}/notes/{id}"),
        Some(&token_b),
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = k.request(
        "GET",
        &format!("{NOTES}/notes/{id}/history"),
        Some(&token_b),
        None,
    );
    assert_eq!(status, 404);
    // B cannot write into A's org, nor widen a query to it.
    let (status, body) = note(
        k,
        Some(&token_b),
        json!({"title": "planted", "org": county_a, "publish": false}),
    );
    assert_eq!(status, 403, "{body}");
    let (status, _) = k.request(
        "GET",
        &format!("{NOTES}/notes?within={county_a}"),
        Some(&token_b),
        None,
    );
    assert_eq!(status, 403);
    // An aggregate counts only what the caller reaches.
    let (_, stats_b) = k.request("GET", &format!("{NOTES}/stats"), Some(&token_b), None);
    assert_eq!(stats_b[0]["values"][0], 1.0, "{stats_b}");
    // The prefecture reaches both counties, and can narrow to one.
    let (_, page_p) = k.request(
        "GET",
        &format!("{NOTES}/notes?contains=budget"),
        Some(&token_p),
        None,
    );
    assert_eq!(page_p["records"].as_array().unwrap().len(), 2);
    let (_, page_p) = k.request(
        "GET",
        &format!("{NOTES}/notes?contains=budget&within={county_a}"),
        Some(&token_p),
        None,
    );
    assert_eq!(titles(&page_p), vec!["county A budget"]);
    // A forged org header does not widen reach.
    let (status, _, _) = k.raw(
        "GET",
        &format!("{NOTES}/notes/{id}"),
        Some(&token_b),
        None,
        &[("x-tianshan-org", &county_a)],
    );
    assert_eq!(
        status, 404,
        "acting in an org without a binding is refused (as unknown)"
    );

    // Another plugin with a same-named collection sees none of it.
    let copy = with_manifest(&packages().bytes("notes"), |m| {
        m.id = "notes2".into();
        m.subscribes.clear();
    });
    let (status, body) = k.install(copy);
    assert_eq!(status, 201, "{body}");
    let page = ok(
        k,
        "GET",
        "/api/v1/p/notes2/notes?limit=1000",
        Value::Null,
        200,
    );
    assert_eq!(page["records"].as_array().unwrap().len(), 0, "{page}");
    let (status, _) = k.get(&format!("/api/v1/p/notes2/notes/{id}"));
    assert_eq!(status, 404);
    (token_a, token_b)
}

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn upload(
    k: &TestKernel,
    token: &str,
    name: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Value) {
    let (status, bytes, _) = k.raw(
        "POST",
        &format!("/api/v1/files?name={name}"),
        Some(token),
        Some(body.to_vec()),
        &[("content-type", content_type)],
    );
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Attachments through the kernel API and through the plugin interface.
fn files(k: &TestKernel, token_a: &str, token_b: &str) {
    use sha2::Digest;
    let (status, out) = upload(k, token_a, "seal.png", "image/png", PNG);
    assert_eq!(status, 201, "{out}");
    let id = out["file"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        out["file"]["sha256"],
        hex::encode(sha2::Sha256::digest(PNG))
    );
    assert_eq!(out["file"]["size"], PNG.len());
    let (status, bytes, headers) = k.raw(
        "GET",
        &format!("/api/v1/files/{id}"),
        Some(token_a),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(bytes, PNG);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "image/png");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(header("content-disposition").starts_with("attachment"));
    // Another county's clerk cannot see it.
    let (status, _, _) = k.raw(
        "GET",
        &format!("/api/v1/files/{id}"),
        Some(token_b),
        None,
        &[],
    );
    assert_eq!(status, 404);
    let (status, _, _) = k.raw(
        "DELETE",
        &format!("/api/v1/files/{id}"),
        Some(token_b),
        None,
        &[],
    );
    assert_eq!(status, 404);
    // Content must be what it claims, and of an accepted type.
    let (status, out) = upload(
        k,
        token_a,
        "x.png",
        "image/png",
        b"<script>alert(1)</script>",
    );
    assert_eq!(status, 422, "{out}");
    let (status, _) = upload(k, token_a, "x.html", "text/html", b"<p>hi</p>");
    assert_eq!(status, 422);
    let (status, _) = upload(k, token_a, "../../etc/passwd", "text/plain", b"x");
    assert_eq!(status, 422);
    let (status, _) = upload(k, token_a, "empty.txt", "text/plain", b"");
    assert_eq!(status, 422);
    // The test config caps files at 64 KiB.
    let (status, out) = upload(k, token_a, "big.txt", "text/plain", &vec![b'a'; 70_000]);
    assert_eq!(status, 413, "{out}");

    // A plugin stores and reads its own files…
    let (status, bytes, _) = k.raw(
        "POST",
        &format!("{NOTES}/files?name=scan.pdf"),
        Some(token_a),
        Some(b"%PDF-1.7\n%test\n".to_vec()),
        &[("content-type", "application/pdf")],
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&bytes));
    let stored: Value = serde_json::from_slice(&bytes).unwrap();
    let plugin_file = stored["id"].as_str().unwrap().to_string();
    let (status, bytes, _) = k.raw(
        "GET",
        &format!("{NOTES}/files/{plugin_file}"),
        Some(token_a),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(bytes, b"%PDF-1.7\n%test\n");
    // …and reads what a user uploaded through the kernel…
    let (status, bytes, _) = k.raw(
        "GET",
        &format!("{NOTES}/files/{id}"),
        Some(token_a),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(bytes, PNG);
    // …but not through a caller of another county, nor another plugin's.
    let (status, _, _) = k.raw(
        "GET",
        &format!("{NOTES}/files/{plugin_file}"),
        Some(token_b),
        None,
        &[],
    );
    assert_eq!(status, 404);
    let (status, _, _) = k.raw(
        "GET",
        &format!("/api/v1/p/notes2/files/{plugin_file}"),
        Some(token_a),
        None,
        &[],
    );
    assert_eq!(status, 404);
    // The uploader deletes; then it is gone.
    let (status, _, _) = k.raw(
        "DELETE",
        &format!("/api/v1/files/{id}"),
        Some(token_a),
        None,
        &[],
    );
    assert_eq!(status, 204);
    let (status, _, _) = k.raw(
        "GET",
        &format!("/api/v1/files/{id}/meta"),
        Some(token_a),
        None,
        &[],
    );
    assert_eq!(status, 404);
}

/// The S3-compatible server the S3 file-store test runs against: moto's
/// server in CI (`.ci/run` starts it and sets `TIANSHAN_TEST_S3`).
fn s3_endpoint() -> String {
    let url = std::env::var("TIANSHAN_TEST_S3").unwrap_or_else(|_| "http://127.0.0.1:9000".into());
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_string();
    if let Err(e) = std::net::TcpStream::connect(&authority) {
        panic!(
            "an S3-compatible server at {url} is needed for this test (set TIANSHAN_TEST_S3; \
             .ci/run starts `moto_server -H 127.0.0.1 -p 9000`): {e}"
        );
    }
    url.trim_end_matches('/').to_string()
}

/// A request to the test S3 server, signed with the kernel's SigV4 signer
/// (moto refuses anonymous reads), for the path-style `path`.
fn s3_request(endpoint: &str, method: &str, path: &str, query: &[(&str, &str)]) -> (u16, Vec<u8>) {
    use tianshan_kernel::services::files::s3::sigv4;
    let host = endpoint.split("://").nth(1).unwrap();
    let amz_date = sigv4::amz_date(tianshan_kernel::db::now());
    let headers = [
        ("host", host),
        ("x-amz-content-sha256", sigv4::EMPTY_SHA256),
        ("x-amz-date", amz_date.as_str()),
    ];
    let authorization = sigv4::authorization(
        &sigv4::Credentials {
            access_key_id: "tianshan-test".into(),
            secret_access_key: "tianshan-test-secret".into(),
        },
        "us-east-1",
        &amz_date,
        &sigv4::Request {
            method,
            path,
            query,
            headers: &headers,
            payload_sha256: sigv4::EMPTY_SHA256,
        },
    );
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{endpoint}{path}?{}", query.join("&")))
        .header("x-amz-content-sha256", sigv4::EMPTY_SHA256)
        .header("x-amz-date", &amz_date)
        .header("authorization", authorization)
        .body(())
        .unwrap();
    let mut response = crate::support::agent().run(request).unwrap();
    (
        response.status().as_u16(),
        response.body_mut().read_to_vec().unwrap(),
    )
}

/// `files.backend = "s3"`: an upload through the kernel lands in the bucket
/// under its hash, reads back byte for byte, and a lost object is answered
/// as unavailable storage, not as a crash or wrong content.
#[test]
fn files_in_an_s3_bucket() {
    if !support::have(support::Service::S3) {
        return;
    }
    use sha2::Digest;
    let endpoint = s3_endpoint();
    let bucket = format!("tianshan-test-{}", rand_suffix());
    let prefix = "attachments/";
    let s3_config = tianshan_kernel::core::config::S3Config {
        endpoint: Some(endpoint.clone()),
        bucket: Some(bucket.clone()),
        access_key_id: Some("tianshan-test".into()),
        secret_access_key: Some("tianshan-test-secret".into()),
        prefix: prefix.into(),
        ..Default::default()
    };
    // The kernel's own signed client creates the bucket.
    tianshan_kernel::services::files::s3::S3Store::new(&s3_config, 1 << 20, |_| None)
        .unwrap()
        .create_bucket()
        .unwrap_or_else(|e| panic!("creating bucket {bucket} at {endpoint}: {e}"));

    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("test.toml");
    std::fs::write(
        &config,
        format!(
            "[files]\nbackend = \"s3\"\nmax-bytes = 65536\n\n[files.s3]\nendpoint = \"{endpoint}\"\n\
             bucket = \"{bucket}\"\nprefix = \"{prefix}\"\naccess-key-id = \"tianshan-test\"\n\
             secret-access-key = \"tianshan-test-secret\"\n"
        ),
    )
    .unwrap();
    let k = TestKernel::start_in(
        &tmp.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let content = "编号,名称,数量\n1,办公桌,12\n2,公务用车,3\n".repeat(100);
    let sha = hex::encode(sha2::Sha256::digest(content.as_bytes()));
    let (status, out) = upload(&k, &k.token, "assets.csv", "text/csv", content.as_bytes());
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["file"]["sha256"], sha.as_str());
    let id = out["file"]["id"].as_str().unwrap().to_string();
    // The same content again is stored once, under the same key.
    let (status, again) = upload(&k, &k.token, "copy.csv", "text/csv", content.as_bytes());
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["file"]["sha256"], sha.as_str());

    let (status, bytes, _) = k.raw(
        "GET",
        &format!("/api/v1/files/{id}"),
        Some(&k.token),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(bytes, content.as_bytes());
    assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), sha);

    // Seen from outside the kernel: the object is in the bucket under
    // PREFIX + sha256 with exactly the uploaded bytes, and nothing else is.
    let object = format!("/{bucket}/{prefix}{sha}");
    let (status, body) = s3_request(&endpoint, "GET", &object, &[]);
    assert_eq!(status, 200, "{object}");
    assert_eq!(body, content.as_bytes());
    let (status, listing) = s3_request(
        &endpoint,
        "GET",
        &format!("/{bucket}"),
        &[("list-type", "2")],
    );
    assert_eq!(status, 200);
    let listing = String::from_utf8(listing).unwrap();
    assert_eq!(listing.matches("<Key>").count(), 1, "{listing}");
    assert!(
        listing.contains(&format!("<Key>{prefix}{sha}</Key>")),
        "{listing}"
    );

    // The object disappears behind the kernel's back: a structured 500,
    // never other bytes.
    let (status, _) = s3_request(&endpoint, "DELETE", &object, &[]);
    assert_eq!(status, 204);
    let (status, bytes, _) = k.raw(
        "GET",
        &format!("/api/v1/files/{id}"),
        Some(&k.token),
        None,
        &[],
    );
    assert_eq!(status, 500);
    let error: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(error["error"]["code"], "internal", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("file storage is unavailable")
    );
}

fn inbox(k: &TestKernel) -> Vec<Value> {
    ok(k, "GET", &format!("{NOTES}/inbox"), Value::Null, 200)
        .as_array()
        .unwrap()
        .clone()
}

fn messaging(k: &TestKernel) {
    // Publishing a note reaches the subscriber once.
    let note = created(k, None, json!({"title": "event source", "topic": "x"}));
    let id = note["id"].as_str().unwrap().to_string();
    let delivered = eventually("notes.created delivery", Duration::from_secs(20), || {
        inbox(k)
            .into_iter()
            .find(|r| r["data"]["payload"]["id"] == id.as_str())
    });
    assert_eq!(delivered["data"]["topic"], "notes.created");
    assert_eq!(delivered["data"]["source"], "notes");
    assert_eq!(delivered["data"]["key"], id.as_str());
    assert_eq!(delivered["data"]["times"], 1);

    // An idempotency key publishes once.
    let publish = |body: Value| ok(k, "POST", &format!("{NOTES}/publish"), body, 200);
    let one =
        publish(json!({"topic": "notes.custom", "idempotency_key": "k-1", "payload": {"n": 1}}));
    let two =
        publish(json!({"topic": "notes.custom", "idempotency_key": "k-1", "payload": {"n": 1}}));
    assert_eq!(one["id"], two["id"]);
    // Topics of other plugins cannot be forged.
    let forged = ok(
        k,
        "POST",
        &format!("{NOTES}/publish"),
        json!({"topic": "assets.disposed"}),
        500,
    );
    assert!(
        forged["error"]["message"]
            .as_str()
            .unwrap()
            .contains("start with its id")
    );

    // A handler that fails twice is retried, then succeeds.
    let retried = publish(json!({"topic": "notes.flaky", "payload": {"fail_times": 2}}));
    let retried_id = retried["id"].as_str().unwrap().to_string();
    eventually("retried delivery", Duration::from_secs(20), || {
        inbox(k)
            .into_iter()
            .find(|r| r["id"] == retried_id.as_str())
    });
    // One that always fails lands on the dead-letter list after 3 attempts
    // (the test config) and can be replayed.
    let doomed = publish(json!({"topic": "notes.doomed", "payload": {"fail_times": 4}}));
    let doomed_id = doomed["id"].as_str().unwrap().to_string();
    let dead = eventually("dead letter", Duration::from_secs(20), || {
        let list = ok(k, "GET", "/api/v1/events/dead", Value::Null, 200);
        list["dead"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["event_id"] == doomed_id.as_str())
            .cloned()
    });
    assert_eq!(dead["attempts"], 3);
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .contains("failing on purpose")
    );
    let seq = dead["event_seq"].as_i64().unwrap();
    ok(
        k,
        "POST",
        &format!("/api/v1/events/dead/notes/{seq}/replay"),
        json!({}),
        200,
    );
    // Attempt 4 (after the replay) succeeds.
    eventually("replayed delivery", Duration::from_secs(20), || {
        inbox(k).into_iter().find(|r| r["id"] == doomed_id.as_str())
    });
    // Nothing was delivered twice.
    for r in inbox(k) {
        assert_eq!(r["data"]["times"], 1, "{r}");
    }
    // The author sees what the plugin published and where it went: the
    // replayed event done (issue 16.3).
    let published = ok(
        k,
        "GET",
        "/api/v1/plugins/notes/events?limit=500",
        Value::Null,
        200,
    );
    let event = published["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == doomed_id.as_str())
        .unwrap_or_else(|| panic!("{published}"))
        .clone();
    assert!(
        event["topic"].as_str().unwrap().starts_with("notes."),
        "{event}"
    );
    let delivery = &event["deliveries"][0];
    assert_eq!(delivery["subscriber"], "notes", "{event}");
    assert_eq!(delivery["status"], "done", "{event}");
    assert!(delivery["attempts"].as_i64() >= Some(1), "{event}");
}

#[test]
fn isolation_files_and_messaging_on_sqlite() {
    let (k, _tmp) = start(None);
    let (a, b) = isolation(&k);
    files(&k, &a, &b);
    messaging(&k);
}

#[test]
fn isolation_files_and_messaging_on_postgres() {
    if !support::have(support::Service::Postgres) {
        return;
    }
    let db = PgDatabase::create();
    let (k, _tmp) = start(Some(&db.url));
    let (a, b) = isolation(&k);
    files(&k, &a, &b);
    messaging(&k);
}

/// Two kernel processes on one PostgreSQL database: what one node does,
/// the other sees; events and jobs happen once.
#[test]
fn two_nodes_share_plugins_records_events_and_jobs() {
    if !support::have(support::Service::Postgres) || !support::have(support::Service::Nats) {
        return;
    }
    let db = PgDatabase::create();
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), true);
    // Its own JetStream stream: tests sharing the NATS server must not take
    // each other's events.
    let stream = format!("TS_TEST_{}", rand_suffix().to_uppercase());
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[events]\n",
        &format!("[events]\nstream = \"{stream}\"\nstream-max-age-secs = 3600\n"),
    );
    std::fs::write(&config, text).unwrap();
    let args = |node: &'static str| {
        vec![
            "--config".to_string(),
            config.clone(),
            "--database-url".to_string(),
            db.url.clone(),
            "--node-id".to_string(),
            node.to_string(),
            "--nats-url".to_string(),
            nats_url(),
        ]
    };
    let args_a = args("node-a");
    let args_b = args("node-b");
    let a = TestKernel::start_in(
        &tmp.path().join("a"),
        &args_a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let b = TestKernel::start_in(
        &tmp.path().join("b"),
        &args_b.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    // Installed through A, serving on B.
    a.install_ok("notes");
    ok(
        &a,
        "PUT",
        "/api/v1/plugins/notes/subscriptions",
        json!({"topics": ["notes.*"]}),
        200,
    );
    eventually("the plugin on node B", Duration::from_secs(15), || {
        (b.get(&format!("{NOTES}/notes")).0 == 200).then_some(())
    });

    // B heard A's change over NATS, not only by polling.
    let signals = crate::support::metric_value(&b.metrics(), "tianshan_bus_signals_received_total")
        .unwrap_or(0.0);
    assert!(signals >= 1.0, "node B received no NATS signal from node A");

    // Written on A, read on B.
    let written = created(&a, None, json!({"title": "written on A", "topic": "multi"}));
    let id = written["id"].as_str().unwrap();
    let (status, read) = b.get(&format!("{NOTES}/notes/{id}"));
    assert_eq!(status, 200);
    assert_eq!(read["data"]["title"], "written on A");

    // A binding made on A authorises on B.
    let county = org(&a, "org-650000", "prefecture", "650200", "克拉玛依市");
    let office = org(
        &a,
        &county,
        "unit",
        &unified_social_credit_code("650200", 3),
        "克拉玛依市机关事务管理局",
    );
    let clerk = user(&a, "clerk.multi", &office);
    bind(&a, &clerk, "member", &county);
    let token = b.login("clerk.multi", PASSWORD);
    eventually("the binding on node B", Duration::from_secs(15), || {
        let (status, _) = b.request("GET", &format!("{NOTES}/notes"), Some(&token), None);
        (status == 200).then_some(())
    });

    // Many events published on both nodes: each handled exactly once.
    let mut ids = Vec::new();
    for i in 0..20 {
        let node = if i % 2 == 0 { &a } else { &b };
        let out = created(
            node,
            None,
            json!({"title": format!("event {i}"), "topic": "multi"}),
        );
        ids.push(out["id"].as_str().unwrap().to_string());
    }
    ids.push(id.to_string());
    let records = eventually("all events handled", Duration::from_secs(30), || {
        let records: Vec<Value> = inbox(&b)
            .into_iter()
            .filter(|r| r["data"]["topic"] == "notes.created")
            .collect();
        (records.len() >= ids.len()).then_some(records)
    });
    assert_eq!(records.len(), ids.len());
    for r in &records {
        assert_eq!(r["data"]["times"], 1, "handled twice: {r}");
    }

    // The every-minute job runs once per minute across both nodes.
    let ticks = eventually("a scheduled job run", Duration::from_secs(75), || {
        let ticks: Vec<Value> = inbox(&a)
            .into_iter()
            .filter(|r| r["data"]["topic"] == "kernel.job.tick")
            .collect();
        (!ticks.is_empty()).then_some(ticks)
    });
    // Give the other node's scheduler a chance to (wrongly) run it too.
    std::thread::sleep(Duration::from_secs(3));
    let ticks_after: Vec<Value> = inbox(&a)
        .into_iter()
        .filter(|r| r["data"]["topic"] == "kernel.job.tick")
        .collect();
    let minutes: BTreeSet<i64> = ticks_after
        .iter()
        .map(|r| r["data"]["payload"]["scheduled_for"].as_i64().unwrap())
        .collect();
    assert_eq!(
        minutes.len(),
        ticks_after.len(),
        "a minute ran twice: {ticks_after:?}"
    );
    assert!(ticks_after.len() >= ticks.len());
    for r in &ticks_after {
        assert_eq!(r["data"]["times"], 1, "{r}");
        assert_eq!(r["data"]["source"], "kernel");
    }
    stream_contents(&stream, true);
}

fn nats_url() -> String {
    std::env::var("TIANSHAN_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// What the JetStream stream `name` holds: its message count and every
/// message's `Nats-Msg-Id` (the event id). Deletes the stream when `drop`.
fn stream_contents(name: &str, drop: bool) -> (u64, BTreeSet<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = nats_url();
        let client = async_nats::connect(&url).await.unwrap_or_else(|e| {
            panic!("NATS with JetStream at {url} is needed for this test: {e}")
        });
        let context = async_nats::jetstream::new(client);
        let mut stream = context
            .get_stream(name)
            .await
            .unwrap_or_else(|e| panic!("stream {name}: {e}"));
        let state = stream.info().await.unwrap().state.clone();
        let mut ids = BTreeSet::new();
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(message) = stream.get_raw_message(seq).await
                && let Some(id) = message.headers.get("Nats-Msg-Id")
            {
                ids.insert(id.to_string());
            }
        }
        if drop {
            context.delete_stream(name).await.unwrap();
        }
        (state.messages, ids)
    })
}

/// With NATS, events cross nodes through a JetStream stream: the stream
/// holds each published event once (by its id), the nodes take them from
/// the shared consumer, and each is handled exactly once. A node whose NATS
/// is down delivers by polling the database instead.
#[test]
fn events_cross_nodes_through_jetstream() {
    if !support::have(support::Service::Postgres) || !support::have(support::Service::Nats) {
        return;
    }
    let db = PgDatabase::create();
    let tmp = tempfile::tempdir().unwrap();
    let stream = format!("TS_TEST_{}", rand_suffix().to_uppercase());
    let config = tmp.path().join("test.toml");
    std::fs::write(
        &config,
        format!(
            "[events]\nmax-attempts = 3\nretry-base-ms = 100\nstream = \"{stream}\"\n\
             stream-max-age-secs = 3600\n\n[files]\nbackend = \"database\"\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let nats = nats_url();
    let args = |node: &str, nats: &str| {
        vec![
            "--config".to_string(),
            config.clone(),
            "--database-url".to_string(),
            db.url.clone(),
            "--node-id".to_string(),
            node.to_string(),
            "--nats-url".to_string(),
            nats.to_string(),
        ]
    };
    let start = |dir: &str, args: Vec<String>| {
        TestKernel::start_in(
            &tmp.path().join(dir),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let a = start("a", args("node-a", &nats));
    let b = start("b", args("node-b", &nats));
    a.install_ok("notes");
    ok(
        &a,
        "PUT",
        "/api/v1/plugins/notes/subscriptions",
        json!({"topics": ["notes.*"]}),
        200,
    );
    eventually("the plugin on node B", Duration::from_secs(15), || {
        (b.get(&format!("{NOTES}/notes")).0 == 200).then_some(())
    });
    let metric = |k: &TestKernel, name: &str| {
        crate::support::metric_value(&k.metrics(), name).unwrap_or(0.0)
    };
    for k in [&a, &b] {
        eventually(
            "the node's JetStream consumer",
            Duration::from_secs(20),
            || (metric(k, "tianshan_events_stream_live") == 1.0).then_some(()),
        );
    }

    // Published on both nodes, keyed (notes.created is keyed by the note).
    let mut notes = Vec::new();
    for i in 0..12 {
        let node = if i % 3 == 0 { &b } else { &a };
        let out = created(
            node,
            None,
            json!({"title": format!("streamed {i}"), "topic": "js"}),
        );
        notes.push(out["id"].as_str().unwrap().to_string());
    }
    let records = eventually(
        "all streamed events handled",
        Duration::from_secs(30),
        || {
            let records: Vec<Value> = inbox(&a)
                .into_iter()
                .filter(|r| r["data"]["topic"] == "notes.created")
                .collect();
            (records.len() >= notes.len()).then_some(records)
        },
    );
    assert_eq!(records.len(), notes.len(), "{records:?}");
    for r in &records {
        assert_eq!(r["data"]["times"], 1, "handled twice: {r}");
    }
    let event_ids: BTreeSet<String> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();

    // The stream holds every one of them, once (the job's tick events may
    // be there too).
    let (count, in_stream) = stream_contents(&stream, false);
    let missing: Vec<&String> = event_ids.difference(&in_stream).collect();
    assert!(missing.is_empty(), "not in the stream: {missing:?}");
    assert_eq!(
        count as usize,
        in_stream.len(),
        "an event was streamed twice"
    );
    // …and the nodes took them from it: the relays published at least
    // these, and the consumers received them (the poller holds back while
    // the stream is live).
    let published =
        metric(&a, "tianshan_events_streamed_total") + metric(&b, "tianshan_events_streamed_total");
    let received = metric(&a, "tianshan_events_stream_received_total")
        + metric(&b, "tianshan_events_stream_received_total");
    assert!(published >= notes.len() as f64, "published {published}");
    assert!(received >= notes.len() as f64, "received {received}");

    // A third node whose NATS is unreachable still delivers, by polling.
    drop((a, b));
    let c = start("c", args("node-c", "nats://127.0.0.1:1"));
    assert_eq!(metric(&c, "tianshan_events_stream_live"), 0.0);
    let out = created(&c, None, json!({"title": "no NATS", "topic": "js"}));
    let id = out["id"].as_str().unwrap().to_string();
    eventually("delivery without NATS", Duration::from_secs(20), || {
        inbox(&c)
            .into_iter()
            .find(|r| r["data"]["payload"]["id"] == id.as_str())
    });
    stream_contents(&stream, true);
}

/// SIGKILL during a stream of acknowledged writes loses none of them, nor
/// their audit records.
fn crash_during_writes(database: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut args = vec![];
    if let Some(url) = database {
        args.extend(["--database-url", url]);
    }
    let k = TestKernel::start_in(&data, &args);
    k.install_ok("notes");
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let base = k.base.clone();
            let token = k.token.clone();
            let acked = acked.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let agent = crate::support::agent();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let body = json!({"title": format!("w{w}-{i}"), "publish": false});
                    let result = agent
                        .post(format!("{base}{NOTES}/notes"))
                        .header("Authorization", format!("Bearer {token}"))
                        .send(body.to_string());
                    match result {
                        Ok(mut r) if r.status() == 201 => {
                            let v: Value = r.body_mut().read_json().unwrap();
                            acked
                                .lock()
                                .unwrap()
                                .push(v["id"].as_str().unwrap().to_string());
                        }
                        // The kernel died mid-request: not acknowledged.
                        _ => break,
                    }
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = k.pid();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    drop(k);
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 10,
        "too few writes before the kill: {}",
        acked.len()
    );

    let k = TestKernel::start_in(&data, &args);
    let mut stored = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let page = ok(
            &k,
            "GET",
            &format!("{NOTES}/notes?limit=1000{cursor}"),
            Value::Null,
            200,
        );
        for r in page["records"].as_array().unwrap() {
            stored.insert(r["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    let mut audited = BTreeSet::new();
    let mut before = String::new();
    loop {
        // Pages of 200: a body read that fails shows here with its size
        // instead of as an empty page (it happened once under heavy load).
        let path = format!("/api/v1/audit?action=storage.insert&limit=200{before}");
        let (status, bytes, _) = k.raw("GET", &path, None, None, &[]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        let audit: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "GET {path}: {e} in a {}-byte body: {}",
                bytes.len(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            )
        });
        for r in audit["records"].as_array().unwrap() {
            if let Some(id) = r["target"]
                .as_str()
                .and_then(|t| t.strip_prefix("notes/notes/"))
            {
                audited.insert(id.to_string());
            }
        }
        match audit["next_before"].as_i64() {
            Some(seq) => before = format!("&before={seq}"),
            None => break,
        }
    }
    let unaudited: Vec<&String> = acked.iter().filter(|id| !audited.contains(*id)).collect();
    assert!(unaudited.is_empty(), "written without audit: {unaudited:?}");
}

#[test]
fn a_crash_loses_no_acknowledged_write_on_sqlite() {
    crash_during_writes(None);
}

#[test]
fn a_crash_loses_no_acknowledged_write_on_postgres() {
    if !support::have(support::Service::Postgres) {
        return;
    }
    let db = PgDatabase::create();
    crash_during_writes(Some(&db.url));
}
