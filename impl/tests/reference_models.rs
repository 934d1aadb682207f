//! Executable reference models of the implementation's components with crisp interfaces, and
//! property-based conformance of each component against its model: random operation sequences,
//! run on the component and on the model, compared after every operation.
//!
//! - [`Segment`] over a [`SimDisk`] (recovery, and reading back through its index): the model is
//!   the list of appended records, laid out as frames, plus the synced byte length and the set of
//!   flipped bytes. Operations: append a batch, sync, crash torn at *any* byte (every synced byte
//!   and an arbitrary prefix of the unsynced ones survive) then recover, reopen cleanly, flip a
//!   byte. After every recovery the recovered records and the damage report must be exactly what
//!   the model predicts; after every operation without a flipped byte, reading back all records,
//!   or a window of them, must return what the model laid out (1024 cases of up to 80
//!   operations; and 64 cases of up to 40 on a real file).
//! - [`RetainBuffer`]: the model is a `BTreeMap` and the discard rule (a record is retained
//!   until, and only until, the durable LSN reaches it; an applied record already durable is not
//!   retained). 1024 cases of up to 80 operations.
//! - [`QuorumTracker`] (every `k` of 1..=6) and [`SharedQuorum`]: the model is the per-node
//!   maximum, and the point is the k-th highest found by sorting (not the model crate's
//!   `quorum` functions, which the tracker itself calls). 1024 cases of up to 60 acks.
//!
//! Each comparison is also shown to catch a seeded bug (a disk whose fsync lies, an off-by-one
//! discard rule, a 3-of-6 tracker, a quorum keeping each node's latest report instead of its
//! highest).
#![cfg(not(any(loom, feature = "shuttle")))]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};

use aurora_redo_impl::disk::{Disk, FileDisk, SimDisk};
use aurora_redo_impl::retain::RetainBuffer;
use aurora_redo_impl::segment::{encode, file_header, Damage, Recovered, Segment, FILE_HEADER};
use aurora_redo_impl::sync::{lock, Arc, Mutex};
use aurora_redo_impl::tracker::QuorumTracker;
use aurora_redo_impl::watermark::{QuorumBug, SharedQuorum};
use aurora_redo_model::types::{Epoch, Lsn, NodeId, Record, STORAGE_NODES, WRITE_QUORUM};
use proptest::prelude::*;
use proptest::test_runner::{
    Config as RunnerConfig, FileFailurePersistence, RngAlgorithm, TestCaseError, TestError,
    TestRng, TestRunner,
};

/// A proptest configuration of `cases` cases; failing seeds are kept in
/// `reference_models.proptest-regressions` and replayed first.
fn cases(cases: u32) -> RunnerConfig {
    RunnerConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..RunnerConfig::default()
    }
}

/// Runs `test` on 256 cases drawn with a fixed seed and returns the failure it must find, shrunk.
fn expect_caught<S: Strategy>(
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> (String, S::Value) {
    let config = RunnerConfig {
        cases: 256,
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config, rng);
    match runner.run(&strategy, test) {
        Err(TestError::Fail(why, value)) => (why.message().to_string(), value),
        Err(TestError::Abort(why)) => panic!("the run aborted: {why}"),
        Ok(()) => panic!("the reference model did not catch the seeded bug in 256 cases"),
    }
}

/// Whether `small` is `big` with some elements left out (same order).
fn is_subsequence<T: PartialEq>(small: &[T], big: &[T]) -> bool {
    let mut rest = big.iter();
    small.iter().all(|x| rest.any(|y| y == x))
}

fn io_ok<T>(result: io::Result<T>) -> Result<T, TestCaseError> {
    result.map_err(|e| TestCaseError::fail(format!("I/O error: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Segment over a disk
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum SegOp {
    /// Appends a batch; per record: the LSN step from the previous record (1, or 2 for a hole),
    /// the page and the value (small or large, so frames differ in length).
    Append(Vec<(u64, u32, u64)>),
    Sync,
    /// Crashes keeping this many unsynced bytes, taken modulo `unsynced + 3` (so up to two bytes
    /// past the end, which the disk must clamp), then recovers.
    Crash(usize),
    /// Recovers from the disk as it is (a clean restart).
    Reopen,
    /// Flips the byte at this offset, modulo the file length (media corruption).
    Corrupt(usize),
}

fn seg_op() -> impl Strategy<Value = SegOp> {
    let value = prop_oneof![0u64..300, any::<u64>()];
    let page = prop_oneof![0u32..8, any::<u32>()];
    let record = (prop_oneof![4 => Just(1u64), 1 => Just(2u64)], page, value);
    prop_oneof![
        4 => prop::collection::vec(record, 1..=5).prop_map(SegOp::Append),
        2 => Just(SegOp::Sync),
        2 => any::<usize>().prop_map(SegOp::Crash),
        1 => Just(SegOp::Reopen),
        1 => any::<usize>().prop_map(SegOp::Corrupt),
    ]
}

/// One record's frame where the model lays it out.
#[derive(Clone, Copy, Debug)]
struct Frame {
    record: Record,
    offset: usize,
    len: usize,
}

impl Frame {
    fn end(&self) -> usize {
        self.offset + self.len
    }
}

/// The reference model of a segment file.
#[derive(Debug)]
struct SegmentModel {
    /// The records on disk, in append order, as consecutive frames after the file header (which
    /// opening the new segment wrote and synced).
    frames: Vec<Frame>,
    /// How many bytes are durable: made so by a sync, or by the repair of a recovery.
    synced: usize,
    /// Bytes flipped since the last recovery (a second flip restores the byte).
    flipped: BTreeSet<usize>,
    /// Every record ever appended, in order.
    appended: Vec<Record>,
    last_lsn: u64,
}

impl SegmentModel {
    fn new() -> SegmentModel {
        SegmentModel {
            frames: Vec::new(),
            synced: FILE_HEADER,
            flipped: BTreeSet::new(),
            appended: Vec::new(),
            last_lsn: 0,
        }
    }

    fn len(&self) -> usize {
        self.frames.last().map_or(FILE_HEADER, Frame::end)
    }

    fn lay_out(&mut self, records: &[Record]) {
        for &record in records {
            let len = encode(std::slice::from_ref(&record)).len();
            let offset = self.len();
            self.frames.push(Frame {
                record,
                offset,
                len,
            });
        }
    }

    fn append(&mut self, records: &[Record]) {
        self.lay_out(records);
        self.appended.extend_from_slice(records);
    }

    fn corrupt(&self, frame: &Frame) -> bool {
        self.flipped
            .range(frame.offset..frame.end())
            .next()
            .is_some()
    }

    /// The records the model holds durably: synced and not hit by a flipped byte.
    fn durable_records(&self) -> Vec<Record> {
        self.frames
            .iter()
            .filter(|f| f.end() <= self.synced && !self.corrupt(f))
            .map(|f| f.record)
            .collect()
    }

    /// Whether the first `cut` bytes end inside a frame.
    fn cut_inside_a_frame(&self, cut: usize) -> bool {
        cut > FILE_HEADER && !self.frames.iter().any(|f| f.end() == cut)
    }

    /// What recovery must report from a disk holding the first `cut` bytes of the layout: every
    /// whole frame not hit by a flip; each run of flipped frames followed by a good frame is one
    /// corrupt range; flipped frames at the end and a partial last frame form the torn tail.
    /// (This assumes no run of damaged bytes happens to hold a frame whose CRC checks: for a
    /// random 32-bit CRC, about one chance in four billion per candidate offset.)
    fn expected(&self, cut: usize) -> Recovered {
        let mut records = Vec::new();
        let mut damage = Vec::new();
        let mut bad_from: Option<usize> = None;
        let mut whole_end = FILE_HEADER;
        for frame in self.frames.iter().take_while(|f| f.end() <= cut) {
            whole_end = frame.end();
            if self.corrupt(frame) {
                bad_from.get_or_insert(frame.offset);
                continue;
            }
            if let Some(offset) = bad_from.take() {
                damage.push(Damage::Corrupt {
                    offset,
                    len: frame.offset - offset,
                });
            }
            records.push(frame.record);
        }
        let tail = bad_from.unwrap_or(whole_end);
        if cut > tail {
            damage.push(Damage::TornTail {
                offset: tail,
                len: cut - tail,
            });
        }
        Recovered {
            records,
            damage,
            ..Recovered::default()
        }
    }

    /// The repair recovery made after reading `recovered` from the first `cut` bytes: nothing
    /// without damage (the bytes past `cut` are lost all the same), a truncation for a torn tail
    /// alone, a rewrite of the valid records otherwise. Repairs are durable.
    fn recovered(&mut self, cut: usize, recovered: &Recovered) {
        match recovered.damage.as_slice() {
            [] => self.frames.retain(|f| f.end() <= cut),
            [Damage::TornTail { offset, .. }] => {
                let offset = *offset;
                self.frames.retain(|f| f.end() <= offset);
                self.synced = offset;
            }
            _ => {
                self.frames.clear();
                self.lay_out(&recovered.records);
                self.synced = self.len();
            }
        }
        self.flipped.clear();
    }
}

/// Recovers the segment on `disk` whose first `cut` model bytes survived, checks the recovery
/// against the model and updates the model.
fn recover(
    disk: &Arc<dyn Disk>,
    model: &mut SegmentModel,
    cut: usize,
) -> Result<Segment, TestCaseError> {
    let (_, rec) = io_ok(Segment::open(disk.clone()))?;
    let durable = model.durable_records();
    prop_assert!(
        is_subsequence(&durable, &rec.records),
        "a synced record was lost: synced {:?}, recovered {:?}",
        durable,
        rec.records
    );
    prop_assert!(
        is_subsequence(&rec.records, &model.appended),
        "recovered a record never appended, or out of order: {:?}",
        rec.records
    );
    if model.flipped.is_empty() {
        let on_disk: Vec<Record> = model.frames.iter().map(|f| f.record).collect();
        prop_assert!(
            on_disk.starts_with(&rec.records),
            "without corruption, recovery returns a prefix of the appended records: {:?} of {:?}",
            rec.records,
            on_disk
        );
    }
    if model.cut_inside_a_frame(cut) {
        let report = rec.report().unwrap_or_default();
        prop_assert!(
            report.contains("torn tail"),
            "bytes cut inside a frame, report {:?}",
            report
        );
    }
    let expected = model.expected(cut);
    prop_assert_eq!(&rec, &expected);
    model.recovered(cut, &rec);

    // The repair is complete and durable: opening again finds no damage and the same records.
    let (segment, again) = io_ok(Segment::open(disk.clone()))?;
    prop_assert_eq!(again.damage, vec![]);
    prop_assert_eq!(again.records, rec.records);
    Ok(segment)
}

/// Runs `ops` on a segment over `disk` and on the model; `flip` flips a byte of the disk.
fn check_segment(
    disk: Arc<dyn Disk>,
    flip: impl Fn(usize) -> io::Result<()>,
    ops: &[SegOp],
) -> Result<(), TestCaseError> {
    let mut model = SegmentModel::new();
    let mut segment = recover(&disk, &mut model, FILE_HEADER)?;
    for (step, op) in ops.iter().enumerate() {
        match op {
            SegOp::Append(batch) => {
                let records: Vec<Record> = batch
                    .iter()
                    .map(|&(gap, page, value)| {
                        model.last_lsn += gap;
                        Record {
                            lsn: Lsn(model.last_lsn),
                            page,
                            value,
                            epoch: Epoch::FIRST,
                        }
                    })
                    .collect();
                io_ok(segment.append(&records))?;
                model.append(&records);
            }
            SegOp::Sync => {
                io_ok(segment.sync())?;
                model.synced = model.len();
            }
            SegOp::Crash(keep) => {
                let unsynced = model.len() - model.synced;
                let keep = keep % (unsynced + 3);
                disk.crash_torn(keep);
                let cut = model.synced + keep.min(unsynced);
                segment = recover(&disk, &mut model, cut)?;
            }
            SegOp::Reopen => {
                let cut = model.len();
                segment = recover(&disk, &mut model, cut)?;
            }
            SegOp::Corrupt(at) => {
                // Bytes of the frames (a flipped header is a format error, tested apart).
                if model.len() > FILE_HEADER {
                    let offset = FILE_HEADER + at % (model.len() - FILE_HEADER);
                    io_ok(flip(offset))?;
                    if !model.flipped.remove(&offset) {
                        model.flipped.insert(offset);
                    }
                }
            }
        }
        // Reading back through the segment's index finds what the model laid out (a flipped
        // byte makes its frame unreadable until recovery cuts it out).
        if model.flipped.is_empty() {
            let mut on_disk: Vec<Record> = model.frames.iter().map(|f| f.record).collect();
            on_disk.sort();
            on_disk.dedup_by_key(|r| r.lsn);
            let all = io_ok(segment.read(Lsn(1), Lsn(u64::MAX)))?;
            prop_assert_eq!(&all, &on_disk, "read back after step {}", step);
            if let Some(mid) = on_disk.get(on_disk.len() / 2).map(|r| r.lsn) {
                let upto = Lsn(mid.0 + 2);
                let window: Vec<Record> = on_disk
                    .iter()
                    .filter(|r| r.lsn >= mid && r.lsn <= upto)
                    .copied()
                    .collect();
                prop_assert_eq!(io_ok(segment.read(mid, upto))?, window);
            }
        }
        let bytes = io_ok(disk.read_all())?;
        prop_assert_eq!(bytes.len(), model.len(), "file length after step {}", step);
        prop_assert_eq!(
            disk.synced_len(),
            model.synced as u64,
            "synced length after step {}",
            step
        );
    }
    Ok(())
}

fn check_segment_on_sim_disk(ops: &[SegOp]) -> Result<(), TestCaseError> {
    let sim = Arc::new(SimDisk::new());
    let disk: Arc<dyn Disk> = sim.clone();
    check_segment(
        disk,
        |offset| {
            sim.flip_byte(offset);
            Ok(())
        },
        ops,
    )
}

/// The same on a real file: `FileDisk` tears a crash with `set_len`.
fn check_segment_on_a_file(ops: &[SegOp]) -> Result<(), TestCaseError> {
    let dir = io_ok(tempfile::tempdir())?;
    let path = dir.path().join("s0.seg");
    let disk: Arc<dyn Disk> = Arc::new(io_ok(FileDisk::open(&path))?);
    check_segment(
        disk,
        |offset| {
            let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
            let mut byte = [0u8];
            file.seek(SeekFrom::Start(offset as u64))?;
            file.read_exact(&mut byte)?;
            byte[0] ^= 0x5a;
            file.seek(SeekFrom::Start(offset as u64))?;
            file.write_all(&byte)
        },
        ops,
    )
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Every synced record survives any crash, torn at any byte, in order; nothing but appended
    /// records comes back; a cut inside a frame is reported as a torn tail; a flipped byte loses
    /// exactly its record; and the damage report is exactly the model's.
    #[test]
    fn segment_recovery_matches_its_reference_model(
        ops in prop::collection::vec(seg_op(), 1..80)
    ) {
        check_segment_on_sim_disk(&ops)?;
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// The segment model on a real file (fewer cases: every sync is an fsync).
    #[test]
    fn segment_recovery_on_a_real_file_matches_its_reference_model(
        ops in prop::collection::vec(seg_op(), 1..40)
    ) {
        check_segment_on_a_file(&ops)?;
    }
}

/// A `Disk` whose fsync returns without syncing yet reports the bytes synced: a seeded bug the
/// segment model must catch (a crash loses records the model holds durable).
struct LyingSync {
    inner: Arc<SimDisk>,
    claimed: Mutex<u64>,
}

impl Disk for LyingSync {
    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        self.inner.append(bytes)
    }
    fn sync(&self) -> io::Result<()> {
        *lock(&self.claimed) = self.inner.read_all()?.len() as u64;
        Ok(())
    }
    fn read_all(&self) -> io::Result<Vec<u8>> {
        self.inner.read_all()
    }
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.inner.read_at(offset, len)
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        *lock(&self.claimed) = len;
        self.inner.truncate(len)
    }
    fn replace(&self, bytes: &[u8]) -> io::Result<()> {
        *lock(&self.claimed) = bytes.len() as u64;
        self.inner.replace(bytes)
    }
    fn synced_len(&self) -> u64 {
        *lock(&self.claimed)
    }
    fn crash(&self) {
        self.inner.crash();
    }
    fn crash_torn(&self, keep: usize) {
        self.inner.crash_torn(keep);
    }
}

#[test]
fn the_segment_model_catches_a_disk_whose_fsync_lies() {
    let (why, ops) = expect_caught(prop::collection::vec(seg_op(), 1..60), |ops| {
        // The file header is really synced (as when the segment was created); the lies start
        // with the records.
        let sim = Arc::new(SimDisk::new());
        io_ok(sim.append(&file_header()))?;
        io_ok(sim.sync())?;
        let disk: Arc<dyn Disk> = Arc::new(LyingSync {
            inner: sim.clone(),
            claimed: Mutex::new(FILE_HEADER as u64),
        });
        let flip = |offset| {
            sim.flip_byte(offset);
            Ok(())
        };
        check_segment(disk, flip, &ops)
    });
    assert!(why.contains("a synced record was lost"), "{why}");
    // Shrunk to: append, sync, crash.
    assert!(ops.len() <= 3, "shrunk to {ops:?}");
}

#[test]
fn a_torn_crash_inside_every_byte_of_a_frame_is_named() {
    // A sweep complementing the random cuts: every cut of two unsynced frames (and past them).
    let first = [(1, 3, 7), (1, 4, u64::MAX)];
    let second = [(1, 5, 9), (2, u32::MAX, 12_345)];
    let unsynced = encode(&[
        Record {
            lsn: Lsn(3),
            page: 5,
            value: 9,
            epoch: Epoch::FIRST,
        },
        Record {
            lsn: Lsn(5),
            page: u32::MAX,
            value: 12_345,
            epoch: Epoch::FIRST,
        },
    ])
    .len();
    for keep in 0..unsynced + 3 {
        let ops = [
            SegOp::Append(first.to_vec()),
            SegOp::Sync,
            SegOp::Append(second.to_vec()),
            SegOp::Crash(keep),
        ];
        check_segment_on_sim_disk(&ops).unwrap_or_else(|e| panic!("keep {keep}: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Retain buffer
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum RetainOp {
    /// A replica applied this record (LSN, value) and asks to retain it.
    Keep(u64, u64),
    /// The durable LSN is (reported) this.
    DiscardThrough(u64),
}

fn retain_op() -> impl Strategy<Value = RetainOp> {
    prop_oneof![
        3 => (1u64..=40, any::<u64>()).prop_map(|(l, v)| RetainOp::Keep(l, v)),
        1 => (0u64..=42).prop_map(RetainOp::DiscardThrough),
    ]
}

/// The reference model of the retain buffer: a map and the discard rule.
#[derive(Debug, Default)]
struct RetainModel {
    durable: u64,
    kept: BTreeMap<u64, u64>,
    /// The rule's comparison: `<=` (correct) or `<` (the seeded off-by-one).
    off_by_one: bool,
}

impl RetainModel {
    fn is_durable(&self, lsn: u64) -> bool {
        if self.off_by_one {
            lsn < self.durable
        } else {
            lsn <= self.durable
        }
    }

    fn keep(&mut self, lsn: u64, value: u64) -> bool {
        if self.is_durable(lsn) {
            return false;
        }
        self.kept.insert(lsn, value);
        true
    }

    fn discard_through(&mut self, durable: u64) -> Vec<Lsn> {
        self.durable = self.durable.max(durable);
        let discarded: Vec<u64> = self
            .kept
            .keys()
            .copied()
            .filter(|&l| self.is_durable(l))
            .collect();
        for l in &discarded {
            self.kept.remove(l);
        }
        discarded.into_iter().map(Lsn).collect()
    }
}

fn check_retain(ops: &[RetainOp], off_by_one: bool) -> Result<(), TestCaseError> {
    let buffer = RetainBuffer::new();
    let mut model = RetainModel {
        off_by_one,
        ..RetainModel::default()
    };
    for (step, op) in ops.iter().enumerate() {
        match *op {
            RetainOp::Keep(lsn, value) => {
                let record = Record {
                    lsn: Lsn(lsn),
                    page: 0,
                    value,
                    epoch: Epoch::FIRST,
                };
                prop_assert_eq!(
                    buffer.keep(record),
                    model.keep(lsn, value),
                    "keep at step {}",
                    step
                );
            }
            RetainOp::DiscardThrough(durable) => {
                prop_assert_eq!(
                    buffer.discard_through(Lsn(durable)),
                    model.discard_through(durable),
                    "discarded at step {}",
                    step
                );
            }
        }
        let durable = buffer.durable();
        prop_assert_eq!(durable, Lsn(model.durable), "durable after step {}", step);
        let retained = buffer.retained();
        let expected: Vec<Lsn> = model.kept.keys().copied().map(Lsn).collect();
        prop_assert_eq!(&retained, &expected, "retained after step {}", step);
        prop_assert!(
            retained.iter().all(|&l| l > durable),
            "a durable record is retained"
        );
        prop_assert_eq!(buffer.len(), model.kept.len());
        prop_assert_eq!(buffer.is_empty(), model.kept.is_empty());
        for lsn in 0..=41 {
            prop_assert_eq!(
                buffer.contains(Lsn(lsn)),
                model.kept.contains_key(&lsn),
                "contains({}) after step {}",
                lsn,
                step
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(1024))]

    /// The retain buffer drops exactly the retained records at or below the durable LSN, never
    /// lowers the durable LSN, never retains an already durable record, and answers every query
    /// as the map does.
    #[test]
    fn the_retain_buffer_matches_its_reference_model(
        ops in prop::collection::vec(retain_op(), 1..80)
    ) {
        check_retain(&ops, false)?;
    }
}

#[test]
fn the_retain_model_catches_an_off_by_one_discard_rule() {
    let (why, ops) = expect_caught(prop::collection::vec(retain_op(), 1..80), |ops| {
        check_retain(&ops, true)
    });
    // Shrunk to: keep a record, discard through its LSN (or raise it first, then keep it).
    assert!(ops.len() <= 2, "shrunk to {ops:?}: {why}");
}

// ---------------------------------------------------------------------------------------------
// Quorum tracker and the shared (concurrent) quorum
// ---------------------------------------------------------------------------------------------

fn acks() -> impl Strategy<Value = Vec<(u8, u64)>> {
    prop::collection::vec((0..STORAGE_NODES as u8, 0u64..=24), 1..60)
}

/// The k-th highest of the per-node maxima, by sorting.
fn kth_highest_by_sorting(per_node: &[u64; STORAGE_NODES], k: usize) -> u64 {
    let mut sorted = per_node.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted[k - 1]
}

fn as_lsns(per_node: &[u64; STORAGE_NODES]) -> [Lsn; STORAGE_NODES] {
    per_node.map(Lsn)
}

/// Feeds `acks` to `tracker` and to the model whose point is the `k`-th highest.
fn check_tracker(
    mut tracker: QuorumTracker,
    k: usize,
    acks: &[(u8, u64)],
) -> Result<(), TestCaseError> {
    let mut per_node = [0u64; STORAGE_NODES];
    let mut last_point = tracker.point();
    prop_assert_eq!(last_point, Lsn::ZERO);
    for (step, &(node, lsn)) in acks.iter().enumerate() {
        let before = kth_highest_by_sorting(&per_node, k);
        per_node[node as usize] = per_node[node as usize].max(lsn);
        let after = kth_highest_by_sorting(&per_node, k);
        let rose = tracker.observe(NodeId(node), Lsn(lsn));
        let point = tracker.point();
        prop_assert_eq!(point, Lsn(after), "point after step {}", step);
        prop_assert_eq!(rose, after > before, "rose at step {}", step);
        prop_assert!(point >= last_point, "the point decreased at step {}", step);
        last_point = point;
        prop_assert_eq!(tracker.per_node(), as_lsns(&per_node));
        prop_assert_eq!(tracker.node(NodeId(node)), Lsn(per_node[node as usize]));
    }
    Ok(())
}

/// Feeds `acks` to `quorum` and to the 4-of-6 model.
fn check_shared(quorum: SharedQuorum, acks: &[(u8, u64)]) -> Result<(), TestCaseError> {
    let mut per_node = [0u64; STORAGE_NODES];
    let mut last_point = quorum.point();
    prop_assert_eq!(last_point, Lsn::ZERO);
    for (step, &(node, lsn)) in acks.iter().enumerate() {
        per_node[node as usize] = per_node[node as usize].max(lsn);
        let expected = Lsn(kth_highest_by_sorting(&per_node, WRITE_QUORUM));
        let reported = quorum.report(NodeId(node), Lsn(lsn));
        prop_assert_eq!(reported, expected, "reported point at step {}", step);
        let point = quorum.point();
        prop_assert_eq!(point, expected, "published point after step {}", step);
        prop_assert!(point >= last_point, "the point decreased at step {}", step);
        last_point = point;
        prop_assert_eq!(quorum.per_node(), as_lsns(&per_node));
        prop_assert_eq!(quorum.node(NodeId(node)), Lsn(per_node[node as usize]));
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Under reordered, stale and duplicate acks, the tracker keeps each node's maximum and its
    /// point is the k-th highest of them (for every k; 4 is the commit point), never decreasing;
    /// `observe` says exactly when it rose. The shared quorum publishes the same 4-of-6 point.
    #[test]
    fn quorum_trackers_match_their_reference_model(acks in acks()) {
        check_tracker(QuorumTracker::write_quorum(), WRITE_QUORUM, &acks)?;
        for k in 1..=STORAGE_NODES {
            check_tracker(QuorumTracker::with_k(k), k, &acks)?;
        }
        check_shared(SharedQuorum::new(), &acks)?;
    }
}

#[test]
fn the_tracker_model_catches_a_three_of_six_point() {
    let (why, acks) = expect_caught(acks(), |acks| {
        check_tracker(QuorumTracker::with_k(3), WRITE_QUORUM, &acks)
    });
    // Shrunk to three nodes acking one LSN.
    assert_eq!(acks.len(), 3, "shrunk to {acks:?}: {why}");
}

#[test]
fn the_tracker_model_catches_a_quorum_keeping_the_latest_report() {
    let (why, acks) = expect_caught(acks(), |acks| {
        check_shared(SharedQuorum::with_bug(Some(QuorumBug::LatestNotMax)), &acks)
    });
    // Shrunk to four nodes reaching a point, then one of them reporting lower.
    assert!(acks.len() <= 5, "shrunk to {acks:?}: {why}");
}
