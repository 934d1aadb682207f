//! A replica's retain buffer: applied records kept until a disk quorum holds them.
//!
//! **The discard rule**, in the engine, lives here: [`RetainBuffer::discard_through`] drops
//! exactly the retained records with LSN `<=` the durable LSN, and [`RetainBuffer::keep`] never
//! retains a record that is already durable. The model's home of the same rule is
//! `discard_through` in `model/src/replica.rs`. Both take one lock for the whole decision, so the buffer may be shared
//! between threads (a replica's apply path, its flush-notification path, readers and the
//! monitor) without a record slipping past a concurrent raise of the durable LSN.

use std::collections::BTreeMap;

use aurora_redo_model::types::{Lsn, Record};

use crate::sync::{lock, Mutex};

/// Seeded concurrency bug of the buffer, for the loom tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetainBug {
    /// `keep` reads the durable LSN under one lock acquisition and inserts under another, so a
    /// concurrent `discard_through` can slip in between and the record stays retained forever
    /// although it is durable.
    CheckThenInsert,
}

#[derive(Clone, Debug, Default)]
struct Retained {
    durable: Lsn,
    kept: BTreeMap<Lsn, Record>,
}

/// The retain buffer.
#[derive(Debug, Default)]
pub struct RetainBuffer {
    inner: Mutex<Retained>,
    bug: Option<RetainBug>,
}

/// A copy holds what this buffer holds now (a deterministic driver tries a step on a copy of a
/// replica).
impl Clone for RetainBuffer {
    fn clone(&self) -> RetainBuffer {
        RetainBuffer {
            inner: Mutex::new(lock(&self.inner).clone()),
            bug: self.bug,
        }
    }
}

impl RetainBuffer {
    pub fn new() -> RetainBuffer {
        RetainBuffer::default()
    }

    pub fn with_bug(bug: Option<RetainBug>) -> RetainBuffer {
        RetainBuffer {
            inner: Mutex::new(Retained::default()),
            bug,
        }
    }

    /// Keeps an applied record unless it is already durable. Returns `true` if retained, `false`
    /// if it was discarded at once.
    pub fn keep(&self, record: Record) -> bool {
        if self.bug == Some(RetainBug::CheckThenInsert) {
            let durable = lock(&self.inner).durable;
            if record.lsn <= durable {
                return false;
            }
            lock(&self.inner).kept.insert(record.lsn, record);
            return true;
        }
        let mut inner = lock(&self.inner);
        if record.lsn <= inner.durable {
            return false;
        }
        inner.kept.insert(record.lsn, record);
        true
    }

    /// Raises the durable LSN to `durable` (never lowers it) and discards every retained record
    /// at or below it. Returns the discarded LSNs, in order.
    pub fn discard_through(&self, durable: Lsn) -> Vec<Lsn> {
        let mut inner = lock(&self.inner);
        inner.durable = inner.durable.max(durable);
        let first_kept = inner.durable.next();
        let above = inner.kept.split_off(&first_kept);
        let discarded = std::mem::replace(&mut inner.kept, above);
        discarded.into_keys().collect()
    }

    /// The durable LSN the buffer has been told.
    pub fn durable(&self) -> Lsn {
        lock(&self.inner).durable
    }

    /// The retained LSNs, in order.
    pub fn retained(&self) -> Vec<Lsn> {
        lock(&self.inner).kept.keys().copied().collect()
    }

    pub fn contains(&self, lsn: Lsn) -> bool {
        lock(&self.inner).kept.contains_key(&lsn)
    }

    pub fn len(&self) -> usize {
        lock(&self.inner).kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use super::*;
    use aurora_redo_model::types::Epoch;

    fn rec(l: u64) -> Record {
        Record {
            lsn: Lsn(l),
            page: 0,
            value: l,
            epoch: Epoch::FIRST,
        }
    }

    #[test]
    fn keeps_until_durable_and_discards_only_up_to_it() {
        let b = RetainBuffer::new();
        for l in 1..=5 {
            assert!(b.keep(rec(l)));
        }
        assert_eq!(b.discard_through(Lsn(3)), vec![Lsn(1), Lsn(2), Lsn(3)]);
        assert_eq!(b.retained(), vec![Lsn(4), Lsn(5)]);
        // Lower durable reports change nothing; an already durable record is not retained.
        assert!(b.discard_through(Lsn(1)).is_empty());
        assert!(!b.keep(rec(2)));
        assert_eq!(b.durable(), Lsn(3));
    }

    #[test]
    fn a_clone_holds_what_the_buffer_holds_and_moves_on_its_own() {
        let b = RetainBuffer::new();
        for l in 1..=3 {
            b.keep(rec(l));
        }
        b.discard_through(Lsn(1));
        let c = b.clone();
        assert_eq!((c.durable(), c.retained()), (Lsn(1), vec![Lsn(2), Lsn(3)]));
        assert_eq!(c.discard_through(Lsn(3)), vec![Lsn(2), Lsn(3)]);
        assert_eq!((b.durable(), b.retained()), (Lsn(1), vec![Lsn(2), Lsn(3)]));
    }

    /// The seeded check-then-insert bug is a race only: run sequentially, the buggy buffer
    /// keeps and discards exactly as the correct one (which is what makes loom's catch of it a
    /// catch of the race).
    #[test]
    fn the_seeded_check_then_insert_buffer_is_sequentially_correct() {
        let correct = RetainBuffer::new();
        let buggy = RetainBuffer::with_bug(Some(RetainBug::CheckThenInsert));
        for b in [&correct, &buggy] {
            assert!(b.keep(rec(4)));
            assert_eq!(b.discard_through(Lsn(2)), vec![]);
            assert!(!b.keep(rec(2)), "an already durable record is not retained");
            assert!(b.keep(rec(3)));
            assert_eq!(b.retained(), vec![Lsn(3), Lsn(4)]);
        }
    }
}
