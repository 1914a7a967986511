//! The data center end to end against real kernels: values published by a
//! plugin (through the WIT import) roll up from counties to prefectures and
//! the region; org scope and sharing are enforced by the kernel; the open
//! API, CSV and XLSX exports, the catalogue and the plan's progress query.
//! The same scenario runs on SQLite and PostgreSQL.

use serde_json::{Value, json};
use tianshan_kernel::identity::orgs::unified_social_credit_code;

use crate::identity::{PASSWORD, bind, ok, org, user};
use crate::services::PgDatabase;
use crate::support;
use crate::support::{TestKernel, packages};

const PROBE: &str = "/api/v1/p/dcprobe";
const PROBE2: &str = "/api/v1/p/dcprobe2";
const ROOT: &str = "org-650000";

/// region ─┬ prefecture 650100 ─┬ county 650102 (A) ─ unit UA
///         │                    └ county 650103 (B)
///         └ prefecture 650200 ── county 650202 (C)
struct World {
    prefecture: String,
    prefecture_2: String,
    county_a: String,
    county_b: String,
    county_c: String,
    /// org-admin of county A.
    county_admin: String,
    /// member of county A's unit.
    member: String,
}

fn world(k: &TestKernel) -> World {
    let prefecture = org(k, ROOT, "prefecture", "650100", "乌鲁木齐市");
    let county_a = org(k, &prefecture, "county", "650102", "天山区");
    let county_b = org(k, &prefecture, "county", "650103", "沙依巴克区");
    let prefecture_2 = org(k, ROOT, "prefecture", "650200", "克拉玛依市");
    let county_c = org(k, &prefecture_2, "county", "650202", "独山子区");
    let unit_a = org(
        k,
        &county_a,
        "unit",
        &unified_social_credit_code("650102", 1),
        "天山区机关事务服务中心",
    );
    let admin_a = user(k, "dc.admin.a", &unit_a);
    bind(k, &admin_a, "org-admin", &county_a);
    user(k, "dc.member.a", &unit_a);
    World {
        county_admin: k.login("dc.admin.a", PASSWORD),
        member: k.login("dc.member.a", PASSWORD),
        prefecture,
        prefecture_2,
        county_a,
        county_b,
        county_c,
    }
}

fn call(
    k: &TestKernel,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    k.request(
        method,
        path,
        token,
        body.map(|b| b.to_string().into_bytes()),
    )
}

fn publish(
    k: &TestKernel,
    token: Option<&str>,
    base: &str,
    code: &str,
    values: Value,
) -> (u16, Value) {
    call(
        k,
        token,
        "POST",
        &format!("{base}/publish"),
        Some(json!({"code": code, "values": values})),
    )
}

fn rows(out: &Value) -> Vec<(String, String, f64)> {
    out["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows in {out}"))
        .iter()
        .map(|r| {
            (
                r["org"].as_str().unwrap().to_string(),
                r["period"].as_str().unwrap().to_string(),
                r["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn probe_query(k: &TestKernel, token: Option<&str>, base: &str, query: &str) -> (u16, Value) {
    call(k, token, "GET", &format!("{base}/query?{query}"), None)
}

fn start(database: Option<&str>) -> (TestKernel, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec![];
    if let Some(url) = database {
        args.extend(["--database-url", url]);
    }
    let k = TestKernel::start_in(&tmp.path().join("data"), &args);
    k.install_ok("dcprobe");
    (k, tmp)
}

/// County values published through the plugin roll up to the prefecture
/// and the region, over orgs and over periods.
fn rollup(k: &TestKernel, w: &World) {
    let (status, out) = publish(
        k,
        None,
        PROBE,
        "dcprobe.visits",
        json!([
            {"org": w.county_a, "period": "2025-01", "value": 100},
            {"org": w.county_a, "period": "2025-02", "value": 50},
            {"org": w.county_b, "period": "2025-01", "value": 30},
            {"org": w.county_c, "period": "2025-03", "value": 7},
            // The prefecture's own units, published at the prefecture.
            {"org": w.prefecture, "period": "2025-02", "value": 5},
        ]),
    );
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["stored"], 5);
    // Publishing again replaces, it does not add.
    let (status, _) = publish(
        k,
        None,
        PROBE,
        "dcprobe.visits",
        json!([{"org": w.county_c, "period": "2025-03", "value": 7}]),
    );
    assert_eq!(status, 201);

    let at = |org: &str, extra: &str| {
        let (status, out) = probe_query(
            k,
            None,
            PROBE,
            &format!("code=dcprobe.visits&org={org}{extra}"),
        );
        assert_eq!(status, 200, "{out}");
        rows(&out)
    };
    // Region, per year: everything.
    assert_eq!(at(ROOT, "&per=year"), [(ROOT.into(), "2025".into(), 192.0)]);
    // Prefecture 650100: its counties and its own value, not 650200's.
    assert_eq!(
        at(&w.prefecture, "&per=year"),
        [(w.prefecture.clone(), "2025".into(), 185.0)]
    );
    assert_eq!(
        at(&w.prefecture, "&per=quarter"),
        [(w.prefecture.clone(), "2025-Q1".into(), 185.0)]
    );
    // Per month (the indicator's own granularity).
    assert_eq!(
        at(&w.prefecture, ""),
        [
            (w.prefecture.clone(), "2025-01".into(), 130.0),
            (w.prefecture.clone(), "2025-02".into(), 55.0)
        ]
    );
    // Period bounds.
    assert_eq!(
        at(ROOT, "&per=year&from=2025-02&to=2025-03"),
        [(ROOT.into(), "2025".into(), 62.0)]
    );
    // One row for the org and one per child.
    let by_org = at(ROOT, "&per=year&by_org=1");
    assert_eq!(by_org.len(), 3, "{by_org:?}");
    assert!(by_org.contains(&(ROOT.into(), "2025".into(), 192.0)));
    assert!(by_org.contains(&(w.prefecture.clone(), "2025".into(), 185.0)));
    assert!(by_org.contains(&(w.prefecture_2.clone(), "2025".into(), 7.0)));
    // Raw values of a subtree.
    assert_eq!(at(&w.prefecture, "&raw=1").len(), 4);
    // Finer than the indicator's granularity is refused.
    let (status, _) = probe_query(k, None, PROBE, "code=dcprobe.visits&per=month");
    assert_eq!(status, 200);
    let (status, out) = probe_query(k, None, "/api/v1/p/dcprobe", "code=dcprobe.sites&per=month");
    assert_eq!(status, 400, "{out}");

    // A `stock` indicator: sum over orgs, latest over periods.
    let (status, out) = publish(
        k,
        None,
        PROBE,
        "dcprobe.sites",
        json!([
            {"org": w.county_a, "period": "2024", "value": 3},
            {"org": w.county_a, "period": "2025", "value": 4},
            {"org": w.county_b, "period": "2025", "value": 6},
        ]),
    );
    assert_eq!(status, 201, "{out}");
    assert_eq!(
        at_code(k, "dcprobe.sites", &w.prefecture),
        [
            (w.prefecture.clone(), "2024".into(), 3.0),
            (w.prefecture.clone(), "2025".into(), 10.0)
        ]
    );

    // The kernel API answers the same numbers.
    let out = ok(
        k,
        "GET",
        &format!(
            "/api/v1/datacenter/indicators/dcprobe.visits/values?org={ROOT}&per=year&group=org"
        ),
        Value::Null,
        200,
    );
    let api_rows = rows(&out);
    assert!(
        api_rows.contains(&(w.prefecture.clone(), "2025".into(), 185.0)),
        "{out}"
    );
    // Orgs by code work too.
    let out = ok(
        k,
        "GET",
        "/api/v1/datacenter/indicators/dcprobe.visits/values?org=650100&per=year",
        Value::Null,
        200,
    );
    assert_eq!(rows(&out), [(w.prefecture.clone(), "2025".into(), 185.0)]);

    // Validation: bad periods and granularity mismatches name the field.
    let (status, out) = publish(
        k,
        None,
        PROBE,
        "dcprobe.visits",
        json!([{"org": w.county_a, "period": "2025", "value": 1}]),
    );
    assert_eq!(status, 400, "{out}");
    let (status, out) = call(
        k,
        None,
        "GET",
        "/api/v1/datacenter/indicators/dcprobe.visits/values?from=2025-13",
        None,
    );
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["field"], "from");
}

fn at_code(k: &TestKernel, code: &str, org: &str) -> Vec<(String, String, f64)> {
    let (status, out) = probe_query(k, None, PROBE, &format!("code={code}&org={org}"));
    assert_eq!(status, 200, "{out}");
    rows(&out)
}

/// A county user can neither publish into nor read another county.
fn isolation(k: &TestKernel, w: &World) {
    let admin = Some(w.county_admin.as_str());
    // Through the plugin: own county fine, the neighbour refused.
    let (status, out) = publish(
        k,
        admin,
        PROBE,
        "dcprobe.visits",
        json!([{"org": w.county_a, "period": "2025-04", "value": 1}]),
    );
    assert_eq!(status, 201, "{out}");
    let (status, out) = publish(
        k,
        admin,
        PROBE,
        "dcprobe.visits",
        json!([{"org": w.county_b, "period": "2025-04", "value": 1000}]),
    );
    assert_eq!(status, 403, "{out}");
    assert_eq!(out["error"]["field"], "org");
    // Without an org the value lands in the acting org (county A).
    let (status, _) = publish(
        k,
        admin,
        PROBE,
        "dcprobe.visits",
        json!([{"period": "2025-05", "value": 2}]),
    );
    assert_eq!(status, 201);
    for org in [&w.county_b, &w.prefecture, &ROOT.to_string()] {
        let (status, out) = probe_query(k, admin, PROBE, &format!("code=dcprobe.visits&org={org}"));
        assert_eq!(status, 403, "{org}: {out}");
    }
    // Their own county's roll-up holds only their county.
    let (status, out) = probe_query(k, admin, PROBE, "code=dcprobe.visits&per=year");
    assert_eq!(status, 200, "{out}");
    assert_eq!(rows(&out), [(w.county_a.clone(), "2025".into(), 153.0)]);
    // The refused write changed nothing.
    assert_eq!(
        at_code(k, "dcprobe.visits", &w.county_b),
        [(w.county_b.clone(), "2025-01".into(), 30.0)]
    );

    // Through the kernel API: other orgs are not found.
    let (status, out) = call(
        k,
        admin,
        "GET",
        &format!(
            "/api/v1/datacenter/indicators/dcprobe.visits/values?org={}",
            w.county_b
        ),
        None,
    );
    assert_eq!(status, 404, "{out}");
    let (status, out) = call(
        k,
        admin,
        "POST",
        "/api/v1/datacenter/indicators/plan.nev_share/values",
        Some(json!({"values": [{"org": w.county_b, "period": "2025", "value": 99}]})),
    );
    assert_eq!(status, 404, "{out}");
    let (status, out) = call(
        k,
        admin,
        "POST",
        "/api/v1/datacenter/indicators/plan.nev_share/values",
        Some(json!({"values": [{"org": w.county_a, "period": "2025", "value": 70}]})),
    );
    assert_eq!(status, 201, "{out}");
    // A member reads but does not write.
    let member = Some(w.member.as_str());
    let (status, _) = call(
        k,
        member,
        "GET",
        "/api/v1/datacenter/indicators/plan.nev_share/values",
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = call(
        k,
        member,
        "POST",
        "/api/v1/datacenter/indicators/plan.nev_share/values",
        Some(json!({"values": [{"period": "2025", "value": 1}]})),
    );
    assert_eq!(status, 403);
    // Plugin-owned indicators are written by their plugin only.
    let (status, out) = call(
        k,
        None,
        "POST",
        "/api/v1/datacenter/indicators/dcprobe.visits/values",
        Some(json!({"values": [{"org": w.county_a, "period": "2025-06", "value": 1}]})),
    );
    assert_eq!(status, 403, "{out}");
}

/// A copy of the probe under another id.
fn second_probe() -> Vec<u8> {
    crate::support::with_manifest(&packages().bytes("dcprobe"), |m| m.id = "dcprobe2".into())
}

/// Plugin B cannot read plugin A's private indicator until it is shared.
fn sharing(k: &TestKernel, w: &World) {
    let (status, out) = k.install(second_probe());
    assert_eq!(status, 201, "{out}");
    let (status, out) = probe_query(k, None, PROBE2, "code=dcprobe.visits&per=year");
    assert_eq!(status, 404, "{out}");
    let (status, out) = publish(
        k,
        None,
        PROBE2,
        "dcprobe.visits",
        json!([{"org": w.county_a, "period": "2025-01", "value": 1}]),
    );
    assert_eq!(status, 404, "{out}");
    let (_, out) = call(k, None, "GET", &format!("{PROBE2}/catalogue"), None);
    let codes: Vec<&str> = out["codes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!codes.contains(&"dcprobe.visits"), "{codes:?}");
    assert!(
        codes.contains(&"dcprobe.sites"),
        "open ones are readable: {codes:?}"
    );
    assert!(codes.contains(&"dcprobe2.visits"), "its own: {codes:?}");
    assert!(codes.contains(&"plan.energy_per_capita"), "{codes:?}");
    // A plugin cannot define into another's namespace.
    let (status, out) = call(
        k,
        None,
        "POST",
        &format!("{PROBE2}/define"),
        Some(json!({"code": "dcprobe.stolen"})),
    );
    assert_eq!(status, 400, "{out}");

    // Only a platform administrator shares.
    let share = |token: Option<&str>, body: Value| {
        call(
            k,
            token,
            "PUT",
            "/api/v1/datacenter/indicators/dcprobe.visits/sharing",
            Some(body),
        )
    };
    let (status, _) = share(
        Some(&w.county_admin),
        json!({"sharing": "shared", "grants": [{"plugin": "dcprobe2", "access": "read"}]}),
    );
    assert_eq!(status, 403);
    let (status, out) = share(
        None,
        json!({"sharing": "shared", "grants": [{"plugin": "dcprobe2", "access": "read"}]}),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["indicator"]["shared_with"][0]["plugin"], "dcprobe2");
    let (status, out) = probe_query(
        k,
        None,
        PROBE2,
        &format!("code=dcprobe.visits&per=year&org={}", w.prefecture),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(rows(&out)[0].2, 188.0);
    // Read access does not let it write.
    let (status, out) = publish(
        k,
        None,
        PROBE2,
        "dcprobe.visits",
        json!([{"org": w.county_a, "period": "2025-07", "value": 1}]),
    );
    assert_eq!(status, 403, "{out}");
    let (status, _) = share(
        None,
        json!({"sharing": "shared", "grants": [{"plugin": "dcprobe2", "access": "publish"}]}),
    );
    assert_eq!(status, 200);
    let (status, out) = publish(
        k,
        None,
        PROBE2,
        "dcprobe.visits",
        json!([{"org": w.county_a, "period": "2025-07", "value": 1}]),
    );
    assert_eq!(status, 201, "{out}");
    // Back to private: gone again.
    let (status, _) = share(None, json!({"sharing": "private"}));
    assert_eq!(status, 200);
    let (status, _) = probe_query(k, None, PROBE2, "code=dcprobe.visits");
    assert_eq!(status, 404);
}

/// The open API serves open indicators without login, never private ones.
fn open_api(k: &TestKernel, w: &World) {
    let anon = Some("");
    let (status, out) = call(k, anon, "GET", "/api/v1/open/datasets", None);
    assert_eq!(status, 200, "{out}");
    let codes: Vec<&str> = out["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert!(codes.contains(&"dcprobe.sites"), "{codes:?}");
    assert!(codes.contains(&"plan.nev_share"), "{codes:?}");
    assert!(!codes.contains(&"dcprobe.visits"), "{codes:?}");
    let (status, out) = call(
        k,
        anon,
        "GET",
        &format!("/api/v1/open/datasets/dcprobe.sites?org={}", w.prefecture),
        None,
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(rows(&out).last().unwrap().2, 10.0);
    let (status, out) = call(k, anon, "GET", "/api/v1/open/datasets/dcprobe.visits", None);
    assert_eq!(status, 404, "{out}");
    assert_eq!(out["error"]["code"], "not_found");
    let (status, out) = call(
        k,
        anon,
        "GET",
        "/api/v1/open/datasets/dcprobe.sites?rollup=false",
        None,
    );
    assert_eq!(status, 422, "{out}");
    // Private data is not reachable through the kernel API anonymously either.
    let (status, _) = call(
        k,
        anon,
        "GET",
        "/api/v1/datacenter/indicators/dcprobe.visits/values",
        None,
    );
    assert_eq!(status, 401);
}

fn exports(k: &TestKernel, w: &World) {
    let path = format!(
        "/api/v1/datacenter/indicators/dcprobe.visits/values?org={ROOT}&per=year&group=org"
    );
    let (status, bytes, headers) = k.raw("GET", &format!("{path}&format=csv"), None, None, &[]);
    assert_eq!(status, 200);
    let content_type = headers.iter().find(|(n, _)| n == "content-type").unwrap();
    assert!(content_type.1.starts_with("text/csv"), "{content_type:?}");
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        lines[0],
        [
            "indicator",
            "org",
            "org_code",
            "period",
            "value",
            "unit",
            "count"
        ]
    );
    assert_eq!(lines.len(), 4, "{text}");
    let prefecture = lines
        .iter()
        .find(|l| l[1] == w.prefecture)
        .expect("prefecture row");
    assert_eq!(prefecture[2], "650100");
    assert_eq!(prefecture[3], "2025");
    assert_eq!(prefecture[4].parse::<f64>().unwrap(), 189.0);

    let (status, bytes, headers) = k.raw("GET", &format!("{path}&format=xlsx"), None, None, &[]);
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "content-type" && v.contains("spreadsheetml"))
    );
    assert!(bytes.starts_with(b"PK\x03\x04"), "an XLSX is a zip");
    assert!(bytes.len() > 2000, "{} bytes", bytes.len());
    let (status, out) = call(k, None, "GET", &format!("{path}&format=pdf"), None);
    assert_eq!(status, 422);
    assert_eq!(out["error"]["field"], "format");
    // The open API exports too.
    let (status, bytes, _) = k.raw(
        "GET",
        "/api/v1/open/datasets/dcprobe.sites?format=csv",
        Some(""),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .starts_with("indicator,org")
    );
}

/// The catalogue lists the plan's indicators with unit and target, and the
/// plan query computes change against the baseline and met / not met.
fn plan(k: &TestKernel, w: &World) {
    let out = ok(k, "GET", "/api/v1/datacenter/indicators", Value::Null, 200);
    let list = out["indicators"].as_array().unwrap();
    let find = |code: &str| {
        list.iter()
            .find(|i| i["code"] == code)
            .unwrap_or_else(|| panic!("{code} missing"))
    };
    for code in tianshan_kernel::services::datacenter::plan_codes() {
        let i = find(code);
        assert!(i["unit"].is_string() && i["target"].is_object(), "{i}");
        assert_eq!(i["owner"], "kernel");
    }
    let energy = find("plan.energy_per_capita");
    assert_eq!(energy["unit"], "kgce/person");
    assert_eq!(energy["target"]["kind"], "change_at_most");
    assert_eq!(energy["target"]["value"], -6.0);
    assert_eq!(energy["target"]["baseline_period"], "2020");
    assert_eq!(find("plan.nev_share")["target"]["value"], 80.0);
    assert_eq!(find("plan.carbon_per_area")["target"]["value"], -7.0);
    assert!(find("dcprobe.visits")["target"].is_null());

    let enter = |code: &str, values: Value| {
        ok(
            k,
            "POST",
            &format!("/api/v1/datacenter/indicators/{code}/values"),
            json!({"values": values}),
            201,
        );
    };
    enter(
        "plan.energy_per_capita",
        json!([
            {"org": w.county_a, "period": "2020", "value": 100},
            {"org": w.county_b, "period": "2020", "value": 200},
            {"org": w.county_a, "period": "2024", "value": 98},
            {"org": w.county_b, "period": "2024", "value": 194.5},
            {"org": w.county_a, "period": "2025", "value": 93},
            {"org": w.county_b, "period": "2025", "value": 186},
        ]),
    );
    enter(
        "plan.nev_share",
        json!([{"org": w.county_a, "period": "2025", "value": 70}, {"org": w.county_b, "period": "2025", "value": 80}]),
    );
    enter(
        "plan.nev_count",
        json!([{"org": w.county_a, "period": "2025", "value": 3000}, {"org": w.county_b, "period": "2025", "value": 3500}]),
    );
    // A yearly indicator takes years only.
    let (status, out) = call(
        k,
        None,
        "POST",
        "/api/v1/datacenter/indicators/plan.nev_count/values",
        Some(json!({"values": [{"org": w.county_a, "period": "2025-01", "value": 1}]})),
    );
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["field"], "period");

    let progress = |org: &str, period: &str| {
        let out = ok(
            k,
            "GET",
            &format!("/api/v1/datacenter/plan?org={org}{period}"),
            Value::Null,
            200,
        );
        out["indicators"].as_array().unwrap().clone()
    };
    let at_prefecture = progress(&w.prefecture, "");
    let get = |list: &[Value], code: &str| list.iter().find(|i| i["code"] == code).unwrap().clone();
    let energy = get(&at_prefecture, "plan.energy_per_capita");
    // Mean of counties: 150 → 139.5, −7 %: the −6 % target is met.
    assert_eq!(energy["baseline"], 150.0);
    assert_eq!(energy["latest"], 139.5);
    assert_eq!(energy["latest_period"], "2025");
    assert_eq!(energy["change_pct"], -7.0);
    assert_eq!(energy["met"], true);
    let nev_share = get(&at_prefecture, "plan.nev_share");
    assert_eq!(nev_share["latest"], 75.0);
    assert_eq!(nev_share["met"], false);
    let nev_count = get(&at_prefecture, "plan.nev_count");
    assert_eq!(nev_count["latest"], 6500.0);
    assert_eq!(nev_count["met"], true);
    assert!(get(&at_prefecture, "plan.charging_piles")["met"].is_null());
    // Up to 2024: −2.5 %, not yet met.
    let in_2024 = progress(&w.prefecture, "&period=2024");
    let energy = get(&in_2024, "plan.energy_per_capita");
    assert_eq!(energy["latest_period"], "2024");
    assert_eq!(energy["change_pct"], -2.5);
    assert_eq!(energy["met"], false);
    // County A alone: 100 → 93.
    let energy = get(&progress(&w.county_a, ""), "plan.energy_per_capita");
    assert_eq!(energy["change_pct"], -7.0);
    // A county admin sees their county's progress, not the prefecture's.
    let (status, _) = call(
        k,
        Some(&w.county_admin),
        "GET",
        "/api/v1/datacenter/plan",
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = call(
        k,
        Some(&w.county_admin),
        "GET",
        &format!("/api/v1/datacenter/plan?org={}", w.prefecture),
        None,
    );
    assert_eq!(status, 404);
    let (status, out) = call(
        k,
        None,
        "GET",
        "/api/v1/datacenter/plan?period=2025-Q1",
        None,
    );
    assert_eq!(status, 422, "{out}");
}

/// A ratio indicator (contract 1.3) rolls up as the rate of the totals:
/// county A uses 25 of 100 m² (25 %), county B 0 of 300 m² (0 %); the
/// prefecture's rate is 25 / 400 = 6.25 %, where a mean of the counties'
/// rates would say 12.5 %.
fn ratios(k: &TestKernel, w: &World) {
    for (code, a, b) in [
        ("dcprobe.occupied", 25.0, 0.0),
        ("dcprobe.usable", 100.0, 300.0),
    ] {
        let (status, out) = publish(
            k,
            None,
            PROBE,
            code,
            json!([
                {"org": w.county_a, "period": "2025", "value": a},
                {"org": w.county_b, "period": "2025", "value": b},
            ]),
        );
        assert_eq!(status, 201, "{code}: {out}");
    }
    assert_eq!(
        at_code(k, "dcprobe.occupancy", &w.prefecture),
        [(w.prefecture.clone(), "2025".into(), 6.25)]
    );
    // Raw: one rate per org that has both parts.
    let (status, out) = probe_query(
        k,
        None,
        PROBE,
        &format!("code=dcprobe.occupancy&org={}&raw=1", w.prefecture),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        rows(&out),
        [
            (w.county_a.clone(), "2025".into(), 25.0),
            (w.county_b.clone(), "2025".into(), 0.0)
        ]
    );
    // By org: the prefecture and its counties, each the rate of its sums.
    let (_, out) = probe_query(
        k,
        None,
        PROBE,
        &format!("code=dcprobe.occupancy&org={}&by_org=1", w.prefecture),
    );
    let by_org = rows(&out);
    assert!(
        by_org.contains(&(w.prefecture.clone(), "2025".into(), 6.25)),
        "{by_org:?}"
    );
    assert!(
        by_org.contains(&(w.county_a.clone(), "2025".into(), 25.0)),
        "{by_org:?}"
    );
    // A zero base has no rate rather than an infinite one.
    let (status, _) = publish(
        k,
        None,
        PROBE,
        "dcprobe.usable",
        json!([{"org": w.county_c, "period": "2025", "value": 0}]),
    );
    assert_eq!(status, 201);
    let (status, _) = publish(
        k,
        None,
        PROBE,
        "dcprobe.occupied",
        json!([{"org": w.county_c, "period": "2025", "value": 5}]),
    );
    assert_eq!(status, 201);
    assert_eq!(at_code(k, "dcprobe.occupancy", &w.county_c), []);
    // Nothing is stored into a ratio: its parts are.
    let (status, out) = publish(
        k,
        None,
        PROBE,
        "dcprobe.occupancy",
        json!([{"org": w.county_a, "period": "2025", "value": 50}]),
    );
    assert_eq!(status, 400, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dcprobe.occupied"),
        "{out}"
    );
    // The plugin tells a ratio from a stored indicator.
    let (_, out) = call(
        k,
        None,
        "GET",
        &format!("{PROBE}/ratio?code=dcprobe.occupancy"),
        None,
    );
    assert_eq!(
        out["ratio"],
        json!({"numerator": "dcprobe.occupied", "denominator": "dcprobe.usable", "scale": 100.0}),
        "{out}"
    );
    let (_, out) = call(
        k,
        None,
        "GET",
        &format!("{PROBE}/ratio?code=dcprobe.visits"),
        None,
    );
    assert_eq!(out["ratio"], Value::Null, "{out}");
    // The kernel API shows it as a ratio and answers the same rate.
    let out = ok(
        k,
        "GET",
        "/api/v1/datacenter/indicators/dcprobe.occupancy",
        Value::Null,
        200,
    );
    let shown = if out["indicator"].is_object() {
        &out["indicator"]
    } else {
        &out
    };
    assert_eq!(shown["aggregation"], "ratio", "{out}");
    assert_eq!(shown["ratio"]["denominator"], "dcprobe.usable", "{out}");
    let out = ok(
        k,
        "GET",
        &format!(
            "/api/v1/datacenter/indicators/dcprobe.occupancy/values?org={}",
            w.prefecture
        ),
        Value::Null,
        200,
    );
    assert_eq!(rows(&out), [(w.prefecture.clone(), "2025".into(), 6.25)]);
    // Reinstalling (the upgrade hook) redefines it without complaint.
    let v2 = crate::support::with_version(&packages().bytes("dcprobe"), "0.2.0");
    let (status, out) = k.request("PUT", "/api/v1/plugins/dcprobe", None, Some(v2));
    assert_eq!(status, 200, "{out}");
    assert_eq!(at_code(k, "dcprobe.occupancy", &w.prefecture).len(), 1);
}

fn scenario(k: &TestKernel) {
    let w = world(k);
    rollup(k, &w);
    ratios(k, &w);
    isolation(k, &w);
    sharing(k, &w);
    open_api(k, &w);
    exports(k, &w);
    plan(k, &w);
    // Every write was audited.
    let out = ok(
        k,
        "GET",
        "/api/v1/audit?action=datacenter.publish",
        Value::Null,
        200,
    );
    assert!(out["records"].as_array().unwrap().len() >= 5, "{out}");
}

#[test]
fn data_center_on_sqlite() {
    let (k, _tmp) = start(None);
    scenario(&k);
}

#[test]
fn data_center_on_postgres() {
    if !support::have(support::Service::Postgres) {
        return;
    }
    let db = PgDatabase::create();
    let (k, _tmp) = start(Some(&db.url));
    scenario(&k);
}

/// The plan is seeded at every start without duplicating or resetting
/// what an administrator changed.
#[test]
fn plan_seed_is_idempotent_and_keeps_sharing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut k = TestKernel::start_in(&dir, &[]);
    ok(
        &k,
        "PUT",
        "/api/v1/datacenter/indicators/plan.water_total/sharing",
        json!({"sharing": "private"}),
        200,
    );
    let before = ok(&k, "GET", "/api/v1/datacenter/indicators", Value::Null, 200);
    k.stop();
    let k = TestKernel::start_in(&dir, &[]);
    let after = ok(&k, "GET", "/api/v1/datacenter/indicators", Value::Null, 200);
    assert_eq!(before, after);
    let water = ok(
        &k,
        "GET",
        "/api/v1/datacenter/indicators/plan.water_total",
        Value::Null,
        200,
    );
    assert_eq!(water["indicator"]["sharing"], "private");
    assert_eq!(water["indicator"]["target"]["kind"], "at_most");
}
