//! The snapshot's blobs in bytes: a tile (the cells of one rectangle) and
//! the index (counts, tile geometry, which blob holds each tile). Both sit
//! in an envelope: 4 bytes of magic, a version byte, the CRC-32C of the
//! body, then the body in postcard.

use crate::value::Cell;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const TILE_MAGIC: &[u8; 4] = b"ISTL";
const INDEX_MAGIC: &[u8; 4] = b"ISIX";
/// The format version of tiles and indexes this version writes and reads.
const VERSION: u8 = 1;
const HEADER: usize = 4 + 1 + 4;

fn seal<T: Serialize>(magic: &[u8; 4], body: &T) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(256);
    bytes.extend_from_slice(magic);
    bytes.push(VERSION);
    bytes.extend_from_slice(&[0; 4]);
    // Serializing plain data into a Vec cannot fail.
    let mut bytes = postcard::to_extend(body, bytes).unwrap_or_default();
    if bytes.len() >= HEADER {
        let crc = crc32c::crc32c(&bytes[HEADER..]);
        bytes[5..HEADER].copy_from_slice(&crc.to_le_bytes());
    }
    bytes
}

fn unseal<T: DeserializeOwned>(magic: &[u8; 4], what: &str, bytes: &[u8]) -> Result<T, String> {
    if bytes.len() < HEADER || &bytes[..4] != magic {
        return Err(format!("it is not a snapshot {what}"));
    }
    if bytes[4] != VERSION {
        return Err(format!(
            "it is a snapshot {what} of format version {}; this version reads {VERSION}",
            bytes[4]
        ));
    }
    let mut crc = [0; 4];
    crc.copy_from_slice(&bytes[5..HEADER]);
    if crc32c::crc32c(&bytes[HEADER..]) != u32::from_le_bytes(crc) {
        return Err("its checksum does not match its contents".into());
    }
    match postcard::take_from_bytes(&bytes[HEADER..]) {
        Ok((body, [])) => Ok(body),
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
    pub(crate) fn cells(&self) -> impl Iterator<Item = ((u32, u32), &Cell)> {
        self.cells
            .iter()
            .map(|(key, cell)| ((key >> 16, key & 0xFFFF), cell))
    }

    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        seal(TILE_MAGIC, self)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Tile, String> {
        let tile: Tile = unseal(TILE_MAGIC, "tile", bytes)?;
        if tile.cells.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err("its cells are out of order".into());
        }
        Ok(tile)
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
    pub(crate) fn encode(&self) -> Vec<u8> {
        seal(INDEX_MAGIC, self)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Index, String> {
        let index: Index = unseal(INDEX_MAGIC, "index", bytes)?;
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
    use crate::value::CellValue;

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
        assert_eq!(Index::decode(&bytes), Ok(index));
        assert!(
            Index::decode(&sample().encode())
                .unwrap_err()
                .contains("not a snapshot index")
        );
        let mut newer = bytes.clone();
        newer[4] = 2;
        assert!(Index::decode(&newer).unwrap_err().contains("version 2"));
    }
}
