//! The Aurora redo-log protocol: its shared types and its stateright model.
//!
//! - [`types`]: the vocabulary shared with the implementation (`Lsn`, identities, `Record`, `Msg`).
//! - [`quorum`]: watermark arithmetic (contiguous prefixes, 4-of-6 points).
//! - [`invariants`]: the six safety invariants as pure predicates over ground truth.

pub mod invariants;
pub mod quorum;
pub mod types;

pub use types::*;
