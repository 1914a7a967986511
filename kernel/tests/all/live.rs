//! The live stream of latest values and alerts (issue 17 item 5):
//! `GET /api/v1/telemetry/stream` read as server-sent events by a user
//! while readings arrive over MQTT — on one node, and on a node that
//! stores nothing itself while another, sharing PostgreSQL, ingests —
//! scoped by reach; and a sandboxed plugin page that shows values through
//! `kit.live` and the portal's bridge in headless Chromium.

use std::io::{BufRead, BufReader};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::identity::{TwoCounties, person, two_counties};
use crate::services::PgDatabase;
use crate::support::{self, TestKernel, packages, with_manifest};
use crate::telemetry::{Publisher, eventually, start, support_now};

const P: &str = "/api/v1/p/meters";

/// One server-sent event, or a comment (`event` = ":").
#[derive(Debug, Clone)]
struct Sse {
    event: String,
    id: String,
    data: Value,
    arrived: Instant,
}

/// A stream being read on its own thread.
struct Stream {
    status: u16,
    body: Value,
    events: Option<Receiver<Sse>>,
    seen: Vec<Sse>,
}

fn open(k: &TestKernel, token: &str, path: &str, last_event_id: Option<&str>) -> Stream {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(180)))
            .build(),
    );
    let mut builder = ureq::http::Request::builder()
        .method("GET")
        .uri(format!("{}{path}", k.base))
        .header("Authorization", format!("Bearer {token}"))
        .header("Accept", "text/event-stream");
    if let Some(id) = last_event_id {
        builder = builder.header("Last-Event-ID", id);
    }
    let response = agent
        .run(builder.body(()).unwrap())
        .expect("opening the stream");
    let status = response.status().as_u16();
    if status != 200 {
        let mut response = response;
        let body = response
            .body_mut()
            .read_json::<Value>()
            .unwrap_or(Value::Null);
        return Stream {
            status,
            body,
            events: None,
            seen: Vec::new(),
        };
    }
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    let (tx, rx) = channel();
    let reader = response.into_body().into_reader();
    std::thread::spawn(move || {
        let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { return };
            if line.is_empty() {
                if !event.is_empty() || !data.is_empty() {
                    let sent = Sse {
                        event: std::mem::take(&mut event),
                        id: std::mem::take(&mut id),
                        data: serde_json::from_str(&data).unwrap_or(Value::Null),
                        arrived: Instant::now(),
                    };
                    data.clear();
                    if tx.send(sent).is_err() {
                        return;
                    }
                }
            } else if let Some(rest) = line.strip_prefix(':') {
                let _ = tx.send(Sse {
                    event: ":".into(),
                    id: String::new(),
                    data: Value::String(rest.trim().to_string()),
                    arrived: Instant::now(),
                });
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            } else if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().to_string();
            }
        }
    });
    Stream {
        status,
        body: Value::Null,
        events: Some(rx),
        seen: Vec::new(),
    }
}

impl Stream {
    /// Reads events until one matches `want`, for up to `within`.
    fn wait_for(&mut self, what: &str, within: Duration, want: impl Fn(&Sse) -> bool) -> Sse {
        let rx = self.events.as_ref().expect("an open stream");
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(e) => {
                    self.seen.push(e.clone());
                    if want(&e) {
                        return e;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {what} within {within:?}; seen {:#?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the stream ended before {what}; seen {:#?}", self.seen)
                }
            }
        }
    }

    /// Waits for the kernel to end the stream.
    fn wait_end(&mut self, what: &str, within: Duration) {
        let rx = self.events.as_ref().expect("an open stream");
        let deadline = Instant::now() + within;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(e) => self.seen.push(e),
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => panic!("{what}: still open after {within:?}"),
            }
        }
    }

    /// Everything that arrived in `period`.
    fn drain(&mut self, period: Duration) -> Vec<Sse> {
        let rx = self.events.as_ref().expect("an open stream");
        let deadline = Instant::now() + period;
        while let Ok(e) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.seen.push(e);
        }
        self.seen.clone()
    }
}

fn latest_of(device: &'static str, value: f64) -> impl Fn(&Sse) -> bool {
    move |e| e.event == "latest" && e.data["device"] == device && e.data["value"] == value
}

fn ok(k: &TestKernel, method: &str, path: &str, body: Value, want: u16) -> Value {
    let (status, out) = k.request(method, path, None, Some(body.to_string().into_bytes()));
    assert_eq!(status, want, "{method} {path}: {out}");
    out
}

/// `ingest` takes readings over MQTT; the streams are read from `serve`
/// (the same kernel, or another node sharing its database).
fn scenario(ingest: &TestKernel, serve: &TestKernel, topic: &str) {
    let TwoCounties {
        county_a,
        county_b,
        unit_a,
        unit_b,
        ..
    } = two_counties(ingest);
    ingest.install_ok("meters");
    let tag = topic.replace('/', "-");
    let power = json!([{"name": "power_kw", "unit": "kW", "kind": "instantaneous", "min": 0.0, "max": 10000.0, "max_step": null}]);
    for (id, org) in [("a1", &county_a), ("b1", &county_b)] {
        ok(
            ingest,
            "POST",
            &format!("{P}/devices"),
            json!({"id": id, "kind": "meter", "org": org, "protocol": "mqtt",
                   "external_id": format!("{tag}-{id}"), "name": id, "channels": power, "formula": []}),
            201,
        );
    }
    ok(
        ingest,
        "POST",
        &format!("{P}/rules"),
        json!({"name": "overload", "devices": [], "condition": {"above": ["power_kw", 800.0]}}),
        204,
    );
    // A copy of the plugin installed for county B only: county A's
    // people cannot see it.
    let copy = with_manifest(&packages().bytes("meters"), |m| m.id = "meters-b".into());
    let (status, out) = ingest.request(
        "POST",
        &format!("/api/v1/plugins?org={county_b}"),
        None,
        Some(copy),
    );
    assert_eq!(status, 201, "{out}");
    let manager_a = person(ingest, "live.a", &unit_a, &[("org-admin", &county_a)]);
    let manager_b = person(ingest, "live.b", &unit_b, &[("org-admin", &county_b)]);
    eventually("the plugins on the serving node", || {
        let (a, _) = serve.request("GET", &format!("{P}/devices"), Some(&manager_a), None);
        let (b, _) = serve.request("GET", "/api/v1/p/meters-b/devices", Some(&manager_b), None);
        (a == 200 && b == 200).then_some(())
    });

    // Unknown, or not there for the caller: 404, the kernel's shape.
    let stream = "/api/v1/telemetry/stream?plugin=";
    for (plugin, code) in [
        ("no-such-plugin", "plugin_not_found"),
        ("meters-b", "plugin_not_found"),
    ] {
        let s = open(serve, &manager_a, &format!("{stream}{plugin}"), None);
        assert_eq!(s.status, 404, "{plugin}: {}", s.body);
        assert_eq!(s.body["error"]["code"], code, "{}", s.body);
    }
    let s = open(serve, "", &format!("{stream}meters"), None);
    assert_eq!(s.status, 401, "{}", s.body);

    let mut a = open(serve, &manager_a, &format!("{stream}meters"), None);
    let mut b = open(serve, &manager_b, &format!("{stream}meters"), None);
    assert_eq!((a.status, b.status), (200, 200));
    let opened = |e: &Sse| e.event == ":" && e.data == "tianshan live";
    a.wait_for("the stream's start", Duration::from_secs(10), opened);
    b.wait_for("the stream's start", Duration::from_secs(10), opened);

    let mut mqtt = Publisher::connect(&format!("{tag}-live"));
    let now = support_now();
    let sent = Instant::now();
    mqtt.publish(
        &format!("{topic}/{tag}-a1"),
        json!({"channel": "power_kw", "at": now - 2000, "value": 500.0}),
    );
    let first = a.wait_for("a1 = 500", Duration::from_secs(10), latest_of("a1", 500.0));
    let delay_latest = first.arrived - sent;
    assert_eq!(first.data["channel"], "power_kw");
    assert_eq!(first.data["at"], now - 2000);
    assert_eq!(first.data["quality"], "good");
    // A device whose clock lags (a minute behind) is not missed.
    let sent = Instant::now();
    mqtt.publish(
        &format!("{topic}/{tag}-a1"),
        json!({"channel": "power_kw", "at": now - 1000, "value": 900.0}),
    );
    let alert = a.wait_for("the overload alert", Duration::from_secs(10), |e| {
        e.event == "alert"
    });
    let delay_alert = alert.arrived - sent;
    assert_eq!(alert.data["rule"], "overload", "{:?}", alert);
    assert_eq!(alert.data["device"], "a1");
    assert_eq!(alert.data["org"], county_a.as_str());
    assert_eq!(alert.data["at"], now - 1000);
    assert_eq!(alert.data["detail"]["value"], 900.0);
    assert!(alert.data["id"].is_i64(), "{:?}", alert);
    let seen = a.seen.clone();
    assert!(
        seen.iter().any(|e| latest_of("a1", 900.0)(e)),
        "the latest 900 comes with its alert: {seen:#?}"
    );
    eprintln!(
        "live stream delays, publish to arrival: latest {delay_latest:?}, alert {delay_alert:?}"
    );

    // County B's manager streams the same plugin: its own device only.
    mqtt.publish(
        &format!("{topic}/{tag}-b1"),
        json!({"channel": "power_kw", "at": now - 500, "value": 100.0}),
    );
    b.wait_for("b1 = 100", Duration::from_secs(10), latest_of("b1", 100.0));
    let a_events = a.drain(Duration::from_millis(1500));
    let b_events = b.drain(Duration::from_millis(100));
    assert!(
        !a_events.iter().any(|e| e.data["device"] == "b1"),
        "county A saw county B's device: {a_events:#?}"
    );
    assert!(
        !b_events
            .iter()
            .any(|e| e.data["device"] == "a1" || e.event == "alert"),
        "county B saw county A's device: {b_events:#?}"
    );

    // A fresh stream starts with the current values; one resumed after
    // the first event replays what followed it (the 900 and the alert).
    let mut fresh = open(
        serve,
        &manager_a,
        &format!("{stream}meters&devices=a1"),
        None,
    );
    fresh.wait_for(
        "the current value",
        Duration::from_secs(10),
        latest_of("a1", 900.0),
    );
    let mut resumed = open(
        serve,
        &manager_a,
        &format!("{stream}meters"),
        Some(&first.id),
    );
    resumed.wait_for("the replayed alert", Duration::from_secs(10), |e| {
        e.event == "alert" && e.data["id"] == alert.data["id"]
    });

    // Signed out: the stream ends (checked every 30 s).
    let (status, _) = serve.request(
        "POST",
        "/api/v1/auth/logout",
        Some(&manager_b),
        Some(b"{}".to_vec()),
    );
    assert_eq!(status, 204);
    b.wait_end(
        "county B's stream after the logout",
        Duration::from_secs(45),
    );

    // At most ten streams per user: the eleventh is refused with 429.
    let mut held = Vec::new();
    for _ in 0..7 {
        held.push(raw_open(
            serve,
            &manager_a,
            &format!("{stream}meters&devices=a1"),
        ));
    }
    let refused = open(serve, &manager_a, &format!("{stream}meters"), None);
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "too_many_attempts");
    // A closed one frees its place (by the next heartbeat, at the latest).
    held.pop();
    eventually("a freed stream slot", || {
        let s = open(
            serve,
            &manager_a,
            &format!("{stream}meters&devices=a1"),
            None,
        );
        (s.status == 200).then_some(())
    });
}

/// A stream opened on a bare socket and left unread, so dropping it resets
/// the connection (the kernel notices at its next write).
fn raw_open(k: &TestKernel, token: &str, path: &str) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let addr = k.base.trim_start_matches("http://");
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = [0u8; 12];
    socket.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
    socket
}

#[test]
fn live_stream_of_latest_values_and_alerts_on_sqlite() {
    if !support::have(support::Service::Mqtt) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let topic = format!("t{}ls/telemetry", std::process::id());
    let k = start(None, &topic, tmp.path());
    scenario(&k, &k, &topic);
}

/// Two nodes sharing PostgreSQL: node A takes the readings, node B (no
/// broker at all) streams them — nothing goes through memory.
#[test]
fn live_stream_across_nodes_on_postgres() {
    if !support::have(support::Service::Mqtt) || !support::have(support::Service::Postgres) {
        return;
    }
    let db = PgDatabase::create();
    let tmp = tempfile::tempdir().unwrap();
    let topic = format!("t{}lp/telemetry", std::process::id());
    std::fs::create_dir_all(tmp.path().join("a")).unwrap();
    let a = start(Some(&db.url), &topic, &tmp.path().join("a"));
    let b = TestKernel::start_in(
        &tmp.path().join("b").join("data"),
        &["--database-url", db.url.as_str(), "--node-id", "live-b"],
    );
    scenario(&a, &b, &topic);
}

/// A sandboxed plugin page (tests/plugins/meters/ui) shows values as they
/// arrive over MQTT through `kit.live`, without reloading and without
/// console errors; naming another plugin in the bridge message streams
/// its own plugin's devices still, and the bridge refuses the kernel's
/// stream as an API call.
#[test]
fn a_plugin_page_shows_live_values_through_the_bridge() {
    if !support::have(support::Service::Mqtt) || !support::have(support::Service::Browser) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let topic = format!("t{}lb/telemetry", std::process::id());
    let k = start(None, &topic, tmp.path());
    let listen = k.base.trim_start_matches("http://").to_string();
    k.install_ok("meters");
    let copy = with_manifest(&packages().bytes("meters"), |m| m.id = "meters2".into());
    let (status, out) = k.install(copy);
    assert_eq!(status, 201, "{out}");
    let tag = topic.replace('/', "-");
    let power = json!([{"name": "power_kw", "unit": "kW", "kind": "instantaneous", "min": 0.0, "max": 10000.0, "max_step": null}]);
    for (plugin, id) in [("meters", "m1"), ("meters2", "x1")] {
        ok(
            &k,
            "POST",
            &format!("/api/v1/p/{plugin}/devices"),
            json!({"id": id, "kind": "meter", "org": null, "protocol": "mqtt",
                   "external_id": format!("{tag}-{id}"), "name": id, "channels": power, "formula": []}),
            201,
        );
    }
    ok(
        &k,
        "POST",
        &format!("{P}/rules"),
        json!({"name": "overload", "devices": [], "condition": {"above": ["power_kw", 800.0]}}),
        204,
    );

    let b = crate::portal::Browser::start();
    b.goto(&format!("{}/", k.base));
    b.wait_displayed("#login-username");
    b.type_into("#login-username", "admin");
    b.type_into("#login-password", support::ADMIN_PASSWORD);
    b.click("#login-submit");
    b.wait_text("#user-name", "the admin's display name", |t| !t.is_empty());
    b.console_errors();
    b.click(r#"#menu .menu-entry[data-plugin="meters"]"#);
    let mut mqtt = Publisher::connect(&format!("{tag}-page"));
    let publish = |mqtt: &mut Publisher, id: &str, value: f64| {
        mqtt.publish(
            &format!("{topic}/{tag}-{id}"),
            json!({"channel": "power_kw", "at": support_now(), "value": value}),
        );
    };
    b.in_plugin_frame(|| {
        b.wait_text("#status", "the stream open", |t| t == "open");
        let sent = Instant::now();
        publish(&mut mqtt, "m1", 321.5);
        b.wait_text(r#"#values [data-key="m1/power_kw"]"#, "the value", |t| {
            t == "m1/power_kw = 321.5"
        });
        eprintln!(
            "kit.live: publish to shown on the page {:?}",
            sent.elapsed()
        );
        publish(&mut mqtt, "m1", 950.0);
        b.wait_text(r#"#alerts [data-key="overload/m1"]"#, "the alert", |t| {
            t == "overload m1 950"
        });
        b.wait_text(r#"#values [data-key="m1/power_kw"]"#, "the value", |t| {
            t == "m1/power_kw = 950"
        });
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // Beyond its plugin: the page names meters2 in the bridge message.
    b.in_plugin_frame(|| {
        b.click("#probe");
        b.wait_text("#probe-report", "the probe streams open", |t| {
            t.contains(r#""key":"probe-all","type":"open""#)
                && t.contains(r#""key":"probe-named","type":"open""#)
        });
    });
    publish(&mut mqtt, "x1", 42.0);
    publish(&mut mqtt, "m1", 333.0);
    b.in_plugin_frame(|| {
        let report = b.wait_text("#probe-report", "m1 = 333 on the probe", |t| {
            t.contains(r#""key":"probe-all","type":"latest","device":"m1","value":333"#)
        });
        let report: Value = serde_json::from_str(&report).unwrap();
        assert_eq!(report["request"], 403, "{report}");
        let events = report["events"].as_array().unwrap();
        assert!(
            !events.iter().any(|e| e["device"] == "x1"),
            "the page streamed another plugin's device: {report}"
        );
        assert!(
            !events
                .iter()
                .any(|e| e["key"] == "probe-named" && e["type"] == "latest"),
            "x1 is no device of the page's plugin: {report}"
        );
    });

    // The page reloads itself: the portal ends the streams it had (3, the
    // probes'), and the new document opens its own.
    assert_eq!(open_streams(&k), Some(3));
    b.in_plugin_frame(|| {
        b.script(
            "setTimeout(function () { location.reload(); }, 0); return true;",
            json!([]),
        );
    });
    eventually("one stream after the reload", || {
        (open_streams(&k) == Some(1)).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(open_streams(&k), Some(1), "streams after the reload");
    b.in_plugin_frame(|| {
        b.wait_text(
            r#"#values [data-key="m1/power_kw"]"#,
            "the current value",
            |t| t == "m1/power_kw = 333",
        );
    });

    // The kernel restarts (on the same address): open streams do not hold
    // its shutdown, and the page's stream comes back by itself and shows
    // what was stored since, without a reload.
    let stopping = Instant::now();
    let (_, keep) = k.into_data_dir();
    let stopped = stopping.elapsed();
    assert!(
        stopped < Duration::from_secs(10),
        "shutting down with streams open took {stopped:?}"
    );
    let config = tmp.path().join("telemetry.toml");
    let url = support::mqtt_url();
    let k = TestKernel::start_in(
        &tmp.path().join("data"),
        &[
            "--mqtt-url",
            &url,
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &listen,
        ],
    );
    let restarted = Instant::now();
    publish(&mut mqtt, "m1", 444.0);
    b.in_plugin_frame(|| {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let text = b.script(
                "var n = document.querySelector('#values [data-key=\"m1/power_kw\"]'); return n ? n.textContent : '';",
                json!([]),
            );
            if text == "m1/power_kw = 444" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no value after the restart: {text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    eprintln!(
        "shutdown with streams open {stopped:?}; the page's value back {:?} after the restart",
        restarted.elapsed()
    );
    // The portal loads another view: the page's streams end with it.
    assert_eq!(open_streams(&k), Some(1), "the page's stream is open");
    let leaving = Instant::now();
    b.script("location.hash = '#/todos'; return true;", json!([]));
    eventually("the page's streams closed", || {
        (open_streams(&k) == Some(0)).then_some(())
    });
    eprintln!(
        "streams closed {:?} after leaving the page",
        leaving.elapsed()
    );
    drop(k);
    drop(keep);
}

/// Live streams open on the kernel.
fn open_streams(k: &TestKernel) -> Option<i64> {
    k.get("/api/v1/telemetry/stats").1["live_streams"].as_i64()
}
