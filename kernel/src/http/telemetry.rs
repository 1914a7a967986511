//! The kernel API of telemetry: the HTTP batch endpoint devices, gateways
//! and bill uploads post readings to, and the refused list and counters
//! for administrators (docs/telemetry.md).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::core::calendar;
use crate::core::error::{ApiError, ApiResult};
use crate::http::routes::Routes;
use crate::http::session::{Caller, parse_json, read_body};
use crate::node::Kernel;
use crate::services::telemetry::mqtt::{self, Raw};
use crate::services::telemetry::{Incoming, MAX_READINGS_PER_BATCH, Protocol, Quality};

type AppState = Arc<Kernel>;

pub fn routes() -> Routes {
    Routes::new()
        .post("/api/v1/telemetry/readings", post_readings)
        .get("/api/v1/telemetry/rejected", rejected)
        .get("/api/v1/telemetry/stats", stats)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadingInput {
    device: String,
    channel: String,
    at: i64,
    value: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadingsInput {
    readings: Vec<ReadingInput>,
    #[serde(default)]
    quality: Option<String>,
}

/// `2025-03-01 08:15[:00]` in the region's time, or milliseconds.
fn parse_time(text: &str, utc_offset_minutes: i32) -> Option<i64> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    let (date, time) = text.split_once([' ', 'T']).unwrap_or((text, "00:00"));
    let mut d = date.split(['-', '/']).map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min) = (t.next()??, t.next().flatten().unwrap_or(0));
    let s = t.next().flatten().unwrap_or(0);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 59 {
        return None;
    }
    let days = calendar::days_from_civil(y, m as u32, day as u32);
    // 2025-02-30 would silently become March: refuse it.
    if calendar::civil_from_days(days) != (y, m as u32, day as u32) {
        return None;
    }
    Some(((days * 86_400 + h * 3600 + min * 60 + s) - utc_offset_minutes as i64 * 60) * 1000)
}

/// One cell of an uploaded sheet.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(String),
    Number(f64),
    /// An Excel date-time serial (days since 1899-12-30, local time).
    Date(f64),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.trim().to_string(),
            Cell::Number(n) | Cell::Date(n) => n.to_string(),
        }
    }
}

/// The first sheet of an XLSX workbook, or CSV text (UTF-8, or GB18030 as
/// Excel on Chinese Windows saves it).
fn read_sheet(bytes: &[u8]) -> ApiResult<Vec<Vec<Cell>>> {
    use calamine::{Reader, Xlsx};
    if bytes.starts_with(b"PK\x03\x04") {
        let bad = |e: String| ApiError::validation("body", format!("not a readable workbook: {e}"));
        let mut book: Xlsx<_> =
            Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
        let range = book
            .worksheet_range_at(0)
            .ok_or_else(|| bad("it has no sheet".into()))?
            .map_err(|e| bad(e.to_string()))?;
        return Ok(range
            .rows()
            .map(|row| {
                row.iter()
                    .map(|d| match d {
                        calamine::Data::Float(f) => Cell::Number(*f),
                        calamine::Data::Int(i) => Cell::Number(*i as f64),
                        calamine::Data::DateTime(d) => Cell::Date(d.as_f64()),
                        other => Cell::Text(other.to_string()),
                    })
                    .collect()
            })
            .collect());
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.to_string(),
        Err(_) => encoding_rs::GB18030
            .decode_without_bom_handling_and_without_replacement(bytes)
            .ok_or_else(|| ApiError::validation("body", "neither UTF-8 nor GB18030 text"))?
            .into_owned(),
    };
    Ok(text
        .lines()
        .map(|l| {
            l.split(',')
                .map(|c| Cell::Text(c.trim().to_string()))
                .collect()
        })
        .collect())
}

/// The columns, by the names a meter reader's sheet uses for them.
const COLUMNS: [&[&str]; 4] = [
    &["device", "设备", "设备编号", "表号"],
    &["channel", "通道", "计量项"],
    &["at", "time", "时间", "抄表时间", "日期"],
    &["value", "读数", "数值", "示数"],
];

/// Readings from a sheet: a header row (within the first ten, so a title
/// row above it is fine) naming the four columns, then one reading a row.
fn parse_sheet(rows: Vec<Vec<Cell>>, utc_offset_minutes: i32) -> ApiResult<Vec<Raw>> {
    let position = |row: &[Cell], names: &[&str]| {
        row.iter().position(|c| {
            let name = c.text().to_lowercase();
            names.contains(&name.trim_start_matches('\u{feff}'))
        })
    };
    let (header_at, cols) = rows
        .iter()
        .take(10)
        .enumerate()
        .find_map(|(i, row)| {
            let cols: Option<Vec<usize>> =
                COLUMNS.iter().map(|names| position(row, names)).collect();
            cols.map(|c| (i, c))
        })
        .ok_or_else(|| {
            ApiError::validation(
                "body",
                "no header row naming device, channel, at and value (设备编号, 通道, 时间, 读数)",
            )
        })?;
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate().skip(header_at + 1) {
        if row.iter().all(|c| c.text().is_empty()) {
            continue;
        }
        let cell = |c: usize| row.get(c).cloned().unwrap_or(Cell::Text(String::new()));
        let line = i + 1;
        let at = match cell(cols[2]) {
            // An Excel serial of the region's local time.
            Cell::Date(serial) | Cell::Number(serial) if serial < 1e6 => Some(
                ((serial - 25_569.0) * 86_400_000.0).round() as i64
                    - utc_offset_minutes as i64 * 60_000,
            ),
            other => parse_time(&other.text(), utc_offset_minutes),
        }
        .ok_or_else(|| {
            ApiError::validation(
                "body",
                format!("row {line}: `at` {:?} is not a time", cell(cols[2]).text()),
            )
        })?;
        let value = match cell(cols[3]) {
            Cell::Number(n) => Some(n),
            other => other
                .text()
                .replace([',', '，', ' '], "")
                .parse::<f64>()
                .ok(),
        }
        .ok_or_else(|| {
            ApiError::validation(
                "body",
                format!(
                    "row {line}: `value` {:?} is not a number",
                    cell(cols[3]).text()
                ),
            )
        })?;
        out.push(Raw {
            device: cell(cols[0]).text(),
            channel: cell(cols[1]).text(),
            at,
            value,
        });
    }
    Ok(out)
}

/// Readings of `http` and `manual` devices, by the external id they were
/// registered with. The caller needs `kernel.telemetry.ingest` at every
/// device's org: one device out of reach refuses the whole batch.
async fn post_readings(
    State(k): State<AppState>,
    Caller(session): Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    // Refusals are stored too: only someone who may ingest here may fill
    // the list.
    session
        .require(&k, session.org(), "kernel.telemetry.ingest")
        .await?;
    let bytes = read_body(body, 8 << 20).await?;
    let sheet = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv") || v.contains("spreadsheetml"));
    let (raws, quality) = if sheet {
        let rows = read_sheet(&bytes)?;
        (
            parse_sheet(rows, k.config.utc_offset_minutes)?,
            Quality::Manual,
        )
    } else {
        let input: ReadingsInput = parse_json(&bytes)?;
        let quality = match input.quality.as_deref() {
            None | Some("good") => Quality::Good,
            Some("manual") => Quality::Manual,
            Some("bill") => Quality::Bill,
            Some(other) => {
                return Err(ApiError::validation(
                    "quality",
                    format!("quality {other:?}: good, manual or bill"),
                ));
            }
        };
        let raws = input
            .readings
            .into_iter()
            .map(|r| Raw {
                device: r.device,
                channel: r.channel,
                at: r.at,
                value: r.value,
            })
            .collect();
        (raws, quality)
    };
    if raws.is_empty() || raws.len() > MAX_READINGS_PER_BATCH {
        return Err(ApiError::validation(
            "readings",
            format!("1 to {MAX_READINGS_PER_BATCH} readings at a time"),
        ));
    }
    let source = format!("http:{}", session.user_id());
    let mut readings: Vec<Incoming> = Vec::new();
    let mut unknown: Vec<(String, Result<Vec<Raw>, String>)> = Vec::new();
    let mut found = HashMap::new();
    for raw in raws {
        let device = match found.get(&raw.device) {
            Some(d) => Some(Arc::clone(d)),
            None => {
                let mut d = k.telemetry.by_external(Protocol::Http, &raw.device).await?;
                if d.is_none() {
                    d = k
                        .telemetry
                        .by_external(Protocol::Manual, &raw.device)
                        .await?;
                }
                if let Some(d) = &d {
                    found.insert(raw.device.clone(), d.clone());
                }
                d
            }
        };
        match device {
            Some(device) => readings.push(Incoming {
                device,
                channel: raw.channel,
                at: raw.at,
                value: raw.value,
                quality,
            }),
            None => unknown.push((raw.device.clone(), Ok(vec![raw]))),
        }
    }
    let orgs: BTreeSet<&str> = found.values().map(|d| d.org.as_str()).collect();
    for org in orgs {
        session.require(&k, org, "kernel.telemetry.ingest").await?;
    }
    let (_, rejections) = mqtt::resolve(&k.telemetry, Protocol::Http, &source, unknown).await;
    let recorded = k
        .telemetry
        .ingest_audited(
            &source,
            readings,
            rejections,
            session.user_id(),
            session.org(),
        )
        .await?;
    Ok(Json(json!(recorded)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectedQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

async fn rejected(
    State(k): State<AppState>,
    Caller(session): Caller,
    Query(q): Query<RejectedQuery>,
) -> ApiResult<Json<Value>> {
    session
        .require(&k, &k.root_org, "kernel.telemetry.read")
        .await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let items = k.telemetry.rejected(q.before, limit).await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().and_then(|i| i["id"].as_i64()))
        .flatten();
    Ok(Json(json!({ "items": items, "next_before": next })))
}

async fn stats(State(k): State<AppState>, Caller(session): Caller) -> ApiResult<Json<Value>> {
    session
        .require(&k, &k.root_org, "kernel.telemetry.read")
        .await?;
    Ok(Json(json!({ "since_start": k.telemetry.stats.snapshot() })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_the_region() {
        // 2025-03-01 08:00 in UTC+8 is 00:00 UTC.
        assert_eq!(parse_time("2025-03-01 08:00", 480), Some(1_740_787_200_000));
        assert_eq!(
            parse_time("2025/03/01 08:00:00", 480),
            Some(1_740_787_200_000)
        );
        assert_eq!(parse_time("1740787200000", 480), Some(1_740_787_200_000));
        assert_eq!(parse_time("2025-02-30 08:00", 480), None);
        assert_eq!(parse_time("yesterday", 480), None);
    }

    fn csv(text: &str) -> ApiResult<Vec<Raw>> {
        parse_sheet(read_sheet(text.as_bytes())?, 480)
    }

    #[test]
    fn a_bill_sheet_reads() {
        let rows =
            csv("\u{feff}Device,Channel,At,Value\nm1,kwh,2025-03-01 08:00,1520.5\n\n").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].value, 1520.5);
        assert!(csv("device,at,value\n").is_err());
        assert!(csv("device,channel,at,value\nm1,kwh,soon,1\n").is_err());
        // A title row above Chinese headers.
        let rows =
            csv("2025年3月抄表记录\n表号,计量项,抄表时间,读数\nm1,kwh,2025/03/01 08:00,1520.5\n")
                .unwrap();
        assert_eq!(rows[0].at, 1_740_787_200_000);
    }

    #[test]
    fn a_workbook_reads_with_excel_dates() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (c, h) in ["设备编号", "通道", "时间", "读数"].iter().enumerate() {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        sheet.write_string(1, 0, "m1").unwrap();
        sheet.write_string(1, 1, "kwh").unwrap();
        // 2025-03-01 08:00 local: serial 45717 + 8/24.
        sheet.write_number(1, 2, 45_717.0 + 8.0 / 24.0).unwrap();
        sheet.write_number(1, 3, 1520.5).unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let rows = parse_sheet(read_sheet(&bytes).unwrap(), 480).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].at, 1_740_787_200_000);
        assert_eq!(rows[0].value, 1520.5);
    }
}
