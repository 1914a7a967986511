//! The annual report's tables (行政事业性国有资产年度报告), laid out the
//! way units file them: a numbered table with a title, the filing unit, the
//! year and the money unit above grouped column heads. `GET
//! /reports/annual?form=&year=&org=` answers one table in the caller's
//! language; the UI draws any table from its column list, and the same
//! answer leaves as CSV or XLSX with the caption rows on top.
//!
//! Quantities and original values come from the cards' booking and
//! reduction dates, so any past year is exact. Accumulated depreciation,
//! net values, areas, vehicle classes and leases are the cards' current
//! state (`as_of`): exact for the year in progress, and for a past year as
//! the books stand today, which the table's note says.

use serde_json::{Value, json};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{AggregateOp, Find};

use crate::cards::cards;
use crate::common::lang;
use crate::export::{self, Table};
use crate::model::Card;
use crate::reports::{
    added_upto, by_category, count_value, file_cell, key_text, n, reduced_upto, year_param,
};
use crate::{categories, dates};

/// The tables, in the order the report files them.
const FORMS: &[&str] = &["fixed", "houses", "vehicles", "disposals", "leases"];

/// At most this many cards are read one by one for a table (houses,
/// vehicles, leases); a larger scope is asked to pick a unit.
const READ_LIMIT: usize = 100_000;

/// One column: its key in the rows, its head, the group head above it.
struct Column {
    key: &'static str,
    zh: &'static str,
    en: &'static str,
    group: Option<(&'static str, &'static str)>,
    /// Fen in the rows, yuan in files.
    money: bool,
}

const fn col(key: &'static str, zh: &'static str, en: &'static str, money: bool) -> Column {
    Column {
        key,
        zh,
        en,
        group: None,
        money,
    }
}

const fn grouped(
    group: (&'static str, &'static str),
    key: &'static str,
    zh: &'static str,
    en: &'static str,
    money: bool,
) -> Column {
    Column {
        key,
        zh,
        en,
        group: Some(group),
        money,
    }
}

/// One table of the report.
struct Form {
    /// The table's number in the report (表一 …).
    number: usize,
    title: (&'static str, &'static str),
    columns: &'static [Column],
    rows: Vec<Value>,
    /// What the reader must know about the figures, as (zh, en).
    notes: Vec<(String, String)>,
}

pub fn form(req: &Request) -> Result<Response> {
    let name = req
        .query_param("form")
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "fixed".into());
    let Some(number) = FORMS.iter().position(|f| *f == name).map(|i| i + 1) else {
        return Err(
            Error::validation("form", format!("form is one of {}", FORMS.join(", ")))
                .with_code("not_in_vocabulary"),
        );
    };
    let this_year = dates::this_month().div_euclid(12);
    let year = year_param(req, this_year)?;
    let org = req.query_param("org").filter(|o| !o.is_empty());
    let lang = lang(req);
    let mut form = match name.as_str() {
        "fixed" => fixed(org.clone(), year, &lang)?,
        "houses" => houses(org.clone(), &lang)?,
        "vehicles" => vehicles(org.clone(), &lang)?,
        "disposals" => disposals(org.clone(), year, &lang)?,
        _ => leases(org.clone(), &lang)?,
    };
    form.number = number;
    let today = dates::today();
    // Disposals keep the net value they left with; the fixed-assets table
    // of the year in progress is current by definition.
    let current_state = matches!(name.as_str(), "houses" | "vehicles" | "leases");
    if current_state || (name == "fixed" && year < this_year) {
        form.notes.push((
            format!("净值、面积、车辆类别与出租出借情况按 {today} 账面填列。"),
            format!("Net values, areas, vehicle classes and leases are as booked on {today}."),
        ));
    }
    respond(req, &name, year, org, &lang, form)
}

fn respond(
    req: &Request,
    name: &str,
    year: i64,
    org: Option<String>,
    lang: &str,
    form: Form,
) -> Result<Response> {
    let en = lang.starts_with("en");
    let pick = |zh: &'static str, en_text: &'static str| if en { en_text } else { zh };
    let org_id = org.or_else(crate::common::acting_org).unwrap_or_default();
    let org_name = match tianshan_sdk::orgs::get(&org_id) {
        Ok(Some(o)) if en && !o.name_en.is_empty() => o.name_en,
        Ok(Some(o)) => o.name_zh,
        _ => org_id.clone(),
    };
    let title = pick(form.title.0, form.title.1);
    let number = if en {
        format!("Table {}", form.number)
    } else {
        format!("表{}", ["一", "二", "三", "四", "五"][form.number - 1])
    };
    let notes: Vec<String> = form
        .notes
        .iter()
        .map(|(zh, en_text)| if en { en_text.clone() } else { zh.clone() })
        .collect();
    if let Some(format) = export::wanted(req)? {
        let heads: Vec<String> = form
            .columns
            .iter()
            .map(|c| match c.group {
                Some(g) => format!("{}·{}", pick(g.0, g.1), pick(c.zh, c.en)),
                None => pick(c.zh, c.en).to_string(),
            })
            .collect();
        let heads: Vec<&str> = heads.iter().map(String::as_str).collect();
        let mut caption = vec![format!("{number} {title}")];
        caption.push(if en {
            format!("Unit: {org_name}    Year: {year}    Amounts in yuan")
        } else {
            format!("编制单位：{org_name}    年度：{year}    金额单位：元")
        });
        caption.extend(notes.iter().cloned());
        let mut table = Table::new(&format!("annual-{name}-{year}"), &heads).caption(caption);
        for row in &form.rows {
            table.push(
                form.columns
                    .iter()
                    .map(|c| file_cell(&row[c.key], c.money))
                    .collect(),
            );
        }
        return export::respond(&table, format);
    }
    let columns: Vec<Value> = form
        .columns
        .iter()
        .map(|c| {
            json!({
                "key": c.key,
                "label": pick(c.zh, c.en),
                "group": c.group.map(|g| pick(g.0, g.1)),
                "money": c.money,
            })
        })
        .collect();
    Ok(Response::json(&json!({
        "form": name,
        "forms": FORMS,
        "number": number,
        "title": title,
        "year": year,
        "org": org_id,
        "org_name": org_name,
        "as_of": dates::today(),
        "columns": columns,
        "rows": form.rows,
        "notes": notes,
    })))
}

const OPENING: (&str, &str) = ("年初数", "Opening");
const ADDED: (&str, &str) = ("本年增加", "Added in the year");
const REDUCED: (&str, &str) = ("本年减少", "Left in the year");
const CLOSING: (&str, &str) = ("年末数", "Closing");

const FIXED_COLUMNS: &[Column] = &[
    col("name", "资产分类", "Category", false),
    grouped(OPENING, "opening_count", "数量", "Quantity", false),
    grouped(OPENING, "opening_value", "原值", "Original value", true),
    grouped(ADDED, "additions_count", "数量", "Quantity", false),
    grouped(ADDED, "additions_value", "原值", "Original value", true),
    grouped(REDUCED, "reductions_count", "数量", "Quantity", false),
    grouped(REDUCED, "reductions_value", "原值", "Original value", true),
    grouped(CLOSING, "closing_count", "数量", "Quantity", false),
    grouped(CLOSING, "closing_value", "原值", "Original value", true),
    grouped(
        CLOSING,
        "accumulated",
        "累计折旧（摊销）",
        "Accumulated depreciation",
        true,
    ),
    grouped(CLOSING, "net_value", "净值", "Net value", true),
];

/// Figures of one line of the fixed-assets table.
#[derive(Default, Clone, Copy)]
struct Line {
    opening: (f64, f64),
    added: (f64, f64),
    reduced: (f64, f64),
    accumulated: f64,
    net: f64,
}

impl Line {
    fn plus(mut self, o: &Line) -> Line {
        let add = |a: &mut (f64, f64), b: (f64, f64)| {
            a.0 += b.0;
            a.1 += b.1;
        };
        add(&mut self.opening, o.opening);
        add(&mut self.added, o.added);
        add(&mut self.reduced, o.reduced);
        self.accumulated += o.accumulated;
        self.net += o.net;
        self
    }

    fn row(&self, key: &str, name: String, level: u8) -> Value {
        let closing = (
            self.opening.0 + self.added.0 - self.reduced.0,
            self.opening.1 + self.added.1 - self.reduced.1,
        );
        json!({
            "key": key, "name": name, "level": level,
            "opening_count": self.opening.0, "opening_value": self.opening.1,
            "additions_count": self.added.0, "additions_value": self.added.1,
            "reductions_count": self.reduced.0, "reductions_value": self.reduced.1,
            "closing_count": closing.0, "closing_value": closing.1,
            "accumulated": self.accumulated, "net_value": self.net,
        })
    }
}

/// The four windows of a year for `scope` (a find over cards): booked
/// before it, left before it, booked in it, left in it; and what is on the
/// books at its end, grouped by top category.
struct Windows<'a> {
    org: Option<String>,
    year: i64,
    scope: &'a dyn Fn(Find) -> Find,
}

impl Windows<'_> {
    fn opening_end(&self) -> i64 {
        self.year * 12 - 1
    }

    fn closing_end(&self) -> i64 {
        self.year * 12 + 11
    }

    fn finds(&self) -> [Find; 4] {
        let s = self.scope;
        [
            s(added_upto(self.org.clone(), self.opening_end())),
            s(reduced_upto(self.org.clone(), self.opening_end())),
            s(added_upto(self.org.clone(), self.closing_end())),
            s(reduced_upto(self.org.clone(), self.closing_end())),
        ]
    }

    /// Still on the books and booked by the year's end.
    fn on_books(&self) -> Find {
        (self.scope)(
            cards()
                .find()
                .eq("state", "booked")
                .lte("booked_on", format!("{:04}-12-31", self.year))
                .within(self.org.clone()),
        )
    }
}

fn depreciation_by_category(find: &Find) -> Result<std::collections::BTreeMap<String, (f64, f64)>> {
    Ok(cards()
        .aggregate(
            find,
            &["category_top"],
            &[
                (AggregateOp::Sum, Some("accumulated_depreciation")),
                (AggregateOp::Sum, Some("net_value")),
            ],
        )?
        .iter()
        .map(|g| (key_text(&g.key[0]), (n(g, 0), n(g, 1))))
        .collect())
}

/// 固定资产情况表: quantity and original value at the year's start, added,
/// left, at its end, with accumulated depreciation and net value, per
/// top category; vehicles as an "of which" line under equipment; fixed
/// assets subtotalled before intangibles.
fn fixed(org: Option<String>, year: i64, lang: &str) -> Result<Form> {
    let all = |f: Find| f;
    let w = Windows {
        org: org.clone(),
        year,
        scope: &all,
    };
    let [open_added, open_reduced, close_added, close_reduced] = w.finds();
    let (oa, or, ca, cr) = (
        by_category(&open_added)?,
        by_category(&open_reduced)?,
        by_category(&close_added)?,
        by_category(&close_reduced)?,
    );
    let dep = depreciation_by_category(&w.on_books())?;
    let get = |m: &std::collections::BTreeMap<String, (f64, f64)>, k: &str| {
        m.get(k).copied().unwrap_or((0.0, 0.0))
    };
    let line = |k: &str| {
        let (oa, or, ca, cr) = (get(&oa, k), get(&or, k), get(&ca, k), get(&cr, k));
        let opening = (oa.0 - or.0, oa.1 - or.1);
        let d = get(&dep, k);
        Line {
            opening,
            added: (ca.0 - oa.0, ca.1 - oa.1),
            reduced: (cr.0 - or.0, cr.1 - or.1),
            accumulated: d.0,
            net: d.1,
        }
    };
    let vehicle_scope = |f: Find| f.prefix("category", "A0203");
    let vw = Windows {
        org,
        year,
        scope: &vehicle_scope,
    };
    let [voa, vor, vca, vcr] = vw.finds().map(|f| count_value(&f));
    let (voa, vor, vca, vcr) = (voa?, vor?, vca?, vcr?);
    let vdep = cards().aggregate(
        &vw.on_books(),
        &[],
        &[
            (AggregateOp::Sum, Some("accumulated_depreciation")),
            (AggregateOp::Sum, Some("net_value")),
        ],
    )?;
    let vehicles = Line {
        opening: (voa.0 - vor.0, voa.1 - vor.1),
        added: (vca.0 - voa.0, vca.1 - voa.1),
        reduced: (vcr.0 - vor.0, vcr.1 - vor.1),
        accumulated: vdep.first().map(|g| n(g, 0)).unwrap_or(0.0),
        net: vdep.first().map(|g| n(g, 1)).unwrap_or(0.0),
    };

    let en = lang.starts_with("en");
    let mut rows = Vec::new();
    let mut fixed_total = Line::default();
    for top in ["A01", "A02", "A03", "A04", "A05", "A06"] {
        let l = line(top);
        fixed_total = fixed_total.plus(&l);
        rows.push(l.row(top, categories::name(top, lang), 1));
        if top == "A02" {
            let name = if en {
                "of which: vehicles"
            } else {
                "其中：车辆"
            };
            rows.push(vehicles.row("A0203", name.into(), 2));
        }
    }
    let intangible = line("B01");
    let total = fixed_total.plus(&intangible);
    let subtotal = if en {
        "Fixed assets, total"
    } else {
        "固定资产合计"
    };
    rows.insert(0, fixed_total.row("fixed", subtotal.into(), 0));
    rows.push(intangible.row("B01", categories::name("B01", lang), 0));
    rows.push(total.row("total", if en { "Total" } else { "合计" }.into(), 0));
    Ok(Form {
        number: 0,
        title: ("固定资产情况表", "Fixed assets"),
        columns: FIXED_COLUMNS,
        rows,
        notes: vec![(
            "年初数 + 本年增加 − 本年减少 = 年末数；车辆为设备的其中数。".into(),
            "Opening + added − left = closing; vehicles are part of equipment.".into(),
        )],
    })
}

/// Every card `find` selects, one by one, in pages; refused past
/// [`READ_LIMIT`] so one request stays bounded.
fn each_card(find: Find, mut f: impl FnMut(&Card)) -> Result<()> {
    let mut cursor = None;
    let mut read = 0usize;
    loop {
        let page = find.clone().limit(500).cursor(cursor).page::<Card>()?;
        read += page.records.len();
        if read > READ_LIMIT {
            return Err(Error::validation(
                "org",
                format!("more than {READ_LIMIT} cards: pick a unit"),
            )
            .with_code("report_too_large")
            .with_param("max", READ_LIMIT as i64));
        }
        for doc in &page.records {
            f(&doc.data);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

fn number_in(ext: &serde_json::Map<String, Value>, key: &str) -> f64 {
    match ext.get(key) {
        Some(Value::Number(v)) => v.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s
            .trim()
            .trim_end_matches(['㎡', '米', '平', '方'])
            .replace(',', "")
            .parse()
            .unwrap_or(0.0),
        _ => 0.0,
    }
}

const LEASED: [&str; 2] = ["rented", "lent"];

const HOUSE_COLUMNS: &[Column] = &[
    col("code", "分类代码", "Code", false),
    col("name", "资产分类", "Category", false),
    col("count", "数量", "Quantity", false),
    col("area", "面积（平方米）", "Area (m²)", false),
    col(
        "leased_area",
        "其中：出租出借面积",
        "of which rented or lent",
        false,
    ),
    col("original_value", "原值", "Original value", true),
    col("net_value", "净值", "Net value", true),
];

/// 房屋构筑物情况表: houses, structures and land on the books by class,
/// with their floor (or land) area and how much of it is rented or lent.
fn houses(org: Option<String>, lang: &str) -> Result<Form> {
    let mut per: std::collections::BTreeMap<String, [f64; 5]> = Default::default();
    each_card(
        cards()
            .find()
            .eq("state", "booked")
            .prefix("category", "A01")
            .within(org),
        |card| {
            let area = number_in(&card.ext, "floor_area") + number_in(&card.ext, "land_area");
            let e = per.entry(card.category.clone()).or_default();
            e[0] += card.quantity.max(1) as f64;
            e[1] += area;
            if LEASED.contains(&card.use_status.as_str()) {
                e[2] += area;
            }
            e[3] += card.original_value as f64;
            e[4] += card.net_value as f64;
        },
    )?;
    let mut total = [0.0; 5];
    let mut rows: Vec<Value> = per
        .iter()
        .map(|(code, v)| {
            for (t, x) in total.iter_mut().zip(v) {
                *t += x;
            }
            area_row(code, categories::name(code, lang), v)
        })
        .collect();
    let name = if lang.starts_with("en") {
        "Total"
    } else {
        "合计"
    };
    rows.push(area_row("", name.into(), &total));
    Ok(Form {
        number: 0,
        title: ("房屋构筑物情况表", "Houses, structures and land"),
        columns: HOUSE_COLUMNS,
        rows,
        notes: Vec::new(),
    })
}

fn area_row(code: &str, name: String, v: &[f64; 5]) -> Value {
    let round = |x: f64| (x * 100.0).round() / 100.0;
    json!({
        "key": if code.is_empty() { "total" } else { code },
        "code": code, "name": name, "level": if code.is_empty() { 0 } else { 1 },
        "count": v[0], "area": round(v[1]), "leased_area": round(v[2]),
        "original_value": v[3], "net_value": v[4],
    })
}

const VEHICLE_CLASSES: [&str; 4] = ["A020301", "A020302", "A020303", "A020304"];

const VEHICLE_COLUMNS: &[Column] = &[
    col("name", "编制类别", "Establishment class", false),
    col("count", "数量（辆）", "Vehicles", false),
    grouped(("其中", "of which"), "A020301", "轿车", "Sedans", false),
    grouped(("其中", "of which"), "A020302", "越野车", "Off-road", false),
    grouped(("其中", "of which"), "A020303", "客车", "Buses", false),
    grouped(
        ("其中", "of which"),
        "A020304",
        "新能源汽车",
        "New-energy",
        false,
    ),
    grouped(("其中", "of which"), "other", "其他", "Other", false),
    col("original_value", "原值", "Original value", true),
    col("net_value", "净值", "Net value", true),
];

/// 车辆情况表: vehicles on the books by establishment class (编制类别, as
/// the card gives it), counted by kind.
fn vehicles(org: Option<String>, lang: &str) -> Result<Form> {
    let en = lang.starts_with("en");
    let unset = if en { "Not given" } else { "未填写" };
    // class -> [count, four kinds, other, original, net]
    let mut per: std::collections::BTreeMap<String, [f64; 8]> = Default::default();
    each_card(
        cards()
            .find()
            .eq("state", "booked")
            .prefix("category", "A0203")
            .within(org),
        |card| {
            let class = match card.ext.get("establishment") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
                _ => unset.to_string(),
            };
            let e = per.entry(class).or_default();
            let count = card.quantity.max(1) as f64;
            e[0] += count;
            let kind = VEHICLE_CLASSES
                .iter()
                .position(|c| card.category.starts_with(c))
                .unwrap_or(4);
            e[1 + kind] += count;
            e[6] += card.original_value as f64;
            e[7] += card.net_value as f64;
        },
    )?;
    let row = |name: &str, v: &[f64; 8]| {
        json!({
            "key": name, "name": name, "level": 1, "count": v[0],
            "A020301": v[1], "A020302": v[2], "A020303": v[3], "A020304": v[4], "other": v[5],
            "original_value": v[6], "net_value": v[7],
        })
    };
    let mut total = [0.0; 8];
    let mut rows: Vec<Value> = per
        .iter()
        .map(|(class, v)| {
            for (t, x) in total.iter_mut().zip(v) {
                *t += x;
            }
            row(class, v)
        })
        .collect();
    let mut sum = row(if en { "Total" } else { "合计" }, &total);
    sum["key"] = json!("total");
    sum["level"] = json!(0);
    rows.insert(0, sum);
    Ok(Form {
        number: 0,
        title: ("车辆情况表", "Vehicles"),
        columns: VEHICLE_COLUMNS,
        rows,
        notes: Vec::new(),
    })
}

const DISPOSAL_COLUMNS: &[Column] = &[
    col("name", "处置方式", "Method", false),
    col("count", "数量", "Quantity", false),
    col("original_value", "原值", "Original value", true),
    col("net_value", "账面净值", "Book value", true),
];

/// 资产处置情况表: what left the books in the year, by disposal method,
/// with transfers to other units as free transfers (无偿划转).
fn disposals(org: Option<String>, year: i64, lang: &str) -> Result<Form> {
    let measures = [
        (AggregateOp::Count, None),
        (AggregateOp::Sum, Some("original_value")),
        (AggregateOp::Sum, Some("net_value")),
    ];
    let in_year = |state: &str| {
        cards()
            .find()
            .eq("state", state)
            .prefix("reduced_on", &format!("{year:04}-"))
            .within(org.clone())
    };
    let mut per: std::collections::BTreeMap<String, [f64; 3]> = Default::default();
    for g in cards().aggregate(&in_year("disposed"), &["disposal_method"], &measures)? {
        let e = per.entry(key_text(&g.key[0])).or_default();
        for (i, x) in e.iter_mut().enumerate() {
            *x += n(&g, i);
        }
    }
    if let Some(g) = cards()
        .aggregate(&in_year("transferred"), &[], &measures)?
        .first()
    {
        let e = per.entry("transfer".into()).or_default();
        for (i, x) in e.iter_mut().enumerate() {
            *x += n(g, i);
        }
    }
    let en = lang.starts_with("en");
    let label = |method: &str| {
        crate::documents::method_label(method)[if en { "en" } else { "zh-CN" }]
            .as_str()
            .unwrap_or(method)
            .to_string()
    };
    let mut methods: Vec<String> = crate::documents::DISPOSAL_METHODS
        .iter()
        .map(|m| m.to_string())
        .collect();
    methods.extend(
        per.keys()
            .filter(|k| !methods.contains(k))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let mut total = [0.0; 3];
    let mut rows: Vec<Value> = methods
        .iter()
        .map(|m| {
            let v = per.get(m).copied().unwrap_or_default();
            for (t, x) in total.iter_mut().zip(v) {
                *t += x;
            }
            json!({ "key": m, "name": label(m), "level": 1,
                    "count": v[0], "original_value": v[1], "net_value": v[2] })
        })
        .collect();
    rows.insert(
        0,
        json!({ "key": "total", "name": if en { "Total" } else { "合计" }, "level": 0,
                "count": total[0], "original_value": total[1], "net_value": total[2] }),
    );
    Ok(Form {
        number: 0,
        title: ("资产处置情况表", "Disposals"),
        columns: DISPOSAL_COLUMNS,
        rows,
        notes: Vec::new(),
    })
}

const LEASE_COLUMNS: &[Column] = &[
    col("name", "方式", "Mode", false),
    col("count", "数量", "Quantity", false),
    col("original_value", "原值", "Original value", true),
    col("net_value", "净值", "Net value", true),
    col("income", "合同收入", "Contract income", true),
];

/// 资产出租出借情况表: cards rented out or lent, with the income their
/// rent contracts name.
fn leases(org: Option<String>, lang: &str) -> Result<Form> {
    let mut per = [[0.0f64; 4]; 2];
    each_card(
        cards()
            .find()
            .eq("state", "booked")
            .one_of("use_status", LEASED)
            .within(org),
        |card| {
            let i = usize::from(card.use_status == "lent");
            per[i][0] += card.quantity.max(1) as f64;
            per[i][1] += card.original_value as f64;
            per[i][2] += card.net_value as f64;
            per[i][3] += card
                .lease
                .as_ref()
                .and_then(|l| l["income"].as_f64())
                .unwrap_or(0.0);
        },
    )?;
    let en = lang.starts_with("en");
    let row = |key: &str, name: &str, level: u8, v: [f64; 4]| {
        json!({ "key": key, "name": name, "level": level, "count": v[0],
                "original_value": v[1], "net_value": v[2], "income": v[3] })
    };
    let total: [f64; 4] = std::array::from_fn(|i| per[0][i] + per[1][i]);
    Ok(Form {
        number: 0,
        title: ("资产出租出借情况表", "Rented and lent assets"),
        columns: LEASE_COLUMNS,
        rows: vec![
            row("total", if en { "Total" } else { "合计" }, 0, total),
            row("rented", if en { "Rented out" } else { "出租" }, 1, per[0]),
            row("lent", if en { "Lent" } else { "出借" }, 1, per[1]),
        ],
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_key_is_in_every_row_shape() {
        let line = Line {
            opening: (2.0, 300.0),
            added: (1.0, 100.0),
            reduced: (1.0, 50.0),
            accumulated: 20.0,
            net: 330.0,
        };
        let row = line.row("A02", "设备".into(), 1);
        for c in FIXED_COLUMNS {
            assert!(!row[c.key].is_null(), "{}", c.key);
        }
        assert_eq!(row["closing_count"], json!(2.0));
        assert_eq!(row["closing_value"], json!(350.0));
        let row = area_row(
            "A010101",
            "办公用房".into(),
            &[1.0, 1234.567, 10.0, 5.0, 4.0],
        );
        for c in HOUSE_COLUMNS {
            assert!(!row[c.key].is_null(), "{}", c.key);
        }
        assert_eq!(row["area"], json!(1234.57));
    }

    #[test]
    fn areas_are_read_from_numbers_and_the_ways_people_type_them() {
        let ext: serde_json::Map<String, Value> = serde_json::from_value(json!({
            "floor_area": "1,250.5㎡", "land_area": 300, "bad": "about 20"
        }))
        .unwrap();
        assert_eq!(number_in(&ext, "floor_area"), 1250.5);
        assert_eq!(number_in(&ext, "land_area"), 300.0);
        assert_eq!(number_in(&ext, "bad"), 0.0);
        assert_eq!(number_in(&ext, "absent"), 0.0);
    }
}
