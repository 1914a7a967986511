//! The assets plugin end to end, through the gateway of a real kernel: a
//! card is created, registered through the kernel's approvals and booked;
//! documents lock their cards; disposal approval follows the value
//! threshold; imports are all or nothing with row-level errors; exports,
//! labels, depreciation and the increase/decrease statement; and another
//! unit's manager reaches none of it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::identity::{TwoCounties, person, two_counties};
use crate::services::PgDatabase;
use crate::support;
use crate::support::TestKernel;

const P: &str = "/api/v1/p/assets";

struct World {
    k: TestKernel,
    _database: Option<PgDatabase>,
    county_a: String,
    unit_a: String,
    unit_b: String,
    manager_a: String,
    manager_b: String,
    county_admin: String,
    region_admin: String,
}

fn world() -> World {
    world_on(TestKernel::start(), None)
}

/// The same world on a kernel of the caller's choosing (PostgreSQL); the
/// database handle is kept so it is dropped after the kernel.
fn world_on(k: TestKernel, database: Option<PgDatabase>) -> World {
    let root = "org-650000";
    let TwoCounties {
        unit_a,
        unit_b,
        county_a,
        ..
    } = two_counties(&k);
    k.install_ok("assets");
    let login = |name: &str, home: &str, roles: &[(&str, &str)]| person(&k, name, home, roles);
    let manager_a = login("manager.a", &unit_a, &[("assets.manager", &unit_a)]);
    let manager_b = login("manager.b", &unit_b, &[("assets.manager", &unit_b)]);
    let county_admin = login("county.admin", &unit_a, &[("org-admin", &county_a)]);
    let region_admin = login("region.admin", &unit_a, &[("org-admin", root)]);
    World {
        k,
        _database: database,
        county_a,
        unit_a,
        unit_b,
        manager_a,
        manager_b,
        county_admin,
        region_admin,
    }
}

fn call(k: &TestKernel, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = (!body.is_null()).then(|| body.to_string().into_bytes());
    k.request(method, &format!("{P}{path}"), Some(token), body)
}

fn ok(k: &TestKernel, token: &str, method: &str, path: &str, body: Value, expect: u16) -> Value {
    let (status, out) = call(k, token, method, path, body);
    assert_eq!(status, expect, "{method} {path}: {out}");
    out
}

fn new_card(w: &World, name: &str, category: &str, yuan: &str) -> String {
    let out = ok(
        &w.k,
        &w.manager_a,
        "POST",
        "/cards",
        json!({
            "name": name, "category": category, "acquired_on": "2024-03-15",
            "original_value_yuan": yuan, "location": "主楼301室", "custodian": "王芳",
        }),
        201,
    );
    assert_eq!(out["data"]["state"], "draft", "{out}");
    assert!(
        out["data"]["asset_no"].as_str().unwrap().starts_with("ZC"),
        "{out}"
    );
    out["id"].as_str().unwrap().to_string()
}

/// Approves every pending assets approval on `token`'s list.
fn approve_all(w: &World, token: &str) -> usize {
    let (status, out) =
        w.k.request("GET", "/api/v1/todos?kind=pending", Some(token), None);
    assert_eq!(status, 200, "{out}");
    let ids: Vec<String> = out["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["approval"]["id"].as_str().unwrap().to_string())
        .collect();
    for id in &ids {
        let (status, out) = w.k.request(
            "POST",
            &format!("/api/v1/approvals/{id}/approve"),
            Some(token),
            Some(json!({"comment": "同意"}).to_string().into_bytes()),
        );
        assert_eq!(status, 200, "{out}");
    }
    ids.len()
}

/// Waits for the outcome event to reach the plugin.
fn card_becomes(w: &World, id: &str, field: &str, value: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = ok(
            &w.k,
            &w.manager_a,
            "GET",
            &format!("/cards/{id}"),
            Value::Null,
            200,
        );
        if out["card"]["data"][field] == value {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "card {id} never got {field}={value}: {out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn register(w: &World, id: &str) {
    let doc = ok(
        &w.k,
        &w.manager_a,
        "POST",
        "/documents",
        json!({"kind": "registration", "card_ids": [id], "submit": true}),
        201,
    );
    assert_eq!(doc["data"]["status"], "in_approval", "{doc}");
    assert!(
        approve_all(w, &w.county_admin) >= 1,
        "the parent administration has the registration to approve"
    );
    card_becomes(w, id, "state", "booked");
}

fn xlsx(rows: &[Vec<Value>]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in ["资产名称", "分类代码", "取得日期", "原值", "存放地点"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            match cell {
                Value::Number(n) => sheet
                    .write_number(r as u32 + 1, c as u16, n.as_f64().unwrap())
                    .map(|_| ()),
                v => sheet
                    .write_string(r as u32 + 1, c as u16, v.as_str().unwrap_or_default())
                    .map(|_| ()),
            }
            .unwrap();
        }
    }
    book.save_to_buffer().unwrap()
}

#[test]
fn asset_lifecycle_through_the_gateway() {
    lifecycle(world());
}

/// The whole lifecycle again with every record in PostgreSQL, as a
/// several-node deployment runs it.
#[test]
fn asset_lifecycle_on_postgresql() {
    if !support::have(support::Service::Postgres) {
        return;
    }
    let database = PgDatabase::create();
    let tmp = tempfile::tempdir().unwrap();
    let k = TestKernel::start_in(
        &tmp.path().join("data"),
        &["--database-url", database.url.as_str()],
    );
    lifecycle(world_on(k, Some(database)));
    drop(tmp);
}

fn lifecycle(w: World) {
    // The system answers at its root, so operators can tell it serves.
    let about = ok(&w.k, &w.manager_a, "GET", "/", Value::Null, 200);
    assert_eq!(about["plugin"], "assets", "{about}");
    // Validation names the field; nothing is written.
    let (status, out) = call(
        &w.k,
        &w.manager_a,
        "POST",
        "/cards",
        json!({"name": "X", "category": "Z9", "acquired_on": "2024-01-01"}),
    );
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["field"], "category", "{out}");
    // So do list filters outside their vocabulary.
    for (path, field) in [
        ("/cards?state=lost", "state"),
        ("/documents?status=maybe", "status"),
        ("/warehouse/orders?kind=gift", "kind"),
    ] {
        let (status, out) = call(&w.k, &w.manager_a, "GET", path, Value::Null);
        assert_eq!(
            (status, out["error"]["field"].as_str()),
            (422, Some(field)),
            "{path}: {out}"
        );
    }

    // Create → register → the parent administration approves → booked.
    let laptop = new_card(&w, "便携式计算机", "A020102", "6500");
    register(&w, &laptop);
    let detail = ok(
        &w.k,
        &w.manager_a,
        "GET",
        &format!("/cards/{laptop}"),
        Value::Null,
        200,
    );
    assert!(detail["card"]["data"]["locked_by"].is_null(), "{detail}");
    let actions: Vec<&str> = detail["activity"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["data"]["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"created") && actions.contains(&"registration_approved"),
        "{actions:?}"
    );

    // Another unit's manager sees none of it.
    let (status, _) = call(
        &w.k,
        &w.manager_b,
        "GET",
        &format!("/cards/{laptop}"),
        Value::Null,
    );
    assert_eq!(status, 404);
    let listed = ok(&w.k, &w.manager_b, "GET", "/cards", Value::Null, 200);
    assert_eq!(listed["total"], 0, "{listed}");
    let (status, out) = call(
        &w.k,
        &w.manager_b,
        "POST",
        "/documents",
        json!({"kind": "disposal", "card_ids": [laptop], "method": "scrap", "reason": "x"}),
    );
    assert_eq!(status, 404, "{out}");
    let (status, out) = call(
        &w.k,
        &w.manager_b,
        "POST",
        "/cards",
        json!({"name": "X", "category": "A020101", "acquired_on": "2024-01-01", "original_value": 100, "org": w.unit_a}),
    );
    assert_eq!(status, 403, "writing into another unit: {out}");

    // Nobody approves for county B: create-and-submit fails as a whole,
    // leaving the card free, so the same request fails the same way again
    // instead of finding the card locked by a half-made draft.
    let (status, card_b) = call(
        &w.k,
        &w.manager_b,
        "POST",
        "/cards",
        json!({"name": "打印机", "category": "A020204", "acquired_on": "2024-01-01", "original_value_yuan": "900"}),
    );
    assert_eq!(status, 201, "{card_b}");
    let card_b = card_b["id"].as_str().unwrap();
    for _ in 0..2 {
        let (status, out) = call(
            &w.k,
            &w.manager_b,
            "POST",
            "/documents",
            json!({"kind": "registration", "card_ids": [card_b], "submit": true}),
        );
        assert!(
            status >= 400 && out["error"]["code"] != "card_locked",
            "{status} {out}"
        );
        let card = ok(
            &w.k,
            &w.manager_b,
            "GET",
            &format!("/cards/{card_b}"),
            Value::Null,
            200,
        );
        assert!(card["card"]["data"]["locked_by"].is_null(), "{card}");
    }

    // A card in an open document is locked.
    let draft = ok(
        &w.k,
        &w.manager_a,
        "POST",
        "/documents",
        json!({"kind": "change", "card_ids": [laptop], "changes": {"location": "主楼502室"}, "reason": "搬迁"}),
        201,
    );
    let (status, out) = call(
        &w.k,
        &w.manager_a,
        "POST",
        "/documents",
        json!({"kind": "disposal", "card_ids": [laptop], "method": "scrap", "reason": "损坏"}),
    );
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (409, Some("card_locked")),
        "{out}"
    );
    // The change goes through and lands on the card.
    let draft_id = draft["id"].as_str().unwrap();
    ok(
        &w.k,
        &w.manager_a,
        "POST",
        &format!("/documents/{draft_id}/submit"),
        Value::Null,
        200,
    );
    assert_eq!(approve_all(&w, &w.county_admin), 1);
    card_becomes(&w, &laptop, "location", "主楼502室");

    // Import: every bad row named with its column, nothing written; then
    // the corrected file books both cards.
    let before = ok(&w.k, &w.manager_a, "GET", "/cards", Value::Null, 200)["total"]
        .as_u64()
        .unwrap();
    let bad = xlsx(&[
        vec![
            json!("中央空调机组"),
            json!("A020502"),
            json!("2023-05-01"),
            json!(350000),
            json!("机房"),
        ],
        vec![
            json!("坏行"),
            json!("A999999"),
            json!("2023-05-01"),
            json!(10),
            json!(""),
        ],
        vec![
            json!("办公桌"),
            json!("A050101"),
            json!("2023-02-30"),
            json!(1200),
            json!(""),
        ],
    ]);
    let (status, out) = w.k.request(
        "POST",
        &format!("{P}/import"),
        Some(&w.manager_a),
        Some(bad),
    );
    assert_eq!(status, 422, "{out}");
    let errors = out["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{out}");
    assert_eq!(
        (errors[0]["row"].as_u64(), errors[0]["column"].as_str()),
        (Some(3), Some("分类代码"))
    );
    assert_eq!(
        (errors[1]["row"].as_u64(), errors[1]["column"].as_str()),
        (Some(4), Some("取得日期"))
    );
    assert_eq!(
        ok(&w.k, &w.manager_a, "GET", "/cards", Value::Null, 200)["total"]
            .as_u64()
            .unwrap(),
        before
    );
    let good = xlsx(&[
        vec![
            json!("中央空调机组"),
            json!("A020502"),
            json!("2023-05-01"),
            json!(350000),
            json!("机房"),
        ],
        vec![
            json!("办公桌"),
            json!("A050101"),
            json!("2023-02-28"),
            json!(1200),
            json!(""),
        ],
    ]);
    let (status, out) = w.k.request(
        "POST",
        &format!("{P}/import"),
        Some(&w.manager_a),
        Some(good),
    );
    assert_eq!((status, out["imported"].as_u64()), (201, Some(2)), "{out}");
    // Imported cards are registered like entered ones: the county approves.
    assert_eq!(approve_all(&w, &w.county_admin), 1);
    let hvac = ok(
        &w.k,
        &w.manager_a,
        "GET",
        "/cards?q=中央空调",
        Value::Null,
        200,
    );
    assert_eq!(hvac["total"], 1, "{hvac}");
    let hvac_id = hvac["records"][0]["id"].as_str().unwrap().to_string();
    card_becomes(&w, &hvac_id, "state", "booked");
    // Depreciation booked through last month at import: 8 years for HVAC.
    assert!(hvac["records"][0]["data"]["net_value"].as_i64().unwrap() < 35_000_000);

    // Disposal: above the region's threshold (¥200k) it takes the two-step
    // flow; the region approves last.
    let big = ok(
        &w.k,
        &w.manager_a,
        "POST",
        "/documents",
        json!({"kind": "disposal", "card_ids": [hvac_id], "method": "sale", "reason": "老化", "submit": true}),
        201,
    );
    assert_eq!(big["data"]["flow"], "disposal-region", "{big}");
    let small = ok(
        &w.k,
        &w.manager_a,
        "POST",
        "/documents",
        json!({"kind": "disposal", "card_ids": [laptop], "method": "scrap", "reason": "损坏", "submit": true}),
        201,
    );
    assert_eq!(small["data"]["flow"], "disposal", "{small}");
    assert_eq!(approve_all(&w, &w.county_admin), 2);
    card_becomes(&w, &laptop, "state", "disposed");
    let still = ok(
        &w.k,
        &w.manager_a,
        "GET",
        &format!("/cards/{hvac_id}"),
        Value::Null,
        200,
    );
    assert_eq!(
        still["card"]["data"]["state"], "booked",
        "waits for the region"
    );
    assert_eq!(approve_all(&w, &w.region_admin), 1);
    card_becomes(&w, &hvac_id, "state", "disposed");

    // Reports: disposals by method, the statement balances, totals count
    // the desk that is left.
    let disposals = ok(
        &w.k,
        &w.manager_a,
        "GET",
        "/reports/disposals",
        Value::Null,
        200,
    );
    let methods: Vec<&str> = disposals["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["method"].as_str())
        .collect();
    assert!(
        methods.contains(&"sale") && methods.contains(&"scrap"),
        "{disposals}"
    );
    let statement = ok(
        &w.k,
        &w.manager_a,
        "GET",
        "/reports/changes?from=2020-01",
        Value::Null,
        200,
    );
    let v = |k: &str| statement[k]["value"].as_f64().unwrap();
    assert_eq!(
        v("opening") + v("additions") - v("reductions"),
        v("closing"),
        "{statement}"
    );
    assert_eq!(
        statement["reductions"]["count"].as_f64(),
        Some(2.0),
        "{statement}"
    );
    let totals = ok(
        &w.k,
        &w.manager_a,
        "GET",
        "/reports/totals?by=category",
        Value::Null,
        200,
    );
    let furniture = totals["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "A05")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        furniture["original_value"].as_f64(),
        Some(120_000.0),
        "{totals}"
    );

    // Exports and labels.
    let (status, bytes, headers) = w.k.raw(
        "GET",
        &format!("{P}/cards?format=xlsx"),
        Some(&w.manager_a),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(&bytes[..2], b"PK");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.contains("spreadsheetml"))
    );
    let (status, bytes, _) = w.k.raw(
        "GET",
        &format!("{P}/reports/totals?by=category&format=csv"),
        Some(&w.manager_a),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&bytes).contains("家具和用具"));
    let (status, bytes, _) = w.k.raw(
        "GET",
        &format!("{P}/labels?ids={laptop}"),
        Some(&w.manager_a),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(&bytes[1..4], b"PNG");
    let found = ok(
        &w.k,
        &w.manager_a,
        "GET",
        &format!("/lookup?code=ts:assets:{laptop}"),
        Value::Null,
        200,
    );
    assert_eq!(found["id"], laptop.as_str());

    // Rules are set at the region and read below it; a unit cannot set them.
    let (status, _) = call(
        &w.k,
        &w.manager_a,
        "PUT",
        "/rules",
        json!({"disposal_region_threshold": 1, "standards": []}),
    );
    assert_eq!(status, 403);
    let rules = ok(&w.k, &w.manager_a, "GET", "/rules", Value::Null, 200);
    assert_eq!(rules["disposal_region_threshold"], 20_000_000);
    // Nor can an administrator below the region place them first; the
    // platform administrator does, and every unit then reads them.
    let lower = json!({"disposal_region_threshold": 10_000_000, "standards": []});
    let (status, _) = call(&w.k, &w.county_admin, "PUT", "/rules", lower.clone());
    assert_eq!(status, 403);
    let (status, out) = w.k.request(
        "PUT",
        &format!("{P}/rules"),
        None,
        Some(lower.to_string().into_bytes()),
    );
    assert_eq!(status, 201, "{out}");
    let rules = ok(&w.k, &w.manager_b, "GET", "/rules", Value::Null, 200);
    assert_eq!(rules["disposal_region_threshold"], 10_000_000);
    let (status, _) = call(&w.k, &w.county_admin, "PUT", "/rules", lower);
    assert_eq!(
        status, 403,
        "the region's record is not the county's to change"
    );

    // Transfer to another county's unit: the sender books the reduction on
    // approval; the receiver confirms its incoming card onto its books.
    let printer = new_card(&w, "激光打印机", "A020204", "1100");
    register(&w, &printer);
    // A receiver the kernel does not know is refused when the transfer is
    // made, not left to strand the card at approval.
    for (to_org, code) in [("org-no-such-unit", "org_unknown"), ("", "required")] {
        let (status, out) = call(
            &w.k,
            &w.manager_a,
            "POST",
            "/documents",
            json!({"kind": "transfer", "card_ids": [printer], "to_org": to_org, "reason": "调剂使用"}),
        );
        assert_eq!(status, 422, "{out}");
        assert_eq!(out["error"]["code"], code, "{out}");
        assert_eq!(out["error"]["field"], "to_org", "{out}");
    }
    let transfer = ok(
        &w.k,
        &w.manager_a,
        "POST",
        "/documents",
        json!({"kind": "transfer", "card_ids": [printer], "to_org": w.unit_b, "reason": "调剂使用", "submit": true}),
        201,
    );
    assert_eq!(transfer["data"]["status"], "in_approval", "{transfer}");
    assert_eq!(approve_all(&w, &w.county_admin), 1);
    card_becomes(&w, &printer, "state", "transferred");
    let incoming = ok(
        &w.k,
        &w.manager_b,
        "GET",
        "/cards?state=incoming",
        Value::Null,
        200,
    );
    assert_eq!(incoming["total"], 1, "{incoming}");
    let arrived = incoming["records"][0].clone();
    assert_eq!(arrived["org"], w.unit_b.as_str());
    assert_eq!(arrived["data"]["acquisition_method"], "transfer_in");
    assert_eq!(arrived["data"]["transferred_from"], printer.as_str());
    let arrived_id = arrived["id"].as_str().unwrap();
    // The sender cannot confirm the receiver's card.
    let (status, _) = call(
        &w.k,
        &w.manager_a,
        "POST",
        "/receipts",
        json!({"card_ids": [arrived_id]}),
    );
    assert_eq!(status, 404);
    ok(
        &w.k,
        &w.manager_b,
        "POST",
        "/receipts",
        json!({"card_ids": [arrived_id], "location": "二楼208室"}),
        200,
    );
    let booked = ok(
        &w.k,
        &w.manager_b,
        "GET",
        &format!("/cards/{arrived_id}"),
        Value::Null,
        200,
    );
    assert_eq!(booked["card"]["data"]["state"], "booked", "{booked}");
    assert_eq!(booked["card"]["data"]["original_value"], 110_000);
}

/// Imports booked cards: (name, category, location, use status).
fn import_cards(w: &World, rows: &[(&str, &str, &str, &str)]) -> Vec<String> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in [
        "资产名称",
        "分类代码",
        "取得日期",
        "原值",
        "存放地点",
        "使用状况",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (r, (name, category, location, status)) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        sheet.write_string(r, 0, *name).unwrap();
        sheet.write_string(r, 1, *category).unwrap();
        sheet.write_string(r, 2, "2024-06-01").unwrap();
        sheet.write_number(r, 3, 4500.0).unwrap();
        sheet.write_string(r, 4, *location).unwrap();
        sheet.write_string(r, 5, *status).unwrap();
    }
    let (status, out) = w.k.request(
        "POST",
        &format!("{P}/import"),
        Some(&w.manager_a),
        Some(book.save_to_buffer().unwrap()),
    );
    assert_eq!(status, 201, "{out}");
    // They go to the county for registration before they are booked.
    assert_eq!(approve_all(w, &w.county_admin), 1);
    rows.iter()
        .map(|(name, ..)| {
            let found = ok(
                &w.k,
                &w.manager_a,
                "GET",
                &format!("/cards?q={name}"),
                Value::Null,
                200,
            );
            let id = found["records"][0]["id"].as_str().unwrap().to_string();
            card_becomes(w, &id, "state", "booked");
            id
        })
        .collect()
}

#[test]
fn stocktake_and_public_warehouse() {
    let w = world();
    let cards = import_cards(
        &w,
        &[
            ("台式机甲", "A020101", "主楼301室", "in_use"),
            ("台式机乙", "A020101", "主楼301室", "in_use"),
            ("台式机丙", "A020101", "主楼302室", "in_use"),
            ("闲置台式机", "A020101", "库房", "idle"),
        ],
    );

    // Issue 15.1: a location scope is the beginning of the locations it
    // covers ("主楼" covers 主楼301室 and 主楼302室), and a scope that
    // covers no booked card is refused when saved, on the field at fault.
    let (status, empty) = call(
        &w.k,
        &w.manager_a,
        "POST",
        "/stocktakes",
        json!({"name": "东楼清查", "planned_from": "2026-11-01", "planned_to": "2026-11-30", "location": "东楼"}),
    );
    assert_eq!(
        (
            status,
            empty["error"]["code"].as_str(),
            empty["error"]["field"].as_str()
        ),
        (422, Some("nothing_in_scope"), Some("location")),
        "{empty}"
    );
    let building = ok(
        &w.k,
        &w.manager_a,
        "POST",
        "/stocktakes",
        json!({"name": "主楼清查", "planned_from": "2026-11-01", "planned_to": "2026-11-30", "location": "主楼"}),
        201,
    );
    let building_id = building["id"].as_str().unwrap().to_string();
    // Editing it to an empty scope is refused too.
    let (status, edited) = call(
        &w.k,
        &w.manager_a,
        "PUT",
        &format!("/stocktakes/{building_id}"),
        json!({"name": "主楼清查", "planned_from": "2026-11-01", "planned_to": "2026-11-30", "location": "西楼"}),
    );
    assert_eq!(
        (status, edited["error"]["code"].as_str()),
        (422, Some("nothing_in_scope")),
        "{edited}"
    );
    let started = ok(
        &w.k,
        &w.manager_a,
        "POST",
        &format!("/stocktakes/{building_id}/start"),
        Value::Null,
        200,
    );
    assert_eq!(started["data"]["book_cards"], 3, "{started}");
    assert_eq!(started["data"]["task_count"], 2, "{started}");

    // A stocktake by location: one card found where booked, one found in
    // the wrong room, one never found, one unknown label scanned.
    let st = ok(
        &w.k,
        &w.manager_a,
        "POST",
        "/stocktakes",
        json!({"name": "2026年度清查", "planned_from": "2026-11-01", "planned_to": "2026-11-30", "group_by": "location"}),
        201,
    );
    let st_id = st["id"].as_str().unwrap().to_string();
    ok(
        &w.k,
        &w.manager_a,
        "POST",
        &format!("/stocktakes/{st_id}/start"),
        Value::Null,
        200,
    );
    let tasks = ok(
        &w.k,
        &w.manager_a,
        "GET",
        &format!("/stocktakes/{st_id}/tasks"),
        Value::Null,
        200,
    );
    let task_301 = tasks["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["data"]["key"] == "主楼301室")
        .unwrap_or_else(|| panic!("a task for room 301: {tasks}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let scan = |code: String| {
        ok(
            &w.k,
            &w.manager_a,
            "POST",
            &format!("/stocktakes/{st_id}/scan"),
            json!({"code": code, "task_id": task_301, "location": "主楼301室", "condition": "good"}),
            201,
        )["result"]["data"]["result"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(scan(format!("ts:assets:{}", cards[0])), "matched");
    assert_eq!(scan(format!("ts:assets:{}", cards[2])), "mismatch");
    assert_eq!(scan("ts:assets:zc1999000001.nowhere".into()), "surplus");
    // Scanning twice records nothing new.
    let (status, again) = call(
        &w.k,
        &w.manager_a,
        "POST",
        &format!("/stocktakes/{st_id}/scan"),
        json!({"code": format!("ts:assets:{}", cards[0]), "task_id": task_301, "location": "主楼301室", "condition": "good"}),
    );
    assert_eq!(
        (status, again["duplicate"].as_bool()),
        (200, Some(true)),
        "{again}"
    );
    ok(
        &w.k,
        &w.manager_a,
        "POST",
        &format!("/stocktakes/{st_id}/close"),
        Value::Null,
        200,
    );
    let report = ok(
        &w.k,
        &w.manager_a,
        "GET",
        &format!("/stocktakes/{st_id}/report"),
        Value::Null,
        200,
    );
    let summary = &report["summary"];
    assert_eq!(summary["book_cards"], 4, "{report}");
    assert_eq!(summary["matched"]["count"], 1, "{report}");
    assert_eq!(summary["mismatch"]["count"], 1, "{report}");
    assert_eq!(summary["surplus"]["count"], 1, "{report}");
    assert_eq!(
        summary["loss"]["count"], 2,
        "card 乙 and the idle one were never found: {report}"
    );
    assert_eq!(summary["match_rate"].as_f64(), Some(0.25), "{report}");
    // Differences must be resolved before the campaign completes.
    let (status, out) = call(
        &w.k,
        &w.manager_a,
        "POST",
        &format!("/stocktakes/{st_id}/complete"),
        Value::Null,
    );
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (409, Some("unresolved_differences")),
        "{out}"
    );
    // Another unit's manager cannot see the campaign.
    let (status, _) = call(
        &w.k,
        &w.manager_b,
        "GET",
        &format!("/stocktakes/{st_id}"),
        Value::Null,
    );
    assert_eq!(status, 404);

    // The public warehouse at the county: an idle card goes in, the keeper
    // inspects it, and units below the county see it in the catalogue;
    // a plan for the same category then needs a justification.
    let keeper = person(
        &w.k,
        "keeper.a",
        &w.unit_a,
        &[("assets.keeper", &w.county_a)],
    );
    // Granted the plan's 实体公物仓, the warehouse counts there.
    let (status, out) = w.k.request(
        "PUT",
        "/api/v1/datacenter/indicators/plan.physical_warehouses/sharing",
        None,
        Some(
            json!({"sharing": "open", "grants": [{"plugin": "assets", "access": "publish"}]})
                .to_string()
                .into_bytes(),
        ),
    );
    assert!(status < 300, "{status} {out}");
    let wh = ok(
        &w.k,
        &keeper,
        "POST",
        "/warehouse/warehouses",
        json!({"name": "天山区公物仓", "kind": "physical", "address": "天山区库房", "org": w.county_a}),
        201,
    );
    let wh_id = wh["id"].as_str().unwrap();
    let warehouses_at = |org: &str| {
        let (_, plan) = w.k.get(&format!("/api/v1/datacenter/plan?org={org}"));
        plan["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["code"] == "plan.physical_warehouses")
            .map(|p| p["latest"].clone())
            .unwrap_or_else(|| panic!("{plan}"))
    };
    assert_eq!(warehouses_at(&w.county_a), json!(1.0));
    assert_eq!(
        warehouses_at("org-650000"),
        json!(1.0),
        "rolled up to the region"
    );
    let intake = ok(
        &w.k,
        &w.manager_a,
        "POST",
        "/warehouse/intake",
        json!({"card_id": cards[3], "warehouse_id": wh_id, "condition": "good"}),
        201,
    );
    let order = intake["id"].as_str().unwrap();
    // Every list leaves as a file too.
    let (status, csv, _) = w.k.raw(
        "GET",
        &format!("{P}/warehouse/orders?format=csv"),
        Some(&w.manager_a),
        None,
        &[],
    );
    assert_eq!(status, 200);
    let csv = String::from_utf8_lossy(&csv);
    assert!(
        csv.contains(intake["data"]["no"].as_str().unwrap()),
        "{csv}"
    );
    let (status, xlsx, _) = w.k.raw(
        "GET",
        &format!("{P}/stocktakes?format=xlsx"),
        Some(&w.manager_a),
        None,
        &[],
    );
    assert_eq!((status, &xlsx[..2]), (200, &b"PK"[..]));
    // A manager is not a keeper.
    let (status, _) = call(
        &w.k,
        &w.manager_a,
        "POST",
        &format!("/warehouse/orders/{order}/inspect"),
        json!({"accept": true}),
    );
    assert_eq!(status, 403);
    ok(
        &w.k,
        &keeper,
        "POST",
        &format!("/warehouse/orders/{order}/inspect"),
        json!({"accept": true, "bin": "A-01"}),
        200,
    );
    let catalogue = ok(
        &w.k,
        &w.manager_a,
        "GET",
        "/warehouse/items?status=in_stock",
        Value::Null,
        200,
    );
    assert_eq!(catalogue["total"], 1, "{catalogue}");
    let card = ok(
        &w.k,
        &w.manager_a,
        "GET",
        &format!("/cards/{}", cards[3]),
        Value::Null,
        200,
    );
    assert_eq!(card["card"]["data"]["use_status"], "in_warehouse", "{card}");
    // Another county's unit does not see this county's warehouse.
    let other = ok(
        &w.k,
        &w.manager_b,
        "GET",
        "/warehouse/items",
        Value::Null,
        200,
    );
    assert_eq!(other["total"], 0, "{other}");
    let check = ok(
        &w.k,
        &w.manager_a,
        "GET",
        "/plan-check?category=A020101",
        Value::Null,
        200,
    );
    assert_eq!(check["warehouse_available"], 1, "{check}");
    let plan = |justification: &str| {
        call(
            &w.k,
            &w.manager_a,
            "POST",
            "/documents",
            json!({"kind": "plan", "year": 2027, "headcount": 40, "lines": [
                {"category": "A020101", "quantity": 2, "unit_price_yuan": "4800", "reason": "新进人员", "justification": justification}
            ]}),
        )
    };
    let (status, out) = plan("");
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["code"], "warehouse_stock_available", "{out}");
    assert_eq!(out["error"]["field"], "lines[0].justification", "{out}");
    let (status, out) = plan("公物仓库存型号不满足涉密要求");
    assert_eq!(status, 201, "{out}");
    // Above the standard's price ceiling (¥5,000 for desktops) is refused.
    let (status, out) = call(
        &w.k,
        &w.manager_a,
        "POST",
        "/documents",
        json!({"kind": "plan", "year": 2027, "headcount": 40, "lines": [
            {"category": "A020101", "quantity": 1, "unit_price_yuan": "9000", "justification": "x"}
        ]}),
    );
    assert_eq!(
        (status, out["error"]["field"].as_str()),
        (422, Some("lines[0].unit_price_yuan")),
        "{out}"
    );
}

/// Issue 15.5: the depreciation report says whether its month is booked
/// and which months are, so a month without a run does not pass for one
/// (same accumulated figures, a charge of ¥0); once run, it is booked.
#[test]
fn the_depreciation_report_says_which_months_are_booked() {
    let w = world();
    import_cards(&w, &[("台式机", "A020101", "主楼301室", "in_use")]);
    let report = |who: &str| {
        ok(
            &w.k,
            who,
            "GET",
            "/reports/depreciation?month=2025-01",
            Value::Null,
            200,
        )
    };
    let before = report(&w.county_admin);
    assert_eq!(before["booked"], false, "{before}");
    assert_eq!(before["runnable"], true, "{before}");
    assert!(
        !before["booked_months"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["month"] == "2025-01"),
        "{before}"
    );
    ok(
        &w.k,
        &w.county_admin,
        "POST",
        "/depreciation/run?month=2025-01",
        Value::Null,
        200,
    );
    let after = report(&w.county_admin);
    assert_eq!(after["booked"], true, "{after}");
    assert_eq!(after["last_booked"], "2025-01", "{after}");
    assert!(
        after["booked_months"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["month"] == "2025-01" && m["finished"] == true),
        "{after}"
    );
}

/// Issue 15.7: the trend month by month and the annual report's tables.
/// Each fixed-assets line balances (opening + added − left = closing),
/// vehicles are an "of which" line of equipment, the files carry the
/// form's caption above the header, and another unit's manager sees none
/// of unit A's cards in his.
#[test]
fn the_trend_and_the_annual_report_tables_balance() {
    let w = world();
    import_cards(
        &w,
        &[
            ("年报台式机", "A020101", "主楼301室", "in_use"),
            ("年报轿车", "A020301", "车库", "in_use"),
            ("年报办公楼", "A010101", "主楼", "in_use"),
        ],
    );
    let get = |who: &str, path: &str| ok(&w.k, who, "GET", path, Value::Null, 200);

    let trend = get(&w.manager_a, "/reports/trend?from=2024-01");
    let rows = trend["rows"].as_array().unwrap();
    let last = rows.last().unwrap();
    assert_eq!(last["count"].as_f64(), Some(3.0), "{trend}");
    assert_eq!(last["original_value"].as_f64(), Some(3.0 * 450_000.0));
    let added: f64 = rows
        .iter()
        .map(|r| r["additions_count"].as_f64().unwrap())
        .sum();
    assert_eq!(added, 3.0, "every card comes in exactly once: {trend}");
    let (status, out) = call(
        &w.k,
        &w.manager_a,
        "GET",
        "/reports/trend?from=2000-01",
        Value::Null,
    );
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (422, Some("range_too_long")),
        "{out}"
    );

    let fixed = get(&w.manager_a, "/reports/annual?form=fixed");
    assert_eq!(fixed["title"], "固定资产情况表", "{fixed}");
    let row = |form: &Value, key: &str| {
        form["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no row {key}: {form}"))
    };
    for r in fixed["rows"].as_array().unwrap() {
        let f = |k: &str| r[k].as_f64().unwrap();
        assert_eq!(
            f("opening_value") + f("additions_value") - f("reductions_value"),
            f("closing_value"),
            "{r}"
        );
    }
    assert_eq!(row(&fixed, "total")["closing_count"].as_f64(), Some(3.0));
    assert_eq!(row(&fixed, "A02")["closing_count"].as_f64(), Some(2.0));
    assert_eq!(row(&fixed, "A0203")["closing_count"].as_f64(), Some(1.0));
    assert_eq!(
        row(&fixed, "A01")["closing_value"].as_f64(),
        Some(450_000.0)
    );
    assert!(
        fixed["columns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["group"] == "年末数" && c["label"] == "净值"),
        "{fixed}"
    );

    let vehicles = get(&w.manager_a, "/reports/annual?form=vehicles");
    assert_eq!(row(&vehicles, "total")["A020301"].as_f64(), Some(1.0));
    let houses = get(&w.manager_a, "/reports/annual?form=houses");
    assert_eq!(row(&houses, "A010101")["count"].as_f64(), Some(1.0));
    let disposals = get(&w.manager_a, "/reports/annual?form=disposals");
    assert_eq!(row(&disposals, "total")["count"].as_f64(), Some(0.0));
    assert_eq!(row(&disposals, "sale")["name"], "出售");
    let leases = get(&w.manager_a, "/reports/annual?form=leases");
    assert_eq!(row(&leases, "rented")["count"].as_f64(), Some(0.0));

    let (status, bytes, _) = w.k.raw(
        "GET",
        &format!("{P}/reports/annual?form=fixed&format=csv"),
        Some(&w.manager_a),
        None,
        &[],
    );
    assert_eq!(status, 200);
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert!(lines[0].contains("固定资产情况表"), "{text}");
    assert!(lines[1].contains("金额单位：元"), "{text}");
    assert_eq!(
        lines[2],
        "年初数 + 本年增加 − 本年减少 = 年末数；车辆为设备的其中数。"
    );
    assert!(
        lines[3].starts_with("资产分类,年初数·数量,年初数·原值"),
        "{text}"
    );
    assert!(
        lines[4].starts_with("固定资产合计,3,13500,"),
        "whole quantities, yuan: {text}"
    );

    let (status, out) = call(
        &w.k,
        &w.manager_a,
        "GET",
        "/reports/annual?form=balance",
        Value::Null,
    );
    assert_eq!(
        (status, out["error"]["field"].as_str()),
        (422, Some("form")),
        "{out}"
    );
    let (status, out) = call(
        &w.k,
        &w.manager_a,
        "GET",
        "/reports/annual?year=2999",
        Value::Null,
    );
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (422, Some("year_invalid")),
        "{out}"
    );

    // An org outside the caller's reach, named in the query, is refused
    // naming `org` (the kernel decides the reach, not the plugin or the
    // caller; an org that does not exist is refused the same way).
    for path in [
        format!("/reports/annual?form=fixed&org={}", w.unit_a),
        format!("/reports/annual?form=vehicles&org={}", w.unit_a),
        format!("/reports/trend?org={}", w.unit_a),
        "/reports/annual?form=fixed&org=org-nowhere".to_string(),
    ] {
        let (status, out) = call(&w.k, &w.manager_b, "GET", &path, Value::Null);
        assert_eq!(
            (status, out["error"]["field"].as_str()),
            (403, Some("org")),
            "{path}: {out}"
        );
        assert!(out["rows"].is_null(), "nothing of unit A answered: {out}");
    }
    // Unit B's manager reads only unit B: none of A's cards are in it.
    let other = get(&w.manager_b, "/reports/annual?form=fixed");
    assert_eq!(
        row(&other, "total")["closing_count"].as_f64(),
        Some(0.0),
        "{other}"
    );
    let other = get(&w.manager_b, "/reports/annual?form=vehicles");
    assert_eq!(row(&other, "total")["count"].as_f64(), Some(0.0), "{other}");
}
