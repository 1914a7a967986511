//! Storage benchmark: get by id, an indexed query, an insert and a bulk
//! insert, each done through a plugin (the `notes` test plugin calling the storage host
//! interface) and directly with sqlx, on SQLite and PostgreSQL, in one run.
//!
//! Run: `cargo bench -p tianshan-kernel --bench storage`
//! (env `BENCH_OPS` gets per measurement, default 20,000, so that every
//! measurement lasts from 0.2 s to a few seconds; queries are a quarter of
//! it, inserts an eighth, bulk inserts half;
//! `TIANSHAN_TEST_POSTGRES` the server's admin URL, default
//! postgres://postgres@127.0.0.1:5432/postgres; `BENCH_INSTR=0` skips the
//! instruction counts, which need valgrind). `cargo test` runs it in its
//! short mode (see `common::short_mode`).
//!
//! Instructions per get (callgrind, SQLite, in-process): the plugin's
//! `/bench/get` doing N gets in one request against N direct sqlx gets, in
//! the RESULT line as `plugin_instr_per_req` and `native_instr_per_req`.
//!
//! "Through the plugin" is one plugin request that performs N operations
//! with the storage host calls, so the figure is the cost of the host
//! interface (validation, scope, SQL building, the component boundary),
//! not of HTTP and instantiation, which the gateway benchmark measures.
//! A plugin insert also writes the record's history row and its audit
//! record in the same transaction; the direct insert writes the row only.
//! A bulk insert through the plugin is `transact` with 500 inserts a call,
//! which the kernel writes in bulk (history and audit included); direct, it
//! is one transaction of single-row inserts.

mod common;

use std::sync::Arc;
use std::time::Instant;

use sqlx::Connection;
use tianshan_kernel::Kernel;
use tianshan_kernel::core::config::Config;
use tianshan_kernel::plugins::tooling;

use common::instructions;

const TOPICS: usize = 50;

/// Records seeded per database: 20,000, or 1,000 in the short mode (a page
/// of 20 per topic still fills).
fn seed_records() -> usize {
    common::env_or("BENCH_SEED", 20_000, 1_000)
}

struct Figures {
    /// A seeded record's id, for the instruction counts.
    some_id: String,
    get_plugin: f64,
    get_direct: f64,
    query_plugin: f64,
    query_direct: f64,
    insert_plugin: f64,
    insert_direct: f64,
    /// Records per second written in bulk: through the plugin's
    /// `transact` (500 inserts a call) and direct, in one transaction.
    bulk_plugin: f64,
    bulk_direct: f64,
    /// Each round's plugin/direct ratio for get, query, insert and bulk
    /// insert: how far
    /// one round is from another says how much the best-of figure means.
    rounds: Vec<[f64; 4]>,
}

fn ops_per_sec(ops: usize, started: Instant) -> f64 {
    ops as f64 / started.elapsed().as_secs_f64()
}

async fn call(kernel: &Kernel, method: &str, path: &str, query: String) -> serde_json::Value {
    let response = common::call_plugin(kernel, "notes", method, path, query, None)
        .await
        .expect("plugin call");
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    serde_json::from_slice(&response.body).unwrap()
}

/// Seeds records straight into the table (fast), spread over topics.
async fn seed(kernel: &Kernel, postgres: bool) -> anyhow::Result<String> {
    let mut tx = kernel.db.begin().await?;
    let json = if postgres { "$5::jsonb" } else { "$5" };
    let sql = format!(
        "INSERT INTO records (plugin_id, collection, id, org_id, revision, data, created_at, updated_at)
         VALUES ('notes', 'notes', $1, $2, 1, {json}, $3, $4)"
    );
    let mut some_id = String::new();
    let records = seed_records();
    for i in 0..records {
        let id = format!("seed-{i:06}");
        let data = serde_json::json!({
            "title": format!("Seeded note {i}"),
            "topic": format!("topic-{}", i % TOPICS),
            "priority": i % 100,
        });
        sqlx::query(&sql)
            .bind(&id)
            .bind(&kernel.root_org)
            .bind(0i64)
            .bind(0i64)
            .bind(data.to_string())
            .execute(&mut *tx)
            .await?;
        if i == records / 2 {
            some_id = id;
        }
    }
    tx.commit().await?;
    if postgres {
        // The seed bypasses the kernel, whose bulk writes analyse `records`
        // when they have added many rows (Storage::bulk_inserted). Without
        // statistics PostgreSQL may serve a get by id by filtering the
        // whole collection: 160–500 gets/s instead of 25,000.
        sqlx::raw_sql("ANALYZE records").execute(&kernel.db).await?;
    }
    Ok(some_id)
}

async fn measure(kernel: Arc<Kernel>, url: &str, ops: usize) -> anyhow::Result<Figures> {
    let postgres = url.starts_with("postgres");
    let id = seed(&kernel, postgres).await?;
    let data_col = if postgres { "data::text" } else { "data" };
    let get_sql = get_sql(postgres);
    let topic_expr = if postgres {
        "(data->'topic') = $1::jsonb"
    } else {
        "(data ->> '$.topic') = $1"
    };
    let topic = "topic-7";
    let topic_param = if postgres {
        format!("\"{topic}\"")
    } else {
        topic.to_string()
    };
    let query_sql = format!(
        "SELECT id, org_id, revision, {data_col}, created_at, updated_at FROM records
         WHERE plugin_id = 'notes' AND collection = 'notes' AND {topic_expr} ORDER BY id LIMIT 20"
    );
    let insert_sql = format!(
        "INSERT INTO records (plugin_id, collection, id, org_id, revision, data, created_at, updated_at)
         VALUES ('notes', 'notes', $1, $2, 1, {}, 0, 0)",
        if postgres { "$3::jsonb" } else { "$3" }
    );

    // Warm both paths (compiled code, prepared statements, caches).
    call(&kernel, "GET", "/bench/get", format!("id={id}&n=50")).await;

    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let mut figures = Figures {
        some_id: id.clone(),
        get_plugin: 0.0,
        get_direct: 0.0,
        query_plugin: 0.0,
        query_direct: 0.0,
        insert_plugin: 0.0,
        insert_direct: 0.0,
        bulk_plugin: 0.0,
        bulk_direct: 0.0,
        rounds: Vec::new(),
    };
    // Alternate plugin and direct three times and keep the best of each:
    // this machine is noisy, and the ratio is what we compare.
    let rounds = if common::short_mode() { 1 } else { 3 };
    for _ in 0..rounds {
        let started = Instant::now();
        let out = call(&kernel, "GET", "/bench/get", format!("id={id}&n={ops}")).await;
        assert_eq!(out["found"], ops);
        let get_plugin = ops_per_sec(ops, started);
        figures.get_plugin = figures.get_plugin.max(get_plugin);

        let started = Instant::now();
        for _ in 0..ops {
            // fetch_all: see Storage::get for why not fetch_optional.
            let rows = sqlx::query(&get_sql).bind(&id).fetch_all(&mut conn).await?;
            assert_eq!(rows.len(), 1);
        }
        let get_direct = ops_per_sec(ops, started);
        figures.get_direct = figures.get_direct.max(get_direct);

        let query_ops = ops / 4;
        let started = Instant::now();
        let out = call(
            &kernel,
            "GET",
            "/bench/query",
            format!("topic={topic}&n={query_ops}"),
        )
        .await;
        assert_eq!(out["rows"], query_ops * 20);
        let query_plugin = ops_per_sec(query_ops, started);
        figures.query_plugin = figures.query_plugin.max(query_plugin);

        let started = Instant::now();
        for _ in 0..query_ops {
            let rows = sqlx::query(&query_sql)
                .bind(&topic_param)
                .fetch_all(&mut conn)
                .await?;
            assert_eq!(rows.len(), 20);
        }
        let query_direct = ops_per_sec(query_ops, started);
        figures.query_direct = figures.query_direct.max(query_direct);

        let insert_ops = ops / 8;
        let started = Instant::now();
        call(&kernel, "POST", "/bench/insert", format!("n={insert_ops}")).await;
        let insert_plugin = ops_per_sec(insert_ops, started);
        figures.insert_plugin = figures.insert_plugin.max(insert_plugin);

        let started = Instant::now();
        direct_inserts(
            &mut conn,
            &insert_sql,
            &kernel.root_org,
            insert_ops,
            "direct",
        )
        .await?;
        let insert_direct = ops_per_sec(insert_ops, started);
        figures.insert_direct = figures.insert_direct.max(insert_direct);

        let bulk_ops = ops / 2;
        let started = Instant::now();
        let out = call(
            &kernel,
            "POST",
            "/bench/insert-bulk",
            format!("n={bulk_ops}"),
        )
        .await;
        assert_eq!(out["inserted"], bulk_ops);
        let bulk_plugin = ops_per_sec(bulk_ops, started);
        figures.bulk_plugin = figures.bulk_plugin.max(bulk_plugin);

        let started = Instant::now();
        let mut tx = conn.begin().await?;
        direct_inserts(&mut tx, &insert_sql, &kernel.root_org, bulk_ops, "bulk").await?;
        tx.commit().await?;
        let bulk_direct = ops_per_sec(bulk_ops, started);
        figures.bulk_direct = figures.bulk_direct.max(bulk_direct);
        figures.rounds.push([
            get_plugin / get_direct,
            query_plugin / query_direct,
            insert_plugin / insert_direct,
            bulk_plugin / bulk_direct,
        ]);
    }
    Ok(figures)
}

/// `n` single-row inserts of bench notes titled `label i`, each its own
/// statement on `conn` (in autocommit, or inside the caller's transaction).
async fn direct_inserts(
    conn: &mut sqlx::AnyConnection,
    insert_sql: &str,
    org: &str,
    n: usize,
    label: &str,
) -> anyhow::Result<()> {
    for i in 0..n {
        let id = tianshan_kernel::core::ids::new_record_id();
        let data =
            serde_json::json!({"title": format!("{label} {i}"), "topic": label, "priority": i});
        sqlx::query(insert_sql)
            .bind(&id)
            .bind(org)
            .bind(data.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn get_sql(postgres: bool) -> String {
    let data_col = if postgres { "data::text" } else { "data" };
    format!(
        "SELECT id, org_id, revision, {data_col}, created_at, updated_at FROM records
         WHERE plugin_id = 'notes' AND collection = 'notes' AND id = $1"
    )
}

/// The callgrind child (see `common::instructions`), on the SQLite data dir
/// the parent installed `notes` into and seeded: `plugin` is one request
/// doing the gets through the storage host calls, `native` the same gets
/// with sqlx on one connection.
fn instructions_child(role: &str) -> anyhow::Result<()> {
    let ops = instructions::child_ops();
    let data_dir: std::path::PathBuf = std::env::var("BENCH_INSTR_DATA")?.into();
    let id = std::env::var("BENCH_INSTR_ID")?;
    let url = format!("sqlite://{}", data_dir.join("bench.db").display());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    sqlx::any::install_default_drivers();
    runtime.block_on(async move {
        if role == "native" {
            let mut conn = sqlx::AnyConnection::connect(&url).await?;
            let sql = get_sql(false);
            let mut get = async || -> anyhow::Result<()> {
                let rows = sqlx::query(&sql).bind(&id).fetch_all(&mut conn).await?;
                anyhow::ensure!(rows.len() == 1, "no record {id}");
                Ok(())
            };
            for _ in 0..50 {
                get().await?;
            }
            let window = instructions::Window::open();
            for _ in 0..ops {
                get().await?;
            }
            window.close();
            return anyhow::Ok(());
        }
        let mut config = Config {
            data_dir: data_dir.join("lite"),
            database_url: Some(url.clone()),
            ..Config::default()
        };
        config.runtime.max_concurrent_instances = instructions::pool_slots();
        let kernel = Kernel::open(config).await?.kernel;
        call(&kernel, "GET", "/bench/get", format!("id={id}&n=50")).await;
        let window = instructions::Window::open();
        let out = call(&kernel, "GET", "/bench/get", format!("id={id}&n={ops}")).await;
        window.close();
        anyhow::ensure!(out["found"] == ops, "{out}");
        anyhow::Ok(())
    })
}

/// What PostgreSQL itself serves on one connection: `pgbench -S -M
/// prepared -c 1` for 5 s against its own small table in the bench's
/// database (0 when pgbench is not installed).
fn pgbench_select_per_s(url: &str) -> f64 {
    let run = |args: &[&str]| {
        std::process::Command::new("pgbench")
            .args(args)
            .arg(url)
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    if run(&["-i", "-s", "1", "-q"]).is_none() {
        eprintln!("pgbench is not installed (or failed): no server figure");
        return 0.0;
    }
    let Some(out) = run(&["-S", "-M", "prepared", "-c", "1", "-T", "5", "-n"]) else {
        return 0.0;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn print(name: &str, f: &Figures) {
    println!("{name}:");
    for (i, (op, plugin, direct)) in [
        ("get by id", f.get_plugin, f.get_direct),
        ("indexed query (page of 20)", f.query_plugin, f.query_direct),
        ("insert", f.insert_plugin, f.insert_direct),
        ("bulk insert (records/s)", f.bulk_plugin, f.bulk_direct),
    ]
    .into_iter()
    .enumerate()
    {
        let low = f.rounds.iter().map(|r| r[i]).fold(f64::INFINITY, f64::min);
        let high = f.rounds.iter().map(|r| r[i]).fold(0.0, f64::max);
        println!(
            "  {op:<28} plugin {plugin:>9.0} ops/s   direct {direct:>9.0} ops/s   ratio {:.2} (rounds {low:.2}–{high:.2})",
            plugin / direct
        );
    }
}

fn main() -> anyhow::Result<()> {
    if let Some(role) = instructions::child_role() {
        return instructions_child(&role);
    }
    let ops: usize = common::env_or("BENCH_OPS", 20_000, 200);
    let admin = std::env::var("TIANSHAN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    if !common::service_ready("PostgreSQL", &admin, 5432) {
        return Ok(());
    }
    let count_instructions = instructions::wanted();
    eprintln!("building the notes test plugin…");
    let plugins = tooling::bundled_plugins("tests/plugins")?
        .into_iter()
        .filter(|p| p.crate_name == "tianshan-test-notes")
        .collect::<Vec<_>>();
    let out = tempfile::tempdir()?;
    let package = tooling::build_and_pack_bundled(&plugins, out.path(), true)?
        .pop()
        .expect("notes package");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    sqlx::any::install_default_drivers();
    runtime.block_on(async move {
        let name = format!("tianshan_bench_{}", std::process::id());
        let mut admin_conn = sqlx::AnyConnection::connect(&admin).await?;
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin_conn)
            .await?;
        let pg_url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);

        let mut results = Vec::new();
        let data = tempfile::tempdir()?;
        for url in [
            format!("sqlite://{}", data.path().join("bench.db").display()),
            pg_url.clone(),
        ] {
            let config = Config {
                data_dir: data.path().join(if url.starts_with("postgres") { "pg" } else { "lite" }),
                database_url: Some(url.clone()),
                ..Config::default()
            };
            let kernel = Kernel::open(config).await?.kernel;
            kernel
                .plugins
                .install(&std::fs::read(&package)?, None)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            let figures = measure(kernel, &url, ops).await?;
            results.push(figures);
        }
        // The short mode only proves the bench still runs.
        let pgbench = if common::short_mode() { 0.0 } else { pgbench_select_per_s(&pg_url) };
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin_conn)
            .await?;

        println!("Storage through a plugin vs direct sqlx, {ops} gets per measurement, {} records, best of {}", seed_records(), results[0].rounds.len());
        print("SQLite", &results[0]);
        print("PostgreSQL", &results[1]);
        println!(
            "pgbench -S -M prepared -c 1 on the same server: {pgbench:.0} selects/s; direct get by id {:.0}/s ({:.2} of it)",
            results[1].get_direct,
            results[1].get_direct / pgbench
        );
        let mut result = format!(
            "RESULT get_ratio_sqlite={:.2} get_ratio_postgres={:.2} insert_ratio_sqlite={:.2} pg_get_per_s={:.0} pgbench_select_per_s={pgbench:.0}",
            results[0].get_plugin / results[0].get_direct,
            results[1].get_plugin / results[1].get_direct,
            results[0].insert_plugin / results[0].insert_direct,
            results[1].get_direct,
        );
        result += &format!(
            " bulk_insert_sqlite_per_s={:.0} bulk_insert_postgres_per_s={:.0}",
            results[0].bulk_plugin, results[1].bulk_plugin
        );
        if count_instructions {
            let ops = common::env_or("BENCH_INSTR_OPS", 2_000, 2_000);
            eprintln!("counting instructions under callgrind ({ops} gets each)…");
            let env = [
                ("BENCH_INSTR_DATA", data.path().display().to_string()),
                ("BENCH_INSTR_ID", results[0].some_id.clone()),
            ];
            let plugin = instructions::per_operation("plugin", ops, &env)?;
            let native = instructions::per_operation("native", ops, &env)?;
            println!(
                "SQLite get by id, instructions per get in-process (callgrind): plugin {plugin:.0}   direct {native:.0}   ratio {:.2}",
                plugin / native
            );
            result += &format!(" plugin_instr_per_req={plugin:.0} native_instr_per_req={native:.0}");
        }
        println!("{result}");
        anyhow::Ok(())
    })
}
