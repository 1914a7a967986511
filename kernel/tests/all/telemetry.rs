//! Telemetry end to end: the test plugin `meters` registers devices, a real
//! Mosquitto carries readings to a kernel started with `--mqtt-url`, the
//! HTTP batch endpoint takes the rest, and the plugin reads roll-ups,
//! latest values and alerts back through the contract.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::identity::{TwoCounties, person, two_counties};
use crate::services::PgDatabase;
use crate::support::{self, TestKernel};

const P: &str = "/api/v1/p/meters";
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

/// A minimal MQTT 3.1.1 publisher (QoS 1, waiting for each PUBACK), so the
/// test needs the broker and nothing else.
pub struct Publisher {
    stream: TcpStream,
    next_id: u16,
}

fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    remaining_length(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

fn text(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Publisher {
    pub fn connect(client_id: &str) -> Publisher {
        let url = support::mqtt_url();
        let addr = url.trim_start_matches("mqtt://").trim_end_matches('/');
        let mut stream = TcpStream::connect(addr).expect("connecting to the MQTT broker");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut body = Vec::new();
        text("MQTT", &mut body);
        body.extend_from_slice(&[4, 0x02, 0, 60]);
        text(client_id, &mut body);
        stream.write_all(&packet(0x10, &body)).unwrap();
        let mut ack = [0u8; 4];
        stream.read_exact(&mut ack).unwrap();
        assert_eq!(ack, [0x20, 2, 0, 0], "CONNACK");
        Publisher { stream, next_id: 1 }
    }

    /// Publishes each (topic, payload) with QoS 1 and waits for all PUBACKs.
    pub fn publish_all(&mut self, messages: &[(String, String)]) {
        let mut wanted = Vec::new();
        let mut out = Vec::new();
        for (topic, payload) in messages {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            let mut body = Vec::new();
            text(topic, &mut body);
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(payload.as_bytes());
            out.extend(packet(0x32, &body));
            wanted.push(id);
        }
        self.stream.write_all(&out).unwrap();
        for _ in &wanted {
            let mut ack = [0u8; 4];
            self.stream.read_exact(&mut ack).unwrap();
            assert_eq!(ack[0], 0x40, "PUBACK");
        }
    }

    pub fn publish(&mut self, topic: &str, payload: Value) {
        self.publish_all(&[(topic.to_string(), payload.to_string())]);
    }
}

fn call(
    k: &TestKernel,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let body = (!body.is_null()).then(|| body.to_string().into_bytes());
    k.request(method, path, token, body)
}

fn ok(k: &TestKernel, method: &str, path: &str, body: Value, want: u16) -> Value {
    let (status, out) = call(k, None, method, path, body);
    assert_eq!(status, want, "{method} {path}: {out}");
    out
}

/// Polls `probe` until it answers `Some`, for up to a minute (the whole
/// suite runs beside it on two cores).
pub(crate) fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A kernel reading its own topic, so tests running side by side each get
/// their own messages.
pub(crate) fn start(database: Option<&str>, topic: &str, dir: &std::path::Path) -> TestKernel {
    let config = dir.join("telemetry.toml");
    std::fs::write(
        &config,
        format!("[telemetry]\nmqtt-topic = \"{topic}\"\nmqtt-shared-group = \"\"\n"),
    )
    .unwrap();
    let url = support::mqtt_url();
    let mut args = vec![
        "--mqtt-url",
        url.as_str(),
        "--config",
        config.to_str().unwrap(),
    ];
    if let Some(db) = database {
        args.extend(["--database-url", db]);
    }
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TestKernel::start_in(&dir.join("data"), &args)
}

fn buckets(out: &Value) -> Vec<(i64, f64)> {
    out["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets in {out}"))
        .iter()
        .map(|b| (b["start"].as_i64().unwrap(), b["value"].as_f64().unwrap()))
        .collect()
}

fn scenario(k: &TestKernel, topic: &str) {
    let TwoCounties {
        county_a,
        county_b,
        unit_b,
        ..
    } = two_counties(k);
    k.install_ok("meters");
    let tag = topic.replace('/', "-");
    let ext = |name: &str| format!("{tag}-{name}");
    let counter = json!({"name": "kwh", "unit": "kWh", "kind": "cumulative", "min": 0.0, "max": null, "max_step": 1000.0});
    let level = json!({"name": "power_kw", "unit": "kW", "kind": "instantaneous", "min": 0.0, "max": 10000.0, "max_step": null});
    let device = |id: &str,
                  org: &str,
                  protocol: &str,
                  external: &str,
                  channels: Value,
                  formula: Value| {
        json!({"id": id, "kind": "meter", "org": org, "protocol": protocol, "external_id": external,
               "name": format!("表 {id}"), "channels": channels, "formula": formula})
    };
    for d in [
        device(
            "m1",
            &county_a,
            "mqtt",
            &ext("M1"),
            json!([counter, level]),
            json!([]),
        ),
        device(
            "m2",
            &county_a,
            "mqtt",
            &ext("M2"),
            json!([counter]),
            json!([]),
        ),
        device(
            "h1",
            &county_a,
            "http",
            &ext("H1"),
            json!([counter]),
            json!([]),
        ),
        device(
            "b1",
            &county_b,
            "mqtt",
            &ext("B1"),
            json!([counter]),
            json!([]),
        ),
        device(
            "building",
            &county_a,
            "virtual",
            "",
            json!([counter]),
            json!([{"device": "m1", "channel": "kwh", "coefficient": 1.0},
                   {"device": "m2", "channel": "kwh", "coefficient": -1.0}]),
        ),
    ] {
        ok(k, "POST", &format!("{P}/devices"), d, 201);
    }
    // An external id reports for one device only.
    let (status, out) = call(
        k,
        None,
        "POST",
        &format!("{P}/devices"),
        device(
            "m9",
            &county_a,
            "mqtt",
            &ext("M1"),
            json!([counter]),
            json!([]),
        ),
    );
    assert_eq!(status, 409, "{out}");
    ok(
        k,
        "POST",
        &format!("{P}/rules"),
        json!({"name": "overload", "devices": [], "condition": {"above": ["power_kw", 800.0]}}),
        204,
    );

    // Readings over MQTT: a counter every 15 minutes within one hour.
    let t0 = (support_now() - 3 * HOUR) / HOUR * HOUR;
    let mut mqtt = Publisher::connect(&format!("{tag}-test"));
    let at = |m: i64| t0 + m * MIN;
    let t = |name: &str| format!("{topic}/{}", ext(name));
    mqtt.publish(
        &t("M1"),
        json!({"at": at(0), "values": {"kwh": 100.0, "power_kw": 500.0}}),
    );
    mqtt.publish(
        &t("M1"),
        json!({"channel": "kwh", "at": at(15), "value": 110.0}),
    );
    mqtt.publish(
        &t("M1"),
        json!({"readings": [{"channel": "kwh", "at": at(30), "value": 125.0},
                            {"channel": "power_kw", "at": at(30), "value": 900.0}]}),
    );
    mqtt.publish(
        &t("M2"),
        json!({"readings": [{"channel": "kwh", "at": at(0), "value": 10.0},
                                              {"channel": "kwh", "at": at(30), "value": 14.0}]}),
    );
    // Refused: not JSON, an unknown device, a value out of range.
    mqtt.publish_all(&[
        (t("M1"), "{not json".into()),
        (
            t("NOBODY"),
            json!({"channel": "kwh", "at": at(0), "value": 1}).to_string(),
        ),
        (
            t("M1"),
            json!({"channel": "power_kw", "at": at(5), "value": 99999}).to_string(),
        ),
    ]);
    let aggregate = |query: &str| {
        let (status, out) = call(
            k,
            None,
            "GET",
            &format!("{P}/aggregate?{query}"),
            Value::Null,
        );
        assert_eq!(status, 200, "{query}: {out}");
        buckets(&out)
    };
    let range = format!("from={}&to={}", t0, t0 + 24 * HOUR);
    // The counter's increments: 0 (its first reading), 10, 15.
    eventually("m1's hour", || {
        let b = aggregate(&format!("channel=kwh&devices=m1&interval=hour&{range}"));
        (b == [(t0, 25.0)]).then_some(())
    });
    assert_eq!(
        aggregate(&format!("channel=kwh&devices=m1&interval=15m&{range}")),
        [(t0, 0.0), (t0 + 15 * MIN, 10.0), (t0 + 30 * MIN, 15.0)]
    );
    eventually("m2's hour", || {
        let b = aggregate(&format!("channel=kwh&devices=m2&interval=hour&{range}"));
        (b == [(t0, 4.0)]).then_some(())
    });
    // The set in county A (m1, m2, h1 and the virtual building), one series.
    let day = aggregate(&format!(
        "channel=kwh&interval=day&org={county_a}&devices=m1,m2&{range}"
    ));
    assert_eq!(day.iter().map(|b| b.1).sum::<f64>(), 29.0, "{day:?}");
    // The virtual building is m1 − m2.
    assert_eq!(
        aggregate(&format!(
            "channel=kwh&devices=building&interval=hour&{range}"
        )),
        [(t0, 21.0)]
    );
    let (status, out) = call(
        k,
        None,
        "GET",
        &format!("{P}/aggregate?channel=kwh&devices=building&interval=hour&measure=max&{range}"),
        Value::Null,
    );
    assert_eq!(status, 422, "{out}");
    // Levels roll up as values.
    assert_eq!(
        aggregate(&format!(
            "channel=power_kw&devices=m1&interval=hour&measure=max&{range}"
        )),
        [(t0, 900.0)]
    );
    assert_eq!(
        aggregate(&format!(
            "channel=power_kw&devices=m1&interval=hour&measure=avg&{range}"
        )),
        [(t0, 700.0)]
    );

    // The counter goes backwards, jumps, or repeats a time: kept and
    // flagged, never summed.
    mqtt.publish(
        &t("M1"),
        json!({"channel": "kwh", "at": at(45), "value": 50.0}),
    );
    mqtt.publish(
        &t("M1"),
        json!({"channel": "kwh", "at": at(50), "value": 5000.0}),
    );
    mqtt.publish(
        &t("M1"),
        json!({"channel": "kwh", "at": at(15), "value": 110.0}),
    );
    let (_, latest) = eventually("the reset to be latest", || {
        let (status, out) = call(
            k,
            None,
            "GET",
            &format!("{P}/latest?devices=m1"),
            Value::Null,
        );
        let kwh = out["latest"]
            .as_array()?
            .iter()
            .find(|l| l["channel"] == "kwh")?
            .clone();
        (status == 200 && kwh["at"] == at(50)).then_some((status, kwh))
    });
    assert_eq!(latest["quality"], "jump", "{latest}");
    assert_eq!(
        aggregate(&format!("channel=kwh&devices=m1&interval=hour&{range}")),
        [(t0, 25.0)],
        "flagged readings are not summed"
    );

    // The rule: 900 kW broke it once; staying above does not alert again,
    // falling back and breaking it again does.
    let alerts = |n: usize| {
        eventually(&format!("{n} alerts"), || {
            let (_, out) = call(k, None, "GET", &format!("{P}/alerts"), Value::Null);
            let list = out["alerts"].as_array()?.clone();
            (list.len() >= n).then_some(list)
        })
    };
    let first = alerts(1);
    assert_eq!(first[0]["rule"], "overload", "{first:?}");
    assert_eq!(first[0]["device"], "m1");
    assert_eq!(first[0]["org"], county_a.as_str());
    assert_eq!(first[0]["detail"]["value"], 900.0);
    mqtt.publish(
        &t("M1"),
        json!({"channel": "power_kw", "at": at(31), "value": 950.0}),
    );
    mqtt.publish(
        &t("M1"),
        json!({"channel": "power_kw", "at": at(32), "value": 100.0}),
    );
    mqtt.publish(
        &t("M1"),
        json!({"channel": "power_kw", "at": at(33), "value": 1200.0}),
    );
    let both = alerts(2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(alerts(2).len(), 2, "one alert per breach: {both:?}");

    // The HTTP batch endpoint, JSON and a CSV bill sheet.
    let out = ok(
        k,
        "POST",
        "/api/v1/telemetry/readings",
        json!({"readings": [
            {"device": ext("H1"), "channel": "kwh", "at": at(0), "value": 7.0},
            {"device": ext("H1"), "channel": "kwh", "at": at(30), "value": 9.5},
            {"device": "no-such-meter", "channel": "kwh", "at": at(0), "value": 1.0},
        ]}),
        200,
    );
    assert_eq!(out["stored"], 2, "{out}");
    assert_eq!(out["rejected"], 1, "{out}");
    let csv = format!(
        "device,channel,at,value\n{},kwh,{},12.5\n",
        ext("H1"),
        at(60)
    );
    let (status, bytes, _) = k.raw(
        "POST",
        "/api/v1/telemetry/readings",
        None,
        Some(csv.into_bytes()),
        &[("content-type", "text/csv")],
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(
        aggregate(&format!("channel=kwh&devices=h1&interval=hour&{range}")),
        [(t0, 2.5), (t0 + HOUR, 3.0)]
    );

    // Another county's manager sees only their own devices, and cannot
    // post for county A's.
    let manager_b = person(k, "tm.manager.b", &unit_b, &[("org-admin", &county_b)]);
    let (status, out) = call(
        k,
        Some(&manager_b),
        "GET",
        &format!("{P}/devices"),
        Value::Null,
    );
    assert_eq!(status, 200, "{out}");
    let ids: Vec<&str> = out["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["b1"], "{out}");
    let (status, _) = call(
        k,
        Some(&manager_b),
        "GET",
        &format!("{P}/aggregate?channel=kwh&devices=m1&{range}"),
        Value::Null,
    );
    assert_eq!(status, 404);
    let (status, _) = call(
        k,
        Some(&manager_b),
        "GET",
        &format!("{P}/devices?org={county_a}"),
        Value::Null,
    );
    assert_eq!(status, 403);
    let (status, out) = call(
        k,
        Some(&manager_b),
        "POST",
        "/api/v1/telemetry/readings",
        json!({"readings": [{"device": ext("H1"), "channel": "kwh", "at": at(90), "value": 99.0}]}),
    );
    assert_eq!(status, 403, "{out}");
    // A device registered at an org outside the caller's reach is refused.
    let (status, out) = call(
        k,
        Some(&manager_b),
        "POST",
        &format!("{P}/devices"),
        device(
            "sneaky",
            &county_a,
            "mqtt",
            &ext("S1"),
            json!([counter]),
            json!([]),
        ),
    );
    assert_eq!(status, 403, "{out}");

    // Administrators see what was refused or flagged, and why.
    let out = ok(
        k,
        "GET",
        "/api/v1/telemetry/rejected?limit=200",
        Value::Null,
        200,
    );
    let reasons: Vec<&str> = out["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reason"].as_str().unwrap())
        .collect();
    for reason in [
        "malformed",
        "unknown_device",
        "out_of_range",
        "counter_backwards",
        "counter_jump",
        "duplicate",
    ] {
        assert!(
            reasons.contains(&reason),
            "{reason} missing from {reasons:?}"
        );
    }
    let (status, _) = call(
        k,
        Some(&manager_b),
        "GET",
        "/api/v1/telemetry/rejected",
        Value::Null,
    );
    assert_eq!(
        status, 403,
        "county admins do not read the platform's refusals"
    );
}

pub(crate) fn support_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn telemetry_over_mqtt_and_http_on_sqlite() {
    if !support::have(support::Service::Mqtt) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let topic = format!("t{}s/telemetry", std::process::id());
    let k = start(None, &topic, tmp.path());
    scenario(&k, &topic);
}

#[test]
fn telemetry_over_mqtt_and_http_on_postgres() {
    if !support::have(support::Service::Mqtt) || !support::have(support::Service::Postgres) {
        return;
    }
    let db = PgDatabase::create();
    let tmp = tempfile::tempdir().unwrap();
    let topic = format!("t{}p/telemetry", std::process::id());
    let k = start(Some(&db.url), &topic, tmp.path());
    scenario(&k, &topic);
    // Raw readings sit in their month's partition, not in the default one.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (partitions, in_default, total): (i64, i64, i64) = rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let partitions = sqlx::query_scalar(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
             WHERE p.relname = 'tm_readings'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let in_default = sqlx::query_scalar("SELECT count(*) FROM tm_readings_default")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let total = sqlx::query_scalar("SELECT count(*) FROM tm_readings")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        (partitions, in_default, total)
    });
    assert!(
        partitions >= 14,
        "monthly partitions and the default: {partitions}"
    );
    assert!(total > 0);
    assert_eq!(
        in_default, 0,
        "readings of this month belong in its partition"
    );
}

/// SIGKILL while readings stream in loses none the broker holds: the kernel
/// acks a message only after its batch committed, and the restarted kernel
/// (same MQTT session) is handed every message it had not acked.
#[test]
fn a_killed_kernel_loses_no_acknowledged_reading() {
    if !support::have(support::Service::Mqtt) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let topic = format!("t{}k/telemetry", std::process::id());
    let k = start(None, &topic, tmp.path());
    k.install_ok("meters");
    let ext = format!("t{}k-M", std::process::id());
    ok(
        &k,
        "POST",
        &format!("{P}/devices"),
        json!({"id": "m", "kind": "meter", "org": null, "protocol": "mqtt", "external_id": ext,
               "name": "总表", "formula": [],
               "channels": [{"name": "power_kw", "unit": "kW", "kind": "instantaneous", "min": null, "max": null, "max_step": null}]}),
        201,
    );
    let t0 = (support_now() - 2 * HOUR) / HOUR * HOUR;
    // Mosquitto queues at most 1,000 messages for a session by default
    // (`max_queued_messages`) and drops the rest: the kill comes once 600
    // of the first 1,000 are stored, and 300 more wait while the kernel is
    // down, so at most 700 are ever queued, however slow the machine.
    const N: i64 = 1300;
    let messages: Vec<(String, String)> = (0..N)
        .map(|i| {
            (
                format!("{topic}/{ext}"),
                json!({"channel": "power_kw", "at": t0 + i * 1000, "value": i as f64}).to_string(),
            )
        })
        .collect();
    let mut mqtt = Publisher::connect(&format!("t{}k-test", std::process::id()));
    mqtt.publish_all(&messages[..1000]);
    // Kill mid-stream, without a chance to flush or ack.
    let stored = |k: &TestKernel| -> i64 {
        let (_, out) = call(
            k,
            None,
            "GET",
            &format!(
                "{P}/aggregate?channel=power_kw&devices=m&interval=day&measure=count&from={t0}&to={}",
                t0 + 2 * N * 1000
            ),
            Value::Null,
        );
        buckets(&out).iter().map(|b| b.1).sum::<f64>() as i64
    };
    eventually("600 readings", || (stored(&k) >= 600).then_some(()));
    let pid = k.pid();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    let (_, keep) = k.into_data_dir();
    // While it is down, the rest waits at the broker for its session.
    mqtt.publish_all(&messages[1000..]);
    let k = start(None, &topic, tmp.path());
    let count = eventually("every reading", || {
        let n = stored(&k);
        (n == N).then_some(n)
    });
    assert_eq!(count, N);
    drop(keep);
}

/// A kernel whose JT/T 808 server listens on a free port: the kernel, the
/// address terminals connect to, and the folder its data lives in (kept
/// as long as the kernel).
pub(crate) fn kernel_with_jt808() -> (TestKernel, std::net::SocketAddr, tempfile::TempDir) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let k = TestKernel::start_in(
        &tmp.path().join("data"),
        &["--jt808-listen", &addr.to_string()],
    );
    (k, addr, tmp)
}

/// A moving terminal's report at `at` (Unix seconds) on the meridian of
/// Urumqi's People's Square.
pub(crate) fn location_at(
    at: i64,
    latitude: f64,
    speed_kmh: f64,
    mileage_km: f64,
) -> tianshan_kernel::services::telemetry::jt808::LocationReport {
    tianshan_kernel::services::telemetry::jt808::LocationReport {
        alarm: 0,
        status: 0b11,
        latitude,
        longitude: 87.6239,
        altitude_m: 800,
        speed_kmh,
        heading: 90,
        at,
        mileage_km: Some(mileage_km),
        signal: None,
        satellites: None,
        extras: vec![],
    }
}

/// What a terminal of `plate` registers with.
pub(crate) fn registration(
    plate: &str,
) -> tianshan_kernel::services::telemetry::jt808::Registration {
    tianshan_kernel::services::telemetry::jt808::Registration {
        province: 65,
        city: 100,
        maker: "70111".into(),
        model: "SIM-808".into(),
        terminal_id: "T000001".into(),
        plate_colour: 2,
        plate: plate.into(),
    }
}

/// A vehicle terminal over JT/T 808 (the simulator the kernel ships for
/// tests): an undeclared phone cannot register; the declared one
/// registers, authenticates and reports, through a torn frame, a bad
/// checksum and a reconnect; its track and speed reach the plugin, and
/// leaving the allowed circle alerts once.
#[test]
fn a_vehicle_terminal_reports_over_jt808() {
    use tianshan_kernel::services::telemetry::jt808::sim::Terminal;
    use tianshan_kernel::services::telemetry::jt808::{
        Authentication, BatchKind, LocationReport, Message, ResponseResult,
    };
    let (k, addr, _data) = kernel_with_jt808();
    k.install_ok("meters");
    let phone = format!("139{:08}", std::process::id() % 100_000_000);
    ok(
        &k,
        "POST",
        &format!("{P}/devices"),
        json!({"id": "car-1", "kind": "vehicle_terminal", "org": null, "protocol": "jt808",
               "external_id": phone, "name": "新A12345", "formula": [],
               "channels": [{"name": "speed_kmh", "unit": "km/h", "kind": "instantaneous",
                             "min": 0.0, "max": 250.0, "max_step": null}]}),
        201,
    );
    // Within 5 km of the People's Square in Urumqi.
    ok(
        &k,
        "POST",
        &format!("{P}/rules"),
        json!({"name": "city-only", "devices": ["car-1"],
               "condition": {"outside_circle": [43.7953, 87.6239, 5000.0]}}),
        204,
    );
    let now = support_now() / 1000;
    let report = |i: i64, latitude: f64, speed: f64| {
        location_at(now - 600 + i, latitude, speed, 1000.0 + i as f64)
    };
    let registration = registration("新A12345");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // A phone no plugin declared is turned away.
        let mut stranger = Terminal::connect(addr, "13800000000").await.unwrap();
        let refused = stranger.register(&registration).await.unwrap();
        assert!(refused.outcome.is_err(), "{refused:?}");

        let mut car = Terminal::connect(addr, &phone).await.unwrap();
        // Before authentication a location is refused, not stored.
        let early = car.location(&report(0, 43.7953, 30.0)).await.unwrap();
        assert_eq!(early.result, ResponseResult::Failure);
        let code = car.register(&registration).await.unwrap().outcome.unwrap();
        let serial = car
            .send(&Message::Authenticate(Authentication {
                code: code.clone(),
                ..Authentication::default()
            }))
            .await
            .unwrap();
        assert_eq!(
            car.general_answer(serial).await.unwrap().result,
            ResponseResult::Ok
        );
        for i in 1..=3 {
            let answer = car
                .location(&report(i, 43.7953 + i as f64 * 0.001, 40.0))
                .await
                .unwrap();
            assert_eq!(answer.result, ResponseResult::Ok);
        }
        // A torn frame is put back together; a bad checksum is answered
        // and the connection goes on.
        let torn = car
            .send_torn(
                &Message::Location(report(4, 43.80, 45.0)),
                Duration::from_millis(100),
            )
            .await
            .unwrap();
        assert_eq!(
            car.general_answer(torn).await.unwrap().result,
            ResponseResult::Ok
        );
        let bad = car
            .send_bad_checksum(&Message::Location(report(5, 43.80, 45.0)))
            .await
            .unwrap();
        assert_eq!(
            car.general_answer(bad).await.unwrap().result,
            ResponseResult::BadMessage
        );
        // Reconnect, authenticate again, and send a backfill batch that
        // leaves the circle (about 22 km north).
        car.reconnect().await.unwrap();
        let serial = car
            .send(&Message::Authenticate(Authentication {
                code,
                ..Authentication::default()
            }))
            .await
            .unwrap();
        assert_eq!(
            car.general_answer(serial).await.unwrap().result,
            ResponseResult::Ok
        );
        let batch: Vec<LocationReport> = (6..=9).map(|i| report(i, 44.0, 60.0)).collect();
        let answer = car.batch(BatchKind::Backfill, &batch).await.unwrap();
        assert_eq!(answer.result, ResponseResult::Ok);
    });
    let (status, out) = call(
        &k,
        None,
        "GET",
        &format!(
            "{P}/track?device=car-1&from={}&to={}",
            (now - 3600) * 1000,
            (now + 60) * 1000
        ),
        Value::Null,
    );
    assert_eq!(status, 200, "{out}");
    let points = out["points"].as_array().unwrap();
    // 1-4 and 6-9: the refused early report and the bad frame are not there.
    assert_eq!(points.len(), 8, "{out}");
    assert_eq!(points[0]["speed_kmh"], 40.0);
    assert!(
        (points[7]["latitude"].as_f64().unwrap() - 44.0).abs() < 1e-6,
        "{out}"
    );
    let (_, latest) = call(
        &k,
        None,
        "GET",
        &format!("{P}/latest?devices=car-1"),
        Value::Null,
    );
    assert_eq!(latest["latest"][0]["channel"], "speed_kmh", "{latest}");
    assert_eq!(latest["latest"][0]["value"], 60.0, "{latest}");
    let alerts = eventually("the geofence alert", || {
        let (_, out) = call(&k, None, "GET", &format!("{P}/alerts"), Value::Null);
        let list = out["alerts"].as_array()?.clone();
        (!list.is_empty()).then_some(list)
    });
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["rule"], "city-only");
    assert_eq!(alerts[0]["device"], "car-1");
}
