//! The property plugin end to end, through the gateway of a real kernel:
//! the space tree with its validation, a person assigned over the area
//! standard and the figures of the warning, the registration rate reaching
//! the plan's indicator, an allocation request approved by the parent's
//! approver (and not by another county's) and handed over by the room's
//! keeper, and the attacks: another county's room, a forged org, a member
//! without the manage permission.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::identity::{TwoCounties, person, two_counties};
use crate::support::TestKernel;

const P: &str = "/api/v1/p/property";

/// A signed-in user and the org they act in (None: their home unit).
struct Who {
    token: String,
    org: Option<String>,
}

struct World {
    k: TestKernel,
    county_a: String,
    unit_a: String,
    manager_a: Who,
    manager_b: Who,
    member_a: Who,
    keeper_a: Who,
    approver_a: Who,
    approver_b: Who,
}

fn world() -> World {
    let k = TestKernel::start();
    let TwoCounties {
        unit_a,
        unit_b,
        county_a,
        county_b,
        ..
    } = two_counties(&k);
    k.install_ok("property");
    // Users belong to units; the county's keeper and approvers act at the
    // county where their roles are bound.
    let login = |name: &str, home: &str, role: Option<(&str, &str)>| Who {
        token: person(&k, name, home, role.as_slice()),
        org: role.map(|(_, at)| at.to_string()).filter(|at| at != home),
    };
    let manager_a = login(
        "prop.manager.a",
        &unit_a,
        Some(("property.manager", &unit_a)),
    );
    let manager_b = login(
        "prop.manager.b",
        &unit_b,
        Some(("property.manager", &unit_b)),
    );
    let member_a = login("prop.member.a", &unit_a, None);
    let keeper_a = login(
        "prop.keeper.a",
        &unit_a,
        Some(("property.manager", &county_a)),
    );
    let approver_a = login(
        "prop.approver.a",
        &unit_a,
        Some(("property.approver", &county_a)),
    );
    let approver_b = login(
        "prop.approver.b",
        &unit_b,
        Some(("property.approver", &county_b)),
    );
    World {
        k,
        county_a,
        unit_a,
        manager_a,
        manager_b,
        member_a,
        keeper_a,
        approver_a,
        approver_b,
    }
}

/// A call to any kernel path as `who`, at their acting org.
fn kernel(k: &TestKernel, who: &Who, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = (!body.is_null()).then(|| body.to_string().into_bytes());
    let headers: Vec<(&str, &str)> = who
        .org
        .iter()
        .map(|o| ("x-tianshan-org", o.as_str()))
        .collect();
    let (status, bytes, _) = k.raw(method, path, Some(&who.token), body, &headers);
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn call(k: &TestKernel, token: &Who, method: &str, path: &str, body: Value) -> (u16, Value) {
    kernel(k, token, method, &format!("{P}{path}"), body)
}

fn ok(k: &TestKernel, token: &Who, method: &str, path: &str, body: Value, expect: u16) -> Value {
    let (status, out) = call(k, token, method, path, body);
    assert_eq!(status, expect, "{method} {path}: {out}");
    out
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

/// compound → building → floor; answers (building, floor).
fn tree(k: &TestKernel, token: &Who, name: &str) -> (String, String) {
    let compound = ok(k, token, "POST", "/compounds", json!({"name": name}), 201);
    let building = ok(
        k,
        token,
        "POST",
        "/buildings",
        json!({
            "compound_id": id(&compound), "name": "综合办公楼", "measured_m2": 2400.5,
            "floors": 5, "structure": "concrete", "built_year": 2009, "acquisition": "built",
        }),
        201,
    );
    assert_eq!(building["data"]["registration"], "pending", "{building}");
    let floor = ok(
        k,
        token,
        "POST",
        "/floors",
        json!({"building_id": id(&building), "level": 3, "name": "3层"}),
        201,
    );
    (id(&building), id(&floor))
}

fn office(k: &TestKernel, token: &Who, floor: &str, no: &str, usable: f64) -> String {
    let room = ok(
        k,
        token,
        "POST",
        "/rooms",
        json!({
            "floor_id": floor, "no": no, "class": "office", "subtype": "office.staff",
            "usable_m2": usable, "gross_m2": usable * 1.3,
            "outline": [[10, 10], [210, 10], [210, 160], [10, 160]],
        }),
        201,
    );
    id(&room)
}

#[test]
fn property_end_to_end() {
    let w = world();
    let k = &w.k;
    let (building, floor) = tree(k, &w.manager_a, "天山区机关大院");

    // Validation answers a code and the field.
    let bad = |body: Value, field: &str, code: &str| {
        let (status, out) = call(k, &w.manager_a, "POST", "/rooms", body);
        assert_eq!(status, 422, "{out}");
        assert_eq!(out["error"]["field"], field, "{out}");
        assert_eq!(out["error"]["code"], code, "{out}");
    };
    let room = |floor: &str, usable: f64, subtype: &str| {
        json!({"floor_id": floor, "no": "X1", "class": "office", "subtype": subtype,
               "usable_m2": usable, "gross_m2": 30})
    };
    bad(
        room(&floor, 0.0, "office.staff"),
        "usable_m2",
        "area_invalid",
    );
    bad(
        room(&floor, 40.0, "office.staff"),
        "usable_m2",
        "usable_above_gross",
    );
    bad(
        room(&floor, 20.0, "service.meeting"),
        "subtype",
        "subtype_not_in_class",
    );
    bad(
        room("no-such-floor", 20.0, "office.staff"),
        "floor_id",
        "parent_unknown",
    );
    let (status, out) = call(
        k,
        &w.manager_a,
        "POST",
        "/floors",
        json!({"building_id": building, "level": 3}),
    );
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (422, Some("floor_exists")),
        "{out}"
    );

    // A 20 m² office for one county-organ staff member: 9 m² standard.
    let r301 = office(k, &w.manager_a, &floor, "301", 20.0);
    let (status, out) = call(
        k,
        &w.manager_a,
        "POST",
        &format!("/rooms/{r301}/occupants"),
        json!({"person": "王芳", "rank": "provincial.head", "start_on": "2026-03-01"}),
    );
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (422, Some("rank_not_of_level")),
        "{out}"
    );
    let out = ok(
        k,
        &w.manager_a,
        "POST",
        &format!("/rooms/{r301}/occupants"),
        json!({"person": "王芳", "rank": "county.staff", "position": "科员", "start_on": "2026-03-01"}),
        201,
    );
    let check = &out["check"];
    assert_eq!(check["organ_level"], "county", "{out}");
    assert_eq!(check["over"], true, "{out}");
    let first = &check["occupants"][0];
    assert_eq!(
        (
            first["standard_m2"].as_f64(),
            first["actual_m2"].as_f64(),
            first["excess_m2"].as_f64()
        ),
        (Some(9.0), Some(20.0), Some(11.0)),
        "{out}"
    );
    // A second occupant splits the room: 10 m² each, 1 m² over each.
    let out = ok(
        k,
        &w.manager_a,
        "POST",
        &format!("/rooms/{r301}/occupants"),
        json!({"person": "李强", "rank": "county.staff", "start_on": "2026-03-02"}),
        201,
    );
    assert_eq!(out["check"]["excess_m2"].as_f64(), Some(2.0), "{out}");
    let li = out["occupancy_id"].as_str().unwrap().to_string();
    let list = ok(k, &w.manager_a, "GET", "/overstandard", Value::Null, 200);
    assert_eq!(list["persons"].as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list["units"][0]["org"], w.unit_a.as_str(), "{list}");
    assert_eq!(list["units"][0]["excess_m2"].as_f64(), Some(2.0), "{list}");
    // One moves out: the other is back at 20 m², 11 over; a room change
    // (smaller after a partition) re-runs the check.
    let out = ok(
        k,
        &w.manager_a,
        "POST",
        &format!("/occupancies/{li}/end"),
        json!({"end_on": "2026-06-30"}),
        200,
    );
    assert_eq!(out["check"]["excess_m2"].as_f64(), Some(11.0), "{out}");
    let out = ok(
        k,
        &w.manager_a,
        "PUT",
        &format!("/rooms/{r301}"),
        json!({"floor_id": floor, "no": "301", "class": "office", "subtype": "office.staff",
               "usable_m2": 9, "gross_m2": 12}),
        200,
    );
    assert_eq!(out["check"]["over"], false, "{out}");
    // The floor view draws the room with its outline and flags.
    let view = ok(
        k,
        &w.manager_a,
        "GET",
        &format!("/floors/{floor}/view"),
        Value::Null,
        200,
    );
    let drawn = &view["rooms"][0];
    assert_eq!(
        (drawn["no"].as_str(), drawn["occupants"].as_u64()),
        (Some("301"), Some(1)),
        "{view}"
    );
    assert_eq!(drawn["outline"].as_array().unwrap().len(), 4, "{view}");
    let (status, out) = call(
        k,
        &w.manager_a,
        "PUT",
        &format!("/rooms/{r301}/outline"),
        json!({"outline": [[0, 0], [5000, 0], [0, 5]]}),
    );
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (422, Some("outline_outside_plan")),
        "{out}"
    );

    // Attacks: another county's manager sees and changes none of it.
    let (status, _) = call(
        k,
        &w.manager_b,
        "GET",
        &format!("/rooms/{r301}"),
        Value::Null,
    );
    assert_eq!(status, 404);
    let (status, _) = call(
        k,
        &w.manager_b,
        "POST",
        &format!("/rooms/{r301}/occupants"),
        json!({"person": "张伟", "rank": "county.staff", "start_on": "2026-03-01"}),
    );
    assert_eq!(status, 404);
    let (status, out) = call(
        k,
        &w.manager_b,
        "POST",
        "/floors",
        json!({"building_id": building, "level": 4}),
    );
    assert_eq!(
        (status, out["error"]["field"].as_str()),
        (422, Some("building_id")),
        "{out}"
    );
    // A forged org in the body: another county's unit, or one that is not.
    let (status, _) = call(
        k,
        &w.manager_b,
        "POST",
        "/compounds",
        json!({"name": "x", "org": w.unit_a}),
    );
    assert_eq!(status, 403);
    let (status, out) = call(
        k,
        &w.manager_b,
        "POST",
        "/compounds",
        json!({"name": "x", "org": "org-999999"}),
    );
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (422, Some("org_unknown")),
        "{out}"
    );
    // A member reads but does not manage; nobody but the region configures.
    let (status, _) = call(k, &w.member_a, "GET", "/overstandard", Value::Null);
    assert_eq!(status, 200);
    let (status, _) = call(k, &w.member_a, "POST", "/compounds", json!({"name": "x"}));
    assert_eq!(status, 403);
    let (status, _) = call(
        k,
        &w.member_a,
        "POST",
        &format!("/rooms/{r301}/occupants"),
        json!({"person": "张伟", "rank": "county.staff", "start_on": "2026-03-01"}),
    );
    assert_eq!(status, 403);
    let (status, _) = call(
        k,
        &w.manager_a,
        "PUT",
        "/standards/county.staff",
        json!({"m2": 30}),
    );
    assert_eq!(status, 403);
    // A county's administrator holds configure at the county, but the
    // standard is the region's: no laxer figures for oneself.
    let county_admin = Who {
        token: person(
            k,
            "prop.county.admin",
            &w.unit_a,
            &[("org-admin", &w.county_a)],
        ),
        org: Some(w.county_a.clone()),
    };
    let (status, _) = call(
        k,
        &county_admin,
        "PUT",
        "/standards/county.staff",
        json!({"m2": 30}),
    );
    assert_eq!(status, 403);
    // The region's administrator (the kernel's admin) edits it, and the
    // check follows: the 9 m² room against 5 is 4 over.
    let admin = Who {
        token: k.token.clone(),
        org: None,
    };
    ok(
        k,
        &admin,
        "PUT",
        "/standards/county.staff",
        json!({"m2": 5}),
        200,
    );
    let room_now = ok(
        k,
        &w.manager_a,
        "GET",
        &format!("/rooms/{r301}"),
        Value::Null,
        200,
    );
    assert_eq!(
        room_now["check"]["excess_m2"].as_f64(),
        Some(4.0),
        "{room_now}"
    );
    ok(
        k,
        &admin,
        "PUT",
        "/standards/county.staff",
        json!({"m2": 9}),
        200,
    );
    let standards = ok(k, &w.member_a, "GET", "/standards", Value::Null, 200);
    let county_head = standards["standards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["rank"] == "county.head")
        .cloned();
    assert_eq!(
        county_head.and_then(|s| s["m2"].as_f64()),
        Some(30.0),
        "{standards}"
    );

    import(&w, &building);
    registration(&w, &building);
    allocation(&w);
}

/// A room register in CSV: a row naming a floor the building lacks and a
/// repeated room are reported with the row and nothing is written; the
/// corrected file imports both rooms.
fn import(w: &World, building: &str) {
    let k = &w.k;
    let path = format!("{P}/buildings/{building}/rooms/import");
    let upload = |who: &Who, csv: &str| {
        let headers: Vec<(&str, &str)> = who
            .org
            .iter()
            .map(|o| ("x-tianshan-org", o.as_str()))
            .collect();
        let (status, bytes, _) = k.raw(
            "POST",
            &path,
            Some(&who.token),
            Some(csv.as_bytes().to_vec()),
            &headers,
        );
        (
            status,
            serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
        )
    };
    let bad = "房间台账\n楼层,房间号,房间分类,具体用途,使用面积(㎡),建筑面积\n\
               3,310,办公室,一般工作人员办公室,\"1,8.5\",24\n\
               9,901,办公室,一般工作人员办公室,18,24\n\
               3,311,服务用房,会议室,60,40\n";
    let (status, out) = upload(&w.manager_a, bad);
    assert_eq!(status, 422, "{out}");
    let errors = out["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{out}");
    assert_eq!(
        (errors[0]["row"].as_u64(), errors[0]["code"].as_str()),
        (Some(4), Some("floor_unknown")),
        "{out}"
    );
    assert_eq!(errors[1]["code"], "usable_above_gross", "{out}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("没有该楼层"),
        "{out}"
    );
    let good = "楼层,房间号,房间分类,具体用途,使用面积,建筑面积\n3,310,office,office.staff,18.5,24\n3,311,服务用房,会议室,40,60\n";
    let (status, _) = upload(&w.manager_b, good);
    assert_eq!(status, 404);
    let (status, out) = upload(&w.manager_a, good);
    assert_eq!((status, out["imported"].as_u64()), (201, Some(2)), "{out}");
    // The unit's usable area reaches the data center for other systems:
    // room 301 (9 m² since its change) + 310 (18.5) + 311 (40).
    let (status, out) = kernel(
        k,
        &w.manager_a,
        "GET",
        &format!(
            "/api/v1/datacenter/indicators/property.usable_m2/values?org={}&per=year",
            w.unit_a
        ),
        Value::Null,
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["rows"][0]["value"].as_f64(), Some(67.5), "{out}");
    let (status, out) = upload(&w.manager_a, good);
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["errors"][0]["code"], "room_exists", "{out}");
}

/// 待登记 → 办理中 → 已登记 moves the unit's rate to 100 % in the plan's
/// county indicator once the platform grants the plugin publishing.
fn registration(w: &World, building: &str) {
    let k = &w.k;
    let (status, out) = k.request(
        "PUT",
        "/api/v1/datacenter/indicators/plan.room_registration_county/sharing",
        None,
        Some(
            json!({"sharing": "open", "grants": [{"plugin": "property", "access": "publish"}]})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(status, 200, "{out}");
    let path = format!("/buildings/{building}/registration");
    let (status, out) = call(
        k,
        &w.manager_a,
        "POST",
        &path,
        json!({"status": "registered"}),
    );
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (409, Some("registration_step")),
        "{out}"
    );
    let (status, _) = call(
        k,
        &w.manager_b,
        "POST",
        &path,
        json!({"status": "in_progress"}),
    );
    assert_eq!(status, 404);
    ok(
        k,
        &w.manager_a,
        "POST",
        &path,
        json!({"status": "in_progress"}),
        200,
    );
    let (status, out) = call(
        k,
        &w.manager_a,
        "POST",
        &path,
        json!({"status": "registered"}),
    );
    assert_eq!(
        (status, out["error"]["field"].as_str()),
        (422, Some("cert_no")),
        "{out}"
    );
    let out = ok(
        k,
        &w.manager_a,
        "POST",
        &path,
        json!({"status": "registered", "cert_no": "新(2026)天山区不动产权第0000123号"}),
        200,
    );
    assert_eq!(out["rate"]["rate"].as_f64(), Some(100.0), "{out}");
    assert_eq!(out["rate"]["plan_published"], true, "{out}");
    let (status, out) = k.request(
        "GET",
        &format!(
            "/api/v1/datacenter/indicators/plan.room_registration_county/values?org={}&per=year",
            w.county_a
        ),
        None,
        None,
    );
    assert_eq!(status, 200, "{out}");
    let values: Vec<f64> = out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["value"].as_f64())
        .collect();
    assert_eq!(values, vec![100.0], "{out}");
    let (status, out) = k.request(
        "GET",
        &format!(
            "/api/v1/datacenter/indicators/property.registration_rate/values?org={}&per=year",
            w.county_a
        ),
        None,
        None,
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["rows"][0]["value"].as_f64(), Some(100.0), "{out}");
}

/// The unit asks for a room of the county's pool; the county's approver
/// approves (another county's cannot), the county's keeper hands it over.
fn allocation(w: &World) {
    let k = &w.k;
    let (_, pool_floor) = tree(k, &w.keeper_a, "县机关办公用房调剂库");
    let pool_room = office(k, &w.keeper_a, &pool_floor, "101", 18.0);
    let (status, out) = call(
        k,
        &w.manager_a,
        "POST",
        "/allocations",
        json!({"kind": "adjust", "area_m2": 18, "reason": "新增编制"}),
    );
    assert_eq!(
        (status, out["error"]["field"].as_str()),
        (422, Some("room_id")),
        "{out}"
    );
    let draft = ok(
        k,
        &w.manager_a,
        "POST",
        "/allocations",
        json!({"kind": "adjust", "room_id": pool_room, "area_m2": 18, "reason": "新增编制2人"}),
        201,
    );
    assert!(
        draft["data"]["no"].as_str().unwrap().starts_with("房调〔"),
        "{draft}"
    );
    let doc = id(&draft);
    let (status, _) = call(
        k,
        &w.member_a,
        "POST",
        &format!("/allocations/{doc}/submit"),
        Value::Null,
    );
    assert_eq!(status, 403);
    let submitted = ok(
        k,
        &w.manager_a,
        "POST",
        &format!("/allocations/{doc}/submit"),
        Value::Null,
        200,
    );
    let approval = submitted["data"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Another county's approver is not this approval's.
    let (status, out) = kernel(
        k,
        &w.approver_b,
        "POST",
        &format!("/api/v1/approvals/{approval}/approve"),
        json!({"comment": "同意"}),
    );
    assert!(status == 403 || status == 404, "{status} {out}");
    // Hand-over before approval is refused.
    let (status, out) = call(
        k,
        &w.keeper_a,
        "POST",
        &format!("/allocations/{doc}/handover"),
        Value::Null,
    );
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (409, Some("not_approved")),
        "{out}"
    );
    let (status, out) = kernel(
        k,
        &w.approver_a,
        "POST",
        &format!("/api/v1/approvals/{approval}/approve"),
        json!({"comment": "同意调剂"}),
    );
    assert_eq!(status, 200, "{out}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = ok(
            k,
            &w.manager_a,
            "GET",
            &format!("/allocations/{doc}"),
            Value::Null,
            200,
        );
        if out["allocation"]["data"]["status"] == "approved" {
            break;
        }
        assert!(Instant::now() < deadline, "never approved: {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The requester cannot hand itself the county's room.
    let (status, _) = call(
        k,
        &w.manager_a,
        "POST",
        &format!("/allocations/{doc}/handover"),
        Value::Null,
    );
    assert_eq!(status, 404);
    let out = ok(
        k,
        &w.keeper_a,
        "POST",
        &format!("/allocations/{doc}/handover"),
        Value::Null,
        200,
    );
    assert_eq!(out["data"]["status"], "executed", "{out}");
    let room = ok(
        k,
        &w.keeper_a,
        "GET",
        &format!("/rooms/{pool_room}"),
        Value::Null,
        200,
    );
    assert_eq!(
        room["room"]["data"]["assigned_unit"],
        w.unit_a.as_str(),
        "{room}"
    );
    // The summary report counts what is there.
    let summary = ok(k, &w.keeper_a, "GET", "/reports/summary", Value::Null, 200);
    assert_eq!(summary["buildings"].as_u64(), Some(2), "{summary}");
    assert_eq!(
        summary["buildings_registered"].as_u64(),
        Some(1),
        "{summary}"
    );
    let (status, bytes, _) = k.raw(
        "GET",
        &format!("{P}/reports/area?by=class&format=csv"),
        Some(&w.keeper_a.token),
        None,
        &[("x-tianshan-org", &w.county_a)],
    );
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&bytes).contains("办公室"));
}

/// The floor view in a real browser: the over-standard room is drawn red,
/// clicking it opens the room with the warning, and assigning a second
/// occupant through the form shows the new figures.
#[test]
fn floor_plan_and_over_standard_warning_in_the_browser() {
    use crate::identity::PASSWORD;
    use crate::portal::Browser;
    if !crate::support::have(crate::support::Service::Browser) {
        return;
    }
    let w = world();
    let k = &w.k;
    let (_, floor) = tree(k, &w.manager_a, "天山区机关大院");
    let room = office(k, &w.manager_a, &floor, "301", 20.0);
    office(k, &w.manager_a, &floor, "302", 9.0);
    ok(
        k,
        &w.manager_a,
        "POST",
        &format!("/rooms/{room}/occupants"),
        json!({"person": "王芳", "rank": "county.staff", "start_on": "2026-03-01"}),
        201,
    );
    let b = Browser::start();
    b.goto(&format!("{}/", k.base));
    b.wait_displayed("#login-username");
    b.type_into("#login-username", "prop.manager.a");
    b.type_into("#login-password", PASSWORD);
    b.click("#login-submit");
    b.wait_displayed("#user-name");
    // What the shell logged before signing in (the session check's 401).
    b.console_errors();
    b.goto(&format!("{}/#/p/property/floor/{floor}", k.base));
    b.in_plugin_frame(|| {
        b.wait_displayed(&format!(r#"polygon.over[data-room="{room}"]"#));
        // Two rooms drawn; the vacant 9 m² office is not over.
        b.wait_until("both rooms drawn", || {
            b.script("return document.querySelectorAll('polygon[data-room]').length", json!([])) == 2
        });
        b.script(
            "document.querySelector(arguments[0]).dispatchEvent(new MouseEvent('click', {bubbles: true}))",
            json!([format!(r#"polygon[data-room="{room}"]"#)]),
        );
        b.wait_text("h2", "the room's title", |t| t.contains("301"));
        b.wait_text("p.warn", "the over-standard warning", |t| t.contains("11"));
        // A second staff member: 10 m² each, 1 m² over each, 2 in all.
        b.type_into("input[name=person]", "李强");
        b.script(
            "var s = document.querySelector('select[name=rank]'); s.value = 'county.staff'; \
             s.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([]),
        );
        b.click("form.inline button[type=submit]");
        b.wait_text("p.warn[role=alert]", "the new figures", |t| t.contains('2'));
        b.wait_until("two occupants listed", || {
            b.script(
                "return document.querySelectorAll('table')[0].querySelectorAll('tbody tr').length",
                json!([]),
            ) == 2
        });
        // One menu and one language switch, the portal's.
        assert_eq!(
            b.script(
                "return !document.getElementById('nav') && !document.getElementById('lang-switch')",
                json!([])
            ),
            true
        );
    });
    // The system's six sections under its name in the portal's menu.
    b.wait_text(
        r#"#menu .menu-group[data-plugin="property"]"#,
        "the system's name",
        |t| !t.is_empty(),
    );
    assert_eq!(
        b.script(
            "return document.querySelectorAll('#menu .menu-entry[data-plugin=\"property\"]').length",
            json!([])
        ),
        6
    );
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// `tianshan up`'s seed: rooms drawn on SVG plans with over-standard cases,
/// and a second call adds nothing.
#[test]
fn demo_seed_is_idempotent_and_has_over_standard_cases() {
    let w = world();
    let k = &w.k;
    let orgs = json!({"orgs": [
        {"id": w.unit_a, "level": "unit"},
        {"id": w.county_a, "level": "county"},
    ]});
    let seed = |expect: u64| {
        let (status, out) = k.request(
            "POST",
            &format!("{P}/demo/seed"),
            None,
            Some(orgs.to_string().into_bytes()),
        );
        assert_eq!(status, 201, "{out}");
        assert_eq!(out["seeded"].as_u64(), Some(expect), "{out}");
    };
    seed(2);
    seed(0);
    let keeper = &w.keeper_a;
    let list = ok(k, keeper, "GET", "/overstandard", Value::Null, 200);
    // Per org and floor: the head 2 m² over, two staff 9 m² over each.
    assert_eq!(list["persons"].as_array().unwrap().len(), 12, "{list}");
    let floors = ok(k, keeper, "GET", "/rooms?limit=1", Value::Null, 200);
    let floor = floors["records"][0]["data"]["floor_id"]
        .as_str()
        .unwrap()
        .to_string();
    let view = ok(
        k,
        keeper,
        "GET",
        &format!("/floors/{floor}/view"),
        Value::Null,
        200,
    );
    assert_eq!(view["floor"]["data"]["plan_svg"], true, "{view}");
    let (status, bytes, headers) = k.raw(
        "GET",
        &format!("{P}/floors/{floor}/plan.svg"),
        Some(&keeper.token),
        None,
        &[("x-tianshan-org", &w.county_a)],
    );
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&bytes).starts_with("<svg"));
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "content-type" && v.starts_with("image/svg+xml"))
    );
    // An SVG with a script is refused as a plan.
    let (status, bytes, _) = k.raw(
        "PUT",
        &format!("{P}/floors/{floor}/plan.svg"),
        Some(&keeper.token),
        Some(b"<svg><script>alert(1)</script></svg>".to_vec()),
        &[("x-tianshan-org", &w.county_a)],
    );
    let out: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (422, Some("plan_active_content")),
        "{out}"
    );
    assert_eq!(view["rooms"].as_array().unwrap().len(), 8, "{view}");
}

/// `tianshan up` installs the plugin and seeds it: as the kernel, with the
/// demo org tree, the way a newcomer first sees it.
#[test]
fn tianshan_up_installs_property_with_demo_data() {
    let dir = tempfile::tempdir().unwrap();
    let k = TestKernel::start_demo(dir.path());
    let admin = Who {
        token: k.token.clone(),
        org: None,
    };
    let summary = ok(&k, &admin, "GET", "/reports/summary", Value::Null, 200);
    assert!(summary["rooms"].as_f64().unwrap() >= 16.0, "{summary}");
    assert!(summary["buildings"].as_u64().unwrap() >= 1, "{summary}");
    let list = ok(&k, &admin, "GET", "/overstandard", Value::Null, 200);
    assert!(!list["persons"].as_array().unwrap().is_empty(), "{list}");
    // `up` granted the system the plan's registration rates it feeds, so
    // the demo's registrations reached them.
    let (_, plan) = k.get("/api/v1/datacenter/indicators/plan.room_registration_county");
    assert!(
        plan.to_string().contains(r#""plugin":"property""#),
        "the publish grant: {plan}"
    );
    let (status, values) =
        k.get("/api/v1/datacenter/indicators/plan.room_registration_county/values?rollup=false");
    assert_eq!(status, 200, "{values}");
    assert!(values.to_string().contains("\"value\""), "values: {values}");
}

/// An occupant who is a platform user brings the post rank an
/// administrator set on their kernel profile (contract 1.4), mapped onto
/// the organ level's row; a user beyond the manager's reach is unknown.
#[test]
fn an_occupant_who_is_a_user_brings_the_rank_of_their_profile() {
    let w = world();
    let k = &w.k;
    let (_, floor) = tree(k, &w.manager_a, "县委大院");
    let room = office(k, &w.manager_a, &floor, "201", 40.0);
    // The county head: 县级正职 is the national division rank.
    let head = crate::identity::user(k, "county.head", &w.unit_a);
    let (status, out) = k.request(
        "PATCH",
        &format!("/api/v1/users/{head}"),
        None,
        Some(
            json!({"post_rank": "division", "position": "县长"})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(status, 200, "{out}");
    let out = ok(
        k,
        &w.manager_a,
        "POST",
        &format!("/rooms/{room}/occupants"),
        json!({"person": "", "user_id": "county.head", "start_on": "2026-03-01"}),
        201,
    );
    let first = &out["check"]["occupants"][0];
    assert_eq!(first["rank"], "county.head", "{out}");
    assert_eq!(first["person"], "county.head", "the display name: {out}");
    assert_eq!(first["position"], "县长", "{out}");
    assert_eq!(
        (first["standard_m2"].as_f64(), first["excess_m2"].as_f64()),
        (Some(30.0), Some(10.0)),
        "{out}"
    );
    // A user without a rank needs one in the form.
    let clerk = crate::identity::user(k, "county.clerk", &w.unit_a);
    let (status, out) = call(
        k,
        &w.manager_a,
        "POST",
        &format!("/rooms/{room}/occupants"),
        json!({"person": "", "user_id": clerk, "start_on": "2026-03-01"}),
    );
    assert_eq!(
        (
            status,
            out["error"]["code"].as_str(),
            out["error"]["field"].as_str()
        ),
        (422, Some("rank_not_on_profile"), Some("rank")),
        "{out}"
    );
    // County B's manager does not learn county A's people.
    let b_floor = tree(k, &w.manager_b, "区委大院").1;
    let b_room = office(k, &w.manager_b, &b_floor, "101", 12.0);
    let (status, out) = call(
        k,
        &w.manager_b,
        "POST",
        &format!("/rooms/{b_room}/occupants"),
        json!({"person": "", "user_id": "county.head", "start_on": "2026-03-01"}),
    );
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (422, Some("user_unknown")),
        "{out}"
    );
}
