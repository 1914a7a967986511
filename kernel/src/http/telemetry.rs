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

/// `device,channel,at,value` with a header row.
fn parse_csv(text: &str, utc_offset_minutes: i32) -> ApiResult<Vec<Raw>> {
    let mut lines = text.trim_start_matches('\u{feff}').lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_lowercase())
        .collect();
    let col = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            ApiError::validation("body", format!("the CSV header lacks the column {name}"))
        })
    };
    let (cd, cc, ca, cv) = (col("device")?, col("channel")?, col("at")?, col("value")?);
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let cell = |c: usize| cells.get(c).copied().unwrap_or("");
        let row = i + 2;
        let at = parse_time(cell(ca), utc_offset_minutes).ok_or_else(|| {
            ApiError::validation(
                "body",
                format!("row {row}: `at` {:?} is not a time", cell(ca)),
            )
        })?;
        let value = cell(cv)
            .replace(['，', ' '], "")
            .parse::<f64>()
            .map_err(|_| {
                ApiError::validation(
                    "body",
                    format!("row {row}: `value` {:?} is not a number", cell(cv)),
                )
            })?;
        out.push(Raw {
            device: cell(cd).to_string(),
            channel: cell(cc).to_string(),
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
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv"));
    let (raws, quality) = if csv {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::validation("body", "the CSV is not UTF-8"))?;
        (
            parse_csv(text, k.config.utc_offset_minutes)?,
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

    #[test]
    fn a_bill_sheet_reads() {
        let rows = parse_csv(
            "\u{feff}Device,Channel,At,Value\nm1,kwh,2025-03-01 08:00,1520.5\n\n",
            480,
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].value, 1520.5);
        assert!(parse_csv("device,at,value\n", 480).is_err());
        assert!(parse_csv("device,channel,at,value\nm1,kwh,soon,1\n", 480).is_err());
    }
}
