//! The assets plugin's UI (plugins/assets/ui) in headless Chromium, inside
//! the portal, against a real kernel: a unit's asset manager creates a card
//! through the form (a refused field is shown next to it), submits its
//! registration; the prefecture's administrator approves it from the
//! plugin's to-do view; the manager then finds the card booked in the card
//! list and counted in the totals report. Chinese by default, English when
//! switched. Then the public warehouse (an idle card offered from its page,
//! accepted by the keeper, found in the catalogue), a configuration plan
//! refused line by line against the standard and the warehouse's stock, and
//! a stocktake created, started and opened task by task.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tianshan_kernel::identity::orgs::unified_social_credit_code;

use crate::identity::{PASSWORD, bind, org, user};
use crate::portal::Browser;
use crate::support;
use crate::support::TestKernel;

const CARDS_ENTRY: &str = r#"#menu .menu-entry[data-plugin="assets"][data-entry="cards"]"#;
const REPORTS_ENTRY: &str = r#"#menu .menu-entry[data-plugin="assets"][data-entry="reports"]"#;
const WAREHOUSE_ENTRY: &str = r#"#menu .menu-entry[data-plugin="assets"][data-entry="warehouse"]"#;
const API: &str = "/api/v1/p/assets";
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

/// Opens one of the system's sections from inside its page, the way a
/// user does: through the portal's menu (the page has none of its own).
fn open_section(b: &Browser, entry: &str) {
    b.in_portal(|| {
        b.click(&format!(
            r#"#menu .menu-entry[data-plugin="assets"][data-entry="{entry}"]"#
        ))
    });
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

/// region ─ prefecture 650100 ─┬ unit: the prefecture's administration
///                             └ unit: a school (the manager's unit)
struct Tree {
    prefecture: String,
    administration: String,
    school: String,
}

/// A kernel with the assets plugin and the tree; none when
/// `TIANSHAN_SKIP_BROWSER=1` skips the browser tests.
fn start() -> Option<(Instant, TestKernel, Tree)> {
    if !support::have(support::Service::Browser) {
        return None;
    }
    let started = Instant::now();
    let k = TestKernel::start();
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
    Some((
        started,
        k,
        Tree {
            prefecture,
            administration,
            school,
        },
    ))
}

#[test]
fn assets_ui_card_registration_approval_and_report() {
    let Some((
        started,
        k,
        Tree {
            prefecture,
            administration,
            school,
        },
    )) = start()
    else {
        return;
    };
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
        // One menu, the portal's: the page has none of its own.
        assert_eq!(
            b.script("return document.getElementById('nav') === null", json!([])),
            true
        );
        b.in_portal(|| {
            b.wait_text(&format!("{CARDS_ENTRY} .menu-label"), "the Chinese menu", |t| {
                t == "资产卡片"
            });
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
            "the API's quantity error next to the quantity, in Chinese",
            |t| t.contains("A020102") && t.contains("一物一卡"),
        );
        // Shown once: next to the field, not again above the buttons.
        assert_eq!(
            b.script(
                "var e = document.querySelector('#card-form .form-error'); return e ? e.textContent : ''",
                json!([]),
            ),
            ""
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
        // In approval the card is pending, and the sentence names the
        // document where it says so.
        b.wait_text("#card-state", "the pending state", |t| t == "登记审批中");
        b.wait_text("#card-locked", "the lock sentence", |t| {
            t.starts_with("本卡片正在单据 DJ") && t.ends_with("中办理。")
        });
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
        open_section(&b, "todos");
        let item = "#todo-list li.todo";
        b.wait_text(item, "the registration awaiting approval", |t| {
            t.contains("资产登记") && t.contains(&asset_no) && t.contains("¥12,345.67")
        });
        // The item unfolds the kit's approval panel. Sending it back needs
        // a reason, then a confirmation (cancelled).
        b.click(&format!("{item} .todo-title"));
        b.click(&format!("{item} button.reject"));
        b.wait_text(
            &format!("{item} [data-error-for=\"comment\"]"),
            "the reason required",
            |t| t.contains("退回须填写理由"),
        );
        b.type_into(&format!("{item} textarea"), "请补充发票号");
        b.click(&format!("{item} button.reject"));
        b.wait_text("#kit-confirm", "the confirmation", |t| {
            t.contains("确定退回")
        });
        b.click("#kit-confirm-cancel");
        b.type_into(&format!("{item} textarea"), "同意登记入账");
        b.click(&format!("{item} button.approve"));
        b.click("#kit-confirm-ok");
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
        b.wait_displayed("#totals .kit-chart canvas");
        // One language switch: the portal's (the page's own is hidden
        // inside the portal).
        assert_eq!(
            b.script(
                "var s = document.getElementById('lang-switch'); return !s || s.hidden || s.offsetParent === null",
                json!([]),
            ),
            true,
            "the page shows no second language switch"
        );
    });
    // English, from the portal's switch: the page reloads in it.
    b.click(r#"#lang-switch [data-lang="en"]"#);
    b.wait_text("#logout", "the portal in English", |t| t == "Sign out");
    b.in_plugin_frame(|| {
        b.wait_text("#view h1", "the English reports title", |t| t == "Reports");
        b.in_portal(|| {
            b.wait_text(
                &format!("{CARDS_ENTRY} .menu-label"),
                "the English menu",
                |t| t == "Asset cards",
            );
        });
        b.wait_text("#totals-table", "English column names", |t| {
            t.contains("Original value") && t.contains("¥12,345.67")
        });
        assert_eq!(
            b.script("return document.documentElement.lang", json!([])),
            "en"
        );
    });
    // Back to Chinese.
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
    sign_out(&b);

    // Issue 15.7: the prefecture's administrator sees the totals rolled up
    // to the prefecture, and drills down to its units.
    sign_in(&b, &k, "approver");
    b.click(REPORTS_ENTRY);
    b.in_plugin_frame(|| {
        b.wait_text("#totals-table", "the prefecture rolled up", |t| {
            t.contains("乌鲁木齐市") && t.contains("1 个单位") && t.contains("¥12,345.67")
        });
        b.click("#totals-table a.drill");
        b.wait_text("#totals-trail", "the trail down", |t| {
            t.contains("乌鲁木齐市")
        });
        b.wait_text("#totals-table", "the prefecture's units", |t| {
            t.contains("乌鲁木齐市第一中学") && t.contains("¥12,345.67")
        });
    });
    b.screenshot(&tianshan_kernel::plugins::tooling::target_dir().join("assets-ui-screenshot.png"));
    eprintln!(
        "assets UI browser test ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// An API call the setup needs to succeed.
fn call(k: &TestKernel, token: &str, method: &str, path: &str, body: Value, expect: u16) -> Value {
    let body = (!body.is_null()).then(|| body.to_string().into_bytes());
    let (status, out) = k.request(method, &format!("{API}{path}"), Some(token), body);
    assert_eq!(status, expect, "{method} {path}: {out}");
    out
}

/// Imports cards (name, category, location, use status) as the manager and
/// has `approver` approve their registration, so they are booked; answers
/// each card's (id, asset number).
fn import_cards(
    k: &TestKernel,
    token: &str,
    approver: &str,
    rows: &[(&str, &str, &str, &str)],
) -> Vec<(String, String)> {
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
    let (status, out) = k.request(
        "POST",
        &format!("{API}/import"),
        Some(token),
        Some(book.save_to_buffer().unwrap()),
    );
    assert_eq!(status, 201, "{out}");
    for document in out["documents"].as_array().unwrap() {
        let doc = call(
            k,
            token,
            "GET",
            &format!("/documents/{}", document.as_str().unwrap()),
            Value::Null,
            200,
        );
        let approval = doc["document"]["data"]["approval_id"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, out) = k.request(
            "POST",
            &format!("/api/v1/approvals/{approval}/approve"),
            Some(approver),
            Some(json!({"comment": "同意"}).to_string().into_bytes()),
        );
        assert_eq!(status, 200, "{out}");
    }
    // The outcome reaches the plugin as an event: wait until booked.
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    while call(k, token, "GET", "/cards?state=booked", Value::Null, 200)["total"].as_u64()
        < Some(rows.len() as u64)
    {
        assert!(Instant::now() < deadline, "imported cards never booked");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    rows.iter()
        .map(|(name, ..)| {
            let found = call(
                k,
                token,
                "GET",
                &format!("/cards?q={name}"),
                Value::Null,
                200,
            );
            let card = &found["records"][0];
            (
                card["id"].as_str().unwrap().to_string(),
                card["data"]["asset_no"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// 克拉玛依市第二中学, a unit in a second prefecture (克拉玛依市): in the
/// directory, outside the test's own prefecture.
fn another_prefectures_unit(k: &TestKernel) -> String {
    let karamay = org(k, "org-650000", "prefecture", "650200", "克拉玛依市");
    org(
        k,
        &karamay,
        "unit",
        &unified_social_credit_code("650200", 1),
        "克拉玛依市第二中学",
    )
}

#[test]
fn assets_ui_warehouse_plan_and_stocktake() {
    let Some((
        started,
        k,
        Tree {
            prefecture,
            administration,
            school,
        },
    )) = start()
    else {
        return;
    };
    // Another prefecture's unit: the directory offers it, the keeper does
    // not reach it.
    let far_unit = another_prefectures_unit(&k);
    let manager = user(&k, "manager", &school);
    bind(&k, &manager, "assets.manager", &school);
    let keeper = user(&k, "keeper", &administration);
    bind(&k, &keeper, "assets.keeper", &prefecture);
    let manager_token = k.login("manager", PASSWORD);
    let keeper_token = k.login("keeper", PASSWORD);
    let approver = user(&k, "approver", &administration);
    bind(&k, &approver, "org-admin", &prefecture);
    let approver_token = k.login("approver", PASSWORD);

    // Setup through the API: the prefecture's warehouse, and two booked
    // desktops at the school, one of them idle.
    let wh = call(
        &k,
        &keeper_token,
        "POST",
        "/warehouse/warehouses",
        json!({"name": "市级公物仓", "kind": "physical", "address": "乌鲁木齐市公物仓库房",
               "zones": ["A-01", "A-02"], "org": prefecture}),
        201,
    );
    let wh_id = wh["id"].as_str().unwrap().to_string();
    let cards = import_cards(
        &k,
        &manager_token,
        &approver_token,
        &[
            ("闲置台式计算机", "A020101", "行政楼库房", "idle"),
            ("在用台式计算机", "A020101", "行政楼201", "in_use"),
        ],
    );
    let (idle_id, idle_no) = cards[0].clone();
    let in_use_no = cards[1].1.clone();

    let b = Browser::start();

    // The manager offers the idle card to the warehouse from its page.
    sign_in(&b, &k, "manager");
    b.click(CARDS_ENTRY);
    b.in_plugin_frame(|| {
        b.type_into("#cards-q", &idle_no);
        b.click("#cards-search");
        b.click(&format!(
            "#cards-table tr[data-asset-no=\"{idle_no}\"] a[href=\"#/cards/{idle_id}\"]"
        ));
        b.wait_text("#card-no", "the idle card's page", |t| t == idle_no);
        b.click("#offer-warehouse");
        b.click(&format!(
            "#intake-form select[name=\"warehouse_id\"] option[value=\"{wh_id}\"]"
        ));
        b.click("#intake-submit");
        b.wait_text("#flash", "the intake requested", |t| {
            t.contains("入仓申请已提交") && t.contains("RK")
        });
        b.wait_text("#card-locked", "the card held by the intake order", |t| {
            t.contains("RK")
        });
        assert!(
            b.script(
                "return document.getElementById('offer-warehouse')",
                json!([])
            )
            .is_null(),
            "a held card is not offered twice"
        );
    });
    sign_out(&b);

    // The keeper inspects it in the warehouse's orders view and accepts it.
    sign_in(&b, &k, "keeper");
    b.click(WAREHOUSE_ENTRY);
    let pending = format!("#intake-pending form[data-asset-no=\"{idle_no}\"]");
    b.in_plugin_frame(|| {
        b.click("#wh-nav a[data-tab=\"orders\"]");
        b.wait_text(&pending, "the intake awaiting inspection", |t| {
            t.contains(&idle_no) && t.contains("闲置台式计算机") && t.contains("乌鲁木齐市第一中学")
        });
        b.click(&format!(
            "{pending} select[name=\"bin\"] option[value=\"A-01\"]"
        ));
        b.click(&format!("{pending} .inspect-accept"));
        b.wait_text("#flash", "the accepted message", |t| {
            t.contains("已验收入库") && t.contains(&idle_no)
        });
        b.wait_displayed("#intake-empty");
        b.wait_text("#wh-orders", "the completed intake in the orders", |t| {
            t.contains("入仓") && t.contains("已完成") && t.contains(&idle_no)
        });

        // Reallocating it to another prefecture's unit: the picker finds
        // the unit by part of its name; the plugin refuses a unit the
        // keeper does not reach, in Chinese, next to the receiving unit.
        b.click("#wh-nav a[data-tab=\"catalogue\"]");
        b.click(&format!(
            "#wh-items tr[data-asset-no=\"{idle_no}\"] a[href^=\"#/warehouse/items/\"]"
        ));
        let search = "#order-form .kit-org-picker input.kit-org-search";
        b.type_into(search, "克拉玛依");
        let option =
            format!(".kit-org-options[data-q=\"克拉玛依\"] li[data-org-id=\"{far_unit}\"]");
        b.wait_text(&option, "the other prefecture's unit offered", |t| {
            t.contains("克拉玛依市第二中学")
        });
        b.click(&option);
        b.type_into("#order-form [name=\"reason\"]", "调剂至克拉玛依");
        b.click("#order-submit");
        b.wait_text(
            "#order-form [data-error-for=\"to_org\"]",
            "the out-of-reach refusal next to the receiving unit, in Chinese",
            |t| t.contains("管辖范围") && !t.contains("reach"),
        );
    });
    sign_out(&b);

    // The manager finds it in the catalogue, in stock.
    sign_in(&b, &k, "manager");
    b.click(WAREHOUSE_ENTRY);
    b.in_plugin_frame(|| {
        b.wait_text(
            &format!("#wh-items tr[data-asset-no=\"{idle_no}\"]"),
            "the item in the catalogue",
            |t| {
                t.contains("在库")
                    && t.contains("市级公物仓")
                    && t.contains("A-01")
                    && t.contains("¥4,500.00")
            },
        );

        // A plan for the same category: the standard and the stock show as
        // soon as the category is picked; the API's refusals land next to
        // the line's inputs.
        open_section(&b, "documents");
        b.click("#new-plan");
        b.type_into("#plan-form [name=\"headcount\"]", "20");
        b.click("#plan-form select[name=\"lines[0].category\"] option[value=\"A020101\"]");
        let line = "#plan-lines [data-line=\"0\"]";
        b.wait_text(&format!("{line} .plan-standard"), "the standard", |t| {
            t.contains("¥5,000.00")
        });
        b.wait_text(
            &format!("{line} .plan-stock"),
            "the warehouse-stock notice",
            |t| t.contains("公物仓现有 1 件") && t.contains("理由"),
        );
        b.type_into(
            &format!("{line} [name=\"lines[0].unit_price_yuan\"]"),
            "9000",
        );
        b.type_into(&format!("{line} [name=\"lines[0].reason\"]"), "新进教师");
        b.click("#plan-submit");
        b.wait_text(
            &format!("{line} [data-error-for=\"lines[0].unit_price_yuan\"]"),
            "the price ceiling next to the unit price",
            |t| t.contains("5000"),
        );
        b.type_into(
            &format!("{line} [name=\"lines[0].unit_price_yuan\"]"),
            "4800",
        );
        b.click("#plan-submit");
        b.wait_text(
            &format!("{line} [data-error-for=\"lines[0].justification\"]"),
            "the justification required next to its field",
            |t| t.contains("公物仓有同类资产可调剂"),
        );
        assert_eq!(
            b.script(
                "return document.querySelector(arguments[0]).getAttribute('aria-invalid')",
                json!([format!("{line} [name=\"lines[0].justification\"]")]),
            ),
            "true"
        );
        // With a justification the plan is saved.
        b.type_into(
            &format!("{line} [name=\"lines[0].justification\"]"),
            "库存型号不满足教学要求",
        );
        // (Kept as a draft: nobody approves at the prefecture in this world.)
        b.click("#f-plan-submit-now");
        b.click("#plan-submit");
        b.wait_text("#doc-title", "the saved plan", |t| {
            t.contains("资产配置计划") && t.contains("PZ")
        });
        b.wait_text("#doc-status", "the plan a draft", |t| t == "草稿");

        // A stocktake: created, started, its tasks listed and opened.
        open_section(&b, "stocktakes");
        b.click("#new-stocktake");
        b.type_into("#stocktake-form [name=\"name\"]", "2026年度资产清查");
        set_value(&b, "#stocktake-form [name=\"planned_from\"]", "2026-11-01");
        set_value(&b, "#stocktake-form [name=\"planned_to\"]", "2026-12-31");
        b.click("#stocktake-submit");
        b.wait_text("#st-title", "the new campaign", |t| {
            t.contains("2026年度资产清查") && t.contains("PD")
        });
        b.wait_text("#st-status", "the campaign planned", |t| t == "计划中");
        b.click("#st-start");
        b.wait_text("#st-status", "the campaign started", |t| t == "盘点中");
        b.wait_displayed("#st-scan");
        b.wait_text("#st-tasks", "the tasks by location", |t| {
            t.contains("行政楼201") && t.contains("乌鲁木齐市公物仓库房 A-01") && t.contains("0/1")
        });
        b.wait_text("#st-match-rate", "no card matched yet", |t| t == "0.0%");
        b.script(
            "var needle = arguments[0]; \
             var row = Array.prototype.find.call(document.querySelectorAll('#st-tasks tbody tr'), \
               function (r) { return r.innerText.indexOf(needle) >= 0; }); \
             row.querySelector('a').click();",
            json!(["行政楼201"]),
        );
        b.wait_text("#task-title", "the task's page", |t| {
            t.contains("行政楼201")
        });
        b.wait_text("#task-cards", "the task's card, not yet scanned", |t| {
            t.contains(&in_use_no) && t.contains("在用台式计算机") && t.contains("未盘")
        });
        b.wait_displayed("#task-scan");

        // The scan view opens on this campaign's task.
        b.click("#task-scan");
        b.wait_until("the campaign chosen in the scan view", || {
            b.script(
                "var s = document.getElementById('scan-task'); \
                 return !!s && s.options.length > 0 && s.options[s.selectedIndex].text.indexOf('行政楼201') >= 0",
                json!([]),
            ) == true
        });
        let st_id = b.script("return document.getElementById('scan-stocktake').value", json!([]));
        let st_id = st_id.as_str().unwrap().to_string();

        // Closing records the unscanned cards as losses; one is accepted.
        b.script(
            "location.hash = arguments[0];",
            json!([format!("#/stocktakes/{st_id}")]),
        );
        b.click("#st-close");
        // The kit's confirmation (a sandboxed page has no window.confirm).
        b.click("#kit-confirm-ok");
        b.wait_text("#st-status", "the campaign reconciling", |t| t == "差异处理中");
        b.wait_text("#st-open", "two open differences", |t| t == "2");
        b.wait_text("#st-differences", "the losses listed", |t| {
            t.contains(&in_use_no) && t.contains("盘亏")
        });
        let row = "#st-differences tbody tr:first-child";
        b.click(&format!("{row} .resolve-open"));
        b.click(&format!("{row} .resolve-form select[name=\"action\"] option[value=\"accept\"]"));
        b.click(&format!("{row} .resolve-submit"));
        b.wait_text(&format!("{row} [data-error-for=\"note\"]"), "the note required", |t| t == "此项必填");
        b.type_into(&format!("{row} .resolve-form [name=\"note\"]"), "已查明：调往分校使用");
        b.click(&format!("{row} .resolve-submit"));
        b.wait_text("#flash", "the resolved message", |t| t.contains("差异已处理"));
        b.wait_text("#st-open", "one open difference", |t| t == "1");
        b.wait_text(
            "#st-summary tr[data-result=\"loss\"]",
            "the losses in the report",
            |t| t.contains("盘亏") && t.contains("¥9,000.00"),
        );
        b.wait_text("#st-match-rate", "nothing matched", |t| t == "0.0%");
        b.wait_displayed("#st-report .kit-chart canvas");
        // The throughput report counts the intake.
        b.script("location.hash = '#/warehouse/report'", json!([]));
        b.wait_text("#wh-report-body", "the throughput", |t| {
            t.contains("入仓件数") && t.contains("¥4,500.00")
        });
        b.wait_displayed("#wh-report-body .kit-chart canvas");

        // A demand finds the item; asking for it for the unit that put it
        // in is refused next to the receiving unit, so the unit takes it back.
        b.script("location.hash = '#/warehouse/demands'", json!([]));
        b.click("#new-demand");
        b.click("#demand-form select[name=\"category\"] option[value=\"A020101\"]");
        b.type_into("#demand-form [name=\"description\"]", "新进教师办公用台式机");
        b.click("#demand-submit");
        b.wait_text("#demand-matches", "the item matching the demand", |t| {
            t.contains("GWC") && t.contains("闲置台式计算机")
        });
        b.click("#demand-matches tbody tr:first-child a.button");
        b.type_into("#order-form [name=\"reason\"]", "本单位新进教师使用");
        b.click("#order-submit");
        b.wait_text(
            "#order-form [data-error-for=\"to_org\"]",
            "the refusal next to the receiving unit, in Chinese",
            |t| t.contains("退回原单位") && !t.contains("withdraw"),
        );
        b.click("#order-form select[name=\"kind\"] option[value=\"withdrawal\"]");
        b.click("#order-submit");
        b.wait_text("#order-title", "the withdrawal order", |t| {
            t.contains("退回原单位") && t.contains("CK")
        });
        b.wait_text("#order-status", "waiting for the keeper", |t| t == "待受理");
    });
    sign_out(&b);

    // The keeper accepts the withdrawal and issues the item back.
    sign_in(&b, &k, "keeper");
    b.click(WAREHOUSE_ENTRY);
    b.in_plugin_frame(|| {
        b.click("#wh-nav a[data-tab=\"orders\"]");
        let row = "#wh-orders tr[data-kind=\"withdrawal\"]";
        b.wait_text(row, "the withdrawal requested", |t| t.contains("待受理"));
        b.click(&format!("{row} .act-accept"));
        b.wait_text(row, "the item reserved", |t| t.contains("已预留"));
        b.click(&format!("{row} .act-issue"));
        b.wait_text(row, "the withdrawal done", |t| t.contains("已完成"));
        b.click("#wh-nav a[data-tab=\"catalogue\"]");
        b.wait_text(
            &format!("#wh-items tr[data-asset-no=\"{idle_no}\"]"),
            "the item out of the warehouse",
            |t| t.contains("已出仓"),
        );
    });
    b.screenshot(
        &tianshan_kernel::plugins::tooling::target_dir().join("assets-ui-warehouse-screenshot.png"),
    );
    eprintln!(
        "assets UI warehouse/plan/stocktake browser test ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The school's register of `n` desktops, one per room of the main
/// building (主楼001室…), and a printer in the west building.
fn rooms(n: usize) -> Vec<(String, String, String, String)> {
    let mut rows: Vec<(String, String, String, String)> = (1..=n)
        .map(|i| {
            (
                format!("台式计算机{i:03}"),
                "A020101".to_string(),
                format!("主楼{i:03}室"),
                "in_use".to_string(),
            )
        })
        .collect();
    rows.push((
        "激光打印机（西楼）".into(),
        "A020204".into(),
        "西楼101".into(),
        "in_use".into(),
    ));
    rows
}

/// Issue 15.1 and 15.6: a campaign scoped to a building by a location
/// prefix (a scope nothing matches is refused when saved, next to the
/// field), with 55 tasks — more than one page of 50 —, scanned from a deep
/// link to the scan view (`/#/p/assets/scan`, a page with no menu entry):
/// every task is offered, the last one scans, and a second scan of the
/// same label says it was scanned already. The portal's address,
/// breadcrumb and menu follow the page's inner tab.
#[test]
fn assets_ui_stocktake_of_more_than_fifty_tasks_from_a_deep_link() {
    let Some((
        started,
        k,
        Tree {
            prefecture,
            administration,
            school,
        },
    )) = start()
    else {
        return;
    };
    // The manager has a name people know her by.
    let manager = crate::identity::ok(
        &k,
        "POST",
        "/api/v1/users",
        json!({"username": "manager", "display_name": "王芳", "password": PASSWORD, "org_id": school}),
        201,
    )["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    bind(&k, &manager, "assets.manager", &school);
    let approver = user(&k, "approver", &administration);
    bind(&k, &approver, "org-admin", &prefecture);
    let manager_token = k.login("manager", PASSWORD);
    let approver_token = k.login("approver", PASSWORD);
    const ROOMS: usize = 55;
    let owned = rooms(ROOMS);
    let rows: Vec<(&str, &str, &str, &str)> = owned
        .iter()
        .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
        .collect();
    let cards = import_cards(&k, &manager_token, &approver_token, &rows);
    let last_no = cards[ROOMS - 1].1.clone();

    let b = Browser::start();
    b.goto(&format!("{}/", k.base));
    b.wait_displayed("#login-username");
    b.type_into("#login-username", "manager");
    b.type_into("#login-password", PASSWORD);
    b.click("#login-submit");
    b.wait_text("#user-name", "the manager's name", |t| t == "王芳");

    // Issue 15.8: two cards picked in the list go into one disposal.
    b.click(CARDS_ENTRY);
    b.in_plugin_frame(|| {
        b.type_into("#cards-q", "台式计算机00");
        b.click("#cards-search");
        for no in [&cards[0].1, &cards[1].1] {
            b.click(&format!(
                "#cards-table tr[data-asset-no=\"{no}\"] input.pick"
            ));
        }
        b.wait_text("#batch-count", "two picked", |t| t == "已选 2 张");
        b.click("#batch-disposal");
        b.type_into("#doc-form [name=\"reason\"]", "教学楼改造，设备报废");
        b.click("#f-submit-now");
        b.click("#doc-form button[type=\"submit\"]");
        b.wait_text("#doc-title", "one disposal for both", |t| {
            t.contains("资产处置") && t.contains("乌鲁木齐市第一中学")
        });
        b.wait_text("#view", "both cards in it, every field by its name", |t| {
            t.contains(&cards[0].1)
                && t.contains(&cards[1].1)
                && t.contains("评估情况")
                && !t.contains("appraisal")
        });
        // People by their names, not their usernames.
        b.wait_text("#doc-created-by", "the creator's name", |t| t == "王芳");
        b.wait_text("#doc-history", "the history by name", |t| {
            t.contains("王芳") && !t.contains("manager")
        });
    });
    b.click(r#"#menu .menu-entry[data-plugin="assets"][data-entry="stocktakes"]"#);
    let mut st_id = String::new();
    b.in_plugin_frame(|| {
        b.wait_text("#view h1", "the stocktakes page", |t| t == "清查盘点");
        b.click("#new-stocktake");
        b.type_into("#stocktake-form [name=\"name\"]", "主楼资产清查");
        set_value(&b, "#stocktake-form [name=\"planned_from\"]", "2026-11-01");
        set_value(&b, "#stocktake-form [name=\"planned_to\"]", "2026-12-31");
        // A building with no booked card is refused now, not at the start.
        b.type_into("#stocktake-form [name=\"location\"]", "东楼");
        b.click("#stocktake-submit");
        b.wait_text(
            "#stocktake-form [data-error-for=\"location\"]",
            "the empty scope refused next to the location",
            |t| t.contains("没有在账资产"),
        );
        // The main building: a prefix of every room's location.
        b.type_into("#stocktake-form [name=\"location\"]", "主楼");
        b.click("#stocktake-submit");
        b.wait_text("#st-status", "the campaign planned", |t| t == "计划中");
        b.click("#st-start");
        b.wait_text("#st-status", "the campaign started", |t| t == "盘点中");
        let hash = b.script("return location.hash", json!([]));
        st_id = hash
            .as_str()
            .and_then(|h| h.strip_prefix("#/stocktakes/"))
            .expect("the campaign's page")
            .to_string();
        // 55 tasks, 10 a page: the last room is on the sixth.
        b.wait_text("#st-tasks-panel .pager-total", "the tasks counted", |t| {
            t == "共 55 条"
        });
        // On a phone the page stays short (its tasks are paged).
        b.resize(390, 844);
        let tall = b
            .script("return document.documentElement.scrollHeight", json!([]))
            .as_u64()
            .unwrap();
        eprintln!("stocktake page with {ROOMS} tasks on a phone: {tall} px tall");
        assert!(tall < 8_000, "the phone page is {tall} px tall");
        b.resize(1280, 900);
        for _ in 0..5 {
            b.click("#st-tasks-panel .pager button:last-child");
        }
        b.wait_text("#st-tasks-panel", "the last room on the last page", |t| {
            t.contains("主楼055室") && t.contains("第 6 页")
        });
    });
    // The west building is outside the scope "主楼".
    let st = call(
        &k,
        &manager_token,
        "GET",
        &format!("/stocktakes/{st_id}"),
        Value::Null,
        200,
    );
    assert_eq!(st["stocktake"]["data"]["book_cards"], ROOMS, "{st}");
    // The portal's address and breadcrumb follow the page.
    b.wait_until("the portal's address at the campaign", || {
        b.script("return location.hash", json!([]))
            == json!(format!("#/p/assets/stocktakes/{st_id}"))
    });
    b.wait_text("#plugin-title", "the breadcrumb", |t| t == "清查盘点");

    // The scan view by its deep link.
    b.goto(&format!("{}/#/p/assets/scan", k.base));
    b.wait_displayed("#plugin-frame");
    assert_eq!(
        b.script(
            "return document.getElementById('not-found').hidden",
            json!([])
        ),
        true,
        "the deep link finds the page"
    );
    b.wait_text("#plugin-title", "the scan view's breadcrumb", |t| {
        t == "扫码盘点"
    });
    b.in_plugin_frame(|| {
        b.wait_text("#view h1", "the scan view", |t| t == "扫码盘点");
        b.click(&format!("#scan-stocktake option[value=\"{st_id}\"]"));
        b.wait_until("every open task offered, past the first 50", || {
            b.script(
                "var s = document.getElementById('scan-task'); \
                 return s && s.getAttribute('data-count') ? s.options.length : -1",
                json!([]),
            ) == json!(ROOMS)
        });
        b.click("#scan-task option:last-child");
        assert!(
            b.script(
                "var s = document.getElementById('scan-task'); return s.options[s.selectedIndex].text",
                json!([]),
            )
            .as_str()
            .is_some_and(|t| t.contains("主楼055室"))
        );
        b.type_into("#scan-code", &last_no);
        b.click(".scan-form button[type=\"submit\"]");
        b.wait_text("#scan-result", "the label matched", |t| {
            t.contains("已记录盘点结果：账实相符")
        });
        b.type_into("#scan-code", &last_no);
        b.click(".scan-form button[type=\"submit\"]");
        b.wait_text("#scan-duplicate", "the second scan refused as a repeat", |t| {
            t.contains("已扫描过") && t.contains("账实相符")
        });
        // The portal's menu: its breadcrumb and address follow.
        open_section(&b, "stocktakes");
        b.wait_text("#view h1", "the stocktakes page", |t| t == "清查盘点");
    });
    b.wait_text("#plugin-title", "the breadcrumb on the inner tab", |t| {
        t == "清查盘点"
    });
    assert_eq!(
        b.script("return location.hash", json!([])),
        "#/p/assets/stocktakes"
    );
    b.wait_until("the sidebar on the inner tab", || {
        b.script(
            "var a = document.querySelector('#menu .menu-entry[data-entry=\"stocktakes\"]'); \
             return !!a && a.classList.contains('active')",
            json!([]),
        ) == true
    });
    eprintln!(
        "assets UI stocktake of {ROOMS} tasks ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Issue 15.9 through the page: the county's register (a merged title row,
/// a 填报单位 line, Chinese headers, labels and category names, Chinese
/// date forms, `6,500元`, 合计 and 制表人 rows) checked, imported and
/// listed by its own numbers; a second upload imports nothing again.
#[test]
fn assets_ui_import_of_a_county_register() {
    let Some((
        started,
        k,
        Tree {
            prefecture,
            administration,
            school,
        },
    )) = start()
    else {
        return;
    };
    let manager = user(&k, "manager", &school);
    bind(&k, &manager, "assets.manager", &school);
    // Imported cards go to the prefecture for registration.
    let approver = user(&k, "approver", &administration);
    bind(&k, &approver, "org-admin", &prefecture);
    let file = crate::assets_import::county_register(&[
        [
            "TS-2021-001",
            "会议桌",
            "会议桌",
            "张",
            "2021/3/5",
            "6,500元",
            "在用",
            "二楼会议室",
        ],
        [
            "TS-2021-002",
            "台式计算机",
            "A020101",
            "台",
            "2021年3月5日",
            "4800",
            "闲置",
            "",
        ],
        [
            "TS-2021-003",
            "激光打印机",
            "A020204",
            "台",
            "20210305",
            "1,250.50",
            "在用",
            "随机带硒鼓",
        ],
    ]);
    let b = Browser::start();
    sign_in(&b, &k, "manager");
    // A page without a menu entry, by its address.
    b.goto(&format!("{}/#/p/assets/import", k.base));
    let choose = |b: &Browser| {
        b.wait_displayed("#import-file");
        b.script(
            "var bytes = new Uint8Array(arguments[0]); \
             var f = new File([bytes], '天山区固定资产登记表.xlsx', \
               {type: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'}); \
             var dt = new DataTransfer(); dt.items.add(f); \
             document.getElementById('import-file').files = dt.files;",
            json!([file]),
        );
    };
    b.in_plugin_frame(|| {
        b.wait_text("#view h1", "the import page", |t| t == "批量导入资产卡片");
        choose(&b);
        b.click("#import-check");
        b.wait_text("#import-summary", "the dry run", |t| {
            t.contains("可导入 3 张卡片")
        });
        b.click("#import-run");
        b.wait_text("#import-summary", "the import", |t| {
            t.contains("已导入 3 张卡片")
        });
        b.wait_text("#import-cards", "the cards by the unit's numbers", |t| {
            t.contains("TS-2021-001")
                && t.contains("会议桌")
                && t.contains("A050105")
                && t.contains("¥6,500.00")
                && t.contains("TS-2021-003")
                && t.contains("¥1,250.50")
        });
        // The same file again: nothing new.
        choose(&b);
        b.click("#import-run");
        b.wait_text("#import-summary", "nothing imported twice", |t| {
            t.contains("已导入 0 张卡片") && t.contains("3 行已在台账中")
        });
        b.wait_text("#import-skipped", "the rows already there", |t| {
            t.contains("TS-2021-002")
        });
    });
    eprintln!(
        "assets UI import ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Issue 15.8: a transfer's receiver is picked from the kernel's directory
/// by typing part of its name, so a unit's card can go to another
/// prefecture's unit the sender cannot open; the document names the
/// receiver (issue 15, the ids the page could not name), and the receiver
/// sees the sending unit by name on the card it confirms.
#[test]
fn assets_ui_transfer_to_another_prefectures_unit_through_the_org_picker() {
    let Some((
        started,
        k,
        Tree {
            prefecture,
            administration,
            school,
        },
    )) = start()
    else {
        return;
    };
    let receiver_unit = another_prefectures_unit(&k);
    let manager = user(&k, "manager", &school);
    bind(&k, &manager, "assets.manager", &school);
    let receiver = user(&k, "receiver", &receiver_unit);
    bind(&k, &receiver, "assets.manager", &receiver_unit);
    let approver = user(&k, "approver", &administration);
    bind(&k, &approver, "org-admin", &prefecture);
    let manager_token = k.login("manager", PASSWORD);
    let approver_token = k.login("approver", PASSWORD);
    let cards = import_cards(
        &k,
        &manager_token,
        &approver_token,
        &[("投影仪（调拨测试）", "A020101", "行政楼301", "in_use")],
    );
    let (card_id, _) = cards[0].clone();

    let b = Browser::start();
    sign_in(&b, &k, "manager");
    b.goto(&format!("{}/#/p/assets/cards/{card_id}", k.base));
    let mut doc_no = String::new();
    b.in_plugin_frame(|| {
        b.click("#card-actions-panel button[data-kind=\"transfer\"]");
        let search = "#doc-form .kit-org-picker input.kit-org-search";
        b.wait_displayed(search);
        // Part of the name: the other prefecture's unit is offered.
        b.type_into(search, "克拉玛依");
        let option = format!(
            ".kit-org-options[data-q=\"克拉玛依\"] li[data-org-id=\"{receiver_unit}\"]"
        );
        b.wait_text(&option, "the other prefecture's unit offered", |t| {
            t.contains("克拉玛依市第二中学")
        });
        // The sender's own unit is not offered as its receiver.
        b.type_into(search, "中学");
        b.wait_text(".kit-org-options[data-q=\"中学\"]", "the units matching 中学", |t| {
            t.contains("克拉玛依市第二中学")
        });
        assert_eq!(
            b.script(
                "return document.querySelector('.kit-org-options li[data-org-id=\"' + arguments[0] + '\"]') === null",
                json!([school]),
            ),
            true,
            "the card's own unit is not a receiver"
        );
        // A typed name that was not picked is not a receiver: refused in place.
        b.type_into("#doc-form textarea[name=\"reason\"]", "支援克拉玛依教学");
        b.click("#doc-form button[type=\"submit\"]");
        b.wait_text(
            "#doc-form [data-error-for=\"to_org\"]",
            "the receiver required",
            |t| t == "此项必填",
        );
        b.type_into(search, "第二中学");
        // The list for what was typed (not an earlier one still in place).
        let fresh = format!(
            ".kit-org-options[data-q=\"第二中学\"] li[data-org-id=\"{receiver_unit}\"]"
        );
        b.wait_displayed(&fresh);
        b.click(&fresh);
        assert_eq!(
            b.script(
                "return document.querySelector('#doc-form input[name=\"to_org\"]').value",
                json!([]),
            ),
            json!(receiver_unit),
        );
        b.click("#doc-form button[type=\"submit\"]");
        doc_no = b.wait_text("#doc-title", "the transfer document", |t| {
            t.contains("DB") || t.contains("调拨")
        });
        // The receiver is named, though the sender cannot open it.
        b.wait_text("#view", "the receiver named on the document", |t| {
            t.contains("克拉玛依市第二中学") && !t.contains(&receiver_unit)
        });
    });
    sign_out(&b);

    // Approved by the sender's prefecture, the card goes to the receiver,
    // who sees where it comes from by name.
    let docs = call(
        &k,
        &manager_token,
        "GET",
        "/documents?kind=transfer",
        Value::Null,
        200,
    );
    let doc = call(
        &k,
        &manager_token,
        "GET",
        &format!("/documents/{}", docs["records"][0]["id"].as_str().unwrap()),
        Value::Null,
        200,
    );
    assert_eq!(
        doc["document"]["data"]["payload"]["to_org"],
        receiver_unit.as_str(),
        "{doc}"
    );
    let approval = doc["document"]["data"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, out) = k.request(
        "POST",
        &format!("/api/v1/approvals/{approval}/approve"),
        Some(&approver_token),
        Some(json!({"comment": "同意调拨"}).to_string().into_bytes()),
    );
    assert_eq!(status, 200, "{out}");
    sign_in(&b, &k, "receiver");
    b.click(CARDS_ENTRY);
    b.in_plugin_frame(|| {
        open_section(&b, "documents");
        wait_after_refreshes(
            &b,
            "#view form.filters button[type=\"submit\"]",
            "#incoming-table",
            "the incoming card with its sender named",
            |t| t.contains("投影仪") && t.contains("乌鲁木齐市第一中学"),
        );
    });
    eprintln!(
        "assets transfer picker test ({doc_no}) ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The codes the assets plugin answers with: the first string literal
/// after each `with_code(`, `Error::new(<status>,` and `bad_request(` in
/// its sources.
fn plugin_error_codes(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    let mut codes = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for marker in ["with_code(", "Error::new(", "bad_request("] {
            for (at, _) in text.match_indices(marker) {
                let rest = &text[at + marker.len()..];
                let Some(open) = rest.find('"') else { continue };
                // Error::new(status, "code"…): only a number before the code.
                let before = rest[..open].trim().trim_end_matches(',').trim();
                if marker == "Error::new(" && before.parse::<u16>().is_err() {
                    continue;
                }
                if marker != "Error::new(" && !before.is_empty() {
                    continue;
                }
                let code: String = rest[open + 1..].chars().take_while(|c| *c != '"').collect();
                if !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    codes.insert(code);
                }
            }
        }
    }
    codes
}

/// The index just past the `)` closing the `(` at `open`, skipping string
/// literals; None when unbalanced.
fn past_close(text: &str, open: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, open);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The refusals in `dir`'s sources built with a generic code
/// (`Error::validation(…)`, `forbidden`, `not_found`, `conflict`) and no
/// `.with_code(…)` in the chain after them, as `file:line`.
fn refusals_without_code(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        for marker in [
            "Error::validation(",
            "Error::forbidden(",
            "Error::not_found(",
            "Error::conflict(",
        ] {
            for (at, _) in text.match_indices(marker) {
                let mut end = past_close(&text, at + marker.len() - 1).unwrap();
                let mut coded = false;
                // Follow the builder chain: .with_field(…).with_param(…)….
                loop {
                    let rest = text[end..].trim_start();
                    let Some(call) = rest.strip_prefix(".with_") else {
                        break;
                    };
                    let Some(paren) = call.find('(') else { break };
                    if &call[..paren] == "code" {
                        coded = true;
                        break;
                    }
                    let open = text.len() - call.len() + paren;
                    end = past_close(&text, open).unwrap();
                }
                if !coded {
                    let line = text[..at].matches('\n').count() + 1;
                    found.push(format!("{name}:{line}"));
                }
            }
        }
    }
    found.sort();
    found
}

/// Issue 15.10: no refusal in the assets plugin reaches a user with a
/// generic code alone (whose English message a Chinese screen would show
/// after the kit's words): each has a code of its own. `Error::internal`
/// stays generic on purpose — its detail is for the logs, and the kit's
/// words (平台内部错误，请联系管理员) are all a user needs.
#[test]
fn assets_refusals_all_carry_a_code_of_their_own() {
    // The scan itself: a chain with a code passes, a bare refusal does not.
    let probe = std::env::temp_dir().join(format!("assets-refusals-{}", std::process::id()));
    std::fs::create_dir_all(&probe).unwrap();
    std::fs::write(
        probe.join("probe.rs"),
        "fn a() { Error::validation(\"f\", format!(\"x ({y})\")).with_field(\"g\").with_code(\"c\") }\n\
         fn b() { Error::forbidden(\"no (\\\"really\\\")\").with_param(\"k\", 1) }\n",
    )
    .unwrap();
    assert_eq!(refusals_without_code(&probe), ["probe.rs:2"]);
    std::fs::remove_dir_all(&probe).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Allowed exceptions, as `file:line`; none at present.
    let allowed: [&str; 0] = [];
    let left: Vec<String> = refusals_without_code(&root.join("plugins/assets/src"))
        .into_iter()
        .filter(|at| !allowed.contains(&at.as_str()))
        .collect();
    assert!(
        left.is_empty(),
        "refusals without a code of their own (add .with_code(\"…\") and its words in \
         plugins/assets/ui/i18n): {left:?}"
    );
}

/// Issue 15.10: every code the assets plugin refuses with has words in
/// zh-CN and in en (the plugin's or the kit's), so no English message is
/// shown on a Chinese screen; and the plugin's two dictionaries have the
/// same keys.
#[test]
fn assets_texts_cover_every_error_code_in_both_languages() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let texts = |path: &str| -> serde_json::Map<String, Value> {
        let raw = std::fs::read_to_string(root.join(path)).unwrap();
        serde_json::from_str(&raw).unwrap()
    };
    let (zh, en) = (
        texts("plugins/assets/ui/i18n/zh-CN.json"),
        texts("plugins/assets/ui/i18n/en.json"),
    );
    let (kit_zh, kit_en) = (
        texts("kernel/portal/kit/i18n/zh-CN.json"),
        texts("kernel/portal/kit/i18n/en.json"),
    );
    let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&zh), keys(&en), "the plugin's dictionaries differ");
    let codes = plugin_error_codes(&root.join("plugins/assets/src"));
    assert!(codes.len() > 30, "codes found: {codes:?}");
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
}

/// The school's manager with `rows` imported and booked (approved by the
/// prefecture's administrator): the manager's token and the cards.
fn manager_with_cards(
    k: &TestKernel,
    tree: &Tree,
    rows: &[(&str, &str, &str, &str)],
) -> (String, Vec<(String, String)>) {
    let manager = user(k, "manager", &tree.school);
    bind(k, &manager, "assets.manager", &tree.school);
    let approver = user(k, "approver", &tree.administration);
    bind(k, &approver, "org-admin", &tree.prefecture);
    let token = k.login("manager", PASSWORD);
    let cards = import_cards(k, &token, &k.login("approver", PASSWORD), rows);
    (token, cards)
}

/// Issue 12: the report charts are ECharts through `kit.chart` (the
/// hand-drawn SVG is gone): a canvas in the chart element, loaded from the
/// kernel under the sandboxed page's CSP with a clean console; tooltip
/// numbers carry the unit in the viewer's language; leaving the view
/// disposes the chart.
#[test]
fn assets_ui_report_charts_are_echarts_without_console_errors() {
    let Some((started, k, tree)) = start() else {
        return;
    };
    manager_with_cards(
        &k,
        &tree,
        &[
            ("台式计算机甲", "A020101", "主楼101室", "in_use"),
            ("台式计算机乙", "A020101", "主楼102室", "idle"),
        ],
    );
    let b = Browser::start();
    sign_in(&b, &k, "manager");
    // What the shell logged before (a signed-out session check's 401).
    b.console_errors();
    b.click(REPORTS_ENTRY);
    let chart = "#totals .kit-chart";
    let option = "var c = echarts.getInstanceByDom(document.querySelector(arguments[0])); \
                  var o = c.getOption(); \
                  return {tip: o.tooltip[0].valueFormatter(12345.6), data: o.series[0].data};";
    b.in_plugin_frame(|| {
        b.wait_text("#totals-table", "the unit's totals", |t| {
            t.contains("乌鲁木齐市第一中学") && t.contains("¥9,000.00")
        });
        b.wait_displayed(&format!("{chart} canvas"));
        assert_eq!(
            b.script(
                "return document.querySelectorAll('svg.chart').length",
                json!([])
            ),
            0,
            "no hand-drawn chart is left"
        );
        let drawn = b.script(option, json!([chart]));
        assert_eq!(drawn["tip"], "12,345.6元", "{drawn}");
        assert_eq!(
            drawn["data"][0], 9000,
            "the original value in yuan: {drawn}"
        );
        // The changes report's bars are ECharts too.
        b.wait_displayed("#changes .kit-chart canvas");
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // English: the tooltip's unit follows the viewer's language.
    b.click(r#"#lang-switch [data-lang="en"]"#);
    b.wait_text("#logout", "the portal in English", |t| t == "Sign out");
    b.in_plugin_frame(|| {
        b.wait_text("#view h1", "the English reports title", |t| t == "Reports");
        b.wait_displayed(&format!("{chart} canvas"));
        let drawn = b.script(option, json!([chart]));
        assert_eq!(drawn["tip"], "12,345.6 yuan", "{drawn}");
        // Leaving the view disposes its charts.
        b.script(
            "window.leftChart = document.querySelector(arguments[0]); return true;",
            json!([chart]),
        );
        open_section(&b, "cards");
        b.wait_until("the chart disposed once its view is gone", || {
            b.script(
                "return !window.leftChart.isConnected && !echarts.getInstanceByDom(window.leftChart)",
                json!([]),
            ) == true
        });
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    eprintln!(
        "assets UI report charts ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Issue 15.7: the trend is a line chart with its table; the annual
/// report's tables look like the paper form (number and title, filing
/// unit, money unit, grouped heads over a second header row, the vehicles
/// "of which" line) in the viewer's language, switch between forms, and
/// chart labels wrap instead of being cut.
#[test]
fn assets_ui_trend_and_annual_report_tables() {
    let Some((started, k, tree)) = start() else {
        return;
    };
    manager_with_cards(
        &k,
        &tree,
        &[
            ("年报台式计算机", "A020101", "主楼101室", "in_use"),
            ("年报公务轿车", "A020301", "车库", "in_use"),
        ],
    );
    let b = Browser::start();
    sign_in(&b, &k, "manager");
    b.console_errors();
    b.click(REPORTS_ENTRY);
    b.in_plugin_frame(|| {
        b.wait_text("#trend-table", "the trend's months", |t| t.contains("¥9,000.00"));
        b.wait_displayed("#trend .kit-chart canvas");
        let kind = b.script(
            "return echarts.getInstanceByDom(document.querySelector('#trend .kit-chart')).getOption().series[0].type",
            json!([]),
        );
        assert_eq!(kind, "line");
        let overflow = b.script(
            "var o = echarts.getInstanceByDom(document.querySelector('#totals .kit-chart')).getOption(); \
             return o.yAxis[0].axisLabel.overflow",
            json!([]),
        );
        assert_eq!(overflow, "break", "names wrap, never cut");

        b.wait_text("#annual-form", "the fixed-assets table", |t| {
            t.contains("表一") && t.contains("固定资产情况表") && t.contains("金额单位：元")
                && t.contains("其中：车辆") && t.contains("乌鲁木齐市第一中学")
        });
        assert_eq!(
            b.script("return document.querySelectorAll('#annual-table thead tr').length", json!([])),
            2,
            "grouped heads over a second header row"
        );
        let vehicles = b.script(
            "var r = document.querySelector('#annual-table tr[data-key=\"A0203\"]'); \
             return r.cells[7].textContent",
            json!([]),
        );
        assert_eq!(vehicles, "1", "the car is the vehicles line's closing quantity");
        b.script(
            "var e = document.querySelector('#annual-form'); \
             window.scrollTo(0, e.getBoundingClientRect().top + window.scrollY - 80); return true;",
            json!([]),
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        b.screenshot(&tianshan_kernel::plugins::tooling::target_dir().join("assets-annual-report.png"));
        set_value(&b, "#annual-which", "vehicles");
        b.click("#annual form button[type=submit]");
        b.wait_text("#annual-form", "the vehicles table", |t| {
            t.contains("表三") && t.contains("车辆情况表") && t.contains("未填写")
        });
        b.wait_displayed("#annual-print");
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    b.click(r#"#lang-switch [data-lang="en"]"#);
    b.wait_text("#logout", "the portal in English", |t| t == "Sign out");
    b.in_plugin_frame(|| {
        b.wait_text("#annual-form", "the English table", |t| {
            t.contains("Table 1")
                && t.contains("Fixed assets")
                && t.contains("Amounts in yuan")
                && t.contains("of which: vehicles")
                && !t.contains("固定资产")
        });
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    eprintln!(
        "assets UI trend and annual report ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Issue 15: on a phone without `BarcodeDetector` (iOS Safari, the WeChat
/// browser) the scan view reads a photo of the card's QR label with the
/// ZXing library the kit serves, and the scan is recorded on the task.
#[test]
fn assets_ui_scan_reads_a_label_photo_without_barcode_detector() {
    let Some((started, k, tree)) = start() else {
        return;
    };
    let (token, cards) = manager_with_cards(
        &k,
        &tree,
        &[("台式计算机丙", "A020101", "主楼201室", "in_use")],
    );
    let (card_id, asset_no) = cards[0].clone();
    let st = call(
        &k,
        &token,
        "POST",
        "/stocktakes",
        json!({"name": "主楼清查", "planned_from": "2026-11-01", "planned_to": "2026-12-31"}),
        201,
    );
    let st_id = st["id"].as_str().unwrap().to_string();
    call(
        &k,
        &token,
        "POST",
        &format!("/stocktakes/{st_id}/start"),
        Value::Null,
        200,
    );
    let tasks = call(
        &k,
        &token,
        "GET",
        &format!("/stocktakes/{st_id}/tasks"),
        Value::Null,
        200,
    );
    let task_id = tasks["records"][0]["id"].as_str().unwrap().to_string();

    // The card's label, as the labels page prints it (`ts:assets:<id>`).
    let (status, png, _) = k.raw(
        "GET",
        &format!("{API}/labels?ids={card_id}"),
        Some(&token),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert!(png.starts_with(b"\x89PNG"));
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("label.png");
    std::fs::write(&photo, &png).unwrap();

    let b = Browser::start_with(crate::portal::SAME_PROCESS_FRAMES);
    b.before_page_scripts(
        "delete window.BarcodeDetector; window.tianshanNoBarcodeDetector = true;",
    );
    sign_in(&b, &k, "manager");
    b.console_errors();
    b.goto(&format!("{}/#/p/assets/scan", k.base));
    b.in_plugin_frame(|| {
        b.wait_text("#view h1", "the scan view", |t| t == "扫码盘点");
        assert_eq!(
            b.script(
                "return window.tianshanNoBarcodeDetector === true && typeof window.BarcodeDetector",
                json!([]),
            ),
            "undefined",
            "the page runs without BarcodeDetector"
        );
        b.click(&format!("#scan-stocktake option[value=\"{st_id}\"]"));
        b.wait_until("the task offered", || {
            b.script(
                "var s = document.getElementById('scan-task'); \
                 return !!s && s.getAttribute('data-count') === '1' && s.value",
                json!([]),
            ) == json!(task_id)
        });
        // The photo input is offered (the kit has a decoder), and reads the label.
        b.wait_displayed("#scan-photo");
        assert_eq!(
            b.script(
                "var p = document.getElementById('scan-photo'); \
                 return [p.accept, p.getAttribute('capture')]",
                json!([]),
            ),
            json!(["image/*", "environment"])
        );
        b.upload("#scan-photo", &photo);
        b.wait_text("#scan-card", "the card the label names", |t| {
            t.contains(&asset_no)
        });
        b.wait_text("#scan-result", "the scan recorded", |t| {
            t.contains("已记录盘点结果：账实相符")
        });
    });
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    let task = call(
        &k,
        &token,
        "GET",
        &format!("/stocktakes/{st_id}/tasks/{task_id}"),
        Value::Null,
        200,
    );
    let scanned = task.to_string();
    assert!(
        scanned.contains(&card_id) && scanned.contains("\"result\":\"matched\""),
        "the task's card is marked scanned: {task}"
    );
    eprintln!(
        "assets UI photo scan ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A kernel built offline serves the libraries empty; pages must still
/// work: with every `/ui/kit/vendor/` request refused (and no
/// `BarcodeDetector`), a report chart is its numbers as a table, with the
/// unit, and the scan view says to type the code, which finds the card.
#[test]
fn assets_ui_without_the_vendor_libraries_charts_are_tables_and_codes_are_typed() {
    let Some((_, k, tree)) = start() else {
        return;
    };
    let (_, cards) = manager_with_cards(
        &k,
        &tree,
        &[("台式计算机丁", "A020101", "主楼301室", "in_use")],
    );
    let asset_no = cards[0].1.clone();
    let b = Browser::start_with(crate::portal::SAME_PROCESS_FRAMES);
    b.before_page_scripts("delete window.BarcodeDetector;");
    b.block_urls(&["*/ui/kit/vendor/*"]);
    sign_in(&b, &k, "manager");
    b.click(REPORTS_ENTRY);
    b.in_plugin_frame(|| {
        b.wait_text(
            "#totals .kit-chart.kit-chart-absent table",
            "the chart's numbers as a table",
            |t| t.contains("乌鲁木齐市第一中学") && t.contains("4,500元"),
        );
        assert_eq!(
            b.script(
                "return document.querySelectorAll('.kit-chart canvas').length",
                json!([])
            ),
            0
        );
    });
    b.goto(&format!("{}/#/p/assets/scan", k.base));
    b.in_plugin_frame(|| {
        b.wait_text("#scan-no-reader", "the advice to type the code", |t| {
            t.contains("手工输入编号")
        });
        assert_eq!(
            b.script(
                "return [document.getElementById('scan-photo').closest('.field').hidden, \
                 document.getElementById('scan-camera').hidden]",
                json!([]),
            ),
            json!([true, true]),
            "no photo input or camera without a decoder"
        );
        b.type_into("#scan-code", &asset_no);
        b.click(".scan-form button[type=\"submit\"]");
        b.wait_text("#scan-card", "the typed code's card", |t| {
            t.contains(&asset_no) && t.contains("台式计算机丁")
        });
    });
}

/// The school's manager imports `rows` (4,500 yuan each); their
/// registrations await the prefecture administrator's approval. Answers
/// the manager's token and the registration documents' (id, approval id).
fn registrations_in_approval(
    k: &TestKernel,
    tree: &Tree,
    rows: &[(&str, &str, &str, &str)],
) -> (String, Vec<(String, String)>) {
    let manager = user(k, "manager", &tree.school);
    bind(k, &manager, "assets.manager", &tree.school);
    let approver = user(k, "approver", &tree.administration);
    bind(k, &approver, "org-admin", &tree.prefecture);
    let token = k.login("manager", PASSWORD);
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
    let (status, out) = k.request(
        "POST",
        &format!("{API}/import"),
        Some(&token),
        Some(book.save_to_buffer().unwrap()),
    );
    assert_eq!(status, 201, "{out}");
    let docs = out["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let id = d.as_str().unwrap().to_string();
            let doc = call(
                k,
                &token,
                "GET",
                &format!("/documents/{id}"),
                Value::Null,
                200,
            );
            let approval = doc["document"]["data"]["approval_id"]
                .as_str()
                .unwrap()
                .to_string();
            (id, approval)
        })
        .collect();
    (token, docs)
}

/// Issue 12.2: the approver sees what is being approved. The portal's
/// approval page shows the plugin's summary of the document — labels in
/// the viewer's language, the amount formatted in yuan, the title in one
/// language — and the kit's panel in the plugin's to-dos refuses to send
/// it back without a reason (the kit's words next to the comment), then
/// sends it back with one; the applicant's document page shows the
/// outcome and the reason through the same panel.
#[test]
fn assets_ui_approval_summary_and_reason_in_the_panel() {
    let Some((started, k, tree)) = start() else {
        return;
    };
    let (_token, docs) = registrations_in_approval(
        &k,
        &tree,
        &[("投影仪（摘要）", "A020101", "主楼301室", "in_use")],
    );
    let (doc_id, approval) = docs[0].clone();
    let b = Browser::start();
    sign_in(&b, &k, "approver");
    b.goto(&format!("{}/#/approvals/{approval}", k.base));
    b.wait_text("#approval-summary", "the summary in Chinese", |t| {
        t.contains("原值合计") && t.contains("4,500.00元") && t.contains("资产数量")
    });
    b.wait_text("#approval-title", "the title in Chinese only", |t| {
        t.starts_with("资产登记 DJ") && !t.contains("Registration")
    });
    b.click(r#"#lang-switch [data-lang="en"]"#);
    b.wait_text("#logout", "the English shell", |t| t == "Sign out");
    b.goto(&format!("{}/#/approvals/{approval}", k.base));
    b.refresh();
    b.wait_text("#approval-summary", "the summary in English", |t| {
        t.contains("Total original value") && t.contains("4,500.00 yuan") && !t.contains("原值合计")
    });
    b.wait_text("#approval-title", "the title in English only", |t| {
        t.starts_with("Registration DJ") && !t.contains("资产登记")
    });
    b.click(r#"#lang-switch [data-lang="zh-CN"]"#);
    b.wait_text("#logout", "the Chinese shell", |t| t != "Sign out");

    // In the plugin's to-dos, the kit's panel: no reason, no sending back.
    b.goto(&format!("{}/#/p/assets/todos", k.base));
    b.in_plugin_frame(|| {
        let item = format!(r#"#todo-list li.todo[data-approval="{approval}"]"#);
        b.wait_text(&item, "the item with its summary", |t| {
            t.contains("原值合计") && t.contains("4,500.00元")
        });
        b.click(&format!("{item} .todo-title"));
        b.click(&format!("{item} button.reject"));
        b.wait_text(
            &format!("{item} [data-error-for=\"comment\"]"),
            "the kit's reason-required words",
            |t| t == "退回须填写理由，便于申请人修改。",
        );
        assert!(
            b.script("return !document.getElementById('kit-confirm')", json!([])) == true,
            "no confirmation without a reason"
        );
        b.type_into(&format!("{item} textarea"), "请补充购置发票");
        b.click(&format!("{item} button.reject"));
        b.wait_text("#kit-confirm", "the confirmation", |t| {
            t.contains("确定退回")
        });
        b.click("#kit-confirm-ok");
        b.wait_text("#flash", "the sent-back message", |t| t.contains("已退回"));
        b.wait_displayed("#todo-empty");
    });
    let (_, out) = k.get(&format!("/api/v1/approvals/{approval}"));
    assert_eq!(out["approval"]["status"], "rejected", "{out}");
    sign_out(&b);

    // The applicant's document page: the outcome and the reason, by the panel.
    sign_in(&b, &k, "manager");
    b.goto(&format!("{}/#/p/assets/documents/{doc_id}", k.base));
    b.in_plugin_frame(|| {
        b.wait_text("#doc-approval", "the panel on the document page", |t| {
            t.contains("已退回") && t.contains("请补充购置发票") && t.contains("原值合计")
        });
    });
    eprintln!(
        "assets_ui_approval_summary_and_reason_in_the_panel: {:?}",
        started.elapsed()
    );
}

/// Issue 12.2: the assets to-do page is the kit's list of the kernel's
/// to-dos, filtered to this plugin: an approval of another plugin awaiting
/// the same approver is in the portal's list but not in the page's.
#[test]
fn assets_ui_todo_list_shows_only_this_plugins_items() {
    if !support::have(support::Service::Browser) {
        return;
    }
    let k = TestKernel::start();
    let prefecture = org(&k, "org-650000", "prefecture", "650100", "乌鲁木齐市");
    let county = org(&k, &prefecture, "county", "650102", "天山区");
    let school = org(
        &k,
        &county,
        "unit",
        &unified_social_credit_code("650102", 2),
        "天山区第一小学",
    );
    k.install_ok("assets");
    k.install_ok("approver");
    let manager = user(&k, "manager", &school);
    bind(&k, &manager, "assets.manager", &school);
    // One approver for both: the school's parent (the county) approves
    // registrations; the approver plugin's first step is the county's.
    let county_office = org(
        &k,
        &county,
        "unit",
        &unified_social_credit_code("650102", 1),
        "天山区机关事务管理局",
    );
    let approver = user(&k, "approver", &county_office);
    bind(&k, &approver, "org-admin", &county);
    bind(&k, &approver, "approver.officer", &county);
    let token = k.login("manager", PASSWORD);
    let (status, out) = k.request(
        "POST",
        "/api/v1/p/approver/requests",
        Some(&token),
        Some(json!({"title": "采购打印机"}).to_string().into_bytes()),
    );
    assert_eq!(status, 201, "{out}");
    let other = out["approval"]["id"].as_str().unwrap().to_string();
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
    for (c, v) in ["打印机（待办）", "A020101", "2024-06-01"]
        .iter()
        .enumerate()
    {
        sheet.write_string(1, c as u16, *v).unwrap();
    }
    sheet.write_number(1, 3, 3200.0).unwrap();
    sheet.write_string(1, 4, "教学楼101").unwrap();
    sheet.write_string(1, 5, "in_use").unwrap();
    let (status, out) = k.request(
        "POST",
        &format!("{API}/import"),
        Some(&token),
        Some(book.save_to_buffer().unwrap()),
    );
    assert_eq!(status, 201, "{out}");
    let (_, todos) = k.request(
        "GET",
        "/api/v1/todos",
        Some(&k.login("approver", PASSWORD)),
        None,
    );
    assert_eq!(
        todos["total"], 2,
        "both approvals await the approver: {todos}"
    );

    let b = Browser::start();
    sign_in(&b, &k, "approver");
    b.click("#menu-todos");
    b.wait_displayed(&format!(r#"#todo-list [data-approval="{other}"]"#));
    b.goto(&format!("{}/#/p/assets/todos", k.base));
    b.in_plugin_frame(|| {
        b.wait_text("#todo-list li.todo", "the assets registration", |t| {
            t.contains("资产登记") && t.contains("3,200.00元")
        });
        let plugins = b.script(
            "return Array.from(document.querySelectorAll('#todo-list li.todo')).map(function (li) { return li.getAttribute('data-plugin'); })",
            json!([]),
        );
        assert_eq!(plugins, json!(["assets"]), "only this plugin's to-dos");
        assert_eq!(
            b.script(
                "return !!document.querySelector('#todo-list [data-approval=\"' + arguments[0] + '\"]')",
                json!([other]),
            ),
            false
        );
    });
}

/// Issue 12.2: a document page with its approval prints without the
/// portal's bars and menu or the page's navigation and buttons, the record
/// and its approval timeline kept.
#[test]
fn assets_ui_print_view_hides_navigation() {
    let Some((_, k, tree)) = start() else {
        return;
    };
    let (_token, docs) = registrations_in_approval(
        &k,
        &tree,
        &[("复印机（打印）", "A020101", "主楼302室", "in_use")],
    );
    let (doc_id, _) = docs[0].clone();
    let b = Browser::start();
    sign_in(&b, &k, "manager");
    b.goto(&format!("{}/#/p/assets/documents/{doc_id}", k.base));
    let shown = "var e = document.querySelector(arguments[0]); \
                 return !!e && getComputedStyle(e).display !== 'none' && getComputedStyle(e).visibility !== 'hidden';";
    b.in_plugin_frame(|| {
        b.wait_text("#doc-approval", "the approval panel", |t| {
            t.contains("发起申请")
        });
        b.wait_displayed("#doc-print");
    });
    b.emulate_media("print");
    for css in [".topbar", "#menu", ".plugin-bar"] {
        assert_eq!(b.script(shown, json!([css])), false, "{css} printed");
    }
    b.in_plugin_frame(|| {
        // Printing from the portal, the frame follows the print media;
        // kit.print() also marks the page `kit-print` while it prints.
        let media = b.script("return matchMedia('print').matches", json!([]));
        if media != true {
            b.script(
                "document.documentElement.classList.add('kit-print')",
                json!([]),
            );
        }
        for css in ["#nav", "#doc-print", "#lang-switch"] {
            assert_eq!(
                b.script(shown, json!([css])),
                false,
                "{css} printed (print media: {media})"
            );
        }
        for css in ["#doc-title", "#doc-approval .kit-timeline", "#doc-history"] {
            assert_eq!(b.script(shown, json!([css])), true, "{css} not printed");
        }
    });
    b.emulate_media("");
    b.in_plugin_frame(|| {
        b.script(
            "document.documentElement.classList.remove('kit-print')",
            json!([]),
        );
        assert_eq!(
            b.script(shown, json!(["#doc-print"])),
            true,
            "the page's buttons on screen again"
        );
    });
    assert_eq!(
        b.script(shown, json!(["#menu"])),
        true,
        "the navigation on screen"
    );
}
