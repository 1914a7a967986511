//! Starting real kernels (the `tianshan` binary) and talking to them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use tianshan_kernel::plugins::tooling;

pub const ADMIN_PASSWORD: &str = "test-admin-password-1";
pub const DEMO_PASSWORD: &str = "test-demo-password-1";

/// Test plugin packages, built once per test run from tests/plugins/.
pub struct TestPackages {
    pub dir: PathBuf,
}

impl TestPackages {
    pub fn path(&self, id: &str) -> PathBuf {
        let found = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{id}-")) && n.ends_with(".tspkg"))
            });
        found.unwrap_or_else(|| panic!("no package for test plugin {id} in {}", self.dir.display()))
    }

    pub fn bytes(&self, id: &str) -> Vec<u8> {
        std::fs::read(self.path(id)).unwrap()
    }
}

pub fn packages() -> &'static TestPackages {
    static PACKAGES: OnceLock<TestPackages> = OnceLock::new();
    PACKAGES.get_or_init(|| {
        let dir = tooling::target_dir().join("test-packages");
        let plugins = tooling::bundled_plugins("tests/plugins").expect("listing test plugins");
        assert!(plugins.len() >= 5, "test plugins missing: {plugins:?}");
        let mut all = plugins;
        all.extend(tooling::bundled_plugins("plugins").expect("listing bundled plugins"));
        tooling::build_and_pack_bundled(&all, &dir, true).expect("building test plugins");
        TestPackages { dir }
    })
}

/// A kernel process with its own data dir, stopped on drop.
pub struct TestKernel {
    child: Option<Child>,
    pub base: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub token: String,
    agent: ureq::Agent,
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    )
}

impl TestKernel {
    pub fn start() -> TestKernel {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().to_path_buf();
        let mut kernel = Self::start_in(&data_dir, &[]);
        kernel._tmp = Some(tmp);
        kernel
    }

    /// Starts `tianshan serve` on a free port; `extra` are extra CLI args.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> TestKernel {
        Self::start_command("serve", data_dir, extra)
    }

    /// `tianshan up`: the demo start (bundled plugins, demo orgs and users).
    pub fn start_demo(data_dir: &Path) -> TestKernel {
        Self::start_command("up", data_dir, &[])
    }

    fn start_command(command: &str, data_dir: &Path, extra: &[&str]) -> TestKernel {
        // An address of the caller's (a restart on the same port), or any.
        let listen = if extra.contains(&"--listen") {
            &[][..]
        } else {
            &["--listen", "127.0.0.1:0"][..]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_tianshan"))
            .arg(command)
            .args(listen)
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("TIANSHAN_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("TIANSHAN_DEMO_PASSWORD", DEMO_PASSWORD)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting tianshan");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The kernel logs to stdout; its errors belong in the
                // failing test's output.
                if line.contains("ERROR") {
                    eprintln!("kernel: {line}");
                }
                if !sent && let Some(rest) = line.split("serving on http://").nth(1) {
                    let addr = rest.split('/').next().unwrap().to_string();
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        });
        // `up` builds the bundled plugins and seeds the demo register
        // first: minutes on a loaded machine.
        let wait = if command == "up" { 360 } else { 120 };
        let addr = rx
            .recv_timeout(Duration::from_secs(wait))
            .unwrap_or_else(|e| panic!("kernel did not start serving within {wait} s: {e}"));
        let mut kernel = TestKernel {
            child: Some(child),
            base: format!("http://{addr}"),
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
            token: String::new(),
            agent: agent(),
        };
        kernel.token = kernel.login("admin", ADMIN_PASSWORD);
        kernel
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Stops the process gracefully (SIGTERM) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Takes ownership of the temp dir so a restart can reuse it.
    pub fn into_data_dir(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        self.stop();
        (self.data_dir.clone(), self._tmp.take())
    }

    pub fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self.request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(
                serde_json::json!({"username": username, "password": password})
                    .to_string()
                    .into_bytes(),
            ),
        );
        assert_eq!(status, 200, "login failed: {body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// Any request; `token` = Some("") sends none.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let (status, bytes, _) = self.raw(method, path, token, body, &[]);
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json)
    }

    pub fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<u8>, Vec<(String, String)>) {
        let url = format!("{}{path}", self.base);
        let token = token.unwrap_or(&self.token);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        if !token.is_empty() {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(body.unwrap_or_default()).unwrap();
        let mut response = self.agent.run(request).expect("HTTP request");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap_or_else(|e| {
                // Some tests expect a cut-off answer; say it all the same, so
                // an empty body that should not be one is explained.
                eprintln!("reading the body of {method} {path} ({status}): {e}");
                Vec::new()
            });
        (status, bytes, headers)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.request("GET", path, None, None)
    }

    pub fn install(&self, package: Vec<u8>) -> (u16, Value) {
        self.request("POST", "/api/v1/plugins", None, Some(package))
    }

    pub fn install_ok(&self, id: &str) {
        let (status, body) = self.install(packages().bytes(id));
        assert_eq!(status, 201, "installing {id}: {body}");
    }

    pub fn metrics(&self) -> String {
        let (status, bytes, _) = self.raw("GET", "/metrics", Some(""), None, &[]);
        assert_eq!(status, 200);
        String::from_utf8(bytes).unwrap()
    }

    /// Resident memory of the kernel process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

impl Drop for TestKernel {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The value of an unlabelled or labelled series in Prometheus text.
pub fn metric_value(text: &str, series_prefix: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(series_prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

/// Repacks a package with a changed manifest (another id, version, …).
pub fn with_manifest(
    package: &[u8],
    change: impl FnOnce(&mut tianshan_kernel::plugins::package::Manifest),
) -> Vec<u8> {
    let parsed =
        tianshan_kernel::plugins::package::Package::from_bytes(package, usize::MAX).unwrap();
    let mut manifest = parsed.manifest.clone();
    change(&mut manifest);
    parsed
        .to_bytes(&toml::to_string(&manifest).unwrap())
        .unwrap()
}

/// Repacks a package with a different version (for upgrade tests).
pub fn with_version(package: &[u8], version: &str) -> Vec<u8> {
    with_manifest(package, |m| m.version = version.parse().unwrap())
}

/// A service on this machine that some tests need beyond the kernel itself.
#[derive(Debug, Clone, Copy)]
pub enum Service {
    /// Debian's headless Chromium and chromedriver.
    Browser,
    /// PostgreSQL at `TIANSHAN_TEST_POSTGRES` (default 127.0.0.1:5432).
    Postgres,
    /// NATS with JetStream at `TIANSHAN_TEST_NATS` (default 127.0.0.1:4222).
    Nats,
    /// An MQTT broker at `TIANSHAN_TEST_MQTT` (default mqtt://127.0.0.1:1883).
    Mqtt,
    /// An S3-compatible server at `TIANSHAN_TEST_S3` (default 127.0.0.1:9000);
    /// started here from moto's `moto_server` when it is installed.
    S3,
}

/// Whether the tests run under CI, where every service is mandatory.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether `service` is there for the calling test. Outside CI a missing
/// service skips the test with a message saying how to get it (a plain
/// `cargo test` on a newcomer's machine still runs everything else); under
/// CI (`CI=true`) it fails the test instead, so nothing is skipped silently.
pub fn have(service: Service) -> bool {
    let (ready, how) = match service {
        Service::Browser => (
            !browser_skipped_on_purpose()
                && ["/usr/bin/chromium", "/usr/bin/chromedriver"]
                    .iter()
                    .all(|b| Path::new(b).exists()),
            "install Debian's chromium and chromium-driver (`apt-get install chromium \
             chromium-driver fonts-wqy-microhei`); TIANSHAN_SKIP_BROWSER=1 skips it on purpose",
        ),
        Service::Postgres => (
            reachable(
                &std::env::var("TIANSHAN_TEST_POSTGRES")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
                5432,
            ),
            "start PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres, or point \
             TIANSHAN_TEST_POSTGRES at one",
        ),
        Service::Nats => (
            reachable(
                &std::env::var("TIANSHAN_TEST_NATS")
                    .unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
                4222,
            ),
            "start `nats-server -js -a 127.0.0.1 -p 4222`, or point TIANSHAN_TEST_NATS at one",
        ),
        Service::Mqtt => (
            reachable(&mqtt_url(), 1883),
            "start Mosquitto (`mosquitto -d`, Debian's mosquitto and mosquitto-clients), or \
             point TIANSHAN_TEST_MQTT at a broker",
        ),
        Service::S3 => (
            s3_ready(),
            "install moto's server (`pip install 'moto[server]'`) so the test can start it, or \
             point TIANSHAN_TEST_S3 at an S3-compatible server",
        ),
    };
    if ready {
        return true;
    }
    if matches!(service, Service::Browser) && browser_skipped_on_purpose() {
        eprintln!("TIANSHAN_SKIP_BROWSER=1: skipping this browser test");
        return false;
    }
    assert!(
        !under_ci(),
        "{service:?} is needed by this test and CI=true makes it mandatory: {how}"
    );
    eprintln!("skipping: {service:?} is not available on this machine ({how})");
    false
}

fn browser_skipped_on_purpose() -> bool {
    std::env::var("TIANSHAN_SKIP_BROWSER").is_ok_and(|v| v == "1")
}

/// Whether the host:port of `url` (or `default_port`) accepts a TCP connection.
fn reachable(url: &str, default_port: u16) -> bool {
    tianshan_kernel::core::net::accepts_connections(url, default_port, Duration::from_secs(2))
}

/// The S3 test server: reachable already, or started once from `moto_server`.
fn s3_ready() -> bool {
    static STARTED: OnceLock<bool> = OnceLock::new();
    let url = std::env::var("TIANSHAN_TEST_S3").unwrap_or_else(|_| "http://127.0.0.1:9000".into());
    if reachable(&url, 9000) {
        return true;
    }
    if std::env::var_os("TIANSHAN_TEST_S3").is_some() {
        return false; // someone else's server, not ours to start
    }
    *STARTED.get_or_init(|| {
        let started = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", "9000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if started.is_err() {
            return false;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if reachable(&url, 9000) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    })
}

/// The broker the telemetry tests publish to.
pub fn mqtt_url() -> String {
    std::env::var("TIANSHAN_TEST_MQTT").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into())
}

/// Waits up to a minute for `probe` to answer something, polling; panics
/// naming `what` when it never does. For what the kernel finishes after
/// answering (approval outcomes, event handlers, published values).
pub fn wait_for(what: &str, mut probe: impl FnMut() -> Option<Value>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// A plugin's API as one user calls it: `{prefix}{path}` with a JSON body
/// (none when null), answering the status and the JSON.
pub fn plugin_call(
    k: &TestKernel,
    prefix: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let body = (!body.is_null()).then(|| body.to_string().into_bytes());
    k.request(method, &format!("{prefix}{path}"), Some(token), body)
}

/// The status, code and field of a refusal; panics if it was not one.
pub fn refusal(method: &str, path: &str, (status, out): (u16, Value)) -> (u16, String, String) {
    assert!(status >= 400, "{method} {path} was not refused: {out}");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        status,
        text(&out["error"]["code"]),
        text(&out["error"]["field"]),
    )
}

/// One server-sent event: (event, data).
pub type Sse = (String, String);

/// Opens a stream of server-sent events at `path` with `token` and reads it
/// on a thread: its status, and the events as they come (the channel
/// closes when the stream ends).
pub fn open_sse(k: &TestKernel, token: &str, path: &str) -> (u16, std::sync::mpsc::Receiver<Sse>) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let response = agent
        .get(format!("{}{path}", k.base))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .expect("opening the stream");
    let status = response.status().as_u16();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let reader = BufReader::new(response.into_body().into_reader());
        let (mut event, mut data) = (String::new(), String::new());
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if line.is_empty() {
                if !event.is_empty() && tx.send((event.clone(), data.clone())).is_err() {
                    break;
                }
                event.clear();
                data.clear();
            } else if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:") {
                data = d.trim().to_string();
            }
        }
    });
    (status, rx)
}
