//! Import of an existing asset register from Excel: every row is checked
//! first and the answer names row, column and problem for each error; only
//! a file without errors is written. Imported cards go straight onto the
//! books (it is a migration of cards already booked elsewhere), with
//! depreciation booked through last month.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use serde_json::{Map, Value, json};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::Write;

use crate::cards::{card_from, cards, insert_cards};
use crate::common::require;
use crate::dates;
use crate::depreciation::book_through;
use crate::export::{self, Table};
use crate::model::Card;

pub fn routes(router: Router) -> Router {
    router
        .post("/import", import)
        .get("/import/template", template)
}

/// (card field, Chinese header, English header, required).
const COLUMNS: &[(&str, &str, &str, bool)] = &[
    ("name", "资产名称", "Name", true),
    ("category", "分类代码", "Category code", true),
    ("spec", "规格型号", "Spec", false),
    ("brand", "品牌", "Brand", false),
    ("quantity", "数量", "Quantity", false),
    (
        "acquisition_method",
        "取得方式",
        "Acquisition method",
        false,
    ),
    ("acquired_on", "取得日期", "Acquired on", true),
    ("original_value_yuan", "原值", "Original value", true),
    ("funding_fiscal_yuan", "财政拨款", "Fiscal funding", false),
    ("department", "使用部门", "Department", false),
    ("custodian", "使用人", "Custodian", false),
    ("location", "存放地点", "Location", false),
    ("use_status", "使用状况", "Use status", false),
    ("org", "单位", "Org", false),
];

/// At most this many rows per file: larger registers come in parts.
const MAX_ROWS: usize = 20_000;

#[derive(Debug, PartialEq)]
pub struct RowError {
    pub row: usize,
    pub column: String,
    pub problem: String,
}

fn cell_value(cell: &Data, field: &str) -> Value {
    match cell {
        Data::Empty => Value::Null,
        Data::String(s) if s.trim().is_empty() => Value::Null,
        Data::String(s) => json!(s.trim()),
        Data::Float(f) if field == "acquired_on" => json!(excel_date(*f)),
        Data::Int(i) if field == "acquired_on" => json!(excel_date(*i as f64)),
        Data::DateTime(d) => json!(excel_date(d.as_f64())),
        Data::DateTimeIso(s) => json!(s.chars().take(10).collect::<String>()),
        Data::Float(f) if field == "quantity" => json!(*f as i64),
        Data::Float(f) => json!(f),
        Data::Int(i) => json!(i),
        Data::Bool(b) => json!(b),
        other => json!(other.to_string()),
    }
}

/// An Excel serial day number (days since 1899-12-30) as YYYY-MM-DD.
fn excel_date(serial: f64) -> String {
    let days = serial.floor() as i64 - 25_569;
    dates::date_text(dates::civil_from_days(days))
}

/// Reads the first sheet into cards, or every problem found.
pub fn parse(bytes: &[u8]) -> std::result::Result<Vec<(Card, Option<String>)>, Vec<RowError>> {
    let fail = |problem: String| {
        vec![RowError {
            row: 0,
            column: String::new(),
            problem,
        }]
    };
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes))
        .map_err(|e| fail(format!("not an Excel (.xlsx) file: {e}")))?;
    let range = match book.worksheet_range_at(0) {
        Some(Ok(range)) => range,
        Some(Err(e)) => return Err(fail(format!("the first sheet cannot be read: {e}"))),
        None => return Err(fail("the workbook has no sheet".into())),
    };
    let mut rows = range.rows();
    let header: Vec<String> = rows
        .next()
        .map(|r| r.iter().map(|c| c.to_string().trim().to_string()).collect())
        .unwrap_or_default();
    let mut index: Vec<(usize, &str, &str)> = Vec::new();
    let mut errors = Vec::new();
    for (field, zh, en, required) in COLUMNS {
        match header
            .iter()
            .position(|h| h == zh || h.eq_ignore_ascii_case(en) || h == field)
        {
            Some(i) => index.push((i, field, zh)),
            None if *required => errors.push(RowError {
                row: 1,
                column: zh.to_string(),
                problem: format!("required column {zh} ({en}) is missing"),
            }),
            None => {}
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut out = Vec::new();
    for (n, row) in rows.enumerate() {
        let excel_row = n + 2;
        if row.iter().all(|c| matches!(c, Data::Empty)) {
            continue;
        }
        if out.len() + errors.len() >= MAX_ROWS {
            errors.push(RowError {
                row: excel_row,
                column: String::new(),
                problem: format!("more than {MAX_ROWS} rows; split the file"),
            });
            break;
        }
        let mut input = Map::new();
        for (i, field, _) in &index {
            let value = row
                .get(*i)
                .map(|c| cell_value(c, field))
                .unwrap_or(Value::Null);
            if !value.is_null() {
                let value = match (*field, &value) {
                    ("quantity", Value::String(s)) => {
                        s.parse::<i64>().map(|q| json!(q)).unwrap_or(value.clone())
                    }
                    _ => value,
                };
                input.insert(field.to_string(), value);
            }
        }
        let org = input
            .remove("org")
            .and_then(|o| o.as_str().map(str::to_string));
        let column_of = |field: &str| {
            let field = field.trim_end_matches("_yuan");
            COLUMNS
                .iter()
                .find(|(f, ..)| f.trim_end_matches("_yuan") == field)
                .map(|c| c.1.to_string())
                .unwrap_or_else(|| field.to_string())
        };
        match card_from(&input) {
            Ok(mut card) => {
                card.state = "booked".into();
                out.push((card, org));
            }
            Err(e) => errors.push(RowError {
                row: excel_row,
                column: column_of(e.field().unwrap_or("")),
                problem: e.message().to_string(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// `POST /import?dry_run=true|false`, body the .xlsx file.
fn import(req: &Request) -> Result<Response> {
    require("assets.manage")?;
    let dry_run = req.query_param("dry_run").as_deref() == Some("true");
    let parsed = match parse(req.body()) {
        Ok(cards) => cards,
        Err(errors) => {
            let list: Vec<Value> = errors
                .iter()
                .map(|e| json!({ "row": e.row, "column": e.column, "problem": e.problem }))
                .collect();
            return Ok(Response::json(&json!({
                "ok": false,
                "error": { "code": "import_invalid", "message": format!("{} problem(s); nothing was imported", list.len()) },
                "errors": list,
            }))
            .with_status(422));
        }
    };
    if dry_run {
        return Ok(Response::json(
            &json!({ "ok": true, "rows": parsed.len(), "imported": 0, "errors": [] }),
        ));
    }
    let month = dates::this_month() - 1;
    let import_id = format!("import-{}-{}", dates::today(), cards().find().count()?);
    let mut by_org: std::collections::BTreeMap<Option<String>, Vec<Card>> = Default::default();
    for (mut card, org) in parsed {
        book_through(&mut card, month);
        card.import_id = Some(import_id.clone());
        by_org.entry(org).or_default().push(card);
    }
    let mut written: Vec<String> = Vec::new();
    for (org, mut list) in by_org {
        for chunk in list.chunks_mut(240) {
            match insert_cards(chunk, org.as_deref(), "imported", None) {
                Ok(docs) => written.extend(docs.into_iter().map(|d| d.id)),
                Err(e) => {
                    // Each batch is atomic; undo the batches already written
                    // so the register is as it was.
                    undo(&written);
                    return Err(e);
                }
            }
        }
    }
    Ok(Response::json(&json!({ "ok": true, "rows": written.len(), "imported": written.len(), "import_id": import_id, "errors": [] })).with_status(201))
}

fn undo(ids: &[String]) {
    for chunk in ids.chunks(400) {
        let writes = chunk
            .iter()
            .map(|id| Write::Delete {
                collection: "cards".into(),
                id: id.clone(),
                expected_revision: None,
            })
            .collect();
        if let Err(e) = tianshan_sdk::storage::transact(writes) {
            log::error(format!("undoing a failed import left cards behind: {e}"));
        }
    }
}

/// An empty register with the expected columns and one example row.
fn template(req: &Request) -> Result<Response> {
    require("assets.view")?;
    let en = crate::common::lang(req).starts_with("en");
    let headers: Vec<&str> = COLUMNS.iter().map(|c| if en { c.2 } else { c.1 }).collect();
    let mut table = Table::new("import-template", &headers);
    table.push(vec![
        json!("台式计算机"),
        json!("A020101"),
        json!("启天M437"),
        json!("联想"),
        json!(1),
        json!("purchase"),
        json!("2024-03-15"),
        json!(4800),
        json!(4800),
        json!("办公室"),
        json!("王芳"),
        json!("主楼301室"),
        json!("in_use"),
        json!(""),
    ]);
    let format = export::wanted(req)?.unwrap_or("xlsx");
    export::respond(&table, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet(rows: &[Vec<Value>]) -> Vec<u8> {
        let headers: Vec<&str> = COLUMNS.iter().map(|c| c.1).collect();
        let mut t = Table::new("t", &headers);
        for r in rows {
            t.push(r.clone());
        }
        export::to_xlsx(&t).unwrap()
    }

    fn row(name: &str, category: &str, date: &str, value: Value) -> Vec<Value> {
        let mut r = vec![
            json!(name),
            json!(category),
            json!(""),
            json!(""),
            json!(1),
            json!("purchase"),
            json!(date),
            value,
        ];
        r.resize(COLUMNS.len(), json!(""));
        r
    }

    #[test]
    fn a_clean_sheet_parses() {
        let bytes = sheet(&[
            row("台式计算机", "A020101", "2024-03-15", json!(4800)),
            row("办公椅", "A050102", "2023-01-02", json!("350.5")),
        ]);
        let cards = parse(&bytes).unwrap();
        assert_eq!(cards.len(), 2);
        assert_eq!(cards[0].0.original_value, 480_000);
        assert_eq!(cards[1].0.original_value, 35_050);
        assert_eq!(cards[0].0.state, "booked");
    }

    #[test]
    fn every_bad_row_is_named_with_its_column() {
        let bytes = sheet(&[
            row("台式计算机", "A020101", "2024-03-15", json!(4800)),
            row("坏分类", "X000000", "2024-03-15", json!(10)),
            row("坏日期", "A020101", "2024-13-45", json!(10)),
            row("坏金额", "A020101", "2024-01-01", json!("12.345")),
        ]);
        let errors = parse(&bytes).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!((errors[0].row, errors[0].column.as_str()), (3, "分类代码"));
        assert_eq!((errors[1].row, errors[1].column.as_str()), (4, "取得日期"));
        assert_eq!((errors[2].row, errors[2].column.as_str()), (5, "原值"));
    }

    #[test]
    fn not_an_excel_file_is_one_clear_problem() {
        let errors = parse(b"name,category\n").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].problem.contains("not an Excel"));
    }

    #[test]
    fn excel_serial_dates_convert() {
        assert_eq!(excel_date(45_366.0), "2024-03-15");
    }
}
