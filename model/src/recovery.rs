//! The recovery rules (`docs/protocol.md`, "Recovery"), as pure functions shared by the model and
//! the engine: how a new writer picks the recovery point from a read quorum, and which records
//! the truncation it persists annuls.
//!
//! A new writer of epoch `e + 1` reads the state of [`READ_QUORUM`] (3) reachable nodes, each
//! answering with its SCL and the epoch of the last truncation it persisted (its *sealed* epoch).
//! The recovery point `R` is the SCL of the most advanced answer: the highest sealed epoch, and
//! within it the highest SCL. With no earlier recovery every sealed epoch is the first, so `R` is
//! the highest SCL of the read quorum. Why it is safe: a committed `L` was acknowledged by 4 nodes
//! holding `1..=L`, and any 3 nodes meet any 4 of 6, so one answer has SCL `>= L` (unless a node
//! lost what it acknowledged: ack `memory` and a storage crash). Why the sealed epoch comes first:
//! a node that missed a recovery may still hold the annulled tail of an older epoch, whose SCL can
//! be as high as a committed record of the newer epoch under the same LSNs.
//!
//! The write phase makes `1..=R` durable on a write quorum in the new epoch and persists there
//! the truncation "annul every record above `R` created in an epoch older than `e + 1`" with the
//! new epoch ([`annuls`]); only then does the new writer accept writes, from `R + 1` on.

use crate::types::{Epoch, Lsn, WriterId, READ_QUORUM};

/// One node's answer to a recovery read. Answers order by how advanced they are: sealed epoch
/// first, then SCL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadAnswer {
    /// The epoch of the last truncation the node persisted (`Epoch::FIRST` if none).
    pub sealed: Epoch,
    /// The node's SCL: the contiguous prefix it holds.
    pub scl: Lsn,
}

/// The epoch of the writer that the `failovers`-th failover starts, after a writer of `old`:
/// the next number, and the failover's index as its writer id, so that no two writers a volume
/// has had share an epoch (the model and the engine's deterministic driver both number writers
/// by creation).
pub fn successor_epoch(old: Epoch, failovers: u32) -> Epoch {
    Epoch::new(old.number() + 1, WriterId(failovers))
}

/// The safe recovery point: the index (in `answers`) of the most advanced answer, whose log is
/// the source of the recovered records, and its SCL. `None` until a read quorum has answered.
pub fn recovery_point(answers: &[ReadAnswer]) -> Option<(usize, Lsn)> {
    if answers.len() < READ_QUORUM {
        return None;
    }
    most_advanced(answers)
}

/// The most advanced of `answers` (the first, among equals) and its SCL, however many there are:
/// the rule [`recovery_point`] applies to a read quorum. `None` for no answers.
pub fn most_advanced(answers: &[ReadAnswer]) -> Option<(usize, Lsn)> {
    answers
        .iter()
        .enumerate()
        .max_by_key(|(i, a)| (**a, std::cmp::Reverse(*i)))
        .map(|(i, a)| (i, a.scl))
}

/// Whether the truncation persisted by recovery in epoch `sealed` at point `point` annuls a record
/// `(epoch, lsn)`: it lies above the point and was created before the recovery's epoch.
pub fn annuls(sealed: Epoch, point: Lsn, epoch: Epoch, lsn: Lsn) -> bool {
    lsn > point && epoch < sealed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(sealed: u32, scl: u64) -> ReadAnswer {
        ReadAnswer {
            sealed: Epoch::numbered(sealed),
            scl: Lsn(scl),
        }
    }

    #[test]
    fn needs_a_read_quorum() {
        assert_eq!(recovery_point(&[answer(0, 3), answer(0, 1)]), None);
    }

    #[test]
    fn the_highest_scl_of_the_read_quorum() {
        let answers = [answer(0, 1), answer(0, 3), answer(0, 2)];
        assert_eq!(recovery_point(&answers), Some((1, Lsn(3))));
    }

    #[test]
    fn a_later_sealed_epoch_outranks_a_longer_stale_tail() {
        let answers = [answer(0, 3), answer(1, 2), answer(0, 0)];
        assert_eq!(recovery_point(&answers), Some((1, Lsn(2))));
    }

    #[test]
    fn truncation_annuls_only_older_records_above_the_point() {
        assert!(annuls(
            Epoch::numbered(1),
            Lsn(2),
            Epoch::numbered(0),
            Lsn(3)
        ));
        assert!(!annuls(
            Epoch::numbered(1),
            Lsn(2),
            Epoch::numbered(0),
            Lsn(2)
        ));
        assert!(!annuls(
            Epoch::numbered(1),
            Lsn(2),
            Epoch::numbered(1),
            Lsn(3)
        ));
    }
}
