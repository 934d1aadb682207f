//! The abstraction that model and implementation are compared on: the watermarks PROTOCOL.md
//! defines, per actor. A model state and a running implementation map to the same
//! [`Abstraction`] exactly when they agree on every one of them.

use aurora_redo_model::state::NodeStatus;
use aurora_redo_model::{Lsn, State};
use std::fmt;

/// A storage node as the protocol sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeView {
    pub status: NodeStatus,
    /// The contiguous prefix it holds (memory or disk); for a crashed node, what its disk holds.
    pub scl: Lsn,
    /// The contiguous prefix on its disk.
    pub flushed: Lsn,
}

/// A read replica as the protocol sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaView {
    pub up: bool,
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
            applied: Lsn::ZERO,
            known_commit: Lsn::ZERO,
            durable: Lsn::ZERO,
            retained: Vec::new(),
        }
    }
}

/// The abstract state: the writer's commit point, each node's SCL and flushed LSN, each
/// replica's applied, known commit, durable LSN and retained records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abstraction {
    pub commit: Lsn,
    pub nodes: Vec<NodeView>,
    pub replicas: Vec<ReplicaView>,
}

impl Abstraction {
    /// The abstraction of a model state.
    pub fn of_model(s: &State) -> Abstraction {
        Abstraction {
            commit: s.writer.commit,
            nodes: s
                .nodes
                .iter()
                .map(|n| NodeView {
                    status: n.status,
                    scl: n.scl(),
                    flushed: n.flushed(),
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
                        applied: r.applied,
                        known_commit: r.known_commit,
                        durable: r.durable,
                        retained: r.retained.iter().collect(),
                    }
                })
                .collect(),
        }
    }

    /// The fields where `self` and `other` differ, one line each (empty when they agree).
    pub fn differences(&self, other: &Abstraction) -> Vec<String> {
        let mut out = Vec::new();
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
        out
    }
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
