//! Fairness benchmark: a benign plugin's throughput and latency alone, then
//! with hostile plugins busy-looping beside it (issue 10, item 6: keep
//! ≥ 50 % of the throughput and p99 ≤ 100 ms with 8 loopers running).
//!
//! Run: `cargo bench -p tianshan-kernel --bench fairness`
//! (env `BENCH_SECS` per phase, default 5; `BENCH_CONNECTIONS` benign
//! keep-alive connections, default 8; `BENCH_LOOPERS` hostile calls kept
//! running, default 8). `cargo test` runs it in its short mode (see
//! `common::short_mode`): 1 s phases, 2 loopers.
//!
//! The benign plugin is `hello`'s JSON echo; the hostile one is `looper`,
//! whose `GET /` spins until its 1 s deadline and is re-sent at once.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tianshan_kernel::Kernel;
use tianshan_kernel::core::config::Config;
use tianshan_kernel::plugins::tooling;

const PAYLOAD: &str = r#"{"id":42,"name":"天山","tags":["a","b","c"]}"#;

struct Load {
    rps: f64,
    p99_ms: f64,
}

async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// The benign echo from `connections` keep-alive connections for `secs`.
async fn benign(addr: SocketAddr, connections: usize, secs: f64) -> Load {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let request = Request::post("/api/v1/p/hello/echo")
                    .header("host", "bench")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(PAYLOAD.as_bytes())))
                    .unwrap();
                let started = Instant::now();
                let response = sender.send_request(request).await.unwrap();
                let status = response.status();
                response.into_body().collect().await.unwrap();
                latencies.push(started.elapsed().as_micros() as u64);
                assert!(status.is_success(), "benign call failed: {status}");
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let p99 = all
        .get(((all.len().max(1) - 1) as f64 * 0.99) as usize)
        .copied()
        .unwrap_or(0);
    Load {
        rps: all.len() as f64 / elapsed,
        p99_ms: p99 as f64 / 1000.0,
    }
}

/// Keeps `loopers` looping calls running until `stop`; counts answers.
fn hostile(
    addr: SocketAddr,
    token: Arc<String>,
    loopers: usize,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..loopers)
        .map(|_| {
            let (stop, answered, token) = (stop.clone(), answered.clone(), token.clone());
            tokio::spawn(async move {
                let mut sender = connect(addr).await;
                while !stop.load(Ordering::Relaxed) {
                    let request = Request::get("/api/v1/p/looper/")
                        .header("host", "bench")
                        .header("authorization", format!("Bearer {token}"))
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    let Ok(response) = sender.send_request(request).await else {
                        sender = connect(addr).await;
                        continue;
                    };
                    let status = response.status();
                    let _ = response.into_body().collect().await;
                    // Each looping call ends at its deadline (504).
                    assert_eq!(status.as_u16(), 504, "looper answered {status}");
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let secs: f64 = common::env_or("BENCH_SECS", 5.0, 1.0);
    let connections: usize = common::env_or("BENCH_CONNECTIONS", 8, 2);
    let loopers: usize = common::env_or("BENCH_LOOPERS", 8, 2);
    eprintln!("building the hello and looper test plugins…");
    let plugins = tooling::bundled_plugins("tests/plugins")?
        .into_iter()
        .filter(|p| p.crate_name == "tianshan-test-hello" || p.crate_name == "tianshan-test-looper")
        .collect::<Vec<_>>();
    let out = tempfile::tempdir()?;
    let packages = tooling::build_and_pack_bundled(&plugins, out.path(), true)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Clients on their own runtime and thread, as separate processes would
    // be: the kernel's workers being busy must not slow the client itself.
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let client = client_runtime.handle().clone();
    runtime.block_on(async move {
        let data = tempfile::tempdir()?;
        let config = Config {
            data_dir: data.path().to_path_buf(),
            ..Config::default()
        };
        let opened = Kernel::open(config).await?;
        let kernel = opened.kernel;
        let password = opened
            .generated_admin_password
            .expect("a fresh data dir generates the admin password");
        for package in &packages {
            kernel
                .plugins
                .install(&std::fs::read(package)?, None)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = kernel.router();
        tokio::spawn(async move { axum::serve(listener, router).await });

        // The looper's routes need a caller; the echo is public.
        let login = serde_json::json!({"username": "admin", "password": password});
        let response = connect(addr)
            .await
            .send_request(
                Request::post("/api/v1/auth/login")
                    .header("host", "bench")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(login.to_string())))
                    .unwrap(),
            )
            .await?;
        let body = response.into_body().collect().await?.to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body)?;
        let token = Arc::new(body["token"].as_str().expect("login token").to_string());
        let measure = |secs| {
            let task = client.spawn(benign(addr, connections, secs));
            async move { task.await.expect("benign load") }
        };
        measure(1.0).await; // warm-up
        let alone = measure(secs).await;
        eprintln!(
            "benign alone: {:.0} req/s p99 {:.1} ms",
            alone.rps, alone.p99_ms
        );

        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let hostile_tasks = {
            let _guard = client.enter();
            hostile(addr, token, loopers, stop.clone(), answered.clone())
        };
        // Let every looper get into its loop first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let beside = measure(secs).await;
        stop.store(true, Ordering::Relaxed);
        for task in hostile_tasks {
            let _ = task.await;
        }
        eprintln!(
            "benign beside {loopers} loopers: {:.0} req/s p99 {:.1} ms ({} looper calls ended)",
            beside.rps,
            beside.p99_ms,
            answered.load(Ordering::Relaxed)
        );
        let share = beside.rps / alone.rps.max(1.0);
        println!(
            "fairness benchmark: hello echo from {connections} connections, {secs} s per phase, {loopers} looping calls"
        );
        println!(
            "  alone:          {:>8.0} req/s   p99 {:>6.1} ms",
            alone.rps, alone.p99_ms
        );
        println!(
            "  beside loopers: {:>8.0} req/s   p99 {:>6.1} ms",
            beside.rps, beside.p99_ms
        );
        println!(
            "RESULT benign_share={share:.2} benign_p99_ms={:.0}",
            beside.p99_ms
        );
        anyhow::Ok(())
    })
}
