//! A deterministic cluster of the engine's role machines: the writer, the six storage nodes (with
//! the flush jobs handed to their flushers and the prefix their disks hold synced) and the
//! replicas, stepped one [`Step`] at a time. No threads, no I/O, `Clone`.
//!
//! A [`Step`] is one input consumed by one role machine, or one fault: exactly what the engine
//! records while it runs ([`crate::recorder`]). Every deterministic driver of the role machines
//! goes through [`Cluster::step`]:
//! - the recording check replays what the threaded engine recorded;
//! - the conformance harness translates each model step into the steps the engine would take;
//! - `replay` plays a model counterexample through that harness.
//!
//! A step's outputs come back sorted as [`Effects`] (sent, persisted, observed), the same type the
//! threaded engine routes. The cluster keeps no network: what is in flight is the driver's
//! business.

use std::collections::VecDeque;
use std::fmt;

use aurora_redo_model::invariants::first_unreadable;
use aurora_redo_model::recovery::successor_epoch;
use aurora_redo_model::state::NodeStatus;
use aurora_redo_model::types::{Actor, Az, Envelope, Epoch, Lsn, NodeId, Record, ReplicaId};

use crate::config::EngineConfig;
use crate::observer::Event;
use crate::output::{Durable, Effects, ReadBack};
use crate::replica::{Replica, ReplicaInput};
use crate::storage::{StorageInput, StorageNode};
use crate::writer::{Writer, WriterInput};

/// One protocol step: an input one role machine consumes, or a fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The writer consumes this input (a client append, an `Ack`/`Flushed`, a tick).
    Writer(WriterInput),
    /// A storage node consumes this input: a batch of delivered messages (one machine step: the
    /// node acknowledges a batch of appends once and issues at most one flush job per step), its
    /// flusher's report that the oldest job is written and synced, or the records a read-back
    /// for a pull found in its segment.
    Node { node: NodeId, input: StorageInput },
    /// A replica consumes this input (`Available`, `Flushed`, `Records`, a tick).
    Replica {
        replica: ReplicaId,
        input: ReplicaInput,
    },
    /// A storage node crashed: its memory and its flusher's jobs are gone; its disk kept the
    /// synced prefix `1..=on_disk`.
    NodeCrashed { node: NodeId, on_disk: Lsn },
    /// A crashed node restarted, recovering these records from its segment file; `damage` is
    /// what recovery reported cut out, if anything.
    NodeRestarted {
        node: NodeId,
        recovered: Vec<Record>,
        damage: Option<String>,
    },
    /// A storage node is gone for good, disk and all.
    NodeLost(NodeId),
    /// A replica crashed: it is down until it restarts.
    ReplicaCrashed(ReplicaId),
    /// A replica (re)started empty as `incarnation`; if it was up, it crashed first.
    ReplicaRestarted {
        replica: ReplicaId,
        incarnation: u32,
    },
    /// An AZ outage began (`Some`) or ended (`None`).
    AzOutage(Option<Az>),
    /// The writer fails over: a new writer of the next epoch starts recovering (it sends `Read`
    /// to every node). With `zombie`, the old writer, if it was open, keeps running cut off
    /// from clients.
    FailOver { zombie: bool },
    /// The zombie writer consumes this input (an append: it keeps writing in its old epoch).
    Zombie(WriterInput),
}

#[derive(Clone, Debug)]
struct NodeSlot {
    machine: Option<StorageNode>,
    lost: bool,
    /// Flush jobs issued and not yet reported done, oldest first.
    jobs: VecDeque<Vec<Record>>,
    /// Read-backs asked for and not yet done.
    reads: Vec<ReadBack>,
    /// The contiguous prefix the node's disk holds synced (as far as the steps tell).
    synced: Lsn,
    /// The epoch its segment says it adopted, and the epoch of its last seal.
    adopted: Epoch,
    sealed: Epoch,
}

#[derive(Clone, Debug)]
struct ReplicaSlot {
    machine: Option<Replica>,
    incarnation: u32,
    /// The epoch it follows (kept across a crash, as in the model).
    epoch: Epoch,
}

/// The engine's role machines, stepped deterministically.
#[derive(Clone, Debug)]
pub struct Cluster {
    cfg: EngineConfig,
    writer: Writer,
    /// The previous writer, still running after a failover (a zombie), if any.
    zombie: Option<Writer>,
    /// Failovers so far: the writer id of the latest writer.
    failovers: u32,
    nodes: Vec<NodeSlot>,
    replicas: Vec<ReplicaSlot>,
    az_out: Option<Az>,
}

impl Step {
    /// The step that delivers `e` to the receiver `to`.
    pub fn delivery(to: Actor, e: Envelope) -> Step {
        match to {
            Actor::Writer => Step::Writer(WriterInput::Deliver(e)),
            Actor::Storage(node) => Step::Node {
                node,
                input: StorageInput::Deliver(vec![e]),
            },
            Actor::Replica(replica) => Step::Replica {
                replica,
                input: ReplicaInput::Deliver(e),
            },
        }
    }
}

impl Cluster {
    /// A fresh cluster: empty nodes, replicas in incarnation 0.
    pub fn new(cfg: EngineConfig) -> Cluster {
        Cluster::recovered(cfg, NodeId::all().map(|_| Vec::new()).collect())
    }

    /// A cluster whose nodes start from what their disks hold (index = node).
    pub fn recovered(cfg: EngineConfig, disks: Vec<Vec<Record>>) -> Cluster {
        let nodes = NodeId::all()
            .zip(disks)
            .map(|(n, records)| {
                let machine = StorageNode::recover(n, cfg.clone(), records);
                NodeSlot {
                    synced: machine.flushed(),
                    machine: Some(machine),
                    lost: false,
                    jobs: VecDeque::new(),
                    reads: Vec::new(),
                    adopted: Epoch::FIRST,
                    sealed: Epoch::FIRST,
                }
            })
            .collect();
        let replicas = cfg
            .replicas
            .iter()
            .map(|r| ReplicaSlot {
                machine: Some(Replica::new(*r, 0, cfg.clone())),
                incarnation: 0,
                epoch: Epoch::FIRST,
            })
            .collect();
        Cluster {
            writer: Writer::new(cfg.clone()),
            zombie: None,
            failovers: 0,
            cfg,
            nodes,
            replicas,
            az_out: None,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// The zombie writer, if a failover left one running.
    pub fn zombie(&self) -> Option<&Writer> {
        self.zombie.as_ref()
    }

    /// A node's machine, or `None` while it is crashed or lost.
    pub fn node(&self, n: NodeId) -> Option<&StorageNode> {
        self.nodes[n.index()].machine.as_ref()
    }

    pub fn node_status(&self, n: NodeId) -> NodeStatus {
        let slot = &self.nodes[n.index()];
        match (&slot.machine, slot.lost) {
            (_, true) => NodeStatus::Lost,
            (Some(_), false) => NodeStatus::Up,
            (None, false) => NodeStatus::Crashed,
        }
    }

    /// The epoch `n` adopted and the epoch of its last seal, as its segment keeps them.
    pub fn node_epochs(&self, n: NodeId) -> (Epoch, Epoch) {
        let slot = &self.nodes[n.index()];
        (slot.adopted, slot.sealed)
    }

    /// The contiguous prefix `n`'s disk holds synced.
    pub fn synced(&self, n: NodeId) -> Lsn {
        self.nodes[n.index()].synced
    }

    /// `n`'s oldest flush job not yet reported done.
    pub fn next_flush_job(&self, n: NodeId) -> Option<&[Record]> {
        self.nodes[n.index()].jobs.front().map(Vec::as_slice)
    }

    /// `n`'s read-backs asked for and not yet done, oldest first.
    pub fn pending_reads(&self, n: NodeId) -> &[ReadBack] {
        &self.nodes[n.index()].reads
    }

    /// A replica's machine, or `None` while it is down.
    pub fn replica(&self, r: ReplicaId) -> Option<&Replica> {
        self.replica_slot(r).ok()?.machine.as_ref()
    }

    /// A replica's current (or, while it is down, next) incarnation.
    pub fn incarnation(&self, r: ReplicaId) -> u32 {
        self.replica_slot(r).map_or(0, |s| s.incarnation)
    }

    pub fn replica_ids(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        self.cfg.replicas.iter().copied()
    }

    pub fn az_out(&self) -> Option<Az> {
        self.az_out
    }

    /// Whether messages can reach `n`: it is up and its zone is not out.
    pub fn reachable(&self, n: NodeId) -> bool {
        self.node(n).is_some() && self.az_out != Some(n.az())
    }

    /// Whether `n` holds `lsn` now: in memory or on disk while up, on its synced disk while
    /// crashed, nowhere once lost.
    pub fn holds(&self, n: NodeId, lsn: Lsn) -> bool {
        let slot = &self.nodes[n.index()];
        !slot.lost && (slot.synced >= lsn || slot.machine.as_ref().is_some_and(|m| m.holds(lsn)))
    }

    /// CommittedRecoverable on the cluster's state: the first committed record that some read
    /// quorum of 3 surviving nodes misses, described.
    pub fn unrecoverable_commit(&self) -> Option<String> {
        let surviving = self.nodes.iter().filter(|n| !n.lost).count();
        let holding = |lsn| {
            (
                NodeId::all().filter(|&n| self.holds(n, lsn)).count(),
                surviving,
            )
        };
        let (lsn, holders, _) = first_unreadable(self.writer.commit_point(), holding)?;
        Some(format!(
            "committed record {lsn} is held by {holders} of {surviving} surviving nodes"
        ))
    }

    /// Takes one step. A step the cluster cannot take (a machine that is down, a restart that
    /// does not match the disk, ...) is refused with the reason, and changes nothing.
    pub fn step(&mut self, step: &Step) -> Result<Effects, String> {
        let mut fx = Effects::default();
        match step {
            Step::Writer(input) => fx.extend(self.writer.handle(input.clone())),
            Step::Node { node, input } => {
                let slot = &mut self.nodes[node.index()];
                let Some(machine) = slot.machine.as_mut() else {
                    return Err(format!("{node:?} is not up"));
                };
                if let StorageInput::FlushDone { upto } = input {
                    let job_end = slot.jobs.front().and_then(|j| j.last()).map(|r| r.lsn);
                    if job_end != Some(*upto) {
                        return Err(format!(
                            "{node:?}'s flusher reports 1..={upto} done, but its oldest job \
                             ends at {job_end:?}"
                        ));
                    }
                    slot.jobs.pop_front();
                    slot.synced = slot.synced.max(*upto);
                }
                if let StorageInput::ReadDone { to, from, records } = input {
                    let Some(i) = slot
                        .reads
                        .iter()
                        .position(|r| r.to == *to && r.from == *from)
                    else {
                        return Err(format!(
                            "{node:?} read back records from {from} for {to:?}, which it never \
                             asked for"
                        ));
                    };
                    let read = slot.reads[i];
                    let synced = slot.synced;
                    if let Some(r) = records
                        .iter()
                        .find(|r| r.lsn < read.from || r.lsn > read.upto || r.lsn > synced)
                    {
                        return Err(format!(
                            "{node:?} read back {} for the read of {}..={} (disk synced \
                             1..={synced})",
                            r.lsn, read.from, read.upto
                        ));
                    }
                    slot.reads.remove(i);
                }
                fx.extend(machine.handle(input.clone()));
                for d in &fx.durable {
                    match d {
                        Durable::Adopt(e) => slot.adopted = slot.adopted.max(*e),
                        Durable::Seal { seal, .. } => {
                            slot.adopted = slot.adopted.max(seal.epoch);
                            slot.sealed = seal.epoch;
                            // The seal supersedes the flusher's jobs, and the disk now holds
                            // exactly what the node counts as flushed.
                            slot.jobs.clear();
                            slot.synced = machine.flushed();
                        }
                    }
                }
                slot.jobs.extend(fx.persist.iter().cloned());
                slot.reads.extend(fx.read_back.iter().copied());
            }
            Step::FailOver { zombie } => {
                self.failovers += 1;
                let epoch = successor_epoch(self.writer.epoch(), self.failovers);
                let (writer, out) = Writer::recovering(self.cfg.clone(), epoch);
                let old = std::mem::replace(&mut self.writer, writer);
                if *zombie && old.is_open() {
                    self.zombie = Some(old);
                } else if *zombie {
                    self.zombie = None;
                }
                fx.extend(out);
            }
            Step::Zombie(input) => {
                let Some(zombie) = self.zombie.as_mut() else {
                    return Err("there is no zombie writer".into());
                };
                fx.extend(zombie.handle(input.clone()));
            }
            Step::Replica { replica, input } => {
                let Some(machine) = self.replica_slot_mut(*replica)?.machine.as_mut() else {
                    return Err(format!("{replica:?} is down"));
                };
                fx.extend(machine.handle(input.clone()));
                let (incarnation, epoch) = (machine.incarnation(), machine.epoch());
                let slot = self.replica_slot_mut(*replica)?;
                slot.incarnation = incarnation;
                slot.epoch = epoch;
            }
            Step::NodeCrashed { node, on_disk } => {
                let slot = &mut self.nodes[node.index()];
                let Some(machine) = &slot.machine else {
                    return Err(format!("{node:?} is not up"));
                };
                if *on_disk < machine.flushed() {
                    return Err(format!(
                        "{node:?} had announced 1..={} flushed but its disk kept only \
                         1..={on_disk}",
                        machine.flushed()
                    ));
                }
                slot.machine = None;
                slot.jobs.clear();
                slot.reads.clear();
                slot.synced = *on_disk;
                fx.observed.push(Event::NodeCrashed(*node));
            }
            Step::NodeRestarted {
                node,
                recovered,
                damage,
            } => {
                let slot = &mut self.nodes[node.index()];
                if slot.machine.is_some() || slot.lost {
                    return Err(format!("{node:?} is not crashed"));
                }
                let machine = StorageNode::recover_in(
                    *node,
                    self.cfg.clone(),
                    recovered.clone(),
                    slot.adopted,
                    slot.sealed,
                );
                if machine.flushed() != slot.synced {
                    return Err(format!(
                        "{node:?} recovered 1..={} but its disk had kept 1..={}",
                        machine.flushed(),
                        slot.synced
                    ));
                }
                fx.observed.push(Event::NodeRecovered {
                    node: *node,
                    lsn: machine.flushed(),
                    damage: damage.clone(),
                });
                slot.machine = Some(machine);
            }
            Step::NodeLost(node) => {
                let slot = &mut self.nodes[node.index()];
                if slot.lost {
                    return Err(format!("{node:?} is already lost"));
                }
                *slot = NodeSlot {
                    machine: None,
                    lost: true,
                    jobs: VecDeque::new(),
                    reads: Vec::new(),
                    synced: Lsn::ZERO,
                    adopted: Epoch::FIRST,
                    sealed: Epoch::FIRST,
                };
            }
            Step::ReplicaCrashed(r) => {
                let slot = self.replica_slot_mut(*r)?;
                if slot.machine.take().is_none() {
                    return Err(format!("{r:?} is not up"));
                }
                slot.incarnation += 1;
            }
            Step::ReplicaRestarted {
                replica,
                incarnation,
            } => {
                let cfg = self.cfg.clone();
                let slot = self.replica_slot_mut(*replica)?;
                let least = slot.incarnation + u32::from(slot.machine.is_some());
                if *incarnation < least {
                    return Err(format!(
                        "{replica:?} restarts as incarnation {incarnation}, but it is already \
                         past {}",
                        least - 1
                    ));
                }
                slot.incarnation = *incarnation;
                slot.machine = Some(Replica::new_in(*replica, *incarnation, cfg, slot.epoch));
                fx.observed.push(Event::ReplicaRestarted {
                    replica: *replica,
                    incarnation: *incarnation,
                });
            }
            Step::AzOutage(az) => self.az_out = *az,
        }
        Ok(fx)
    }

    fn replica_slot(&self, r: ReplicaId) -> Result<&ReplicaSlot, String> {
        self.replicas
            .get(r.index())
            .ok_or_else(|| format!("there is no {r:?}"))
    }

    fn replica_slot_mut(&mut self, r: ReplicaId) -> Result<&mut ReplicaSlot, String> {
        self.replicas
            .get_mut(r.index())
            .ok_or_else(|| format!("there is no {r:?}"))
    }
}

/// One line per step, for people.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Writer(WriterInput::Append { page, value }) => {
                write!(f, "W appends (page {page}, value {value})")
            }
            Step::Writer(WriterInput::Deliver(e)) => write!(f, "W receives {e:?}"),
            Step::Writer(WriterInput::Tick) => write!(f, "W ticks"),
            Step::Writer(WriterInput::Repair) => write!(f, "W repairs what was lost"),
            Step::Node { node, input } => match input {
                StorageInput::Deliver(batch) => {
                    let msgs: Vec<String> = batch.iter().map(|e| format!("{e:?}")).collect();
                    write!(f, "{node:?} receives [{}]", msgs.join(", "))
                }
                StorageInput::FlushDone { upto } => {
                    write!(f, "{node:?}'s flush of ..={upto} is done")
                }
                StorageInput::ReadDone { to, from, records } => write!(
                    f,
                    "{node:?} read back {} records from {from} for {to:?}'s pull",
                    records.len()
                ),
            },
            Step::Replica { replica, input } => match input {
                ReplicaInput::Deliver(e) => write!(f, "{replica:?} receives {e:?}"),
                ReplicaInput::Tick => write!(f, "{replica:?} ticks"),
            },
            Step::NodeCrashed { node, on_disk } => {
                write!(f, "{node:?} crashes (disk keeps 1..={on_disk})")
            }
            Step::NodeRestarted {
                node,
                recovered,
                damage,
            } => {
                write!(
                    f,
                    "{node:?} restarts, recovering {} records",
                    recovered.len()
                )?;
                match damage {
                    Some(d) => write!(f, " ({d})"),
                    None => Ok(()),
                }
            }
            Step::NodeLost(node) => write!(f, "{node:?} is lost for good"),
            Step::ReplicaCrashed(r) => write!(f, "{r:?} crashes"),
            Step::ReplicaRestarted {
                replica,
                incarnation,
            } => write!(
                f,
                "{replica:?} (re)starts empty as incarnation {incarnation}"
            ),
            Step::AzOutage(Some(az)) => write!(f, "AZ {az:?} goes out"),
            Step::AzOutage(None) => write!(f, "the AZ outage ends"),
            Step::FailOver { zombie } => write!(
                f,
                "W fails over: a new writer starts recovery{}",
                if *zombie {
                    " (the old one runs on)"
                } else {
                    ""
                }
            ),
            Step::Zombie(WriterInput::Append { page, value }) => {
                write!(f, "the zombie appends (page {page}, value {value})")
            }
            Step::Zombie(input) => write!(f, "the zombie consumes {input:?}"),
        }
    }
}
