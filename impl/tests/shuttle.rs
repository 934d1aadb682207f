//! Whole-system randomized schedule exploration under shuttle: the writer, six storage nodes
//! with their flushers (on simulated disks that lose unsynced bytes on a crash), two replicas,
//! with network faults, node and replica crashes and an AZ outage; the runtime monitor asserts
//! every invariant at every event and at quiescence. The network's faults are drawn from
//! shuttle's controlled randomness (`sync::Random`), so each schedule draws its own faults and a
//! replayed schedule replays them.
//!
//! The failover schedules drive the deterministic role machines (`Cluster`) instead, with every
//! step drawn from the schedule: the threaded engine has no failover.
//!
//! Run: `cargo test -p aurora-redo-impl --release --features shuttle --test shuttle`.
//! A failing schedule is printed by shuttle (`failing schedule: "..."`); replay it with
//! `shuttle::replay(scenario(...), "<schedule>")`.
#![cfg(feature = "shuttle")]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc as StdArc, Mutex as StdMutex};

use aurora_redo_impl::disk::{Disk, SimDisk};
use aurora_redo_impl::engine::Engine;
use aurora_redo_impl::faults::{self, Fate, FaultConfig};
use aurora_redo_impl::monitor::Monitor;
use aurora_redo_impl::sync::{thread, Arc, AtomicBool, Ordering};
use aurora_redo_impl::{AckPolicy, EngineConfig, ImplBug};
use aurora_redo_model::invariants::{
    COMMITTED_RECOVERABLE, COMMIT_ONLY_AFTER_QUORUM, NO_DISCARD_BEFORE_FLUSH,
};
use aurora_redo_model::types::{Actor, Az, Envelope, Lsn, Msg, NodeId, ReplicaId};
use shuttle::scheduler::{
    PctScheduler, RandomScheduler, ReplayScheduler, Schedule, Scheduler, Task, TaskId,
};

/// Which faults a scenario injects.
#[derive(Clone, Copy, Debug)]
struct Faults {
    network: bool,
    node_crash: bool,
    az_outage: bool,
    replica_crash: bool,
}

const ALL: Faults = Faults {
    network: true,
    node_crash: true,
    az_outage: true,
    replica_crash: true,
};

/// Most ticks a run may take to quiesce before it counts as stuck (a liveness failure).
const MAX_TICKS: usize = 3000;

/// Whether a scenario tolerates the memory-ack finding (README, "The finding"): under ack
/// `memory` a node crash can leave a committed record on too few nodes for every read quorum.
/// Tolerated where it is not what the test is about; [`memory_ack_finding_is_reproduced`] shows
/// the engine does break CommittedRecoverable that way.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Finding {
    Tolerated,
    Judged,
}

fn scenario(
    ack: AckPolicy,
    bug: Option<ImplBug>,
    faults: Faults,
    finding: Finding,
) -> impl Fn() + Send + Sync + 'static {
    move || {
        let disks: Vec<Arc<dyn Disk>> = (0..6)
            .map(|_| Arc::new(SimDisk::new()) as Arc<dyn Disk>)
            .collect();
        let monitor = Monitor::new(true);
        let monitor = Arc::new(match finding {
            Finding::Tolerated => monitor.tolerating(COMMITTED_RECOVERABLE),
            Finding::Judged => monitor,
        });
        let mut cfg = EngineConfig::new(ack, 2).with_bug(bug);
        cfg.max_batch = 8;
        // No cache of flushed records: every pull of a flushed record is read back from the
        // segment through the node's flusher.
        cfg.cache_records = 0;
        // A tight LSN allocation limit: the client's second batch waits for the first to be
        // durable on a write quorum.
        cfg.allocation_limit = 2;
        let net = if faults.network {
            FaultConfig {
                drop: 0.1,
                duplicate: 0.1,
                reorder: 0.2,
                ..FaultConfig::none()
            }
        } else {
            FaultConfig::none()
        };
        let (engine, _) =
            Engine::start(cfg, net, disks, monitor.clone()).expect("simulated disks do not fail");
        let engine = Arc::new(engine);

        let client_done = Arc::new(AtomicBool::new(false));
        let client = {
            let (engine, done) = (engine.clone(), client_done.clone());
            thread::spawn(move || {
                let first = engine.append_batch(&[(0, 10), (1, 11)]);
                let second = engine.append(0, 12);
                assert!(engine.wait_committed(second) >= second);
                assert!(engine.commit_point() >= first);
                let third = engine.append(1, 13);
                engine.wait_committed(third);
                done.store(true, Ordering::SeqCst);
            })
        };
        let chaos_done = Arc::new(AtomicBool::new(false));
        let chaos = {
            let (engine, done) = (engine.clone(), chaos_done.clone());
            thread::spawn(move || {
                if faults.node_crash {
                    engine.crash_node(NodeId(1));
                    thread::yield_now();
                    engine
                        .restart_node(NodeId(1))
                        .expect("restart from simulated disk");
                }
                if faults.az_outage {
                    engine.az_outage(Some(Az::C));
                    thread::yield_now();
                    engine.az_outage(None);
                }
                if faults.replica_crash {
                    engine.crash_replica(ReplicaId(1));
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        engine.tick_until_quiescent(
            || client_done.load(Ordering::SeqCst) && chaos_done.load(Ordering::SeqCst),
            MAX_TICKS,
        );
        client.join().expect("client");
        chaos.join().expect("chaos");
        monitor.check_quiescent(&engine);
        assert!(monitor.violations().is_empty());
        assert_eq!(monitor.stats().committed.0, 4);
        match Arc::try_unwrap(engine) {
            Ok(engine) => engine.shutdown(),
            Err(_) => panic!("engine still shared"),
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
fn expect_caught(check: impl FnOnce()) -> String {
    match catch_unwind(AssertUnwindSafe(check)) {
        Ok(()) => panic!("the seeded bug was not caught by any explored schedule"),
        Err(payload) => panic_message(payload),
    }
}

#[test]
fn clean_memory_ack_all_faults_random() {
    shuttle::check_random(
        scenario(AckPolicy::Memory, None, ALL, Finding::Tolerated),
        10_000,
    );
}

#[test]
fn clean_memory_ack_all_faults_pct() {
    shuttle::check_pct(
        scenario(AckPolicy::Memory, None, ALL, Finding::Tolerated),
        8_000,
        3,
    );
}

#[test]
fn clean_disk_ack_all_faults_random() {
    shuttle::check_random(scenario(AckPolicy::Disk, None, ALL, Finding::Judged), 6_000);
}

#[test]
fn clean_no_faults_pct() {
    let none = Faults {
        network: false,
        node_crash: false,
        az_outage: false,
        replica_crash: false,
    };
    shuttle::check_pct(
        scenario(AckPolicy::Memory, None, none, Finding::Judged),
        3_000,
        2,
    );
}

#[test]
fn discard_on_available_is_caught() {
    let msg = expect_caught(|| {
        shuttle::check_random(
            scenario(
                AckPolicy::Memory,
                Some(ImplBug::DiscardOnAvailable),
                ALL,
                Finding::Tolerated,
            ),
            3_000,
        )
    });
    assert!(
        msg.contains(NO_DISCARD_BEFORE_FLUSH),
        "caught by the wrong check: {msg}"
    );
}

#[test]
fn commit_at_three_is_caught() {
    let msg = expect_caught(|| {
        shuttle::check_random(
            scenario(
                AckPolicy::Memory,
                Some(ImplBug::CommitAtThree),
                ALL,
                Finding::Tolerated,
            ),
            500,
        )
    });
    assert!(
        msg.contains(COMMIT_ONLY_AFTER_QUORUM),
        "caught by the wrong check: {msg}"
    );
}

#[test]
fn flush_notify_before_fsync_is_caught() {
    // The bug has a second symptom: a node that announced a flush and then crashed before the
    // fsync comes back without those records, which the writer dropped as flushed everywhere,
    // so the run never quiesces. A PCT exploration that meets that schedule first stops there
    // (about 1 in 20 explorations); it is explored again, up to 4 times in all, until the
    // monitor's catch comes first.
    let explore = || {
        expect_caught(|| {
            shuttle::check_pct(
                scenario(
                    AckPolicy::Memory,
                    Some(ImplBug::FlushNotifyBeforeFsync),
                    ALL,
                    Finding::Tolerated,
                ),
                1000,
                3,
            )
        })
    };
    let mut msg = explore();
    for _ in 1..4 {
        if !msg.contains("no quiescence") {
            break;
        }
        msg = explore();
    }
    assert!(
        msg.contains(NO_DISCARD_BEFORE_FLUSH),
        "caught by the wrong check: {msg}"
    );
}

/// The finding on the engine: under ack `memory`, with the node crash of the fault scenario,
/// shuttle finds a schedule in which a committed record is left on too few nodes.
#[test]
fn memory_ack_finding_is_reproduced() {
    let msg = expect_caught(|| {
        shuttle::check_pct(
            scenario(AckPolicy::Memory, None, ALL, Finding::Judged),
            2_000,
            3,
        )
    });
    assert!(
        msg.contains(COMMITTED_RECOVERABLE),
        "caught by the wrong check: {msg}"
    );
}

/// One schedule's fault draws: the fates of 32 sends (and the places reordered ones jump to)
/// under the scenarios' fault rates, drawn on one thread, so that the sequence is the fault
/// generator's output alone (not an interleaving). A second, idle thread gives the schedulers a
/// choice to make (PCT refuses a test without concurrency).
fn fault_draws() -> Vec<(Fate, usize)> {
    let idle = thread::spawn(thread::yield_now);
    let net = faults::Faults::new(FaultConfig {
        drop: 0.1,
        duplicate: 0.1,
        reorder: 0.2,
        ..FaultConfig::none()
    });
    let env = Envelope {
        src: Actor::Writer,
        dst: Actor::Storage(NodeId(0)),
        msg: Msg::Pull { from: Lsn(1) },
    };
    let draws = (0..32)
        .map(|_| {
            let fate = net.fate(&env);
            let jump = match fate {
                Fate::Deliver { reorder: true, .. } => net.position(1000),
                _ => 0,
            };
            (fate, jump)
        })
        .collect();
    idle.join().expect("the idle thread");
    draws
}

/// A schedule that records its fault draws into `into`, a collector outside the schedules.
fn recording_into(
    into: &'static StdMutex<Vec<Vec<(Fate, usize)>>>,
) -> impl Fn() + Send + Sync + 'static {
    move || {
        let draws = fault_draws();
        into.lock().unwrap().push(draws);
    }
}

fn distinct(runs: &[Vec<(Fate, usize)>]) -> usize {
    let mut seen: Vec<&Vec<(Fate, usize)>> = Vec::new();
    for r in runs {
        if !seen.contains(&r) {
            seen.push(r);
        }
    }
    seen.len()
}

/// Fault choices are under shuttle's control: the schedules of the random and the PCT scheduler
/// draw different faults, not one fixed sequence.
#[test]
fn schedules_draw_different_faults() {
    static RANDOM: StdMutex<Vec<Vec<(Fate, usize)>>> = StdMutex::new(Vec::new());
    static PCT: StdMutex<Vec<Vec<(Fate, usize)>>> = StdMutex::new(Vec::new());
    shuttle::check_random(recording_into(&RANDOM), 20);
    shuttle::check_pct(recording_into(&PCT), 20, 3);
    for (name, runs) in [("random", &RANDOM), ("PCT", &PCT)] {
        let runs = runs.lock().unwrap();
        assert_eq!(runs.len(), 20, "{name}: every schedule recorded");
        assert!(
            distinct(&runs) >= 2,
            "{name}: every schedule drew the same faults"
        );
    }
}

/// A scheduler that records the schedule of every execution it drives (as shuttle does for a
/// failing one), so that a test can replay it.
struct Recording<S> {
    inner: S,
    schedules: StdArc<StdMutex<Vec<Schedule>>>,
}

impl<S: Scheduler> Scheduler for Recording<S> {
    fn new_execution(&mut self) -> Option<Schedule> {
        let schedule = self.inner.new_execution()?;
        self.schedules.lock().unwrap().push(schedule.clone());
        Some(schedule)
    }

    fn next_task(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        is_yielding: bool,
    ) -> Option<TaskId> {
        let next = self.inner.next_task(runnable, current, is_yielding)?;
        if let Some(schedule) = self.schedules.lock().unwrap().last_mut() {
            schedule.push_task(next);
        }
        Some(next)
    }

    fn next_u64(&mut self) -> u64 {
        if let Some(schedule) = self.schedules.lock().unwrap().last_mut() {
            schedule.push_random();
        }
        self.inner.next_u64()
    }
}

/// A replayed schedule replays its faults: each schedule explored by the random and the PCT
/// scheduler, replayed, draws the very faults it drew the first time.
#[test]
fn a_replayed_schedule_draws_the_same_faults() {
    static EXPLORED: StdMutex<Vec<Vec<(Fate, usize)>>> = StdMutex::new(Vec::new());
    static REPLAYED: StdMutex<Vec<Vec<(Fate, usize)>>> = StdMutex::new(Vec::new());
    let schedulers: [Box<dyn Scheduler + Send>; 2] = [
        Box::new(RandomScheduler::new(10)),
        Box::new(PctScheduler::new(3, 10)),
    ];
    for inner in schedulers {
        EXPLORED.lock().unwrap().clear();
        REPLAYED.lock().unwrap().clear();
        let schedules = StdArc::new(StdMutex::new(Vec::new()));
        let recording = Recording {
            inner,
            schedules: schedules.clone(),
        };
        shuttle::Runner::new(recording, shuttle::Config::default()).run(recording_into(&EXPLORED));
        let schedules = schedules.lock().unwrap().clone();
        assert_eq!(schedules.len(), 10);
        for schedule in schedules {
            shuttle::Runner::new(
                ReplayScheduler::new_from_schedule(schedule),
                shuttle::Config::default(),
            )
            .run(recording_into(&REPLAYED));
        }
        let explored = EXPLORED.lock().unwrap();
        assert!(
            distinct(&explored) >= 2,
            "the schedules drew the same faults"
        );
        assert_eq!(
            *REPLAYED.lock().unwrap(),
            *explored,
            "every replay drew its schedule's faults"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Writer failover, on the deterministic role machines: the threaded engine has no failover, so
// these schedules drive a `Cluster` (the machines every deterministic driver steps), each step
// drawn from shuttle's controlled randomness (`sync::Random`): a failing schedule replays its
// steps.

use aurora_redo_impl::cluster::{Cluster, Step};
use aurora_redo_impl::observer::{Event, Observer};
use aurora_redo_impl::output::{Durable, Effects, ReadBack};
use aurora_redo_impl::replica::ReplicaInput;
use aurora_redo_impl::segment::Segment;
use aurora_redo_impl::storage::StorageInput;
use aurora_redo_impl::sync::Random;
use aurora_redo_impl::writer::WriterInput;
use aurora_redo_model::invariants::{COMMITTED_SURVIVES_RECOVERY, EPOCH_FENCING, LOG_AGREEMENT};
use aurora_redo_model::recovery::{recovery_point, ReadAnswer};
use aurora_redo_model::state::NodeStatus;
use aurora_redo_model::types::Record;
use rand::Rng;
use std::collections::BTreeMap;

/// Records each writer writes (the zombie too) and steps per schedule: bounded memory.
const FAILOVER_LSNS: u64 = 4;
const FAILOVER_STEPS: usize = 400;
/// Most messages in flight; a send beyond it is lost (the network is lossy anyway).
const MAX_IN_FLIGHT: usize = 256;

/// A cluster of the role machines on simulated disks, with a network of in-flight messages, all
/// choices drawn from the schedule.
struct FailoverRun {
    cluster: Cluster,
    disks: Vec<Arc<dyn Disk>>,
    segments: Vec<Segment>,
    pool: Vec<Envelope>,
    reads: Vec<(NodeId, ReadBack)>,
    /// Per node, a flush job appended to its segment and not yet synced.
    unsynced: Vec<bool>,
    monitor: Monitor,
    /// What clients were told is committed: per LSN, the record (across the failover).
    acked: BTreeMap<Lsn, Record>,
    /// The current writer's log, as it wrote or recovered it (the writer itself trims records
    /// every node has flushed).
    log: BTreeMap<Lsn, Record>,
    rng: Random,
    failed_over: bool,
    crashed: bool,
    /// A flush job's append and its sync are separate steps (a power loss between them drops
    /// the appended bytes); otherwise one.
    split_flush: bool,
    trace: Vec<String>,
}

impl FailoverRun {
    fn new(split_flush: bool, bug: Option<ImplBug>) -> FailoverRun {
        let disks: Vec<Arc<dyn Disk>> = (0..6)
            .map(|_| Arc::new(SimDisk::new()) as Arc<dyn Disk>)
            .collect();
        let segments = disks
            .iter()
            .map(|d| Segment::open(d.clone()).expect("an empty simulated disk").0)
            .collect();
        let mut cfg = EngineConfig::new(AckPolicy::Disk, 1).with_bug(bug);
        cfg.max_batch = 8;
        cfg.cache_records = 0;
        FailoverRun {
            cluster: Cluster::new(cfg),
            disks,
            segments,
            pool: Vec::new(),
            reads: Vec::new(),
            unsynced: vec![false; 6],
            monitor: Monitor::new(false),
            acked: BTreeMap::new(),
            log: BTreeMap::new(),
            rng: Random::seeded(0),
            failed_over: false,
            crashed: false,
            split_flush,
            trace: Vec::new(),
        }
    }

    fn fail(&self, why: String) -> ! {
        panic!("{why}\nsteps:\n  {}", self.trace.join("\n  "))
    }

    /// Takes `step` and routes its effects; what a node persists synchronously (an adopt, a seal)
    /// is written and synced before its sends, as the engine does.
    fn take(&mut self, step: Step) {
        self.trace.push(step.to_string());
        let fx = match self.cluster.step(&step) {
            Ok(fx) => fx,
            Err(why) => self.fail(format!("the cluster refused {step}: {why}")),
        };
        let mut synced_a_job = None;
        if let Step::Node { node, .. } = &step {
            self.persist_durable(*node, &fx);
            let i = node.index();
            if fx.durable.iter().any(|d| matches!(d, Durable::Seal { .. })) {
                // The seal superseded the flusher's job; the sync wrote its appended bytes.
                self.unsynced[i] = false;
            } else if !fx.durable.is_empty() && self.unsynced[i] {
                // The adopt's sync made the flusher's appended job durable: it reports it.
                synced_a_job = Some(*node);
            }
            for rb in &fx.read_back {
                self.reads.push((*node, *rb));
            }
        }
        self.route(fx);
        self.note_commits();
        if let Some(node) = synced_a_job {
            self.sync(node);
        }
    }

    fn persist_durable(&mut self, n: NodeId, fx: &Effects) {
        let segment = &self.segments[n.index()];
        for d in &fx.durable {
            let written = match d {
                Durable::Adopt(e) => segment.adopt(*e),
                Durable::Seal { seal, records } => {
                    segment.append(records).and_then(|_| segment.seal(*seal))
                }
            };
            if let Err(e) = written.and_then(|_| segment.sync()) {
                self.fail(format!("{n}: simulated segment I/O failed: {e}"));
            }
        }
    }

    fn route(&mut self, fx: Effects) {
        let epoch = self.cluster.writer().epoch();
        for ev in &fx.observed {
            self.monitor.observe(ev);
            match ev {
                Event::Appended(record) if record.epoch == epoch => {
                    self.log.insert(record.lsn, *record);
                }
                Event::Recovered { point, log, .. } => {
                    self.log = log
                        .iter()
                        .filter(|r| r.lsn <= *point)
                        .map(|r| (r.lsn, *r))
                        .collect();
                }
                _ => {}
            }
        }
        for e in fx.sent {
            if self.pool.len() < MAX_IN_FLIGHT {
                self.pool.push(e);
            }
        }
    }

    /// The current writer's commit point is what clients are told: its records up to there must
    /// be the very records an earlier writer's clients were told of.
    fn note_commits(&mut self) {
        for lsn in self.cluster.writer().commit_point().prefix() {
            let Some(record) = self.log.get(&lsn).copied() else {
                self.fail(format!(
                    "the writer committed {lsn} but wrote no record there"
                ));
            };
            if let Some(told) = self.acked.insert(lsn, record) {
                if told != record {
                    self.fail(format!(
                        "clients were told {told} is committed, then {record} at the same LSN"
                    ));
                }
            }
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.rng.random_range(0..items.len())])
    }

    /// One step drawn from the schedule; `false` if the drawn step was not enabled.
    fn random_step(&mut self) -> bool {
        let up: Vec<NodeId> = NodeId::all()
            .filter(|&n| self.cluster.node(n).is_some())
            .collect();
        match self.rng.random_range(0..100u32) {
            0..=9 => {
                let w = self.cluster.writer();
                if !w.is_open() || w.last_lsn().0 >= FAILOVER_LSNS {
                    return false;
                }
                let lsn = w.last_lsn().next();
                let value = 1000 * (u64::from(w.epoch().number()) + 1) + lsn.0;
                self.take(Step::Writer(WriterInput::Append {
                    page: (lsn.0 % 2) as u32,
                    value,
                }));
            }
            10..=49 => {
                if self.pool.is_empty() {
                    return false;
                }
                let i = self.rng.random_range(0..self.pool.len());
                let e = if self.rng.random_bool(0.1) {
                    self.pool[i].clone() // duplicated: a copy stays in flight
                } else {
                    self.pool.swap_remove(i)
                };
                self.deliver(e);
            }
            50..=53 => {
                if self.pool.is_empty() {
                    return false;
                }
                let i = self.rng.random_range(0..self.pool.len());
                self.trace
                    .push(format!("the network drops {}", self.pool[i]));
                self.pool.swap_remove(i);
            }
            54..=59 => self.take(Step::Writer(WriterInput::Tick)),
            60..=62 => self.take(Step::Replica {
                replica: ReplicaId(0),
                input: ReplicaInput::Tick,
            }),
            63..=76 => {
                let ready: Vec<NodeId> = up
                    .iter()
                    .copied()
                    .filter(|&n| {
                        self.cluster.next_flush_job(n).is_some() && !self.unsynced[n.index()]
                    })
                    .collect();
                let Some(n) = self.pick(&ready) else {
                    return false;
                };
                let job = self.cluster.next_flush_job(n).expect("a job").to_vec();
                if let Err(e) = self.segments[n.index()].append(&job) {
                    self.fail(format!("{n}: simulated append failed: {e}"));
                }
                self.trace
                    .push(format!("{n}'s flusher appends {} records", job.len()));
                self.unsynced[n.index()] = true;
                if !self.split_flush {
                    self.sync(n);
                }
            }
            77..=84 => {
                let written: Vec<NodeId> = up
                    .iter()
                    .copied()
                    .filter(|&n| self.unsynced[n.index()])
                    .collect();
                let Some(n) = self.pick(&written) else {
                    return false;
                };
                self.sync(n);
            }
            85..=89 => {
                let Some((n, picked)) = self.pick(&self.reads.clone()) else {
                    return false;
                };
                // The node matches a read-back by its reader and start: serve the oldest of
                // those, as its flusher does.
                let i = self
                    .reads
                    .iter()
                    .position(|(m, r)| *m == n && (r.to, r.from) == (picked.to, picked.from))
                    .expect("the picked read-back");
                let (_, rb) = self.reads.remove(i);
                // The flusher reads what is synced (a seal since the request may have cut it).
                let synced = self.cluster.synced(n);
                let records = match self.segments[n.index()].read(rb.from, rb.upto.min(synced)) {
                    Ok(records) => records,
                    Err(e) => self.fail(format!("{n}: simulated read-back failed: {e}")),
                };
                self.take(Step::Node {
                    node: n,
                    input: StorageInput::ReadDone {
                        to: rb.to,
                        from: rb.from,
                        records,
                    },
                });
            }
            90..=92 => {
                if self.crashed {
                    return false;
                }
                let Some(n) = self.pick(&up) else {
                    return false;
                };
                self.crashed = true;
                self.disks[n.index()].crash();
                self.unsynced[n.index()] = false;
                self.reads.retain(|(m, _)| *m != n);
                let on_disk = self.cluster.synced(n);
                self.take(Step::NodeCrashed { node: n, on_disk });
            }
            93..=95 => {
                let down: Vec<NodeId> = NodeId::all()
                    .filter(|&n| self.cluster.node_status(n) == NodeStatus::Crashed)
                    .collect();
                let Some(n) = self.pick(&down) else {
                    return false;
                };
                let (segment, recovered) = match Segment::open(self.disks[n.index()].clone()) {
                    Ok(found) => found,
                    Err(e) => self.fail(format!("{n}: recovery failed: {e}")),
                };
                self.segments[n.index()] = segment;
                self.take(Step::NodeRestarted {
                    node: n,
                    damage: recovered.report(),
                    recovered: recovered.records,
                });
            }
            96..=97 => {
                if self.failed_over {
                    return false;
                }
                self.failed_over = true;
                self.take(Step::FailOver { zombie: true });
            }
            _ => {
                let Some(z) = self.cluster.zombie() else {
                    return false;
                };
                if z.last_lsn().0 >= FAILOVER_LSNS {
                    return false;
                }
                let lsn = z.last_lsn().next();
                let value = 1000 * (u64::from(z.epoch().number()) + 1) + lsn.0;
                self.take(Step::Zombie(WriterInput::Append {
                    page: (lsn.0 % 2) as u32,
                    value,
                }));
            }
        }
        true
    }

    /// The flusher's sync of the job it appended, and its report.
    fn sync(&mut self, n: NodeId) {
        if let Err(e) = self.segments[n.index()].sync() {
            self.fail(format!("{n}: simulated sync failed: {e}"));
        }
        self.unsynced[n.index()] = false;
        let upto = self
            .cluster
            .next_flush_job(n)
            .and_then(|j| j.last())
            .map(|r| r.lsn)
            .expect("the synced job");
        self.monitor.observe(&Event::Synced { node: n, lsn: upto });
        self.take(Step::Node {
            node: n,
            input: StorageInput::FlushDone { upto },
        });
    }

    /// Delivers `e`; a message to or from a node that is down or out is lost.
    fn deliver(&mut self, e: Envelope) {
        let reachable = |a: Actor| match a {
            Actor::Storage(n) => self.cluster.reachable(n),
            _ => true,
        };
        if !reachable(e.dst) || !reachable(e.src) {
            self.trace.push(format!("lost on the way: {e}"));
            return;
        }
        self.take(Step::delivery(e.dst, e));
    }

    /// Power loss: every disk drops its unsynced bytes, and the volume is recovered from the
    /// segments as a new writer would (the shared `recovery_point` over a read quorum, and over
    /// every node). Every record clients were told is committed must be the recovered log's.
    fn power_loss_and_recover(&mut self) {
        let mut logs = Vec::new();
        let mut answers = Vec::new();
        for disk in &self.disks {
            disk.crash();
            let recovered = match Segment::open(disk.clone()) {
                Ok((_, recovered)) => recovered,
                Err(e) => self.fail(format!("recovery after the power loss failed: {e}")),
            };
            answers.push(recovered.answer());
            logs.push(recovered.records);
        }
        let mut quorum: Vec<usize> = (0..6).collect();
        while quorum.len() > 3 {
            let i = self.rng.random_range(0..quorum.len());
            quorum.remove(i);
        }
        let read: Vec<ReadAnswer> = quorum.iter().map(|&i| answers[i]).collect();
        let candidates = [
            (
                "a read quorum",
                recovery_point(&read).map(|(i, p)| (quorum[i], p)),
            ),
            ("every node", recovery_point(&answers)),
        ];
        for (which, chosen) in candidates {
            let Some((source, point)) = chosen else {
                self.fail(format!("no recovery point from {which}"));
            };
            for (&lsn, told) in &self.acked {
                let found = logs[source].iter().find(|r| r.lsn == lsn);
                if lsn > point || found != Some(told) {
                    self.fail(format!(
                        "after a power loss, recovery from {which} (S{source} at {point}, \
                         answers {answers:?}) loses committed {told}: found {found:?}"
                    ));
                }
            }
        }
    }
}

/// How many schedules reached what the failover scenarios are about: a recovered writer that
/// committed in its new epoch, a zombie's append, a power loss with commits to keep.
static COVERAGE: StdMutex<[usize; 3]> = StdMutex::new([0; 3]);

fn covered() -> [usize; 3] {
    *COVERAGE.lock().unwrap()
}

fn run_failover(split_flush: bool, bug: Option<ImplBug>) -> FailoverRun {
    // A second task gives the schedulers a choice to make (PCT refuses a test without one).
    let idle = thread::spawn(thread::yield_now);
    let mut run = FailoverRun::new(split_flush, bug);
    for _ in 0..FAILOVER_STEPS {
        run.random_step();
    }
    idle.join().expect("the idle thread");
    let w = run.cluster.writer();
    let mut coverage = COVERAGE.lock().unwrap();
    if w.epoch() > aurora_redo_model::types::Epoch::FIRST && w.commit_point() > w.point() {
        coverage[0] += 1;
    }
    if run
        .cluster
        .zombie()
        .is_some_and(|z| z.last_lsn() > Lsn::ZERO)
    {
        coverage[1] += 1;
    }
    if split_flush && !run.acked.is_empty() {
        coverage[2] += 1;
    }
    run
}

/// A failover with a zombie writer among a node crash, network loss and duplication, under ack
/// `disk`: the monitor reports no invariant broken, in particular none of the recovery ones.
fn failover_scenario(bug: Option<ImplBug>) -> impl Fn() + Send + Sync + 'static {
    move || failover_check(run_failover(false, bug))
}

fn failover_check(run: FailoverRun) {
    let broken = run.monitor.violations();
    for invariant in [COMMITTED_SURVIVES_RECOVERY, EPOCH_FENCING, LOG_AGREEMENT] {
        if let Some(v) = broken.iter().find(|v| v.invariant == invariant) {
            run.fail(format!("{v}"));
        }
    }
    if !broken.is_empty() {
        run.fail(format!("violations: {broken:?}"));
    }
}

/// The power-loss variant: flush jobs are appended and synced in separate steps; at the end every
/// disk loses what was not synced, the volume is recovered, and every commit survives.
fn power_loss_scenario() {
    let mut run = run_failover(true, None);
    if !run.monitor.violations().is_empty() {
        run.fail(format!("violations: {:?}", run.monitor.violations()));
    }
    run.power_loss_and_recover();
}

// The tests share COVERAGE, so each checks only that its own runs added to it.

/// Runs `check` and asserts that its schedules recovered and committed anew, and had the zombie
/// write.
fn assert_failover_covered(check: impl FnOnce()) {
    let before = covered();
    check();
    let after = covered();
    assert!(
        after[0] > before[0],
        "no schedule recovered and committed anew"
    );
    assert!(after[1] > before[1], "no schedule had the zombie write");
}

#[test]
fn failover_with_a_zombie_writer_disk_ack_random() {
    assert_failover_covered(|| shuttle::check_random(failover_scenario(None), 20_000));
}

#[test]
fn failover_with_a_zombie_writer_disk_ack_pct() {
    assert_failover_covered(|| shuttle::check_pct(failover_scenario(None), 10_000, 3));
}

#[test]
fn commits_survive_a_power_loss_and_recovery_random() {
    let before = covered();
    shuttle::check_random(power_loss_scenario, 20_000);
    assert!(covered()[2] > before[2], "no schedule had a commit to keep");
}

/// The driver catches a recovery bug: a recovery point below the read quorum's highest SCL
/// loses a commit, which the monitor reports as CommittedSurvivesRecovery.
#[test]
fn recover_below_max_scl_is_caught_in_a_failover() {
    let msg = expect_caught(|| {
        shuttle::check_random(failover_scenario(Some(ImplBug::RecoverBelowMaxScl)), 20_000)
    });
    assert!(
        msg.contains(COMMITTED_SURVIVES_RECOVERY),
        "caught by the wrong check: {msg}"
    );
}

/// And a node that takes the zombie's appends after a fencing read breaks EpochFencing.
#[test]
fn accept_stale_epoch_is_caught_in_a_failover() {
    let msg = expect_caught(|| {
        shuttle::check_random(failover_scenario(Some(ImplBug::AcceptStaleEpoch)), 20_000)
    });
    assert!(
        msg.contains(EPOCH_FENCING),
        "caught by the wrong check: {msg}"
    );
}

/// A regression: with this seed the random scheduler once found a node that answered a replica's
/// pull after a recovery's read had made it stop speaking for its epoch (the pull was asked
/// before the read, the read-back done after it), under the new epoch, with a record the coming
/// seal annulled: ReplicaPrefix broke. The node now drops such a read-back's answer.
#[test]
fn failover_seed_540986231906583696_stays_clean() {
    use shuttle::scheduler::RandomScheduler;
    let scheduler = RandomScheduler::new_from_seed(540_986_231_906_583_696, 20_000);
    shuttle::Runner::new(scheduler, shuttle::Config::default()).run(failover_scenario(None));
}
