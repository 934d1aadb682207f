//! An executable, concurrent implementation of the Aurora redo-log protocol of `docs/protocol.md`.
//!
//! - Role state machines, pure (no I/O, no threads): [`writer::Writer`],
//!   [`storage::StorageNode`], [`replica::Replica`]. Each has `handle(input) -> outputs` and
//!   watermark accessors.
//! - Durable storage: [`segment`] (framed, CRC-checked records; recovery) over a [`disk::Disk`]
//!   (real files, or a simulated disk for shuttle).
//! - [`output`]: what the machines ask their drivers to do, sorted the same way by every driver.
//! - [`cluster::Cluster`]: the machines stepped deterministically, one [`cluster::Step`] at a time
//!   (replaying a recording, conformance, counterexample replay).
//! - Concurrency: [`engine::Engine`] drives the machines with threads and [`transport`] mailboxes,
//!   with [`faults`] injected; [`watermark`] and [`retain`] are the shared concurrent pieces.
//! - [`recorder`] records every protocol step, when asked, for the recording check.
//! - [`monitor::Monitor`] checks the six safety invariants at run time via [`observer`] events.
//! - [`volume`]: crash recovery of a volume on its segment files (read phase, plan, write phase).
//! - [`sync`] is the one place naming std, loom or shuttle primitives.

pub mod cluster;
pub mod config;
pub mod disk;
pub mod engine;
pub mod faults;
pub mod flusher;
pub mod ghost_log;
pub mod lock;
pub mod monitor;
pub mod observer;
pub mod output;
pub mod recorder;
pub mod replica;
pub mod retain;
pub mod segment;
pub mod storage;
pub mod sync;
pub mod tracker;
pub mod transport;
pub mod volume;
pub mod watermark;
pub mod writer;

pub use config::{AckPolicy, EngineConfig, ImplBug};
