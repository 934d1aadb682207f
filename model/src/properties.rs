//! The properties checked on every configuration: the six safety invariants, the quiescence
//! invariant, the reachability facts, and liveness (`EventuallyConverged`).
//!
//! Each safety invariant is defined once, in [`crate::invariants`], as a predicate over ground
//! truth. This module applies it to model states. Two invariants are about *moments* rather than
//! states (a discard; a watermark moving), so the model judges them when the moment happens (the
//! ghost bookkeeping in [`crate::state`], `State::judge_*`) and records the verdict in a one-way
//! ghost flag, which the properties here read.
//!
//! Only the model (`RedoModel::properties`) and the checker's reports use this module; no rule
//! does.

use crate::config::{AckPolicy, Config};
use crate::invariants::{
    commit_backed_by_quorum, discard_is_safe, first_disagreement, first_lost_commit,
    first_unreadable, replica_prefix, retained_unless_discarded, COMMITTED_RECOVERABLE,
    COMMITTED_SURVIVES_RECOVERY, COMMIT_ONLY_AFTER_QUORUM, DURABLE_LSN_MONOTONIC, EPOCH_FENCING,
    LOG_AGREEMENT, NO_DISCARD_BEFORE_FLUSH, QUIESCENCE_CONVERGES, REPLICA_PREFIX,
    RETAIN_UNTIL_DURABLE,
};
use crate::model::RedoModel;
use crate::quorum::quorum_watermark;
use crate::state::{Flags, NodeStatus, State};
use crate::types::{Epoch, Lsn, NodeId, ReplicaId, READ_QUORUM};
use stateright::Property;

// Property names, as printed by the tool and accepted by `--expect-violation`. The invariants'
// names sit beside their predicates in `crate::invariants`; these are the model's own facts.

/// Reachability: a replica applied a record before it was durable.
pub const APPLIED_BEFORE_DURABLE: &str = "ReplicaAppliedBeforeDurable";
/// Reachability: a committed record was on no disk.
pub const COMMITTED_ON_NO_DISK: &str = "CommittedOnNoDisk";
/// Reachability: a replica discarded a record it applied.
pub const REPLICA_DISCARDED: &str = "ReplicaDiscarded";
/// Reachability: a restarted replica caught up with the commit point.
pub const RESTARTED_REPLICA_CAUGHT_UP: &str = "RestartedReplicaCaughtUp";
/// Reachability: the commit point advanced after a storage crash.
pub const COMMIT_AFTER_STORAGE_CRASH: &str = "CommitAfterStorageCrash";
/// Reachability: a new writer finished recovery and committed a record of its own epoch.
pub const COMMIT_AFTER_RECOVERY: &str = "CommitAfterRecovery";
/// Reachability: once a recovery has fixed its point, a node it has yet to seal holds an old
/// record above the point, which the truncation will annul.
pub const RECOVERY_TRUNCATES: &str = "RecoveryTruncates";

/// Liveness: every run eventually has every record written, committed, durable on 4 disks and
/// applied by every replica. Discarding is left to [`QUIESCENCE_CONVERGES`] (`docs/protocol.md`,
/// "Liveness"): a run that stops before it discards everything ends quiescent, which that
/// invariant judges.
pub const EVENTUALLY_CONVERGED: &str = "EventuallyConverged";

/// The properties of a configuration. Reachability facts are listed only where the configuration
/// makes them possible, and liveness only where it applies (see [`Config::liveness_applies`]).
pub fn properties(config: &Config) -> Vec<Property<RedoModel>> {
    let mut properties = vec![
        Property::always(NO_DISCARD_BEFORE_FLUSH, |_, s| {
            no_discard_before_flush_evidence(s).is_empty()
        }),
        Property::always(COMMIT_ONLY_AFTER_QUORUM, |_, s| {
            commit_only_after_quorum_evidence(s).is_empty()
        }),
        Property::always(DURABLE_LSN_MONOTONIC, |_, s| {
            durable_lsn_monotonic_evidence(s).is_empty()
        }),
        Property::always(REPLICA_PREFIX, |_, s| replica_prefix_evidence(s).is_empty()),
        Property::always(RETAIN_UNTIL_DURABLE, |_, s| {
            retain_until_durable_evidence(s).is_empty()
        }),
        Property::always(COMMITTED_RECOVERABLE, |_, s| {
            committed_recoverable_evidence(s).is_empty()
        }),
        Property::always(COMMITTED_SURVIVES_RECOVERY, |_, s| {
            committed_survives_recovery_evidence(s).is_empty()
        }),
        Property::always(EPOCH_FENCING, |_, s| epoch_fencing_evidence(s).is_empty()),
        Property::always(LOG_AGREEMENT, |_, s| log_agreement_evidence(s).is_empty()),
        Property::always(QUIESCENCE_CONVERGES, |m, s| {
            quiescence_converges_evidence(m, s).is_empty()
        }),
        Property::sometimes(REPLICA_DISCARDED, replica_discarded),
    ];
    // Under ack `disk` a commit needs 4 disks, so nothing committed is ever off disk and no
    // replica ever applies a record that is not durable: these two are memory-ack facts.
    if config.ack == AckPolicy::Memory {
        properties.extend([
            Property::sometimes(APPLIED_BEFORE_DURABLE, applied_before_durable),
            Property::sometimes(COMMITTED_ON_NO_DISK, committed_on_no_disk),
        ]);
    }
    if config.replica_crashes > 0 {
        properties.push(Property::sometimes(
            RESTARTED_REPLICA_CAUGHT_UP,
            restarted_replica_caught_up,
        ));
    }
    if config.storage_crashes > 0 {
        properties.push(Property::sometimes(
            COMMIT_AFTER_STORAGE_CRASH,
            commit_after_storage_crash,
        ));
    }
    if config.writer_crashes > 0 {
        properties.extend([
            Property::sometimes(COMMIT_AFTER_RECOVERY, commit_after_recovery),
            Property::sometimes(RECOVERY_TRUNCATES, recovery_truncates),
        ]);
    }
    if config.liveness_applies() {
        properties.push(Property::eventually(EVENTUALLY_CONVERGED, |m, s| {
            eventually_converged_evidence(m, s).is_empty()
        }));
    }
    properties
}

/// What each property protects, printed beside a counterexample.
pub fn explain(name: &str) -> &'static str {
    match name {
        NO_DISCARD_BEFORE_FLUSH => {
            "A replica discarded a record before it was on the disks of 4 nodes. The seed promises \
             replicas discard only after flush confirmation; a replica that frees a record no \
             disk quorum holds may drop the last copy a reader or recovery needs."
        }
        COMMIT_ONLY_AFTER_QUORUM => {
            "The writer committed an LSN that 4 nodes did not truly acknowledge (each holding every \
             record up to it when it acked). A client was told its write is safe when no write \
             quorum had it."
        }
        DURABLE_LSN_MONOTONIC => {
            "A durable LSN (the volume's, or a replica's within one incarnation) or the writer's \
             commit point moved backwards. Whoever acted on the old value (a discard, a client \
             acknowledgement) acted on a promise that was taken back."
        }
        REPLICA_PREFIX => {
            "A replica's applied records are not exactly the writer's records 1..=applied, or it \
             applied past the commit point: a read on the replica can see a gap, a reordering, or \
             an uncommitted write."
        }
        RETAIN_UNTIL_DURABLE => {
            "A replica's retain buffer lost an applied record the discard rule never freed (or \
             holds one it never applied): the discard rule is the only gate that checks a record \
             is durable, so a record that leaves any other way may be the last copy."
        }
        COMMITTED_RECOVERABLE => {
            "A committed record is held by so few nodes that some read quorum of 3 surviving nodes \
             contains none of them: crash recovery, which reads a quorum, can lose a committed \
             write. Under ack `memory` this is the cost of committing before the disk write."
        }
        COMMITTED_SURVIVES_RECOVERY => {
            "A recovery fixed a recovery point that leaves out a record a client was told is \
             committed (or keeps a different record under its LSN): the new writer's log takes \
             back an acknowledged write, and a replica that served it now disagrees with the log."
        }
        EPOCH_FENCING => {
            "A storage node took a record of an older epoch after adopting a newer one: a writer \
             presumed dead (a zombie, or its messages still in flight) slipped a write past the \
             recovery that fenced it, and could count that node's acknowledgement."
        }
        LOG_AGREEMENT => {
            "A node that speaks for the writer's epoch, or a replica that follows it, holds a record \
             the writer's log does not have under that LSN: an annulled record resurfaced, and two \
             readers can see two different histories."
        }
        QUIESCENCE_CONVERGES => {
            "The system went quiet (the writer done, nothing to deliver, flush, learn or pull \
             changes anything, no fault active) before every record was committed and every \
             replica applied and discarded every record: progress, or the clean-up, is stuck."
        }
        EVENTUALLY_CONVERGED => {
            "A run ended without every record written, committed, durable on 4 disks and applied \
             by every replica: a client write, or a reader, waits forever."
        }
        _ => "A reachability fact: an example shows the situation can happen.",
    }
}

// ---------------------------------------------------------------------------------------------
// Safety invariants (`always`).
//
// Each invariant is its evidence function: the property holds exactly when the evidence is empty,
// and the evidence says, in words, what the predicate compared when it failed. The Explorer's
// state view and diagrams show it (`crate::view`, `crate::render`).

/// A property a state violates, with the evidence and what the property protects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub property: &'static str,
    /// What the predicate compared, one finding per line.
    pub evidence: Vec<String>,
}

impl Violation {
    /// What the property protects ([`explain`]).
    pub fn protects(&self) -> &'static str {
        explain(self.property)
    }
}

/// An invariant's evidence function: empty exactly when the invariant holds.
type Evidence = fn(&State) -> Vec<String>;

/// The evidence functions of the nine safety invariants, which need only the state.
const STATE_INVARIANTS: [(&str, Evidence); 9] = [
    (NO_DISCARD_BEFORE_FLUSH, no_discard_before_flush_evidence),
    (COMMIT_ONLY_AFTER_QUORUM, commit_only_after_quorum_evidence),
    (DURABLE_LSN_MONOTONIC, durable_lsn_monotonic_evidence),
    (REPLICA_PREFIX, replica_prefix_evidence),
    (RETAIN_UNTIL_DURABLE, retain_until_durable_evidence),
    (COMMITTED_RECOVERABLE, committed_recoverable_evidence),
    (
        COMMITTED_SURVIVES_RECOVERY,
        committed_survives_recovery_evidence,
    ),
    (EPOCH_FENCING, epoch_fencing_evidence),
    (LOG_AGREEMENT, log_agreement_evidence),
];

/// The safety invariants a state violates, judged from the state alone (all but
/// QuiescenceConverges, which needs the model's enabled steps: see [`violations`]).
pub fn state_violations(s: &State) -> Vec<Violation> {
    STATE_INVARIANTS
        .iter()
        .filter_map(|(property, evidence)| {
            let evidence = evidence(s);
            (!evidence.is_empty()).then_some(Violation { property, evidence })
        })
        .collect()
}

/// Every invariant (`always` property) a state of `model` violates, with its evidence, in the
/// order of [`properties`].
pub fn violations(model: &RedoModel, s: &State) -> Vec<Violation> {
    let mut found = state_violations(s);
    let evidence = quiescence_converges_evidence(model, s);
    if !evidence.is_empty() {
        found.push(Violation {
            property: QUIESCENCE_CONVERGES,
            evidence,
        });
    }
    found
}

/// Nodes, as `S0, S3`, or "no node".
fn node_list(nodes: impl Iterator<Item = NodeId>) -> String {
    let names: Vec<String> = nodes.map(|n| n.to_string()).collect();
    if names.is_empty() {
        "no node".to_string()
    } else {
        names.join(", ")
    }
}

/// Who has had `lsn` on disk (a destroyed disk counting for what it held), as what
/// `State::durable_so_far` counts: "only S0, S1 have had it on disk".
fn had_on_disk(s: &State, lsn: Lsn) -> String {
    let nodes: Vec<NodeId> = NodeId::all()
        .filter(|n| s.ghost.disk_high[n.index()] >= lsn)
        .collect();
    match nodes.len() {
        0 => "no node has had it on disk".to_string(),
        1 => format!("only {} has had it on disk", nodes[0]),
        _ => format!("only {} have had it on disk", node_list(nodes.into_iter())),
    }
}

/// **1. NoDiscardBeforeFlush**: every discard so far was of a record on 4 disks (judged at the
/// discard, by `State::judge_discard`, which sets the ghost flag this reads). The evidence names
/// the records a replica discarded through the discard rule that are still not durable: their
/// discard cannot have been safe, since what is durable only grows.
fn no_discard_before_flush_evidence(s: &State) -> Vec<String> {
    if !s.ghost.flags.contains(Flags::UNSAFE_DISCARD) {
        return Vec::new();
    }
    let durable = s.durable_so_far();
    let mut evidence: Vec<String> = replicas(s)
        .flat_map(|(r, replica)| {
            replica
                .discarded
                .iter()
                .filter(|&lsn| !discard_is_safe(lsn, durable))
                .map(move |lsn| (r, lsn))
        })
        .map(|(r, lsn)| {
            format!(
                "{r} discarded LSN {lsn}, but {} (durable so far {durable}; 4 disks needed)",
                had_on_disk(s, lsn)
            )
        })
        .collect();
    if evidence.is_empty() {
        evidence.push(
            "a replica discarded a record that was not on 4 disks (judged at the discard; the \
             diagram marks the step)"
                .to_string(),
        );
    }
    evidence
}

fn replicas(s: &State) -> impl Iterator<Item = (ReplicaId, &crate::state::Replica)> {
    s.replicas
        .iter()
        .enumerate()
        .map(|(i, r)| (ReplicaId(i as u8), r))
}

/// **2. CommitOnlyAfterQuorum**: the writer's commit point is backed by 4 truthful acks. The
/// evidence names the first committed LSN without them and the nodes that truly acked it.
fn commit_only_after_quorum_evidence(s: &State) -> Vec<String> {
    let (commit, acks) = (s.writer.commit, s.ghost.truthful_ack);
    if commit_backed_by_quorum(commit, acks) {
        return Vec::new();
    }
    let lsn = commit
        .prefix()
        .find(|&l| !commit_backed_by_quorum(l, acks))
        .unwrap_or(commit);
    let acked = NodeId::all().filter(|n| acks[n.index()] >= lsn);
    vec![format!(
        "commit point {commit}, but only {} truly acked LSN {lsn} (held 1..={lsn} when acking; 4 \
         needed)",
        node_list(acked)
    )]
}

/// **3. DurableLsnMonotonic**: no watermark has moved backwards (judged per step, by
/// `State::judge_step`, which sets the ghost flag this reads).
fn durable_lsn_monotonic_evidence(s: &State) -> Vec<String> {
    if !s.ghost.flags.contains(Flags::REGRESSED) {
        return Vec::new();
    }
    vec![format!(
        "a watermark moved backwards at an earlier step (judged at the step; the diagram marks \
         it); now: commit point {}, volume durable {}, {}",
        s.writer.commit,
        s.volume_durable(),
        replicas(s)
            .map(|(r, replica)| format!("{r} durable {}", replica.durable))
            .collect::<Vec<_>>()
            .join(", ")
    )]
}

/// **4. ReplicaPrefix**: each replica shows exactly the writer's records up to what it applied,
/// which is within the ground-truth commit point.
fn replica_prefix_evidence(s: &State) -> Vec<String> {
    let mut evidence = Vec::new();
    for (r, replica) in replicas(s) {
        let expected = State::writer_pages(replica.applied);
        let image_matches = replica.pages == expected;
        let acks = s.acks_in(replica.epoch);
        if replica_prefix(replica.applied, image_matches, acks) {
            continue;
        }
        if !image_matches {
            evidence.push(format!(
                "{r}'s pages show LSNs {:?}, but records 1..={} give {expected:?}",
                replica.pages, replica.applied
            ));
        }
        let sent = quorum_watermark(acks);
        if replica.applied > sent {
            evidence.push(format!(
                "{r} applied up to LSN {}, but 4 nodes have acked only up to {sent} (4th-highest \
                 SCL sent)",
                replica.applied
            ));
        }
    }
    evidence
}

/// **5. RetainUntilDurable**: each replica retains exactly the records it applied that the
/// discard rule has not freed (in this incarnation).
fn retain_until_durable_evidence(s: &State) -> Vec<String> {
    replicas(s)
        .flat_map(|(r, replica)| {
            let top = replica.applied.max(replica.retained.max());
            top.prefix().filter_map(move |lsn| {
                let applied = lsn <= replica.applied;
                let discarded = replica.discarded.contains(lsn);
                let retained = replica.retained.contains(lsn);
                if retained_unless_discarded(applied, discarded, retained) {
                    None
                } else if retained {
                    Some(format!("{r} retains LSN {lsn}, which it has not applied"))
                } else {
                    Some(format!(
                        "{r} applied LSN {lsn} and no longer retains it, but the discard rule \
                         never freed it"
                    ))
                }
            })
        })
        .collect()
}

/// **6. CommittedRecoverable**: every committed record is readable by every read quorum of
/// surviving nodes. The evidence names the first committed record some read quorum misses.
fn committed_recoverable_evidence(s: &State) -> Vec<String> {
    let Some((lsn, holders, surviving)) = first_unreadable(s.writer.commit, |l| s.holders(l))
    else {
        return Vec::new();
    };
    let held: Vec<NodeId> = NodeId::all().filter(|&n| s.holds(n, lsn)).collect();
    let missing = NodeId::all()
        .filter(|&n| s.node(n).status != NodeStatus::Lost && !held.contains(&n))
        .take(READ_QUORUM);
    vec![format!(
        "LSN {lsn} is committed (commit point {}), but only {} of {surviving} surviving nodes hold \
         it ({}): the read quorum {} misses it",
        s.writer.commit,
        holders,
        node_list(held.iter().copied()),
        node_list(missing)
    )]
}

/// **7. CommittedSurvivesRecovery**: every recovery point so far kept every record acknowledged to
/// a client before its failover (judged when the point was fixed, by `writer::read`, which sets
/// the ghost flag this reads). The evidence names the first acknowledged LSN the current writer's
/// log lacks.
fn committed_survives_recovery_evidence(s: &State) -> Vec<String> {
    if !s.ghost.flags.contains(Flags::COMMIT_LOST) {
        return Vec::new();
    }
    let (acked, log) = (s.ghost.acked, s.ghost.acked_log);
    match first_lost_commit(acked, |l| log.get(l), |l| s.writer.record(l)) {
        Some(lsn) => vec![format!(
            "LSN {lsn} was acknowledged to a client (commit point {acked} before the failover), \
             but recovery fixed the recovery point at {} and the new log {}",
            s.writer.point,
            if lsn > s.writer.point {
                "truncates it".to_string()
            } else {
                format!("holds a different record under LSN {lsn}")
            }
        )],
        None => vec![
            "a recovery point left out an acknowledged commit (judged when the point was fixed; \
             the diagram marks the step)"
                .to_string(),
        ],
    }
}

/// **8. EpochFencing**: no node has taken a record of an older epoch than its own (judged when
/// the node took it, by `storage::on_append`).
fn epoch_fencing_evidence(s: &State) -> Vec<String> {
    if !s.ghost.flags.contains(Flags::FENCE_BROKEN) {
        return Vec::new();
    }
    let stale: Vec<String> = NodeId::all()
        .flat_map(|n| {
            let node = s.node(n);
            node.held()
                .iter()
                .filter(move |&l| node.epochs.get(l) < node.epoch)
                .map(move |l| {
                    format!(
                        "{n} (epoch {}) holds LSN {l} of {}",
                        node.epoch,
                        node.epochs.get(l)
                    )
                })
        })
        .collect();
    if stale.is_empty() {
        vec![
            "a node took a record of an older epoch after adopting a newer one (judged when it \
              took it; the diagram marks the step)"
                .to_string(),
        ]
    } else {
        stale
    }
}

/// **9. LogAgreement**: every node that speaks for the writer's epoch, and every replica that
/// follows it, holds only the writer's log's records. (In the first epoch every record is the
/// first writer's, so only a recovery can break it.)
fn log_agreement_evidence(s: &State) -> Vec<String> {
    let writer = &s.writer;
    if writer.epoch == Epoch::FIRST {
        return Vec::new();
    }
    let log = |l: Lsn| writer.record(l);
    let describe = |l: Lsn, had: Epoch| match log(l) {
        Some(e) => format!("LSN {l} of {had}, but the writer's log has LSN {l} of {e}"),
        None => format!(
            "LSN {l} of {had}, above the writer's log (written {})",
            writer.written
        ),
    };
    let mut evidence = Vec::new();
    for n in NodeId::all() {
        let node = s.node(n);
        if node.status == NodeStatus::Lost || !node.speaks() || node.epoch != writer.epoch {
            continue;
        }
        let copy = node.held().iter().map(|l| (l, node.epochs.get(l)));
        if let Some(l) = first_disagreement(log, copy) {
            evidence.push(format!("{n} holds {}", describe(l, node.epochs.get(l))));
        }
    }
    for (r, replica) in replicas(s) {
        if replica.epoch != writer.epoch {
            continue;
        }
        let copy = replica
            .applied
            .prefix()
            .map(|l| (l, replica.applied_epochs.get(l)));
        if let Some(l) = first_disagreement(log, copy) {
            evidence.push(format!(
                "{r} applied {}",
                describe(l, replica.applied_epochs.get(l))
            ));
        }
    }
    evidence
}

/// **Quiescence**: in a fault-free state where the writer has written everything, no flush or pull
/// is enabled and no delivery would change anything, every record is committed and every replica
/// has applied and discarded everything. It judges every such state, also one reached after the
/// run had converged once, and also where liveness is not claimed (the runs without a fault).
fn quiescence_converges_evidence(model: &RedoModel, s: &State) -> Vec<String> {
    let written = s.writer.written;
    let converged = s.writer.commit == written
        && s.replicas
            .iter()
            .all(|r| r.applied == written && r.retained.is_empty());
    if converged || !model.is_quiescent(s) {
        return Vec::new();
    }
    let mut evidence = vec![format!(
        "nothing can happen any more (no fault, no step changes anything), yet: commit point {} \
         of {written} written",
        s.writer.commit
    )];
    for (r, replica) in replicas(s) {
        evidence.push(format!(
            "{r} applied {}, retains {:?}",
            replica.applied, replica.retained
        ));
    }
    evidence
}

/// **EventuallyConverged**'s condition, as evidence: what is still missing in a state (empty once
/// every record is written, committed, durable on 4 disks and applied by every replica). A run
/// violates the property when it ends with this never empty; the report shows it for the last
/// state.
pub fn eventually_converged_evidence(model: &RedoModel, s: &State) -> Vec<String> {
    let (written, lsns) = (s.writer.written, model.config.lsns);
    let mut missing = Vec::new();
    if written.0 < lsns as u64 {
        missing.push(format!("written {written} of {lsns} records"));
    }
    if s.writer.commit < written || written.0 < lsns as u64 {
        missing.push(format!("commit point {}", s.writer.commit));
    }
    let durable = s.volume_durable();
    if durable < written || written.0 < lsns as u64 {
        missing.push(format!("volume durable {durable}"));
    }
    for (r, replica) in replicas(s) {
        if replica.applied < written || written.0 < lsns as u64 {
            missing.push(format!("{r} applied {}", replica.applied));
        }
    }
    missing
}

// ---------------------------------------------------------------------------------------------
// Reachability (`sometimes`): the invariants are not vacuous.

/// A replica has applied a record that is not yet durable (speculative apply happens).
fn applied_before_durable(_: &RedoModel, s: &State) -> bool {
    let durable = s.volume_durable();
    s.replicas.iter().any(|r| r.applied > durable)
}

/// The writer has committed an LSN that no disk holds (the seed's memory-only commit).
fn committed_on_no_disk(_: &RedoModel, s: &State) -> bool {
    s.writer
        .commit
        .prefix()
        .any(|lsn| s.disks_holding(lsn) == 0)
}

/// A replica has discarded a record it applied.
fn replica_discarded(_: &RedoModel, s: &State) -> bool {
    s.replicas
        .iter()
        .any(|r| r.applied.prefix().any(|lsn| !r.retained.contains(lsn)))
}

/// A restarted replica has caught up with the writer's commit point again.
fn restarted_replica_caught_up(_: &RedoModel, s: &State) -> bool {
    let commit = s.writer.commit;
    s.replicas
        .iter()
        .any(|r| r.incarnation > 0 && commit > Lsn::ZERO && r.applied >= commit)
}

/// The writer's commit point advanced after a storage crash.
fn commit_after_storage_crash(_: &RedoModel, s: &State) -> bool {
    s.ghost.flags.contains(Flags::COMMIT_AFTER_CRASH)
}

/// A writer that recovered the volume committed a record of its own, above its recovery point.
fn commit_after_recovery(_: &RedoModel, s: &State) -> bool {
    s.writer.epoch > Epoch::FIRST && s.writer.commit > s.writer.point
}

/// Once a recovery has fixed its point, a node it has yet to seal holds an older record above the
/// point: the truncation has something to annul.
fn recovery_truncates(_: &RedoModel, s: &State) -> bool {
    let (writer, point) = (&s.writer, s.writer.point);
    let point_fixed = writer.phase != crate::state::Phase::Reading;
    writer.epoch > Epoch::FIRST
        && point_fixed
        && s.nodes.iter().any(|n| {
            n.sealed < writer.epoch
                && n.held()
                    .iter()
                    .any(|l| l > point && n.epochs.get(l) < writer.epoch)
        })
}
