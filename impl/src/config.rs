//! Engine configuration: the ack policy and the seeded implementation bugs.

use aurora_redo_model::types::{Epoch, Lsn, ReplicaId};
use aurora_redo_model::Bug;

/// When a storage node acknowledges a record: the model's vocabulary, shared as is.
pub use aurora_redo_model::AckPolicy;

/// Seeded implementation bugs. Each one must be caught by the runtime monitor (tests show it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImplBug {
    /// The replica discards retained records on every `Available` it receives, a duplicate
    /// included (caught by NoDiscardBeforeFlush).
    DiscardOnAvailable,
    /// The writer commits at the 3rd-highest ack instead of the 4th (caught by
    /// CommitOnlyAfterQuorum).
    CommitAtThree,
    /// The flusher reports a flush before the fsync returns (caught by NoDiscardBeforeFlush when
    /// the node crashes and loses the unsynced write).
    FlushNotifyBeforeFsync,
    /// The storage node drops records from memory when it hands them to the flusher, before
    /// they are written: for a moment a record is in neither place.
    EvictBeforeFlush,
    /// The storage node frees records from memory when it hands them to the flusher, before the
    /// flush is done: until then a `Pull` finds them neither in memory nor readable on disk.
    FreeBeforeFlush,
    /// The replica trusts the highest single `Flushed` as its durable LSN (caught by
    /// NoDiscardBeforeFlush).
    DurableFromOneNode,
    /// The replica keeps each node's latest `Flushed`, not its highest, so a stale one lowers
    /// its durable LSN (caught by DurableLsnMonotonic).
    DurableLastMessage,
    /// The replica applies records beyond its known commit point (caught by ReplicaPrefix).
    ApplyUncommitted,
    /// The node acks the highest LSN it holds, ignoring holes (caught by CommitOnlyAfterQuorum).
    SclWithHoles,
    /// The read phase stops at 2 answers (caught by CommittedSurvivesRecovery).
    RecoverFromTwo,
    /// The recovery point is the lowest SCL read, not the highest (caught by
    /// CommittedSurvivesRecovery).
    RecoverBelowMaxScl,
    /// A node read by a recovery still takes the old writer's `Append`s until its seal (caught
    /// by EpochFencing).
    AcceptStaleEpoch,
    /// The seal does not annul the old tail above the recovery point (caught by LogAgreement).
    SkipTruncation,
}

impl ImplBug {
    /// The engine's counterpart of a model mutant (`aurora_redo_model::Bug`): the same change,
    /// made in the engine's rule, so a mutant's counterexample can be replayed on the engine.
    /// Most safety mutants have one. None have: the liveness mutants `ignore-flushed` and
    /// `writer-stalls` (their counterexample is a run that goes quiet unfinished, which a replay
    /// cannot tell from one that would finish later); `evict-retained` (not seeded in the
    /// engine); and `shrink-quorum-on-loss` (permanent node loss is not in the engine).
    /// `recover-from-max-scl` needs two recoveries in a row, which the engine's failover tests
    /// do not drive.
    /// `FlushNotifyBeforeFsync`, `EvictBeforeFlush` and `FreeBeforeFlush` have no model mutant:
    /// they break the flusher's handoff, which the model's atomic flush does not split.
    pub fn counterpart_of(bug: Bug) -> Option<ImplBug> {
        match bug {
            Bug::DiscardOnAvailable => Some(ImplBug::DiscardOnAvailable),
            Bug::CommitAtThree => Some(ImplBug::CommitAtThree),
            Bug::DurableFromOneNode => Some(ImplBug::DurableFromOneNode),
            Bug::DurableLastMessage => Some(ImplBug::DurableLastMessage),
            Bug::ApplyUncommitted => Some(ImplBug::ApplyUncommitted),
            Bug::SclWithHoles => Some(ImplBug::SclWithHoles),
            Bug::RecoverFromTwo => Some(ImplBug::RecoverFromTwo),
            Bug::RecoverBelowMaxScl => Some(ImplBug::RecoverBelowMaxScl),
            Bug::AcceptStaleEpoch => Some(ImplBug::AcceptStaleEpoch),
            Bug::SkipTruncation => Some(ImplBug::SkipTruncation),
            Bug::IgnoreFlushed
            | Bug::EvictRetained
            | Bug::ShrinkQuorumOnLoss
            | Bug::WriterStalls
            | Bug::RecoverFromMaxScl => None,
        }
    }
}

/// Configuration shared by the role state machines.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub ack: AckPolicy,
    pub bug: Option<ImplBug>,
    /// The read replicas the storage nodes notify.
    pub replicas: Vec<ReplicaId>,
    /// Most records in one `Records` reply or one retransmission burst.
    pub max_batch: usize,
    /// Most flushed records a storage node keeps cached in memory (the most recent ones); older
    /// flushed records are read back from its segment when a `Pull` needs them.
    pub cache_records: usize,
    /// The epoch the writer writes in: `Epoch::FIRST` on a new volume, the new epoch of its
    /// recovery on a recovered one.
    pub epoch: Epoch,
    /// Where a recovered volume resumes: its recovery point `R`, which the recovery's write phase
    /// made durable on a write quorum. The writer's commit point starts there and its first
    /// record is `R + 1`. `Lsn::ZERO` on a new volume.
    pub resume_at: Lsn,
    /// The LSN allocation limit: a client's append waits while it would take the writer more
    /// than this many records past the volume durable point (4 of 6 nodes flushed). It bounds
    /// what the nodes of that quorum hold unflushed in memory, and so the flush jobs, whatever
    /// the clients offer (Aurora's LAL, against its VDL).
    pub allocation_limit: u64,
}

impl EngineConfig {
    pub fn new(ack: AckPolicy, replicas: usize) -> EngineConfig {
        EngineConfig {
            ack,
            bug: None,
            replicas: (0..replicas as u8).map(ReplicaId).collect(),
            max_batch: 2048,
            cache_records: 1024,
            epoch: Epoch::FIRST,
            resume_at: Lsn::ZERO,
            allocation_limit: 4_096,
        }
    }

    /// The configuration of an engine that carries on a recovered volume: its writer writes in
    /// `epoch` from `at + 1` on, with `1..=at` committed (the storage nodes recover from their
    /// segments as always).
    pub fn resuming(mut self, epoch: Epoch, at: Lsn) -> EngineConfig {
        self.epoch = epoch;
        self.resume_at = at;
        self
    }

    pub fn with_bug(mut self, bug: Option<ImplBug>) -> EngineConfig {
        self.bug = bug;
        self
    }

    pub fn has_bug(&self, bug: ImplBug) -> bool {
        self.bug == Some(bug)
    }
}
