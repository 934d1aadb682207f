//! The abstraction that model and implementation are compared on: the watermarks `docs/protocol.md`
//! defines ("Records and watermarks"), per actor. A model state and a running implementation map to
//! the same [`Abstraction`] exactly when they agree on every one of them.

use aurora_redo_impl::cluster::Cluster;
use aurora_redo_impl::replica::Replica;
use aurora_redo_model::state::{record_for, NodeStatus, PAGES};
use aurora_redo_model::{Epoch, Lsn, NodeId, PageId, State};
use std::fmt;

/// A storage node as the protocol sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeView {
    pub status: NodeStatus,
    /// The contiguous prefix it holds (memory or disk); for a crashed node, what its disk holds.
    pub scl: Lsn,
    /// The contiguous prefix on its disk.
    pub flushed: Lsn,
    /// The epoch it adopted and the epoch of its last seal.
    pub epoch: Epoch,
    pub sealed: Epoch,
}

/// A read replica as the protocol sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaView {
    pub up: bool,
    /// The epoch it follows (kept across a crash).
    pub epoch: Epoch,
    pub applied: Lsn,
    pub known_commit: Lsn,
    pub durable: Lsn,
    /// Applied records still retained, in LSN order.
    pub retained: Vec<Lsn>,
}

impl ReplicaView {
    /// A crashed replica: everything lost.
    pub fn down() -> ReplicaView {
        ReplicaView {
            up: false,
            epoch: Epoch::FIRST,
            applied: Lsn::ZERO,
            known_commit: Lsn::ZERO,
            durable: Lsn::ZERO,
            retained: Vec::new(),
        }
    }

    /// A running engine replica's watermarks.
    pub fn of_engine(replica: &Replica) -> ReplicaView {
        ReplicaView {
            up: true,
            epoch: replica.epoch(),
            applied: replica.applied(),
            known_commit: replica.known_commit(),
            durable: replica.durable(),
            retained: replica.retained(),
        }
    }
}

/// The abstract state: the writer's commit point, each node's SCL and flushed LSN, each
/// replica's applied, known commit, durable LSN and retained records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abstraction {
    pub commit: Lsn,
    /// The writer's epoch, whether it is open, and the recovery point its epoch began from.
    pub epoch: Epoch,
    pub open: bool,
    pub point: Lsn,
    /// The writer's last LSN (what it has written, or recovered).
    pub written: Lsn,
    pub nodes: Vec<NodeView>,
    pub replicas: Vec<ReplicaView>,
    /// Which records the nodes and replicas hold, where known (see [`Records`]).
    pub records: Option<Records>,
}

/// The records each actor holds, by identity (which epoch's record each is): per node, the epoch
/// of each record of `1..=SCL`; per replica, each page's LSN and value (`(0, 0)` untouched; a
/// down replica has none). The model's records are `record_for(epoch, lsn)`, so a value names
/// its record's epoch. Known for the model, and for the engine where its nodes' flushed records
/// can be read (the conformance harness reads them from its segment files).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    pub nodes: Vec<Vec<Epoch>>,
    pub pages: Vec<Vec<(Lsn, u64)>>,
}

impl Records {
    /// The page image of an engine replica.
    pub fn pages_of(replica: &Replica) -> Vec<(Lsn, u64)> {
        (0..PAGES as PageId)
            .map(|p| replica.read(p).map_or((Lsn::ZERO, 0), |(v, l)| (l, v)))
            .collect()
    }
}

impl Abstraction {
    /// The abstraction of a model state.
    pub fn of_model(s: &State) -> Abstraction {
        let records = Records {
            nodes: s
                .nodes
                .iter()
                .map(|n| n.scl().prefix().map(|l| n.epochs.get(l)).collect())
                .collect(),
            pages: s
                .replicas
                .iter()
                .map(|r| {
                    if !r.up {
                        return Vec::new();
                    }
                    r.pages
                        .iter()
                        .map(|&l| match l {
                            Lsn::ZERO => (l, 0),
                            l => (l, record_for(r.applied_epochs.get(l), l).value),
                        })
                        .collect()
                })
                .collect(),
        };
        Abstraction {
            records: Some(records),
            commit: s.writer.commit,
            epoch: s.writer.epoch,
            open: s.writer.is_open(),
            point: s.writer.point,
            written: s.writer.written,
            nodes: s
                .nodes
                .iter()
                .map(|n| NodeView {
                    status: n.status,
                    scl: n.scl(),
                    flushed: n.flushed(),
                    epoch: n.epoch,
                    sealed: n.sealed,
                })
                .collect(),
            replicas: s
                .replicas
                .iter()
                .map(|r| {
                    if !r.up {
                        return ReplicaView::down();
                    }
                    ReplicaView {
                        up: true,
                        epoch: r.epoch,
                        applied: r.applied,
                        known_commit: r.known_commit,
                        durable: r.durable,
                        retained: r.retained.iter().collect(),
                    }
                })
                .collect(),
        }
    }

    /// The abstraction of the engine's role machines. A crashed node shows what its disk kept; a
    /// lost one, nothing.
    pub fn of_cluster(c: &Cluster) -> Abstraction {
        let w = c.writer();
        Abstraction {
            records: None,
            commit: w.commit_point(),
            epoch: w.epoch(),
            open: w.is_open(),
            point: w.point(),
            written: w.last_lsn(),
            nodes: NodeId::all()
                .map(|n| {
                    let status = c.node_status(n);
                    let (scl, flushed) = match (status, c.node(n)) {
                        (NodeStatus::Up, Some(m)) => (m.scl(), m.flushed()),
                        (NodeStatus::Lost, _) => (Lsn::ZERO, Lsn::ZERO),
                        _ => (c.synced(n), c.synced(n)),
                    };
                    let (epoch, sealed) = match status {
                        NodeStatus::Lost => (Epoch::FIRST, Epoch::FIRST),
                        _ => c.node_epochs(n),
                    };
                    NodeView {
                        status,
                        scl,
                        flushed,
                        epoch,
                        sealed,
                    }
                })
                .collect(),
            replicas: c
                .replica_ids()
                .map(|r| {
                    c.replica(r)
                        .map_or_else(ReplicaView::down, ReplicaView::of_engine)
                })
                .collect(),
        }
    }

    /// The fields where `self` and `other` differ, one line each (empty when they agree).
    pub fn differences(&self, other: &Abstraction) -> Vec<String> {
        let mut out = Vec::new();
        let writer = (self.epoch, self.open, self.point, self.written);
        let theirs = (other.epoch, other.open, other.point, other.written);
        if writer != theirs {
            out.push(format!(
                "W (epoch, open, point, written) {writer:?} vs {theirs:?}"
            ));
        }
        if self.commit != other.commit {
            out.push(format!(
                "W commit point {} vs {}",
                self.commit, other.commit
            ));
        }
        for (i, (a, b)) in self.nodes.iter().zip(&other.nodes).enumerate() {
            if a != b {
                out.push(format!("S{i} {a:?} vs {b:?}"));
            }
        }
        for (i, (a, b)) in self.replicas.iter().zip(&other.replicas).enumerate() {
            if a != b {
                out.push(format!("R{i} {a:?} vs {b:?}"));
            }
        }
        if let (Some(a), Some(b)) = (&self.records, &other.records) {
            for (i, (x, y)) in a.nodes.iter().zip(&b.nodes).enumerate() {
                if x != y {
                    out.push(format!("S{i} record epochs {x:?} vs {y:?}"));
                }
            }
            for (i, (x, y)) in a.pages.iter().zip(&b.pages).enumerate() {
                if x != y {
                    out.push(format!("R{i} pages (LSN, value) {x:?} vs {y:?}"));
                }
            }
        }
        out
    }
}

/// Whether the engine's replica view refines the model's: equal, or ahead only in records it
/// applied from an earlier answer (`applied` between the model's and the known commit point, and
/// exactly the records above the durable LSN among those retained). The engine's replica keeps
/// records it received above its known commit point and applies them as soon as an `Available`
/// raises that point, where the model's replica applies only inside an atomic `Pull`.
pub fn replica_conforms(model: &ReplicaView, engine: &ReplicaView) -> bool {
    if model == engine {
        return true;
    }
    let ahead: Vec<Lsn> = (model.applied.0 + 1..=engine.applied.0)
        .map(Lsn)
        .filter(|&l| l > model.durable)
        .collect();
    let retained: Vec<Lsn> = model.retained.iter().copied().chain(ahead).collect();
    model.up
        && engine.up
        && model.known_commit == engine.known_commit
        && model.durable == engine.durable
        && model.epoch == engine.epoch
        && model.applied < engine.applied
        && engine.applied <= engine.known_commit
        && engine.retained == retained
}

/// Whether the engine's abstraction (`engine`) conforms to the model's (`model`): the same commit
/// point and node watermarks, and every replica conforming by [`replica_conforms`].
pub fn conforms(model: &Abstraction, engine: &Abstraction) -> bool {
    model.commit == engine.commit
        && (model.epoch, model.open, model.point, model.written)
            == (engine.epoch, engine.open, engine.point, engine.written)
        && model.nodes == engine.nodes
        && model.replicas.len() == engine.replicas.len()
        && model
            .replicas
            .iter()
            .zip(&engine.replicas)
            .all(|(m, e)| replica_conforms(m, e))
        && records_conform(model, engine)
}

/// Whether the engine holds the model's records, where both are known: every node the same
/// epoch's record at each LSN of its SCL, and every replica page the same record, or (a replica
/// ahead, see [`replica_conforms`]) one the model's replica has not applied yet.
fn records_conform(model: &Abstraction, engine: &Abstraction) -> bool {
    let (Some(m), Some(e)) = (&model.records, &engine.records) else {
        return true;
    };
    m.nodes == e.nodes
        && m.pages.len() == e.pages.len()
        && m.pages
            .iter()
            .zip(&e.pages)
            .zip(&model.replicas)
            .all(|((mp, ep), r)| {
                mp.len() == ep.len() && mp.iter().zip(ep).all(|(a, b)| a == b || b.0 > r.applied)
            })
}

impl fmt::Display for Abstraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "commit {}", self.commit)?;
        for (i, n) in self.nodes.iter().enumerate() {
            write!(
                f,
                " | S{i} {:?} scl {} flushed {}",
                n.status, n.scl, n.flushed
            )?;
        }
        for (i, r) in self.replicas.iter().enumerate() {
            write!(
                f,
                " | R{i} up {} applied {} known {} durable {} retained {:?}",
                r.up, r.applied, r.known_commit, r.durable, r.retained
            )?;
        }
        Ok(())
    }
}
