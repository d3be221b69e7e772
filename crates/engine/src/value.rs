//! Cell values and formats: what a cell holds, and how values are written
//! and parsed as text (`42`, `TRUE`, `#DIV/0!`).

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
    /// Reads text as a person types it into a cell: empty is
    /// [`Empty`](CellValue::Empty); a number (`42`, `-1.5e3`) is a
    /// number; `TRUE`/`FALSE` (any case) a boolean; an error value
    /// (`#DIV/0!`) an error; anything else, text. Never fails.
    pub fn parse(text: &str) -> CellValue {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return CellValue::Empty;
        }
        if trimmed.eq_ignore_ascii_case("true") {
            return CellValue::Boolean(true);
        }
        if trimmed.eq_ignore_ascii_case("false") {
            return CellValue::Boolean(false);
        }
        if let Ok(error) = trimmed.parse::<ErrorValue>() {
            return CellValue::Error(error);
        }
        // Rust also parses "inf" and "NaN"; a person typing those means text.
        let numeric = trimmed
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
        match trimmed.parse::<f64>() {
            Ok(number) if numeric && number.is_finite() => CellValue::Number(number),
            _ => CellValue::Text(text.to_owned()),
        }
    }
}

impl fmt::Display for CellValue {
    /// Writes the value as [`parse`](CellValue::parse) reads it back (text
    /// that looks like another kind of value excepted).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CellValue::Empty => Ok(()),
            CellValue::Text(text) => f.write_str(text),
            CellValue::Number(number) => write!(f, "{number}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_each_kind() {
        assert_eq!(CellValue::parse(""), CellValue::Empty);
        assert_eq!(CellValue::parse("42"), CellValue::Number(42.0));
        assert_eq!(CellValue::parse("-1.5e3"), CellValue::Number(-1500.0));
        assert_eq!(CellValue::parse("true"), CellValue::Boolean(true));
        assert_eq!(CellValue::parse("FALSE"), CellValue::Boolean(false));
        assert_eq!(
            CellValue::parse("#div/0!"),
            CellValue::Error(ErrorValue::DivZero)
        );
        assert_eq!(CellValue::parse("inf"), CellValue::Text("inf".into()));
        assert_eq!(CellValue::parse("NaN"), CellValue::Text("NaN".into()));
        assert_eq!(CellValue::parse("1e999"), CellValue::Text("1e999".into()));
        assert_eq!(CellValue::parse("hello"), CellValue::Text("hello".into()));
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
