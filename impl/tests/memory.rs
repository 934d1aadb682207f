//! The memory lifecycle of the engine: a storage node keeps a record in memory until it is
//! flushed, then frees it (but for a bounded cache of recent ones); a pull of older records is
//! read back from the segment. After a run of N records, all flushed and applied, what the nodes
//! keep in memory does not depend on N; and a replica never has more than one pull outstanding.
#![cfg(not(any(loom, feature = "shuttle")))]

use std::time::{Duration, Instant};

use aurora_redo_impl::disk::{Disk, SimDisk};
use aurora_redo_impl::engine::Engine;
use aurora_redo_impl::faults::FaultConfig;
use aurora_redo_impl::observer::NoObserver;
use aurora_redo_impl::sync::{thread, Arc, AtomicBool, Ordering};
use aurora_redo_impl::{AckPolicy, EngineConfig};
use aurora_redo_model::types::{Lsn, NodeId, ReplicaId};

const CACHE: usize = 128;
const REPLICAS: usize = 2;

struct Outcome {
    /// Each node's in-memory record count once everything is flushed and applied.
    memory: Vec<usize>,
    /// The most pulls any replica had outstanding at a sample.
    most_pulls: usize,
}

fn wait_until(what: &str, deadline: Duration, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `n` records through the engine (batches of 64), then has replica 1 crash and catch up
/// from scratch: all of it from the nodes' segments, read back in batches of `max_batch`.
fn run(n: u64) -> Outcome {
    let disks: Vec<Arc<dyn Disk>> = (0..6)
        .map(|_| Arc::new(SimDisk::new()) as Arc<dyn Disk>)
        .collect();
    let mut cfg = EngineConfig::new(AckPolicy::Memory, REPLICAS);
    cfg.max_batch = 256;
    cfg.cache_records = CACHE;
    let (engine, _) = Engine::start(cfg, FaultConfig::none(), disks, Arc::new(NoObserver))
        .expect("simulated disks");
    let engine = Arc::new(engine);
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (engine, stop) = (engine.clone(), stop.clone());
        thread::spawn(move || {
            let mut most = 0;
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(1));
                engine.tick();
                for r in 0..REPLICAS {
                    let pulls = engine.with_replica(ReplicaId(r as u8), |r| r.pulls_outstanding());
                    most = most.max(pulls);
                }
            }
            most
        })
    };
    let mut last = Lsn::ZERO;
    let mut appended = 0;
    while appended < n {
        let batch: Vec<(u32, u64)> = (appended..(appended + 64).min(n))
            .map(|i| ((i % 97) as u32, i))
            .collect();
        appended += batch.len() as u64;
        last = engine.append_batch(&batch);
        if appended % 4096 < 64 {
            engine.wait_committed(last);
        }
    }
    engine.wait_committed(last);
    wait_until("quiescence", Duration::from_secs(120), || {
        engine.quiescent()
    });
    engine.crash_replica(ReplicaId(1));
    let caught_up = || engine.with_replica(ReplicaId(1), |r| r.applied()) == last;
    wait_until("the restarted replica", Duration::from_secs(120), caught_up);
    wait_until("quiescence", Duration::from_secs(120), || {
        engine.quiescent()
    });
    stop.store(true, Ordering::Relaxed);
    let most_pulls = ticker.join().expect("ticker");
    let memory = NodeId::all()
        .map(|node| engine.node_memory_len(node).expect("no node crashed"))
        .collect();
    assert!(engine.io_errors().is_empty(), "{:?}", engine.io_errors());
    match Arc::try_unwrap(engine) {
        Ok(engine) => engine.shutdown(),
        Err(_) => panic!("engine still shared"),
    }
    Outcome { memory, most_pulls }
}

#[test]
fn node_memory_is_bounded_independently_of_the_run_length() {
    for n in [2_000, 20_000] {
        let outcome = run(n);
        for (node, held) in outcome.memory.iter().enumerate() {
            assert!(
                *held <= CACHE,
                "after {n} records S{node} keeps {held} records in memory (cache {CACHE})"
            );
        }
        assert!(
            outcome.most_pulls <= 1,
            "a replica had {} pulls outstanding",
            outcome.most_pulls
        );
    }
}

/// Back-pressure: a client that appends as fast as it can, never waiting for a commit, is held
/// by the LSN allocation limit, so at every moment at least a write quorum of nodes (those the
/// volume durable point counts) holds no more than the limit, a batch and the cache in memory.
#[test]
fn a_client_that_never_waits_is_held_by_the_allocation_limit() {
    const LIMIT: u64 = 512;
    let disks: Vec<Arc<dyn Disk>> = (0..6)
        .map(|_| Arc::new(SimDisk::new()) as Arc<dyn Disk>)
        .collect();
    let mut cfg = EngineConfig::new(AckPolicy::Memory, REPLICAS);
    cfg.cache_records = CACHE;
    cfg.allocation_limit = LIMIT;
    let (engine, _) = Engine::start(cfg, FaultConfig::none(), disks, Arc::new(NoObserver))
        .expect("simulated disks");
    let mut most = 0;
    let mut last = Lsn::ZERO;
    for i in 0..1_000u64 {
        let batch: Vec<(u32, u64)> = (0..64).map(|k| ((k % 97) as u32, i * 64 + k)).collect();
        last = engine.append_batch(&batch);
        let mut held: Vec<usize> = NodeId::all()
            .map(|node| engine.node_memory_len(node).expect("no node crashed"))
            .collect();
        held.sort_unstable();
        most = most.max(held[3]);
    }
    engine.wait_committed(last);
    engine.shutdown();
    let bound = LIMIT as usize + 64 + CACHE;
    assert!(
        most <= bound,
        "a write quorum held {most} records in memory (limit {LIMIT}, bound {bound})"
    );
}
