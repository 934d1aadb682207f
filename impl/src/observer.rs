//! Ghost events: what the roles really did, for the runtime invariant monitor.
//!
//! The role state machines emit these alongside their messages; they change nothing in the
//! protocol. The engine forwards them to an [`Observer`] synchronously, in the emitting thread,
//! before the step's messages leave, so the monitor judges each event at the moment it happens.

use aurora_redo_model::types::{Epoch, Lsn, NodeId, Record, ReplicaId};

/// One ghost event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The writer created `record` (before sending it anywhere).
    Appended(Record),
    /// `node` sent an `Ack` (and `Available`) carrying `sent`, while really holding the contiguous
    /// prefix `1..=held` (memory or disk).
    Acked {
        node: NodeId,
        sent: Lsn,
        held: Lsn,
        epoch: Epoch,
    },
    /// The writer's commit point is now `lsn`.
    Committed(Lsn),
    /// `node`'s segment file holds `1..=lsn` and the fsync covering it has returned.
    Synced { node: NodeId, lsn: Lsn },
    /// `node` crashed: its memory is gone and its unsynced bytes may be lost.
    NodeCrashed(NodeId),
    /// `node` restarted from its segment file holding `1..=lsn`; `damage` describes any corrupt or
    /// torn bytes that recovery reported and cut out.
    NodeRecovered {
        node: NodeId,
        lsn: Lsn,
        damage: Option<String>,
    },
    /// `replica` (in its `incarnation`) applied `record` to its pages.
    Applied {
        replica: ReplicaId,
        incarnation: u32,
        record: Record,
    },
    /// `replica` dropped record `lsn` from its retain buffer (or never retained it because it was
    /// already durable when applied).
    Discarded { replica: ReplicaId, lsn: Lsn },
    /// `replica`'s durable LSN (in its `incarnation`) is now `lsn`.
    ReplicaDurable {
        replica: ReplicaId,
        incarnation: u32,
        lsn: Lsn,
    },
    /// A failover: a new writer of `epoch` began recovering (the old writer's commit point and
    /// log are what clients were told).
    FailedOver { epoch: Epoch },
    /// The recovering writer of `epoch` fixed its recovery point: its log is `log` (`1..=point`).
    Recovered {
        epoch: Epoch,
        point: Lsn,
        log: Vec<Record>,
    },
    /// `node` persisted the seal of `epoch` at `point`: it holds `1..=point` on disk, and
    /// `tail` above it (records no seal annulled).
    Sealed {
        node: NodeId,
        epoch: Epoch,
        point: Lsn,
        tail: Vec<Record>,
    },
    /// `node`, having adopted `adopted`, took `record` into its log (EpochFencing).
    Took {
        node: NodeId,
        adopted: Epoch,
        record: Record,
    },
    /// `replica` now follows `epoch`, starting over empty as `incarnation`.
    ReplicaFollows {
        replica: ReplicaId,
        incarnation: u32,
        epoch: Epoch,
    },
    /// `replica` crashed and restarted empty as `incarnation`.
    ReplicaRestarted {
        replica: ReplicaId,
        incarnation: u32,
    },
}

/// Receives ghost events. Implemented by the runtime monitor; tests may implement it to record.
pub trait Observer: Send + Sync {
    fn observe(&self, event: &Event);
}

/// An observer that ignores everything.
pub struct NoObserver;

impl Observer for NoObserver {
    fn observe(&self, _event: &Event) {}
}
