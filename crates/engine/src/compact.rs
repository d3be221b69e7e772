//! The compact cell encoding shared by block entries and tiles, and the
//! LZ4 wrapping both use.
//!
//! A cell is a varint header `length << 3 | kind`, then `length` bytes:
//!
//! | kind | meaning | length | bytes |
//! |---|---|---|---|
//! | 0 | no cell (a block's gap) | 0 | — |
//! | 1 | [`CellValue::Empty`] | 0 | — |
//! | 2 | text | its UTF-8 length | the text |
//! | 3 | number | its text's length | [`number_text`](crate::number_text) of it |
//! | 4 | boolean | 0 or 1 | — |
//! | 5 | error value | its place in [`ErrorValue::ALL`] | — |
//! | 6 | a format, then the cell's value | the format's length | the format |
//!
//! Numbers are kept as their shortest text, which reads back to the same
//! value and is shorter than 8 bytes for most numbers in real data.

use crate::value::{Cell, CellValue, ErrorValue, shortest_decimal, shortest_integer, write_number};

/// Postcard's unsigned integer: LEB128.
pub(crate) fn varint(bytes: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        bytes.push((value as u8) | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

fn header(bytes: &mut Vec<u8>, length: usize, kind: u8) {
    varint(bytes, ((length as u64) << 3) | u64::from(kind));
}

/// Appends `cell` (`None`: a gap) in the compact encoding; `scratch` is
/// reused to write numbers.
pub(crate) fn put_cell(bytes: &mut Vec<u8>, cell: Option<&Cell>, scratch: &mut String) {
    let Some(cell) = cell else {
        bytes.push(0);
        return;
    };
    if let Some(format) = &cell.format {
        header(bytes, format.len(), 6);
        bytes.extend_from_slice(format.as_bytes());
    }
    match &cell.value {
        CellValue::Empty => bytes.push(1),
        CellValue::Text(text) => {
            header(bytes, text.len(), 2);
            bytes.extend_from_slice(text.as_bytes());
        }
        CellValue::Number(number) => {
            scratch.clear();
            write_number(scratch, *number);
            header(bytes, scratch.len(), 3);
            bytes.extend_from_slice(scratch.as_bytes());
        }
        CellValue::Boolean(flag) => header(bytes, usize::from(*flag), 4),
        CellValue::Error(error) => {
            let index = ErrorValue::ALL.iter().position(|e| e == error);
            header(bytes, index.unwrap_or_default(), 5);
        }
    }
}

/// The number a number cell's bytes hold.
fn number(bytes: &[u8]) -> Result<f64, String> {
    shortest_integer(bytes)
        .or_else(|| shortest_decimal(bytes))
        .or_else(|| {
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
        })
        .ok_or_else(|| "a number in it does not read".to_owned())
}

/// Reads what [`varint`] and [`put_cell`] wrote.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.bytes.split_first().ok_or("it ends inside a number")?;
            self.bytes = rest;
            let part = u64::from(byte & 0x7F);
            if shift == 63 && part > 1 {
                break;
            }
            value |= part << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a number in it is too large".into())
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, String> {
        u32::try_from(self.varint()?).map_err(|_| format!("its {what} is too large"))
    }

    fn take(&mut self, length: u64) -> Result<&'a [u8], String> {
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if length > self.bytes.len() {
            return Err("it ends inside a cell".into());
        }
        let (taken, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        Ok(taken)
    }

    fn text(&mut self, length: u64) -> Result<String, String> {
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a text in it is not UTF-8".to_owned())
    }

    /// Steps over one cell as [`cell`](Reader::cell) reads it, making
    /// nothing: whether it is a cell (not a gap). Checks its layout, not
    /// its text (reading it whole does that).
    pub(crate) fn skip_cell(&mut self) -> Result<bool, String> {
        Ok(self.step_cell(false)?.is_some())
    }

    /// One cell as its bytes in this encoding, header included (`None`: a
    /// gap), checked as [`cell`](Reader::cell) checks it (its text is
    /// UTF-8, its number reads) without making it: for copying cells from
    /// a block into a tile as they are.
    pub(crate) fn raw_cell(&mut self) -> Result<Option<&'a [u8]>, String> {
        self.step_cell(true)
    }

    /// One cell's bytes (`None`: a gap), its layout checked, not its text:
    /// for bytes this code wrote or checked already.
    pub(crate) fn cell_bytes(&mut self) -> Result<Option<&'a [u8]>, String> {
        self.step_cell(false)
    }

    /// Steps over one cell, its text and number checked if `check`; its
    /// bytes (`None`: a gap).
    fn step_cell(&mut self, check: bool) -> Result<Option<&'a [u8]>, String> {
        let start = self.bytes;
        let text = |bytes: &[u8]| {
            if check && std::str::from_utf8(bytes).is_err() {
                Err("a text in it is not UTF-8".to_owned())
            } else {
                Ok(())
            }
        };
        let mut format = false;
        loop {
            let head = self.varint()?;
            let (length, kind) = (head >> 3, (head & 7) as u8);
            match kind {
                0 if length == 0 && !format => return Ok(None),
                1 if length == 0 => {}
                2 => text(self.take(length)?)?,
                3 => {
                    let bytes = self.take(length)?;
                    if check {
                        number(bytes)?;
                    }
                }
                4 if length < 2 => {}
                5 if usize::try_from(length).is_ok_and(|i| i < ErrorValue::ALL.len()) => {}
                5 => return Err("an error value in it is unknown".into()),
                6 if !format => {
                    text(self.take(length)?)?;
                    format = true;
                    continue;
                }
                _ => return Err(format!("a cell in it has kind {kind} and length {length}")),
            }
            let used = start.len() - self.bytes.len();
            return Ok(Some(&start[..used]));
        }
    }

    /// One cell (`None`: a gap).
    pub(crate) fn cell(&mut self) -> Result<Option<Cell>, String> {
        let mut format = None;
        loop {
            let head = self.varint()?;
            let (length, kind) = (head >> 3, (head & 7) as u8);
            let value = match kind {
                0 if length == 0 && format.is_none() => return Ok(None),
                1 if length == 0 => CellValue::Empty,
                2 => CellValue::Text(self.text(length)?),
                3 => CellValue::Number(number(self.take(length)?)?),
                4 if length < 2 => CellValue::Boolean(length == 1),
                5 => CellValue::Error(
                    *usize::try_from(length)
                        .ok()
                        .and_then(|i| ErrorValue::ALL.get(i))
                        .ok_or("an error value in it is unknown")?,
                ),
                6 if format.is_none() => {
                    format = Some(self.text(length)?);
                    continue;
                }
                _ => return Err(format!("a cell in it has kind {kind} and length {length}")),
            };
            return Ok(Some(Cell { value, format }));
        }
    }
}

/// `body` compressed with LZ4, after its length (a varint).
pub(crate) fn compress(body: &[u8]) -> Vec<u8> {
    let most = lz4_flex::block::get_maximum_output_size(body.len());
    let mut bytes = Vec::with_capacity(10 + most);
    varint(&mut bytes, body.len() as u64);
    let start = bytes.len();
    bytes.resize(start + most, 0);
    // The buffer holds the largest output LZ4 can make.
    let written = lz4_flex::block::compress_into(body, &mut bytes[start..]).unwrap_or(0);
    bytes.truncate(start + written);
    bytes
}

/// The body [`compress`] compressed.
pub(crate) fn decompress(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut reader = Reader::new(bytes);
    let length = reader.varint()?;
    let compressed = reader.bytes;
    // LZ4 expands at most 255 times: a length beyond is damage, refused
    // before anything is allocated.
    let most = (compressed.len() as u64)
        .saturating_mul(255)
        .saturating_add(16);
    let length = usize::try_from(length)
        .ok()
        .filter(|&l| l as u64 <= most)
        .ok_or_else(|| {
            format!(
                "it claims {length} bytes from {} compressed",
                compressed.len()
            )
        })?;
    let mut body = vec![0; length];
    match lz4_flex::block::decompress_into(compressed, &mut body) {
        Ok(n) if n == length => Ok(body),
        Ok(n) => Err(format!("it decompresses to {n} bytes, not {length}")),
        Err(err) => Err(format!("it does not decompress: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells() -> Vec<Option<Cell>> {
        let mut cells: Vec<Option<Cell>> = [
            CellValue::Empty,
            CellValue::Text("héllo".into()),
            CellValue::Text(String::new()),
            CellValue::Number(-2.5),
            CellValue::Number(-0.0),
            CellValue::Number(42.0),
            CellValue::Number(1e300),
            CellValue::Number(f64::INFINITY),
            CellValue::Number(123_456_789_012_345_680_000.0),
            CellValue::Boolean(true),
            CellValue::Boolean(false),
            CellValue::Error(ErrorValue::Calc),
        ]
        .into_iter()
        .map(|v| Some(Cell::new(v)))
        .collect();
        cells.push(None);
        cells.push(Some(Cell::new(CellValue::Number(7.0)).with_format("0.00")));
        cells.push(Some(Cell::new(CellValue::Empty).with_format("")));
        cells
    }

    #[test]
    fn cells_round_trip() {
        let mut bytes = Vec::new();
        let mut scratch = String::new();
        for cell in cells() {
            put_cell(&mut bytes, cell.as_ref(), &mut scratch);
        }
        let body = compress(&bytes);
        let bytes = decompress(&body).unwrap_or_else(|e| panic!("{e}"));
        let mut reader = Reader::new(&bytes);
        for cell in cells() {
            let read = reader.cell().unwrap_or_else(|e| panic!("{e}"));
            // Debug tells -0 from 0.
            assert_eq!(format!("{read:?}"), format!("{cell:?}"));
        }
        assert!(reader.is_empty());
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        assert!(decompress(b"").is_err());
        assert!(decompress(&[0xFF, 0xFF, 0xFF, 0x7F, 0]).is_err());
        assert!(decompress(&[0x80, 0x80, 0x80, 0x80, 0x01, 0, 0]).is_err());
        for bytes in [
            &[0x0E][..],
            &[0x07],
            &[0x12, b'a'],
            &[0x1A, 0xFF, 0xFE, 0x80],
        ] {
            assert!(Reader::new(bytes).cell().is_err(), "{bytes:?}");
        }
        assert!(Reader::new(&[0xFF; 11]).varint().is_err());
    }

    /// A cell's raw bytes are what `put_cell` wrote of it, and a gap is
    /// none.
    #[test]
    fn raw_cells_are_their_encoding() {
        let mut scratch = String::new();
        let mut all = Vec::new();
        for cell in cells() {
            put_cell(&mut all, cell.as_ref(), &mut scratch);
        }
        let mut reader = Reader::new(&all);
        for cell in cells() {
            let mut own = Vec::new();
            put_cell(&mut own, cell.as_ref(), &mut scratch);
            let raw = reader.raw_cell().unwrap_or_else(|e| panic!("{e}"));
            match cell {
                Some(_) => assert_eq!(raw, Some(&own[..])),
                None => assert_eq!(raw, None),
            }
        }
        assert!(reader.is_empty());
    }

    proptest::proptest! {
        /// `raw_cell` accepts what `cell` accepts, reads as far, and fails
        /// with the same message: a block copied into tiles as it is is
        /// checked as one read cell by cell.
        #[test]
        fn raw_cell_checks_as_cell_does(bytes in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just(0u8),
                proptest::strategy::Just(0x12),
                proptest::strategy::Just(0x1B),
                proptest::strategy::Just(b'1'),
                0u8..=255,
            ],
            0..24,
        )) {
            let (mut raw, mut made) = (Reader::new(&bytes), Reader::new(&bytes));
            loop {
                let (a, b) = (raw.raw_cell(), made.cell());
                match (&a, &b) {
                    (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a.is_some(), b.is_some()),
                    (Err(a), Err(b)) => {
                        proptest::prop_assert_eq!(a, b);
                        break;
                    }
                    _ => proptest::prop_assert!(false, "{a:?} against {b:?}"),
                }
                proptest::prop_assert_eq!(raw.rest().len(), made.rest().len());
                if raw.is_empty() {
                    break;
                }
            }
        }
    }
}
