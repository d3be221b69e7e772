//! The randomized model test: random operations from 1–3 clients run against
//! the store and against the memory reference, every outcome compared.

use crate::report::LocalFuture;
use bytes::Bytes;
use infinisheet_blob_store::BlobDirExt;
use infinisheet_blob_store::{
    BlobDir, BlobName, BlobStore, DirError, EntryKind, ListError, ReadBlobError, RemoveBlobError,
    WriteBlobError,
};
use infinisheet_memory::MemoryBlobStore;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::future::Future;
use std::sync::Arc;

/// The names operations draw from: few, so operations collide.
const NAMES: [&str; 4] = ["a", "b", "a.b", "é"];

#[derive(Clone, Debug)]
enum Op {
    Write {
        client: usize,
        path: Vec<usize>,
        content: u8,
    },
    Read {
        client: usize,
        path: Vec<usize>,
    },
    Remove {
        client: usize,
        path: Vec<usize>,
    },
    List {
        client: usize,
        dir: Vec<usize>,
    },
    RemoveAll {
        client: usize,
        dir: Vec<usize>,
    },
}

/// An outcome, normalized so the store's and the reference's compare.
#[derive(Debug, PartialEq)]
enum Outcome {
    Content(Bytes),
    Done,
    NotFound(String),
    WrongKind(String, EntryKind),
    Listed(Vec<(String, EntryKind)>),
}

fn path(min: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..NAMES.len(), min..=3)
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0..3usize;
    prop_oneof![
        5 => (client.clone(), path(1), any::<u8>())
            .prop_map(|(client, path, content)| Op::Write { client, path, content }),
        3 => (client.clone(), path(1)).prop_map(|(client, path)| Op::Read { client, path }),
        2 => (client.clone(), path(1)).prop_map(|(client, path)| Op::Remove { client, path }),
        3 => (client.clone(), path(0)).prop_map(|(client, dir)| Op::List { client, dir }),
        1 => (client, path(0)).prop_map(|(client, dir)| Op::RemoveAll { client, dir }),
    ]
}

type Failure = String;

fn name(index: usize) -> BlobName {
    BlobName::new(NAMES[index]).unwrap_or_else(|err| panic!("model name: {err}"))
}

/// Opens the directories along `dirs`; a wrong-kind error on the way is an
/// outcome of the operation.
async fn walk(
    root: Arc<dyn BlobDir>,
    dirs: &[usize],
) -> Result<Result<Arc<dyn BlobDir>, Outcome>, Failure> {
    let mut dir = root;
    for &part in dirs {
        dir = match dir.dir(&name(part)).await {
            Ok(next) => next,
            Err(DirError::WrongKind { name, found }) => {
                return Ok(Err(Outcome::WrongKind(name.into_string(), found)));
            }
            Err(err) => return Err(err.to_string()),
        };
    }
    Ok(Ok(dir))
}

async fn apply(root: Arc<dyn BlobDir>, op: &Op) -> Result<Outcome, Failure> {
    let (dirs, leaf) = match op {
        Op::Write { path, .. } | Op::Read { path, .. } | Op::Remove { path, .. } => {
            (&path[..path.len() - 1], path.last().map(|&i| name(i)))
        }
        Op::List { dir, .. } | Op::RemoveAll { dir, .. } => (&dir[..], None),
    };
    let dir = match walk(root, dirs).await? {
        Ok(dir) => dir,
        Err(outcome) => return Ok(outcome),
    };
    let leaf = || {
        leaf.clone()
            .ok_or_else(|| "a blob operation without a name".to_owned())
    };
    Ok(match op {
        Op::Write { content, .. } => {
            let bytes = Bytes::from(vec![*content; usize::from(*content % 7)]);
            match dir.write_blob(&leaf()?, bytes).await {
                Ok(()) => Outcome::Done,
                Err(WriteBlobError::WrongKind { name, found }) => {
                    Outcome::WrongKind(name.into_string(), found)
                }
                Err(err) => return Err(err.to_string()),
            }
        }
        Op::Read { .. } => match dir.read_blob(&leaf()?).await {
            Ok(bytes) => Outcome::Content(bytes),
            Err(ReadBlobError::NotFound { name }) => Outcome::NotFound(name.into_string()),
            Err(ReadBlobError::WrongKind { name, found }) => {
                Outcome::WrongKind(name.into_string(), found)
            }
            Err(err) => return Err(err.to_string()),
        },
        Op::Remove { .. } => match dir.remove_blob(&leaf()?).await {
            Ok(()) => Outcome::Done,
            Err(RemoveBlobError::WrongKind { name, found }) => {
                Outcome::WrongKind(name.into_string(), found)
            }
            Err(err) => return Err(err.to_string()),
        },
        Op::List { .. } => match dir.list_all().await {
            Ok(listed) => {
                let mut listed: Vec<_> = listed
                    .into_iter()
                    .map(|e| (e.name.into_string(), e.kind))
                    .collect();
                listed.sort();
                Outcome::Listed(listed)
            }
            Err(ListError::NoContinuation) => {
                return Err("a fresh listing lost its continuation".into());
            }
            Err(err) => return Err(err.to_string()),
        },
        Op::RemoveAll { .. } => match dir.remove_all().await {
            Ok(()) => Outcome::Done,
            Err(err) => return Err(err.to_string()),
        },
    })
}

async fn run_ops(
    store: Arc<dyn BlobStore>,
    clients: usize,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let reference = MemoryBlobStore::with_page_size(3);
    let roots: Vec<_> = (0..clients).map(|_| store.root()).collect();
    for (step, op) in ops.iter().enumerate() {
        let client = match op {
            Op::Write { client, .. }
            | Op::Read { client, .. }
            | Op::Remove { client, .. }
            | Op::List { client, .. }
            | Op::RemoveAll { client, .. } => client % clients,
        };
        let want = apply(reference.root(), op)
            .await
            .map_err(|err| TestCaseError::fail(format!("the reference failed: {err}")))?;
        let got = apply(roots[client].clone(), op).await.map_err(|err| {
            TestCaseError::fail(format!("step {step}, {op:?}: storage error {err}"))
        })?;
        prop_assert_eq!(&got, &want, "step {}: {:?} by client {}", step, op, client);
    }
    Ok(())
}

/// Random sequences of up to 40 operations (writes, reads, removes,
/// listings, recursive removes, over paths up to three deep drawn from a few
/// names so they collide and change kind) from 1–3 clients, each with its own
/// root handle, run against a fresh store from `factory` and against
/// [`MemoryBlobStore`]; every outcome must be equal (listings compared as
/// sorted sets). 48 cases, shrunk to a minimal failing sequence on failure.
///
/// Synchronous: it runs its own runtime, one case at a time.
pub fn blob_store_matches_reference<F, Fut, S>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: BlobStore,
{
    matches_reference(&|| {
        let subject = factory();
        Box::pin(async move { Arc::new(subject.await) as Arc<dyn BlobStore> })
    });
}

/// The model test on stores from `factory`; not generic, so the model is
/// compiled once, here.
fn matches_reference<'a>(factory: &'a dyn Fn() -> LocalFuture<'a, Arc<dyn BlobStore>>) {
    let strategy = (1..=3usize, proptest::collection::vec(op(), 1..40));
    crate::report::run_model("the store", strategy, &|(clients, ops)| {
        let subject = factory();
        Box::pin(async move { run_ops(subject.await, clients, &ops).await })
    });
}
