//! The tracing layer emits a span per call, with the outcome.
//!
//! A binary of its own: `tracing` caches whether anyone listens at each
//! call site, and a test thread that reaches the layer's call sites first
//! with no subscriber (any other test through `Trace`) can store "no one"
//! over this test's scoped subscriber (tokio-rs/tracing#3611), which then
//! hears nothing. Under load that happened in the shared binary.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{KnownSnapshot, LogEntry};
use infinisheet_layers::{Layered, Trace};
use infinisheet_memory::MemoryEventLog;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_call_is_a_span_with_its_outcome() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let log = Layered::new(Trace::new("sheet-log"), MemoryEventLog::new());
    log.add_entry(LogEntry::new("a"), 0, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert!(
        log.add_entry(LogEntry::new("b"), 5, KnownSnapshot::NotTracked)
            .await
            .is_err()
    );

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "one outcome event per call:\n{text}");
    assert!(
        lines[0].contains("DEBUG") && lines[0].contains("op=\"append_at\""),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("label=\"sheet-log\"") && lines[0].contains("seq=0"));
    assert!(
        lines[1].contains("WARN") && lines[1].contains("seq=5"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("next free id is 1"), "{}", lines[1]);
}
