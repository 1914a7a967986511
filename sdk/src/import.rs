//! Importing a register (台账) from XLSX, XLS or CSV (UTF-8 or GBK/GB18030),
//! the way unit registers really look: title, 填报单位 and note rows above
//! the header are skipped, headers match by alias and ignore units in
//! brackets (`原值(元)` is `原值`) and `*` required marks, vocabulary cells
//! may carry the Chinese label (`在用`), dates come in the usual Chinese
//! forms or as Excel serials, amounts with thousands separators and `元`,
//! and the 合计 / 制表人 rows at the bottom end the data. Every problem of
//! every row is collected (row, column, a stable code and its params), so
//! one upload shows them all; the plugin writes nothing unless none is
//! left. Needs the `import` feature (calamine).
//!
//! ```ignore
//! use tianshan_sdk::import::{Column, Kind, Register};
//! const REGISTER: Register = Register::new(&[
//!     Column::new("name", "资产名称", "Name", Kind::Text).required(),
//!     Column::new("value", "原值", "Original value", Kind::Yuan).required().alias("原值(元)"),
//!     Column::new("acquired_on", "取得日期", "Acquired on", Kind::Date),
//! ]);
//! let parsed = REGISTER.parse(req.body());
//! if !parsed.problems.is_empty() {
//!     return Ok(import::failure(&parsed.problems, &lang));
//! }
//! for row in &parsed.rows { /* row.values["value"] is fen */ }
//! ```

use std::collections::HashMap;
use std::io::Cursor;

use serde_json::{Map, Value, json};

use crate::vocab::Vocab;
use crate::{Response, dates, money};

/// How a column's cells convert.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Trimmed text (numbers become their digits: an asset number typed as
    /// a number stays `123`, not `123.0`).
    Text,
    /// A whole number.
    Int,
    /// An amount in yuan, stored as fen.
    Yuan,
    /// A decimal number (an area in m², a length), thousands separators
    /// allowed; stored as a JSON number.
    Number,
    /// A date, stored as `YYYY-MM-DD`.
    Date,
    /// A code of the vocabulary, given by code or label.
    Vocab(&'static Vocab),
}

/// One column of the register.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The key in [`Row::values`].
    pub field: &'static str,
    /// The header in the official (zh-CN) register, also the column named
    /// in problems.
    pub header: &'static str,
    pub header_en: &'static str,
    pub aliases: &'static [&'static str],
    pub required: bool,
    pub kind: Kind,
}

impl Column {
    pub const fn new(
        field: &'static str,
        header: &'static str,
        header_en: &'static str,
        kind: Kind,
    ) -> Column {
        Column {
            field,
            header,
            header_en,
            aliases: &[],
            required: false,
            kind,
        }
    }

    pub const fn required(mut self) -> Column {
        self.required = true;
        self
    }

    /// Other headers registers use for this column (units in brackets are
    /// ignored anyway).
    pub const fn aliases(mut self, aliases: &'static [&'static str]) -> Column {
        self.aliases = aliases;
        self
    }
}

/// A register's columns.
#[derive(Debug, Clone, Copy)]
pub struct Register {
    pub columns: &'static [Column],
    /// Larger registers come in parts, so one request stays bounded.
    pub max_rows: usize,
}

/// One problem: the spreadsheet row (1-based, as Excel numbers it), the
/// column's header, a stable code and its params. [`Problem::message`]
/// renders it in zh-CN or en.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub row: usize,
    pub column: String,
    pub code: String,
    pub params: Map<String, Value>,
}

impl Problem {
    pub fn new(row: usize, column: &str, code: &str, params: Value) -> Problem {
        Problem {
            row,
            column: column.to_string(),
            code: code.to_string(),
            params: match params {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        }
    }

    /// The problem in `lang` (`en…`, else zh-CN). Codes the SDK does not
    /// know render their `message` param (a plugin's own validation text).
    pub fn message(&self, lang: &str) -> String {
        let en = lang.starts_with("en");
        let p = |k: &str| match self.params.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let (zh, en_text) = match self.code.as_str() {
            "not_a_spreadsheet" => (
                format!(
                    "无法读取文件：不是 Excel（.xlsx/.xls）或 CSV 文件（{}）",
                    p("detail")
                ),
                format!(
                    "cannot read the file: not an Excel (.xlsx/.xls) or CSV file ({})",
                    p("detail")
                ),
            ),
            "no_sheet" => (
                "工作簿中没有工作表".into(),
                "the workbook has no sheet".into(),
            ),
            "header_not_found" => (
                format!(
                    "未找到表头行：前 {} 行中没有包含所需列（{}）的行",
                    p("searched"),
                    p("columns")
                ),
                format!(
                    "no header row: none of the first {} rows names the required columns ({})",
                    p("searched"),
                    p("columns")
                ),
            ),
            "column_missing" => (
                format!("缺少必填列“{}”", p("column")),
                format!("the required column {} is missing", p("column_en")),
            ),
            "required" => ("必填项为空".into(), "this cell is required".into()),
            "date_unrecognised" => (
                format!(
                    "“{}”不是日期（可写 2021-03-05、2021/3/5、2021年3月5日 或 20210305）",
                    p("value")
                ),
                format!(
                    "{:?} is not a date (write 2021-03-05, 2021/3/5, 2021年3月5日 or 20210305)",
                    p("value")
                ),
            ),
            "date_impossible" => (
                format!("日期“{}”不存在（该月没有这一天）", p("value")),
                format!(
                    "the date {} does not exist (the month has no such day)",
                    p("value")
                ),
            ),
            "amount_invalid" => (
                format!("“{}”不是金额（元，最多两位小数）", p("value")),
                format!(
                    "{:?} is not an amount (yuan, at most two decimals)",
                    p("value")
                ),
            ),
            "number_invalid" => (
                format!("“{}”不是整数", p("value")),
                format!("{:?} is not a whole number", p("value")),
            ),
            "decimal_invalid" => (
                format!("“{}”不是数字", p("value")),
                format!("{:?} is not a number", p("value")),
            ),
            "vocab_unknown" => (
                format!("“{}”不是可选值（可选：{}）", p("value"), p("allowed_zh")),
                format!(
                    "{:?} is not one of the allowed values ({})",
                    p("value"),
                    p("allowed")
                ),
            ),
            "duplicate_in_file" => (
                format!("“{}”与第 {} 行重复", p("value"), p("first_row")),
                format!("{} repeats row {}", p("value"), p("first_row")),
            ),
            "too_many_rows" => (
                format!("超过 {} 行，请分成多个文件导入", p("max")),
                format!("more than {} rows; split the file", p("max")),
            ),
            _ => (p("message_zh"), p("message")),
        };
        let text = if en { en_text } else { zh };
        if text.is_empty() { p("message") } else { text }
    }

    /// `{row, column, code, params, message}` for an API answer.
    pub fn to_json(&self, lang: &str) -> Value {
        json!({
            "row": self.row,
            "column": self.column,
            "code": self.code,
            "params": self.params,
            "message": self.message(lang),
        })
    }
}

/// One data row, converted: `values[field]` holds text, a whole number,
/// fen, a `YYYY-MM-DD` date or a vocabulary code; empty cells are absent.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The spreadsheet row, for problems the plugin finds later.
    pub number: usize,
    pub values: Map<String, Value>,
}

impl Row {
    pub fn text(&self, field: &str) -> Option<&str> {
        self.values.get(field).and_then(Value::as_str)
    }
    pub fn int(&self, field: &str) -> Option<i64> {
        self.values.get(field).and_then(Value::as_i64)
    }
}

/// What a file held: the rows (empty when any problem was found is up to
/// the caller: imports are all or nothing), every problem, and the grid as
/// read, for [`marked_workbook`].
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub rows: Vec<Row>,
    pub problems: Vec<Problem>,
    /// The spreadsheet row of the header.
    pub header_row: usize,
    /// Rows recognised as totals or signatures (合计, 制表人), not data.
    pub footer_rows: Vec<usize>,
    pub grid: Vec<Vec<Cell>>,
}

/// A cell as read from any of the three formats.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    /// An Excel date cell, as its serial day number.
    Date(f64),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.trim().to_string(),
            Cell::Number(n) | Cell::Date(n) => number_text(*n),
        }
    }
    fn is_empty(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => s.trim().is_empty(),
            _ => false,
        }
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// How many rows above the header may hold titles and notes.
const HEADER_SEARCH: usize = 20;

/// First cells that end the data: totals and the signature block.
const FOOTER_MARKS: &[&str] = &[
    "合计",
    "总计",
    "小计",
    "制表人",
    "制表",
    "填表人",
    "审核人",
    "负责人",
    "单位负责人",
    "财务负责人",
];

/// A header with spaces, `*` required marks and a bracketed unit removed:
/// `* 原值（元）` → `原值`.
fn normalise_header(h: &str) -> String {
    let h: String = h
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '*' | '＊'))
        .collect();
    let cut = h.find(['(', '（']).unwrap_or(h.len());
    h[..cut].to_string()
}

impl Register {
    pub const fn new(columns: &'static [Column]) -> Register {
        Register {
            columns,
            max_rows: 20_000,
        }
    }

    /// The column of `field`, for problems the plugin finds after parsing.
    pub fn header_of(&self, field: &str) -> &'static str {
        self.columns
            .iter()
            .find(|c| c.field == field)
            .map_or("", |c| c.header)
    }

    fn column_at(&self, header: &str) -> Option<usize> {
        let h = normalise_header(header);
        if h.is_empty() {
            return None;
        }
        self.columns.iter().position(|c| {
            c.header == h
                || c.field == h
                || c.header_en.eq_ignore_ascii_case(&h)
                || normalise_header(c.header_en).eq_ignore_ascii_case(&h)
                || c.aliases.iter().any(|a| normalise_header(a) == h)
        })
    }

    /// Reads the first sheet of `bytes` (XLSX, XLS or CSV) and converts it.
    pub fn parse(&self, bytes: &[u8]) -> Parsed {
        match read_grid(bytes) {
            Ok(grid) => self.parse_grid(grid),
            Err(problem) => Parsed {
                problems: vec![problem],
                ..Parsed::default()
            },
        }
    }

    /// Converts a grid already read (rows of cells, row 0 is row 1).
    pub fn parse_grid(&self, grid: Vec<Vec<Cell>>) -> Parsed {
        let mut out = Parsed::default();
        // The header is the row among the first few naming the most
        // columns; titles and 填报单位 lines above it name none or one.
        let mut best: Option<(usize, usize)> = None;
        for (i, row) in grid.iter().take(HEADER_SEARCH).enumerate() {
            let named = row
                .iter()
                .filter_map(|c| self.column_at(&c.text()))
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            if named >= 2 && best.is_none_or(|(_, n)| named > n) {
                best = Some((i, named));
            }
        }
        let required: Vec<&str> = self
            .columns
            .iter()
            .filter(|c| c.required)
            .map(|c| c.header)
            .collect();
        let Some((header_index, _)) = best else {
            out.problems.push(Problem::new(
                1,
                "",
                "header_not_found",
                json!({ "searched": HEADER_SEARCH.min(grid.len().max(1)), "columns": required.join("、") }),
            ));
            out.grid = grid;
            return out;
        };
        out.header_row = header_index + 1;
        let mut at: Vec<(usize, &Column)> = Vec::new();
        for (i, cell) in grid[header_index].iter().enumerate() {
            if let Some(c) = self.column_at(&cell.text())
                && !at
                    .iter()
                    .any(|(_, seen)| seen.field == self.columns[c].field)
            {
                at.push((i, &self.columns[c]));
            }
        }
        for column in self.columns.iter().filter(|c| c.required) {
            if !at.iter().any(|(_, c)| c.field == column.field) {
                out.problems.push(Problem::new(
                    out.header_row,
                    column.header,
                    "column_missing",
                    json!({ "column": column.header, "column_en": column.header_en }),
                ));
            }
        }
        if !out.problems.is_empty() {
            out.grid = grid;
            return out;
        }
        for (i, cells) in grid.iter().enumerate().skip(header_index + 1) {
            let number = i + 1;
            if cells.iter().all(Cell::is_empty) {
                continue;
            }
            let first = cells
                .iter()
                .map(Cell::text)
                .find(|t| !t.is_empty())
                .unwrap_or_default();
            let first: String = first.chars().filter(|c| !c.is_whitespace()).collect();
            if FOOTER_MARKS.iter().any(|m| first.starts_with(m)) {
                // Totals and signatures close the register; notes below
                // them are not data either.
                out.footer_rows.extend(number..=grid.len());
                break;
            }
            if out.rows.len() >= self.max_rows {
                out.problems.push(Problem::new(
                    number,
                    "",
                    "too_many_rows",
                    json!({ "max": self.max_rows }),
                ));
                break;
            }
            let mut values = Map::new();
            for (index, column) in &at {
                let cell = cells.get(*index).unwrap_or(&Cell::Empty);
                if cell.is_empty() {
                    if column.required {
                        out.problems.push(Problem::new(
                            number,
                            column.header,
                            "required",
                            json!({}),
                        ));
                    }
                    continue;
                }
                match convert(cell, column.kind) {
                    Ok(v) => {
                        values.insert(column.field.to_string(), v);
                    }
                    Err((code, params)) => {
                        out.problems
                            .push(Problem::new(number, column.header, code, params))
                    }
                }
            }
            out.rows.push(Row { number, values });
        }
        out.grid = grid;
        out
    }
}

fn convert(cell: &Cell, kind: Kind) -> Result<Value, (&'static str, Value)> {
    let text = cell.text();
    match kind {
        Kind::Text => Ok(json!(text)),
        Kind::Int => match cell {
            Cell::Number(n) if n.fract() == 0.0 => Ok(json!(*n as i64)),
            _ => text
                .parse::<i64>()
                .map(|n| json!(n))
                .map_err(|_| ("number_invalid", json!({ "value": text }))),
        },
        Kind::Number => match cell {
            Cell::Number(n) if n.is_finite() => Ok(json!(*n)),
            _ => text
                .replace([',', '，'], "")
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(|n| json!(n))
                .ok_or(("decimal_invalid", json!({ "value": text }))),
        },
        Kind::Yuan => match cell {
            Cell::Number(n) => money::yuan_float_to_fen(*n),
            _ => money::parse_yuan(&text),
        }
        .map(|fen| json!(fen))
        .ok_or(("amount_invalid", json!({ "value": text }))),
        Kind::Date => {
            let serial = match cell {
                Cell::Date(n) => Some(*n),
                // 20210305 typed into a number cell is a date, not a serial.
                Cell::Number(n) if (1.0..=2_958_465.0).contains(n) && text.len() != 8 => Some(*n),
                _ => None,
            };
            if let Some(n) = serial {
                return Ok(json!(dates::from_excel_serial(n)));
            }
            // Excel's own date-time text: keep the date part.
            let text_date = text.split([' ', 'T']).next().unwrap_or("");
            dates::parse_loose(text_date)
                .map(|d| json!(dates::date_text(d)))
                .map_err(|p| (p.code(), json!({ "value": text })))
        }
        Kind::Vocab(vocab) => vocab.resolve(&text).map(|c| json!(c)).ok_or_else(|| {
            (
                "vocab_unknown",
                json!({
                    "value": text,
                    "allowed": vocab.terms.iter().map(|t| t.en).collect::<Vec<_>>().join(", "),
                    "allowed_zh": vocab.terms.iter().map(|t| t.zh).collect::<Vec<_>>().join("、"),
                }),
            )
        }),
    }
}

/// Flags the rows whose `field` repeats an earlier row's (blank values
/// are not compared); answers the problems.
pub fn duplicates_in_file(register: &Register, rows: &[Row], field: &str) -> Vec<Problem> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut problems = Vec::new();
    for row in rows {
        let Some(value) = row.text(field).filter(|v| !v.is_empty()) else {
            continue;
        };
        match seen.get(value) {
            Some(first) => problems.push(Problem::new(
                row.number,
                register.header_of(field),
                "duplicate_in_file",
                json!({ "value": value, "first_row": first }),
            )),
            None => {
                seen.insert(value, row.number);
            }
        }
    }
    problems
}

/// Problems in reading order: by row, then by the register's column order.
pub fn sort(register: &Register, problems: &mut [Problem]) {
    let position = |column: &str| register.columns.iter().position(|c| c.header == column);
    problems.sort_by_key(|p| (p.row, position(&p.column)));
}

/// 422 `import_invalid` listing every problem in `lang`; nothing was written.
pub fn failure(problems: &[Problem], lang: &str) -> Response {
    let en = lang.starts_with("en");
    let message = if en {
        format!("{} problem(s); nothing was imported", problems.len())
    } else {
        format!("发现 {} 处问题，未导入任何数据", problems.len())
    };
    Response::json(&json!({
        "ok": false,
        "error": { "code": "import_invalid", "message": message },
        "errors": problems.iter().map(|p| p.to_json(lang)).collect::<Vec<_>>(),
    }))
    .with_status(422)
}

/// Reads the first sheet of an XLSX or XLS workbook, or a CSV file in
/// UTF-8 (with or without BOM) or GB18030 (which covers GBK).
pub fn read_grid(bytes: &[u8]) -> Result<Vec<Vec<Cell>>, Problem> {
    use calamine::{Reader, Xls, Xlsx};
    let fail =
        |detail: String| Problem::new(0, "", "not_a_spreadsheet", json!({ "detail": detail }));
    let range = if bytes.starts_with(b"PK\x03\x04") {
        let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| fail(e.to_string()))?;
        book.worksheet_range_at(0)
            .map(|r| r.map_err(|e| fail(e.to_string())))
    } else if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        let mut book: Xls<_> = Xls::new(Cursor::new(bytes)).map_err(|e| fail(e.to_string()))?;
        book.worksheet_range_at(0)
            .map(|r| r.map_err(|e| fail(e.to_string())))
    } else {
        return read_csv(bytes).ok_or_else(|| fail("neither UTF-8 nor GB18030 text".into()));
    };
    let range = range.ok_or_else(|| Problem::new(0, "", "no_sheet", json!({})))??;
    let (top, left) = range.start().unwrap_or((0, 0));
    let mut grid: Vec<Vec<Cell>> = vec![Vec::new(); top as usize];
    for row in range.rows() {
        let mut cells = vec![Cell::Empty; left as usize];
        cells.extend(row.iter().map(|d| match d {
            calamine::Data::Empty => Cell::Empty,
            calamine::Data::String(s) => Cell::Text(s.clone()),
            calamine::Data::Float(f) => Cell::Number(*f),
            calamine::Data::Int(i) => Cell::Number(*i as f64),
            calamine::Data::DateTime(d) => Cell::Date(d.as_f64()),
            other => Cell::Text(other.to_string()),
        }));
        grid.push(cells);
    }
    Ok(grid)
}

fn read_csv(bytes: &[u8]) -> Option<Vec<Vec<Cell>>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => {
            encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes)?
        }
    };
    if text.contains('\0') {
        return None;
    }
    let first_line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let delimiter = if first_line.contains('\t') && !first_line.contains(',') {
        '\t'
    } else {
        ','
    };
    let mut grid = Vec::new();
    let mut row: Vec<Cell> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let end_field = |field: &mut String, row: &mut Vec<Cell>| {
        row.push(if field.trim().is_empty() {
            Cell::Empty
        } else {
            Cell::Text(std::mem::take(field))
        });
        field.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if field.is_empty() => quoted = true,
            c if c == delimiter && !quoted => end_field(&mut field, &mut row),
            '\r' if !quoted => {}
            '\n' if !quoted => {
                end_field(&mut field, &mut row);
                grid.push(std::mem::take(&mut row));
            }
            c => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        end_field(&mut field, &mut row);
        grid.push(row);
    }
    Some(grid)
}

/// The file as read, as an XLSX workbook with a problems column added and
/// each cell at fault marked, so the user corrects their own sheet.
#[cfg(feature = "xlsx")]
pub fn marked_workbook(parsed: &Parsed, register: &Register, lang: &str) -> crate::Result<Vec<u8>> {
    use rust_xlsxwriter::{Color, Format, Workbook};
    let fail = |e: rust_xlsxwriter::XlsxError| crate::Error::internal(format!("writing XLSX: {e}"));
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let bad = Format::new().set_background_color(Color::RGB(0xFFC7CE));
    let width = parsed.grid.iter().map(Vec::len).max().unwrap_or(0) as u16;
    let header = parsed
        .header_row
        .checked_sub(1)
        .and_then(|i| parsed.grid.get(i));
    let column_index = |name: &str| -> Option<u16> {
        header?
            .iter()
            .position(|c| {
                let h = normalise_header(&c.text());
                register
                    .columns
                    .iter()
                    .find(|col| col.header == name)
                    .is_some_and(|col| {
                        register
                            .column_at(&h)
                            .is_some_and(|i| register.columns[i].field == col.field)
                    })
            })
            .map(|i| i as u16)
    };
    for (r, row) in parsed.grid.iter().enumerate() {
        let mine: Vec<&Problem> = parsed.problems.iter().filter(|p| p.row == r + 1).collect();
        for (c, cell) in row.iter().enumerate() {
            let marked = mine
                .iter()
                .any(|p| column_index(&p.column) == Some(c as u16));
            let (r, c) = (r as u32, c as u16);
            let result = match (cell, marked) {
                (Cell::Empty, true) => sheet.write_blank(r, c, &bad).map(|_| ()),
                (Cell::Empty, false) => Ok(()),
                (Cell::Number(n) | Cell::Date(n), true) => {
                    sheet.write_number_with_format(r, c, *n, &bad).map(|_| ())
                }
                (Cell::Number(n) | Cell::Date(n), false) => {
                    sheet.write_number(r, c, *n).map(|_| ())
                }
                (Cell::Text(s), true) => sheet.write_string_with_format(r, c, s, &bad).map(|_| ()),
                (Cell::Text(s), false) => sheet.write_string(r, c, s).map(|_| ()),
            };
            result.map_err(fail)?;
        }
        if r + 1 == parsed.header_row {
            sheet
                .write_string(
                    r as u32,
                    width,
                    if lang.starts_with("en") {
                        "Problems"
                    } else {
                        "问题"
                    },
                )
                .map_err(fail)?;
        } else if !mine.is_empty() {
            let text = mine
                .iter()
                .map(|p| format!("{}：{}", p.column, p.message(lang)))
                .collect::<Vec<_>>()
                .join("；");
            sheet
                .write_string_with_format(r as u32, width, text, &bad)
                .map_err(fail)?;
        }
    }
    book.save_to_buffer().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::Term;

    const USE: Vocab = Vocab::new(
        "use_status",
        &[
            Term::new("in_use", "在用", "In use"),
            Term::new("idle", "闲置", "Idle"),
        ],
    );
    const REGISTER: Register = Register::new(&[
        Column::new("asset_no", "资产编号", "Asset no.", Kind::Text),
        Column::new("name", "资产名称", "Name", Kind::Text).required(),
        Column::new("category", "分类代码", "Category", Kind::Text)
            .required()
            .aliases(&["资产分类"]),
        Column::new("acquired_on", "取得日期", "Acquired on", Kind::Date).required(),
        Column::new("original_value", "原值", "Original value", Kind::Yuan).required(),
        Column::new("quantity", "数量", "Quantity", Kind::Int),
        Column::new("use_status", "使用状况", "Use status", Kind::Vocab(&USE)),
    ]);

    fn t(s: &str) -> Cell {
        if s.is_empty() {
            Cell::Empty
        } else {
            Cell::Text(s.into())
        }
    }

    #[test]
    fn a_county_register_with_title_units_labels_and_footer() {
        let grid = vec![
            vec![t("某县机关事务服务中心固定资产登记表"), t(""), t("")],
            vec![t("填报单位：某县机关事务服务中心"), t(""), t("单位：元")],
            vec![
                t("资产编号"),
                t("* 资产名称"),
                t("资产分类"),
                t("取得日期"),
                t("原值（元）"),
                t("数量"),
                t("使用状况"),
            ],
            vec![
                t("ZC-001"),
                t("会议桌"),
                t("A050105"),
                t("2021/3/5"),
                t("6,500元"),
                Cell::Number(1.0),
                t("在用"),
            ],
            vec![
                t("ZC-002"),
                t("台式机"),
                t("A020101"),
                Cell::Number(20210305.0),
                Cell::Number(4800.0),
                t(""),
                t("闲置"),
            ],
            vec![
                t("ZC-003"),
                t("椅子"),
                t("A050102"),
                Cell::Date(45_366.0),
                t("350.5"),
                t("2"),
                t(""),
            ],
            vec![t("合计"), t(""), t(""), t(""), t("11650.5")],
            vec![t("制表人：王芳"), t(""), t("审核人：李明")],
        ];
        let parsed = REGISTER.parse_grid(grid);
        assert_eq!(parsed.problems, vec![], "{:?}", parsed.problems);
        assert_eq!(parsed.header_row, 3);
        assert_eq!(parsed.footer_rows, vec![7, 8]);
        assert_eq!(parsed.rows.len(), 3);
        let r = &parsed.rows[0].values;
        assert_eq!(
            (r["acquired_on"].as_str(), r["original_value"].as_i64()),
            (Some("2021-03-05"), Some(650_000))
        );
        assert_eq!(r["use_status"], "in_use");
        assert_eq!(parsed.rows[1].values["acquired_on"], "2021-03-05");
        assert_eq!(parsed.rows[2].values["acquired_on"], "2024-03-15");
        assert_eq!(parsed.rows[2].values["quantity"], 2);
    }

    #[test]
    fn every_problem_of_every_row_with_a_code() {
        let grid = vec![
            vec![
                t("资产名称"),
                t("分类代码"),
                t("取得日期"),
                t("原值"),
                t("使用状况"),
                t("资产编号"),
            ],
            vec![
                t(""),
                t("A020101"),
                t("2021-02-30"),
                t("12.345"),
                t("报废"),
                t("A1"),
            ],
            vec![t("桌"), t("A050101"), t("三月"), t("1"), t(""), t("A1")],
        ];
        let parsed = REGISTER.parse_grid(grid);
        let codes: Vec<(usize, &str, &str)> = parsed
            .problems
            .iter()
            .map(|p| (p.row, p.column.as_str(), p.code.as_str()))
            .collect();
        assert_eq!(
            codes,
            vec![
                (2, "资产名称", "required"),
                (2, "取得日期", "date_impossible"),
                (2, "原值", "amount_invalid"),
                (2, "使用状况", "vocab_unknown"),
                (3, "取得日期", "date_unrecognised"),
            ]
        );
        let dup = duplicates_in_file(&REGISTER, &parsed.rows, "asset_no");
        assert_eq!((dup[0].row, dup[0].code.as_str()), (3, "duplicate_in_file"));
        assert!(parsed.problems[1].message("zh-CN").contains("不存在"));
        assert!(parsed.problems[1].message("en").contains("does not exist"));
        assert!(dup[0].message("zh-CN").contains("第 2 行"));
    }

    #[test]
    fn csv_in_utf8_and_gbk() {
        let text = "标题行\r\n资产名称,分类代码,取得日期,原值\r\n\"桌子, 大\",A050101,2021年3月5日,\"1,200\"\r\n";
        let grid = read_grid(text.as_bytes()).unwrap();
        let parsed = REGISTER.parse_grid(grid);
        assert_eq!(parsed.problems, vec![]);
        assert_eq!(parsed.rows[0].values["name"], "桌子, 大");
        assert_eq!(parsed.rows[0].values["original_value"], 120_000);
        let (gbk, _, _) = encoding_rs::GB18030.encode(text);
        let parsed = REGISTER.parse_grid(read_grid(&gbk).unwrap());
        assert_eq!(parsed.rows[0].values["name"], "桌子, 大");
        let bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        assert_eq!(REGISTER.parse(&bom).rows.len(), 1);
    }

    #[test]
    fn decimal_numbers_from_cells_and_text() {
        assert_eq!(convert(&Cell::Number(18.5), Kind::Number), Ok(json!(18.5)));
        assert_eq!(convert(&t("1,234.25"), Kind::Number), Ok(json!(1234.25)));
        assert_eq!(convert(&t(" 36 "), Kind::Number), Ok(json!(36.0)));
        assert_eq!(
            convert(&t("十八"), Kind::Number).map_err(|e| e.0),
            Err("decimal_invalid")
        );
    }

    #[test]
    fn no_header_is_one_problem() {
        let parsed = REGISTER.parse(b"a,b\n1,2\n");
        assert_eq!(parsed.problems.len(), 1);
        assert_eq!(parsed.problems[0].code, "header_not_found");
        let parsed = REGISTER.parse(b"PK\x03\x04garbage");
        assert_eq!(parsed.problems[0].code, "not_a_spreadsheet");
    }
}
