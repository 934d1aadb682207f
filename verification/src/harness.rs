//! The conformance harness: a translator from model steps to the engine's steps. It owns a
//! [`Cluster`] of the engine's role machines, a pool of their in-flight messages and a segment
//! file per node, and takes one model [`Action`] at a time by feeding the cluster the
//! [`Step`]s the threaded engine would record for it. No threads.
//!
//! # How a model step maps to the implementation
//! - `Write`: the writer creates the record the model's writer creates (`record_for`); its six
//!   `Append`s go into the pool.
//! - `Deliver(e)` / `Drop(e)`: that very `Append` is taken from the pool and handed to the node (on
//!   a duplicating network it stays in the pool), or removed.
//! - `Flush(n, upto)`: the node's pending flush jobs (`Persist` outputs) are appended to its
//!   segment file and synced, and each `FlushDone` is fed back, until its disk holds `1..=upto`:
//!   a job covers the prefix the node held when it was issued, so the engine can stop only at a
//!   job's end.
//! - `Commit(L)`, `LearnCommit(r, L)`, `LearnDurable(r, L)`: the pending `Ack`s (to the writer),
//!   `Available`s or `Flushed`s (to `r`) are delivered, one at a time, until the receiver's
//!   watermark is `L`. A delivery is chosen only if it does not carry the watermark past `L` (tried
//!   on a copy of the cluster first). Only messages of the epoch the receiver counts are
//!   delivered: one of a newer epoch would make a replica start over (that is `Follow`), one of an
//!   older epoch would be ignored. Watermark messages stay in the pool once delivered, as the
//!   model's announcements stay receivable: a restarted replica may hear them again.
//! - `Pull(r, n)`: `Pull { from: applied + 1 }` from `r` is delivered to `n`; `n`'s `Records` answer
//!   is delivered to `r` at once. When the records are flushed and no longer in `n`'s memory, `n`
//!   asks for them to be read back (`ReadBack`): they are read from its segment file and fed back
//!   (`ReadDone`), and `n` answers then. The harness's nodes cache no flushed records, so every
//!   pull of a flushed record goes through that path. The `Available` and `Flushed` that `n` re-sends with it go into
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
//! sixth, CommittedRecoverable, is judged on the cluster's current state
//! ([`Cluster::unrecoverable_commit`]) with the same predicate.

use crate::abstraction::{Abstraction, Records};
use aurora_redo_impl::cluster::{Cluster, Step};
use aurora_redo_impl::disk::{Disk, FileDisk, SimDisk};
use aurora_redo_impl::monitor::{Monitor, Violation};
use aurora_redo_impl::observer::{Event, Observer};
use aurora_redo_impl::output::{Durable, Effects, ReadBack};
use aurora_redo_impl::segment::Segment;
use aurora_redo_impl::storage::StorageInput;
use aurora_redo_impl::sync::Arc;
use aurora_redo_impl::writer::WriterInput;
use aurora_redo_impl::{EngineConfig, ImplBug};
use aurora_redo_model::invariants::COMMITTED_RECOVERABLE;
use aurora_redo_model::state::{record_for, NodeStatus};
use aurora_redo_model::{
    Action, Actor, Config, Envelope, Epoch, Lsn, Msg, NetworkKind, NodeId, ReplicaId, STORAGE_NODES,
};
use std::collections::{BTreeMap, BTreeSet};
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

/// A node's segment file, which the harness writes as the node's flusher would.
struct NodeDisk {
    disk: Arc<dyn Disk>,
    segment: Segment,
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
        Msg::Ack { node, scl, .. } => Some((Kind::Ack, node, scl)),
        Msg::Available { node, scl, .. } => Some((Kind::Available, node, scl)),
        Msg::Flushed { node, lsn, .. } => Some((Kind::Flushed, node, lsn)),
        _ => None,
    }
}

/// The implementation, driven deterministically by model steps.
pub struct Harness {
    config: Config,
    cluster: Cluster,
    disks: Vec<NodeDisk>,
    /// Messages in flight (identical ones coalesce, as in the model's network).
    pool: BTreeSet<Envelope>,
    /// Per receiver, kind and node, the value of the last watermark message delivered (a
    /// replica's entries are cleared when it crashes).
    last: BTreeMap<(Actor, Kind, NodeId), Lsn>,
    /// The steps taken so far.
    history: Vec<Action>,
    /// The engine's runtime invariant monitor, fed every ghost event.
    monitor: Monitor,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    /// A fresh system for the model configuration `config`, with `bug` seeded in the engine.
    pub fn new(config: &Config, bug: Option<ImplBug>, disks: DiskKind) -> std::io::Result<Self> {
        let mut cfg = EngineConfig::new(config.ack, config.replicas as usize).with_bug(bug);
        cfg.cache_records = 0;
        let mut node_disks = Vec::new();
        let mut recovered = Vec::new();
        for n in NodeId::all() {
            let disk: Arc<dyn Disk> = match &disks {
                DiskKind::Simulated => Arc::new(SimDisk::new()),
                DiskKind::Files(dir) => {
                    Arc::new(FileDisk::open(dir.join(format!("s{}.seg", n.0)))?)
                }
            };
            let (segment, found) = Segment::open(disk.clone())?;
            recovered.push(found.records);
            node_disks.push(NodeDisk { disk, segment });
        }
        Ok(Harness {
            config: config.clone(),
            cluster: Cluster::recovered(cfg, recovered),
            disks: node_disks,
            pool: BTreeSet::new(),
            last: BTreeMap::new(),
            history: Vec::new(),
            // CommittedRecoverable is a property of the current state, which the cluster judges
            // exactly (covering lost nodes too); the monitor's record of past moments is kept
            // apart so a healed state is not reported as broken.
            monitor: Monitor::new(false).tolerating(COMMITTED_RECOVERABLE),
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
        if let Some(detail) = self.cluster.unrecoverable_commit() {
            v.push(Violation {
                invariant: aurora_redo_model::invariants::COMMITTED_RECOVERABLE,
                detail,
            });
        }
        v
    }

    /// The role machines, as the steps so far left them.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The implementation's state, mapped to the abstraction.
    /// With the records the nodes and replicas hold: a node's record is taken from its memory,
    /// else read back from its segment file (a crashed node's, from the synced file).
    pub fn abstraction(&self) -> Abstraction {
        let mut a = Abstraction::of_cluster(&self.cluster);
        let nodes = NodeId::all()
            .zip(&a.nodes)
            .map(|(n, view)| {
                if view.scl == Lsn::ZERO {
                    return Vec::new();
                }
                let on_disk = self.disks[n.index()]
                    .segment
                    .read(Lsn(1), view.scl)
                    .unwrap_or_default();
                view.scl
                    .prefix()
                    .map(|l| {
                        let in_memory = self.cluster.node(n).and_then(|m| m.record(l));
                        let read = || on_disk.iter().find(|r| r.lsn == l).copied();
                        // A record neither holds is no epoch's: it shows as a mismatch.
                        in_memory
                            .or_else(read)
                            .map_or(Epoch::numbered(u32::MAX), |r| r.epoch)
                    })
                    .collect()
            })
            .collect();
        let pages = self
            .cluster
            .replica_ids()
            .map(|r| {
                self.cluster
                    .replica(r)
                    .map_or_else(Vec::new, Records::pages_of)
            })
            .collect();
        a.records = Some(Records { nodes, pages });
        a
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
                let writer = self.cluster.writer();
                let record = record_for(writer.epoch(), writer.last_lsn().next());
                self.take(Step::Writer(WriterInput::Append {
                    page: record.page,
                    value: record.value,
                }))?;
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
                if self.cluster.node(*n).is_none() {
                    return infeasible(format!("{n:?} is not up"));
                }
                self.disks[n.index()].disk.crash();
                self.take(Step::NodeCrashed {
                    node: *n,
                    on_disk: self.cluster.synced(*n),
                })?;
            }
            Action::RestartNode(n) => {
                if self.cluster.node_status(*n) != NodeStatus::Crashed {
                    return infeasible(format!("{n:?} is not crashed"));
                }
                let disk = &mut self.disks[n.index()];
                let (segment, recovered) = Segment::open(disk.disk.clone())
                    .map_err(|e| Infeasible(format!("{n:?}: recovery failed: {e}")))?;
                disk.segment = segment;
                self.take(Step::NodeRestarted {
                    node: *n,
                    damage: recovered.report(),
                    recovered: recovered.records,
                })?;
            }
            Action::LoseNode(n) => {
                self.disks[n.index()]
                    .disk
                    .replace(&[])
                    .map_err(|e| Infeasible(format!("cannot destroy {n:?}'s segment: {e}")))?;
                self.take(Step::NodeLost(*n))?;
                self.pool.retain(|e| e.dst != Actor::Storage(*n));
            }
            Action::AzOutage(az) => self.take(Step::AzOutage(Some(*az)))?,
            Action::AzRecover(_) => self.take(Step::AzOutage(None))?,
            Action::CrashReplica(r) => {
                self.take(Step::ReplicaCrashed(*r))?;
                let me = Actor::Replica(*r);
                self.last.retain(|(to, _, _), _| *to != me);
            }
            Action::RestartReplica(r) => {
                if self.cluster.replica(*r).is_some() {
                    return infeasible(format!("{r:?} is already up"));
                }
                self.take(Step::ReplicaRestarted {
                    replica: *r,
                    incarnation: self.cluster.incarnation(*r),
                })?;
            }
            Action::FailOver => {
                self.take(Step::FailOver {
                    zombie: self.config.zombie_writer,
                })?;
                self.last.retain(|(to, _, _), _| *to != Actor::Writer);
            }
            Action::ZombieWrite => {
                let Some(zombie) = self.cluster.zombie() else {
                    return infeasible("there is no zombie writer");
                };
                let record = record_for(zombie.epoch(), zombie.last_lsn().next());
                self.take(Step::Zombie(WriterInput::Append {
                    page: record.page,
                    value: record.value,
                }))?;
            }
            Action::Read(set) => {
                for n in set.iter() {
                    self.recovery_exchange(n, |m| matches!(m, Msg::Read { .. }))?;
                }
            }
            Action::Seal(n) => self.recovery_exchange(*n, |m| matches!(m, Msg::Seal { .. }))?,
            Action::Follow(r) => {
                let Some(replica) = self.cluster.replica(*r) else {
                    return infeasible(format!("{r:?} is down"));
                };
                let epoch = replica.epoch();
                let newer = self.pool.iter().find(|e| {
                    e.dst == Actor::Replica(*r)
                        && watermark_of(&e.msg).is_some()
                        && e.msg.epoch().is_some_and(|x| x > epoch)
                });
                let Some(e) = newer.cloned() else {
                    return infeasible(format!(
                        "no message of a newer epoch is on its way to {r:?}"
                    ));
                };
                self.take(Step::delivery(e.dst, e))?;
                let me = Actor::Replica(*r);
                self.last.retain(|(to, _, _), _| *to != me);
            }
        }
        Ok(())
    }

    /// Serves a node's read-back as its flusher would: reads the records from its segment and
    /// feeds them back to the node, returning what the node then did.
    fn read_back(&mut self, n: NodeId, read: ReadBack) -> Result<Effects, Infeasible> {
        let records = self.disks[n.index()]
            .segment
            .read(read.from, read.upto)
            .map_err(|e| Infeasible(format!("{n:?}: segment read-back failed: {e}")))?;
        let step = Step::Node {
            node: n,
            input: StorageInput::ReadDone {
                to: read.to,
                from: read.from,
                records,
            },
        };
        self.cluster.step(&step).map_err(Infeasible)
    }

    /// Takes `step` on the cluster and routes what it did.
    fn take(&mut self, step: Step) -> Result<(), Infeasible> {
        let fx = self.cluster.step(&step).map_err(Infeasible)?;
        if let Step::Node { node, .. } = &step {
            self.persist_durable(*node, &fx)?;
        }
        self.route(fx);
        Ok(())
    }

    /// Writes what a node persists synchronously (an adopt, a seal with its records) to its
    /// segment and syncs it, as the engine does before the step's sends.
    fn persist_durable(&mut self, n: NodeId, fx: &Effects) -> Result<(), Infeasible> {
        let segment = &self.disks[n.index()].segment;
        for d in &fx.durable {
            let written = match d {
                Durable::Adopt(e) => segment.adopt(*e),
                Durable::Seal { seal, records } => {
                    segment.append(records).and_then(|_| segment.seal(*seal))
                }
            };
            written
                .and_then(|_| segment.sync())
                .map_err(|e| Infeasible(format!("{n:?}: segment I/O failed: {e}")))?;
        }
        Ok(())
    }

    /// A recovery exchange with node `n`: the writer's pending request (`Read` or `Seal`, chosen
    /// by `is_request`) is delivered to `n`, a read-back it asks for is served from its
    /// segment, and its answer (`ReadAnswer`, `Sealed`) is delivered to the writer at once: the
    /// model takes the exchange as part of one step.
    fn recovery_exchange(
        &mut self,
        n: NodeId,
        is_request: impl Fn(&Msg) -> bool,
    ) -> Result<(), Infeasible> {
        if !self.cluster.reachable(n) {
            return infeasible(format!("{n:?} is not reachable"));
        }
        let epoch = self.cluster.writer().epoch();
        let request = self.pool.iter().find(|e| {
            e.dst == Actor::Storage(n) && is_request(&e.msg) && e.msg.epoch() == Some(epoch)
        });
        let Some(request) = request.cloned() else {
            return infeasible(format!(
                "the writer has no request of {epoch} on its way to {n:?}"
            ));
        };
        self.pool.remove(&request);
        let step = Step::delivery(request.dst, request);
        let mut fx = self.cluster.step(&step).map_err(Infeasible)?;
        self.persist_durable(n, &fx)?;
        let to_writer = |fx: &mut Effects| {
            fx.sent
                .iter()
                .position(|e| {
                    e.dst == Actor::Writer
                        && matches!(e.msg, Msg::ReadAnswer { .. } | Msg::Sealed { .. })
                })
                .map(|i| fx.sent.remove(i))
        };
        let mut answer = to_writer(&mut fx);
        let read = fx.read_back.pop();
        self.route(fx);
        if let (None, Some(read)) = (&answer, read) {
            let mut fx = self.read_back(n, read)?;
            answer = to_writer(&mut fx);
            self.route(fx);
        }
        let Some(answer) = answer else {
            return infeasible(format!(
                "{n:?} did not answer the writer's recovery request"
            ));
        };
        self.take(Step::delivery(Actor::Writer, answer))
    }

    /// Ghost events to the monitor; messages into the pool. (A node's flush jobs stay with the
    /// cluster until [`Harness::flush`] runs them.)
    fn route(&mut self, fx: Effects) {
        for ev in &fx.observed {
            self.monitor.observe(ev);
        }
        for e in fx.sent {
            match (&e.msg, e.dst) {
                // Requests and answers are exchanged inside a `Pull` step.
                (Msg::Pull { .. } | Msg::Records { .. }, _) => {}
                (_, Actor::Storage(n)) if self.cluster.node_status(n) == NodeStatus::Lost => {}
                _ => {
                    self.pool.insert(e);
                }
            }
        }
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
        if !self.cluster.reachable(n) {
            return infeasible(format!("{e:?}: {n:?} is not reachable"));
        }
        if self.config.network != NetworkKind::Duplicating {
            self.pool.remove(e);
        }
        self.take(Step::delivery(e.dst, e.clone()))
    }

    /// Runs the node's flush jobs, as its flusher would (append, sync, report), until its disk
    /// holds `1..=target`. A job covers the prefix the node held when it was issued, so the
    /// engine can stop only at a job's end.
    fn flush(&mut self, n: NodeId, target: Lsn) -> Result<(), Infeasible> {
        if self.cluster.node(n).is_none() {
            return infeasible(format!("{n:?} is not up"));
        }
        if self.cluster.next_flush_job(n).is_none() {
            return infeasible(format!("{n:?} has nothing to flush"));
        }
        while self.cluster.synced(n) < target {
            let Some(job) = self.cluster.next_flush_job(n) else {
                break;
            };
            let Some(upto) = job.last().map(|r| r.lsn) else {
                return infeasible(format!("{n:?} has an empty flush job"));
            };
            let segment = &self.disks[n.index()].segment;
            if let Err(e) = segment.append(job).and_then(|_| segment.sync()) {
                return infeasible(format!("{n:?}: segment I/O failed: {e}"));
            }
            self.monitor.observe(&Event::Synced { node: n, lsn: upto });
            self.take(Step::Node {
                node: n,
                input: StorageInput::FlushDone { upto },
            })?;
        }
        let on_disk = self.cluster.synced(n);
        if on_disk != target {
            return infeasible(format!(
                "{n:?}'s flushes reach 1..={on_disk}, not 1..={target}"
            ));
        }
        Ok(())
    }

    fn pull(&mut self, r: ReplicaId, n: NodeId) -> Result<(), Infeasible> {
        let Some(replica) = self.cluster.replica(r) else {
            return infeasible(format!("{r:?} is down"));
        };
        if !self.cluster.reachable(n) {
            return infeasible(format!("{n:?} is not reachable for {r:?}'s pull"));
        }
        let pull = Envelope::pull(r, n, replica.applied().next());
        let mut fx = self
            .cluster
            .step(&Step::delivery(pull.dst, pull))
            .map_err(Infeasible)?;
        let mut answer = Harness::answer_to(r, &mut fx);
        let read = fx.read_back.pop();
        self.route(fx);
        // Flushed records no longer in the node's memory: read back from its segment, as its
        // flusher would, and fed back; the node answers then.
        if let (None, Some(read)) = (&answer, read) {
            let mut fx = self.read_back(n, read)?;
            answer = Harness::answer_to(r, &mut fx);
            self.route(fx);
        }
        let Some(answer) = answer else {
            return infeasible(format!("{n:?} did not answer {r:?}'s pull"));
        };
        self.take(Step::delivery(answer.dst, answer))
    }

    /// Takes the `Records` answer to `r` out of `fx`, if there is one.
    fn answer_to(r: ReplicaId, fx: &mut Effects) -> Option<Envelope> {
        fx.sent
            .iter()
            .position(|e| e.dst == Actor::Replica(r) && matches!(e.msg, Msg::Records { .. }))
            .map(|i| fx.sent.remove(i))
    }

    /// The epoch whose messages the receiver counts (`None` while it is down): a writer its own,
    /// a replica the one it follows.
    fn epoch_of(cluster: &Cluster, receiver: Actor) -> Option<Epoch> {
        match receiver {
            Actor::Writer => Some(cluster.writer().epoch()),
            Actor::Replica(r) => cluster.replica(r).map(|s| s.epoch()),
            Actor::Storage(_) => None,
        }
    }

    /// The receiver's watermark of this kind in `cluster`.
    fn watermark(cluster: &Cluster, receiver: Actor, kind: Kind) -> Option<Lsn> {
        match (receiver, kind) {
            (Actor::Writer, Kind::Ack) => Some(cluster.writer().commit_point()),
            (Actor::Replica(r), Kind::Available) => cluster.replica(r).map(|s| s.known_commit()),
            (Actor::Replica(r), Kind::Flushed) => cluster.replica(r).map(|s| s.durable()),
            _ => None,
        }
    }

    /// The watermark the receiver would have after also receiving `e`, tried on a copy.
    fn try_delivery(&self, receiver: Actor, kind: Kind, e: &Envelope) -> Option<Lsn> {
        let mut copy = self.cluster.clone();
        copy.step(&Step::delivery(receiver, e.clone())).ok()?;
        Harness::watermark(&copy, receiver, kind)
    }

    /// A receipt that leaves the receiver's watermark where it is (the model offers one only where
    /// it changes the receiver): delivers again a copy of a `kind` message the receiver has had,
    /// as a duplicating network would.
    fn receive_again(&mut self, receiver: Actor, kind: Kind) -> Result<(), Infeasible> {
        let Some(epoch) = Harness::epoch_of(&self.cluster, receiver) else {
            return infeasible(format!("{receiver:?} is down"));
        };
        let heard = NodeId::all().find_map(|node| {
            let value = *self.last.get(&(receiver, kind, node))?;
            let Actor::Replica(r) = receiver else {
                return None;
            };
            match kind {
                Kind::Available => Some(Envelope::available(node, r, value)),
                Kind::Flushed => Some(Envelope::flushed(node, r, value)),
                Kind::Ack => None,
            }
            .map(|e| e.in_epoch(epoch))
        });
        match heard {
            Some(e) => self.take(Step::delivery(receiver, e)),
            None => infeasible(format!(
                "{receiver:?} has had no {kind:?} message to receive again"
            )),
        }
    }

    /// Delivers pending watermark messages of `kind` to `receiver` until its watermark is `to`.
    fn learn(&mut self, receiver: Actor, kind: Kind, to: Lsn) -> Result<(), Infeasible> {
        if Harness::watermark(&self.cluster, receiver, kind) == Some(to) {
            return self.receive_again(receiver, kind);
        }
        for _ in 0..4 * STORAGE_NODES * (self.config.lsns as usize + 1) {
            let (Some(now), Some(epoch)) = (
                Harness::watermark(&self.cluster, receiver, kind),
                Harness::epoch_of(&self.cluster, receiver),
            ) else {
                return infeasible(format!("{receiver:?} is down"));
            };
            if now == to {
                return Ok(());
            }
            let up = to > now;
            let last = |node: NodeId| self.last.get(&(receiver, kind, node)).copied();
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
            //
            // Only messages of the epoch the receiver counts: one of a newer epoch would make a
            // replica start over (the model's `Follow`, a step of its own), and one of an older
            // epoch is ignored, so neither is a learning step.
            let mut candidates: Vec<((bool, Lsn), Envelope)> = self
                .pool
                .iter()
                .filter(|e| e.dst == receiver && e.msg.epoch() == Some(epoch))
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
                let Some(after) = self.try_delivery(receiver, kind, e) else {
                    continue;
                };
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
            self.last.insert((receiver, kind, node), value);
            self.take(Step::delivery(receiver, e))?;
        }
        infeasible(format!(
            "{receiver:?} did not reach {kind:?} watermark {to}"
        ))
    }
}
