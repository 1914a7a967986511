//! Gateway benchmark: the same JSON echo as a native axum handler and as a
//! plugin through the gateway, in one run.
//!
//! Run: `cargo bench -p tianshan-kernel --bench gateway`
//! (env `BENCH_SECS` per phase, default 5; `BENCH_CONNECTIONS`, default 32;
//! `BENCH_PREWARM` overrides `runtime.prewarm-instances`, 0 to compare
//! with every request instantiating inline; `BENCH_INSTR=0` skips the
//! instruction counts, which need valgrind). `cargo test` runs it in its
//! short mode (see `common::short_mode`).
//!
//! Phases, each run for native and plugin alternately:
//! - throughput under concurrent load (keep-alive connections) → requests/s
//!   and the plugin/native ratio;
//! - latency on one connection (no queueing) → p50/p99 of both, and the
//!   latency the plugin adds;
//! - instantiation alone (store + instantiate, no call), in-process;
//! - CPU instructions per request, in-process through each router (the
//!   kernel's whole gateway for the plugin, axum for native), counted by
//!   callgrind: the figure a noisy machine cannot move.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tower::ServiceExt;

use common::instructions;
use tianshan_kernel::Kernel;
use tianshan_kernel::core::config::Config;
use tianshan_kernel::plugins::tooling;

const PAYLOAD: &str =
    r#"{"id":42,"name":"天山","tags":["a","b","c"],"nested":{"ok":true,"value":3.5}}"#;

async fn native_echo(body: Bytes) -> axum::response::Response {
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return (axum::http::StatusCode::BAD_REQUEST, "bad json").into_response(),
    };
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(&value).unwrap(),
    )
        .into_response()
}

use axum::response::IntoResponse;

fn native_router() -> axum::Router {
    axum::Router::new().route("/echo", axum::routing::post(native_echo))
}

const PLUGIN_PATH: &str = "/api/v1/p/hello/echo";

/// One echo through `router` in-process, as the server would hand it over.
async fn echo_in_process(router: &axum::Router, path: &str) {
    let request = Request::post(path)
        .header("host", "bench")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(PAYLOAD))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(body.len(), PAYLOAD.len(), "echo changed the payload size");
}

/// The callgrind child (see `common::instructions`): `native` serves the
/// echo with axum alone; `plugin` opens the kernel on the data dir the
/// parent installed `hello` into and goes through its router.
fn instructions_child(role: &str) -> anyhow::Result<()> {
    let ops = instructions::child_ops();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (router, path, _kernel) = if role == "native" {
            (native_router(), "/echo", None)
        } else {
            let data_dir = std::env::var("BENCH_INSTR_DATA")?.into();
            let mut config = Config {
                data_dir,
                ..Config::default()
            };
            config.runtime.max_concurrent_instances = instructions::pool_slots();
            let kernel = Kernel::open(config).await?.kernel;
            anyhow::ensure!(
                kernel.plugins.get("hello").is_some(),
                "hello is not installed"
            );
            (kernel.router(), PLUGIN_PATH, Some(kernel))
        };
        // Blocks this thread in a syscall after each request, which is when
        // valgrind (one thread at a time) lets the prewarm helper drop the
        // used store and prepare the next one, as an idle core would;
        // otherwise used stores pile up in its queue and the small pool runs
        // out.
        let pause = || std::thread::sleep(Duration::from_millis(2));
        for _ in 0..50 {
            echo_in_process(&router, path).await;
            pause();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let window = instructions::Window::open();
        for _ in 0..ops {
            echo_in_process(&router, path).await;
            pause();
        }
        // What the last requests left to the background (dropping stores,
        // preparing the next instances) belongs to them.
        tokio::time::sleep(Duration::from_millis(200)).await;
        window.close();
        anyhow::Ok(())
    })
}

struct Load {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64
}

/// Sends POSTs with `connections` keep-alive connections for `secs`.
async fn load(addr: SocketAddr, path: &'static str, connections: usize, secs: f64) -> Load {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut latencies = Vec::with_capacity(100_000);
            while Instant::now() < deadline {
                let req = Request::post(path)
                    .header("host", "bench")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(PAYLOAD.as_bytes())))
                    .unwrap();
                let started = Instant::now();
                let response = sender.send_request(req).await.unwrap();
                let status = response.status();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                latencies.push(started.elapsed().as_micros() as u32);
                assert!(
                    status.is_success(),
                    "{status}: {}",
                    String::from_utf8_lossy(&body)
                );
                assert_eq!(body.len(), PAYLOAD.len(), "echo changed the payload size");
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    Load {
        rps: all.len() as f64 / elapsed,
        p50_us: percentile(&all, 0.50),
        p99_us: percentile(&all, 0.99),
    }
}

fn main() -> anyhow::Result<()> {
    if let Some(role) = instructions::child_role() {
        return instructions_child(&role);
    }
    let secs: f64 = common::env_or("BENCH_SECS", 5.0, 0.2);
    let connections: usize = common::env_or("BENCH_CONNECTIONS", 32, 4);
    let count_instructions = instructions::wanted();
    eprintln!("building the hello test plugin…");
    // hello (SDK, std) for the echo; legacy (raw bindings) to compare what
    // instantiation costs for a smaller component.
    let plugins = tooling::bundled_plugins("tests/plugins")?
        .into_iter()
        .filter(|p| p.crate_name == "tianshan-test-hello" || p.crate_name == "tianshan-test-legacy")
        .collect::<Vec<_>>();
    let out = tempfile::tempdir()?;
    let mut packages = tooling::build_and_pack_bundled(&plugins, out.path(), true)?;
    let legacy_package = packages.pop().expect("legacy sorts after hello");
    let package = packages.pop().expect("hello");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The load generator runs on its own runtime and thread, as a separate
    // client would: a plugin call occupying a server worker must not also
    // delay the client's own tasks.
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let client = client_runtime.handle().clone();
    runtime.block_on(async move {
        let load = |addr, path, connections, secs| {
            let task = client.spawn(load(addr, path, connections, secs));
            async move { task.await.expect("load task") }
        };
        let data = tempfile::tempdir()?;
        let mut config = Config {
            data_dir: data.path().to_path_buf(),
            ..Config::default()
        };
        if let Some(n) = std::env::var("BENCH_PREWARM").ok().and_then(|v| v.parse().ok()) {
            config.runtime.prewarm_instances = n;
        }
        let kernel = Kernel::open(config).await?.kernel;
        kernel
            .plugins
            .install(&std::fs::read(&package)?, None)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        kernel
            .plugins
            .install(&std::fs::read(&legacy_package)?, None)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;

        let plugin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let plugin_addr = plugin_listener.local_addr()?;
        let router = kernel.router();
        tokio::spawn(async move { axum::serve(plugin_listener, router).await });

        let native_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let native_addr = native_listener.local_addr()?;
        let native = native_router();
        tokio::spawn(async move { axum::serve(native_listener, native).await });

        let plugin_path = PLUGIN_PATH;
        // Warm up both paths (pool slots, caches, connections).
        load(native_addr, "/echo", connections, secs.min(1.0)).await;
        load(plugin_addr, plugin_path, connections, secs.min(1.0)).await;

        let rounds = if common::short_mode() { 1 } else { 3 };
        let (mut n_rps, mut p_rps) = (Vec::new(), Vec::new());
        let (mut n50, mut n99, mut p50, mut p99) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut ln50, mut lp50) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let n = load(native_addr, "/echo", connections, secs).await;
            let p = load(plugin_addr, plugin_path, connections, secs).await;
            eprintln!(
                "round {round}: loaded ({connections} conns) native {:.0} req/s p50 {:.0} µs | plugin {:.0} req/s p50 {:.0} µs",
                n.rps, n.p50_us, p.rps, p.p50_us
            );
            ln50.push(n.p50_us);
            lp50.push(p.p50_us);
            n_rps.push(n.rps);
            p_rps.push(p.rps);
            let n = load(native_addr, "/echo", 1, secs / 2.0).await;
            let p = load(plugin_addr, plugin_path, 1, secs / 2.0).await;
            eprintln!(
                "round {round}: one connection native p50 {:.0} µs p99 {:.0} µs | plugin p50 {:.0} µs p99 {:.0} µs",
                n.p50_us, n.p99_us, p.p50_us, p.p99_us
            );
            eprintln!("prewarm (hits, misses) so far: {:?}", kernel.runtime.prewarm_stats());
            n50.push(n.p50_us);
            n99.push(n.p99_us);
            p50.push(p.p50_us);
            p99.push(p.p99_us);
        }

        // Instantiation alone.
        let active = kernel.plugins.get("hello").expect("installed");
        let iterations = common::env_or("BENCH_ITERATIONS", 20_000, 200);
        for _ in 0..iterations / 20 {
            kernel.runtime.instantiate_only(&active.component).await.unwrap();
        }
        let started = Instant::now();
        for _ in 0..iterations {
            kernel.runtime.instantiate_only(&active.component).await.unwrap();
        }
        let instantiate_us = started.elapsed().as_secs_f64() * 1e6 / iterations as f64;
        let legacy = kernel.plugins.get("legacy").expect("installed");
        let started = Instant::now();
        for _ in 0..iterations {
            kernel.runtime.instantiate_only(&legacy.component).await.unwrap();
        }
        let legacy_instantiate_us = started.elapsed().as_secs_f64() * 1e6 / iterations as f64;

        // A whole plugin call in-process (store, instance, handler), no HTTP.
        let request = || tianshan_kernel::runtime::PluginRequest {
            method: "POST".into(),
            path: "/echo".into(),
            query: String::new(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: PAYLOAD.as_bytes().to_vec(),
        };
        // On a server worker, as a request handler runs: the time until the
        // answer (what a request waits) and, separately, the whole cost per
        // call including what runs after the answer (dropping the store,
        // preparing the next instance), which the yield lets run.
        let (call_us, call_total_us) = {
            let kernel = kernel.clone();
            let active = active.clone();
            tokio::spawn(async move {
                let mut waited = Duration::ZERO;
                let started = Instant::now();
                for _ in 0..iterations {
                    let t = Instant::now();
                    let response = kernel
                        .runtime
                        .handle_http(&active.component, None, request())
                        .await
                        .unwrap();
                    waited += t.elapsed();
                    assert_eq!(response.status, 200);
                    tokio::task::yield_now().await;
                }
                (
                    waited.as_secs_f64() * 1e6 / iterations as f64,
                    started.elapsed().as_secs_f64() * 1e6 / iterations as f64,
                )
            })
            .await?
        };

        let native_rps = common::median(n_rps);
        let plugin_rps = common::median(p_rps);
        let ratio = plugin_rps / native_rps;
        let added_p50 = (common::median(p50.clone()) - common::median(n50.clone())).max(0.0);
        let added_p99 = (common::median(p99.clone()) - common::median(n99.clone())).max(0.0);
        println!("gateway benchmark: JSON echo ({} bytes), median of {rounds} rounds of {secs} s", PAYLOAD.len());
        println!("  loaded, {connections} connections:  native {native_rps:>9.0} req/s   plugin {plugin_rps:>9.0} req/s   ratio {ratio:.2}");
        println!(
            "  loaded p50:                native {:>7.0} µs   plugin {:>7.0} µs",
            common::median(ln50),
            common::median(lp50)
        );
        println!(
            "  one connection p50:        native {:>7.0} µs   plugin {:>7.0} µs   added {added_p50:.0} µs",
            common::median(n50),
            common::median(p50)
        );
        println!(
            "  one connection p99:        native {:>7.0} µs   plugin {:>7.0} µs   added {added_p99:.0} µs",
            common::median(n99),
            common::median(p99)
        );
        println!("  instantiation alone:       {instantiate_us:.1} µs per store + instance");
        println!("  plugin call in-process:    {call_us:.1} µs until the answer, {call_total_us:.1} µs per call in all (store, instance, echo handler, drop)");
        println!(
            "  instantiation, raw-bindings plugin ({} KiB vs {} KiB): {legacy_instantiate_us:.1} µs",
            std::fs::metadata(&legacy_package).map(|m| m.len() / 1024).unwrap_or(0),
            std::fs::metadata(&package).map(|m| m.len() / 1024).unwrap_or(0),
        );
        let mut result = format!(
            "RESULT added_latency_p50_us={added_p50:.0} added_latency_p99_us={added_p99:.0} plugin_native_ratio={ratio:.2}"
        );
        if count_instructions {
            // A data dir of its own with hello installed and compiled, so
            // the child under callgrind only opens it.
            let instr_data = tempfile::tempdir()?;
            let prepared = Kernel::open(Config {
                data_dir: instr_data.path().to_path_buf(),
                ..Config::default()
            })
            .await?
            .kernel;
            prepared
                .plugins
                .install(&std::fs::read(&package)?, None)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            drop(prepared);
            let ops = common::env_or("BENCH_INSTR_OPS", 1_000, 1_000);
            eprintln!("counting instructions under callgrind ({ops} requests each)…");
            let data_path = instr_data.path().display().to_string();
            let (plugin_instr, native_instr) = tokio::task::spawn_blocking(move || {
                anyhow::Ok((
                    instructions::per_operation("plugin", ops, &[("BENCH_INSTR_DATA", data_path)])?,
                    instructions::per_operation("native", ops, &[])?,
                ))
            })
            .await??;
            println!(
                "  instructions per request, in-process (callgrind): plugin {plugin_instr:.0}   native {native_instr:.0}   ratio {:.2}",
                plugin_instr / native_instr
            );
            result += &format!(" plugin_instr_per_req={plugin_instr:.0} native_instr_per_req={native_instr:.0}");
        }
        println!("{result}");
        drop(Arc::clone(&kernel));
        anyhow::Ok(())
    })
}
