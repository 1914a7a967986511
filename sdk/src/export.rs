//! Lists and reports leave as CSV or XLSX: one [`Table`], two writers.
//! CSV carries a UTF-8 byte-order mark so Excel on Chinese Windows reads
//! it as UTF-8, and cells that a spreadsheet would run as formulas are
//! defused. XLSX needs the `xlsx` feature (it adds ~300 KiB of code).
//!
//! ```ignore
//! use tianshan_sdk::export::{self, Table};
//! let mut t = Table::new("rooms", &["名称", "面积"]);
//! t.push(vec![json!("301"), json!(24.5)]);
//! export::respond(&t, "csv")
//! ```

use serde_json::Value;

use crate::{Error, Request, Response, Result};

/// At most this many rows in one export, so one request stays bounded.
pub const EXPORT_LIMIT: usize = 50_000;

/// Rows with a header; cells are JSON strings or numbers.
pub struct Table {
    pub name: String,
    /// Lines above the header, as official forms have them: the title,
    /// then the filing unit, period and money unit, then notes.
    pub caption: Vec<String>,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn new(name: &str, headers: &[&str]) -> Table {
        Table {
            name: name.to_string(),
            caption: Vec::new(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Value>) {
        self.rows.push(row);
    }

    /// Puts `lines` above the header (the first one is the title).
    pub fn caption(mut self, lines: Vec<String>) -> Table {
        self.caption = lines;
        self
    }
}

#[cfg(feature = "xlsx")]
const FORMATS: &[&str] = &["json", "csv", "xlsx"];
#[cfg(not(feature = "xlsx"))]
const FORMATS: &[&str] = &["json", "csv"];

/// `?format=csv|xlsx`, if the request asks for a file.
pub fn wanted(req: &Request) -> Result<Option<&'static str>> {
    match req.query_param("format").as_deref() {
        None | Some("json") => Ok(None),
        Some("csv") => Ok(Some("csv")),
        #[cfg(feature = "xlsx")]
        Some("xlsx") => Ok(Some("xlsx")),
        Some(other) => Err(Error::validation(
            "format",
            format!("format {other:?} is not one of {}", FORMATS.join(", ")),
        )),
    }
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_field(text: &str) -> String {
    // A leading = + - @ would make a spreadsheet run the cell as a formula.
    let text = if text.starts_with(['=', '+', '@', '\t', '\r'])
        || (text.starts_with('-') && text.parse::<f64>().is_err())
    {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

pub fn to_csv(table: &Table) -> Vec<u8> {
    // The BOM makes Excel read the file as UTF-8 (Chinese names).
    let mut out = String::from("\u{feff}");
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .map(|c| csv_field(c))
            .collect::<Vec<_>>()
            .join(",")
    };
    for caption in &table.caption {
        out.push_str(&csv_field(caption));
        out.push_str("\r\n");
    }
    out.push_str(&line(table.headers.clone()));
    out.push_str("\r\n");
    for row in &table.rows {
        out.push_str(&line(row.iter().map(cell_text).collect()));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

#[cfg(feature = "xlsx")]
pub fn to_xlsx(table: &Table) -> Result<Vec<u8>> {
    use rust_xlsxwriter::{Format, Workbook};
    let fail = |e: rust_xlsxwriter::XlsxError| Error::internal(format!("writing XLSX: {e}"));
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let name: String = table
        .name
        .chars()
        .filter(|c| !"[]:*?/\\".contains(*c))
        .take(31)
        .collect();
    sheet
        .set_name(if name.is_empty() { "Sheet1" } else { &name })
        .map_err(fail)?;
    let bold = Format::new().set_bold();
    // The title spans the table, centred and large; the other caption
    // lines span it too, left-aligned.
    let last_col = table.headers.len().saturating_sub(1) as u16;
    for (r, text) in table.caption.iter().enumerate() {
        let format = if r == 0 {
            Format::new()
                .set_bold()
                .set_font_size(16)
                .set_align(rust_xlsxwriter::FormatAlign::Center)
        } else {
            Format::new()
        };
        if last_col > 0 {
            sheet
                .merge_range(r as u32, 0, r as u32, last_col, text, &format)
                .map_err(fail)?;
        } else {
            sheet
                .write_string_with_format(r as u32, 0, text, &format)
                .map_err(fail)?;
        }
    }
    let head = table.caption.len() as u32;
    for (col, header) in table.headers.iter().enumerate() {
        sheet
            .write_string_with_format(head, col as u16, header, &bold)
            .map_err(fail)?;
        sheet.set_column_width(col as u16, 16).map_err(fail)?;
    }
    for (r, row) in table.rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32 + head + 1, c as u16);
            match cell {
                Value::Number(n) => {
                    sheet
                        .write_number(r, c, n.as_f64().unwrap_or(0.0))
                        .map_err(fail)?;
                }
                Value::Null => {}
                other => {
                    sheet.write_string(r, c, cell_text(other)).map_err(fail)?;
                }
            }
        }
    }
    sheet.set_freeze_panes(head + 1, 0).map_err(fail)?;
    book.save_to_buffer().map_err(fail)
}

/// Every record `find` selects (at most [`EXPORT_LIMIT`]),
/// one row each. Columns are (header, JSON pointer into the record: `/id`,
/// `/org`, `/data/no`); a pointer starting `¥` turns fen into yuan, one
/// starting `#` gives an array's length.
pub fn records(find: &crate::storage::Find, name: &str, columns: &[(&str, &str)]) -> Result<Table> {
    let headers: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let mut table = Table::new(name, &headers);
    let mut cursor = None;
    loop {
        let page = find.clone().limit(1000).cursor(cursor).page::<Value>()?;
        for doc in &page.records {
            let record = serde_json::json!({ "id": doc.id, "org": doc.org, "data": doc.data });
            table.push(
                columns
                    .iter()
                    .map(|(_, spec)| cell(&record, spec))
                    .collect(),
            );
        }
        if table.rows.len() >= EXPORT_LIMIT {
            return Err(too_large());
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(table),
        }
    }
}

/// A cell of fen shown in yuan (a number, so a spreadsheet sums it).
pub fn yuan(fen: i64) -> Value {
    serde_json::json!(crate::money::fen_to_yuan_number(fen))
}

/// 422 `export_too_large`: more rows than one export holds.
pub fn too_large() -> Error {
    Error::new(
        422,
        "export_too_large",
        format!("more than {EXPORT_LIMIT} records match; narrow the filter"),
    )
}

fn cell(record: &Value, spec: &str) -> Value {
    if let Some(pointer) = spec.strip_prefix('¥') {
        return yuan(record.pointer(pointer).and_then(Value::as_i64).unwrap_or(0));
    }
    if let Some(pointer) = spec.strip_prefix('#') {
        let len = record
            .pointer(pointer)
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        return serde_json::json!(len);
    }
    match record.pointer(spec) {
        Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => v.clone(),
        Some(Value::Null) | None => Value::Null,
        Some(other) => Value::String(other.to_string()),
    }
}

/// The table as a download in `format`.
pub fn respond(table: &Table, format: &str) -> Result<Response> {
    let (body, content_type) = match format {
        #[cfg(feature = "xlsx")]
        "xlsx" => (
            to_xlsx(table)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        _ => (to_csv(table), "text/csv; charset=utf-8"),
    };
    let file: String = table
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(Response::bytes(content_type, body).header(
        "content-disposition",
        format!("attachment; filename=\"{file}.{format}\""),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let mut t = Table::new("cards", &["no", "name", "value"]);
        t.push(vec![json!("ZC1"), json!("桌子, 大"), json!(12.5)]);
        t.push(vec![json!("ZC2"), json!("=cmd()"), json!(-3)]);
        let text = String::from_utf8(to_csv(&t)).unwrap();
        assert!(text.starts_with('\u{feff}'));
        assert!(text.contains("\"桌子, 大\""));
        assert!(text.contains("'=cmd()"));
        assert!(text.contains(",-3\r\n"));
    }

    #[test]
    fn a_caption_goes_above_the_header() {
        let mut t = Table::new("annual", &["分类", "原值"]).caption(vec![
            "表一 固定资产情况表".into(),
            "金额单位：元, 年度".into(),
        ]);
        t.push(vec![json!("设备"), json!(12.5)]);
        let text = String::from_utf8(to_csv(&t)).unwrap();
        let lines: Vec<&str> = text.trim_start_matches('\u{feff}').split("\r\n").collect();
        assert_eq!(lines[0], "表一 固定资产情况表");
        assert_eq!(lines[1], "\"金额单位：元, 年度\"");
        assert_eq!(lines[2], "分类,原值");
        assert_eq!(lines[3], "设备,12.5");
    }

    #[cfg(all(feature = "xlsx", feature = "import"))]
    #[test]
    fn an_xlsx_caption_spans_the_rows_above_the_header() {
        use calamine::{Data, Reader, Xlsx};
        let mut t = Table::new("annual", &["分类", "原值"]).caption(vec!["表一".into()]);
        t.push(vec![json!("设备"), json!(12.5)]);
        let bytes = to_xlsx(&t).unwrap();
        let mut book = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        let range = book.worksheet_range("annual").unwrap();
        assert_eq!(range.get_value((0, 0)), Some(&Data::String("表一".into())));
        assert_eq!(range.get_value((1, 0)), Some(&Data::String("分类".into())));
        assert_eq!(range.get_value((2, 1)), Some(&Data::Float(12.5)));
    }

    #[test]
    fn fen_cells_are_yuan_numbers() {
        assert_eq!(yuan(120_050), json!(1200.5));
        assert_eq!(yuan(-5), json!(-0.05));
    }

    #[cfg(feature = "xlsx")]
    #[test]
    fn xlsx_is_a_zip_workbook() {
        let mut t = Table::new("cards", &["no"]);
        t.push(vec![json!("ZC1")]);
        let bytes = to_xlsx(&t).unwrap();
        assert_eq!(&bytes[..2], b"PK");
    }
}
