//! What to check: the protocol's switches, the fault budget, the seeded bugs and the presets.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// When a storage node acknowledges a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AckPolicy {
    /// On receipt into memory (the seed's default): commit before any disk write.
    Memory,
    /// After the record is on disk (Aurora SIGMOD 2017 §3.2-3.3).
    Disk,
}

/// What the network may do to a message besides reordering it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkKind {
    /// Unordered; each message is delivered at most once.
    Unordered,
    /// Unordered; a delivered message may be delivered again, any number of times.
    Duplicating,
    /// Unordered; a message may be lost.
    Lossy,
}

/// A seeded bug: a one-line change to the protocol that some invariant must catch.
/// The engine's counterpart of each, where it has one, is named in one place:
/// `aurora_redo_impl::ImplBug::counterpart_of`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// A replica discards retained records as soon as it is told they are `Available`.
    DiscardOnAvailable,
    /// The writer commits at 3 acknowledgements instead of 4.
    CommitAtThree,
    /// A replica trusts the highest single `Flushed` as its durable LSN.
    DurableFromOneNode,
    /// A replica takes the latest `Flushed` per node, not the highest.
    DurableLastMessage,
    /// A replica applies records beyond its known commit point.
    ApplyUncommitted,
    /// A node's SCL is the highest LSN it holds, ignoring holes.
    SclWithHoles,
    /// A replica ignores `Flushed`, so it never learns a durable LSN and never discards: a
    /// liveness bug, for the properties no safety invariant can see.
    IgnoreFlushed,
    /// A replica that retains more than one record evicts the oldest to bound its memory, outside
    /// the discard rule: RetainUntilDurable, and only it, must see it.
    EvictRetained,
    /// Once a node is lost for good (a membership change every actor learns), the writer lowers
    /// its write quorum to 3 of the surviving nodes' acks. Three holders among five survivors
    /// still meet every read quorum of 3, so CommittedRecoverable holds; CommitOnlyAfterQuorum
    /// (4 truthful acks), and only it, must see it.
    ShrinkQuorumOnLoss,
    /// The writer's flow control waits for a `Flushed` of its last record before writing the
    /// next, but storage sends `Flushed` only to replicas: after its first record the writer never
    /// writes again. A liveness bug that leaves the workload unfinished, which
    /// EventuallyConverged, and only it, must see.
    WriterStalls,
    /// Recovery's read phase stops at 2 answers instead of a read quorum of 3: two nodes can miss
    /// a committed record that 4 nodes hold. CommittedSurvivesRecovery must see it.
    RecoverFromTwo,
    /// Recovery takes the lowest SCL of its read quorum as the recovery point instead of the
    /// highest: a committed record held by only one of the three is truncated.
    /// CommittedSurvivesRecovery must see it.
    RecoverBelowMaxScl,
    /// A node that recovery has read (it adopted the new epoch) still takes the old writer's
    /// `Append`s until the write phase reaches it: fencing only at the write phase. EpochFencing,
    /// and only it, must see it.
    AcceptStaleEpoch,
    /// The write phase does not annul the old tail above the recovery point: an old record stays
    /// under an LSN the new writer reuses. LogAgreement, and only it, must see it.
    SkipTruncation,
    /// The recovery point is the highest SCL of every node read, whatever epoch sealed it (the
    /// first such node among equals): a node that a previous recovery never sealed can hold an
    /// annulled tail as long as what the previous writer committed, and wins.
    /// CommittedSurvivesRecovery must see it, with two failovers in a row.
    RecoverFromMaxScl,
}

impl Bug {
    pub const ALL: [Bug; 15] = [
        Bug::DiscardOnAvailable,
        Bug::CommitAtThree,
        Bug::DurableFromOneNode,
        Bug::DurableLastMessage,
        Bug::ApplyUncommitted,
        Bug::SclWithHoles,
        Bug::IgnoreFlushed,
        Bug::EvictRetained,
        Bug::ShrinkQuorumOnLoss,
        Bug::WriterStalls,
        Bug::RecoverFromTwo,
        Bug::RecoverBelowMaxScl,
        Bug::AcceptStaleEpoch,
        Bug::SkipTruncation,
        Bug::RecoverFromMaxScl,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Bug::DiscardOnAvailable => "discard-on-available",
            Bug::CommitAtThree => "commit-at-three",
            Bug::DurableFromOneNode => "durable-from-one-node",
            Bug::DurableLastMessage => "durable-last-message",
            Bug::ApplyUncommitted => "apply-uncommitted",
            Bug::SclWithHoles => "scl-with-holes",
            Bug::IgnoreFlushed => "ignore-flushed",
            Bug::EvictRetained => "evict-retained",
            Bug::ShrinkQuorumOnLoss => "shrink-quorum-on-loss",
            Bug::WriterStalls => "writer-stalls",
            Bug::RecoverFromTwo => "recover-from-two",
            Bug::RecoverBelowMaxScl => "recover-below-max-scl",
            Bug::AcceptStaleEpoch => "accept-stale-epoch",
            Bug::SkipTruncation => "skip-truncation",
            Bug::RecoverFromMaxScl => "recover-from-max-scl",
        }
    }

    /// The invariant that must catch this bug (`docs/protocol.md`, "Seeded bugs").
    pub fn expected_property(self) -> &'static str {
        use crate::invariants::{
            COMMITTED_SURVIVES_RECOVERY, COMMIT_ONLY_AFTER_QUORUM, DURABLE_LSN_MONOTONIC,
            EPOCH_FENCING, LOG_AGREEMENT, NO_DISCARD_BEFORE_FLUSH, QUIESCENCE_CONVERGES,
            REPLICA_PREFIX, RETAIN_UNTIL_DURABLE,
        };
        use crate::properties::EVENTUALLY_CONVERGED;
        match self {
            Bug::DiscardOnAvailable | Bug::DurableFromOneNode => NO_DISCARD_BEFORE_FLUSH,
            Bug::CommitAtThree | Bug::SclWithHoles | Bug::ShrinkQuorumOnLoss => {
                COMMIT_ONLY_AFTER_QUORUM
            }
            Bug::DurableLastMessage => DURABLE_LSN_MONOTONIC,
            Bug::ApplyUncommitted => REPLICA_PREFIX,
            Bug::IgnoreFlushed => QUIESCENCE_CONVERGES,
            Bug::EvictRetained => RETAIN_UNTIL_DURABLE,
            Bug::WriterStalls => EVENTUALLY_CONVERGED,
            Bug::RecoverFromTwo | Bug::RecoverBelowMaxScl | Bug::RecoverFromMaxScl => {
                COMMITTED_SURVIVES_RECOVERY
            }
            Bug::AcceptStaleEpoch => EPOCH_FENCING,
            Bug::SkipTruncation => LOG_AGREEMENT,
        }
    }

    /// Whether the bug is in the recovery rules, so that it shows only with a writer failover.
    pub fn needs_failover(self) -> bool {
        matches!(
            self,
            Bug::RecoverFromTwo
                | Bug::RecoverBelowMaxScl
                | Bug::AcceptStaleEpoch
                | Bug::SkipTruncation
                | Bug::RecoverFromMaxScl
        )
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The named configurations of `aurora-redo check --preset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// No faults, one LSN: a smoke test that runs in a blink.
    Quick,
    /// The seed's protocol (ack `memory`) under the faults it is designed for.
    Default,
    /// Storage crashes on top of the default faults, with ack `disk`.
    Faults,
    /// AZ+1: three nodes lost for good, with ack `disk`.
    AzPlusOne,
    /// Two replicas, three LSNs and a replica crash, ack `disk`: for benchmarks (minutes).
    Full,
    /// A writer failover with a zombie writer and a storage crash, ack `disk`, one LSN: recovery,
    /// fencing and the reuse of an LSN above the recovery point.
    Recovery,
    /// `full` with every fault of the seed's list on top: a storage crash and an AZ outage
    /// besides the replica crash (3 LSNs, 2 replicas, ack `disk`).
    AllFaults,
    /// `recovery` with two LSNs: a failover can now strike between two records, and the new
    /// writer can reuse an LSN that the zombie also writes.
    Recovery2,
}

impl Preset {
    pub const ALL: [Preset; 8] = [
        Preset::Quick,
        Preset::Default,
        Preset::Faults,
        Preset::AzPlusOne,
        Preset::Full,
        Preset::Recovery,
        Preset::AllFaults,
        Preset::Recovery2,
    ];
}

/// A model configuration: how big the system is, which faults may happen (each a bounded count),
/// how the protocol is switched, and which bug, if any, is seeded.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Config {
    /// Records the writer writes: LSNs `1..=lsns`.
    pub lsns: u8,
    /// Read replicas.
    pub replicas: u8,
    /// Storage crashes (memory lost, disk kept), each followed by a restart.
    pub storage_crashes: u8,
    /// Replica crashes (everything lost), each followed by a restart.
    pub replica_crashes: u8,
    /// AZ outages: both nodes of one zone unreachable, then back.
    pub az_outages: u8,
    /// Nodes lost for good, disk and all (3 = AZ+1).
    pub lost_nodes: u8,
    /// Writer failovers: the writer stops and a new one recovers the volume in the next epoch.
    #[serde(default)]
    pub writer_crashes: u8,
    /// Whether a failed-over writer keeps running and sending (cut off from clients, not dead).
    #[serde(default)]
    pub zombie_writer: bool,
    pub ack: AckPolicy,
    pub network: NetworkKind,
    pub bug: Option<Bug>,
    /// Whether faults take no time: a crashed node or replica restarts in the step that crashes
    /// it, and AZ outages, which only delay, are not taken. A reduction that keeps every
    /// invariant's and reachability fact's verdict ([`crate::reduction::Reduction::FaultWindows`]).
    #[serde(default)]
    pub instant_faults: bool,
}

/// The largest LSN count a model state can hold (see `LsnSet`).
pub const MAX_LSNS: u8 = 16;
/// The largest replica count the checker accepts.
pub const MAX_REPLICAS: u8 = 4;

/// The most writer failovers a checked configuration may have. Announcements are remembered for
/// a node's current epoch and the one before it only, and ReplicaPrefix judges a replica by the
/// acknowledgements of the epoch it follows. After two failovers, a replica can still follow an
/// epoch that every node has forgotten, and ReplicaPrefix would then fail without a fault (see
/// `docs/protocol.md`, "Two failovers"). The state itself tells up to
/// [`crate::state::MAX_EPOCHS`] epochs apart.
pub const MAX_SOUND_WRITER_CRASHES: u8 = 1;
const _: () = assert!((MAX_SOUND_WRITER_CRASHES as u32) < crate::state::MAX_EPOCHS);

impl Config {
    pub fn preset(preset: Preset) -> Config {
        let seed = Config {
            lsns: 2,
            replicas: 1,
            storage_crashes: 0,
            replica_crashes: 1,
            az_outages: 1,
            lost_nodes: 0,
            writer_crashes: 0,
            zombie_writer: false,
            ack: AckPolicy::Memory,
            network: NetworkKind::Duplicating,
            bug: None,
            instant_faults: false,
        };
        match preset {
            Preset::Quick => Config {
                lsns: 1,
                replica_crashes: 0,
                az_outages: 0,
                network: NetworkKind::Unordered,
                ..seed
            },
            Preset::Default => seed,
            Preset::Faults => Config {
                storage_crashes: 1,
                ack: AckPolicy::Disk,
                ..seed
            },
            Preset::AzPlusOne => Config {
                lost_nodes: 3,
                replica_crashes: 0,
                az_outages: 0,
                ack: AckPolicy::Disk,
                network: NetworkKind::Unordered,
                ..seed
            },
            Preset::Full => Config {
                lsns: 3,
                replicas: 2,
                az_outages: 0,
                ack: AckPolicy::Disk,
                network: NetworkKind::Unordered,
                ..seed
            },
            Preset::Recovery => Config {
                lsns: 1,
                storage_crashes: 1,
                replica_crashes: 0,
                az_outages: 0,
                writer_crashes: 1,
                zombie_writer: true,
                ack: AckPolicy::Disk,
                network: NetworkKind::Unordered,
                ..seed
            },
            Preset::AllFaults => Config {
                storage_crashes: 1,
                az_outages: 1,
                ..Config::preset(Preset::Full)
            },
            Preset::Recovery2 => Config {
                lsns: 2,
                ..Config::preset(Preset::Recovery)
            },
        }
    }

    /// Rejects configurations the model cannot represent, with a reason fit for a user.
    pub fn validate(&self) -> Result<(), String> {
        if self.lsns == 0 || self.lsns > MAX_LSNS {
            return Err(format!(
                "--lsns must be between 1 and {MAX_LSNS}, not {}",
                self.lsns
            ));
        }
        if self.replicas == 0 || self.replicas > MAX_REPLICAS {
            return Err(format!(
                "--replicas must be between 1 and {MAX_REPLICAS}, not {}",
                self.replicas
            ));
        }
        if self.writer_crashes > MAX_SOUND_WRITER_CRASHES {
            return Err(format!(
                "--writer-crashes is at most {MAX_SOUND_WRITER_CRASHES} for now, not {}: the model \
                 remembers each node's announcements for two epochs, so with two failovers or more \
                 ReplicaPrefix can report a violation that is not one (docs/protocol.md, \"Two \
                 failovers\")",
                self.writer_crashes
            ));
        }
        if self.zombie_writer && self.writer_crashes == 0 {
            return Err(
                "--zombie-writer needs a writer failover (--writer-crashes 1 or more)".into(),
            );
        }
        if self.lost_nodes > 3 {
            return Err(format!(
                "--lost-nodes is at most 3 (AZ+1), not {}: a 4/6 quorum needs 4 nodes",
                self.lost_nodes
            ));
        }
        if self.instant_faults {
            if let Some(refusal) = crate::reduction::Reduction::FaultWindows.refusal(self) {
                return Err(refusal);
            }
        }
        Ok(())
    }

    /// Liveness is claimed only where the protocol can recover by itself: no message loss, no
    /// storage crash and no permanent loss (the writer never re-sends, so those can leave a
    /// record short of a quorum forever), and no writer failover (a recovery can stop short of a
    /// write quorum, and a failed writer's unfinished work is not redone).
    pub fn liveness_applies(&self) -> bool {
        self.network != NetworkKind::Lossy
            && self.storage_crashes == 0
            && self.lost_nodes == 0
            && self.writer_crashes == 0
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lsns={} replicas={} storage-crashes={} replica-crashes={} az-outages={} \
             lost-nodes={} ack={} network={} bug={}",
            self.lsns,
            self.replicas,
            self.storage_crashes,
            self.replica_crashes,
            self.az_outages,
            self.lost_nodes,
            self.ack,
            self.network,
            self.bug.map_or("none", Bug::name),
        )?;
        if self.writer_crashes > 0 {
            write!(
                f,
                " writer-crashes={} zombie-writer={}",
                self.writer_crashes, self.zombie_writer
            )?;
        }
        if self.instant_faults {
            f.write_str(" instant-faults")?;
        }
        Ok(())
    }
}

macro_rules! named_enum {
    ($ty:ty, $what:literal, { $($variant:path => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value's command-line name.
            pub const NAMES: &'static [&'static str] = &[$($name),+];
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $($variant => $name),+ })
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok($variant),)+
                    _ => Err(format!(
                        "unknown {} '{}' (expected one of: {})",
                        $what, s, Self::NAMES.join(", ")
                    )),
                }
            }
        }
    };
}

named_enum!(AckPolicy, "ack policy", { AckPolicy::Memory => "memory", AckPolicy::Disk => "disk" });
named_enum!(NetworkKind, "network", {
    NetworkKind::Unordered => "unordered",
    NetworkKind::Duplicating => "duplicating",
    NetworkKind::Lossy => "lossy",
});
named_enum!(Preset, "preset", {
    Preset::Quick => "quick",
    Preset::Default => "default",
    Preset::Faults => "faults",
    Preset::AzPlusOne => "az-plus-one",
    Preset::Full => "full",
    Preset::Recovery => "recovery",
    Preset::AllFaults => "all-faults",
    Preset::Recovery2 => "recovery-2",
});

impl FromStr for Bug {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Bug::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<_> = Bug::ALL.iter().map(|b| b.name()).collect();
            format!("unknown bug '{s}' (expected one of: {})", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for bug in Bug::ALL {
            assert_eq!(bug.name().parse::<Bug>(), Ok(bug));
        }
        for preset in Preset::ALL {
            assert_eq!(preset.to_string().parse::<Preset>(), Ok(preset));
        }
        assert!("fast".parse::<Preset>().unwrap_err().contains("quick"));
    }

    #[test]
    fn presets_are_valid() {
        for preset in Preset::ALL {
            Config::preset(preset).validate().unwrap();
        }
        let too_many = Config {
            lsns: 40,
            ..Config::preset(Preset::Quick)
        };
        assert!(too_many.validate().is_err());
    }

    /// `all-faults` is `full` with a storage crash and an AZ outage; `recovery-2` is `recovery`
    /// with two LSNs.
    #[test]
    fn the_larger_presets_build_on_the_smaller() {
        let all = Config::preset(Preset::AllFaults);
        assert_eq!((all.lsns, all.replicas), (3, 2));
        assert_eq!(
            (all.storage_crashes, all.az_outages, all.replica_crashes),
            (1, 1, 1)
        );
        assert_eq!(all.ack, AckPolicy::Disk);
        let two = Config::preset(Preset::Recovery2);
        assert_eq!(
            two,
            Config {
                lsns: 2,
                ..Config::preset(Preset::Recovery)
            }
        );
    }
}
