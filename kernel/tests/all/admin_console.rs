//! The admin console in a real browser: a prefecture admin creates a user
//! in its subtree and resets their password, the user meets the forced
//! change at login, the platform admin reads the audit trail. Plus the
//! console's dictionaries (key parity, every key the script uses).

use serde_json::json;

use crate::identity::{PASSWORD, person, two_counties};
use crate::portal::Browser;
use crate::support::TestKernel;

fn skip_browser() -> bool {
    !crate::support::have(crate::support::Service::Browser)
}

fn sign_in(b: &Browser, username: &str, password: &str) {
    b.wait_displayed("#login-username");
    b.type_into("#login-username", username);
    b.type_into("#login-password", password);
    b.click("#login-submit");
}

#[test]
fn a_prefecture_admin_manages_its_subtree_and_the_platform_admin_reads_the_audit() {
    if skip_browser() {
        return;
    }
    let k = TestKernel::start();
    let t = two_counties(&k);
    person(&k, "pref.admin", &t.unit_a, &[("org-admin", &t.prefecture)]);
    person(&k, "deputy.b", &t.unit_b, &[]);
    let b = Browser::start();
    b.goto(&format!("{}/", k.base));
    sign_in(&b, "pref.admin", PASSWORD);
    b.wait_displayed("#admin-menu a[data-admin=\"users\"]");
    // Administrators of a subtree get no platform pages.
    assert_eq!(
        b.script(
            "return document.querySelectorAll('#admin-menu a[data-admin=\"system\"]').length",
            json!([])
        ),
        0
    );
    b.click("#admin-menu a[data-admin=\"users\"]");
    b.wait_displayed("#admin-new-username");
    // The user list covers the prefecture's subtree only.
    b.wait_displayed("#admin-users [data-user=\"pref.admin\"]");
    assert_eq!(
        b.script(
            "return document.querySelectorAll('#admin-users [data-user=\"admin\"]').length",
            json!([])
        ),
        0,
        "the platform admin is outside the prefecture"
    );
    b.type_into("#admin-new-username", "new.clerk");
    b.type_into("#admin-new-name", "新来的职员");
    b.script(
        "document.getElementById('admin-new-unit').value = arguments[0]",
        json!([t.unit_b]),
    );
    b.type_into("#admin-new-password", "first one from the admin");
    b.click("#admin-new-create");
    let row = "#admin-users [data-user=\"new.clerk\"]";
    b.wait_text(row, "the new user in the list", |t| {
        t.contains("新来的职员")
    });
    b.click(&format!("{row} a"));
    b.wait_text("#admin-user-username", "the user's page", |t| {
        t == "new.clerk"
    });
    // The profile plugins read: rank from the kernel's list, position.
    b.wait_until("the post ranks in the form", || {
        b.script(
            "return document.querySelectorAll('#admin-user-rank option').length",
            json!([]),
        ) == 10
    });
    b.script(
        "document.getElementById('admin-user-rank').value = 'vice_section'",
        json!([]),
    );
    b.type_into("#admin-user-position", "综合科副科长");
    b.click("#admin-user-save");
    b.wait_until("the profile saved", || {
        let (_, users) = k.get("/api/v1/users?q=new.clerk");
        users["users"][0]["post_rank"] == "vice_section"
            && users["users"][0]["position"] == "综合科副科长"
    });
    b.type_into("#admin-reset-password", "reset by the prefecture");
    b.click("#admin-reset-submit");
    b.wait_text("#admin-user-status", "the forced change flag", |t| {
        t.contains("下次登录须改密码")
    });
    b.click("#logout");

    // The user meets the forced change at login, in the login card.
    sign_in(&b, "new.clerk", "reset by the prefecture");
    b.wait_text("#admin-forced-intro", "the forced change prompt", |t| {
        t.contains("new.clerk") && t.contains("管理员")
    });
    b.type_into("#admin-forced-new", "my own clerk passphrase");
    b.type_into("#admin-forced-again", "my own clerk passphrase");
    b.click("#admin-forced-submit");
    b.wait_text("#user-name", "the clerk signed in", |t| t == "新来的职员");
    // Self-service: the account page lists this session.
    b.click("#admin-menu a[data-admin=\"account\"]");
    b.wait_text("#admin-sessions", "the own session", |t| {
        t.contains("当前会话")
    });
    // 出差代理: a colleague approves in the clerk's place from today.
    b.wait_text("#admin-delegation", "no delegation yet", |t| {
        t.contains("未设置")
    });
    let today = crate::identity::region_day(0);
    b.type_into("#admin-delegation-delegate", "deputy.b");
    b.script(
        "document.getElementById('admin-delegation-from').value = arguments[0]; \
         document.getElementById('admin-delegation-until').value = arguments[0];",
        json!([today]),
    );
    b.click("#admin-delegation-save");
    b.wait_text("#admin-delegation", "the delegation in force", |t| {
        t.contains("代理中") && t.contains("deputy.b")
    });
    b.click("#logout");

    // The platform admin sees the whole trail, with filters, in English too.
    sign_in(&b, "admin", crate::support::ADMIN_PASSWORD);
    b.wait_displayed("#admin-menu a[data-admin=\"audit\"]");
    b.click("#admin-menu a[data-admin=\"audit\"]");
    b.wait_displayed("#admin-audit [data-action=\"user.password_reset\"]");
    b.type_into("#admin-audit-action", "user.create");
    b.click("#admin-audit-apply");
    b.wait_until("only user.create records", || {
        b.script(
            "var rows = document.querySelectorAll('#admin-audit tbody tr'); \
             return rows.length > 0 && Array.prototype.every.call(rows, function (r) { \
               return r.getAttribute('data-action') === 'user.create'; })",
            json!([]),
        ) == true
    });
    let export = b.script(
        "return document.getElementById('admin-audit-export').getAttribute('href')",
        json!([]),
    );
    assert!(
        export.as_str().unwrap().contains("action=user.create"),
        "{export}"
    );
    // The chain, verified by the kernel from the console.
    b.click("#admin-audit-verify");
    b.wait_text("#admin-audit-verdict", "the chain's verdict", |t| {
        t.contains("完整") && t.contains("已签名")
    });
    b.click(r#"#lang-switch [data-lang="en"]"#);
    b.wait_text(
        "#admin-menu a[data-admin=\"audit\"]",
        "the English label",
        |t| t.contains("Audit trail"),
    );
    b.click("#admin-menu a[data-admin=\"system\"]");
    b.wait_text("#admin-system", "the system page", |t| {
        t.contains("sqlite") && t.contains("Not configured")
    });
}

/// The data center in the portal: a member finds a plan indicator in the
/// catalogue; the platform administrator enters a value of an indicator
/// nobody's system measures, which then shows for the region, and a
/// member may not enter one.
#[test]
fn the_catalogue_and_a_plan_value_entered_by_hand() {
    if skip_browser() {
        return;
    }
    let k = TestKernel::start();
    let t = two_counties(&k);
    person(&k, "clerk.a", &t.unit_a, &[]);
    let b = Browser::start();
    b.goto(&format!("{}/", k.base));
    sign_in(&b, "clerk.a", PASSWORD);
    b.wait_displayed("#admin-menu a[data-admin=\"datacenter\"]");
    b.click("#admin-menu a[data-admin=\"datacenter\"]");
    b.wait_displayed("#dc-catalogue tr[data-code=\"plan.energy_per_area\"]");
    // Units that are words read in Chinese: 辆, not "vehicles".
    b.wait_text(
        "#dc-catalogue tr[data-code=\"plan.nev_count\"]",
        "the unit in Chinese",
        |t| t.contains("辆") && !t.contains("vehicles"),
    );
    b.type_into("#dc-filter", "标准");
    b.wait_until("only the standards", || {
        b.script(
            "var rows = document.querySelectorAll('#dc-catalogue tbody tr'); \
             return rows.length === 2 && !!document.querySelector('#dc-catalogue tr[data-code=\"plan.regional_standards\"]')",
            json!([]),
        ) == true
    });
    b.click("#dc-catalogue tr[data-code=\"plan.regional_standards\"] a");
    b.wait_text("#dc-facts", "the indicator's facts", |t| {
        t.contains("plan.regional_standards") && t.contains("不低于 20")
    });
    // A member reads but may not enter: the kernel says so in Chinese.
    b.type_into("#dc-entry-value", "3");
    b.click("#dc-entry-save");
    b.wait_text(".admin-banner", "the refusal", |t| {
        !t.is_empty() && !t.contains("forbidden")
    });
    b.click("#logout");

    sign_in(&b, "admin", crate::support::ADMIN_PASSWORD);
    b.goto(&format!("{}/#/datacenter/plan.regional_standards", k.base));
    b.wait_displayed("#dc-entry-value");
    b.type_into("#dc-entry-org", "org-650000");
    b.script(
        "document.getElementById('dc-entry-period').value = '2026'; return true;",
        json!([]),
    );
    b.type_into("#dc-entry-value", "12");
    b.click("#dc-entry-save");
    b.wait_text("#dc-by-org", "the entered value for the region", |t| {
        t.contains("2026") && t.contains("12")
    });
    let (status, values) =
        k.get("/api/v1/datacenter/indicators/plan.regional_standards/values?per=year");
    assert_eq!(status, 200, "{values}");
    assert_eq!(values["rows"][0]["value"], 12.0, "{values}");
}

/// Values of one plan indicator at both counties, entered as the platform
/// administrator: 300 at 天山区, 120 at 沙依巴克区 (420 at the prefecture).
fn enter_piles(k: &TestKernel, t: &crate::identity::TwoCounties) {
    let (status, out) = k.request(
        "POST",
        "/api/v1/datacenter/indicators/plan.charging_piles/values",
        None,
        Some(
            json!({"values": [
                {"org": t.county_a, "period": "2026", "value": 300},
                {"org": t.county_b, "period": "2026", "value": 120}
            ]})
            .to_string()
            .into_bytes(),
        ),
    );
    assert_eq!(status, 201, "{out}");
}

/// The leaders' overview (issue 22.3): a prefecture's administrator sees
/// the plan at the prefecture, picks an indicator, finds the counties
/// ranked, goes down to a county and to its unit, and back up through the
/// path; the region, outside their reach, shows nothing but the kernel's
/// refusal.
#[test]
fn the_leaders_overview_drills_down_from_the_prefecture_to_a_unit() {
    if skip_browser() {
        return;
    }
    let k = TestKernel::start();
    let t = two_counties(&k);
    enter_piles(&k, &t);
    person(&k, "leader.p", &t.unit_a, &[("org-admin", &t.prefecture)]);
    let b = Browser::start();
    b.goto(&format!("{}/", k.base));
    sign_in(&b, "leader.p", PASSWORD);
    b.wait_displayed("#admin-menu a[data-admin=\"overview\"]");
    b.click("#admin-menu a[data-admin=\"overview\"]");
    b.wait_text("#admin-view h1", "the prefecture's overview", |t| {
        t.contains("乌鲁木齐市")
    });
    let card = "#ov-cards [data-code=\"plan.charging_piles\"]";
    b.wait_text(card, "the indicator's card at the prefecture", |t| {
        t.contains("充电桩数量") && t.contains("420") && t.contains("个")
    });
    b.click(card);
    b.wait_until("the counties ranked by the picked indicator", || {
        b.script(
            "var rows = document.querySelectorAll('#ov-below tbody tr'); \
             return rows.length === 2 && rows[0].textContent.indexOf('天山区') >= 0 \
               && rows[0].textContent.indexOf('300') >= 0 && rows[1].textContent.indexOf('120') >= 0",
            json!([]),
        ) == true
    });
    b.click(&format!(
        "#ov-below tr[data-org=\"{}\"] a.ov-drill",
        t.county_a
    ));
    b.wait_text("#admin-view h1", "the county's overview", |t| {
        t.contains("天山区")
    });
    b.wait_text("#ov-crumbs", "the path from the prefecture", |t| {
        t.contains("乌鲁木齐市") && t.contains("天山区")
    });
    // The choice of indicator follows the viewer down.
    b.wait_text("#ov-below h2", "the same indicator below", |t| {
        t.contains("充电桩数量")
    });
    b.click(&format!(
        "#ov-below tr[data-org=\"{}\"] a.ov-drill",
        t.unit_a
    ));
    b.wait_text("#ov-no-below", "a unit has nothing below", |t| {
        t.contains("基层单位")
    });
    b.click(&format!("#ov-crumbs a[data-org=\"{}\"]", t.prefecture));
    b.wait_text("#admin-view h1", "back at the prefecture", |t| {
        t.contains("乌鲁木齐市")
    });
    // Outside reach: the kernel's answer, in Chinese, and no figures.
    b.goto(&format!("{}/#/overview/org-650000", k.base));
    b.wait_text(".admin-banner", "the refusal", |t| !t.is_empty());
    assert_eq!(
        b.script(
            "return document.querySelectorAll('#ov-cards').length",
            json!([])
        ),
        json!(0)
    );
    b.click(r#"#lang-switch [data-lang="en"]"#);
    b.wait_text(
        "#admin-menu a[data-admin=\"overview\"]",
        "the English label",
        |t| t.contains("Leaders' overview"),
    );
}

/// Sharing and the open data page (issue 22.4): the platform administrator
/// opens an indicator and grants a plugin publishing into it; then anyone,
/// signed out, finds it on /open/, reads it rolled up at the region and
/// one level below, goes down to the prefecture, and downloads it.
#[test]
fn an_indicator_opened_by_the_administrator_is_read_on_the_open_page_signed_out() {
    if skip_browser() {
        return;
    }
    let k = TestKernel::start();
    let t = two_counties(&k);
    k.install_ok("approver");
    enter_piles(&k, &t);
    // The plan's indicators start open; this one is made private first,
    // and then the open API does not know it.
    let (status, out) = k.request(
        "PUT",
        "/api/v1/datacenter/indicators/plan.charging_piles/sharing",
        None,
        Some(json!({"sharing": "private"}).to_string().into_bytes()),
    );
    assert_eq!(status, 200, "{out}");
    let (status, _) = k.request(
        "GET",
        "/api/v1/open/datasets/plan.charging_piles",
        Some(""),
        None,
    );
    assert_eq!(status, 404);

    let b = Browser::start();
    b.goto(&format!("{}/", k.base));
    sign_in(&b, "admin", crate::support::ADMIN_PASSWORD);
    b.wait_displayed("#admin-menu a[data-admin=\"datacenter\"]");
    b.goto(&format!("{}/#/datacenter/plan.charging_piles", k.base));
    b.wait_displayed("#dc-sharing");
    b.script(
        "var s = document.getElementById('dc-sharing'); s.value = 'open'; return true;",
        json!([]),
    );
    b.click("#dc-add-grant");
    b.wait_displayed("#dc-grants select[name=\"plugin\"]");
    b.script(
        "var g = document.querySelector('#dc-grants .dc-grant'); \
         var p = g.querySelector('select[name=plugin]'); p.value = 'approver'; p.dispatchEvent(new Event('change')); \
         var a = g.querySelector('select[name=access]'); a.value = 'publish'; a.dispatchEvent(new Event('change')); \
         return true;",
        json!([]),
    );
    b.click("#dc-sharing-save");
    b.wait_text(".admin-banner", "saved", |t| t.contains("共享设置已保存"));
    let (status, out) = k.get("/api/v1/datacenter/indicators/plan.charging_piles");
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["indicator"]["sharing"], "open", "{out}");
    assert_eq!(
        out["indicator"]["shared_with"],
        json!([{"plugin": "approver", "access": "publish"}]),
        "{out}"
    );
    b.click("#logout");

    b.wait_displayed("#login-open-data");
    b.click("#login-open-data");
    let row = "#open-datasets tr[data-code=\"plan.charging_piles\"]";
    b.wait_text(row, "the open indicator in the catalogue", |t| {
        t.contains("充电桩数量") && t.contains("个")
    });
    b.click(&format!("{row} a"));
    b.wait_text("#open-years", "the region's yearly value", |t| {
        t.contains("2026") && t.contains("420")
    });
    let below = format!("#open-below tr[data-org=\"{}\"]", t.prefecture);
    b.wait_text(&below, "the prefecture below the region", |t| {
        t.contains("乌鲁木齐市") && t.contains("420")
    });
    b.click(&format!("{below} a"));
    b.wait_until("the counties below the prefecture", || {
        b.script(
            "var rows = document.querySelectorAll('#open-below tbody tr'); \
             return rows.length === 2 && rows[0].textContent.indexOf('天山区') >= 0",
            json!([]),
        ) == true
    });
    b.wait_text("#open-crumbs", "the path", |t| {
        t.contains("全区") && t.contains("乌鲁木齐市")
    });
    b.click("#open-lang");
    b.wait_text("#open-years", "English headings", |t| t.contains("Year"));
    // The file behind the download link, without a session.
    let href = b.script(
        "return document.querySelector('.open-actions a[data-format=csv]').getAttribute('href')",
        json!([]),
    );
    let (status, bytes, _) = k.raw("GET", href.as_str().unwrap(), Some(""), None, &[]);
    assert_eq!(status, 200);
    let csv = String::from_utf8(bytes).unwrap();
    assert!(csv.contains("650102") && csv.contains("300"), "{csv}");
    // Raw per-org rows stay closed, even for an open indicator.
    let (status, out) = k.request(
        "GET",
        "/api/v1/open/datasets/plan.charging_piles?rollup=false",
        Some(""),
        None,
    );
    assert_eq!(status, 422, "{out}");
}

#[test]
fn the_console_dictionaries_match_and_cover_the_script() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("portal");
    let read = |lang: &str| -> serde_json::Map<String, serde_json::Value> {
        let text = std::fs::read_to_string(dir.join(format!("i18n/admin.{lang}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let zh = read("zh-CN");
    let en = read("en");
    let zh_keys: Vec<&String> = zh.keys().collect();
    let en_keys: Vec<&String> = en.keys().collect();
    assert_eq!(zh_keys, en_keys, "zh-CN and en have the same keys");
    for (key, value) in zh.iter().chain(en.iter()) {
        assert!(
            value.as_str().is_some_and(|s| !s.trim().is_empty()),
            "{key} is empty"
        );
    }
    // Every literal key the script asks for exists.
    let script = std::fs::read_to_string(dir.join("admin.js")).unwrap();
    let mut missing = Vec::new();
    for (start, _) in script.match_indices("'admin.") {
        let rest = &script[start + 1..];
        let key = &rest[..rest.find('\'').unwrap()];
        // Keys ending in '.' are prefixes completed at run time.
        if !key.ends_with('.') && !zh.contains_key(key) {
            missing.push(key.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "keys missing from the dictionaries: {missing:?}"
    );
    // Every error code the kernel answers a person with has a sentence.
    for code in [
        "validation_failed",
        "forbidden",
        "not_found",
        "conflict",
        "too_many_attempts",
        "password_change_required",
        "invalid_credentials",
    ] {
        assert!(zh.contains_key(&format!("admin.error.{code}")), "{code}");
    }
}
