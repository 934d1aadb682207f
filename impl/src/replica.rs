//! A read replica's state machine: tracks `Available` and `Flushed` per node, pulls, applies
//! speculatively in LSN order up to its known commit point, retains until durable, discards.
//! No I/O: the engine (or a test) feeds it inputs and carries out its outputs.

use std::collections::BTreeMap;

use aurora_redo_model::types::{
    Envelope, Epoch, Lsn, Msg, NodeId, PageId, Record, ReplicaId, STORAGE_NODES,
};

use crate::config::{EngineConfig, ImplBug};
use crate::observer::Event;
use crate::output::Output;
use crate::retain::RetainBuffer;
use crate::tracker::QuorumTracker;

/// Ticks a replica waits for a node's answer to its pull before it counts the pull as lost and
/// may pull again.
pub const PULL_TIMEOUT_TICKS: u32 = 4;

/// What a replica consumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaInput {
    /// A message from the network (`Available`, `Flushed`, `Records`).
    Deliver(Envelope),
    /// A timer: re-pull when behind, or when records wait for a durability notice that may have
    /// been lost.
    Tick,
}

/// A read replica `R0, R1, ...`.
#[derive(Clone, Debug)]
pub struct Replica {
    id: ReplicaId,
    incarnation: u32,
    /// The epoch whose messages it follows; a newer one makes it start over.
    epoch: Epoch,
    cfg: EngineConfig,
    /// Highest `Available` per node; its 4th-highest is the known commit point.
    available: QuorumTracker,
    /// Highest `Flushed` per node; its 4th-highest is the durable LSN.
    flushed: QuorumTracker,
    durable: Lsn,
    applied: Lsn,
    pages: BTreeMap<PageId, (u64, Lsn)>,
    /// Records received above `applied` that wait for the commit point or a gap to fill.
    pending: BTreeMap<Lsn, Record>,
    retain: RetainBuffer,
    /// Per node, the ticks since this replica's pull to it, while the answer is pending. A new
    /// pull goes out only while none is pending, so at most one is outstanding; a pull whose
    /// answer has not come after [`PULL_TIMEOUT_TICKS`] ticks counts as lost.
    pulls: [Option<u32>; STORAGE_NODES],
    next_pull_node: usize,
}

impl Replica {
    /// A replica that knows nothing (first start, or restart after a crash as `incarnation`).
    pub fn new(id: ReplicaId, incarnation: u32, cfg: EngineConfig) -> Replica {
        let flushed = if cfg.has_bug(ImplBug::DurableFromOneNode) {
            QuorumTracker::with_k(1)
        } else {
            QuorumTracker::write_quorum()
        };
        Replica {
            id,
            incarnation,
            epoch: cfg.epoch,
            cfg,
            available: QuorumTracker::write_quorum(),
            flushed,
            durable: Lsn::ZERO,
            applied: Lsn::ZERO,
            pages: BTreeMap::new(),
            pending: BTreeMap::new(),
            retain: RetainBuffer::new(),
            pulls: [None; STORAGE_NODES],
            next_pull_node: id.index() % STORAGE_NODES,
        }
    }

    /// [`Replica::new`] following `epoch`.
    pub fn new_in(id: ReplicaId, incarnation: u32, cfg: EngineConfig, epoch: Epoch) -> Replica {
        Replica {
            epoch,
            ..Replica::new(id, incarnation, cfg)
        }
    }

    /// The epoch it follows.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn id(&self) -> ReplicaId {
        self.id
    }

    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// The highest LSN applied: the pages reflect exactly records `1..=applied`.
    pub fn applied(&self) -> Lsn {
        self.applied
    }

    /// The known commit point: 4th-highest `Available`.
    pub fn known_commit(&self) -> Lsn {
        self.available.point()
    }

    /// The durable LSN: 4th-highest `Flushed`.
    pub fn durable(&self) -> Lsn {
        self.durable
    }

    /// The retained (applied, not yet durable) LSNs, in order.
    pub fn retained(&self) -> Vec<Lsn> {
        self.retain.retained()
    }

    /// The applied value of `page` and the LSN that wrote it.
    pub fn read(&self, page: PageId) -> Option<(u64, Lsn)> {
        self.pages.get(&page).copied()
    }

    /// How many pulls are waiting for their answer (at most one).
    pub fn pulls_outstanding(&self) -> usize {
        self.pulls.iter().flatten().count()
    }

    /// Whether a pull to `node` is waiting for its answer.
    pub fn pull_pending(&self, node: NodeId) -> bool {
        self.pulls[node.index()].is_some()
    }

    fn pulling(&self) -> bool {
        self.pulls.iter().any(Option::is_some)
    }

    /// Every page's applied value.
    pub fn pages(&self) -> &BTreeMap<PageId, (u64, Lsn)> {
        &self.pages
    }

    pub fn handle(&mut self, input: ReplicaInput) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            ReplicaInput::Deliver(env) if env.msg.epoch().is_some_and(|e| e > self.epoch) => {
                // A newer epoch: start over in it, as a new incarnation that knows nothing (what
                // it applied may be what the recovery annulled). The message itself is not
                // taken: the node repeats its announcements.
                let epoch = env.msg.epoch().unwrap_or(self.epoch);
                *self = Replica::new_in(self.id, self.incarnation + 1, self.cfg.clone(), epoch);
                out.push(Output::Observe(Event::ReplicaFollows {
                    replica: self.id,
                    incarnation: self.incarnation,
                    epoch,
                }));
            }
            ReplicaInput::Deliver(env) if env.msg.epoch().is_some_and(|e| e < self.epoch) => {
                // An older epoch's message: ignored (an answer still ends the pull it answers).
                if let Msg::Records { node, .. } = env.msg {
                    self.pulls[node.index()] = None;
                }
            }
            ReplicaInput::Deliver(env) => match env.msg {
                Msg::Available { node, scl, .. } => self.on_available(node, scl, &mut out),
                Msg::Flushed { node, lsn, .. } => self.on_flushed(node, lsn, &mut out),
                Msg::Records { node, records, .. } => self.on_records(node, records, &mut out),
                _ => {}
            },
            ReplicaInput::Tick => self.on_tick(&mut out),
        }
        out
    }

    /// Step 4, **Notify and pull** (`docs/protocol.md`): learn the known commit point, apply what
    /// it allows, pull if behind.
    fn on_available(&mut self, node: NodeId, scl: Lsn, out: &mut Vec<Output>) {
        let raised = self.available.observe(node, scl);
        // The seeded bug reacts to every `Available`, a duplicate included.
        if self.cfg.has_bug(ImplBug::DiscardOnAvailable) {
            let known = self.known_commit();
            self.discard(known, out);
        }
        if raised {
            self.apply_ready(out);
            if !self.pulling() {
                self.pull_if_behind(out);
            }
        }
    }

    /// Step 7, **Discard** (`docs/protocol.md`), the discard rule's trigger: the durable LSN is the
    /// 4th-highest `Flushed`.
    fn on_flushed(&mut self, node: NodeId, lsn: Lsn, out: &mut Vec<Output>) {
        if self.cfg.has_bug(ImplBug::DurableLastMessage) {
            let mut latest = QuorumTracker::write_quorum();
            for n in NodeId::all() {
                latest.observe(n, if n == node { lsn } else { self.flushed.node(n) });
            }
            self.flushed = latest;
        } else {
            self.flushed.observe(node, lsn);
        }
        let durable = self.flushed.point();
        let lowered = self.cfg.has_bug(ImplBug::DurableLastMessage) && durable < self.durable;
        if durable > self.durable || lowered {
            self.durable = durable;
            out.push(Output::Observe(Event::ReplicaDurable {
                replica: self.id,
                incarnation: self.incarnation,
                lsn: durable,
            }));
            self.discard(durable, out);
        }
    }

    fn discard(&mut self, through: Lsn, out: &mut Vec<Output>) {
        for lsn in self.retain.discard_through(through) {
            out.push(Output::Observe(Event::Discarded {
                replica: self.id,
                lsn,
            }));
        }
    }

    /// Step 5, **Speculative apply** (`docs/protocol.md`): buffer the records, apply them in order
    /// up to the known commit point, retain what is not yet durable.
    fn on_records(&mut self, node: NodeId, records: Vec<Record>, out: &mut Vec<Output>) {
        self.pulls[node.index()] = None;
        for r in records {
            if r.lsn > self.applied {
                self.pending.insert(r.lsn, r);
            }
        }
        self.apply_ready(out);
        if !self.pulling() {
            self.pull_if_behind(out);
        }
    }

    /// Speculative apply: in LSN order, no gaps, never past the known commit point.
    fn apply_ready(&mut self, out: &mut Vec<Output>) {
        let limit = if self.cfg.has_bug(ImplBug::ApplyUncommitted) {
            Lsn(u64::MAX)
        } else {
            self.known_commit()
        };
        while self.applied < limit {
            let Some(record) = self.pending.remove(&self.applied.next()) else {
                break;
            };
            self.pages.insert(record.page, (record.value, record.lsn));
            self.applied = record.lsn;
            out.push(Output::Observe(Event::Applied {
                replica: self.id,
                incarnation: self.incarnation,
                record,
            }));
            if !self.retain.keep(record) {
                out.push(Output::Observe(Event::Discarded {
                    replica: self.id,
                    lsn: record.lsn,
                }));
            }
        }
        // Records at or below `applied` can be in `pending` only as duplicates.
        self.pending = self.pending.split_off(&self.applied.next());
    }

    fn pull_if_behind(&mut self, out: &mut Vec<Output>) {
        if self.applied < self.known_commit() {
            self.pull(out);
        }
    }

    fn on_tick(&mut self, out: &mut Vec<Output>) {
        // A pull still waiting for its answer holds the next one back, until it times out.
        for waited in &mut self.pulls {
            *waited = waited.map(|t| t + 1).filter(|&t| t < PULL_TIMEOUT_TICKS);
        }
        if self.pulling() {
            return;
        }
        // Pull round robin on a tick: each reply re-announces that node's `Available` and
        // `Flushed`, so a restarted replica learns a quorum and lost notices are replaced.
        let heard = self.available.per_node();
        let highest = heard.iter().copied().max().unwrap_or(Lsn::ZERO);
        let learning = highest == Lsn::ZERO || self.known_commit() < highest;
        if learning || self.applied < self.known_commit() || !self.retain.is_empty() {
            let node = NodeId(self.next_pull_node as u8);
            self.send_pull(node, out);
        }
    }

    /// Pulls from the next node (round robin) whose `Available` covers what is needed, or, when
    /// none does, simply the next node (a restarted replica knows no watermarks).
    fn pull(&mut self, out: &mut Vec<Output>) {
        let need = self.applied.next();
        let mut target = NodeId(self.next_pull_node as u8);
        for k in 0..STORAGE_NODES {
            let node = NodeId(((self.next_pull_node + k) % STORAGE_NODES) as u8);
            if self.available.node(node) >= need {
                target = node;
                break;
            }
        }
        self.send_pull(target, out);
    }

    fn send_pull(&mut self, target: NodeId, out: &mut Vec<Output>) {
        self.next_pull_node = (target.index() + 1) % STORAGE_NODES;
        self.pulls[target.index()] = Some(0);
        let from = self.applied.next();
        out.push(Output::Send(Envelope::pull(self.id, target, from)));
    }
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use super::*;
    use crate::config::AckPolicy;
    use aurora_redo_model::types::Epoch;

    const R0: ReplicaId = ReplicaId(0);

    fn available(node: u8, scl: u64) -> ReplicaInput {
        ReplicaInput::Deliver(Envelope::available(NodeId(node), R0, Lsn(scl)))
    }

    fn flushed(node: u8, lsn: u64) -> ReplicaInput {
        ReplicaInput::Deliver(Envelope::flushed(NodeId(node), R0, Lsn(lsn)))
    }

    fn records(node: u8, records: Vec<Record>) -> ReplicaInput {
        ReplicaInput::Deliver(Envelope::records(NodeId(node), R0, records))
    }

    fn rec(l: u64) -> Record {
        Record {
            lsn: Lsn(l),
            page: (l % 2) as u32,
            value: l * 100,
            epoch: Epoch::FIRST,
        }
    }

    fn discarded(out: &[Output]) -> Vec<Lsn> {
        out.iter()
            .filter_map(|o| match o {
                Output::Observe(Event::Discarded { lsn, .. }) => Some(*lsn),
                _ => None,
            })
            .collect()
    }

    fn replica(bug: Option<ImplBug>) -> Replica {
        Replica::new(
            ReplicaId(0),
            0,
            EngineConfig::new(AckPolicy::Memory, 1).with_bug(bug),
        )
    }

    #[test]
    fn applies_up_to_the_known_commit_then_retains_until_durable() {
        let mut r = replica(None);
        for n in 0..3 {
            r.handle(available(n, 3));
        }
        assert_eq!(r.known_commit(), Lsn(0));
        let out = r.handle(available(3, 2));
        assert_eq!(r.known_commit(), Lsn(2));
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Send(e) if e.msg == Msg::Pull { from: Lsn(1) })));
        r.handle(records(0, vec![rec(1), rec(2), rec(3)]));
        assert_eq!(r.applied(), Lsn(2), "record 3 is not committed yet");
        assert_eq!(r.read(0), Some((200, Lsn(2))));
        assert_eq!(r.read(1), Some((100, Lsn(1))));
        assert_eq!(r.retained(), vec![Lsn(1), Lsn(2)]);
        // Three Flushed are not a quorum; the fourth (even reordered, lower ones ignored) is.
        for n in 0..3 {
            assert!(discarded(&r.handle(flushed(n, 1))).is_empty());
        }
        r.handle(flushed(0, 0));
        let out = r.handle(flushed(4, 2));
        assert_eq!(discarded(&out), vec![Lsn(1)]);
        assert_eq!(r.durable(), Lsn(1));
        assert_eq!(r.retained(), vec![Lsn(2)]);
        // Record 3 becomes committed: it applies from the pending set without a new pull.
        r.handle(available(3, 3));
        assert_eq!(r.applied(), Lsn(3));
    }

    #[test]
    fn a_gap_stops_apply() {
        let mut r = replica(None);
        for n in 0..4 {
            r.handle(available(n, 3));
        }
        r.handle(records(0, vec![rec(1), rec(3)]));
        assert_eq!(r.applied(), Lsn(1));
    }

    #[test]
    fn an_already_durable_record_is_discarded_at_once() {
        let mut r = replica(None);
        for n in 0..4 {
            r.handle(available(n, 1));
            r.handle(flushed(n, 1));
        }
        let out = r.handle(records(0, vec![rec(1)]));
        assert_eq!(discarded(&out), vec![Lsn(1)]);
        assert!(r.retained().is_empty());
    }

    #[test]
    fn the_seeded_bug_discards_on_available() {
        let mut r = replica(Some(ImplBug::DiscardOnAvailable));
        for n in 0..4 {
            r.handle(available(n, 1));
        }
        r.handle(records(0, vec![rec(1), rec(2)]));
        let out = r.handle(available(0, 2));
        assert!(discarded(&out).is_empty());
        for n in 1..4 {
            r.handle(available(n, 2));
        }
        assert!(r.retained().is_empty(), "discarded without any Flushed");
    }

    #[test]
    fn a_restarted_replica_pulls_on_tick() {
        let mut r = replica(None);
        let out = r.handle(ReplicaInput::Tick);
        assert!(matches!(&out[..], [Output::Send(e)] if e.msg == Msg::Pull { from: Lsn(1) }));
    }

    fn pulls(out: &[Output]) -> Vec<Envelope> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(e) if matches!(e.msg, Msg::Pull { .. }) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn one_pull_at_a_time_and_a_lost_answer_times_out() {
        let mut r = replica(None);
        for n in 0..4 {
            r.handle(available(n, 3));
        }
        assert_eq!(r.pulls_outstanding(), 1);
        // Ticks and further notices do not pull again while the answer is pending ...
        for _ in 1..PULL_TIMEOUT_TICKS {
            assert!(pulls(&r.handle(ReplicaInput::Tick)).is_empty());
            assert!(pulls(&r.handle(available(4, 3))).is_empty());
            assert_eq!(r.pulls_outstanding(), 1);
        }
        // ... until it counts as lost: the next tick pulls again, from the next node.
        let out = r.handle(ReplicaInput::Tick);
        assert_eq!(pulls(&out).len(), 1);
        assert_eq!(r.pulls_outstanding(), 1);
        let target = match pulls(&out)[0].dst {
            aurora_redo_model::types::Actor::Storage(n) => n,
            other => panic!("a pull to {other:?}"),
        };
        assert!(r.pull_pending(target));
        // The answer clears it; still behind, the replica pulls once more.
        let out = r.handle(records(target.0, vec![rec(1)]));
        assert_eq!(r.applied(), Lsn(1));
        assert_eq!(pulls(&out).len(), 1);
        assert_eq!(r.pulls_outstanding(), 1);
    }
}
