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
    assert_eq!(out["error"]["code"], "approval_not_approver");
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
    assert_eq!(out["error"]["code"], "approval_acted");

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

/// The caller's notifications (`query` after `?`): the page as JSON.
fn bell(w: &World, token: &str, query: &str) -> Value {
    let (status, out) = call(
        &w.k,
        token,
        "GET",
        &format!("/api/v1/me/notifications?{query}"),
        Value::Null,
    );
    assert_eq!(status, 200, "{out}");
    out
}

fn unread(w: &World, token: &str) -> i64 {
    bell(w, token, "")["unread"].as_i64().unwrap()
}

fn mark_read(w: &World, token: &str, body: Value) -> (u16, Value) {
    call(&w.k, token, "POST", "/api/v1/me/notifications/read", body)
}

/// The next event named `name` within 20 s, skipping others.
fn next_event(events: &std::sync::mpsc::Receiver<support::Sse>, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (event, data) = events
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {name} event within 20 s"));
        if event == name {
            return serde_json::from_str(&data).unwrap();
        }
    }
}

/// The notification centre follows an approval to its people: the
/// approvers of the step get a to-do (live, on their open stream), the
/// urge reaches them, acting answers theirs and their colleagues', and the
/// applicant learns the outcome. Nobody reads or marks anyone else's.
#[test]
fn notifications_follow_an_approval_to_its_people() {
    let w = world(TestKernel::start());
    let k = &w.k;
    let (status, o1_bell) = support::open_sse(k, &w.o1, "/api/v1/me/notifications/stream");
    assert_eq!(status, 200);
    assert_eq!(next_event(&o1_bell, "unread")["unread"], 0);

    let (_, id) = new_request(&w, "采购复印机");
    let live = next_event(&o1_bell, "notification");
    assert_eq!(live["unread"], 1, "{live}");
    let note = &live["notification"];
    assert_eq!(note["kind"], "todo", "{live}");
    assert_eq!(note["subject"], id.as_str());
    assert_eq!(note["link"], format!("#/approvals/{id}"));
    assert_eq!(note["actor_name"], "applicant", "{live}");
    assert_eq!(next_event(&o1_bell, "unread")["unread"], 1);
    for (who, n) in [(&w.o1, 1), (&w.o2, 1), (&w.applicant, 0), (&w.ob, 0)] {
        assert_eq!(unread(&w, who), n, "{who}");
    }

    // Another person's id marks nothing; reading it is not possible at all.
    let o1_note = note["id"].as_i64().unwrap();
    let (status, out) = mark_read(&w, &w.reader, json!({"ids": [o1_note]}));
    assert_eq!((status, &out["unread"]), (200, &json!(0)), "{out}");
    assert_eq!(unread(&w, &w.o1), 1, "still unread for its owner");
    assert!(
        bell(&w, &w.reader, "")["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // 催办 reaches the step's approvers.
    act_ok(
        &w,
        &w.applicant,
        &id,
        "urge",
        json!({"comment": "明天开会要用"}),
    );
    let urged = next_event(&o1_bell, "notification");
    assert_eq!(urged["notification"]["kind"], "urged", "{urged}");
    assert_eq!(urged["notification"]["detail"]["comment"], "明天开会要用");
    assert_eq!(unread(&w, &w.o2), 2);

    // Officer 1 approves: his to-do and the urge are answered, and officer
    // 2's, whose task went with the step; the directors get theirs.
    act_ok(&w, &w.o1, &id, "approve", json!({}));
    while next_event(&o1_bell, "unread")["unread"] != 0 {}
    assert_eq!(unread(&w, &w.o2), 0, "the colleague's to-do is moot");
    assert_eq!(unread(&w, &w.d1), 1);
    act_ok(&w, &w.d1, &id, "approve", json!({}));
    act_ok(&w, &w.d2, &id, "approve", json!({}));
    let page = bell(&w, &w.applicant, "unread=true");
    assert_eq!(page["unread"], 1, "{page}");
    assert_eq!(page["items"][0]["kind"], "decided", "{page}");
    assert_eq!(page["items"][0]["detail"]["status"], "approved", "{page}");

    // Paging: newest first, `next` goes on to older ones.
    for n in 0..3 {
        new_request(&w, &format!("第{n}份"));
    }
    let first = bell(&w, &w.o1, "limit=2");
    assert_eq!(first["items"].as_array().unwrap().len(), 2, "{first}");
    let before = first["next"].as_i64().expect("an older page");
    let second = bell(&w, &w.o1, &format!("limit=2&before={before}"));
    assert!(
        second["items"][0]["id"].as_i64().unwrap() < before,
        "{second}"
    );
    assert_eq!(unread(&w, &w.o1), 3);
    let (status, out) = mark_read(&w, &w.o1, json!({"all": true}));
    assert_eq!((status, &out["unread"]), (200, &json!(0)), "{out}");

    // Bad input names its field; nobody signed in gets nothing.
    for (body, field) in [
        (json!({}), "ids"),
        (json!({"ids": []}), "ids"),
        (json!({"ids": [1], "all": true}), "ids"),
    ] {
        let (status, out) = mark_read(&w, &w.o1, body);
        assert_eq!(
            (status, out["error"]["field"].as_str()),
            (422, Some(field)),
            "{out}"
        );
    }
    for (query, field) in [
        ("limit=0", "limit"),
        ("unread=maybe", "unread"),
        ("before=x", "before"),
    ] {
        let (status, out) = call(
            k,
            &w.o1,
            "GET",
            &format!("/api/v1/me/notifications?{query}"),
            Value::Null,
        );
        assert_eq!(
            (status, out["error"]["field"].as_str()),
            (422, Some(field)),
            "{out}"
        );
    }
    assert_eq!(
        k.request("GET", "/api/v1/me/notifications", Some(""), None)
            .0,
        401
    );
    assert_eq!(
        k.request("GET", "/api/v1/me/notifications/stream", Some(""), None)
            .0,
        401
    );
}

/// A stream that reconnects with the last id it had gets what it missed;
/// one person holds at most eight streams on a node.
#[test]
fn a_reconnecting_bell_misses_nothing() {
    let w = world(TestKernel::start());
    let k = &w.k;
    let (_, id) = new_request(&w, "第一份");
    let seen = bell(&w, &w.o1, "")["items"][0]["id"].as_i64().unwrap();
    new_request(&w, "第二份");
    let (status, resumed) = support::open_sse(
        k,
        &w.o1,
        &format!("/api/v1/me/notifications/stream?since={seen}"),
    );
    assert_eq!(status, 200);
    let missed = next_event(&resumed, "notification");
    assert_eq!(missed["notification"]["title"], "第二份", "{missed}");
    assert_ne!(missed["notification"]["subject"], id.as_str());
    let mut open = vec![resumed];
    for _ in 1..8 {
        let (status, s) = support::open_sse(k, &w.o1, "/api/v1/me/notifications/stream");
        assert_eq!(status, 200);
        open.push(s);
    }
    let (status, _) = support::open_sse(k, &w.o1, "/api/v1/me/notifications/stream");
    assert_eq!(status, 429, "a ninth stream");
    let (status, _) = support::open_sse(k, &w.o2, "/api/v1/me/notifications/stream");
    assert_eq!(status, 200, "a colleague has streams of his own");
    let (status, out) = call(
        k,
        &w.o2,
        "GET",
        "/api/v1/me/notifications/stream?since=x",
        Value::Null,
    );
    assert_eq!(
        (status, out["error"]["field"].as_str()),
        (422, Some("since"))
    );
}

/// An operator's webhook (an SMS gateway) receives each new notification
/// once, signed, with a Chinese sentence it can send as it is.
#[test]
fn notifications_reach_the_operators_webhook_signed() {
    use hmac::{Hmac, Mac};
    use std::io::{BufRead, BufReader, Read, Write};
    let receiver = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let (tx, posts) = std::sync::mpsc::channel::<(Vec<(String, String)>, Vec<u8>)>();
    std::thread::spawn(move || {
        for stream in receiver.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((name, value)) = l.split_once(':') {
                    headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
                }
            }
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            stream
                .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                .unwrap();
            if tx.send((headers, body)).is_err() {
                break;
            }
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("tianshan.toml");
    std::fs::write(
        &config,
        format!(
            "[notifications]\nwebhook-url = \"http://127.0.0.1:{port}/hook?key=k\"\nwebhook-secret = \"s3cret\"\n"
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let w = world(TestKernel::start_in(
        &data,
        &["--config", config.to_str().unwrap()],
    ));
    let (_, id) = new_request(&w, "采购复印机");
    let mut got = Vec::new();
    while got.len() < 2 {
        let (headers, body) = posts
            .recv_timeout(Duration::from_secs(30))
            .expect("the webhook is called within 30 s");
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(&body);
        assert_eq!(
            header("x-tianshan-signature"),
            format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
            "signed with the configured secret"
        );
        let out: Value = serde_json::from_slice(&body).unwrap();
        got.extend(out["notifications"].as_array().unwrap().iter().cloned());
    }
    let mut users: Vec<&str> = got
        .iter()
        .map(|n| n["user"]["username"].as_str().unwrap())
        .collect();
    users.sort();
    assert_eq!(users, ["officer.1", "officer.2"], "{got:?}");
    for n in &got {
        assert_eq!(n["kind"], "todo");
        assert_eq!(n["subject"], id.as_str());
        assert_eq!(n["text"], "您有一项待办审批：采购复印机", "{n}");
    }
    // Delivered once: nothing more comes for them.
    assert!(
        posts.recv_timeout(Duration::from_secs(8)).is_err(),
        "a delivered notification is not sent again"
    );
}

/// The portal's bell in Chromium: a to-do rings it while the approver's
/// page is open, without a reload (the stream), the to-do badge follows,
/// and opening the notification reads it and shows the approval.
#[test]
fn the_portal_bell_rings_without_a_reload() {
    if !support::have(support::Service::Browser) {
        return;
    }
    let w = world(TestKernel::start());
    let b = crate::portal::Browser::start();
    b.goto(&format!("{}/", w.k.base));
    b.wait_displayed("#login-username");
    b.type_into("#login-username", "officer.1");
    b.type_into("#login-password", PASSWORD);
    b.click("#login-submit");
    b.wait_displayed("#bell-button");
    assert_eq!(
        b.script(
            "return document.getElementById('bell-count').hidden",
            json!([])
        ),
        json!(true),
        "nothing to tell yet"
    );
    new_request(&w, "采购复印机");
    b.wait_text("#bell-count", "the bell's count", |t| t == "1");
    b.wait_text("#todo-count", "the to-do badge", |t| t == "1");
    b.click("#bell-button");
    b.wait_text("#bell-list a.bell-unread", "the notification", |t| {
        t.contains("待您审批：采购复印机")
    });
    b.click("#bell-list a");
    b.wait_text("#approval-title", "the approval", |t| {
        t.contains("采购复印机")
    });
    b.wait_until("the bell is read", || {
        b.script(
            "return document.getElementById('bell-count').hidden",
            json!([]),
        ) == json!(true)
    });
    assert_eq!(unread(&w, &w.o1), 0, "read on the server too");
}
