//! Import of a unit's existing register (XLSX, XLS or CSV) through the
//! SDK's register import: every problem of every row at once, nothing
//! written unless none is left. The unit's own asset numbers, 计量单位 and
//! 备注 are kept; rows already in the register (by asset number, or by
//! their content when the file has no numbers) are skipped, so a second
//! upload of the same file imports nothing new. Imported cards are not
//! booked at once: they go to the parent administration in registration
//! documents, like cards entered by hand.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};
use tianshan_sdk::import::{self, Column, Kind, Problem, Register, Row};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::Write;

use crate::cards::{cards, insert_cards};
use crate::categories;
use crate::depreciation::book_through;
use crate::export::Table;
use crate::model::{ACQUISITION_METHOD, Card, USE_STATUS};

pub fn routes(router: Router) -> Router {
    router
        .post("/import", import)
        .requires("assets.manage")
        .post("/import/marked", marked)
        .requires("assets.manage")
        .get("/import/template", template)
        .requires("assets.view")
}

pub const REGISTER: Register = Register::new(&[
    Column::new("asset_no", "资产编号", "Asset no.", Kind::Text).aliases(&[
        "卡片编号",
        "资产代码",
        "编号",
    ]),
    Column::new("name", "资产名称", "Name", Kind::Text)
        .required()
        .aliases(&["名称"]),
    Column::new("category", "分类代码", "Category code", Kind::Text)
        .required()
        .aliases(&["资产分类", "资产分类代码", "分类", "分类名称", "Category"]),
    Column::new("spec", "规格型号", "Spec", Kind::Text).aliases(&["规格", "型号"]),
    Column::new("brand", "品牌", "Brand", Kind::Text),
    Column::new("quantity", "数量", "Quantity", Kind::Int),
    Column::new("measure_unit", "计量单位", "Unit of measure", Kind::Text),
    Column::new(
        "acquisition_method",
        "取得方式",
        "Acquisition method",
        Kind::Vocab(&ACQUISITION_METHOD),
    ),
    Column::new("acquired_on", "取得日期", "Acquired on", Kind::Date)
        .required()
        .aliases(&["购置日期", "购入日期", "入账日期"]),
    Column::new("original_value", "原值", "Original value", Kind::Yuan)
        .required()
        .aliases(&["资产原值", "账面原值", "价值"]),
    Column::new("funding_fiscal", "财政拨款", "Fiscal funding", Kind::Yuan),
    Column::new("department", "使用部门", "Department", Kind::Text),
    Column::new("custodian", "使用人", "Custodian", Kind::Text).aliases(&["保管人", "责任人"]),
    Column::new("location", "存放地点", "Location", Kind::Text),
    Column::new(
        "use_status",
        "使用状况",
        "Use status",
        Kind::Vocab(&USE_STATUS),
    ),
    Column::new("note", "备注", "Note", Kind::Text),
    Column::new("org", "单位", "Org", Kind::Text),
]);

/// A row ready to write: the card, the org it goes to (none: the acting
/// org) and its spreadsheet row.
#[derive(Debug)]
pub struct Planned {
    pub row: usize,
    pub card: Card,
    pub org: Option<String>,
}

/// The file's rows as cards, or every problem found. `today` bounds
/// acquisition dates.
pub fn parse(bytes: &[u8], today: &str) -> std::result::Result<Vec<Planned>, Vec<Problem>> {
    let parsed = REGISTER.parse(bytes);
    let mut problems = parsed.problems;
    problems.extend(import::duplicates_in_file(
        &REGISTER,
        &parsed.rows,
        "asset_no",
    ));
    let mut out = Vec::new();
    for row in &parsed.rows {
        match card_of(row, today) {
            Ok(planned) => out.push(planned),
            Err(mut found) => problems.append(&mut found),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        // A row's conversion problems (from the SDK) and its card problems
        // (here) are listed together, in spreadsheet order.
        let mut seen = HashSet::new();
        problems.retain(|p| seen.insert((p.row, p.column.clone(), p.code.clone())));
        import::sort(&REGISTER, &mut problems);
        Err(problems)
    }
}

fn plugin_problem(row: usize, field: &str, code: &str, zh: String, en: String) -> Problem {
    let column = REGISTER.header_of(field);
    let column = if column.is_empty() { field } else { column };
    Problem::new(
        row,
        column,
        code,
        json!({ "message_zh": zh, "message": en }),
    )
}

fn card_of(row: &Row, today: &str) -> std::result::Result<Planned, Vec<Problem>> {
    let mut problems = Vec::new();
    let n = row.number;
    let text = |f: &str| row.text(f).unwrap_or_default().to_string();
    let mut card = Card {
        asset_no: text("asset_no"),
        name: text("name"),
        spec: text("spec"),
        brand: text("brand"),
        quantity: row.int("quantity").unwrap_or(0),
        measure_unit: text("measure_unit"),
        acquisition_method: text("acquisition_method"),
        acquired_on: text("acquired_on"),
        original_value: row.int("original_value").unwrap_or(0),
        funding_fiscal: row.int("funding_fiscal").unwrap_or(0),
        department: text("department"),
        custodian: text("custodian"),
        location: text("location"),
        use_status: text("use_status"),
        note: text("note"),
        ..Card::default()
    };
    if card.funding_fiscal > 0 {
        card.funding_other = card.original_value - card.funding_fiscal;
    }
    if let Some(given) = row.text("category") {
        match categories::resolve(given) {
            Some(c) => card.category = c.code.to_string(),
            None => {
                let hint = categories::suggest(given);
                let (zh, en) = match hint {
                    Some(c) => (
                        format!("未知的资产分类“{given}”；是否为 {} {}？", c.code, c.name_zh),
                        format!(
                            "unknown category {given:?}; did you mean {} {}?",
                            c.code, c.name_en
                        ),
                    ),
                    None => (
                        format!("未知的资产分类“{given}”（填写 GB/T 14885 分类代码或分类名称）"),
                        format!("unknown category {given:?} (a GB/T 14885 code or category name)"),
                    ),
                };
                let mut p = plugin_problem(n, "category", "category_unknown", zh, en);
                p.params.insert("value".into(), json!(given));
                p.params
                    .insert("suggestion".into(), json!(hint.map(|c| c.code)));
                problems.push(p);
            }
        }
    }
    let whole_row_converted = REGISTER
        .columns
        .iter()
        .filter(|c| c.required)
        .all(|c| row.values.contains_key(c.field));
    if problems.is_empty() && whole_row_converted {
        for (field, code, zh, en) in crate::model::plausibility(&card, today) {
            problems.push(plugin_problem(n, field, code, zh, en));
        }
        if let Err(e) = card.normalise() {
            let field = e.field().unwrap_or("").trim_end_matches("_yuan");
            problems.push(plugin_problem(
                n,
                field,
                "invalid",
                String::new(),
                e.message().to_string(),
            ));
        }
    }
    if card.asset_no.is_empty() {
        card.import_key = Some(fingerprint(&card));
    }
    let org = row.text("org").map(str::to_string);
    if problems.is_empty() {
        Ok(Planned { row: n, card, org })
    } else {
        Err(problems)
    }
}

/// A row's identity when the unit gave no asset number: what a person
/// would compare to call two rows the same asset.
fn fingerprint(card: &Card) -> String {
    let text = [
        card.name.as_str(),
        &card.category,
        &card.spec,
        &card.acquired_on,
        &card.original_value.to_string(),
        &card.location,
        &card.custodian,
        &card.department,
    ]
    .join("\u{1f}");
    // FNV-1a: short, stable across builds, and collisions only skip a row
    // the answer then lists.
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Which planned rows are in the register already: by the unit's asset
/// number, or by the fingerprint of a row without one.
fn already_there(planned: &[Planned]) -> Result<HashSet<usize>> {
    let mut found = HashSet::new();
    for field in ["asset_no", "import_key"] {
        let keyed: Vec<(&Planned, String)> = planned
            .iter()
            .filter_map(|p| {
                let key = if field == "asset_no" {
                    Some(p.card.asset_no.clone()).filter(|k| !k.is_empty())
                } else {
                    p.card.import_key.clone()
                };
                key.map(|k| (p, k))
            })
            .collect();
        for chunk in keyed.chunks(100) {
            let keys: Vec<&str> = chunk.iter().map(|(_, k)| k.as_str()).collect();
            let mut existing: HashSet<(String, String)> = HashSet::new();
            let mut cursor = None;
            loop {
                let page = cards()
                    .find()
                    .one_of(field, keys.clone())
                    .limit(1000)
                    .cursor(cursor)
                    .page::<Card>()?;
                for d in page.records {
                    let key = if field == "asset_no" {
                        d.data.asset_no
                    } else {
                        d.data.import_key.unwrap_or_default()
                    };
                    existing.insert((d.org, key));
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            let acting = crate::common::acting_org().unwrap_or_default();
            for (p, key) in chunk {
                let org = p.org.clone().unwrap_or_else(|| acting.clone());
                if existing.contains(&(org, key.clone())) {
                    found.insert(p.row);
                }
            }
        }
    }
    Ok(found)
}

/// `POST /import?dry_run=true|false`, body the file (XLSX, XLS or CSV).
fn import(req: &Request) -> Result<Response> {
    let lang = req.lang();
    let dry_run = req.query_param("dry_run").as_deref() == Some("true");
    let today = crate::dates::today();
    let planned = match parse(req.body(), &today) {
        Ok(planned) => planned,
        Err(problems) => return Ok(import::failure(&problems, lang)),
    };
    let there = already_there(&planned)?;
    let (skipped, fresh): (Vec<Planned>, Vec<Planned>) =
        planned.into_iter().partition(|p| there.contains(&p.row));
    let skipped: Vec<Value> = skipped
        .iter()
        .map(|p| {
            json!({
                "row": p.row, "asset_no": p.card.asset_no, "name": p.card.name,
                "code": "duplicate_existing",
                "message": if lang == "en" { "already in the register; skipped" } else { "已在资产台账中，未重复导入" },
            })
        })
        .collect();
    let listed = |p: &Planned, id: Option<&str>, asset_no: &str| {
        json!({
            "row": p.row, "id": id, "asset_no": asset_no, "name": p.card.name,
            "category": p.card.category, "original_value": p.card.original_value,
        })
    };
    if dry_run {
        let would: Vec<Value> = fresh
            .iter()
            .map(|p| listed(p, None, &p.card.asset_no))
            .collect();
        return Ok(Response::json(&json!({
            "ok": true, "dry_run": true, "rows": fresh.len() + skipped.len(),
            "imported": 0, "would_import": would, "skipped": skipped, "errors": [],
        })));
    }
    let import_id = format!("import-{}-{}", today, cards().find().count()?);
    let month = crate::dates::this_month() - 1;
    let mut by_org: BTreeMap<Option<String>, Vec<Planned>> = BTreeMap::new();
    for mut p in fresh {
        book_through(&mut p.card, month);
        p.card.import_id = Some(import_id.clone());
        by_org.entry(p.org.clone()).or_default().push(p);
    }
    let mut written: Vec<String> = Vec::new();
    let mut drafts: Vec<String> = Vec::new();
    let mut listed_cards: Vec<Value> = Vec::new();
    let outcome = (|| -> Result<()> {
        for (org, list) in &mut by_org {
            // One registration document per 200 cards, the most a
            // document holds.
            for chunk in list.chunks_mut(200) {
                let mut batch: Vec<Card> = chunk.iter().map(|p| p.card.clone()).collect();
                let docs = insert_cards(&mut batch, org.as_deref(), "imported", None)?;
                written.extend(docs.iter().map(|d| d.id.clone()));
                for (p, d) in chunk.iter().zip(&docs) {
                    listed_cards.push(listed(p, Some(&d.id), &d.data.asset_no));
                }
                let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
                let input = json!({ "card_ids": ids, "note": format!("导入 Import {import_id}") });
                let doc = crate::documents::create_document(
                    "registration",
                    input.as_object().expect("an object"),
                    docs.first().map(|d| d.org.clone()),
                )?;
                drafts.push(doc.id);
            }
        }
        Ok(())
    })();
    let outcome = outcome.and_then(|()| {
        drafts
            .iter()
            .try_for_each(|id| crate::documents::submit_document(id).map(|_| ()))
    });
    if let Err(e) = outcome {
        // All or nothing: drop what this import wrote (documents not yet
        // submitted cannot have an approval).
        undo("documents", &drafts);
        undo("cards", &written);
        return Err(e);
    }
    Ok(Response::json(&json!({
        "ok": true, "rows": written.len() + skipped.len(), "imported": written.len(),
        "import_id": import_id, "documents": drafts, "cards": listed_cards,
        "skipped": skipped, "errors": [],
    }))
    .with_status(201))
}

fn undo(collection: &str, ids: &[String]) {
    for chunk in ids.chunks(400) {
        let writes = chunk
            .iter()
            .map(|id| Write::Delete {
                collection: collection.into(),
                id: id.clone(),
                expected_revision: None,
            })
            .collect();
        if let Err(e) = tianshan_sdk::storage::transact(writes) {
            log::error(format!(
                "undoing a failed import left {collection} behind: {e}"
            ));
        }
    }
}

/// `POST /import/marked`: the uploaded file back as a workbook with each
/// problem marked on its cell and listed in a last column.
fn marked(req: &Request) -> Result<Response> {
    let lang = req.lang();
    let mut parsed = REGISTER.parse(req.body());
    let today = crate::dates::today();
    if let Err(problems) = parse(req.body(), &today) {
        parsed.problems = problems;
    }
    let bytes = import::marked_workbook(&parsed, &REGISTER, lang)?;
    Ok(Response::bytes(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        bytes,
    )
    .header(
        "content-disposition",
        "attachment; filename=\"import-problems.xlsx\"",
    ))
}

/// An empty register with the expected columns and one example row, in
/// the words users write (labels, not codes).
fn template(req: &Request) -> Result<Response> {
    let en = req.lang() == "en";
    let headers: Vec<&str> = REGISTER
        .columns
        .iter()
        .map(|c| if en { c.header_en } else { c.header })
        .collect();
    let mut table = Table::new("import-template", &headers);
    let label = |v: &tianshan_sdk::vocab::Vocab, code: &str| json!(v.label(code, req.lang()));
    table.push(vec![
        json!(""),
        json!("台式计算机"),
        json!("A020101"),
        json!("启天M437"),
        json!("联想"),
        json!(1),
        json!("台"),
        label(&ACQUISITION_METHOD, "purchase"),
        json!("2024-03-15"),
        json!(4800),
        json!(4800),
        json!("办公室"),
        json!("王芳"),
        json!("主楼301室"),
        label(&USE_STATUS, "in_use"),
        json!(""),
        json!(""),
    ]);
    let format = crate::export::wanted(req)?.unwrap_or("xlsx");
    crate::export::respond(&table, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet(rows: &[Vec<Value>]) -> Vec<u8> {
        let headers: Vec<&str> = REGISTER.columns.iter().map(|c| c.header).collect();
        let mut t = Table::new("t", &headers);
        for r in rows {
            t.push(r.clone());
        }
        crate::export::to_xlsx(&t).unwrap()
    }

    fn row(name: &str, category: &str, date: &str, value: Value) -> Vec<Value> {
        let mut r = vec![
            json!(""),
            json!(name),
            json!(category),
            json!(""),
            json!(""),
            json!(1),
            json!(""),
            json!("purchase"),
            json!(date),
            value,
        ];
        r.resize(REGISTER.columns.len(), json!(""));
        r
    }

    const TODAY: &str = "2026-12-01";

    #[test]
    fn a_clean_sheet_parses() {
        let bytes = sheet(&[
            row("台式计算机", "A020101", "2024-03-15", json!(4800)),
            row("办公椅", "A050102", "2023-01-02", json!("350.5")),
        ]);
        let cards = parse(&bytes, TODAY).unwrap();
        assert_eq!(cards.len(), 2);
        assert_eq!(cards[0].card.original_value, 480_000);
        assert_eq!(cards[1].card.original_value, 35_050);
        assert_eq!(cards[0].card.state, "draft");
    }

    #[test]
    fn every_bad_row_is_named_with_its_column() {
        let bytes = sheet(&[
            row("台式计算机", "A020101", "2024-03-15", json!(4800)),
            row("坏分类", "X000000", "2024-03-15", json!(10)),
            row("坏日期", "A020101", "2024-13-45", json!(10)),
            row("坏金额", "A020101", "2024-01-01", json!("12.345")),
            row("未来", "A020101", "2030-01-01", json!(0)),
        ]);
        let errors = parse(&bytes, TODAY).unwrap_err();
        let got: Vec<(usize, &str, &str)> = errors
            .iter()
            .map(|e| (e.row, e.column.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, "分类代码", "category_unknown"),
                (4, "取得日期", "date_impossible"),
                (5, "原值", "amount_invalid"),
                (6, "取得日期", "date_in_future"),
                (6, "原值", "value_zero"),
            ]
        );
    }

    #[test]
    fn a_category_by_its_name_or_a_suggestion() {
        let bytes = sheet(&[
            row("会议桌", "会议桌", "2021-03-05", json!("6,500元")),
            row("桌", "木质会议桌", "2021-03-05", json!(1)),
        ]);
        let errors = parse(&bytes, TODAY).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].params["suggestion"], "A050105");
        assert!(errors[0].message("zh-CN").contains("会议桌"));
    }

    #[test]
    fn a_csv_that_is_not_excel_is_read() {
        let csv = "资产名称,资产分类,取得日期,原值(元),使用状况\n会议桌,会议桌,2021年3月5日,\"6,500元\",在用\n";
        let cards = parse(csv.as_bytes(), TODAY).unwrap();
        assert_eq!(cards[0].card.category, "A050105");
        assert_eq!(cards[0].card.use_status, "in_use");
        assert!(cards[0].card.import_key.is_some());
    }
}
