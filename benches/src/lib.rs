//! Shared helpers for the Infinisheet benchmarks in `benches/benches/`.

use bytes::Bytes;
use infinisheet_event_log::LogEntry;

/// A log entry of `len` bytes, the size of a typical encoded cell edit when
/// `len` is 60.
pub fn entry_of(len: usize) -> LogEntry {
    LogEntry::new(Bytes::from(vec![0x5a; len]))
}
