//! The register import with the file a county unit really sent (issue
//! 15.9): a merged title row and a 填报单位 line above Chinese headers with
//! units, Chinese labels and category names, Chinese date forms, `6,500元`,
//! the unit's own asset numbers, 计量单位 and 备注, and 合计 / 制表人 rows
//! at the bottom. It imports in one upload; its cards go to the county for
//! registration; a second upload imports nothing new; a broken copy names
//! every problem of every row with a stable code; a CSV is read too.

use std::time::{Duration, Instant};

use rust_xlsxwriter::{Format, Workbook};
use serde_json::{Value, json};

use crate::identity::{TwoCounties, person, two_counties};
use crate::support::TestKernel;

const P: &str = "/api/v1/p/assets";

const HEADERS: &[&str] = &[
    "序号",
    "资产编号",
    "资产名称",
    "资产分类",
    "规格型号",
    "计量单位",
    "数量",
    "取得方式",
    "取得日期",
    "原值(元)",
    "使用部门",
    "使用人",
    "存放地点",
    "使用状况",
    "备注",
];

/// The county's register: rows are (no, name, category, unit, date, value,
/// status, note); `date` and `value` are written as text unless they parse
/// as numbers (an Excel serial date, a plain amount).
pub(crate) fn county_register(rows: &[[&str; 8]]) -> Vec<u8> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let title = Format::new()
        .set_bold()
        .set_align(rust_xlsxwriter::FormatAlign::Center);
    sheet
        .merge_range(
            0,
            0,
            0,
            HEADERS.len() as u16 - 1,
            "天山区机关事务服务中心固定资产登记表",
            &title,
        )
        .unwrap();
    sheet
        .write_string(1, 0, "填报单位：天山区机关事务服务中心")
        .unwrap();
    sheet.write_string(1, 10, "金额单位：元").unwrap();
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(2, c as u16, *h).unwrap();
    }
    for (i, [no, name, category, unit, date, value, status, note]) in rows.iter().enumerate() {
        let r = 3 + i as u32;
        sheet.write_number(r, 0, (i + 1) as f64).unwrap();
        sheet.write_string(r, 1, *no).unwrap();
        sheet.write_string(r, 2, *name).unwrap();
        sheet.write_string(r, 3, *category).unwrap();
        sheet.write_string(r, 5, *unit).unwrap();
        sheet.write_number(r, 6, 1.0).unwrap();
        sheet.write_string(r, 7, "购置").unwrap();
        match date.parse::<f64>() {
            Ok(n) => sheet.write_number(r, 8, n).unwrap(),
            Err(_) => sheet.write_string(r, 8, *date).unwrap(),
        };
        match value.parse::<f64>() {
            Ok(n) => sheet.write_number(r, 9, n).unwrap(),
            Err(_) => sheet.write_string(r, 9, *value).unwrap(),
        };
        sheet.write_string(r, 10, "办公室").unwrap();
        sheet.write_string(r, 11, "王芳").unwrap();
        sheet.write_string(r, 12, "主楼301室").unwrap();
        sheet.write_string(r, 13, *status).unwrap();
        sheet.write_string(r, 14, *note).unwrap();
    }
    let r = 3 + rows.len() as u32;
    sheet.write_string(r, 0, "合计").unwrap();
    sheet.write_number(r, 9, 99_999.0).unwrap();
    sheet.write_string(r + 2, 0, "制表人：李娜").unwrap();
    sheet.write_string(r + 2, 8, "审核人：张伟").unwrap();
    book.save_to_buffer().unwrap()
}

fn upload(k: &TestKernel, token: &str, query: &str, body: Vec<u8>) -> (u16, Value) {
    k.request(
        "POST",
        &format!("{P}/import{query}"),
        Some(token),
        Some(body),
    )
}

fn get(k: &TestKernel, token: &str, path: &str) -> Value {
    let (status, out) = k.request("GET", &format!("{P}{path}"), Some(token), None);
    assert_eq!(status, 200, "{path}: {out}");
    out
}

#[test]
fn assets_import_of_a_real_county_register() {
    let k = TestKernel::start();
    let TwoCounties {
        unit_a, county_a, ..
    } = two_counties(&k);
    k.install_ok("assets");
    let manager = person(&k, "manager.a", &unit_a, &[("assets.manager", &unit_a)]);
    let county_admin = person(&k, "county.admin", &unit_a, &[("org-admin", &county_a)]);

    let rows = [
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
        // An Excel serial date (2024-03-15).
        [
            "TS-2024-001",
            "办公椅",
            "办公椅",
            "把",
            "45366",
            "350",
            "在用",
            "",
        ],
    ];
    let file = county_register(&rows);

    // A dry run lists what would come in and writes nothing.
    let (status, dry) = upload(&k, &manager, "?dry_run=true", file.clone());
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["would_import"].as_array().unwrap().len(), 4, "{dry}");
    assert_eq!(get(&k, &manager, "/cards")["total"], 0);

    let (status, out) = upload(&k, &manager, "", file.clone());
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["imported"], 4, "{out}");
    let listed: Vec<&str> = out["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["asset_no"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ["TS-2021-001", "TS-2021-002", "TS-2021-003", "TS-2024-001"]
    );

    // The unit's numbers, the category by name, labels, dates, amounts,
    // unit of measure and note are all kept.
    let found = get(&k, &manager, "/cards?q=TS-2021-001");
    let card = &found["records"][0]["data"];
    assert_eq!(card["asset_no"], "TS-2021-001", "{found}");
    assert_eq!(card["category"], "A050105");
    assert_eq!(card["acquired_on"], "2021-03-05");
    assert_eq!(card["original_value"], 650_000);
    assert_eq!(card["use_status"], "in_use");
    assert_eq!(card["acquisition_method"], "purchase");
    assert_eq!(card["measure_unit"], "张");
    assert_eq!(card["note"], "二楼会议室");
    let printer = &get(&k, &manager, "/cards?q=TS-2021-003")["records"][0]["data"];
    assert_eq!(
        (
            printer["acquired_on"].as_str(),
            printer["original_value"].as_i64()
        ),
        (Some("2021-03-05"), Some(125_050))
    );
    let chair = &get(&k, &manager, "/cards?q=TS-2024-001")["records"][0]["data"];
    assert_eq!(chair["acquired_on"], "2024-03-15");

    // Not booked at once: a registration document waits for the county.
    assert_ne!(card["state"], "booked");
    assert_eq!(out["documents"].as_array().unwrap().len(), 1, "{out}");
    let (status, todos) = k.request(
        "GET",
        "/api/v1/todos?kind=pending",
        Some(&county_admin),
        None,
    );
    assert_eq!(status, 200, "{todos}");
    let items = todos["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{todos}");
    let approval = items[0]["approval"]["id"].as_str().unwrap();
    let (status, decided) = k.request(
        "POST",
        &format!("/api/v1/approvals/{approval}/approve"),
        Some(&county_admin),
        Some(json!({"comment": "同意"}).to_string().into_bytes()),
    );
    assert_eq!(status, 200, "{decided}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&k, &manager, "/cards?state=booked")["total"] != 4 {
        assert!(
            Instant::now() < deadline,
            "the registration never booked the cards"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The same file again imports nothing new and says why.
    let (status, again) = upload(&k, &manager, "", file);
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["imported"], 0, "{again}");
    assert_eq!(again["skipped"].as_array().unwrap().len(), 4, "{again}");
    assert_eq!(again["skipped"][0]["code"], "duplicate_existing");
    assert_eq!(get(&k, &manager, "/cards")["total"], 4);

    // A broken copy: every problem of every row, with row, column, code.
    let broken = county_register(&[
        [
            "TS-2025-001",
            "沙发",
            "木质会议桌",
            "组",
            "2021-02-30",
            "6,500元",
            "报废",
            "",
        ],
        [
            "TS-2025-001",
            "",
            "A050104",
            "组",
            "明年",
            "12.345",
            "在用",
            "",
        ],
        [
            "TS-2025-002",
            "沙发",
            "A050104",
            "组",
            "2099-01-01",
            "0",
            "在用",
            "",
        ],
    ]);
    let (status, bad) = upload(&k, &manager, "?lang=zh-CN", broken.clone());
    assert_eq!(status, 422, "{bad}");
    let got: Vec<(u64, &str, &str)> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["column"].as_str().unwrap(),
                e["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (4, "分类代码", "category_unknown"),
            (4, "取得日期", "date_impossible"),
            (4, "使用状况", "vocab_unknown"),
            (5, "资产编号", "duplicate_in_file"),
            (5, "资产名称", "required"),
            (5, "取得日期", "date_unrecognised"),
            (5, "原值", "amount_invalid"),
            (6, "取得日期", "date_in_future"),
            (6, "原值", "value_zero"),
        ],
        "{bad}"
    );
    let errors = bad["errors"].as_array().unwrap();
    assert_eq!(errors[0]["params"]["suggestion"], "A050105", "{bad}");
    assert!(
        errors[1]["message"].as_str().unwrap().contains("不存在"),
        "{bad}"
    );
    let (_, bad_en) = upload(&k, &manager, "?lang=en", broken.clone());
    assert!(
        bad_en["errors"][1]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{bad_en}"
    );
    assert_eq!(
        get(&k, &manager, "/cards")["total"],
        4,
        "nothing of a broken file is written"
    );

    // The problems come back marked in the user's own workbook.
    let (status, marked, _) = k.raw(
        "POST",
        &format!("{P}/import/marked"),
        Some(&manager),
        Some(broken),
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(&marked[..2], b"PK");

    // A CSV is read as well (GBK ones too: the SDK's tests cover those).
    let csv = "资产编号,资产名称,资产分类,取得日期,原值（元）,使用状况\r\nTS-CSV-1,文件柜,文件柜,2022年7月1日,\"2,100元\",在用\r\n合计,,,,2100,\r\n";
    let (status, out) = upload(&k, &manager, "", format!("\u{feff}{csv}").into_bytes());
    assert_eq!((status, &out["imported"]), (201, &json!(1)), "{out}");
    let cabinet = &get(&k, &manager, "/cards?q=TS-CSV-1")["records"][0]["data"];
    assert_eq!(
        (
            cabinet["category"].as_str(),
            cabinet["original_value"].as_i64()
        ),
        (Some("A050103"), Some(210_000))
    );
}
