//! Integration tests across the workspace's crates live in `tests/`; this library only gives them
//! a shared helper.

use aurora_redo::checking::{check, Report, Run, Stop, Strategy};
use aurora_redo_model::Config;

/// Checks `config` exhaustively, depth-first with symmetry on two threads, as `aurora-redo check`
/// does by default.
pub fn check_exhaustively(config: Config) -> Report {
    check(&Run {
        config,
        strategy: Strategy::Dfs,
        threads: 2,
        timeout: None,
        stop: Stop::Never,
        progress: false,
    })
}

pub mod conformance;
