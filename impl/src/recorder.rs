//! Recording the protocol as it runs, for trace validation.
//!
//! When the engine is started with a [`TraceSink`], every step a role state machine takes is
//! recorded as a [`TraceEvent`]: the very input the machine consumed (a client append, a batch of
//! delivered messages, a flush completion, a tick), plus the faults. Each event is recorded while
//! the engine holds the lock of the machine that consumes it, so the order of the recording is a
//! real linearization: every machine sees its inputs in recorded order, and a message is
//! delivered only after the step that sent it was recorded. Replaying the events on fresh role
//! machines therefore reproduces the engine's states exactly. Sends are not recorded: the replay
//! recomputes them from the machines' outputs.
//!
//! Without a sink the engine records nothing and clones nothing.

use aurora_redo_model::types::{Az, Lsn, NodeId, Record, ReplicaId};

use crate::replica::ReplicaInput;
use crate::storage::StorageInput;
use crate::sync::{lock, Mutex};
use crate::writer::WriterInput;

/// One recorded protocol event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// The writer consumed this input (a client append, an `Ack`/`Flushed`, a tick).
    Writer(WriterInput),
    /// A storage node consumed this input: a batch of delivered messages (one state-machine
    /// step: the node acknowledges a batch of appends once and issues at most one flush job per
    /// step), or its flusher's completion.
    Node { node: NodeId, input: StorageInput },
    /// A replica consumed this input (`Available`, `Flushed`, `Records`, a tick).
    Replica {
        replica: ReplicaId,
        input: ReplicaInput,
    },
    /// A storage node crashed; its disk kept the synced prefix `1..=on_disk`.
    NodeCrashed { node: NodeId, on_disk: Lsn },
    /// A crashed node restarted, recovering these records from its segment file.
    NodeRestarted {
        node: NodeId,
        recovered: Vec<Record>,
    },
    /// A replica crashed and restarted empty as `incarnation`.
    ReplicaRestarted {
        replica: ReplicaId,
        incarnation: u32,
    },
    /// An AZ outage began (`Some`) or ended (`None`).
    AzOutage(Option<Az>),
}

/// Receives trace events, in the order they take effect.
pub trait TraceSink: Send + Sync {
    fn record(&self, event: TraceEvent);
}

/// A sink that keeps every event in memory.
pub struct Recorder {
    events: Mutex<Vec<TraceEvent>>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            events: Mutex::new(Vec::new()),
        }
    }

    /// The events recorded so far, in order.
    pub fn events(&self) -> Vec<TraceEvent> {
        lock(&self.events).clone()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl TraceSink for Recorder {
    fn record(&self, event: TraceEvent) {
        lock(&self.events).push(event);
    }
}
