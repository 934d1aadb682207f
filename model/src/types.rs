//! The protocol's vocabulary, shared by the model and the implementation: log sequence numbers,
//! the identities of the actors and availability zones, the redo record and the one message type.
//!
//! Nothing here knows about model checking or I/O; both crates speak these types, so a message the
//! model sends is byte-for-byte the message the engine sends.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Number of storage nodes in a protection group (two per availability zone).
pub const STORAGE_NODES: usize = 6;
/// Acknowledgements (or disks) needed for a write quorum: 4 of 6.
pub const WRITE_QUORUM: usize = 4;
/// Nodes in a read quorum: 3 of 6. Any read quorum meets any write quorum.
pub const READ_QUORUM: usize = 3;

/// A log sequence number. The writer numbers records 1, 2, 3, ...; `Lsn::ZERO` means "nothing".
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Lsn(pub u64);

impl Lsn {
    pub const ZERO: Lsn = Lsn(0);

    /// The LSN after this one.
    pub fn next(self) -> Lsn {
        Lsn(self.0 + 1)
    }

    /// The LSNs `1..=self`, in order.
    pub fn prefix(self) -> impl DoubleEndedIterator<Item = Lsn> {
        (1..=self.0).map(Lsn)
    }
}

impl fmt::Debug for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An availability zone. Each holds two storage nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Az {
    A,
    B,
    C,
}

impl Az {
    pub const ALL: [Az; 3] = [Az::A, Az::B, Az::C];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The two storage nodes of this zone.
    pub fn nodes(self) -> [NodeId; 2] {
        let first = 2 * self.index() as u8;
        [NodeId(first), NodeId(first + 1)]
    }
}

/// A storage node `S0..S5`. Node `i` lives in zone `i / 2`: AZ a = {S0,S1}, b = {S2,S3},
/// c = {S4,S5}.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u8);

impl NodeId {
    /// All six nodes, in order.
    pub fn all() -> impl Iterator<Item = NodeId> {
        (0..STORAGE_NODES as u8).map(NodeId)
    }

    pub fn index(self) -> usize {
        self.0 as usize
    }

    pub fn az(self) -> Az {
        Az::ALL[self.index() / 2]
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A read replica `R0, R1, ...`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReplicaId(pub u8);

impl ReplicaId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "R{}", self.0)
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Every participant that can send or receive a message.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Actor {
    Writer,
    Storage(NodeId),
    Replica(ReplicaId),
}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Writer => write!(f, "W"),
            Actor::Storage(n) => write!(f, "{n:?}"),
            Actor::Replica(r) => write!(f, "{r:?}"),
        }
    }
}

impl From<NodeId> for Actor {
    fn from(node: NodeId) -> Actor {
        Actor::Storage(node)
    }
}

impl From<ReplicaId> for Actor {
    fn from(replica: ReplicaId) -> Actor {
        Actor::Replica(replica)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A data page number.
pub type PageId = u32;

/// Which writer an epoch belongs to. Two writers may pick the same epoch number (each from what it
/// saw); their ids keep their epochs apart (`docs/protocol.md`, "One writer per epoch").
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WriterId(pub u32);

impl fmt::Debug for WriterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "W{}", self.0)
    }
}

impl fmt::Display for WriterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A volume epoch: which writer incarnation a record or a message belongs to, as the pair
/// `(number, writer)`, ordered by number first, then by writer id. The first writer writes in
/// `Epoch::FIRST`; each recovery (writer failover) runs in a higher epoch, and a storage node that
/// has adopted an epoch takes nothing from an older one (`docs/protocol.md`, "Recovery" and "One
/// writer per epoch"). The writer id makes epochs unique even when two writers pick the same
/// number.
///
/// It serializes as `{"number": n, "writer": w}` and also reads the older plain number `n` (as
/// `n` of writer 0), so files written before epochs had writers still load.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Epoch {
    number: u32,
    writer: WriterId,
}

impl Epoch {
    pub const FIRST: Epoch = Epoch::new(0, WriterId(0));

    pub const fn new(number: u32, writer: WriterId) -> Epoch {
        Epoch { number, writer }
    }

    /// Epoch `number` of writer 0 (the only writer id a single process uses).
    pub const fn numbered(number: u32) -> Epoch {
        Epoch::new(number, WriterId(0))
    }

    pub fn number(self) -> u32 {
        self.number
    }

    pub fn writer(self) -> WriterId {
        self.writer
    }

    /// The next number, for the same writer.
    pub fn next(self) -> Epoch {
        Epoch::new(self.number + 1, self.writer)
    }
}

/// Reads what `Display` writes: `e2` (writer 0) or `e2.1`.
impl std::str::FromStr for Epoch {
    type Err = String;

    fn from_str(text: &str) -> Result<Epoch, String> {
        let bad = || format!("not an epoch (e<number> or e<number>.<writer>): {text:?}");
        let rest = text.strip_prefix('e').ok_or_else(bad)?;
        let (number, writer) = rest.split_once('.').unwrap_or((rest, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(number) || !digits(writer) {
            return Err(bad());
        }
        let number = number.parse().map_err(|_| bad())?;
        let writer = writer.parse().map_err(|_| bad())?;
        Ok(Epoch::new(number, WriterId(writer)))
    }
}

/// The pair as it is serialized (a binary format, which cannot tell the forms apart, reads this).
#[derive(Deserialize)]
#[serde(rename = "Epoch")]
struct EpochPair {
    number: u32,
    writer: WriterId,
}

/// The forms a text format reads an epoch from: the pair, or the older plain number.
#[derive(Deserialize)]
#[serde(untagged)]
enum EpochForm {
    Number(u32),
    Pair(EpochPair),
}

impl<'de> Deserialize<'de> for Epoch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Epoch, D::Error> {
        let EpochPair { number, writer } = if deserializer.is_human_readable() {
            match EpochForm::deserialize(deserializer)? {
                EpochForm::Number(number) => return Ok(Epoch::numbered(number)),
                EpochForm::Pair(pair) => pair,
            }
        } else {
            EpochPair::deserialize(deserializer)?
        };
        Ok(Epoch::new(number, writer))
    }
}

/// `e2` for an epoch of writer 0, `e2.1` for epoch 2 of writer 1.
impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.writer {
            WriterId(0) => write!(f, "e{}", self.number),
            WriterId(w) => write!(f, "e{}.{w}", self.number),
        }
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A redo record: "set `page` to `value`", numbered by the writer. LSNs above a recovery point
/// are reused by the next epoch, so a record's identity is its `(epoch, lsn)`: the epoch of the
/// writer that created it, which re-replication by a later writer keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Record {
    pub lsn: Lsn,
    pub page: PageId,
    pub value: u64,
    /// The epoch of the writer that created the record (older counterexample files, which predate
    /// epochs, read as the first).
    #[serde(default)]
    pub epoch: Epoch,
}

/// The one message type of the protocol (`docs/protocol.md`, "Messages"). The watermark messages
/// and `Records` carry the epoch the sending node speaks for (older files, which predate epochs,
/// read as the first); the recovery messages (`Read`, `ReadAnswer`, `Seal`, `Sealed`) are the
/// engine's exchange for the model's atomic `Read` and `Seal` steps.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Msg {
    /// W -> every S: a new redo record. Batches travel as several `Append`s in one delivery.
    Append(Record),
    /// S -> W: the node's SCL after receipt (ack policy `memory`) or after persisting (`disk`).
    Ack {
        node: NodeId,
        scl: Lsn,
        #[serde(default)]
        epoch: Epoch,
    },
    /// S -> every R: "new LSN available"; sent with every `Ack`, carrying the same SCL.
    Available {
        node: NodeId,
        scl: Lsn,
        #[serde(default)]
        epoch: Epoch,
    },
    /// R -> one S: send me the records from `from` on.
    Pull { from: Lsn },
    /// S -> R: the records `>= from` that the node holds, in memory or on disk (may be empty).
    Records {
        node: NodeId,
        records: Vec<Record>,
        #[serde(default)]
        epoch: Epoch,
    },
    /// S -> every R (and W): the node's flushed LSN after a flush completed.
    Flushed {
        node: NodeId,
        lsn: Lsn,
        #[serde(default)]
        epoch: Epoch,
    },
    /// W -> S (recovery, read phase): adopt `epoch` (persisted) and tell me your state.
    Read { epoch: Epoch },
    /// S -> W: the answer to a `Read`: the node's adopted `epoch`, its sealed epoch, its SCL and
    /// its records `1..=scl`.
    ReadAnswer {
        node: NodeId,
        epoch: Epoch,
        sealed: Epoch,
        scl: Lsn,
        records: Vec<Record>,
    },
    /// W -> S (recovery, write phase): store `records` (`1..=point`), annul every record above
    /// `point` of an older epoch, persist the truncation in `epoch`, then speak for it.
    Seal {
        epoch: Epoch,
        point: Lsn,
        records: Vec<Record>,
    },
    /// S -> W: the node has persisted the seal of `epoch`.
    Sealed { node: NodeId, epoch: Epoch },
}

/// `LSN 1 (page 0 = 101)`; a record of a later epoch names it: `LSN 2 of e1 (page 1 = 112)`.
impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LSN {}", self.lsn)?;
        if self.epoch != Epoch::FIRST {
            write!(f, " of {}", self.epoch)?;
        }
        write!(f, " (page {} = {})", self.page, self.value)
    }
}

/// The message in words, without its sender (an envelope names that): `Append LSN 1 (page 0 =
/// 101)`, `Ack SCL 2`, `Available SCL 2`, `Pull from 3`, `Records [1, 2]`, `Flushed 2`.
impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Append(r) => write!(f, "Append {r}"),
            Msg::Ack { scl, .. } => write!(f, "Ack SCL {scl}"),
            Msg::Read { epoch } => write!(f, "Read in {epoch}"),
            Msg::ReadAnswer {
                sealed, scl, epoch, ..
            } => write!(f, "ReadAnswer in {epoch}: sealed {sealed}, SCL {scl}"),
            Msg::Seal { epoch, point, .. } => write!(f, "Seal {epoch} at {point}"),
            Msg::Sealed { epoch, .. } => write!(f, "Sealed {epoch}"),
            Msg::Available { scl, .. } => write!(f, "Available SCL {scl}"),
            Msg::Pull { from } => write!(f, "Pull from {from}"),
            Msg::Records { records, .. } => {
                let lsns: Vec<String> = records
                    .iter()
                    .map(|r| match r.epoch {
                        Epoch::FIRST => r.lsn.to_string(),
                        epoch => format!("{} of {epoch}", r.lsn),
                    })
                    .collect();
                write!(f, "Records [{}]", lsns.join(", "))
            }
            Msg::Flushed { lsn, .. } => write!(f, "Flushed {lsn}"),
        }
    }
}

impl Msg {
    /// The storage node a message speaks for, if it carries one.
    pub fn node(&self) -> Option<NodeId> {
        match self {
            Msg::Ack { node, .. }
            | Msg::Available { node, .. }
            | Msg::Records { node, .. }
            | Msg::Flushed { node, .. }
            | Msg::ReadAnswer { node, .. }
            | Msg::Sealed { node, .. } => Some(*node),
            Msg::Append(_) | Msg::Pull { .. } | Msg::Read { .. } | Msg::Seal { .. } => None,
        }
    }

    /// The epoch a node's message speaks for (`None` for messages that carry none).
    pub fn epoch(&self) -> Option<Epoch> {
        match self {
            Msg::Ack { epoch, .. }
            | Msg::Available { epoch, .. }
            | Msg::Records { epoch, .. }
            | Msg::Flushed { epoch, .. }
            | Msg::Read { epoch }
            | Msg::ReadAnswer { epoch, .. }
            | Msg::Seal { epoch, .. }
            | Msg::Sealed { epoch, .. } => Some(*epoch),
            Msg::Append(r) => Some(r.epoch),
            Msg::Pull { .. } => None,
        }
    }
}

/// A message in flight from `src` to `dst`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Envelope {
    pub src: Actor,
    pub dst: Actor,
    pub msg: Msg,
}

/// The protocol's messages, each from the sender the protocol gives it. A destination that may be
/// more than one kind of actor is an `impl Into<Actor>`: a `ReplicaId`, a `NodeId` or an `Actor`.
impl Envelope {
    /// W -> S`node`: a new redo record.
    pub fn append(node: NodeId, record: Record) -> Envelope {
        Envelope {
            src: Actor::Writer,
            dst: Actor::Storage(node),
            msg: Msg::Append(record),
        }
    }

    /// S`node` -> W: the node's SCL.
    pub fn ack(node: NodeId, scl: Lsn) -> Envelope {
        Envelope::from_node(
            node,
            Actor::Writer,
            Msg::Ack {
                node,
                scl,
                epoch: Epoch::FIRST,
            },
        )
    }

    /// S`node` -> `to` (a replica): "new LSN available", carrying the SCL of the `Ack`.
    pub fn available(node: NodeId, to: impl Into<Actor>, scl: Lsn) -> Envelope {
        Envelope::from_node(
            node,
            to.into(),
            Msg::Available {
                node,
                scl,
                epoch: Epoch::FIRST,
            },
        )
    }

    /// S`node` -> `to` (a replica, or the writer): the node's flushed LSN.
    pub fn flushed(node: NodeId, to: impl Into<Actor>, lsn: Lsn) -> Envelope {
        Envelope::from_node(
            node,
            to.into(),
            Msg::Flushed {
                node,
                lsn,
                epoch: Epoch::FIRST,
            },
        )
    }

    /// R`replica` -> S`node`: send me the records from `from` on.
    pub fn pull(replica: ReplicaId, node: NodeId, from: Lsn) -> Envelope {
        Envelope {
            src: Actor::Replica(replica),
            dst: Actor::Storage(node),
            msg: Msg::Pull { from },
        }
    }

    /// S`node` -> `to` (whoever pulled): the records it holds from the pulled LSN on.
    pub fn records(node: NodeId, to: impl Into<Actor>, records: Vec<Record>) -> Envelope {
        Envelope::from_node(
            node,
            to.into(),
            Msg::Records {
                node,
                records,
                epoch: Epoch::FIRST,
            },
        )
    }

    /// The same message, sent in `epoch` (a node's message of a later epoch than the first).
    pub fn in_epoch(mut self, to: Epoch) -> Envelope {
        match &mut self.msg {
            Msg::Ack { epoch, .. }
            | Msg::Available { epoch, .. }
            | Msg::Records { epoch, .. }
            | Msg::Flushed { epoch, .. } => *epoch = to,
            _ => {}
        }
        self
    }

    fn from_node(node: NodeId, dst: Actor, msg: Msg) -> Envelope {
        Envelope {
            src: Actor::Storage(node),
            dst,
            msg,
        }
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} -> {:?} {:?}", self.src, self.dst, self.msg)
    }
}

/// `W -> S3 Append LSN 1 (page 0 = 101)`.
impl fmt::Display for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {} {}", self.src, self.dst, self.msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_sit_two_per_zone() {
        for az in Az::ALL {
            for node in az.nodes() {
                assert_eq!(node.az(), az);
            }
        }
        assert_eq!(NodeId::all().count(), STORAGE_NODES);
    }

    #[test]
    fn envelopes_print_as_steps() {
        let env = Envelope::flushed(NodeId(3), ReplicaId(0), Lsn(2));
        assert_eq!(
            format!("{env:?}"),
            "S3 -> R0 Flushed { node: S3, lsn: 2, epoch: e0 }"
        );
        assert_eq!(env.to_string(), "S3 -> R0 Flushed 2");
        let append = Envelope::append(
            NodeId(1),
            Record {
                lsn: Lsn(1),
                page: 0,
                value: 101,
                epoch: Epoch::FIRST,
            },
        );
        assert_eq!(append.to_string(), "W -> S1 Append LSN 1 (page 0 = 101)");
    }

    #[test]
    fn epochs_order_by_number_then_writer() {
        let (a, b) = (Epoch::new(1, WriterId(2)), Epoch::new(1, WriterId(3)));
        assert!(Epoch::FIRST < a && a < b && b < Epoch::new(2, WriterId(0)));
        assert_eq!(Epoch::numbered(1).next(), Epoch::numbered(2));
        assert_eq!(a.next(), Epoch::new(2, WriterId(2)));
        assert_eq!((b.number(), b.writer()), (1, WriterId(3)));
        assert_eq!(
            (Epoch::FIRST.to_string(), b.to_string()),
            ("e0".into(), "e1.3".into())
        );
        for epoch in [Epoch::FIRST, a, b, Epoch::numbered(7)] {
            assert_eq!(epoch.to_string().parse::<Epoch>(), Ok(epoch));
        }
        for bad in ["", "e", "1", "e1.", "e.1", "e-1", "e1.2.3", "x1"] {
            assert!(bad.parse::<Epoch>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn epochs_read_the_pair_and_the_older_plain_number() {
        let epoch = Epoch::new(2, WriterId(1));
        let json = serde_json::to_string(&epoch).unwrap();
        assert_eq!(json, r#"{"number":2,"writer":1}"#);
        assert_eq!(serde_json::from_str::<Epoch>(&json).unwrap(), epoch);
        assert_eq!(
            serde_json::from_str::<Epoch>("3").unwrap(),
            Epoch::numbered(3)
        );
        let old: Msg = serde_json::from_str(r#"{"Read":{"epoch":1}}"#).unwrap();
        assert_eq!(
            old,
            Msg::Read {
                epoch: Epoch::numbered(1)
            }
        );
        assert!(serde_json::from_str::<Epoch>(r#""e1""#).is_err());
    }
}
