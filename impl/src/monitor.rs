//! The runtime invariant monitor: the six safety invariants of `docs/protocol.md` ("Safety
//! invariants"), checked on the live system from ground truth (what the disks really synced, what
//! nodes really held when they acked, what replicas really applied and discarded), each through its
//! one definition in `aurora_redo_model::invariants`.
//!
//! It is an [`Observer`]: the engine hands it every ghost event at the moment it happens, and
//! every invariant is judged event by event. CommittedRecoverable (6) is judged whenever the commit
//! point moves and whenever a node crashes (the only events that can break it), from what each
//! node truly holds; [`Monitor::check_quiescent`] judges it, and the final shape of ReplicaPrefix,
//! once more on the system at rest, and RetainUntilDurable there: each replica's retain buffer
//! holds exactly the records it applied and did not discard through the discard rule (a record
//! that left the buffer without a `Discarded` event left it some other way).
//!
//! Under ack `memory` a storage crash can break CommittedRecoverable by design (README, "The
//! finding"). A run that injects crashes under ack `memory` may therefore *tolerate* it
//! ([`Monitor::tolerating`]): the violations are still recorded, apart, but do not fail the run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aurora_redo_model::invariants::{
    commit_backed_by_quorum, discard_is_safe, epoch_fencing, first_disagreement, first_lost_commit,
    first_unreadable, never_decreases, readable_by_every_read_quorum, replica_prefix,
    retained_unless_discarded, truthful_ack, COMMITTED_RECOVERABLE, COMMITTED_SURVIVES_RECOVERY,
    COMMIT_ONLY_AFTER_QUORUM, DURABLE_LSN_MONOTONIC, EPOCH_FENCING, LOG_AGREEMENT,
    NO_DISCARD_BEFORE_FLUSH, REPLICA_PREFIX, RETAIN_UNTIL_DURABLE,
};
use aurora_redo_model::quorum::quorum_watermark;
use aurora_redo_model::types::{Epoch, Lsn, NodeId, PageId, Record, ReplicaId, STORAGE_NODES};

use crate::engine::Engine;
use crate::ghost_log::{chain, GhostLog, Lookup};
use crate::observer::{Event, Observer};
use crate::sync::{lock, Mutex};

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violated: {}", self.invariant, self.detail)
    }
}

#[derive(Default)]
struct ReplicaSeen {
    incarnation: u32,
    applied: Lsn,
    durable: Lsn,
    /// The records this incarnation applied and has not discarded (a `Discarded` event is the
    /// discard rule acting): what its retain buffer must hold (RetainUntilDurable).
    owed: BTreeSet<Lsn>,
    /// The epoch it follows. One older than the writer's makes it stale: its events are not the
    /// writer's log's business (it starts over when it follows the new epoch).
    epoch: Epoch,
    /// The digest ([`chain`]) of this incarnation's applies, in order.
    digest: u64,
    /// It applied records the writer's [`GhostLog`] had folded, not yet judged: they are, by
    /// digest, at its first apply the log holds one by one.
    folded: bool,
}

impl ReplicaSeen {
    /// A new incarnation following `epoch`, which has applied nothing yet.
    fn fresh(incarnation: u32, epoch: Epoch) -> ReplicaSeen {
        ReplicaSeen {
            incarnation,
            epoch,
            ..ReplicaSeen::default()
        }
    }
}

#[derive(Default)]
struct Seen {
    /// The writer's records.
    log: GhostLog,
    /// Per node, the highest `truthful_ack(sent, held)` ever sent.
    truthful: [Lsn; STORAGE_NODES],
    /// Per node, the highest SCL ever sent in an ack.
    sent: [Lsn; STORAGE_NODES],
    commit: Lsn,
    /// Per node, the highest LSN whose fsync returned (synced bytes survive crashes).
    synced: [Lsn; STORAGE_NODES],
    /// Per node, the contiguous prefix it truly holds in memory or on disk, as last reported
    /// (by an ack, a sync, a crash or a recovery).
    held: [Lsn; STORAGE_NODES],
    max_volume_durable: Lsn,
    replicas: BTreeMap<ReplicaId, ReplicaSeen>,
    discards: u64,
    violations: Vec<Violation>,
    tolerated: Vec<Violation>,
    /// The writer's epoch.
    epoch: Epoch,
    /// The epoch the engine started in, which every replica follows until it follows a newer
    /// one (a replica the monitor has not heard of yet follows this one).
    start: Epoch,
    /// What clients were told before the last failover: the failed writer's commit point and log.
    acked: (Lsn, GhostLog),
    /// Checks that could not be made because the records they needed were folded (see
    /// [`MonitorStats::unjudged`]).
    unjudged: u64,
    /// A failover happened: volume-durable monotonicity is no longer judged (a seal truncates).
    failed_over: bool,
}

/// Counters, for reports and for checking that a run exercised what it claims.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorStats {
    pub appended: u64,
    pub committed: Lsn,
    pub volume_durable: Lsn,
    pub discards: u64,
    pub violations: usize,
    /// Judgements skipped because the writer's records they needed had left the monitor's
    /// bounded window: a replica at rest below the window, or a recovery judged after more than
    /// [`GhostLog::WINDOW`] records. Zero in every run the tests and `run` make; `run` fails
    /// when it is not.
    pub unjudged: u64,
    /// How many of the writer's records the monitor holds one by one.
    pub kept: usize,
}

/// The runtime invariant monitor.
pub struct Monitor {
    state: Mutex<Seen>,
    /// Panic at the first violation (under shuttle, so the schedule is reported), or collect.
    panic_on_violation: bool,
    /// Invariants whose violations are expected in this run: recorded apart, never a failure.
    tolerate: Vec<&'static str>,
}

impl Monitor {
    pub fn new(panic_on_violation: bool) -> Monitor {
        Monitor {
            state: Mutex::new(Seen::default()),
            panic_on_violation,
            tolerate: Vec::new(),
        }
    }

    /// A monitor for an engine that carries on a recovered volume
    /// ([`crate::config::EngineConfig::resuming`]): `log` is the recovered log `1..=R` (the
    /// writer's records so far, which replicas will apply again), and `on_disk` each node's
    /// recovered prefix, which the recovery's write phase made durable (so each node counts as
    /// having held and announced it; `R` is committed).
    pub fn resuming(self, log: Vec<Record>, on_disk: [Lsn; STORAGE_NODES]) -> Monitor {
        {
            let mut s = lock(&self.state);
            debug_assert!(log.iter().enumerate().all(|(i, r)| r.lsn.0 == i as u64 + 1));
            s.commit = log.last().map_or(Lsn::ZERO, |r| r.lsn);
            s.log = GhostLog::of(log);
            s.truthful = on_disk;
            s.sent = on_disk;
            s.held = on_disk;
            s.synced = on_disk;
            s.max_volume_durable = quorum_watermark(on_disk);
        }
        self
    }

    /// A monitor whose writer writes in `epoch` (a resumed volume's): only that epoch's records
    /// and acknowledgements are the writer's.
    pub fn in_epoch(self, epoch: Epoch) -> Monitor {
        let mut s = lock(&self.state);
        s.epoch = epoch;
        s.start = epoch;
        drop(s);
        self
    }

    /// Expects `invariant` to be violated in this run (the memory-ack finding): its violations
    /// go to [`Monitor::tolerated`] instead of failing the run.
    pub fn tolerating(mut self, invariant: &'static str) -> Monitor {
        self.tolerate.push(invariant);
        self
    }

    /// The violations that fail the run.
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.state).violations.clone()
    }

    /// The violations of tolerated invariants.
    pub fn tolerated(&self) -> Vec<Violation> {
        lock(&self.state).tolerated.clone()
    }

    pub fn stats(&self) -> MonitorStats {
        let s = lock(&self.state);
        MonitorStats {
            appended: s.log.last().0,
            committed: s.commit,
            volume_durable: s.max_volume_durable,
            discards: s.discards,
            violations: s.violations.len(),
            unjudged: s.unjudged,
            kept: s.log.kept(),
        }
    }

    /// The pages the writer's records `1..=upto` produce, or `None` when `upto` is below the
    /// monitor's window (see [`GhostLog`]).
    pub fn expected_pages(&self, upto: Lsn) -> Option<BTreeMap<PageId, (u64, Lsn)>> {
        lock(&self.state).log.pages_through(upto)
    }

    fn violate(&self, s: &mut Seen, invariant: &'static str, detail: String) {
        let v = Violation { invariant, detail };
        if self.tolerate.contains(&invariant) {
            s.tolerated.push(v);
            return;
        }
        if self.panic_on_violation {
            panic!("{v}");
        }
        s.violations.push(v);
    }

    /// **CommittedRecoverable** on the nodes' true holdings: every committed record must be held by
    /// enough nodes that every read quorum of 3 contains one. Holdings are contiguous prefixes, so
    /// the commit point itself is the record with the fewest holders.
    fn judge_recoverable(&self, s: &mut Seen, moment: &str) {
        let commit = s.commit;
        if commit == Lsn::ZERO {
            return;
        }
        let holders = s.held.iter().filter(|&&h| h >= commit).count();
        if !readable_by_every_read_quorum(holders, STORAGE_NODES) {
            let d = format!(
                "{moment}: committed record {commit} is held by only {holders} nodes (held {:?})",
                s.held
            );
            self.violate(s, COMMITTED_RECOVERABLE, d);
        }
    }

    /// Judges the invariants that need the whole system at rest: CommittedRecoverable (every
    /// committed record readable by every read quorum) and ReplicaPrefix (each replica's pages
    /// are exactly the writer's records `1..=applied`).
    pub fn check_quiescent(&self, engine: &Engine) {
        let holding = |lsn| {
            let holders = NodeId::all().filter(|n| engine.node_holds(*n, lsn)).count();
            (holders, STORAGE_NODES)
        };
        if let Some((lsn, holders, _)) = first_unreadable(engine.commit_point(), holding) {
            let mut s = lock(&self.state);
            self.violate(
                &mut s,
                COMMITTED_RECOVERABLE,
                format!("committed record {lsn} is held by only {holders} nodes"),
            );
        }
        for r in engine.config().replicas.clone() {
            let (applied, pages, retained) = engine.with_replica(r, |rep| {
                (rep.applied(), rep.pages().clone(), rep.retained())
            });
            let expected = self.expected_pages(applied);
            let mut s = lock(&self.state);
            if s.stale(r) {
                continue; // it follows an older epoch: not the writer's log's business
            }
            self.judge_retained(&mut s, r, &retained);
            let Some(expected) = expected else {
                s.unjudged += 1;
                continue;
            };
            let matches = pages == expected;
            if !replica_prefix(applied, matches, s.sent) {
                self.violate(
                    &mut s,
                    REPLICA_PREFIX,
                    format!("{r} at rest: applied {applied}, pages match the writer's: {matches}"),
                );
            }
        }
    }
}

impl Monitor {
    /// **RetainUntilDurable** for replica `r`, whose retain buffer holds `retained`: per LSN,
    /// retained exactly when applied and not discarded through the discard rule.
    fn judge_retained(&self, s: &mut Seen, r: ReplicaId, retained: &[Lsn]) {
        let owed = s
            .replicas
            .get(&r)
            .map(|view| view.owed.clone())
            .unwrap_or_default();
        let retained: BTreeSet<Lsn> = retained.iter().copied().collect();
        let wrong: Vec<Lsn> = owed
            .symmetric_difference(&retained)
            .copied()
            .filter(|lsn| {
                let owed = owed.contains(lsn);
                // An owed record was applied and not discarded; one only retained was neither.
                !retained_unless_discarded(owed, false, retained.contains(lsn))
            })
            .collect();
        if !wrong.is_empty() {
            let d = format!(
                "{r} at rest retains {retained:?}, but applied and did not discard {owed:?}"
            );
            self.violate(s, RETAIN_UNTIL_DURABLE, d);
        }
    }
}

impl Seen {
    /// What the monitor knows of `replica`'s current incarnation `incarnation`: a new incarnation
    /// starts from nothing in the epoch the replica follows; a replica not heard of yet follows
    /// the epoch the engine started in (it may have learned a commit point, which shows no event,
    /// before a failover, and apply in that old epoch after it).
    fn replica_view(&mut self, replica: ReplicaId, incarnation: u32) -> &mut ReplicaSeen {
        let start = self.start;
        let view = self.replicas.entry(replica).or_insert_with(|| ReplicaSeen {
            incarnation,
            epoch: start,
            ..ReplicaSeen::default()
        });
        if view.incarnation != incarnation {
            *view = ReplicaSeen {
                incarnation,
                epoch: view.epoch,
                ..ReplicaSeen::default()
            };
        }
        view
    }

    /// Whether `replica` follows an epoch older than the writer's.
    fn stale(&self, replica: ReplicaId) -> bool {
        let epoch = self.replicas.get(&replica).map_or(self.start, |v| v.epoch);
        epoch != self.epoch
    }
}

impl Observer for Monitor {
    fn observe(&self, event: &Event) {
        let mut guard = lock(&self.state);
        let s = &mut *guard;
        match *event {
            Event::Appended(record) => {
                if record.epoch != s.epoch {
                    return; // a zombie's record: not the writer's log
                }
                s.log.push(record);
            }
            Event::Acked {
                node,
                sent,
                held,
                epoch,
            } => {
                if epoch != s.epoch {
                    return;
                }
                let i = node.index();
                s.truthful[i] = s.truthful[i].max(truthful_ack(sent, held));
                s.sent[i] = s.sent[i].max(sent);
                s.held[i] = s.held[i].max(held);
            }
            Event::Committed(lsn) => {
                if !never_decreases(s.commit, lsn) {
                    let d = format!("commit point went from {} to {lsn}", s.commit);
                    self.violate(s, DURABLE_LSN_MONOTONIC, d);
                }
                if !commit_backed_by_quorum(lsn, s.truthful) {
                    let d = format!("commit point {lsn} but truthful acks are {:?}", s.truthful);
                    self.violate(s, COMMIT_ONLY_AFTER_QUORUM, d);
                }
                s.commit = s.commit.max(lsn);
                self.judge_recoverable(s, &format!("commit point {lsn}"));
            }
            Event::Synced { node, lsn } => {
                let i = node.index();
                s.synced[i] = s.synced[i].max(lsn);
                s.held[i] = s.held[i].max(lsn);
                let volume = quorum_watermark(s.synced);
                if !s.failed_over && !never_decreases(s.max_volume_durable, volume) {
                    let d = format!("volume durable {} -> {volume}", s.max_volume_durable);
                    self.violate(s, DURABLE_LSN_MONOTONIC, d);
                }
                s.max_volume_durable = s.max_volume_durable.max(volume);
            }
            Event::NodeRecovered { node, lsn, .. } => {
                // A restarted node's disk holds what recovery read back.
                let i = node.index();
                s.synced[i] = s.synced[i].max(lsn);
                s.held[i] = lsn;
                s.max_volume_durable = s.max_volume_durable.max(quorum_watermark(s.synced));
            }
            Event::NodeCrashed(node) => {
                // Memory is gone; what was synced survives.
                s.held[node.index()] = s.synced[node.index()];
                self.judge_recoverable(s, &format!("{node} crashed"));
            }
            Event::Applied {
                replica,
                incarnation,
                record,
            } => {
                let writer_epoch = s.epoch;
                let lookup = s.log.lookup(record.lsn);
                // A first apply the log holds one by one, after applies it had folded: judge
                // those by digest, against the log's through the record before this one.
                let digest_before = match lookup {
                    Lookup::Record(_) => s
                        .replicas
                        .get(&replica)
                        .filter(|v| v.incarnation == incarnation && v.folded)
                        .map(|_| s.log.digest_through(Lsn(record.lsn.0 - 1))),
                    Lookup::Folded | Lookup::Beyond => None,
                };
                let view = s.replica_view(replica, incarnation);
                if view.epoch != writer_epoch {
                    return;
                }
                let in_order = record.lsn == view.applied.next();
                let earlier_match = digest_before.is_none_or(|digest| {
                    view.folded = false;
                    digest == Some(view.digest)
                });
                view.applied = record.lsn;
                view.owed.insert(record.lsn);
                view.digest = chain(view.digest, &record);
                let is_writers = match lookup {
                    Lookup::Record(r) => r == record,
                    // Judged by digest where this incarnation's applies reach the window.
                    Lookup::Folded => {
                        view.folded = true;
                        true
                    }
                    Lookup::Beyond => false,
                };
                let matches = in_order && earlier_match && is_writers;
                let sent = s.sent;
                if !replica_prefix(record.lsn, matches, sent) {
                    let d = format!(
                        "{replica} applied {record:?} (writer's: {lookup:?}, in order: {in_order}) \
                         with acks sent {sent:?}"
                    );
                    self.violate(s, REPLICA_PREFIX, d);
                }
            }
            Event::Discarded { replica, lsn } => {
                if s.stale(replica) {
                    return;
                }
                s.discards += 1;
                if let Some(view) = s.replicas.get_mut(&replica) {
                    view.owed.remove(&lsn);
                }
                let disks = s.synced.iter().filter(|l| **l >= lsn).count();
                if !discard_is_safe(lsn, quorum_watermark(s.synced)) {
                    let d = format!(
                        "{replica} discarded {lsn} while only {disks} disks hold it (synced {:?})",
                        s.synced
                    );
                    self.violate(s, NO_DISCARD_BEFORE_FLUSH, d);
                }
            }
            Event::ReplicaDurable {
                replica,
                incarnation,
                lsn,
            } => {
                let writer_epoch = s.epoch;
                let view = s.replica_view(replica, incarnation);
                if view.epoch != writer_epoch {
                    return;
                }
                let before = view.durable;
                view.durable = view.durable.max(lsn);
                if !never_decreases(before, lsn) {
                    let d = format!("{replica} durable LSN {before} -> {lsn}");
                    self.violate(s, DURABLE_LSN_MONOTONIC, d);
                }
            }
            // A restart, or a start-over in a newer epoch: a new incarnation that knows nothing.
            Event::ReplicaRestarted {
                replica,
                incarnation,
            } => {
                let epoch = s.replicas.get(&replica).map_or(s.start, |v| v.epoch);
                s.replicas
                    .insert(replica, ReplicaSeen::fresh(incarnation, epoch));
            }
            Event::ReplicaFollows {
                replica,
                incarnation,
                epoch,
            } => {
                s.replicas
                    .insert(replica, ReplicaSeen::fresh(incarnation, epoch));
            }
            Event::FailedOver { epoch } => {
                // The failed writer's commit point is what clients were told; the new writer
                // has committed nothing, and no node has acknowledged anything in its epoch.
                s.acked = (s.commit, std::mem::take(&mut s.log));
                s.epoch = epoch;
                s.failed_over = true;
                s.commit = Lsn::ZERO;
                s.truthful = [Lsn::ZERO; STORAGE_NODES];
                s.sent = [Lsn::ZERO; STORAGE_NODES];
            }
            Event::Recovered {
                epoch,
                point,
                ref log,
            } => {
                // CommittedSurvivesRecovery: every acknowledged LSN, as the same record.
                let (acked, ref acked_log) = s.acked;
                let at = |l: Lsn| log.get(l.0 as usize - 1).copied().filter(|_| l <= point);
                // LSNs the acked log folded cannot be judged record by record: they count as
                // unjudged, and are taken as recovered so the rest is judged.
                let folded = acked_log.base().min(acked);
                let lost = first_lost_commit(
                    acked,
                    |l: Lsn| match acked_log.lookup(l) {
                        Lookup::Folded => at(l),
                        Lookup::Record(r) => Some(r),
                        Lookup::Beyond => None,
                    },
                    |l| at(l).map(Some),
                );
                if let Some(lsn) = lost {
                    let d = format!(
                        "the recovery of {epoch} at {point} lost committed LSN {lsn} (acked {acked}: {:?}, recovered {:?})",
                        acked_log.get(lsn),
                        at(lsn)
                    );
                    self.violate(s, COMMITTED_SURVIVES_RECOVERY, d);
                }
                s.unjudged += folded.0;
                s.log = GhostLog::of(log.iter().copied());
            }
            Event::Sealed {
                node,
                epoch,
                point,
                ref tail,
            } => {
                let i = node.index();
                s.synced[i] = point;
                s.held[i] = point;
                if epoch == s.epoch {
                    s.truthful[i] = s.truthful[i].max(point);
                    s.sent[i] = s.sent[i].max(point);
                    let log = &s.log;
                    // Records the log has folded cannot be judged here: counted as unjudged.
                    let base = log.base();
                    let folded = tail.iter().filter(|r| r.lsn <= base).count() as u64;
                    let copy = tail
                        .iter()
                        .filter(|r| r.lsn > base)
                        .map(|r| (r.lsn, r.epoch));
                    let of_log = |l: Lsn| log.get(l).map(|r| r.epoch);
                    let disagreement = first_disagreement(of_log, copy);
                    s.unjudged += folded;
                    if let Some(lsn) = disagreement {
                        let d = format!(
                            "{node} sealed {epoch} at {point} but still holds a record at {lsn} that is not the writer's"
                        );
                        self.violate(s, LOG_AGREEMENT, d);
                    }
                }
            }
            Event::Took {
                node,
                adopted,
                record,
            } => {
                if !epoch_fencing(adopted, record.epoch) {
                    let d = format!("{node}, having adopted {adopted}, took {record}");
                    self.violate(s, EPOCH_FENCING, d);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_redo_model::state::record_for;

    /// A replica that learned a commit point before a failover (which shows no event) and applies
    /// an old-epoch record after it follows the old epoch: its apply is not judged against the
    /// new writer's log. Once it follows the new epoch, it is.
    #[test]
    fn a_replica_first_heard_of_after_a_failover_follows_the_old_epoch() {
        let monitor = Monitor::new(false);
        let (r0, old) = (ReplicaId(0), record_for(Epoch::FIRST, Lsn(1)));
        monitor.observe(&Event::Appended(old));
        monitor.observe(&Event::FailedOver {
            epoch: Epoch::numbered(1),
        });
        monitor.observe(&Event::Applied {
            replica: r0,
            incarnation: 0,
            record: old,
        });
        assert_eq!(monitor.violations(), Vec::new());
        monitor.observe(&Event::ReplicaFollows {
            replica: r0,
            incarnation: 1,
            epoch: Epoch::numbered(1),
        });
        monitor.observe(&Event::Applied {
            replica: r0,
            incarnation: 1,
            record: old,
        });
        let broken: Vec<_> = monitor.violations().iter().map(|v| v.invariant).collect();
        assert_eq!(broken, vec![REPLICA_PREFIX]);
    }

    /// The writer creates `n` records, all acknowledged by every node.
    fn written(n: u64) -> Monitor {
        let monitor = Monitor::new(false);
        for lsn in 1..=n {
            monitor.observe(&Event::Appended(record_for(Epoch::FIRST, Lsn(lsn))));
        }
        for node in NodeId::all() {
            monitor.observe(&Event::Acked {
                node,
                sent: Lsn(n),
                held: Lsn(n),
                epoch: Epoch::FIRST,
            });
        }
        monitor
    }

    /// `replica`'s incarnation `incarnation` applies `1..=n`, with `wrong` (if any) carrying
    /// another value.
    fn apply(monitor: &Monitor, incarnation: u32, n: u64, wrong: Option<u64>) {
        for lsn in 1..=n {
            let mut record = record_for(Epoch::FIRST, Lsn(lsn));
            if Some(lsn) == wrong {
                record.value += 1;
            }
            monitor.observe(&Event::Applied {
                replica: ReplicaId(0),
                incarnation,
                record,
            });
        }
    }

    fn broken(monitor: &Monitor) -> Vec<&'static str> {
        monitor.violations().iter().map(|v| v.invariant).collect()
    }

    /// Memory: a run of three windows keeps one window of records, and a replica that applies
    /// all of them, keeping up or catching up from nothing later, is judged with nothing unjudged.
    #[test]
    fn a_long_run_keeps_one_window_and_still_judges_every_apply() {
        let n = 3 * GhostLog::WINDOW as u64;
        let monitor = written(n);
        apply(&monitor, 0, n, None);
        monitor.observe(&Event::ReplicaRestarted {
            replica: ReplicaId(0),
            incarnation: 1,
        });
        apply(&monitor, 1, n, None);
        let stats = monitor.stats();
        assert_eq!((stats.kept, stats.appended), (GhostLog::WINDOW, n));
        assert_eq!((broken(&monitor), stats.unjudged), (vec![], 0));
    }

    /// A wrong value is caught record by record inside the window, and at the page level when a
    /// replica that applied it below the window reaches the window.
    #[test]
    fn a_wrong_apply_is_caught_inside_and_below_the_window() {
        let n = 3 * GhostLog::WINDOW as u64;
        let inside = written(n);
        apply(&inside, 0, n, Some(n - 5));
        assert_eq!(broken(&inside), vec![REPLICA_PREFIX]);

        let below = written(n);
        apply(&below, 0, n, Some(17));
        let violations = below.violations();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].invariant, REPLICA_PREFIX);
        // Judged where the log's one-by-one records begin.
        let first_kept = n - GhostLog::WINDOW as u64 + 1;
        assert!(violations[0].detail.contains(&format!("lsn: {first_kept}")));
    }
}
