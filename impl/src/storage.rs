//! A storage node's state machine: in-memory log, SCL, the flush handoff, acks and pulls.
//! No I/O: disk writes leave as [`Output::Persist`] and come back as
//! [`StorageInput::FlushDone`] once the flusher has synced them.
//!
//! **The flush handoff** ([`StorageNode::on_flush_done`]): a record stays in the memory log until
//! the flusher reports it written *and synced*; only then does it move to the disk side and only
//! then does the node announce `Flushed`. A record is never in neither place.

use std::collections::BTreeMap;

use aurora_redo_model::types::{Actor, Envelope, Lsn, Msg, NodeId, Record};

use crate::config::{AckPolicy, EngineConfig, ImplBug};
use crate::observer::Event;
use crate::output::Output;

/// What a storage node consumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageInput {
    /// A batch of messages delivered together (the transport's batching). Appends in one batch
    /// are acknowledged once. A batch of one is a single delivery.
    Deliver(Vec<Envelope>),
    /// The flusher wrote and synced every record up to `upto` (the last `Persist`).
    FlushDone { upto: Lsn },
}

/// A storage node `S0..S5`.
#[derive(Clone, Debug)]
pub struct StorageNode {
    id: NodeId,
    cfg: EngineConfig,
    /// Records received and not yet synced to disk.
    mem: BTreeMap<Lsn, Record>,
    /// Records on disk: a read cache of the segment file, rebuilt from it on restart.
    disk: BTreeMap<Lsn, Record>,
    /// Records handed to the flusher (only under the seeded `EvictBeforeFlush` bug are they
    /// missing from `mem` meanwhile).
    in_flight: BTreeMap<Lsn, Record>,
    scl: Lsn,
    flushed: Lsn,
    /// The `upto` of the flush in progress.
    flushing: Option<Lsn>,
    /// The SCL of the last `Ack`/`Available` sent (re-announced after a `Pull`).
    announced: Lsn,
}

impl StorageNode {
    /// A fresh node with empty memory and an empty disk.
    pub fn new(id: NodeId, cfg: EngineConfig) -> StorageNode {
        StorageNode::recover(id, cfg, Vec::new())
    }

    /// A node restarting from the records its segment file holds: memory is empty, so its SCL is
    /// its flushed LSN.
    pub fn recover(id: NodeId, cfg: EngineConfig, on_disk: Vec<Record>) -> StorageNode {
        let disk: BTreeMap<Lsn, Record> = on_disk.into_iter().map(|r| (r.lsn, r)).collect();
        let mut node = StorageNode {
            id,
            cfg,
            mem: BTreeMap::new(),
            disk,
            in_flight: BTreeMap::new(),
            scl: Lsn::ZERO,
            flushed: Lsn::ZERO,
            flushing: None,
            announced: Lsn::ZERO,
        };
        node.flushed = extend_prefix(Lsn::ZERO, |l| node.disk.contains_key(&l));
        node.scl = node.flushed;
        node.announced = node.flushed;
        node
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Segment complete LSN: every record `1..=scl` is held (memory or disk).
    pub fn scl(&self) -> Lsn {
        self.scl
    }

    /// Every record `1..=flushed` is on disk (synced).
    pub fn flushed(&self) -> Lsn {
        self.flushed
    }

    /// Whether the node holds `lsn` in memory.
    pub fn in_memory(&self, lsn: Lsn) -> bool {
        self.mem.contains_key(&lsn)
    }

    /// Whether the node believes `lsn` is on its disk.
    pub fn on_disk(&self, lsn: Lsn) -> bool {
        self.disk.contains_key(&lsn)
    }

    /// Whether the node holds `lsn` anywhere (memory, disk, or handed to the flusher).
    pub fn holds(&self, lsn: Lsn) -> bool {
        self.mem.contains_key(&lsn)
            || self.disk.contains_key(&lsn)
            || self.in_flight.contains_key(&lsn)
    }

    /// The records held in memory (not yet synced), in LSN order.
    pub fn memory_records(&self) -> impl Iterator<Item = &Record> {
        self.mem.values()
    }

    /// Whether a flush is in progress.
    pub fn flushing(&self) -> bool {
        self.flushing.is_some()
    }

    pub fn handle(&mut self, input: StorageInput) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            StorageInput::Deliver(batch) => self.on_batch(batch, &mut out),
            StorageInput::FlushDone { upto } => self.on_flush_done(upto, &mut out),
        }
        self.maybe_flush(&mut out);
        out
    }

    /// Step 2, **Store and acknowledge** (`docs/protocol.md`), for a delivered batch.
    fn on_batch(&mut self, batch: Vec<Envelope>, out: &mut Vec<Output>) {
        let mut appended = false;
        for env in batch {
            match env.msg {
                Msg::Append(record) => {
                    appended = true;
                    if !self.holds(record.lsn) {
                        self.mem.insert(record.lsn, record);
                    }
                }
                Msg::Pull { from } => self.on_pull(env.src, from, out),
                _ => {}
            }
        }
        self.scl = extend_prefix(self.scl, |l| self.holds(l));
        // Memory policy: ack (and re-ack duplicates) on receipt. Disk policy: re-ack what is on
        // disk; new records are acked by `on_flush_done`.
        if appended {
            let scl = match self.cfg.ack {
                AckPolicy::Memory if self.cfg.has_bug(ImplBug::SclWithHoles) => {
                    let held = self.mem.keys().chain(self.disk.keys()).max();
                    held.copied().unwrap_or(Lsn::ZERO).max(self.scl)
                }
                AckPolicy::Memory => self.scl,
                AckPolicy::Disk => self.flushed,
            };
            self.ack(scl, out);
        }
    }

    /// `Ack` to the writer and `Available` to every replica, both carrying `scl`.
    fn ack(&mut self, scl: Lsn, out: &mut Vec<Output>) {
        out.push(Output::Observe(Event::Acked {
            node: self.id,
            sent: scl,
            held: self.scl,
        }));
        self.announced = self.announced.max(scl);
        out.push(Output::Send(Envelope::ack(self.id, scl)));
        for r in self.cfg.replicas.clone() {
            out.push(Output::Send(Envelope::available(self.id, r, scl)));
        }
    }

    /// Step 8, **Catch-up** (`docs/protocol.md`), the node's side: answer a `Pull` from memory and
    /// disk, then repeat the latest `Available` and `Flushed` to the puller.
    fn on_pull(&mut self, to: Actor, from: Lsn, out: &mut Vec<Output>) {
        let mut records: Vec<Record> = self
            .disk
            .range(from..)
            .chain(self.mem.range(from..))
            .chain(self.in_flight.range(from..))
            .map(|(_, r)| *r)
            .collect();
        records.sort();
        records.dedup();
        records.truncate(self.cfg.max_batch);
        out.push(Output::Send(Envelope::records(self.id, to, records)));
        // Re-announce, so a restarted replica re-learns the commit and durable points.
        let (scl, lsn) = (self.announced, self.flushed);
        out.push(Output::Send(Envelope::available(self.id, to, scl)));
        out.push(Output::Send(Envelope::flushed(self.id, to, lsn)));
    }

    /// Step 6, **Flush** (`docs/protocol.md`), the flush handoff: the records `..=upto` are synced;
    /// move them to the disk side, then announce it.
    fn on_flush_done(&mut self, upto: Lsn, out: &mut Vec<Output>) {
        if self.flushing != Some(upto) {
            return; // not ours (stale): ignore
        }
        self.flushing = None;
        let done: Vec<Lsn> = self.mem.range(..=upto).map(|(l, _)| *l).collect();
        for lsn in done {
            if let Some(r) = self.mem.remove(&lsn) {
                self.disk.insert(lsn, r);
            }
        }
        let moved: Vec<Lsn> = self.in_flight.range(..=upto).map(|(l, _)| *l).collect();
        for lsn in moved {
            if let Some(r) = self.in_flight.remove(&lsn) {
                self.disk.insert(lsn, r);
            }
        }
        self.flushed = self.flushed.max(upto);
        let lsn = self.flushed;
        out.push(Output::Send(Envelope::flushed(self.id, Actor::Writer, lsn)));
        for r in self.cfg.replicas.clone() {
            out.push(Output::Send(Envelope::flushed(self.id, r, lsn)));
        }
        if self.cfg.ack == AckPolicy::Disk {
            self.ack(lsn, out);
        }
    }

    /// Hands the contiguous prefix above the flushed LSN to the flusher (one flush at a time).
    fn maybe_flush(&mut self, out: &mut Vec<Output>) {
        if self.flushing.is_some() || self.scl <= self.flushed {
            return;
        }
        let range = self.flushed.next()..=self.scl;
        let records: Vec<Record> = self.mem.range(range.clone()).map(|(_, r)| *r).collect();
        if records.is_empty() {
            return;
        }
        let upto = records[records.len() - 1].lsn;
        if self.cfg.has_bug(ImplBug::EvictBeforeFlush) {
            for r in &records {
                self.mem.remove(&r.lsn);
                self.in_flight.insert(r.lsn, *r);
            }
        }
        self.flushing = Some(upto);
        out.push(Output::Persist(records));
    }
}

/// Extends a contiguous prefix that is known to hold up to `from` (it never shrinks within one
/// incarnation): the same definition as `aurora_redo_model::quorum::contiguous_prefix`, computed
/// incrementally so a long log is not rescanned on every batch.
fn extend_prefix(from: Lsn, mut holds: impl FnMut(Lsn) -> bool) -> Lsn {
    let mut lsn = from;
    while holds(lsn.next()) {
        lsn = lsn.next();
    }
    lsn
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use super::*;
    use aurora_redo_model::quorum::contiguous_prefix;
    use aurora_redo_model::types::ReplicaId;

    fn rec(l: u64) -> Record {
        Record {
            lsn: Lsn(l),
            page: l as u32 % 3,
            value: l * 10,
        }
    }

    fn append(l: u64) -> Envelope {
        Envelope::append(NodeId(0), rec(l))
    }

    fn sends(out: &[Output]) -> Vec<Envelope> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    fn persist(out: &[Output]) -> Option<Vec<Record>> {
        out.iter().find_map(|o| match o {
            Output::Persist(r) => Some(r.clone()),
            _ => None,
        })
    }

    #[test]
    fn memory_ack_stops_at_a_hole_and_flush_takes_the_prefix() {
        let mut n = StorageNode::new(NodeId(0), EngineConfig::new(AckPolicy::Memory, 1));
        let out = n.handle(StorageInput::Deliver(vec![append(1), append(2), append(4)]));
        assert_eq!(n.scl(), Lsn(2));
        assert_eq!(n.scl(), contiguous_prefix(|l| n.holds(l)));
        let m = sends(&out);
        assert!(m.contains(&Envelope::ack(NodeId(0), Lsn(2))));
        assert!(m.contains(&Envelope::available(NodeId(0), ReplicaId(0), Lsn(2))));
        assert_eq!(persist(&out), Some(vec![rec(1), rec(2)]));
        // Until the flush completes, the records stay in memory and nothing says Flushed.
        assert!(n.in_memory(Lsn(1)) && !n.on_disk(Lsn(1)));
        assert!(!m.iter().any(|e| matches!(e.msg, Msg::Flushed { .. })));
        let out = n.handle(StorageInput::FlushDone { upto: Lsn(2) });
        assert!(!n.in_memory(Lsn(1)) && n.on_disk(Lsn(1)));
        assert_eq!(n.flushed(), Lsn(2));
        assert!(sends(&out).contains(&Envelope::flushed(NodeId(0), ReplicaId(0), Lsn(2))));
        // Filling the hole moves the SCL over 4 and starts the next flush.
        let out = n.handle(StorageInput::Deliver(vec![append(3)]));
        assert_eq!(n.scl(), Lsn(4));
        assert_eq!(persist(&out), Some(vec![rec(3), rec(4)]));
    }

    #[test]
    fn disk_ack_waits_for_the_flush() {
        let mut n = StorageNode::new(NodeId(1), EngineConfig::new(AckPolicy::Disk, 0));
        let out = n.handle(StorageInput::Deliver(vec![append(1)]));
        assert!(sends(&out).contains(&Envelope::ack(NodeId(1), Lsn(0))));
        let out = n.handle(StorageInput::FlushDone { upto: Lsn(1) });
        assert!(sends(&out).contains(&Envelope::ack(NodeId(1), Lsn(1))));
    }

    #[test]
    fn pull_answers_from_memory_and_disk_then_reannounces() {
        let mut n = StorageNode::recover(
            NodeId(2),
            EngineConfig::new(AckPolicy::Memory, 1),
            vec![rec(1), rec(2)],
        );
        assert_eq!((n.scl(), n.flushed()), (Lsn(2), Lsn(2)));
        n.handle(StorageInput::Deliver(vec![append(3)]));
        let pull = Envelope::pull(ReplicaId(0), NodeId(2), Lsn(2));
        let out = n.handle(StorageInput::Deliver(vec![pull]));
        let (r0, s2) = (ReplicaId(0), NodeId(2));
        assert_eq!(
            sends(&out),
            vec![
                Envelope::records(s2, r0, vec![rec(2), rec(3)]),
                Envelope::available(s2, r0, Lsn(3)),
                Envelope::flushed(s2, r0, Lsn(2)),
            ]
        );
    }

    #[test]
    fn a_duplicate_append_is_re_acked() {
        let mut n = StorageNode::new(NodeId(0), EngineConfig::new(AckPolicy::Memory, 0));
        n.handle(StorageInput::Deliver(vec![append(1)]));
        let out = n.handle(StorageInput::Deliver(vec![append(1)]));
        assert_eq!(sends(&out), vec![Envelope::ack(NodeId(0), Lsn(1))]);
    }

    #[test]
    fn one_flush_at_a_time_and_memory_until_it_is_done() {
        let mut n = StorageNode::new(NodeId(4), EngineConfig::new(AckPolicy::Memory, 0));
        assert_eq!(n.id(), NodeId(4));
        assert!(!n.flushing());
        let out = n.handle(StorageInput::Deliver(vec![append(1)]));
        assert_eq!(persist(&out), Some(vec![rec(1)]));
        assert!(n.flushing());
        // While the flush of 1 is in progress, 2 waits in memory for the next one.
        let out = n.handle(StorageInput::Deliver(vec![append(2)]));
        assert_eq!(persist(&out), None);
        let in_memory: Vec<Record> = n.memory_records().copied().collect();
        assert_eq!(in_memory, vec![rec(1), rec(2)]);
        // A stale completion changes nothing.
        n.handle(StorageInput::FlushDone { upto: Lsn(2) });
        assert_eq!(n.flushed(), Lsn(0));
        let out = n.handle(StorageInput::FlushDone { upto: Lsn(1) });
        assert_eq!(n.flushed(), Lsn(1));
        assert_eq!(persist(&out), Some(vec![rec(2)]));
        assert!(n.flushing());
        let in_memory: Vec<Record> = n.memory_records().copied().collect();
        assert_eq!(in_memory, vec![rec(2)]);
        n.handle(StorageInput::FlushDone { upto: Lsn(2) });
        assert!(!n.flushing());
        assert_eq!(n.memory_records().count(), 0);
    }

    #[test]
    fn the_seeded_bug_acks_past_a_hole() {
        let cfg = EngineConfig::new(AckPolicy::Memory, 0).with_bug(Some(ImplBug::SclWithHoles));
        let mut n = StorageNode::new(NodeId(0), cfg);
        let out = n.handle(StorageInput::Deliver(vec![append(1), append(3)]));
        assert_eq!(n.scl(), Lsn(1));
        assert!(sends(&out).contains(&Envelope::ack(NodeId(0), Lsn(3))));
    }

    #[test]
    fn a_duplicate_of_a_record_on_disk_does_not_go_back_into_memory() {
        let mut n = StorageNode::recover(
            NodeId(1),
            EngineConfig::new(AckPolicy::Memory, 0),
            vec![rec(1), rec(2)],
        );
        let out = n.handle(StorageInput::Deliver(vec![append(2)]));
        assert!(n.on_disk(Lsn(2)) && !n.in_memory(Lsn(2)));
        assert_eq!(n.memory_records().count(), 0);
        assert_eq!(sends(&out), vec![Envelope::ack(NodeId(1), Lsn(2))]);
        // The same after a flush of the node's own: the record lives on its disk only.
        n.handle(StorageInput::Deliver(vec![append(3)]));
        n.handle(StorageInput::FlushDone { upto: Lsn(3) });
        n.handle(StorageInput::Deliver(vec![append(3)]));
        assert!(n.on_disk(Lsn(3)) && !n.in_memory(Lsn(3)));
        assert!(!n.flushing());
    }
}
