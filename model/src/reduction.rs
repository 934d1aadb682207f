//! Reductions: smaller systems whose verdicts are the verdicts of the one asked about.
//!
//! Symmetry ([`crate::symmetry`]) merges states that are renamings of each other. The two
//! reductions here go further, each by an argument about the protocol's rules that
//! `model/tests/reductions.rs` checks by enumeration on small configurations (the reachable states
//! of both sides, and every property's verdict, seeded bugs included). Neither applies where
//! liveness is claimed (`EventuallyConverged` judges whole runs, and the arguments are about
//! states).
//!
//! # Fault windows ([`Reduction::FaultWindows`]): faults take no time
//! A crashed node or replica, and the two nodes of a zone that is out, only *wait*: while they
//! are down or cut off no rule changes them, and no rule's effect depends on their being down
//! (`reachable`, `is_up` and a replica's `up` appear only in the conditions that enable steps,
//! and a crashed node's memory is empty, so what it holds is its disk either way). So every step
//! taken during a window is also enabled, with the same effect, in the state where the window
//! has ended; and the state during the window differs from that state only in the status fields
//! (`Crashed`, `up: false`, `az_out`) and the outage counter, which no invariant and no
//! reachability fact reads (QuiescenceConverges judges only states with nothing down or out, so
//! it holds vacuously inside a window). With `Config::instant_faults` a crash restarts in the same
//! step, and an AZ outage is not taken: its states are, up to those fields, states without it.
//! Every state is then reachable up to those fields, and every verdict is the same.
//!
//! # One replica ([`Reduction::OneReplica`]): replicas only observe
//! No rule of the writer or of a storage node reads a replica, and no replica's rule reads
//! another replica: a replica's steps change only the replica (and the ghost facts judged about
//! it). So in any run with `N` replicas, the steps of the writer, the nodes and one replica `r`
//! are a run with that replica alone, and it reaches the same storage, writer and replica `r`.
//! Every invariant and reachability fact is a condition on the storage and writer together with
//! each replica on its own (the `replicas` loop of each property), so a state with `N` replicas
//! violates an invariant only if one of its one-replica parts does, and a one-replica state's
//! violation is one with `N` replicas (the others idle, then run to a standstill for
//! QuiescenceConverges). The replica crash budget is shared, and one replica can spend all of it.

use crate::config::{Config, Preset};
use crate::model::Action;
use std::fmt;
use std::str::FromStr;

/// A reduction of the system a check explores (see the module documentation for why each keeps
/// every verdict).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reduction {
    /// Faults take no time: crashes restart at once, AZ outages are not taken.
    FaultWindows,
    /// The replicas are checked one at a time: the configuration with one replica.
    OneReplica,
}

impl Reduction {
    pub const ALL: [Reduction; 2] = [Reduction::FaultWindows, Reduction::OneReplica];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Reduction::FaultWindows => "fault-windows",
            Reduction::OneReplica => "one-replica",
        }
    }

    /// What it does, in a line.
    pub fn describe(self) -> &'static str {
        match self {
            Reduction::FaultWindows => {
                "faults take no time: a crash restarts at once, an AZ outage (which only delays) \
                 is not taken"
            }
            Reduction::OneReplica => {
                "replicas only observe: each is checked with the writer and storage on its own"
            }
        }
    }

    /// Why this reduction cannot be used for `config`, if it cannot.
    pub fn refusal(self, config: &Config) -> Option<String> {
        config.liveness_applies().then(|| {
            format!(
                "the {} reduction keeps the verdicts of invariants and reachability facts, not of \
                 liveness, and this configuration claims liveness (EventuallyConverged): it has \
                 no storage crash, no lost node, no writer failover and no lossy network",
                self.name()
            )
        })
    }

    /// The configuration this reduction checks in place of `config`.
    pub fn apply(self, config: &Config) -> Config {
        match self {
            Reduction::FaultWindows => Config {
                instant_faults: true,
                ..config.clone()
            },
            Reduction::OneReplica => Config {
                replicas: 1,
                ..config.clone()
            },
        }
    }
}

/// The reductions `check` applies to a preset unless told otherwise (`--reduce`): both for
/// `all-faults`, whose full product is past any exhaustive search here, none for the others,
/// so that their pinned state counts are those of the whole system.
pub fn preset_reductions(preset: Preset) -> &'static [Reduction] {
    match preset {
        Preset::AllFaults => &Reduction::ALL,
        _ => &[],
    }
}

/// The configuration to check in place of `config` under `reductions`, or why one of them does
/// not apply.
pub fn reduce(config: &Config, reductions: &[Reduction]) -> Result<Config, String> {
    reductions.iter().try_fold(config.clone(), |reduced, r| {
        r.refusal(config).map_or(Ok(r.apply(&reduced)), Err)
    })
}

/// A run of a configuration with `instant_faults` as the same run with faults that take time:
/// each crash followed at once by its restart, the step the crash takes too when faults take no
/// time. Every state along it is the state the instant run reaches, so it is a run of the
/// configuration without `instant_faults` that violates what the instant one violates.
pub fn with_restarts(actions: impl IntoIterator<Item = Action>) -> Vec<Action> {
    actions
        .into_iter()
        .flat_map(|action| {
            let restart = match action {
                Action::CrashNode(n) => Some(Action::RestartNode(n)),
                Action::CrashReplica(r) => Some(Action::RestartReplica(r)),
                _ => None,
            };
            std::iter::once(action).chain(restart)
        })
        .collect()
}

impl fmt::Display for Reduction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Reduction {
    type Err = String;

    fn from_str(s: &str) -> Result<Reduction, String> {
        Reduction::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Reduction::ALL.iter().map(|r| r.name()).collect();
                format!(
                    "unknown reduction '{s}' (expected one of: {}, or none)",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_shrink_the_configuration_they_apply_to() {
        let all = Config::preset(Preset::AllFaults);
        let reduced = reduce(&all, &Reduction::ALL).unwrap();
        assert!(reduced.instant_faults && !all.instant_faults);
        assert_eq!((all.replicas, reduced.replicas), (2, 1));
        assert_eq!(reduce(&all, &[]).unwrap(), all);
        assert_eq!("one-replica".parse(), Ok(Reduction::OneReplica));
        assert!("two-replicas"
            .parse::<Reduction>()
            .unwrap_err()
            .contains("fault-windows, one-replica"));
    }

    /// An instant run, with its restarts put back, is a run with faults that take time and ends
    /// in the same state.
    #[test]
    fn an_instant_run_is_a_run_with_its_restarts() {
        use crate::types::{NodeId, ReplicaId};
        use stateright::Model;
        let instant = Config {
            lsns: 1,
            storage_crashes: 1,
            ..Config::preset(Preset::Full)
        };
        let timed = Config {
            instant_faults: false,
            ..reduce(&instant, &[Reduction::FaultWindows]).unwrap()
        };
        let run = [
            Action::Write,
            Action::CrashReplica(ReplicaId(1)),
            Action::CrashNode(NodeId(2)),
        ];
        let run_through = |config: &Config, actions: &[Action]| {
            let model = config.clone().into_model();
            actions
                .iter()
                .try_fold(model.init_states().remove(0), |s, a| {
                    let mut enabled = Vec::new();
                    model.actions(&s, &mut enabled);
                    enabled
                        .contains(a)
                        .then(|| model.next_state(&s, a.clone()))?
                })
                .expect("every step enabled")
        };
        let restarted = with_restarts(run.clone());
        assert_eq!(restarted.len(), 5);
        assert_eq!(restarted[2], Action::RestartReplica(ReplicaId(1)));
        assert_eq!(restarted[4], Action::RestartNode(NodeId(2)));
        let reduced = reduce(&instant, &[Reduction::FaultWindows]).unwrap();
        assert_eq!(run_through(&timed, &restarted), run_through(&reduced, &run));
    }

    #[test]
    fn only_all_faults_is_reduced_by_default() {
        for preset in Preset::ALL {
            let expected: &[Reduction] = if preset == Preset::AllFaults {
                &Reduction::ALL
            } else {
                &[]
            };
            assert_eq!(preset_reductions(preset), expected, "{preset:?}");
        }
    }

    #[test]
    fn no_reduction_where_liveness_is_claimed() {
        let default = Config::preset(Preset::Default);
        for r in Reduction::ALL {
            let refusal = reduce(&default, &[r]).unwrap_err();
            assert!(refusal.contains(r.name()) && refusal.contains("liveness"));
        }
    }
}
