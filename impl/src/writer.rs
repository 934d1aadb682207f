//! The writer's state machine: numbers records, sends them to all six nodes, and decides the
//! commit point. No I/O: the engine (or a test) feeds it inputs and carries out its outputs.
//!
//! **The commit rule**, in the engine, lives in [`Writer::on_ack`] (over a
//! [`QuorumTracker`]): the commit point is the 4th-highest SCL acknowledged by the nodes (each
//! node's highest ack), and it never moves backwards. The model's home of the same rule is
//! `commit_bound` in `model/src/writer.rs`.

use std::collections::BTreeMap;

use aurora_redo_model::recovery::{recovery_point, ReadAnswer};
use aurora_redo_model::types::{
    Actor, Envelope, Epoch, Lsn, Msg, NodeId, PageId, Record, READ_QUORUM, STORAGE_NODES,
    WRITE_QUORUM,
};

use crate::config::{EngineConfig, ImplBug};
use crate::observer::Event;
use crate::output::Output;
use crate::tracker::QuorumTracker;

/// What the writer consumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriterInput {
    /// A client change: create the next record.
    Append { page: PageId, value: u64 },
    /// A message from the network (`Ack`, `Flushed`; anything else is ignored).
    Deliver(Envelope),
    /// A timer: to each node that made no progress since the previous tick, re-send the appends
    /// it has not acknowledged, or, if it acknowledged everything but has not reported it
    /// flushed, the last append (so a node that lost its memory re-acks and gets repaired).
    Tick,
    /// The driver saw every message it had sent to the writer and the nodes handled, and the
    /// commit point is still short of the last record: something was lost on the way (an
    /// `Append`, or an `Ack`). To each node whose latest ack is below the last LSN, re-send the
    /// appends from that ack on (at most `max_batch`), once per ack value: a node whose repair
    /// is lost too, or that is unreachable, is left to the ticks.
    Repair,
}

/// Where a writer is in its life (the model's `state::Phase`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepting writes.
    Open,
    /// Recovering: waiting for a read quorum's answers (in arrival order).
    Reading {
        answers: Vec<(NodeId, ReadAnswer, Vec<Record>)>,
    },
    /// The recovery point is fixed; sealing nodes until a write quorum has persisted the seal.
    Sealing { sealed: Vec<NodeId> },
}

/// The writer (`W`).
#[derive(Clone, Debug)]
pub struct Writer {
    cfg: EngineConfig,
    epoch: Epoch,
    phase: Phase,
    /// The recovery point this writer's epoch began from.
    point: Lsn,
    /// The recovered records `1..=point`, sent with each seal (kept until every node sealed).
    recovered: Vec<Record>,
    /// The nodes that confirmed the seal of this epoch.
    sealed: Vec<NodeId>,
    last_lsn: Lsn,
    /// Records some node may still need: everything above the commit point or above the lowest
    /// flushed LSN of all six.
    log: BTreeMap<Lsn, Record>,
    /// Highest acked SCL per node; its 4th-highest is the commit point.
    acks: QuorumTracker,
    commit: Lsn,
    /// The latest ack of each node (not the max): after a crash a node acks less, and we must
    /// re-send from there.
    latest_ack: [Lsn; STORAGE_NODES],
    /// `latest_ack` at the previous tick, to re-send only to nodes that made no progress.
    ack_at_last_tick: [Lsn; STORAGE_NODES],
    flushed: [Lsn; STORAGE_NODES],
    /// Per node, the ack value the last `Repair` re-sent from.
    repaired: [Option<Lsn>; STORAGE_NODES],
}

impl Writer {
    pub fn new(cfg: EngineConfig) -> Writer {
        let acks = if cfg.has_bug(ImplBug::CommitAtThree) {
            QuorumTracker::with_k(3)
        } else {
            QuorumTracker::write_quorum()
        };
        // A recovered volume resumes at its recovery point: committed, and the last LSN written.
        let resume = cfg.resume_at;
        Writer {
            epoch: cfg.epoch,
            phase: Phase::Open,
            point: resume,
            recovered: Vec::new(),
            sealed: Vec::new(),
            cfg,
            last_lsn: resume,
            log: BTreeMap::new(),
            acks,
            commit: resume,
            latest_ack: [Lsn::ZERO; STORAGE_NODES],
            ack_at_last_tick: [Lsn::ZERO; STORAGE_NODES],
            flushed: [Lsn::ZERO; STORAGE_NODES],
            repaired: [None; STORAGE_NODES],
        }
    }

    /// A new writer after a failover: epoch `epoch`, nothing volatile, recovering. It sends
    /// `Read` to every node (the returned outputs).
    pub fn recovering(cfg: EngineConfig, epoch: Epoch) -> (Writer, Vec<Output>) {
        let mut w = Writer::new(cfg.resuming(epoch, Lsn::ZERO));
        w.phase = Phase::Reading {
            answers: Vec::new(),
        };
        let mut out = vec![Output::Observe(Event::FailedOver { epoch })];
        out.extend(NodeId::all().map(|n| {
            Output::Send(Envelope {
                src: Actor::Writer,
                dst: Actor::Storage(n),
                msg: Msg::Read { epoch },
            })
        }));
        (w, out)
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Whether the writer accepts writes.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// The recovery point its epoch began from.
    pub fn point(&self) -> Lsn {
        self.point
    }

    /// The nodes that confirmed this epoch's seal.
    pub fn sealed_nodes(&self) -> &[NodeId] {
        &self.sealed
    }

    /// The record of the writer's log at `lsn` (its own, or the recovered one), if it still
    /// has it.
    pub fn log_record(&self, lsn: Lsn) -> Option<Record> {
        self.log.get(&lsn).copied().or_else(|| {
            (lsn >= Lsn(1) && lsn <= self.point)
                .then(|| self.recovered.get(lsn.0 as usize - 1).copied())
                .flatten()
        })
    }

    /// The commit point: the highest LSN acknowledged by 4 of the 6 nodes.
    pub fn commit_point(&self) -> Lsn {
        self.commit
    }

    /// The LSN of the last record created.
    pub fn last_lsn(&self) -> Lsn {
        self.last_lsn
    }

    /// The highest SCL `node` has acknowledged.
    pub fn acked(&self, node: NodeId) -> Lsn {
        self.acks.node(node)
    }

    /// The record with this LSN, if the writer still buffers it.
    pub fn record(&self, lsn: Lsn) -> Option<Record> {
        self.log.get(&lsn).copied()
    }

    pub fn handle(&mut self, input: WriterInput) -> Vec<Output> {
        let mut out = Vec::new();
        self.handle_into(input, &mut out);
        out
    }

    /// [`Writer::handle`], appending the outputs to `out` (a driver's buffer: no allocation per
    /// input).
    pub fn handle_into(&mut self, input: WriterInput, out: &mut Vec<Output>) {
        match input {
            WriterInput::Append { .. } if !self.is_open() => {}
            WriterInput::Append { page, value } => self.on_append(page, value, out),
            WriterInput::Deliver(env) => match env.msg {
                // Only this writer's epoch counts.
                Msg::Ack { node, scl, epoch } if epoch == self.epoch => self.on_ack(node, scl, out),
                Msg::Flushed { node, lsn, epoch } if epoch == self.epoch => {
                    self.on_flushed(node, lsn)
                }
                Msg::ReadAnswer {
                    node,
                    epoch,
                    sealed,
                    scl,
                    records,
                } if epoch == self.epoch => {
                    self.on_read_answer(node, ReadAnswer { sealed, scl }, records, out)
                }
                Msg::Sealed { node, epoch } if epoch == self.epoch => self.on_sealed(node, out),
                _ => {}
            },
            WriterInput::Tick => self.on_tick(out),
            WriterInput::Repair => self.on_repair(out),
        }
    }

    /// Loss repair without a timer ([`WriterInput::Repair`]).
    fn on_repair(&mut self, out: &mut Vec<Output>) {
        if !self.is_open() || self.commit >= self.last_lsn {
            return;
        }
        for node in NodeId::all() {
            let i = node.index();
            let acked = self.latest_ack[i];
            if acked >= self.last_lsn || self.repaired[i] == Some(acked) {
                continue;
            }
            self.repaired[i] = Some(acked);
            self.resend_from(node, acked, out);
        }
    }

    /// Re-sends to `node` the appends above `acked` the writer still has, at most `max_batch`.
    fn resend_from(&self, node: NodeId, acked: Lsn, out: &mut Vec<Output>) {
        for record in self
            .log
            .range(acked.next()..)
            .take(self.cfg.max_batch)
            .map(|(_, r)| *r)
        {
            out.push(Output::Send(Envelope::append(node, record)));
        }
    }

    /// Step 1, **Write** (`docs/protocol.md`): number the record, keep it, send `Append` to every
    /// node.
    fn on_append(&mut self, page: PageId, value: u64, out: &mut Vec<Output>) {
        let lsn = self.last_lsn.next();
        self.last_lsn = lsn;
        let record = Record {
            lsn,
            page,
            value,
            epoch: self.cfg.epoch,
        };
        self.log.insert(lsn, record);
        out.push(Output::Observe(Event::Appended(record)));
        for node in NodeId::all() {
            out.push(Output::Send(Envelope::append(node, record)));
        }
    }

    /// Recovery, read phase: one node's answer. Once a read quorum has answered, the recovery
    /// point is fixed by the shared rule (`aurora_redo_model::recovery::recovery_point`): the
    /// writer's log becomes the source's records `1..=R`, and it sends `Seal` to every node.
    fn on_read_answer(
        &mut self,
        node: NodeId,
        answer: ReadAnswer,
        records: Vec<Record>,
        out: &mut Vec<Output>,
    ) {
        let needed = if self.cfg.has_bug(ImplBug::RecoverFromTwo) {
            READ_QUORUM - 1
        } else {
            READ_QUORUM
        };
        let Phase::Reading { answers } = &mut self.phase else {
            return;
        };
        if answers.iter().any(|(n, _, _)| *n == node) {
            return;
        }
        answers.push((node, answer, records));
        if answers.len() < needed {
            return;
        }
        let reads: Vec<ReadAnswer> = answers.iter().map(|(_, a, _)| *a).collect();
        let mut chosen = recovery_point(&reads).unwrap_or_else(|| {
            // Fewer than a read quorum (`RecoverFromTwo`): the same order over what there is.
            (0..reads.len())
                .max_by_key(|&i| (reads[i], std::cmp::Reverse(i)))
                .map_or((0, Lsn::ZERO), |i| (i, reads[i].scl))
        });
        if self.cfg.has_bug(ImplBug::RecoverBelowMaxScl) {
            if let Some(i) = (0..reads.len()).min_by_key(|&i| reads[i].scl) {
                chosen = (i, reads[i].scl);
            }
        }
        let (source, point) = chosen;
        let log: Vec<Record> = answers[source]
            .2
            .iter()
            .filter(|r| r.lsn <= point)
            .copied()
            .collect();
        if log.len() as u64 != point.0 {
            // A malformed answer (not the records 1..=SCL): wait for more answers.
            answers.pop();
            return;
        }
        self.point = point;
        self.last_lsn = point;
        self.commit = Lsn::ZERO;
        self.recovered = log.clone();
        self.phase = Phase::Sealing { sealed: Vec::new() };
        out.push(Output::Observe(Event::Recovered {
            epoch: self.epoch,
            point,
            log,
        }));
        for n in NodeId::all() {
            out.push(Output::Send(self.seal_to(n)));
        }
    }

    fn seal_to(&self, node: NodeId) -> Envelope {
        Envelope {
            src: Actor::Writer,
            dst: Actor::Storage(node),
            msg: Msg::Seal {
                epoch: self.epoch,
                point: self.point,
                records: self.recovered.clone(),
            },
        }
    }

    /// Recovery, write phase: `node` persisted the seal. Once a write quorum has, the writer
    /// opens: `1..=R` is durable on 4 nodes, so that is its commit point, and it writes on from
    /// `R + 1`.
    fn on_sealed(&mut self, node: NodeId, out: &mut Vec<Output>) {
        if self.sealed.contains(&node) || matches!(self.phase, Phase::Reading { .. }) {
            return;
        }
        self.sealed.push(node);
        if let Phase::Sealing { sealed } = &mut self.phase {
            sealed.push(node);
            if sealed.len() >= WRITE_QUORUM {
                self.phase = Phase::Open;
                self.commit = self.point;
                out.push(Output::Observe(Event::Committed(self.point)));
            }
        }
        if self.sealed.len() == STORAGE_NODES {
            self.recovered = Vec::new();
        }
    }

    /// Step 3, **Commit** (`docs/protocol.md`): the commit rule.
    fn on_ack(&mut self, node: NodeId, scl: Lsn, out: &mut Vec<Output>) {
        self.latest_ack[node.index()] = scl;
        self.acks.observe(node, scl);
        let point = self.acks.point();
        if self.is_open() && point > self.commit {
            self.commit = point;
            out.push(Output::Observe(Event::Committed(point)));
        }
    }

    fn on_flushed(&mut self, node: NodeId, lsn: Lsn) {
        let slot = &mut self.flushed[node.index()];
        *slot = (*slot).max(lsn);
        // Every node has these on disk, and they are committed: nobody needs them from the
        // writer again. (Uncommitted ones stay: re-sending one is how a lost ack is recovered.)
        let everywhere = self.flushed.iter().copied().min().unwrap_or(Lsn::ZERO);
        let everywhere = everywhere.min(self.commit);
        while let Some((&first, _)) = self.log.first_key_value() {
            if first > everywhere {
                break;
            }
            self.log.remove(&first);
        }
    }

    fn on_tick(&mut self, out: &mut Vec<Output>) {
        match &self.phase {
            Phase::Reading { answers } => {
                for n in NodeId::all().filter(|n| !answers.iter().any(|(a, _, _)| a == n)) {
                    out.push(Output::Send(Envelope {
                        src: Actor::Writer,
                        dst: Actor::Storage(n),
                        msg: Msg::Read { epoch: self.epoch },
                    }));
                }
                return;
            }
            _ if self.epoch > Epoch::FIRST && self.sealed.len() < STORAGE_NODES => {
                // Keep sealing the nodes the write quorum left behind.
                for n in NodeId::all().filter(|n| !self.sealed.contains(n)) {
                    out.push(Output::Send(self.seal_to(n)));
                }
            }
            _ => {}
        }
        for node in NodeId::all() {
            let i = node.index();
            let acked = self.latest_ack[i];
            let stalled = acked == self.ack_at_last_tick[i];
            self.ack_at_last_tick[i] = acked;
            if !stalled {
                continue;
            }
            if acked >= self.last_lsn {
                // The node acked everything but has not reported it flushed: probe it with a
                // duplicate of the last record. A node that crashed and lost its memory re-acks
                // its lower SCL, and the next tick re-sends what it lost.
                if self.flushed[i] < self.last_lsn {
                    if let Some(r) = self.log.get(&self.last_lsn) {
                        out.push(Output::Send(Envelope::append(node, *r)));
                    }
                }
                continue;
            }
            self.resend_from(node, acked, out);
        }
    }
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use super::*;
    use crate::config::AckPolicy;
    use aurora_redo_model::types::Actor;
    use aurora_redo_model::types::Epoch;

    fn ack(node: u8, scl: u64) -> WriterInput {
        WriterInput::Deliver(Envelope::ack(NodeId(node), Lsn(scl)))
    }

    fn sends(out: &[Output]) -> Vec<Envelope> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_resumed_writer_continues_after_the_recovery_point_in_its_epoch() {
        let cfg = EngineConfig::new(AckPolicy::Disk, 1).resuming(Epoch::numbered(2), Lsn(40));
        let mut w = Writer::new(cfg);
        assert_eq!((w.last_lsn(), w.commit_point()), (Lsn(40), Lsn(40)));
        let out = w.handle(WriterInput::Append { page: 1, value: 5 });
        let record = Record {
            lsn: Lsn(41),
            page: 1,
            value: 5,
            epoch: Epoch::numbered(2),
        };
        assert!(out.contains(&Output::Observe(Event::Appended(record))));
        // Acks of the recovered prefix do not move the commit point, nor does a tick re-send it.
        let ack2 = |n: u8, l: u64| {
            WriterInput::Deliver(Envelope::ack(NodeId(n), Lsn(l)).in_epoch(Epoch::numbered(2)))
        };
        for n in 0..6 {
            w.handle(ack2(n, 40));
        }
        assert_eq!(w.commit_point(), Lsn(40));
        // Acks of an older epoch do not count.
        for n in 0..6 {
            w.handle(ack(n, 41));
        }
        assert_eq!(w.commit_point(), Lsn(40));
        for n in 0..4 {
            w.handle(ack2(n, 41));
        }
        assert_eq!(w.commit_point(), Lsn(41));
    }

    #[test]
    fn append_goes_to_all_six_and_commits_at_four_acks() {
        let mut w = Writer::new(EngineConfig::new(AckPolicy::Memory, 1));
        let out = w.handle(WriterInput::Append { page: 3, value: 9 });
        assert_eq!(sends(&out).len(), 6);
        assert!(out.contains(&Output::Observe(Event::Appended(Record {
            lsn: Lsn(1),
            page: 3,
            value: 9,
            epoch: Epoch::FIRST
        }))));
        for n in 0..3 {
            w.handle(ack(n, 1));
            assert_eq!(w.commit_point(), Lsn(0));
        }
        let out = w.handle(ack(3, 1));
        assert_eq!(w.commit_point(), Lsn(1));
        assert!(out.contains(&Output::Observe(Event::Committed(Lsn(1)))));
        // A late, lower ack (a restarted node) does not move the commit point back.
        w.handle(ack(3, 0));
        assert_eq!(w.commit_point(), Lsn(1));
    }

    #[test]
    fn the_seeded_bug_commits_at_three() {
        let mut w = Writer::new(
            EngineConfig::new(AckPolicy::Memory, 1).with_bug(Some(ImplBug::CommitAtThree)),
        );
        w.handle(WriterInput::Append { page: 0, value: 0 });
        for n in 0..3 {
            w.handle(ack(n, 1));
        }
        assert_eq!(w.commit_point(), Lsn(1));
    }

    #[test]
    fn tick_resends_only_to_stalled_nodes_from_their_latest_ack() {
        let mut w = Writer::new(EngineConfig::new(AckPolicy::Memory, 1));
        for v in 0..3 {
            w.handle(WriterInput::Append { page: 0, value: v });
        }
        for n in 0..6 {
            w.handle(ack(n, 3));
        }
        for n in 0..5 {
            w.handle(WriterInput::Deliver(Envelope::flushed(
                NodeId(n),
                Actor::Writer,
                Lsn(3),
            )));
        }
        w.handle(ack(5, 1)); // S5 restarted and holds only 1.
        w.handle(WriterInput::Tick); // first tick: S5 just moved, no resend yet
        let out = w.handle(WriterInput::Tick);
        let resent = sends(&out);
        assert_eq!(resent.len(), 2);
        assert!(resent.iter().all(|e| e.dst == Actor::Storage(NodeId(5))));
        assert_eq!(
            resent[0].msg,
            Msg::Append(Record {
                lsn: Lsn(2),
                page: 0,
                value: 1,
                epoch: Epoch::FIRST
            })
        );
    }

    #[test]
    fn tick_probes_a_node_that_acked_but_never_reported_a_flush() {
        let mut w = Writer::new(EngineConfig::new(AckPolicy::Memory, 1));
        w.handle(WriterInput::Append { page: 0, value: 0 });
        for n in 0..6 {
            w.handle(ack(n, 1));
        }
        w.handle(WriterInput::Tick);
        let probes = sends(&w.handle(WriterInput::Tick));
        assert_eq!(probes.len(), 6, "nobody reported a flush yet");
        let last = Msg::Append(Record {
            lsn: Lsn(1),
            page: 0,
            value: 0,
            epoch: Epoch::FIRST,
        });
        assert!(probes.iter().all(|e| e.msg == last));
    }

    fn committed(out: &[Output]) -> Vec<Lsn> {
        out.iter()
            .filter_map(|o| match o {
                Output::Observe(Event::Committed(l)) => Some(*l),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn numbers_records_and_keeps_each_nodes_highest_ack() {
        let mut w = Writer::new(EngineConfig::new(AckPolicy::Memory, 1));
        assert_eq!(w.last_lsn(), Lsn(0));
        for v in 0..3 {
            w.handle(WriterInput::Append { page: 1, value: v });
        }
        assert_eq!(w.last_lsn(), Lsn(3));
        w.handle(ack(2, 3));
        w.handle(ack(2, 1)); // reordered, or a restarted node
        assert_eq!(w.acked(NodeId(2)), Lsn(3));
        assert_eq!(w.acked(NodeId(1)), Lsn(0));
    }

    #[test]
    fn repair_resends_from_each_short_nodes_ack_once_per_ack() {
        let mut w = Writer::new(EngineConfig::new(AckPolicy::Memory, 1));
        for v in 0..3 {
            w.handle(WriterInput::Append { page: 0, value: v });
        }
        for n in 0..3 {
            w.handle(ack(n, 3));
        }
        // S3 lost 2 (it acks 1); S4's ack was lost; S5 never answered.
        w.handle(ack(3, 1));
        let to = |out: &[Output], n: u8| -> Vec<Lsn> {
            sends(out)
                .into_iter()
                .filter(|e| e.dst == Actor::Storage(NodeId(n)))
                .filter_map(|e| match e.msg {
                    Msg::Append(r) => Some(r.lsn),
                    _ => None,
                })
                .collect()
        };
        let out = w.handle(WriterInput::Repair);
        assert_eq!(to(&out, 3), vec![Lsn(2), Lsn(3)]);
        assert_eq!(to(&out, 4), vec![Lsn(1), Lsn(2), Lsn(3)]);
        assert_eq!(to(&out, 5), vec![Lsn(1), Lsn(2), Lsn(3)]);
        assert!(to(&out, 0).is_empty(), "S0 has everything");
        // Nothing new heard: no second repair (the ticks are the fallback).
        assert!(sends(&w.handle(WriterInput::Repair)).is_empty());
        // S3's repair got 2 there but 3 was lost again: it is repaired from its new ack.
        w.handle(ack(3, 2));
        let out = w.handle(WriterInput::Repair);
        assert_eq!(to(&out, 3), vec![Lsn(3)]);
        assert_eq!(sends(&out).len(), 1);
        // Committed through the last record: nothing to repair, even for a node still short
        // with a new ack.
        w.handle(ack(3, 3));
        assert_eq!(w.commit_point(), Lsn(3));
        w.handle(ack(4, 2));
        assert!(w.handle(WriterInput::Repair).is_empty());
    }

    #[test]
    fn the_commit_event_is_observed_once_per_rise() {
        let mut w = Writer::new(EngineConfig::new(AckPolicy::Memory, 1));
        w.handle(WriterInput::Append { page: 0, value: 0 });
        for n in 0..3 {
            assert_eq!(committed(&w.handle(ack(n, 1))), vec![]);
        }
        assert_eq!(committed(&w.handle(ack(3, 1))), vec![Lsn(1)]);
        // A fifth ack of the same LSN leaves the commit point where it is: no new event.
        assert_eq!(committed(&w.handle(ack(4, 1))), vec![]);
        assert_eq!(w.commit_point(), Lsn(1));
    }

    #[test]
    fn a_record_is_dropped_once_committed_and_flushed_by_every_node() {
        let mut w = Writer::new(EngineConfig::new(AckPolicy::Memory, 1));
        for v in 0..3 {
            w.handle(WriterInput::Append { page: 0, value: v });
        }
        let r2 = Record {
            lsn: Lsn(2),
            page: 0,
            value: 1,
            epoch: Epoch::FIRST,
        };
        assert_eq!(w.record(Lsn(2)), Some(r2));
        let flushed = |n: u8, l: u64| {
            WriterInput::Deliver(Envelope::flushed(NodeId(n), Actor::Writer, Lsn(l)))
        };
        // Flushed everywhere through 3, but committed only through 2: 3 stays.
        for n in 0..4 {
            w.handle(ack(n, 2));
        }
        for n in 0..5 {
            w.handle(flushed(n, 3));
        }
        assert!(
            (1..=3).all(|l| w.record(Lsn(l)).is_some()),
            "S5 flushed nothing"
        );
        w.handle(flushed(5, 3));
        assert_eq!(w.record(Lsn(1)), None);
        assert_eq!(w.record(Lsn(2)), None);
        assert!(w.record(Lsn(3)).is_some(), "3 is not committed");
        assert_eq!(w.record(Lsn(4)), None, "never created");
    }

    fn rec(l: u64) -> Record {
        Record {
            lsn: Lsn(l),
            page: 0,
            value: l,
            epoch: Epoch::FIRST,
        }
    }

    fn from_node(node: u8, msg: Msg) -> WriterInput {
        WriterInput::Deliver(Envelope {
            src: Actor::Storage(NodeId(node)),
            dst: Actor::Writer,
            msg,
        })
    }

    /// Node `node`'s answer to a read of `epoch`: sealed in `sealed`, holding `1..=scl`.
    fn read_answer(node: u8, epoch: u32, sealed: u32, scl: u64) -> WriterInput {
        from_node(
            node,
            Msg::ReadAnswer {
                node: NodeId(node),
                epoch: Epoch::numbered(epoch),
                sealed: Epoch::numbered(sealed),
                scl: Lsn(scl),
                records: (1..=scl).map(rec).collect(),
            },
        )
    }

    fn sealed(node: u8, epoch: u32) -> WriterInput {
        from_node(
            node,
            Msg::Sealed {
                node: NodeId(node),
                epoch: Epoch::numbered(epoch),
            },
        )
    }

    fn reading(w: &Writer) -> bool {
        matches!(w.phase(), Phase::Reading { .. })
    }

    /// The nodes each of `out`'s messages matching `is` goes to.
    fn sent_to(out: &[Output], is: impl Fn(&Msg) -> bool) -> Vec<NodeId> {
        sends(out)
            .into_iter()
            .filter(|e| is(&e.msg))
            .map(|e| match e.dst {
                Actor::Storage(n) => n,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn nodes(ids: &[u8]) -> Vec<NodeId> {
        ids.iter().map(|&n| NodeId(n)).collect()
    }

    /// A writer of epoch 1 that has read S0, S1, S2 and is sealing at recovery point 3.
    fn sealing_writer() -> Writer {
        let (mut w, _) =
            Writer::recovering(EngineConfig::new(AckPolicy::Memory, 1), Epoch::numbered(1));
        for (n, scl) in [(0, 2), (1, 3), (2, 1)] {
            w.handle(read_answer(n, 1, 0, scl));
        }
        assert!(matches!(w.phase(), Phase::Sealing { .. }));
        w
    }

    #[test]
    fn a_recovering_writer_fixes_the_point_from_a_read_quorum_of_its_own_epoch() {
        let (mut w, out) =
            Writer::recovering(EngineConfig::new(AckPolicy::Memory, 1), Epoch::numbered(1));
        assert_eq!(w.epoch(), Epoch::numbered(1));
        assert!(!w.is_open() && reading(&w));
        let is_read = |m: &Msg| {
            *m == Msg::Read {
                epoch: Epoch::numbered(1),
            }
        };
        assert_eq!(sent_to(&out, is_read), nodes(&[0, 1, 2, 3, 4, 5]));
        // No writes while recovering.
        assert!(w
            .handle(WriterInput::Append { page: 0, value: 1 })
            .is_empty());
        assert_eq!(w.last_lsn(), Lsn(0));
        // A node's repeated answer counts once; answers to another epoch's read do not count.
        w.handle(read_answer(0, 1, 0, 2));
        w.handle(read_answer(0, 1, 0, 2));
        w.handle(read_answer(1, 0, 0, 3));
        w.handle(read_answer(2, 2, 0, 3));
        assert!(reading(&w));
        // A tick repeats the read to the nodes that have not answered.
        let out = w.handle(WriterInput::Tick);
        assert_eq!(sent_to(&out, is_read), nodes(&[1, 2, 3, 4, 5]));
        w.handle(read_answer(1, 1, 0, 3));
        assert!(reading(&w), "two answers are not a read quorum");
        let out = w.handle(read_answer(2, 1, 0, 1));
        // The highest SCL of the three; its records are sealed on every node.
        assert!(matches!(w.phase(), Phase::Sealing { .. }));
        assert_eq!(
            (w.point(), w.last_lsn(), w.commit_point()),
            (Lsn(3), Lsn(3), Lsn(0))
        );
        let seal = Msg::Seal {
            epoch: Epoch::numbered(1),
            point: Lsn(3),
            records: vec![rec(1), rec(2), rec(3)],
        };
        assert_eq!(sent_to(&out, |m| *m == seal), nodes(&[0, 1, 2, 3, 4, 5]));
        assert!(out.contains(&Output::Observe(Event::Recovered {
            epoch: Epoch::numbered(1),
            point: Lsn(3),
            log: vec![rec(1), rec(2), rec(3)],
        })));
        assert_eq!(w.log_record(Lsn(0)), None);
        assert_eq!(w.log_record(Lsn(1)), Some(rec(1)));
        assert_eq!(w.log_record(Lsn(3)), Some(rec(3)));
        assert_eq!(w.log_record(Lsn(4)), None);
    }

    #[test]
    fn a_read_answer_without_the_records_up_to_its_scl_is_dropped() {
        let (mut w, _) =
            Writer::recovering(EngineConfig::new(AckPolicy::Memory, 1), Epoch::numbered(1));
        w.handle(read_answer(0, 1, 0, 1));
        w.handle(read_answer(1, 1, 0, 2));
        // S2 claims SCL 3 but sends only 1 and 2.
        w.handle(from_node(
            2,
            Msg::ReadAnswer {
                node: NodeId(2),
                epoch: Epoch::numbered(1),
                sealed: Epoch::FIRST,
                scl: Lsn(3),
                records: vec![rec(1), rec(2)],
            },
        ));
        assert!(reading(&w));
        w.handle(read_answer(3, 1, 0, 2));
        assert_eq!(w.point(), Lsn(2));
        assert_eq!(w.log_record(Lsn(2)), Some(rec(2)));
    }

    #[test]
    fn the_seeded_recover_from_two_bug_fixes_the_point_after_two_answers() {
        let cfg = EngineConfig::new(AckPolicy::Memory, 1).with_bug(Some(ImplBug::RecoverFromTwo));
        let (mut w, _) = Writer::recovering(cfg, Epoch::numbered(1));
        w.handle(read_answer(0, 1, 0, 1));
        assert!(reading(&w));
        w.handle(read_answer(1, 1, 0, 2));
        assert!(!reading(&w));
        assert_eq!(w.point(), Lsn(2));
    }

    #[test]
    fn the_writer_opens_once_a_write_quorum_has_sealed_and_reseals_the_rest() {
        let mut w = sealing_writer();
        // A node's repeated `Sealed` counts once; another epoch's does not count.
        for input in [
            sealed(0, 1),
            sealed(0, 1),
            sealed(1, 0),
            sealed(3, 2),
            sealed(2, 1),
        ] {
            assert!(w.handle(input).is_empty());
        }
        assert_eq!(w.sealed_nodes(), &nodes(&[0, 2])[..]);
        w.handle(sealed(1, 1));
        assert!(!w.is_open(), "three seals are not a write quorum");
        // A tick re-sends the seal, with the recovered records, to the nodes that have not
        // confirmed it.
        let seal = Msg::Seal {
            epoch: Epoch::numbered(1),
            point: Lsn(3),
            records: vec![rec(1), rec(2), rec(3)],
        };
        let out = w.handle(WriterInput::Tick);
        assert_eq!(sent_to(&out, |m| *m == seal), nodes(&[3, 4, 5]));
        assert_eq!(sends(&out).len(), 3);
        let out = w.handle(sealed(3, 1));
        assert!(w.is_open());
        assert_eq!(w.commit_point(), Lsn(3));
        assert_eq!(committed(&out), vec![Lsn(3)]);
        assert_eq!(w.sealed_nodes(), &nodes(&[0, 2, 1, 3])[..]);
        // Open, it writes on from the point, in its epoch, and keeps sealing S4 and S5.
        let out = w.handle(WriterInput::Append { page: 0, value: 9 });
        assert!(out.contains(&Output::Observe(Event::Appended(Record {
            lsn: Lsn(4),
            page: 0,
            value: 9,
            epoch: Epoch::numbered(1),
        }))));
        let out = w.handle(WriterInput::Tick);
        assert_eq!(sent_to(&out, |m| *m == seal), nodes(&[4, 5]));
        w.handle(sealed(4, 1));
        assert_eq!(w.log_record(Lsn(1)), Some(rec(1)), "S5 may still need it");
        w.handle(sealed(5, 1));
        // Every node sealed: the recovered records are no longer kept, nor re-sent.
        assert_eq!(w.log_record(Lsn(1)), None);
        let out = w.handle(WriterInput::Tick);
        assert!(sent_to(&out, |m| matches!(m, Msg::Seal { .. })).is_empty());
    }

    #[test]
    fn flushed_reports_of_another_epoch_do_not_free_the_log() {
        let cfg = EngineConfig::new(AckPolicy::Memory, 1).resuming(Epoch::numbered(2), Lsn::ZERO);
        let mut w = Writer::new(cfg);
        w.handle(WriterInput::Append { page: 0, value: 0 });
        let in_epoch =
            |e: Envelope, epoch: u32| WriterInput::Deliver(e.in_epoch(Epoch::numbered(epoch)));
        for n in 0..6 {
            w.handle(in_epoch(Envelope::ack(NodeId(n), Lsn(1)), 2));
        }
        assert_eq!(w.commit_point(), Lsn(1));
        for n in 0..6 {
            w.handle(in_epoch(
                Envelope::flushed(NodeId(n), Actor::Writer, Lsn(1)),
                1,
            ));
        }
        assert!(w.record(Lsn(1)).is_some());
        for n in 0..6 {
            w.handle(in_epoch(
                Envelope::flushed(NodeId(n), Actor::Writer, Lsn(1)),
                2,
            ));
        }
        assert_eq!(w.record(Lsn(1)), None);
    }
}
