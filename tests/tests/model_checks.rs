//! The model checked exhaustively: every preset's verdicts, the pinned sizes of the small ones,
//! every seeded bug caught by its invariant, and the documented finding.

use aurora_redo::checking::Verdict;
use aurora_redo::mutants::{self, run_control};
use aurora_redo_model::invariants::COMMITTED_RECOVERABLE;
use aurora_redo_model::properties::EVENTUALLY_CONVERGED;
use aurora_redo_model::reduction::{preset_reductions, reduce};
use aurora_redo_model::render::numbered_steps;
use aurora_redo_model::{AckPolicy, Bug, Config, NetworkKind, Preset};
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
    assert_passes(preset, Config::preset(preset), unique_states);
}

fn assert_passes(preset: Preset, config: Config, unique_states: usize) {
    let report = check_exhaustively(config);
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
    assert_eq!(verdict(&report, EVENTUALLY_CONVERGED), Verdict::Holds);
}

#[test]
fn default_preset_holds() {
    assert_preset_passes(Preset::Default, 455_797);
}

#[test]
fn az_plus_one_preset_holds() {
    assert_preset_passes(Preset::AzPlusOne, 150_717);
}

/// `all-faults` through the reductions `check` applies to it (`aurora_redo_model::reduction`):
/// the whole product is past an exhaustive search here; this is the run docs/performance.md
/// times. About three minutes on two threads, so it is one of `make test-long`'s runs, not CI's.
#[test]
#[ignore = "long: `make test-long` runs it"]
fn all_faults_preset_holds_through_its_reductions() {
    let asked = Config::preset(Preset::AllFaults);
    let checked = reduce(&asked, preset_reductions(Preset::AllFaults)).unwrap();
    assert_eq!((checked.replicas, checked.instant_faults), (1, true));
    assert_passes(Preset::AllFaults, checked, 38_666_384);
}

#[test]
fn faults_preset_holds() {
    assert_preset_passes(Preset::Faults, 1_099_676);
}

/// Every seeded bug, on every network kind, in its smallest configuration, is caught by exactly
/// these properties (an exhaustive check: a property that stops biting, or starts to, changes a
/// row), and no property fails in the bug-free control. A test that only asked for the expected
/// property would not notice a property going vacuous on one network.
#[test]
fn every_mutant_is_caught_by_exactly_its_catchers() {
    use aurora_redo_model::invariants::{
        COMMIT_ONLY_AFTER_QUORUM as COQ, DURABLE_LSN_MONOTONIC as DLM,
        NO_DISCARD_BEFORE_FLUSH as NDBF, QUIESCENCE_CONVERGES as QC, REPLICA_PREFIX as RP,
        RETAIN_UNTIL_DURABLE as RUD,
    };
    use aurora_redo_model::NetworkKind::{Duplicating, Lossy, Unordered};
    // Subject, its smallest configuration, shortest steps, and its catchers on the unordered,
    // duplicating and lossy networks (liveness is not claimed on `lossy`).
    let expected: [(&str, &str, usize, [&[&str]; 3]); 11] = [
        ("discard-on-available", "quick, 1 LSN", 8, [&[NDBF]; 3]),
        (
            "commit-at-three",
            "quick, 1 LSN",
            5,
            [&[COQ, COMMITTED_RECOVERABLE]; 3],
        ),
        ("durable-from-one-node", "quick, 1 LSN", 9, [&[NDBF]; 3]),
        ("durable-last-message", "quick, 2 LSNs", 18, [&[DLM]; 3]),
        ("apply-uncommitted", "quick, 1 LSN", 3, [&[RP]; 3]),
        (
            "scl-with-holes",
            "quick, 2 LSNs",
            7,
            [&[COQ, COMMITTED_RECOVERABLE]; 3],
        ),
        ("ignore-flushed", "quick, 1 LSN", 16, [&[QC]; 3]),
        ("evict-retained", "quick, 2 LSNs", 13, [&[RUD]; 3]),
        (
            "shrink-quorum-on-loss",
            "quick, 1 LSN, 1 lost node",
            6,
            [&[COQ]; 3],
        ),
        (
            "writer-stalls",
            "quick, 2 LSNs",
            17,
            [&[EVENTUALLY_CONVERGED], &[EVENTUALLY_CONVERGED], &[]],
        ),
        (
            "finding (no bug)",
            "quick, 1 LSN, 1 storage crash",
            7,
            [&[COMMITTED_RECOVERABLE]; 3],
        ),
    ];
    // The recovery bugs are pinned on the unordered network by `recovery_mutants_are_caught_alone`.
    let rows: Vec<_> = mutants::Subject::all()
        .into_iter()
        .filter(|s| !matches!(s, mutants::Subject::Bug(b) if b.needs_failover()))
        .map(|s| mutants::run_mutant(s, 2))
        .collect();
    assert_eq!(rows.len(), expected.len(), "a subject without a pinned row");
    for (row, (name, smallest, steps, catchers)) in rows.iter().zip(expected) {
        assert_eq!(row.mutant, name);
        assert_eq!(row.smallest, smallest, "{name}: smallest configuration");
        assert_eq!(row.counterexample_steps, Some(steps), "{name}: steps");
        for (network, catchers) in [Unordered, Duplicating, Lossy].into_iter().zip(catchers) {
            let on = row.on(network);
            let want: BTreeSet<&str> = catchers.iter().copied().collect();
            let got: BTreeSet<&str> = on.caught_by.iter().copied().collect();
            assert_eq!(got, want, "{name} on {network}: exact catchers");
            assert_eq!(on.smallest, smallest, "{name} on {network}: smallest");
        }
        assert!(row.caught(), "{name} escapes its expected property");
    }
    assert!(mutants::all_caught(&rows));

    // Every property each network claims has a subject that makes it fail alone (see README.md,
    // "Seeded bugs"): no exception is pinned, but for the three recovery invariants, whose sole
    // catchers are the recovery bugs (`recovery_mutants_are_caught_alone`).
    let coverage = mutants::coverage(&rows);
    let recovery: BTreeSet<(String, &str)> = [Unordered, Duplicating, Lossy]
        .into_iter()
        .flat_map(|n| {
            [
                aurora_redo_model::invariants::COMMITTED_SURVIVES_RECOVERY,
                aurora_redo_model::invariants::EPOCH_FENCING,
                aurora_redo_model::invariants::LOG_AGREEMENT,
            ]
            .map(|p| (n.to_string(), p))
        })
        .collect();
    assert_eq!(mutants::without_sole_catcher(&coverage), recovery);
    assert_eq!(
        coverage.len(),
        11 + 11 + 10,
        "properties claimed per network"
    );
}

/// The bug-free control of each network violates nothing in the largest rung of the ladder.
#[test]
fn the_mutants_configuration_holds_without_a_bug() {
    for (network, unique) in [
        (NetworkKind::Unordered, 43_771),
        (NetworkKind::Duplicating, 43_771),
        (NetworkKind::Lossy, 554_095),
    ] {
        let control = run_control(network, 2);
        assert!(control.all_good(), "violations: {:?}", control.violations());
        assert_eq!(control.unique_states, unique, "{network}");
    }
}

/// Shortest means shortest: at one LSN, `commit-at-three` needs the write, three deliveries and
/// the commit (5 steps), and `apply-uncommitted` the write, one delivery and a pull (3 steps).
#[test]
fn counterexamples_are_shortest() {
    use aurora_redo::shortest::shortest_counterexample;
    use aurora_redo_model::invariants::{COMMIT_ONLY_AFTER_QUORUM, REPLICA_PREFIX};
    for (bug, property, steps) in [
        (Bug::CommitAtThree, COMMIT_ONLY_AFTER_QUORUM, 5),
        (Bug::ApplyUncommitted, REPLICA_PREFIX, 3),
    ] {
        let config = Config {
            bug: Some(bug),
            ..Config::preset(Preset::Quick)
        };
        let found = shortest_counterexample(&config, property, None);
        let path = found.path.expect("a counterexample");
        assert_eq!(path.into_actions().len(), steps, "{bug}");
        // And `check`, which searches depth-first first, reports the same length.
        let mut report = check_exhaustively(config.clone());
        aurora_redo::checking::shorten_counterexamples(
            &mut report,
            std::time::Duration::from_secs(60),
        );
        let reported = report.path(property).unwrap().clone().into_actions();
        assert_eq!(reported.len(), steps, "{bug}: check --bug {bug}");
    }
}

/// A replica that reacts to every `Available` shows with one LSN: after applying LSN 1 it receives
/// one more `Available` and discards LSN 1, which no disk holds.
#[test]
fn discard_on_available_shows_with_one_lsn() {
    let report = check_exhaustively(Config {
        bug: Some(Bug::DiscardOnAvailable),
        ..Config::preset(Preset::Quick)
    });
    assert!(report
        .violations()
        .contains(aurora_redo_model::invariants::NO_DISCARD_BEFORE_FLUSH));
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
    "4. W -> S2 Append LSN 1 (page 0 = 101)",
    "5. W -> S3 Append LSN 1 (page 0 = 101)",
    "6. W gets Ack from S0, S1, S2, S3: commit point 1",
    "7. S0 crashes (memory lost)",
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
/// breadth-first search of the same configuration that stops at the first violation of
/// CommittedRecoverable (`checking::shorten_counterexamples`, through `shortest`). This test runs that
/// search and compares its steps with the README's block, so neither can change alone.
#[test]
fn the_readme_shows_the_findings_counterexample() {
    let config = Config {
        ack: AckPolicy::Memory,
        storage_crashes: 1,
        ..Config::preset(Preset::Default)
    };
    let path = aurora_redo::shortest::shortest_counterexample(&config, COMMITTED_RECOVERABLE, None)
        .path
        .expect("CommittedRecoverable is violated")
        .into_vec();
    assert_eq!(numbered_steps(&path), FINDING_STEPS);
    assert_eq!(
        readme_block("The finding"),
        FINDING_STEPS,
        "README.md's counterexample differs from the model's"
    );
}

// ---------------------------------------------------------------------------------------------
// Recovery (docs/protocol.md, "Recovery").

/// The recovery preset: ack `disk`, a storage crash and a writer failover with a zombie writer.
/// Every invariant holds, recovery completes and commits, and its truncation has work to do.
#[test]
fn recovery_preset_holds() {
    assert_preset_passes(Preset::Recovery, 3_925_956);
}

/// Ack `disk`, AZ+1 (three nodes lost for good) and a failover: nothing committed is lost, and
/// where three nodes are gone the recovery stops after its read phase.
#[test]
fn disk_acks_survive_az_plus_one_and_a_failover() {
    let report = check_exhaustively(Config {
        storage_crashes: 0,
        lost_nodes: 3,
        ..Config::preset(Preset::Recovery)
    });
    assert!(report.complete);
    assert_eq!(report.violations(), BTreeSet::new());
    assert_eq!(report.unique_states, 5_021_515);
}

/// The recovery finding: with ack `memory`, one storage crash and a failover, recovery truncates
/// a record clients were told is committed. The shortest counterexample: the commit on four memory
/// acks, the crash of one of the four before its flush and its restart, the failover, and a read
/// of that node with the two that never got the record. README.md ("Recovery") shows these steps.
#[test]
fn memory_acks_lose_a_commit_in_recovery() {
    use aurora_redo::shortest::shortest_counterexample;
    use aurora_redo_model::invariants::COMMITTED_SURVIVES_RECOVERY;
    use aurora_redo_model::model::Action;
    let config = Config {
        ack: AckPolicy::Memory,
        ..Config::preset(Preset::Recovery)
    };
    let path = shortest_counterexample(&config, COMMITTED_SURVIVES_RECOVERY, None)
        .path
        .expect("a counterexample");
    assert_eq!(
        readme_block("Recovery"),
        numbered_steps(&path.clone().into_vec()),
        "README.md's recovery counterexample differs from the model's"
    );
    let steps = path.into_actions();
    assert_eq!(steps.len(), 10, "{steps:?}");
    assert!(matches!(steps[6], Action::CrashNode(_)), "{steps:?}");
    assert!(matches!(steps[7], Action::RestartNode(_)), "{steps:?}");
    assert!(steps.contains(&Action::FailOver));
    assert!(matches!(steps.last(), Some(Action::Read(_))));
    // With ack `disk` (the recovery preset) the same faults lose nothing: see above.
}

/// Each recovery bug is caught by its property alone, in the smallest configuration that shows
/// it (one LSN, one failover), with the shortest counterexample's length pinned. CI checks them
/// on the unordered network, where the four take about three minutes; `aurora-redo mutants`
/// checks every network (README.md, "Seeded bugs").
#[test]
fn recovery_mutants_are_caught_alone() {
    use aurora_redo::mutants::{run_mutant_on, Subject};
    use aurora_redo_model::invariants::{
        COMMITTED_SURVIVES_RECOVERY as CSR, EPOCH_FENCING as EF, LOG_AGREEMENT as LA,
    };
    for (bug, steps, catcher) in [
        (Bug::RecoverFromTwo, 8, CSR),
        (Bug::RecoverBelowMaxScl, 8, CSR),
        (Bug::AcceptStaleEpoch, 4, EF),
        (Bug::SkipTruncation, 5, LA),
    ] {
        let row = run_mutant_on(Subject::Bug(bug), &[NetworkKind::Unordered], 2);
        assert_eq!(row.smallest, "quick, 1 LSN, 1 writer failover", "{bug}");
        assert_eq!(row.counterexample_steps, Some(steps), "{bug}: steps");
        let on = row.on(NetworkKind::Unordered);
        assert_eq!(on.caught_by, vec![catcher], "{bug}: exact catchers");
        assert!(row.caught());
    }
}
