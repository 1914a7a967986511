//! Identity and access over the real HTTP API: who may do what where, the
//! attacks (other org's data, forged and stale credentials, brute force),
//! and the audit chain.

use serde_json::{Value, json};
use tianshan_kernel::identity::orgs::unified_social_credit_code;

use crate::support::TestKernel;

pub const PASSWORD: &str = "a long enough passphrase";

/// region ─ prefecture 650100 ─┬ county 650102 ─ unit UA
///                             └ county 650103 ─ unit UB
struct World {
    k: TestKernel,
    prefecture: String,
    county_a: String,
    county_b: String,
    unit_a: String,
    unit_b: String,
    user_b: String,
    member: String,
    county_admin: String,
    auditor: String,
}

pub fn ok(k: &TestKernel, method: &str, path: &str, body: Value, expect: u16) -> Value {
    let (status, out) = k.request(method, path, None, Some(body.to_string().into_bytes()));
    assert_eq!(status, expect, "{method} {path}: {out}");
    out
}

pub fn org(k: &TestKernel, parent: &str, level: &str, code: &str, zh: &str) -> String {
    let out = ok(
        k,
        "POST",
        "/api/v1/orgs",
        json!({"parent_id": parent, "level": level, "code": code, "name": {"zh-CN": zh, "en": zh}}),
        201,
    );
    out["org"]["id"].as_str().unwrap().to_string()
}

pub fn user(k: &TestKernel, username: &str, org_id: &str) -> String {
    let out = ok(
        k,
        "POST",
        "/api/v1/users",
        json!({"username": username, "display_name": username, "password": PASSWORD, "org_id": org_id}),
        201,
    );
    out["user"]["id"].as_str().unwrap().to_string()
}

pub fn bind(k: &TestKernel, user: &str, role: &str, org: &str) -> String {
    let out = ok(
        k,
        "POST",
        "/api/v1/bindings",
        json!({"user": user, "role": role, "org": org}),
        201,
    );
    out["binding"]["id"].as_str().unwrap().to_string()
}

/// The tree most access tests need: region ─ prefecture 650100 ─┬ county
/// 650102 ─ unit A
///                                                              └ county 650103 ─ unit B
pub struct TwoCounties {
    pub prefecture: String,
    pub county_a: String,
    pub county_b: String,
    pub unit_a: String,
    pub unit_b: String,
}

pub fn two_counties(k: &TestKernel) -> TwoCounties {
    let prefecture = org(k, "org-650000", "prefecture", "650100", "乌鲁木齐市");
    let county_a = org(k, &prefecture, "county", "650102", "天山区");
    let county_b = org(k, &prefecture, "county", "650103", "沙依巴克区");
    let unit_a = org(
        k,
        &county_a,
        "unit",
        &unified_social_credit_code("650102", 1),
        "天山区机关事务服务中心",
    );
    let unit_b = org(
        k,
        &county_b,
        "unit",
        &unified_social_credit_code("650103", 1),
        "沙依巴克区机关事务服务中心",
    );
    TwoCounties {
        prefecture,
        county_a,
        county_b,
        unit_a,
        unit_b,
    }
}

/// A user at `home` with `roles` (role, org); answers a login token.
pub fn person(k: &TestKernel, name: &str, home: &str, roles: &[(&str, &str)]) -> String {
    let id = user(k, name, home);
    for (role, at) in roles {
        bind(k, &id, role, at);
    }
    k.login(name, PASSWORD)
}

fn world() -> World {
    let k = TestKernel::start();
    let root = "org-650000";
    let TwoCounties {
        prefecture,
        county_a,
        county_b,
        unit_a,
        unit_b,
    } = two_counties(&k);
    let user_b = user(&k, "user.b", &unit_b);
    let member_id = user(&k, "member.a", &unit_a);
    let admin_id = user(&k, "admin.a", &unit_a);
    bind(&k, &admin_id, "org-admin", &county_a);
    let auditor_id = user(&k, "auditor", &unit_a);
    bind(&k, &auditor_id, "auditor", root);
    let member = k.login("member.a", PASSWORD);
    let county_admin = k.login("admin.a", PASSWORD);
    let auditor = k.login("auditor", PASSWORD);
    let _ = member_id;
    World {
        k,
        prefecture,
        county_a,
        county_b,
        unit_a,
        unit_b,
        user_b,
        member,
        county_admin,
        auditor,
    }
}

/// The region's day (UTC+8) `offset_days` from today, `YYYY-MM-DD`.
pub fn region_day(offset_days: i64) -> String {
    use tianshan_kernel::core::calendar::{civil_from_days, now};
    let (y, m, d) = civil_from_days((now() + 8 * 3600).div_euclid(86_400) + offset_days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Every kernel API route × caller. Statuses per caller, in the order:
/// anonymous, member of county A's unit, org-admin of county A, auditor at
/// the region, platform admin. Id routes target county B's records.
#[test]
fn every_kernel_route_has_an_access_row_and_answers_by_it() {
    let w = world();
    let k = &w.k;
    k.install_ok("welcome");
    let (_, b_user) = k.get(&format!("/api/v1/users/{}", w.user_b));
    let b_binding = b_user["bindings"][0]["id"].as_str().unwrap().to_string();
    let unit_b2 = unified_social_credit_code("650103", 2);
    // An approval in county B: user.b applies, county B's officer and the
    // prefecture's director approve; none of the callers below takes part.
    k.install_ok("approver");
    let officer_b = user(k, "officer.b", &w.unit_b);
    bind(k, &officer_b, "approver.officer", &w.county_b);
    let director = user(k, "director", &w.unit_b);
    bind(k, &director, "approver.director", &w.prefecture);
    let user_b = k.login("user.b", PASSWORD);
    let (status, out) = k.request(
        "POST",
        "/api/v1/p/approver/requests",
        Some(&user_b),
        Some(json!({"title": "B"}).to_string().into_bytes()),
    );
    assert_eq!(status, 201, "{out}");
    let approval = out["approval"]["id"].as_str().unwrap().to_string();
    let on = |action: &str| format!("/api/v1/approvals/{approval}/{action}");
    // A file in county B, uploaded by user.b.
    let (status, bytes, _) = k.raw(
        "POST",
        "/api/v1/files?name=b.txt",
        Some(&user_b),
        Some(b"county B notes".to_vec()),
        &[("content-type", "text/plain")],
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&bytes));
    let file_b: Value = serde_json::from_slice(&bytes).unwrap();
    let file_b = file_b["file"]["id"].as_str().unwrap().to_string();

    // Two dashboards of county B: one to read and change, one to delete.
    let dashboard = |name: &str| {
        let (status, out) = k.request(
            "POST",
            "/api/v1/dashboards",
            None,
            Some(
                json!({"org": w.county_b, "name": {"zh-CN": name, "en": name}, "panels": [{"kind": "plan"}]})
                    .to_string()
                    .into_bytes(),
            ),
        );
        assert_eq!(status, 201, "{out}");
        out["dashboard"]["id"].as_str().unwrap().to_string()
    };
    let dash_b = dashboard("县B大屏");
    let dash_b_spare = dashboard("县B备用大屏");
    let dash_body = json!({"org": w.county_b, "name": {"zh-CN": "大屏", "en": ""}, "panels": [{"kind": "approvals"}]});

    type Row = (&'static str, &'static str, String, Value, [u16; 5]);
    let rows: Vec<Row> = vec![
        (
            "POST",
            "/api/v1/auth/login",
            "/api/v1/auth/login".into(),
            json!({"username": "nobody.here", "password": "wrong password"}),
            [401, 401, 401, 401, 401],
        ),
        (
            "POST",
            "/api/v1/auth/logout",
            "/api/v1/auth/logout".into(),
            json!({}),
            [401, 204, 204, 204, 204],
        ),
        (
            "POST",
            "/api/v1/auth/password",
            "/api/v1/auth/password".into(),
            json!({"current_password": "wrong one!", "new_password": "another long passphrase"}),
            [401, 422, 422, 422, 422],
        ),
        (
            "GET",
            "/api/v1/auth/sessions",
            "/api/v1/auth/sessions".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        // 出差代理: each signed-in user's own.
        (
            "GET",
            "/api/v1/me/delegation",
            "/api/v1/me/delegation".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "PUT",
            "/api/v1/me/delegation",
            "/api/v1/me/delegation".into(),
            // Oneself and someone of another unit are refused; colleagues
            // of member.a's unit take it.
            json!({"delegate": "member.a", "from": region_day(0), "until": region_day(0)}),
            [401, 422, 200, 200, 422],
        ),
        (
            "DELETE",
            "/api/v1/me/delegation",
            "/api/v1/me/delegation".into(),
            Value::Null,
            [401, 204, 204, 204, 204],
        ),
        // The notification centre: each signed-in user's own.
        (
            "GET",
            "/api/v1/me/notifications",
            "/api/v1/me/notifications".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/me/notifications/read",
            "/api/v1/me/notifications/read".into(),
            json!({"all": true}),
            [401, 200, 200, 200, 200],
        ),
        // A stream that would start is tested in approvals.rs; here its
        // refusal of a bad `since`, before it starts.
        (
            "GET",
            "/api/v1/me/notifications/stream",
            "/api/v1/me/notifications/stream?since=x".into(),
            Value::Null,
            [401, 422, 422, 422, 422],
        ),
        (
            "DELETE",
            "/api/v1/auth/sessions/{id}",
            "/api/v1/auth/sessions/00000000deadbeef".into(),
            Value::Null,
            [401, 404, 404, 404, 404],
        ),
        (
            "GET",
            "/api/v1/auth/csrf",
            "/api/v1/auth/csrf".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/me",
            "/api/v1/me".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/orgs",
            "/api/v1/orgs".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/orgs",
            "/api/v1/orgs".into(),
            json!({"parent_id": w.county_b, "level": "unit", "code": unit_b2, "name": {"zh-CN": "新单位", "en": "New unit"}}),
            [401, 404, 404, 403, 201],
        ),
        (
            "GET",
            "/api/v1/orgs/{id}",
            format!("/api/v1/orgs/{}", w.county_b),
            Value::Null,
            [401, 404, 404, 200, 200],
        ),
        (
            "PATCH",
            "/api/v1/orgs/{id}",
            format!("/api/v1/orgs/{}", w.county_b),
            json!({"headcount_authorized": 40}),
            [401, 404, 404, 403, 200],
        ),
        (
            "DELETE",
            "/api/v1/orgs/{id}",
            format!("/api/v1/orgs/{}", w.county_b),
            Value::Null,
            [401, 404, 404, 403, 409],
        ),
        (
            "GET",
            "/api/v1/post-ranks",
            "/api/v1/post-ranks".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/users",
            "/api/v1/users".into(),
            Value::Null,
            [401, 403, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/users",
            "/api/v1/users".into(),
            json!({"username": "new.b", "display_name": "New B", "password": PASSWORD, "org_id": w.unit_b}),
            [401, 404, 404, 403, 201],
        ),
        (
            "GET",
            "/api/v1/users/{id}",
            format!("/api/v1/users/{}", w.user_b),
            Value::Null,
            [401, 404, 404, 200, 200],
        ),
        (
            "PATCH",
            "/api/v1/users/{id}",
            format!("/api/v1/users/{}", w.user_b),
            json!({"display_name": "B renamed"}),
            [401, 404, 404, 403, 200],
        ),
        (
            "POST",
            "/api/v1/users/{id}/password",
            format!("/api/v1/users/{}/password", w.user_b),
            json!({"password": "a brand new passphrase"}),
            [401, 404, 404, 403, 204],
        ),
        (
            "POST",
            "/api/v1/users/{id}/unlock",
            format!("/api/v1/users/{}/unlock", w.user_b),
            json!({}),
            [401, 404, 404, 403, 200],
        ),
        (
            "GET",
            "/api/v1/bindings",
            "/api/v1/bindings".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/bindings",
            "/api/v1/bindings".into(),
            json!({"user": w.user_b, "role": "member", "org": w.county_b}),
            [401, 404, 404, 403, 201],
        ),
        (
            "DELETE",
            "/api/v1/bindings/{id}",
            format!("/api/v1/bindings/{b_binding}"),
            Value::Null,
            [401, 404, 404, 403, 204],
        ),
        (
            "GET",
            "/api/v1/tokens",
            "/api/v1/tokens".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/tokens",
            "/api/v1/tokens".into(),
            json!({"name": "ci", "permissions": ["kernel.orgs.read"], "expires_in_days": 1}),
            [401, 403, 201, 403, 201],
        ),
        (
            "DELETE",
            "/api/v1/tokens/{id}",
            "/api/v1/tokens/tok-nope".into(),
            Value::Null,
            [401, 404, 404, 404, 404],
        ),
        (
            "GET",
            "/api/v1/audit",
            "/api/v1/audit".into(),
            Value::Null,
            [401, 403, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/audit/export",
            "/api/v1/audit/export".into(),
            Value::Null,
            [401, 403, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/audit/verify",
            "/api/v1/audit/verify".into(),
            Value::Null,
            [401, 404, 404, 200, 200],
        ),
        (
            "GET",
            "/api/v1/plugins",
            "/api/v1/plugins".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/plugins",
            "/api/v1/plugins".into(),
            json!("not a package"),
            [401, 403, 403, 403, 422],
        ),
        (
            "GET",
            "/api/v1/plugins/{id}",
            "/api/v1/plugins/welcome".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "PUT",
            "/api/v1/plugins/{id}",
            "/api/v1/plugins/welcome".into(),
            json!("not a package"),
            [401, 403, 403, 403, 422],
        ),
        (
            "DELETE",
            "/api/v1/plugins/{id}",
            "/api/v1/plugins/ghost".into(),
            Value::Null,
            [401, 403, 403, 403, 404],
        ),
        (
            "POST",
            "/api/v1/plugins/{id}/enable",
            "/api/v1/plugins/welcome/enable".into(),
            Value::Null,
            [401, 403, 403, 403, 200],
        ),
        (
            "POST",
            "/api/v1/plugins/{id}/disable",
            "/api/v1/plugins/welcome/disable".into(),
            Value::Null,
            [401, 403, 403, 403, 200],
        ),
        (
            "GET",
            "/api/v1/plugins/{id}/subscriptions",
            "/api/v1/plugins/welcome/subscriptions".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "PUT",
            "/api/v1/plugins/{id}/subscriptions",
            "/api/v1/plugins/welcome/subscriptions".into(),
            json!({"topics": []}),
            [401, 403, 403, 403, 200],
        ),
        (
            "GET",
            "/api/v1/plugins/{id}/events",
            "/api/v1/plugins/welcome/events".into(),
            Value::Null,
            [401, 403, 403, 403, 200],
        ),
        (
            "GET",
            "/api/v1/events/dead",
            "/api/v1/events/dead".into(),
            Value::Null,
            [401, 403, 403, 403, 200],
        ),
        (
            "POST",
            "/api/v1/events/dead/{subscriber}/{seq}/replay",
            "/api/v1/events/dead/welcome/999999/replay".into(),
            Value::Null,
            [401, 403, 403, 403, 404],
        ),
        (
            "GET",
            "/api/v1/portal/menu",
            "/api/v1/portal/menu".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/system",
            "/api/v1/system".into(),
            Value::Null,
            [401, 403, 403, 403, 200],
        ),
        (
            "GET",
            "/api/v1/orgs/directory",
            "/api/v1/orgs/directory?level=unit".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/todos",
            "/api/v1/todos".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/approvals/{id}",
            format!("/api/v1/approvals/{approval}"),
            Value::Null,
            [401, 404, 404, 200, 200],
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/approve",
            on("approve"),
            json!({}),
            [401, 404, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/reject",
            on("reject"),
            json!({}),
            [401, 404, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/withdraw",
            on("withdraw"),
            json!({}),
            [401, 404, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/reassign",
            on("reassign"),
            json!({"to": "admin"}),
            [401, 404, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/add-approver",
            on("add-approver"),
            json!({"user": "admin"}),
            [401, 404, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/copy-to",
            on("copy-to"),
            json!({"users": ["admin"]}),
            [401, 404, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/comment",
            on("comment"),
            json!({"text": "x"}),
            [401, 404, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/attach",
            on("attach"),
            json!({"ref": "f-1", "name": "a.pdf"}),
            [401, 404, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/urge",
            on("urge"),
            json!({"comment": "请尽快"}),
            [401, 404, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/claim",
            on("claim"),
            Value::Null,
            [401, 404, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/unclaim",
            on("unclaim"),
            Value::Null,
            [401, 404, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/read",
            on("read"),
            Value::Null,
            [401, 404, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/delegate",
            on("delegate"),
            json!({"to": "auditor"}),
            [401, 404, 404, 403, 403],
        ),
        // Separation of duties per flow: the platform administrator's alone.
        (
            "GET",
            "/api/v1/approval-flows",
            "/api/v1/approval-flows".into(),
            Value::Null,
            [401, 403, 403, 403, 200],
        ),
        (
            "PUT",
            "/api/v1/approval-flows/{plugin}/{name}",
            "/api/v1/approval-flows/ghost/none".into(),
            json!({"allow_self_approval": true}),
            [401, 403, 403, 403, 404],
        ),
        // No Content-Type of an accepted kind: writers get 422, the auditor
        // (no write permission at the root) 403.
        (
            "POST",
            "/api/v1/files",
            "/api/v1/files?name=a.txt".into(),
            json!("hello"),
            [401, 422, 422, 403, 422],
        ),
        (
            "GET",
            "/api/v1/files/{id}",
            format!("/api/v1/files/{file_b}"),
            Value::Null,
            [401, 404, 404, 200, 200],
        ),
        (
            "GET",
            "/api/v1/files/{id}/meta",
            format!("/api/v1/files/{file_b}/meta"),
            Value::Null,
            [401, 404, 404, 200, 200],
        ),
        (
            "DELETE",
            "/api/v1/files/{id}",
            format!("/api/v1/files/{file_b}"),
            Value::Null,
            [401, 404, 404, 403, 204],
        ),
        (
            "GET",
            "/api/v1/datacenter/indicators",
            "/api/v1/datacenter/indicators".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/datacenter/indicators/{code}",
            "/api/v1/datacenter/indicators/plan.nev_share".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/datacenter/indicators/{code}/values",
            format!(
                "/api/v1/datacenter/indicators/plan.nev_share/values?org={}",
                w.county_b
            ),
            Value::Null,
            [401, 404, 404, 200, 200],
        ),
        (
            "POST",
            "/api/v1/datacenter/indicators/{code}/values",
            "/api/v1/datacenter/indicators/plan.nev_share/values".into(),
            json!({"values": [{"org": w.county_b, "period": "2025", "value": 80}]}),
            [401, 403, 404, 403, 201],
        ),
        (
            "PUT",
            "/api/v1/datacenter/indicators/{code}/sharing",
            "/api/v1/datacenter/indicators/plan.nev_share/sharing".into(),
            json!({"sharing": "open"}),
            [401, 403, 403, 403, 200],
        ),
        (
            "GET",
            "/api/v1/datacenter/plan",
            format!("/api/v1/datacenter/plan?org={}", w.county_b),
            Value::Null,
            [401, 404, 404, 200, 200],
        ),
        (
            "GET",
            "/api/v1/datacenter/overview",
            format!("/api/v1/datacenter/overview?org={}", w.county_b),
            Value::Null,
            [401, 404, 404, 200, 200],
        ),
        // Dashboards belong to an org: outside reach they are not there;
        // reading is not changing (the auditor).
        (
            "GET",
            "/api/v1/dashboards",
            "/api/v1/dashboards".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/dashboards",
            "/api/v1/dashboards".into(),
            dash_body.clone(),
            [401, 404, 404, 403, 201],
        ),
        (
            "GET",
            "/api/v1/dashboards/panels",
            "/api/v1/dashboards/panels".into(),
            Value::Null,
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/dashboards/{id}",
            format!("/api/v1/dashboards/{dash_b}"),
            Value::Null,
            [401, 404, 404, 200, 200],
        ),
        (
            "GET",
            "/api/v1/dashboards/{id}/data",
            format!("/api/v1/dashboards/{dash_b}/data"),
            Value::Null,
            [401, 404, 404, 200, 200],
        ),
        (
            "PUT",
            "/api/v1/dashboards/{id}",
            format!("/api/v1/dashboards/{dash_b}"),
            dash_body.clone(),
            [401, 404, 404, 403, 200],
        ),
        (
            "DELETE",
            "/api/v1/dashboards/{id}",
            format!("/api/v1/dashboards/{dash_b_spare}"),
            Value::Null,
            [401, 404, 404, 403, 204],
        ),
        // The wall's stream for an org nobody has is 404 before it starts
        // (wall.rs streams).
        (
            "GET",
            "/api/v1/datacenter/stream",
            "/api/v1/datacenter/stream?org=no-such-org".into(),
            Value::Null,
            [401, 404, 404, 404, 404],
        ),
        // Readings of a device nobody registered: stored as refused, by
        // whoever may ingest where they act.
        (
            "POST",
            "/api/v1/telemetry/readings",
            "/api/v1/telemetry/readings".into(),
            json!({"readings": [{"device": "no-such-meter", "channel": "kwh", "at": 1_764_547_200_000_i64, "value": 1.0}]}),
            [401, 403, 200, 403, 200],
        ),
        (
            "GET",
            "/api/v1/telemetry/rejected",
            "/api/v1/telemetry/rejected".into(),
            Value::Null,
            [401, 403, 403, 200, 200],
        ),
        (
            "GET",
            "/api/v1/telemetry/stats",
            "/api/v1/telemetry/stats".into(),
            Value::Null,
            [401, 403, 403, 200, 200],
        ),
        (
            "GET",
            "/api/v1/open/datasets",
            "/api/v1/open/datasets".into(),
            Value::Null,
            [200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/open/datasets/{code}",
            "/api/v1/open/datasets/plan.nev_share".into(),
            Value::Null,
            [200, 200, 200, 200, 200],
        ),
        // The live stream of a plugin that is not there is 404 (live.rs
        // streams).
        (
            "GET",
            "/api/v1/telemetry/stream",
            "/api/v1/telemetry/stream?plugin=no-such-plugin".into(),
            Value::Null,
            [401, 404, 404, 404, 404],
        ),
        // So are the positions of one (the wall's positions panels;
        // wall.rs for a plugin that is there).
        (
            "GET",
            "/api/v1/telemetry/positions",
            "/api/v1/telemetry/positions?plugin=no-such-plugin".into(),
            Value::Null,
            [401, 404, 404, 404, 404],
        ),
    ];
    for (method, template) in tianshan_kernel::route_table() {
        assert!(
            rows.iter()
                .any(|(m, t, ..)| *m == method && *t == template.as_str()),
            "route {method} {template} has no row in the access table"
        );
    }
    let mut audited_writes = std::collections::BTreeSet::new();
    let users = [
        ("member.a", &w.member),
        ("admin.a", &w.county_admin),
        ("auditor", &w.auditor),
        ("admin", &k.token),
    ];
    for (method, template, path, body, expected) in &rows {
        for (i, want) in expected.iter().enumerate() {
            // Logout ends the token it is sent with: use a fresh one.
            let fresh;
            let token: &str = match i {
                0 => "",
                n if *template == "/api/v1/auth/logout" => {
                    let (name, _) = users[n - 1];
                    let password = if name == "admin" {
                        crate::support::ADMIN_PASSWORD
                    } else {
                        PASSWORD
                    };
                    fresh = k.login(name, password);
                    &fresh
                }
                n => users[n - 1].1,
            };
            let body = (!body.is_null()).then(|| body.to_string().into_bytes());
            let audited_before = (*method != "GET").then(|| newest_audit_seq(k));
            let (status, out) = k.request(method, path, Some(token), body);
            assert_eq!(status, *want, "{method} {path} as caller #{i}: {out}");
            // Every change a kernel write route makes commits with its
            // audit record (issue 11.4): the trail grew, and its newest
            // record says it succeeded.
            if let Some(before) = audited_before
                && (200..300).contains(&status)
            {
                let (after, outcome) = newest_audit(k);
                assert!(
                    after > before && outcome == "ok",
                    "{method} {path} as caller #{i} changed something without an ok audit record \
                     (newest {after} {outcome}, before {before})"
                );
                audited_writes.insert((*method, *template));
            }
            if status >= 400 {
                assert!(out["error"]["code"].is_string(), "{method} {path}: {out}");
            }
        }
    }
    // Every kernel write route was seen writing with its audit record.
    let writes: Vec<_> = tianshan_kernel::route_table()
        .into_iter()
        .filter(|(method, _)| *method != "GET")
        .collect();
    let unaudited: Vec<_> = writes
        .iter()
        .filter(|(method, template)| !audited_writes.contains(&(*method, template.as_str())))
        .collect();
    // Writes whose rows here cannot succeed (they need an approval
    // instance, a dead letter, a package or a fresh password); their own
    // tests exercise them. The list may only shrink: a new write route
    // needs a row that succeeds, so its audit record is checked.
    const SUCCEED_ELSEWHERE: &[&str] = &[
        "POST /api/v1/auth/login",
        "POST /api/v1/auth/password",
        "DELETE /api/v1/auth/sessions/{id}",
        "DELETE /api/v1/orgs/{id}",
        "DELETE /api/v1/tokens/{id}",
        "POST /api/v1/plugins",
        "PUT /api/v1/plugins/{id}",
        "DELETE /api/v1/plugins/{id}",
        "POST /api/v1/events/dead/{subscriber}/{seq}/replay",
        "POST /api/v1/files",
        "POST /api/v1/approvals/{id}/approve",
        "POST /api/v1/approvals/{id}/reject",
        "POST /api/v1/approvals/{id}/withdraw",
        "POST /api/v1/approvals/{id}/reassign",
        "POST /api/v1/approvals/{id}/add-approver",
        "POST /api/v1/approvals/{id}/copy-to",
        "POST /api/v1/approvals/{id}/comment",
        "POST /api/v1/approvals/{id}/attach",
        "POST /api/v1/approvals/{id}/urge",
        "POST /api/v1/approvals/{id}/claim",
        "POST /api/v1/approvals/{id}/unclaim",
        "POST /api/v1/approvals/{id}/delegate",
        "POST /api/v1/approvals/{id}/read",
        "PUT /api/v1/approval-flows/{plugin}/{name}",
    ];
    let unaudited: Vec<String> = unaudited
        .iter()
        .map(|(method, template)| format!("{method} {template}"))
        .filter(|route| !SUCCEED_ELSEWHERE.contains(&route.as_str()))
        .collect();
    assert!(
        unaudited.is_empty(),
        "write routes never seen succeeding with an audit record: {unaudited:?}"
    );
    assert!(
        audited_writes.len() >= writes.len() - SUCCEED_ELSEWHERE.len(),
        "{audited_writes:?}"
    );
}

#[test]
fn a_county_user_cannot_see_another_county_or_the_prefecture() {
    let w = world();
    let k = &w.k;
    for path in [
        format!("/api/v1/orgs/{}", w.county_b),
        format!("/api/v1/orgs/{}", w.prefecture),
        format!("/api/v1/orgs/{}", w.unit_b),
        format!("/api/v1/users/{}", w.user_b),
    ] {
        let (status, body) = k.request("GET", &path, Some(&w.county_admin), None);
        assert_eq!(status, 404, "{path}: {body}");
    }
    // Every service answers an org outside the caller's reach as one that
    // does not exist (issue 11.5): files, the data center, plugin storage
    // through an acting org.
    for (method, path, body) in [
        (
            "POST",
            format!("/api/v1/files?name=a.txt&org={}", w.county_b),
            Some(b"text".to_vec()),
        ),
        (
            "GET",
            format!("/api/v1/datacenter/plan?org={}", w.county_b),
            None,
        ),
        (
            "GET",
            format!(
                "/api/v1/datacenter/indicators/plan.nev_share/values?org={}",
                w.county_b
            ),
            None,
        ),
    ] {
        let (status, out) = k.request(method, &path, Some(&w.county_admin), body);
        assert_eq!(status, 404, "{method} {path}: {out}");
        assert_eq!(out["error"]["code"], "not_found", "{out}");
    }
    let (status, _, _) = k.raw(
        "GET",
        "/api/v1/p/welcome/whoami",
        Some(&w.county_admin),
        None,
        &[("x-tianshan-org", &w.county_b)],
    );
    assert_eq!(status, 404);
    // The directory names another district's unit (a transfer's receiver)
    // without opening it.
    let (status, dir) = k.request(
        "GET",
        "/api/v1/orgs/directory?level=unit&limit=200",
        Some(&w.county_admin),
        None,
    );
    assert_eq!(status, 200, "{dir}");
    let listed = dir["orgs"].as_array().unwrap();
    assert!(listed.iter().any(|o| o["id"] == w.unit_b.as_str()), "{dir}");
    assert!(
        listed
            .iter()
            .all(|o| o["level"] == "unit" && o.get("headcount_actual").is_none())
    );
    let (status, _) = k.request(
        "GET",
        "/api/v1/orgs/directory?level=planet",
        Some(&w.county_admin),
        None,
    );
    assert_eq!(status, 422);
    // Writing there is refused the same way.
    let (status, _) = k.request(
        "PATCH",
        &format!("/api/v1/orgs/{}", w.prefecture),
        Some(&w.county_admin),
        Some(json!({"headcount_actual": 1}).to_string().into_bytes()),
    );
    assert_eq!(status, 404);
    // Acting in another org by header is refused too.
    let (status, _, _) = k.raw(
        "GET",
        "/api/v1/me",
        Some(&w.county_admin),
        None,
        &[("x-tianshan-org", &w.county_b)],
    );
    assert_eq!(status, 404);
    // Its own subtree is fine, and the tree it sees starts at county A.
    let (status, _) = k.request(
        "GET",
        &format!("/api/v1/orgs/{}", w.unit_a),
        Some(&w.county_admin),
        None,
    );
    assert_eq!(status, 200);
    let (_, tree) = k.request("GET", "/api/v1/orgs", Some(&w.county_admin), None);
    let roots: Vec<&str> = tree["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(roots, vec![w.county_a.as_str()], "{tree}");
    assert!(tree.to_string().contains("\"code\""));
}

#[test]
fn brute_force_is_throttled_with_retry_after() {
    let k = TestKernel::start();
    let attempt = |password: &str| {
        k.raw(
            "POST",
            "/api/v1/auth/login",
            Some(""),
            Some(
                json!({"username": "admin", "password": password})
                    .to_string()
                    .into_bytes(),
            ),
            &[],
        )
    };
    for _ in 0..5 {
        assert_eq!(attempt("not the password").0, 401);
    }
    let (status, body, headers) = attempt("not the password");
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "retry-after" && v.parse::<u64>().unwrap() >= 1)
    );
    // While blocked, even the right password waits.
    assert_eq!(attempt(crate::support::ADMIN_PASSWORD).0, 429);
}

#[test]
fn forged_expired_and_revoked_credentials_are_refused() {
    let w = world();
    let k = &w.k;
    // Forged session cookie: anonymous, so 401 on a private route.
    let (status, _, _) = k.raw(
        "GET",
        "/api/v1/me",
        Some(""),
        None,
        &[("cookie", "tianshan_session=forged")],
    );
    assert_eq!(status, 401);
    // A token made for reading orgs at county A.
    let out = ok_as(
        k,
        &w.county_admin,
        "POST",
        "/api/v1/tokens",
        json!({"name": "report sync", "org": w.county_a, "permissions": ["kernel.orgs.read"], "expires_in_days": 30}),
        201,
    );
    let token = out["token"].as_str().unwrap().to_string();
    let id = out["id"].as_str().unwrap().to_string();
    assert!(token.starts_with("tsk_"));
    let (_, listed) = k.request("GET", "/api/v1/tokens", Some(&w.county_admin), None);
    assert!(
        !listed.to_string().contains(&token),
        "the secret is shown once only"
    );
    assert_eq!(
        k.request(
            "GET",
            &format!("/api/v1/orgs/{}", w.unit_a),
            Some(&token),
            None
        )
        .0,
        200
    );
    // Beyond its permissions or its org: refused even though its owner may.
    assert_eq!(k.request("GET", "/api/v1/users", Some(&token), None).0, 403);
    assert_eq!(
        k.request(
            "GET",
            &format!("/api/v1/orgs/{}", w.county_b),
            Some(&token),
            None
        )
        .0,
        404
    );
    // A token cannot widen itself.
    let (status, _) = k.request(
        "POST",
        "/api/v1/tokens",
        Some(&token),
        Some(
            json!({"name": "x", "permissions": ["*"], "expires_in_days": 1})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(status, 403);
    assert_eq!(
        k.request(
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            Some(&w.county_admin),
            None
        )
        .0,
        204
    );
    assert_eq!(
        k.request(
            "GET",
            &format!("/api/v1/orgs/{}", w.unit_a),
            Some(&token),
            None
        )
        .0,
        401
    );

    // Expired: age the session in the database.
    let session = k.login("member.a", PASSWORD);
    assert_eq!(k.request("GET", "/api/v1/me", Some(&session), None).0, 200);
    sql(
        k,
        "UPDATE sessions SET expires_at = 0 WHERE user_id = (SELECT id FROM users WHERE username = 'member.a')",
    );
    assert_eq!(k.request("GET", "/api/v1/me", Some(&session), None).0, 401);

    // Disabling a user ends their sessions at once.
    let (_, found) = k.get("/api/v1/users?q=member.a");
    let member_id = found["users"][0]["id"].as_str().unwrap().to_string();
    let member = k.login("member.a", PASSWORD);
    ok(
        k,
        "PATCH",
        &format!("/api/v1/users/{member_id}"),
        json!({"disabled": true}),
        200,
    );
    assert_eq!(k.request("GET", "/api/v1/me", Some(&member), None).0, 401);
    assert_eq!(
        k.request(
            "POST",
            "/api/v1/auth/login",
            Some(""),
            Some(
                json!({"username": "member.a", "password": PASSWORD})
                    .to_string()
                    .into_bytes()
            )
        )
        .0,
        401
    );
}

fn ok_as(k: &TestKernel, token: &str, method: &str, path: &str, body: Value, expect: u16) -> Value {
    let (status, out) = k.request(
        method,
        path,
        Some(token),
        Some(body.to_string().into_bytes()),
    );
    assert_eq!(status, expect, "{method} {path}: {out}");
    out
}

/// Runs SQL against the kernel's database file (WAL lets both write).
fn sql(k: &TestKernel, statement: &str) {
    let url = format!("sqlite://{}", k.data_dir.join("tianshan.db").display());
    let statement = statement.to_string();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let db = tianshan_kernel::db::connect(&url).await.unwrap();
                sqlx::query(&statement).execute(&db).await.unwrap();
            })
    })
    .join()
    .unwrap();
}

#[test]
fn a_revoked_role_stops_working_on_the_next_request() {
    let w = world();
    let k = &w.k;
    assert_eq!(
        k.request("GET", "/api/v1/users", Some(&w.county_admin), None)
            .0,
        200
    );
    let (_, me) = k.request("GET", "/api/v1/me", Some(&w.county_admin), None);
    let binding = me["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["role"] == "org-admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        k.request("DELETE", &format!("/api/v1/bindings/{binding}"), None, None)
            .0,
        204
    );
    assert_eq!(
        k.request("GET", "/api/v1/users", Some(&w.county_admin), None)
            .0,
        403
    );
}

#[test]
fn cookie_writes_need_the_csrf_token() {
    let k = TestKernel::start();
    let (status, bytes, headers) = k.raw(
        "POST",
        "/api/v1/auth/login",
        Some(""),
        Some(
            json!({"username": "admin", "password": crate::support::ADMIN_PASSWORD})
                .to_string()
                .into_bytes(),
        ),
        &[],
    );
    assert_eq!(status, 200);
    let login: Value = serde_json::from_slice(&bytes).unwrap();
    let cookie = headers
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let csrf = login["csrf_token"].as_str().unwrap();
    let body = || {
        Some(
            json!({"name": "t", "permissions": ["kernel.orgs.read"], "expires_in_days": 1})
                .to_string()
                .into_bytes(),
        )
    };
    let (status, _, _) = k.raw(
        "POST",
        "/api/v1/tokens",
        Some(""),
        body(),
        &[("cookie", &pair)],
    );
    assert_eq!(status, 403, "a cookie write without the CSRF header");
    let (status, _, _) = k.raw(
        "POST",
        "/api/v1/tokens",
        Some(""),
        body(),
        &[("cookie", &pair), ("x-csrf-token", csrf)],
    );
    assert_eq!(status, 201);
    let (status, _, _) = k.raw("GET", "/api/v1/me", Some(""), None, &[("cookie", &pair)]);
    assert_eq!(status, 200, "reads need no CSRF header");
}

#[test]
fn passwords_follow_the_policy_and_a_change_ends_sessions() {
    let w = world();
    let k = &w.k;
    for (password, why) in [("short", "at least 8"), ("password123", "common")] {
        let (status, body) = k.request(
            "POST",
            "/api/v1/users",
            None,
            Some(json!({"username": "weak.one", "display_name": "W", "password": password, "org_id": w.unit_a}).to_string().into_bytes()),
        );
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["field"], "password");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(why),
            "{body}"
        );
    }
    let old = k.login("member.a", PASSWORD);
    ok_as(
        k,
        &old,
        "POST",
        "/api/v1/auth/password",
        json!({"current_password": PASSWORD, "new_password": "an entirely new passphrase"}),
        204,
    );
    assert_eq!(k.request("GET", "/api/v1/me", Some(&old), None).0, 401);
    assert_eq!(k.request("GET", "/api/v1/me", Some(&w.member), None).0, 401);
    k.login("member.a", "an entirely new passphrase");
}

#[test]
fn the_audit_chain_verifies_and_an_edited_record_is_named() {
    let w = world();
    let k = &w.k;
    let (_, audit) = k.request("GET", "/api/v1/audit?action=user.", Some(&w.auditor), None);
    let records = audit["records"].as_array().unwrap();
    assert!(records.len() >= 4, "{audit}");
    assert!(
        !audit.to_string().contains(PASSWORD),
        "a secret reached the audit trail"
    );
    let (status, csv, _) = k.raw(
        "GET",
        "/api/v1/audit/export?action=auth.login",
        Some(&w.auditor),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert!(String::from_utf8(csv).unwrap().starts_with("seq,at,actor"));

    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tianshan"))
            .args(["audit", "verify", "--data-dir"])
            .arg(&k.data_dir)
            .output()
            .unwrap()
    };
    let out = verify();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sql(k, "UPDATE audit SET outcome = 'tampered' WHERE seq = 3");
    let out = verify();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("record 3"), "{stderr}");
}

#[test]
fn a_plugin_installed_at_a_county_exists_only_in_its_subtree() {
    let w = world();
    let k = &w.k;
    let package = crate::support::packages().bytes("hello");
    // A county admin installs a local module for their county, not above it.
    let (status, _) = k.request(
        "POST",
        &format!("/api/v1/plugins?org={}", w.prefecture),
        Some(&w.county_admin),
        Some(package.clone()),
    );
    assert_eq!(
        status, 404,
        "the prefecture is outside the county admin's reach"
    );
    let (status, body) = k.request(
        "POST",
        &format!("/api/v1/plugins?org={}", w.county_a),
        Some(&w.county_admin),
        Some(package),
    );
    assert_eq!(status, 201, "{body}");

    let (status, who) = k.request("GET", "/api/v1/p/hello/whoami", Some(&w.member), None);
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["username"], "member.a");
    let user_b = k.login("user.b", PASSWORD);
    let (status, body) = k.request("GET", "/api/v1/p/hello/whoami", Some(&user_b), None);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "plugin_not_found");
    // Public routes of a local module are not public outside it either.
    assert_eq!(k.request("GET", "/api/v1/p/hello/", Some(""), None).0, 404);
    let (_, list) = k.request("GET", "/api/v1/plugins", Some(&user_b), None);
    assert!(list["plugins"].as_array().unwrap().is_empty(), "{list}");
    let (_, list) = k.request("GET", "/api/v1/plugins", Some(&w.member), None);
    assert_eq!(list["plugins"][0]["org_id"], w.county_a.as_str());
}

#[test]
fn plugins_ask_the_kernel_and_get_the_callers_real_answer() {
    let w = world();
    let k = &w.k;
    k.install_ok("hello");
    let can = |token: &str, path: &str| {
        let (status, body) = k.request(
            "GET",
            &format!("/api/v1/p/hello/can/{path}"),
            Some(token),
            None,
        );
        assert_eq!(status, 200, "{body}");
        body["allowed"].as_bool().unwrap()
    };
    assert!(!can(&w.member, "kernel.users.read"));
    assert!(can(&w.county_admin, "kernel.users.read"));
    assert!(!can(
        &w.county_admin,
        &format!("kernel.users.read?org={}", w.county_b)
    ));
    assert!(can(
        &w.county_admin,
        &format!("kernel.users.read?org={}", w.unit_a)
    ));
    // Anonymous callers are never allowed anything.
    let token = ok_as(
        k,
        &w.county_admin,
        "POST",
        "/api/v1/tokens",
        json!({"name": "narrow", "permissions": ["kernel.orgs.read"], "expires_in_days": 1}),
        201,
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !can(&token, "kernel.users.read"),
        "a token's scope narrows what plugins are told"
    );
    assert!(can(&token, "kernel.orgs.read"));
}

/// Post rank, position and department: set by whoever manages the user,
/// checked, audited, and read by a plugin through `identity.profile` only
/// within the call's reach.
#[test]
fn profiles_are_set_by_administrators_and_read_by_plugins_within_reach() {
    let w = world();
    let k = &w.k;
    k.install_ok("hello");
    let ranks = ok(k, "GET", "/api/v1/post-ranks", Value::Null, 200);
    let codes: Vec<&str> = ranks["post_ranks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.first(), Some(&"ministerial"));
    assert!(codes.contains(&"division") && codes.contains(&"staff"));
    assert_eq!(ranks["post_ranks"][4]["label"]["zh-CN"], "县处级正职");

    // Created with a profile; an unknown rank and an over-long or
    // multi-line text are refused, naming the field.
    let chief = ok(
        k,
        "POST",
        "/api/v1/users",
        json!({"username": "chief.a", "display_name": "王主任", "password": PASSWORD,
               "org_id": w.unit_a, "post_rank": "section", "position": "办公室主任",
               "department": "办公室"}),
        201,
    )["user"]
        .clone();
    assert_eq!(chief["post_rank"], "section");
    assert_eq!(chief["position"], "办公室主任");
    let chief_id = chief["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/users/{chief_id}");
    for (body, field) in [
        (json!({"post_rank": "emperor"}), "post_rank"),
        (json!({"position": "x".repeat(65)}), "position"),
        (json!({"department": "a\nb"}), "department"),
    ] {
        let refused = ok_as(k, &w.county_admin, "PATCH", &path, body, 422);
        assert_eq!(refused["error"]["field"], field, "{refused}");
    }
    // The county admin changes the rank; an absent field stays, "" clears.
    let changed = ok_as(
        k,
        &w.county_admin,
        "PATCH",
        &path,
        json!({"post_rank": "vice_division", "department": ""}),
        200,
    )["user"]
        .clone();
    assert_eq!(changed["post_rank"], "vice_division");
    assert_eq!(changed["position"], "办公室主任");
    assert_eq!(changed["department"], Value::Null);
    let (_, audit) = k.get("/api/v1/audit?limit=1");
    assert!(audit.to_string().contains("vice_division"), "{audit}");
    // A member cannot change anyone's profile, their own included.
    let chief_token = k.login("chief.a", PASSWORD);
    ok_as(
        k,
        &chief_token,
        "PATCH",
        &path,
        json!({"post_rank": "ministerial"}),
        404,
    );
    ok_as(
        k,
        &w.member,
        "PATCH",
        &path,
        json!({"post_rank": "ministerial"}),
        404,
    );

    // A plugin reads it by id or username within the call's reach.
    let read = |token: &str, user: &str| {
        let (status, body) = k.request(
            "GET",
            &format!("/api/v1/p/hello/profile/{user}"),
            Some(token),
            None,
        );
        assert_eq!(status, 200, "{body}");
        body
    };
    let seen = read(&w.county_admin, "chief.a");
    assert_eq!(seen["user_id"], chief_id.as_str());
    assert_eq!(seen["post_rank"], "vice_division");
    assert_eq!(seen["position"], "办公室主任");
    assert_eq!(seen["department"], "");
    assert_eq!(seen["org_id"], w.unit_a.as_str());
    assert_eq!(seen["active"], true);
    assert_eq!(read(&w.county_admin, &chief_id)["username"], "chief.a");
    // County B's user is beyond county A's reach: the same none as nobody.
    assert_eq!(read(&w.county_admin, &w.user_b), Value::Null);
    assert_eq!(read(&w.county_admin, "user.b"), Value::Null);
    assert_eq!(read(&w.county_admin, "nobody.at.all"), Value::Null);
    // A member acting at their unit sees their unit's people and themself.
    assert_eq!(read(&w.member, "chief.a")["post_rank"], "vice_division");
    let (status, mine) = k.request(
        "GET",
        "/api/v1/p/hello/my-profile",
        Some(&chief_token),
        None,
    );
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["username"], "chief.a");
    // The platform administrator, acting at the region, reaches everyone.
    let (_, everyone) = k.get(&format!("/api/v1/p/hello/profile/{}", w.user_b));
    assert_eq!(everyone["username"], "user.b", "{everyone}");
}

#[test]
fn orgs_and_users_can_be_named_by_code_and_username() {
    let w = world();
    let k = &w.k;
    // Parent by division code, user's unit by credit code, binding by
    // username and org code.
    let county = ok(
        k,
        "POST",
        "/api/v1/orgs",
        json!({"parent": "650100", "level": "county", "code": "650104", "name": {"zh-CN": "新市区", "en": "Xinshi District"}}),
        201,
    );
    assert_eq!(county["org"]["parent_id"], w.prefecture.as_str());
    let unit_code = unified_social_credit_code("650104", 1);
    ok(
        k,
        "POST",
        "/api/v1/orgs",
        json!({"parent": "650104", "level": "unit", "code": unit_code, "name": {"zh-CN": "新市区机关事务服务中心", "en": "Xinshi offices"}}),
        201,
    );
    ok(
        k,
        "POST",
        "/api/v1/users",
        json!({"username": "xinshi.clerk", "display_name": "Clerk", "password": PASSWORD, "org": unit_code}),
        201,
    );
    ok(
        k,
        "POST",
        "/api/v1/bindings",
        json!({"user": "xinshi.clerk", "role": "org-admin", "org": "650104"}),
        201,
    );
    let token = k.login("xinshi.clerk", PASSWORD);
    let (status, me) = k.request("GET", "/api/v1/me", Some(&token), None);
    assert_eq!(status, 200);
    assert_eq!(me["unit"]["code"], unit_code.as_str(), "{me}");
    assert_eq!(
        me["user"]["org_id"], "org-650104",
        "acts at its highest binding: {me}"
    );
    let roles: Vec<&str> = me["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["member", "org-admin"]);
    // Invalid codes are refused with the field named.
    let (status, body) = k.request("POST", "/api/v1/orgs", None,
        Some(json!({"parent": "650104", "level": "unit", "code": "91650104MA00000000", "name": {"zh-CN": "x", "en": "x"}}).to_string().into_bytes()));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "code");
}

#[test]
fn the_demo_start_brings_the_real_tree_bundled_plugins_and_demo_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let k = TestKernel::start_demo(dir.path());
    let (_, tree) = k.get("/api/v1/orgs");
    let region = &tree["orgs"][0];
    assert_eq!(region["code"], "650000");
    let prefectures: Vec<&Value> = region["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["level"] == "prefecture")
        .collect();
    assert_eq!(prefectures.len(), 14);
    assert!(
        tree.to_string().contains("653131"),
        "Taxkorgan is in the tree"
    );
    let (_, plugins) = k.get("/api/v1/plugins");
    assert!(
        plugins["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "welcome")
    );

    // A prefecture admin sees only their prefecture, and the portal menu.
    let urumqi = k.login("demo.urumqi", crate::support::DEMO_PASSWORD);
    let (_, tree) = k.request("GET", "/api/v1/orgs", Some(&urumqi), None);
    let roots: Vec<&str> = tree["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["code"].as_str().unwrap())
        .collect();
    assert_eq!(roots, vec!["650100"]);
    let kashgar = k.login("demo.kashgar", crate::support::DEMO_PASSWORD);
    let (_, menu) = k.request("GET", "/api/v1/portal/menu", Some(&kashgar), None);
    let menu_plugins: Vec<&str> = menu["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["plugin"].as_str())
        .collect();
    assert!(
        menu_plugins.contains(&"welcome") && menu_plugins.contains(&"assets"),
        "members hold welcome.view and assets.view: {menu}"
    );
    assert_eq!(
        k.request("GET", "/api/v1/users", Some(&kashgar), None).0,
        403
    );

    // The assets plugin seeded a living register: thousands of booked
    // cards, totals in the data center, the region's public warehouse.
    let (status, cards) = k.request(
        "GET",
        "/api/v1/p/assets/cards?state=booked&limit=1",
        None,
        None,
    );
    assert_eq!(status, 200, "{cards}");
    assert!(
        cards["total"].as_u64().unwrap() >= 3000,
        "the demo register: {cards}"
    );
    let (status, rollup) = k.request("GET", "/api/v1/p/assets/reports/rollup", None, None);
    assert_eq!(status, 200, "{rollup}");
    assert!(
        !rollup["rows"].as_array().unwrap().is_empty(),
        "totals rolled up through the data center: {rollup}"
    );
    // Kashgar's staff see their own prefecture's cards only, and the
    // region's warehouse catalogue.
    let (_, theirs) = k.request(
        "GET",
        "/api/v1/p/assets/cards?limit=1",
        Some(&kashgar),
        None,
    );
    let theirs = theirs["total"].as_u64().unwrap();
    assert!(
        theirs > 0 && theirs < cards["total"].as_u64().unwrap(),
        "{theirs}"
    );
    let (_, items) = k.request(
        "GET",
        "/api/v1/p/assets/warehouse/items",
        Some(&kashgar),
        None,
    );
    assert!(items["total"].as_u64().unwrap() > 0, "{items}");

    // The vehicles system seeded a fleet, and `up` let it feed the plan's
    // NEV figures.
    let (status, fleet) = k.request("GET", "/api/v1/p/vehicles/vehicles?limit=1", None, None);
    assert_eq!(status, 200, "{fleet}");
    assert!(
        fleet["total"].as_u64().unwrap() >= 12,
        "the demo fleet: {fleet}"
    );
    let (_, nev) = k.get("/api/v1/datacenter/indicators/plan.nev_count");
    assert!(
        nev.to_string().contains(r#""plugin":"vehicles""#),
        "the publish grant: {nev}"
    );

    // The region's dashboard: the plan, approvals and every panel the
    // bundled systems offer, each with data from the demo (issue 22.6),
    // then on the wall at two sizes.
    crate::wall::demo_dashboard_has_data_on_the_wall(&k);
}

#[test]
fn guessing_the_current_password_is_throttled_and_mints_no_sessions() {
    let w = world();
    let k = &w.k;
    let sessions = || {
        let (_, me) = k.request("GET", "/api/v1/me", Some(&w.member), None);
        let id = me["user"]["user_id"].as_str().unwrap().to_string();
        count(
            k,
            &format!("SELECT COUNT(*) FROM sessions WHERE user_id = '{id}'"),
        )
    };
    let before = sessions();
    let guess = |password: &str| {
        k.request(
            "POST",
            "/api/v1/auth/password",
            Some(&w.member),
            Some(
                json!({"current_password": password, "new_password": "an entirely new passphrase"})
                    .to_string()
                    .into_bytes(),
            ),
        )
    };
    for _ in 0..5 {
        assert_eq!(guess("a wrong guess!").0, 422);
    }
    let (status, body) = guess("a wrong guess!");
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    assert_eq!(
        sessions(),
        before,
        "checking a password must not create sessions"
    );
}

/// One number from the kernel's database.
fn count(k: &TestKernel, query: &str) -> i64 {
    let url = format!("sqlite://{}", k.data_dir.join("tianshan.db").display());
    let query = query.to_string();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let db = tianshan_kernel::db::connect(&url).await.unwrap();
                sqlx::query_scalar::<_, i64>(&query)
                    .fetch_one(&db)
                    .await
                    .unwrap()
            })
    })
    .join()
    .unwrap()
}

/// The newest audit record's sequence number (0 for none), read as the
/// platform administrator.
fn newest_audit_seq(k: &TestKernel) -> i64 {
    newest_audit(k).0
}

fn newest_audit(k: &TestKernel) -> (i64, String) {
    let (status, out) = k.get("/api/v1/audit?limit=1");
    assert_eq!(status, 200, "{out}");
    let newest = &out["records"][0];
    (
        newest["seq"].as_i64().unwrap_or(0),
        newest["entry"]["outcome"]
            .as_str()
            .or(newest["outcome"].as_str())
            .unwrap_or_default()
            .to_string(),
    )
}
