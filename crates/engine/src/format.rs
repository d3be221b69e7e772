//! The snapshot's blobs in bytes: a tile (the cells of one rectangle) and
//! the index (counts, tile geometry, which blob holds each tile). Both sit
//! in an envelope: 4 bytes of magic, a version byte, the CRC-32C of the
//! body, then the body. Version 2 (what this version writes): an index
//! body is LZ4 over postcard; a tile body is LZ4 over the cell count, then
//! each cell as the gap from the previous cell's place and the compact
//! cell of `compact.rs`. Version 1 (postcard, uncompressed) still reads.

use crate::compact::{Reader, compress, decompress, put_cell, varint};
use crate::value::Cell;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const TILE_MAGIC: &[u8; 4] = b"ISTL";
const INDEX_MAGIC: &[u8; 4] = b"ISIX";
/// The format version of the tiles and indexes version 1 wrote (postcard,
/// uncompressed); still read.
const VERSION_1: u8 = 1;
/// The format version of the tiles and indexes this version writes
/// (compressed).
const VERSION: u8 = 2;
const HEADER: usize = 4 + 1 + 4;

/// `body` compressed, in its envelope (the current version).
fn seal(magic: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let compressed = compress(body);
    let mut bytes = Vec::with_capacity(HEADER + compressed.len());
    bytes.extend_from_slice(magic);
    bytes.push(VERSION);
    bytes.extend_from_slice(&crc32c::crc32c(&compressed).to_le_bytes());
    bytes.extend_from_slice(&compressed);
    bytes
}

/// `body` in postcard, in a version 1 envelope.
#[cfg(test)]
fn seal_version_1<T: Serialize>(magic: &[u8; 4], body: &T) -> Vec<u8> {
    let mut bytes = magic.to_vec();
    bytes.push(VERSION_1);
    bytes.extend_from_slice(&[0; 4]);
    // Serializing plain data into a Vec cannot fail.
    let mut bytes = postcard::to_extend(body, bytes).unwrap_or_default();
    if bytes.len() >= HEADER {
        let crc = crc32c::crc32c(&bytes[HEADER..]);
        bytes[5..HEADER].copy_from_slice(&crc.to_le_bytes());
    }
    bytes
}

/// What an envelope holds, its checksum checked.
enum Body<'a> {
    /// Version 1: postcard.
    Version1(&'a [u8]),
    /// The current version: the decompressed body.
    Current(Vec<u8>),
}

fn unseal<'a>(magic: &[u8; 4], what: &str, bytes: &'a [u8]) -> Result<Body<'a>, String> {
    if bytes.len() < HEADER || &bytes[..4] != magic {
        return Err(format!("it is not a snapshot {what}"));
    }
    let version = bytes[4];
    if version != VERSION && version != VERSION_1 {
        return Err(format!(
            "it is a snapshot {what} of format version {version}; this version reads \
             {VERSION_1} and {VERSION}"
        ));
    }
    let mut crc = [0; 4];
    crc.copy_from_slice(&bytes[5..HEADER]);
    if crc32c::crc32c(&bytes[HEADER..]) != u32::from_le_bytes(crc) {
        return Err("its checksum does not match its contents".into());
    }
    if version == VERSION_1 {
        return Ok(Body::Version1(&bytes[HEADER..]));
    }
    Ok(Body::Current(decompress(&bytes[HEADER..])?))
}

/// The postcard value `bytes` hold, and nothing after it.
fn from_postcard<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, String> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok(_) => Err(format!("bytes follow the {what}")),
        Err(err) => Err(format!("it does not decode: {err}")),
    }
}

/// The cells of one tile, sorted by their place in it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tile {
    /// `(local row << 16 | local column, cell)`, sorted by the key.
    cells: Vec<(u32, Cell)>,
}

fn local_key(row: u32, column: u32) -> u32 {
    (row << 16) | column
}

/// The place a [`local_key`] names: row, column within the tile.
fn place_of(key: u32) -> (u32, u32) {
    (key >> 16, key & 0xFFFF)
}

impl Tile {
    /// The tile holding `cells`, given by place within the tile.
    pub(crate) fn from_cells(cells: impl IntoIterator<Item = ((u32, u32), Cell)>) -> Tile {
        let mut cells: Vec<_> = cells
            .into_iter()
            .map(|((r, c), cell)| (local_key(r, c), cell))
            .collect();
        cells.sort_by_key(|(key, _)| *key);
        cells.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        Tile { cells }
    }

    /// The cell at a place within the tile.
    pub(crate) fn get(&self, row: u32, column: u32) -> Option<&Cell> {
        let key = local_key(row, column);
        self.cells
            .binary_search_by_key(&key, |(k, _)| *k)
            .ok()
            .map(|i| &self.cells[i].1)
    }

    /// Every cell, by place within the tile.
    #[cfg(test)]
    pub(crate) fn cells(&self) -> impl Iterator<Item = ((u32, u32), &Cell)> {
        self.cells.iter().map(|(key, cell)| (place_of(*key), cell))
    }

    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    /// The tile without the cells at places `drop` picks (the same tile if
    /// it picks none).
    pub(crate) fn without(self: Arc<Tile>, drop: impl Fn(u32, u32) -> bool) -> Arc<Tile> {
        let dropped = |key: u32| {
            let (row, column) = place_of(key);
            drop(row, column)
        };
        if !self.cells.iter().any(|(key, _)| dropped(*key)) {
            return self;
        }
        let cells = self
            .cells
            .iter()
            .filter(|(key, _)| !dropped(*key))
            .cloned()
            .collect();
        Arc::new(Tile { cells })
    }

    /// The tile holding `old`'s cells with `edits` applied (a later edit of
    /// the same place wins). Moves `old`'s cells when nothing else holds
    /// it, and costs one pass over both.
    pub(crate) fn merged(old: Option<Arc<Tile>>, edits: Vec<((u32, u32), Cell)>) -> Tile {
        let Some(old) = old else {
            return Tile::from_cells(edits);
        };
        let old = Arc::try_unwrap(old)
            .map(|t| t.cells)
            .unwrap_or_else(|shared| shared.cells.clone());
        let edits = Tile::from_cells(edits).cells;
        if old
            .last()
            .is_none_or(|last| edits.first().is_some_and(|e| e.0 > last.0))
        {
            // Edits after every old cell: the usual case of a sheet filled
            // row by row.
            let mut cells = old;
            cells.extend(edits);
            return Tile { cells };
        }
        let mut cells = Vec::with_capacity(old.len() + edits.len());
        let mut old = old.into_iter().peekable();
        let mut edits = edits.into_iter().peekable();
        loop {
            let take_old = match (old.peek(), edits.peek()) {
                (Some(o), Some(e)) => o.0 < e.0,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_old { old.next() } else { edits.next() };
            if let Some(cell) = next {
                if !take_old && old.peek().is_some_and(|o| o.0 == cell.0) {
                    old.next(); // replaced by the edit
                }
                cells.push(cell);
            }
        }
        Tile { cells }
    }

    /// The tile in its envelope (version 2).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(10 + self.cells.len() * 8);
        varint(&mut body, self.cells.len() as u64);
        let mut scratch = String::new();
        let mut next = 0u64;
        for (key, cell) in &self.cells {
            varint(&mut body, u64::from(*key) - next);
            next = u64::from(*key) + 1;
            put_cell(&mut body, Some(cell), &mut scratch);
        }
        seal(TILE_MAGIC, &body)
    }

    /// What [`encode`](Tile::encode) writes of a tile of `cells` cells
    /// whose encoding but for their count is `body` (see [`TileBody`]).
    pub(crate) fn seal_body(cells: u32, body: &[u8]) -> Vec<u8> {
        seal(TILE_MAGIC, &counted(cells, body))
    }

    /// The cells of a [`TileBody`], by place within the tile.
    pub(crate) fn cells_of_body(
        cells: u32,
        body: &[u8],
    ) -> Result<impl Iterator<Item = ((u32, u32), Cell)>, String> {
        let tile = Tile::decode_body(&counted(cells, body))?;
        Ok(tile
            .cells
            .into_iter()
            .map(|(key, cell)| (place_of(key), cell)))
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Tile, String> {
        match unseal(TILE_MAGIC, "tile", bytes)? {
            Body::Current(body) => Tile::decode_body(&body),
            Body::Version1(body) => {
                let tile: Tile = from_postcard("tile", body)?;
                if tile.cells.windows(2).any(|w| w[0].0 >= w[1].0) {
                    return Err("its cells are out of order".into());
                }
                Ok(tile)
            }
        }
    }

    fn decode_body(body: &[u8]) -> Result<Tile, String> {
        let mut reader = Reader::new(body);
        let count = reader.varint()?;
        // Each cell takes at least two bytes: a larger count is damage.
        let count = usize::try_from(count)
            .ok()
            .filter(|&c| c <= body.len() / 2)
            .ok_or_else(|| format!("it claims {count} cells in {} bytes", body.len()))?;
        let mut cells = Vec::with_capacity(count);
        let mut next = 0u64;
        for _ in 0..count {
            let key = next
                .checked_add(reader.varint()?)
                .and_then(|k| u32::try_from(k).ok())
                .ok_or("a cell's place in it is out of the tile")?;
            let cell = reader.cell()?.ok_or("it holds a gap")?;
            cells.push((key, cell));
            next = u64::from(key) + 1;
        }
        if !reader.is_empty() {
            return Err("bytes follow the tile's cells".into());
        }
        Ok(Tile { cells })
    }
}

/// A tile's body: its count of `cells`, then `body`, their encoding.
fn counted(cells: u32, body: &[u8]) -> Vec<u8> {
    let mut whole = Vec::with_capacity(5 + body.len());
    varint(&mut whole, u64::from(cells));
    whole.extend_from_slice(body);
    whole
}

/// A tile's encoding but for its count of cells, written cell by cell
/// from cells already in the compact encoding (a block entry's), in
/// increasing places: a tile made without making its cells.
#[derive(Debug, Default)]
pub(crate) struct TileBody {
    pub(crate) body: Vec<u8>,
    pub(crate) cells: u32,
    /// The key after the last cell's.
    next: u64,
}

impl TileBody {
    /// Appends the cell `raw` (its compact encoding) at a place within the
    /// tile; `false` (nothing appended) if the place is not after the last
    /// cell's.
    pub(crate) fn push(&mut self, (row, column): (u32, u32), raw: &[u8]) -> bool {
        let key = u64::from(local_key(row, column));
        if key < self.next {
            return false;
        }
        varint(&mut self.body, key - self.next);
        self.body.extend_from_slice(raw);
        self.cells += 1;
        self.next = key + 1;
        true
    }

    /// Its cells in order: each one's place and bytes.
    fn cells(&self) -> BodyCells<'_> {
        BodyCells {
            reader: Reader::new(&self.body),
            left: self.cells,
            next: 0,
        }
    }

    /// Keeps the cells at the places `keep` picks, as they are.
    pub(crate) fn retain(&mut self, keep: impl Fn((u32, u32)) -> bool) -> Result<(), String> {
        let mut kept = TileBody::default();
        for cell in self.cells() {
            let (place, raw) = cell?;
            if keep(place) {
                kept.push(place, raw);
            }
        }
        *self = kept;
        Ok(())
    }

    /// One body of the cells of `layers`, each layer's cells later than
    /// the layers' before it: at a place held by several, the last layer's
    /// cell. The cells stay bytes; what is made is a cursor per layer.
    pub(crate) fn merged(layers: &[TileBody]) -> Result<TileBody, String> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut cursors: Vec<BodyCells<'_>> = layers.iter().map(TileBody::cells).collect();
        // The next cell of each layer, smallest place first and, at one
        // place, the latest layer first.
        let mut heads = BinaryHeap::new();
        let mut raws: Vec<&[u8]> = vec![&[]; layers.len()];
        for (layer, cursor) in cursors.iter_mut().enumerate() {
            if let Some(cell) = cursor.next() {
                let (place, raw) = cell?;
                raws[layer] = raw;
                heads.push(Reverse((place, Reverse(layer))));
            }
        }
        let mut merged = TileBody::default();
        let mut last = None;
        while let Some(Reverse((place, Reverse(layer)))) = heads.pop() {
            if last != Some(place) {
                merged.push(place, raws[layer]);
                last = Some(place);
            }
            if let Some(cell) = cursors[layer].next() {
                let (place, raw) = cell?;
                raws[layer] = raw;
                heads.push(Reverse((place, Reverse(layer))));
            }
        }
        Ok(merged)
    }
}

/// The cells of a [`TileBody`], in order.
struct BodyCells<'a> {
    reader: Reader<'a>,
    left: u32,
    next: u64,
}

impl<'a> Iterator for BodyCells<'a> {
    type Item = Result<((u32, u32), &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut step = || {
            let key = self
                .next
                .checked_add(self.reader.varint()?)
                .and_then(|k| u32::try_from(k).ok())
                .ok_or("a cell's place in it is out of the tile")?;
            self.next = u64::from(key) + 1;
            let raw = self.reader.cell_bytes()?.ok_or("it holds a gap")?;
            Ok((place_of(key), raw))
        };
        let cell = step();
        if cell.is_err() {
            self.left = 0;
        }
        Some(cell)
    }
}

/// Where one tile of a snapshot is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TileRef {
    pub(crate) tile_row: u32,
    pub(crate) tile_column: u32,
    /// The snapshot directory holding the tile blob: this snapshot's, or an
    /// earlier one's when the tile has not changed since.
    pub(crate) snapshot: String,
    /// How many cells it holds.
    pub(crate) cells: u32,
}

/// The index of a snapshot: everything but the cells.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Index {
    /// One more than the largest row holding a cell.
    pub(crate) rows: u64,
    /// One more than the largest column holding a cell.
    pub(crate) columns: u64,
    pub(crate) tile_rows: u32,
    pub(crate) tile_columns: u32,
    /// Sorted by (tile row, tile column); tiles without cells are left out.
    pub(crate) tiles: Vec<TileRef>,
}

impl Index {
    /// The index in its envelope (version 2: postcard under LZ4, where the
    /// snapshot ids its tiles repeat take little room).
    pub(crate) fn encode(&self) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        seal(
            INDEX_MAGIC,
            &postcard::to_allocvec(self).unwrap_or_default(),
        )
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Index, String> {
        let index: Index = match unseal(INDEX_MAGIC, "index", bytes)? {
            Body::Current(body) => from_postcard("index", &body)?,
            Body::Version1(body) => from_postcard("index", body)?,
        };
        if !(1..=1 << 16).contains(&index.tile_rows) || !(1..=1 << 16).contains(&index.tile_columns)
        {
            return Err(format!(
                "its tiles are {}x{}; tiles are 1 to 65536 cells a side",
                index.tile_rows, index.tile_columns
            ));
        }
        let key = |t: &TileRef| (t.tile_row, t.tile_column);
        if index.tiles.windows(2).any(|w| key(&w[0]) >= key(&w[1])) {
            return Err("its tiles are out of order".into());
        }
        Ok(index)
    }

    /// The tile at a tile position, if it holds any cell.
    pub(crate) fn tile(&self, tile_row: u32, tile_column: u32) -> Option<&TileRef> {
        self.tiles
            .binary_search_by_key(&(tile_row, tile_column), |t| (t.tile_row, t.tile_column))
            .ok()
            .map(|i| &self.tiles[i])
    }
}

/// The blob name of a tile inside its snapshot directory.
pub(crate) fn tile_name(tile_row: u32, tile_column: u32) -> String {
    format!("t{tile_row}-{tile_column}")
}

/// The blob name of a snapshot's index inside its directory.
pub const INDEX_NAME: &str = "index";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{CellValue, ErrorValue};

    fn sample() -> Tile {
        Tile::from_cells([
            ((3, 1), Cell::new(CellValue::Number(1.0))),
            (
                (0, 2),
                Cell::new(CellValue::Text("x".into())).with_format("@"),
            ),
            ((3, 1), Cell::new(CellValue::Number(2.0))),
        ])
    }

    #[test]
    fn tiles_round_trip_and_the_later_of_two_cells_wins() {
        let tile = sample();
        assert_eq!(tile.len(), 2);
        assert_eq!(tile.get(3, 1), Some(&Cell::new(CellValue::Number(2.0))));
        assert_eq!(Tile::decode(&tile.encode()), Ok(tile));
    }

    proptest::proptest! {
        #[test]
        fn tiles_round_trip(
            cells in proptest::collection::vec(
                (0u32..70_000, 0u8..5, proptest::num::f64::ANY, ".{0,20}", 0usize..12,
                 proptest::option::of(".{0,10}")),
                0..60,
            )
        ) {
            let tile = Tile::from_cells(cells.into_iter().map(|(key, kind, number, text, error, format)| {
                let value = match kind {
                    0 => CellValue::Empty,
                    1 => CellValue::Text(text),
                    2 => CellValue::Number(number),
                    3 => CellValue::Boolean(number > 0.0),
                    _ => CellValue::Error(ErrorValue::ALL[error]),
                };
                ((key >> 8, key & 0xFF), Cell { value, format })
            }));
            let encoded = tile.encode();
            proptest::prop_assert_eq!(&encoded[..5], b"ISTL\x02");
            // NaN is not equal to itself; compare the bytes of a round trip.
            let decoded = Tile::decode(&encoded).unwrap();
            proptest::prop_assert_eq!(decoded.len(), tile.len());
            proptest::prop_assert_eq!(decoded.encode(), encoded);
            // Version 1 tiles (postcard) still read.
            let old = seal_version_1(TILE_MAGIC, &tile);
            proptest::prop_assert_eq!(Tile::decode(&old).unwrap().encode(), tile.encode());
        }
    }

    #[test]
    fn merging_edits_into_a_tile_matches_building_it_whole() {
        let n = |v: f64| Cell::new(CellValue::Number(v));
        let old = Tile::from_cells([((0, 1), n(1.0)), ((2, 0), n(2.0)), ((5, 5), n(3.0))]);
        let cases: Vec<Vec<((u32, u32), Cell)>> = vec![
            vec![],
            vec![((6, 0), n(9.0)), ((7, 1), n(8.0))],
            vec![((2, 0), n(7.0)), ((0, 0), n(6.0)), ((9, 9), n(5.0))],
            vec![((5, 5), n(4.0)), ((5, 5), n(4.5)), ((1, 1), n(0.5))],
        ];
        for edits in cases {
            let whole = Tile::from_cells(
                old.cells()
                    .map(|(k, c)| (k, c.clone()))
                    .chain(edits.iter().cloned()),
            );
            let shared = Arc::new(old.clone());
            let _keep = shared.clone(); // forces the cloning path
            assert_eq!(Tile::merged(Some(shared), edits.clone()), whole);
            assert_eq!(
                Tile::merged(Some(Arc::new(old.clone())), edits.clone()),
                whole
            );
            assert_eq!(Tile::merged(None, edits.clone()), Tile::from_cells(edits));
        }
    }

    #[test]
    fn damaged_tiles_and_indexes_are_errors() {
        let bytes = sample().encode();
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert!(Tile::decode(&damaged).is_err(), "flip at {at}");
        }
        assert!(Tile::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(Tile::decode(b"").is_err());
        let index = Index {
            rows: 10,
            columns: 10,
            tile_rows: 100,
            tile_columns: 100,
            tiles: vec![],
        };
        let bytes = index.encode();
        assert_eq!(Index::decode(&bytes), Ok(index.clone()));
        assert!(
            Index::decode(&sample().encode())
                .unwrap_err()
                .contains("not a snapshot index")
        );
        let old = seal_version_1(INDEX_MAGIC, &index);
        assert_eq!(
            Index::decode(&old),
            Ok(index.clone()),
            "version 1 still reads"
        );
        let mut newer = bytes.clone();
        newer[4] = 3;
        assert!(Index::decode(&newer).unwrap_err().contains("version 3"));
    }
}
