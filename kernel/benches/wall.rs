//! LED-wall benchmark (docs/wall.md), on SQLite, in one run:
//! - the region overview (`GET /api/v1/datacenter/overview`, every plan
//!   indicator's progress, rankings and trends, up to six monthly trends)
//!   over the demo tree (127 orgs) with six years of the plan's yearly
//!   values and five years of monthly values of six indicators at every
//!   org → p50 in ms;
//! - the wall in headless Chromium at 3840×1080: from navigation until
//!   every panel has drawn its data (the page's own clock) → ms;
//! - the wall left running under a sped-up update stream (a published
//!   value every 250 ms, where a real wall sees a few an hour; each one
//!   makes the wall read the overview again and redraw): the JS heap
//!   after a forced collection, sampled every 10 s, its least-squares
//!   slope → MB per hour of running.
//!
//! Run: `cargo bench -p tianshan-kernel --bench wall` (env `BENCH_RUNS`
//! overview requests, default 30; `BENCH_WALL_SECS` seconds of the update
//! stream, default 600; `BENCH_UPDATE_MS`, default 250). Needs Debian's
//! `chromium` and `chromium-driver`. `cargo test` runs it in its short
//! mode (see `common::short_mode`): one year of monthly values, a few
//! seconds of updates, and no browser part when Chromium is missing
//! (unless CI=true).

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tianshan_kernel::Kernel;
use tianshan_kernel::core::config::Config;
use tianshan_kernel::identity::orgs;
use tianshan_kernel::services::datacenter::{
    Aggregation, Definition, Granularity, Point, Sharing, plan_codes,
};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Monthly indicators the bench defines: the overview draws up to six.
const MONTHLY: usize = 6;
/// The plan indicator the update stream changes (a stock: the region's
/// figure is the sum of the latest year at each org).
const UPDATED: &str = "plan.nev_count";

fn main() -> anyhow::Result<()> {
    let runs: usize = common::env_or("BENCH_RUNS", 30, 2);
    let stream_secs: u64 = common::env_or("BENCH_WALL_SECS", 600, 4);
    let update_ms: u64 = common::env_or("BENCH_UPDATE_MS", 250, 250);
    let months: usize = if common::short_mode() { 12 } else { 60 };
    let browser_wanted = {
        let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
        let required = !common::short_mode() || std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            present || !required,
            "the wall benchmark needs {CHROMIUM} and {CHROMEDRIVER} \
             (apt-get install chromium chromium-driver)"
        );
        present
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let data = tempfile::tempdir()?;
        let opened = Kernel::open(Config {
            data_dir: data.path().to_path_buf(),
            ..Config::default()
        })
        .await?;
        let kernel = opened.kernel;
        let admin_password = opened
            .generated_admin_password
            .or_else(|| std::env::var("TIANSHAN_ADMIN_PASSWORD").ok())
            .expect("the admin password: generated, or from TIANSHAN_ADMIN_PASSWORD");
        orgs::seed_demo_tree(&kernel.db).await?;
        kernel.authz.reload().await?;

        let started = Instant::now();
        let (org_ids, county, values) = seed(&kernel, months).await?;
        eprintln!(
            "seeded {values} values at {} orgs in {:.1} s",
            org_ids.len(),
            started.elapsed().as_secs_f64()
        );

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let router = kernel.router();
        tokio::spawn(async move { axum::serve(listener, router).await });

        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        );
        let (overview_ms, token) = {
            let (agent, base) = (agent.clone(), base.clone());
            tokio::task::spawn_blocking(move || -> anyhow::Result<(f64, String)> {
                let token = common::login(&agent, &base, "admin", &admin_password)?;
                let mut times = Vec::with_capacity(runs);
                for i in 0..runs + 3 {
                    let started = Instant::now();
                    let mut response = agent
                        .get(format!("{base}/api/v1/datacenter/overview"))
                        .header("Authorization", format!("Bearer {token}"))
                        .call()?;
                    let body: Value = response.body_mut().read_json()?;
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    anyhow::ensure!(response.status() == 200, "overview: {body}");
                    if i == 0 {
                        check_overview(&body)?;
                    }
                    if i >= 3 {
                        times.push(ms);
                    }
                }
                Ok((common::median(times), token))
            })
            .await??
        };
        eprintln!("region overview p50 {overview_ms:.1} ms");

        if !browser_wanted {
            eprintln!("skipping the wall in Chromium: {CHROMIUM} or {CHROMEDRIVER} is missing");
            println!("RESULT overview_p50_ms={overview_ms:.1}");
            return anyhow::Ok(());
        }

        // The sped-up update stream: one value every `update_ms` at one
        // county, as the vehicles system would publish its NEV count.
        let published = Arc::new(AtomicU64::new(0));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let updates = {
            let (kernel, published) = (kernel.clone(), published.clone());
            let indicator = kernel
                .datacenter
                .get(UPDATED)
                .await?
                .expect("the plan's NEV count");
            let root = kernel.root_org.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(update_ms));
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stopped.changed() => return,
                    }
                    let n = published.load(Ordering::Relaxed) + 1;
                    let point = Point {
                        org: county.clone(),
                        period: "2025".into(),
                        value: n as f64,
                    };
                    if let Err(e) = kernel
                        .datacenter
                        .publish(&indicator, "vehicles", "bench", &root, &[point])
                        .await
                    {
                        eprintln!("publishing an update: {e}");
                        return;
                    }
                    published.store(n, Ordering::Relaxed);
                }
            })
        };

        let figures = {
            let base = base.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<(f64, f64, f64)> {
                let browser = Browser::start()?;
                browser.sign_in(&base, &token)?;
                let mut renders = Vec::new();
                for _ in 0..3 {
                    renders.push(browser.first_render(&base)?);
                }
                eprintln!("wall first render at 3840x1080: {renders:?} ms (cold, then warm)");
                let (growth, nodes_growth) =
                    browser.heap_growth(Duration::from_secs(stream_secs))?;
                Ok((renders[0], growth, nodes_growth))
            })
            .await?
        };
        let _ = stop.send(true);
        updates.await?;
        let (first_render, growth, nodes_growth) = figures?;
        let updates = published.load(Ordering::Relaxed);
        eprintln!(
            "{updates} updates published while the wall ran; heap {growth:+.2} MB/h, DOM nodes {nodes_growth:+.0}/h"
        );
        println!(
            "RESULT overview_p50_ms={overview_ms:.1} wall_first_render_ms={first_render:.0} \
             wall_heap_growth_mb_per_h={growth:.2}"
        );
        anyhow::Ok(())
    })
}

/// Every org of the demo tree gets the plan's yearly values for 2020–2025
/// and `months` of six monthly indicators; returns the org ids, a county
/// the update stream writes to, and how many values were stored.
async fn seed(kernel: &Kernel, months: usize) -> anyhow::Result<(Vec<String>, String, usize)> {
    let mut org_ids = Vec::new();
    let mut county = None;
    fn walk(list: &[orgs::Org], out: &mut Vec<String>, county: &mut Option<String>) {
        for o in list {
            out.push(o.id.clone());
            if o.level == "county" && county.is_none() {
                *county = Some(o.id.clone());
            }
            walk(&o.children, out, county);
        }
    }
    walk(&orgs::tree(&kernel.db).await?, &mut org_ids, &mut county);
    let county = county.expect("a county in the demo tree");
    let mut stored = 0;
    for (p, code) in plan_codes().enumerate() {
        let points = org_ids
            .iter()
            .enumerate()
            .flat_map(|(o, org)| {
                (2020..=2025).map(move |year| Point {
                    org: org.clone(),
                    period: year.to_string(),
                    value: ((o * 7 + p * 13) % 90) as f64 + (2025 - year) as f64 + 5.0,
                })
            })
            .collect();
        stored += publish(kernel, code, points).await?;
    }
    for m in 0..MONTHLY {
        let code = format!("bench.monthly_{m}");
        kernel
            .datacenter
            .define(
                "bench",
                "bench",
                Definition {
                    code: code.clone(),
                    name_zh: format!("月度指标{m}"),
                    name_en: format!("Monthly indicator {m}"),
                    unit: "kWh".into(),
                    schema: "{}".into(),
                    aggregation: Aggregation::Sum,
                    granularity: Granularity::Month,
                    sharing: Sharing::Shared,
                },
            )
            .await?;
        let first_year = 2026 - months.div_ceil(12);
        let points = org_ids
            .iter()
            .enumerate()
            .flat_map(|(o, org)| {
                (0..months).map(move |i| Point {
                    org: org.clone(),
                    period: format!("{}-{:02}", first_year + i / 12, i % 12 + 1),
                    value: ((o + i + m) % 50) as f64 * 100.0,
                })
            })
            .collect();
        stored += publish(kernel, &code, points).await?;
    }
    Ok((org_ids, county, stored))
}

/// Stores `points` of `code` as a system would, a thousand at a time.
async fn publish(kernel: &Kernel, code: &str, points: Vec<Point>) -> anyhow::Result<usize> {
    let indicator = kernel
        .datacenter
        .get(code)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no indicator {code}"))?;
    let mut stored = 0;
    for chunk in points.chunks(1000) {
        stored += kernel
            .datacenter
            .publish(&indicator, "bench", "bench", &kernel.root_org, chunk)
            .await? as usize;
    }
    Ok(stored)
}

/// The answer the wall draws from has every part filled.
fn check_overview(body: &Value) -> anyhow::Result<()> {
    let plan = plan_codes().count();
    let len = |key: &str| body[key].as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        len("progress") == plan && len("rankings") == plan && len("children") == 15,
        "the overview lacks parts: {} progress, {} rankings, {} children",
        len("progress"),
        len("rankings"),
        len("children")
    );
    anyhow::ensure!(
        len("trends") == plan + MONTHLY,
        "{} trends, wanted {}",
        len("trends"),
        plan + MONTHLY
    );
    Ok(())
}

/// A headless Chromium behind chromedriver, spoken to over WebDriver, with
/// DevTools commands for the heap.
struct Browser {
    driver: Child,
    url: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    fn start() -> anyhow::Result<Browser> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut browser = Browser {
            driver,
            url: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            agent: ureq::Agent::new_with_config(
                ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build(),
            ),
            _profile: tempfile::tempdir()?,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while browser
            .agent
            .get(format!("{}/status", browser.url))
            .call()
            .is_err()
        {
            anyhow::ensure!(Instant::now() < deadline, "chromedriver not ready in 20 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = format!("--user-data-dir={}", browser._profile.path().display());
        let created = browser.call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--no-first-run",
                             "--disable-background-networking", "--window-size=3840,1080",
                             profile],
                },
            }}})),
        )?;
        browser.session = created["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no session in {created}"))?
            .to_string();
        // A wall at exactly 3840×1080 CSS pixels, whatever the window's
        // frame takes.
        browser.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 3840, "height": 1080, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        Ok(browser)
    }

    /// One WebDriver command under the session (`path` after
    /// `/session/{id}`, or the whole path before there is one); its
    /// `value`, or the WebDriver error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let path = if self.session.is_empty() {
            path.to_string()
        } else {
            format!("/session/{}{path}", self.session)
        };
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("Content-Type", "application/json")
            .body(body.map(|b| b.to_string()).unwrap_or_default())?;
        let mut response = self.agent.run(request)?;
        let status = response.status().as_u16();
        let mut answer: Value = response.body_mut().read_json()?;
        anyhow::ensure!(status == 200, "WebDriver {method} {path}: {answer}");
        Ok(answer["value"].take())
    }

    fn cdp(&self, cmd: &str, params: Value) -> anyhow::Result<Value> {
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
    }

    fn script(&self, script: &str) -> anyhow::Result<Value> {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The session cookie the portal's sign-in would set.
    fn sign_in(&self, base: &str, token: &str) -> anyhow::Result<()> {
        self.call(
            "POST",
            "/url",
            Some(json!({"url": format!("{base}/healthz")})),
        )?;
        self.call(
            "POST",
            "/cookie",
            Some(
                json!({"cookie": {"name": "tianshan_session", "value": token,
                                   "path": "/", "httpOnly": true}}),
            ),
        )?;
        Ok(())
    }

    /// Loads the wall and waits until every panel is drawn with data; the
    /// ms from navigation start the page took.
    fn first_render(&self, base: &str) -> anyhow::Result<f64> {
        self.call(
            "POST",
            "/url",
            Some(json!({"url": format!("{base}/wall/?rotate=0")})),
        )?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self.script(
                "var ps = Array.from(document.querySelectorAll('.panel'));\
                 return ps.length >= 6 && ps.every(function (p) { return p.dataset.ready === 'true'; })\
                   ? performance.now() : null",
            )?;
            if let Some(ms) = ready.as_f64() {
                return Ok(ms);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the wall's panels were not ready within 30 s: {}",
                self.script("return document.body.innerText.slice(0, 1000)")?
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The JS heap after a full collection, in MB, and the DOM's node count.
    fn heap(&self) -> anyhow::Result<(f64, f64)> {
        self.cdp("HeapProfiler.collectGarbage", json!({}))?;
        let heap = self.cdp("Runtime.getHeapUsage", json!({}))?;
        let dom = self.cdp("Memory.getDOMCounters", json!({}))?;
        Ok((
            heap["usedSize"].as_f64().unwrap_or(0.0) / 1e6,
            dom["nodes"].as_f64().unwrap_or(0.0),
        ))
    }

    /// The wall, rotating every 5 s, left to the update stream for `span`:
    /// the heap's and the DOM's growth per hour (least-squares slopes of
    /// samples every 10 s, the first minute's warm-up dropped in the full
    /// run). Checks that the wall kept up: it shows the last update.
    fn heap_growth(&self, span: Duration) -> anyhow::Result<(f64, f64)> {
        let url = self.script("return location.href")?;
        let url = url
            .as_str()
            .unwrap_or_default()
            .replace("rotate=0", "rotate=5");
        self.call("POST", "/url", Some(json!({"url": url})))?;
        let warm_up = if common::short_mode() { 1 } else { 60 };
        std::thread::sleep(Duration::from_secs(warm_up));
        let every = if common::short_mode() { 1 } else { 10 };
        let started = Instant::now();
        let mut samples = Vec::new();
        while started.elapsed() < span {
            let (heap, nodes) = self.heap()?;
            samples.push((started.elapsed().as_secs_f64() / 3600.0, heap, nodes));
            std::thread::sleep(Duration::from_secs(every));
        }
        let (heap, nodes) = self.heap()?;
        samples.push((started.elapsed().as_secs_f64() / 3600.0, heap, nodes));
        eprintln!(
            "heap {:.2} → {:.2} MB, DOM nodes {:.0} → {:.0}, over {} samples",
            samples[0].1,
            heap,
            samples[0].2,
            nodes,
            samples.len()
        );
        // The wall still follows the stream: the region's NEV count it
        // shows moves with the updates.
        let shown = || -> anyhow::Result<Value> {
            self.script(&format!(
                r#"var v = document.querySelector('[data-code="{UPDATED}"] .plan-value');
                   return v && v.getAttribute('data-value')"#
            ))
        };
        let before = shown()?;
        std::thread::sleep(Duration::from_millis(1500));
        let after = shown()?;
        anyhow::ensure!(
            !after.is_null() && before != after,
            "the wall stopped following the updates: {before} then {after}"
        );
        Ok((slope(&samples, |s| s.1), slope(&samples, |s| s.2)))
    }
}

/// The least-squares slope of `y` over the samples' hours.
fn slope(samples: &[(f64, f64, f64)], y: impl Fn(&(f64, f64, f64)) -> f64) -> f64 {
    let n = samples.len() as f64;
    let mean_x = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_y = samples.iter().map(&y).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for s in samples {
        num += (s.0 - mean_x) * (y(s) - mean_y);
        den += (s.0 - mean_x) * (s.0 - mean_x);
    }
    if den == 0.0 { 0.0 } else { num / den }
}
