//! Trace validation of the whole engine under shuttle: the writer, six storage nodes with their
//! flushers on simulated disks, two replicas, with network faults (loss, duplication,
//! reordering), a node crash and restart, an AZ outage and a replica crash. Every schedule's run
//! is recorded step by step and checked against the model's transition relation
//! (`aurora_redo::recording_check`).
//!
//! Run: `cargo test --release -p aurora-redo-tests --features shuttle --test recording_validation`.
#![cfg(feature = "shuttle")]

use std::panic::{catch_unwind, AssertUnwindSafe};

use aurora_redo::recording_check::check_recording;
use aurora_redo_impl::disk::{Disk, SimDisk};
use aurora_redo_impl::engine::Engine;
use aurora_redo_impl::faults::FaultConfig;
use aurora_redo_impl::monitor::Monitor;
use aurora_redo_impl::observer::{NoObserver, Observer};
use aurora_redo_impl::recorder::{Recorder, Step, StepSink};
use aurora_redo_impl::storage::StorageInput;
use aurora_redo_impl::sync::{thread, Arc, AtomicBool, Ordering};
use aurora_redo_impl::{EngineConfig, ImplBug};
use aurora_redo_model::state::record_for;
use aurora_redo_model::{AckPolicy, Az, Config, Epoch, Lsn, NodeId, Preset, ReplicaId};

/// Records the client writes.
const LSNS: u8 = 4;

/// Per ack policy (memory, disk), how many checked recordings include a read-back: a node
/// answering a pull with records read from its segment (the nodes cache no flushed records).
static READ_BACKS: [std::sync::atomic::AtomicUsize; 2] = [
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
];

fn read_backs(ack: AckPolicy) -> &'static std::sync::atomic::AtomicUsize {
    &READ_BACKS[usize::from(ack == AckPolicy::Disk)]
}

/// Most ticks a run may take to quiesce before it counts as stuck.
const MAX_TICKS: usize = 3000;

/// The model configuration the traces are checked against: the scenario's records, replicas and
/// faults.
fn model_config(ack: AckPolicy) -> Config {
    Config {
        lsns: LSNS,
        replicas: 2,
        storage_crashes: 1,
        replica_crashes: 1,
        az_outages: 1,
        lost_nodes: 0,
        ack,
        bug: None,
        ..Config::preset(Preset::Default)
    }
}

/// One run of the whole system, recorded and validated. With `bug` seeded in the engine the model
/// stays correct (the trace must be rejected); the runtime monitor is left out then, so that the
/// trace check is what catches it.
fn scenario(ack: AckPolicy, bug: Option<ImplBug>) -> impl Fn() + Send + Sync + 'static {
    move || {
        let disks: Vec<Arc<dyn Disk>> = (0..6)
            .map(|_| Arc::new(SimDisk::new()) as Arc<dyn Disk>)
            .collect();
        let mut cfg = EngineConfig::new(ack, 2).with_bug(bug);
        cfg.max_batch = 8;
        // No cache of flushed records: every pull of a flushed record is read back from the
        // segment through the node's flusher.
        cfg.cache_records = 0;
        let observer: Arc<dyn Observer> = match bug {
            // The memory-ack finding (a crash can leave a commit unrecoverable) is not what this
            // test is about.
            None => Arc::new(
                Monitor::new(true).tolerating(aurora_redo_model::invariants::COMMITTED_RECOVERABLE),
            ),
            Some(_) => Arc::new(NoObserver),
        };
        let recorder = Arc::new(Recorder::new());
        let net = FaultConfig {
            drop: 0.1,
            duplicate: 0.1,
            reorder: 0.2,
            ..FaultConfig::none()
        };
        let sink: Arc<dyn StepSink> = recorder.clone();
        let (engine, _) = Engine::start_recorded(cfg.clone(), net, disks, observer, Some(sink))
            .expect("simulated disks do not fail");
        let engine = Arc::new(engine);

        let record = |l: u64| {
            let r = record_for(Epoch::FIRST, Lsn(l));
            (r.page, r.value)
        };
        let client_done = Arc::new(AtomicBool::new(false));
        let client = {
            let (engine, done) = (engine.clone(), client_done.clone());
            thread::spawn(move || {
                engine.append_batch(&[record(1), record(2)]);
                let third = engine.append(record(3).0, record(3).1);
                engine.wait_committed(third);
                let fourth = engine.append(record(4).0, record(4).1);
                engine.wait_committed(fourth);
                done.store(true, Ordering::SeqCst);
            })
        };
        let chaos_done = Arc::new(AtomicBool::new(false));
        let chaos = {
            let (engine, done) = (engine.clone(), chaos_done.clone());
            thread::spawn(move || {
                engine.crash_node(NodeId(1));
                thread::yield_now();
                engine
                    .restart_node(NodeId(1))
                    .expect("restart from simulated disk");
                engine.az_outage(Some(Az::C));
                thread::yield_now();
                engine.az_outage(None);
                engine.crash_replica(ReplicaId(1));
                done.store(true, Ordering::SeqCst);
            })
        };
        engine.tick_until_quiescent(
            || client_done.load(Ordering::SeqCst) && chaos_done.load(Ordering::SeqCst),
            MAX_TICKS,
        );
        client.join().expect("client");
        chaos.join().expect("chaos");
        match Arc::try_unwrap(engine) {
            Ok(engine) => engine.shutdown(),
            Err(_) => panic!("engine still shared"),
        }
        let events = recorder.steps();
        if let Err(failure) = check_recording(&model_config(ack), &cfg, &events) {
            panic!("{failure}");
        }
        let read_back = |s: &Step| {
            matches!(
                s,
                Step::Node {
                    input: StorageInput::ReadDone { .. },
                    ..
                }
            )
        };
        if events.iter().any(read_back) {
            read_backs(ack).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "<non-string panic>".into()
    }
}

/// Runs `check` expecting shuttle to find a failing schedule; returns the panic message.
fn expect_rejected(check: impl FnOnce()) -> String {
    match catch_unwind(AssertUnwindSafe(check)) {
        Ok(()) => panic!("no explored schedule's trace was rejected"),
        Err(payload) => panic_message(payload),
    }
}

#[test]
fn memory_ack_traces_follow_the_model_random() {
    shuttle::check_random(scenario(AckPolicy::Memory, None), 1_500);
    let with = read_backs(AckPolicy::Memory).load(std::sync::atomic::Ordering::Relaxed);
    assert!(with > 0, "no checked recording read records back");
}

#[test]
fn memory_ack_traces_follow_the_model_pct() {
    shuttle::check_pct(scenario(AckPolicy::Memory, None), 1_000, 3);
}

#[test]
fn disk_ack_traces_follow_the_model_random() {
    shuttle::check_random(scenario(AckPolicy::Disk, None), 1_500);
    let with = read_backs(AckPolicy::Disk).load(std::sync::atomic::Ordering::Relaxed);
    assert!(with > 0, "no checked recording read records back");
}

#[test]
fn disk_ack_traces_follow_the_model_pct() {
    shuttle::check_pct(scenario(AckPolicy::Disk, None), 1_000, 3);
}

/// The writer commits at 3 acks: some schedule commits before a 4th node has acked, which no
/// model step allows; the failure names the writer's delivery.
#[test]
fn commit_at_three_is_rejected_at_the_writers_step() {
    let msg = expect_rejected(|| {
        shuttle::check_random(
            scenario(AckPolicy::Memory, Some(ImplBug::CommitAtThree)),
            300,
        )
    });
    assert!(
        msg.contains("trace validation failed at event") && msg.contains("W receives"),
        "rejected for another reason: {msg}"
    );
    assert!(msg.contains("W commit point"), "no divergence shown: {msg}");
}

/// A replica applies records beyond its known commit point: rejected at the delivery of the
/// `Records` it applied them from.
#[test]
fn apply_uncommitted_is_rejected_at_the_replicas_step() {
    let msg = expect_rejected(|| {
        shuttle::check_random(
            scenario(AckPolicy::Memory, Some(ImplBug::ApplyUncommitted)),
            300,
        )
    });
    assert!(
        msg.contains("trace validation failed at event") && msg.contains("Records"),
        "rejected for another reason: {msg}"
    );
}
