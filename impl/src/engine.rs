//! The concurrent engine: threads and mailboxes driving the role state machines.
//!
//! One thread per actor (writer network thread, six storage nodes, each replica) plus one
//! flusher thread per storage node, which also serves the node's read-backs (reads of flushed
//! records a pull needs) in order with its flush jobs. Each thread receives a batch from its mailbox, runs it
//! through its state machine under that machine's lock, forwards the ghost events to the
//! observer, then performs the outputs (sends, flush jobs). Client threads call [`Engine::append`]
//! and [`Engine::wait_committed`]. Ticks (retries) come from [`Engine::tick`]: a timer thread in
//! production, the test's own loop under shuttle.
//!
//! Every machine's outputs are sorted into [`Effects`], as in the deterministic
//! [`crate::cluster::Cluster`]. Started with a [`StepSink`] ([`Engine::start_recorded`]), the
//! engine records every [`Step`] a role machine takes, under that machine's lock (see
//! [`crate::recorder`]): replayed on a `Cluster`, the recording reproduces the run.

use std::io;

use aurora_redo_model::types::{Az, Lsn, NodeId, PageId, Record, ReplicaId};

use crate::config::{EngineConfig, ImplBug};
use crate::disk::Disk;
use crate::faults::{FaultConfig, Faults};
use crate::observer::{Event, Observer};
use crate::output::{Effects, ReadBack};
use crate::recorder::{Step, StepSink};
use crate::replica::{Replica, ReplicaInput};
use crate::segment::{Segment, Summary};
use crate::storage::{StorageInput, StorageNode};
use crate::sync::{lock, thread, Arc, Mutex};
use crate::transport::{Mailbox, Mailboxes, NodeEvent, Recv};
use crate::watermark::{Published, SharedQuorum};
use crate::writer::{Writer, WriterInput};

/// Most messages one thread takes from its mailbox at once.
const BATCH: usize = 4096;

/// What a node's flusher thread does: the node's disk I/O, in the order the node asked for it.
enum DiskJob {
    /// Append and sync these records, then report `FlushDone`.
    Persist(Vec<Record>),
    /// Read these flushed records back from the segment, then report `ReadDone`.
    Read(ReadBack),
}

struct NodeState {
    sm: Option<StorageNode>,
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
    nodes: Vec<NodeSlot>,
    replicas: Vec<Mutex<Replica>>,
    /// Ghost: each node's highest LSN whose fsync has returned; the point is the volume durable
    /// LSN.
    synced: SharedQuorum,
    /// I/O errors hit by flushers (a node whose disk fails stops flushing).
    io_errors: Mutex<Vec<String>>,
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

    /// Hands the ghost events to the observer, then sends the messages. (Flush jobs are the
    /// node loop's to route.)
    fn route(&self, mut fx: Effects) {
        self.observe(&mut fx);
        self.net.send(fx.sent);
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
            nodes: disks
                .into_iter()
                .map(|disk| NodeSlot {
                    disk,
                    state: Mutex::new(NodeState {
                        sm: None,
                        incarnation: 0,
                        flusher: None,
                        threads: Vec::new(),
                    }),
                })
                .collect(),
            replicas,
            synced: SharedQuorum::new(),
            io_errors: Mutex::new(Vec::new()),
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
        let mut w = lock(&self.shared.writer);
        let mut fx = Effects::default();
        for &(page, value) in changes {
            let input = WriterInput::Append { page, value };
            self.shared.record(|| Step::Writer(input.clone()));
            fx.extend(w.handle(input));
        }
        // Sent under the writer lock, so every node receives appends in LSN order when the
        // network does not reorder.
        self.shared.route(fx);
        w.last_lsn()
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
            if let Some(f) = st.flusher.take() {
                f.close();
            }
            self.shared.net.nodes[node.index()].close();
            std::mem::take(&mut st.threads)
        };
        for t in threads {
            let _ = t.join();
        }
        slot.disk.crash();
        self.shared.observer.observe(&Event::NodeCrashed(node));
        // Recorded once the node's threads are gone: no step of it can follow, and the synced
        // prefix is final.
        self.shared.record(|| Step::NodeCrashed {
            node,
            on_disk: self.shared.synced.node(node),
        });
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

    /// Flusher I/O errors so far.
    pub fn io_errors(&self) -> Vec<String> {
        lock(&self.shared.io_errors).clone()
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

fn node_loop(shared: &Shared, node: NodeId, incarnation: u64) {
    let mailbox = &shared.net.nodes[node.index()];
    loop {
        let items = match mailbox.recv(BATCH) {
            Recv::Closed => return,
            Recv::Tick => continue,
            Recv::Items(items) => items,
        };
        let mut fx = Effects::default();
        let flusher = {
            let mut st = lock(&shared.nodes[node.index()].state);
            if st.incarnation != incarnation {
                return;
            }
            let Some(sm) = st.sm.as_mut() else { return };
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
            st.flusher.clone()
        };
        if let Some(f) = &flusher {
            let reads = std::mem::take(&mut fx.read_back)
                .into_iter()
                .map(DiskJob::Read);
            let persists = std::mem::take(&mut fx.persist)
                .into_iter()
                .map(DiskJob::Persist);
            f.push_all(reads.chain(persists).map(|job| (job, None)));
        }
        shared.route(fx);
    }
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
    let done = |upto| {
        shared.net.nodes[node.index()].push(NodeEvent::FlushDone { upto, incarnation });
    };
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
                        Ok(records) => shared.net.nodes[node.index()].push(NodeEvent::ReadDone {
                            to: read.to,
                            from: read.from,
                            records,
                            incarnation,
                        }),
                        // The pull goes unanswered; the replica pulls again after a timeout.
                        Err(e) => lock(&shared.io_errors)
                            .push(format!("{node}: segment read-back failed: {e}")),
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
            match result {
                Ok(Some(_)) => {}
                Ok(None) => return, // crashed before the sync
                Err(e) => {
                    lock(&shared.io_errors)
                        .push(format!("{node}: segment write or fsync failed: {e}"));
                    return;
                }
            }
        }
    }
}

fn writer_loop(shared: &Shared) {
    loop {
        let inputs: Vec<WriterInput> = match shared.net.writer.recv(BATCH) {
            Recv::Closed => return,
            Recv::Tick => vec![WriterInput::Tick],
            Recv::Items(envs) => envs.into_iter().map(WriterInput::Deliver).collect(),
        };
        let mut fx = Effects::default();
        let commit = {
            let mut w = lock(&shared.writer);
            for input in inputs {
                shared.record(|| Step::Writer(input.clone()));
                fx.extend(w.handle(input));
            }
            shared.observe(&mut fx);
            w.commit_point()
        };
        shared.committed.raise(commit);
        shared.route(fx);
    }
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
        shared.route(fx);
    }
}
