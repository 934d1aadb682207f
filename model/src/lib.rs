//! The Aurora redo-log protocol of `docs/protocol.md`: its shared types and its stateright model.
//!
//! Shared with the implementation:
//! - [`types`]: the vocabulary (`Lsn`, identities, `Record`, `Msg`, `Envelope`).
//! - [`quorum`]: watermark arithmetic (contiguous prefixes, 4-of-6 points).
//! - [`invariants`]: the six safety invariants as pure predicates over ground truth.
//!
//! The model (no threads, no I/O):
//! - [`config`]: switches, fault budgets, seeded bugs, presets; `Config::into_model`.
//! - [`state`]: what a model state holds; [`network`]: the messages in flight.
//! - [`writer`], [`storage`], [`replica`]: each role's rules, one place each.
//! - [`model`]: the stateright `Model`: enabled steps and their effects.
//! - [`properties`]: the invariants, reachability facts and liveness as stateright properties.
//! - [`symmetry`]: the node-renaming reduction used with DFS.
//! - [`render`]: counterexamples as numbered steps, Mermaid and SVG.

pub mod config;
pub mod invariants;
pub mod model;
pub mod network;
pub mod properties;
pub mod quorum;
pub mod render;
pub mod replica;
pub mod state;
pub mod storage;
pub mod symmetry;
pub mod types;
pub mod writer;

pub use config::{AckPolicy, Bug, Config, NetworkKind, Preset};
pub use model::{Action, RedoModel};
pub use state::State;
pub use types::*;
