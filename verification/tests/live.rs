//! The live run (`aurora_redo::live`) on real segment files: a run with faults verifies, and
//! damaged segment files are reported and recovered by the engine without losing a synced record.
#![cfg(not(feature = "shuttle"))]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;

use aurora_redo::live::{self, RunOptions};
use aurora_redo_impl::disk::{Disk, FileDisk};
use aurora_redo_impl::engine::Engine;
use aurora_redo_impl::faults::FaultConfig;
use aurora_redo_impl::observer::NoObserver;
use aurora_redo_impl::segment::{Damage, Segment};
use aurora_redo_impl::{AckPolicy, EngineConfig};
use aurora_redo_model::quorum::quorum_watermark;
use aurora_redo_model::types::{Lsn, NodeId, ReplicaId};

#[test]
fn a_live_run_with_crashes_and_drops_loses_nothing_committed() {
    for ack in [AckPolicy::Memory, AckPolicy::Disk] {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = RunOptions::new(dir.path().join("data"));
        opts.records = 3000;
        opts.ack = ack;
        opts.crash_nodes = 2;
        opts.drop_rate = 0.05;
        opts.batch = 16;
        opts.writers = 2;
        let report = live::run(&opts, &|_| {}).expect("the options are valid");
        assert!(report.failures.is_empty(), "{ack:?}: {:?}", report.failures);
        assert_eq!(report.committed, Lsn(3000));
        assert_eq!(report.crashes, 2);
        assert_eq!(
            report.discards,
            2 * 3000,
            "every replica discarded every record"
        );
    }
}

#[test]
fn bad_options_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
    let opts = RunOptions::new(dir.path().to_path_buf());
    assert!(
        live::run(&opts, &|_| {}).is_err(),
        "a directory with foreign files"
    );
    let mut opts = RunOptions::new(dir.path().join("fresh"));
    opts.drop_rate = 0.9;
    assert!(live::validate(&opts).is_err());
}

fn segment(dir: &std::path::Path, n: u8) -> std::path::PathBuf {
    dir.join(format!("node-{n}.seg"))
}

#[test]
fn damaged_segments_are_reported_and_recovered_without_losing_a_synced_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut opts = RunOptions::new(data.clone());
    opts.records = 500;
    let report = live::run(&opts, &|_| {}).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);

    // S0: a flipped byte in the middle of record 250's frame. S1: a torn half frame at the end.
    let mut bytes = std::fs::read(segment(&data, 0)).unwrap();
    // Walk the frame headers ([len u32][crc u32][payload]) past the file header to record 250's
    // frame.
    let mut offset = aurora_redo_impl::segment::FILE_HEADER;
    for _ in 1..250 {
        offset += 8 + u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
    }
    offset += 9; // the second payload byte
    bytes[offset] ^= 0x40;
    std::fs::write(segment(&data, 0), &bytes).unwrap();
    let mut tail = std::fs::read(segment(&data, 1)).unwrap();
    tail.extend_from_slice(&[7, 0, 0, 0, 1, 2]);
    std::fs::write(segment(&data, 1), &tail).unwrap();

    let disks: Vec<Arc<dyn Disk>> = NodeId::all()
        .map(|n| Arc::new(FileDisk::open(segment(&data, n.0)).unwrap()) as Arc<dyn Disk>)
        .collect();
    let (engine, recovered) = Engine::start(
        EngineConfig::new(AckPolicy::Memory, 1),
        FaultConfig::none(),
        disks,
        Arc::new(NoObserver),
    )
    .unwrap();
    assert!(
        matches!(recovered[0].damage[..], [Damage::Corrupt { .. }]),
        "{:?}",
        recovered[0].damage
    );
    assert!(recovered[0].report().unwrap().contains("corrupt"));
    assert_eq!(
        recovered[0].records, 499,
        "only the damaged record is gone from S0"
    );
    assert_eq!(recovered[0].prefix, Lsn(249));
    assert!(matches!(
        recovered[1].damage[..],
        [Damage::TornTail { len: 6, .. }]
    ));
    assert_eq!(
        recovered[1].prefix,
        Lsn(500),
        "a torn tail costs no synced record"
    );
    for r in &recovered[2..] {
        assert!(r.damage.is_empty());
    }
    // Nothing committed is lost: 4 disks still hold 1..=500, and a fresh replica catching up
    // from the restarted nodes sees the writer's pages.
    assert_eq!(
        quorum_watermark(recovered.iter().map(|r| r.prefix)),
        Lsn(500)
    );
    let mut expected = BTreeMap::new();
    let s2 = FileDisk::open(segment(&data, 2)).unwrap();
    for r in &Segment::inspect(&s2).unwrap().records {
        expected.insert(r.page, (r.value, r.lsn));
    }
    let mut ticks = 0;
    while engine.with_replica(ReplicaId(0), |r| r.applied()) < Lsn(500) {
        ticks += 1;
        assert!(
            ticks < 100_000,
            "the replica did not catch up:\n{}",
            engine.describe()
        );
        engine.tick();
        thread::yield_now();
    }
    assert_eq!(
        engine.with_replica(ReplicaId(0), |r| r.pages().clone()),
        expected
    );
    engine.shutdown();
    // The repaired files reopen clean.
    for n in 0..2 {
        let disk: Arc<dyn Disk> = Arc::new(FileDisk::open(segment(&data, n)).unwrap());
        let (_, again) = aurora_redo_impl::segment::Segment::open(disk).unwrap();
        assert!(again.damage.is_empty());
    }
}
