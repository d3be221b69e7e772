//! The log entries of a sheet: one byte of version tag, then the entry in
//! postcard. A new entry kind or field gets a new tag; old tags stay
//! readable. Tag 1 is a cell edit; tag 2 the sheet's identity (16 bytes,
//! little-endian), the first entry of a log made by
//! [`Spreadsheet::create`](crate::Spreadsheet::create).

use crate::identity::SheetId;
use crate::value::{Cell, CellValue};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The version tag written before every entry this version encodes.
pub const ENTRY_VERSION: u8 = 1;

/// The version tag of an identity entry.
pub const IDENTITY_TAG: u8 = 2;

/// One edit of a sheet, as stored in its event log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SheetEntry {
    /// Set one cell's value and format (the original's
    /// `SetCellValueAndFormat`).
    SetCellValueAndFormat {
        /// Zero-based row.
        row: u32,
        /// Zero-based column.
        column: u32,
        /// The new value.
        value: CellValue,
        /// The new format; `None` clears it.
        format: Option<String>,
    },
    /// The sheet whose log this is: the first entry of the log, changing
    /// no cell. Encoded under its own tag, not in postcard.
    #[serde(skip)]
    Identity {
        /// The sheet's identity.
        sheet: SheetId,
    },
}

/// A log entry that is not a sheet entry this version can read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The entry has no bytes at all.
    #[error("the entry is empty")]
    Empty,
    /// The entry was written by a newer version (or is not a sheet entry).
    #[error(
        "the entry has version tag {0}; this version reads tags {ENTRY_VERSION} and {IDENTITY_TAG}"
    )]
    UnknownVersion(u8),
    /// The bytes after the tag do not decode.
    #[error("the entry does not decode: {0}")]
    Malformed(String),
}

impl SheetEntry {
    /// The entry that sets the cell at `row`, `column` to `cell`.
    pub fn set_cell(row: u32, column: u32, cell: Cell) -> SheetEntry {
        SheetEntry::SetCellValueAndFormat {
            row,
            column,
            value: cell.value,
            format: cell.format,
        }
    }

    /// The identity entry of the sheet `sheet`.
    pub fn identity(sheet: SheetId) -> SheetEntry {
        SheetEntry::Identity { sheet }
    }

    /// The entry's bytes: the version tag, then postcard (an identity: its
    /// tag, then the 16 bytes of the id).
    pub fn encode(&self) -> Bytes {
        if let SheetEntry::Identity { sheet } = self {
            let mut bytes = vec![IDENTITY_TAG];
            bytes.extend_from_slice(&sheet.as_u128().to_le_bytes());
            return Bytes::from(bytes);
        }
        let mut bytes = vec![ENTRY_VERSION];
        // Writing into a Vec cannot fail, and every field serializes.
        bytes = postcard::to_extend(self, bytes).unwrap_or_else(|_| vec![ENTRY_VERSION]);
        Bytes::from(bytes)
    }

    /// Reads an entry written by [`encode`](SheetEntry::encode).
    ///
    /// # Errors
    ///
    /// [`EntryError`] if the bytes are empty, carry another version tag, or
    /// do not decode (trailing bytes included).
    pub fn decode(bytes: &[u8]) -> Result<SheetEntry, EntryError> {
        let (&tag, body) = bytes.split_first().ok_or(EntryError::Empty)?;
        if tag == IDENTITY_TAG {
            let id: [u8; 16] = body.try_into().map_err(|_| {
                EntryError::Malformed(format!(
                    "an identity entry holds 16 bytes, not {}",
                    body.len()
                ))
            })?;
            return Ok(SheetEntry::identity(SheetId::from_u128(
                u128::from_le_bytes(id),
            )));
        }
        if tag != ENTRY_VERSION {
            return Err(EntryError::UnknownVersion(tag));
        }
        match postcard::take_from_bytes::<SheetEntry>(body) {
            Ok((entry, [])) => Ok(entry),
            Ok((_, rest)) => Err(EntryError::Malformed(format!(
                "{} bytes follow the entry",
                rest.len()
            ))),
            Err(err) => Err(EntryError::Malformed(err.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::ErrorValue;

    #[test]
    fn entries_round_trip() {
        for value in [
            CellValue::Empty,
            CellValue::Text("héllo".into()),
            CellValue::Number(-2.5),
            CellValue::Boolean(true),
            CellValue::Error(ErrorValue::Spill),
        ] {
            let entry = SheetEntry::set_cell(7, 3, Cell::new(value).with_format("0.00"));
            assert_eq!(SheetEntry::decode(&entry.encode()), Ok(entry));
        }
        let identity = SheetEntry::identity(SheetId::random());
        assert_eq!(identity.encode().len(), 17);
        assert_eq!(SheetEntry::decode(&identity.encode()), Ok(identity));
    }

    #[test]
    fn foreign_bytes_are_typed_errors() {
        assert_eq!(SheetEntry::decode(b""), Err(EntryError::Empty));
        assert_eq!(
            SheetEntry::decode(b"\x03abc"),
            Err(EntryError::UnknownVersion(3))
        );
        assert!(matches!(
            SheetEntry::decode(b"\x02abc"),
            Err(EntryError::Malformed(_))
        ));
        assert!(matches!(
            SheetEntry::decode(b"\x01\x07"),
            Err(EntryError::Malformed(_))
        ));
        let mut long = SheetEntry::set_cell(0, 0, Cell::new(CellValue::Empty))
            .encode()
            .to_vec();
        long.push(0);
        assert!(matches!(
            SheetEntry::decode(&long),
            Err(EntryError::Malformed(_))
        ));
    }
}
