//! Calendar arithmetic without a date crate: days since the epoch, months
//! as `year * 12 + month - 1`, and today's date from the wall clock the
//! `clock` capability grants, in the region's time zone.

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
    let offset_minutes: i64 = tianshan_sdk::config::get("tz-offset-minutes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(480);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    date_text(civil_from_days(
        (secs + offset_minutes * 60).div_euclid(86_400),
    ))
}

pub fn this_month() -> i64 {
    month_of(&today()).unwrap_or(0)
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
    fn civil_round_trip() {
        for days in [-1000, 0, 19_000, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_between("2026-01-30", "2026-03-01"), Some(30));
    }
}
