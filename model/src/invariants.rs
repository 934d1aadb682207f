//! The safety invariants of `docs/protocol.md` ("Safety invariants"): the six of normal operation
//! and the three of recovery, as pure predicates over ground truth.
//!
//! Each function is the one definition of its invariant. The model's properties
//! (`crate::properties`) evaluate them on model states; the implementation's runtime monitor
//! evaluates them on the live system's disks and replicas. Inputs are ground truth (what is
//! really on a disk, what a node really held when it acked), never an actor's belief.
//!
//! Beside each predicate is its invariant's name, as the tool prints it, `--expect-violation`
//! accepts it and the monitor reports it: code compares names through these constants only.

use crate::quorum::quorum_watermark;
use crate::types::{Epoch, Lsn, READ_QUORUM};

/// The name of invariant 1, judged by [`discard_is_safe`].
pub const NO_DISCARD_BEFORE_FLUSH: &str = "NoDiscardBeforeFlush";

/// **NoDiscardBeforeFlush**, judged at the moment a replica discards record `lsn`: the record
/// must have reached the disks of at least 4 nodes. Disks hold contiguous prefixes (a flush moves
/// the contiguous prefix), so that is "`lsn <= durable_so_far`", where `durable_so_far` is the
/// highest LSN that 4 nodes have had on disk, counting a disk destroyed by a permanent loss for
/// what it held, so that no loss, before or after, is mistaken for a protocol error. Protects the
/// seed's promise that replicas "only discard logs after flush-confirmation": a replica that frees
/// a record which is not yet durable could be the last reader holding it.
pub fn discard_is_safe(lsn: Lsn, durable_so_far: Lsn) -> bool {
    lsn <= durable_so_far
}

/// The part of an acknowledgement that is true: a node that acked `sent` while really holding the
/// contiguous prefix `1..=held` vouched for `min(sent, held)` only.
pub fn truthful_ack(sent: Lsn, held: Lsn) -> Lsn {
    sent.min(held)
}

/// The name of invariant 2, judged by [`commit_backed_by_quorum`].
pub const COMMIT_ONLY_AFTER_QUORUM: &str = "CommitOnlyAfterQuorum";

/// **CommitOnlyAfterQuorum**: every committed LSN was acknowledged by at least 4 distinct nodes,
/// each of which really held every record up to it when it acked. `truthful_acks` gives, per node,
/// the highest [`truthful_ack`] it ever sent. Protects "commit only after 4/6": a commit point
/// that outruns a true quorum acknowledges a client write that a quorum may not have.
pub fn commit_backed_by_quorum(commit: Lsn, truthful_acks: impl IntoIterator<Item = Lsn>) -> bool {
    commit <= quorum_watermark(truthful_acks)
}

/// The name of invariant 3, judged by [`never_decreases`].
pub const DURABLE_LSN_MONOTONIC: &str = "DurableLsnMonotonic";

/// **DurableLsnMonotonic**, judged across one transition: a durable LSN (the volume's, a
/// replica's within one incarnation) or the writer's commit point never moves backwards.
/// Protects everyone who acted on the old value: a replica that discarded up to it, a client
/// told its write committed.
pub fn never_decreases(before: Lsn, after: Lsn) -> bool {
    after >= before
}

/// The name of invariant 4, judged by [`replica_prefix`].
pub const REPLICA_PREFIX: &str = "ReplicaPrefix";

/// **ReplicaPrefix**: a replica's applied records are exactly the writer's records `1..=applied`
/// (`image_matches`: its pages show exactly what those records wrote, in order) and `applied`
/// does not pass the commit point. `sent_acks` gives, per node, the highest SCL it has *sent* in
/// an ack: the ground-truth commit point, which a replica may learn before the writer does.
/// Protects read consistency: no gap, no reorder, no uncommitted read.
pub fn replica_prefix(
    applied: Lsn,
    image_matches: bool,
    sent_acks: impl IntoIterator<Item = Lsn>,
) -> bool {
    image_matches && applied <= quorum_watermark(sent_acks)
}

/// The name of invariant 5, judged by [`retained_unless_discarded`].
pub const RETAIN_UNTIL_DURABLE: &str = "RetainUntilDurable";

/// **RetainUntilDurable**, for one LSN of one replica (within one incarnation): the record is
/// retained exactly when the replica has applied it and the discard rule has not freed it. Nothing
/// leaves the retain buffer by any other way (an eviction, a lost update), and nothing is in it
/// that was not applied. This is the *mechanism*; whether the discard rule frees only durable
/// records is the *policy*, judged by [`discard_is_safe`]. Together they say that an applied
/// record is retained until it is durable. Protects catch-up and recovery: until a disk quorum
/// holds a record, the replica's copy may be needed.
pub fn retained_unless_discarded(applied: bool, discarded: bool, retained: bool) -> bool {
    retained == (applied && !discarded)
}

/// The name of invariant 6, judged by [`readable_by_every_read_quorum`].
pub const COMMITTED_RECOVERABLE: &str = "CommittedRecoverable";

/// **CommittedRecoverable**, for one committed record: of the `surviving` nodes (not permanently
/// lost), `holders` hold it (memory of a live node, or disk). Every read quorum of 3 surviving
/// nodes must contain a holder, that is, fewer than 3 survivors may lack it. Protects durability:
/// a committed write that a read quorum can miss can be lost by recovery.
pub fn readable_by_every_read_quorum(holders: usize, surviving: usize) -> bool {
    debug_assert!(holders <= surviving);
    surviving - holders < READ_QUORUM
}

/// **CommittedRecoverable** over the committed prefix `1..=commit`: the first committed LSN that
/// some read quorum of surviving nodes misses, with its `(holders, surviving)`. How holders are
/// counted is each side's own (a model state, the engine's machines); `holding(lsn)` gives the
/// count for one LSN, and the verdict is this one.
pub fn first_unreadable(
    commit: Lsn,
    holding: impl Fn(Lsn) -> (usize, usize),
) -> Option<(Lsn, usize, usize)> {
    commit.prefix().find_map(|lsn| {
        let (holders, surviving) = holding(lsn);
        (!readable_by_every_read_quorum(holders, surviving)).then_some((lsn, holders, surviving))
    })
}

/// The name of recovery invariant 7, judged by [`first_lost_commit`].
pub const COMMITTED_SURVIVES_RECOVERY: &str = "CommittedSurvivesRecovery";

/// **CommittedSurvivesRecovery**, judged when a recovery fixes its recovery point: the first LSN
/// of `1..=acked` (what clients were told is committed before the failover, whose records are
/// `acked_record`) that the recovered log (`recovered`, `None` above the recovery point) does not
/// hold, or holds a different record of. Records are compared by identity (their epoch), since
/// LSNs above a recovery point are reused. Protects the one promise a commit makes: a write
/// acknowledged to a client is never taken back, whichever writer comes next.
pub fn first_lost_commit<T: PartialEq>(
    acked: Lsn,
    acked_record: impl Fn(Lsn) -> T,
    recovered: impl Fn(Lsn) -> Option<T>,
) -> Option<Lsn> {
    acked
        .prefix()
        .find(|&lsn| recovered(lsn).as_ref() != Some(&acked_record(lsn)))
}

/// [`first_lost_commit`] as a verdict: every acknowledged commit survived.
pub fn committed_survives_recovery<T: PartialEq>(
    acked: Lsn,
    acked_record: impl Fn(Lsn) -> T,
    recovered: impl Fn(Lsn) -> Option<T>,
) -> bool {
    first_lost_commit(acked, acked_record, recovered).is_none()
}

/// The name of recovery invariant 8, judged by [`epoch_fencing`].
pub const EPOCH_FENCING: &str = "EpochFencing";

/// **EpochFencing**, judged when a node takes a record: a node that has adopted `node_epoch` takes
/// (stores, acknowledges) nothing of an older epoch. An older writer's commit point moves only on
/// acknowledgements of its epoch, so this also keeps it from moving on that node's. Protects
/// "changing the locks on the door": once recovery has read a node, a writer that is presumed dead
/// (a zombie, or its messages still in flight) cannot slip a record past the recovery point.
pub fn epoch_fencing(node_epoch: Epoch, record_epoch: Epoch) -> bool {
    record_epoch >= node_epoch
}

/// The name of the invariant judged by [`one_writer_per_epoch`].
pub const ONE_WRITER_PER_EPOCH: &str = "OneWriterPerEpoch";

/// **OneWriterPerEpoch**, over two writers that are both open: their epochs differ. Two writers
/// open in one epoch both count that epoch's acknowledgements and both write its records under
/// the same LSNs; the promise a node makes by answering a read is what keeps them apart.
pub fn one_writer_per_epoch(a: Epoch, b: Epoch) -> bool {
    a != b
}

/// The name of the invariant judged by [`acknowledged_once`].
pub const ACKNOWLEDGED_ONCE: &str = "AcknowledgedOnce";

/// **AcknowledgedOnce**, judged when a commit acknowledges a record at an LSN already
/// acknowledged: both are the same record. Two different records acknowledged under one LSN mean
/// one of the two clients was told a write is safe that the log no longer has.
pub fn acknowledged_once<T: PartialEq>(earlier: T, now: T) -> bool {
    earlier == now
}

/// The name of recovery invariant 9, judged by [`first_disagreement`].
pub const LOG_AGREEMENT: &str = "LogAgreement";

/// **LogAgreement**, for one copy of the log (a node that speaks for the writer's epoch, or a
/// replica that follows it): the first LSN at which the copy holds a record that is not the
/// writer's log's (`log`, `None` past its end): a different record under that LSN, or a record
/// above what the writer has written. Records are compared by what identifies them where the
/// caller judges: the model's by their epoch (its records are a function of `(epoch, LSN)`), a
/// segment's whole. Protects a single history: after a recovery every reader, whichever node or
/// replica it reads, sees the same record under each LSN, and nothing a truncation annulled
/// comes back.
pub fn first_disagreement<T: PartialEq>(
    log: impl Fn(Lsn) -> Option<T>,
    copy: impl IntoIterator<Item = (Lsn, T)>,
) -> Option<Lsn> {
    copy.into_iter()
        .find(|(lsn, held)| log(*lsn).as_ref() != Some(held))
        .map(|(lsn, _)| lsn)
}

/// The name of the quiescence invariant: a system with nothing left to do (no fault active, no
/// step that would change anything) has committed, applied and discarded every record. It needs
/// the model's enabled steps, so the model judges it (`crate::properties`); the engine's
/// counterpart is the monitor's check of a system at rest.
pub const QUIESCENCE_CONVERGES: &str = "QuiescenceConverges";

/// **CommittedSurvivesRecovery** for one acknowledgement that names only its LSN and the epoch of
/// the writer that acknowledged it (`acked_epoch`), given the epoch of the recovered log's record
/// at that LSN (`recovered`, `None` above the recovery point). A writer acknowledges the records
/// it created and the prefix its own recovery kept, which older epochs created; so the commit
/// survives as a record of that epoch or an older one, and a recovered record of a *newer* epoch
/// is a different record, a loss. (An older record above the acknowledging writer's own recovery
/// point would be one too; such an acknowledgement does not say where that point was, so this
/// judges the LSN and the epoch order.)
pub fn survives_as_acknowledged(acked_epoch: Epoch, recovered: Option<Epoch>) -> bool {
    recovered.is_some_and(|epoch| epoch <= acked_epoch)
}

/// **CommittedSurvivesRecovery** for one acknowledgement that knows its record whole: a client's
/// own write, as the writer that created it numbered it (its LSN and epoch) with what it wrote.
/// It survives only as that very record: the recovered log's record at its LSN (`recovered`,
/// `None` above the recovery point) equals `acked` in everything `T` compares (for a segment
/// record: epoch, page and value). The same LSN and epoch with another page or value is a loss:
/// the write the client was told of is not what a reader will see.
pub fn survives_as_written<T: PartialEq>(acked: &T, recovered: Option<&T>) -> bool {
    recovered == Some(acked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discards_need_a_durable_record() {
        assert!(!discard_is_safe(Lsn(3), Lsn(2)));
        assert!(discard_is_safe(Lsn(2), Lsn(2)));
    }

    #[test]
    fn a_lying_ack_does_not_count() {
        let acks = [
            Lsn(2),
            Lsn(2),
            Lsn(2),
            truthful_ack(Lsn(2), Lsn(0)),
            Lsn(0),
            Lsn(0),
        ];
        assert!(!commit_backed_by_quorum(Lsn(1), acks));
        assert!(commit_backed_by_quorum(Lsn(0), acks));
    }

    #[test]
    fn read_quorums_must_meet_a_holder() {
        assert!(readable_by_every_read_quorum(4, 6));
        assert!(!readable_by_every_read_quorum(3, 6));
        assert!(readable_by_every_read_quorum(1, 3));
        assert!(!readable_by_every_read_quorum(0, 3));
    }

    #[test]
    fn only_the_discard_rule_empties_the_retain_buffer() {
        assert!(retained_unless_discarded(true, false, true));
        assert!(retained_unless_discarded(true, true, false));
        assert!(!retained_unless_discarded(true, false, false));
        assert!(!retained_unless_discarded(false, false, true));
    }

    #[test]
    fn a_commit_survives_only_as_the_same_record() {
        let acked = |_| Epoch::numbered(0);
        assert!(committed_survives_recovery(Lsn(2), acked, |l| (l
            <= Lsn(2))
        .then_some(Epoch::numbered(0))));
        assert_eq!(
            first_lost_commit(Lsn(2), acked, |l| (l <= Lsn(1))
                .then_some(Epoch::numbered(0))),
            Some(Lsn(2))
        );
        assert_eq!(
            first_lost_commit(Lsn(1), acked, |_| Some(Epoch::numbered(1))),
            Some(Lsn(1))
        );
    }

    #[test]
    fn fenced_nodes_take_nothing_older() {
        assert!(epoch_fencing(Epoch::numbered(1), Epoch::numbered(1)));
        assert!(epoch_fencing(Epoch::numbered(0), Epoch::numbered(1)));
        assert!(!epoch_fencing(Epoch::numbered(1), Epoch::numbered(0)));
    }

    #[test]
    fn copies_agree_with_the_log() {
        let log = |l: Lsn| {
            (l <= Lsn(2)).then_some(if l == Lsn(2) {
                Epoch::numbered(1)
            } else {
                Epoch::numbered(0)
            })
        };
        assert_eq!(
            first_disagreement(
                log,
                [(Lsn(1), Epoch::numbered(0)), (Lsn(2), Epoch::numbered(1))]
            ),
            None
        );
        assert_eq!(
            first_disagreement(log, [(Lsn(2), Epoch::numbered(0))]),
            Some(Lsn(2))
        );
        assert_eq!(
            first_disagreement(log, [(Lsn(3), Epoch::numbered(1))]),
            Some(Lsn(3))
        );
    }

    #[test]
    fn replica_prefix_needs_a_sent_quorum() {
        let sent = [Lsn(1); 4];
        assert!(replica_prefix(Lsn(1), true, sent));
        assert!(!replica_prefix(Lsn(2), true, sent));
        assert!(!replica_prefix(Lsn(1), false, sent));
    }

    #[test]
    fn an_acknowledgement_survives_as_its_epoch_or_an_older_one() {
        assert!(survives_as_acknowledged(
            Epoch::numbered(1),
            Some(Epoch::numbered(1))
        ));
        assert!(survives_as_acknowledged(
            Epoch::numbered(1),
            Some(Epoch::numbered(0))
        ));
        assert!(!survives_as_acknowledged(
            Epoch::numbered(1),
            Some(Epoch::numbered(2))
        ));
        assert!(!survives_as_acknowledged(Epoch::numbered(1), None));
    }

    #[test]
    fn a_write_survives_only_with_its_epoch_and_its_value() {
        use crate::types::Record;
        let written = Record {
            lsn: Lsn(3),
            page: 7,
            value: 70,
            epoch: Epoch::numbered(1),
        };
        assert!(survives_as_written(&written, Some(&written)));
        let other_value = Record {
            value: 71,
            ..written
        };
        assert!(!survives_as_written(&written, Some(&other_value)));
        let other_page = Record { page: 8, ..written };
        assert!(!survives_as_written(&written, Some(&other_page)));
        let older = Record {
            epoch: Epoch::numbered(0),
            ..written
        };
        assert!(!survives_as_written(&written, Some(&older)));
        assert!(!survives_as_written(&written, None));
    }
}
