//! The vehicles plugin end to end on a real kernel with the real plugin
//! and assets: the register and its checks, a purchase refused by the NEV
//! rule and the caps and one approved, the asset card made from
//! `vehicles.purchased`, the plan's NEV indicators, and the attacks
//! (another county's vehicle, a forged org, a member without the manage
//! permission, a decreasing odometer).

use serde_json::{Value, json};

use crate::identity::{TwoCounties, person, two_counties};
use crate::support::{TestKernel, wait_for};

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
    approve_first(&k, &approver);
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
    approve_first(&k, &approver);
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

/// The unit's vehicle approver's first pending approval, approved.
fn approve_first(k: &TestKernel, approver: &str) {
    let todos = k
        .request("GET", "/api/v1/todos?kind=pending", Some(approver), None)
        .1;
    let approval = todos["items"][0]["approval"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{todos}"))
        .to_string();
    let (status, out) = k.request(
        "POST",
        &format!("/api/v1/approvals/{approval}/approve"),
        Some(approver),
        Some(json!({"comment": "同意"}).to_string().into_bytes()),
    );
    assert_eq!(status, 200, "{out}");
}

/// A trip from a member's request through the unit's approval, dispatch
/// (a clashing vehicle refused) and return with the odometer moving; an
/// emergency trip dispatched first and approved afterwards; the attacks.
#[test]
fn trips_from_request_through_dispatch_to_return() {
    let k = TestKernel::start();
    let TwoCounties { unit_a, unit_b, .. } = two_counties(&k);
    k.install_ok("vehicles");
    let manager_a = person(&k, "fleet.a", &unit_a, &[("vehicles.manager", &unit_a)]);
    let manager_b = person(&k, "fleet.b", &unit_b, &[("vehicles.manager", &unit_b)]);
    let approver = person(&k, "leader.a", &unit_a, &[("vehicles.approver", &unit_a)]);
    let member = person(&k, "staff.a", &unit_a, &[]);
    let mut body = car("新A54321", "LSVAU2180N2183394", "bev");
    body["state"] = json!("in_service");
    let vid = ok(&k, &manager_a, "POST", "/vehicles", body, 201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let did = ok(
        &k,
        &manager_a,
        "POST",
        "/drivers",
        json!({"name": "马师傅", "licence_no": "650102198001011234", "licence_class": "A2",
               "licence_expires": "2031-06-30", "phone": "13900000000"}),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The request, with its checks.
    let trip = |start: &str, end: &str, emergency: bool| {
        json!({"reason": "赴乡镇督查", "destination": "天山区某街道", "passengers": 3,
               "start_at": start, "end_at": end, "emergency": emergency})
    };
    assert_eq!(
        refused(
            &k,
            &member,
            "POST",
            "/trips",
            trip("2026-12-02T12:00", "2026-12-02T09:00", false)
        ),
        (422, "end_before_start".into())
    );
    assert_eq!(
        refused(
            &k,
            &member,
            "POST",
            "/trips",
            trip("2026-12-02 09:00", "2026-12-02T12:00", false)
        ),
        (422, "time_invalid".into())
    );
    let t1 = ok(
        &k,
        &member,
        "POST",
        "/trips",
        trip("2026-12-02T09:00", "2026-12-02T12:00", false),
        201,
    );
    let t1_id = t1["id"].as_str().unwrap().to_string();
    assert_eq!(t1["data"]["status"], "submitted", "{t1}");
    assert!(
        t1["data"]["no"].as_str().unwrap().starts_with("派车"),
        "{t1}"
    );
    assert_eq!(t1["org"], unit_a.as_str());
    let dispatch = json!({"vehicle_id": vid, "driver_id": did});
    let t1_dispatch = format!("/trips/{t1_id}/dispatch");
    assert_eq!(
        refused(&k, &manager_a, "POST", &t1_dispatch, dispatch.clone()),
        (409, "trip_not_dispatchable".into())
    );
    // A member asks but does not dispatch; another county does not see it.
    assert_eq!(
        refused(&k, &member, "POST", &t1_dispatch, dispatch.clone()).0,
        403
    );
    approve_first(&k, &approver);
    wait_for("the approved trip", || {
        let t = ok(
            &k,
            &member,
            "GET",
            &format!("/trips/{t1_id}"),
            Value::Null,
            200,
        );
        (t["data"]["status"] == "approved").then_some(t)
    });
    assert_eq!(
        refused(&k, &manager_b, "POST", &t1_dispatch, dispatch.clone()).0,
        404
    );
    let out = ok(&k, &manager_a, "POST", &t1_dispatch, dispatch.clone(), 200);
    assert_eq!(out["data"]["status"], "dispatched", "{out}");
    assert_eq!(out["data"]["plate"], "新A54321", "{out}");
    assert_eq!(
        refused(
            &k,
            &member,
            "POST",
            &format!("/trips/{t1_id}/cancel"),
            Value::Null
        ),
        (409, "trip_not_cancellable".into())
    );

    // An emergency trip is dispatchable at once, but not onto a car that
    // is out then.
    let t2 = ok(
        &k,
        &member,
        "POST",
        "/trips",
        trip("2026-12-02T11:00", "2026-12-02T14:00", true),
        201,
    );
    let t2_id = t2["id"].as_str().unwrap().to_string();
    assert_eq!(t2["data"]["status"], "approved", "{t2}");
    let (status, out) = call(
        &k,
        &manager_a,
        "POST",
        &format!("/trips/{t2_id}/dispatch"),
        dispatch.clone(),
    );
    assert_eq!(
        (
            status,
            out["error"]["code"].as_str(),
            out["error"]["field"].as_str()
        ),
        (409, Some("vehicle_busy"), Some("vehicle_id")),
        "{out}"
    );

    // The return: the sheet is checked against the odometer, which moves.
    let back = format!("/trips/{t1_id}/return");
    assert_eq!(
        refused(
            &k,
            &manager_a,
            "POST",
            &back,
            json!({"odometer_out": 900.0, "odometer_in": 950.0})
        ),
        (422, "odometer_decreased".into())
    );
    let out = ok(
        &k,
        &manager_a,
        "POST",
        &back,
        json!({"odometer_out": 1000.0, "odometer_in": 1042.5, "tolls": 1500, "parking": 800}),
        200,
    );
    assert_eq!(out["data"]["status"], "returned", "{out}");
    assert_eq!(out["data"]["km"], 42.5, "{out}");
    let v = ok(
        &k,
        &manager_a,
        "GET",
        &format!("/vehicles/{vid}"),
        Value::Null,
        200,
    );
    assert_eq!(v["data"]["odometer_km"], 1042.5, "{v}");

    // Now the car is free for the emergency; its approval comes after.
    let out = ok(
        &k,
        &manager_a,
        "POST",
        &format!("/trips/{t2_id}/dispatch"),
        dispatch,
        200,
    );
    assert_eq!(out["data"]["status"], "dispatched", "{out}");
    approve_first(&k, &approver);
    let t2 = wait_for("the emergency's verdict", || {
        let t = ok(
            &k,
            &member,
            "GET",
            &format!("/trips/{t2_id}"),
            Value::Null,
            200,
        );
        (t["data"]["verdict"] == "approved").then_some(t)
    });
    assert_eq!(t2["data"]["status"], "dispatched", "{t2}");
    // The dispatch board's queue and the export.
    let board = ok(
        &k,
        &manager_a,
        "GET",
        "/trips?status=dispatched",
        Value::Null,
        200,
    );
    assert_eq!(board["total"], 1, "{board}");
    let (status, _) = call(
        &k,
        &manager_b,
        "GET",
        &format!("/trips/{t2_id}"),
        Value::Null,
    );
    assert_eq!(status, 404);
}

/// A member books a trip from a phone-sized window; the unit's leader
/// approves it; the dispatcher assigns the car on the dispatch board and
/// records its return, all through the plugin's pages.
#[test]
fn a_trip_booked_on_a_phone_and_dispatched_on_the_board() {
    use crate::identity::PASSWORD;
    use crate::portal::Browser;
    if !crate::support::have(crate::support::Service::Browser) {
        return;
    }
    let k = TestKernel::start();
    let TwoCounties { unit_a, .. } = two_counties(&k);
    k.install_ok("vehicles");
    let manager = person(&k, "fleet.a", &unit_a, &[("vehicles.manager", &unit_a)]);
    let approver = person(&k, "leader.a", &unit_a, &[("vehicles.approver", &unit_a)]);
    person(&k, "staff.a", &unit_a, &[]);
    let mut body = car("新A66666", "LSVAU2180N2183494", "bev");
    body["state"] = json!("in_service");
    ok(&k, &manager, "POST", "/vehicles", body, 201);
    ok(
        &k,
        &manager,
        "POST",
        "/drivers",
        json!({"name": "马师傅", "licence_no": "650102198001011234", "licence_class": "C1",
               "licence_expires": "2031-06-30", "phone": "13900000000"}),
        201,
    );
    let sign_in = |b: &Browser, name: &str| {
        b.goto(&format!("{}/", k.base));
        b.wait_displayed("#login-username");
        b.type_into("#login-username", name);
        b.type_into("#login-password", PASSWORD);
        b.click("#login-submit");
        b.wait_displayed("#user-name");
        b.console_errors();
    };

    let b = Browser::start();
    sign_in(&b, "staff.a");
    b.resize(390, 844);
    b.goto(&format!("{}/#/p/vehicles/trips", k.base));
    b.in_plugin_frame(|| {
        b.wait_displayed("#trip-form");
        b.wait_text("#trip-submit", "the page's own words", |t| t == "申请用车");
        b.type_into("#trip-form input[name=reason]", "赴乡镇督查");
        b.type_into("#trip-form input[name=destination]", "天山区某街道");
        b.script(
            "var f = document.getElementById('trip-form'); \
             f.elements.start_at.value = '2026-12-02T09:00'; f.elements.end_at.value = '2026-12-02T08:00';",
            json!([]),
        );
        b.click("#trip-submit");
        // The server's refusal, in Chinese, under the field it names.
        b.wait_text("[data-error-for=end_at]", "the end-before-start error", |t| {
            t.contains("结束时间须晚于开始时间")
        });
        // The browser logs the refused request; it was meant.
        b.console_errors();
        b.script(
            "document.getElementById('trip-form').elements.end_at.value = '2026-12-02T12:00';",
            json!([]),
        );
        b.click("#trip-submit");
        b.wait_text("#trip-list", "the booked trip", |t| {
            t.contains("天山区某街道") && t.contains("待审批")
        });
        let overflow = b.script(
            "return document.documentElement.scrollWidth > window.innerWidth",
            json!([]),
        );
        assert_eq!(overflow, false, "no horizontal scrolling on a phone");
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");

    approve_first(&k, &approver);
    wait_for("the approved trip", || {
        let list = ok(
            &k,
            &manager,
            "GET",
            "/trips?status=approved",
            Value::Null,
            200,
        );
        (list["total"] == 1).then_some(list)
    });

    b.resize(1280, 900);
    b.goto(&format!("{}/", k.base));
    b.wait_displayed("#logout");
    b.click("#logout");
    sign_in(&b, "fleet.a");
    b.goto(&format!("{}/#/p/vehicles/board", k.base));
    b.in_plugin_frame(|| {
        b.wait_displayed("form[data-trip] button[type=submit]");
        b.click("form[data-trip] button[type=submit]");
        b.wait_text("main", "the trip out", |t| {
            t.contains("新A66666") && t.contains("马师傅")
        });
        b.wait_displayed("form[data-trip] input[name=odometer_in]");
        b.type_into("form[data-trip] input[name=odometer_out]", "1000");
        b.type_into("form[data-trip] input[name=odometer_in]", "1036.5");
        b.click("form[data-trip] button[type=submit]");
        b.wait_until("the board emptied", || {
            b.script(
                "return document.querySelectorAll('form[data-trip]').length",
                json!([]),
            ) == 0
        });
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let returned = ok(
        &k,
        &manager,
        "GET",
        "/trips?status=returned",
        Value::Null,
        200,
    );
    assert_eq!(returned["records"][0]["data"]["km"], 36.5, "{returned}");
}

/// Two dispatchers booking one car onto two overlapping trips at the same
/// moment: the clash check alone would let both through; the vehicle's
/// record rewritten in each dispatch's transaction lets exactly one win.
#[test]
fn two_dispatchers_cannot_book_one_car_at_once() {
    let k = TestKernel::start();
    let TwoCounties { unit_a, .. } = two_counties(&k);
    k.install_ok("vehicles");
    let manager = person(&k, "fleet.a", &unit_a, &[("vehicles.manager", &unit_a)]);
    // The approval the emergencies still go through afterwards.
    person(&k, "leader.a", &unit_a, &[("vehicles.approver", &unit_a)]);
    let member = person(&k, "staff.a", &unit_a, &[]);
    let mut body = car("新A77777", "LSVAU2180N2183594", "bev");
    body["state"] = json!("in_service");
    let vid = ok(&k, &manager, "POST", "/vehicles", body, 201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let driver = |name: &str, licence: &str| {
        ok(
            &k,
            &manager,
            "POST",
            "/drivers",
            json!({"name": name, "licence_no": licence, "licence_class": "C1",
                   "licence_expires": "2031-06-30", "phone": "13900000000"}),
            201,
        )["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let drivers = [
        driver("马师傅", "650102198001011234"),
        driver("李师傅", "650102198001011235"),
    ];
    let mut trips = Vec::new();
    for _ in 0..2 {
        // Emergencies: dispatchable at once, no approval needed first.
        let t = ok(
            &k,
            &member,
            "POST",
            "/trips",
            json!({"reason": "抢险", "destination": "某乡", "start_at": "2026-12-03T09:00",
                   "end_at": "2026-12-03T12:00", "emergency": true}),
            201,
        );
        trips.push(t["id"].as_str().unwrap().to_string());
    }
    for round in 0..3 {
        let barrier = std::sync::Barrier::new(2);
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|i| {
                    let (k, manager, barrier) = (&k, &manager, &barrier);
                    let path = format!("/trips/{}/dispatch", trips[i]);
                    let body = json!({"vehicle_id": vid, "driver_id": drivers[i]});
                    s.spawn(move || {
                        barrier.wait();
                        call(k, manager, "POST", &path, body).0
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = statuses.iter().filter(|s| **s == 200).count();
        assert_eq!(won, 1, "round {round}: {statuses:?}");
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 409),
            "{statuses:?}"
        );
        let out = ok(
            &k,
            &manager,
            "GET",
            "/trips?status=dispatched",
            Value::Null,
            200,
        );
        assert_eq!(out["total"], 1, "{out}");
        // Put the winner back in the queue for the next round.
        let winner = out["records"][0]["id"].as_str().unwrap().to_string();
        ok(
            &k,
            &manager,
            "POST",
            &format!("/trips/{winner}/return"),
            json!({"odometer_out": 1000.0 + f64::from(round) * 10.0,
                   "odometer_in": 1010.0 + f64::from(round) * 10.0}),
            200,
        );
        let again = ok(
            &k,
            &member,
            "POST",
            "/trips",
            json!({"reason": "抢险", "destination": "某乡", "start_at": "2026-12-03T09:00",
                   "end_at": "2026-12-03T12:00", "emergency": true}),
            201,
        );
        let slot = trips.iter().position(|t| *t == winner).unwrap();
        trips[slot] = again["id"].as_str().unwrap().to_string();
    }
}

/// Issue 19.6: charging piles at a unit, checked, a metered one's meter a
/// telemetry device (one meter, one pile), counted per org into
/// `plan.charging_piles` and rolled up; another county sees none of them.
#[test]
fn charging_piles_are_counted_into_the_plan() {
    let k = TestKernel::start();
    let TwoCounties {
        unit_a,
        unit_b,
        prefecture,
        ..
    } = two_counties(&k);
    k.install_ok("vehicles");
    admin(
        &k,
        "PUT",
        "/api/v1/datacenter/indicators/plan.charging_piles/sharing",
        json!({"sharing": "open", "grants": [{"plugin": "vehicles", "access": "publish"}]}),
    );
    let manager_a = person(&k, "fleet.a", &unit_a, &[("vehicles.manager", &unit_a)]);
    let manager_b = person(&k, "fleet.b", &unit_b, &[("vehicles.manager", &unit_b)]);
    let pile = |name: &str, current: &str, power: f64, meter: &str| json!({"name": name, "current": current, "power_kw": power, "location": "机关停车场", "meter_id": meter});
    for (body, code) in [
        (pile("1号桩", "3phase", 60.0, ""), "not_in_vocabulary"),
        (pile("1号桩", "dc", 0.0, ""), "power_invalid"),
        (pile(" ", "dc", 60.0, ""), "required"),
    ] {
        let (status, got) = refused(&k, &manager_a, "POST", "/piles", body);
        assert_eq!((status, got.as_str()), (422, code));
    }
    let meter = format!("PILE-{}", std::process::id());
    ok(
        &k,
        &manager_a,
        "POST",
        "/piles",
        pile("1号桩", "dc", 60.0, &meter),
        201,
    );
    ok(
        &k,
        &manager_a,
        "POST",
        "/piles",
        pile("2号桩", "ac", 7.0, ""),
        201,
    );
    // The meter is a device of this plugin now: B's pile cannot take it,
    // and is not kept.
    let (status, got) = refused(
        &k,
        &manager_b,
        "POST",
        "/piles",
        pile("B1", "ac", 7.0, &meter),
    );
    assert_eq!((status, got.as_str()), (409, "meter_taken"));
    let mine = ok(&k, &manager_b, "GET", "/piles", Value::Null, 200);
    assert_eq!(mine["records"].as_array().unwrap().len(), 0, "{mine}");
    let theirs = ok(&k, &manager_a, "GET", "/piles", Value::Null, 200);
    assert_eq!(theirs["records"].as_array().unwrap().len(), 2, "{theirs}");

    let latest = |org: &str| {
        let (_, plan) = k.get(&format!("/api/v1/datacenter/plan?org={org}"));
        plan["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["code"] == "plan.charging_piles")
            .map(|p| p["latest"].clone())
            .unwrap_or_else(|| panic!("{plan}"))
    };
    assert_eq!(latest(&unit_a), json!(2.0));
    assert_eq!(latest(&prefecture), json!(2.0), "rolled up");
    assert_eq!(latest("org-650000"), json!(2.0), "rolled up to the region");
}
