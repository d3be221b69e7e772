//! `SqliteOptions`: durability, busy timeout and page sizes.

use infinisheet_blob_store::MAX_PAGE;
use std::time::Duration;

/// When an acknowledged write is on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = FULL`: every acknowledged append and metadata change is
    /// synced and survives a crash of the process or the machine.
    #[default]
    Full,
    /// `synchronous = NORMAL` (in WAL mode): acknowledged writes survive a
    /// crash of the process; a power loss may lose the most recent ones, never
    /// corrupt the database.
    Normal,
}

/// Settings of a [`SqliteDatabase`](crate::SqliteDatabase).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// When acknowledged writes reach the disk; [`Durability::Full`] unless
    /// set.
    pub durability: Durability,
    /// How long a call waits for another process's lock before failing with
    /// a retryable storage error; 5 seconds unless set.
    pub busy_timeout: Duration,
    /// The most entries one query returns; 10,000 unless set.
    pub query_page_entries: usize,
    /// A query stops adding entries once their payloads and metadata reach
    /// this many bytes (it always returns at least one); 16 MiB unless set.
    pub query_page_bytes: usize,
    /// The most names one listing page returns (at most 1,000); 1,000 unless
    /// set.
    pub list_page_names: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            query_page_entries: 10_000,
            query_page_bytes: 16 * 1024 * 1024,
            list_page_names: 1_000,
        }
    }
}

impl SqliteOptions {
    /// The same options with `durability`.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The same options with `busy_timeout`.
    #[must_use]
    pub fn busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }

    /// The same options with at most `entries` entries a query page (at
    /// least 1).
    #[must_use]
    pub fn query_page_entries(mut self, entries: usize) -> Self {
        self.query_page_entries = entries.max(1);
        self
    }

    /// The same options with at most `names` names a listing page (1 to
    /// 1,000).
    #[must_use]
    pub fn list_page_names(mut self, names: usize) -> Self {
        self.list_page_names = names.clamp(1, MAX_PAGE);
        self
    }

    /// The listing page size in force: `list_page_names` within 1 to
    /// 1,000 (the field is public, so a value set directly may lie
    /// outside; 0 listed the same page forever).
    pub(crate) fn listing_page(&self) -> usize {
        self.list_page_names.clamp(1, MAX_PAGE)
    }

    /// The most entries a query page holds in force: at least 1.
    pub(crate) fn query_entries(&self) -> usize {
        self.query_page_entries.max(1)
    }
}
