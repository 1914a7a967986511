//! Start-up benchmark: how soon a restarted kernel answers, and what it
//! holds in memory.
//!
//! Every bundled plugin (plugins/) and the `looper` test plugin are
//! installed into a data dir once, which compiles them and fills the
//! compiled-code cache. Then the real `tianshan serve` binary is started on
//! that data dir, again and again: the time from spawning the process to the
//! first 200 from `/healthz` (plugins load before the listener opens, so
//! `/readyz` answers 200 as well, which is checked). After each start:
//! - RSS idle: the process's VmRSS after a second with no requests (the
//!   prepared instances of `runtime.prewarm-instances` included);
//! - RSS per live instance: `looper` requests spin in the plugin until their
//!   deadline, each holding one instance; VmRSS while 16 are running, less
//!   the idle figure, over 16.
//!
//! Run: `cargo bench -p tianshan-kernel --bench startup` (env
//! `BENCH_RESTARTS`, default 5; `BENCH_INSTANCES`, default 16). `cargo test`
//! runs it in its short mode (see `common::short_mode`): one restart.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tianshan_kernel::Kernel;
use tianshan_kernel::core::config::Config;
use tianshan_kernel::plugins::tooling;

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Server {
    child: Child,
}

impl Server {
    fn start(data_dir: &Path, port: u16) -> anyhow::Result<Server> {
        let child = Command::new(env!("CARGO_BIN_EXE_tianshan"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Server { child })
    }

    /// SIGTERM, as an operator's restart sends, then wait for the exit.
    fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        anyhow::bail!("the kernel did not stop within 15 s of SIGTERM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() -> anyhow::Result<()> {
    let restarts: usize = common::env_or("BENCH_RESTARTS", 5, 1);
    let instances: usize = common::env_or("BENCH_INSTANCES", 16, 4);
    eprintln!("building every bundled plugin and the looper…");
    let mut plugins = tooling::bundled_plugins("plugins")?;
    plugins.extend(
        tooling::bundled_plugins("tests/plugins")?
            .into_iter()
            .filter(|p| p.crate_name == "tianshan-test-looper"),
    );
    let out = tempfile::tempdir()?;
    let packages = tooling::build_and_pack_bundled(&plugins, out.path(), true)?;

    // Install once, in-process: compiles every component into the cache.
    let data = tempfile::tempdir()?;
    let password = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let opened = Kernel::open(Config {
                data_dir: data.path().to_path_buf(),
                ..Config::default()
            })
            .await?;
            for package in &packages {
                opened
                    .kernel
                    .plugins
                    .install(&std::fs::read(package)?, None)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}: {}", package.display(), e.message))?;
            }
            anyhow::Ok(
                opened
                    .generated_admin_password
                    .expect("a fresh data dir generates the admin password"),
            )
        })?;

    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    );
    let (mut to_healthz, mut idle, mut per_instance) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..restarts {
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let mut server = Server::start(data.path(), port)?;
        loop {
            if let Some(status) = server.child.try_wait()? {
                anyhow::bail!("the kernel exited during start-up: {status}");
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "no /healthz within 120 s"
            );
            if agent
                .get(format!("{base}/healthz"))
                .call()
                .is_ok_and(|r| r.status() == 200)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let ready = agent.get(format!("{base}/readyz")).call()?;
        anyhow::ensure!(ready.status() == 200, "/readyz answered {}", ready.status());

        std::thread::sleep(Duration::from_secs(1));
        let pid = server.child.id();
        let idle_kib = rss_kib(pid)?;

        let token = common::login(&agent, &base, "admin", &password)?;
        // Each looper call spins until its 1 s deadline (504); sample while
        // all of them are inside the plugin.
        let callers: Vec<_> = (0..instances)
            .map(|_| {
                let agent = agent.clone();
                let url = format!("{base}/api/v1/p/looper/");
                let token = token.clone();
                std::thread::spawn(move || {
                    agent
                        .get(url)
                        .header("Authorization", format!("Bearer {token}"))
                        .call()
                        .map(|r| r.status().as_u16())
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(600));
        let busy_kib = rss_kib(pid)?;
        for caller in callers {
            let status = caller.join().expect("looper caller")?;
            anyhow::ensure!(status == 504, "looper answered {status}");
        }
        let instance_kib = busy_kib.saturating_sub(idle_kib) as f64 / instances as f64;
        eprintln!(
            "start {round}: /healthz after {ms:.0} ms; RSS idle {:.1} MiB, with {instances} live instances {:.1} MiB ({instance_kib:.0} KiB each)",
            idle_kib as f64 / 1024.0,
            busy_kib as f64 / 1024.0
        );
        to_healthz.push(ms);
        idle.push(idle_kib as f64 / 1024.0);
        per_instance.push(instance_kib);
        server.stop()?;
    }

    let best = to_healthz.iter().copied().fold(f64::INFINITY, f64::min);
    let healthz = common::median(to_healthz);
    let idle = common::median(idle);
    let per_instance = common::median(per_instance);
    println!(
        "start-up with {} plugins installed and their compiled code cached, median of {restarts} restarts:",
        packages.len()
    );
    println!("  spawn → first 200 from /healthz: {healthz:.0} ms (best {best:.0} ms)");
    println!(
        "  RSS idle: {idle:.1} MiB; per live instance: {per_instance:.0} KiB ({instances} looper calls at once)"
    );
    println!(
        "RESULT restart_healthz_ms={healthz:.0} rss_idle_mib={idle:.1} rss_per_instance_kib={per_instance:.0} plugins={}",
        packages.len()
    );
    Ok(())
}
