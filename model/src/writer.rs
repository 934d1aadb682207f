//! The writer's rules in the model: writing a record, and the commit rule. (The engine's home of
//! the commit rule is `Writer::on_ack` in `impl/src/writer.rs`.)

use crate::config::{Bug, Config};
use crate::quorum::{kth_highest, quorum_watermark};
use crate::state::{record_for, NodeStatus, State};
use crate::types::{Envelope, Lsn, NodeId};

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
        _ => quorum_watermark(state.announced.scl),
    }
}

/// The writer receives enough `Ack`s to move its commit point to `to` (<= [`commit_bound`]).
pub fn commit(state: &mut State, to: Lsn) {
    debug_assert!(to > state.writer.commit);
    state.writer.commit = to;
    state.judge_commit();
}
