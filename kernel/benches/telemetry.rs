//! Telemetry benchmark, on SQLite, with the broker on this machine:
//! - MQTT → stored: readings per second with 100 readings per message and
//!   with one reading per message (QoS 1, acked after commit);
//! - publish → queryable: p99 of the time from a publish until `latest`
//!   shows the reading;
//! - JT/T 808: location reports per second from 2,000 simulated terminals
//!   (registered, authenticated, each sending a batch and single reports);
//! - a month query: consumption per month over one year for 50 buildings
//!   (virtual devices of 20 meters each, 1,000 meters), from roll-ups seeded
//!   as a year of 15-minute data would leave them.
//!
//! Run: `cargo bench -p tianshan-kernel --bench telemetry` (env
//! `TIANSHAN_TEST_MQTT`, default mqtt://127.0.0.1:1883; `BENCH_READINGS`,
//! default 200,000; `BENCH_TERMINALS`, default 2,000). `cargo test` runs it
//! in its short mode (see `common::short_mode`): 2,000 readings, 50
//! terminals.

mod common;

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, MqttOptions, QoS};
use tianshan_kernel::Kernel;
use tianshan_kernel::core::config::Config;
use tianshan_kernel::core::scope::Scope;
use tianshan_kernel::services::telemetry::jt808::sim::Terminal;
use tianshan_kernel::services::telemetry::jt808::{
    Authentication, BatchKind, LocationReport, Message, Registration,
};
use tianshan_kernel::services::telemetry::{
    DeviceInput, DeviceKind, Measure, Protocol, SeriesQuery, Span, Term,
};

const METERS: usize = 1_000;

fn terminals() -> usize {
    common::env_or("BENCH_TERMINALS", 2_000, 50)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Registers devices straight into the table: the benchmark measures
/// ingestion and queries, not registration.
async fn seed_devices(kernel: &Kernel, tag: &str) -> anyhow::Result<()> {
    let channels = r#"[{"name":"kwh","unit":"kWh","kind":"cumulative","min":null,"max":null,"max_step":null},{"name":"power_kw","unit":"kW","kind":"instantaneous","min":null,"max":null,"max_step":null}]"#;
    let mut tx = kernel.db.begin().await?;
    for i in 0..METERS {
        sqlx::query(
            "INSERT INTO tm_devices (plugin_id, id, kind, org_id, protocol, external_id, name, channels, formula, created_at, updated_at)
             VALUES ('bench', $1, 'meter', $2, 'mqtt', $3, $1, $4, '[]', 0, 0)",
        )
        .bind(format!("m{i:04}"))
        .bind(&kernel.root_org)
        .bind(format!("{tag}-m{i:04}"))
        .bind(channels)
        .execute(&mut *tx)
        .await?;
    }
    for i in 0..terminals() {
        sqlx::query(
            "INSERT INTO tm_devices (plugin_id, id, kind, org_id, protocol, external_id, name, channels, formula, created_at, updated_at)
             VALUES ('bench', $1, 'vehicle_terminal', $2, 'jt808', $3, $1, '[]', '[]', 0, 0)",
        )
        .bind(format!("car{i:04}"))
        .bind(&kernel.root_org)
        .bind(format!("1390{i:07}"))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn stored(kernel: &Kernel) -> u64 {
    kernel
        .telemetry
        .stats
        .stored
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Publishes `messages` of `per_message` readings and waits until all are
/// stored; readings per second.
async fn mqtt_rate(
    kernel: &Kernel,
    client: &AsyncClient,
    topic: &str,
    tag: &str,
    total: usize,
    per_message: usize,
    base: i64,
) -> f64 {
    let before = stored(kernel).await;
    let started = Instant::now();
    let messages = total / per_message;
    for m in 0..messages {
        let meter = m % METERS;
        let readings: Vec<serde_json::Value> = (0..per_message)
            .map(|r| {
                let step = (m / METERS * per_message + r) as i64;
                serde_json::json!({"channel": "power_kw", "at": base + step * 1000, "value": step as f64})
            })
            .collect();
        let payload = serde_json::json!({ "readings": readings }).to_string();
        client
            .publish(
                format!("{topic}/{tag}-m{meter:04}"),
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await
            .unwrap();
        // Mosquitto drops what it queues past `max_queued_messages` (1,000
        // by default) for a subscriber: stay under it.
        if m % 100 == 99 {
            let allowed = before + ((m + 1).saturating_sub(700) * per_message) as u64;
            while stored(kernel).await < allowed {
                assert!(
                    started.elapsed() < Duration::from_secs(600),
                    "the kernel fell behind for good (did the broker drop messages?)"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    let want = before + (messages * per_message) as u64;
    while stored(kernel).await < want {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "readings never all arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (messages * per_message) as f64 / started.elapsed().as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let total: usize = common::env_or("BENCH_READINGS", 200_000, 2_000);
    let mqtt_url =
        std::env::var("TIANSHAN_TEST_MQTT").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into());
    if !common::service_ready("an MQTT broker", &mqtt_url, 1883) {
        return Ok(());
    }
    let terminal_count = terminals();
    let probes: i64 = common::env_or("BENCH_PROBES", 200, 20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    sqlx::any::install_default_drivers();
    runtime.block_on(async move {
        let data = tempfile::tempdir()?;
        let tag = format!("b{}", std::process::id());
        let topic = format!("{tag}/telemetry");
        let jt808 = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut config = Config {
            data_dir: data.path().join("data"),
            ..Config::default()
        };
        config.telemetry.mqtt_url = Some(mqtt_url.clone());
        config.telemetry.mqtt_topic = topic.clone();
        config.telemetry.mqtt_shared_group = String::new();
        config.telemetry.jt808_listen = Some(jt808);
        let kernel = Kernel::open(config).await?.kernel;
        kernel.start_background();
        seed_devices(&kernel, &tag).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;

        let (host, port, _) = tianshan_kernel::services::telemetry::mqtt::parse_url(&mqtt_url).map_err(anyhow::Error::msg)?;
        let mut options = MqttOptions::new(format!("{tag}-pub"), host, port);
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 10_000);
        tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
        tokio::time::sleep(Duration::from_millis(300)).await;

        let base = now_ms() - 100 * 86_400_000;
        let batched = mqtt_rate(&kernel, &client, &topic, &tag, total, 100, base).await;
        let single = mqtt_rate(&kernel, &client, &topic, &tag, total / 10, 1, base + 50 * 86_400_000).await;

        // Publish → queryable, one reading at a time.
        let scope = Scope {
            plugin: "bench".into(),
            ..Scope::for_user(kernel.authz.orgs(), &kernel.root_org, "bench", "bench")
        };
        let mut waits = Vec::new();
        for i in 0..probes {
            let at = now_ms() - 60_000 + i;
            let started = Instant::now();
            client
                .publish(
                    format!("{topic}/{tag}-m0001"),
                    QoS::AtLeastOnce,
                    false,
                    serde_json::json!({"channel": "power_kw", "at": at, "value": i}).to_string(),
                )
                .await?;
            loop {
                let latest = kernel.telemetry.latest(&scope, &["m0001".to_string()]).await?;
                if latest.iter().any(|l| l.channel == "power_kw" && l.at == at) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            waits.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        waits.sort_by(f64::total_cmp);
        let p99 = waits[waits.len() * 99 / 100 - 1];

        // JT/T 808: every terminal registers and authenticates, then sends a
        // batch of 4 and one single report; all at once.
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let reports_each = 5;
        let t0 = now_ms() / 1000 - 3600;
        for i in 0..terminal_count {
            tasks.spawn(async move {
                let phone = format!("1390{i:07}");
                let mut t = Terminal::connect(jt808, &phone).await.unwrap();
                let reg = Registration { plate: format!("新A{i:05}"), ..Registration::default() };
                let code = t.register(&reg).await.unwrap().outcome.unwrap();
                let serial = t
                    .send(&Message::Authenticate(Authentication { code, ..Authentication::default() }))
                    .await
                    .unwrap();
                t.general_answer(serial).await.unwrap();
                let report = |k: i64| LocationReport {
                    alarm: 0,
                    status: 0b11,
                    latitude: 43.8 + i as f64 * 1e-5,
                    longitude: 87.6,
                    altitude_m: 800,
                    speed_kmh: 40.0,
                    heading: 0,
                    at: t0 + k,
                    mileage_km: None,
                    signal: None,
                    satellites: None,
                    extras: vec![],
                };
                let batch: Vec<LocationReport> = (0..4).map(report).collect();
                t.batch(BatchKind::Normal, &batch).await.unwrap();
                t.location(&report(4)).await.unwrap();
            });
        }
        while let Some(done) = tasks.join_next().await {
            done?;
        }
        let jt808_rate = (terminal_count * reports_each) as f64 / started.elapsed().as_secs_f64();

        // A month query: 50 buildings of 20 meters, a year of roll-ups.
        let year_start = kernel.telemetry.bucket_start(Span::Month, now_ms() - 365 * 86_400_000);
        let mut tx = kernel.db.begin().await?;
        for m in 0..METERS {
            let mut sql = String::from("INSERT INTO tm_rollups (plugin_id, device_id, channel, span, start, n, total, low, high, last, last_at) VALUES ");
            let mut rows = Vec::new();
            let mut start = year_start;
            for month in 0..12 {
                rows.push(format!("('bench','m{m:04}','kwh','month',{start},2900,{},0,1,1,{start})", 1000 + month));
                start = kernel.telemetry.bucket_start(Span::Month, start + 32 * 86_400_000);
            }
            sql.push_str(&rows.join(","));
            sqlx::query(&sql).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        for b in 0..50 {
            let terms = (0..20)
                .map(|j| Term { device: format!("m{:04}", b * 20 + j), channel: "kwh".into(), coefficient: 1.0 })
                .collect();
            kernel
                .telemetry
                .register(
                    &scope,
                    DeviceInput {
                        id: format!("building{b:02}"),
                        kind: DeviceKind::Meter,
                        org: None,
                        protocol: Protocol::Virtual,
                        external_id: String::new(),
                        name: format!("{b}号楼"),
                        channels: vec![tianshan_kernel::services::telemetry::Channel {
                            name: "kwh".into(),
                            unit: "kWh".into(),
                            kind: tianshan_kernel::services::telemetry::ChannelKind::Cumulative,
                            min: None,
                            max: None,
                            max_step: None,
                        }],
                        formula: terms,
                    },
                )
                .await?;
        }
        let query = SeriesQuery {
            devices: (0..50).map(|b| format!("building{b:02}")).collect(),
            within_org: kernel.root_org.clone(),
            channel: "kwh".into(),
            from: year_start,
            to: now_ms() + 86_400_000,
            span: Span::Month,
            measure: Measure::Sum,
            per_device: true,
        };
        let mut best = f64::MAX;
        let mut rows = 0;
        for _ in 0..5 {
            let started = Instant::now();
            rows = kernel.telemetry.aggregate(&scope, &query).await?.len();
            best = best.min(started.elapsed().as_secs_f64() * 1000.0);
        }
        assert_eq!(rows, 50 * 12, "a row per building and month");

        println!("MQTT, 100 readings per message: {batched:.0} readings/s ({total} readings)");
        println!("MQTT, 1 reading per message: {single:.0} readings/s ({} readings)", total / 10);
        println!("publish → queryable over {probes} single readings: p99 {p99:.1} ms");
        println!("JT/T 808, {terminal_count} terminals × {reports_each} reports: {jt808_rate:.0} reports/s (connect, register and authenticate included)");
        println!("month query, 50 buildings × 20 meters × 12 months: best of 5 {best:.1} ms");
        println!(
            "RESULT mqtt_readings_per_s={batched:.0} jt808_reports_per_s={jt808_rate:.0} publish_to_query_p99_ms={p99:.1} month_query_ms={best:.1}"
        );
        anyhow::Ok(())
    })
}
