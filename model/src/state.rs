//! The model's state: what each actor holds, what is in flight, which faults have been spent,
//! and the ghost facts the invariants judge by, with the bookkeeping that keeps them (the
//! `judge_*` methods, which the role rules and the step call at the moment a fact arises).

use crate::invariants::{discard_is_safe, never_decreases};
use crate::network::Network;
use crate::quorum::quorum_watermark;
use crate::types::{Az, Epoch, Lsn, NodeId, PageId, Record, ReplicaId, WriterId, STORAGE_NODES};
use std::fmt;

/// Pages in the model's tiny database. Record `L` writes page `(L - 1) % PAGES`.
pub const PAGES: usize = 2;

/// The record a writer of `epoch` creates for `lsn`. The model's records are a function of their
/// identity `(epoch, lsn)`, so a state carries only which epoch's record each copy is (an
/// [`EpochMap`]); the replica's page image still shows order and gaps.
pub fn record_for(epoch: Epoch, lsn: Lsn) -> Record {
    Record {
        lsn,
        page: ((lsn.0 - 1) % PAGES as u64) as PageId,
        value: 1000 * epoch.writer().0 as u64 + 100 * (epoch.number() as u64 + 1) + lsn.0,
        epoch,
    }
}

/// The most epochs a model state can tell apart (see [`EpochMap`]): the first and three failovers.
/// Both halves of an epoch stay below it: writer ids are creation indices (at most one writer per
/// failover), and a new writer's number is at most one above the highest it saw.
pub const MAX_EPOCHS: u32 = 4;

/// An epoch of the model in 4 bits: its number in the high two, its writer id in the low two.
pub fn epoch_code(epoch: Epoch) -> u8 {
    debug_assert!(
        epoch.number() < MAX_EPOCHS && epoch.writer().0 < MAX_EPOCHS,
        "epoch {epoch} outside the model's range"
    );
    ((epoch.number() << 2) | epoch.writer().0) as u8
}

/// The epoch of a 4-bit [`epoch_code`].
pub fn epoch_of_code(code: u8) -> Epoch {
    Epoch::new(u32::from(code >> 2) & 3, WriterId(u32::from(code) & 3))
}

/// For each LSN `1..=16`, the epoch of the record held there (4 bits per LSN, an
/// [`epoch_code`]). Meaningful only at the LSNs of the set it goes with; zero (the first epoch)
/// elsewhere, so that equal holdings hash equally.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EpochMap(u64);

impl EpochMap {
    /// The map as its bits (4 per LSN).
    pub fn bits(self) -> u64 {
        self.0
    }

    pub fn get(self, lsn: Lsn) -> Epoch {
        epoch_of_code(((self.0 >> (4 * (lsn.0 - 1))) & 15) as u8)
    }

    pub fn set(&mut self, lsn: Lsn, epoch: Epoch) {
        let shift = 4 * (lsn.0 - 1);
        self.0 = (self.0 & !(15 << shift)) | (u64::from(epoch_code(epoch)) << shift);
    }

    /// Keeps only the LSNs of `set` (the others read as the first epoch).
    pub fn restrict(self, set: LsnSet) -> EpochMap {
        let mut out = EpochMap::default();
        for lsn in set.iter() {
            out.set(lsn, self.get(lsn));
        }
        out
    }
}

impl fmt::Debug for EpochMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A set of storage nodes, as a bitmask (written out as the list of its nodes).
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "Vec<NodeId>", from = "Vec<NodeId>")]
pub struct NodeSet(pub u8);

impl From<NodeSet> for Vec<NodeId> {
    fn from(set: NodeSet) -> Vec<NodeId> {
        set.iter().collect()
    }
}

impl From<Vec<NodeId>> for NodeSet {
    fn from(nodes: Vec<NodeId>) -> NodeSet {
        let mut set = NodeSet::default();
        nodes.into_iter().for_each(|n| set.insert(n));
        set
    }
}

impl NodeSet {
    pub fn contains(self, node: NodeId) -> bool {
        self.0 & (1 << node.0) != 0
    }

    pub fn insert(&mut self, node: NodeId) {
        self.0 |= 1 << node.0;
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = NodeId> {
        NodeId::all().filter(move |&n| self.contains(n))
    }
}

impl fmt::Debug for NodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.iter().map(|n| n.to_string()).collect();
        write!(f, "{{{}}}", names.join(", "))
    }
}

/// A set of LSNs `1..=16` as a bitmask.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LsnSet(u16);

impl LsnSet {
    pub const EMPTY: LsnSet = LsnSet(0);

    /// The set as its bits (bit `L - 1` for LSN `L`).
    pub fn bits(self) -> u16 {
        self.0
    }

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

    /// The LSNs `1..=upto`.
    pub fn through(upto: Lsn) -> LsnSet {
        let mut set = LsnSet::EMPTY;
        for lsn in upto.prefix() {
            set.insert(lsn);
        }
        set
    }

    /// The members not in `other`.
    pub fn minus(self, other: LsnSet) -> LsnSet {
        LsnSet(self.0 & !other.0)
    }
}

/// `{1, 2}` on one line, even in `{:#?}`: the Explorer shows states that way.
impl fmt::Debug for LsnSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let members: Vec<String> = self.iter().map(|l| l.to_string()).collect();
        write!(f, "{{{}}}", members.join(", "))
    }
}

/// The writer: its epoch, how far it has written, its commit point, and where it is in recovery.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Writer {
    pub epoch: Epoch,
    pub written: Lsn,
    pub commit: Lsn,
    /// Which epoch's record is at each LSN `1..=written` of its log: its own for what it wrote,
    /// the source's for what its recovery kept.
    pub log: EpochMap,
    /// The recovery point its epoch began from (`Lsn::ZERO` for the first writer).
    pub point: Lsn,
    pub phase: Phase,
}

impl Writer {
    /// Whether the writer accepts writes (recovery, if any, is over).
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// The record at `lsn` of the writer's log, if it has one.
    pub fn record(&self, lsn: Lsn) -> Option<Epoch> {
        (lsn >= Lsn(1) && lsn <= self.written).then(|| self.log.get(lsn))
    }
}

/// Where a writer is in its life (`docs/protocol.md`, "Recovery").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Accepting writes.
    #[default]
    Open,
    /// About to read a read quorum.
    Reading,
    /// The recovery point is fixed (`Writer::point`); re-replicating `1..=point` and persisting
    /// the truncation and the epoch on a write quorum. `sealed` are the nodes done so far.
    Sealing { sealed: NodeSet },
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

/// A storage node: its in-memory log and its disk log, and its epochs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Node {
    pub status: NodeStatus,
    pub mem: LsnSet,
    pub disk: LsnSet,
    /// Which epoch's record each held LSN is.
    pub epochs: EpochMap,
    /// The newest epoch the node has adopted (persisted): it takes nothing from an older one.
    pub epoch: Epoch,
    /// The epoch of the last truncation it persisted. A node speaks (acknowledges, announces,
    /// answers pulls) in its epoch only once `sealed == epoch`: until then it may hold an older
    /// epoch's annulled tail.
    pub sealed: Epoch,
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

    /// Whether the node speaks for its epoch: it has persisted that epoch's truncation.
    pub fn speaks(&self) -> bool {
        self.sealed == self.epoch
    }

    /// Removes `lsns` from memory and disk.
    pub fn remove(&mut self, lsns: LsnSet) {
        self.mem = self.mem.minus(lsns);
        self.disk = self.disk.minus(lsns);
        self.epochs = self.epochs.restrict(self.held());
    }
}

/// A read replica.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Replica {
    pub up: bool,
    /// The epoch whose messages it follows; a newer epoch makes it start over.
    pub epoch: Epoch,
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
    /// Which epoch's record each applied LSN was.
    pub applied_epochs: EpochMap,
    /// Applied records kept in memory until they are durable.
    pub retained: LsnSet,
    /// Ghost (no rule reads it): the applied records this incarnation freed through the discard
    /// rule. RetainUntilDurable compares it with `retained`: under the correct rules it is exactly
    /// the applied records no longer retained, so it adds no state.
    pub discarded: LsnSet,
}

/// The most read replicas a state holds (the checker's limit, `crate::config::MAX_REPLICAS`).
pub const MAX_REPLICAS: usize = crate::config::MAX_REPLICAS as usize;

/// A state's read replicas: a fixed array and a count, so that a state holds no heap data. It
/// reads as the slice of its replicas (`iter`, indexing, `len`, sorting); the unused slots stay
/// at their default, so equal sets of replicas compare and hash equally.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Replicas {
    len: u8,
    slots: [Replica; MAX_REPLICAS],
}

impl Replicas {
    /// `count` fresh replicas of the first epoch.
    ///
    /// # Panics
    /// If `count` is above [`MAX_REPLICAS`] (`Config::validate` rejects that).
    pub fn new(count: u8) -> Replicas {
        assert!(
            count as usize <= MAX_REPLICAS,
            "at most {MAX_REPLICAS} replicas"
        );
        let mut replicas = Replicas {
            len: count,
            ..Replicas::default()
        };
        replicas
            .iter_mut()
            .for_each(|r| *r = Replica::fresh(0, Epoch::FIRST));
        replicas
    }
}

impl std::ops::Deref for Replicas {
    type Target = [Replica];

    fn deref(&self) -> &[Replica] {
        &self.slots[..self.len as usize]
    }
}

impl std::ops::DerefMut for Replicas {
    fn deref_mut(&mut self) -> &mut [Replica] {
        &mut self.slots[..self.len as usize]
    }
}

impl<'a> IntoIterator for &'a Replicas {
    type Item = &'a Replica;
    type IntoIter = std::slice::Iter<'a, Replica>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for Replicas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl Replica {
    pub fn fresh(incarnation: u8, epoch: Epoch) -> Replica {
        Replica {
            up: true,
            incarnation,
            epoch,
            ..Replica::default()
        }
    }
}

/// What the nodes have announced: per node, the highest value it has sent in each kind of
/// watermark message. These messages stay receivable once sent (see `crate::model`).
///
/// Every announcement carries the sender's epoch, and a receiver counts only those of the epoch
/// it follows. Per node the state keeps the announcements of the node's epoch and, frozen when it
/// adopted a newer one, those of the epoch before (`prev`): a writer or replica of the older epoch
/// may still receive them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Announced {
    /// The highest SCL sent in an `Ack` (and the `Available` that travels with it).
    pub scl: [Lsn; STORAGE_NODES],
    /// The highest LSN sent in a `Flushed`.
    pub flushed: [Lsn; STORAGE_NODES],
    /// The epoch of `scl` and `flushed`.
    pub epoch: [Epoch; STORAGE_NODES],
    /// The node's announcements in the epoch before: epoch, SCL, flushed.
    pub prev: [(Epoch, Lsn, Lsn); STORAGE_NODES],
    /// Every LSN sent in a `Flushed`. Kept only under the `durable-last-message` bug, the one rule
    /// that can act on a stale `Flushed` (a correct receiver only ever uses the highest).
    pub flushed_history: [LsnSet; STORAGE_NODES],
}

/// Facts about the run that no actor can see, kept for the invariants.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// Per node, the highest SCL it acked while really holding every record up to it.
    pub truthful_ack: [Lsn; STORAGE_NODES],
    /// Per node, the highest LSN its disk has ever held (a flushed prefix) while it spoke for the
    /// writer's epoch. A permanent loss wipes the disk but not this: what was flushed was flushed.
    pub disk_high: [Lsn; STORAGE_NODES],
    /// The same for the epoch before the writer's (judging the discards of replicas that still
    /// follow it).
    pub prev_disk_high: [Lsn; STORAGE_NODES],
    /// What clients were told is committed before the last failover: the failed writer's commit
    /// point and its log.
    pub acked: Lsn,
    pub acked_log: EpochMap,
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
    /// A recovery point left out a record acknowledged to a client.
    pub const COMMIT_LOST: Flags = Flags(16);
    /// A node took an older epoch's record after adopting a newer epoch.
    pub const FENCE_BROKEN: Flags = Flags(32);

    /// The flags as their bits.
    pub fn bits(self) -> u8 {
        self.0
    }

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
            (Flags::COMMIT_LOST, "COMMIT_LOST"),
            (Flags::FENCE_BROKEN, "FENCE_BROKEN"),
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
    pub writer_crashes: u8,
}

/// One state of the whole system. Its `Debug` (readable view, then the raw fields) is in
/// [`crate::view`]; its `Hash`, over a packed image of these fields, in [`crate::fingerprint`].
/// It holds no heap data: cloning it is a copy.
#[derive(Clone, PartialEq, Eq)]
pub struct State {
    pub writer: Writer,
    pub nodes: [Node; STORAGE_NODES],
    pub replicas: Replicas,
    /// The previous writer, still running and sending after a failover (`--zombie-writer`): cut
    /// off from clients, so only its `Append`s matter.
    pub zombie: Option<Writer>,
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
            zombie: None,
            nodes: Default::default(),
            replicas: Replicas::new(replicas),
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
    /// still counts for what it held, so a loss is never mistaken for a protocol error. Judged in
    /// the writer's epoch; `durable_so_far_in` judges the epoch before too.
    pub fn durable_so_far(&self) -> Lsn {
        quorum_watermark(self.ghost.disk_high)
    }

    /// [`State::durable_so_far`] for the records of `epoch`: the writer's, or the one before.
    pub fn durable_so_far_in(&self, epoch: Epoch) -> Lsn {
        if epoch == self.writer.epoch {
            self.durable_so_far()
        } else {
            quorum_watermark(self.ghost.prev_disk_high)
        }
    }

    /// The highest SCL `node` has acknowledged in `epoch` (`Lsn::ZERO` if none there).
    pub fn announced_scl(&self, node: NodeId, epoch: Epoch) -> Lsn {
        self.announced_in(node, epoch).0
    }

    /// The highest flushed LSN `node` has announced in `epoch` (`Lsn::ZERO` if none there).
    pub fn announced_flushed(&self, node: NodeId, epoch: Epoch) -> Lsn {
        self.announced_in(node, epoch).1
    }

    fn announced_in(&self, node: NodeId, epoch: Epoch) -> (Lsn, Lsn) {
        let i = node.index();
        let a = &self.announced;
        if a.epoch[i] == epoch {
            (a.scl[i], a.flushed[i])
        } else if a.prev[i].0 == epoch && epoch != a.epoch[i] {
            (a.prev[i].1, a.prev[i].2)
        } else {
            (Lsn::ZERO, Lsn::ZERO)
        }
    }

    /// Every node's acknowledged SCL in `epoch`, in node order.
    pub fn acks_in(&self, epoch: Epoch) -> [Lsn; STORAGE_NODES] {
        std::array::from_fn(|i| self.announced_scl(NodeId(i as u8), epoch))
    }

    /// Every node's announced flushed LSN in `epoch`, in node order.
    pub fn flushes_in(&self, epoch: Epoch) -> [Lsn; STORAGE_NODES] {
        std::array::from_fn(|i| self.announced_flushed(NodeId(i as u8), epoch))
    }

    /// Ground truth: how many disks hold `lsn`.
    pub fn disks_holding(&self, lsn: Lsn) -> usize {
        self.nodes.iter().filter(|n| n.disk.contains(lsn)).count()
    }

    /// The writer's page image after applying records `1..=applied` (which LSN wrote each page;
    /// a record's page depends on its LSN only).
    pub fn writer_pages(applied: Lsn) -> [Lsn; PAGES] {
        let mut pages = [Lsn::ZERO; PAGES];
        for lsn in applied.prefix() {
            pages[record_for(Epoch::FIRST, lsn).page as usize] = lsn;
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
        let epoch = self.replica(r).epoch;
        if !discard_is_safe(lsn, self.durable_so_far_in(epoch)) {
            self.ghost.flags.insert(Flags::UNSAFE_DISCARD);
        }
    }

    /// Records what a node's disk holds after a flush or a recovery's write, the only steps that
    /// add to a disk: for the writer's epoch if the node speaks for it, else for the epoch before.
    pub(crate) fn judge_flush(&mut self, node: NodeId) {
        let n = self.node(node);
        let current = n.speaks() && n.epoch == self.writer.epoch;
        let flushed = n.flushed();
        let highs = if current {
            &mut self.ghost.disk_high
        } else {
            &mut self.ghost.prev_disk_high
        };
        let high = &mut highs[node.index()];
        *high = (*high).max(flushed);
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
    ///
    /// Watermarks are judged within an epoch: a failover starts a new writer with nothing
    /// committed, and a recovery's truncation is judged by the recovery invariants.
    pub(crate) fn judge_step(&mut self, before: &State) {
        let same_epoch = before.writer.epoch == self.writer.epoch;
        let truncated = before
            .nodes
            .iter()
            .zip(&self.nodes)
            .any(|(b, a)| b.sealed != a.sealed);
        let mut regressed =
            same_epoch && !never_decreases(before.writer.commit, self.writer.commit);
        if self.faults.lost_nodes == 0 && same_epoch && !truncated {
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
