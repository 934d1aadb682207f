//! A read replica's rules: learning the commit and durable points, pulling and speculative
//! apply, and the discard rule.

use crate::config::{Bug, Config};
use crate::quorum::{kth_highest, quorum_watermark};
use crate::state::{LsnSet, Replica, State};
use crate::storage::records_from;
use crate::types::{Lsn, NodeId, ReplicaId};

/// Step 4, **Notify and pull** (`docs/protocol.md`): the highest commit point the `Available`
/// announcements sent so far allow a replica to know: the 4th-highest SCL announced in the epoch
/// it follows.
pub fn commit_bound(state: &State, r: ReplicaId) -> Lsn {
    quorum_watermark(state.acks_in(state.replica(r).epoch))
}

/// Whether receiving one more `Available` that leaves the replica's known commit point where it is
/// (a duplicate, or a fifth node's) changes the replica. Under the correct rules it never does;
/// a replica that discards on every `Available` (`discard-on-available`) frees what it retains up
/// to its known commit point.
pub fn commit_receipt_acts(config: &Config, state: &State, r: ReplicaId) -> bool {
    let replica = state.replica(r);
    config.bug == Some(Bug::DiscardOnAvailable) && frees_something(state, r, replica.known_commit)
}

/// Whether the discard rule, applied through `upto`, would free any record the replica retains.
/// A receipt of a `Flushed` that leaves the durable LSN where it is acts only then (never under
/// the correct rules, which retain nothing at or below the durable LSN).
pub fn frees_something(state: &State, r: ReplicaId, upto: Lsn) -> bool {
    state
        .replica(r)
        .retained
        .iter()
        .next()
        .is_some_and(|lsn| lsn <= upto)
}

/// The replica receives enough `Available`s to know the commit point `to` (or, where
/// [`commit_receipt_acts`], one more that leaves it at `to`).
pub fn learn_commit(config: &Config, state: &mut State, r: ReplicaId, to: Lsn) {
    let replica = state.replica_mut(r);
    replica.known_commit = replica.known_commit.max(to);
    if config.bug == Some(Bug::DiscardOnAvailable) {
        discard_through(state, r, to);
    }
}

/// Step 7, **Discard** (`docs/protocol.md`): the durable LSNs a replica may move to on receiving
/// `Flushed` announcements. Correctly: above its durable LSN, up to the 4th-highest announced
/// flushed LSN (it keeps each node's highest `Flushed`). Under `durable-from-one-node`, up to the
/// highest single one. Under `durable-last-message` it keeps each node's *latest* `Flushed`, and
/// any `Flushed` a node ever sent may arrive last: the 4th-highest can be any value some node sent,
/// provided at least 4 nodes sent something at least as high, above or below the current durable
/// LSN. The current durable LSN itself is a choice only where receiving a `Flushed` that leaves it
/// there changes the replica ([`frees_something`]).
pub fn durable_choices(config: &Config, state: &State, r: ReplicaId) -> Vec<Lsn> {
    let current = state.replica(r).durable;
    let flushed = state.flushes_in(state.replica(r).epoch);
    let candidates: Vec<Lsn> = match config.bug {
        Some(Bug::DurableFromOneNode) => (current.0 + 1..=kth_highest(flushed, 1).0)
            .map(Lsn)
            .collect(),
        Some(Bug::IgnoreFlushed) => Vec::new(),
        Some(Bug::DurableLastMessage) => {
            let quorum = quorum_watermark(flushed);
            let sent = state
                .announced
                .flushed_history
                .iter()
                .fold(LsnSet::EMPTY, |a, b| a.union(*b));
            sent.iter().filter(|&l| l <= quorum).collect()
        }
        _ => (current.0 + 1..=quorum_watermark(flushed).0)
            .map(Lsn)
            .collect(),
    };
    let receipt_acts = current > Lsn::ZERO && frees_something(state, r, current);
    candidates
        .into_iter()
        .filter(|&l| l != current)
        .chain(receipt_acts.then_some(current))
        .collect()
}

/// Step 7, **Discard** (`docs/protocol.md`): the replica's durable LSN becomes `to`, and it
/// discards the retained records up to it.
pub fn learn_durable(state: &mut State, r: ReplicaId, to: Lsn) {
    state.replica_mut(r).durable = to;
    discard_through(state, r, to);
}

/// **The discard rule**, as the model states it: a replica frees the retained records with LSN
/// `<= upto`, and only those. Each discard is judged on the spot against ground truth
/// (NoDiscardBeforeFlush). The engine's home of the rule is `RetainBuffer::discard_through` in
/// `impl/src/retain.rs`.
fn discard_through(state: &mut State, r: ReplicaId, upto: Lsn) {
    let discarded = state.replica_mut(r).retained.remove_through(upto);
    for lsn in discarded.iter() {
        state.judge_discard(r, lsn);
    }
}

/// The highest LSN the replica may apply: its known commit point (unbounded under
/// `apply-uncommitted`).
fn apply_limit(config: &Config, state: &State, r: ReplicaId) -> Lsn {
    match config.bug {
        Some(Bug::ApplyUncommitted) => Lsn(u64::MAX),
        _ => state.replica(r).known_commit,
    }
}

/// Steps 4 and 8, **Notify and pull**, **Catch-up** (`docs/protocol.md`), the pull rule: a replica
/// that is behind what it may apply pulls from a reachable node that holds its next record (a pull
/// that would bring nothing is not a step).
///
/// A replica pulls only from nodes that speak for the epoch it follows: `Records` carry the
/// sender's epoch, and a replica ignores those of another.
pub fn may_pull(config: &Config, state: &State, r: ReplicaId, node: NodeId) -> bool {
    let replica = state.replica(r);
    let next = replica.applied.next();
    let n = state.node(node);
    replica.up
        && next <= apply_limit(config, state, r)
        && state.reachable(node)
        && n.speaks()
        && n.epoch == replica.epoch
        && n.held().contains(next)
}

/// Steps 5 and 8, **Speculative apply**, **Catch-up** (`docs/protocol.md`): the replica sends
/// `Pull { from: applied + 1 }`, the node answers `Records` with what it holds from there, and
/// the replica applies them in LSN order with no gaps, up to its known commit point. It retains
/// each record that is not yet durable and discards at once one that is.
pub fn pull(config: &Config, state: &mut State, r: ReplicaId, node: NodeId) {
    let from = state.replica(r).applied.next();
    let limit = apply_limit(config, state, r);
    let records: Vec<_> = records_from(state.node(node), from).collect();
    let replica = state.replica_mut(r);
    let mut discarded_at_once = Vec::new();
    for record in records {
        let lsn = record.lsn;
        if lsn != replica.applied.next() || lsn > limit {
            break;
        }
        replica.applied = lsn;
        replica.applied_epochs.set(lsn, record.epoch);
        replica.pages[record.page as usize] = lsn;
        if lsn > replica.durable {
            replica.retained.insert(lsn);
        } else {
            discarded_at_once.push(lsn);
        }
    }
    for lsn in discarded_at_once {
        state.judge_discard(r, lsn);
    }
    if config.bug == Some(Bug::EvictRetained) {
        evict_oldest_beyond_one(state, r);
    }
}

/// Under `evict-retained`: a replica that retains more than one record frees the oldest, to bound
/// its memory, without the discard rule (so no discard is judged). Only RetainUntilDurable sees it.
fn evict_oldest_beyond_one(state: &mut State, r: ReplicaId) {
    let retained = &mut state.replica_mut(r).retained;
    while retained.iter().count() > 1 {
        let oldest = retained
            .iter()
            .next()
            .expect("more than one retained record");
        retained.remove_through(oldest);
    }
}

/// Replica crash: everything is lost; the next incarnation starts from nothing and learns the
/// watermarks again from the nodes' announcements.
pub fn crash(state: &mut State, r: ReplicaId) {
    let replica = state.replica_mut(r);
    *replica = Replica {
        up: false,
        ..Replica::fresh(replica.incarnation + 1, replica.epoch)
    };
}

/// The newest epoch some node speaks for, if it is newer than the one replica `r` follows: a
/// message of it (an `Available`, a `Flushed`, `Records`) can reach the replica.
pub fn newer_epoch(state: &State, r: ReplicaId) -> Option<crate::types::Epoch> {
    let newest = state
        .nodes
        .iter()
        .filter(|n| n.speaks())
        .map(|n| n.epoch)
        .max()?;
    (newest > state.replica(r).epoch).then_some(newest)
}

/// A replica that receives a message of a newer epoch follows it and starts over, as Aurora's
/// replicas restart when the writer changes: what it applied in the old epoch may be what the
/// recovery annulled. It is a new incarnation that knows nothing.
pub fn follow(state: &mut State, r: ReplicaId, epoch: crate::types::Epoch) {
    let replica = state.replica_mut(r);
    *replica = Replica::fresh(replica.incarnation + 1, epoch);
}

pub fn restart(state: &mut State, r: ReplicaId) {
    state.replica_mut(r).up = true;
}
