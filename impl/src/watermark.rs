//! Watermarks shared between threads: a published, monotone LSN that readers load without a
//! lock and waiters block on, and a concurrent 4-of-6 point fed by several reporters.
//!
//! - The writer's **commit tracker**: its network thread publishes the commit point into a
//!   [`Published`]; client threads call [`Published::wait_for`] (`wait_committed`).
//! - The **durable watermark**: six flusher threads report their synced LSN into a
//!   [`SharedQuorum`]; its point is the volume durable LSN.

use aurora_redo_model::types::{Lsn, NodeId};

use crate::sync::{lock, wait, AtomicU64, Condvar, Mutex, Ordering};
use crate::tracker::QuorumTracker;

/// Seeded concurrency bugs of the publication, for the loom tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishBug {
    /// Publish with a plain store instead of a max: two publishers racing can move the value
    /// backwards.
    Store,
    /// Notify waiters without taking the waiters' lock: a waiter that has checked the value but
    /// not yet slept misses the wake-up forever (lost wake-up).
    NotifyUnlocked,
}

/// A monotone LSN: published with a max, read without a lock, waited for with a condvar. A
/// publication that raises nothing, or that nobody waits for, costs no lock and no wake-up.
#[derive(Debug)]
pub struct Published {
    value: AtomicU64,
    /// How many threads sleep in [`Published::wait_for`].
    waiters: Mutex<usize>,
    cv: Condvar,
    bug: Option<PublishBug>,
}

impl Default for Published {
    fn default() -> Self {
        Published::new()
    }
}

impl Published {
    pub fn new() -> Published {
        Published::with_bug(None)
    }

    pub fn with_bug(bug: Option<PublishBug>) -> Published {
        Published {
            value: AtomicU64::new(0),
            waiters: Mutex::new(0),
            cv: Condvar::new(),
            bug,
        }
    }

    /// The current value.
    pub fn get(&self) -> Lsn {
        Lsn(self.value.load(Ordering::Acquire))
    }

    /// Raises the value to `lsn` (a lower `lsn` changes nothing) and wakes the waiters.
    pub fn raise(&self, lsn: Lsn) {
        let before = match self.bug {
            Some(PublishBug::Store) => {
                self.value.store(lsn.0, Ordering::Release);
                0
            }
            _ => self.value.fetch_max(lsn.0, Ordering::AcqRel),
        };
        if before >= lsn.0 {
            // Nothing new: every waiter for a lower value was woken by its raise.
            return;
        }
        if self.bug == Some(PublishBug::NotifyUnlocked) {
            self.cv.notify_all();
        } else {
            // Taking the lock orders this check after any waiter's check-then-sleep: a waiter
            // either saw the new value or is counted here.
            if *lock(&self.waiters) > 0 {
                self.cv.notify_all();
            }
        }
    }

    /// Blocks until the value reaches `lsn`; returns the value seen.
    pub fn wait_for(&self, lsn: Lsn) -> Lsn {
        let mut guard = lock(&self.waiters);
        loop {
            let now = self.get();
            if now >= lsn {
                return now;
            }
            *guard += 1;
            guard = wait(&self.cv, guard);
            *guard -= 1;
        }
    }
}

/// Seeded bug of the concurrent quorum, for the loom tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuorumBug {
    /// Keep each node's latest report instead of its highest: two reports of one node that
    /// race (a reordered `Flushed`) can lower the point.
    LatestNotMax,
}

/// A 4-of-6 point fed concurrently by per-node reporters, published monotone.
#[derive(Debug)]
pub struct SharedQuorum {
    tracker: Mutex<QuorumTracker>,
    point: Published,
    bug: Option<QuorumBug>,
}

impl Default for SharedQuorum {
    fn default() -> Self {
        SharedQuorum::new()
    }
}

impl SharedQuorum {
    pub fn new() -> SharedQuorum {
        SharedQuorum::with_bug(None)
    }

    pub fn with_bug(bug: Option<QuorumBug>) -> SharedQuorum {
        let point = match bug {
            // With per-node values that can drop, publish exactly what is computed.
            Some(QuorumBug::LatestNotMax) => Published::with_bug(Some(PublishBug::Store)),
            None => Published::new(),
        };
        SharedQuorum {
            tracker: Mutex::new(QuorumTracker::write_quorum()),
            point,
            bug,
        }
    }

    /// `node` reports `lsn`; returns the quorum point after it.
    pub fn report(&self, node: NodeId, lsn: Lsn) -> Lsn {
        let mut t = lock(&self.tracker);
        if self.bug == Some(QuorumBug::LatestNotMax) {
            let mut fresh = QuorumTracker::write_quorum();
            for n in NodeId::all() {
                fresh.observe(n, if n == node { lsn } else { t.node(n) });
            }
            *t = fresh;
        } else {
            t.observe(node, lsn);
        }
        let point = t.point();
        // Published under the tracker lock, so publications happen in computation order.
        self.point.raise(point);
        point
    }

    /// The highest LSN `node` has reported.
    pub fn node(&self, node: NodeId) -> Lsn {
        lock(&self.tracker).node(node)
    }

    /// Every node's highest report.
    pub fn per_node(&self) -> [Lsn; aurora_redo_model::types::STORAGE_NODES] {
        lock(&self.tracker).per_node()
    }

    /// The published point (lock-free).
    pub fn point(&self) -> Lsn {
        self.point.get()
    }

    /// Blocks until the point reaches `lsn`.
    pub fn wait_for(&self, lsn: Lsn) -> Lsn {
        self.point.wait_for(lsn)
    }
}

/// A seeded bug in [`AllocationLimit`], for the loom model that shows it caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocationBug {
    /// Waits until its own last record is durable, before creating it: a deadlock.
    WaitForOwn,
}

/// Back-pressure on the writer, the LSN allocation limit (Aurora's LAL against its VDL): a
/// client may take the writer at most `limit` records past the volume durable point.
#[derive(Clone, Copy, Debug)]
pub struct AllocationLimit {
    limit: u64,
    bug: Option<AllocationBug>,
}

impl AllocationLimit {
    pub fn new(limit: u64) -> AllocationLimit {
        AllocationLimit::with_bug(limit, None)
    }

    pub fn with_bug(limit: u64, bug: Option<AllocationBug>) -> AllocationLimit {
        AllocationLimit { limit, bug }
    }

    /// Waits until a writer that has created `appended` records may create `n` more: the last
    /// of them within the limit of `durable`'s point (a batch larger than the limit waits for
    /// everything before it). Returns the LSN it waited for.
    pub fn admit(&self, appended: u64, n: u64, durable: &SharedQuorum) -> Lsn {
        let last = appended + n;
        let wait = match self.bug {
            Some(AllocationBug::WaitForOwn) => last,
            None => last.saturating_sub(self.limit.max(n)),
        };
        durable.wait_for(Lsn(wait));
        Lsn(wait)
    }
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::{mpsc, Arc};
    use std::thread;

    use super::*;

    #[test]
    fn raise_keeps_the_max() {
        let p = Published::new();
        p.raise(Lsn(5));
        p.raise(Lsn(3));
        assert_eq!(p.get(), Lsn(5));
        // Already reached: returns at once, with the value seen.
        assert_eq!(p.wait_for(Lsn(4)), Lsn(5));
    }

    #[test]
    fn wait_for_returns_only_once_the_value_is_raised_to_it() {
        let p = Arc::new(Published::new());
        let target_raised = Arc::new(AtomicBool::new(false));
        let (started, waiting) = mpsc::channel();
        let waiter = {
            let (p, target_raised) = (Arc::clone(&p), Arc::clone(&target_raised));
            thread::spawn(move || {
                started.send(()).expect("main thread is listening");
                let seen = p.wait_for(Lsn(3));
                // The flag is set before the value reaches 3, so returning before it is seen
                // means `wait_for` did not wait.
                (seen, target_raised.load(Ordering::SeqCst))
            })
        };
        waiting.recv().expect("the waiter started");
        p.raise(Lsn(1));
        p.raise(Lsn(2));
        target_raised.store(true, Ordering::SeqCst);
        p.raise(Lsn(3));
        // Checked before the join, so that a value never published fails here rather than
        // leaving the waiter blocked.
        assert_eq!(p.get(), Lsn(3));
        let (seen, raised_first) = waiter.join().expect("the waiter did not panic");
        assert!(raised_first, "wait_for(3) returned before raise(3)");
        assert_eq!(seen, Lsn(3));
    }

    /// A waiter that sleeps is counted (under the lock its condvar releases), so a raise that
    /// reaches its value wakes it; once it returns it is no longer counted, so a raise with no
    /// one waiting skips the notification. The test waits, without timing, until the waiter is
    /// counted, that is asleep: a raise that does not wake it leaves the test hanging (a timeout).
    #[test]
    fn a_sleeping_waiter_is_counted_woken_by_the_raise_that_reaches_it_and_uncounted() {
        let p = Arc::new(Published::new());
        let waiter = {
            let p = Arc::clone(&p);
            thread::spawn(move || p.wait_for(Lsn(2)))
        };
        // (A `wait_for` that returns without sleeping ends the wait too, and fails below.)
        while *lock(&p.waiters) == 0 && !waiter.is_finished() {
            thread::yield_now();
        }
        // Below the awaited value: the waiter may wake, and sleeps again.
        p.raise(Lsn(1));
        p.raise(Lsn(2));
        assert_eq!(waiter.join().expect("the waiter did not panic"), Lsn(2));
        assert_eq!(*lock(&p.waiters), 0, "nobody waits any more");
    }

    #[test]
    fn the_seeded_store_bug_can_lower_the_value() {
        let p = Published::with_bug(Some(PublishBug::Store));
        p.raise(Lsn(5));
        p.raise(Lsn(3));
        assert_eq!(p.get(), Lsn(3));
        // The lost wake-up bug is a race only: sequentially it publishes a max.
        let p = Published::with_bug(Some(PublishBug::NotifyUnlocked));
        p.raise(Lsn(5));
        p.raise(Lsn(3));
        assert_eq!(p.get(), Lsn(5));
    }

    #[test]
    fn shared_quorum_wait_for_returns_once_four_nodes_reach_it() {
        let q = Arc::new(SharedQuorum::new());
        let fourth_reported = Arc::new(AtomicBool::new(false));
        let (started, waiting) = mpsc::channel();
        let waiter = {
            let (q, fourth_reported) = (Arc::clone(&q), Arc::clone(&fourth_reported));
            thread::spawn(move || {
                started.send(()).expect("main thread is listening");
                let seen = q.wait_for(Lsn(2));
                (seen, fourth_reported.load(Ordering::SeqCst))
            })
        };
        waiting.recv().expect("the waiter started");
        for n in 0..3 {
            assert_eq!(q.report(NodeId(n), Lsn(2)), Lsn(0));
        }
        fourth_reported.store(true, Ordering::SeqCst);
        assert_eq!(q.report(NodeId(3), Lsn(2)), Lsn(2));
        assert_eq!(q.point(), Lsn(2));
        let (seen, after_fourth) = waiter.join().expect("the waiter did not panic");
        assert!(
            after_fourth,
            "wait_for(2) returned before a quorum reached 2"
        );
        assert_eq!(seen, Lsn(2));
    }

    #[test]
    fn the_seeded_latest_not_max_quorum_keeps_each_nodes_latest_report() {
        let q = SharedQuorum::with_bug(Some(QuorumBug::LatestNotMax));
        for n in 0..4 {
            q.report(NodeId(n), Lsn(5));
        }
        assert_eq!(q.point(), Lsn(5));
        // A reordered, older report of S0 replaces its newer one, and the point drops.
        assert_eq!(q.report(NodeId(0), Lsn(1)), Lsn(1));
        assert_eq!(q.node(NodeId(0)), Lsn(1));
        assert_eq!(q.node(NodeId(1)), Lsn(5));
        assert_eq!(q.point(), Lsn(1));
    }

    /// The allocation limit waits for the LSN that keeps the last new record within the limit
    /// of the durable point (and for everything before a batch larger than the limit).
    #[test]
    fn admission_waits_for_the_durable_point_the_limit_needs() {
        let q = SharedQuorum::new();
        let gate = AllocationLimit::new(5);
        // Within the limit of nothing durable: no wait.
        assert_eq!(gate.admit(2, 3, &q), Lsn::ZERO);
        for n in 0..4 {
            q.report(NodeId(n), Lsn(10));
        }
        // 14 + 1 records: the 15th needs 10 durable.
        assert_eq!(gate.admit(14, 1, &q), Lsn(10));
        // A batch of 8 past the limit of 5: everything before it must be durable.
        assert_eq!(gate.admit(10, 8, &q), Lsn(10));
        // Once the point moves on another thread, a waiting admission returns.
        let q = Arc::new(q);
        let reporter = {
            let q = q.clone();
            thread::spawn(move || {
                for n in 0..4 {
                    q.report(NodeId(n), Lsn(12));
                }
            })
        };
        assert_eq!(gate.admit(16, 1, &q), Lsn(12));
        reporter.join().unwrap();
    }
}
