//! The `aurora-redo` tool's library: model options, checking and reporting, mutants and the
//! Explorer; traces and their replay on the implementation; the live run and the benchmark. The
//! binary (`main.rs`) is the command line over it; tests use it directly.

pub mod abstraction;
pub mod bench;
pub mod checking;
pub mod explore;
pub mod harness;
pub mod model_args;
pub mod mutants;
pub mod replay;
pub mod run;
pub mod trace;
