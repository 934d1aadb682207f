//! A storage node's rules: storing and acknowledging records, flushing to disk, and its faults.

use crate::config::{AckPolicy, Bug, Config};
use crate::invariants::truthful_ack;
use crate::state::{Node, NodeStatus, State};
use crate::types::{Actor, Lsn, NodeId};

/// The SCL a node reports. Correctly the contiguous prefix it holds; under `scl-with-holes`, the
/// highest LSN it holds.
fn reported_scl(config: &Config, node: &Node) -> Lsn {
    match config.bug {
        Some(Bug::SclWithHoles) => node.held().max(),
        _ => node.scl(),
    }
}

/// The SCL a node may acknowledge under the ack policy: what it holds (`memory`) or what is on
/// its disk (`disk`).
pub fn ackable_scl(config: &Config, node: &Node) -> Lsn {
    match config.ack {
        AckPolicy::Memory => reported_scl(config, node),
        AckPolicy::Disk => node.flushed(),
    }
}

/// Sends `Ack` to the writer and, with it, `Available` with the same SCL to every replica: a
/// replica can never learn of a commit the ack policy has not made.
fn acknowledge(config: &Config, state: &mut State, id: NodeId) {
    let node = state.node(id);
    let scl = ackable_scl(config, node);
    let truthful = truthful_ack(scl, node.scl());
    let i = id.index();
    state.announced.scl[i] = state.announced.scl[i].max(scl);
    state.ghost.truthful_ack[i] = state.ghost.truthful_ack[i].max(truthful);
}

/// Step 2, **Store and acknowledge** (`docs/protocol.md`): the node puts the record in memory.
/// Under ack `memory` it acknowledges at once; under `disk` the flush acknowledges. A duplicate
/// re-acknowledges the current SCL: the protocol's own retry.
pub fn on_append(config: &Config, state: &mut State, id: NodeId, lsn: Lsn) {
    let node = state.node_mut(id);
    let duplicate = node.held().contains(lsn);
    if !duplicate {
        node.mem.insert(lsn);
    }
    if duplicate || config.ack == AckPolicy::Memory {
        acknowledge(config, state, id);
    }
}

/// Whether delivering `Append(lsn)` would change anything: a new record always does; a duplicate
/// only if its re-ack announces more than the node already has.
pub fn append_changes_anything(config: &Config, state: &State, id: NodeId, lsn: Lsn) -> bool {
    let node = state.node(id);
    if !node.held().contains(lsn) {
        return true;
    }
    let scl = ackable_scl(config, node);
    let i = id.index();
    scl > state.announced.scl[i] || truthful_ack(scl, node.scl()) > state.ghost.truthful_ack[i]
}

/// How far a flush may go: any LSN above the disk's prefix up to the node's SCL. A flush covers
/// the prefix the node held when it began, so it may stop short of records that arrived since.
pub fn flush_targets(node: &Node) -> impl Iterator<Item = Lsn> {
    let (from, to) = if node.is_up() {
        (node.flushed().0 + 1, node.scl().0)
    } else {
        (1, 0)
    };
    (from..=to).map(Lsn)
}

/// Step 6, **Flush** (`docs/protocol.md`): move the contiguous prefix `1..=upto` from memory to
/// disk (records above it, or above a hole, stay in memory), then send `Flushed` to every replica.
/// Under ack `disk` this is also when the node acknowledges.
pub fn flush(config: &Config, state: &mut State, id: NodeId, upto: Lsn) {
    let node = state.node_mut(id);
    debug_assert!(upto <= node.scl());
    let moved = node.mem.remove_through(upto);
    node.disk = node.disk.union(moved);
    let flushed = node.flushed();
    state.judge_flush(id);
    let announced = &mut state.announced;
    announced.flushed[id.index()] = announced.flushed[id.index()].max(flushed);
    if config.bug == Some(Bug::DurableLastMessage) {
        announced.flushed_history[id.index()].insert(flushed);
    }
    if config.ack == AckPolicy::Disk {
        acknowledge(config, state, id);
    }
}

/// Step 8, **Catch-up** (`docs/protocol.md`), the node's side: the records `>= from` the node
/// holds, in memory or on disk, as it answers a `Pull` with `Records`.
pub fn records_from(node: &Node, from: Lsn) -> impl Iterator<Item = Lsn> {
    node.held().iter().filter(move |&l| l >= from)
}

/// Storage crash: memory is lost, disk survives. Messages in flight survive too.
pub fn crash(state: &mut State, id: NodeId) {
    let node = state.node_mut(id);
    node.status = NodeStatus::Crashed;
    node.mem = Default::default();
}

/// Restart after a crash: the node comes back with its disk, so its SCL is its flushed LSN.
pub fn restart(state: &mut State, id: NodeId) {
    state.node_mut(id).status = NodeStatus::Up;
}

/// Permanent loss: memory and disk are gone for good; nothing will reach the node again.
pub fn lose(state: &mut State, id: NodeId) {
    *state.node_mut(id) = Node {
        status: NodeStatus::Lost,
        ..Node::default()
    };
    state.network.discard_to(Actor::Storage(id));
}
