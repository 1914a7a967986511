//! The vehicles plugin end to end on a real kernel with the real plugin
//! and assets: the register and its checks, a purchase refused by the NEV
//! rule and the caps and one approved, the asset card made from
//! `vehicles.purchased`, the plan's NEV indicators, and the attacks
//! (another county's vehicle, a forged org, a member without the manage
//! permission, a decreasing odometer).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::identity::{TwoCounties, person, two_counties};
use crate::support::TestKernel;

const P: &str = "/api/v1/p/vehicles";

fn call(k: &TestKernel, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = (!body.is_null()).then(|| body.to_string().into_bytes());
    k.request(method, &format!("{P}{path}"), Some(token), body)
}

fn ok(k: &TestKernel, token: &str, method: &str, path: &str, body: Value, expect: u16) -> Value {
    let (status, out) = call(k, token, method, path, body);
    assert_eq!(status, expect, "{method} {path}: {out}");
    out
}

fn refused(k: &TestKernel, token: &str, method: &str, path: &str, body: Value) -> (u16, String) {
    let (status, out) = call(k, token, method, path, body);
    assert!(status >= 400, "{method} {path} was not refused: {out}");
    (
        status,
        out["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn admin(k: &TestKernel, method: &str, path: &str, body: Value) -> Value {
    let (status, out) = k.request(method, path, None, Some(body.to_string().into_bytes()));
    assert!(status < 300, "{method} {path}: {status} {out}");
    out
}

fn wait_for(what: &str, mut probe: impl FnMut() -> Option<Value>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn car(plate: &str, vin: &str, energy: &str) -> Value {
    json!({
        "plate": plate, "vin": vin, "brand": "红旗", "model": "H5", "energy_type": energy,
        "displacement_l": 1.5, "price": 15_980_000, "category": "other", "seats": 5,
        "odometer_km": 1000.0, "registered_on": "2024-05-01",
    })
}

#[test]
fn register_purchase_control_and_attacks() {
    let k = TestKernel::start();
    let TwoCounties {
        unit_a,
        unit_b,
        county_a,
        ..
    } = two_counties(&k);
    k.install_ok("assets");
    k.install_ok("vehicles");
    admin(
        &k,
        "PUT",
        "/api/v1/plugins/assets/subscriptions",
        json!({"topics": ["vehicles.purchased", "vehicles.scrap_approved"]}),
    );
    for code in ["plan.nev_count", "plan.nev_share"] {
        admin(
            &k,
            "PUT",
            &format!("/api/v1/datacenter/indicators/{code}/sharing"),
            json!({"sharing": "open", "grants": [{"plugin": "vehicles", "access": "publish"}]}),
        );
    }
    let manager_a = person(&k, "fleet.a", &unit_a, &[("vehicles.manager", &unit_a)]);
    let manager_b = person(&k, "fleet.b", &unit_b, &[("vehicles.manager", &unit_b)]);
    let approver = person(
        &k,
        "approver.a",
        &unit_a,
        &[("vehicles.approver", &county_a)],
    );
    let county_admin = person(&k, "county.a", &unit_a, &[("org-admin", &county_a)]);
    let member = person(&k, "member.a", &unit_a, &[]);

    // Register: a valid vehicle, then the checks.
    let v = ok(
        &k,
        &manager_a,
        "POST",
        "/vehicles",
        car("新A12345", "LSVAU2180N2183294", "gasoline"),
        201,
    );
    let vid = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["org"], unit_a.as_str(), "{v}");
    assert_eq!(v["data"]["nev"], false, "{v}");
    assert_eq!(
        refused(
            &k,
            &manager_a,
            "POST",
            "/vehicles",
            car("XA12345", "LSVAU2180N2183295", "bev")
        ),
        (422, "plate_invalid".into())
    );
    assert_eq!(
        refused(
            &k,
            &manager_a,
            "POST",
            "/vehicles",
            car("新A12345", "LSVAU2180N2183295", "bev")
        ),
        (409, "plate_taken".into())
    );
    let moved = ok(
        &k,
        &manager_a,
        "PUT",
        &format!("/vehicles/{vid}"),
        json!({"odometer_km": 1500.0}),
        200,
    );
    assert_eq!(moved["data"]["odometer_km"], 1500.0);
    assert_eq!(
        refused(
            &k,
            &manager_a,
            "PUT",
            &format!("/vehicles/{vid}"),
            json!({"odometer_km": 900.0})
        ),
        (422, "odometer_decreased".into())
    );

    // Attacks: another county's manager neither sees nor changes it, nor
    // registers into unit A by naming it; a member cannot register.
    assert_eq!(
        call(
            &k,
            &manager_b,
            "GET",
            &format!("/vehicles/{vid}"),
            Value::Null
        )
        .0,
        404
    );
    assert_eq!(
        call(
            &k,
            &manager_b,
            "PUT",
            &format!("/vehicles/{vid}"),
            json!({"odometer_km": 99999.0})
        )
        .0,
        404
    );
    let mut forged = car("新B12345", "LSVAU2180N2183296", "bev");
    forged["org"] = json!(unit_a);
    assert_eq!(
        refused(&k, &manager_b, "POST", "/vehicles", forged.clone()).0,
        403
    );
    assert_eq!(
        refused(
            &k,
            &member,
            "POST",
            "/vehicles",
            car("新B22345", "LSVAU2180N2183297", "bev")
        )
        .0,
        403
    );
    assert_eq!(refused(&k, &manager_b, "POST", "/purchases", json!({"org": unit_a, "kind": "new", "category": "other", "energy_type": "bev", "brand": "x", "price": 1})).0, 403);
    let list_b = ok(&k, &manager_b, "GET", "/vehicles", Value::Null, 200);
    assert_eq!(list_b["total"], 0, "{list_b}");

    // Quotas: the county sets unit A's; unit B's manager may not.
    ok(
        &k,
        &county_admin,
        "PUT",
        "/quotas/other",
        json!({"org": unit_a, "quota": 3}),
        200,
    );
    assert_eq!(
        refused(
            &k,
            &manager_b,
            "PUT",
            "/quotas/other",
            json!({"org": unit_a, "quota": 9})
        )
        .0,
        403
    );

    // Purchase control: a fuel car would leave this year's NEV share at
    // 0 % of 1; a BEV over the price cap is refused too.
    let request = |energy: &str, price: i64, litres: f64| {
        json!({"kind": "new", "category": "other", "energy_type": energy, "brand": "比亚迪",
               "model": "汉 EV", "price": price, "displacement_l": litres, "seats": 5, "reason": "公务出行"})
    };
    assert_eq!(
        refused(
            &k,
            &manager_a,
            "POST",
            "/purchases",
            request("gasoline", 15_000_000, 1.5)
        ),
        (422, "nev_share_short".into())
    );
    assert_eq!(
        refused(
            &k,
            &manager_a,
            "POST",
            "/purchases",
            request("bev", 25_000_000, 0.0)
        ),
        (422, "price_over_cap".into())
    );
    let purchase = ok(
        &k,
        &manager_a,
        "POST",
        "/purchases",
        request("bev", 16_980_000, 0.0),
        201,
    );
    let pid = purchase["id"].as_str().unwrap().to_string();
    assert_eq!(purchase["data"]["status"], "submitted", "{purchase}");
    assert!(
        purchase["data"]["no"]
            .as_str()
            .unwrap()
            .starts_with("新公车购〔"),
        "{purchase}"
    );

    // The county's approver approves it from the to-do list.
    let todos = k
        .request("GET", "/api/v1/todos?kind=pending", Some(&approver), None)
        .1;
    let approval = todos["items"][0]["approval"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{todos}"))
        .to_string();
    let (status, out) = k.request(
        "POST",
        &format!("/api/v1/approvals/{approval}/approve"),
        Some(&approver),
        Some(json!({"comment": "同意"}).to_string().into_bytes()),
    );
    assert_eq!(status, 200, "{out}");
    let vehicle = wait_for("the approved vehicle", || {
        let (s, v) = call(
            &k,
            &manager_a,
            "GET",
            &format!("/vehicles/v-{pid}"),
            Value::Null,
        );
        (s == 200).then_some(v)
    });
    assert_eq!(vehicle["data"]["state"], "ordered", "{vehicle}");
    assert_eq!(vehicle["data"]["nev"], true, "{vehicle}");
    assert_eq!(vehicle["org"], unit_a.as_str());
    let p = ok(
        &k,
        &manager_a,
        "GET",
        &format!("/purchases/{pid}"),
        Value::Null,
        200,
    );
    assert_eq!(p["data"]["status"], "approved", "{p}");

    // Plates arrive: the vehicle goes into service.
    let plated = ok(
        &k,
        &manager_a,
        "PUT",
        &format!("/vehicles/v-{pid}"),
        json!({"plate": "新AD12345", "vin": "LGXCE4CB5N0123456"}),
        200,
    );
    assert_eq!(plated["data"]["state"], "in_service", "{plated}");

    // Scrapping: too young and too short a run is refused; an old one
    // goes through approval and frees its slot.
    assert_eq!(
        refused(
            &k,
            &manager_a,
            "POST",
            &format!("/vehicles/{vid}/scrap"),
            json!({"reason": "故障"})
        ),
        (422, "scrap_too_early".into())
    );
    let mut old = car("新A54321", "LSVAU2180N2183299", "gasoline");
    old["registered_on"] = json!("2015-03-01");
    let old = ok(&k, &manager_a, "POST", "/vehicles", old, 201);
    let old_id = old["id"].as_str().unwrap().to_string();
    assert_eq!(
        refused(
            &k,
            &manager_a,
            "PUT",
            &format!("/vehicles/{old_id}"),
            json!({"state": "scrapped"})
        ),
        (409, "state_by_workflow".into())
    );
    assert_eq!(
        call(
            &k,
            &manager_b,
            "POST",
            &format!("/vehicles/{old_id}/scrap"),
            json!({"reason": "x"})
        )
        .0,
        404
    );
    ok(
        &k,
        &manager_a,
        "POST",
        &format!("/vehicles/{old_id}/scrap"),
        json!({"reason": "使用年限已满"}),
        201,
    );
    let todos = k
        .request("GET", "/api/v1/todos?kind=pending", Some(&approver), None)
        .1;
    let approval = todos["items"][0]["approval"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{todos}"))
        .to_string();
    let (status, out) = k.request(
        "POST",
        &format!("/api/v1/approvals/{approval}/approve"),
        Some(&approver),
        Some(json!({"comment": "同意"}).to_string().into_bytes()),
    );
    assert_eq!(status, 200, "{out}");
    wait_for("the scrapped vehicle", || {
        let v = ok(
            &k,
            &manager_a,
            "GET",
            &format!("/vehicles/{old_id}"),
            Value::Null,
            200,
        );
        (v["data"]["state"] == "scrapped").then_some(v)
    });

    // assets made the draft card from vehicles.purchased.
    wait_for("the asset card", || {
        let (s, cards) = k.request("GET", "/api/v1/p/assets/cards", Some(&county_admin), None);
        (s == 200 && cards.to_string().contains("比亚迪 汉 EV")).then_some(cards)
    });

    // The plan's indicators: unit A has one NEV, and 100 % of this year's
    // new vehicles are NEVs.
    for (code, expected) in [("plan.nev_count", 1.0), ("plan.nev_share", 100.0)] {
        let out = admin(
            &k,
            "GET",
            &format!("/api/v1/datacenter/indicators/{code}/values?org={unit_a}&per=year"),
            Value::Null,
        );
        let value = out["rows"][0]["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("{code}: {out}"));
        assert_eq!(value, expected, "{code}: {out}");
    }
    let share = admin(
        &k,
        "GET",
        &format!(
            "/api/v1/datacenter/indicators/vehicles.nev_share_stock/values?org={county_a}&per=year"
        ),
        Value::Null,
    );
    assert_eq!(share["rows"][0]["value"].as_f64(), Some(50.0), "{share}");
}
