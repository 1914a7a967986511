//! Five-field cron schedules: `minute hour day-of-month month day-of-week`.
//!
//! Plugin manifests declare scheduled jobs with them (`schedule = "0 2 1 * *"`);
//! the kernel's scheduler parses each schedule once and calls
//! [`Schedule::matches`] once per minute per job. Time is whole minutes since
//! the UNIX epoch plus a fixed UTC offset, so no time-zone database is needed.

use std::fmt;
use std::str::FromStr;

use crate::core::calendar::{DAYS_PER_GREGORIAN_CYCLE, civil_from_days, days_from_civil, weekday};

const MINUTES_PER_DAY: i64 = 24 * 60;

// The Gregorian calendar, weekdays included, repeats every 400 years
// (146 097 days is a whole number of weeks), so a schedule that has not
// fired within one cycle never will (`DAYS_PER_GREGORIAN_CYCLE`).

/// A parsed 5-field cron schedule: minute hour day-of-month month day-of-week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Bit n set: fires at minute n (0-59).
    minutes: u64,
    /// Bit n set: fires at hour n (0-23).
    hours: u32,
    /// Bit n set: fires on day n of the month (1-31).
    days_of_month: u32,
    /// Bit n set: fires in month n (1-12).
    months: u16,
    /// Bit n set: fires on weekday n (0-6, Sunday is 0).
    days_of_week: u8,
    /// Vixie cron ORs the two day fields when both are restricted and ANDs them
    /// otherwise; like Vixie, a field starting with `*` (so `*/2` too) counts
    /// as unrestricted.
    day_of_month_restricted: bool,
    day_of_week_restricted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError {
    pub message: String,
}

impl CronError {
    fn in_field(field: &Field, problem: impl fmt::Display) -> Self {
        CronError {
            message: format!("{}: {problem}", field.name),
        }
    }
}

impl fmt::Display for CronError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for CronError {}

/// What one of the five positions accepts.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Where `*` and `a/n` stop. Differs from `max` only for day-of-week, whose
    /// 7 is an alias of Sunday (0) rather than an eighth day.
    star_max: u32,
    /// Three-letter names, the first standing for `first_name_value`.
    names: &'static [&'static str],
    first_name_value: u32,
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    star_max: 59,
    names: &[],
    first_name_value: 0,
};

const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    star_max: 23,
    names: &[],
    first_name_value: 0,
};

const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    star_max: 31,
    names: &[],
    first_name_value: 0,
};

const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    star_max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    first_name_value: 1,
};

const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    star_max: 6,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    first_name_value: 0,
};

impl FromStr for Schedule {
    type Err = CronError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let expanded = match text.strip_prefix('@') {
            Some(name) => expand_macro(name)?,
            None => text,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day_of_month, month, day_of_week] = fields.as_slice() else {
            return Err(CronError {
                message: format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                    fields.len()
                ),
            });
        };

        let day_of_week_bits = parse_field(day_of_week, &DAY_OF_WEEK)?;
        // Fold 7 onto 0: both mean Sunday.
        let day_of_week_bits = (day_of_week_bits | (day_of_week_bits >> 7)) & 0x7f;

        // Every bitset fits its integer type: `parse_field` only sets bits
        // `field.min..=field.max`.
        Ok(Schedule {
            minutes: parse_field(minute, &MINUTE)?,
            hours: parse_field(hour, &HOUR)? as u32,
            days_of_month: parse_field(day_of_month, &DAY_OF_MONTH)? as u32,
            months: parse_field(month, &MONTH)? as u16,
            days_of_week: day_of_week_bits as u8,
            day_of_month_restricted: !day_of_month.starts_with('*'),
            day_of_week_restricted: !day_of_week.starts_with('*'),
        })
    }
}

fn expand_macro(name: &str) -> Result<&'static str, CronError> {
    match name.to_ascii_lowercase().as_str() {
        "hourly" => Ok("0 * * * *"),
        "daily" | "midnight" => Ok("0 0 * * *"),
        "weekly" => Ok("0 0 * * 0"),
        "monthly" => Ok("0 0 1 * *"),
        "yearly" | "annually" => Ok("0 0 1 1 *"),
        _ => Err(CronError {
            message: format!(
                "unknown macro \"@{name}\" (expected @hourly, @daily, @midnight, @weekly, \
                 @monthly, @yearly or @annually)"
            ),
        }),
    }
}

/// A comma-separated list of items as a bitset with bit n set for value n.
fn parse_field(text: &str, field: &Field) -> Result<u64, CronError> {
    let mut bits = 0;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(CronError::in_field(
                field,
                format_args!("empty list item in \"{text}\""),
            ));
        }
        bits |= parse_item(item, field)?;
    }
    Ok(bits)
}

/// One list item: `*`, `a`, `a-b`, optionally followed by `/step`.
fn parse_item(item: &str, field: &Field) -> Result<u64, CronError> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(parse_step(step, item, field)?)),
        None => (item, None),
    };
    let (start, end) = if range == "*" {
        (field.min, field.star_max)
    } else if let Some((start, end)) = range.split_once('-') {
        let start = parse_value(start, item, field)?;
        let end = parse_value(end, item, field)?;
        if start > end {
            return Err(CronError::in_field(
                field,
                format_args!("range \"{range}\" starts after it ends"),
            ));
        }
        (start, end)
    } else {
        let start = parse_value(range, item, field)?;
        // `a/n` runs from a to the end of the field.
        let end = if step.is_some() {
            field.star_max.max(start)
        } else {
            start
        };
        (start, end)
    };
    let step = step.unwrap_or(1);
    Ok((start..=end)
        .step_by(step as usize)
        .fold(0, |bits, value| bits | (1 << value)))
}

fn parse_step(text: &str, item: &str, field: &Field) -> Result<u32, CronError> {
    let step = parse_number(text).ok_or_else(|| {
        CronError::in_field(field, format_args!("invalid step \"{text}\" in \"{item}\""))
    })?;
    if step == 0 {
        return Err(CronError::in_field(
            field,
            format_args!("step must be at least 1 in \"{item}\""),
        ));
    }
    Ok(step)
}

fn parse_value(text: &str, item: &str, field: &Field) -> Result<u32, CronError> {
    if text.is_empty() {
        return Err(CronError::in_field(
            field,
            format_args!("missing value in \"{item}\""),
        ));
    }
    let out_of_range = || {
        CronError::in_field(
            field,
            format_args!("{text} is out of range {}-{}", field.min, field.max),
        )
    };
    if text.bytes().all(|byte| byte.is_ascii_digit()) {
        // Digits that overflow u32 are just a very large out-of-range number.
        let value = text.parse::<u32>().map_err(|_| out_of_range())?;
        return if (field.min..=field.max).contains(&value) {
            Ok(value)
        } else {
            Err(out_of_range())
        };
    }
    if field.names.is_empty() {
        return Err(CronError::in_field(
            field,
            format_args!("\"{text}\" is not a number"),
        ));
    }
    field
        .names
        .iter()
        .zip(field.first_name_value..)
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, value)| value)
        .ok_or_else(|| CronError::in_field(field, format_args!("unknown name \"{text}\"")))
}

/// Plain decimal digits only; `str::parse` would also accept a leading `+`.
fn parse_number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl Schedule {
    /// Does the schedule fire at this minute? `minute_of_epoch` is whole minutes since the UNIX epoch,
    /// `utc_offset_minutes` shifts into local time (Beijing time is +480) before the calendar fields are computed.
    pub fn matches(&self, minute_of_epoch: i64, utc_offset_minutes: i32) -> bool {
        // Saturating: at the ends of i64 a wrong answer beats a panic, and no
        // real clock gets there.
        let local = minute_of_epoch.saturating_add(i64::from(utc_offset_minutes));
        let day = local.div_euclid(MINUTES_PER_DAY);
        let minute_of_day = local.rem_euclid(MINUTES_PER_DAY);
        let (_, month, day_of_month) = civil_from_days(day);
        self.matches_month(month)
            && self.matches_day(day, day_of_month)
            && self.hours & (1 << (minute_of_day / 60)) != 0
            && self.minutes & (1 << (minute_of_day % 60)) != 0
    }

    /// The first minute strictly after `after_minute` (minutes since epoch) at which it fires.
    ///
    /// Searches one full 400-year Gregorian cycle, after which dates and
    /// weekdays repeat, so `None` means it never fires (e.g. "0 0 31 2 *").
    /// A shorter horizon would miss sparse schedules such as "0 0 29 2 *",
    /// which can be eight years apart (2096, then 2104). Months that cannot
    /// match are skipped whole, then days, so this takes at most a few
    /// thousand steps even when nothing matches.
    pub fn next_after(&self, after_minute: i64, utc_offset_minutes: i32) -> Option<i64> {
        let offset = i64::from(utc_offset_minutes);
        let local_start = after_minute.checked_add(1)?.checked_add(offset)?;
        let first_day = local_start.div_euclid(MINUTES_PER_DAY);
        let last_day = first_day.checked_add(DAYS_PER_GREGORIAN_CYCLE)?;
        let start_minute_of_day = local_start.rem_euclid(MINUTES_PER_DAY);
        let mut from_minute_of_day = start_minute_of_day;
        let mut day = first_day;
        while day <= last_day {
            let (year, month, day_of_month) = civil_from_days(day);
            if !self.matches_month(month) {
                let (next_year, next_month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                day = days_from_civil(next_year, next_month, 1);
                from_minute_of_day = 0;
                continue;
            }
            if self.matches_day(day, day_of_month)
                && let Some(minute_of_day) = self.first_time_of_day_from(from_minute_of_day)
            {
                // Relative to `local_start`: near i64::MIN the start of the
                // first day itself may not be representable.
                let minutes_ahead =
                    (day - first_day) * MINUTES_PER_DAY + minute_of_day - start_minute_of_day;
                return local_start.checked_add(minutes_ahead)?.checked_sub(offset);
            }
            day += 1;
            from_minute_of_day = 0;
        }
        None
    }

    fn matches_month(&self, month: u32) -> bool {
        self.months & (1 << month) != 0
    }

    fn matches_day(&self, days_since_epoch: i64, day_of_month: u32) -> bool {
        let by_day_of_month = self.days_of_month & (1 << day_of_month) != 0;
        let by_day_of_week = self.days_of_week & (1 << weekday(days_since_epoch)) != 0;
        if self.day_of_month_restricted && self.day_of_week_restricted {
            by_day_of_month || by_day_of_week
        } else {
            by_day_of_month && by_day_of_week
        }
    }

    /// The first minute of the day at or after `from` (0-1439) whose hour and
    /// minute both match.
    fn first_time_of_day_from(&self, from: i64) -> Option<i64> {
        let first_hour = from / 60;
        (first_hour..24)
            .filter(|hour| self.hours & (1 << hour) != 0)
            .find_map(|hour| {
                let first_minute = if hour == first_hour { from % 60 } else { 0 };
                let candidates = self.minutes & (u64::MAX << first_minute);
                (candidates != 0).then(|| hour * 60 + i64::from(candidates.trailing_zeros()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEIJING: i32 = 480;

    fn schedule(text: &str) -> Schedule {
        text.parse()
            .unwrap_or_else(|error: CronError| panic!("{text:?} should parse: {error}"))
    }

    fn error(text: &str) -> String {
        match text.parse::<Schedule>() {
            Ok(parsed) => panic!("{text:?} should not parse, got {parsed:?}"),
            Err(error) => error.message,
        }
    }

    /// Minutes since the epoch of a local wall-clock time at `offset`.
    fn at(year: i64, month: u32, day: u32, hour: i64, minute: i64, offset: i32) -> i64 {
        days_from_civil(year, month, day) * MINUTES_PER_DAY + hour * 60 + minute - i64::from(offset)
    }

    fn values(bits: u64) -> Vec<u32> {
        (0..64).filter(|bit| bits & (1 << bit) != 0).collect()
    }

    #[test]
    fn civil_conversion_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 25), 20_782);
        assert_eq!(days_from_civil(2028, 2, 29), 21_243);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(21_243), (2028, 2, 29));
        assert_eq!(weekday(0), 4, "1970-01-01 was a Thursday");
        assert_eq!(weekday(-1), 3, "1969-12-31 was a Wednesday");
        assert_eq!(weekday(20_782), 3, "2026-11-25 is a Wednesday");
    }

    #[test]
    fn civil_conversion_round_trips_and_never_skips_a_date() {
        for day in -1_000_000..1_000_000 {
            let (year, month, day_of_month) = civil_from_days(day);
            assert_eq!(days_from_civil(year, month, day_of_month), day);
            let next = civil_from_days(day + 1);
            let is_leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            let month_length = match month {
                2 if is_leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let expected_next = if day_of_month < month_length {
                (year, month, day_of_month + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
            assert_eq!(next, expected_next, "after day {day}");
        }
    }

    #[test]
    fn parses_star_numbers_ranges_and_lists() {
        let every = schedule("* * * * *");
        assert_eq!(values(every.minutes), (0..=59).collect::<Vec<_>>());
        assert_eq!(values(every.hours.into()), (0..=23).collect::<Vec<_>>());
        assert_eq!(
            values(every.days_of_month.into()),
            (1..=31).collect::<Vec<_>>()
        );
        assert_eq!(values(every.months.into()), (1..=12).collect::<Vec<_>>());
        assert_eq!(
            values(every.days_of_week.into()),
            (0..=6).collect::<Vec<_>>()
        );
        assert!(!every.day_of_month_restricted && !every.day_of_week_restricted);

        let parsed = schedule("5 1-3 1,15,31 2-4,12 0");
        assert_eq!(values(parsed.minutes), [5]);
        assert_eq!(values(parsed.hours.into()), [1, 2, 3]);
        assert_eq!(values(parsed.days_of_month.into()), [1, 15, 31]);
        assert_eq!(values(parsed.months.into()), [2, 3, 4, 12]);
        assert_eq!(values(parsed.days_of_week.into()), [0]);
        assert!(parsed.day_of_month_restricted && parsed.day_of_week_restricted);

        assert_eq!(values(schedule("07 * * * *").minutes), [7]);
    }

    #[test]
    fn parses_steps() {
        assert_eq!(values(schedule("*/15 * * * *").minutes), [0, 15, 30, 45]);
        assert_eq!(
            values(schedule("10-40/10 * * * *").minutes),
            [10, 20, 30, 40]
        );
        assert_eq!(values(schedule("50/4 * * * *").minutes), [50, 54, 58]);
        assert_eq!(values(schedule("1-10/4,30 * * * *").minutes), [1, 5, 9, 30]);
        assert_eq!(values(schedule("*/100 * * * *").minutes), [0]);
        assert_eq!(
            values(schedule("0 0 */10 * *").days_of_month.into()),
            [1, 11, 21, 31]
        );
        assert_eq!(values(schedule("0 0 * */5 *").months.into()), [1, 6, 11]);
        assert_eq!(
            values(schedule("0 0 * * */2").days_of_week.into()),
            [0, 2, 4, 6]
        );
        assert_eq!(values(schedule("0 0 * * 1/3").days_of_week.into()), [1, 4]);
    }

    #[test]
    fn parses_names_case_insensitively() {
        let parsed = schedule("0 0 1 jan-Mar,DEC mon-FRI");
        assert_eq!(values(parsed.months.into()), [1, 2, 3, 12]);
        assert_eq!(values(parsed.days_of_week.into()), [1, 2, 3, 4, 5]);
        assert_eq!(schedule("0 0 * sep *"), schedule("0 0 * 9 *"));
        assert_eq!(schedule("0 0 * * sat,Sun"), schedule("0 0 * * 6,0"));
        assert_eq!(
            values(schedule("0 0 * feb-dec/2 *").months.into()),
            [2, 4, 6, 8, 10, 12]
        );
    }

    #[test]
    fn day_of_week_seven_is_sunday() {
        assert_eq!(schedule("0 0 * * 7"), schedule("0 0 * * 0"));
        assert_eq!(schedule("0 0 * * 7"), schedule("0 0 * * SUN"));
        assert_eq!(
            values(schedule("0 0 * * 5-7").days_of_week.into()),
            [0, 5, 6]
        );
        assert_eq!(
            values(schedule("0 0 * * 0-7").days_of_week.into()),
            (0..=6).collect::<Vec<_>>()
        );
    }

    #[test]
    fn expands_macros() {
        let expansions = [
            ("@hourly", "0 * * * *"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@weekly", "0 0 * * 0"),
            ("@monthly", "0 0 1 * *"),
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            (" @Daily ", "0 0 * * *"),
        ];
        for (macro_text, expansion) in expansions {
            assert_eq!(schedule(macro_text), schedule(expansion), "{macro_text}");
        }
    }

    #[test]
    fn accepts_any_whitespace_between_fields() {
        assert_eq!(schedule("  0\t2 \t 1  *\n* "), schedule("0 2 1 * *"));
    }

    #[test]
    fn errors_name_their_field_and_problem() {
        let cases = [
            ("0 25 * * *", "hour: 25 is out of range 0-23"),
            ("60 * * * *", "minute: 60 is out of range 0-59"),
            ("* * 0 * *", "day-of-month: 0 is out of range 1-31"),
            ("* * 32 * *", "day-of-month: 32 is out of range 1-31"),
            ("* * * 13 *", "month: 13 is out of range 1-12"),
            ("* * * * 8", "day-of-week: 8 is out of range 0-7"),
            (
                "99999999999 * * * *",
                "minute: 99999999999 is out of range 0-59",
            ),
            ("1,,2 * * * *", "minute: empty list item in \"1,,2\""),
            ("* 1, * * *", "hour: empty list item in \"1,\""),
            ("* * * ,1 *", "month: empty list item in \",1\""),
            ("*/0 * * * *", "minute: step must be at least 1 in \"*/0\""),
            (
                "* * * * 1-5/0",
                "day-of-week: step must be at least 1 in \"1-5/0\"",
            ),
            ("* * * * 1/x", "day-of-week: invalid step \"x\" in \"1/x\""),
            ("* * 1/ * *", "day-of-month: invalid step \"\" in \"1/\""),
            ("*/2/3 * * * *", "minute: invalid step \"2/3\" in \"*/2/3\""),
            (
                "* * 5-3 * *",
                "day-of-month: range \"5-3\" starts after it ends",
            ),
            (
                "* * * * FRI-MON",
                "day-of-week: range \"FRI-MON\" starts after it ends",
            ),
            ("* * * FOO *", "month: unknown name \"FOO\""),
            ("* * * * FRX", "day-of-week: unknown name \"FRX\""),
            ("* * * * MONDAY", "day-of-week: unknown name \"MONDAY\""),
            ("abc * * * *", "minute: \"abc\" is not a number"),
            ("* +5 * * *", "hour: \"+5\" is not a number"),
            ("* * * JAN-MON *", "month: unknown name \"MON\""),
            ("1- * * * *", "minute: missing value in \"1-\""),
            ("* -1 * * *", "hour: missing value in \"-1\""),
        ];
        for (text, expected) in cases {
            assert_eq!(error(text), expected, "{text:?}");
        }
    }

    #[test]
    fn wrong_field_count_and_unknown_macro_are_errors() {
        let expected_count = "expected 5 fields (minute hour day-of-month month day-of-week)";
        assert_eq!(error("* * * *"), format!("{expected_count}, found 4"));
        assert_eq!(error("* * * * * *"), format!("{expected_count}, found 6"));
        assert_eq!(error(""), format!("{expected_count}, found 0"));
        assert_eq!(error("   "), format!("{expected_count}, found 0"));
        assert!(error("@reboot").starts_with("unknown macro \"@reboot\""));
        assert!(error("@daily 5").starts_with("unknown macro \"@daily 5\""));
        assert!(error("@").starts_with("unknown macro \"@\""));
    }

    #[test]
    fn error_displays_its_message() {
        let error = "0 25 * * *".parse::<Schedule>().unwrap_err();
        assert_eq!(error.to_string(), error.message);
        let boxed: Box<dyn std::error::Error> = Box::new(error);
        assert_eq!(boxed.to_string(), "hour: 25 is out of range 0-23");
    }

    #[test]
    fn matches_at_a_known_beijing_instant() {
        // 2026-11-26 02:00 in Beijing is 2026-11-25T18:00Z (checked with `date -u`).
        let instant = 29_927_160;
        assert_eq!(at(2026, 11, 26, 2, 0, BEIJING), instant);
        let daily_at_two = schedule("0 2 * * *");
        assert!(daily_at_two.matches(instant, BEIJING));
        assert!(!daily_at_two.matches(instant + 1, BEIJING));
        assert!(!daily_at_two.matches(instant - 60, BEIJING));
        assert!(!daily_at_two.matches(instant, 0), "18:00 UTC is not 02:00");
        assert!(daily_at_two.matches(instant - 16 * 60, 0), "02:00 UTC");

        // The local date decides the day fields: it is already Thursday the 26th.
        assert!(schedule("0 2 26 11 thu").matches(instant, BEIJING));
        assert!(!schedule("0 2 25 11 *").matches(instant, BEIJING));
        assert!(!schedule("0 2 * * wed").matches(instant, BEIJING));
    }

    #[test]
    fn matches_before_the_epoch_and_with_negative_offsets() {
        assert!(schedule("59 23 31 12 wed").matches(-1, 0));
        assert!(schedule("0 19 31 12 *").matches(0, -300), "New York");
        assert!(!schedule("0 0 1 1 *").matches(0, -300));
    }

    #[test]
    fn both_day_fields_restricted_means_either_matches() {
        let friday_or_thirteenth = schedule("0 0 13 * 5");
        assert!(
            friday_or_thirteenth.matches(at(2026, 11, 13, 0, 0, 0), 0),
            "Friday 13th"
        );
        assert!(
            friday_or_thirteenth.matches(at(2026, 11, 20, 0, 0, 0), 0),
            "a Friday"
        );
        assert!(
            friday_or_thirteenth.matches(at(2026, 12, 13, 0, 0, 0), 0),
            "a Sunday 13th"
        );
        assert!(!friday_or_thirteenth.matches(at(2026, 11, 14, 0, 0, 0), 0));
        assert!(!friday_or_thirteenth.matches(at(2026, 11, 20, 0, 1, 0), 0));

        assert!(!schedule("0 0 13 * *").matches(at(2026, 11, 20, 0, 0, 0), 0));
        assert!(!schedule("0 0 * * 5").matches(at(2026, 12, 13, 0, 0, 0), 0));
    }

    #[test]
    fn a_starred_step_counts_as_unrestricted_like_vixie_cron() {
        // Odd days AND Mondays; 2026-11-02 and 2026-11-09 are Mondays.
        let odd_mondays = schedule("0 0 */2 * mon");
        assert!(!odd_mondays.matches(at(2026, 11, 2, 0, 0, 0), 0));
        assert!(odd_mondays.matches(at(2026, 11, 9, 0, 0, 0), 0));
        assert!(!odd_mondays.matches(at(2026, 11, 3, 0, 0, 0), 0));
    }

    #[test]
    fn next_after_finds_the_next_leap_day() {
        let leap_day = schedule("0 0 29 2 *");
        let late_2026 = at(2026, 11, 26, 2, 0, BEIJING);
        assert_eq!(leap_day.next_after(late_2026, 0), Some(30_589_920));
        assert_eq!(at(2028, 2, 29, 0, 0, 0), 30_589_920);
        assert_eq!(
            leap_day.next_after(late_2026, BEIJING),
            Some(at(2028, 2, 29, 0, 0, BEIJING))
        );
        // 2100 is not a leap year, so the gap is eight years.
        assert_eq!(
            leap_day.next_after(at(2096, 3, 1, 0, 0, 0), 0),
            Some(at(2104, 2, 29, 0, 0, 0))
        );
    }

    #[test]
    fn impossible_schedules_never_fire() {
        for text in ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"] {
            assert_eq!(schedule(text).next_after(0, 0), None, "{text}");
        }
        // Restricting day-of-week too makes it "31st OR Sunday", which fires.
        assert!(schedule("0 0 31 2 sun").next_after(0, 0).is_some());
    }

    #[test]
    fn monthly_fires_at_local_midnight_on_the_first() {
        let monthly = schedule("@monthly");
        let now = at(2026, 11, 26, 2, 0, BEIJING);
        let first_of_december = at(2026, 12, 1, 0, 0, BEIJING);
        assert_eq!(monthly.next_after(now, BEIJING), Some(first_of_december));
        assert_eq!(
            monthly.next_after(first_of_december, BEIJING),
            Some(at(2027, 1, 1, 0, 0, BEIJING))
        );
        assert!(monthly.matches(first_of_december, BEIJING));
        assert!(!monthly.matches(first_of_december, 0));
    }

    #[test]
    fn next_after_steps_through_the_hour() {
        let quarterly = schedule("*/15 * * * *");
        let hour = at(2026, 11, 26, 2, 0, 0);
        assert_eq!(quarterly.next_after(hour, 0), Some(hour + 15));
        assert_eq!(quarterly.next_after(hour + 14, 0), Some(hour + 15));
        assert_eq!(quarterly.next_after(hour + 50, 0), Some(hour + 60));

        let tens = schedule("10-40/10 * * * *");
        assert_eq!(tens.next_after(hour, 0), Some(hour + 10));
        assert_eq!(tens.next_after(hour + 40, 0), Some(hour + 70));

        // Crossing the year boundary.
        let last_minute = at(2026, 12, 31, 23, 59, 0);
        assert_eq!(quarterly.next_after(last_minute, 0), Some(last_minute + 1));
    }

    #[test]
    fn next_after_is_strictly_after() {
        let daily = schedule("@daily");
        let midnight = at(2027, 3, 1, 0, 0, BEIJING);
        assert_eq!(daily.next_after(midnight - 1, BEIJING), Some(midnight));
        assert_eq!(
            daily.next_after(midnight, BEIJING),
            Some(midnight + MINUTES_PER_DAY)
        );
    }

    #[test]
    fn next_after_agrees_with_scanning_every_minute() {
        let texts = [
            "* * * * *",
            "*/7 */5 * * *",
            "30 23 * * *",
            "0 0 13 * 5",
            "15 4 */3 * mon",
            "0 12 1,15 * *",
            "59 23 * * *",
        ];
        let starts = [at(2026, 11, 20, 22, 58, 0), at(1969, 12, 25, 0, 0, 0)];
        let span = 40 * MINUTES_PER_DAY;
        for text in texts {
            let parsed = schedule(text);
            for offset in [0, BEIJING, -570] {
                for start in starts {
                    let scanned: Vec<i64> = (start + 1..start + span)
                        .filter(|&minute| parsed.matches(minute, offset))
                        .collect();
                    let mut chained = Vec::new();
                    let mut cursor = start;
                    while let Some(next) = parsed.next_after(cursor, offset) {
                        if next >= start + span {
                            break;
                        }
                        chained.push(next);
                        cursor = next;
                    }
                    assert_eq!(chained, scanned, "{text} offset {offset} from {start}");
                    assert!(!scanned.is_empty(), "{text} should fire within 40 days");
                }
            }
        }
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        let every = schedule("* * * * *");
        assert_eq!(every.next_after(i64::MAX, 0), None);
        assert_eq!(every.next_after(i64::MAX - 1, BEIJING), None);
        assert_eq!(every.next_after(i64::MIN, 0), Some(i64::MIN + 1));
        let _ = every.matches(i64::MAX, BEIJING);
        let _ = every.matches(i64::MIN, -BEIJING);
        assert_eq!(schedule("0 0 31 2 *").next_after(i64::MAX / 2, 0), None);
    }
}
