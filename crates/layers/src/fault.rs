//! `Faults`: a hook that fails chosen calls, or calls at a rate, with a
//! retryable storage error.

use crate::{Call, Hook, Op};
use futures::future::BoxFuture;
use infinisheet_blob_store::StorageError;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Backend name in the errors this hook makes.
const BACKEND: &str = "fault-injection";

/// Where an injected fault strikes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FaultPoint {
    /// The call fails before it reaches the backend: nothing happened.
    #[default]
    Before,
    /// The call reaches the backend and completes, then its reply is lost:
    /// the change happened but the caller sees an error.
    After,
}

/// Fails calls with a retryable [`StorageError`]: the calls numbered in
/// [`fail_calls`](Faults::fail_calls), and any call with probability
/// [`rate`](Faults::rate). [`only`](Faults::only) restricts both to some
/// operations (calls of other operations are neither failed nor counted).
///
/// Clones share their counters and settings, so a test keeps one clone to
/// inspect or [`disarm`](Faults::disarm) while the layer holds another.
#[derive(Clone, Debug)]
pub struct Faults {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: Mutex<Config>,
    armed: AtomicBool,
    calls: AtomicU64,
    injected: AtomicU64,
}

#[derive(Debug)]
struct Config {
    rate: f64,
    ops: Option<BTreeSet<Op>>,
    nth: BTreeSet<u64>,
    point: FaultPoint,
    rng: fastrand::Rng,
}

impl Faults {
    /// A hook that fails nothing until configured.
    pub fn new() -> Self {
        Faults {
            shared: Arc::new(Shared {
                config: Mutex::new(Config {
                    rate: 0.0,
                    ops: None,
                    nth: BTreeSet::new(),
                    point: FaultPoint::Before,
                    rng: fastrand::Rng::with_seed(0),
                }),
                armed: AtomicBool::new(true),
                calls: AtomicU64::new(0),
                injected: AtomicU64::new(0),
            }),
        }
    }

    fn config(&self) -> std::sync::MutexGuard<'_, Config> {
        self.shared
            .config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Fails each counted call with probability `rate` (0.0 to 1.0), drawn
    /// from a generator seeded with `seed` so runs repeat.
    #[must_use]
    pub fn rate(self, rate: f64, seed: u64) -> Self {
        {
            let mut config = self.config();
            config.rate = rate.clamp(0.0, 1.0);
            config.rng = fastrand::Rng::with_seed(seed);
        }
        self
    }

    /// Fails the counted calls with these numbers (the first counted call is
    /// number 0).
    #[must_use]
    pub fn fail_calls(self, calls: impl IntoIterator<Item = u64>) -> Self {
        self.config().nth.extend(calls);
        self
    }

    /// Counts and fails only calls of these operations.
    #[must_use]
    pub fn only(self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.config().ops = Some(ops.into_iter().collect());
        self
    }

    /// Where faults strike; [`FaultPoint::Before`] unless set.
    #[must_use]
    pub fn at(self, point: FaultPoint) -> Self {
        self.config().point = point;
        self
    }

    /// Stops injecting faults (calls are still counted).
    pub fn disarm(&self) {
        self.shared.armed.store(false, Ordering::SeqCst);
    }

    /// Injects faults again after [`disarm`](Faults::disarm).
    pub fn arm(&self) {
        self.shared.armed.store(true, Ordering::SeqCst);
    }

    /// How many calls were counted.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::SeqCst)
    }

    /// How many faults were injected.
    pub fn injected(&self) -> u64 {
        self.shared.injected.load(Ordering::SeqCst)
    }

    /// Whether this call fails, and where.
    fn decide(&self, op: Op) -> Option<FaultPoint> {
        let mut config = self.config();
        if config.ops.as_ref().is_some_and(|ops| !ops.contains(&op)) {
            return None;
        }
        let number = self.shared.calls.fetch_add(1, Ordering::SeqCst);
        let chosen = config.nth.contains(&number);
        let drawn = config.rate > 0.0 && config.rng.f64() < config.rate;
        if (chosen || drawn) && self.shared.armed.load(Ordering::SeqCst) {
            self.shared.injected.fetch_add(1, Ordering::SeqCst);
            Some(config.point)
        } else {
            None
        }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Self::new()
    }
}

fn injected(op: Op, point: FaultPoint) -> StorageError {
    let when = match point {
        FaultPoint::Before => "before",
        FaultPoint::After => "after",
    };
    StorageError::retryable(BACKEND, format!("injected fault {when} {op}"))
}

impl Hook for Faults {
    fn around<'a, T, E>(
        &'a self,
        call: Call<'a>,
        inner: BoxFuture<'a, Result<T, E>>,
    ) -> BoxFuture<'a, Result<T, E>>
    where
        T: Send + 'a,
        E: From<StorageError> + fmt::Display + Send + 'a,
    {
        let fault = self.decide(call.op);
        Box::pin(async move {
            match fault {
                None => inner.await,
                Some(point @ FaultPoint::Before) => Err(injected(call.op, point).into()),
                Some(point @ FaultPoint::After) => {
                    // The call happens; only its reply is lost.
                    let _lost = inner.await;
                    Err(injected(call.op, point).into())
                }
            }
        })
    }
}
