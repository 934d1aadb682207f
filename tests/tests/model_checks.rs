//! The model checked exhaustively: every preset's verdicts, the pinned sizes of the small ones,
//! every seeded bug caught by its invariant, and the documented finding.

use aurora_redo::checking::{check, Run, Stop, Strategy, Verdict};
use aurora_redo::mutants::{run_control, run_mutant};
use aurora_redo_model::invariants::COMMITTED_RECOVERABLE;
use aurora_redo_model::properties::{ALL_APPLIED, ALL_COMMITTED, ALL_DISCARDED, ALL_DURABLE};
use aurora_redo_model::render::numbered_steps;
use aurora_redo_model::{AckPolicy, Bug, Config, Preset};
use aurora_redo_tests::check_exhaustively;
use std::collections::BTreeSet;

fn verdict(report: &aurora_redo::checking::Report, name: &str) -> Verdict {
    report
        .properties
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} is not checked in {}", report.config))
        .verdict
        .clone()
}

/// A preset passes: exhaustive, no violation, every reachability fact reached, and the state
/// count is the pinned one (a change in it is a change in the model, to be made on purpose).
fn assert_preset_passes(preset: Preset, unique_states: usize) {
    let report = check_exhaustively(Config::preset(preset));
    assert!(report.complete);
    assert_eq!(report.violations(), BTreeSet::new(), "{preset} violates");
    assert_eq!(
        report.unreached(),
        Vec::<&str>::new(),
        "{preset} leaves facts unreached"
    );
    assert_eq!(
        report.unique_states, unique_states,
        "{preset}: unique states changed"
    );
}

#[test]
fn quick_preset_holds() {
    assert_preset_passes(Preset::Quick, 296);
    let report = check_exhaustively(Config::preset(Preset::Quick));
    for name in [ALL_COMMITTED, ALL_DURABLE, ALL_APPLIED, ALL_DISCARDED] {
        assert_eq!(verdict(&report, name), Verdict::Holds, "{name}");
    }
}

#[test]
fn default_preset_holds() {
    assert_preset_passes(Preset::Default, 455_797);
}

#[test]
fn az_plus_one_preset_holds() {
    assert_preset_passes(Preset::AzPlusOne, 150_717);
}

#[test]
fn faults_preset_holds() {
    assert_preset_passes(Preset::Faults, 1_099_676);
}

/// Every seeded bug is caught by the property `docs/protocol.md` ("Seeded bugs") names for it.
#[test]
fn every_mutant_is_caught_by_its_invariant() {
    for bug in Bug::ALL {
        let row = run_mutant(bug);
        assert!(
            row.caught_by.contains(&bug.expected_property()),
            "{bug} caught by {:?}, expected {}",
            row.caught_by,
            bug.expected_property()
        );
        assert!(row.counterexample_steps.is_some_and(|n| n > 0));
    }
}

/// ... and the correct protocol violates nothing in the configuration the mutants use.
#[test]
fn the_mutants_configuration_holds_without_a_bug() {
    let control = run_control(2);
    assert!(control.all_good(), "violations: {:?}", control.violations());
    assert_eq!(control.unique_states, 43_771);
}

/// The finding: the seed commits on 4 memory acks, so one storage crash before the flush can leave
/// a committed record where a read quorum misses it.
#[test]
fn memory_acks_lose_committed_records_to_one_crash() {
    let config = Config {
        storage_crashes: 1,
        ..Config::preset(Preset::Quick)
    };
    let report = check_exhaustively(config.clone());
    assert_eq!(report.violations(), BTreeSet::from([COMMITTED_RECOVERABLE]));
    let steps = report
        .path(COMMITTED_RECOVERABLE)
        .unwrap()
        .clone()
        .into_actions();
    assert!(steps.iter().any(|a| format!("{a:?}").contains("crashes")));

    let disk = check_exhaustively(Config {
        ack: AckPolicy::Disk,
        ..config
    });
    assert!(disk.all_good(), "disk acks violate {:?}", disk.violations());
}

/// Under ack `disk`, committed records survive losing a whole zone and one more node.
#[test]
fn disk_acks_survive_az_plus_one() {
    let report = check_exhaustively(Config {
        lsns: 1,
        storage_crashes: 1,
        ..Config::preset(Preset::AzPlusOne)
    });
    assert_eq!(verdict(&report, COMMITTED_RECOVERABLE), Verdict::Holds);
    assert!(report.all_good());
}

/// The README's counterexample of the finding, as `aurora-redo check --ack memory
/// --storage-crashes 1` prints it.
const FINDING_STEPS: [&str; 7] = [
    "1. W writes LSN 1, sends Append to every node",
    "2. W -> S0 Append LSN 1 (page 0 = 101)",
    "3. W -> S1 Append LSN 1 (page 0 = 101)",
    "4. W -> S3 Append LSN 1 (page 0 = 101)",
    "5. W -> S5 Append LSN 1 (page 0 = 101)",
    "6. S5 crashes (memory lost)",
    "7. W gets Ack from S0, S1, S3, S5: commit point 1",
];

/// The lines of the first `text` block after the README heading that starts with `heading`.
fn readme_block(heading: &str) -> Vec<&'static str> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("README has no section '{heading}'"));
    let block = section
        .split("```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("README section '{heading}' has no text block"));
    block.lines().collect()
}

/// The finding's counterexample, step by step, pinned in the spirit of stateright's
/// `assert_discovery`: the command the README names prints its shortest counterexample from a
/// single-threaded breadth-first search of the same configuration that stops at the first
/// violation of CommittedRecoverable (`checking::shorten_counterexamples`). This test runs that
/// search and compares its steps with the README's block, so neither can change alone.
#[test]
fn the_readme_shows_the_findings_counterexample() {
    let config = Config {
        ack: AckPolicy::Memory,
        storage_crashes: 1,
        ..Config::preset(Preset::Default)
    };
    let report = check(&Run {
        config,
        strategy: Strategy::Bfs,
        threads: 1,
        timeout: None,
        stop: Stop::On(COMMITTED_RECOVERABLE),
        progress: false,
    });
    let path = report
        .path(COMMITTED_RECOVERABLE)
        .expect("CommittedRecoverable is violated")
        .clone()
        .into_vec();
    assert_eq!(numbered_steps(&path), FINDING_STEPS);
    assert_eq!(
        readme_block("The finding"),
        FINDING_STEPS,
        "README.md's counterexample differs from the model's"
    );
}
