//! A sheet's identity: 128 random bits, written into the first entry of its
//! log and into the name of every snapshot it writes, and checked whenever
//! the sheet is opened, so a log and the snapshots it names belong to one
//! sheet.

use infinisheet_event_log::AppendToken;
use std::fmt;
use std::str::FromStr;

/// The identity of a sheet. A sheet opened with one
/// ([`SheetOptions::identity`](crate::SheetOptions::identity)) writes it in
/// the name of every snapshot (`<seq>-<id>`) and checks it in its log: the
/// first entry ([`Spreadsheet::create`](crate::Spreadsheet::create) writes
/// it) and every snapshot the log names. Shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SheetId(u128);

impl SheetId {
    /// A new identity from the operating system's random source (the same
    /// source, and fallback, as [`AppendToken::random`]).
    pub fn random() -> SheetId {
        SheetId(AppendToken::random().as_u128())
    }

    /// The identity with this value.
    pub const fn from_u128(value: u128) -> SheetId {
        SheetId(value)
    }

    /// Its value.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for SheetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for SheetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SheetId({self})")
    }
}

/// A text that is not a [`SheetId`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a sheet id (32 lowercase hex digits)")]
pub struct SheetIdError(pub String);

impl FromStr for SheetId {
    type Err = SheetIdError;

    fn from_str(text: &str) -> Result<SheetId, SheetIdError> {
        let valid = text.len() == 32
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(SheetIdError(text.to_owned()));
        }
        u128::from_str_radix(text, 16)
            .map(SheetId)
            .map_err(|_| SheetIdError(text.to_owned()))
    }
}

/// As its text, so it reads well in JSON.
impl serde::Serialize for SheetId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SheetId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<SheetId, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_only_their_own_text_parses() {
        let id = SheetId::random();
        assert_eq!(id.to_string().parse::<SheetId>(), Ok(id));
        assert_ne!(SheetId::random(), id);
        let zero = SheetId::from_u128(0);
        assert_eq!(zero.to_string(), "0".repeat(32));
        for bad in ["", "abc", &"A".repeat(32), &"g".repeat(32), &"0".repeat(33)] {
            assert!(bad.parse::<SheetId>().is_err(), "{bad:?}");
        }
    }
}
