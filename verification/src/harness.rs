//! A deterministic driver of the implementation: the engine's pure role state machines
//! (`Writer`, six `StorageNode`s, the `Replica`s), a pool of their in-flight messages, and a
//! segment file per node, stepped one model [`Action`] at a time. No threads.
//!
//! # How a model step maps to the implementation
//! - `Write`: the writer creates the record the model's writer creates (`record_for`); its six
//!   `Append`s go into the pool.
//! - `Deliver(e)` / `Drop(e)`: that very `Append` is taken from the pool and handed to the node (on
//!   a duplicating network it stays in the pool), or removed.
//! - `Flush(n)`: the node's pending flush jobs (`Persist` outputs) are appended to its segment
//!   file and synced, and each `FlushDone` is fed back, until no job is left: the model flushes
//!   the whole contiguous prefix, the engine's flusher does it in one or more jobs.
//! - `Commit(L)`, `LearnCommit(r, L)`, `LearnDurable(r, L)`: the pending `Ack`s (to the writer),
//!   `Available`s or `Flushed`s (to `r`) are delivered, one at a time, until the receiver's
//!   watermark is `L`. A delivery is chosen only if it does not carry the watermark past `L` (tried
//!   on a copy of the receiver first). Watermark messages stay in the pool once delivered, as the
//!   model's announcements stay receivable: a restarted replica may hear them again.
//! - `Pull(r, n)`: `Pull { from: applied + 1 }` from `r` is delivered to `n`; `n`'s `Records` answer
//!   is delivered to `r` at once. The `Available` and `Flushed` that `n` re-sends with it go into
//!   the pool, for a later `LearnCommit`/`LearnDurable` step: delivering them inside the pull
//!   would make one engine step two model steps. The replica's own pulls (its timer's choice of
//!   node) stay undelivered: the model's `Pull` is that choice.
//! - Faults map one to one: a node crash drops its memory, its pending flush jobs and the
//!   unsynced bytes of its segment; a restart recovers the node from the segment; a lost node's
//!   segment is emptied and messages to it are dropped; an AZ outage stops `Append` and `Pull`
//!   traffic to its nodes; a replica crash drops the replica, a restart starts a new incarnation.
//!
//! A step the engine cannot take (the message is not in the pool, no delivery order reaches the
//! watermark, ...) is [`Infeasible`], never skipped. Every ghost event goes to the engine's
//! runtime [`Monitor`], which judges five invariants through `aurora_redo_model::invariants`; the
//! harness judges the sixth, CommittedRecoverable, on its own state with the same predicate.

use crate::abstraction::{Abstraction, NodeView, ReplicaView};
use aurora_redo_impl::disk::{Disk, FileDisk, SimDisk};
use aurora_redo_impl::monitor::{Monitor, Violation};
use aurora_redo_impl::observer::{Event, Observer};
use aurora_redo_impl::replica::{Replica, ReplicaInput, ReplicaOutput};
use aurora_redo_impl::segment::Segment;
use aurora_redo_impl::storage::{StorageInput, StorageNode, StorageOutput};
use aurora_redo_impl::sync::Arc;
use aurora_redo_impl::writer::{Writer, WriterInput, WriterOutput};
use aurora_redo_impl::{Config as ImplConfig, ImplBug};
use aurora_redo_model::invariants::readable_by_every_read_quorum;
use aurora_redo_model::state::{record_for, NodeStatus};
use aurora_redo_model::{
    Action, Actor, Az, Config, Envelope, Lsn, Msg, NetworkKind, NodeId, Record, ReplicaId,
    STORAGE_NODES,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::PathBuf;

/// Where the nodes' segment files live.
#[derive(Clone, Debug)]
pub enum DiskKind {
    /// In memory, with the same synced/unsynced distinction (fast; for property tests).
    Simulated,
    /// Real files `s0.seg` .. `s5.seg` in this directory.
    Files(PathBuf),
}

/// A step the engine cannot take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Infeasible(pub String);

impl fmt::Display for Infeasible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn infeasible<T>(why: impl Into<String>) -> Result<T, Infeasible> {
    Err(Infeasible(why.into()))
}

struct Node {
    sm: Option<StorageNode>,
    lost: bool,
    disk: Arc<dyn Disk>,
    segment: Segment,
    /// `Persist` jobs handed to the flusher and not yet done.
    jobs: VecDeque<Vec<Record>>,
    /// The contiguous prefix its segment holds synced.
    on_disk: Lsn,
}

/// The kinds of watermark message a receiver learns from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Ack,
    Available,
    Flushed,
}

fn watermark_of(msg: &Msg) -> Option<(Kind, NodeId, Lsn)> {
    match *msg {
        Msg::Ack { node, scl } => Some((Kind::Ack, node, scl)),
        Msg::Available { node, scl } => Some((Kind::Available, node, scl)),
        Msg::Flushed { node, lsn } => Some((Kind::Flushed, node, lsn)),
        _ => None,
    }
}

struct ReplicaSlot {
    sm: Option<Replica>,
    incarnation: u32,
    /// This incarnation's inputs: replaying them into a fresh replica gives a copy to try a
    /// delivery on.
    inputs: Vec<ReplicaInput>,
    /// Per kind and node, the value of the last watermark message delivered (this incarnation).
    last: BTreeMap<(Kind, NodeId), Lsn>,
}

/// The implementation, driven deterministically by model steps.
pub struct Harness {
    config: Config,
    cfg: ImplConfig,
    writer: Writer,
    writer_last: BTreeMap<NodeId, Lsn>,
    nodes: Vec<Node>,
    replicas: Vec<ReplicaSlot>,
    /// Messages in flight (identical ones coalesce, as in the model's network).
    pool: BTreeSet<Envelope>,
    az_out: Option<Az>,
    /// The steps taken so far.
    history: Vec<Action>,
    /// The engine's runtime invariant monitor, fed every ghost event.
    monitor: Monitor,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    /// A fresh system for the model configuration `config`, with `bug` seeded in the engine.
    pub fn new(config: &Config, bug: Option<ImplBug>, disks: DiskKind) -> std::io::Result<Self> {
        let cfg = ImplConfig::new(config.ack, config.replicas as usize).with_bug(bug);
        let mut nodes = Vec::new();
        for n in NodeId::all() {
            let disk: Arc<dyn Disk> = match &disks {
                DiskKind::Simulated => Arc::new(SimDisk::new()),
                DiskKind::Files(dir) => {
                    Arc::new(FileDisk::open(dir.join(format!("s{}.seg", n.0)))?)
                }
            };
            let (segment, recovered) = Segment::open(disk.clone())?;
            nodes.push(Node {
                sm: Some(StorageNode::recover(n, cfg.clone(), recovered.records)),
                lost: false,
                disk,
                segment,
                jobs: VecDeque::new(),
                on_disk: Lsn::ZERO,
            });
        }
        let replicas = (0..config.replicas)
            .map(|r| ReplicaSlot {
                sm: Some(Replica::new(ReplicaId(r), 0, cfg.clone())),
                incarnation: 0,
                inputs: Vec::new(),
                last: BTreeMap::new(),
            })
            .collect();
        Ok(Harness {
            config: config.clone(),
            writer: Writer::new(cfg.clone()),
            writer_last: BTreeMap::new(),
            cfg,
            nodes,
            replicas,
            pool: BTreeSet::new(),
            az_out: None,
            history: Vec::new(),
            // CommittedRecoverable is a property of the current state, which the harness judges
            // exactly (`unrecoverable_commit`, covering lost nodes too); the monitor's record of
            // past moments is kept apart so a healed state is not reported as broken.
            monitor: Monitor::new(false)
                .tolerating(aurora_redo_model::invariants::COMMITTED_RECOVERABLE),
            _dir: None,
        })
    }

    /// A fresh system whose segment files are real files in a new temporary directory.
    pub fn with_temp_files(config: &Config, bug: Option<ImplBug>) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut h = Harness::new(config, bug, DiskKind::Files(dir.path().to_path_buf()))?;
        h._dir = Some(dir);
        Ok(h)
    }

    /// The invariants broken so far: the monitor's, then CommittedRecoverable.
    pub fn violations(&self) -> Vec<Violation> {
        let mut v = self.monitor.violations();
        if let Some(detail) = self.unrecoverable_commit() {
            v.push(Violation {
                invariant: aurora_redo_model::invariants::COMMITTED_RECOVERABLE,
                detail,
            });
        }
        v
    }

    /// CommittedRecoverable on the engine's state: every committed record held (memory of a
    /// live node, or synced on a disk not lost) by enough nodes that every read quorum of 3
    /// surviving nodes meets one.
    fn unrecoverable_commit(&self) -> Option<String> {
        let commit = self.writer.commit_point();
        let surviving = self.nodes.iter().filter(|n| !n.lost).count();
        commit.prefix().find_map(|lsn| {
            let holders = self
                .nodes
                .iter()
                .filter(|n| !n.lost)
                .filter(|n| n.on_disk >= lsn || n.sm.as_ref().is_some_and(|sm| sm.holds(lsn)))
                .count();
            (!readable_by_every_read_quorum(holders, surviving)).then(|| {
                format!(
                    "committed record {lsn} is held by {holders} of {surviving} surviving nodes"
                )
            })
        })
    }

    /// The implementation's state, mapped to the abstraction.
    pub fn abstraction(&self) -> Abstraction {
        Abstraction {
            commit: self.writer.commit_point(),
            nodes: self
                .nodes
                .iter()
                .map(|n| match (&n.sm, n.lost) {
                    (_, true) => NodeView {
                        status: NodeStatus::Lost,
                        scl: Lsn::ZERO,
                        flushed: Lsn::ZERO,
                    },
                    (Some(sm), false) => NodeView {
                        status: NodeStatus::Up,
                        scl: sm.scl(),
                        flushed: sm.flushed(),
                    },
                    (None, false) => NodeView {
                        status: NodeStatus::Crashed,
                        scl: n.on_disk,
                        flushed: n.on_disk,
                    },
                })
                .collect(),
            replicas: self
                .replicas
                .iter()
                .map(|slot| {
                    slot.sm
                        .as_ref()
                        .map_or_else(ReplicaView::down, ReplicaView::of_engine)
                })
                .collect(),
        }
    }

    /// The steps taken so far, in order.
    pub fn history(&self) -> &[Action] {
        &self.history
    }

    /// Takes one model step on the implementation.
    pub fn step(&mut self, action: &Action) -> Result<(), Infeasible> {
        self.history.push(action.clone());
        match action {
            Action::Write => {
                let record = record_for(self.writer.last_lsn().next());
                let out = self.writer.handle(WriterInput::Append {
                    page: record.page,
                    value: record.value,
                });
                self.writer_outputs(out);
            }
            Action::Deliver(e) => self.deliver_append(e)?,
            Action::Drop(e) => {
                if !self.pool.remove(e) {
                    return infeasible(format!("{e:?} is not in flight"));
                }
            }
            Action::Flush(n, upto) => self.flush(*n, *upto)?,
            Action::Commit(to) => self.learn(Actor::Writer, Kind::Ack, *to)?,
            Action::LearnCommit(r, to) => self.learn(Actor::Replica(*r), Kind::Available, *to)?,
            Action::LearnDurable(r, to) => self.learn(Actor::Replica(*r), Kind::Flushed, *to)?,
            Action::Pull(r, n) => self.pull(*r, *n)?,
            Action::CrashNode(n) => {
                let node = &mut self.nodes[n.index()];
                if node.sm.take().is_none() {
                    return infeasible(format!("{n:?} is not up"));
                }
                node.jobs.clear();
                node.disk.crash();
                self.monitor.observe(&Event::NodeCrashed(*n));
            }
            Action::RestartNode(n) => self.restart_node(*n)?,
            Action::LoseNode(n) => {
                let node = &mut self.nodes[n.index()];
                node.sm = None;
                node.lost = true;
                node.jobs.clear();
                node.on_disk = Lsn::ZERO;
                node.disk
                    .replace(&[])
                    .map_err(|e| Infeasible(format!("cannot destroy {n:?}'s segment: {e}")))?;
                self.pool.retain(|e| e.dst != Actor::Storage(*n));
            }
            Action::AzOutage(az) => self.az_out = Some(*az),
            Action::AzRecover(_) => self.az_out = None,
            Action::CrashReplica(r) => {
                let slot = &mut self.replicas[r.index()];
                if slot.sm.take().is_none() {
                    return infeasible(format!("{r:?} is not up"));
                }
                slot.incarnation += 1;
                slot.inputs.clear();
                slot.last.clear();
            }
            Action::RestartReplica(r) => {
                let slot = &mut self.replicas[r.index()];
                if slot.sm.is_some() {
                    return infeasible(format!("{r:?} is already up"));
                }
                slot.sm = Some(Replica::new(*r, slot.incarnation, self.cfg.clone()));
                self.monitor.observe(&Event::ReplicaRestarted {
                    replica: *r,
                    incarnation: slot.incarnation,
                });
            }
        }
        Ok(())
    }

    fn reachable(&self, n: NodeId) -> bool {
        self.nodes[n.index()].sm.is_some() && self.az_out != Some(n.az())
    }

    fn send(&mut self, e: Envelope) {
        match (&e.msg, e.dst) {
            // Requests and answers are exchanged inside a `Pull` step.
            (Msg::Pull { .. } | Msg::Records { .. }, _) => {}
            (_, Actor::Storage(n)) if self.nodes[n.index()].lost => {}
            _ => {
                self.pool.insert(e);
            }
        }
    }

    fn writer_outputs(&mut self, out: Vec<WriterOutput>) {
        for o in out {
            match o {
                WriterOutput::Send(e) => self.send(e),
                WriterOutput::Observe(ev) => self.monitor.observe(&ev),
                WriterOutput::Appended(_) => {}
            }
        }
    }

    fn storage_outputs(&mut self, n: NodeId, out: Vec<StorageOutput>) {
        for o in out {
            match o {
                StorageOutput::Send(e) => self.send(e),
                StorageOutput::Persist(records) => self.nodes[n.index()].jobs.push_back(records),
                StorageOutput::Observe(ev) => self.monitor.observe(&ev),
            }
        }
    }

    fn replica_input(&mut self, r: ReplicaId, input: ReplicaInput) -> Result<(), Infeasible> {
        let slot = &mut self.replicas[r.index()];
        let Some(sm) = slot.sm.as_mut() else {
            return infeasible(format!("{r:?} is down"));
        };
        slot.inputs.push(input.clone());
        let out = sm.handle(input);
        for o in out {
            match o {
                ReplicaOutput::Send(e) => self.send(e),
                ReplicaOutput::Observe(ev) => self.monitor.observe(&ev),
            }
        }
        Ok(())
    }

    fn deliver_append(&mut self, e: &Envelope) -> Result<(), Infeasible> {
        let (Msg::Append(_), Actor::Storage(n)) = (&e.msg, e.dst) else {
            return infeasible(format!(
                "{e:?}: only Appends are delivered by a Deliver step"
            ));
        };
        if !self.pool.contains(e) {
            return infeasible(format!("{e:?} is not in flight"));
        }
        if !self.reachable(n) {
            return infeasible(format!("{e:?}: {n:?} is not reachable"));
        }
        if self.config.network != NetworkKind::Duplicating {
            self.pool.remove(e);
        }
        let sm = self.nodes[n.index()].sm.as_mut().expect("reachable");
        let out = sm.handle(StorageInput::Deliver(vec![e.clone()]));
        self.storage_outputs(n, out);
        Ok(())
    }

    /// Runs the node's flush jobs until its disk holds `1..=upto`. A job covers the prefix the
    /// node held when it was issued, so the engine can stop only at a job's end.
    fn flush(&mut self, n: NodeId, target: Lsn) -> Result<(), Infeasible> {
        if self.nodes[n.index()].sm.is_none() {
            return infeasible(format!("{n:?} is not up"));
        }
        if self.nodes[n.index()].jobs.is_empty() {
            return infeasible(format!("{n:?} has nothing to flush"));
        }
        while self.nodes[n.index()].on_disk < target {
            let Some(records) = self.nodes[n.index()].jobs.pop_front() else {
                break;
            };
            let node = &mut self.nodes[n.index()];
            let Some(upto) = records.last().map(|r| r.lsn) else {
                continue;
            };
            let io = node
                .segment
                .append(&records)
                .and_then(|_| node.segment.sync());
            if let Err(e) = io {
                return infeasible(format!("{n:?}: segment I/O failed: {e}"));
            }
            node.on_disk = node.on_disk.max(upto);
            self.monitor.observe(&Event::Synced { node: n, lsn: upto });
            let sm = self.nodes[n.index()].sm.as_mut().expect("up");
            let out = sm.handle(StorageInput::FlushDone { upto });
            self.storage_outputs(n, out);
        }
        let on_disk = self.nodes[n.index()].on_disk;
        if on_disk != target {
            return infeasible(format!(
                "{n:?}'s flushes reach 1..={on_disk}, not 1..={target}"
            ));
        }
        Ok(())
    }

    fn restart_node(&mut self, n: NodeId) -> Result<(), Infeasible> {
        let node = &mut self.nodes[n.index()];
        if node.sm.is_some() || node.lost {
            return infeasible(format!("{n:?} is not crashed"));
        }
        let (segment, recovered) = Segment::open(node.disk.clone())
            .map_err(|e| Infeasible(format!("{n:?}: recovery failed: {e}")))?;
        let sm = StorageNode::recover(n, self.cfg.clone(), recovered.records.clone());
        node.on_disk = sm.flushed();
        let event = Event::NodeRecovered {
            node: n,
            lsn: sm.flushed(),
            damage: recovered.report(),
        };
        node.segment = segment;
        node.sm = Some(sm);
        self.monitor.observe(&event);
        Ok(())
    }

    fn pull(&mut self, r: ReplicaId, n: NodeId) -> Result<(), Infeasible> {
        let Some(replica) = self.replicas[r.index()].sm.as_ref() else {
            return infeasible(format!("{r:?} is down"));
        };
        if !self.reachable(n) {
            return infeasible(format!("{n:?} is not reachable for {r:?}'s pull"));
        }
        let pull = Envelope {
            src: Actor::Replica(r),
            dst: Actor::Storage(n),
            msg: Msg::Pull {
                from: replica.applied().next(),
            },
        };
        let sm = self.nodes[n.index()].sm.as_mut().expect("reachable");
        let out = sm.handle(StorageInput::Deliver(vec![pull]));
        let mut answer = None;
        let mut rest = Vec::new();
        for o in out {
            match o {
                StorageOutput::Send(e)
                    if e.dst == Actor::Replica(r) && matches!(e.msg, Msg::Records { .. }) =>
                {
                    answer = Some(e)
                }
                other => rest.push(other),
            }
        }
        self.storage_outputs(n, rest);
        let Some(answer) = answer else {
            return infeasible(format!("{n:?} did not answer {r:?}'s pull"));
        };
        self.replica_input(r, ReplicaInput::Deliver(answer))
    }

    /// The receiver's watermark of this kind.
    fn watermark(&self, receiver: Actor, kind: Kind) -> Option<Lsn> {
        match (receiver, kind) {
            (Actor::Writer, Kind::Ack) => Some(self.writer.commit_point()),
            (Actor::Replica(r), Kind::Available) => self.replicas[r.index()]
                .sm
                .as_ref()
                .map(|s| s.known_commit()),
            (Actor::Replica(r), Kind::Flushed) => {
                self.replicas[r.index()].sm.as_ref().map(|s| s.durable())
            }
            _ => None,
        }
    }

    /// The watermark the receiver would have after also receiving `e`, tried on a copy.
    fn try_delivery(&self, receiver: Actor, kind: Kind, e: &Envelope) -> Lsn {
        match receiver {
            Actor::Writer => {
                let mut w = self.writer.clone();
                w.handle(WriterInput::Deliver(e.clone()));
                w.commit_point()
            }
            Actor::Replica(r) => {
                let slot = &self.replicas[r.index()];
                let mut copy = Replica::new(r, slot.incarnation, self.cfg.clone());
                for input in &slot.inputs {
                    copy.handle(input.clone());
                }
                copy.handle(ReplicaInput::Deliver(e.clone()));
                match kind {
                    Kind::Available => copy.known_commit(),
                    _ => copy.durable(),
                }
            }
            Actor::Storage(_) => Lsn::ZERO,
        }
    }

    /// Delivers pending watermark messages of `kind` to `receiver` until its watermark is `to`.
    fn learn(&mut self, receiver: Actor, kind: Kind, to: Lsn) -> Result<(), Infeasible> {
        for _ in 0..4 * STORAGE_NODES * (self.config.lsns as usize + 1) {
            let Some(now) = self.watermark(receiver, kind) else {
                return infeasible(format!("{receiver:?} is down"));
            };
            if now == to {
                return Ok(());
            }
            let up = to > now;
            let last = |node: NodeId| match receiver {
                Actor::Writer => self.writer_last.get(&node).copied(),
                Actor::Replica(r) => self.replicas[r.index()].last.get(&(kind, node)).copied(),
                Actor::Storage(_) => None,
            };
            // Messages that move the receiver's view of their node in the wanted direction
            // (higher when rising; lower when falling, which only a receiver that keeps the
            // latest message rather than the highest can do), lowest first when rising and
            // highest first when falling.
            let moves = |node: NodeId, value: Lsn| match last(node) {
                None => value > Lsn::ZERO || !up,
                Some(seen) => (value > seen) == up && value != seen,
            };
            // Rising, nodes not heard from yet come first: raising a node already heard from
            // past what is needed can carry the watermark over the target later.
            let mut candidates: Vec<((bool, Lsn), Envelope)> = self
                .pool
                .iter()
                .filter(|e| e.dst == receiver)
                .filter_map(|e| {
                    let (k, node, value) = watermark_of(&e.msg)?;
                    let heard = last(node).is_some();
                    (k == kind && moves(node, value)).then(|| ((heard, value), e.clone()))
                })
                .collect();
            candidates.sort();
            if !up {
                candidates.sort_by_key(|c| std::cmp::Reverse(c.0 .1));
            }
            let mut chosen = None;
            for (_, e) in &candidates {
                let after = self.try_delivery(receiver, kind, e);
                let fits = if up { after <= to } else { after >= to };
                if after == to {
                    chosen = Some(e.clone());
                    break;
                }
                if fits && chosen.is_none() {
                    chosen = Some(e.clone());
                }
            }
            let Some(e) = chosen else {
                let pending: Vec<String> = candidates
                    .iter()
                    .map(|(_, e)| format!("{:?}", e.msg))
                    .collect();
                return infeasible(format!(
                    "no delivery of pending {kind:?} messages takes {receiver:?} from {now} to \
                     {to} (pending: [{}])",
                    pending.join(", ")
                ));
            };
            let (_, node, value) = watermark_of(&e.msg).expect("a watermark message");
            match receiver {
                Actor::Writer => {
                    self.writer_last.insert(node, value);
                    let out = self.writer.handle(WriterInput::Deliver(e));
                    self.writer_outputs(out);
                }
                Actor::Replica(r) => {
                    self.replicas[r.index()].last.insert((kind, node), value);
                    self.replica_input(r, ReplicaInput::Deliver(e))?;
                }
                Actor::Storage(_) => unreachable!("nodes learn no watermark"),
            }
        }
        infeasible(format!(
            "{receiver:?} did not reach {kind:?} watermark {to}"
        ))
    }
}
