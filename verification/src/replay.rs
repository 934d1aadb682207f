//! `aurora-redo replay`: drive the implementation through a trace's exact sequence of deliveries
//! and faults (the [`Harness`], on real segment files in a temporary directory) and report the
//! first invariant the engine's runtime monitor finds broken, or that none is, or the first step
//! the engine cannot take.

use crate::abstraction::Abstraction;
use crate::counterexample::CounterexampleFile;
use crate::harness::Harness;
use aurora_redo_impl::ImplBug;
use aurora_redo_model::Bug;

/// What replaying a trace on the implementation showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every step was taken and no invariant broke.
    Clean { steps: usize },
    /// After step `step` (1-based), `invariant` was broken.
    Violated {
        step: usize,
        invariant: &'static str,
        detail: String,
    },
    /// The engine cannot take step `step` (1-based).
    Infeasible { step: usize, reason: String },
}

/// What the replay saw besides its outcome.
#[derive(Clone, Debug)]
pub struct ReplayReport {
    pub outcome: Outcome,
    /// The first step (1-based) after which the engine's abstract state differed from the
    /// model's, with the differences: informative only (the engine may legitimately run ahead,
    /// e.g. apply records it already received as soon as the commit point allows).
    pub first_divergence: Option<(usize, Vec<String>)>,
}

impl ReplayReport {
    /// The exit status: 0 clean, 1 an invariant broke, 3 a step is infeasible.
    pub fn exit_status(&self) -> u8 {
        match self.outcome {
            Outcome::Clean { .. } => 0,
            Outcome::Violated { .. } => 1,
            Outcome::Infeasible { .. } => 3,
        }
    }
}

/// Replays `trace` on the implementation with `bug` (a model mutant's name) switched on in it.
/// Fails (bad input) when the bug has no implementation counterpart or the engine cannot start.
pub fn replay(trace: &CounterexampleFile, bug: Option<Bug>) -> Result<ReplayReport, String> {
    let seeded = match bug {
        Some(b) => Some(ImplBug::counterpart_of(b).ok_or_else(|| {
            format!("the implementation has no counterpart of the seeded bug '{b}'")
        })?),
        None => None,
    };
    let mut harness = Harness::with_temp_files(&trace.config, seeded)
        .map_err(|e| format!("cannot start the engine's nodes: {e}"))?;
    let states = trace.model_path()?.into_states();
    let mut first_divergence = None;
    for (i, step) in trace.steps.iter().enumerate() {
        if let Err(why) = harness.step(&step.action) {
            return Ok(ReplayReport {
                outcome: Outcome::Infeasible {
                    step: i + 1,
                    reason: why.0,
                },
                first_divergence,
            });
        }
        if first_divergence.is_none() {
            let diffs = Abstraction::of_model(&states[i + 1]).differences(&harness.abstraction());
            if !diffs.is_empty() {
                first_divergence = Some((i + 1, diffs));
            }
        }
        if let Some(v) = harness.violations().into_iter().next() {
            return Ok(ReplayReport {
                outcome: Outcome::Violated {
                    step: i + 1,
                    invariant: v.invariant,
                    detail: v.detail,
                },
                first_divergence,
            });
        }
    }
    Ok(ReplayReport {
        outcome: Outcome::Clean {
            steps: trace.steps.len(),
        },
        first_divergence,
    })
}

/// Prints a replay for a person to read.
pub fn print(trace: &CounterexampleFile, bug: Option<Bug>, replay: &ReplayReport) {
    println!("trace: {} steps of {}", trace.steps.len(), trace.config);
    if let Some(p) = &trace.property {
        println!("the model's run violates: {p}");
    }
    println!(
        "implementation: {}",
        bug.map_or("correct engine".to_string(), |b| format!("seeded bug {b}"))
    );
    let shown = match &replay.outcome {
        Outcome::Clean { steps } => *steps,
        Outcome::Violated { step, .. } | Outcome::Infeasible { step, .. } => *step,
    };
    for (i, step) in trace.steps.iter().take(shown).enumerate() {
        println!("  {}. {}", i + 1, step.description);
    }
    if let Some((step, diffs)) = &replay.first_divergence {
        println!("note: after step {step} the engine's state differs from the model's (model vs engine):");
        for d in diffs {
            println!("    {d}");
        }
    }
    match &replay.outcome {
        Outcome::Clean { steps } => {
            println!("replayed all {steps} steps on the implementation: no invariant broken")
        }
        Outcome::Violated {
            step,
            invariant,
            detail,
        } => println!("{invariant} VIOLATED on the implementation after step {step}: {detail}"),
        Outcome::Infeasible { step, reason } => {
            println!("step {step} is INFEASIBLE for this engine: {reason}")
        }
    }
}
