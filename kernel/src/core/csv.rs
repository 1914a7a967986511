//! CSV for exports people open in a spreadsheet: RFC 4180 quoting, CRLF
//! rows, and formula characters defused so a cell such as `=cmd()` is shown,
//! not run (OWASP "CSV injection").

/// One cell: quoted when it holds a separator, quote or line break; a
/// leading `=`, `+`, `-` or `@` gets a `'` unless the cell is a number.
pub fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One row, CRLF-terminated.
pub fn row<S: AsRef<str>>(cells: &[S]) -> String {
    let mut out = cells
        .iter()
        .map(|c| field(c.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_defuses() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=cmd()"), "'=cmd()");
        assert_eq!(field("=a,b"), "\"'=a,b\"");
        assert_eq!(field("-6"), "-6");
        assert_eq!(field("-x"), "'-x");
        assert_eq!(row(&["a", "b c"]), "a,b c\r\n");
    }
}
