//! Fail-stop on disk errors: a node whose disk fails a write or an fsync (ENOSPC, EIO) stops at
//! once and is reported with its file and error; the engine carries on while a write quorum of
//! nodes remains, and says it has stopped, naming every failure, once it does not.
#![cfg(not(any(loom, feature = "shuttle")))]

use aurora_redo_impl::disk::{Disk, DiskFault, FaultyDisk, SimDisk};
use aurora_redo_impl::engine::Engine;
use aurora_redo_impl::faults::FaultConfig;
use aurora_redo_impl::monitor::Monitor;
use aurora_redo_impl::sync::Arc;
use aurora_redo_impl::{AckPolicy, EngineConfig};
use aurora_redo_model::types::{Lsn, NodeId};

/// Six simulated disks; those of `faulty` fail as their fault says.
fn disks(faulty: &[(NodeId, &str)]) -> Vec<Arc<dyn Disk>> {
    NodeId::all()
        .map(|n| {
            let sim: Arc<dyn Disk> = Arc::new(SimDisk::new());
            match faulty.iter().find(|(f, _)| *f == n) {
                Some((_, spec)) => {
                    let fault: DiskFault = spec.parse().expect("a fault spec");
                    Arc::new(FaultyDisk::new(sim, fault)) as Arc<dyn Disk>
                }
                None => sim,
            }
        })
        .collect()
}

fn start(ack: AckPolicy, faulty: &[(NodeId, &str)]) -> (Engine, Arc<Monitor>) {
    let monitor = Arc::new(Monitor::new(false));
    let (engine, _) = Engine::start(
        EngineConfig::new(ack, 1),
        FaultConfig::none(),
        disks(faulty),
        monitor.clone(),
    )
    .expect("the disks fail only after their budget");
    (engine, monitor)
}

/// Appends `n` records (one page each), one at a time, ticking between them.
fn append(engine: &Engine, n: u64) -> Lsn {
    let mut last = Lsn::ZERO;
    for k in 0..n {
        last = engine.append((k % 64) as u32, k);
        engine.tick();
    }
    last
}

#[test]
fn a_full_disk_stops_its_node_and_the_run_completes_on_the_other_five() {
    for ack in [AckPolicy::Disk, AckPolicy::Memory] {
        let (engine, monitor) = start(ack, &[(NodeId(2), "enospc@3000")]);
        let last = append(&engine, 600);
        engine.tick_until_quiescent(|| engine.commit_point() >= last, 200_000);
        assert_eq!(engine.commit_point(), last, "{ack:?}");
        let failures = engine.disk_failures();
        assert_eq!(failures.len(), 1, "{ack:?}: {failures:?}");
        let f = &failures[0];
        assert_eq!(f.node, NodeId(2));
        assert_eq!(f.op, "a write or fsync");
        assert!(f.error.contains("No space left on device"), "{f}");
        assert!(
            f.to_string().starts_with("S2 stopped on a disk error"),
            "{f}"
        );
        assert_eq!(engine.stopped(), None, "{ack:?}: five nodes remain");
        // Stopped: neither holding records in memory nor restartable.
        assert_eq!(engine.node_watermarks(NodeId(2)), None);
        assert!(engine.restart_node(NodeId(2)).is_err());
        // The other five flushed everything, and the stopped node kept only what it synced.
        for n in NodeId::all().filter(|n| *n != NodeId(2)) {
            assert_eq!(engine.synced()[n.index()], last, "{ack:?} {n}");
        }
        assert!(engine.synced()[2] < last);
        if ack == AckPolicy::Disk {
            monitor.check_quiescent(&engine);
            assert_eq!(monitor.violations(), vec![], "{ack:?}");
        }
        engine.shutdown();
    }
}

#[test]
fn disk_errors_on_three_nodes_stop_the_engine_and_name_each_failure() {
    let faulty = [
        (NodeId(0), "enospc@2000"),
        (NodeId(3), "eio-fsync@2500"),
        (NodeId(5), "eio@1500"),
    ];
    let (engine, _) = start(AckPolicy::Disk, &faulty);
    assert_eq!(engine.stopped(), None, "nothing written yet");
    // Fewer records than the allocation limit, so that appends do not wait on the stuck volume.
    let last = append(&engine, 1000);
    let mut ticks = 0;
    while engine.stopped().is_none() {
        ticks += 1;
        assert!(ticks < 100_000, "no stop: {}", engine.describe());
        engine.tick();
        aurora_redo_impl::sync::thread::yield_now();
    }
    let why = engine.stopped().unwrap();
    assert!(why.starts_with("3 of 6 storage nodes stopped"), "{why}");
    for (node, error) in [
        ("S0", "No space left on device"),
        ("S3", "Input/output error"),
        ("S5", "Input/output error"),
    ] {
        let f = engine
            .disk_failures()
            .into_iter()
            .find(|f| f.node.to_string() == node)
            .unwrap_or_else(|| panic!("{node} is reported: {why}"));
        assert!(f.error.contains(error), "{f}");
        assert!(why.contains(&f.to_string()), "{why}");
    }
    // Only three nodes remain: nothing past what they had committed before commits again.
    assert!(engine.commit_point() < last);
    engine.shutdown();
}
