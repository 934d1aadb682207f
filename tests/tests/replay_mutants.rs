//! Every model mutant, reproduced on the implementation: the model's shortest counterexample (a
//! breadth-first search in the mutant's smallest configuration, as `aurora-redo mutants` finds it) is
//! written as a trace file, read back, and replayed on the engine's role state machines over real
//! segment files. With the mutant's implementation counterpart switched on, the same invariant
//! breaks; on the correct engine, the trace either replays with no violation or stops at a step
//! the correct engine cannot take (which one, per mutant, is pinned below).

use aurora_redo::counterexample::CounterexampleFile;
use aurora_redo::mutants::shortest_counterexample;
use aurora_redo::replay::{replay, Outcome};
use aurora_redo_model::Bug;

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

fn reproduce(bug: Bug, expected_on_correct: OnCorrectEngine) {
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
    reproduce(Bug::DurableLastMessage, OnCorrectEngine::InfeasibleAt(17));
}

#[test]
fn apply_uncommitted() {
    reproduce(Bug::ApplyUncommitted, OnCorrectEngine::Clean);
}

#[test]
fn scl_with_holes() {
    reproduce(Bug::SclWithHoles, OnCorrectEngine::InfeasibleAt(7));
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
