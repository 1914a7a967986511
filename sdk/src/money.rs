//! Money in fen (分, integer hundredths of a yuan) so sums are exact, and
//! the amount forms registers and forms use.
//!
//! ```ignore
//! use tianshan_sdk::money;
//! assert_eq!(money::parse_yuan("6,500元"), Some(650_000));
//! assert_eq!(money::yuan_text(650_000), "6500.00");
//! ```

use serde_json::Value;

/// An amount in yuan as text — `5200.50`, `¥1,200.05`, `6,500元`,
/// `６５００` is not accepted — into fen; none when it is not an amount or
/// has more than two decimals (a fen is the smallest unit booked).
pub fn parse_yuan(text: &str) -> Option<i64> {
    let text: String = text
        .trim()
        .trim_end_matches("人民币")
        .trim_end_matches(['元', '圆'])
        .trim_start_matches(['¥', '￥'])
        .chars()
        .filter(|c| !matches!(c, ',' | '，' | ' ' | '\u{a0}'))
        .collect();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if (whole.is_empty() && frac.is_empty())
        || frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let cents: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    let fen = whole.checked_mul(100)?.checked_add(cents)?;
    Some(if negative { -fen } else { fen })
}

/// A JSON amount in yuan (a number or text, see [`parse_yuan`]) into fen.
pub fn yuan_to_fen(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => parse_yuan(&n.to_string()),
        Value::String(s) => parse_yuan(s),
        _ => None,
    }
}

/// A spreadsheet's number of yuan into fen, refusing fractions of a fen
/// beyond float noise (`4800.1` is 480,010 fen, `12.345` is none).
pub fn yuan_float_to_fen(yuan: f64) -> Option<i64> {
    let fen = yuan * 100.0;
    if !fen.is_finite() || (fen - fen.round()).abs() > 1e-6 || fen.abs() > 9.0e15 {
        return None;
    }
    Some(fen.round() as i64)
}

/// Fen as a yuan number, for spreadsheets and charts.
pub fn fen_to_yuan_number(fen: i64) -> f64 {
    fen as f64 / 100.0
}

/// Fen as yuan text with two decimals.
pub fn yuan_text(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_in_the_forms_registers_use() {
        assert_eq!(parse_yuan("5200.5"), Some(520_050));
        assert_eq!(parse_yuan("¥1,200.05"), Some(120_005));
        assert_eq!(parse_yuan("6,500元"), Some(650_000));
        assert_eq!(parse_yuan("6，500.00 元"), Some(650_000));
        assert_eq!(parse_yuan("0.1"), Some(10));
        assert_eq!(parse_yuan("-3"), Some(-300));
        assert_eq!(parse_yuan("1.234"), None);
        assert_eq!(parse_yuan("abc"), None);
        assert_eq!(parse_yuan(""), None);
        assert_eq!(yuan_to_fen(&json!(3)), Some(300));
        assert_eq!(yuan_float_to_fen(4800.1), Some(480_010));
        assert_eq!(yuan_float_to_fen(12.345), None);
        assert_eq!(yuan_text(520_050), "5200.50");
        assert_eq!(yuan_text(-5), "-0.05");
    }
}
