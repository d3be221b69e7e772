//! A cell as a spreadsheet shows it: its value through its number format,
//! for the formats people use most (`0`, `00` — at least two digits —,
//! `0.00`, `#,##0`, `#,##0.00`, `0%`, `0.0%`). Any other format, or a
//! value that is not a number, shows as its value text. And the other way:
//! the number and format that show as a text exactly
//! ([`number_with_format`]).

use infinisheet_engine::{Cell, CellValue};

/// A number format this module can apply: decimals, thousands separators,
/// percent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NumberFormat {
    /// Digits before the point at least (leading zeros): `00` is 2.
    digits: usize,
    decimals: usize,
    grouped: bool,
    percent: bool,
}

/// The format `text` names, if it is one of the plain number formats:
/// `0` or `#,##0`, then optionally `.` and zeros, then optionally `%`.
/// The most zeros a format applied here has before or after its point (as
/// spreadsheets allow): a longer one is another format, shown as the
/// value's text.
const MOST_DIGITS: usize = 30;

fn parse(text: &str) -> Option<NumberFormat> {
    let (body, percent) = match text.strip_suffix('%') {
        Some(body) => (body, true),
        None => (text, false),
    };
    let (whole, decimals) = match body.split_once('.') {
        Some((whole, zeros))
            if (1..=MOST_DIGITS).contains(&zeros.len()) && zeros.bytes().all(|b| b == b'0') =>
        {
            (whole, zeros.len())
        }
        Some(_) => return None,
        None => (body, 0),
    };
    let (digits, grouped) = match whole {
        "#,##0" => (1, true),
        _ if (1..=MOST_DIGITS).contains(&whole.len()) && whole.bytes().all(|b| b == b'0') => {
            (whole.len(), false)
        }
        _ => return None,
    };
    Some(NumberFormat {
        digits,
        decimals,
        grouped,
        percent,
    })
}

/// `digits` (ASCII, no sign) with a `,` between groups of three.
fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `number` through `format`.
fn apply(number: f64, format: NumberFormat) -> String {
    let scaled = if format.percent {
        number * 100.0
    } else {
        number
    };
    // Halves round away from zero, as spreadsheets round (Rust's own
    // formatting rounds them to even).
    let factor = 10f64.powi(i32::try_from(format.decimals).unwrap_or(i32::MAX));
    let rounded = if factor.is_finite() && (scaled.abs() * factor).is_finite() {
        (scaled.abs() * factor).round() / factor
    } else {
        scaled.abs()
    };
    let text = format!("{:.*}", format.decimals, rounded);
    let (mut whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole.to_owned(), Some(fraction.to_owned())),
        None => (text, None),
    };
    if whole.len() < format.digits {
        whole.insert_str(0, &"0".repeat(format.digits - whole.len()));
    }
    let mut out = String::new();
    // "-0" and "-0.00" show without the sign, as spreadsheets show them.
    let rounds_to_zero = whole.bytes().all(|b| b == b'0')
        && fraction
            .as_deref()
            .is_none_or(|f| f.bytes().all(|b| b == b'0'));
    if scaled < 0.0 && !rounds_to_zero {
        out.push('-');
    }
    out.push_str(&if format.grouped { group(&whole) } else { whole });
    if let Some(fraction) = fraction {
        out.push('.');
        out.push_str(&fraction);
    }
    if format.percent {
        out.push('%');
    }
    out
}

/// What a spreadsheet would show for `cell`: a number through its format
/// when the format is one of `0`, `0.00` (any number of zeros), `#,##0`,
/// `#,##0.00`, `0%`, `0.0%`; otherwise the value as text
/// ([`value_text`](super::value_text)). An infinite or NaN number shows as
/// its value text.
///
/// ```
/// use infinisheet::{Cell, table::shown_text};
///
/// assert_eq!(shown_text(&Cell::from(42.0).with_format("0.00")), "42.00");
/// assert_eq!(shown_text(&Cell::from(1234567.891).with_format("#,##0.00")), "1,234,567.89");
/// assert_eq!(shown_text(&Cell::from(0.256).with_format("0.0%")), "25.6%");
/// assert_eq!(shown_text(&Cell::from(5.0).with_format("yyyy-mm-dd")), "5");
/// ```
pub fn shown_text(cell: &Cell) -> String {
    match (&cell.value, cell.format.as_deref().and_then(parse)) {
        (CellValue::Number(number), Some(format)) if number.is_finite() => apply(*number, format),
        (value, _) => value.to_string(),
    }
}

/// The number and the format that show as `text` exactly, if there are
/// any: `06` is 6 in `00`, `34.0900000` is 34.09 in `0.0000000`,
/// `1,234.50` is 1234.5 in `#,##0.00`, `12.5%` is 0.125 in `0.0%`, `-4.10`
/// is -4.1 in `0.00`. Text that is no such number, or that the number and
/// format would show otherwise (too many digits to be exact, `+5`, `.5`,
/// `1e5`), has none.
pub(crate) fn number_with_format(text: &str) -> Option<(f64, String)> {
    let body = text.strip_prefix('-').unwrap_or(text);
    let (body, percent) = match body.strip_suffix('%') {
        Some(body) => (body, true),
        None => (body, false),
    };
    let (whole, fraction) = match body.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (body, None),
    };
    if whole.is_empty()
        || fraction.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let grouped = whole.contains(',');
    let digits = if grouped {
        // 1 to 3 digits, then groups of exactly 3, no leading zero.
        let mut groups = whole.split(',');
        let first = groups.next()?;
        let well_formed = (1..=3).contains(&first.len())
            && !first.starts_with('0')
            && first.bytes().all(|b| b.is_ascii_digit())
            && groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()));
        if !well_formed {
            return None;
        }
        1
    } else {
        if !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Leading zeros are the format's: `06` needs two digits.
        if whole.len() > 1 && whole.starts_with('0') {
            whole.len()
        } else {
            1
        }
    };
    let decimals = fraction.map_or(0, str::len);
    if decimals > MOST_DIGITS || digits > MOST_DIGITS {
        return None;
    }
    let format = NumberFormat {
        digits,
        decimals,
        grouped,
        percent,
    };
    let plain: String = text.chars().filter(|&c| c != ',' && c != '%').collect();
    let mut number: f64 = plain.parse().ok()?;
    if percent {
        number /= 100.0;
    }
    // Only where the format gives the text back exactly.
    if !number.is_finite() || apply(number, format) != text {
        return None;
    }
    let mut written = if grouped {
        "#,##0".to_owned()
    } else {
        "0".repeat(digits)
    };
    if decimals > 0 {
        written.push('.');
        written.push_str(&"0".repeat(decimals));
    }
    if percent {
        written.push('%');
    }
    Some((number, written))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(number: f64, format: &str) -> String {
        shown_text(&Cell::from(number).with_format(format))
    }

    #[test]
    fn the_common_number_formats() {
        assert_eq!(shown(42.0, "0.00"), "42.00");
        assert_eq!(shown(5.0, "0.00"), "5.00");
        assert_eq!(shown(2.5, "0"), "3"); // halves away from zero
        assert_eq!(shown(-2.5, "0"), "-3");
        assert_eq!(shown(-1234.5, "#,##0.00"), "-1,234.50");
        assert_eq!(shown(999.0, "#,##0"), "999");
        assert_eq!(shown(1000.0, "#,##0"), "1,000");
        assert_eq!(shown(1234567.0, "#,##0"), "1,234,567");
        assert_eq!(shown(0.25, "0%"), "25%");
        assert_eq!(shown(0.1234, "0.0%"), "12.3%");
        assert_eq!(shown(-0.001, "0.00"), "0.00");
        // Beyond 30 zeros a format is not applied (it was a panic at 65,536).
        assert_eq!(shown(1.5, &format!("0.{}", "0".repeat(70_000))), "1.5");
        assert_eq!(shown(1.5, &format!("{}0", "0".repeat(30))), "1.5");
        assert_eq!(
            number_with_format(&format!("1.{}", "0".repeat(70_000))),
            None
        );
        assert_eq!(shown(f64::INFINITY, "0.00"), "inf");
    }

    #[test]
    fn numbers_and_formats_that_show_as_a_text() {
        for (text, number, format) in [
            ("06", 6.0, "00"),
            ("007", 7.0, "000"),
            ("34.0900000", 34.09, "0.0000000"),
            ("4.10", 4.1, "0.00"),
            ("-4.10", -4.1, "0.00"),
            ("2.0", 2.0, "0.0"),
            ("1,234.50", 1234.5, "#,##0.00"),
            ("-1,234,567", -1234567.0, "#,##0"),
            ("12.5%", 0.125, "0.0%"),
            ("25%", 0.25, "0%"),
        ] {
            assert_eq!(
                number_with_format(text),
                Some((number, format.to_owned())),
                "{text}"
            );
            assert_eq!(shown(number, format), text);
        }
        for text in [
            "+5",
            ".5",
            "5.",
            "1e5",
            "0E0",
            " 42",
            "1,23",
            "01,234",
            "1,2345",
            "12345678901234567890.5",
            "-0.0",
            "--1",
            "1.2.3",
            "%",
            "-",
            "abc",
            "1,234,",
            "0x10",
            "1_000",
        ] {
            assert_eq!(number_with_format(text), None, "{text}");
        }
    }

    #[test]
    fn other_formats_and_values_show_as_their_text() {
        assert_eq!(shown(45000.0, "yyyy-mm-dd"), "45000");
        assert_eq!(shown(1.5, "0.0#"), "1.5");
        assert_eq!(shown(1.5, "General"), "1.5");
        assert_eq!(shown_text(&Cell::from("06").with_format("0.00")), "06");
        assert_eq!(shown_text(&Cell::from(true).with_format("0%")), "TRUE");
        assert_eq!(shown_text(&Cell::from(7.0)), "7");
    }
}
