//! Cell values and formats: what a cell holds, and how values are written
//! and parsed as text (`42`, `TRUE`, `#DIV/0!`).

use crate::entry::ParsedKind;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A spreadsheet error value, such as `#DIV/0!`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorValue {
    /// `#NULL!`: ranges that do not intersect.
    Null,
    /// `#DIV/0!`: division by zero.
    DivZero,
    /// `#VALUE!`: a value of the wrong type.
    Value,
    /// `#REF!`: a reference to a cell that does not exist.
    Ref,
    /// `#NAME?`: an unknown name.
    Name,
    /// `#NUM!`: a number out of range.
    Num,
    /// `#N/A`: no value available.
    NotAvailable,
    /// `#GETTING_DATA`: a value still being computed or fetched.
    GettingData,
    /// `#SPILL!`: an array result that cannot spill.
    Spill,
    /// `#UNKNOWN!`: a value of a type this version does not know.
    Unknown,
    /// `#FIELD!`: a missing field of a linked data type.
    Field,
    /// `#CALC!`: the calculation engine cannot compute the value.
    Calc,
}

impl ErrorValue {
    /// Every error value, in the order above.
    pub const ALL: [ErrorValue; 12] = [
        ErrorValue::Null,
        ErrorValue::DivZero,
        ErrorValue::Value,
        ErrorValue::Ref,
        ErrorValue::Name,
        ErrorValue::Num,
        ErrorValue::NotAvailable,
        ErrorValue::GettingData,
        ErrorValue::Spill,
        ErrorValue::Unknown,
        ErrorValue::Field,
        ErrorValue::Calc,
    ];

    /// How the error is written in a cell, for example `#DIV/0!`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorValue::Null => "#NULL!",
            ErrorValue::DivZero => "#DIV/0!",
            ErrorValue::Value => "#VALUE!",
            ErrorValue::Ref => "#REF!",
            ErrorValue::Name => "#NAME?",
            ErrorValue::Num => "#NUM!",
            ErrorValue::NotAvailable => "#N/A",
            ErrorValue::GettingData => "#GETTING_DATA",
            ErrorValue::Spill => "#SPILL!",
            ErrorValue::Unknown => "#UNKNOWN!",
            ErrorValue::Field => "#FIELD!",
            ErrorValue::Calc => "#CALC!",
        }
    }
}

impl fmt::Display for ErrorValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not one of the spreadsheet error values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a spreadsheet error value such as #DIV/0!")]
pub struct UnknownErrorValue {
    /// The text given.
    pub text: String,
}

impl FromStr for ErrorValue {
    type Err = UnknownErrorValue;

    /// Parses an error value, ignoring ASCII case (`#n/a` is `#N/A`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorValue::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownErrorValue { text: s.to_owned() })
    }
}

/// The value of a cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CellValue {
    /// Explicitly empty: set, but with no value (unlike a cell never set).
    Empty,
    /// Text.
    Text(String),
    /// A number.
    Number(f64),
    /// `TRUE` or `FALSE`.
    Boolean(bool),
    /// A spreadsheet error value.
    Error(ErrorValue),
}

impl CellValue {
    /// Reads text losslessly, so that writing the value back
    /// ([`Display`](fmt::Display)) gives exactly `text`: empty text is
    /// [`Empty`](CellValue::Empty); `TRUE` and `FALSE` are booleans; an
    /// error value as it is written (`#DIV/0!`) is an error; text that is a
    /// number written in its shortest form ([`number_text`]: `42`, `-1.5`,
    /// `1e300`) is a number. Everything else stays text as it is — `06`,
    /// `4.10`, `2.0`, `0E0`, `+5`, ` 42`, `true`, a field of spaces, a
    /// 20-digit integer that a number would round. Never fails.
    pub fn parse(text: &str) -> CellValue {
        match parsed_kind(text) {
            ParsedKind::Text => CellValue::Text(text.to_owned()),
            ParsedKind::Number(number) => CellValue::Number(number),
            ParsedKind::Other(value) => value,
        }
    }

    /// Reads what a person typed into a cell: as [`parse`](CellValue::parse),
    /// except that a leading apostrophe makes the rest text, as
    /// spreadsheets do (`'007` is the text `007`, `'TRUE` the text `TRUE`,
    /// `''` the text `'`).
    pub fn from_input(text: &str) -> CellValue {
        match text.strip_prefix('\'') {
            Some(rest) => CellValue::Text(rest.to_owned()),
            None => CellValue::parse(text),
        }
    }
}

/// What [`CellValue::parse`] makes of `text`, without making it.
pub(crate) fn parsed_kind(text: &str) -> ParsedKind {
    match text {
        "" => return ParsedKind::Other(CellValue::Empty),
        "TRUE" => return ParsedKind::Other(CellValue::Boolean(true)),
        "FALSE" => return ParsedKind::Other(CellValue::Boolean(false)),
        _ => {}
    }
    if text.starts_with('#') {
        return match ErrorValue::ALL.into_iter().find(|e| e.as_str() == text) {
            Some(error) => ParsedKind::Other(CellValue::Error(error)),
            None => ParsedKind::Text,
        };
    }
    match parse_number(text) {
        Some(number) => ParsedKind::Number(number),
        None => ParsedKind::Text,
    }
}

/// The number `text` is written as in its shortest form, if it is one.
fn parse_number(text: &str) -> Option<f64> {
    // Rust also reads "inf", "NaN" and "+1"; only the shortest form counts.
    let bytes = text.as_bytes();
    let first = *bytes.first()?;
    if !(first.is_ascii_digit() || first == b'-') {
        return None;
    }
    if let Some(number) = shortest_integer(bytes).or_else(|| shortest_decimal(bytes)) {
        // Most numbers in real data: read without writing them back.
        return Some(number);
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'e'))
    {
        return None;
    }
    let number: f64 = text.parse().ok()?;
    if !number.is_finite() {
        return None;
    }
    let mut written = String::with_capacity(text.len());
    write_number(&mut written, number);
    (written == text).then_some(number)
}

/// The number `bytes` write if they are an integer below 10^15 in its
/// shortest form (`0`, `-0`, `42`: no sign but `-`, no leading zero), which
/// is what [`write_number`] writes of it; `None` for anything else,
/// whether a number or not.
pub(crate) fn shortest_integer(bytes: &[u8]) -> Option<f64> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let (&lead, _) = digits.split_first()?;
    if digits.len() > 15 || (lead == b'0' && digits.len() > 1) {
        return None;
    }
    let mut value = 0u64;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(digit - b'0');
    }
    // Below 10^15 < 2^53: exact.
    let magnitude = value as f64;
    Some(if negative { -magnitude } else { magnitude })
}

/// The number `bytes` write if they are a decimal of at most 15 digits in
/// its shortest form, from 1e-5 on (`0.5`, `-12.25`, `0.0001`: an integer
/// part as [`shortest_integer`] takes it, a point, digits not ending in
/// `0`), which is what [`write_number`] writes of it; `None` for anything
/// else, whether a number or not. (Decimals of 15 digits or fewer read
/// back as themselves, so the shortest text of such a number is its own
/// digits; and two of them never tie.)
pub(crate) fn shortest_decimal(bytes: &[u8]) -> Option<f64> {
    /// Powers of ten, exact in an `f64` up to 10^22.
    const TENS: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (negative, rest) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let point = rest.iter().position(|&b| b == b'.')?;
    let (whole, fraction) = (&rest[..point], &rest[point + 1..]);
    let (&lead, _) = whole.split_first()?;
    let (&last, _) = fraction.split_last()?;
    if (lead == b'0' && whole.len() > 1)
        || last == b'0'
        || whole.len() + fraction.len() > 15
        || (whole == b"0" && fraction.starts_with(b"00000"))
    {
        return None;
    }
    let mut digits = 0u64;
    for &digit in whole.iter().chain(fraction) {
        if !digit.is_ascii_digit() {
            return None;
        }
        digits = digits * 10 + u64::from(digit - b'0');
    }
    // Both below 2^53, so exact: their quotient is the number the text
    // reads as, rounded once (Clinger's fast path).
    let magnitude = digits as f64 / *TENS.get(fraction.len())?;
    Some(if negative { -magnitude } else { magnitude })
}

/// A number in the shortest text that reads back to the same value: the
/// fewest significant digits that do, in plain decimals from 1e-6 up to
/// 1e21 (`0.5`, `-42`, `123456789012345680000`), otherwise with an exponent
/// (`1e300`, `1.5e-8`), as JavaScript writes numbers. `-0` keeps its sign.
pub fn number_text(number: f64) -> String {
    let mut text = String::new();
    write_number(&mut text, number);
    text
}

/// Appends [`number_text`] of `number` to `text`.
pub(crate) fn write_number(text: &mut String, number: f64) {
    use std::fmt::Write as _;
    let magnitude = number.abs();
    if number.fract() == 0.0 && magnitude < 1e15 {
        // Integers, most numbers in real data (`-0` keeps its sign).
        if number.is_sign_negative() {
            text.push('-');
        }
        text.push_str(itoa::Buffer::new().format(magnitude as u64));
    } else if (1e-5..1e15).contains(&magnitude) {
        // Ryu writes the same shortest digits as Rust, in plain decimals
        // in this range, faster, except at an exact tie between two
        // shortest texts (76168512627220.625 is ...62 to Ryu, ...63 to
        // Rust; both read back the same): possible only when the number's
        // exact decimal has one digit more than Ryu wrote. Rust's text is
        // the one written then.
        let mut buffer = ryu::Buffer::new();
        let fast = buffer.format_finite(number);
        let written = fast
            .split_once('.')
            .map_or(0, |(_, fraction)| fraction.len());
        if fast.contains('e') || exact_fraction_digits(number) == written + 1 {
            let _ = write!(text, "{number}");
        } else {
            text.push_str(fast);
        }
    } else if magnitude == 0.0 || (1e-6..1e21).contains(&magnitude) || !number.is_finite() {
        let _ = write!(text, "{number}");
    } else {
        let _ = write!(text, "{number:e}");
    }
}

/// How many digits after the point the exact decimal value of a finite
/// `number` has (every binary fraction ends: `0.625` has 3).
fn exact_fraction_digits(number: f64) -> usize {
    let bits = number.to_bits();
    let exponent = ((bits >> 52) & 0x7FF) as i64;
    let mantissa = bits & ((1 << 52) - 1);
    let (mantissa, exponent) = if exponent == 0 {
        (mantissa, -1074) // subnormal
    } else {
        (mantissa | (1 << 52), exponent - 1075)
    };
    if mantissa == 0 {
        return 0;
    }
    // The number is mantissa x 2^exponent: with the mantissa odd, a
    // negative exponent -k gives exactly k digits after the point.
    let exponent = exponent + i64::from(mantissa.trailing_zeros());
    usize::try_from(-exponent).unwrap_or(0)
}

impl fmt::Display for CellValue {
    /// Writes the value as [`parse`](CellValue::parse) reads it back: a
    /// number in its shortest form ([`number_text`]), text as it is (text
    /// that looks like another kind of value excepted: `42` as text is
    /// written `42`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CellValue::Empty => Ok(()),
            CellValue::Text(text) => f.write_str(text),
            CellValue::Number(number) => f.write_str(&number_text(*number)),
            CellValue::Boolean(true) => f.write_str("TRUE"),
            CellValue::Boolean(false) => f.write_str("FALSE"),
            CellValue::Error(error) => f.write_str(error.as_str()),
        }
    }
}

/// A cell: its value and an optional format string (such as `"0.00"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The value.
    pub value: CellValue,
    /// How to show the value; the engine stores it and does not interpret it.
    pub format: Option<String>,
}

impl Cell {
    /// A cell with `value` and no format.
    pub fn new(value: CellValue) -> Cell {
        Cell {
            value,
            format: None,
        }
    }

    /// The same cell with `format`.
    #[must_use]
    pub fn with_format(mut self, format: impl Into<String>) -> Cell {
        self.format = Some(format.into());
        self
    }
}

impl From<CellValue> for Cell {
    fn from(value: CellValue) -> Cell {
        Cell::new(value)
    }
}

impl From<f64> for Cell {
    /// A number.
    fn from(number: f64) -> Cell {
        Cell::new(CellValue::Number(number))
    }
}

impl From<i32> for Cell {
    /// A number.
    fn from(number: i32) -> Cell {
        Cell::new(CellValue::Number(number.into()))
    }
}

impl From<bool> for Cell {
    /// `TRUE` or `FALSE`.
    fn from(value: bool) -> Cell {
        Cell::new(CellValue::Boolean(value))
    }
}

impl From<&str> for Cell {
    /// Text, as it is (use [`CellValue::parse`] to read `42` as a number).
    fn from(text: &str) -> Cell {
        Cell::new(CellValue::Text(text.to_owned()))
    }
}

impl From<String> for Cell {
    /// Text, as it is.
    fn from(text: String) -> Cell {
        Cell::new(CellValue::Text(text))
    }
}

impl From<ErrorValue> for Cell {
    fn from(error: ErrorValue) -> Cell {
        Cell::new(CellValue::Error(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_from_plain_values() {
        assert_eq!(Cell::from(42.0), Cell::new(CellValue::Number(42.0)));
        assert_eq!(Cell::from(7), Cell::new(CellValue::Number(7.0)));
        assert_eq!(Cell::from(true), Cell::new(CellValue::Boolean(true)));
        assert_eq!(Cell::from("06"), Cell::new(CellValue::Text("06".into())));
        assert_eq!(
            Cell::from(String::from("x")),
            Cell::new(CellValue::Text("x".into()))
        );
    }

    #[test]
    fn parse_reads_each_kind() {
        assert_eq!(CellValue::parse(""), CellValue::Empty);
        assert_eq!(CellValue::parse("42"), CellValue::Number(42.0));
        assert_eq!(CellValue::parse("-1500"), CellValue::Number(-1500.0));
        assert_eq!(CellValue::parse("0.5"), CellValue::Number(0.5));
        assert_eq!(CellValue::parse("1e300"), CellValue::Number(1e300));
        assert_eq!(CellValue::parse("-0"), CellValue::Number(-0.0));
        assert_eq!(CellValue::parse("TRUE"), CellValue::Boolean(true));
        assert_eq!(CellValue::parse("FALSE"), CellValue::Boolean(false));
        assert_eq!(
            CellValue::parse("#DIV/0!"),
            CellValue::Error(ErrorValue::DivZero)
        );
        assert_eq!(CellValue::parse("hello"), CellValue::Text("hello".into()));
    }

    #[test]
    fn parse_keeps_text_that_a_value_would_change() {
        for text in [
            "06",
            "4.10",
            "2.0",
            "0E0",
            "47.0",
            "-91.9475000",
            "12345678901234567890",
            "1e5",
            "1E300",
            "+5",
            ".5",
            " 42",
            "42 ",
            "   ",
            "\u{a0}",
            "true",
            "False",
            "#div/0!",
            "#OOPS!",
            "inf",
            "NaN",
            "1e999",
            "-",
            "1-2",
            "0x10",
        ] {
            assert_eq!(
                CellValue::parse(text),
                CellValue::Text(text.into()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn every_value_parse_reads_is_written_back_the_same() {
        for text in [
            "",
            "0",
            "-0",
            "7",
            "0.1",
            "3.14159",
            "-2.5",
            "0.000001",
            "1e-7",
            "1e-8",
            "1.5e-8",
            "1e21",
            "123456789012345680000",
            "1e300",
            "-1.7976931348623157e308",
            "5e-324",
            "TRUE",
            "FALSE",
            "#N/A",
            "#SPILL!",
            "06",
            "x",
            "'007",
        ] {
            assert_eq!(CellValue::parse(text).to_string(), text, "{text:?}");
        }
    }

    #[test]
    fn numbers_are_written_in_their_shortest_exact_form() {
        for number in [
            0.1 + 0.2,
            1e300,
            -1e-300,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            1e21,
            999_999_999_999_999_900_000.0,
            1e-7,
            9.99e-8,
            123.456,
        ] {
            let text = number_text(number);
            assert_eq!(text.parse::<f64>(), Ok(number), "{text}");
            assert_eq!(CellValue::parse(&text), CellValue::Number(number), "{text}");
        }
        assert_eq!(number_text(1e300), "1e300");
        assert_eq!(number_text(1e20), "100000000000000000000");
        assert_eq!(number_text(0.1 + 0.2), "0.30000000000000004");
        // Exact ties between two shortest texts, where Ryu and Rust differ.
        assert_eq!(number_text(76_168_512_627_220.63), "76168512627220.63");
        assert_eq!(number_text(236_160_343_559_928.62), "236160343559928.63");
    }

    /// The slow path: `text` read, then kept only if written back the
    /// same.
    fn slow_number(text: &str) -> Option<f64> {
        text.parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && number_text(*n) == text)
    }

    proptest::proptest! {
        #[test]
        fn the_fast_paths_write_what_rust_writes(number in proptest::num::f64::ANY, scale in -30i32..30) {
            let number = number * 10f64.powi(scale);
            let magnitude = number.abs();
            let std = if magnitude == 0.0 || (1e-6..1e21).contains(&magnitude) || !number.is_finite() {
                number.to_string()
            } else {
                format!("{number:e}")
            };
            proptest::prop_assert_eq!(number_text(number), std);
        }

        #[test]
        fn integers_read_without_writing_back_as_numbers_read_by_writing_back(
            text in "-?[0-9]{1,17}|[+0-9.e-]{1,8}",
        ) {
            let slow = slow_number(&text);
            proptest::prop_assert_eq!(parse_number(&text), slow);
            if let Some(fast) = shortest_integer(text.as_bytes()) {
                proptest::prop_assert_eq!(Some(fast.to_bits()), slow.map(f64::to_bits));
            }
        }

        #[test]
        fn decimals_read_without_writing_back_as_numbers_read_by_writing_back(
            text in "-?(0|[1-9][0-9]{0,9})\\.[0-9]{0,7}[1-9]|-?[0-9]{1,8}\\.[0-9]{1,9}|[0-9.-]{1,8}",
        ) {
            let slow = slow_number(&text);
            let fast = shortest_decimal(text.as_bytes());
            if let Some(fast) = fast {
                proptest::prop_assert_eq!(Some(fast.to_bits()), slow.map(f64::to_bits));
            }
            // Every decimal of 15 digits or fewer in its shortest form, from
            // 1e-5 on, takes the fast path.
            let digits = text.bytes().filter(u8::is_ascii_digit).count();
            let small = text.trim_start_matches('-').starts_with("0.00000");
            if slow.is_some() && text.contains('.') && digits <= 15 && !small {
                proptest::prop_assert!(fast.is_some(), "{text} took the slow path");
            }
            proptest::prop_assert_eq!(parse_number(&text).map(f64::to_bits), slow.map(f64::to_bits));
        }

        #[test]
        fn the_fast_path_reads_any_decimal_it_takes_as_rust_does(
            whole in 0u64..100_000_000, fraction in 1u64..10_000_000, zeros in 0usize..6, negative: bool,
        ) {
            let fraction = fraction.to_string();
            let fraction = format!("{}{}", "0".repeat(zeros), fraction.trim_end_matches('0'));
            let text = format!("{}{whole}.{fraction}", if negative { "-" } else { "" });
            if let Some(fast) = shortest_decimal(text.as_bytes()) {
                let rust: f64 = text.parse().unwrap();
                proptest::prop_assert_eq!(fast.to_bits(), rust.to_bits());
                proptest::prop_assert_eq!(number_text(fast), text);
            }
        }
    }

    #[test]
    fn an_apostrophe_makes_typed_input_text() {
        assert_eq!(CellValue::from_input("'007"), CellValue::Text("007".into()));
        assert_eq!(
            CellValue::from_input("'TRUE"),
            CellValue::Text("TRUE".into())
        );
        assert_eq!(CellValue::from_input("''"), CellValue::Text("'".into()));
        assert_eq!(CellValue::from_input("'"), CellValue::Text(String::new()));
        assert_eq!(CellValue::from_input("42"), CellValue::Number(42.0));
    }

    #[test]
    fn every_error_value_round_trips_through_text() {
        for error in ErrorValue::ALL {
            assert_eq!(error.as_str().parse::<ErrorValue>(), Ok(error));
            assert_eq!(
                CellValue::parse(&CellValue::Error(error).to_string()),
                CellValue::Error(error)
            );
        }
        assert_eq!(
            "#OOPS!".parse::<ErrorValue>(),
            Err(UnknownErrorValue {
                text: "#OOPS!".into()
            })
        );
    }
}
