//! What replies hold while their clients take them: one budget of bytes
//! for every reply at once (a cell read, a storage reply, an event), each
//! share held until its client has taken the bytes or gone, so a client
//! that reads slowly or not at all holds only its share; and each client
//! address's share of the connections and event streams.

use axum::body::Body;
use bytes::Bytes;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The largest reply that takes nothing from the budget.
const FREE: usize = 64 << 10;

/// The budget, in KiB.
pub(super) struct Replies {
    budget: Arc<Semaphore>,
    total_kib: u32,
}

impl Replies {
    /// A budget of `bytes`.
    pub(super) fn new(bytes: usize) -> Self {
        let total_kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        Replies {
            budget: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// The whole budget, in bytes.
    pub(super) fn total(&self) -> usize {
        self.total_kib as usize * 1024
    }

    /// The KiB a reply of `bytes` takes from the budget: none for a small
    /// one (what those hold is bounded by the connections and streams a
    /// server takes), so a budget held by slow clients of large replies
    /// never refuses the small ones.
    fn kib(&self, bytes: usize) -> u32 {
        if bytes <= FREE {
            return 0;
        }
        u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .min(self.total_kib)
    }

    /// A share for a reply of `bytes` now, or `None` while the budget is
    /// held by others.
    pub(super) fn try_share(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        self.budget
            .clone()
            .try_acquire_many_owned(self.kib(bytes))
            .ok()
    }

    /// Makes `share` cover a reply of `bytes` (more taken now if there is
    /// some); whether it does.
    pub(super) fn cover(&self, share: &mut OwnedSemaphorePermit, bytes: usize) -> bool {
        let need = self.kib(bytes) as usize;
        let have = share.num_permits();
        if have >= need {
            return true;
        }
        // Grown by doubling, so a reply built piece by piece asks rarely.
        let want = need.max(have * 2).min(self.total_kib as usize);
        let more = u32::try_from(want - have).unwrap_or(u32::MAX);
        match self.budget.clone().try_acquire_many_owned(more) {
            Ok(more) => {
                share.merge(more);
                true
            }
            Err(_) => false,
        }
    }

    /// Gives back the part of `share` a reply of `bytes` does not need.
    pub(super) fn shrink(&self, share: &mut OwnedSemaphorePermit, bytes: usize) {
        let need = self.kib(bytes) as usize;
        if share.num_permits() > need {
            drop(share.split(share.num_permits() - need));
        }
    }

    /// A share for a reply of `bytes`, once there is one (a reply larger
    /// than the budget waits for all of it); `None` only if the budget
    /// was closed, which it never is.
    pub(super) async fn share(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        self.budget
            .clone()
            .acquire_many_owned(self.kib(bytes))
            .await
            .ok()
    }
}

/// `bytes` as a response body that holds `share` until the client has
/// taken them (or gone).
pub(super) fn body(bytes: Vec<u8>, share: OwnedSemaphorePermit) -> Body {
    enum State {
        Send(Bytes, OwnedSemaphorePermit),
        Hold(OwnedSemaphorePermit),
    }
    let stream = futures::stream::unfold(
        Some(State::Send(Bytes::from(bytes), share)),
        |state| async move {
            match state? {
                State::Send(bytes, share) => {
                    Some((Ok::<_, Infallible>(bytes), Some(State::Hold(share))))
                }
                // Asked for more: what was sent has left the server's
                // buffers, and the share goes.
                State::Hold(_share) => None,
            }
        },
    );
    Body::from_stream(stream)
}

/// How many of something (connections, event streams) each client
/// address holds, at most `most`.
pub(super) struct PerClient {
    most: usize,
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One of a client's slots, given back when dropped.
pub(super) struct ClientSlot {
    client: IpAddr,
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerClient {
    pub(super) fn new(most: usize) -> Self {
        PerClient {
            most,
            held: Arc::default(),
        }
    }

    /// The most each address may hold.
    pub(super) fn most(&self) -> usize {
        self.most
    }

    /// A slot for `client`, unless it holds its most already.
    pub(super) fn try_take(&self, client: IpAddr) -> Option<ClientSlot> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(client).or_insert(0);
        if *count >= self.most {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            client,
            held: self.held.clone(),
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.client);
            }
        }
    }
}

/// A reply's buffer that refuses to grow past `most` bytes, or, with a
/// budget, past what its share covers when no more is free (the writer
/// filling it then stops with an error), and says which.
pub(super) struct Capped<'a> {
    bytes: Vec<u8>,
    most: usize,
    /// It would have grown past `most`.
    pub(super) over: bool,
    /// The budget had no room for it.
    pub(super) busy: bool,
    budget: Option<(&'a Replies, OwnedSemaphorePermit)>,
}

impl<'a> Capped<'a> {
    /// A buffer of at most `most` bytes.
    pub(super) fn new(most: usize) -> Self {
        Capped {
            bytes: Vec::new(),
            most,
            over: false,
            busy: false,
            budget: None,
        }
    }

    /// A buffer of at most `most` bytes, growing `share` of `replies` as
    /// it grows.
    pub(super) fn budgeted(most: usize, replies: &'a Replies, share: OwnedSemaphorePermit) -> Self {
        Capped {
            budget: Some((replies, share)),
            ..Capped::new(most)
        }
    }

    /// What was written, and the share that covers it.
    pub(super) fn into_parts(self) -> (Vec<u8>, Option<OwnedSemaphorePermit>) {
        (self.bytes, self.budget.map(|(_, share)| share))
    }
}

impl std::io::Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let size = self.bytes.len() + buf.len();
        if size > self.most {
            self.over = true;
            return Err(std::io::Error::other("the reply is too large"));
        }
        if let Some((replies, share)) = &mut self.budget {
            // Room for what the buffer takes once it has grown (a Vec at
            // least doubles when it grows).
            let capacity = self.bytes.capacity();
            let held = if size > capacity {
                size.max(capacity.saturating_mul(2))
            } else {
                capacity
            };
            if !replies.cover(share, held) {
                self.busy = true;
                return Err(std::io::Error::other("no room for the reply"));
            }
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
