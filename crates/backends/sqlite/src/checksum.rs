//! The CRC-32C of every stored row: entries, logs' bounds and blobs. SQLite
//! checks its pages' structure, not the values in them, so a flipped bit in
//! a payload would read back as other data; with these checksums it reads
//! back as a corruption error naming the log and id, or the blob.

use infinisheet_event_log::EntryMetadata;

/// Feeds values into a CRC-32C, each with its length, so that moving bytes
/// from one value to the next changes the checksum.
struct Crc(u32);

impl Crc {
    fn new(tag: u8) -> Self {
        Crc(crc32c::crc32c(&[tag]))
    }

    fn int(mut self, value: i64) -> Self {
        self.0 = crc32c::crc32c_append(self.0, &value.to_le_bytes());
        self
    }

    fn bytes(self, value: &[u8]) -> Self {
        let mut crc = self.int(value.len() as i64);
        crc.0 = crc32c::crc32c_append(crc.0, value);
        crc
    }

    fn finish(self) -> i64 {
        i64::from(self.0)
    }
}

/// The checksum of entry `seq` of log `log`: its fixed fields and the
/// lengths of the rest in one run of bytes, then the payload and the texts
/// (two CRC calls for an entry without metadata: this runs for every entry
/// a query reads).
pub(crate) fn entry(log: i64, seq: i64, payload: &[u8], metadata: &EntryMetadata) -> i64 {
    let texts = [
        metadata.snapshot.as_deref(),
        metadata.history.as_deref(),
        metadata.pending.as_deref(),
    ];
    let mut head = [0u8; 49];
    head[0] = 1;
    head[1..9].copy_from_slice(&log.to_le_bytes());
    head[9..17].copy_from_slice(&seq.to_le_bytes());
    head[17..25].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    for (i, text) in texts.iter().enumerate() {
        let len = text.map_or(u64::MAX, |t| t.len() as u64);
        head[25 + 8 * i..33 + 8 * i].copy_from_slice(&len.to_le_bytes());
    }
    let mut crc = crc32c::crc32c_append(crc32c::crc32c(&head), payload);
    for text in texts.into_iter().flatten() {
        crc = crc32c::crc32c_append(crc, text.as_bytes());
    }
    i64::from(crc)
}

/// The checksum of a log's row: its id, name and bounds.
pub(crate) fn log(id: i64, name: &str, start: i64, end: i64) -> i64 {
    Crc::new(2)
        .int(id)
        .bytes(name.as_bytes())
        .int(start)
        .int(end)
        .finish()
}

/// The checksum of the append token of the batch at `seq` of log `log`.
pub(crate) fn token(log: i64, seq: i64, token: &[u8], count: i64) -> i64 {
    Crc::new(5)
        .int(log)
        .int(seq)
        .bytes(token)
        .int(count)
        .finish()
}

/// The checksum of a blob store's row: its id and name.
pub(crate) fn store(id: i64, name: &str) -> i64 {
    Crc::new(4).int(id).bytes(name.as_bytes()).finish()
}

/// The checksum of the blob at `path` in blob store `store`.
pub(crate) fn blob(store: i64, path: &str, content: &[u8]) -> i64 {
    Crc::new(3)
        .int(store)
        .bytes(path.as_bytes())
        .bytes(content)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_counts() {
        let meta = EntryMetadata::default();
        let base = entry(1, 2, b"ab", &meta);
        assert_ne!(base, entry(2, 2, b"ab", &meta));
        assert_ne!(base, entry(1, 3, b"ab", &meta));
        assert_ne!(base, entry(1, 2, b"ac", &meta));
        let snap = EntryMetadata {
            snapshot: Some(String::new()),
            ..EntryMetadata::default()
        };
        assert_ne!(base, entry(1, 2, b"ab", &snap));
        assert_ne!(log(1, "a", 0, 5), log(1, "a", 0, 4));
        assert_ne!(blob(1, "a/b", b"x"), blob(1, "a/c", b"x"));
        assert_ne!(token(1, 2, b"t", 3), token(1, 2, b"t", 4));
        assert_ne!(token(1, 2, b"t", 3), token(1, 3, b"t", 3));
    }
}
