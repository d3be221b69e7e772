//! The service against what a hostile or broken client can send: any
//! bytes, any request cut short, requests that claim more than a call may
//! carry, and a read-only caller's writes. Each gets an error reply it can
//! read (never a panic), and nothing claimed is allocated before it is
//! checked.

use crate::server::{Permission, StorageService};
use crate::wire::{
    BlobOp, Capped, Entry, Known, LogOp, MAX_DEPTH, MAX_ENTRIES, Reply, Request, Start, WireError,
};
use infinisheet_event_log::LogEntry;
use infinisheet_memory::{MemoryBlobStore, MemoryLogs};
use proptest::prelude::*;
use std::sync::Arc;

fn service() -> StorageService {
    StorageService::new(
        Arc::new(MemoryLogs::new()),
        Arc::new(MemoryBlobStore::new()),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The reply to `request`, decoded as a client decodes it.
fn answer(
    service: &StorageService,
    request: &[u8],
    permission: Permission,
) -> Result<Reply, WireError> {
    let reply = runtime().block_on(service.handle(request, permission));
    postcard::from_bytes::<Result<Reply, WireError>>(&reply).expect("every reply can be read")
}

fn encode(request: &Request) -> Vec<u8> {
    postcard::to_allocvec(request).expect("a request encodes")
}

/// A request of each kind, with small fields.
fn requests() -> Vec<Request> {
    let log = |op| Request::Log {
        id: "a".to_owned(),
        op,
    };
    let blob = |op| Request::Blob {
        dir: Capped(vec!["d".to_owned()]),
        op,
    };
    vec![
        Request::Hello,
        Request::OpenLog {
            id: "a".to_owned(),
            create: true,
        },
        log(LogOp::Append {
            entries: Capped(vec![LogEntry::new("x").into(), LogEntry::new("yz").into()]),
            seq: 0,
            known: Known::NoSnapshot,
            token: Some([7; 16]),
        }),
        log(LogOp::Query {
            start: Start::First,
            end: None,
            known: Known::At(3),
        }),
        log(LogOp::Bounds),
        log(LogOp::Wait {
            end: 0,
            timeout_ms: 0,
        }),
        blob(BlobOp::Write {
            name: "b".to_owned(),
            content: bytes::Bytes::from_static(b"content"),
        }),
        blob(BlobOp::Read {
            name: "b".to_owned(),
        }),
        blob(BlobOp::List { continuation: None }),
        blob(BlobOp::RemoveAll),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes at all: a reply the client can read, never a panic.
    #[test]
    fn any_bytes_get_a_reply(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let service = service();
        let _ = answer(&service, &bytes, Permission::ReadWrite);
        let _ = answer(&service, &bytes, Permission::ReadOnly);
    }

    /// A valid request with bytes flipped: the same.
    #[test]
    fn damaged_requests_get_a_reply(
        which in 0..10usize,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let service = service();
        let mut bytes = encode(&requests()[which]);
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        let _ = answer(&service, &bytes, Permission::ReadWrite);
    }
}

/// Every request cut short at every byte is refused as unreadable (a
/// prefix is never taken for a whole call).
#[test]
fn truncated_requests_are_bad_requests() {
    let service = service();
    for request in requests() {
        let bytes = encode(&request);
        for cut in 0..bytes.len() {
            match answer(&service, &bytes[..cut], Permission::ReadWrite) {
                Err(WireError::BadRequest(_)) => {}
                other => panic!("{request:?} cut at {cut}: {other:?}"),
            }
        }
    }
}

/// An append that claims ten million entries in a few bytes is refused
/// by its count, before the entries are allocated; one past the cap the
/// same, whether the count is claimed or the items are there.
#[test]
fn appends_claiming_more_than_a_call_may_carry_are_refused() {
    let service = service();
    let open = encode(&Request::OpenLog {
        id: "a".to_owned(),
        create: true,
    });
    assert!(matches!(
        answer(&service, &open, Permission::ReadWrite),
        Ok(Reply::Log { .. })
    ));
    // Request::Log (2), id "a" (1, b'a'), LogOp::Append (0), then the
    // count as a varint: ten million, and no entries behind it.
    let mut claim = vec![2, 1, b'a', 0];
    let mut count = 10_000_000u32;
    while count >= 0x80 {
        claim.push(u8::try_from(count & 0x7f).unwrap_or(0) | 0x80);
        count >>= 7;
    }
    claim.push(u8::try_from(count).unwrap_or(0));
    // Claimed beyond the bytes there are, and so refused at the end of
    // the input; with the bytes there (4 per empty entry, the issue's
    // 40 MB), refused by the count before one entry is decoded.
    assert!(matches!(
        answer(&service, &claim, Permission::ReadWrite),
        Err(WireError::BadRequest(_))
    ));
    claim.extend(std::iter::repeat_n([0u8, 0, 0, 0], 10_000_000).flatten());
    match answer(&service, &claim, Permission::ReadWrite) {
        Err(WireError::BadRequest(message)) => {
            assert!(message.contains("100000 entries"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let over = Request::Log {
        id: "a".to_owned(),
        op: LogOp::Append {
            entries: Capped(
                (0..=MAX_ENTRIES)
                    .map(|_| Entry::from(LogEntry::new("")))
                    .collect(),
            ),
            seq: 0,
            known: Known::NotTracked,
            token: None,
        },
    };
    match answer(&service, &encode(&over), Permission::ReadWrite) {
        Err(WireError::BadRequest(message)) => assert!(message.contains("limits"), "{message}"),
        other => panic!("{other:?}"),
    }
    let deep = Request::Blob {
        dir: Capped(vec!["d".to_owned(); MAX_DEPTH + 1]),
        op: BlobOp::List { continuation: None },
    };
    assert!(matches!(
        answer(&service, &encode(&deep), Permission::ReadWrite),
        Err(WireError::BadRequest(_))
    ));
    // At the cap, the append lands.
    let at_cap = Request::Log {
        id: "a".to_owned(),
        op: LogOp::Append {
            entries: Capped(
                (0..MAX_ENTRIES)
                    .map(|_| Entry::from(LogEntry::new("")))
                    .collect(),
            ),
            seq: 0,
            known: Known::NotTracked,
            token: None,
        },
    };
    assert!(matches!(
        answer(&service, &encode(&at_cap), Permission::ReadWrite),
        Ok(Reply::Snapshot(None))
    ));
}

/// A read-only caller reads, lists and waits; every write is
/// `Forbidden` and changes nothing.
#[test]
fn read_only_callers_cannot_write() {
    let service = service();
    for request in requests() {
        let writes = request.writes();
        let reply = answer(&service, &encode(&request), Permission::ReadOnly);
        match reply {
            Err(WireError::Forbidden(_)) => assert!(writes, "{request:?}"),
            _ => assert!(!writes, "{request:?} got {reply:?}"),
        }
    }
    // Nothing was created: the log is not there for a writer either.
    let bounds = Request::Log {
        id: "a".to_owned(),
        op: LogOp::Bounds,
    };
    assert!(matches!(
        answer(&service, &encode(&bounds), Permission::ReadWrite),
        Err(WireError::NoLog { .. })
    ));
}
