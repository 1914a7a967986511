//! The energy plugin end to end on a real kernel with the real plugin:
//! a month measured by a meter read by hand, an online meter over MQTT
//! (Mosquitto), a bill and the vehicles system's fuel log, the statement
//! prefilled from them, reviewed by the unit, the county and the region
//! through the kernel's approvals (once sent back), locked, in the data
//! center and the plan, reopened;
//! targets level by level, alerts, a factor change recomputing the year;
//! the attacks (another county's institution, a forged org, editing in
//! review, a county setting the region's coefficients); `tianshan up`
//! with its demo; and the same month entered and submitted in Chromium.

use serde_json::{Value, json};

use crate::identity::{TwoCounties, person, two_counties};
use crate::support::{self, TestKernel, wait_for};

const P: &str = "/api/v1/p/energy";

fn call(k: &TestKernel, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    support::plugin_call(k, P, token, method, path, body)
}

fn ok(k: &TestKernel, token: &str, method: &str, path: &str, body: Value, expect: u16) -> Value {
    let (status, out) = call(k, token, method, path, body);
    assert_eq!(status, expect, "{method} {path}: {out}");
    out
}

/// The status, code and field of a refusal.
fn refused(
    k: &TestKernel,
    token: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, String, String) {
    support::refusal(method, path, call(k, token, method, path, body))
}

fn admin(k: &TestKernel, method: &str, path: &str, body: Value) -> Value {
    let (status, out) = k.request(method, path, None, Some(body.to_string().into_bytes()));
    assert!(status < 300, "{method} {path}: {status} {out}");
    out
}

/// This month and year in the region (UTC+8), as the plugin sees them.
fn region_month() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 8 * 3600;
    // Howard Hinnant's civil-from-days.
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (format!("{y:04}-{m:02}"), format!("{y:04}"))
}

/// Grants the energy system the plan's indicators it feeds, as `up` does.
fn grant_plan(k: &TestKernel) {
    for code in [
        "plan.energy_per_area",
        "plan.energy_per_capita",
        "plan.water_per_capita",
        "plan.carbon_per_area",
        "plan.energy_total",
        "plan.water_total",
        "plan.carbon_total",
        "plan.key_users_metered_share",
    ] {
        admin(
            k,
            "PUT",
            &format!("/api/v1/datacenter/indicators/{code}/sharing"),
            json!({"sharing": "open", "grants": [{"plugin": "energy", "access": "publish"}]}),
        );
    }
}

/// Approves (or with `reject`, sends back to the applicant) the first
/// energy to-do of `who`.
fn decide(k: &TestKernel, who: &str, reject: bool) {
    let todos = wait_for("a to-do", || {
        let (_, t) = k.request("GET", "/api/v1/todos?kind=pending", Some(who), None);
        t["items"][0]["approval"]["id"].is_string().then_some(t)
    });
    let id = todos["items"][0]["approval"]["id"].as_str().unwrap();
    let (action, body) = if reject {
        (
            "reject",
            json!({"comment": "电量与上月差异过大，请核实", "to_step": 0}),
        )
    } else {
        ("approve", json!({"comment": "同意"}))
    };
    let (status, out) = k.request(
        "POST",
        &format!("/api/v1/approvals/{id}/{action}"),
        Some(who),
        Some(body.to_string().into_bytes()),
    );
    assert_eq!(status, 200, "{action}: {out}");
}

fn stage(k: &TestKernel, token: &str, path: &str) -> String {
    ok(k, token, "GET", path, Value::Null, 200)["statement"]["stage"]
        .as_str()
        .unwrap()
        .to_string()
}

fn wait_stage(k: &TestKernel, token: &str, path: &str, want: &str) {
    wait_for(want, || {
        (stage(k, token, path) == want).then_some(Value::Null)
    });
}

/// The department's and the region's approvals of a statement the unit
/// has passed, up to locked.
fn review_above_the_unit(w: &World, form: &str) {
    decide(&w.k, &w.county_reviewer, false);
    wait_stage(&w.k, &w.reporter, form, "region_review");
    decide(&w.k, &w.region_reviewer, false);
    wait_stage(&w.k, &w.reporter, form, "locked");
}

/// Submits the saved statement and takes it through all three reviews.
fn submit_and_review(w: &World, form: &str) {
    ok(
        &w.k,
        &w.reporter,
        "POST",
        &format!("{form}/submit"),
        Value::Null,
        201,
    );
    decide(&w.k, &w.unit_reviewer, false);
    wait_stage(&w.k, &w.reporter, form, "reported");
    review_above_the_unit(w, form);
}

fn line<'a>(lines: &'a Value, energy_type: &str) -> &'a Value {
    lines
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["type"] == energy_type)
        .unwrap_or_else(|| panic!("no {energy_type} in {lines}"))
}

struct World {
    k: TestKernel,
    unit_a: String,
    unit_b: String,
    county_a: String,
    reporter: String,
    reporter_b: String,
    unit_reviewer: String,
    county_reviewer: String,
    region_reviewer: String,
    county_admin: String,
    region_admin: String,
}

fn world(k: TestKernel) -> World {
    let TwoCounties {
        unit_a,
        unit_b,
        county_a,
        ..
    } = two_counties(&k);
    k.install_ok("energy");
    grant_plan(&k);
    let reporter = person(&k, "energy.a", &unit_a, &[("energy.reporter", &unit_a)]);
    let reporter_b = person(&k, "energy.b", &unit_b, &[("energy.reporter", &unit_b)]);
    let unit_reviewer = person(&k, "leader.a", &unit_a, &[("energy.reviewer", &unit_a)]);
    let county_reviewer = person(
        &k,
        "county.reviewer",
        &unit_a,
        &[("energy.reviewer", &county_a)],
    );
    let region_reviewer = person(
        &k,
        "region.reviewer",
        &unit_a,
        &[("energy.reviewer", "org-650000")],
    );
    let county_admin = person(&k, "county.admin", &unit_a, &[("org-admin", &county_a)]);
    let region_admin = person(&k, "region.admin", &unit_a, &[("org-admin", "org-650000")]);
    World {
        k,
        unit_a,
        unit_b,
        county_a,
        reporter,
        reporter_b,
        unit_reviewer,
        county_reviewer,
        region_reviewer,
        county_admin,
        region_admin,
    }
}

fn profile_of_unit(w: &World, year: &str) {
    ok(
        &w.k,
        &w.reporter,
        "PUT",
        &format!("/profiles/{}/{year}", w.unit_a),
        json!({"year": 0, "nature": "organ", "building_m2": 10000.0, "heating_m2": 9000.0,
               "energy_users": 250, "headcount": 220, "key_user": true,
               "building_type": "office", "climate_zone": "severe_cold"}),
        200,
    );
}

/// A month from meters and a bill to a locked statement in the plan, with
/// every refusal on the way.
#[test]
fn a_month_from_meters_through_three_reviews_into_the_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let mqtt = support::have(support::Service::Mqtt);
    let topic = format!("e{}/telemetry", std::process::id());
    let k = if mqtt {
        crate::telemetry::start(None, &topic, tmp.path())
    } else {
        TestKernel::start()
    };
    let w = world(k);
    let k = &w.k;
    let (month, year) = region_month();
    let form = format!("/statements/{}/{month}", w.unit_a);

    // Without a profile the month cannot be saved: the intensities need it.
    let body = json!({"lines": [{"type": "water", "quantity": 10.0}]});
    assert_eq!(
        refused(k, &w.reporter, "PUT", &form, body.clone()).1,
        "profile_missing"
    );
    profile_of_unit(&w, &year);

    // A meter read by hand: installed at 1,000 kWh, read at 31,000.
    let meter = ok(
        k,
        &w.reporter,
        "POST",
        "/meters",
        json!({"name": "办公楼总表", "energy_type": "electricity", "kind": "manual",
               "initial_reading": 1000.0}),
        201,
    );
    let meter_id = meter["id"].as_str().unwrap().to_string();
    let reading = format!("/meters/{meter_id}/readings");
    assert_eq!(
        refused(k, &w.reporter, "POST", &reading, json!({"value": 900.0})),
        (422, "reading_below_last".into(), "value".into())
    );
    assert_eq!(
        refused(
            k,
            &w.reporter,
            "POST",
            &reading,
            json!({"value": 40000.0, "on": "2999-01-01"})
        )
        .1,
        "date_in_future"
    );
    ok(
        k,
        &w.reporter,
        "POST",
        &reading,
        json!({"value": 31000.0}),
        201,
    );
    // Another county's reporter cannot read this unit's meter.
    assert_eq!(
        refused(
            k,
            &w.reporter_b,
            "POST",
            &reading,
            json!({"value": 32000.0})
        )
        .0,
        404
    );

    // An online gas meter over MQTT: 500 → 1,700 m³ this month.
    if mqtt {
        let external = format!("GAS-{}", std::process::id());
        ok(
            k,
            &w.reporter,
            "POST",
            "/meters",
            json!({"name": "食堂燃气表", "energy_type": "natural_gas", "kind": "online",
                   "external_id": external}),
            201,
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let mut publisher = crate::telemetry::Publisher::connect(&format!("{external}-test"));
        for (ago, value) in [(120_000, 500.0), (60_000, 1700.0)] {
            publisher.publish(
                &format!("{topic}/{external}"),
                json!({"channel": "m3", "at": now - ago, "value": value}),
            );
        }
        wait_for("the gas meter's month", || {
            let out = ok(k, &w.reporter, "GET", &form, Value::Null, 200);
            out["prefill"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["type"] == "natural_gas" && l["quantity"] == 1200.0)
                .then_some(out)
        });
    }

    // A water bill, and the attacks on bills.
    ok(
        k,
        &w.reporter,
        "POST",
        "/bills",
        json!({"energy_type": "water", "period": month, "quantity": 120.0, "cost_fen": 57600}),
        201,
    );
    assert_eq!(
        refused(
            k,
            &w.reporter_b,
            "POST",
            "/bills",
            json!({"org": w.unit_a, "energy_type": "water", "period": month, "quantity": 1.0})
        )
        .0,
        404,
        "a forged org in the payload"
    );
    assert_eq!(
        refused(
            k,
            &w.reporter,
            "POST",
            "/bills",
            json!({"energy_type": "uranium", "period": month, "quantity": 1.0})
        ),
        (422, "energy_type_unknown".into(), "energy_type".into())
    );

    // Fuel from the vehicles system's log of one of the unit's cars.
    k.install_ok("vehicles");
    let fleet = person(k, "fleet.a", &w.unit_a, &[("vehicles.manager", &w.unit_a)]);
    let car = k.request(
        "POST",
        "/api/v1/p/vehicles/vehicles",
        Some(&fleet),
        Some(
            json!({"plate": "新A12345", "vin": "LSVAU2180N2183294", "brand": "红旗", "model": "H5",
                   "energy_type": "gasoline", "displacement_l": 1.5, "price": 15_980_000,
                   "category": "other", "seats": 5, "odometer_km": 1000.0,
                   "registered_on": "2024-05-01"})
            .to_string()
            .into_bytes(),
        ),
    );
    assert_eq!(car.0, 201, "{}", car.1);
    let first_of_month = format!("{month}-01");
    let fuel = |body: Value| {
        k.request(
            "POST",
            "/api/v1/p/vehicles/fuel",
            Some(&fleet),
            Some(body.to_string().into_bytes()),
        )
    };
    let refused_fuel = fuel(
        json!({"vehicle_id": car.1["id"], "kind": "charging", "on": first_of_month, "amount": 30.0}),
    );
    assert_eq!(
        (refused_fuel.0, refused_fuel.1["error"]["code"].as_str()),
        (422, Some("fuel_kind_mismatch")),
        "a petrol car is not charged: {}",
        refused_fuel.1
    );
    let logged = fuel(
        json!({"vehicle_id": car.1["id"], "kind": "gasoline", "on": first_of_month,
                             "amount": 80.0, "cost_fen": 62_400, "station": "中石油天山路站"}),
    );
    assert_eq!(logged.0, 201, "{}", logged.1);

    // The form, prefilled: electricity from the meter, water from the bill,
    // gasoline from the vehicles system.
    let shown = ok(k, &w.reporter, "GET", &form, Value::Null, 200);
    assert_eq!(shown["statement"]["stage"], "not_filed", "{shown}");
    let electricity = line(&shown["prefill"], "electricity");
    assert_eq!(
        (
            electricity["quantity"].as_f64(),
            electricity["source"].as_str()
        ),
        (Some(30000.0), Some("meter")),
        "{shown}"
    );
    let water = line(&shown["prefill"], "water");
    assert_eq!(
        (
            water["quantity"].as_f64(),
            water["source"].as_str(),
            water["cost_fen"].as_i64()
        ),
        (Some(120.0), Some("bill"), Some(57600)),
        "{shown}"
    );
    let petrol = line(&shown["prefill"], "gasoline");
    assert_eq!(
        (petrol["quantity"].as_f64(), petrol["source"].as_str()),
        (Some(80.0), Some("vehicles")),
        "{shown}"
    );
    assert!(shown["gaps"].as_array().unwrap().is_empty(), "{shown}");

    // Another county cannot see or write the unit's month.
    assert_eq!(
        refused(k, &w.reporter_b, "GET", &form, Value::Null),
        (404, "org_unknown".into(), "org".into())
    );
    assert_eq!(refused(k, &w.reporter_b, "PUT", &form, body.clone()).0, 404);
    // Bad lines and a month not yet begun.
    assert_eq!(
        refused(
            k,
            &w.reporter,
            "PUT",
            &form,
            json!({"lines": [{"type": "water", "quantity": -1.0}]})
        ),
        (422, "quantity_invalid".into(), "lines[0].quantity".into())
    );
    assert_eq!(
        refused(
            k,
            &w.reporter,
            "PUT",
            &format!("/statements/{}/2099-01", w.unit_a),
            body.clone()
        )
        .1,
        "period_in_future"
    );

    // Saved as prefilled, then submitted.
    let saved = ok(
        k,
        &w.reporter,
        "PUT",
        &form,
        json!({"lines": shown["prefill"], "note": "按表计与账单填报"}),
        200,
    );
    let fuels_kgce = if mqtt { 1200.0 * 1.2143 } else { 0.0 } + 80.0 * 0.73 * 1.4714;
    let kgce = 30000.0 * 0.1229 + fuels_kgce;
    assert!(
        (saved["data"]["kgce"].as_f64().unwrap() - kgce).abs() < 0.01,
        "{saved}"
    );
    assert_eq!(saved["stage"], "draft");
    // Submitted twice at once (a double click, two tabs): one review starts.
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let submit = || {
            scope.spawn(|| {
                call(
                    k,
                    &w.reporter,
                    "POST",
                    &format!("{form}/submit"),
                    Value::Null,
                )
            })
        };
        let (a, b) = (submit(), submit());
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{answers:?}");
    let submitted = &answers.iter().find(|(s, _)| *s == 201).unwrap().1;
    assert_eq!(submitted["stage"], "unit_review", "{submitted}");
    let shown_now = ok(k, &w.reporter, "GET", &form, Value::Null, 200);
    assert_eq!(
        shown_now["approvals"].as_array().unwrap().len(),
        1,
        "one approval for the month: {shown_now}"
    );
    assert_eq!(
        refused(k, &w.reporter, "PUT", &form, body.clone()),
        (409, "statement_not_editable".into(), String::new())
    );

    // The unit passes it, the county sends it back, the reporter fixes it.
    decide(k, &w.unit_reviewer, false);
    wait_stage(k, &w.reporter, &form, "reported");
    decide(k, &w.county_reviewer, true);
    wait_stage(k, &w.reporter, &form, "returned");
    let mut lines = shown["prefill"].clone();
    lines
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| l["type"] == "electricity")
        .unwrap()["quantity"] = json!(29000.0);
    ok(k, &w.reporter, "PUT", &form, json!({"lines": lines}), 200);
    submit_and_review(&w, &form);
    let kgce = 29000.0 * 0.1229 + fuels_kgce;

    // Locked: in the data center per month, and in the plan annualised.
    // The handler that locked it publishes right after; wait for it.
    let month_values = wait_for("the month in the data center", || {
        let (_, v) = k.get(&format!(
            "/api/v1/datacenter/indicators/energy.kgce_month/values?org={}&from={month}&to={month}",
            w.unit_a
        ));
        v["rows"][0]["value"].is_number().then_some(v)
    });
    let stored = month_values["rows"][0]["value"].as_f64().unwrap();
    assert!((stored - kgce).abs() < 0.01, "{month_values}");
    // The handler publishes indicator by indicator, the month first and
    // the plan after it; wait for the plan's value as well.
    let plan = wait_for("the plan's value for the year", || {
        let (_, v) = k.get(&format!(
            "/api/v1/datacenter/indicators/plan.energy_per_area/values?org={}&from={year}&to={year}",
            w.unit_a
        ));
        v["rows"][0]["value"].is_number().then_some(v)
    });
    // Annualised: one month of energy, times twelve, over 10,000 m².
    let planned = plan["rows"][0]["value"].as_f64().unwrap();
    assert!((planned - kgce * 12.0 / 10000.0).abs() < 0.01, "{plan}");
    // The county's energy per m² is its units' energy over their area.
    let (_, ratio) = k.get(&format!(
        "/api/v1/datacenter/indicators/energy.per_area/values?org={}&from={year}&to={year}",
        w.county_a
    ));
    let county_rate = ratio["rows"][0]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("{ratio}"));
    assert!((county_rate - kgce / 10000.0).abs() < 0.001, "{ratio}");

    // Locked is locked: a reopening needs a reason and the region's yes.
    assert_eq!(
        refused(k, &w.reporter, "PUT", &form, body.clone()).1,
        "statement_not_editable"
    );
    assert_eq!(
        refused(
            k,
            &w.reporter,
            "POST",
            &format!("{form}/reopen"),
            json!({"reason": "错"})
        ),
        (422, "reason_required".into(), "reason".into())
    );
    let reopening = ok(
        k,
        &w.reporter,
        "POST",
        &format!("{form}/reopen"),
        json!({"reason": "供电公司更正了本月电费账单"}),
        201,
    );
    assert_eq!(reopening["stage"], "reopening", "{reopening}");
    decide(k, &w.region_reviewer, false);
    wait_stage(k, &w.reporter, &form, "draft");
    let history = ok(
        k,
        &w.reporter,
        "GET",
        &format!("{form}/history"),
        Value::Null,
        200,
    );
    assert!(
        history["history"].as_array().unwrap().len() >= 6,
        "every save is kept: {history}"
    );

    // Targets go one level down and are accepted by their org.
    let target = ok(
        k,
        &w.county_admin,
        "POST",
        "/targets",
        json!({"org": w.unit_a, "year": year.parse::<i32>().unwrap(), "per_area": 3.0}),
        201,
    );
    let target_id = target["id"].as_str().unwrap().to_string();
    assert_eq!(
        refused(
            k,
            &w.county_admin,
            "POST",
            "/targets",
            json!({"org": w.unit_b, "year": 2026, "per_area": 3.0})
        )
        .1,
        "target_not_below",
        "another county's unit"
    );
    assert_eq!(
        refused(
            k,
            &w.county_admin,
            "POST",
            &format!("/targets/{target_id}/accept"),
            Value::Null
        )
        .1,
        "target_not_yours"
    );
    let accepted = ok(
        k,
        &w.reporter,
        "POST",
        &format!("/targets/{target_id}/accept"),
        Value::Null,
        200,
    );
    assert_eq!(accepted["data"]["status"], "accepted");

    // Locked again over the target: an alert the unit sees and closes.
    submit_and_review(&w, &form);
    let over = wait_for("the over-target alert", || {
        let alerts = ok(
            k,
            &w.reporter,
            "GET",
            "/alerts?state=open",
            Value::Null,
            200,
        );
        alerts["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["data"]["kind"] == "over_target")
            .cloned()
    });
    assert_eq!(over["data"]["limit"], 3.0, "{over}");
    let tracking = ok(k, &w.reporter, "GET", "/tracking", Value::Null, 200);
    assert_eq!(tracking["target"]["data"]["per_area"], 3.0, "{tracking}");
    assert!(
        tracking["current"]["per_area"].as_f64().unwrap() > 3.0,
        "{tracking}"
    );

    // Coefficients are the region's: a county cannot change them; the
    // region's new set for this year recomputes the locked month.
    let factors = ok(k, &w.reporter, "GET", "/factors", Value::Null, 200);
    let mut set = factors["records"][0]["data"].clone();
    set["effective_from"] = json!(year.parse::<i32>().unwrap());
    set["name"] = json!("测试系数");
    for t in set["types"].as_array_mut().unwrap() {
        if t["code"] == "electricity" {
            t["kgce"] = json!(0.2);
        }
    }
    assert_eq!(
        refused(k, &w.county_admin, "POST", "/factors", set.clone()),
        (403, "region_only".into(), String::new())
    );
    let made = ok(k, &w.region_admin, "POST", "/factors", set, 201);
    assert!(made["recomputed"].as_u64().unwrap() >= 1, "{made}");
    let now = ok(k, &w.reporter, "GET", &form, Value::Null, 200);
    let recomputed = 29000.0 * 0.2 + fuels_kgce;
    assert!(
        (now["statement"]["data"]["kgce"].as_f64().unwrap() - recomputed).abs() < 0.01,
        "{now}"
    );

    // The summary form as the county sees it, and as a workbook.
    let summary = ok(
        k,
        &w.county_admin,
        "GET",
        &format!("/summary?year={year}&by=area"),
        Value::Null,
        200,
    );
    assert!(
        summary["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["key"] == w.unit_a.as_str()),
        "{summary}"
    );
    let (status, bytes, _) = k.raw(
        "GET",
        &format!("{P}/summary?year={year}&by=category&format=xlsx"),
        Some(&w.county_admin),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(&bytes[..2], b"PK", "an XLSX workbook");
}

/// `tianshan up` installs energy with a demo the plan can read: the
/// region's energy per m² has a value, a baseline and a change.
#[test]
fn tianshan_up_installs_energy_with_demo_data() {
    let dir = tempfile::tempdir().unwrap();
    let k = TestKernel::start_demo(dir.path());
    let (status, plan) = k.get("/api/v1/datacenter/plan?org=org-650000");
    assert_eq!(status, 200, "{plan}");
    let per_area = plan["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "plan.energy_per_area")
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(per_area["latest"].as_f64().unwrap() > 0.0, "{per_area}");
    assert!(per_area["baseline"].as_f64().unwrap() > 0.0, "{per_area}");
    assert!(per_area["change_pct"].is_number(), "{per_area}");
    let metered = plan["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "plan.key_users_metered_share")
        .unwrap();
    assert!(metered["latest"].as_f64().unwrap() > 0.0, "{metered}");
    // The LED wall's one read: every prefecture ranked by energy per m²,
    // and each of the system's plan indicators with a value.
    let (status, overview) = k.get("/api/v1/datacenter/overview?org=org-650000");
    assert_eq!(status, 200, "{overview}");
    let ranking = overview["rankings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "plan.energy_per_area")
        .unwrap_or_else(|| panic!("{overview}"));
    assert!(
        ranking["rows"].as_array().unwrap().len() >= 14,
        "the prefectures: {ranking}"
    );
    for code in [
        "plan.energy_per_capita",
        "plan.water_per_capita",
        "plan.carbon_per_area",
        "plan.energy_total",
        "plan.water_total",
        "plan.carbon_total",
    ] {
        let p = overview["progress"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["code"] == code)
            .unwrap_or_else(|| panic!("{code} in {overview}"));
        assert!(p["latest"].as_f64().unwrap_or(0.0) > 0.0, "{p}");
    }
    let (_, year) = region_month();
    let summary = ok(
        &k,
        &k.token,
        "GET",
        &format!("/summary?year={year}&by=area"),
        Value::Null,
        200,
    );
    assert!(
        summary["rows"].as_array().unwrap().len() >= 14,
        "the prefectures: {summary}"
    );
    let alerts = ok(&k, &k.token, "GET", "/alerts?state=open", Value::Null, 200);
    assert!(
        !alerts["records"].as_array().unwrap().is_empty(),
        "some demo institutions are over: {alerts}"
    );
    let meters = ok(&k, &k.token, "GET", "/meters?kind=online", Value::Null, 200);
    assert!(
        meters["records"][0]["latest"]["value"].as_f64().unwrap() > 0.0,
        "{meters}"
    );
}

/// The reporter reads the meter on a phone, finds the month prefilled and
/// submits it; the unit's reviewer approves on the review page; the
/// county's reviewer sees the county's energy per m² on the analysis page.
#[test]
fn a_month_read_by_hand_and_submitted_in_the_browser() {
    use crate::identity::PASSWORD;
    use crate::portal::Browser;
    if !support::have(support::Service::Browser) {
        return;
    }
    let w = world(TestKernel::start());
    let k = &w.k;
    let (month, year) = region_month();
    profile_of_unit(&w, &year);
    let meter = ok(
        k,
        &w.reporter,
        "POST",
        "/meters",
        json!({"name": "办公楼总表", "energy_type": "electricity", "kind": "manual",
               "initial_reading": 5000.0}),
        201,
    );
    let meter_id = meter["id"].as_str().unwrap().to_string();
    let sign_in = |b: &Browser, name: &str| {
        b.resize(1280, 900);
        b.goto(&format!("{}/", k.base));
        b.wait_displayed("#login-username");
        b.type_into("#login-username", name);
        b.type_into("#login-password", PASSWORD);
        b.click("#login-submit");
        b.wait_displayed("#user-name");
        b.console_errors();
    };
    let sign_out = |b: &Browser| {
        b.resize(1280, 900);
        b.goto(&format!("{}/", k.base));
        b.wait_displayed("#logout");
        b.click("#logout");
        b.wait_displayed("#login-username");
    };

    let b = Browser::start();
    sign_in(&b, "energy.a");
    b.resize(390, 844);
    b.goto(&format!("{}/#/p/energy/read/{meter_id}", k.base));
    b.in_plugin_frame(|| {
        b.wait_displayed("#reading-form");
        b.wait_text("#reading-submit", "the page's own words", |t| {
            t == "提交读数"
        });
        // Below the last reading: the kernel's refusal in Chinese, on the field.
        b.type_into("#reading-value", "4000");
        b.click("#reading-submit");
        b.wait_text("[data-error-for=value]", "the reading refused", |t| {
            t.contains("不能小于上次读数")
        });
        b.console_errors();
        b.script(
            "document.getElementById('reading-value').value = ''; return true;",
            json!([]),
        );
        b.type_into("#reading-value", "17500");
        b.click("#reading-submit");
        b.wait_text("#last-reading", "the new reading", |t| t.contains("17,500"));
        let overflow = b.script(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            json!([]),
        );
        assert_eq!(overflow, json!(false), "no sideways scrolling on a phone");
    });
    b.resize(1280, 900);
    b.goto(&format!(
        "{}/#/p/energy/statement/{}/{month}",
        k.base, w.unit_a
    ));
    b.in_plugin_frame(|| {
        b.wait_displayed("#statement-form");
        b.wait_text("[data-prefill=electricity]", "the meter's month", |t| {
            t.contains("12,500")
        });
        b.click("#statement-submit");
        b.wait_text("h2", "in review", |t| t.contains("单位审核"));
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "{errors:?}");
    sign_out(&b);

    // The unit's reviewer approves from the plugin's review page.
    sign_in(&b, "leader.a");
    b.goto(&format!("{}/#/p/energy/todos", k.base));
    b.in_plugin_frame(|| {
        // The to-do opens the statement, where the panel takes the decision.
        b.wait_displayed("li.todo a.todo-title");
        b.click("li.todo a.todo-title");
        b.wait_displayed("#approval button.approve");
        b.type_into("#approval textarea", "数据无误，同意上报");
        b.click("#approval button.approve");
        b.click("#kit-confirm-ok");
        b.wait_text("h2", "reported upwards", |t| t.contains("已上报"));
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "{errors:?}");
    sign_out(&b);
    let form = format!("/statements/{}/{month}", w.unit_a);
    wait_stage(k, &w.reporter, &form, "reported");
    review_above_the_unit(&w, &form);

    wait_for("the month in the data center", || {
        let (_, v) = k.get(&format!(
            "/api/v1/datacenter/indicators/energy.kgce_month/values?org={}&from={month}&to={month}",
            w.unit_a
        ));
        v["rows"][0]["value"].is_number().then_some(v)
    });
    // The county's reviewer sees the county's energy per m², annualised.
    sign_in(&b, "county.reviewer");
    b.goto(&format!("{}/#/p/energy/analysis", k.base));
    b.in_plugin_frame(|| {
        b.wait_displayed("#analysis-figures");
        let expected = 12500.0 * 0.1229 * 12.0 / 10000.0;
        b.wait_text("#own-per-area", "the county's energy per m²", |t| {
            t.replace(',', "")
                .parse::<f64>()
                .ok()
                .map(|v| (v - expected).abs() < 0.01)
                == Some(true)
        });
        b.wait_displayed("#chart-structure canvas, #chart-structure table, #chart-structure svg");
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "{errors:?}");
}
