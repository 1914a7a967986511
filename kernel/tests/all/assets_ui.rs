//! The assets plugin's UI (plugins/assets/ui) in headless Chromium, inside
//! the portal, against a real kernel: a unit's asset manager creates a card
//! through the form (a refused field is shown next to it), submits its
//! registration; the prefecture's administrator approves it from the
//! plugin's to-do view; the manager then finds the card booked in the card
//! list and counted in the totals report. Chinese by default, English when
//! switched.

use std::time::{Duration, Instant};

use serde_json::json;
use tianshan_kernel::orgs::unified_social_credit_code;

use crate::identity::{PASSWORD, bind, org, user};
use crate::portal::Browser;
use crate::support::TestKernel;

const CARDS_ENTRY: &str = r#"#menu .menu-entry[data-plugin="assets"][data-entry="cards"]"#;
const REPORTS_ENTRY: &str = r#"#menu .menu-entry[data-plugin="assets"][data-entry="reports"]"#;
/// Approval outcomes reach the plugin as events; the page is re-queried
/// until the card shows the outcome, for at most this long.
const BOOKING: Duration = Duration::from_secs(30);

fn sign_in(b: &Browser, k: &TestKernel, username: &str) {
    b.goto(&format!("{}/", k.base));
    b.wait_displayed("#login-username");
    b.type_into("#login-username", username);
    b.type_into("#login-password", PASSWORD);
    b.click("#login-submit");
    b.wait_text("#user-name", "the signed-in user's name", |t| t == username);
}

fn sign_out(b: &Browser) {
    b.click("#logout");
    b.wait_displayed("#login-username");
}

/// Sets a form control's value as the user's input would (date inputs
/// take keys in the browser's locale format, so they are set directly).
fn set_value(b: &Browser, css: &str, value: &str) {
    b.wait_displayed(css);
    b.script(
        "var e = document.querySelector(arguments[0]); e.value = arguments[1]; \
         e.dispatchEvent(new Event('input', {bubbles: true})); \
         e.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([css, value]),
    );
}

/// Repeats `refresh` (a click that re-queries the page) until `css`'s text
/// satisfies `check`.
fn wait_after_refreshes(
    b: &Browser,
    refresh: &str,
    css: &str,
    what: &str,
    check: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + BOOKING;
    loop {
        let text = b.script(
            "var e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
            json!([css]),
        );
        if text.as_str().is_some_and(&check) {
            return;
        }
        if Instant::now() >= deadline {
            // One last wait, which fails with what the page shows.
            b.wait_text(css, what, &check);
            return;
        }
        b.click(refresh);
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn assets_ui_card_registration_approval_and_report() {
    if std::env::var("TIANSHAN_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("TIANSHAN_SKIP_BROWSER=1: skipping the assets UI browser test");
        return;
    }
    let started = Instant::now();
    let k = TestKernel::start();
    // region ─ prefecture 650100 ─┬ unit: the prefecture's administration (approver's home)
    //                             └ unit: a school (the manager's unit)
    let prefecture = org(&k, "org-650000", "prefecture", "650100", "乌鲁木齐市");
    let administration = org(
        &k,
        &prefecture,
        "unit",
        &unified_social_credit_code("650100", 1),
        "乌鲁木齐市机关事务管理局",
    );
    let school = org(
        &k,
        &prefecture,
        "unit",
        &unified_social_credit_code("650100", 2),
        "乌鲁木齐市第一中学",
    );
    k.install_ok("assets");
    let manager = user(&k, "manager", &school);
    bind(&k, &manager, "assets.manager", &school);
    // Registrations are approved by org-admin at the unit's parent.
    let approver = user(&k, "approver", &administration);
    bind(&k, &approver, "org-admin", &prefecture);

    let b = Browser::start();

    // The manager opens the card list from the portal menu: Chinese by default.
    sign_in(&b, &k, "manager");
    b.click(CARDS_ENTRY);
    b.wait_displayed("#plugin-frame");
    let mut asset_no = String::new();
    b.in_plugin_frame(|| {
        b.wait_text("#nav a[data-route=\"cards\"]", "the Chinese nav", |t| {
            t == "资产卡片"
        });
        b.wait_text("#view h1", "the Chinese title", |t| t == "资产卡片");
        assert_eq!(
            b.script("return document.documentElement.lang", json!([])),
            "zh-CN"
        );
        b.wait_text("#cards-results", "an empty register", |t| {
            t.contains("暂无数据")
        });

        // The new-card form: empty fields are refused in place.
        b.click("#new-card");
        b.click("#card-submit");
        b.wait_text(
            "#card-form [data-error-for=\"name\"]",
            "the required-field message next to the name",
            |t| t == "此项必填",
        );

        // A field the API refuses shows its message next to that field.
        b.type_into("#card-form [name=\"name\"]", "便携式计算机（测试）");
        b.click("#card-form select[name=\"category\"] option[value=\"A020102\"]");
        set_value(&b, "#card-form [name=\"acquired_on\"]", "2024-03-15");
        b.type_into("#card-form [name=\"original_value_yuan\"]", "12345.67");
        b.type_into("#card-form [name=\"location\"]", "行政楼201");
        b.type_into("#card-form [name=\"quantity\"]", "5");
        b.click("#card-submit");
        b.wait_text(
            "#card-form [data-error-for=\"quantity\"]",
            "the API's quantity error next to the quantity",
            |t| t.contains("A020102"),
        );

        // Corrected, the card is saved as a draft and its page opens.
        b.type_into("#card-form [name=\"quantity\"]", "1");
        b.click("#card-submit");
        asset_no = b.wait_text("#card-no", "the new card's asset number", |t| {
            t.starts_with("ZC")
        });
        b.wait_text("#flash", "the saved message", |t| {
            t.contains("卡片已保存为草稿") && t.contains(&asset_no)
        });
        b.wait_text("#card-state", "the draft state", |t| t == "草稿");
        b.wait_text("#card-original-value", "the value in yuan", |t| {
            t == "¥12,345.67"
        });

        // Registration is submitted for approval; the card is held by it.
        b.click("#register");
        b.wait_text("#flash", "the submitted message", |t| {
            t.contains("登记已提交审批") && t.contains("DJ")
        });
        b.wait_displayed("#card-locked");
        b.wait_text(
            "#card-activity",
            "the opened registration in the activity",
            |t| t.contains("资产登记 · 发起"),
        );
    });
    sign_out(&b);

    // The prefecture's administrator approves it from the plugin's to-dos.
    sign_in(&b, &k, "approver");
    b.click(CARDS_ENTRY);
    b.in_plugin_frame(|| {
        b.click("#nav a[data-route=\"todos\"]");
        let item = "#todo-list li.todo";
        b.wait_text(item, "the registration awaiting approval", |t| {
            t.contains("资产登记") && t.contains(&asset_no) && t.contains("¥12,345.67")
        });
        b.type_into(&format!("{item} textarea"), "同意登记入账");
        b.click(&format!("{item} button.approve"));
        b.wait_text("#flash", "the approved message", |t| t.contains("已同意"));
        b.wait_displayed("#todo-empty");
    });
    sign_out(&b);

    // The manager finds the card booked in the list and counted in the totals.
    sign_in(&b, &k, "manager");
    b.click(CARDS_ENTRY);
    let row = format!("#cards-table tr[data-asset-no=\"{asset_no}\"]");
    b.in_plugin_frame(|| {
        b.type_into("#cards-q", &asset_no);
        b.click("#cards-search");
        wait_after_refreshes(&b, "#cards-search", &row, "the card booked", |t| {
            t.contains("在账") && t.contains("¥12,345.67") && t.contains("便携式计算机")
        });
        b.wait_text(".pager-total", "one card found", |t| t == "共 1 条");
    });
    b.click(REPORTS_ENTRY);
    b.in_plugin_frame(|| {
        b.wait_text("#view h1", "the reports title", |t| t == "资产报表");
        b.wait_text("#totals-table", "the unit's totals with the card", |t| {
            t.contains("乌鲁木齐市第一中学") && t.contains("¥12,345.67")
        });
        b.wait_displayed("#totals svg.chart");

        // English, switched in the page.
        b.click("#lang-switch [data-lang=\"en\"]");
        b.wait_text("#view h1", "the English reports title", |t| t == "Reports");
        b.wait_text("#nav a[data-route=\"cards\"]", "the English nav", |t| {
            t == "Cards"
        });
        b.wait_text("#totals-table", "English column names", |t| {
            t.contains("Original value") && t.contains("¥12,345.67")
        });
        assert_eq!(
            b.script("return document.documentElement.lang", json!([])),
            "en"
        );
    });
    // The portal's switch reloads the page in its language: to English
    // (the page already is), then back to Chinese.
    b.click(r#"#lang-switch [data-lang="en"]"#);
    b.wait_text("#logout", "the portal in English", |t| t == "Sign out");
    b.in_plugin_frame(|| {
        b.wait_text("#view h1", "the English title from the portal", |t| {
            t == "Reports"
        });
    });
    b.click(r#"#lang-switch [data-lang="zh-CN"]"#);
    b.wait_text("#logout", "the portal in Chinese", |t| t == "退出登录");
    b.in_plugin_frame(|| {
        b.wait_text("#view h1", "the Chinese title from the portal", |t| {
            t == "资产报表"
        });
        b.wait_text("#totals-table", "Chinese column names", |t| {
            t.contains("原值")
        });
    });
    b.screenshot(&tianshan_kernel::tooling::target_dir().join("assets-ui-screenshot.png"));
    eprintln!(
        "assets UI browser test ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
