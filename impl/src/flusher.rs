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

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::disk::{Disk, SimDisk};
    use crate::segment::{decode, file_header, FILE_HEADER};
    use crate::sync::Arc;
    use aurora_redo_model::types::Epoch;

    fn recs(from: u64, to: u64) -> Vec<Record> {
        (from..=to)
            .map(|l| Record {
                lsn: Lsn(l),
                page: 0,
                value: l,
                epoch: Epoch::FIRST,
            })
            .collect()
    }

    /// A segment on a fresh simulated disk.
    fn fresh_segment() -> (Arc<SimDisk>, Segment) {
        let disk = Arc::new(SimDisk::new());
        let (segment, _) = Segment::open(disk.clone()).expect("open a fresh segment");
        (disk, segment)
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Step {
        Synced(Lsn),
        Done(Lsn),
    }

    /// Runs `persist` and returns its result and the callbacks it made, in order.
    fn run(
        segment: &Segment,
        records: &[Record],
        notify_first: bool,
        alive: bool,
    ) -> (Option<Lsn>, Vec<Step>) {
        let steps = RefCell::new(Vec::new());
        let result = persist(
            segment,
            records,
            notify_first,
            || alive,
            |l| steps.borrow_mut().push(Step::Synced(l)),
            |l| steps.borrow_mut().push(Step::Done(l)),
        )
        .expect("a simulated disk does not fail");
        (result, steps.into_inner())
    }

    #[test]
    fn a_flush_writes_syncs_and_only_then_reports() {
        let (disk, segment) = fresh_segment();
        let (upto, steps) = run(&segment, &recs(1, 3), false, true);
        assert_eq!(upto, Some(Lsn(3)));
        assert_eq!(steps, vec![Step::Synced(Lsn(3)), Step::Done(Lsn(3))]);
        let bytes = disk.read_all().expect("read the disk");
        assert_eq!(disk.synced_len(), bytes.len() as u64);
        assert_eq!(decode(&bytes).unwrap().records, recs(1, 3));
        // The next flush appends after it.
        assert_eq!(run(&segment, &recs(4, 4), false, true).0, Some(Lsn(4)));
        disk.crash();
        assert_eq!(
            decode(&disk.read_all().expect("read")).unwrap().records,
            recs(1, 4)
        );
    }

    #[test]
    fn a_node_that_died_before_the_fsync_syncs_and_reports_nothing() {
        let (disk, segment) = fresh_segment();
        let (upto, steps) = run(&segment, &recs(1, 2), false, false);
        assert_eq!(upto, None);
        assert_eq!(steps, vec![]);
        assert_eq!(
            disk.synced_len(),
            FILE_HEADER as u64,
            "only the file header"
        );
        disk.crash();
        assert_eq!(disk.read_all().expect("read"), file_header().to_vec());
    }

    #[test]
    fn an_empty_flush_does_nothing() {
        let (disk, segment) = fresh_segment();
        assert_eq!(run(&segment, &[], false, true), (None, vec![]));
        assert_eq!(disk.read_all().expect("read"), file_header().to_vec());
    }

    #[test]
    fn the_seeded_bug_reports_before_the_fsync() {
        let (_, segment) = fresh_segment();
        let (upto, steps) = run(&segment, &recs(1, 1), true, true);
        assert_eq!(upto, Some(Lsn(1)));
        assert_eq!(steps, vec![Step::Done(Lsn(1)), Step::Synced(Lsn(1))]);
        // Reported, and then the node dies before the fsync: the report was a lie.
        let (_, segment) = fresh_segment();
        assert_eq!(
            run(&segment, &recs(1, 1), true, false).1,
            vec![Step::Done(Lsn(1))]
        );
    }
}
