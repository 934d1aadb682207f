//! The Aurora redo-log protocol of `docs/protocol.md`: its shared types and its stateright model.
//!
//! Shared with the implementation:
//! - [`types`]: the vocabulary (`Lsn`, identities, `Record`, `Msg`, `Envelope`).
//! - [`quorum`]: watermark arithmetic (contiguous prefixes, 4-of-6 points).
//! - [`recovery`]: the recovery rules (the recovery point of a read quorum, what truncation
//!   annuls).
//! - [`invariants`]: the nine safety invariants as pure predicates over ground truth, each with
//!   its name.
//!
//! The model (no threads, no I/O):
//! - [`config`]: switches, fault budgets, seeded bugs, presets.
//! - [`state`]: what a model state holds, and the ghost bookkeeping (`State::judge_*`) that
//!   records, as a step happens, the facts the invariants judge by; [`network`]: the messages in
//!   flight; [`fingerprint`]: how a state is hashed.
//! - [`writer`], [`storage`], [`replica`]: each role's rules, one place each.
//! - [`model`]: the stateright `Model`: enabled steps and their effects; `Config::into_model`.
//! - [`properties`]: the invariants, reachability facts and liveness as stateright properties.
//! - [`symmetry`]: the node-renaming reduction used with DFS; [`reduction`]: the fault-window
//!   and one-replica reductions, and why they keep every verdict.
//! - [`render`]: counterexamples as numbered steps, Mermaid and SVG.
//! - [`view`]: a state in words (violations with their evidence, then each actor), as the
//!   Explorer shows it.
//!
//! Imports run one way: `config` and `state` use only the shared modules; the role rules use
//! those; `model` dispatches to the rules. `properties` is used by `model` alone (and by the
//! checker's reports), so no rule, and not `config`, depends on the checking.

pub mod config;
pub mod fingerprint;
pub mod invariants;
pub mod model;
pub mod network;
pub mod properties;
pub mod quorum;
pub mod recovery;
pub mod reduction;
pub mod render;
pub mod replica;
pub mod state;
pub mod storage;
pub mod symmetry;
pub mod types;
pub mod view;
pub mod writer;

pub use config::{AckPolicy, Bug, Config, NetworkKind, Preset};
pub use model::{Action, Moves, RedoModel};
pub use reduction::Reduction;
pub use state::State;
pub use types::*;
