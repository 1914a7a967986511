//! Plugin pages are isolated from the viewer's session: sandboxed pages (an
//! opaque origin) that reach the API only through the portal's bridge, and
//! plugin answers that cannot speak for the kernel's origin. A hostile page
//! (tests/plugins/intruder/ui) opened by the platform administrator, and a
//! freshly generated plugin's page, in headless Chromium against a real
//! kernel; the answers' headers over plain HTTP.

use serde_json::{Value, json};

use crate::identity::{org, user};
use crate::portal::Browser;
use crate::support::{self, TestKernel};

fn skip_browser() -> bool {
    !crate::support::have(crate::support::Service::Browser)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn sign_in_as_admin(b: &Browser, k: &TestKernel) {
    b.goto(&format!("{}/", k.base));
    b.wait_displayed("#login-username");
    b.type_into("#login-username", "admin");
    b.type_into("#login-password", support::ADMIN_PASSWORD);
    b.click("#login-submit");
    b.wait_text("#user-name", "the admin's display name", |t| !t.is_empty());
}

/// Logs in with a cookie the way the portal does; the cookie pair and the
/// login answer.
fn cookie_login(k: &TestKernel) -> (String, Value) {
    let body = json!({"username": "admin", "password": support::ADMIN_PASSWORD});
    let (status, bytes, headers) = k.raw(
        "POST",
        "/api/v1/auth/login",
        Some(""),
        Some(body.to_string().into_bytes()),
        &[],
    );
    assert_eq!(status, 200);
    let cookie = header(&headers, "set-cookie")[0]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    (cookie, serde_json::from_slice(&bytes).unwrap())
}

/// The attack of issue 10: a plugin's page, opened by the platform
/// administrator, reads the session and grants a binding. Now the page has
/// an opaque origin and the portal's bridge refuses whatever is not its own
/// plugin's: it achieves nothing, and no binding is made.
#[test]
fn a_hostile_plugin_page_cannot_act_as_the_viewer() {
    if skip_browser() {
        return;
    }
    let k = TestKernel::start();
    k.install_ok("intruder");
    k.install_ok("hello");
    let prefecture = org(&k, "org-650000", "prefecture", "650100", "乌鲁木齐市");
    let county = org(&k, &prefecture, "county", "650102", "天山区");
    let unit = org(
        &k,
        &county,
        "unit",
        &tianshan_kernel::identity::orgs::unified_social_credit_code("650102", 1),
        "天山区机关事务服务中心",
    );
    let target = user(&k, "target", &unit);

    let b = Browser::start();
    sign_in_as_admin(&b, &k);
    b.click(r#"#menu .menu-entry[data-plugin="intruder"]"#);
    let mut report = Value::Null;
    b.in_plugin_frame(|| {
        b.wait_displayed(r#"#report[data-done="true"]"#);
        let text = b.script(
            "return document.getElementById('report').textContent",
            json!([]),
        );
        report = serde_json::from_str(text.as_str().unwrap()).unwrap();
    });
    eprintln!("the hostile page reports: {report:#}");

    assert_eq!(
        report["own_api"]["ok"], true,
        "the bridge serves the page's own plugin: {report}"
    );
    let cookie = &report["cookie"];
    assert!(
        cookie["ok"] == false || cookie["value"] == "",
        "the page read a cookie: {cookie}"
    );
    for attack in [
        "parent_document",
        "top_storage",
        "local_storage",
        "fetch_me",
        "fetch_csrf",
        "post_binding_cors",
        "bridge_binding",
        "bridge_users",
        "bridge_other_plugin",
        "bridge_traversal",
        "bridge_encoded_traversal",
        "bridge_absolute",
        "bridge_me_secret",
        "forged_nonce",
    ] {
        assert_eq!(
            report[attack]["ok"], false,
            "the hostile page achieved {attack}: {}",
            report[attack]
        );
    }
    // The one attack the page cannot observe (an opaque no-cors POST): the
    // kernel says what happened.
    let (status, out) = k.get(&format!("/api/v1/bindings?user={target}"));
    assert_eq!(status, 200, "{out}");
    let granted: Vec<&Value> = out["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["role"] == "platform-admin")
        .collect();
    assert!(granted.is_empty(), "the page granted a binding: {out}");
}

/// `tianshan plugin new`, build, pack, install: the template's page shows in
/// the portal, answers through the kit, shows the API's field error next
/// to the field, and the console stays clean (issue 16: it used to be an
/// inline script that the CSP blocked). Its application is an approvable
/// document on the kit's approval panel: submitted, shown with its steps
/// and timeline, withdrawn by the applicant (issue 12 item 5).
#[test]
fn a_new_plugins_page_works_in_the_portal_without_console_errors() {
    if skip_browser() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let tianshan = crate::tooling::tianshan;
    tianshan(work.path(), &["plugin", "new", "fresh-page"]);
    let dir = work.path().join("fresh-page");
    tianshan(&dir, &["plugin", "build"]);
    tianshan(&dir, &["plugin", "pack"]);
    let k = TestKernel::start();
    let (status, body) = k.install(std::fs::read(dir.join("fresh-page-0.1.0.tspkg")).unwrap());
    assert_eq!(status, 201, "{body}");
    // The template's flow is approved one level up: an applicant in a unit
    // and an administrator of its county, so the submit has an approver.
    let t = crate::identity::two_counties(&k);
    let applicant = crate::identity::person(&k, "applicant", &t.unit_a, &[]);
    crate::identity::person(&k, "county.admin", &t.unit_a, &[("org-admin", &t.county_a)]);

    let b = Browser::start();
    b.goto(&format!("{}/", k.base));
    b.wait_displayed("#login-username");
    b.type_into("#login-username", "applicant");
    b.type_into("#login-password", crate::identity::PASSWORD);
    b.click("#login-submit");
    b.wait_text("#user-name", "the applicant's name", |t| t == "applicant");
    // What the shell logged while signed out (its session check's 401).
    b.console_errors();
    b.click(r#"#menu .menu-entry[data-plugin="fresh-page"]"#);
    b.in_plugin_frame(|| {
        b.wait_text("#message", "the plugin's greeting", |t| {
            t.starts_with("Hello, ") && t.ends_with('!')
        });
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    b.in_plugin_frame(|| {
        // Saved empty: the API's error shows next to the field it names.
        b.click("#item-form button[type=submit]");
        b.wait_text(
            r#"#item-form [data-error-for="title"]"#,
            "the API's field error",
            |t| t.contains("title is required"),
        );
        b.type_into("#item-title", "第一项");
        b.type_into("#item-amount", "1,200.50");
        b.click("#item-form button[type=submit]");
        b.wait_text(
            r#"#item-form [data-error-for="needed_on"]"#,
            "the date the API wants",
            |t| t.contains("needed_on"),
        );
        b.script(
            "document.getElementById('item-needed-on').value = '2099-12-31'; return true;",
            json!([]),
        );
        b.click("#item-form button[type=submit]");
        // A numbered draft, and the list shows it with its status label.
        b.wait_text("#created", "the application created", |t| {
            t.contains("第一项") && t.contains("申〔")
        });
        b.wait_text("#list", "the list with the new draft", |t| {
            t.contains("第一项") && t.contains("草稿")
        });

        // Its page: the document, and the kit's approval panel, which has
        // no approval to show before the submit.
        b.click("#list a.button");
        b.wait_text("#doc-title", "the document", |t| t.contains("第一项"));
        b.wait_text("#approval", "the empty panel", |t| t.contains("暂无审批"));
        b.click("#submit");
        // Submitted: the panel shows it running at the county, what the
        // approver reads, the timeline and the applicant's withdraw.
        b.wait_text(
            "#approval .kit-approval-status",
            "the approval running",
            |t| t == "审批中",
        );
        b.wait_text("#approval .kit-steps", "the flow's step", |t| {
            t.contains("上级审批")
        });
        b.wait_text("#approval .kit-summary", "the summary", |t| {
            t.contains("1,200.50")
        });
        b.wait_text(
            r#"#approval .kit-timeline li[data-action="started"]"#,
            "the start in the timeline",
            |t| t.contains("applicant") && t.contains("发起申请"),
        );
        b.wait_text("#doc-timeline", "the record's own timeline", |t| {
            t.contains("创建") && t.contains("提交审批")
        });
        b.click(r#"#approval button[data-action="withdraw"]"#);
        b.wait_text("#kit-confirm", "the confirmation", |t| t.contains("撤回"));
        b.click("#kit-confirm-ok");
        b.wait_text(
            "#approval .kit-approval-status",
            "the approval withdrawn",
            |t| t == "已撤回",
        );
        b.wait_text(
            r#"#approval .kit-timeline li[data-action="withdrawn"]"#,
            "the withdrawal in the timeline",
            |t| t.contains("applicant"),
        );
    });
    // The outcome reaches the plugin (Setup's on_flow): the document
    // follows its approval.
    support::wait_for("the application withdrawn", || {
        let (_, list) = k.request(
            "GET",
            "/api/v1/p/fresh-page/applications",
            Some(&applicant),
            None,
        );
        (list["records"][0]["data"]["status"] == "withdrawn").then_some(list)
    });
    // The form's refusals above are the browser's 422s; nothing else.
    let errors: Vec<String> = b
        .console_errors()
        .into_iter()
        .filter(|e| !(e.contains("/fresh-page/applications") && e.contains("status of 422")))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

/// Issue 10 item 2 and item 9: a plugin's answer gets the kernel's CSP and
/// `nosniff`, loses every header that would speak for the kernel's origin,
/// and a flood of headers or a huge body is a named error, not a panic.
#[test]
fn plugin_answers_cannot_speak_for_the_kernels_origin() {
    let k = TestKernel::start();
    k.install_ok("intruder");

    let (status, _, headers) = k.raw("GET", "/api/v1/p/intruder/headers", None, None, &[]);
    assert_eq!(status, 200);
    for name in [
        "strict-transport-security",
        "clear-site-data",
        "www-authenticate",
        "location",
        "refresh",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "set-cookie",
        "alt-svc",
        "x-frame-options",
    ] {
        assert!(
            header(&headers, name).is_empty(),
            "{name} passed: {headers:?}"
        );
    }
    assert_eq!(
        header(&headers, "content-type"),
        ["application/json"],
        "one content type, the plugin's first"
    );
    let csp = header(&headers, "content-security-policy");
    assert_eq!(csp.len(), 1, "{headers:?}");
    assert!(csp[0].contains("sandbox") && csp[0].contains("default-src 'none'"));
    assert_eq!(header(&headers, "x-content-type-options"), ["nosniff"]);
    assert_eq!(header(&headers, "x-intruder"), ["kept"]);
    assert_eq!(header(&headers, "cache-control"), ["no-store"]);

    // HTML from a plugin's API is sandboxed too.
    let (status, _, headers) = k.raw("GET", "/api/v1/p/intruder/html", None, None, &[]);
    assert_eq!(status, 200);
    assert!(header(&headers, "content-security-policy")[0].contains("sandbox"));

    // A redirect stays within the plugin's own paths.
    let no_follow = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build(),
    );
    let redirect = |to: &str| {
        let url = format!("{}/api/v1/p/intruder/redirect?to={}", k.base, urlencode(to));
        let response = no_follow
            .get(&url)
            .header("Authorization", format!("Bearer {}", k.token))
            .call()
            .unwrap();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        (response.status().as_u16(), location)
    };
    assert_eq!(
        redirect("/ui/intruder/"),
        (302, Some("/ui/intruder/".into()))
    );
    for away in [
        "https://evil.example/",
        "/api/v1/bindings",
        "/ui/intruder/../hello/",
        "/api/v1/p/intruder-x/",
    ] {
        assert_eq!(redirect(away), (302, None), "{away} kept");
    }

    // 40,000 headers panicked a worker; now it is a clear refusal, and the
    // kernel serves on.
    let (status, body) = k.get("/api/v1/p/intruder/many-headers?n=40000");
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "plugin_bad_response", "{body}");
    let (status, body) = k.get("/api/v1/p/intruder/many-headers?n=20");
    assert_eq!(status, 200, "{body}");

    // A body past the cap is named as such.
    let (status, body) = k.get("/api/v1/p/intruder/big?mib=80");
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "plugin_response_too_large", "{body}");
    let (status, _, _) = k.raw("GET", "/api/v1/p/intruder/big?mib=1", None, None, &[]);
    assert_eq!(status, 200);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Plugin pages are sandboxed and the kit is served beside them; the shell
/// alone gets the CSRF token, and `/api/v1/me` never carries it.
#[test]
fn pages_are_sandboxed_and_only_the_shell_gets_the_csrf_token() {
    let k = TestKernel::start();
    k.install_ok("intruder");
    let (status, _, headers) = k.raw("GET", "/ui/intruder/", Some(""), None, &[]);
    assert_eq!(status, 200);
    let csp = header(&headers, "content-security-policy")[0];
    assert!(
        csp.starts_with("sandbox allow-scripts") && !csp.contains("allow-same-origin"),
        "{csp}"
    );
    assert!(
        csp.contains("script-src 'self';"),
        "no inline scripts: {csp}"
    );
    let (status, bytes, headers) = k.raw("GET", "/ui/kit/kit.js", Some(""), None, &[]);
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type")[0].contains("javascript"));
    assert_eq!(header(&headers, "access-control-allow-origin"), ["*"]);
    assert!(String::from_utf8_lossy(&bytes).contains("export function api("));
    assert_eq!(k.raw("GET", "/ui/kit/nope.js", Some(""), None, &[]).0, 404);

    let (cookie, login) = cookie_login(&k);
    let csrf = login["csrf_token"].as_str().unwrap();
    let (status, bytes, _) = k.raw("GET", "/api/v1/me", Some(""), None, &[("cookie", &cookie)]);
    assert_eq!(status, 200);
    let me: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(me.get("csrf_token").is_none(), "{me}");
    assert!(!String::from_utf8_lossy(&bytes).contains(csrf));

    let (status, bytes, headers) = k.raw(
        "GET",
        "/api/v1/auth/csrf",
        Some(""),
        None,
        &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
    );
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "cache-control"), ["no-store"]);
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["csrf_token"], csrf);
    // What a sandboxed page's request would be marked as.
    let (status, _, _) = k.raw(
        "GET",
        "/api/v1/auth/csrf",
        Some(""),
        None,
        &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
    );
    assert_eq!(status, 403);
    assert_eq!(
        k.raw("GET", "/api/v1/auth/csrf", Some(""), None, &[]).0,
        401
    );
}

/// The kit's two dictionaries have the same keys, and every text the
/// approval blocks use (`panel.*`, `todo.*`, `summary.*`, literal or built
/// from an action, a status or a timeline entry) is in both.
#[test]
fn kit_dictionaries_match_and_cover_the_approval_blocks() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let texts = |lang: &str| -> serde_json::Map<String, Value> {
        let raw =
            std::fs::read_to_string(root.join(format!("portal/kit/i18n/{lang}.json"))).unwrap();
        serde_json::from_str(&raw).unwrap()
    };
    let (zh, en) = (texts("zh-CN"), texts("en"));
    let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&zh), keys(&en), "the kit's dictionaries differ");
    let script = std::fs::read_to_string(root.join("portal/kit/kit.js")).unwrap();
    let mut used: Vec<String> = Vec::new();
    for prefix in ["'panel.", "'todo.", "'summary.", "'common."] {
        let mut rest = script.as_str();
        while let Some(at) = rest.find(prefix) {
            let tail = &rest[at + 1..];
            let end = tail.find('\'').unwrap();
            let key = &tail[..end];
            if !key.ends_with('.') {
                used.push(key.to_string());
            }
            rest = &tail[end..];
        }
    }
    for action in ["approve", "reject", "sendBack", "withdraw"] {
        used.push(format!("panel.{action}"));
        used.push(format!("panel.confirm.{action}"));
    }
    for status in ["running", "approved", "rejected", "withdrawn"] {
        used.push(format!("panel.status.{status}"));
    }
    for entry in [
        "started",
        "approved",
        "rejected",
        "returned",
        "withdrawn",
        "reassigned",
        "approver_added",
        "copied",
        "commented",
        "attached",
    ] {
        used.push(format!("panel.action.{entry}"));
    }
    assert!(used.len() > 40, "{used:?}");
    let missing: Vec<&String> = used.iter().filter(|k| !zh.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "texts the kit uses but lacks: {missing:?}"
    );
}
