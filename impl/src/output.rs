//! What a role machine asks its driver to do, and the one place that sorts it.
//!
//! Every role machine (`Writer`, `StorageNode`, `Replica`) answers an input with a list of
//! [`Output`]s. Every driver (the threaded [`crate::engine`], the deterministic
//! [`crate::cluster::Cluster`]) sorts them the same way, into [`Effects`]: messages to send, flush
//! jobs and read-backs to hand to the node's disk (its flusher), and ghost events for the runtime
//! monitor.

use aurora_redo_model::types::{Actor, Envelope, Epoch, Lsn, Record};

use crate::segment::Seal;

use crate::observer::Event;

/// One thing a role machine asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Put this message on the network.
    Send(Envelope),
    /// (Storage nodes only.) Append these records (a contiguous run just above the flushed LSN)
    /// to the segment file, sync it, then feed back `FlushDone { upto: last record's LSN }`.
    Persist(Vec<Record>),
    /// (Storage nodes only.) Read the records `from..=upto` back from the segment file (they are
    /// flushed, and no longer in memory) and feed them back as
    /// [`crate::storage::StorageInput::ReadDone`]: the node then answers `to`'s `Pull`.
    ReadBack(ReadBack),
    /// A ghost event for the runtime monitor; it changes nothing in the protocol.
    Observe(Event),
    /// (Storage nodes only, recovery.) Write this to the segment and sync it *before* sending
    /// anything else of this step: the node's answer or announcement that follows relies on it.
    Durable(Durable),
}

/// A recovery fact a storage node persists synchronously ([`Output::Durable`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Durable {
    /// The node adopted `epoch` on a recovery's read (an adopt frame): it takes no older epoch.
    Adopt(Epoch),
    /// The recovery's write phase at the node: `records` (of `1..=seal.point`, those above what
    /// the node had flushed), then the seal frame.
    Seal { seal: Seal, records: Vec<Record> },
}

/// A read of flushed records that a `Pull` needs: `from..=upto`, at most `max_batch` records,
/// every one of them on the node's disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadBack {
    /// Who pulled.
    pub to: Actor,
    pub from: Lsn,
    pub upto: Lsn,
}

/// The outputs of one or more steps, sorted by what the driver does with them, each list in the
/// order the machines produced it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Messages to send.
    pub sent: Vec<Envelope>,
    /// Flush jobs, in the order they were issued.
    pub persist: Vec<Vec<Record>>,
    /// Segment reads, in the order they were asked for.
    pub read_back: Vec<ReadBack>,
    /// Ghost events, in the order they happened.
    pub observed: Vec<Event>,
    /// Recovery facts persisted (synchronously, before the sends), in order.
    pub durable: Vec<Durable>,
}

impl Effects {
    /// Whether the steps asked for nothing at all.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
            && self.persist.is_empty()
            && self.read_back.is_empty()
            && self.observed.is_empty()
            && self.durable.is_empty()
    }
}

impl Extend<Output> for Effects {
    fn extend<I: IntoIterator<Item = Output>>(&mut self, outputs: I) {
        for o in outputs {
            match o {
                Output::Send(e) => self.sent.push(e),
                Output::Persist(records) => self.persist.push(records),
                Output::ReadBack(read) => self.read_back.push(read),
                Output::Observe(ev) => self.observed.push(ev),
                Output::Durable(d) => self.durable.push(d),
            }
        }
    }
}

impl FromIterator<Output> for Effects {
    fn from_iter<I: IntoIterator<Item = Output>>(outputs: I) -> Effects {
        let mut fx = Effects::default();
        fx.extend(outputs);
        fx
    }
}
