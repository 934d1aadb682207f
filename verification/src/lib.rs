//! The `aurora-redo` tool's library: model options, checking and reporting, mutants and the
//! Explorer; the live run and the benchmark of the implementation. The binary (`main.rs`) is the
//! command line over it; tests use it directly.

pub mod bench;
pub mod checking;
pub mod explore;
pub mod model_args;
pub mod mutants;
pub mod run;
