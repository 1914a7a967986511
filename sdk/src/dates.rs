//! Dates without a date crate: `YYYY-MM-DD` text, days since the epoch,
//! months as `year * 12 + month - 1`, today and the current period in the
//! region's time zone (the wall clock needs the `clock` capability), and
//! the forms dates take in Chinese spreadsheets ([`parse_loose`]).
//!
//! ```no_run
//! use tianshan_sdk::dates::{self, Granularity};
//! let today = dates::today();                                  // "2026-03-05"
//! let month = dates::current_period(Granularity::Month);       // "2026-03"
//! assert_eq!(dates::parse_loose("2021年3月5日"), Ok((2021, 3, 5)));
//! ```

/// The data center's period sizes, here too so `dates::Granularity::Month`
/// needs no second import.
pub use crate::datacenter::Granularity;

/// The region's offset from UTC: Asia/Shanghai, UTC+8, no daylight saving.
/// A plugin's `[config]` key `tz-offset-minutes` overrides it.
pub const REGION_OFFSET_MINUTES: i64 = 480;

/// `YYYY-MM-DD` → (year, month, day), checked against the calendar.
pub fn parse_date(text: &str) -> Option<(i32, u32, u32)> {
    let mut parts = text.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i32, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1900..=2999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some((y, m, d))
}

/// Why a date text is not a date: unreadable, or a date the calendar does
/// not have (`2021-02-30`), which users fix differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateProblem {
    /// Not a date form this module reads.
    Unrecognised,
    /// Reads as a date, but the month or day does not exist.
    Impossible,
}

impl DateProblem {
    /// A stable code for error payloads: `date_unrecognised`, `date_impossible`.
    pub fn code(self) -> &'static str {
        match self {
            DateProblem::Unrecognised => "date_unrecognised",
            DateProblem::Impossible => "date_impossible",
        }
    }
}

/// A date in the forms registers use: `2021-03-05`, `2021-3-5`, `2021/3/5`,
/// `2021.3.5`, `2021年3月5日`, `20210305`. Excel serial numbers are cells,
/// not text: see [`from_excel_serial`].
pub fn parse_loose(text: &str) -> Result<(i32, u32, u32), DateProblem> {
    let text = text.trim();
    let parts: Vec<&str> = if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        vec![&text[..4], &text[4..6], &text[6..]]
    } else {
        text.trim_end_matches('日')
            .split(['-', '/', '.', '年', '月'])
            .map(str::trim)
            .collect()
    };
    let [y, m, d] = parts[..] else {
        return Err(DateProblem::Unrecognised);
    };
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    if y.len() != 4 || !digits(y, 4) || !digits(m, 2) || !digits(d, 2) {
        return Err(DateProblem::Unrecognised);
    }
    let (y, m, d): (i32, u32, u32) = (
        y.parse().map_err(|_| DateProblem::Unrecognised)?,
        m.parse().map_err(|_| DateProblem::Unrecognised)?,
        d.parse().map_err(|_| DateProblem::Unrecognised)?,
    );
    if !(1900..=2999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(DateProblem::Impossible);
    }
    Ok((y, m, d))
}

/// An Excel serial day number (days since 1899-12-30, the 1900 system
/// with its leap-year bug absorbed) as `YYYY-MM-DD`.
pub fn from_excel_serial(serial: f64) -> String {
    let days = serial.floor() as i64 - 25_569;
    date_text(civil_from_days(days))
}

/// `YYYY-MM` → month index.
pub fn parse_month(text: &str) -> Option<i64> {
    let (y, m) = text.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i64, i64) = (y.parse().ok()?, m.parse().ok()?);
    if !(1900..=2999).contains(&y) || !(1..=12).contains(&m) {
        return None;
    }
    Some(y * 12 + m - 1)
}

/// The month index of a `YYYY-MM-DD` date.
pub fn month_of(date: &str) -> Option<i64> {
    parse_date(date).map(|(y, m, _)| y as i64 * 12 + m as i64 - 1)
}

/// `[start, end)` of month `index` in the region's time zone, as
/// milliseconds since the epoch: the range a telemetry roll-up of that
/// month asks for.
pub fn month_bounds_ms(index: i64) -> (i64, i64) {
    let start_of = |i: i64| {
        let days = days_from_civil(i.div_euclid(12) as i32, i.rem_euclid(12) as u32 + 1, 1);
        (days * 86_400 - REGION_OFFSET_MINUTES * 60) * 1000
    };
    (start_of(index), start_of(index + 1))
}

pub fn month_text(index: i64) -> String {
    format!(
        "{:04}-{:02}",
        index.div_euclid(12),
        index.rem_euclid(12) + 1
    )
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((if m <= 2 { y + 1 } else { y }) as i32, m, d)
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y as i64 - 1 } else { y as i64 };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn date_text((y, m, d): (i32, u32, u32)) -> String {
    format!("{y:04}-{m:02}-{d:02}")
}

/// Today in the region (UTC+8 unless `tz-offset-minutes` is configured).
/// Without the clock capability the wall clock reads the epoch, so tests
/// that forget it see 1970 rather than a silently wrong "today".
pub fn today() -> String {
    let offset_minutes: i64 = crate::config::get("tz-offset-minutes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(REGION_OFFSET_MINUTES);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    date_at(secs, offset_minutes)
}

/// Now, in milliseconds since the epoch (as telemetry's times are); needs
/// the `clock` capability like [`today`] (without it: 0).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The `YYYY-MM-DD` date at `unix_secs` (seconds since the epoch, as in
/// [`crate::storage::Doc::created_at`]) on a clock `offset_minutes` ahead
/// of UTC: `date_at(t, REGION_OFFSET_MINUTES)` is the region's date.
pub fn date_at(unix_secs: i64, offset_minutes: i64) -> String {
    date_text(civil_from_days(
        (unix_secs + offset_minutes * 60).div_euclid(86_400),
    ))
}

/// The period of `granularity` at `unix_secs` in the region's time zone
/// (UTC+8): the pure core of [`current_period`], e.g. for a record's
/// `created_at`. 2025-12-31 16:00 UTC is already `2026-01` in the region.
pub fn period_at(unix_secs: i64, granularity: Granularity) -> String {
    period_of(&date_at(unix_secs, REGION_OFFSET_MINUTES), granularity).unwrap_or_default()
}

pub fn this_month() -> i64 {
    month_of(&today()).unwrap_or(0)
}

/// The period of `granularity` containing today in the region, in the
/// data center's forms: `YYYY-MM`, `YYYY-Qn`, `YYYY`. Needs the `clock`
/// capability like [`today`] (without it: `1970-01`).
pub fn current_period(granularity: Granularity) -> String {
    period_of(&today(), granularity).unwrap_or_default()
}

/// The period of `granularity` a `YYYY-MM-DD` date falls in.
pub fn period_of(date: &str, granularity: Granularity) -> Option<String> {
    let (y, m, _) = parse_date(date)?;
    Some(match granularity {
        Granularity::Month => format!("{y:04}-{m:02}"),
        Granularity::Quarter => format!("{y:04}-Q{}", (m - 1) / 3 + 1),
        Granularity::Year => format!("{y:04}"),
    })
}

/// Days from `a` to `b` (both `YYYY-MM-DD`).
pub fn days_between(a: &str, b: &str) -> Option<i64> {
    let (ya, ma, da) = parse_date(a)?;
    let (yb, mb, db) = parse_date(b)?;
    Some(days_from_civil(yb, mb, db) - days_from_civil(ya, ma, da))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_starts_at_midnight_in_the_region() {
        // 2026-11-01 00:00 UTC+8 is 2026-10-31 16:00 UTC.
        let (from, to) = month_bounds_ms(parse_month("2026-11").unwrap());
        assert_eq!(from, 1_793_462_400_000);
        assert_eq!(to - from, 30 * 86_400_000);
        let (dec, jan) = month_bounds_ms(parse_month("2026-12").unwrap());
        assert_eq!(dec, to);
        assert_eq!(jan - dec, 31 * 86_400_000);
    }

    #[test]
    fn dates_are_checked_against_the_calendar() {
        assert_eq!(parse_date("2024-02-29"), Some((2024, 2, 29)));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(parse_date("24-01-01"), None);
        assert_eq!(month_of("2024-03-15"), Some(2024 * 12 + 2));
        assert_eq!(month_text(2024 * 12 + 2), "2024-03");
        assert_eq!(parse_month("2024-03"), Some(2024 * 12 + 2));
    }

    #[test]
    fn register_date_forms_and_impossible_dates() {
        for text in [
            "2021-03-05",
            "2021-3-5",
            "2021/3/5",
            "2021.3.5",
            "2021年3月5日",
            "20210305",
        ] {
            assert_eq!(parse_loose(text), Ok((2021, 3, 5)), "{text}");
        }
        assert_eq!(parse_loose("2021-02-30"), Err(DateProblem::Impossible));
        assert_eq!(parse_loose("2021年13月1日"), Err(DateProblem::Impossible));
        assert_eq!(parse_loose("三月五日"), Err(DateProblem::Unrecognised));
        assert_eq!(parse_loose("2021-03"), Err(DateProblem::Unrecognised));
        assert_eq!(from_excel_serial(45_366.0), "2024-03-15");
    }

    #[test]
    fn the_regions_day_and_period_start_at_utc_plus_8() {
        // 2025-12-31 15:59:59 UTC is 23:59:59 in the region; a second later
        // it is 2026-01-01 there while UTC is still on the last day.
        let before = 1_767_196_799;
        let after = before + 1;
        assert_eq!(date_at(before, 0), "2025-12-31");
        assert_eq!(date_at(after, 0), "2025-12-31");
        assert_eq!(date_at(before, REGION_OFFSET_MINUTES), "2025-12-31");
        assert_eq!(date_at(after, REGION_OFFSET_MINUTES), "2026-01-01");
        assert_eq!(period_at(before, Granularity::Month), "2025-12");
        assert_eq!(period_at(after, Granularity::Month), "2026-01");
        assert_eq!(period_at(before, Granularity::Quarter), "2025-Q4");
        assert_eq!(period_at(after, Granularity::Quarter), "2026-Q1");
        assert_eq!(period_at(before, Granularity::Year), "2025");
        assert_eq!(period_at(after, Granularity::Year), "2026");
        // Without the clock capability the wall clock reads 0.
        assert_eq!(period_at(0, Granularity::Month), "1970-01");
        // Before the epoch the day still floors, not truncates.
        assert_eq!(date_at(-1, 0), "1969-12-31");
    }

    #[test]
    fn periods_of_each_granularity() {
        assert_eq!(
            period_of("2026-11-03", Granularity::Month).as_deref(),
            Some("2026-11")
        );
        assert_eq!(
            period_of("2026-11-03", Granularity::Quarter).as_deref(),
            Some("2026-Q4")
        );
        assert_eq!(
            period_of("2026-11-03", Granularity::Year).as_deref(),
            Some("2026")
        );
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1000, 0, 19_000, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_between("2026-01-30", "2026-03-01"), Some(30));
    }
}
