//! The office plugin end to end on a real kernel with the real plugin: an
//! outgoing 通知 drafted and revised (the changes marked), refused where
//! GB/T 9704 or the rules say so, submitted (twice at once: one review),
//! taken through 部门审核, 核稿, a two-person 会签, 签发 and 复核 in the
//! kernel's approvals, registered with its 发文字号 and distributed into
//! another county's incoming box; that box's handling through to the
//! archive; numbers under concurrent registration without gap or repeat;
//! notices with audiences and receipts; supervision; search; and the
//! attacks (another county's documents, editing someone else's draft or a
//! document in review, publishing for an org out of reach).

use std::time::Duration;

use serde_json::{Value, json};

use crate::identity::{person, region_day, two_counties};
use crate::support::{self, TestKernel, wait_for};

const P: &str = "/api/v1/p/office";

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

/// The approval ids `who` has pending, newest last.
fn pending(k: &TestKernel, who: &str) -> Vec<String> {
    let (_, t) = k.request("GET", "/api/v1/todos?kind=pending", Some(who), None);
    t["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["approval"]["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `who` approves approval `id` once it is in his to-do list.
/// `who` does `action` to approval `id` through the kernel's API.
fn act_on(k: &TestKernel, who: &str, id: &str, action: &str, body: Value) -> (u16, Value) {
    k.request(
        "POST",
        &format!("/api/v1/approvals/{id}/{action}"),
        Some(who),
        Some(body.to_string().into_bytes()),
    )
}

fn approve(k: &TestKernel, who: &str, id: &str) {
    wait_for("the to-do", || {
        pending(k, who)
            .contains(&id.to_string())
            .then_some(Value::Null)
    });
    let (status, out) = act_on(k, who, id, "approve", json!({"comment": "同意"}));
    assert_eq!(status, 200, "approve: {out}");
}

pub struct Office {
    pub k: TestKernel,
    pub unit_a: String,
    pub unit_b: String,
    pub county_a: String,
    pub drafter: String,
    pub colleague: String,
    pub reviewer: String,
    pub checker: String,
    pub cosigners: [String; 2],
    pub signer: String,
    pub clerk: String,
    pub clerk_b: String,
    pub leader_b: String,
    pub member_b: String,
}

/// Unit A's office with every role of the outgoing flow, and unit B in
/// another county receiving.
pub fn office(k: TestKernel) -> Office {
    let t = two_counties(&k);
    k.install_ok("office");
    let (a, b) = (t.unit_a.clone(), t.unit_b.clone());
    Office {
        drafter: person(&k, "drafter.a", &a, &[]),
        colleague: person(&k, "colleague.a", &a, &[]),
        reviewer: person(&k, "head.a", &a, &[("office.reviewer", &a)]),
        checker: person(&k, "checker.a", &a, &[("office.checker", &a)]),
        cosigners: [
            person(&k, "finance.a", &a, &[("office.cosigner", &a)]),
            person(&k, "legal.a", &a, &[("office.cosigner", &a)]),
        ],
        signer: person(&k, "director.a", &a, &[("office.signer", &a)]),
        clerk: person(&k, "clerk.a", &a, &[("office.clerk", &a)]),
        clerk_b: person(&k, "clerk.b", &b, &[("office.clerk", &b)]),
        leader_b: person(&k, "director.b", &b, &[("office.signer", &b)]),
        member_b: person(&k, "member.b", &b, &[]),
        county_a: t.county_a,
        unit_a: a,
        unit_b: b,
        k,
    }
}

pub fn draft_body(w: &Office) -> Value {
    json!({
        "doc_type": "notice", "urgency": "urgent",
        "organ_mark": "天山区机关事务服务中心文件", "organ_code": "天机管发",
        "title": "关于做好2027年度公共机构节能工作的通知",
        "main_recipients": "各街道、各单位",
        "body": "各单位：现将有关事项通知如下。请于3月底前报送节能工作方案。",
        "issuing_organ": "天山区机关事务服务中心",
        "cc": "区政府办公室", "printing_organ": "天山区机关事务服务中心办公室",
        "distribute_to": [w.unit_b],
    })
}

/// Submits document `id` and approves every step; answers the approval id.
/// The last step, 复核, is left to the caller when `leave_last`.
pub fn through_review(w: &Office, id: &str, leave_last: bool) -> String {
    let k = &w.k;
    let submitted = ok(
        k,
        &w.drafter,
        "POST",
        &format!("/outgoing/{id}/submit"),
        Value::Null,
        201,
    );
    let approval = submitted["approval"]["id"].as_str().unwrap().to_string();
    for who in [
        &w.reviewer,
        &w.checker,
        &w.cosigners[0],
        &w.cosigners[1],
        &w.signer,
    ] {
        approve(k, who, &approval);
    }
    if !leave_last {
        approve(k, &w.clerk, &approval);
    }
    approval
}

fn document(k: &TestKernel, who: &str, id: &str) -> Value {
    ok(k, who, "GET", &format!("/outgoing/{id}"), Value::Null, 200)["document"].clone()
}

#[test]
fn an_outgoing_notice_from_draft_to_a_registered_copy_in_another_county() {
    let w = office(TestKernel::start());
    let k = &w.k;
    // GB/T 9704 and the rules, refused naming the field.
    let mut classified = draft_body(&w);
    classified["classification"] = json!("secret");
    assert_eq!(
        refused(k, &w.drafter, "POST", "/outgoing", classified),
        (
            422,
            "classified_not_allowed".into(),
            "classification".into()
        )
    );
    let mut request = draft_body(&w);
    request["doc_type"] = json!("request");
    assert_eq!(
        refused(k, &w.drafter, "POST", "/outgoing", request),
        (422, "signer_required".into(), "signer".into())
    );
    let mut nowhere = draft_body(&w);
    nowhere["distribute_to"] = json!(["org-no-such"]);
    assert_eq!(
        refused(k, &w.drafter, "POST", "/outgoing", nowhere),
        (422, "org_unknown".into(), "distribute_to[0]".into())
    );
    let mut forged = draft_body(&w);
    forged["no"] = json!("天机管发〔2026〕99号");
    assert_eq!(
        refused(k, &w.drafter, "POST", "/outgoing", forged).0,
        400,
        "a number is not the drafter's to set"
    );

    // Drafted, revised twice; a save from a stale copy is refused.
    let created = ok(k, &w.drafter, "POST", "/outgoing", draft_body(&w), 201);
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/outgoing/{id}");
    let mut body = draft_body(&w);
    body["body"] = json!("各单位：现将有关事项通知如下。请于4月15日前报送节能工作方案和能耗台账。");
    body["revision"] = created["revision"].clone();
    let saved = ok(k, &w.drafter, "PUT", &path, body.clone(), 200);
    assert_eq!(
        refused(k, &w.drafter, "PUT", &path, body.clone()),
        (409, "stale".into(), String::new()),
        "the first revision again"
    );
    body["revision"] = saved["revision"].clone();
    body["title"] = json!("关于做好2027年度公共机构节能降碳工作的通知");
    ok(k, &w.drafter, "PUT", &path, body.clone(), 200);
    // The changes, marked.
    let diff = ok(
        k,
        &w.drafter,
        "GET",
        &format!("{path}/diff"),
        Value::Null,
        200,
    );
    let marked: Vec<(String, String)> = diff["ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["op"] != "same")
        .map(|o| {
            (
                o["op"].as_str().unwrap().into(),
                o["text"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        marked.contains(&("insert".into(), "和能耗台账".into())),
        "{diff}"
    );
    assert!(
        marked.contains(&("delete".into(), "3月底".into())),
        "{diff}"
    );
    assert!(
        diff["title"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["op"] == "insert" && o["text"] == "降碳"),
        "{diff}"
    );
    let versions = ok(
        k,
        &w.drafter,
        "GET",
        &format!("{path}/revisions"),
        Value::Null,
        200,
    );
    assert_eq!(
        versions["versions"].as_array().unwrap().len(),
        3,
        "{versions}"
    );
    assert_eq!(
        refused(
            k,
            &w.drafter,
            "GET",
            &format!("{path}/diff?from=99"),
            Value::Null
        ),
        (404, "revision_unknown".into(), "from".into())
    );

    // Another county sees nothing; a colleague may read but not edit.
    assert_eq!(refused(k, &w.member_b, "GET", &path, Value::Null).0, 404);
    assert_eq!(refused(k, &w.member_b, "PUT", &path, draft_body(&w)).0, 404);
    assert_eq!(
        refused(k, &w.colleague, "PUT", &path, draft_body(&w)).1,
        "not_the_drafter"
    );

    // Submitted twice at once: one review.
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let submit = || {
            scope.spawn(|| {
                call(
                    k,
                    &w.drafter,
                    "POST",
                    &format!("{path}/submit"),
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
    let approval = answers.iter().find(|(s, _)| *s == 201).unwrap().1["approval"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        refused(k, &w.drafter, "PUT", &path, body.clone()).1,
        "not_a_draft",
        "no edits in review"
    );

    // 核稿 sends it back to the drafter (退回修改): a draft again, revised
    // and submitted anew.
    approve(k, &w.reviewer, &approval);
    wait_for("the checker's to-do", || {
        pending(k, &w.checker)
            .contains(&approval)
            .then_some(Value::Null)
    });
    let (status, out) = k.request(
        "POST",
        &format!("/api/v1/approvals/{approval}/reject"),
        Some(&w.checker),
        Some(
            json!({"comment": "请补充报送时限", "to_step": 0})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(status, 200, "reject: {out}");
    let returned = wait_for("the return", || {
        let d = document(k, &w.drafter, &id);
        (d["data"]["status"] == "draft").then_some(d)
    });
    let last = returned["data"]["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "returned", "{returned}");
    body["revision"] = returned["revision"].clone();
    body["notes"] = json!("请于4月15日前报送");
    ok(k, &w.drafter, "PUT", &path, body.clone(), 200);
    let again = ok(
        k,
        &w.drafter,
        "POST",
        &format!("{path}/submit"),
        Value::Null,
        201,
    );
    let approval = again["approval"]["id"].as_str().unwrap().to_string();

    // 部门审核, 核稿, 会签 (both), 签发: still in review, no number yet.
    for who in [&w.reviewer, &w.checker, &w.cosigners[0]] {
        approve(k, who, &approval);
    }
    // 会签 waits for the second co-signer: the signer has nothing yet.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !pending(k, &w.signer).contains(&approval),
        "会签 needs both"
    );
    approve(k, &w.cosigners[1], &approval);
    approve(k, &w.signer, &approval);
    assert_eq!(document(k, &w.drafter, &id)["data"]["status"], "reviewing");
    assert_eq!(document(k, &w.drafter, &id)["data"]["no"], "");
    // 复核: registered, sealed and distributed.
    approve(k, &w.clerk, &approval);
    let issued = wait_for("registration", || {
        let d = document(k, &w.drafter, &id);
        (d["data"]["status"] == "issued").then_some(d)
    });
    let year = issued["data"]["year"].as_i64().unwrap();
    let no = format!("天机管发〔{year}〕1号");
    assert_eq!(issued["data"]["no"], no.as_str(), "{issued}");
    assert_eq!(issued["data"]["sealed"], true);
    assert_eq!(
        issued["data"]["deliveries"][0]["org"],
        w.unit_b.as_str(),
        "{issued}"
    );

    // The month's volumes, in the data center for the dashboards.
    let period = issued["data"]["issued_on"].as_str().unwrap()[..7].to_string();
    for (code, org) in [("office.issued", &w.unit_a), ("office.received", &w.unit_b)] {
        wait_for(code, || {
            let (_, v) = k.get(&format!(
                "/api/v1/datacenter/indicators/{code}/values?org={org}&from={period}&to={period}"
            ));
            (v["rows"][0]["value"].as_f64() == Some(1.0)).then_some(v)
        });
    }

    // In the other county's box, registered with its own 收文号.
    let boxed = ok(
        k,
        &w.clerk_b,
        "GET",
        "/incoming?status=registered",
        Value::Null,
        200,
    );
    let copy = boxed["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["data"]["source_id"] == id.as_str())
        .unwrap_or_else(|| panic!("{boxed}"))
        .clone();
    assert_eq!(copy["data"]["source_no"], no.as_str());
    assert_eq!(copy["data"]["no"], format!("收〔{year}〕1号").as_str());
    assert_eq!(copy["data"]["source_organ"], "天山区机关事务服务中心");
    let copy_id = copy["id"].as_str().unwrap().to_string();
    let copy_path = format!("/incoming/{copy_id}");
    assert_eq!(
        refused(k, &w.drafter, "GET", &copy_path, Value::Null).0,
        404,
        "the sender does not read the recipient's box"
    );

    // 拟办 → 批办 → 承办 ⇄ 传阅 → 办结 → 归档, each where the state allows.
    assert_eq!(
        refused(
            k,
            &w.clerk_b,
            "POST",
            &format!("{copy_path}/complete"),
            json!({"note": "完"})
        )
        .1,
        "incoming_state"
    );
    assert_eq!(
        refused(
            k,
            &w.clerk_b,
            "POST",
            &format!("{copy_path}/propose"),
            json!({"opinion": " "})
        ),
        (422, "opinion_required".into(), "opinion".into())
    );
    ok(
        k,
        &w.clerk_b,
        "POST",
        &format!("{copy_path}/propose"),
        json!({"opinion": "拟请主任阅示，由综合科办理。"}),
        200,
    );
    assert_eq!(
        refused(
            k,
            &w.member_b,
            "POST",
            &format!("{copy_path}/instruct"),
            json!({"opinion": "同意", "lead": "综合科"})
        )
        .0,
        403,
        "a member gives no instruction"
    );
    assert_eq!(
        refused(
            k,
            &w.leader_b,
            "POST",
            &format!("{copy_path}/instruct"),
            json!({"opinion": "同意", "lead": "综合科", "deadline": "2026-02-30"})
        ),
        (422, "deadline_invalid".into(), "deadline".into())
    );
    ok(
        k,
        &w.leader_b,
        "POST",
        &format!("{copy_path}/instruct"),
        json!({"opinion": "同意，请综合科牵头落实。", "lead": "综合科", "assisting": ["财务科"], "deadline": format!("{year}-12-31")}),
        200,
    );
    ok(
        k,
        &w.clerk_b,
        "POST",
        &format!("{copy_path}/circulate"),
        json!({"readers": ["member.b"], "note": "请阅"}),
        200,
    );
    assert_eq!(
        refused(
            k,
            &w.leader_b,
            "POST",
            &format!("{copy_path}/read"),
            Value::Null
        )
        .1,
        "not_a_reader"
    );
    let read = ok(
        k,
        &w.member_b,
        "POST",
        &format!("{copy_path}/read"),
        Value::Null,
        200,
    );
    assert_ne!(read["data"]["readers"][0]["read_on"], "", "{read}");
    ok(
        k,
        &w.member_b,
        "POST",
        &format!("{copy_path}/report"),
        json!({"note": "已制定方案"}),
        200,
    );
    ok(
        k,
        &w.member_b,
        "POST",
        &format!("{copy_path}/complete"),
        json!({"note": "方案已报送"}),
        200,
    );
    let filed = ok(
        k,
        &w.clerk_b,
        "POST",
        &format!("{copy_path}/archive"),
        json!({"category": "文书-综合", "retention": "y10"}),
        200,
    );
    assert_eq!(filed["data"]["status"], "archived", "{filed}");
    assert!(
        filed["data"]["archive"]["archive_no"]
            .as_str()
            .unwrap()
            .ends_with("-0001"),
        "{filed}"
    );

    // Search: the sender finds his document, the recipient its copy, each
    // within reach only.
    let found = ok(k, &w.drafter, "GET", "/search?q=能耗台账", Value::Null, 200);
    let kinds: Vec<&str> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["outgoing"], "{found}");
    let hit = found["results"][0]["snippet"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["hit"] == true)
        .unwrap();
    assert_eq!(hit["text"], "能耗台账");
    let found_b = ok(k, &w.clerk_b, "GET", "/search?q=能耗台账", Value::Null, 200);
    let kinds: Vec<&str> = found_b["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["incoming"], "{found_b}");
    assert_eq!(
        refused(k, &w.drafter, "GET", "/search?q=", Value::Null),
        (422, "query_required".into(), "q".into())
    );

    // The sender's archive: read-only after.
    ok(
        k,
        &w.clerk,
        "POST",
        &format!("{path}/archive"),
        json!({"category": "文书-综合", "retention": "permanent"}),
        200,
    );
    assert_eq!(
        refused(k, &w.drafter, "PUT", &path, body).1,
        "document_archived"
    );
}

/// Five documents at their last step approved at once: numbers 1-5, no
/// gap, no repeat, and each recipient copy numbered likewise.
#[test]
fn concurrent_registrations_take_consecutive_numbers() {
    let w = office(TestKernel::start());
    let k = &w.k;
    let approvals: Vec<String> = (0..5)
        .map(|i| {
            let mut body = draft_body(&w);
            body["title"] = json!(format!("关于第{i}批次资产清查的通知"));
            let d = ok(k, &w.drafter, "POST", "/outgoing", body, 201);
            through_review(&w, d["id"].as_str().unwrap(), true)
        })
        .collect();
    for a in &approvals {
        wait_for("the clerk's to-do", || {
            pending(k, &w.clerk).contains(a).then_some(Value::Null)
        });
    }
    std::thread::scope(|scope| {
        for a in &approvals {
            let clerk = &w.clerk;
            scope.spawn(move || {
                let (status, out) = k.request(
                    "POST",
                    &format!("/api/v1/approvals/{a}/approve"),
                    Some(clerk),
                    Some(json!({"comment": "同意"}).to_string().into_bytes()),
                );
                assert_eq!(status, 200, "{out}");
            });
        }
    });
    let issued = wait_for("five registrations", || {
        let list = ok(
            k,
            &w.drafter,
            "GET",
            "/outgoing?status=issued&limit=50",
            Value::Null,
            200,
        );
        (list["records"].as_array().unwrap().len() == 5).then_some(list)
    });
    let mut seqs: Vec<i64> = issued["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["data"]["seq"].as_i64().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "{issued}");
    let boxed = ok(k, &w.clerk_b, "GET", "/incoming?limit=50", Value::Null, 200);
    let mut numbers: Vec<String> = boxed["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["data"]["no"].as_str().unwrap().to_string())
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 5, "{boxed}");
}

/// Notices reach their audience org's subtree, narrowed by role; reading
/// records a receipt; supervision keeps its rules.
#[test]
fn notices_reach_their_audience_and_matters_are_supervised() {
    let w = office(TestKernel::start());
    let k = &w.k;
    let everyone = ok(
        k,
        &w.clerk,
        "POST",
        "/notices",
        json!({"title": "关于国庆节放假安排的通知", "body": "10月1日至7日放假。"}),
        201,
    );
    let leaders = ok(
        k,
        &w.clerk,
        "POST",
        "/notices",
        json!({"title": "关于召开党组会议的通知", "body": "周一上午九时。", "audience": "leaders"}),
        201,
    );
    assert_eq!(
        refused(
            k,
            &w.clerk,
            "POST",
            "/notices",
            json!({"title": "越权", "audience_org": w.county_a})
        ),
        (404, "org_unknown".into(), "audience_org".into()),
        "a unit's clerk does not publish for the county"
    );
    assert_eq!(
        refused(
            k,
            &w.clerk,
            "POST",
            "/notices",
            json!({"title": "x", "audience": "cats"})
        )
        .2,
        "audience"
    );
    let titles = |who: &str| -> Vec<(String, bool)> {
        ok(k, who, "GET", "/notices", Value::Null, 200)["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["data"]["title"].as_str().unwrap().to_string(),
                    r["read"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        titles(&w.drafter),
        [("关于国庆节放假安排的通知".to_string(), false)]
    );
    assert_eq!(
        titles(&w.signer).len(),
        2,
        "a leader sees the leaders' notice"
    );
    assert!(titles(&w.member_b).is_empty(), "another county sees none");
    let everyone_id = everyone["id"].as_str().unwrap();
    assert_eq!(
        refused(
            k,
            &w.member_b,
            "GET",
            &format!("/notices/{everyone_id}"),
            Value::Null
        )
        .0,
        404
    );
    let leaders_id = leaders["id"].as_str().unwrap();
    assert_eq!(
        refused(
            k,
            &w.drafter,
            "GET",
            &format!("/notices/{leaders_id}"),
            Value::Null
        )
        .0,
        404
    );
    ok(
        k,
        &w.drafter,
        "GET",
        &format!("/notices/{everyone_id}"),
        Value::Null,
        200,
    );
    ok(
        k,
        &w.drafter,
        "GET",
        &format!("/notices/{everyone_id}"),
        Value::Null,
        200,
    );
    assert!(titles(&w.drafter)[0].1, "read now");
    let receipts = ok(
        k,
        &w.clerk,
        "GET",
        &format!("/notices/{everyone_id}/receipts"),
        Value::Null,
        200,
    );
    assert_eq!(receipts["count"], 1, "read twice, one receipt: {receipts}");
    assert_eq!(receipts["read"][0]["name"], "drafter.a");
    // Newer notices for the leaders only do not leave a member's page
    // empty: the list reads on until it has one he may see.
    for n in 0..3 {
        ok(
            k,
            &w.clerk,
            "POST",
            "/notices",
            json!({"title": format!("党组会议纪要（{n}）"), "body": "略。", "audience": "leaders"}),
            201,
        );
    }
    let first = ok(k, &w.drafter, "GET", "/notices?limit=1", Value::Null, 200);
    assert_eq!(
        first["records"].as_array().map(Vec::len),
        Some(1),
        "a full page: {first}"
    );
    assert_eq!(first["records"][0]["id"], everyone_id, "{first}");
    assert_eq!(first["records"][0]["read"], true, "{first}");
    assert_eq!(
        refused(
            k,
            &w.drafter,
            "GET",
            &format!("/notices/{everyone_id}/receipts"),
            Value::Null
        )
        .0,
        403
    );

    // Supervision.
    assert_eq!(
        refused(
            k,
            &w.clerk,
            "POST",
            "/matters",
            json!({"title": "越权", "owner": "综合科", "deadline": "2026-12-31", "org": w.unit_b})
        )
        .0,
        404
    );
    let matter = ok(
        k,
        &w.clerk,
        "POST",
        "/matters",
        json!({"title": "办公用房清理整改", "owner": "综合科", "deadline": "2020-01-31"}),
        201,
    );
    assert_eq!(matter["overdue"], true, "{matter}");
    let mid = matter["id"].as_str().unwrap();
    assert_eq!(
        refused(
            k,
            &w.drafter,
            "POST",
            &format!("/matters/{mid}/progress"),
            json!({"note": "过半", "percent": 150})
        ),
        (422, "percent_invalid".into(), "percent".into())
    );
    ok(
        k,
        &w.drafter,
        "POST",
        &format!("/matters/{mid}/progress"),
        json!({"note": "过半", "percent": 60}),
        200,
    );
    let overdue = ok(
        k,
        &w.clerk,
        "GET",
        "/matters?overdue=true",
        Value::Null,
        200,
    );
    assert_eq!(overdue["records"].as_array().unwrap().len(), 1, "{overdue}");
    ok(
        k,
        &w.drafter,
        "POST",
        &format!("/matters/{mid}/complete"),
        json!({"note": "已整改"}),
        200,
    );
    assert_eq!(
        refused(
            k,
            &w.drafter,
            "POST",
            &format!("/matters/{mid}/progress"),
            json!({"note": "再报"})
        )
        .1,
        "matter_closed"
    );
    assert!(
        ok(
            k,
            &w.clerk,
            "GET",
            "/matters?overdue=true",
            Value::Null,
            200
        )["records"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// `tianshan up` installs office with a year of documents: the region's
/// administration has issued documents and every prefecture's has an
/// incoming box.
#[test]
fn tianshan_up_installs_office_with_demo_data() {
    let dir = tempfile::tempdir().unwrap();
    let k = TestKernel::start_demo(dir.path());
    let issued = ok(&k, &k.token, "GET", "/outgoing?limit=5", Value::Null, 200);
    assert!(
        issued["total"].as_u64().unwrap() >= 48,
        "{}",
        issued["total"]
    );
    let no = issued["records"][0]["data"]["no"].as_str().unwrap();
    assert!(no.contains('〔') && no.ends_with('号'), "{no}");
    let boxed = ok(&k, &k.token, "GET", "/incoming?limit=5", Value::Null, 200);
    assert!(
        boxed["total"].as_u64().unwrap() >= 14 * 10,
        "{}",
        boxed["total"]
    );
    let open = ok(
        &k,
        &k.token,
        "GET",
        "/incoming?status=handling&limit=5",
        Value::Null,
        200,
    );
    assert!(open["total"].as_u64().unwrap() > 0);
    let found = ok(&k, &k.token, "GET", "/search?q=节能", Value::Null, 200);
    assert!(!found["results"].as_array().unwrap().is_empty());
    let notices = ok(&k, &k.token, "GET", "/notices", Value::Null, 200);
    assert!(
        !notices["records"].as_array().unwrap().is_empty(),
        "{notices}"
    );
}

/// 出差代理: the checker away today hands 核稿 to the colleague he named,
/// for this document and not for the ones before; the refusals; back
/// from his trip, the next step is his again.
#[test]
fn an_approver_away_hands_his_steps_to_his_stand_in() {
    let w = office(TestKernel::start());
    let k = &w.k;
    let me = |token: &str, method: &str, body: Value| {
        let body = (!body.is_null()).then(|| body.to_string().into_bytes());
        k.request(method, "/api/v1/me/delegation", Some(token), body)
    };
    let refusal_of = |(status, out): (u16, Value)| {
        assert_eq!(status, 422, "{out}");
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        (text(&out["error"]["code"]), text(&out["error"]["field"]))
    };
    let today = region_day(0);
    // The refusals, each with its own code (the page says it in Chinese):
    // oneself, someone of another unit, nobody, backwards, too long,
    // already over, no such day.
    for (body, code, field) in [
        (
            json!({"delegate": "checker.a", "from": today, "until": today}),
            "delegation_self",
            "delegate",
        ),
        (
            json!({"delegate": "member.b", "from": today, "until": today}),
            "delegation_not_colleague",
            "delegate",
        ),
        (
            json!({"delegate": "nobody", "from": today, "until": today}),
            "approval_unknown_user",
            "delegate",
        ),
        (
            json!({"delegate": "colleague.a", "from": today, "until": region_day(-1)}),
            "delegation_days_order",
            "until",
        ),
        (
            json!({"delegate": "colleague.a", "from": today, "until": region_day(200)}),
            "delegation_too_long",
            "until",
        ),
        (
            json!({"delegate": "colleague.a", "from": region_day(-3), "until": region_day(-2)}),
            "delegation_days_over",
            "until",
        ),
        (
            json!({"delegate": "colleague.a", "from": "2026-02-30", "until": today}),
            "date_invalid",
            "from",
        ),
    ] {
        assert_eq!(
            refusal_of(me(&w.checker, "PUT", body.clone())),
            (code.to_string(), field.to_string()),
            "{body}"
        );
    }
    let (_, out) = me(
        &w.checker,
        "PUT",
        json!({"delegate": "colleague.a", "from": today, "until": region_day(200)}),
    );
    assert_eq!(out["error"]["params"]["max"], "180", "{out}");
    let (status, set) = me(
        &w.checker,
        "PUT",
        json!({"delegate": "colleague.a", "from": today, "until": region_day(2), "note": "赴京出差"}),
    );
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["delegation"]["active"], true, "{set}");
    assert_eq!(set["delegation"]["delegate_name"], "colleague.a");

    let d = ok(k, &w.drafter, "POST", "/outgoing", draft_body(&w), 201);
    let approval = through_review_until_checking(&w, d["id"].as_str().unwrap());
    // 核稿 is the colleague's, not the checker's.
    wait_for("the stand-in's to-do", || {
        pending(k, &w.colleague)
            .contains(&approval)
            .then_some(Value::Null)
    });
    assert!(!pending(k, &w.checker).contains(&approval));
    let (_, detail) = k.request(
        "GET",
        &format!("/api/v1/approvals/{approval}"),
        Some(&w.colleague),
        None,
    );
    assert!(
        detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["action"] == "delegated"),
        "{detail}"
    );
    approve(k, &w.colleague, &approval);
    approve(k, &w.cosigners[0], &approval);

    // Back: the next document's 核稿 is the checker's again.
    let (status, _) = me(&w.checker, "DELETE", Value::Null);
    assert_eq!(status, 204);
    assert!(me(&w.checker, "GET", Value::Null).1["delegation"].is_null());
    let mut second = draft_body(&w);
    second["title"] = json!("关于第二批次的通知");
    let d2 = ok(k, &w.drafter, "POST", "/outgoing", second, 201);
    let approval2 = through_review_until_checking(&w, d2["id"].as_str().unwrap());
    approve(k, &w.checker, &approval2);
}

/// Submits and passes 部门审核: the document waits at 核稿.
fn through_review_until_checking(w: &Office, id: &str) -> String {
    let submitted = ok(
        &w.k,
        &w.drafter,
        "POST",
        &format!("/outgoing/{id}/submit"),
        Value::Null,
        201,
    );
    let approval = submitted["approval"]["id"].as_str().unwrap().to_string();
    approve(&w.k, &w.reviewer, &approval);
    approval
}

/// 审批人去重, once the platform administrator turns it on for the flow:
/// a director who is also the office's clerk signs (签发) and 复核 passes
/// for him, so the document is issued without his signing twice; with it
/// off (the default) the same document would wait at 复核.
#[test]
fn the_same_approver_twice_in_a_row_signs_once_when_the_flow_says_so() {
    let w = office(TestKernel::start());
    let k = &w.k;
    let both = person(
        k,
        "director2.a",
        &w.unit_a,
        &[("office.signer", &w.unit_a), ("office.clerk", &w.unit_a)],
    );
    let policy = |on: bool| {
        k.request(
            "PUT",
            "/api/v1/approval-flows/office/outgoing",
            None,
            Some(json!({"auto_approve_repeat": on}).to_string().into_bytes()),
        )
    };
    let (status, flow) = policy(true);
    assert_eq!(
        (status, &flow["auto_approve_repeat"]),
        (200, &json!(true)),
        "{flow}"
    );
    assert_eq!(
        flow["allow_self_approval"], false,
        "the other setting stays"
    );
    assert_eq!(
        k.request(
            "PUT",
            "/api/v1/approval-flows/office/outgoing",
            None,
            Some(b"{}".to_vec())
        )
        .0,
        422,
        "a policy names what it sets"
    );

    let run = |title: &str| {
        let mut body = draft_body(&w);
        body["title"] = json!(title);
        let d = ok(k, &w.drafter, "POST", "/outgoing", body, 201);
        let id = d["id"].as_str().unwrap().to_string();
        let approval = through_review_until_checking(&w, &id);
        for who in [&w.checker, &w.cosigners[0], &w.cosigners[1]] {
            approve(k, who, &approval);
        }
        approve(k, &both, &approval);
        (id, approval)
    };
    let (id, approval) = run("关于去重审批的通知");
    wait_for("issued without a second signature", || {
        let d = document(k, &w.drafter, &id);
        (d["data"]["status"] == "issued").then_some(d)
    });
    let (_, detail) = k.request(
        "GET",
        &format!("/api/v1/approvals/{approval}"),
        Some(&both),
        None,
    );
    assert!(
        detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["action"] == "auto_approved"),
        "{detail}"
    );

    // Off again: 复核 waits for a person.
    assert_eq!(policy(false).0, 200);
    let (id2, approval2) = run("关于不去重审批的通知");
    wait_for("复核 on the clerk's list", || {
        pending(k, &w.clerk)
            .contains(&approval2)
            .then_some(Value::Null)
    });
    assert_eq!(document(k, &w.drafter, &id2)["data"]["status"], "reviewing");
}

/// 催办: the drafter presses the step's approver, whose to-do shows it;
/// once an hour; nobody else may.
#[test]
fn the_drafter_urges_and_the_approver_sees_it() {
    let w = office(TestKernel::start());
    let k = &w.k;
    let d = ok(k, &w.drafter, "POST", "/outgoing", draft_body(&w), 201);
    let submitted = ok(
        k,
        &w.drafter,
        "POST",
        &format!("/outgoing/{}/submit", d["id"].as_str().unwrap()),
        Value::Null,
        201,
    );
    let approval = submitted["approval"]["id"].as_str().unwrap().to_string();
    let urge = |who: &str| {
        act_on(
            k,
            who,
            &approval,
            "urge",
            json!({"comment": "明天印发，请尽快审核"}),
        )
    };
    let (status, out) = urge(&w.reviewer);
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (403, Some("approval_applicant_action")),
        "an approver does not urge: {out}"
    );
    let (status, out) = urge(&w.drafter);
    assert_eq!(status, 200, "{out}");
    let (status, out) = urge(&w.drafter);
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (409, Some("approval_urged_recently")),
        "once an hour: {out}"
    );
    let (_, todos) = k.request("GET", "/api/v1/todos?kind=pending", Some(&w.reviewer), None);
    let item = todos["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["approval"]["id"] == approval.as_str())
        .unwrap_or_else(|| panic!("{todos}"))
        .clone();
    assert!(item["urged_at"].as_i64().unwrap() > 0, "{item}");
    let (_, detail) = k.request(
        "GET",
        &format!("/api/v1/approvals/{approval}"),
        Some(&w.reviewer),
        None,
    );
    assert!(
        detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["action"] == "urged" && t["comment"] == "明天印发，请尽快审核"),
        "{detail}"
    );
}

/// 签收 and 反签收: of two checkers, the one who claims 核稿 has it alone
/// until he gives it back; a 会签 step is not claimed.
#[test]
fn a_checker_claims_the_step_and_gives_it_back() {
    let w = office(TestKernel::start());
    let k = &w.k;
    let second = person(k, "checker2.a", &w.unit_a, &[("office.checker", &w.unit_a)]);
    let d = ok(k, &w.drafter, "POST", "/outgoing", draft_body(&w), 201);
    let approval = through_review_until_checking(&w, d["id"].as_str().unwrap());
    for who in [&w.checker, &second] {
        wait_for("both checkers' to-dos", || {
            pending(k, who).contains(&approval).then_some(Value::Null)
        });
    }
    let act =
        |who: &str, action: &str| act_on(k, who, &approval, action, json!({"comment": "同意"}));
    assert_eq!(act(&w.checker, "claim").0, 200);
    assert!(
        !pending(k, &second).contains(&approval),
        "off the other's list"
    );
    let (status, out) = act(&second, "approve");
    assert_eq!(status, 409, "claimed by a colleague: {out}");
    assert_eq!(out["error"]["code"], "approval_claimed", "{out}");
    assert_eq!(act(&second, "claim").0, 409);
    assert_eq!(act(&w.checker, "unclaim").0, 200);
    assert!(pending(k, &second).contains(&approval), "back on his list");
    let (status, out) = act(&w.checker, "unclaim");
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (409, Some("approval_not_claimed")),
        "nothing is claimed: {out}"
    );
    assert_eq!(act(&second, "claim").0, 200);
    assert_eq!(act(&second, "approve").0, 200);
    // 会签: every co-signer signs; nobody claims it.
    wait_for("the co-signer's to-do", || {
        pending(k, &w.cosigners[0])
            .contains(&approval)
            .then_some(Value::Null)
    });
    assert_eq!(act(&w.cosigners[0], "claim").0, 409);
    let (_, detail) = k.request(
        "GET",
        &format!("/api/v1/approvals/{approval}"),
        Some(&second),
        None,
    );
    let actions: Vec<&str> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"claimed") && actions.contains(&"unclaimed"),
        "{detail}"
    );
}

/// 委派: the checker asks a colleague's opinion on 核稿; the colleague
/// approves (gives it) and the task is the checker's again, who decides.
#[test]
fn a_checker_delegates_for_an_opinion_and_still_decides() {
    let w = office(TestKernel::start());
    let k = &w.k;
    let d = ok(k, &w.drafter, "POST", "/outgoing", draft_body(&w), 201);
    let approval = through_review_until_checking(&w, d["id"].as_str().unwrap());
    wait_for("the checker's to-do", || {
        pending(k, &w.checker)
            .contains(&approval)
            .then_some(Value::Null)
    });
    let act = |who: &str, action: &str, body: Value| act_on(k, who, &approval, action, body);
    assert_eq!(
        act(&w.checker, "delegate", json!({"to": "drafter.a"})).0,
        422,
        "not to the applicant"
    );
    let (status, out) = act(
        &w.checker,
        "delegate",
        json!({"to": "colleague.a", "comment": "请把关文字"}),
    );
    assert_eq!(status, 200, "{out}");
    assert!(pending(k, &w.colleague).contains(&approval));
    assert!(!pending(k, &w.checker).contains(&approval));
    assert_eq!(act(&w.checker, "approve", json!({})).0, 409, "lent out");
    assert_eq!(
        act(
            &w.colleague,
            "reject",
            json!({"comment": "不行", "to_step": 0})
        )
        .0,
        409,
        "a delegate gives an opinion, not the decision"
    );
    assert_eq!(
        act(&w.colleague, "approve", json!({"comment": "文字已核"})).0,
        200
    );
    // Back with the checker; the step has not moved.
    assert!(pending(k, &w.checker).contains(&approval));
    assert!(!pending(k, &w.cosigners[0]).contains(&approval));
    approve(k, &w.checker, &approval);
    wait_for("会签 reached", || {
        pending(k, &w.cosigners[0])
            .contains(&approval)
            .then_some(Value::Null)
    });
    let (_, detail) = k.request(
        "GET",
        &format!("/api/v1/approvals/{approval}"),
        Some(&w.checker),
        None,
    );
    let actions: Vec<&str> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"delegated_out") && actions.contains(&"delegate_resolved"),
        "{detail}"
    );
}

/// 抄送 with 待阅 / 已阅: the drafter copies the approval to a colleague,
/// whose copied list counts it unread until he marks it read.
#[test]
fn a_copy_is_unread_until_read() {
    let w = office(TestKernel::start());
    let k = &w.k;
    let d = ok(k, &w.drafter, "POST", "/outgoing", draft_body(&w), 201);
    let approval = through_review_until_checking(&w, d["id"].as_str().unwrap());
    let act = |who: &str, action: &str, body: Value| act_on(k, who, &approval, action, body);
    let (status, out) = act(&w.drafter, "copy-to", json!({"users": ["colleague.a"]}));
    assert_eq!(status, 200, "{out}");
    let copied = |who: &str| {
        k.request("GET", "/api/v1/todos?kind=copied", Some(who), None)
            .1
    };
    let list = copied(&w.colleague);
    assert_eq!(list["unread"], 1, "{list}");
    assert!(list["items"][0]["read_at"].is_null(), "{list}");
    assert_eq!(
        act(&w.reviewer, "read", json!({})).0,
        403,
        "not copied to him"
    );
    assert_eq!(
        act(&w.member_b, "read", json!({})).0,
        404,
        "another county's"
    );
    assert_eq!(act(&w.colleague, "read", json!({})).0, 200);
    assert_eq!(
        act(&w.colleague, "read", json!({})).0,
        200,
        "reading twice is fine"
    );
    let list = copied(&w.colleague);
    assert_eq!(list["unread"], 0, "{list}");
    assert!(list["items"][0]["read_at"].as_i64().unwrap() > 0, "{list}");
    let (_, detail) = k.request(
        "GET",
        &format!("/api/v1/approvals/{approval}"),
        Some(&w.drafter),
        None,
    );
    let reads = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["action"] == "read")
        .count();
    assert_eq!(reads, 1, "{detail}");
    assert!(
        detail["copies"][0]["read_at"].as_i64().unwrap() > 0,
        "{detail}"
    );
}
