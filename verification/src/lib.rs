//! The `aurora-redo` tool's library: model options, checking and reporting, mutants and the
//! Explorer; counterexample files and their replay on the implementation; the check of the
//! engine's recordings against the model; the live run and the benchmark. The
//! binary (`main.rs`) is the command line over it; tests use it directly.
//!
//! With the `shuttle` feature (the engine on shuttle's primitives, for checking recordings under
//! shuttle) the live run and the benchmark, which need real threads, are left out, and so is the
//! binary's use of them: build the command line without it.

pub mod abstraction;
#[cfg(not(feature = "shuttle"))]
pub mod bench;
pub mod checking;
pub mod counterexample;
pub mod explore;
pub mod harness;
#[cfg(not(feature = "shuttle"))]
pub mod history;
pub mod junit;
#[cfg(not(feature = "shuttle"))]
pub mod latency;
#[cfg(not(feature = "shuttle"))]
pub mod live;
pub mod model_args;
pub mod mutants;
pub mod recording_check;
#[cfg(not(feature = "shuttle"))]
pub mod recover;
pub mod replay;
#[cfg(not(feature = "shuttle"))]
pub mod run;
pub mod shortest;
pub mod simulation;
pub mod steps;
pub mod swarm_report;
