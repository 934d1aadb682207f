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

/// A monotone LSN: published with a max, read without a lock, waited for with a condvar.
#[derive(Debug)]
pub struct Published {
    value: AtomicU64,
    waiters: Mutex<()>,
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
            waiters: Mutex::new(()),
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
        match self.bug {
            Some(PublishBug::Store) => self.value.store(lsn.0, Ordering::Release),
            _ => {
                self.value.fetch_max(lsn.0, Ordering::AcqRel);
            }
        }
        if self.bug == Some(PublishBug::NotifyUnlocked) {
            self.cv.notify_all();
        } else {
            // Taking the lock orders this notify after any waiter's check-then-sleep.
            let _guard = lock(&self.waiters);
            self.cv.notify_all();
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
            guard = wait(&self.cv, guard);
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
