//! Every route against what a hostile or broken client can send: any
//! method, path, query, media type, origin and body (arbitrary bytes, and
//! valid bodies cut short). The server answers each with a status and
//! never panics; what it refuses changes nothing.

use super::{App, guard, routes};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use infinisheet::{Catalog, SheetOptions, Storage};
use proptest::prelude::*;
use std::time::Duration;
use tower::ServiceExt;

/// A server on a memory catalog holding sheet `s` (A1 = 42), with or
/// without tokens.
async fn app(tokens: bool) -> (axum::Router, Catalog) {
    let storage = Storage::open("memory:", "memory:")
        .await
        .expect("memory storage");
    let catalog = Catalog::new(storage);
    let sheet = catalog
        .create_sheet("s", SheetOptions::default())
        .await
        .expect("a sheet");
    sheet
        .open()
        .await
        .expect("it opens")
        .set("A1", 42.0)
        .await
        .expect("A1 is set");
    let (_, stop) = tokio::sync::watch::channel(false);
    let tokens = if tokens {
        guard::Tokens::new(Some("sesame".into()), Some("viewer".into()))
    } else {
        guard::Tokens::new(None, None)
    };
    let app = App::new(
        catalog.clone(),
        tokens.expect("valid tokens"),
        ([127, 0, 0, 1], 8080).into(),
        &[],
        false,
        super::Limits {
            open_sheets: 4,
            event_streams: 4,
            body: 1 << 20,
        },
        stop,
    );
    (routes::router(app, Duration::from_secs(60)), catalog)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

const PATHS: [&str; 10] = [
    "/api/sheets",
    "/api/cells",
    "/api/events",
    "/api/storage",
    "/",
    "/app.js",
    "/login",
    "/logout",
    "/api/nothing",
    "/api",
];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "OPTIONS"];

const MEDIA: [&str; 6] = [
    "application/json",
    "application/x-infinisheet-storage",
    "application/x-www-form-urlencoded",
    "text/plain",
    "multipart/form-data; boundary=x",
    "",
];

/// Bodies a client might send each route, whole, before they are cut or
/// damaged.
const BODIES: [&[u8]; 6] = [
    br#"{"B2": "7", "C3": "text"}"#,
    &[2, 1, b's', 2],
    &[0],
    b"token=sesame",
    &[3, 0, 5],
    br##"{"A1": "#N/A"}"##,
];

#[derive(Debug)]
struct Call {
    method: &'static str,
    path: &'static str,
    query: String,
    media: &'static str,
    origin: Option<&'static str>,
    token: Option<&'static str>,
    body: Vec<u8>,
}

fn calls() -> impl Strategy<Value = Call> {
    let query = prop_oneof![
        Just(String::new()),
        Just("sheet=s".to_owned()),
        Just("sheet=s&range=A1:B2&at=1".to_owned()),
        "[a-z=&%/A-Z0-9:.]{0,40}",
    ];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (0..BODIES.len(), any::<prop::sample::Index>()).prop_map(|(which, cut)| {
            let whole = BODIES[which];
            whole[..cut.index(whole.len() + 1)].to_vec()
        }),
    ];
    (
        0..METHODS.len(),
        0..PATHS.len(),
        query,
        0..MEDIA.len(),
        prop_oneof![
            Just(None),
            Just(Some("http://127.0.0.1:8080")),
            Just(Some("http://evil.example")),
            Just(Some("null")),
        ],
        prop_oneof![
            Just(None),
            Just(Some("sesame")),
            Just(Some("viewer")),
            Just(Some(""))
        ],
        body,
    )
        .prop_map(|(m, p, query, media, origin, token, body)| Call {
            method: METHODS[m],
            path: PATHS[p],
            query,
            media: MEDIA[media],
            origin,
            token,
            body,
        })
}

impl Call {
    fn request(&self) -> Request<Body> {
        let uri = if self.query.is_empty() {
            self.path.to_owned()
        } else {
            format!("{}?{}", self.path, self.query)
        };
        let mut request = Request::builder()
            .method(self.method)
            .uri(uri)
            .header("host", "127.0.0.1:8080");
        if !self.media.is_empty() {
            request = request.header("content-type", self.media);
        }
        if let Some(origin) = self.origin {
            request = request.header("origin", origin);
        }
        if let Some(token) = self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request
            .body(Body::from(self.body.clone()))
            .unwrap_or_default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever comes, an answer: never a panic, never a failure of the
    /// server's own (a 500 would be a bug here, on a memory catalog).
    #[test]
    fn every_route_answers_anything(call in calls(), tokens in any::<bool>()) {
        let runtime = runtime();
        let status = runtime.block_on(async {
            let (router, _) = app(tokens).await;
            router.oneshot(call.request()).await.map(|r| r.status())
        });
        let status = status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        prop_assert!(status != StatusCode::INTERNAL_SERVER_ERROR, "{call:?}: {status}");
    }
}

/// What the cross-site, tokenless and read-only calls above could not do
/// changed nothing: after a thousand of them against one catalog, sheet
/// `s` is there and A1 is 42, unless a call that was allowed to (the
/// server's own origin or none, the writer's token, the JSON type) set it.
#[test]
fn refused_calls_change_nothing() {
    let runtime = runtime();
    runtime.block_on(async {
        let (router, catalog) = app(true).await;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        for _ in 0..1000 {
            let call = calls()
                .new_tree(&mut runner)
                .map(|tree| proptest::strategy::ValueTree::current(&tree))
                .unwrap_or_else(|err| panic!("{err}"));
            let may_write = call.token == Some("sesame")
                && call.origin.is_none_or(|o| o == "http://127.0.0.1:8080")
                && call.method == "POST";
            if may_write {
                continue;
            }
            let _ = router.clone().oneshot(call.request()).await;
        }
        assert_eq!(catalog.sheets("").await.ok(), Some(vec!["s".to_owned()]));
        let cells = catalog.open_sheet("s").await.ok();
        let value = match cells {
            Some(sheet) => sheet.open().await.ok(),
            None => None,
        };
        let a1 = match value {
            Some(cells) => cells.get("A1").await.ok().flatten(),
            None => None,
        };
        assert_eq!(a1, Some(infinisheet::Cell::from(42.0)));
    });
}

/// Streams of one sheet share one tail, and a server following idle
/// sheets on an object store costs a listing a second however many
/// streams follow: counted on the in-memory store, in virtual time. An
/// edit from another process reaches every stream of its sheet within
/// a listing and a read or two.
#[test]
fn idle_streams_cost_a_listing_a_second_and_an_edit_reaches_every_one() {
    use futures::StreamExt;
    use infinisheet::engine::{Cell, CellValue};
    use infinisheet::object_store::memory::InMemory;
    use infinisheet::object_store::{CountingStore, ObjectStoreBlobStore};
    use infinisheet::{LogStore, ObjectStoreLogs};
    use std::sync::Arc;

    let catalog_on = |store: &CountingStore| {
        let logs: Arc<dyn LogStore> = Arc::new(ObjectStoreLogs::new(
            Arc::new(store.clone()),
            "logs".into(),
            "memory://logs",
        ));
        let tree = ObjectStoreBlobStore::new(Arc::new(store.clone()), "tree".into());
        Catalog::new(Storage::new(logs, Arc::new(tree), "memory://tree"))
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let store = CountingStore::new(Arc::new(InMemory::new()));
        let catalog = catalog_on(&store);
        for name in ["a", "b"] {
            catalog
                .create_sheet(name, SheetOptions::default())
                .await
                .expect("a sheet");
        }
        // Kept: a dropped sender is a stop.
        let (_stopper, stop) = tokio::sync::watch::channel(false);
        let app = App::new(
            catalog.clone(),
            guard::Tokens::new(None, None).expect("no tokens"),
            ([127, 0, 0, 1], 8080).into(),
            &[],
            false,
            super::Limits {
                open_sheets: 4,
                event_streams: 16,
                body: 1 << 20,
            },
            stop,
        );
        let router = routes::router(app, Duration::from_secs(3600));
        // Three streams on `a`, one on `b`; each sends what it reads.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String)>();
        for (i, sheet) in ["a", "a", "a", "b"].into_iter().enumerate() {
            let request = Request::builder()
                .uri(format!("/api/events?sheet={sheet}"))
                .header("host", "127.0.0.1:8080")
                .body(Body::empty())
                .expect("a request");
            let reply = router.clone().oneshot(request).await.expect("a reply");
            assert_eq!(reply.status(), StatusCode::OK);
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut body = reply.into_body().into_data_stream();
                while let Some(Ok(chunk)) = body.next().await {
                    let _ = tx.send((i, String::from_utf8_lossy(&chunk).into_owned()));
                }
            });
        }
        // Past the sheets' first active minute, an idle one.
        tokio::time::sleep(Duration::from_secs(60)).await;
        while rx.try_recv().is_ok() {}
        let before = store.counts();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let minute = store.counts().since(before);
        println!("<!-- serve, 4 streams on 2 idle sheets, a minute: {minute:?} -->");
        assert!(
            minute.total() <= 70,
            "an idle minute of four streams cost {minute:?}"
        );
        // Another process edits `a`: each of its three streams hears.
        let edited = tokio::time::Instant::now();
        let other = catalog_on(&store).open_sheet("a").await.expect("a");
        other
            .writer(false)
            .await
            .expect("a writer")
            .cells()
            .set_cell(0, 0, Cell::new(CellValue::Number(7.0)))
            .await
            .expect("an edit");
        let mut heard = std::collections::BTreeSet::new();
        while heard.len() < 3 {
            let (i, text) = rx.recv().await.expect("the streams go on");
            if text.contains("event: entries") {
                assert!(i < 3, "the edit of `a` reached `b`'s stream: {text}");
                heard.insert(i);
            }
        }
        let waited = edited.elapsed();
        assert!(waited <= Duration::from_millis(1600), "{waited:?}");
    });
}
