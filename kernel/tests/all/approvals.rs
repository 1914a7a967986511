//! Approvals end to end: the test plugin `approver` defines a two-step flow
//! (any one county officer, then every prefecture director) and starts it
//! for its requests; people act through the kernel's to-do list; the
//! plugin's request follows the outcome through its event handler.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::identity::{PASSWORD, TwoCounties, org, person, two_counties, user};
use crate::services::PgDatabase;
use crate::support;
use crate::support::TestKernel;
use tianshan_kernel::identity::orgs::unified_social_credit_code;

const PLUGIN: &str = "/api/v1/p/approver";

/// region ─ prefecture 650100 ─┬ unit UP (directors d1, d2)
///                             ├ county 650102 ─ unit UA (applicant, officers o1 o2, helpers)
///                             └ county 650103 ─ unit UB (officer ob of county B)
struct World {
    k: TestKernel,
    applicant: String,
    o1: String,
    o2: String,
    d1: String,
    d2: String,
    ob: String,
    helper: String,
    helper2: String,
    reader: String,
    admin_a: String,
    admin_b: String,
}

fn world(k: TestKernel) -> World {
    let TwoCounties {
        prefecture,
        county_a,
        county_b,
        unit_a,
        unit_b,
    } = two_counties(&k);
    let unit_p = org(
        &k,
        &prefecture,
        "unit",
        &unified_social_credit_code("650100", 1),
        "乌鲁木齐市机关事务管理局",
    );
    k.install_ok("approver");
    let login = |name: &str, home: &str, roles: &[(&str, &str)]| person(&k, name, home, roles);
    let applicant = login("applicant", &unit_a, &[]);
    let o1 = login("officer.1", &unit_a, &[("approver.officer", &county_a)]);
    let o2 = login("officer.2", &unit_a, &[("approver.officer", &county_a)]);
    let d1 = login("director.1", &unit_p, &[("approver.director", &prefecture)]);
    let d2 = login("director.2", &unit_p, &[("approver.director", &prefecture)]);
    let ob = login("officer.b", &unit_b, &[("approver.officer", &county_b)]);
    let helper = login("helper", &unit_a, &[]);
    let helper2 = login("helper.2", &unit_p, &[]);
    let reader = login("reader", &unit_a, &[]);
    let admin_a = login("admin.a", &unit_a, &[("org-admin", &county_a)]);
    let admin_b = login("admin.b", &unit_b, &[("org-admin", &county_b)]);
    World {
        k,
        applicant,
        o1,
        o2,
        d1,
        d2,
        ob,
        helper,
        helper2,
        reader,
        admin_a,
        admin_b,
    }
}

fn call(k: &TestKernel, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = (!body.is_null()).then(|| body.to_string().into_bytes());
    k.request(method, path, Some(token), body)
}

/// Creates a request as the applicant; answers (request id, approval id).
fn new_request(w: &World, title: &str) -> (String, String) {
    let (status, out) = call(
        &w.k,
        &w.applicant,
        "POST",
        &format!("{PLUGIN}/requests"),
        json!({"title": title, "amount": 5200}),
    );
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["request"]["data"]["status"], "in_approval", "{out}");
    (
        out["request"]["id"].as_str().unwrap().to_string(),
        out["approval"]["id"].as_str().unwrap().to_string(),
    )
}

fn act(w: &World, token: &str, id: &str, action: &str, body: Value) -> (u16, Value) {
    call(
        &w.k,
        token,
        "POST",
        &format!("/api/v1/approvals/{id}/{action}"),
        body,
    )
}

fn act_ok(w: &World, token: &str, id: &str, action: &str, body: Value) -> Value {
    let (status, out) = act(w, token, id, action, body);
    assert_eq!(status, 200, "{action}: {out}");
    out
}

/// Approval ids on the caller's list of `kind`.
fn todo_ids(w: &World, token: &str, kind: &str) -> Vec<String> {
    let (status, out) = call(
        &w.k,
        token,
        "GET",
        &format!("/api/v1/todos?kind={kind}"),
        Value::Null,
    );
    assert_eq!(status, 200, "{out}");
    out["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["approval"]["id"].as_str().unwrap().to_string())
        .collect()
}

fn pending(w: &World, token: &str) -> Vec<String> {
    todo_ids(w, token, "pending")
}

fn detail(w: &World, token: &str, id: &str) -> (u16, Value) {
    call(
        &w.k,
        token,
        "GET",
        &format!("/api/v1/approvals/{id}"),
        Value::Null,
    )
}

/// Waits until the plugin's request has `status` (the outcome event is
/// delivered asynchronously).
fn request_becomes(w: &World, request: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, out) = call(
            &w.k,
            &w.applicant,
            "GET",
            &format!("{PLUGIN}/requests/{request}"),
            Value::Null,
        );
        assert_eq!(code, 200, "{out}");
        if out["request"]["data"]["status"] == status {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "request never became {status}: {out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Start → a county officer approves (any one) → both prefecture
/// directors must approve (all) → the plugin's request is approved; with
/// the attacks along the way.
fn happy_path(w: &World) {
    let (request, id) = new_request(w, "采购笔记本电脑");

    // Both county officers have it on their list; nobody else does.
    assert!(pending(w, &w.o1).contains(&id));
    assert!(pending(w, &w.o2).contains(&id));
    assert!(pending(w, &w.d1).is_empty(), "step 2 has not started");
    assert!(
        pending(w, &w.ob).is_empty(),
        "county B's officer is not asked"
    );
    assert!(todo_ids(w, &w.applicant, "started").contains(&id));
    let (status, out) = call(&w.k, &w.o1, "GET", "/api/v1/todos", Value::Null);
    assert_eq!(status, 200);
    assert_eq!(out["items"][0]["step_name"], "County review", "{out}");
    assert_eq!(out["items"][0]["approval"]["form"]["amount"], 5200, "{out}");

    // Attacks: another county's officer sees nothing and cannot act; the
    // applicant is not an approver; forged ids are simply not found.
    assert_eq!(detail(w, &w.ob, &id).0, 404);
    assert_eq!(act(w, &w.ob, &id, "approve", json!({})).0, 404);
    let (status, out) = act(w, &w.applicant, &id, "approve", json!({}));
    assert_eq!(status, 403, "{out}");
    assert_eq!(out["error"]["code"], "forbidden");
    assert_eq!(
        act(w, &w.o1, "01JFORGEDFORGEDFORGEDFORGE", "approve", json!({})).0,
        404
    );
    assert_eq!(detail(w, &w.o1, "01JFORGEDFORGEDFORGEDFORGE").0, 404);
    assert_eq!(
        w.k.request("GET", "/api/v1/todos", Some(""), None).0,
        401,
        "anonymous callers have no list"
    );

    // Step 1, any one: the first officer's approval moves the instance on
    // and takes it off the other officer's list.
    let out = act_ok(w, &w.o1, &id, "approve", json!({"comment": "同意"}));
    assert_eq!(out["approval"]["current_step"], 2, "{out}");
    assert!(!pending(w, &w.o2).contains(&id));
    assert_eq!(act(w, &w.o2, &id, "approve", json!({})).0, 409);
    let (status, out) = act(w, &w.o1, &id, "approve", json!({}));
    assert_eq!(status, 409, "double approve: {out}");
    assert_eq!(out["error"]["code"], "conflict");

    // Step 2, all must approve.
    assert!(pending(w, &w.d1).contains(&id));
    assert!(pending(w, &w.d2).contains(&id));
    let out = act_ok(w, &w.d1, &id, "approve", json!({}));
    assert_eq!(
        out["approval"]["status"], "running",
        "d2 still has to approve"
    );
    assert_eq!(act(w, &w.d1, &id, "approve", json!({})).0, 409);
    let out = act_ok(w, &w.d2, &id, "approve", json!({"comment": "批准"}));
    assert_eq!(out["approval"]["status"], "approved", "{out}");
    assert!(pending(w, &w.d2).is_empty());

    let out = request_becomes(w, &request, "approved");
    assert_eq!(out["request"]["data"]["last_comment"], "批准");
    assert_eq!(out["approvals"][0]["status"], "approved", "{out}");
    assert_eq!(act(w, &w.applicant, &id, "withdraw", json!({})).0, 409);

    let (_, out) = detail(w, &w.applicant, &id);
    let actions: Vec<&str> = out["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["started", "approved", "approved", "approved"]);
}

fn request_count(w: &World) -> u64 {
    let (status, out) = call(
        &w.k,
        &w.applicant,
        "GET",
        &format!("{PLUGIN}/count"),
        Value::Null,
    );
    assert_eq!(status, 200, "{out}");
    out["requests"].as_u64().unwrap()
}

/// `approvals.start-with` (contract 1.3): a request and its approval are
/// made in one transaction, so a failure of either half leaves neither.
fn made_together(w: &World) {
    let atomic = format!("{PLUGIN}/atomic");
    let before = request_count(w);
    let (status, out) = call(
        &w.k,
        &w.applicant,
        "POST",
        &atomic,
        json!({"title": "购置打印机", "amount": 2600}),
    );
    assert_eq!(status, 201, "{out}");
    let request = out["request"]["id"].as_str().unwrap();
    let id = out["approval"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        out["approval"]["subject_id"], request,
        "the empty subject names the new record"
    );
    assert_eq!(out["approval"]["status"], "running");
    assert!(pending(w, &w.o1).contains(&id));
    assert_eq!(request_count(w), before + 1);

    // The approval cannot start (no such flow): the record is not left behind.
    let (status, out) = call(
        &w.k,
        &w.applicant,
        "POST",
        &atomic,
        json!({"title": "孤儿申请", "amount": 1, "flow": "no-such-flow"}),
    );
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["field"], Value::Null, "{out}");
    assert_eq!(request_count(w), before + 1, "no orphan record");
    // The write cannot apply (a collection the plugin does not declare, a
    // plugin bug and so a 500): no approval starts, and the error names
    // the write.
    let started = todo_ids(w, &w.applicant, "started").len();
    let (status, out) = call(
        &w.k,
        &w.applicant,
        "POST",
        &atomic,
        json!({"title": "越权", "amount": 1, "collection": "cards"}),
    );
    assert_eq!(status, 500, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("write 0"),
        "{out}"
    );
    assert_eq!(todo_ids(w, &w.applicant, "started").len(), started);
    // An org outside the applicant's reach, forged in the payload: refused
    // before anything is written.
    let (status, out) = call(
        &w.k,
        &w.applicant,
        "POST",
        &atomic,
        json!({"title": "伪造单位", "amount": 1, "org": "org-650000"}),
    );
    assert_eq!(status, 403, "{out}");
    assert_eq!(request_count(w), before + 1);
    assert_eq!(todo_ids(w, &w.applicant, "started").len(), started);
}

fn start(database: Option<&str>) -> (World, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = Vec::new();
    if let Some(url) = database {
        args.extend(["--database-url", url]);
    }
    let k = TestKernel::start_in(&tmp.path().join("data"), &args);
    (world(k), tmp)
}

#[test]
fn approvals_happy_path_on_sqlite() {
    let (w, _tmp) = start(None);
    happy_path(&w);
    made_together(&w);
}

#[test]
fn approvals_happy_path_on_postgres() {
    if !support::have(support::Service::Postgres) {
        return;
    }
    let db = PgDatabase::create();
    let (w, _tmp) = start(Some(&db.url));
    happy_path(&w);
    made_together(&w);
}

#[test]
fn reject_reassign_add_copy_comment_attach_and_withdraw() {
    let (w, _tmp) = start(None);

    // Reject back to step 1: officers get fresh tasks, then it goes through.
    let (request, id) = new_request(&w, "维修办公楼");
    act_ok(&w, &w.o1, &id, "approve", json!({}));
    let (status, out) = act(&w, &w.d1, &id, "reject", json!({"to_step": 2}));
    assert_eq!(status, 422, "only earlier steps: {out}");
    assert_eq!(out["error"]["field"], "to_step");
    // Sending back needs a reason (issue 15.2), and nothing moved.
    let (status, out) = act(
        &w,
        &w.d1,
        &id,
        "reject",
        json!({"to_step": 1, "comment": "  "}),
    );
    assert_eq!(status, 422, "a reason is required: {out}");
    assert_eq!(out["error"]["field"], "comment");
    assert_eq!(out["error"]["code"], "approval_reason_required", "{out}");
    let out = act_ok(
        &w,
        &w.d1,
        &id,
        "reject",
        json!({"to_step": 1, "comment": "请补充报价"}),
    );
    assert_eq!(out["approval"]["current_step"], 1, "{out}");
    assert_eq!(out["approval"]["status"], "running");
    assert!(pending(&w, &w.o2).contains(&id), "step 1 runs again");
    assert!(!pending(&w, &w.d2).contains(&id), "step 2 is off the lists");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, out) = call(
            &w.k,
            &w.applicant,
            "GET",
            &format!("{PLUGIN}/requests/{request}"),
            Value::Null,
        );
        if out["request"]["data"]["last_outcome"] == "returned" {
            assert_eq!(out["request"]["data"]["last_comment"], "请补充报价");
            break;
        }
        assert!(Instant::now() < deadline, "no returned event: {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    act_ok(&w, &w.o2, &id, "approve", json!({}));
    act_ok(&w, &w.d1, &id, "approve", json!({}));
    act_ok(&w, &w.d2, &id, "approve", json!({}));
    request_becomes(&w, &request, "approved");

    // Reassign (转办) and add an approver (加签).
    let (request, id) = new_request(&w, "购置公务用车");
    let (status, out) = act(&w, &w.o1, &id, "reassign", json!({"to": "nobody.at.all"}));
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["field"], "to");
    assert_eq!(
        act(&w, &w.helper, &id, "reassign", json!({"to": "helper"})).0,
        404,
        "not a participant yet"
    );
    act_ok(&w, &w.o1, &id, "reassign", json!({"to": "helper"}));
    assert!(!pending(&w, &w.o1).contains(&id));
    assert!(pending(&w, &w.helper).contains(&id));
    assert_eq!(act(&w, &w.o1, &id, "approve", json!({})).0, 409);
    act_ok(&w, &w.helper, &id, "approve", json!({}));
    act_ok(&w, &w.d1, &id, "add-approver", json!({"user": "helper.2"}));
    assert!(pending(&w, &w.helper2).contains(&id));
    act_ok(&w, &w.d1, &id, "approve", json!({}));
    let out = act_ok(&w, &w.d2, &id, "approve", json!({}));
    assert_eq!(
        out["approval"]["status"], "running",
        "the added approver must approve too"
    );
    let out = act_ok(&w, &w.helper2, &id, "approve", json!({}));
    assert_eq!(out["approval"]["status"], "approved");
    request_becomes(&w, &request, "approved");

    // Copy to (抄送), comments and attachments on the timeline.
    let (_, id) = new_request(&w, "接待任务");
    assert_eq!(detail(&w, &w.reader, &id).0, 404);
    act_ok(
        &w,
        &w.applicant,
        &id,
        "copy-to",
        json!({"users": ["reader", "reader"]}),
    );
    assert_eq!(todo_ids(&w, &w.reader, "copied"), vec![id.clone()]);
    assert!(pending(&w, &w.reader).is_empty());
    assert_eq!(detail(&w, &w.reader, &id).0, 200);
    assert_eq!(act(&w, &w.reader, &id, "approve", json!({})).0, 403);
    assert_eq!(
        act(&w, &w.reader, &id, "copy-to", json!({"users": ["helper"]})).0,
        403,
        "copied users only read and comment"
    );
    act_ok(&w, &w.reader, &id, "comment", json!({"text": "已阅"}));
    let (status, out) = act(&w, &w.o1, &id, "comment", json!({"text": "  "}));
    assert_eq!(status, 422, "{out}");
    act_ok(
        &w,
        &w.applicant,
        &id,
        "attach",
        json!({"ref": "file-01J000", "name": "报价单.pdf"}),
    );
    let (_, out) = detail(&w, &w.o1, &id);
    let timeline = out["timeline"].as_array().unwrap();
    let find = |action: &str| {
        timeline
            .iter()
            .find(|t| t["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {out}"))
            .clone()
    };
    assert_eq!(find("commented")["comment"], "已阅");
    assert_eq!(find("commented")["actor_name"], "reader");
    assert_eq!(find("attached")["detail"]["name"], "报价单.pdf");
    assert_eq!(find("attached")["detail"]["ref"], "file-01J000");
    assert_eq!(out["copies"].as_array().unwrap().len(), 1, "de-duplicated");
    assert_eq!(out["can_act"], true);

    // Admins whose reach covers the org may read; another county's may not.
    assert_eq!(detail(&w, &w.admin_a, &id).0, 200);
    assert_eq!(detail(&w, &w.admin_b, &id).0, 404);
    assert_eq!(act(&w, &w.admin_a, &id, "approve", json!({})).0, 403);

    // Withdraw: only the applicant, only while running.
    assert_eq!(act(&w, &w.o1, &id, "withdraw", json!({})).0, 403);
    let out = act_ok(&w, &w.applicant, &id, "withdraw", json!({}));
    assert_eq!(out["approval"]["status"], "withdrawn");
    assert!(!pending(&w, &w.o1).contains(&id));
    assert_eq!(act(&w, &w.o1, &id, "approve", json!({})).0, 409);

    // The plugin withdraws on behalf of its caller, and the kernel still
    // decides: only the applicant may.
    let (request, _) = new_request(&w, "会议室预订");
    let (status, _) = call(
        &w.k,
        &w.o1,
        "POST",
        &format!("{PLUGIN}/requests/{request}/withdraw"),
        json!({}),
    );
    assert!(
        status == 403 || status == 404,
        "an officer cannot withdraw through the plugin: {status}"
    );
    let (status, out) = call(
        &w.k,
        &w.applicant,
        "POST",
        &format!("{PLUGIN}/requests/{request}/withdraw"),
        json!({}),
    );
    assert_eq!(status, 200, "{out}");
    request_becomes(&w, &request, "withdrawn");

    // Reject to the applicant ends it as rejected.
    let (request, id) = new_request(&w, "报废电脑");
    act_ok(&w, &w.o2, &id, "reject", json!({"comment": "不符合条件"}));
    request_becomes(&w, &request, "rejected");
}

/// A step nobody can approve refuses to start rather than stall.
#[test]
fn a_flow_without_approvers_does_not_start() {
    let k = TestKernel::start();
    let prefecture = org(&k, "org-650000", "prefecture", "650200", "克拉玛依市");
    let county = org(&k, &prefecture, "county", "650202", "独山子区");
    let unit = org(
        &k,
        &county,
        "unit",
        &unified_social_credit_code("650202", 1),
        "独山子区机关事务服务中心",
    );
    k.install_ok("approver");
    user(&k, "lonely", &unit);
    let token = k.login("lonely", PASSWORD);
    let (status, out) = k.request(
        "POST",
        &format!("{PLUGIN}/requests"),
        Some(&token),
        Some(json!({"title": "x"}).to_string().into_bytes()),
    );
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["code"], "approval_no_approver", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no approver"),
        "{out}"
    );
}
