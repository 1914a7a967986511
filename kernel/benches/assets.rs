//! Assets benchmark: a register of 100,000 cards (the demo generator,
//! over the demo tree's units and counties), then through the gateway as
//! the regional administrator: a filtered page with its total, a text
//! search, and a roll-up by category over the whole region.
//!
//! Run: `cargo bench -p tianshan-kernel --bench assets`
//! (env `BENCH_CARDS`, default 100000; `BENCH_RUNS` requests per figure,
//! default 30; `BENCH_DATA_DIR` to keep the database, and `BENCH_REUSE=1`
//! to measure it again without seeding; `BENCH_DATABASE_URL` to run on
//! another database, e.g. an empty PostgreSQL one). SQLite by default, as
//! the zero-setup default deploys. `cargo test` runs it in its short mode
//! (see `common::short_mode`): 200 cards over 4 units.

mod common;

use std::time::Instant;

use tianshan_kernel::Kernel;
use tianshan_kernel::core::config::Config;
use tianshan_kernel::identity::orgs;
use tianshan_kernel::plugins::tooling;

fn main() -> anyhow::Result<()> {
    let cards: usize = common::env_or("BENCH_CARDS", 100_000, 200);
    let runs: usize = common::env_or("BENCH_RUNS", 30, 2);
    eprintln!("building the assets plugin…");
    let plugins = tooling::bundled_plugins("plugins")?
        .into_iter()
        .filter(|p| p.crate_name == "tianshan-plugin-assets")
        .collect::<Vec<_>>();
    let out = tempfile::tempdir()?;
    let package = tooling::build_and_pack_bundled(&plugins, out.path(), true)?
        .pop()
        .expect("assets package");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // BENCH_DATA_DIR keeps the database for a look at the query plans.
        let data = tempfile::tempdir()?;
        let data_dir = std::env::var("BENCH_DATA_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| data.path().to_path_buf());
        let config = Config {
            data_dir,
            database_url: std::env::var("BENCH_DATABASE_URL").ok(),
            ..Config::default()
        };
        let opened = Kernel::open(config).await?;
        let kernel = opened.kernel;
        let admin_password = opened
            .generated_admin_password
            .or_else(|| std::env::var("TIANSHAN_ADMIN_PASSWORD").ok())
            .expect("the admin password: generated, or from TIANSHAN_ADMIN_PASSWORD");
        orgs::seed_demo_tree(&kernel.db).await?;
        kernel.authz.reload().await?;
        if kernel.plugins.get("assets").is_none() {
            kernel
                .plugins
                .install(&std::fs::read(&package)?, None)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
        }

        // The seed goes straight to the plugin as the kernel, one org per
        // call so each call stays well inside the plugin's deadline.
        let tree = orgs::tree(&kernel.db).await?;
        let mut targets = Vec::new();
        fn walk(list: &[orgs::Org], out: &mut Vec<(String, String)>) {
            for o in list {
                out.push((o.id.clone(), o.level.clone()));
                walk(&o.children, out);
            }
        }
        walk(&tree, &mut targets);
        let units: Vec<String> = targets.iter().filter(|(_, l)| l == "unit").map(|(id, _)| id.clone()).collect();
        let counties: Vec<String> = targets.iter().filter(|(_, l)| l == "county").map(|(id, _)| id.clone()).take(12).collect();
        let mut all: Vec<String> = units.into_iter().chain(counties).collect();
        if common::short_mode() {
            all.truncate(4);
        }
        let per_org = cards.div_ceil(all.len());
        let started = Instant::now();
        // BENCH_REUSE=1 with BENCH_DATA_DIR measures an existing register.
        let reuse = std::env::var("BENCH_REUSE").is_ok_and(|v| v == "1");
        // The plugin seeds at most 20,000 cards an org per call (fresh
        // asset numbers each time), so larger registers take several calls;
        // the count is what it answers it stored, not what was asked for.
        const PER_CALL: usize = 20_000;
        let mut seeded = 0;
        for (i, org) in all.iter().enumerate().filter(|_| !reuse) {
            let mut remaining = per_org;
            while remaining > 0 {
                let n = remaining.min(PER_CALL);
                remaining -= n;
                let body = serde_json::json!({
                    "orgs": [{ "id": org, "level": "unit" }],
                    "per_org": n,
                    "force": true,
                });
                let response =
                    common::call_plugin(&kernel, "assets", "POST", "/demo/seed", String::new(), Some(body))
                        .await?;
                anyhow::ensure!(response.status == 201, "seed answered {}: {}", response.status, String::from_utf8_lossy(&response.body));
                let answer: serde_json::Value = serde_json::from_slice(&response.body)?;
                let stored = answer["seeded"].as_u64().unwrap_or(0) as usize;
                anyhow::ensure!(stored == n, "asked the plugin to seed {n} cards, it stored {stored}");
                seeded += stored;
            }
            eprintln!("seeded org {}/{} ({:.0} s)", i + 1, all.len(), started.elapsed().as_secs_f64());
        }
        let seed_secs = started.elapsed().as_secs_f64();
        eprintln!("{seeded} cards in {seed_secs:.1} s ({:.0} cards/s through the plugin)", seeded as f64 / seed_secs);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = kernel.router();
        tokio::spawn(async move { axum::serve(listener, router).await });

        let figures = tokio::task::spawn_blocking(move || -> anyhow::Result<(f64, f64, f64, u64)> {
            let agent = ureq::Agent::new_with_config(
                ureq::Agent::config_builder().http_status_as_error(false).build(),
            );
            let base = format!("http://{addr}");
            let token = common::login(&agent, &base, "admin", &admin_password)?;
            let time = |path: &str| -> anyhow::Result<f64> {
                let mut times = Vec::with_capacity(runs);
                for i in 0..runs + 3 {
                    let started = Instant::now();
                    let mut response = agent
                        .get(format!("{base}/api/v1/p/assets{path}"))
                        .header("Authorization", format!("Bearer {token}"))
                        .call()?;
                    let body = response.body_mut().read_to_string()?;
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    anyhow::ensure!(response.status() == 200, "{path}: {body}");
                    if i == 0 {
                        eprintln!("{path}: {}", body.chars().take(160).collect::<String>());
                    }
                    if i >= 3 {
                        times.push(ms);
                    }
                }
                Ok(common::median(times))
            };
            let page = time("/cards?category=A020100&use_status=in_use&limit=20")?;
            let search = time("/cards?q=%E7%A9%BA%E8%B0%83&limit=20")?;
            let rollup = time("/reports/totals?by=category")?;
            // The register's size as the plugin reports it: the roll-up's
            // counts over every booked card (a reused register included).
            let totals: serde_json::Value = agent
                .get(format!("{base}/api/v1/p/assets/reports/totals?by=category"))
                .header("Authorization", format!("Bearer {token}"))
                .call()?
                .body_mut()
                .read_json()?;
            let counted = totals["rows"]
                .as_array()
                .map(|rows| rows.iter().filter_map(|r| r["count"].as_f64()).sum::<f64>())
                .unwrap_or(0.0) as u64;
            Ok((page, search, rollup, counted))
        })
        .await??;
        let (page, search, rollup, counted) = figures;
        anyhow::ensure!(
            reuse || counted == seeded as u64,
            "seeded {seeded} cards, the roll-up counts {counted}"
        );
        eprintln!("page p50 {page:.1} ms, search p50 {search:.1} ms, roll-up p50 {rollup:.1} ms over {counted} cards");
        println!("RESULT page_p50_ms={page:.1} search_p50_ms={search:.1} rollup_p50_ms={rollup:.1} cards={counted}");
        anyhow::Ok(())
    })
}
