//! The writer's log as the runtime monitor remembers it, in memory bounded independently of the
//! number of records: the last [`GhostLog::WINDOW`] records one by one, and the page image that
//! the older ones produced.
//!
//! The monitor needs the writer's record at an LSN to judge a replica's apply of it, and the page
//! image as of an LSN to judge a replica's pages. Replicas apply close behind the writer, so a
//! window of recent records serves nearly every apply record by record. An apply below the
//! window (a replica that restarted from nothing and catches up) is judged by digest instead:
//! the log keeps a running digest of its records ([`chain`]), the monitor keeps one of each
//! replica's applies, and the two must agree where the replica's applies reach the window (see
//! `monitor.rs`). A wrong, missing or reordered record below the window changes the replica's
//! digest (but for a 64-bit hash collision).

use std::collections::{BTreeMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

use aurora_redo_model::types::{Lsn, PageId, Record};

/// A page image: each page's value and the LSN of the record that wrote it.
pub type Pages = BTreeMap<PageId, (u64, Lsn)>;

/// What the ghost log knows of one LSN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The writer's record there.
    Record(Record),
    /// At or below the window's base: folded into the page image.
    Folded,
    /// Above the last record the writer created.
    Beyond,
}

/// The running digest of a log after `digest` is extended by `record`.
pub fn chain(digest: u64, record: &Record) -> u64 {
    let mut h = DefaultHasher::new();
    (digest, record).hash(&mut h);
    h.finish()
}

/// The writer's log `1..=last`: records `1..=base` folded into a page image and a digest, the
/// rest kept one by one, each with the digest of the log through it.
#[derive(Clone, Debug, Default)]
pub struct GhostLog {
    base: Lsn,
    image: Pages,
    base_digest: u64,
    window: VecDeque<(Record, u64)>,
}

impl GhostLog {
    /// How many records the log keeps one by one (24 bytes each: 1.5 MiB).
    pub const WINDOW: usize = 1 << 16;

    /// The log of a writer that has created `records` (`1..=n`, in order).
    pub fn of(records: impl IntoIterator<Item = Record>) -> GhostLog {
        let mut log = GhostLog::default();
        for r in records {
            log.push(r);
        }
        log
    }

    /// The writer created `record`, the LSN after [`GhostLog::last`].
    pub fn push(&mut self, record: Record) {
        debug_assert_eq!(record.lsn, self.last().next());
        let digest = chain(
            self.digest_through(self.last()).unwrap_or_default(),
            &record,
        );
        self.window.push_back((record, digest));
        if self.window.len() > Self::WINDOW {
            let (oldest, digest) = self
                .window
                .pop_front()
                .expect("the window is over its size");
            self.image.insert(oldest.page, (oldest.value, oldest.lsn));
            self.base = oldest.lsn;
            self.base_digest = digest;
        }
    }

    /// The LSN of the last record the writer created.
    pub fn last(&self) -> Lsn {
        self.window.back().map_or(self.base, |(r, _)| r.lsn)
    }

    /// The highest LSN folded into the page image (`Lsn::ZERO`: none).
    pub fn base(&self) -> Lsn {
        self.base
    }

    /// The writer's record at `lsn`, if the log still holds it one by one.
    pub fn lookup(&self, lsn: Lsn) -> Lookup {
        if lsn <= self.base {
            return Lookup::Folded;
        }
        match self.window.get((lsn.0 - self.base.0 - 1) as usize) {
            Some((r, _)) => Lookup::Record(*r),
            None => Lookup::Beyond,
        }
    }

    /// The digest of records `1..=lsn` ([`chain`] from 0), if `lsn` is the base or in the window.
    pub fn digest_through(&self, lsn: Lsn) -> Option<u64> {
        if lsn == self.base {
            return Some(self.base_digest);
        }
        match self.lookup(lsn) {
            Lookup::Record(_) => Some(self.window[(lsn.0 - self.base.0 - 1) as usize].1),
            Lookup::Folded | Lookup::Beyond => None,
        }
    }

    /// The writer's record at `lsn`, or `None` when folded or beyond.
    pub fn get(&self, lsn: Lsn) -> Option<Record> {
        match self.lookup(lsn) {
            Lookup::Record(r) => Some(r),
            Lookup::Folded | Lookup::Beyond => None,
        }
    }

    /// The pages records `1..=base` produced.
    pub fn image(&self) -> &Pages {
        &self.image
    }

    /// The pages records `1..=upto` produce, or `None` when `upto` is below the window's base
    /// (that image is no longer known).
    pub fn pages_through(&self, upto: Lsn) -> Option<Pages> {
        if upto < self.base {
            return None;
        }
        let mut pages = self.image.clone();
        for (r, _) in self.window.iter().take_while(|(r, _)| r.lsn <= upto) {
            pages.insert(r.page, (r.value, r.lsn));
        }
        Some(pages)
    }

    /// How many records the log holds one by one (at most [`GhostLog::WINDOW`]).
    pub fn kept(&self) -> usize {
        self.window.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_redo_model::state::record_for;
    use aurora_redo_model::types::Epoch;

    fn record(lsn: u64) -> Record {
        record_for(Epoch::FIRST, Lsn(lsn))
    }

    #[test]
    fn a_long_log_keeps_a_window_and_folds_the_rest_into_pages() {
        let n = GhostLog::WINDOW as u64 * 3 + 5;
        let log = GhostLog::of((1..=n).map(record));
        assert_eq!(log.kept(), GhostLog::WINDOW);
        assert_eq!(log.last(), Lsn(n));
        assert_eq!(log.base(), Lsn(n - GhostLog::WINDOW as u64));
        assert_eq!(log.lookup(log.base()), Lookup::Folded);
        assert_eq!(log.get(log.base().next()), Some(record(log.base().0 + 1)));
        assert_eq!(log.lookup(Lsn(n + 1)), Lookup::Beyond);
        // The image of the base and every later image are those of the whole log.
        let whole = |upto: u64| -> Pages {
            (1..=upto)
                .map(record)
                .map(|r| (r.page, (r.value, r.lsn)))
                .collect()
        };
        assert_eq!(log.image(), &whole(log.base().0));
        assert_eq!(log.pages_through(Lsn(n - 3)), Some(whole(n - 3)));
        assert_eq!(log.pages_through(Lsn(log.base().0 - 1)), None);
        // The digests are those of the whole log's prefixes.
        let digest = |upto: u64| (1..=upto).map(record).fold(0, |d, r| chain(d, &r));
        assert_eq!(log.digest_through(log.base()), Some(digest(log.base().0)));
        assert_eq!(log.digest_through(Lsn(n)), Some(digest(n)));
        assert_eq!(log.digest_through(Lsn(log.base().0 - 1)), None);
    }

    #[test]
    fn a_short_log_forgets_nothing() {
        let log = GhostLog::of((1..=100).map(record));
        assert_eq!(log.base(), Lsn::ZERO);
        assert!((1..=100).all(|l| log.get(Lsn(l)) == Some(record(l))));
        assert_eq!(log.pages_through(Lsn::ZERO), Some(Pages::new()));
    }
}
