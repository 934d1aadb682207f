//! The writer's rules in the model: writing a record, and the commit rule. (The engine's home of
//! the commit rule is `Writer::on_ack` in `impl/src/writer.rs`.)

use crate::config::{Bug, Config};
use crate::quorum::{kth_highest, quorum_watermark};
use crate::state::{record_for, NodeStatus, State};
use crate::types::{Envelope, Lsn, NodeId};

/// Whether a node has been lost for good. A permanent loss is a membership change of the
/// volume, which every actor learns: the writer stops sending to the lost node
/// ([`write`]), and under `shrink-quorum-on-loss` it also lowers its write quorum.
fn lost_any(state: &State) -> bool {
    state.nodes.iter().any(|n| n.status == NodeStatus::Lost)
}

/// Whether the writer may write its next record. Correctly, whenever records remain to be
/// written. Under `writer-stalls` its flow control waits for a `Flushed` of the last record it
/// wrote, which storage never sends it (`Flushed` goes to replicas): it writes its first record
/// and no other.
pub fn may_write(config: &Config, state: &State) -> bool {
    let remaining = state.writer.written.0 < config.lsns as u64;
    match config.bug {
        Some(Bug::WriterStalls) => remaining && state.writer.written == Lsn::ZERO,
        _ => remaining,
    }
}

/// Step 1, **Write** (`docs/protocol.md`): the writer creates record `written + 1` and sends
/// `Append` to every node.
pub fn write(state: &mut State) {
    let lsn = state.writer.written.next();
    state.writer.written = lsn;
    for node in NodeId::all() {
        if state.node(node).status != NodeStatus::Lost {
            state.network.send(Envelope::append(node, record_for(lsn)));
        }
    }
}

/// Step 3, **Commit** (`docs/protocol.md`), the model's statement of the commit rule (the
/// engine's is `Writer::on_ack` in `impl/src/writer.rs`): the commit point is the 4th-highest SCL
/// the nodes acknowledged (the writer keeps each node's highest `Ack`), and it never moves
/// backwards. This is the highest commit point the `Ack`s sent so far allow; having received only
/// some of them, the writer may be anywhere between its current commit point and this.
pub fn commit_bound(config: &Config, state: &State) -> Lsn {
    match config.bug {
        Some(Bug::CommitAtThree) => kth_highest(state.announced.scl, 3),
        Some(Bug::ShrinkQuorumOnLoss) if lost_any(state) => {
            let surviving = NodeId::all().filter(|&n| state.node(n).status != NodeStatus::Lost);
            kth_highest(surviving.map(|n| state.announced.scl[n.index()]), 3)
        }
        _ => quorum_watermark(state.announced.scl),
    }
}

/// The writer receives enough `Ack`s to move its commit point to `to` (<= [`commit_bound`]).
pub fn commit(state: &mut State, to: Lsn) {
    debug_assert!(to > state.writer.commit);
    state.writer.commit = to;
    state.judge_commit();
}
