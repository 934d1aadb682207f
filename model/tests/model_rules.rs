//! The model's rules, fast: each role's rule (`storage`, `writer`, `replica`) and each invariant's
//! predicate on small hand-built states, then small exhaustive checks of the whole model (the
//! `quick` preset's variants at pinned sizes, and each seeded bug in its smallest configuration
//! with its exact catchers).
//!
//! This is the test target that `.cargo/mutants-model.toml` runs against every mutation of the
//! model's rule files, beside the model's unit tests; it takes a few seconds. The full
//! cross-crate checks of the same facts (every preset, the `mutants` table) are in
//! `tests/tests/model_checks.rs`.

use aurora_redo_model::invariants::{
    first_unreadable, never_decreases, readable_by_every_read_quorum, retained_unless_discarded,
    truthful_ack, COMMITTED_RECOVERABLE as CR, COMMIT_ONLY_AFTER_QUORUM as COQ,
    DURABLE_LSN_MONOTONIC as DLM, NO_DISCARD_BEFORE_FLUSH as NDBF, QUIESCENCE_CONVERGES as QC,
    REPLICA_PREFIX as RP, RETAIN_UNTIL_DURABLE as RUD,
};
use aurora_redo_model::properties::EVENTUALLY_CONVERGED as EC;
use aurora_redo_model::quorum::kth_highest;
use aurora_redo_model::state::{record_for, Flags, LsnSet, NodeStatus};
use aurora_redo_model::{
    replica, storage, writer, AckPolicy, Actor, Az, Bug, Config, Lsn, Msg, NetworkKind, NodeId,
    Preset, RedoModel, ReplicaId, State,
};
use aurora_redo_model::{Epoch, WriterId};
use stateright::{Checker, Expectation, Model};
use std::collections::BTreeSet;

const S0: NodeId = NodeId(0);
const S1: NodeId = NodeId(1);
const R0: ReplicaId = ReplicaId(0);
/// The epoch of the writer the first failover creates: number 1, writer 1.
const E1: Epoch = Epoch::new(1, WriterId(1));

fn config(ack: AckPolicy, bug: Option<Bug>) -> Config {
    Config {
        lsns: 3,
        ack,
        bug,
        ..Config::preset(Preset::Quick)
    }
}

fn memory() -> Config {
    config(AckPolicy::Memory, None)
}

fn disk() -> Config {
    config(AckPolicy::Disk, None)
}

fn set(lsns: &[u64]) -> LsnSet {
    let mut set = LsnSet::EMPTY;
    for &l in lsns {
        set.insert(Lsn(l));
    }
    set
}

fn lsns(values: &[u64]) -> Vec<Lsn> {
    values.iter().copied().map(Lsn).collect()
}

/// Every node's announced SCL and truthful ack set to `scl`, every announced flushed LSN and disk
/// high mark to `flushed`.
fn announce(state: &mut State, scl: [u64; 6], flushed: [u64; 6]) {
    for i in 0..6 {
        state.announced.scl[i] = Lsn(scl[i]);
        state.ghost.truthful_ack[i] = Lsn(scl[i]);
        state.announced.flushed[i] = Lsn(flushed[i]);
        state.ghost.disk_high[i] = Lsn(flushed[i]);
    }
}

// ---------------------------------------------------------------------------------------------
// Storage rules.

#[test]
fn under_memory_acks_a_new_record_is_stored_and_acknowledged_at_once() {
    let mut s = State::new(1);
    storage::on_append(&memory(), &mut s, S0, &record_for(Epoch::FIRST, Lsn(1)));
    assert_eq!(s.node(S0).mem, set(&[1]));
    assert_eq!(s.node(S0).disk, LsnSet::EMPTY);
    assert_eq!(s.announced.scl[0], Lsn(1), "acked SCL");
    assert_eq!(s.ghost.truthful_ack[0], Lsn(1), "a true ack");
    assert_eq!(s.announced.scl[1], Lsn(0), "another node acked nothing");
    assert_eq!(storage::ackable_scl(&memory(), s.node(S0)), Lsn(1));
}

#[test]
fn under_disk_acks_a_new_record_waits_for_the_flush() {
    let c = disk();
    let mut s = State::new(1);
    storage::on_append(&c, &mut s, S0, &record_for(Epoch::FIRST, Lsn(1)));
    assert_eq!(s.node(S0).mem, set(&[1]));
    assert_eq!(s.announced.scl[0], Lsn(0), "no ack before the flush");
    assert_eq!(storage::ackable_scl(&c, s.node(S0)), Lsn(0));
    storage::flush(&c, &mut s, S0, Lsn(1));
    assert_eq!(s.node(S0).mem, LsnSet::EMPTY);
    assert_eq!(s.node(S0).disk, set(&[1]));
    assert_eq!(s.announced.flushed[0], Lsn(1));
    assert_eq!(s.ghost.disk_high[0], Lsn(1));
    assert_eq!(s.announced.scl[0], Lsn(1), "the flush acknowledges");
    assert_eq!(s.ghost.truthful_ack[0], Lsn(1));
    assert_eq!(storage::ackable_scl(&c, s.node(S0)), Lsn(1));
}

#[test]
fn a_duplicate_re_acknowledges_the_current_scl() {
    // Under ack `disk`, a duplicate of a record on disk re-acknowledges the flushed LSN: the
    // protocol's retry for an ack that was lost.
    let c = disk();
    let mut s = State::new(1);
    s.node_mut(S0).disk = set(&[1]);
    s.node_mut(S0).mem = set(&[2]);
    storage::on_append(&c, &mut s, S0, &record_for(Epoch::FIRST, Lsn(2)));
    assert_eq!(s.node(S0).mem, set(&[2]), "stored once");
    assert_eq!(s.announced.scl[0], Lsn(1));
    assert_eq!(s.ghost.truthful_ack[0], Lsn(1));
    // A duplicate of a record held on disk does not go back into memory.
    storage::on_append(&c, &mut s, S0, &record_for(Epoch::FIRST, Lsn(1)));
    assert_eq!(s.node(S0).mem, set(&[2]));
    assert_eq!(s.node(S0).disk, set(&[1]));
}

#[test]
fn an_scl_is_the_contiguous_prefix_and_scl_with_holes_reports_the_highest() {
    let mut s = State::new(1);
    s.node_mut(S0).mem = set(&[1, 3]);
    assert_eq!(storage::ackable_scl(&memory(), s.node(S0)), Lsn(1));
    let holes = config(AckPolicy::Memory, Some(Bug::SclWithHoles));
    assert_eq!(storage::ackable_scl(&holes, s.node(S0)), Lsn(3));
    // Under ack `disk` the disk's prefix is acked, bug or not.
    s.node_mut(S0).disk = set(&[1]);
    s.node_mut(S0).mem = set(&[3]);
    let holes_disk = config(AckPolicy::Disk, Some(Bug::SclWithHoles));
    assert_eq!(storage::ackable_scl(&holes_disk, s.node(S0)), Lsn(1));

    // The seeded bug's ack is a lie, and the ghost keeps only its true part.
    let mut s = State::new(1);
    storage::on_append(&holes, &mut s, S0, &record_for(Epoch::FIRST, Lsn(2)));
    assert_eq!(s.announced.scl[0], Lsn(2));
    assert_eq!(s.ghost.truthful_ack[0], Lsn(0));
    storage::on_append(&holes, &mut s, S0, &record_for(Epoch::FIRST, Lsn(1)));
    assert_eq!(s.ghost.truthful_ack[0], Lsn(2));
}

#[test]
fn only_a_new_record_or_a_re_ack_that_announces_more_changes_a_node() {
    let c = memory();
    let mut s = State::new(1);
    assert!(storage::append_changes_anything(
        &c,
        &s,
        S0,
        &record_for(Epoch::FIRST, Lsn(1))
    ));
    storage::on_append(&c, &mut s, S0, &record_for(Epoch::FIRST, Lsn(1)));
    assert!(!storage::append_changes_anything(
        &c,
        &s,
        S0,
        &record_for(Epoch::FIRST, Lsn(1))
    ));
    assert!(storage::append_changes_anything(
        &c,
        &s,
        S0,
        &record_for(Epoch::FIRST, Lsn(2))
    ));
    // A held record whose re-ack would announce a higher SCL than the node has sent.
    s.announced.scl[0] = Lsn(0);
    assert!(storage::append_changes_anything(
        &c,
        &s,
        S0,
        &record_for(Epoch::FIRST, Lsn(1))
    ));
    // Or a truer one.
    s.announced.scl[0] = Lsn(1);
    s.ghost.truthful_ack[0] = Lsn(0);
    assert!(storage::append_changes_anything(
        &c,
        &s,
        S0,
        &record_for(Epoch::FIRST, Lsn(1))
    ));
}

#[test]
fn a_flush_may_stop_anywhere_from_above_the_disk_to_the_scl() {
    let mut s = State::new(1);
    let targets = |s: &State| storage::flush_targets(s.node(S0)).collect::<Vec<_>>();
    assert_eq!(targets(&s), Vec::<Lsn>::new(), "nothing to flush");
    s.node_mut(S0).mem = set(&[1, 2, 4]);
    assert_eq!(targets(&s), lsns(&[1, 2]), "a hole stops it");
    s.node_mut(S0).disk = set(&[1]);
    s.node_mut(S0).mem = set(&[2, 3]);
    assert_eq!(targets(&s), lsns(&[2, 3]));
    s.node_mut(S0).status = NodeStatus::Crashed;
    assert_eq!(
        targets(&s),
        Vec::<Lsn>::new(),
        "a crashed node flushes nothing"
    );
}

#[test]
fn a_flush_moves_the_prefix_and_leaves_the_rest_in_memory() {
    let c = memory();
    let mut s = State::new(1);
    s.node_mut(S0).mem = set(&[1, 2, 4]);
    storage::flush(&c, &mut s, S0, Lsn(1));
    assert_eq!(s.node(S0).disk, set(&[1]));
    assert_eq!(s.node(S0).mem, set(&[2, 4]));
    assert_eq!(s.announced.flushed[0], Lsn(1));
    assert_eq!(
        s.announced.scl[0],
        Lsn(0),
        "under ack memory a flush does not ack"
    );
    assert_eq!(
        s.announced.flushed_history[0],
        LsnSet::EMPTY,
        "kept only under the bug"
    );
    let last = config(AckPolicy::Memory, Some(Bug::DurableLastMessage));
    storage::flush(&last, &mut s, S0, Lsn(2));
    assert_eq!(s.announced.flushed_history[0], set(&[2]));
}

#[test]
fn a_pull_gets_every_held_record_from_its_lsn_on() {
    let mut s = State::new(1);
    s.node_mut(S0).disk = set(&[1, 2]);
    s.node_mut(S0).mem = set(&[3, 5]);
    let from = |l| {
        storage::records_from(s.node(S0), Lsn(l))
            .map(|r| r.lsn)
            .collect::<Vec<_>>()
    };
    assert_eq!(from(2), lsns(&[2, 3, 5]));
    assert_eq!(from(1), lsns(&[1, 2, 3, 5]));
    assert_eq!(from(6), Vec::<Lsn>::new());
}

#[test]
fn a_crash_loses_memory_a_restart_keeps_the_disk_and_a_loss_destroys_both() {
    let mut s = State::new(1);
    s.node_mut(S0).disk = set(&[1]);
    s.node_mut(S0).mem = set(&[2]);
    storage::crash(&mut s, S0);
    assert_eq!(s.node(S0).status, NodeStatus::Crashed);
    assert_eq!(s.node(S0).mem, LsnSet::EMPTY);
    assert_eq!(s.node(S0).disk, set(&[1]));
    storage::restart(&mut s, S0);
    assert_eq!(s.node(S0).status, NodeStatus::Up);
    assert_eq!(s.node(S0).scl(), Lsn(1));

    writer::write(&mut s);
    let to_s0 = |s: &State| {
        s.network
            .iter()
            .filter(|e| e.dst == Actor::Storage(S0))
            .count()
    };
    assert_eq!(to_s0(&s), 1);
    storage::lose(&mut s, S0);
    assert_eq!(s.node(S0).status, NodeStatus::Lost);
    assert_eq!(s.node(S0).held(), LsnSet::EMPTY);
    assert_eq!(to_s0(&s), 0, "nothing reaches a lost node");
    assert_eq!(s.network.len(), 5);
}

// ---------------------------------------------------------------------------------------------
// Writer rules.

#[test]
fn a_write_sends_the_next_record_to_every_node_not_lost() {
    let mut s = State::new(1);
    writer::write(&mut s);
    assert_eq!(s.writer.written, Lsn(1));
    assert_eq!(s.network.len(), 6);
    s.node_mut(S1).status = NodeStatus::Lost;
    writer::write(&mut s);
    assert_eq!(s.writer.written, Lsn(2));
    let second: Vec<Actor> = s
        .network
        .iter()
        .filter(|e| matches!(e.msg, Msg::Append(r) if r.lsn == Lsn(2)))
        .map(|e| e.dst)
        .collect();
    let expected: Vec<Actor> = NodeId::all()
        .filter(|&n| n != S1)
        .map(Actor::Storage)
        .collect();
    assert_eq!(second, expected);
}

#[test]
fn the_commit_bound_is_the_fourth_highest_ack() {
    let mut s = State::new(1);
    announce(&mut s, [2, 2, 2, 1, 0, 0], [0; 6]);
    assert_eq!(writer::commit_bound(&memory(), &s), Lsn(1));
    let three = config(AckPolicy::Memory, Some(Bug::CommitAtThree));
    assert_eq!(writer::commit_bound(&three, &s), Lsn(2));
    announce(&mut s, [2, 2, 2, 2, 0, 0], [0; 6]);
    assert_eq!(writer::commit_bound(&memory(), &s), Lsn(2));
}

/// More than eight values (the stack's room) are ranked on the heap, by the same rule: the
/// `k`-th highest exists while there are at least `k` values.
#[test]
fn the_kth_highest_of_more_than_eight_values_exists_while_there_are_k() {
    let nine = lsns(&[5, 1, 9, 3, 7, 2, 8, 4, 6]);
    assert_eq!(kth_highest(nine.clone(), 4), Lsn(6));
    assert_eq!(kth_highest(nine.clone(), 9), Lsn(1));
    assert_eq!(kth_highest(nine, 10), Lsn::ZERO);
}

#[test]
fn a_commit_moves_the_commit_point_and_notes_a_crash_before_it() {
    let mut s = State::new(1);
    writer::commit(&mut s, Lsn(1));
    assert_eq!(s.writer.commit, Lsn(1));
    assert!(!s.ghost.flags.contains(Flags::COMMIT_AFTER_CRASH));
    s.faults.storage_crashes = 1;
    writer::commit(&mut s, Lsn(2));
    assert_eq!(s.writer.commit, Lsn(2));
    assert!(s.ghost.flags.contains(Flags::COMMIT_AFTER_CRASH));
}

// ---------------------------------------------------------------------------------------------
// Replica rules.

#[test]
fn a_replica_learns_the_fourth_highest_announced_scl() {
    let mut s = State::new(1);
    announce(&mut s, [3, 3, 3, 2, 1, 0], [0; 6]);
    assert_eq!(replica::commit_bound(&s, R0), Lsn(2));
    replica::learn_commit(&memory(), &mut s, R0, Lsn(2));
    assert_eq!(s.replica(R0).known_commit, Lsn(2));
    // Learning never lowers it.
    replica::learn_commit(&memory(), &mut s, R0, Lsn(1));
    assert_eq!(s.replica(R0).known_commit, Lsn(2));
}

#[test]
fn only_discard_on_available_acts_on_an_available_that_moves_nothing() {
    let bug = config(AckPolicy::Memory, Some(Bug::DiscardOnAvailable));
    let mut s = State::new(1);
    s.replica_mut(R0).known_commit = Lsn(1);
    s.replica_mut(R0).applied = Lsn(1);
    s.replica_mut(R0).retained = set(&[1]);
    assert!(!replica::commit_receipt_acts(&memory(), &s, R0));
    assert!(replica::commit_receipt_acts(&bug, &s, R0));
    s.replica_mut(R0).retained = set(&[2]);
    assert!(!replica::commit_receipt_acts(&bug, &s, R0), "frees nothing");

    // The correct replica keeps what it retains when it learns a commit point; the seeded one
    // discards it, and the discard is judged (no disk holds LSN 1).
    let mut s = State::new(1);
    s.replica_mut(R0).applied = Lsn(1);
    s.replica_mut(R0).retained = set(&[1]);
    replica::learn_commit(&memory(), &mut s, R0, Lsn(1));
    assert_eq!(s.replica(R0).retained, set(&[1]));
    replica::learn_commit(&bug, &mut s, R0, Lsn(1));
    assert_eq!(s.replica(R0).retained, LsnSet::EMPTY);
    assert!(s.ghost.flags.contains(Flags::UNSAFE_DISCARD));
}

#[test]
fn frees_something_asks_for_a_retained_record_at_or_below() {
    let mut s = State::new(1);
    assert!(!replica::frees_something(&s, R0, Lsn(3)));
    s.replica_mut(R0).retained = set(&[2, 3]);
    assert!(!replica::frees_something(&s, R0, Lsn(1)));
    assert!(replica::frees_something(&s, R0, Lsn(2)));
    assert!(replica::frees_something(&s, R0, Lsn(3)));
}

#[test]
fn durable_choices_follow_the_flushed_quorum_and_each_seeded_bug() {
    let choices = |c: &Config, s: &State| replica::durable_choices(c, s, R0);
    let mut s = State::new(1);
    announce(&mut s, [0; 6], [3, 2, 2, 2, 1, 0]);
    assert_eq!(choices(&memory(), &s), lsns(&[1, 2]));
    s.replica_mut(R0).durable = Lsn(1);
    assert_eq!(choices(&memory(), &s), lsns(&[2]), "only above the current");
    s.replica_mut(R0).durable = Lsn(2);
    s.replica_mut(R0).applied = Lsn(3);
    s.replica_mut(R0).retained = set(&[3]);
    assert_eq!(
        choices(&memory(), &s),
        Vec::<Lsn>::new(),
        "nothing to learn"
    );

    // `durable-from-one-node`: up to the highest single one.
    let one = config(AckPolicy::Memory, Some(Bug::DurableFromOneNode));
    s.replica_mut(R0).durable = Lsn(1);
    assert_eq!(choices(&one, &s), lsns(&[2, 3]));
    // `ignore-flushed`: never.
    let ignore = config(AckPolicy::Memory, Some(Bug::IgnoreFlushed));
    assert_eq!(choices(&ignore, &s), Vec::<Lsn>::new());
    // `durable-last-message`: any value some node sent, at most the 4th-highest, even below.
    let last = config(AckPolicy::Memory, Some(Bug::DurableLastMessage));
    s.announced.flushed_history[0] = set(&[1, 3]);
    s.announced.flushed_history[1] = set(&[2]);
    s.replica_mut(R0).durable = Lsn(2);
    assert_eq!(choices(&last, &s), lsns(&[1]));
}

#[test]
fn learning_a_durable_lsn_discards_through_it_and_judges_each_discard() {
    let mut s = State::new(1);
    announce(&mut s, [3; 6], [2, 2, 2, 2, 0, 0]);
    s.replica_mut(R0).applied = Lsn(3);
    s.replica_mut(R0).retained = set(&[1, 2, 3]);
    replica::learn_durable(&mut s, R0, Lsn(2));
    assert_eq!(s.replica(R0).durable, Lsn(2));
    assert_eq!(s.replica(R0).retained, set(&[3]));
    assert!(
        !s.ghost.flags.contains(Flags::UNSAFE_DISCARD),
        "1 and 2 are durable"
    );
    replica::learn_durable(&mut s, R0, Lsn(3));
    assert_eq!(s.replica(R0).retained, LsnSet::EMPTY);
    assert!(
        s.ghost.flags.contains(Flags::UNSAFE_DISCARD),
        "3 is on two disks"
    );
}

#[test]
fn a_replica_pulls_only_what_it_may_apply_from_a_reachable_holder() {
    let c = memory();
    let mut s = State::new(1);
    s.node_mut(S0).mem = set(&[1]);
    let may = |c: &Config, s: &State| replica::may_pull(c, s, R0, S0);
    assert!(!may(&c, &s), "LSN 1 is not committed");
    let uncommitted = config(AckPolicy::Memory, Some(Bug::ApplyUncommitted));
    assert!(may(&uncommitted, &s));
    s.replica_mut(R0).known_commit = Lsn(1);
    assert!(may(&c, &s));
    assert!(!replica::may_pull(&c, &s, R0, S1), "S1 does not hold LSN 1");
    s.az_out = Some(Az::A);
    assert!(!may(&c, &s), "S0 is out of reach");
    s.az_out = None;
    s.replica_mut(R0).up = false;
    assert!(!may(&c, &s), "the replica is down");
    s.replica_mut(R0).up = true;
    s.replica_mut(R0).applied = Lsn(1);
    assert!(!may(&c, &s), "nothing left to apply");
}

#[test]
fn a_pull_applies_in_order_up_to_the_commit_point_and_retains_what_is_not_durable() {
    let mut s = State::new(1);
    announce(&mut s, [4; 6], [1, 1, 1, 1, 0, 0]);
    s.node_mut(S0).mem = set(&[1, 2, 3, 4]);
    s.replica_mut(R0).known_commit = Lsn(3);
    s.replica_mut(R0).durable = Lsn(1);
    replica::pull(&memory(), &mut s, R0, S0);
    let r = s.replica(R0);
    assert_eq!(r.applied, Lsn(3), "up to the commit point");
    assert_eq!(r.pages, [Lsn(3), Lsn(2)]);
    assert_eq!(
        r.retained,
        set(&[2, 3]),
        "LSN 1 is durable: discarded at once"
    );
    assert!(!s.ghost.flags.contains(Flags::UNSAFE_DISCARD));

    // A hole stops it.
    let mut s = State::new(1);
    s.node_mut(S0).mem = set(&[1, 3]);
    s.replica_mut(R0).known_commit = Lsn(3);
    replica::pull(&memory(), &mut s, R0, S0);
    assert_eq!(s.replica(R0).applied, Lsn(1));
    assert_eq!(s.replica(R0).retained, set(&[1]));

    // `apply-uncommitted` applies past the commit point.
    let mut s = State::new(1);
    s.node_mut(S0).mem = set(&[1, 2]);
    let uncommitted = config(AckPolicy::Memory, Some(Bug::ApplyUncommitted));
    replica::pull(&uncommitted, &mut s, R0, S0);
    assert_eq!(s.replica(R0).applied, Lsn(2));
}

#[test]
fn evict_retained_keeps_only_the_newest_record() {
    let evict = config(AckPolicy::Memory, Some(Bug::EvictRetained));
    let mut s = State::new(1);
    s.node_mut(S0).mem = set(&[1, 2, 3]);
    s.replica_mut(R0).known_commit = Lsn(1);
    replica::pull(&evict, &mut s, R0, S0);
    assert_eq!(s.replica(R0).retained, set(&[1]), "one record is kept");
    s.replica_mut(R0).known_commit = Lsn(3);
    replica::pull(&evict, &mut s, R0, S0);
    assert_eq!(s.replica(R0).applied, Lsn(3));
    assert_eq!(s.replica(R0).retained, set(&[3]));
    assert!(
        !s.ghost.flags.contains(Flags::UNSAFE_DISCARD),
        "not a discard"
    );
}

#[test]
fn a_replica_crash_starts_a_new_incarnation_that_knows_nothing() {
    let mut s = State::new(2);
    s.replica_mut(R0).known_commit = Lsn(2);
    s.replica_mut(R0).durable = Lsn(1);
    s.replica_mut(R0).applied = Lsn(2);
    s.replica_mut(R0).retained = set(&[2]);
    replica::crash(&mut s, R0);
    let r = *s.replica(R0);
    assert!(!r.up);
    assert_eq!(r.incarnation, 1);
    assert_eq!(
        (r.known_commit, r.durable, r.applied, r.retained),
        (Lsn(0), Lsn(0), Lsn(0), LsnSet::EMPTY)
    );
    replica::restart(&mut s, R0);
    assert!(s.replica(R0).up);
    replica::crash(&mut s, R0);
    assert_eq!(s.replica(R0).incarnation, 2);
    assert!(s.replica(ReplicaId(1)).up, "the other replica is untouched");
}

// ---------------------------------------------------------------------------------------------
// The invariants' predicates at their edges.

#[test]
fn an_ack_vouches_for_the_smaller_of_what_it_sent_and_what_was_held() {
    assert_eq!(truthful_ack(Lsn(2), Lsn(1)), Lsn(1));
    assert_eq!(truthful_ack(Lsn(1), Lsn(2)), Lsn(1));
    assert_eq!(truthful_ack(Lsn(2), Lsn(2)), Lsn(2));
}

#[test]
fn a_watermark_may_stay_or_rise_but_not_fall() {
    assert!(never_decreases(Lsn(1), Lsn(2)));
    assert!(never_decreases(Lsn(2), Lsn(2)));
    assert!(!never_decreases(Lsn(2), Lsn(1)));
}

#[test]
fn a_record_is_retained_exactly_while_applied_and_not_discarded() {
    assert!(retained_unless_discarded(true, false, true));
    assert!(retained_unless_discarded(true, true, false));
    assert!(retained_unless_discarded(false, false, false));
    assert!(!retained_unless_discarded(true, false, false));
    assert!(!retained_unless_discarded(true, true, true));
    assert!(!retained_unless_discarded(false, false, true));
}

#[test]
fn the_first_unreadable_committed_record_is_reported_with_its_counts() {
    assert!(readable_by_every_read_quorum(2, 4));
    assert!(!readable_by_every_read_quorum(1, 4));
    let all = |_: Lsn| (6, 6);
    assert_eq!(first_unreadable(Lsn(0), |_| (0, 6)), None);
    assert_eq!(first_unreadable(Lsn(3), all), None);
    let holding = |l: Lsn| if l.0 >= 2 { (1, 5) } else { (5, 5) };
    assert_eq!(first_unreadable(Lsn(3), holding), Some((Lsn(2), 1, 5)));
    assert_eq!(first_unreadable(Lsn(1), holding), None);
}

// ---------------------------------------------------------------------------------------------
// Small exhaustive checks of the whole model.

/// What an exhaustive check of a configuration found.
#[derive(Debug)]
struct Outcome {
    unique_states: usize,
    /// The `always` and `eventually` properties violated.
    violated: BTreeSet<&'static str>,
    /// The `sometimes` properties never reached.
    unreached: BTreeSet<&'static str>,
}

/// Depth-first with the symmetry reduction, one thread, as `aurora-redo check` does by default
/// (so the counts are those of `tests/tests/model_checks.rs`).
fn check(config: &Config) -> Outcome {
    let model: RedoModel = config.clone().into_model();
    let properties = model.properties();
    let checker = model
        .checker()
        .symmetry_fn(RedoModel::representative)
        .spawn_dfs();
    while !checker.is_done() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let discoveries = checker.discoveries();
    let found = |name: &str| discoveries.contains_key(name);
    Outcome {
        unique_states: checker.unique_state_count(),
        violated: properties
            .iter()
            .filter(|p| p.expectation != Expectation::Sometimes && found(p.name))
            .map(|p| p.name)
            .collect(),
        unreached: properties
            .iter()
            .filter(|p| p.expectation == Expectation::Sometimes && !found(p.name))
            .map(|p| p.name)
            .collect(),
    }
}

/// Variants of the `quick` preset (one LSN unless named, one replica, no faults unless named)
/// hold: no violation, every reachability fact reached, at these sizes.
#[test]
fn quick_variants_hold_at_pinned_sizes() {
    use AckPolicy::{Disk, Memory};
    use NetworkKind::{Duplicating, Lossy, Unordered};
    let quick = |network, ack| Config {
        network,
        ack,
        ..Config::preset(Preset::Quick)
    };
    let variants: Vec<(&str, Config, usize)> = vec![
        ("unordered, memory", quick(Unordered, Memory), 296),
        ("duplicating, memory", quick(Duplicating, Memory), 296),
        ("lossy, memory", quick(Lossy, Memory), 727),
        ("unordered, disk", quick(Unordered, Disk), 156),
        ("duplicating, disk", quick(Duplicating, Disk), 156),
        (
            "unordered, disk, 1 storage crash",
            Config {
                storage_crashes: 1,
                ..quick(Unordered, Disk)
            },
            1_129,
        ),
        (
            "unordered, memory, 1 replica crash",
            Config {
                replica_crashes: 1,
                ..quick(Unordered, Memory)
            },
            686,
        ),
        (
            "unordered, memory, 1 AZ outage",
            Config {
                az_outages: 1,
                ..quick(Unordered, Memory)
            },
            1_247,
        ),
        (
            "unordered, disk, 1 node lost",
            Config {
                lost_nodes: 1,
                ..quick(Unordered, Disk)
            },
            503,
        ),
        (
            "unordered, memory, 2 replicas",
            Config {
                replicas: 2,
                ..quick(Unordered, Memory)
            },
            734,
        ),
        (
            "unordered, memory, 2 LSNs",
            Config {
                lsns: 2,
                ..quick(Unordered, Memory)
            },
            43_771,
        ),
    ];
    let mut got = Vec::new();
    for (name, config, _) in &variants {
        let outcome = check(config);
        assert_eq!(outcome.violated, BTreeSet::new(), "{name}: violations");
        assert_eq!(
            outcome.unreached,
            BTreeSet::new(),
            "{name}: unreached facts"
        );
        got.push((*name, outcome.unique_states));
    }
    let want: Vec<(&str, usize)> = variants.iter().map(|(n, _, u)| (*n, *u)).collect();
    assert_eq!(got, want, "unique states");
}

/// Each seeded bug in its smallest configuration (`quick` with one or two LSNs, as the `mutants`
/// table finds it) is caught by exactly these properties, at these sizes. The one-LSN
/// configurations are checked on every network, the two-LSN ones on the unordered network only,
/// to keep this fast (`model_checks.rs` checks every network).
#[test]
fn seeded_bugs_are_caught_by_exactly_their_catchers() {
    use Bug::*;
    use NetworkKind::{Duplicating as D, Lossy as L, Unordered as U};
    let rows: [(Bug, u8, NetworkKind, &[&str], usize); 22] = [
        (DiscardOnAvailable, 1, U, &[NDBF], 406),
        (DiscardOnAvailable, 1, D, &[NDBF], 406),
        (DiscardOnAvailable, 1, L, &[NDBF], 955),
        (CommitAtThree, 1, U, &[COQ, CR], 306),
        (CommitAtThree, 1, D, &[COQ, CR], 306),
        (CommitAtThree, 1, L, &[COQ, CR], 783),
        (DurableFromOneNode, 1, U, &[NDBF], 471),
        (DurableFromOneNode, 1, D, &[NDBF], 471),
        (DurableFromOneNode, 1, L, &[NDBF], 1_192),
        (DurableLastMessage, 2, U, &[DLM], 142_531),
        (ApplyUncommitted, 1, U, &[RP], 406),
        (ApplyUncommitted, 1, D, &[RP], 406),
        (ApplyUncommitted, 1, L, &[RP], 1_051),
        (SclWithHoles, 2, U, &[COQ, CR], 61_103),
        (IgnoreFlushed, 1, U, &[QC], 242),
        (IgnoreFlushed, 1, D, &[QC], 242),
        // Liveness is not claimed on a lossy network.
        (IgnoreFlushed, 1, L, &[QC], 631),
        (EvictRetained, 2, U, &[RUD], 45_283),
        (WriterStalls, 2, U, &[EC], 296),
        // The smaller configurations do not show the two-LSN bugs.
        (DurableLastMessage, 1, U, &[], 296),
        (SclWithHoles, 1, U, &[], 296),
        (EvictRetained, 1, U, &[], 296),
    ];
    let mut got = Vec::new();
    let mut want = Vec::new();
    for (bug, lsns, network, catchers, unique) in rows {
        let outcome = check(&Config {
            lsns,
            network,
            bug: Some(bug),
            ..Config::preset(Preset::Quick)
        });
        got.push((bug, lsns, network, outcome.violated, outcome.unique_states));
        want.push((
            bug,
            lsns,
            network,
            catchers.iter().copied().collect(),
            unique,
        ));
    }
    assert_eq!(got, want);
}

/// `shrink-quorum-on-loss` acts only once a node is lost for good: with a loss in the budget it
/// breaks CommitOnlyAfterQuorum and nothing else (3 holders among 5 survivors still meet every
/// read quorum of 3); without one, the writer's quorum never shrinks and nothing breaks.
#[test]
fn shrink_quorum_on_loss_acts_only_after_a_loss() {
    let bug = Config {
        lsns: 1,
        bug: Some(Bug::ShrinkQuorumOnLoss),
        ..Config::preset(Preset::Quick)
    };
    let with_loss = check(&Config {
        lost_nodes: 1,
        ..bug.clone()
    });
    assert_eq!(with_loss.violated, BTreeSet::from([COQ]));
    let without_loss = check(&bug);
    assert!(
        without_loss.violated.is_empty(),
        "{:?}",
        without_loss.violated
    );
    assert_eq!(without_loss.unique_states, 296);
}

/// The finding: the seed (ack `memory`) with one storage crash loses a committed record, and
/// CommittedRecoverable alone sees it (ack `disk` holds: `quick_variants_hold_at_pinned_sizes`).
#[test]
fn one_storage_crash_breaks_memory_acks() {
    let outcome = check(&Config {
        storage_crashes: 1,
        ..Config::preset(Preset::Quick)
    });
    assert_eq!(outcome.violated, BTreeSet::from([CR]));
    assert_eq!(outcome.unique_states, 2_645);
}

// ---------------------------------------------------------------------------------------------
// Recovery rules (docs/protocol.md, "Recovery").

fn recovering(ack: AckPolicy, bug: Option<Bug>) -> Config {
    Config {
        writer_crashes: 1,
        ..config(ack, bug)
    }
}

fn nodes(ids: &[u8]) -> aurora_redo_model::state::NodeSet {
    ids.iter().map(|&i| NodeId(i)).collect::<Vec<_>>().into()
}

/// Writes LSN 1, delivers it to `to`, commits if four got it, and fails over.
fn failed_over(c: &Config, to: &[u8]) -> State {
    let mut s = State::new(1);
    writer::write(&mut s);
    for &n in to {
        storage::on_append(c, &mut s, NodeId(n), &record_for(Epoch::FIRST, Lsn(1)));
    }
    if to.len() >= 4 && c.ack == AckPolicy::Memory {
        writer::commit(&mut s, Lsn(1));
    }
    writer::fail_over(&mut s, false);
    s
}

#[test]
fn a_failover_starts_a_reading_writer_of_the_next_epoch_and_remembers_what_clients_were_told() {
    let c = recovering(AckPolicy::Memory, None);
    let s = failed_over(&c, &[0, 1, 2, 3]);
    assert_eq!(s.writer.epoch, E1);
    assert_eq!(s.writer.phase, aurora_redo_model::state::Phase::Reading);
    assert_eq!((s.writer.written, s.writer.commit), (Lsn::ZERO, Lsn::ZERO));
    assert_eq!(s.ghost.acked, Lsn(1));
    assert!(s.zombie.is_none());
    assert_eq!(writer::read_quorums(&c, &s).len(), 20, "any 3 of 6 nodes");
}

#[test]
fn reading_fences_and_fixes_the_highest_scl_as_the_recovery_point() {
    let c = recovering(AckPolicy::Memory, None);
    let mut s = failed_over(&c, &[0, 1, 2, 3]);
    writer::read(&c, &mut s, nodes(&[0, 4, 5]));
    assert_eq!(s.writer.point, Lsn(1));
    assert_eq!(s.writer.record(Lsn(1)), Some(Epoch::FIRST));
    for n in [0, 4, 5] {
        assert_eq!(s.node(NodeId(n)).epoch, E1, "S{n} fenced");
        assert!(!s.node(NodeId(n)).speaks());
    }
    assert_eq!(s.node(S1).epoch, Epoch::FIRST);
    assert!(!s.ghost.flags.contains(Flags::COMMIT_LOST));
    // A fenced node rejects the old epoch's Append; one not yet sealed holds back the new one's.
    let old = record_for(Epoch::FIRST, Lsn(1));
    let new = record_for(E1, Lsn(2));
    assert_eq!(
        storage::receipt(&c, s.node(NodeId(4)), &old),
        storage::Receipt::Stale
    );
    assert_eq!(
        storage::receipt(&c, s.node(NodeId(4)), &new),
        storage::Receipt::Wait
    );
    assert_eq!(
        storage::receipt(&c, s.node(S1), &old),
        storage::Receipt::Take
    );
    let stale = recovering(AckPolicy::Memory, Some(Bug::AcceptStaleEpoch));
    assert_eq!(
        storage::receipt(&stale, s.node(NodeId(4)), &old),
        storage::Receipt::Take
    );
}

#[test]
fn the_weaker_read_rules_lose_the_commit() {
    for (bug, quorum) in [
        (Bug::RecoverFromTwo, &[4u8, 5][..]),
        (Bug::RecoverBelowMaxScl, &[0, 1, 4][..]),
    ] {
        let c = recovering(AckPolicy::Memory, Some(bug));
        let mut s = failed_over(&c, &[0, 1, 2, 3]);
        assert!(writer::read_quorums(&c, &s).contains(&nodes(quorum)));
        writer::read(&c, &mut s, nodes(quorum));
        assert_eq!(s.writer.point, Lsn::ZERO, "{bug}");
        assert!(s.ghost.flags.contains(Flags::COMMIT_LOST), "{bug}");
    }
}

#[test]
fn sealing_annuls_the_old_tail_and_a_write_quorum_opens_the_writer() {
    let c = recovering(AckPolicy::Disk, None);
    // LSN 1 only on S0: uncommitted; the read quorum S1..S3 misses it.
    let mut s = failed_over(&c, &[0]);
    writer::read(&c, &mut s, nodes(&[1, 2, 3]));
    assert_eq!(s.writer.point, Lsn::ZERO);
    assert!(writer::may_seal(&s, S0));
    writer::seal(&c, &mut s, S0);
    assert!(s.node(S0).held().is_empty(), "the old LSN 1 is annulled");
    assert!(s.node(S0).speaks());
    assert!(!writer::may_seal(&s, S0));
    for n in 1..=3 {
        assert!(!s.writer.is_open());
        writer::seal(&c, &mut s, NodeId(n));
    }
    assert!(s.writer.is_open(), "four seals open the writer");
    assert_eq!(s.writer.commit, Lsn::ZERO);
    writer::write(&mut s);
    assert_eq!(s.writer.record(Lsn(1)), Some(E1), "LSN 1 reused by e1.1");

    let skip = recovering(AckPolicy::Disk, Some(Bug::SkipTruncation));
    let mut s = failed_over(&skip, &[0]);
    writer::read(&skip, &mut s, nodes(&[1, 2, 3]));
    writer::seal(&skip, &mut s, S0);
    assert!(
        s.node(S0).held().contains(Lsn(1)),
        "skip-truncation keeps it"
    );
}

#[test]
fn a_replica_that_hears_of_a_newer_epoch_starts_over_in_it() {
    let c = recovering(AckPolicy::Disk, None);
    let mut s = failed_over(&c, &[0]);
    s.replica_mut(R0).applied = Lsn(1);
    assert_eq!(
        replica::newer_epoch(&s, R0),
        None,
        "no node speaks e1.1 yet"
    );
    writer::read(&c, &mut s, nodes(&[1, 2, 3]));
    writer::seal(&c, &mut s, S1);
    assert_eq!(replica::newer_epoch(&s, R0), Some(E1));
    replica::follow(&mut s, R0, E1);
    let r = s.replica(R0);
    assert_eq!((r.epoch, r.incarnation, r.applied), (E1, 1, Lsn::ZERO));
    // It pulls only from nodes that speak for its epoch.
    assert!(!replica::may_pull(&c, &s, R0, S0));
}

#[test]
fn a_seal_announces_what_the_node_now_holds_in_the_new_epoch() {
    let c = recovering(AckPolicy::Memory, None);
    let mut s = failed_over(&c, &[0, 1, 2, 3]);
    writer::read(&c, &mut s, nodes(&[0, 4, 5]));
    assert_eq!(s.writer.point, Lsn(1));
    assert_eq!(
        (s.announced.scl[4], s.announced.flushed[4]),
        (Lsn(0), Lsn(0))
    );
    writer::seal(&c, &mut s, NodeId(4));
    assert_eq!(s.announced.epoch[4], E1);
    assert_eq!(
        (s.announced.scl[4], s.announced.flushed[4]),
        (Lsn(1), Lsn(1)),
        "S4 acknowledges and announces flushed the recovered LSN 1"
    );
}

/// Under `accept-stale-epoch`, a fenced node that takes the old epoch's record acknowledges it
/// in the old epoch (ack `memory` only), which the old writer could count; it breaks the fence
/// once, and a duplicate of the same record changes nothing more.
#[test]
fn a_fenced_node_that_takes_a_stale_record_acknowledges_it_in_the_old_epoch() {
    let old = record_for(Epoch::FIRST, Lsn(1));
    for ack in [AckPolicy::Memory, AckPolicy::Disk] {
        let c = recovering(ack, Some(Bug::AcceptStaleEpoch));
        let mut s = failed_over(&c, &[0, 1, 2, 3]);
        writer::read(&c, &mut s, nodes(&[0, 4, 5]));
        assert_eq!(s.announced.prev[4], (Epoch::FIRST, Lsn(0), Lsn(0)));
        assert!(storage::append_changes_anything(&c, &s, NodeId(4), &old));
        storage::on_append(&c, &mut s, NodeId(4), &old);
        assert!(s.node(NodeId(4)).held().contains(Lsn(1)));
        assert!(s.ghost.flags.contains(Flags::FENCE_BROKEN));
        let acked = if ack == AckPolicy::Memory { 1 } else { 0 };
        assert_eq!(s.announced.prev[4].1, Lsn(acked), "{ack:?}");
        assert!(
            !storage::append_changes_anything(&c, &s, NodeId(4), &old),
            "{ack:?}: the fence is already broken"
        );
    }
}

#[test]
fn a_zombie_writer_keeps_writing_its_old_epoch_up_to_the_configured_lsns() {
    let c = Config {
        zombie_writer: true,
        ..recovering(AckPolicy::Disk, None)
    };
    let mut s = State::new(1);
    writer::write(&mut s);
    writer::fail_over(&mut s, true);
    assert!(writer::zombie_may_write(&c, &s));
    writer::zombie_write(&mut s);
    let zombie = s.zombie.as_ref().expect("a zombie writer");
    assert_eq!(zombie.written, Lsn(2));
    assert_eq!(zombie.record(Lsn(2)), Some(Epoch::FIRST));
    let to: Vec<Actor> = s
        .network
        .iter()
        .filter(|e| matches!(e.msg, Msg::Append(r) if r == record_for(Epoch::FIRST, Lsn(2))))
        .map(|e| e.dst)
        .collect();
    assert_eq!(to, NodeId::all().map(Actor::Storage).collect::<Vec<_>>());
    assert!(writer::zombie_may_write(&c, &s));
    writer::zombie_write(&mut s);
    assert!(!writer::zombie_may_write(&c, &s), "lsns = 3 written");
    // Without a zombie there is nothing to write.
    let mut s = State::new(1);
    writer::fail_over(&mut s, false);
    assert!(!writer::zombie_may_write(&c, &s));
}

// ---------------------------------------------------------------------------------------------
// Two recoveries in a row (docs/protocol.md, "One writer per epoch").

/// Two failovers in a row, ack `disk`: the first writer's LSN 1 reaches only S0; the first
/// recovery reads S1..S3 (recovery point 0), seals S1..S4 and opens; it writes its own LSN 1 to
/// S1..S4, which flush it, and commits it; the second failover's writer reads S0, S1 and S5.
/// S0 and S1 both answer SCL 1, S0's of the first epoch (it was never sealed), S1's of epoch 1.
fn two_recoveries(c: &Config) -> State {
    let mut s = State::new(1);
    writer::write(&mut s);
    storage::on_append(c, &mut s, S0, &record_for(Epoch::FIRST, Lsn(1)));
    storage::flush(c, &mut s, S0, Lsn(1));
    writer::fail_over(&mut s, false);
    writer::read(c, &mut s, nodes(&[1, 2, 3]));
    assert_eq!(s.writer.point, Lsn::ZERO);
    for n in 1..=4 {
        assert!(writer::may_seal(&s, NodeId(n)));
        writer::seal(c, &mut s, NodeId(n));
    }
    assert!(s.writer.is_open());
    writer::write(&mut s);
    for n in 1..=4 {
        storage::on_append(c, &mut s, NodeId(n), &record_for(E1, Lsn(1)));
        storage::flush(c, &mut s, NodeId(n), Lsn(1));
    }
    assert_eq!(writer::commit_bound(c, &s), Lsn(1));
    writer::commit(&mut s, Lsn(1));
    writer::fail_over(&mut s, false);
    assert_eq!((s.ghost.acked, s.ghost.acked_log.get(Lsn(1))), (Lsn(1), E1));
    let quorum = nodes(&[0, 1, 5]);
    assert!(writer::read_quorums(c, &s).contains(&quorum));
    writer::read(c, &mut s, quorum);
    s
}

/// Why the sealed epoch ranks before the SCL: with the highest SCL of the read quorum alone, the
/// never-sealed S0's first-epoch LSN 1 ties with the LSN 1 epoch 1 committed, and taking it
/// takes back an acknowledged write; the sealed-first rule takes S1's.
#[test]
fn the_recovery_point_prefers_the_highest_sealed_epoch_over_a_stale_tail() {
    let c = Config {
        writer_crashes: 2,
        ..config(AckPolicy::Disk, None)
    };
    let s = two_recoveries(&c);
    assert_eq!(s.writer.point, Lsn(1));
    assert_eq!(s.writer.record(Lsn(1)), Some(E1));
    assert!(!s.ghost.flags.contains(Flags::COMMIT_LOST));

    let bug = Config {
        bug: Some(Bug::RecoverFromMaxScl),
        ..c
    };
    let s = two_recoveries(&bug);
    assert_eq!(s.writer.point, Lsn(1));
    assert_eq!(s.writer.record(Lsn(1)), Some(Epoch::FIRST));
    assert!(s.ghost.flags.contains(Flags::COMMIT_LOST));
}

/// Promise and accept: a node answers a read only for an epoch above every epoch it has adopted
/// or promised, and takes a seal for an epoch at least its promise that it has not sealed.
#[test]
fn a_node_answers_a_read_only_above_its_promise_and_seals_at_or_above_it() {
    let e2 = Epoch::new(1, WriterId(2));
    let mut node = aurora_redo_model::state::Node::default();
    assert!(storage::answers_read(&node, E1));
    assert!(!storage::answers_read(&node, Epoch::FIRST));
    node.epoch = E1;
    assert!(!storage::answers_read(&node, E1), "the read is the promise");
    assert!(
        storage::answers_read(&node, e2),
        "a higher writer id is higher"
    );
    assert!(storage::accepts_seal(&node, E1));
    assert!(storage::accepts_seal(&node, e2));
    node.epoch = e2;
    assert!(!storage::accepts_seal(&node, E1), "below the promise");
    node.sealed = e2;
    assert!(!storage::accepts_seal(&node, e2), "sealed already");
}
