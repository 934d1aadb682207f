//! `aurora-redo mutants`: every seeded bug must be caught by the invariant that names it, and the
//! correct protocol must pass the same configuration.

use crate::checking::{check, Report, Run, Stop, Strategy};
use aurora_redo_model::{Bug, Config};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct MutantRow {
    pub mutant: &'static str,
    pub expected: &'static str,
    pub caught_by: Vec<&'static str>,
    pub counterexample_steps: Option<usize>,
    pub unique_states: usize,
    pub seconds: f64,
    pub caught: bool,
}

/// Checks one seeded bug in its witness configuration, breadth-first on one thread (so the
/// counterexample is a shortest one), stopping once the bug's expected property is violated.
pub fn shortest_counterexample(bug: Bug) -> Report {
    check(&Run {
        config: bug.witness_config(),
        strategy: Strategy::Bfs,
        threads: 1,
        timeout: None,
        stop: Stop::On(bug.expected_property()),
        progress: false,
    })
}

/// One row of the `mutants` table.
pub fn run_mutant(bug: Bug) -> MutantRow {
    let expected = bug.expected_property();
    let report = shortest_counterexample(bug);
    let caught_by: Vec<_> = report.violations().into_iter().collect();
    MutantRow {
        mutant: bug.name(),
        expected,
        counterexample_steps: report
            .path(expected)
            .map(|p| p.clone().into_actions().len()),
        caught: caught_by.contains(&expected),
        caught_by,
        unique_states: report.unique_states,
        seconds: report.seconds,
    }
}

/// The control: the witness configuration without any bug, checked exhaustively.
pub fn run_control(threads: usize) -> Report {
    let config = Config {
        bug: None,
        ..Bug::ALL[0].witness_config()
    };
    check(&Run {
        config,
        strategy: Strategy::Dfs,
        threads,
        timeout: None,
        stop: Stop::Never,
        progress: false,
    })
}

pub fn print_table(rows: &[MutantRow], control: &Report) {
    println!(
        "{:<22} {:<24} {:<44} {:>6} {:>9} {:>8}",
        "mutant", "expected property", "caught by", "steps", "unique", "seconds"
    );
    for row in rows {
        println!(
            "{:<22} {:<24} {:<44} {:>6} {:>9} {:>8.2}",
            row.mutant,
            row.expected,
            if row.caught_by.is_empty() {
                "NOT CAUGHT".to_string()
            } else {
                row.caught_by.join(", ")
            },
            row.counterexample_steps
                .map_or("-".into(), |n| n.to_string()),
            row.unique_states,
            row.seconds,
        );
    }
    println!();
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
