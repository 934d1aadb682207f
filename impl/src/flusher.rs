//! One flush: the disk side of the memory-to-disk handoff.
//!
//! The order is the whole point: append the records to the segment, fsync, record the sync (a
//! ghost for the monitor), and only then report the flush to the node, which then moves the
//! records out of memory and announces `Flushed`. The seeded bug `FlushNotifyBeforeFsync`
//! reports before the fsync.

use std::io;

use aurora_redo_model::types::{Lsn, Record};

use crate::segment::Segment;

/// Persists `records` (a contiguous run ending at the returned LSN) and reports it.
///
/// - `alive` is asked just before the fsync: a node that crashed meanwhile never syncs (its
///   written bytes are lost with the page cache), and nothing more is reported.
/// - `synced(upto)` is called once the fsync has returned (ghost).
/// - `done(upto)` tells the node; after `synced` unless `notify_first` (the seeded bug).
///
/// Returns `Ok(None)` if the node died before the sync, `Ok(Some(upto))` once synced.
pub fn persist(
    segment: &Segment,
    records: &[Record],
    notify_first: bool,
    alive: impl Fn() -> bool,
    synced: impl FnOnce(Lsn),
    done: impl FnOnce(Lsn),
) -> io::Result<Option<Lsn>> {
    let Some(upto) = records.last().map(|r| r.lsn) else {
        return Ok(None);
    };
    segment.append(records)?;
    let mut done = Some(done);
    if notify_first {
        if let Some(d) = done.take() {
            d(upto);
        }
    }
    if !alive() {
        return Ok(None);
    }
    segment.sync()?;
    synced(upto);
    if let Some(d) = done.take() {
        d(upto);
    }
    Ok(Some(upto))
}
