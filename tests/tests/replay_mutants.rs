//! Every model mutant, reproduced on the implementation: the model's shortest counterexample (a
//! breadth-first search in the mutant's smallest configuration, as `aurora-redo mutants` finds it) is
//! written as a trace file, read back, and replayed on the engine's role state machines over real
//! segment files. With the mutant's implementation counterpart switched on, the same invariant
//! breaks; on the correct engine, the trace either replays with no violation or stops at a step
//! the correct engine cannot take (which one, per mutant, is pinned below). The four recovery
//! mutants' counterexamples fail the writer over; their counterparts are caught by the engine's
//! monitor (CommittedSurvivesRecovery, EpochFencing, LogAgreement).

use aurora_redo::counterexample::CounterexampleFile;
use aurora_redo::mutants::shortest_counterexample;
use aurora_redo::replay::{replay, Outcome};
use aurora_redo_model::{Action, Bug};

/// What the correct engine does with a mutant's counterexample.
#[derive(Debug, PartialEq, Eq)]
enum OnCorrectEngine {
    /// Every step is taken and nothing breaks: the mutant's effect lies in the receiver's rule.
    Clean,
    /// The engine cannot take this step (1-based): only the bug makes it possible.
    InfeasibleAt(usize),
}

fn counterexample(bug: Bug) -> CounterexampleFile {
    let property = bug.expected_property();
    let report = shortest_counterexample(bug);
    let path = report
        .path(property)
        .unwrap_or_else(|| panic!("{bug}: the model finds no counterexample"));
    let trace = CounterexampleFile::from_path(&report.config, Some(property), path);
    // Through the file format and back, as `check --trace-out` and `replay` do.
    let file = tempfile::NamedTempFile::new().unwrap();
    trace.write(file.path()).unwrap();
    let read = CounterexampleFile::read(file.path()).unwrap();
    assert_eq!(read, trace);
    read
}

fn reproduce(bug: Bug, expected_on_correct: OnCorrectEngine) -> (CounterexampleFile, Outcome) {
    let trace = counterexample(bug);
    let buggy = replay(&trace, Some(bug)).unwrap();
    match &buggy.outcome {
        Outcome::Violated { invariant, .. } => assert_eq!(
            *invariant,
            bug.expected_property(),
            "{bug}: the engine broke another invariant: {buggy:?}"
        ),
        other => panic!("{bug}: the engine with the bug did not reproduce: {other:?}"),
    }
    let correct = replay(&trace, None).unwrap();
    let seen = match correct.outcome {
        Outcome::Clean { steps } => {
            assert_eq!(steps, trace.steps.len());
            OnCorrectEngine::Clean
        }
        Outcome::Infeasible { step, .. } => OnCorrectEngine::InfeasibleAt(step),
        Outcome::Violated {
            invariant, detail, ..
        } => panic!("{bug}: the correct engine broke {invariant}: {detail}"),
    };
    assert_eq!(seen, expected_on_correct, "{bug} on the correct engine");
    (trace, buggy.outcome)
}

/// A recovery bug: its counterexample (the quick preset with one writer failover) fails the
/// writer over, and the engine with the counterpart breaks the property at the very step the
/// model's run does (its last); the correct engine takes every step.
fn reproduce_recovery(bug: Bug) {
    let (trace, buggy) = reproduce(bug, OnCorrectEngine::Clean);
    assert_eq!(trace.config.writer_crashes, 1, "{bug}: {}", trace.config);
    assert!(
        trace.steps.iter().any(|s| s.action == Action::FailOver),
        "{bug}: the counterexample has no failover"
    );
    match buggy {
        Outcome::Violated { step, .. } => assert_eq!(
            step,
            trace.steps.len(),
            "{bug}: the engine broke the property at another step than the model"
        ),
        other => panic!("{bug}: {other:?}"),
    }
}

#[test]
fn discard_on_available() {
    reproduce(Bug::DiscardOnAvailable, OnCorrectEngine::Clean);
}

#[test]
fn commit_at_three() {
    reproduce(Bug::CommitAtThree, OnCorrectEngine::InfeasibleAt(5));
}

#[test]
fn durable_from_one_node() {
    reproduce(Bug::DurableFromOneNode, OnCorrectEngine::InfeasibleAt(8));
}

#[test]
fn durable_last_message() {
    reproduce(Bug::DurableLastMessage, OnCorrectEngine::InfeasibleAt(18));
}

#[test]
fn apply_uncommitted() {
    reproduce(Bug::ApplyUncommitted, OnCorrectEngine::Clean);
}

#[test]
fn scl_with_holes() {
    reproduce(Bug::SclWithHoles, OnCorrectEngine::InfeasibleAt(7));
}

// The recovery bugs (smallest configuration: the quick preset with one writer failover). Each
// breaks its property in the engine with the counterpart at the model's last step:
// recover-from-two and recover-below-max-scl lose the committed LSN 1 at the read
// (CommittedSurvivesRecovery), accept-stale-epoch takes the old writer's Append after a fencing
// read (EpochFencing), skip-truncation seals a node that keeps an annulled record (LogAgreement).

#[test]
fn recover_from_two() {
    reproduce_recovery(Bug::RecoverFromTwo);
}

#[test]
fn recover_below_max_scl() {
    reproduce_recovery(Bug::RecoverBelowMaxScl);
}

#[test]
fn accept_stale_epoch() {
    reproduce_recovery(Bug::AcceptStaleEpoch);
}

#[test]
fn skip_truncation() {
    reproduce_recovery(Bug::SkipTruncation);
}

/// The model's bugs without an engine counterpart have nothing to replay.
#[test]
fn bugs_without_a_counterpart() {
    use aurora_redo_impl::ImplBug;
    for bug in [
        Bug::IgnoreFlushed,
        Bug::EvictRetained,
        Bug::ShrinkQuorumOnLoss,
        Bug::WriterStalls,
    ] {
        assert_eq!(ImplBug::counterpart_of(bug), None, "{bug}");
    }
}
