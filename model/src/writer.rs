//! The writer's rules in the model: writing a record, the commit rule, and a new writer's
//! recovery after a failover (read phase, recovery point, write phase). (The engine's home of the
//! commit rule is `Writer::on_ack` in `impl/src/writer.rs`; the recovery point is computed by the
//! shared rule in [`crate::recovery`].)

use crate::config::{Bug, Config};
use crate::invariants::committed_survives_recovery;
use crate::quorum::{kth_highest, quorum_watermark};
use crate::recovery::{annuls, most_advanced, recovery_point, successor_epoch, ReadAnswer};
use crate::state::{record_for, LsnSet, NodeSet, NodeStatus, Phase, State, Writer};
use crate::types::{Envelope, Epoch, Lsn, NodeId, READ_QUORUM, WRITE_QUORUM};

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
    let remaining = state.writer.is_open() && state.writer.written.0 < config.lsns as u64;
    match config.bug {
        Some(Bug::WriterStalls) => remaining && state.writer.written == Lsn::ZERO,
        _ => remaining,
    }
}

/// Step 1, **Write** (`docs/protocol.md`): the writer creates record `written + 1` of its epoch
/// and sends `Append` to every node.
pub fn write(state: &mut State) {
    let writer = &mut state.writer;
    let lsn = writer.written.next();
    writer.written = lsn;
    writer.log.set(lsn, writer.epoch);
    send_appends(state, writer_record(&state.writer, lsn));
}

fn writer_record(writer: &Writer, lsn: Lsn) -> crate::types::Record {
    record_for(writer.epoch, lsn)
}

fn send_appends(state: &mut State, record: crate::types::Record) {
    for node in NodeId::all() {
        if state.node(node).status != NodeStatus::Lost {
            state.network.send(Envelope::append(node, record));
        }
    }
}

/// Whether the zombie writer (the previous writer, still running after a failover) may write its
/// next record: it keeps writing the workload in its old epoch.
pub fn zombie_may_write(config: &Config, state: &State) -> bool {
    state
        .zombie
        .as_ref()
        .is_some_and(|z| z.written.0 < config.lsns as u64)
}

/// The zombie writes its next record in its old epoch and sends `Append` to every node. Its
/// commit point is not modelled: it is cut off from clients, so no one learns it; a node that
/// acknowledges an older epoch after adopting a newer one, which is what could move it, is
/// judged by EpochFencing at the moment the node takes the record.
pub fn zombie_write(state: &mut State) {
    let zombie = state.zombie.as_mut().expect("a zombie writer");
    let lsn = zombie.written.next();
    zombie.written = lsn;
    zombie.log.set(lsn, zombie.epoch);
    let record = record_for(zombie.epoch, lsn);
    send_appends(state, record);
}

/// Step 3, **Commit** (`docs/protocol.md`), the model's statement of the commit rule (the
/// engine's is `Writer::on_ack` in `impl/src/writer.rs`): the commit point is the 4th-highest SCL
/// the nodes acknowledged (the writer keeps each node's highest `Ack`), and it never moves
/// backwards. This is the highest commit point the `Ack`s sent so far allow; having received only
/// some of them, the writer may be anywhere between its current commit point and this.
///
/// A writer counts only the acknowledgements of its own epoch, and commits nothing while it
/// recovers.
pub fn commit_bound(config: &Config, state: &State) -> Lsn {
    if !state.writer.is_open() {
        return state.writer.commit;
    }
    let acks = state.acks_in(state.writer.epoch);
    match config.bug {
        Some(Bug::CommitAtThree) => kth_highest(acks, 3),
        Some(Bug::ShrinkQuorumOnLoss) if lost_any(state) => {
            let surviving = NodeId::all().filter(|&n| state.node(n).status != NodeStatus::Lost);
            kth_highest(surviving.map(|n| acks[n.index()]), 3)
        }
        _ => quorum_watermark(acks),
    }
}

/// The writer receives enough `Ack`s to move its commit point to `to` (<= [`commit_bound`]).
pub fn commit(state: &mut State, to: Lsn) {
    debug_assert!(to > state.writer.commit);
    state.writer.commit = to;
    state.judge_commit();
}

// ---------------------------------------------------------------------------------------------
// Recovery (`docs/protocol.md`, "Recovery").

/// **Failover**: the writer stops, its volatile state gone, and a new writer of the next epoch
/// begins recovery by reading. What the old writer had committed is what clients were told is
/// committed, which its recovery must keep (CommittedSurvivesRecovery); a writer that failed while
/// still recovering had told clients nothing new. With `zombie` the old writer, if it was open,
/// keeps running cut off from clients (replacing any older zombie). It counts the failover.
pub fn fail_over(state: &mut State, zombie: bool) {
    let old = state.writer.clone();
    if old.is_open() {
        state.ghost.acked = old.commit;
        state.ghost.acked_log = old.log;
    }
    state.zombie = (zombie && old.is_open()).then_some(old.clone());
    state.faults.writer_crashes += 1;
    state.writer = Writer {
        epoch: successor_epoch(old.epoch, u32::from(state.faults.writer_crashes)),
        phase: Phase::Reading,
        ..Writer::default()
    };
    // The new epoch starts with no acknowledgement and no disk written in it.
    state.ghost.truthful_ack = Default::default();
    state.ghost.prev_disk_high = state.ghost.disk_high;
    state.ghost.disk_high = Default::default();
}

/// How many answers the read phase waits for: a read quorum (2 under `recover-from-two`).
fn reads_needed(config: &Config) -> usize {
    match config.bug {
        Some(Bug::RecoverFromTwo) => READ_QUORUM - 1,
        _ => READ_QUORUM,
    }
}

/// The read quorums the recovering writer may read now: every set of [`reads_needed`] nodes it
/// can reach (none unless it is reading).
pub fn read_quorums(config: &Config, state: &State) -> Vec<NodeSet> {
    if state.writer.phase != Phase::Reading {
        return Vec::new();
    }
    let needed = reads_needed(config);
    (0u8..1 << crate::types::STORAGE_NODES)
        .map(NodeSet)
        .filter(|set| {
            set.len() == needed
                && set.iter().all(|n| {
                    state.reachable(n)
                        && crate::storage::answers_read(state.node(n), state.writer.epoch)
                })
        })
        .collect()
}

/// **Read phase**: the writer reads the sealed epoch, SCL and records `1..=SCL` of each node of a
/// read quorum; each node adopts the writer's epoch on answering (reading fences: from then on it
/// takes no older epoch's `Append`). The model takes the answers as one step: a node that has
/// answered takes nothing more until its seal, so what could change between two answers is only
/// what reaches the nodes not yet read, which the choice of moment already covers.
///
/// The recovery point is then fixed by the shared rule ([`recovery_point`]): the writer's log
/// becomes the source's records up to it, and the write phase begins. That is the moment
/// CommittedSurvivesRecovery judges.
pub fn read(config: &Config, state: &mut State, quorum: NodeSet) {
    let mut answers = Vec::new();
    let mut logs = Vec::new();
    for node in quorum.iter() {
        crate::storage::adopt(state, node, state.writer.epoch);
        let n = state.node(node);
        let answer = ReadAnswer {
            sealed: n.sealed,
            scl: n.scl(),
        };
        answers.push(answer);
        logs.push(n.epochs.restrict(LsnSet::through(answer.scl)));
    }
    // Fewer answers than a read quorum (`recover-from-two`): the same rule over what there is.
    let mut chosen = recovery_point(&answers)
        .or_else(|| most_advanced(&answers))
        .expect("a read has answers");
    if config.bug == Some(Bug::RecoverBelowMaxScl) {
        let lowest = (0..answers.len())
            .min_by_key(|&i| answers[i].scl)
            .expect("a read has answers");
        chosen = (lowest, answers[lowest].scl);
    }
    if config.bug == Some(Bug::RecoverFromMaxScl) {
        chosen = most_advanced_by_scl(&answers);
    }
    let (source, point) = chosen;
    let writer = &mut state.writer;
    writer.point = point;
    writer.written = point;
    writer.log = logs[source].restrict(LsnSet::through(point));
    writer.phase = Phase::Sealing {
        sealed: NodeSet::default(),
    };
    let (ghost, writer) = (&state.ghost, &state.writer);
    if !committed_survives_recovery(
        ghost.acked,
        |l| ghost.acked_log.get(l),
        |l| writer.record(l),
    ) {
        state.ghost.flags.insert(crate::state::Flags::COMMIT_LOST);
    }
}

/// Under `recover-from-max-scl`: the answer with the highest SCL (the first among equals),
/// whatever epoch sealed it.
fn most_advanced_by_scl(answers: &[ReadAnswer]) -> (usize, Lsn) {
    let scls: Vec<ReadAnswer> = answers
        .iter()
        .map(|a| ReadAnswer {
            sealed: Epoch::FIRST,
            scl: a.scl,
        })
        .collect();
    most_advanced(&scls).expect("a read has answers")
}

/// Whether the writer may run its write phase on `node`: the recovery point is fixed, the node has
/// not persisted this epoch's truncation, and it is up and reachable. An open writer keeps
/// sealing the nodes its write quorum left behind.
pub fn may_seal(state: &State, node: NodeId) -> bool {
    let sealing = matches!(state.writer.phase, Phase::Sealing { .. }) || state.writer.is_open();
    sealing
        && crate::storage::accepts_seal(state.node(node), state.writer.epoch)
        && state.writer.epoch > Epoch::FIRST
        && state.reachable(node)
}

/// **Write phase** at one node: the node adopts the writer's epoch, annuls every record above the
/// recovery point created in an older epoch (not under `skip-truncation`), and stores `1..=point`
/// as the recovered log has them, on disk; it persists the truncation and the epoch, and from now
/// on speaks for the epoch. Once a write quorum has done so, the writer opens: everything up to
/// the point is durable on 4 nodes, so that is its commit point, and it writes on from there.
pub fn seal(config: &Config, state: &mut State, node: NodeId) {
    let writer = state.writer.clone();
    crate::storage::adopt(state, node, writer.epoch);
    let n = state.node_mut(node);
    if config.bug != Some(Bug::SkipTruncation) {
        let mut annulled = LsnSet::EMPTY;
        for lsn in n.held().iter() {
            if annuls(writer.epoch, writer.point, n.epochs.get(lsn), lsn) {
                annulled.insert(lsn);
            }
        }
        n.remove(annulled);
    }
    let recovered = LsnSet::through(writer.point);
    n.mem = n.mem.minus(recovered);
    n.disk = n.disk.union(recovered);
    for lsn in recovered.iter() {
        n.epochs.set(lsn, writer.log.get(lsn));
    }
    n.sealed = writer.epoch;
    state.judge_flush(node);
    crate::storage::announce(config, state, node);
    if let Phase::Sealing { mut sealed } = state.writer.phase {
        sealed.insert(node);
        state.writer.phase = if sealed.len() >= WRITE_QUORUM {
            state.writer.commit = writer.point;
            Phase::Open
        } else {
            Phase::Sealing { sealed }
        };
    }
}
