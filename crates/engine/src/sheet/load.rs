//! Loading and syncing a sheet: from its newest snapshot and the log after
//! it, checking its identity, absorbing pages and publishing contents.

use super::*;

impl Inner {
    pub(super) fn check_snapshot(&self, blob_id: &str) -> Result<(), LoadError> {
        check_snapshot(self.options.identity, blob_id)
    }

    pub(super) fn check_first(&self, first: &QueryValue) -> Result<(), LoadError> {
        check_first(
            self.options.identity,
            first.entries.first().map(|e| &e.payload[..]),
        )
    }

    /// Builds the content from the newest snapshot to the end of the log.
    pub(super) async fn load(&self) -> Result<Content, LoadError> {
        let first = self
            .log
            .query(
                QueryStart::Snapshot,
                QueryEnd::End,
                KnownSnapshot::NoSnapshot,
            )
            .await?;
        let snapshot = first
            .entries
            .first()
            .and_then(|e| e.metadata.snapshot.clone());
        let mut draft = match snapshot {
            Some(blob_id) => {
                self.check_snapshot(&blob_id)?;
                let value = SnapshotValue {
                    sequence_id: first.start,
                    blob_id,
                };
                let (base, tiles) = self.base_with_tiles(value).await?;
                let mut draft = Content::empty(first.start, Some(base));
                draft.tiles = Arc::new(tiles);
                draft
            }
            None if first.start > 0 => {
                return Err(LoadError::NoSnapshot { start: first.start });
            }
            None => {
                self.check_first(&first)?;
                Content::empty(0, None)
            }
        };
        let mut page = first;
        // The reply to the first query names the snapshot the query started
        // from; only a newer one matters.
        page.last_snapshot = None;
        loop {
            let complete = page.is_complete;
            self.absorb(&mut draft, page).await?;
            if complete {
                return Ok(draft);
            }
            page = self
                .log
                .query(QueryStart::Id(draft.end), QueryEnd::End, known(&draft))
                .await?;
        }
    }

    /// Adds a page of entries to `draft`, then switches to the newer
    /// snapshot the log reported if it lies within what the draft holds.
    pub(super) async fn absorb(
        &self,
        draft: &mut Content,
        page: QueryValue,
    ) -> Result<(), LoadError> {
        self.absorb_within(draft, page, None).await.map(|_| ())
    }

    /// [`absorb`](Inner::absorb), counting the cells set into `held` and
    /// stopping (`false`, the draft to be dropped) once they pass `limit`:
    /// entry by entry, as a page may hold an import's millions.
    async fn absorb_within(
        &self,
        draft: &mut Content,
        page: QueryValue,
        mut budget: Option<(u64, &mut u64)>,
    ) -> Result<bool, LoadError> {
        let arrived = !page.entries.is_empty();
        for (i, entry) in page.entries.iter().enumerate() {
            let weight = apply_entry(draft, page.start + i as u64, entry)?;
            if let Some((limit, held)) = &mut budget {
                **held += weight;
                if **held > *limit {
                    return Ok(false);
                }
            }
        }
        if let Some(newer) = page.last_snapshot {
            let held = draft.segment.start..=draft.end;
            if arrived && held.contains(&newer.sequence_id) && is_newer(draft, &newer) {
                self.check_snapshot(&newer.blob_id)?;
                let (base, tiles) = self.base_with_tiles(newer).await?;
                draft.fork(base, tiles);
                if let Some((_, held)) = budget {
                    *held = draft.segment.weight(draft.visible);
                }
            }
        }
        Ok(true)
    }

    pub(super) async fn sync(&self) -> Result<(), LoadError> {
        self.sync_within(None).await.map(|_| ())
    }

    /// [`sync`](Inner::sync), giving up (`false`, the content unchanged)
    /// once the content would hold more than `limit` cells set since its
    /// snapshot.
    pub(super) async fn sync_within(&self, limit: Option<u64>) -> Result<bool, LoadError> {
        let mut draft = (*self.current()).clone();
        let mut held = match limit {
            Some(_) => draft.segment.weight(draft.visible),
            None => 0,
        };
        if limit.is_some_and(|limit| held > limit) {
            return Ok(false);
        }
        loop {
            let page = match self
                .log
                .query(QueryStart::Id(draft.end), QueryEnd::End, known(&draft))
                .await
            {
                Ok(page) => page,
                // A bounded sync does not load the sheet again (which
                // reads every entry after the newest snapshot).
                Err(QueryError::Range(range)) if range.start > draft.end && limit.is_some() => {
                    return Ok(false);
                }
                Err(QueryError::Range(range)) if range.start > draft.end => {
                    // Truncated past what this sheet holds: start again from
                    // the newest snapshot.
                    let loaded = self.load().await?;
                    self.publish(loaded);
                    return Ok(true);
                }
                Err(err) => return Err(err.into()),
            };
            // A snapshot past everything held, named as entries arrive:
            // start again from it (its index, the viewport's tiles and the
            // entries after it), never reading the entries before it in —
            // an import's millions of cells, which its snapshot holds.
            if let Some(newer) = &page.last_snapshot
                && !page.entries.is_empty()
                && newer.sequence_id > draft.end
                && is_newer(&draft, newer)
            {
                if limit.is_some() {
                    return Ok(false);
                }
                let loaded = self.load().await?;
                self.publish(loaded);
                return Ok(true);
            }
            let complete = page.is_complete;
            if !self
                .absorb_within(&mut draft, page, limit.map(|limit| (limit, &mut held)))
                .await?
            {
                return Ok(false);
            }
            if complete {
                break;
            }
        }
        self.publish(draft);
        Ok(true)
    }

    /// Makes `draft` the content, in one step, keeping the tiles loaded
    /// meanwhile if it starts from the same snapshot.
    pub(super) fn publish(&self, mut draft: Content) {
        self.content.send_if_modified(|current| {
            if current.end == draft.end
                && Arc::ptr_eq(&current.segment, &draft.segment)
                && current.visible == draft.visible
            {
                return false; // nothing new
            }
            if current.same_base(draft.base.as_ref()) {
                draft.tiles = current.tiles.clone();
            }
            *current = Arc::new(draft);
            true
        });
    }
}

/// Fails unless the snapshot `blob_id` a log names carries the sheet's
/// `identity` (a sheet without one takes any snapshot).
pub(crate) fn check_snapshot(identity: Option<SheetId>, blob_id: &str) -> Result<(), LoadError> {
    let Some(expected) = identity else {
        return Ok(());
    };
    let (carried, found) = match snapshot::parse_snapshot_id(blob_id) {
        Some((_, Some(carried))) if carried == expected => return Ok(()),
        Some((_, Some(carried))) => (
            Some(carried),
            format!("it names snapshot {blob_id}, of sheet {carried}"),
        ),
        _ => (
            None,
            format!("it names snapshot {blob_id}, which carries no sheet's identity"),
        ),
    };
    Err(LoadError::WrongSheet {
        expected,
        carried,
        found,
    })
}

/// Fails unless a log whose first entry is `first` (`None`: an empty log)
/// begins with the sheet's `identity` (a sheet without one takes any log).
pub(crate) fn check_first(
    identity: Option<SheetId>,
    first: Option<&[u8]>,
) -> Result<(), LoadError> {
    let Some(expected) = identity else {
        return Ok(());
    };
    let (carried, found) = match first.map(SheetEntry::decode) {
        Some(Ok(SheetEntry::Identity { sheet })) if sheet == expected => return Ok(()),
        Some(Ok(SheetEntry::Identity { sheet })) => (
            Some(sheet),
            format!("its first entry is the identity of sheet {sheet}"),
        ),
        Some(_) => (
            None,
            "its first entry is not a sheet's identity (it was made without one)".to_owned(),
        ),
        None => (None, "it is empty".to_owned()),
    };
    Err(LoadError::WrongSheet {
        expected,
        carried,
        found,
    })
}

/// The snapshot a draft starts from, as the log wants to hear it.
pub(super) fn known(draft: &Content) -> KnownSnapshot {
    KnownSnapshot::from(draft.base.as_ref().map(|b| b.value.sequence_id))
}

pub(super) fn is_newer(draft: &Content, snapshot: &SnapshotValue) -> bool {
    draft
        .base
        .as_ref()
        .is_none_or(|b| snapshot.sequence_id > b.value.sequence_id)
}

pub(super) fn apply_entry(
    draft: &mut Content,
    seq: SequenceId,
    entry: &LogEntry,
) -> Result<u64, LoadError> {
    match SheetEntry::decode(&entry.payload) {
        Ok(SheetEntry::SetCellValueAndFormat {
            row,
            column,
            value,
            format,
        }) => {
            draft.apply_one(row, column, Cell { value, format });
            Ok(1)
        }
        Ok(SheetEntry::Block(block)) => {
            let weight = block.cells().len() as u64;
            draft.apply_block(Arc::new(block));
            Ok(weight)
        }
        Ok(SheetEntry::Clear { range }) => {
            draft.apply_clear(range);
            Ok(0)
        }
        // Checked against the sheet's own when the log is opened.
        Ok(SheetEntry::Identity { .. }) if seq == 0 => {
            draft.apply_mark();
            Ok(0)
        }
        Ok(SheetEntry::Identity { .. }) => Err(misplaced_identity(seq)),
        Err(source) => Err(LoadError::Entry { seq, source }),
    }
}

/// The error of an identity entry anywhere but first.
pub(crate) fn misplaced_identity(seq: SequenceId) -> LoadError {
    LoadError::Entry {
        seq,
        source: EntryError::Malformed("an identity is only ever the first entry".into()),
    }
}
