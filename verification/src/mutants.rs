//! `aurora-redo mutants`: every seeded bug, on every network kind, in the smallest configuration
//! that shows it, with the exact set of properties that catch it; and, per network kind, which
//! property each catches alone, so that every property is shown to bite on its own.
//!
//! For each bug and network kind the configurations of [`ladder`] are checked in order,
//! exhaustively (depth-first with symmetry), and the first in which the bug's expected property
//! fails is the bug's smallest configuration there: the rungs before it do not show the bug. The
//! row's catchers are every property that fails in that configuration (an exhaustive search, so
//! the set is exact), and its steps the length of the shortest counterexample to the expected
//! property (`crate::shortest`).
//!
//! Besides the seeded bugs, one row is not a bug: the finding (the seed's protocol, ack `memory`,
//! one storage crash), which CommittedRecoverable alone catches.

use crate::checking::{check, Report, Run, Stop, Strategy};
use crate::shortest::shortest_counterexample as search_shortest;
use aurora_redo_model::invariants::COMMITTED_RECOVERABLE;
use aurora_redo_model::model::Action;
use aurora_redo_model::{Bug, Config, NetworkKind, Preset, State};
use serde::Serialize;
use stateright::{Expectation, Model, Path};
use std::collections::BTreeSet;
use std::time::Instant;

/// The network kinds every row is checked on.
pub const NETWORKS: [NetworkKind; 3] = [
    NetworkKind::Unordered,
    NetworkKind::Duplicating,
    NetworkKind::Lossy,
];

/// What a row checks: a seeded bug, or the finding (no bug; a fault the protocol does not survive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subject {
    Bug(Bug),
    /// The seed's protocol (ack `memory`) with one storage crash: README.md, "The finding".
    Finding,
}

impl Subject {
    /// Every row's subject, in table order: every seeded bug whose smallest configuration the
    /// checker accepts (`recover-from-max-scl` needs two failovers, which are not checked yet:
    /// [`MAX_SOUND_WRITER_CRASHES`](aurora_redo_model::config::MAX_SOUND_WRITER_CRASHES)), and the finding.
    pub fn all() -> Vec<Subject> {
        Bug::ALL
            .into_iter()
            .filter(|&bug| faults_needed(bug).0.validate().is_ok())
            .map(Subject::Bug)
            .chain([Subject::Finding])
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Subject::Bug(bug) => bug.name(),
            Subject::Finding => "finding (no bug)",
        }
    }

    pub fn expected_property(self) -> &'static str {
        match self {
            Subject::Bug(bug) => bug.expected_property(),
            Subject::Finding => COMMITTED_RECOVERABLE,
        }
    }
}

/// The configurations tried for `subject` on `network`, smallest first, each with a short
/// description: `quick` (no faults, one replica, ack `memory`) with one LSN, then two, with the
/// faults the bug needs to show at all ([`faults_needed`]). The finding needs its storage crash,
/// and one LSN shows it (without the crash, one LSN is the bug-free `quick` preset, which holds).
pub fn ladder(subject: Subject, network: NetworkKind) -> Vec<(String, Config)> {
    let quick = |lsns: u8| Config {
        lsns,
        network,
        ..Config::preset(Preset::Quick)
    };
    match subject {
        Subject::Bug(bug) => [1, 2]
            .into_iter()
            .map(|lsns| {
                let lsn_word = if lsns == 1 { "LSN" } else { "LSNs" };
                let (faults, words) = faults_needed(bug);
                (
                    format!("quick, {lsns} {lsn_word}{words}"),
                    Config {
                        bug: Some(bug),
                        lost_nodes: faults.lost_nodes,
                        writer_crashes: faults.writer_crashes,
                        ..quick(lsns)
                    },
                )
            })
            .collect(),
        Subject::Finding => vec![(
            "quick, 1 LSN, 1 storage crash".to_string(),
            Config {
                storage_crashes: 1,
                ..quick(1)
            },
        )],
    }
}

/// The faults a bug's rule needs before it acts at all, with their words for the table: a
/// `shrink-quorum-on-loss` writer only shrinks its quorum once a node is lost for good, and the
/// recovery bugs act only in a recovery, after a writer failover (`recover-from-max-scl` only in
/// the second of two in a row). (Only `lost_nodes` and
/// `writer_crashes` are taken from the result.)
pub fn faults_needed(bug: Bug) -> (Config, &'static str) {
    let none = Config::preset(Preset::Quick);
    if bug == Bug::RecoverFromMaxScl {
        return (
            Config {
                writer_crashes: 2,
                ..none
            },
            ", 2 writer failovers",
        );
    }
    if bug.needs_failover() {
        return (
            Config {
                writer_crashes: 1,
                ..none
            },
            ", 1 writer failover",
        );
    }
    match bug {
        Bug::ShrinkQuorumOnLoss => (
            Config {
                lost_nodes: 1,
                ..none
            },
            ", 1 lost node",
        ),
        _ => (none, ""),
    }
}

/// Whether `property` is claimed (checked as `always` or `eventually`) in `config`.
pub fn claimed(config: &Config, property: &str) -> bool {
    config
        .clone()
        .into_model()
        .properties()
        .iter()
        .any(|p| p.name == property && p.expectation != Expectation::Sometimes)
}

/// One subject on one network kind.
#[derive(Debug, Serialize)]
pub struct NetworkRow {
    pub network: NetworkKind,
    /// Whether the expected property is claimed on this network (liveness is not, on `lossy`).
    pub applies: bool,
    /// The smallest configuration of the ladder that shows the bug here (the last tried if none
    /// does).
    pub smallest: String,
    /// Every property that fails in that configuration (an exhaustive search: exactly these).
    pub caught_by: Vec<&'static str>,
    pub unique_states: usize,
    pub caught: bool,
}

impl NetworkRow {
    /// The property that catches this subject alone here, if exactly one does.
    pub fn sole_catcher(&self) -> Option<&'static str> {
        match self.caught_by.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }
}

/// One row of the `mutants` table: a subject on every network kind.
#[derive(Debug, Serialize)]
pub struct MutantRow {
    pub mutant: &'static str,
    pub expected: &'static str,
    /// The smallest configuration that shows the bug on the unordered network.
    pub smallest: String,
    pub config: Config,
    /// The length of the shortest counterexample to the expected property in that configuration.
    pub counterexample_steps: Option<usize>,
    pub networks: Vec<NetworkRow>,
    pub seconds: f64,
}

impl MutantRow {
    pub fn on(&self, network: NetworkKind) -> &NetworkRow {
        self.checked_on(network)
            .expect("every network kind is checked")
    }

    /// The row on `network`, if it was checked there.
    pub fn checked_on(&self, network: NetworkKind) -> Option<&NetworkRow> {
        self.networks.iter().find(|n| n.network == network)
    }

    /// Caught by its expected property wherever that property is claimed.
    pub fn caught(&self) -> bool {
        self.networks.iter().all(|n| n.caught || !n.applies)
    }
}

/// A shortest counterexample to a bug's expected property, in the bug's smallest configuration
/// on the unordered network: what `mutants` reports as the bug's steps.
pub struct Witness {
    pub config: Config,
    pub property: &'static str,
    pub path: Path<State, Action>,
}

impl Witness {
    /// The counterexample, if `name` is the witnessed property.
    pub fn path(&self, name: &str) -> Option<&Path<State, Action>> {
        (name == self.property).then_some(&self.path)
    }
}

/// The shortest counterexample of `bug`'s expected property in its smallest configuration on the
/// unordered network (the first rung of the ladder whose search finds one).
///
/// # Panics
/// If no rung shows the bug.
pub fn shortest_counterexample(bug: Bug) -> Witness {
    let property = bug.expected_property();
    ladder(Subject::Bug(bug), NetworkKind::Unordered)
        .into_iter()
        .find_map(|(_, config)| {
            let path = search_shortest(&config, property, None).path?;
            Some(Witness {
                config,
                property,
                path,
            })
        })
        .unwrap_or_else(|| panic!("{bug}: no configuration of the ladder shows it"))
}

fn exhaustive(config: Config, threads: usize) -> Report {
    check(&Run {
        config,
        strategy: Strategy::Dfs,
        threads,
        timeout: None,
        stop: Stop::Never,
        progress: false,
    })
}

/// `subject` on `network`: the first rung of the ladder that shows it, and its exact catchers.
fn run_on(subject: Subject, network: NetworkKind, threads: usize) -> (NetworkRow, Config) {
    let expected = subject.expected_property();
    let mut last = None;
    for (description, config) in ladder(subject, network) {
        let report = exhaustive(config.clone(), threads);
        let caught = report.violations().contains(expected);
        last = Some((description, config, report));
        if caught {
            break;
        }
    }
    let (smallest, config, report) = last.expect("a ladder has a rung");
    let caught_by: Vec<_> = report.violations().into_iter().collect();
    let row = NetworkRow {
        network,
        applies: claimed(&config, expected),
        smallest,
        caught: caught_by.contains(&expected),
        caught_by,
        unique_states: report.unique_states,
    };
    (row, config)
}

/// One row of the `mutants` table: `subject` on every network kind, with the shortest
/// counterexample's length on the unordered network.
pub fn run_mutant(subject: Subject, threads: usize) -> MutantRow {
    run_mutant_on(subject, &NETWORKS, threads)
}

/// A row of the `mutants` table on some network kinds only (the unordered one always among
/// them).
pub fn run_mutant_on(subject: Subject, kinds: &[NetworkKind], threads: usize) -> MutantRow {
    let started = Instant::now();
    let expected = subject.expected_property();
    let mut networks = Vec::new();
    let mut unordered = None;
    for &network in kinds {
        let (row, config) = run_on(subject, network, threads);
        if network == NetworkKind::Unordered {
            unordered = Some((row.smallest.clone(), config, row.caught));
        }
        networks.push(row);
    }
    let (smallest, config, caught) = unordered.expect("the unordered network is checked");
    let counterexample_steps = caught
        .then(|| search_shortest(&config, expected, None).path)
        .flatten()
        .map(|p| p.into_actions().len());
    MutantRow {
        mutant: subject.name(),
        expected,
        smallest,
        config,
        counterexample_steps,
        networks,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The control on `network`: the largest rung of the bugs' ladder (`quick` with two LSNs) without
/// any bug, checked exhaustively.
pub fn run_control(network: NetworkKind, threads: usize) -> Report {
    let (_, config) = ladder(Subject::Bug(Bug::ALL[0]), network)
        .pop()
        .expect("a ladder has a rung");
    exhaustive(
        Config {
            bug: None,
            ..config
        },
        threads,
    )
}

/// Per network kind, every property claimed there (`always`, or `eventually` where liveness
/// applies) with the rows it catches alone.
#[derive(Debug, Serialize)]
pub struct Coverage {
    pub network: NetworkKind,
    pub property: &'static str,
    pub sole_catcher_of: Vec<&'static str>,
}

pub fn coverage(rows: &[MutantRow]) -> Vec<Coverage> {
    let mut out = Vec::new();
    for network in NETWORKS {
        let config = Config {
            network,
            ..Config::preset(Preset::Quick)
        };
        let properties: Vec<&'static str> = config
            .clone()
            .into_model()
            .properties()
            .iter()
            .filter(|p| p.expectation != Expectation::Sometimes)
            .map(|p| p.name)
            .collect();
        for property in properties {
            let sole_catcher_of = rows
                .iter()
                .filter(|r| {
                    r.checked_on(network)
                        .is_some_and(|on| on.sole_catcher() == Some(property))
                })
                .map(|r| r.mutant)
                .collect();
            out.push(Coverage {
                network,
                property,
                sole_catcher_of,
            });
        }
    }
    out
}

/// Whether every subject is caught by its expected property wherever that property is claimed.
pub fn all_caught(rows: &[MutantRow]) -> bool {
    rows.iter().all(MutantRow::caught)
}

/// The properties (per network) that no row catches alone.
pub fn without_sole_catcher(coverage: &[Coverage]) -> BTreeSet<(String, &'static str)> {
    coverage
        .iter()
        .filter(|c| c.sole_catcher_of.is_empty())
        .map(|c| (c.network.to_string(), c.property))
        .collect()
}

/// A network's catchers as the table shows them.
fn catchers(row: &NetworkRow) -> String {
    let mut text = if row.caught_by.is_empty() {
        "NOT CAUGHT".to_string()
    } else {
        row.caught_by.join(", ")
    };
    if !row.applies {
        text.push_str(" (expected not claimed)");
    }
    text
}

pub fn print_table(rows: &[MutantRow], controls: &[Report]) {
    println!(
        "{:<21} {:<29} {:<22} {:>5} {:>7}  caught by (exactly), per network",
        "mutant", "smallest configuration", "expected", "steps", "seconds"
    );
    for row in rows {
        println!(
            "{:<21} {:<29} {:<22} {:>5} {:>7.2}",
            row.mutant,
            row.smallest,
            row.expected,
            row.counterexample_steps
                .map_or("-".into(), |n| n.to_string()),
            row.seconds,
        );
        for n in &row.networks {
            let smallest = if n.smallest == row.smallest {
                String::new()
            } else {
                format!(" [in {}]", n.smallest)
            };
            println!(
                "    {:<12} {}{} ({} unique states)",
                n.network.to_string(),
                catchers(n),
                smallest,
                n.unique_states
            );
        }
    }
    println!();
    println!("caught alone, per network (every property claimed there):");
    for c in coverage(rows) {
        println!(
            "  {:<12} {:<24} {}",
            c.network.to_string(),
            c.property,
            if c.sole_catcher_of.is_empty() {
                "NO SOLE CATCHER".to_string()
            } else {
                c.sole_catcher_of.join(", ")
            }
        );
    }
    println!();
    for control in controls {
        println!(
            "control (no bug, {}): {} unique states, {}",
            control.config,
            control.unique_states,
            if control.all_good() {
                "every property holds".to_string()
            } else {
                let violated: Vec<&str> = control.violations().into_iter().collect();
                format!("VIOLATES {}", violated.join(", "))
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_leaves_out_only_bugs_whose_smallest_configuration_is_refused() {
        let subjects = Subject::all();
        for bug in Bug::ALL {
            let checkable = faults_needed(bug).0.validate().is_ok();
            assert_eq!(subjects.contains(&Subject::Bug(bug)), checkable, "{bug}");
        }
        assert!(!subjects.contains(&Subject::Bug(Bug::RecoverFromMaxScl)));
        assert_eq!(
            subjects.len(),
            Bug::ALL.len(),
            "all bugs but one, and the finding"
        );
        for subject in subjects {
            for (rung, config) in ladder(subject, NetworkKind::Unordered) {
                assert_eq!(config.validate(), Ok(()), "{}: {rung}", subject.name());
            }
        }
    }
}
