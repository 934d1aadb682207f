//! The model's state: what each actor holds, what is in flight, which faults have been spent,
//! and the ghost facts the invariants judge by, with the bookkeeping that keeps them (the
//! `judge_*` methods, which the role rules and the step call at the moment a fact arises).

use crate::invariants::{discard_is_safe, never_decreases};
use crate::network::Network;
use crate::quorum::quorum_watermark;
use crate::types::{Az, Epoch, Lsn, NodeId, PageId, Record, ReplicaId, STORAGE_NODES};
use std::fmt;

/// Pages in the model's tiny database. Record `L` writes page `(L - 1) % PAGES`.
pub const PAGES: usize = 2;

/// The record the writer creates for `lsn`. The model's records are a function of their LSN, so
/// no state has to carry them; the replica's page image still shows order and gaps.
pub fn record_for(lsn: Lsn) -> Record {
    Record {
        lsn,
        page: ((lsn.0 - 1) % PAGES as u64) as PageId,
        value: 100 + lsn.0,
        epoch: Epoch::FIRST,
    }
}

/// A set of LSNs `1..=16` as a bitmask.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LsnSet(u16);

impl LsnSet {
    pub const EMPTY: LsnSet = LsnSet(0);

    fn bit(lsn: Lsn) -> u16 {
        debug_assert!(
            (1..=16).contains(&lsn.0),
            "LSN {lsn} outside the model's range"
        );
        1 << (lsn.0 - 1)
    }

    pub fn contains(self, lsn: Lsn) -> bool {
        lsn.0 >= 1 && lsn.0 <= 16 && self.0 & Self::bit(lsn) != 0
    }

    pub fn insert(&mut self, lsn: Lsn) {
        self.0 |= Self::bit(lsn);
    }

    pub fn union(self, other: LsnSet) -> LsnSet {
        LsnSet(self.0 | other.0)
    }

    /// Removes every LSN `<= upto`, returning the removed ones.
    pub fn remove_through(&mut self, upto: Lsn) -> LsnSet {
        let mask = if upto.0 >= 16 {
            u16::MAX
        } else {
            (1u16 << upto.0) - 1
        };
        let removed = LsnSet(self.0 & mask);
        self.0 &= !mask;
        removed
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The highest member, or `Lsn::ZERO`.
    pub fn max(self) -> Lsn {
        Lsn(16 - self.0.leading_zeros() as u64)
    }

    /// The highest `L` with all of `1..=L` present.
    pub fn prefix(self) -> Lsn {
        Lsn(self.0.trailing_ones() as u64)
    }

    pub fn iter(self) -> impl Iterator<Item = Lsn> {
        (1..=16u64).map(Lsn).filter(move |&l| self.contains(l))
    }
}

/// `{1, 2}` on one line, even in `{:#?}`: the Explorer shows states that way.
impl fmt::Debug for LsnSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let members: Vec<String> = self.iter().map(|l| l.to_string()).collect();
        write!(f, "{{{}}}", members.join(", "))
    }
}

/// The writer: how far it has written, and its commit point.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Writer {
    pub written: Lsn,
    pub commit: Lsn,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeStatus {
    #[default]
    Up,
    /// Crashed: memory gone, disk kept; will restart.
    Crashed,
    /// Lost for good, disk and all.
    Lost,
}

/// A storage node: its in-memory log and its disk log.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Node {
    pub status: NodeStatus,
    pub mem: LsnSet,
    pub disk: LsnSet,
}

impl Node {
    /// Every record the node holds, in memory or on disk.
    pub fn held(&self) -> LsnSet {
        self.mem.union(self.disk)
    }

    /// The segment complete LSN: the contiguous prefix it holds.
    pub fn scl(&self) -> Lsn {
        self.held().prefix()
    }

    /// The flushed LSN: the contiguous prefix on its disk.
    pub fn flushed(&self) -> Lsn {
        self.disk.prefix()
    }

    pub fn is_up(&self) -> bool {
        self.status == NodeStatus::Up
    }
}

/// A read replica.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Replica {
    pub up: bool,
    /// Restarts so far; a restart begins a new incarnation that knows nothing.
    pub incarnation: u8,
    /// The commit point it has learned from `Available` announcements.
    pub known_commit: Lsn,
    /// Its durable LSN, learned from `Flushed` announcements.
    pub durable: Lsn,
    /// Highest LSN applied; records are applied in order, so `1..=applied` are applied.
    pub applied: Lsn,
    /// The LSN whose value each page shows (`Lsn::ZERO`: untouched).
    pub pages: [Lsn; PAGES],
    /// Applied records kept in memory until they are durable.
    pub retained: LsnSet,
    /// Ghost (no rule reads it): the applied records this incarnation freed through the discard
    /// rule. RetainUntilDurable compares it with `retained`: under the correct rules it is exactly
    /// the applied records no longer retained, so it adds no state.
    pub discarded: LsnSet,
}

impl Replica {
    pub fn fresh(incarnation: u8) -> Replica {
        Replica {
            up: true,
            incarnation,
            ..Replica::default()
        }
    }
}

/// What the nodes have announced: per node, the highest value it has sent in each kind of
/// watermark message. These messages stay receivable once sent (see `crate::model`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Announced {
    /// The highest SCL sent in an `Ack` (and the `Available` that travels with it).
    pub scl: [Lsn; STORAGE_NODES],
    /// The highest LSN sent in a `Flushed`.
    pub flushed: [Lsn; STORAGE_NODES],
    /// Every LSN sent in a `Flushed`. Kept only under the `durable-last-message` bug, the one rule
    /// that can act on a stale `Flushed` (a correct receiver only ever uses the highest).
    pub flushed_history: [LsnSet; STORAGE_NODES],
}

/// Facts about the run that no actor can see, kept for the invariants.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// Per node, the highest SCL it acked while really holding every record up to it.
    pub truthful_ack: [Lsn; STORAGE_NODES],
    /// Per node, the highest LSN its disk has ever held (a flushed prefix). A permanent loss
    /// wipes the disk but not this: what was flushed was flushed.
    pub disk_high: [Lsn; STORAGE_NODES],
    pub flags: Flags,
}

/// One-way ghost flags: set by a transition, never cleared.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    /// A replica discarded a record that was not durable.
    pub const UNSAFE_DISCARD: Flags = Flags(1);
    /// A durable LSN or the commit point moved backwards.
    pub const REGRESSED: Flags = Flags(2);
    /// The writer's commit point advanced after a storage crash.
    pub const COMMIT_AFTER_CRASH: Flags = Flags(4);
    /// The network lost a message.
    pub const DROPPED: Flags = Flags(8);

    pub fn contains(self, flag: Flags) -> bool {
        self.0 & flag.0 != 0
    }

    pub fn insert(&mut self, flag: Flags) {
        self.0 |= flag.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Flags::UNSAFE_DISCARD, "UNSAFE_DISCARD"),
            (Flags::REGRESSED, "REGRESSED"),
            (Flags::COMMIT_AFTER_CRASH, "COMMIT_AFTER_CRASH"),
            (Flags::DROPPED, "DROPPED"),
        ];
        let set: Vec<_> = names
            .iter()
            .filter(|(fl, _)| self.contains(*fl))
            .map(|(_, n)| n)
            .collect();
        write!(f, "{set:?}")
    }
}

/// Faults spent so far, against the configuration's budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FaultsUsed {
    pub storage_crashes: u8,
    pub replica_crashes: u8,
    pub az_outages: u8,
    pub lost_nodes: u8,
}

/// One state of the whole system. Its `Debug` (readable view, then the raw fields) is in
/// [`crate::view`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct State {
    pub writer: Writer,
    pub nodes: [Node; STORAGE_NODES],
    pub replicas: Vec<Replica>,
    /// `Append` messages in flight.
    pub network: Network,
    pub announced: Announced,
    /// The zone whose two nodes are unreachable, if any.
    pub az_out: Option<Az>,
    pub faults: FaultsUsed,
    pub ghost: Ghost,
}

impl State {
    pub fn new(replicas: u8) -> State {
        State {
            writer: Writer::default(),
            nodes: Default::default(),
            replicas: (0..replicas).map(|_| Replica::fresh(0)).collect(),
            network: Network::default(),
            announced: Announced::default(),
            az_out: None,
            faults: FaultsUsed::default(),
            ghost: Ghost::default(),
        }
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id.index()]
    }

    pub fn replica(&self, id: ReplicaId) -> &Replica {
        &self.replicas[id.index()]
    }

    pub fn replica_mut(&mut self, id: ReplicaId) -> &mut Replica {
        &mut self.replicas[id.index()]
    }

    /// Whether a node can send and receive: up, and not in a zone that is out.
    pub fn reachable(&self, id: NodeId) -> bool {
        self.node(id).is_up() && self.az_out != Some(id.az())
    }

    /// Ground truth: the highest `L` such that at least 4 nodes have `1..=L` on disk.
    pub fn volume_durable(&self) -> Lsn {
        quorum_watermark(self.nodes.iter().map(Node::flushed))
    }

    /// Ground truth with history: the highest `L` that at least 4 nodes have had on disk. Without
    /// permanent loss it is the volume durable LSN (disks only grow); with it, a destroyed disk
    /// still counts for what it held, so a loss is never mistaken for a protocol error.
    pub fn durable_so_far(&self) -> Lsn {
        quorum_watermark(self.ghost.disk_high)
    }

    /// Ground truth: how many disks hold `lsn`.
    pub fn disks_holding(&self, lsn: Lsn) -> usize {
        self.nodes.iter().filter(|n| n.disk.contains(lsn)).count()
    }

    /// The writer's page image after applying records `1..=applied`.
    pub fn writer_pages(applied: Lsn) -> [Lsn; PAGES] {
        let mut pages = [Lsn::ZERO; PAGES];
        for lsn in applied.prefix() {
            pages[record_for(lsn).page as usize] = lsn;
        }
        pages
    }

    /// Whether a record could still be read from storage: in the memory of a live node or on a
    /// disk that survives, counted over the nodes not lost for good.
    pub fn holders(&self, lsn: Lsn) -> (usize, usize) {
        let surviving = NodeId::all().filter(|&n| self.node(n).status != NodeStatus::Lost);
        let (mut holders, mut count) = (0, 0);
        for node in surviving {
            count += 1;
            if self.holds(node, lsn) {
                holders += 1;
            }
        }
        (holders, count)
    }

    /// Whether a node that is not lost for good could still give `lsn` to a reader: in its memory
    /// while it is up, or on its disk. [`State::holders`] counts these.
    pub fn holds(&self, node: NodeId, lsn: Lsn) -> bool {
        let node = self.node(node);
        let in_memory = node.is_up() && node.mem.contains(lsn);
        node.status != NodeStatus::Lost && (in_memory || node.disk.contains(lsn))
    }
}

// ---------------------------------------------------------------------------------------------
// Ghost bookkeeping: judgements made at the moment of a transition, recorded for the properties.

impl State {
    /// Judges a discard of `lsn` by replica `r`, through the discard rule, for
    /// **NoDiscardBeforeFlush**, and records it for **RetainUntilDurable**.
    pub(crate) fn judge_discard(&mut self, r: ReplicaId, lsn: Lsn) {
        self.replica_mut(r).discarded.insert(lsn);
        if !discard_is_safe(lsn, self.durable_so_far()) {
            self.ghost.flags.insert(Flags::UNSAFE_DISCARD);
        }
    }

    /// Records what a node's disk holds after a flush, the only step that adds to a disk.
    pub(crate) fn judge_flush(&mut self, node: NodeId) {
        let high = &mut self.ghost.disk_high[node.index()];
        *high = (*high).max(self.nodes[node.index()].flushed());
    }

    /// Records a commit after a storage crash (a reachability fact).
    pub(crate) fn judge_commit(&mut self) {
        if self.faults.storage_crashes > 0 {
            self.ghost.flags.insert(Flags::COMMIT_AFTER_CRASH);
        }
    }

    /// Judges the transition from `before` to this state for **DurableLsnMonotonic**: the
    /// writer's commit point, the volume durable LSN (unless a node was lost for good, which
    /// destroys disks by definition) and each replica's durable LSN within one incarnation.
    pub(crate) fn judge_step(&mut self, before: &State) {
        let mut regressed = !never_decreases(before.writer.commit, self.writer.commit);
        if self.faults.lost_nodes == 0 {
            regressed |= !never_decreases(before.volume_durable(), self.volume_durable());
        }
        for (b, a) in before.replicas.iter().zip(&self.replicas) {
            regressed |= b.incarnation == a.incarnation && !never_decreases(b.durable, a.durable);
        }
        if regressed {
            self.ghost.flags.insert(Flags::REGRESSED);
        }
    }
}
