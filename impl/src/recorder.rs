//! Recording the protocol as it runs, for the recording check.
//!
//! When the engine is started with a [`StepSink`], every step a role state machine takes is
//! recorded as a [`Step`]: the very input the machine consumed (a client append, a batch of
//! delivered messages, a flush completion, a tick), plus the faults. Each event is recorded while
//! the engine holds the lock of the machine that consumes it, so the order of the recording is a
//! real linearization: every machine sees its inputs in recorded order, and a message is
//! delivered only after the step that sent it was recorded. Replaying the steps on a fresh
//! [`crate::cluster::Cluster`] therefore reproduces the engine's states exactly. Sends are not recorded: the replay
//! recomputes them from the machines' outputs.
//!
//! Without a sink the engine records nothing and clones nothing.

pub use crate::cluster::Step;
use crate::sync::{lock, Mutex};

/// Receives steps, in the order they take effect.
pub trait StepSink: Send + Sync {
    fn record(&self, step: Step);
}

/// A sink that keeps every step in memory.
pub struct Recorder {
    steps: Mutex<Vec<Step>>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            steps: Mutex::new(Vec::new()),
        }
    }

    /// The steps recorded so far, in order.
    pub fn steps(&self) -> Vec<Step> {
        lock(&self.steps).clone()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl StepSink for Recorder {
    fn record(&self, step: Step) {
        lock(&self.steps).push(step);
    }
}
