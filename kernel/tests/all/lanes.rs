//! A local module stays local (issue 10.3), applicants do not approve
//! themselves (10.8), and a plugin deletes only files that are its own
//! (10.9), each reproduced as the attack that worked before.
//!
//! The lane attack runs on the demo start (`tianshan up`): the real region
//! tree, the real `assets` system with its register, and `demo.urumqi`, a
//! prefecture administrator. The module it installs is the `notes` test
//! plugin repacked as `vehicles`: `/publish` sends any event of its own
//! prefix with any payload, and its event handler files every event it
//! receives, with the org the kernel stamped on it, in its `inbox`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::identity::{person, two_counties};
use crate::support::{DEMO_PASSWORD, TestKernel, packages, with_manifest};

const URUMQI: &str = "org-650100";
const KASHGAR: &str = "org-653100";

fn send(k: &TestKernel, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = (!body.is_null()).then(|| body.to_string().into_bytes());
    k.request(method, path, Some(token), body)
}

/// As the platform administrator, acting at `org`.
fn admin_at(k: &TestKernel, org: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = (!body.is_null()).then(|| body.to_string().into_bytes());
    let (status, bytes, _) = k.raw(method, path, None, body, &[("X-Tianshan-Org", org)]);
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// `notes` repacked under another id, subscribing to `subscribes`.
fn module(id: &str, subscribes: &[&str]) -> Vec<u8> {
    with_manifest(&packages().bytes("notes"), |m| {
        m.id = id.into();
        m.subscribes = subscribes.iter().map(|s| s.to_string()).collect();
        m.jobs.clear();
    })
}

fn wait_for(what: &str, mut done: impl FnMut() -> Option<Value>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = done() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// Cards named like `name`, anywhere in the region.
fn cards_named(k: &TestKernel, name: &str) -> Vec<Value> {
    let (status, page) = k.get(&format!(
        "/api/v1/p/assets/cards?q={}&limit=50",
        urlencode(name)
    ));
    assert_eq!(status, 200, "{page}");
    page["records"].as_array().cloned().unwrap_or_default()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A booked, unlocked card of `org`'s subtree.
fn free_card(k: &TestKernel, org: &str) -> String {
    let (status, page) = k.get(&format!(
        "/api/v1/p/assets/cards?state=booked&org={org}&limit=50"
    ));
    assert_eq!(status, 200, "{page}");
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["data"]["locked_by"].is_null() && c["org"] != org)
        .or_else(|| {
            page["records"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["data"]["locked_by"].is_null())
        })
        .unwrap_or_else(|| panic!("no free booked card in {org}: {page}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn card(k: &TestKernel, id: &str) -> Value {
    let (status, out) = k.get(&format!("/api/v1/p/assets/cards/{id}"));
    assert_eq!(status, 200, "{out}");
    out["card"].clone()
}

#[test]
fn a_prefecture_module_stays_in_its_prefecture() {
    let dir = tempfile::tempdir().unwrap();
    let k = TestKernel::start_demo(dir.path());
    let urumqi = k.login("demo.urumqi", DEMO_PASSWORD);
    let vehicles = module("vehicles", &["assets.*", "notes.*"]);

    // A prefecture admin cannot take the id of the region's own system …
    let (status, bytes, _) = k.raw(
        "POST",
        &format!("/api/v1/plugins?org={URUMQI}"),
        Some(&urumqi),
        Some(vehicles.clone()),
        &[],
    );
    let out: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(status, 403, "{out}");
    assert_eq!(out["error"]["code"], "plugin_id_reserved", "{out}");
    assert_eq!(out["error"]["field"], "id", "{out}");
    // … and nobody can take a name the kernel uses itself.
    let kernel = module("kernel", &[]);
    let (status, out) = k.install(kernel);
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["field"], "id", "{out}");

    // The platform administrator may put it at Ürümqi (in place of the
    // bundled system `up` installed); Ürümqi's admin then runs it and
    // grants it what it asks for, but only for its own lane.
    let (status, out) = k.request("DELETE", "/api/v1/plugins/vehicles", None, None);
    assert!(status < 300, "{status} {out}");
    let (status, bytes, _) = k.raw(
        "POST",
        &format!("/api/v1/plugins?org={URUMQI}"),
        None,
        Some(vehicles.clone()),
        &[],
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&bytes));
    let (status, out) = send(
        &k,
        &urumqi,
        "PUT",
        "/api/v1/plugins/vehicles/subscriptions",
        json!({"topics": ["assets.*", "notes.*"], "beyond_subtree": true}),
    );
    assert_eq!(status, 403, "events beyond the subtree: {out}");
    let (status, out) = send(
        &k,
        &urumqi,
        "PUT",
        "/api/v1/plugins/vehicles/subscriptions",
        json!({"topics": ["assets.*", "notes.*"]}),
    );
    assert_eq!(status, 200, "{out}");
    // New code under the reserved id is the platform's decision too.
    let (status, bytes, _) = k.raw(
        "PUT",
        "/api/v1/plugins/vehicles",
        Some(&urumqi),
        Some(crate::support::with_version(&vehicles, "0.2.0")),
        &[],
    );
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&bytes));

    // The module cannot name Kashgar as the event's org …
    let (status, out) = send(
        &k,
        &urumqi,
        "POST",
        "/api/v1/p/vehicles/publish",
        json!({"topic": "vehicles.purchased", "org": KASHGAR, "payload": {"name": "x"}}),
    );
    assert!(status >= 400, "{status} {out}");

    // … and naming it in the payload does not carry `assets` there: the
    // region-wide system acts on the event within the org the kernel
    // stamped (Ürümqi), so the forged ¥999,999 Kashgar card never appears,
    // while an honest purchase lands at Ürümqi.
    let purchase = |name: &str, org: Option<&str>| {
        let mut payload = json!({
            "name": name, "category": "A020301", "acquired_on": "2024-03-15",
            "original_value_yuan": "999999", "plate": "新A·12345",
        });
        if let Some(org) = org {
            payload["org"] = json!(org);
        }
        let (status, out) = send(
            &k,
            &urumqi,
            "POST",
            "/api/v1/p/vehicles/publish",
            json!({"topic": "vehicles.purchased", "payload": payload}),
        );
        assert_eq!(status, 200, "{out}");
    };
    purchase("伪造车辆甲", Some(KASHGAR));
    purchase("本地车辆乙", None);
    let honest = wait_for("the honest purchase's card", || {
        cards_named(&k, "本地车辆乙").into_iter().next()
    });
    assert_eq!(honest["org"], URUMQI, "{honest}");
    assert!(
        cards_named(&k, "伪造车辆甲").is_empty(),
        "a Kashgar card from Ürümqi's module"
    );

    // A scrap approval for a Kashgar card opens nothing; one for an
    // Ürümqi card opens its disposal (and locks it) as before.
    let theirs = free_card(&k, KASHGAR);
    let ours = free_card(&k, URUMQI);
    for id in [&theirs, &ours] {
        let (status, out) = send(
            &k,
            &urumqi,
            "POST",
            "/api/v1/p/vehicles/publish",
            json!({"topic": "vehicles.scrap_approved", "payload": {"card_id": id, "reason": "报废"}}),
        );
        assert_eq!(status, 200, "{out}");
    }
    wait_for("the Ürümqi card's disposal", || {
        let c = card(&k, &ours);
        (!c["data"]["locked_by"].is_null()).then_some(c)
    });
    let c = card(&k, &theirs);
    assert!(
        c["data"]["locked_by"].is_null(),
        "Ürümqi's module locked a Kashgar card: {c}"
    );

    // The module hears its own prefecture's events, not Kashgar's: a
    // region-wide plugin's events are stamped where they happened.
    k.install_ok("notes");
    for (org, title) in [(KASHGAR, "喀什的笔记"), (URUMQI, "乌鲁木齐的笔记")] {
        let (status, out) = admin_at(
            &k,
            org,
            "POST",
            "/api/v1/p/notes/notes",
            json!({ "title": title }),
        );
        assert_eq!(status, 201, "{out}");
    }
    let inbox = wait_for("Ürümqi's note reaching the module", || {
        let (status, inbox) = send(&k, &urumqi, "GET", "/api/v1/p/vehicles/inbox", Value::Null);
        assert_eq!(status, 200, "{inbox}");
        let heard = inbox
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["data"]["topic"] == "notes.created" && e["data"]["org"] == URUMQI);
        heard.then_some(inbox)
    });
    // The dispatcher takes deliveries in event order; Kashgar's note came
    // first, so had it been delivered it would be here by now.
    for entry in inbox.as_array().unwrap() {
        assert_ne!(entry["data"]["org"], KASHGAR, "{inbox}");
        assert_ne!(entry["data"]["org"], "org-650000", "{inbox}");
    }
}

#[test]
fn an_id_belongs_to_its_org_until_the_platform_decides() {
    let k = TestKernel::start();
    let w = two_counties(&k);
    let admin_a = person(&k, "lane.admin.a", &w.unit_a, &[("org-admin", &w.county_a)]);
    let admin_b = person(&k, "lane.admin.b", &w.unit_b, &[("org-admin", &w.county_b)]);
    let parking = module("parking", &[]);
    let install = |token: &str, org: &str| {
        let (status, bytes, _) = k.raw(
            "POST",
            &format!("/api/v1/plugins?org={org}"),
            Some(token),
            Some(parking.clone()),
            &[],
        );
        (
            status,
            serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
        )
    };
    let (status, out) = install(&admin_a, &w.county_a);
    assert_eq!(status, 201, "{out}");
    let (status, out) = send(
        &k,
        &admin_a,
        "DELETE",
        "/api/v1/plugins/parking",
        Value::Null,
    );
    assert_eq!(status, 204, "{out}");
    // County B installing the same id after the uninstall would inherit
    // county A's records, files and flows keyed by it: refused.
    let (status, out) = install(&admin_b, &w.county_b);
    assert_eq!(status, 403, "{out}");
    assert_eq!(out["error"]["code"], "plugin_id_reserved", "{out}");
    // County A may have it back; the platform administrator may move it.
    let (status, out) = install(&admin_a, &w.county_a);
    assert_eq!(status, 201, "{out}");
    let (status, _) = k.request("DELETE", "/api/v1/plugins/parking", None, None);
    assert_eq!(status, 204);
    let (status, out) = install(&k.token, &w.county_b);
    assert_eq!(status, 201, "{out}");
}

#[test]
fn a_plugin_deletes_only_its_own_files_or_those_attached_to_its_records() {
    let k = TestKernel::start();
    let w = two_counties(&k);
    k.install_ok("notes");
    // Every user is a member of their unit: uploads files, uses notes.
    let member = person(&k, "lane.member", &w.unit_a, &[]);
    let upload = |name: &str| {
        let (status, bytes, _) = k.raw(
            "POST",
            &format!("/api/v1/files?name={name}"),
            Some(&member),
            Some(b"a scan".to_vec()),
            &[("Content-Type", "text/plain")],
        );
        let out: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, 201, "{out}");
        out["file"]["id"].as_str().unwrap().to_string()
    };
    let loose = upload("loose.txt");
    let attached = upload("attached.txt");
    // The plugin sees the user's upload in the caller's reach …
    let (status, _) = send(
        &k,
        &member,
        "GET",
        &format!("/api/v1/p/notes/files/{loose}"),
        Value::Null,
    );
    assert_eq!(status, 200);
    // … but deleting one that none of its records names is refused.
    let (status, out) = send(
        &k,
        &member,
        "DELETE",
        &format!("/api/v1/p/notes/files/{loose}"),
        Value::Null,
    );
    assert!(status >= 400, "{status} {out}");
    let (status, out) = send(
        &k,
        &member,
        "GET",
        &format!("/api/v1/files/{loose}/meta"),
        Value::Null,
    );
    assert_eq!(status, 200, "the upload is still there: {out}");
    // Once a record of the plugin names it, the plugin may delete it.
    let (status, out) = send(
        &k,
        &member,
        "POST",
        "/api/v1/p/notes/notes",
        json!({"title": "扫描件", "attachment": attached, "publish": false}),
    );
    assert_eq!(status, 201, "{out}");
    let (status, out) = send(
        &k,
        &member,
        "DELETE",
        &format!("/api/v1/p/notes/files/{attached}"),
        Value::Null,
    );
    assert_eq!(status, 204, "{out}");
    // Its own files it deletes as before.
    let (status, bytes, _) = k.raw(
        "POST",
        "/api/v1/p/notes/files?name=own.txt",
        Some(&member),
        Some(b"own".to_vec()),
        &[("Content-Type", "text/plain")],
    );
    let own: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, 201, "{own}");
    let (status, out) = send(
        &k,
        &member,
        "DELETE",
        &format!("/api/v1/p/notes/files/{}", own["id"].as_str().unwrap()),
        Value::Null,
    );
    assert_eq!(status, 204, "{out}");
}

#[test]
fn an_applicant_never_approves_their_own_application() {
    let k = TestKernel::start();
    let w = two_counties(&k);
    let unit_p = crate::identity::org(
        &k,
        &w.prefecture,
        "unit",
        &tianshan_kernel::identity::orgs::unified_social_credit_code("650100", 1),
        "乌鲁木齐市机关事务管理局",
    );
    k.install_ok("approver");
    // The applicant is the only officer of their county: the first step
    // would have had them approve their own purchase.
    let applicant = person(
        &k,
        "sod.applicant",
        &w.unit_a,
        &[("approver.officer", &w.county_a)],
    );
    let director = person(
        &k,
        "sod.director",
        &unit_p,
        &[("approver.director", &w.prefecture)],
    );
    let county_admin = person(&k, "sod.admin", &w.unit_a, &[("org-admin", &w.county_a)]);
    let start = || {
        send(
            &k,
            &applicant,
            "POST",
            "/api/v1/p/approver/requests",
            json!({"title": "处置笔记本电脑", "amount": 6055}),
        )
    };
    let (status, out) = start();
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["code"], "approval_applicant_only", "{out}");

    // With a second officer the request starts, and the applicant has no
    // task on it: their approve is refused.
    let officer = person(
        &k,
        "sod.officer",
        &w.unit_a,
        &[("approver.officer", &w.county_a)],
    );
    let (status, out) = start();
    assert_eq!(status, 201, "{out}");
    let approval = out["approval"]["id"].as_str().unwrap().to_string();
    let act = |token: &str, action: &str, body: Value| {
        send(
            &k,
            token,
            "POST",
            &format!("/api/v1/approvals/{approval}/{action}"),
            body,
        )
    };
    let (status, out) = act(&applicant, "approve", json!({}));
    assert_eq!(status, 403, "{out}");
    let (status, out) = act(&officer, "approve", json!({}));
    assert_eq!(status, 200, "{out}");
    // Nor can a later approver hand them a task on it.
    let (status, out) = act(&director, "add-approver", json!({"user": "sod.applicant"}));
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["code"], "approval_applicant_only", "{out}");
    let (status, out) = act(&director, "reassign", json!({"to": "sod.applicant"}));
    assert_eq!(status, 422, "{out}");

    // Only the platform administrator may allow it for a flow (a unit of
    // one person); a county admin may not, nor see the setting.
    let policy = json!({"allow_self_approval": true});
    let (status, _) = send(
        &k,
        &county_admin,
        "PUT",
        "/api/v1/approval-flows/approver/purchase",
        policy.clone(),
    );
    assert_eq!(status, 403);
    let (status, _) = send(
        &k,
        &county_admin,
        "GET",
        "/api/v1/approval-flows",
        Value::Null,
    );
    assert_eq!(status, 403);
    let (status, out) = k.request(
        "PUT",
        "/api/v1/approval-flows/approver/purchase",
        None,
        Some(policy.to_string().into_bytes()),
    );
    assert_eq!(status, 200, "{out}");
    let (_, flows) = k.get("/api/v1/approval-flows");
    assert!(
        flows["flows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["plugin"] == "approver"
                && f["name"] == "purchase"
                && f["allow_self_approval"] == true),
        "{flows}"
    );
    // A plugin redefining its flow (every upgrade) leaves the setting be.
    let (status, out) = k.request(
        "PUT",
        "/api/v1/plugins/approver",
        None,
        Some(crate::support::with_version(
            &packages().bytes("approver"),
            "0.2.0",
        )),
    );
    assert_eq!(status, 200, "{out}");
    let (status, out) = start();
    assert_eq!(status, 201, "{out}");
    let approval = out["approval"]["id"].as_str().unwrap().to_string();
    let (status, out) = send(
        &k,
        &applicant,
        "POST",
        &format!("/api/v1/approvals/{approval}/approve"),
        json!({}),
    );
    assert_eq!(status, 200, "allowed for this flow: {out}");
}
