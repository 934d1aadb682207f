//! Per-node watermarks folded into a quorum point: the one helper behind the writer's commit
//! point and a replica's known commit point and durable LSN.

use aurora_redo_model::quorum::{kth_highest, quorum_watermark};
use aurora_redo_model::types::{Lsn, NodeId, STORAGE_NODES};

/// The highest watermark each node has reported (the max, so reordered or duplicated reports
/// are harmless) and the point that `k` nodes reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumTracker {
    per_node: [Lsn; STORAGE_NODES],
    /// How many nodes must reach the point: 4 (a write quorum) unless a seeded bug says 3.
    k: usize,
}

impl Default for QuorumTracker {
    fn default() -> Self {
        QuorumTracker::write_quorum()
    }
}

impl QuorumTracker {
    /// The 4-of-6 point (commit point, durable LSN).
    pub fn write_quorum() -> QuorumTracker {
        QuorumTracker {
            per_node: [Lsn::ZERO; STORAGE_NODES],
            k: aurora_redo_model::types::WRITE_QUORUM,
        }
    }

    /// A point reached by only `k` nodes: for seeded bugs.
    pub fn with_k(k: usize) -> QuorumTracker {
        QuorumTracker {
            per_node: [Lsn::ZERO; STORAGE_NODES],
            k,
        }
    }

    /// Records that `node` reported `lsn`; returns whether the quorum point rose.
    pub fn observe(&mut self, node: NodeId, lsn: Lsn) -> bool {
        let before = self.point();
        let slot = &mut self.per_node[node.index()];
        *slot = (*slot).max(lsn);
        self.point() > before
    }

    /// The highest LSN reported by `node`.
    pub fn node(&self, node: NodeId) -> Lsn {
        self.per_node[node.index()]
    }

    /// All per-node watermarks, indexed by node.
    pub fn per_node(&self) -> [Lsn; STORAGE_NODES] {
        self.per_node
    }

    /// The highest LSN that `k` nodes reach.
    pub fn point(&self) -> Lsn {
        if self.k == aurora_redo_model::types::WRITE_QUORUM {
            quorum_watermark(self.per_node)
        } else {
            kth_highest(self.per_node, self.k)
        }
    }
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use super::*;

    #[test]
    fn point_is_the_fourth_highest_max() {
        let mut t = QuorumTracker::write_quorum();
        for (n, l) in [(0, 5), (1, 4), (2, 3)] {
            assert!(!t.observe(NodeId(n), Lsn(l)));
        }
        assert!(t.observe(NodeId(3), Lsn(2)));
        assert_eq!(t.point(), Lsn(2));
        // A reordered, older report does not lower anything.
        assert!(!t.observe(NodeId(0), Lsn(1)));
        assert_eq!(t.node(NodeId(0)), Lsn(5));
        assert_eq!(t.point(), Lsn(2));
    }

    #[test]
    fn three_of_six_is_reached_earlier() {
        let mut t = QuorumTracker::with_k(3);
        for n in 0..3 {
            t.observe(NodeId(n), Lsn(7));
        }
        assert_eq!(t.point(), Lsn(7));
    }
}
