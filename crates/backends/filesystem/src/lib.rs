//! The filesystem backend of Infinisheet: [`FsEventLog`], a crash-safe
//! event log in segment files, and [`FsBlobStore`], the blob hierarchy as
//! real directories and files.
//!
//! The log appends checksummed frames to preallocated segment files and
//! syncs each before acknowledging it. It keeps nothing in memory per
//! entry: a checkpoint of its bounds, segment starts and metadata, written
//! every megabyte, lets an open replay only what follows it, and entries
//! are read from the segments through a sparse index. On open, a torn
//! final append is cut; any other damage is an error naming the file and
//! offset, on open or when the damaged part is read. A file lock makes it
//! safe for several processes on one machine.
//!
//! Every blob write is atomic (temporary file, `fdatasync`, rename, directory
//! `fsync`): a reader or a crash sees the old or the new blob, never a part.
//! Paths are walked with `openat` and `O_NOFOLLOW`, so a symbolic link
//! planted inside the store is never followed out of it. Log calls run
//! through `tokio::task::block_in_place` (or `spawn_blocking` on a
//! current-thread runtime) and blob calls on the blocking pool, so the
//! async runtime keeps running while the disk syncs, and concurrent blob
//! writes overlap (`infinisheet_event_log::raw::{blocking, pooled}`).
//!
//! Linux only: it relies on `openat`-family calls and `/proc` to recognise
//! writes abandoned by dead processes.
//!
//! # Layout
//!
//! `FsEventLog` — `log/frame.rs` (the
//! on-disk record format), `log/segment.rs` (segment files, a cursor
//! reading frames in large pieces, torn-tail detection),
//! `log/checkpoint.rs` (the checkpoint file), `log/state/` (the state and
//! its replay and catch-up in `mod.rs`; `open.rs` building it from the
//! checkpoint or every segment; `read.rs` reading entries through the
//! sparse index; `write.rs` frames, roll-overs, checkpoints); `FsBlobStore` —
//! `blob_store.rs` over `tree.rs` (`openat`-relative walks that never follow
//! links, iterative with one descriptor open) and `names.rs` (blob names as
//! file names, long ones encoded exactly); `error.rs` is the only place OS
//! errors are inspected.
//!
//! # Invariants
//!
//! * A filesystem log changes only by appending one checksummed frame (a
//!   batch is one frame) and syncing it before the call returns; in-memory
//!   state changes after that. A bad frame is a torn append only if it is in
//!   the last segment and no valid frame follows it; then it is zeroed, else
//!   opening fails naming file and offset. A segment is sealed (and the seal
//!   synced) before the next is created; a segment is created whole (magic,
//!   a begin frame naming its index and size, zeros; synced) under a
//!   temporary name and renamed into place, so no partial file ever has a
//!   segment's name. Every segment but the newest ends with a seal, and every
//!   segment is the size its begin frame records: a cut, a zeroed tail or an
//!   emptied segment is damage, not an end. Only segments holding no live entry,
//!   never the newest, are deleted by a truncate. (Segments of the first
//!   format, magic `infinisheet-log1`, have no begin frame and are still read;
//!   a newest one shorter than its magic after a sealed segment is a creation
//!   of that format that died, and is removed.) Replay on open accepts
//!   records about entries no remaining segment holds only if a later
//!   truncate record discards them (the truncate that deleted their segment).
//! * A filesystem log keeps nothing in memory per entry: its bounds, the
//!   metadata of entries that have any, each live segment's first id, and a
//!   sparse index (a point at least every 64 KiB) of the newest segment and
//!   of each older one read; payloads and tokens are read from the segments
//!   and every frame is checked as it is read. A checkpoint (`CHECKPOINT`:
//!   that state, the place in the newest segment it reaches, and the header
//!   of the frame before that place) is written after the frames it
//!   describes are durable, every `checkpoint_bytes` (1 MiB) and at each new
//!   segment, to a temporary file renamed over the old one, unsynced: it is
//!   a cache. An open replays only the frames after it, and falls back to
//!   replaying every segment when it is missing, damaged, names a segment
//!   that is gone, or its marked frame is not where it says (a stale
//!   checkpoint fits, and is replayed from). Damage in a segment older than
//!   the checkpoint is found when that segment is first read (its whole
//!   index is built then), not on open; `infinisheet check` reads it all.
//! * A filesystem blob write is temp file in `<root>/tmp`, fdatasync, rename
//!   into `<root>/blobs/...`, directory fsync: one for the writes into a
//!   directory that wait at once (group commit; a failed one covers none of
//!   them, and each then syncs itself). `tmp` is never listed; leftovers
//!   of dead processes are removed on open. A write over an empty directory
//!   removes only empty directories (`rmdir`), so a blob renamed into one
//!   meanwhile is never deleted; the write is then `WrongKind`.
//!
//! # Decisions
//!
//! * Filesystem log segments are 8 MiB, preallocated by writing zeros, so an
//!   append overwrites blocks the file already has and its sync does not grow
//!   the file: single durable appends measured 1.6x a raw write+fdatasync loop
//!   on a growing file. (`fallocate` was not tried.)
//! * The filesystem log takes an exclusive `flock` for every operation,
//!   queries included, and replays what other processes appended since its
//!   last call (one read when nothing changed).
//! * Opening a filesystem log costs the same at 10k and 10M entries (about
//!   1 ms and 3.5 MB in a fresh process, `cargo xtask bench -- growth`); the
//!   torn-tail check still reads the rest of the newest segment (up to 8 MiB,
//!   in 256 KiB pieces), so a nearly empty newest segment is the dearest
//!   case.
//! * Long blob names on the filesystem: Linux caps a file name at 255 bytes,
//!   while a valid name may take 400. Since 100 Unicode scalar values carry
//!   about 2,009 bits and a file-name byte (anything but NUL and `/`) about
//!   7.99, one number in base 254 fits any valid name in 252 bytes; a leading
//!   `0xFF` (never UTF-8) marks it. No sidecar file, so a write stays one
//!   rename. Object stores keep names as key parts; a part past 255 bytes
//!   (which `LocalFileSystem` cannot store) is split into parts of 240 bytes,
//!   each but the last marked `~L` (a `~` in a name is always encoded, so no
//!   name's part starts so), and a listing joins them again with one more
//!   LIST per level of such a name. A name ending in `:` has that `:`
//!   encoded: `LocalFileSystem`'s URLs read such a part as a directory.

mod blob_store;
mod dir_sync;
mod error;
mod log;
mod logs;
mod names;
mod tree;

pub use blob_store::{FsBlobDir, FsBlobStore};
pub use error::BACKEND;
pub use log::{FsEventLog, FsLogOptions, OpenLogError};
pub use logs::FileLogs;
