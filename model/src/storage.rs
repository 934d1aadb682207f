//! A storage node's rules: storing and acknowledging records, flushing to disk, and its faults.

use crate::config::{AckPolicy, Bug, Config};
use crate::invariants::{epoch_fencing, truthful_ack};
use crate::state::{Flags, Node, NodeStatus, State};
use crate::types::{Actor, Epoch, Lsn, NodeId, Record};

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
/// replica can never learn of a commit the ack policy has not made. Both carry the node's epoch;
/// a node that has not yet persisted its epoch's truncation sends neither.
fn acknowledge(config: &Config, state: &mut State, id: NodeId) {
    let node = state.node(id);
    if !node.speaks() {
        return;
    }
    let scl = ackable_scl(config, node);
    let truthful = truthful_ack(scl, node.scl());
    let of_writer = node.epoch == state.writer.epoch;
    let i = id.index();
    state.announced.scl[i] = state.announced.scl[i].max(scl);
    if of_writer {
        state.ghost.truthful_ack[i] = state.ghost.truthful_ack[i].max(truthful);
    }
}

/// Announces what a node has after a recovery's write made it speak for its epoch: its `Ack` (and
/// `Available`) and its `Flushed`.
pub fn announce(config: &Config, state: &mut State, id: NodeId) {
    announce_flushed(config, state, id);
    acknowledge(config, state, id);
}

fn announce_flushed(config: &Config, state: &mut State, id: NodeId) {
    let node = state.node(id);
    if !node.speaks() {
        return;
    }
    let flushed = node.flushed();
    let announced = &mut state.announced;
    announced.flushed[id.index()] = announced.flushed[id.index()].max(flushed);
    if keeps_flushed_history(config) {
        announced.flushed_history[id.index()].insert(flushed);
    }
}

/// Whether every `Flushed` a node sends is remembered by its value, not only the highest so far:
/// under `durable-last-message`, the one rule that can act on a stale `Flushed`. Then a flush to
/// `L` in one step and the same flush in two (to `L - 1`, then `L`) differ: the second also sent
/// `L - 1`.
pub fn keeps_flushed_history(config: &Config) -> bool {
    config.bug == Some(Bug::DurableLastMessage)
}

/// **Promise** (`docs/protocol.md`, "One writer per epoch"): whether a node answers a recovery
/// read of a writer of `epoch`. Only for an epoch strictly above every epoch it has adopted or
/// promised in an earlier read (both are `node.epoch`): answering is the promise, so a second
/// writer of the same epoch is refused.
pub fn answers_read(node: &Node, epoch: Epoch) -> bool {
    epoch > node.epoch
}

/// **Accept**: whether a node takes the write phase (the seal) of a writer of `epoch`: an epoch
/// at least its promise (the writer whose read it answered, or a higher one) that it has not
/// sealed yet (its sealed epoch is lower).
pub fn accepts_seal(node: &Node, epoch: Epoch) -> bool {
    epoch >= node.epoch && epoch > node.sealed
}

/// A node adopts `epoch` (persisted), if it is newer than its own: from now on it takes nothing
/// from an older epoch. Its announcements in the old epoch stay as they were (receivers of that
/// epoch may still get them); in the new one it has announced nothing yet.
pub fn adopt(state: &mut State, id: NodeId, epoch: Epoch) {
    let i = id.index();
    if state.nodes[i].epoch >= epoch {
        return;
    }
    state.nodes[i].epoch = epoch;
    let a = &mut state.announced;
    a.prev[i] = (a.epoch[i], a.scl[i], a.flushed[i]);
    a.epoch[i] = epoch;
    a.scl[i] = Lsn::ZERO;
    a.flushed[i] = Lsn::ZERO;
}

/// What a node does with an `Append` of `record` (created, and sent, in `record.epoch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// Of the node's epoch, and the node speaks for it: stored, or re-acknowledged.
    Take,
    /// Of an older epoch than the node's: rejected (taken under `accept-stale-epoch` while the
    /// node has not yet persisted its new epoch's truncation).
    Stale,
    /// Of an epoch the node has not persisted the truncation of: it waits until the writer's
    /// write phase reaches the node.
    Wait,
}

/// How a node receives an `Append` of `record`.
pub fn receipt(config: &Config, node: &Node, record: &Record) -> Receipt {
    let accepts_stale = config.bug == Some(Bug::AcceptStaleEpoch) && !node.speaks();
    match record.epoch.cmp(&node.epoch) {
        std::cmp::Ordering::Less if accepts_stale => Receipt::Take,
        std::cmp::Ordering::Less => Receipt::Stale,
        std::cmp::Ordering::Equal if node.speaks() => Receipt::Take,
        _ => Receipt::Wait,
    }
}

/// Step 2, **Store and acknowledge** (`docs/protocol.md`): the node puts the record in memory.
/// Under ack `memory` it acknowledges at once; under `disk` the flush acknowledges. A duplicate
/// re-acknowledges the current SCL: the protocol's own retry. A record of an older epoch than the
/// node's is rejected (EpochFencing judges any that is taken).
pub fn on_append(config: &Config, state: &mut State, id: NodeId, record: &Record) {
    if receipt(config, state.node(id), record) != Receipt::Take {
        return;
    }
    let node = state.node_mut(id);
    let (lsn, node_epoch) = (record.lsn, node.epoch);
    let duplicate = node.held().contains(lsn);
    if !duplicate {
        node.mem.insert(lsn);
        node.epochs.set(lsn, record.epoch);
    }
    if !epoch_fencing(node_epoch, record.epoch) {
        state.ghost.flags.insert(Flags::FENCE_BROKEN);
        stale_acknowledge(config, state, id, record.epoch);
    } else if duplicate || config.ack == AckPolicy::Memory {
        acknowledge(config, state, id);
    }
}

/// Under `accept-stale-epoch`: a node that took an older epoch's record acknowledges it in that
/// epoch (ack `memory`), which lets the older writer count it.
fn stale_acknowledge(config: &Config, state: &mut State, id: NodeId, epoch: Epoch) {
    let node = state.node(id);
    let i = id.index();
    if config.ack == AckPolicy::Memory && state.announced.prev[i].0 == epoch {
        let scl = reported_scl(config, node);
        let prev = &mut state.announced.prev[i];
        prev.1 = prev.1.max(scl);
    }
}

/// Whether delivering `Append(record)` would change the node: a new record always does, a
/// rejected one never; a duplicate only if its re-ack announces more than the node already has.
pub fn append_changes_anything(
    config: &Config,
    state: &State,
    id: NodeId,
    record: &Record,
) -> bool {
    let node = state.node(id);
    if receipt(config, node, record) != Receipt::Take {
        return false;
    }
    if !node.held().contains(record.lsn) {
        return true;
    }
    if !epoch_fencing(node.epoch, record.epoch) {
        return !state.ghost.flags.contains(Flags::FENCE_BROKEN);
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
    state.judge_flush(id);
    announce_flushed(config, state, id);
    if config.ack == AckPolicy::Disk {
        acknowledge(config, state, id);
    }
}

/// Step 8, **Catch-up** (`docs/protocol.md`), the node's side: the records `>= from` the node
/// holds, in memory or on disk, as it answers a `Pull` with `Records` (in its epoch).
pub fn records_from(node: &Node, from: Lsn) -> impl Iterator<Item = Record> + '_ {
    node.held()
        .iter()
        .filter(move |&l| l >= from)
        .map(|l| crate::state::record_for(node.epochs.get(l), l))
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
