//! Latency recording for the live run and the benchmark: HDR histograms of microsecond samples,
//! and [`LagClock`], an observer that times every record from the writer's commit to each
//! replica's apply.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aurora_redo_impl::observer::{Event, Observer};
use aurora_redo_model::types::Lsn;
use hdrhistogram::Histogram;

/// Highest value a histogram tells apart: 10 minutes in microseconds (longer samples are
/// recorded as this).
const HIGHEST_US: u64 = 600_000_000;

/// An empty histogram of microsecond samples, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("static bounds are valid")
}

/// Records `d` in microseconds (saturating at the histogram's top).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
}

/// Adds `from` into `into` (both made by [`histogram`], so the addition cannot fail).
pub fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    into.add(from).expect("histograms of equal bounds");
}

/// Latency percentiles read from an HDR histogram of microsecond samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
    pub samples: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let at = |q: f64| Duration::from_micros(h.value_at_quantile(q));
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: Duration::from_micros(h.max()),
            samples: h.len(),
        }
    }
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms ({} samples)",
            ms(self.p50),
            ms(self.p99),
            ms(self.p999),
            ms(self.max),
            self.samples
        )
    }
}

/// Times kept: the last `WINDOW` LSNs (2 MiB of slots for each of append and commit).
const WINDOW: u64 = 1 << 18;
/// Bits of a slot holding the LSN's generation (`lsn / WINDOW`, kept nonzero), below the time.
const TAG_BITS: u32 = 24;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

/// The replicas' apply lags, per record and replica.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReplicaLags {
    /// From the writer's commit of a record to a replica having applied it (0 when the replica
    /// applied it first).
    pub lag: Percentiles,
    /// From the writer's append of a record (its creation) to a replica having applied it.
    pub from_append: Percentiles,
    /// Applies that came before the writer's commit (counted in `lag` as 0).
    pub early: u64,
    /// Applies that could not be timed: their commit time had left the bounded window.
    pub missed: u64,
}

/// Times stamped per LSN, for the last `WINDOW` LSNs: the time of LSN `l` sits in slot
/// `l % WINDOW`, packed with `l`'s generation, so a look-up of an LSN whose slot a later one
/// has taken finds nothing instead of a wrong time. LSNs are stamped in order by one thread at a
/// time (under the writer's lock), so every slot is written once per generation.
struct Stamps {
    /// Per slot: (microseconds since the clock's start) << TAG_BITS | generation tag; 0 while
    /// empty.
    slots: Box<[AtomicU64]>,
    /// The highest LSN stamped.
    stamped: AtomicU64,
}

impl Stamps {
    fn new() -> Stamps {
        Stamps {
            slots: (0..WINDOW).map(|_| AtomicU64::new(0)).collect(),
            stamped: AtomicU64::new(0),
        }
    }

    fn tag(lsn: u64) -> u64 {
        (lsn / WINDOW) % TAG_MASK + 1
    }

    /// Stamps every LSN above the highest stamped one up to `upto` with `now`.
    fn stamp_through(&self, upto: Lsn, now: u64) {
        let from = self.stamped.load(Ordering::Relaxed);
        if upto.0 <= from {
            return;
        }
        // Only the last WINDOW LSNs of a jump can still be looked up.
        for lsn in (from + 1).max(upto.0.saturating_sub(WINDOW - 1))..=upto.0 {
            self.slots[(lsn % WINDOW) as usize]
                .store(now << TAG_BITS | Self::tag(lsn), Ordering::Release);
        }
        self.stamped.store(upto.0, Ordering::Release);
    }

    /// `Ok(time)` of `lsn`; `Err(true)` if it is not stamped yet, `Err(false)` if its slot has
    /// been taken by a later LSN.
    fn get(&self, lsn: Lsn) -> Result<u64, bool> {
        // Slots are stamped before `stamped` moves past them, so once `stamped` covers `lsn`
        // its slot holds its time unless a later generation overwrote it.
        let stamped = self.stamped.load(Ordering::Acquire);
        let packed = self.slots[(lsn.0 % WINDOW) as usize].load(Ordering::Acquire);
        if packed & TAG_MASK == Self::tag(lsn.0) {
            Ok(packed >> TAG_BITS)
        } else {
            Err(lsn.0 > stamped)
        }
    }
}

/// One replica's apply lags.
struct ReplicaLag {
    histogram: Histogram<u64>,
    from_append: Histogram<u64>,
    /// The highest LSN timed for this replica: a restarted replica re-applies records, and only
    /// the first apply of each is a lag sample.
    timed: Lsn,
    /// Records applied after their commit time had left the window.
    missed: u64,
    /// Records applied before the writer committed them (timed as 0).
    early: u64,
}

/// An [`Observer`] that times each record from the moment the writer commits it
/// ([`Event::Committed`]) to the moment each replica has applied it ([`Event::Applied`]), in
/// microseconds; a replica that applies a record before the writer has committed it (it learns
/// the commit point from the nodes' `Available` notices, not from the writer) was not behind,
/// and that apply counts as 0. It also times each apply from the record's creation
/// ([`Event::Appended`]). The events are delivered synchronously in the emitting thread:
/// `Appended` and `Committed` under the writer's lock (`Committed` before the new commit point is
/// published or sent), `Applied` under the replica's lock right after the replica's batch of
/// inputs is handled (before its pages can be read). Every event is also passed on to `inner`
/// (the run's monitor, or nothing).
///
/// Memory is bounded: append and commit times are kept for the last `WINDOW` LSNs only
/// ([`Stamps`]); an apply whose times have left the window counts as missed instead of being
/// timed wrongly.
pub struct LagClock {
    inner: Arc<dyn Observer>,
    start: Instant,
    appended: Stamps,
    committed: Stamps,
    replicas: Vec<Mutex<ReplicaLag>>,
}

impl LagClock {
    pub fn new(replicas: usize, inner: Arc<dyn Observer>) -> LagClock {
        LagClock {
            inner,
            start: Instant::now(),
            appended: Stamps::new(),
            committed: Stamps::new(),
            replicas: (0..replicas)
                .map(|_| {
                    Mutex::new(ReplicaLag {
                        histogram: histogram(),
                        from_append: histogram(),
                        timed: Lsn::ZERO,
                        missed: 0,
                        early: 0,
                    })
                })
                .collect(),
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn applied(&self, replica: usize, lsn: Lsn) {
        let now = self.now_us();
        let Some(slot) = self.replicas.get(replica) else {
            return;
        };
        let mut lag = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if lsn <= lag.timed {
            return;
        }
        lag.timed = lsn;
        match self.committed.get(lsn) {
            Ok(at) => lag.histogram.saturating_record(now.saturating_sub(at)),
            // The replica learns the commit point from the nodes, not from the writer, and can
            // apply a record before the writer has counted its quorum: it was not behind.
            Err(true) => {
                lag.histogram.saturating_record(0);
                lag.early += 1;
            }
            Err(false) => lag.missed += 1,
        }
        if let Ok(at) = self.appended.get(lsn) {
            lag.from_append.saturating_record(now.saturating_sub(at));
        }
    }

    /// Every replica's lags in one histogram.
    pub fn lags(&self) -> ReplicaLags {
        let (mut all, mut from_append) = (histogram(), histogram());
        let (mut missed, mut early) = (0, 0);
        for r in &self.replicas {
            let r = r.lock().unwrap_or_else(PoisonError::into_inner);
            merge(&mut all, &r.histogram);
            merge(&mut from_append, &r.from_append);
            missed += r.missed;
            early += r.early;
        }
        ReplicaLags {
            lag: Percentiles::of(&all),
            from_append: Percentiles::of(&from_append),
            early,
            missed,
        }
    }
}

impl Observer for LagClock {
    fn observe(&self, event: &Event) {
        match event {
            Event::Appended(record) => self.appended.stamp_through(record.lsn, self.now_us()),
            Event::Committed(point) => self.committed.stamp_through(*point, self.now_us()),
            Event::Applied {
                replica, record, ..
            } => self.applied(replica.0 as usize, record.lsn),
            _ => {}
        }
        self.inner.observe(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_redo_impl::observer::NoObserver;
    use aurora_redo_model::types::{Epoch, Record, ReplicaId};

    fn applied(replica: u8, lsn: u64) -> Event {
        Event::Applied {
            replica: ReplicaId(replica),
            incarnation: 0,
            record: Record {
                lsn: Lsn(lsn),
                page: 0,
                value: lsn,
                epoch: Epoch::FIRST,
            },
        }
    }

    #[test]
    fn each_first_apply_is_one_sample_and_early_or_overwritten_ones_are_told_apart() {
        let clock = LagClock::new(2, Arc::new(NoObserver));
        let append = |from: u64, to: u64| {
            for l in from..=to {
                clock.observe(&Event::Appended(Record {
                    lsn: Lsn(l),
                    page: 0,
                    value: l,
                    epoch: Epoch::FIRST,
                }));
            }
        };
        append(1, 3);
        clock.observe(&applied(0, 1)); // before the writer's commit: 0, early
        clock.observe(&Event::Committed(Lsn(3)));
        for l in 1..=3 {
            clock.observe(&applied(1, l));
        }
        clock.observe(&applied(1, 2)); // a re-apply (after a restart) is not a sample
        let lags = clock.lags();
        assert_eq!(lags.lag.samples, 4);
        assert_eq!(lags.from_append.samples, 4);
        assert_eq!((lags.early, lags.missed), (1, 0));

        // LSN 4's slot is taken by LSN 4 + WINDOW before replica 0 applies it.
        append(4, 4 + WINDOW);
        clock.observe(&Event::Committed(Lsn(4 + WINDOW)));
        clock.observe(&applied(0, 4));
        clock.observe(&applied(0, 5 + WINDOW / 2));
        let lags = clock.lags();
        assert_eq!((lags.lag.samples, lags.early, lags.missed), (5, 1, 1));
        assert_eq!(lags.from_append.samples, 5);
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = histogram();
        for us in 1..=1000 {
            record(&mut h, Duration::from_micros(us));
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.samples, 1000);
        assert_eq!(p.p50, Duration::from_micros(500));
        assert_eq!(p.p999, Duration::from_micros(999));
        assert_eq!(p.max, Duration::from_micros(1000));
        assert_eq!(Percentiles::of(&histogram()), Percentiles::default());
    }
}
