//! The office plugin's pages in headless Chromium: a drafter at a unit
//! drafts an outgoing 通知 in Chinese, saves it, edits the body and saves
//! again, and submits it; 部门审核, 核稿, 会签 by two co-signers, 签发 and
//! 复核 approve it through the kernel's to-dos; the document shows issued
//! with its 发文字号 in the red-header preview, the diff view marks the
//! inserted sentence, the recipient unit's clerk finds it registered in the
//! incoming box and by a phrase of its body in search, the hit marked; and
//! the list speaks English when the portal does. The page texts' two
//! dictionaries are checked against each other and against the error codes
//! the plugin answers.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::identity::{PASSWORD, TwoCounties, person, two_counties};
use crate::support::{self, TestKernel, wait_for};

const P: &str = "/api/v1/p/office";

/// This year in the region (UTC+8), as the plugin numbers documents.
fn region_year() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 8 * 3600;
    // Howard Hinnant's civil-from-days, the year only.
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    yoe + era * 400 + i64::from(mp >= 10)
}

/// Approves the office to-do `who` holds (waiting for it), as the step's
/// approver would from the portal's to-do page; answers the step's name.
fn approve(k: &TestKernel, who: &str, comment: &str) -> String {
    let todos = wait_for("an office to-do", || {
        let (_, t) = k.request("GET", "/api/v1/todos?kind=pending", Some(who), None);
        t["items"]
            .as_array()?
            .iter()
            .find(|i| i["approval"]["plugin"] == "office")
            .cloned()
    });
    let id = todos["approval"]["id"].as_str().unwrap();
    let (status, out) = k.request(
        "POST",
        &format!("/api/v1/approvals/{id}/approve"),
        Some(who),
        Some(json!({ "comment": comment }).to_string().into_bytes()),
    );
    assert_eq!(status, 200, "approving: {out}");
    todos["step_name"].as_str().unwrap_or_default().to_string()
}

fn texts(path: &str) -> Map<String, Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let raw = std::fs::read_to_string(root.join(path)).unwrap();
    serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The codes the office plugin answers: the code literal of each
/// `with_code(`, `Error::new(<status>,`, `Error::invalid(<field>,`,
/// `required(<field>,` and `date_field(<field>,` in its sources.
fn plugin_error_codes() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/office/src");
    let is_code = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    let mut codes = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for marker in [
            "with_code(",
            "Error::new(",
            "invalid(",
            "required(",
            "date_field(",
        ] {
            for (at, _) in text.match_indices(marker) {
                if text[..at].ends_with("fn ") {
                    continue; // the helper's own definition
                }
                let rest = &text[at + marker.len()..];
                let call = &rest[..rest.find(';').unwrap_or(rest.len()).min(400)];
                let literals: Vec<&str> = call.split('"').skip(1).step_by(2).collect();
                // After a literal first argument (a status or a field) the
                // code is the next literal; else the first that is a code.
                let skip = usize::from(
                    marker != "with_code("
                        && marker != "Error::new("
                        && call.trim_start().starts_with('"'),
                );
                if marker == "Error::new("
                    && call
                        .split(',')
                        .next()
                        .is_none_or(|s| s.trim().parse::<u16>().is_err())
                {
                    continue;
                }
                if let Some(code) = literals.into_iter().skip(skip).find(|l| is_code(l)) {
                    codes.insert(code.to_string());
                }
            }
        }
    }
    codes
}

/// Both dictionaries have the same keys, and every code the plugin or the
/// issue names has words in each language (the page's or the kit's).
#[test]
fn office_texts_cover_every_code_in_both_languages() {
    let (zh, en) = (
        texts("plugins/office/ui/i18n/zh-CN.json"),
        texts("plugins/office/ui/i18n/en.json"),
    );
    let (kit_zh, kit_en) = (
        texts("kernel/portal/kit/i18n/zh-CN.json"),
        texts("kernel/portal/kit/i18n/en.json"),
    );
    let keys = |m: &Map<String, Value>| m.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(keys(&zh), keys(&en), "the two dictionaries differ");
    let mut codes = plugin_error_codes();
    assert!(codes.len() >= 25, "codes found: {codes:?}");
    for named in [
        "title_required",
        "title_too_long",
        "doc_type_unknown",
        "urgency_unknown",
        "classified_not_allowed",
        "organ_code_required",
        "signer_required",
        "copy_no_invalid",
        "recipients_required",
        "org_unknown",
        "publicity_unknown",
        "body_too_long",
        "not_a_draft",
        "document_archived",
        "not_issued",
        "stale",
        "revision_unknown",
        "incoming_state",
        "opinion_required",
        "note_required",
        "deadline_invalid",
        "lead_required",
        "readers_required",
        "not_a_reader",
        "category_required",
        "retention_unknown",
        "audience_unknown",
        "percent_invalid",
        "matter_closed",
        "query_required",
        "query_too_long",
        "received_on_invalid",
        "source_organ_required",
        "date_in_future",
    ] {
        codes.insert(named.to_string());
    }
    for (lang, own, kit) in [("zh-CN", &zh, &kit_zh), ("en", &en, &kit_en)] {
        let missing: Vec<&String> = codes
            .iter()
            .filter(|c| {
                let key = format!("code.{c}");
                !own.contains_key(&key) && !kit.contains_key(&key)
            })
            .collect();
        assert!(
            missing.is_empty(),
            "codes without {lang} words: {missing:?}"
        );
    }
    // Placeholders only where the plugin sends the param.
    for (code, param) in [
        ("incoming_state", "{status}"),
        ("not_a_draft", "{status}"),
        ("stale", "{revision}"),
    ] {
        for dict in [&zh, &en] {
            let words = dict[&format!("code.{code}")].as_str().unwrap();
            assert!(words.contains(param), "code.{code}: {words}");
        }
    }
}

/// The acceptance of the issue: an outgoing 通知 drafted, revised and
/// submitted in the browser, through five steps of review, issued with its
/// number and found registered and searchable at the recipient.
#[test]
fn an_outgoing_notice_drafted_in_the_browser_is_issued_and_received() {
    use crate::portal::Browser;
    if !support::have(support::Service::Browser) {
        return;
    }
    let k = TestKernel::start();
    let TwoCounties { unit_a, unit_b, .. } = two_counties(&k);
    k.install_ok("office");
    let drafter = person(&k, "drafter.a", &unit_a, &[]);
    let reviewer = person(&k, "head.a", &unit_a, &[("office.reviewer", &unit_a)]);
    let checker = person(&k, "checker.a", &unit_a, &[("office.checker", &unit_a)]);
    let cosigner_1 = person(&k, "cosign.a1", &unit_a, &[("office.cosigner", &unit_a)]);
    let cosigner_2 = person(&k, "cosign.a2", &unit_a, &[("office.cosigner", &unit_a)]);
    let signer = person(&k, "leader.a", &unit_a, &[("office.signer", &unit_a)]);
    let clerk_a = person(&k, "clerk.a", &unit_a, &[("office.clerk", &unit_a)]);
    let _clerk_b = person(&k, "clerk.b", &unit_b, &[("office.clerk", &unit_b)]);
    let year = region_year();
    let number = format!("新机管发〔{year}〕1号");
    let title = "关于开展公共机构节能宣传周活动的通知";
    let phrase = "绿色低碳生活方式";
    let first_body = "为深入贯彻节约能源法，现就开展节能宣传周活动通知如下。\n\
                      请各单位于12月20日前报送活动总结。";
    let added = "各单位要倡导简约适度、绿色低碳生活方式。";

    let sign_in = |b: &Browser, name: &str| {
        b.resize(1280, 900);
        b.goto(&format!("{}/", k.base));
        b.wait_displayed("#login-username");
        b.type_into("#login-username", name);
        b.type_into("#login-password", PASSWORD);
        b.click("#login-submit");
        b.wait_displayed("#user-name");
        b.console_errors();
    };
    let sign_out = |b: &Browser| {
        b.resize(1280, 900);
        b.goto(&format!("{}/", k.base));
        b.wait_displayed("#logout");
        b.click("#logout");
        b.wait_displayed("#login-username");
    };
    let no_sideways_scrolling = |b: &Browser, what: &str| {
        let overflow = b.script(
            "return document.documentElement.scrollWidth > window.innerWidth",
            json!([]),
        );
        assert_eq!(overflow, json!(false), "{what} scrolls sideways on a phone");
    };

    let b = Browser::start();
    sign_in(&b, "drafter.a");
    b.goto(&format!("{}/#/p/office/outgoing/new", k.base));
    let id = std::cell::RefCell::new(String::new());
    b.in_plugin_frame(|| {
        b.wait_displayed("#outgoing-form");
        b.wait_text("#outgoing-save", "the page's own words", |t| t == "保存");
        b.wait_text("#rh-no", "the number to come", |t| t == "（登记后编号）");
        // 通知, from the plugin's vocabulary.
        b.wait_until("the document types", || {
            b.script(
                "var s = document.querySelector('#f-doc_type'); \
                 var o = Array.prototype.find.call(s.options, function (x) { return x.text === '通知'; }); \
                 if (!o) return false; s.value = o.value; \
                 s.dispatchEvent(new Event('change', { bubbles: true })); return true;",
                json!([]),
            ) == true
        });
        b.type_into("#f-organ_mark", "新疆维吾尔自治区机关事务管理局文件");
        b.type_into("#f-organ_code", "新机管发");
        b.type_into("#f-title", title);
        b.type_into("#f-main_recipients", "各地（州、市）机关事务管理局");
        b.type_into("#f-body", first_body);
        b.type_into("#f-issuing_organ", "新疆维吾尔自治区机关事务管理局");
        b.type_into("#f-cc", "自治区发展改革委");
        b.type_into("#f-printing_organ", "新疆维吾尔自治区机关事务管理局办公室");
        // The recipient from the kernel's directory, as a chip.
        b.type_into("#f-distribute_to", "沙依巴克区机关事务");
        b.click(&format!(r#"li[role="option"][data-org-id="{unit_b}"]"#));
        b.wait_until("the matches closed once picked", || {
            b.script(
                "var l = document.querySelector('[data-field=distribute_to] .kit-org-options'); \
                 return !!l && l.hidden;",
                json!([]),
            ) == true
        });
        b.wait_text(
            &format!(r#"ul[data-orgs="distribute_to"] li[data-org-id="{unit_b}"]"#),
            "the recipient chosen",
            |t| t.contains("沙依巴克区机关事务服务中心"),
        );
        // The preview follows the form as it is typed.
        b.wait_text("#rh-mark", "the red organ mark", |t| {
            t == "新疆维吾尔自治区机关事务管理局文件"
        });
        b.wait_text("#rh-record", "the 版记", |t| {
            t.contains("抄送：自治区发展改革委。") && t.contains("印发")
        });
        b.click("#outgoing-save");
        b.wait_text("#save-state", "the first save", |t| t.starts_with("已保存"));
        let hash = b.script("return location.hash", json!([]));
        let hash = hash.as_str().unwrap();
        *id.borrow_mut() = hash
            .strip_prefix("#/outgoing/")
            .unwrap_or_else(|| panic!("not on the document's page: {hash}"))
            .to_string();
        // A second version: a sentence added to the body.
        b.type_into("#f-body", &format!("{first_body}\n{added}"));
        b.click("#outgoing-save");
        b.wait_until("two revisions listed", || {
            b.script(
                "return document.querySelectorAll('#revision-list tbody tr').length",
                json!([]),
            ) == 2
        });
        b.click("#diff-compare");
        b.wait_text("#diff ins", "the added sentence marked", |t| {
            t.contains("绿色低碳")
        });
        let colour = b.script(
            "var s = getComputedStyle(document.querySelector('#diff ins')); \
             return [s.textDecorationLine, s.color];",
            json!([]),
        );
        assert_eq!(colour[0], "underline", "{colour}");
        b.click("#outgoing-submit");
        b.wait_text("#doc-title", "in review", |t| t.contains("审核中"));
        b.wait_displayed("#outgoing-withdraw");
        b.wait_displayed("#approval .kit-steps");
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let id = id.into_inner();

    // 部门审核, 核稿, 会签 (both co-signers), 签发, 复核 — as the to-do page does.
    let mut steps = Vec::new();
    for (who, comment) in [
        (&reviewer, "同意"),
        (&checker, "文字已核"),
        (&cosigner_1, "会签同意"),
        (&cosigner_2, "会签同意"),
        (&signer, "签发"),
        (&clerk_a, "复核无误，登记分发"),
    ] {
        steps.push(approve(&k, who, comment));
    }
    assert!(steps[0].contains("部门审核"), "{steps:?}");
    assert!(
        steps[2].contains("会签") && steps[3].contains("会签"),
        "{steps:?}"
    );
    let issued = wait_for("the document issued", || {
        let (_, v) = k.request("GET", &format!("{P}/outgoing/{id}"), Some(&drafter), None);
        (v["document"]["data"]["status"] == "issued").then_some(v)
    });
    assert_eq!(
        issued["document"]["data"]["no"],
        number.as_str(),
        "{issued}"
    );

    // The drafter sees it issued, numbered, in the red header — on a phone
    // too. The portal is at the document's address already: load it anew.
    b.goto(&format!("{}/#/p/office/outgoing/{id}", k.base));
    b.refresh();
    b.in_plugin_frame(|| {
        b.wait_text("#doc-title", "issued", |t| t.contains("已印发"));
        b.wait_text("#rh-no", "the 发文字号 in the red header", |t| {
            t == number
        });
        b.wait_text("#rh-issued-on", "the date of issue", |t| {
            t.starts_with(&format!("{year}年"))
        });
        b.wait_text("#deliveries", "the recipient's 收文号", |t| {
            t.contains(&format!("收〔{year}〕1号"))
        });
        let red = b.script(
            "return getComputedStyle(document.getElementById('rh-mark')).color",
            json!([]),
        );
        assert_eq!(red, "rgb(212, 0, 0)", "the organ mark is red");
    });
    b.resize(390, 844);
    b.in_plugin_frame(|| {
        b.wait_displayed("#redhead");
        no_sideways_scrolling(&b, "the document's page");
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    sign_out(&b);

    // The recipient's clerk: registered in the box, found by its text.
    sign_in(&b, "clerk.b");
    b.goto(&format!("{}/#/p/office/incoming", k.base));
    b.in_plugin_frame(|| {
        b.wait_text("#incoming-list", "the document registered", |t| {
            t.contains(title) && t.contains("已登记") && t.contains(&number)
        });
    });
    b.goto(&format!("{}/#/p/office/search", k.base));
    b.in_plugin_frame(|| {
        b.type_into("#search-q", phrase);
        b.click("#search-submit");
        b.wait_text("#search-results", "the document found", |t| {
            t.contains(title)
        });
        b.wait_text("#search-results mark", "the phrase marked", |t| t == phrase);
    });
    // Every view on a phone, without sideways scrolling.
    b.resize(390, 844);
    b.goto(&format!("{}/#/p/office/incoming", k.base));
    b.in_plugin_frame(|| {
        b.wait_text("#incoming-list", "the box on a phone", |t| {
            t.contains(title)
        });
        no_sideways_scrolling(&b, "the incoming box");
        let incoming = b.script(
            "return document.querySelector('#incoming-list a[data-id]').getAttribute('data-id')",
            json!([]),
        );
        let incoming = incoming.as_str().unwrap();
        for (route, ready) in [
            (format!("incoming/{incoming}"), "#timeline"),
            ("outgoing".to_string(), "#outgoing-filters"),
            ("outgoing/new".to_string(), "#redhead"),
            ("notices".to_string(), "#publish-box"),
            ("matters".to_string(), "#matter-filters"),
            (format!("search?q={phrase}"), "#search-results"),
            ("todos".to_string(), "#todo-list"),
        ] {
            b.script(
                &format!("location.hash = '#/{route}'; return true;"),
                json!([]),
            );
            b.wait_displayed(ready);
            no_sideways_scrolling(&b, &route);
        }
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // English, from the portal's switch: the lists' headers follow.
    b.resize(1280, 900);
    b.click(r#"#lang-switch [data-lang="en"]"#);
    b.wait_text("#logout", "the portal in English", |t| t == "Sign out");
    b.goto(&format!("{}/#/p/office/outgoing", k.base));
    b.in_plugin_frame(|| {
        b.wait_text("#outgoing-list thead", "English headers", |t| {
            t.contains("Document no.") && t.contains("Title") && t.contains("Status")
        });
        b.wait_text(r#"#nav a[data-route="incoming"]"#, "the English nav", |t| {
            t == "Incoming"
        });
        assert_eq!(
            b.script("return document.documentElement.lang", json!([])),
            "en"
        );
    });
    b.goto(&format!("{}/#/p/office/incoming", k.base));
    b.in_plugin_frame(|| {
        b.wait_text("#incoming-list", "the box in English", |t| {
            t.contains("Incoming no.") && t.contains("Registered")
        });
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// The clerk registers a paper document (a date in the future refused on
/// its field, in Chinese) and proposes; the leader instructs with a
/// deadline already past, so the box marks it overdue; the lead reports
/// and completes; the clerk archives it. The clerk publishes a notice,
/// reads it (unread no more) and sees the receipt; a matter under
/// supervision past its deadline is highlighted, progresses and closes.
#[test]
fn incoming_notices_and_matters_are_handled_in_the_browser() {
    use crate::portal::Browser;
    if !support::have(support::Service::Browser) {
        return;
    }
    let k = TestKernel::start();
    let TwoCounties { unit_a, .. } = two_counties(&k);
    k.install_ok("office");
    person(&k, "clerk.a", &unit_a, &[("office.clerk", &unit_a)]);
    person(&k, "leader.a", &unit_a, &[("office.signer", &unit_a)]);
    let year = region_year();
    let title = "关于报送公务用车使用情况的函";
    let past = format!("{}-06-30", year - 1);

    let sign_in = |b: &Browser, name: &str| {
        b.resize(1280, 900);
        b.goto(&format!("{}/", k.base));
        b.wait_displayed("#login-username");
        b.type_into("#login-username", name);
        b.type_into("#login-password", PASSWORD);
        b.click("#login-submit");
        b.wait_displayed("#user-name");
        b.console_errors();
    };
    let sign_out = |b: &Browser| {
        b.goto(&format!("{}/", k.base));
        b.wait_displayed("#logout");
        b.click("#logout");
        b.wait_displayed("#login-username");
    };
    let set = |b: &Browser, css: &str, value: &str| {
        b.script(
            "var e = document.querySelector(arguments[0]); e.value = arguments[1]; \
             e.dispatchEvent(new Event('input', { bubbles: true })); return true;",
            json!([css, value]),
        );
    };

    let b = Browser::start();
    sign_in(&b, "clerk.a");
    b.goto(&format!("{}/#/p/office/incoming", k.base));
    let id = std::cell::RefCell::new(String::new());
    b.in_plugin_frame(|| {
        b.click("#register-box > summary");
        b.type_into("#f-source_organ", "自治区财政厅");
        b.type_into("#f-source_no", "新财函〔2026〕8号");
        b.type_into("#f-title", title);
        set(&b, "#f-received_on", &format!("{}-01-01", year + 1));
        b.click("#register-form-submit");
        b.wait_text(
            "[data-error-for=received_on]",
            "the future date refused",
            |t| t == "日期不能晚于今天。",
        );
        b.console_errors();
        set(&b, "#f-received_on", &format!("{year}-01-01"));
        b.click("#register-form-submit");
        b.wait_text("#incoming-list", "the paper document registered", |t| {
            t.contains(title) && t.contains("已登记") && t.contains(&format!("收〔{year}〕1号"))
        });
        b.click("#incoming-list a[data-id]");
        b.wait_displayed("#propose-form");
        b.click("#propose-form-submit");
        b.wait_text("[data-error-for=opinion]", "the opinion required", |t| {
            t == "请填写意见。"
        });
        b.console_errors();
        b.type_into("#propose-opinion", "拟请办公室牵头办理");
        b.click("#propose-form-submit");
        b.wait_text("#doc-title", "proposed", |t| t.contains("已拟办"));
        let hash = b.script("return location.hash", json!([]));
        *id.borrow_mut() = hash
            .as_str()
            .unwrap()
            .trim_start_matches("#/incoming/")
            .to_string();
    });
    let id = id.into_inner();
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    sign_out(&b);

    sign_in(&b, "leader.a");
    b.goto(&format!("{}/#/p/office/incoming/{id}", k.base));
    b.in_plugin_frame(|| {
        b.type_into("#instruct-opinion", "请综合处按时报送");
        b.type_into("#instruct-lead", "综合处");
        b.type_into("#instruct-assisting", "财务处，车管所");
        set(&b, "#instruct-deadline", &past);
        b.click("#instruct-form-submit");
        b.wait_text("#doc-title", "instructed and overdue", |t| {
            t.contains("已批办") && t.contains("已超期")
        });
        b.wait_text("#incoming-fields", "the instruction recorded", |t| {
            t.contains("综合处") && t.contains("财务处、车管所")
        });
        b.click(r#"#nav a[data-route="incoming"]"#);
        b.wait_text(
            "#incoming-list tr[data-overdue=true]",
            "the overdue row",
            |t| t.contains(title) && t.contains("已超期"),
        );
        b.script(
            "document.getElementById('incoming-list').setAttribute('data-old', ''); return true;",
            json!([]),
        );
        b.click("#incoming-overdue");
        b.click("#incoming-filters button[type=submit]");
        b.wait_until("the overdue filter applied", || {
            b.script(
                "var l = document.getElementById('incoming-list'); \
                 return /overdue=true/.test(location.hash) && !!l && !l.hasAttribute('data-old');",
                json!([]),
            ) == true
        });
        b.wait_text("#incoming-list", "the overdue filter", |t| {
            t.contains(title)
        });
        b.click("#incoming-list a[data-id]");
        b.type_into("#report-note", "已汇总各处室用车数据");
        b.click("#report-form-submit");
        b.wait_text("#reports", "the progress report", |t| {
            t.contains("已汇总各处室用车数据")
        });
        b.wait_text("#doc-title", "being handled", |t| t.contains("承办中"));
        b.type_into("#complete-note", "已按时报送财政厅");
        b.click("#complete-form-submit");
        b.wait_text("#doc-title", "completed", |t| {
            t.contains("已办结") && !t.contains("已超期")
        });
        b.wait_text("#timeline", "the timeline", |t| {
            t.contains("拟办") && t.contains("批办") && t.contains("办结")
        });
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    sign_out(&b);

    sign_in(&b, "clerk.a");
    b.goto(&format!("{}/#/p/office/incoming/{id}", k.base));
    b.in_plugin_frame(|| {
        b.type_into("#archive-category", "文书-综合");
        b.click("#archive-form-submit");
        b.wait_text("#doc-title", "archived", |t| t.contains("已归档"));
        b.wait_text("#archive-no", "the archive number", |t| {
            t.contains(&year.to_string())
        });

        // A notice: unread until opened, then a receipt.
        b.click(r#"#nav a[data-route="notices"]"#);
        b.click("#publish-box > summary");
        b.type_into("#f-title", "关于元旦期间值班安排的通知");
        b.type_into("#f-body", "元旦期间机关值班安排如下。");
        b.click("#notice-form-submit");
        b.wait_text("#notice-list tr.unread", "the unread notice", |t| {
            t.contains("关于元旦期间值班安排的通知") && t.contains("未读")
        });
        b.click("#notice-list a[data-id]");
        b.wait_text("#notice-body", "the notice", |t| t.contains("值班安排如下"));
        b.click("#notice-receipts");
        b.wait_text("#receipt-count", "one receipt", |t| t == "已读 1 人");
        b.wait_text("#receipt-list", "the reader", |t| t.contains("clerk.a"));
        b.click(r#"#nav a[data-route="notices"]"#);
        b.wait_displayed("#notice-list tr[data-read=true]");

        // A matter past its deadline: highlighted, then progressed and closed.
        b.click(r#"#nav a[data-route="matters"]"#);
        b.click("#matter-box > summary");
        b.type_into("#f-title", "落实节能宣传周活动");
        b.type_into("#f-owner", "综合处");
        set(&b, "#f-deadline", &past);
        b.click("#matter-form-submit");
        b.wait_text(
            "#matter-list tr[data-overdue=true]",
            "the overdue matter",
            |t| t.contains("落实节能宣传周活动") && t.contains("已超期"),
        );
        b.click("#matter-list details.matter-actions > summary");
        b.type_into("#matter-list .progress-form input[name=note]", "已完成方案");
        b.type_into("#matter-list .progress-form input[name=percent]", "50");
        b.click("#matter-list .progress-form button[type=submit]");
        b.wait_text("#matter-list", "half done", |t| t.contains("50%"));
        b.click("#matter-list details.matter-actions > summary");
        b.type_into("#matter-list .complete-form input[name=note]", "活动已开展");
        b.click("#matter-list .complete-form button[type=submit]");
        b.wait_text("#matter-list", "closed", |t| {
            t.contains("已办结") && t.contains("100%") && !t.contains("已超期")
        });
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}
