//! What every benchmark shares: the short mode `cargo test` runs, the
//! services a bench needs, and CPU instruction counts under callgrind.
//!
//! Included by each bench with `mod common;` (benches are separate crates);
//! a bench that uses only part of it allows the rest to go unused.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// `cargo bench` runs a bench with `--bench`; `cargo test` (the README's
/// test command, and CI) runs it without, and then the bench takes its short
/// mode: the same code on little data, so a bench that no longer builds or
/// runs fails the tests. Figures printed in the short mode mean nothing.
/// `BENCH_SHORT=1` forces the short mode under `cargo bench` too.
pub fn short_mode() -> bool {
    std::env::var("BENCH_SHORT").is_ok_and(|v| v == "1")
        || !std::env::args().any(|a| a == "--bench")
}

/// The value of env `name`, or `full` (under `cargo bench`) or `short`.
pub fn env_or<T: std::str::FromStr>(name: &str, full: T, short: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if short_mode() { short } else { full })
}

/// Signs in at the kernel at `base` (`http://host:port`) and returns the
/// session token.
pub fn login(
    agent: &ureq::Agent,
    base: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let mut response = agent
        .post(format!("{base}/api/v1/auth/login"))
        .send_json(serde_json::json!({"username": username, "password": password}))?;
    let body: serde_json::Value = response.body_mut().read_json()?;
    body["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("login as {username} answered {body}"))
}

/// The middle value of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Whether the service at `url` accepts a TCP connection. A full bench
/// needs it; the short mode skips without it, as the tests do, unless CI=true
/// makes every service mandatory.
pub fn service_ready(what: &str, url: &str, default_port: u16) -> bool {
    let ready =
        tianshan_kernel::core::net::accepts_connections(url, default_port, Duration::from_secs(2));
    if !ready {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            short_mode() && !ci,
            "this benchmark needs {what} at {url} (CI=true and `cargo bench` make it mandatory)"
        );
        eprintln!("skipping the short benchmark: {what} is not reachable at {url}");
    }
    ready
}

/// One request straight to an installed plugin's handler, as the kernel
/// calls it (no session, no HTTP): how benches seed and drive plugins
/// without measuring the gateway.
pub async fn call_plugin(
    kernel: &tianshan_kernel::Kernel,
    plugin_id: &str,
    method: &str,
    path: &str,
    query: String,
    json_body: Option<serde_json::Value>,
) -> anyhow::Result<tianshan_kernel::runtime::PluginResponse> {
    let plugin = kernel
        .plugins
        .get(plugin_id)
        .ok_or_else(|| anyhow::anyhow!("{plugin_id} is not installed"))?;
    let (headers, body) = match json_body {
        Some(json) => (
            vec![("content-type".into(), "application/json".into())],
            json.to_string().into_bytes(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    kernel
        .runtime
        .handle_http(
            &plugin.component,
            None,
            tianshan_kernel::runtime::PluginRequest {
                method: method.into(),
                path: path.into(),
                query,
                headers,
                body,
            },
        )
        .await
        .map_err(|f| anyhow::anyhow!("{plugin_id} {method} {path}: {}", f.detail))
}

/// CPU instructions per operation, counted by valgrind's callgrind, which
/// repeat to within a fraction of a percent where wall-clock figures on a
/// shared machine move by half.
///
/// The bench runs itself again under callgrind with `BENCH_INSTR_ROLE` set.
/// That child starts what it measures, warms it, and calls [`Window::open`]
/// and [`Window::close`] around `ops` operations. Callgrind runs with
/// instrumentation off until the window opens and turns it off again when it
/// closes; instrumentation is process-wide (unlike callgrind's zero and dump
/// requests, which act on the calling thread only), so the count holds the
/// work the operations cause on every thread, background tasks included,
/// and nothing of start-up, compiling or warming.
pub mod instructions {
    use super::*;

    /// `runtime.max-concurrent-instances` in a callgrind child: each slot
    /// of the pooling allocator reserves about 8 GiB of address space
    /// (two linear memories with their guards), and valgrind cannot map
    /// the 64 GiB of even 8 slots. A slot in use, one being dropped and one
    /// being prepared must fit; one prepared instance is kept either way
    /// (an eighth of the pool, at least one). `BENCH_POOL_SLOTS` overrides.
    pub fn pool_slots() -> u32 {
        super::env_or("BENCH_POOL_SLOTS", 6, 6)
    }

    /// The role this process measures, when it is a callgrind child.
    pub fn child_role() -> Option<String> {
        std::env::var("BENCH_INSTR_ROLE").ok()
    }

    /// Whether to count instructions: the full bench does (and needs
    /// valgrind) unless `BENCH_INSTR=0`; the short mode does not.
    pub fn wanted() -> bool {
        if short_mode() || std::env::var("BENCH_INSTR").is_ok_and(|v| v == "0") {
            return false;
        }
        let installed = Command::new("valgrind")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            installed,
            "instruction counts need valgrind (`apt-get install valgrind`); BENCH_INSTR=0 skips them"
        );
        true
    }

    /// Runs this bench under callgrind as `role` doing `ops` operations
    /// (with `env` passed on) and returns the instructions per operation.
    pub fn per_operation(role: &str, ops: u64, env: &[(&str, String)]) -> anyhow::Result<f64> {
        let dir = tempfile::tempdir()?;
        let out: PathBuf = dir.path().join("callgrind.out");
        let mut command = Command::new("valgrind");
        command
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg("--instr-atstart=no")
            .arg("--dump-line=no")
            .arg("--error-limit=no")
            .arg(std::env::current_exe()?)
            .arg("--bench")
            .env("BENCH_INSTR_ROLE", role)
            .env("BENCH_INSTR_OPS", ops.to_string());
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output()?;
        // The child's own words, without valgrind's lines and backtraces.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("==") && !l.starts_with("  "))
            .collect();
        anyhow::ensure!(
            output.status.success(),
            "callgrind child {role} failed: {}",
            said[said.len().saturating_sub(20)..].join("\n")
        );
        // The one dump, at exit, holds only what ran inside the window; its
        // `totals:` line (at the end) has the sum, while `summary:` (at the
        // top) stays 0 when instrumentation was off at start.
        let text = std::fs::read_to_string(&out)?;
        let total: u64 = text
            .lines()
            .filter_map(|l| {
                l.strip_prefix("totals:")
                    .or_else(|| l.strip_prefix("summary:"))
            })
            .filter_map(|v| v.split_whitespace().next()?.parse().ok())
            .max()
            .ok_or_else(|| anyhow::anyhow!("callgrind's dump for {role} has no total"))?;
        anyhow::ensure!(
            total > 0,
            "callgrind counted nothing for {role}: did the window open?"
        );
        Ok(total as f64 / ops as f64)
    }

    /// The number of operations the child was asked to measure.
    pub fn child_ops() -> u64 {
        std::env::var("BENCH_INSTR_OPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000)
    }

    /// The counting window in a callgrind child (no-ops natively).
    pub struct Window;

    impl Window {
        /// Starts counting, on every thread.
        pub fn open() -> Window {
            callgrind_request(Request::StartInstrumentation);
            Window
        }

        /// Stops counting.
        pub fn close(self) {
            callgrind_request(Request::StopInstrumentation);
        }
    }

    /// Callgrind's client requests (valgrind's callgrind.h numbers them from
    /// `VG_USERREQ_TOOL_BASE('C','T')`).
    #[derive(Clone, Copy)]
    enum Request {
        StartInstrumentation = 0x4354_0004,
        StopInstrumentation = 0x4354_0005,
    }

    /// Valgrind recognises this instruction sequence (rotations of rdi that
    /// cancel out, then `xchg rbx, rbx`) as a request whose arguments `rax`
    /// points at; run natively it changes nothing.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    fn callgrind_request(request: Request) {
        let args: [u64; 6] = [request as u64, 0, 0, 0, 0, 0];
        let mut result: u64 = 0;
        // SAFETY: the sequence only reads `args`, which outlives it, and
        // writes rdx, declared as an output; rdi ends as it began.
        unsafe {
            std::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                inout("rdx") result,
                in("rax") args.as_ptr(),
                options(nostack)
            );
        }
        let _ = result;
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn callgrind_request(_request: Request) {
        panic!("instruction counts are implemented for x86_64 only; BENCH_INSTR=0 skips them");
    }
}
