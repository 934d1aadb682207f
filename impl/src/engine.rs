//! The concurrent engine: threads and mailboxes driving the role state machines.
//!
//! One thread per actor (writer network thread, six storage nodes, each replica) plus one
//! flusher thread per storage node, which also serves the node's read-backs (reads of flushed
//! records a pull needs) in order with its flush jobs. A step takes a batch from a mailbox, runs
//! it through the actor's state machine under that machine's lock, forwards the ghost events to
//! the observer, then performs the outputs (sends, flush jobs). Client threads call
//! [`Engine::append`] and [`Engine::wait_committed`]. Ticks (retries) come from
//! [`Engine::tick`]: a timer thread in production, the test's own loop under shuttle.
//!
//! **Who runs a step.** The writer's and the nodes' steps are run by the thread that sent them
//! their messages when they are idle (it takes the receiver's turn, see
//! [`crate::transport`]), not handed to the receiver's thread: a client's `append` runs the six
//! nodes' steps, whose acks it then runs through the writer, so with ack `memory` and a quiet
//! network a commit takes no thread hand-off at all; a flusher runs its node's `FlushDone` and
//! the writer's handling of what that node then says. Replicas always run on their own threads,
//! and disk work on the flushers: neither is on the commit path under ack `memory`. A thread runs
//! at most [`MAX_RUN_HERE`] steps for others per call and wakes the receivers' threads for the
//! rest; an actor busy elsewhere is left to whoever holds its turn.
//!
//! Every machine's outputs are sorted into [`Effects`], as in the deterministic
//! [`crate::cluster::Cluster`]. Started with a [`StepSink`] ([`Engine::start_recorded`]), the
//! engine records every [`Step`] a role machine takes, under that machine's lock (see
//! [`crate::recorder`]): replayed on a `Cluster`, the recording reproduces the run.

use std::io;

use aurora_redo_model::types::{Az, Lsn, NodeId, PageId, Record, ReplicaId, STORAGE_NODES};

use crate::config::{AckPolicy, EngineConfig, ImplBug};
use crate::disk::Disk;
use crate::faults::{FaultConfig, Faults};
use crate::observer::{Event, Observer};
use crate::output::{Effects, ReadBack};
use crate::recorder::{Step, StepSink};
use crate::replica::{Replica, ReplicaInput};
use crate::segment::{Segment, Summary};
use crate::storage::{StorageInput, StorageNode};
use crate::sync::{lock, thread, Arc, AtomicU64, Mutex, Ordering};
use crate::transport::{Mailbox, Mailboxes, NodeEvent, Ready, Recv, Runnable};
use crate::watermark::{AllocationLimit, Published, SharedQuorum};
use crate::writer::{Writer, WriterInput};

/// Most messages one thread takes from its mailbox at once.
const BATCH: usize = 4096;

/// Most steps a thread runs for other actors in one go before it wakes their threads instead.
pub const MAX_RUN_HERE: usize = 64;

/// What a node's flusher thread does: the node's disk I/O, in the order the node asked for it.
enum DiskJob {
    /// Append and sync these records, then report `FlushDone`.
    Persist(Vec<Record>),
    /// Read these flushed records back from the segment, then report `ReadDone`.
    Read(ReadBack),
}

struct NodeState {
    sm: Option<StorageNode>,
    /// Set when the node stopped on a disk error: it is never restarted.
    failed: bool,
    incarnation: u64,
    flusher: Option<Arc<Mailbox<DiskJob>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

struct NodeSlot {
    disk: Arc<dyn Disk>,
    state: Mutex<NodeState>,
}

struct Shared {
    cfg: EngineConfig,
    net: Mailboxes,
    observer: Arc<dyn Observer>,
    /// Where protocol steps are recorded, if anywhere.
    recording: Option<Arc<dyn StepSink>>,
    writer: Mutex<Writer>,
    committed: Published,
    /// The last LSN the writer created (stored under the writer lock, before its appends are
    /// queued), read by the quiet check without the writer lock.
    appended: AtomicU64,
    nodes: Vec<NodeSlot>,
    replicas: Vec<Mutex<Replica>>,
    /// Ghost: each node's highest LSN whose fsync has returned; the point is the volume durable
    /// LSN.
    synced: SharedQuorum,
    /// The nodes stopped by an I/O error of their flusher (fail-stop), in the order they hit.
    disk_failures: Mutex<Vec<DiskFailure>>,
}

/// A node stopped by an I/O error on its disk: it accepts, acknowledges and flushes nothing
/// more, and is never restarted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskFailure {
    pub node: NodeId,
    /// The disk ([`Disk::describe`]: a segment file's path).
    pub file: String,
    /// What failed: `a write or fsync`, `a read-back`.
    pub op: String,
    /// The error.
    pub error: String,
}

impl std::fmt::Display for DiskFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} stopped on a disk error: {} of {} failed: {}",
            self.node, self.op, self.file, self.error
        )
    }
}

impl Shared {
    /// Records a step; `step` is only built when a sink is attached.
    fn record(&self, step: impl FnOnce() -> Step) {
        if let Some(sink) = &self.recording {
            sink.record(step());
        }
    }

    /// Hands the ghost events gathered so far to the observer.
    fn observe(&self, fx: &mut Effects) {
        for ev in fx.observed.drain(..) {
            self.observer.observe(&ev);
        }
    }

    /// Hands the ghost events to the observer, then sends the messages; the writer and the
    /// nodes that got some are added to `ready`, for [`Shared::run_here`]. (Flush jobs are the
    /// node step's to route.)
    fn route(&self, mut fx: Effects, ready: &mut Ready) {
        self.observe(&mut fx);
        self.net.send(fx.sent, ready);
    }

    /// Runs the steps of the actors in `ready` (and of those their steps send to) on this thread,
    /// each while it is idle, at most [`MAX_RUN_HERE`] of them; wakes the threads of the rest.
    fn run_here(&self, mut ready: Ready) {
        let mut steps = 0;
        while let Some(actor) = ready.pop() {
            let allowed = steps < MAX_RUN_HERE;
            let ran = match actor {
                Runnable::Writer => self.net.writer.run_turn(BATCH, allowed, |envs| {
                    let n = envs.len();
                    let inputs = envs.into_iter().map(WriterInput::Deliver).collect();
                    writer_step(self, inputs, n, &mut ready);
                }),
                Runnable::Node(node) => {
                    self.net.nodes[node.index()].run_turn(BATCH, allowed, |events| {
                        node_step(self, node, None, events, &mut ready);
                    })
                }
            };
            if let Some(more) = ran {
                steps += 1;
                if more {
                    ready.add(actor);
                }
            }
        }
    }
}

impl Shared {
    /// The end of a node's stop (a crash, or a fail-stop on a disk error), once it can take no
    /// more steps: the flush jobs its closed `flusher` left undone will never report, so they
    /// stop counting; its disk loses what was not synced; the crash is observed and recorded.
    fn after_stop(&self, node: NodeId, flusher: Option<Arc<Mailbox<DiskJob>>>) {
        if let Some(f) = flusher {
            let lost = f
                .drain()
                .iter()
                .filter(|j| matches!(j, DiskJob::Persist(_)))
                .count();
            if self.cfg.ack == AckPolicy::Disk {
                let mut ready = Ready::default();
                self.settle(lost, &mut ready);
                self.run_here(ready);
            }
        }
        self.nodes[node.index()].disk.crash();
        self.observer.observe(&Event::NodeCrashed(node));
        self.record(|| Step::NodeCrashed {
            node,
            on_disk: self.synced.node(node),
        });
    }

    /// `n` pieces of commit-path work are done; if that was the last of them and the commit
    /// point is short of the last record, something was lost: the writer repairs it at once
    /// (its re-sends go into `ready`).
    fn settle(&self, n: usize, ready: &mut Ready) {
        if self.net.settle(n) {
            self.repair_if_short(ready);
        }
    }

    /// The end of a step that took `taken` counted items: its ghost events observed, its
    /// messages queued, then the items settled (in that order, so that the count cannot drop to
    /// zero while what they caused is still to be queued).
    fn finish_step(&self, taken: usize, mut fx: Effects, ready: &mut Ready) {
        self.observe(&mut fx);
        if self.net.step_done(taken, fx.sent, ready) {
            self.repair_if_short(ready);
        }
    }

    /// The commit path is quiet: if the commit point is short of the last record, something
    /// was lost, and the writer repairs it now.
    fn repair_if_short(&self, ready: &mut Ready) {
        if self.committed.get() < Lsn(self.appended.load(Ordering::SeqCst)) {
            writer_step(self, vec![WriterInput::Repair], 0, ready);
        }
    }
}

/// A running engine.
pub struct Engine {
    shared: Arc<Shared>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Engine {
    /// Starts the engine on six disks (one per node, index = node), recovering each node from
    /// its segment. Returns each node's recovery report too.
    pub fn start(
        cfg: EngineConfig,
        faults: FaultConfig,
        disks: Vec<Arc<dyn Disk>>,
        observer: Arc<dyn Observer>,
    ) -> io::Result<(Engine, Vec<Summary>)> {
        Engine::start_recorded(cfg, faults, disks, observer, None)
    }

    /// [`Engine::start`], recording every protocol step into `recording`.
    pub fn start_recorded(
        cfg: EngineConfig,
        faults: FaultConfig,
        disks: Vec<Arc<dyn Disk>>,
        observer: Arc<dyn Observer>,
        recording: Option<Arc<dyn StepSink>>,
    ) -> io::Result<(Engine, Vec<Summary>)> {
        assert_eq!(disks.len(), aurora_redo_model::types::STORAGE_NODES);
        let replicas = cfg
            .replicas
            .iter()
            .map(|r| Mutex::new(Replica::new(*r, 0, cfg.clone())))
            .collect();
        let shared = Arc::new(Shared {
            net: Mailboxes::new(cfg.replicas.len(), Faults::new(faults)),
            observer,
            recording,
            writer: Mutex::new(Writer::new(cfg.clone())),
            committed: Published::new(),
            appended: AtomicU64::new(cfg.resume_at.0),
            nodes: disks
                .into_iter()
                .map(|disk| NodeSlot {
                    disk,
                    state: Mutex::new(NodeState {
                        sm: None,
                        failed: false,
                        incarnation: 0,
                        flusher: None,
                        threads: Vec::new(),
                    }),
                })
                .collect(),
            replicas,
            synced: SharedQuorum::new(),
            disk_failures: Mutex::new(Vec::new()),
            cfg,
        });
        // A recovered volume's commit point starts at its recovery point.
        shared.committed.raise(shared.cfg.resume_at);
        let mut recovered = Vec::new();
        for node in NodeId::all() {
            recovered.push(start_node(&shared, node, false)?);
        }
        let mut threads = Vec::new();
        let s = shared.clone();
        threads.push(thread::spawn(move || writer_loop(&s)));
        for r in 0..shared.replicas.len() {
            let s = shared.clone();
            threads.push(thread::spawn(move || replica_loop(&s, r)));
        }
        Ok((Engine { shared, threads }, recovered))
    }

    pub fn config(&self) -> &EngineConfig {
        &self.shared.cfg
    }

    /// Creates a record and sends it to the six nodes; does not wait for storage.
    pub fn append(&self, page: PageId, value: u64) -> Lsn {
        self.append_batch(&[(page, value)])
    }

    /// Creates several records and sends them as one batch per node. Returns the last LSN.
    pub fn append_batch(&self, changes: &[(PageId, u64)]) -> Lsn {
        self.wait_for_allocation(changes.len() as u64);
        let mut ready = Ready::default();
        let last = {
            let mut w = lock(&self.shared.writer);
            let mut out = Vec::with_capacity(changes.len() * (STORAGE_NODES + 1));
            for &(page, value) in changes {
                let input = WriterInput::Append { page, value };
                self.shared.record(|| Step::Writer(input.clone()));
                w.handle_into(input, &mut out);
            }
            let fx: Effects = out.into_iter().collect();
            self.shared.appended.store(w.last_lsn().0, Ordering::SeqCst);
            // Queued under the writer lock, so every node receives appends in LSN order when
            // the network does not reorder.
            self.shared.route(fx, &mut ready);
            w.last_lsn()
        };
        // The nodes' steps, and the writer's handling of their acks, on this thread.
        self.shared.run_here(ready);
        last
    }

    /// Back-pressure, the LSN allocation limit ([`EngineConfig::allocation_limit`]): waits
    /// until `n` more records keep the writer within the limit of the volume durable point.
    /// Clients append one at a time per thread, so a few may pass the limit together, by at
    /// most a batch each.
    fn wait_for_allocation(&self, n: u64) {
        let appended = self.shared.appended.load(Ordering::SeqCst);
        AllocationLimit::new(self.shared.cfg.allocation_limit).admit(
            appended,
            n,
            &self.shared.synced,
        );
    }

    /// Blocks until the commit point reaches `lsn`.
    pub fn wait_committed(&self, lsn: Lsn) -> Lsn {
        self.shared.committed.wait_for(lsn)
    }

    /// The writer's commit point.
    pub fn commit_point(&self) -> Lsn {
        self.shared.committed.get()
    }

    /// The last LSN the writer created.
    pub fn last_lsn(&self) -> Lsn {
        lock(&self.shared.writer).last_lsn()
    }

    /// One timer tick for every actor (retries: re-send, re-pull).
    pub fn tick(&self) {
        self.shared.net.tick_all();
    }

    /// Ticks, yielding between ticks, until `done()` holds and the engine is [`quiescent`]
    /// (`Engine::quiescent`). More than `max_ticks` ticks is a liveness failure: it panics with
    /// the engine's description. Returns the ticks taken. For tests that drive a whole scenario.
    ///
    /// [`quiescent`]: Engine::quiescent
    pub fn tick_until_quiescent(&self, done: impl Fn() -> bool, max_ticks: usize) -> usize {
        let mut ticks = 0;
        while !(done() && self.quiescent()) {
            ticks += 1;
            assert!(
                ticks < max_ticks,
                "no quiescence after {max_ticks} ticks:\n{}",
                self.describe()
            );
            self.tick();
            thread::yield_now();
        }
        ticks
    }

    /// The volume durable LSN (ghost: 4 nodes' fsyncs have returned covering it).
    pub fn volume_durable(&self) -> Lsn {
        self.shared.synced.point()
    }

    /// Each node's highest synced LSN (ghost).
    pub fn synced(&self) -> [Lsn; aurora_redo_model::types::STORAGE_NODES] {
        self.shared.synced.per_node()
    }

    /// A node's `(scl, flushed)`, or `None` while it is crashed.
    pub fn node_watermarks(&self, node: NodeId) -> Option<(Lsn, Lsn)> {
        let st = lock(&self.shared.nodes[node.index()].state);
        st.sm.as_ref().map(|sm| (sm.scl(), sm.flushed()))
    }

    /// How many records `node` keeps in memory (unflushed, cached, ...), or `None` while it is
    /// crashed.
    pub fn node_memory_len(&self, node: NodeId) -> Option<usize> {
        let st = lock(&self.shared.nodes[node.index()].state);
        st.sm.as_ref().map(StorageNode::memory_len)
    }

    /// Whether `node` holds `lsn` in memory or on disk right now (ground truth for
    /// CommittedRecoverable: a crashed node counts by what its disk really synced).
    pub fn node_holds(&self, node: NodeId, lsn: Lsn) -> bool {
        let st = lock(&self.shared.nodes[node.index()].state);
        match &st.sm {
            Some(sm) => sm.holds(lsn),
            None => self.shared.synced.node(node) >= lsn,
        }
    }

    /// Crashes a storage node: it stops, its memory is lost, and its disk loses every byte that
    /// was not synced. Messages already queued for it survive.
    pub fn crash_node(&self, node: NodeId) {
        let slot = &self.shared.nodes[node.index()];
        self.shared.net.faults.set_down(node, true);
        let threads = {
            let mut st = lock(&slot.state);
            if st.sm.is_none() {
                return;
            }
            st.sm = None;
            st.incarnation += 1;
            let flusher = st.flusher.take();
            if let Some(f) = &flusher {
                f.close();
            }
            self.shared.net.nodes[node.index()].close();
            (std::mem::take(&mut st.threads), flusher)
        };
        let (threads, flusher) = threads;
        for t in threads {
            let _ = t.join();
        }
        // Recorded once the node's threads are gone: no step of it can follow, and the synced
        // prefix is final.
        self.shared.after_stop(node, flusher);
    }

    /// Restarts a crashed node from its segment file.
    pub fn restart_node(&self, node: NodeId) -> io::Result<Summary> {
        let rec = start_node(&self.shared, node, true)?;
        self.shared.net.faults.set_down(node, false);
        Ok(rec)
    }

    /// Starts (`Some(az)`) or ends (`None`) an AZ outage.
    pub fn az_outage(&self, az: Option<Az>) {
        self.shared.net.faults.set_outage(az);
        self.shared.record(|| Step::AzOutage(az));
    }

    /// Crashes a replica and restarts it empty.
    pub fn crash_replica(&self, r: ReplicaId) {
        let mut rep = lock(&self.shared.replicas[r.index()]);
        let incarnation = rep.incarnation() + 1;
        *rep = Replica::new(r, incarnation, self.shared.cfg.clone());
        self.shared.record(|| Step::ReplicaRestarted {
            replica: r,
            incarnation,
        });
        self.shared.observer.observe(&Event::ReplicaRestarted {
            replica: r,
            incarnation,
        });
    }

    /// A replica's read: the applied value of `page` and its LSN.
    pub fn read(&self, r: ReplicaId, page: PageId) -> Option<(u64, Lsn)> {
        lock(&self.shared.replicas[r.index()]).read(page)
    }

    /// Runs `f` on a replica's state (under its lock).
    pub fn with_replica<T>(&self, r: ReplicaId, f: impl FnOnce(&Replica) -> T) -> T {
        f(&lock(&self.shared.replicas[r.index()]))
    }

    /// A one-paragraph dump of every watermark, for diagnosing a stuck run.
    pub fn describe(&self) -> String {
        let w = lock(&self.shared.writer);
        let mut out = format!(
            "writer: last {} commit {} acked {:?}\n",
            w.last_lsn(),
            w.commit_point(),
            NodeId::all().map(|n| w.acked(n)).collect::<Vec<_>>()
        );
        drop(w);
        for n in NodeId::all() {
            let st = lock(&self.shared.nodes[n.index()].state);
            let wm = st
                .sm
                .as_ref()
                .map(|sm| (sm.scl(), sm.flushed(), sm.flushing()));
            out += &format!(
                "{n}: (scl, flushed, flushing) {wm:?}, queued {}\n",
                self.shared.net.nodes[n.index()].len()
            );
        }
        for r in &self.shared.replicas {
            let r = lock(r);
            out += &format!(
                "{:?}: applied {} known commit {} durable {} retained {}\n",
                r.id(),
                r.applied(),
                r.known_commit(),
                r.durable(),
                r.retained().len()
            );
        }
        out
    }

    /// Flusher I/O errors so far (each stopped its node: [`Engine::disk_failures`]).
    pub fn io_errors(&self) -> Vec<String> {
        self.disk_failures().iter().map(|f| f.to_string()).collect()
    }

    /// The nodes stopped by a disk error so far.
    pub fn disk_failures(&self) -> Vec<DiskFailure> {
        lock(&self.shared.disk_failures).clone()
    }

    /// Why the engine cannot commit any more, if it cannot: disk errors stopped more nodes than
    /// a write quorum can spare. Each failure is named.
    pub fn stopped(&self) -> Option<String> {
        let failures = self.disk_failures();
        let spare = STORAGE_NODES - aurora_redo_model::types::WRITE_QUORUM;
        (failures.len() > spare).then(|| {
            let each: Vec<String> = failures.iter().map(|f| f.to_string()).collect();
            format!(
                "{} of {STORAGE_NODES} storage nodes stopped on disk errors, fewer than a write \
                 quorum remain: {}",
                failures.len(),
                each.join("; ")
            )
        })
    }

    /// Whether everything written is committed, synced on every live node, applied by every
    /// replica and discarded by it.
    pub fn quiescent(&self) -> bool {
        let last = self.last_lsn();
        if self.commit_point() < last {
            return false;
        }
        for slot in &self.shared.nodes {
            let st = lock(&slot.state);
            match &st.sm {
                Some(sm) if sm.flushed() < last => return false,
                _ => {}
            }
        }
        self.shared.replicas.iter().all(|r| {
            let r = lock(r);
            r.applied() >= last && r.retained().is_empty()
        })
    }

    /// Stops every thread. Nodes keep what is on their disks.
    pub fn shutdown(self) {
        let shared = self.shared;
        shared.net.writer.close();
        for m in &shared.net.replicas {
            m.close();
        }
        let mut node_threads = Vec::new();
        for (i, slot) in shared.nodes.iter().enumerate() {
            let mut st = lock(&slot.state);
            if let Some(f) = st.flusher.take() {
                f.close();
            }
            shared.net.nodes[i].close();
            node_threads.extend(std::mem::take(&mut st.threads));
        }
        for t in self.threads.into_iter().chain(node_threads) {
            let _ = t.join();
        }
    }
}

/// Recovers `node` from its disk and starts its driver and flusher threads (`restart`: after a
/// crash, recorded as a step; the first start is the recording's initial state).
fn start_node(shared: &Arc<Shared>, node: NodeId, restart: bool) -> io::Result<Summary> {
    let slot = &shared.nodes[node.index()];
    // In bounded memory: the node reads its flushed records back from the segment on demand.
    let (segment, recovered) = Segment::open_summary(slot.disk.clone())?;
    // A recording's restart step carries the node's whole log (recordings are of short runs).
    let mut whole_log = None;
    if restart && shared.recording.is_some() {
        let mut records = segment.read(Lsn(1), recovered.prefix)?;
        records.extend(recovered.beyond.iter().copied());
        whole_log = Some(records);
    }
    let segment = Arc::new(segment);
    let mut st = lock(&slot.state);
    if st.sm.is_some() {
        return Ok(recovered);
    }
    if st.failed {
        return Err(io::Error::other(format!(
            "{node} stopped on a disk error and is not restarted"
        )));
    }
    let sm = StorageNode::restart(
        node,
        shared.cfg.clone(),
        recovered.prefix,
        recovered.beyond.clone(),
        recovered.adopted(),
        recovered.sealed(),
    );
    let flushed = sm.flushed();
    shared.synced.report(node, flushed);
    shared.observer.observe(&Event::NodeRecovered {
        node,
        lsn: flushed,
        damage: recovered.report(),
    });
    st.sm = Some(sm);
    if restart {
        shared.record(|| Step::NodeRestarted {
            node,
            recovered: whole_log.unwrap_or_default(),
            damage: recovered.report(),
        });
    }
    let incarnation = st.incarnation;
    let jobs = Arc::new(Mailbox::new());
    st.flusher = Some(jobs.clone());
    shared.net.nodes[node.index()].reopen();
    let s = shared.clone();
    let flusher = thread::spawn(move || flusher_loop(&s, node, incarnation, &jobs, &segment));
    let s = shared.clone();
    let driver = thread::spawn(move || node_loop(&s, node, incarnation));
    st.threads = vec![driver, flusher];
    Ok(recovered)
}

/// A node's own thread: the node's steps that no sender ran.
fn node_loop(shared: &Shared, node: NodeId, incarnation: u64) {
    let mailbox = &shared.net.nodes[node.index()];
    loop {
        let items = match mailbox.turn(BATCH) {
            Recv::Closed => return,
            Recv::Tick => {
                let _ = mailbox.finish();
                continue;
            }
            Recv::Items(items) => items,
        };
        let mut ready = Ready::default();
        let current = node_step(shared, node, Some(incarnation), items, &mut ready);
        // The thread comes back for what is queued: `finish`'s answer is for other runners.
        let _ = mailbox.finish();
        shared.run_here(ready);
        if !current {
            return;
        }
    }
}

/// One step of `node` on `items`, then its flush jobs to its flusher and its messages out.
/// `own`: the incarnation of the node's thread calling it (`None` for a sender running the
/// node). Returns `false` if the node is not that incarnation any more (crashed, or restarted).
fn node_step(
    shared: &Shared,
    node: NodeId,
    own: Option<u64>,
    items: Vec<NodeEvent>,
    ready: &mut Ready,
) -> bool {
    let mut fx = Effects::default();
    let taken = items.len();
    {
        let mut st = lock(&shared.nodes[node.index()].state);
        let incarnation = st.incarnation;
        if own.is_some_and(|i| i != incarnation) {
            drop(st);
            shared.finish_step(taken, fx, ready);
            return false;
        }
        // A crashed node: what was taken from its mailbox is lost with it.
        let Some(sm) = st.sm.as_mut() else {
            drop(st);
            shared.finish_step(taken, fx, ready);
            return own.is_none();
        };
        let mut step = |input: StorageInput| {
            shared.record(|| Step::Node {
                node,
                input: input.clone(),
            });
            fx.extend(sm.handle(input));
        };
        let mut batch = Vec::new();
        for item in items {
            match item {
                NodeEvent::Net(env) => batch.push(env),
                NodeEvent::FlushDone {
                    upto,
                    incarnation: i,
                } if i == incarnation => {
                    if !batch.is_empty() {
                        step(StorageInput::Deliver(std::mem::take(&mut batch)));
                    }
                    step(StorageInput::FlushDone { upto });
                }
                NodeEvent::ReadDone {
                    to,
                    from,
                    records,
                    incarnation: i,
                } if i == incarnation => {
                    if !batch.is_empty() {
                        step(StorageInput::Deliver(std::mem::take(&mut batch)));
                    }
                    step(StorageInput::ReadDone { to, from, records });
                }
                NodeEvent::FlushDone { .. } | NodeEvent::ReadDone { .. } => {}
            }
        }
        if !batch.is_empty() {
            step(StorageInput::Deliver(batch));
        }
        // Queued under the node's lock, so a crash (which closes the flusher under it) either
        // finds them queued or comes first.
        if let Some(f) = &st.flusher {
            let reads = std::mem::take(&mut fx.read_back)
                .into_iter()
                .map(DiskJob::Read);
            let persists = std::mem::take(&mut fx.persist);
            if shared.cfg.ack == AckPolicy::Disk {
                // Under ack `disk` a flush is commit-path work: its end brings the acks.
                shared.net.begin(persists.len());
            }
            let jobs: Vec<(DiskJob, Option<usize>)> = reads
                .chain(persists.into_iter().map(DiskJob::Persist))
                .map(|j| (j, None))
                .collect();
            if !jobs.is_empty() {
                f.push_all(jobs);
            }
        }
    };
    shared.finish_step(taken, fx, ready);
    true
}

/// The flusher: append, fsync, and only then report the flush (unless the seeded bug says
/// otherwise); and read flushed records back for pulls.
fn flusher_loop(
    shared: &Shared,
    node: NodeId,
    incarnation: u64,
    jobs: &Mailbox<DiskJob>,
    segment: &Segment,
) {
    let notify_first = shared.cfg.has_bug(ImplBug::FlushNotifyBeforeFsync);
    let alive = || lock(&shared.nodes[node.index()].state).incarnation == incarnation;
    // The node's step on the completion, and what it sets off, run on this thread.
    let tell_node = |event: NodeEvent| {
        shared.net.push_node(node, event);
        let mut ready = Ready::default();
        ready.add(Runnable::Node(node));
        shared.run_here(ready);
    };
    let counted = shared.cfg.ack == AckPolicy::Disk;
    let done = |upto| tell_node(NodeEvent::FlushDone { upto, incarnation });
    loop {
        let batches = match jobs.recv(BATCH) {
            Recv::Closed => return,
            Recv::Tick => continue,
            Recv::Items(b) => b,
        };
        for job in batches {
            let records = match job {
                DiskJob::Persist(records) => records,
                DiskJob::Read(read) => {
                    match segment.read(read.from, read.upto) {
                        Ok(records) => tell_node(NodeEvent::ReadDone {
                            to: read.to,
                            from: read.from,
                            records,
                            incarnation,
                        }),
                        Err(e) => {
                            return fail_node(shared, node, incarnation, "a read-back", &e);
                        }
                    }
                    continue;
                }
            };
            let result = crate::flusher::persist(
                segment,
                &records,
                notify_first,
                alive,
                |upto| {
                    shared.synced.report(node, upto);
                    shared.observer.observe(&Event::Synced { node, lsn: upto });
                },
                done,
            );
            if counted {
                // The flush job is done (its completion, if any, was handled above).
                let mut ready = Ready::default();
                shared.settle(1, &mut ready);
                shared.run_here(ready);
            }
            match result {
                Ok(Some(_)) => {}
                Ok(None) => return, // crashed before the sync
                Err(e) => return fail_node(shared, node, incarnation, "a write or fsync", &e),
            }
        }
    }
}

/// Fail-stop, called by `node`'s flusher (of `incarnation`) on an I/O error: the node stops at
/// once as if crashed (its memory lost, its disk keeping what was synced: after a failed write
/// or fsync nothing more can be trusted), is marked failed so it is never restarted, and the
/// failure is recorded for [`Engine::disk_failures`]. A node crashed meanwhile is left alone.
fn fail_node(shared: &Shared, node: NodeId, incarnation: u64, what: &str, e: &io::Error) {
    let slot = &shared.nodes[node.index()];
    let flusher = {
        let mut st = lock(&slot.state);
        if st.incarnation != incarnation || st.sm.is_none() {
            return;
        }
        shared.net.faults.set_down(node, true);
        st.sm = None;
        st.failed = true;
        st.incarnation += 1;
        shared.net.nodes[node.index()].close();
        st.flusher.take()
    };
    lock(&shared.disk_failures).push(DiskFailure {
        node,
        file: slot.disk.describe(),
        op: what.into(),
        error: e.to_string(),
    });
    if let Some(f) = &flusher {
        f.close();
    }
    shared.after_stop(node, flusher);
}

/// The writer's own thread: its ticks, and the deliveries no sender ran.
fn writer_loop(shared: &Shared) {
    let mailbox = &shared.net.writer;
    loop {
        let (inputs, n): (Vec<WriterInput>, usize) = match mailbox.turn(BATCH) {
            Recv::Closed => return,
            Recv::Tick => (vec![WriterInput::Tick], 0),
            Recv::Items(envs) => {
                let n = envs.len();
                (envs.into_iter().map(WriterInput::Deliver).collect(), n)
            }
        };
        let mut ready = Ready::default();
        writer_step(shared, inputs, n, &mut ready);
        let _ = mailbox.finish();
        shared.run_here(ready);
    }
}

/// One step of the writer: its inputs (`taken` of them counted items from its mailbox), the
/// commit point published, its messages out.
fn writer_step(shared: &Shared, inputs: Vec<WriterInput>, taken: usize, ready: &mut Ready) {
    let mut fx = Effects::default();
    let commit = {
        let mut w = lock(&shared.writer);
        let mut out = Vec::new();
        for input in inputs {
            shared.record(|| Step::Writer(input.clone()));
            w.handle_into(input, &mut out);
        }
        fx.extend(out);
        shared.observe(&mut fx);
        w.commit_point()
    };
    shared.committed.raise(commit);
    shared.finish_step(taken, fx, ready);
}

fn replica_loop(shared: &Shared, r: usize) {
    loop {
        let inputs: Vec<ReplicaInput> = match shared.net.replicas[r].recv(BATCH) {
            Recv::Closed => return,
            Recv::Tick => vec![ReplicaInput::Tick],
            Recv::Items(envs) => envs.into_iter().map(ReplicaInput::Deliver).collect(),
        };
        let mut fx = Effects::default();
        {
            let mut rep = lock(&shared.replicas[r]);
            for input in inputs {
                shared.record(|| Step::Replica {
                    replica: shared.cfg.replicas[r],
                    input: input.clone(),
                });
                fx.extend(rep.handle(input));
            }
            shared.observe(&mut fx);
        }
        // The nodes' answers to its pulls, on this thread.
        let mut ready = Ready::default();
        shared.route(fx, &mut ready);
        shared.run_here(ready);
    }
}
