//! A storage node's state machine: in-memory log, SCL, the flush handoff, acks and pulls.
//! No I/O: disk writes leave as [`Output::Persist`] and come back as
//! [`StorageInput::FlushDone`] once the flusher has synced them; reads of flushed records leave
//! as [`Output::ReadBack`] and come back as [`StorageInput::ReadDone`].
//!
//! **The flush handoff** ([`StorageNode::on_flush_done`]): a record stays in the memory log until
//! the flusher reports it written *and synced*; only then is it freed (kept, at most, in a small
//! cache of recently flushed records) and only then does the node announce `Flushed`. A record is
//! never in neither place.
//!
//! **The memory lifecycle**: the node's memory holds what is not yet flushed, plus at most
//! `cache_records` recently flushed records (and, after a recovery that found a hole, the records
//! its segment holds above the hole). What is flushed is on disk: `1..=flushed` is the node's
//! segment. A `Pull` for older records is answered from the segment: the node asks its driver to
//! read them back ([`Output::ReadBack`], at most `max_batch` records) and answers once they are
//! fed back ([`StorageInput::ReadDone`]).

use std::collections::BTreeMap;
use std::iter::Peekable;

use aurora_redo_model::recovery::annuls;
use aurora_redo_model::types::{Actor, Envelope, Epoch, Lsn, Msg, NodeId, Record};

use crate::config::{AckPolicy, EngineConfig, ImplBug};
use crate::observer::Event;
use crate::output::{Durable, Output, ReadBack};
use crate::segment::Seal;

/// What a storage node consumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageInput {
    /// A batch of messages delivered together (the transport's batching). Appends in one batch
    /// are acknowledged once. A batch of one is a single delivery.
    Deliver(Vec<Envelope>),
    /// The flusher wrote and synced every record up to `upto` (the last `Persist`).
    FlushDone { upto: Lsn },
    /// The records a [`ReadBack`] for `to`'s pull from `from` read from the segment: answer it.
    ReadDone {
        to: Actor,
        from: Lsn,
        records: Vec<Record>,
    },
}

/// A storage node `S0..S5`.
#[derive(Clone, Debug)]
pub struct StorageNode {
    id: NodeId,
    cfg: EngineConfig,
    /// Records received and not yet synced to disk.
    mem: BTreeMap<Lsn, Record>,
    /// The most recently flushed records, at most `cfg.cache_records` of them.
    cache: BTreeMap<Lsn, Record>,
    /// Records recovery found on disk above the flushed prefix (after a hole): on disk, but not
    /// covered by `flushed`, so kept until the prefix passes them.
    beyond: BTreeMap<Lsn, Record>,
    /// Records handed to the flusher (only under the seeded `EvictBeforeFlush` bug are they
    /// missing from `mem` meanwhile).
    in_flight: BTreeMap<Lsn, Record>,
    scl: Lsn,
    /// Every record `1..=flushed` is in the segment, synced.
    flushed: Lsn,
    /// The `upto` of the flush in progress.
    flushing: Option<Lsn>,
    /// The SCL of the last `Ack`/`Available` sent (re-announced after a `Pull`).
    announced: Lsn,
    /// The newest epoch the node adopted (persisted): it takes no older epoch's record.
    epoch: Epoch,
    /// The epoch of the last seal it persisted; it speaks for `epoch` only once `sealed == epoch`.
    sealed: Epoch,
    /// The pulls waiting for a read-back: puller, first LSN, and the sealed epoch the node
    /// spoke for when it asked (one per puller: a replica has one pull outstanding).
    read_backs: Vec<(Actor, Lsn, Epoch)>,
}

/// What a node does with an `Append` (the model's `storage::Receipt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Receipt {
    Take,
    Stale,
    Wait,
}

impl StorageNode {
    /// A fresh node with empty memory and an empty disk.
    pub fn new(id: NodeId, cfg: EngineConfig) -> StorageNode {
        StorageNode::recover(id, cfg, Vec::new())
    }

    /// A node restarting from the records its segment file holds: memory is empty, so its SCL is
    /// its flushed LSN. Only the records above the flushed prefix are kept in memory.
    pub fn recover(id: NodeId, cfg: EngineConfig, on_disk: Vec<Record>) -> StorageNode {
        StorageNode::recover_in(id, cfg, on_disk, Epoch::FIRST, Epoch::FIRST)
    }

    /// [`StorageNode::recover`] for a node whose segment holds an adopted epoch `adopted` and the
    /// seal of epoch `sealed` (`sealed <= adopted`).
    pub fn recover_in(
        id: NodeId,
        cfg: EngineConfig,
        mut on_disk: Vec<Record>,
        adopted: Epoch,
        sealed: Epoch,
    ) -> StorageNode {
        on_disk.sort();
        on_disk.dedup_by_key(|r| r.lsn);
        let mut flushed = Lsn::ZERO;
        for r in &on_disk {
            if r.lsn == flushed.next() {
                flushed = r.lsn;
            } else if r.lsn > flushed.next() {
                break;
            }
        }
        on_disk.retain(|r| r.lsn > flushed);
        StorageNode::restart(id, cfg, flushed, on_disk, adopted, sealed)
    }

    /// A node restarted from a segment read in bounded memory: `1..=flushed` on disk (read back
    /// on demand), `beyond` the records it holds above a hole, in LSN order.
    pub fn restart(
        id: NodeId,
        cfg: EngineConfig,
        flushed: Lsn,
        beyond: Vec<Record>,
        adopted: Epoch,
        sealed: Epoch,
    ) -> StorageNode {
        let beyond = beyond.into_iter().map(|r| (r.lsn, r)).collect();
        StorageNode {
            id,
            cfg,
            mem: BTreeMap::new(),
            cache: BTreeMap::new(),
            beyond,
            in_flight: BTreeMap::new(),
            scl: flushed,
            flushed,
            flushing: None,
            // Nothing announced in this life yet: a flush synced just before the crash may never
            // have been acknowledged, and a pull's re-announce must not carry an `Available` that
            // no `Ack` went with. The next acknowledgement (an `Append` it takes, or the one a
            // pull makes it send first) sets it.
            announced: Lsn::ZERO,
            epoch: adopted.max(sealed),
            sealed,
            read_backs: Vec::new(),
        }
    }

    /// The newest epoch the node adopted.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The epoch of the last seal the node persisted.
    pub fn sealed(&self) -> Epoch {
        self.sealed
    }

    /// Whether the node speaks (acknowledges, announces, answers pulls) for its epoch: it has
    /// persisted that epoch's seal.
    pub fn speaks(&self) -> bool {
        self.sealed == self.epoch
    }

    /// The record the node holds at `lsn`, if any.
    pub fn record(&self, lsn: Lsn) -> Option<Record> {
        [&self.mem, &self.in_flight, &self.cache, &self.beyond]
            .iter()
            .find_map(|m| m.get(&lsn).copied())
    }

    fn receipt(&self, record: &Record) -> Receipt {
        let accepts_stale = self.cfg.has_bug(ImplBug::AcceptStaleEpoch) && !self.speaks();
        match record.epoch.cmp(&self.epoch) {
            std::cmp::Ordering::Less if accepts_stale => Receipt::Take,
            std::cmp::Ordering::Less => Receipt::Stale,
            std::cmp::Ordering::Equal if self.speaks() => Receipt::Take,
            _ => Receipt::Wait,
        }
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

    /// Whether the node holds `lsn` in its memory log (received, not yet flushed).
    pub fn in_memory(&self, lsn: Lsn) -> bool {
        self.mem.contains_key(&lsn)
    }

    /// Whether the node believes `lsn` is on its disk.
    pub fn on_disk(&self, lsn: Lsn) -> bool {
        lsn <= self.flushed || self.beyond.contains_key(&lsn)
    }

    /// Whether the node holds `lsn` anywhere (memory, disk, or handed to the flusher).
    pub fn holds(&self, lsn: Lsn) -> bool {
        self.on_disk(lsn) || self.mem.contains_key(&lsn) || self.in_flight.contains_key(&lsn)
    }

    /// The records held in memory (not yet synced), in LSN order.
    pub fn memory_records(&self) -> impl Iterator<Item = &Record> {
        self.mem.values()
    }

    /// How many records the node keeps in memory in all: not yet flushed, handed to the
    /// flusher, cached after their flush, and recovered above a hole.
    pub fn memory_len(&self) -> usize {
        self.mem.len() + self.in_flight.len() + self.cache.len() + self.beyond.len()
    }

    /// How many flushed records the node keeps cached (at most `cache_records`).
    pub fn cached_len(&self) -> usize {
        self.cache.len()
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
            StorageInput::ReadDone { to, from, records } => {
                self.on_read_done(to, from, records, &mut out)
            }
        }
        self.maybe_flush(&mut out);
        out
    }

    /// Step 2, **Store and acknowledge** (`docs/protocol.md`), for a delivered batch.
    fn on_batch(&mut self, batch: Vec<Envelope>, out: &mut Vec<Output>) {
        let mut appended = false;
        for env in batch {
            match env.msg {
                // An Append of an older epoch is rejected; one of an epoch the node has not
                // sealed is not taken now (the writer re-sends it after the seal).
                Msg::Append(record) => match self.receipt(&record) {
                    Receipt::Take => {
                        appended = true;
                        if self.epoch != Epoch::FIRST {
                            out.push(Output::Observe(Event::Took {
                                node: self.id,
                                adopted: self.epoch,
                                record,
                            }));
                        }
                        if !self.holds(record.lsn) {
                            self.mem.insert(record.lsn, record);
                        }
                    }
                    Receipt::Stale | Receipt::Wait => {}
                },
                Msg::Pull { from } if self.speaks() => self.on_pull(env.src, from, out),
                Msg::Read { epoch } => self.on_read(env.src, epoch, out),
                Msg::Seal {
                    epoch,
                    point,
                    records,
                } => self.on_seal(epoch, point, records, out),
                _ => {}
            }
        }
        self.scl = extend_prefix(self.scl, |l| self.holds(l));
        // Memory policy: ack (and re-ack duplicates) on receipt. Disk policy: re-ack what is on
        // disk; new records are acked by `on_flush_done`.
        if appended {
            self.ack(self.ackable(), out);
        }
    }

    /// The SCL the node may acknowledge under the ack policy: what it holds (`memory`) or what is
    /// on its disk (`disk`).
    fn ackable(&self) -> Lsn {
        match self.cfg.ack {
            AckPolicy::Memory if self.cfg.has_bug(ImplBug::SclWithHoles) => {
                let held = self.mem.keys().chain(self.beyond.keys()).max();
                held.copied()
                    .unwrap_or(Lsn::ZERO)
                    .max(self.flushed)
                    .max(self.scl)
            }
            AckPolicy::Memory => self.scl,
            AckPolicy::Disk => self.flushed,
        }
    }

    /// `Ack` to the writer and `Available` to every replica, both carrying `scl`.
    fn ack(&mut self, scl: Lsn, out: &mut Vec<Output>) {
        if !self.speaks() {
            return;
        }
        let epoch = self.epoch;
        out.push(Output::Observe(Event::Acked {
            node: self.id,
            sent: scl,
            held: self.scl,
            epoch,
        }));
        self.announced = self.announced.max(scl);
        out.push(Output::Send(Envelope::ack(self.id, scl).in_epoch(epoch)));
        for r in self.cfg.replicas.clone() {
            out.push(Output::Send(
                Envelope::available(self.id, r, scl).in_epoch(epoch),
            ));
        }
    }

    /// The records held in memory from `from` on, in LSN order, merged lazily from the memory
    /// log, the flusher's hand, the cache and what recovery found above a hole.
    fn held_from(&self, from: Lsn) -> impl Iterator<Item = Record> + '_ {
        let sources = [&self.cache, &self.mem, &self.in_flight, &self.beyond];
        Merged {
            sources: sources.map(|m| m.range(from..).peekable()),
            last: None,
        }
    }

    /// Step 8, **Catch-up** (`docs/protocol.md`), the node's side: answer a `Pull` with at most
    /// `max_batch` records from `from` on, in LSN order, then repeat the latest `Available` and
    /// `Flushed` to the puller. When `from` is flushed and no longer in memory, the records are
    /// read back from the segment first ([`Output::ReadBack`]), and answered on
    /// [`StorageInput::ReadDone`].
    fn on_pull(&mut self, to: Actor, from: Lsn, out: &mut Vec<Output>) {
        let max = self.cfg.max_batch.max(1);
        let first_held = self.held_from(from).next().map(|r| r.lsn);
        if from <= self.flushed && first_held != Some(from) {
            let mut upto = self.flushed.min(Lsn(from.0.saturating_add(max as u64 - 1)));
            if let Some(held) = first_held {
                upto = upto.min(Lsn(held.0 - 1));
            }
            self.read_backs.retain(|(puller, ..)| *puller != to);
            self.read_backs.push((to, from, self.sealed));
            out.push(Output::ReadBack(ReadBack { to, from, upto }));
        } else {
            let records = self.held_from(from).take(max).collect();
            out.push(Output::Send(
                Envelope::records(self.id, to, records).in_epoch(self.epoch),
            ));
        }
        // Re-announce, so a restarted replica re-learns the commit and durable points. What the
        // node may acknowledge but has not (a restarted node's disk) is acknowledged first: an
        // `Available` travels only with an `Ack`.
        let ackable = self.ackable();
        if ackable > self.announced {
            self.ack(ackable, out);
        }
        let (scl, lsn, epoch) = (self.announced, self.flushed, self.epoch);
        out.push(Output::Send(
            Envelope::available(self.id, to, scl).in_epoch(epoch),
        ));
        out.push(Output::Send(
            Envelope::flushed(self.id, to, lsn).in_epoch(epoch),
        ));
    }

    /// Recovery, read phase: a writer of `epoch` reads the node. A newer epoch is adopted first,
    /// persisted ([`Durable::Adopt`]); from then on the node takes no older record. The answer
    /// carries the sealed epoch, the SCL and the records `1..=SCL`; flushed ones no longer in
    /// memory are read back from the segment first. A read of an older epoch is ignored.
    fn on_read(&mut self, to: Actor, epoch: Epoch, out: &mut Vec<Output>) {
        if epoch < self.epoch {
            return;
        }
        if epoch > self.epoch {
            self.epoch = epoch;
            out.push(Output::Durable(Durable::Adopt(epoch)));
        }
        let on_disk_in_memory = (1..=self.flushed.0).all(|l| self.record(Lsn(l)).is_some());
        if on_disk_in_memory {
            self.answer_read(to, Vec::new(), out);
        } else {
            out.push(Output::ReadBack(ReadBack {
                to,
                from: Lsn(1),
                upto: self.flushed,
            }));
        }
    }

    /// The answer to a recovery read: `read` (records read back) and what memory holds, up to
    /// the SCL, which must be every record `1..=SCL`. A flush that finished after the read-back
    /// was asked frees records the read-back does not cover; then the node reads back again, up
    /// to what it has flushed now, and answers when that comes.
    fn answer_read(&mut self, to: Actor, read: Vec<Record>, out: &mut Vec<Output>) {
        let mut records: BTreeMap<Lsn, Record> = read
            .into_iter()
            .filter(|r| r.lsn <= self.scl)
            .map(|r| (r.lsn, r))
            .collect();
        for r in self.held_from(Lsn(1)).take_while(|r| r.lsn <= self.scl) {
            records.entry(r.lsn).or_insert(r);
        }
        let missing = self.scl.prefix().find(|l| !records.contains_key(l));
        if missing.is_some_and(|l| l <= self.flushed) {
            out.push(Output::ReadBack(ReadBack {
                to,
                from: Lsn(1),
                upto: self.flushed,
            }));
            return;
        }
        out.push(Output::Send(Envelope {
            src: Actor::Storage(self.id),
            dst: to,
            msg: Msg::ReadAnswer {
                node: self.id,
                epoch: self.epoch,
                sealed: self.sealed,
                scl: self.scl,
                records: records.into_values().collect(),
            },
        }));
    }

    /// Recovery, write phase at this node: adopt `epoch`, annul every record above `point` of an
    /// older epoch (`aurora_redo_model::recovery::annuls`), store `records` (`1..=point`) as on
    /// disk, persist it with the seal ([`Durable::Seal`]), and only then speak for the epoch:
    /// `Sealed` to the writer, `Flushed` and `Ack`/`Available` of what it now holds. A seal of an
    /// older epoch is ignored; one already persisted is confirmed again.
    fn on_seal(&mut self, epoch: Epoch, point: Lsn, records: Vec<Record>, out: &mut Vec<Output>) {
        if epoch < self.epoch || epoch < self.sealed {
            return;
        }
        if epoch == self.sealed {
            if epoch > Epoch::FIRST {
                out.push(Output::Send(sealed_msg(self.id, epoch)));
            }
            return;
        }
        self.epoch = epoch;
        let annulled = |r: &Record| annuls(epoch, point, r.epoch, r.lsn);
        let skip = self.cfg.has_bug(ImplBug::SkipTruncation);
        for m in [
            &mut self.mem,
            &mut self.in_flight,
            &mut self.cache,
            &mut self.beyond,
        ] {
            m.retain(|l, r| *l > point && (skip || !annulled(r)));
        }
        let mut written = Vec::new();
        for r in records.into_iter().filter(|r| r.lsn <= point) {
            if r.lsn > self.flushed {
                written.push(r);
            }
        }
        // Whatever the flusher still has in hand is superseded: its records are annulled or
        // rewritten by the seal.
        self.flushing = None;
        let kept = if skip { self.flushed.max(point) } else { point };
        self.flushed = extend_prefix(kept, |l| self.beyond.contains_key(&l));
        self.beyond = self.beyond.split_off(&self.flushed.next());
        self.scl = extend_prefix(self.flushed, |l| self.holds(l));
        self.sealed = epoch;
        out.push(Output::Durable(Durable::Seal {
            seal: Seal { epoch, point },
            records: written,
        }));
        let tail = self.held_from(point.next()).collect();
        out.push(Output::Observe(Event::Sealed {
            node: self.id,
            epoch,
            point,
            tail,
        }));
        out.push(Output::Send(sealed_msg(self.id, epoch)));
        self.announced = Lsn::ZERO;
        self.announce_flushed(out);
        let scl = match self.cfg.ack {
            AckPolicy::Memory => self.scl,
            AckPolicy::Disk => self.flushed,
        };
        self.ack(scl, out);
    }

    /// The rest of Step 8 for a pull whose records were read back: those records, then what
    /// memory holds after them, at most `max_batch` in all.
    fn on_read_done(&mut self, to: Actor, from: Lsn, mut read: Vec<Record>, out: &mut Vec<Output>) {
        if to == Actor::Writer {
            return self.answer_read(to, read, out);
        }
        // Answer only the read-back of a pull still waiting, asked while the node spoke for the
        // epoch it speaks for now: a read-back that straddles a read (the node stopped
        // speaking) or a seal (it may hold records the seal annulled) is dropped, and the
        // puller pulls again.
        let Some(i) = self
            .read_backs
            .iter()
            .position(|&(puller, first, _)| (puller, first) == (to, from))
        else {
            return;
        };
        let (.., asked_in) = self.read_backs.swap_remove(i);
        if !self.speaks() || asked_in != self.sealed {
            return;
        }
        let max = self.cfg.max_batch.max(1);
        read.sort();
        read.dedup_by_key(|r| r.lsn);
        read.retain(|r| r.lsn >= from);
        read.truncate(max);
        let next = read.last().map_or(from, |r| r.lsn.next());
        let room = max - read.len();
        read.extend(self.held_from(next).take(room));
        out.push(Output::Send(
            Envelope::records(self.id, to, read).in_epoch(self.epoch),
        ));
    }

    /// `Flushed` of the node's flushed LSN, in its epoch, to the writer and every replica.
    fn announce_flushed(&self, out: &mut Vec<Output>) {
        let (lsn, epoch) = (self.flushed, self.epoch);
        out.push(Output::Send(
            Envelope::flushed(self.id, Actor::Writer, lsn).in_epoch(epoch),
        ));
        for &r in &self.cfg.replicas {
            out.push(Output::Send(
                Envelope::flushed(self.id, r, lsn).in_epoch(epoch),
            ));
        }
    }

    /// Step 6, **Flush** (`docs/protocol.md`), the flush handoff: the records `..=upto` are synced;
    /// free them (into the cache of recently flushed records), then announce it.
    fn on_flush_done(&mut self, upto: Lsn, out: &mut Vec<Output>) {
        if self.flushing != Some(upto) {
            return; // not ours (stale): ignore
        }
        self.flushing = None;
        let rest = self.mem.split_off(&upto.next());
        let done = std::mem::replace(&mut self.mem, rest);
        let rest = self.in_flight.split_off(&upto.next());
        let moved = std::mem::replace(&mut self.in_flight, rest);
        if self.cfg.cache_records > 0 {
            self.cache.extend(done);
            self.cache.extend(moved);
            while self.cache.len() > self.cfg.cache_records {
                self.cache.pop_first();
            }
        }
        self.flushed = self.flushed.max(upto);
        self.beyond = self.beyond.split_off(&self.flushed.next());
        if self.speaks() {
            self.announce_flushed(out);
        }
        if self.cfg.ack == AckPolicy::Disk {
            self.ack(self.flushed, out);
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
        if self.cfg.has_bug(ImplBug::FreeBeforeFlush) {
            for r in &records {
                self.mem.remove(&r.lsn);
            }
        }
        self.flushing = Some(upto);
        out.push(Output::Persist(records));
    }
}

fn sealed_msg(node: NodeId, epoch: Epoch) -> Envelope {
    Envelope {
        src: Actor::Storage(node),
        dst: Actor::Writer,
        msg: Msg::Sealed { node, epoch },
    }
}

/// A lazy merge of sorted record maps' ranges, in LSN order, each LSN once.
struct Merged<'a, const N: usize> {
    sources: [Peekable<std::collections::btree_map::Range<'a, Lsn, Record>>; N],
    last: Option<Lsn>,
}

impl<const N: usize> Iterator for Merged<'_, N> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            let mut lowest: Option<(usize, Lsn)> = None;
            for (i, s) in self.sources.iter_mut().enumerate() {
                match (s.peek(), lowest) {
                    (Some(&(&lsn, _)), Some((_, l))) if lsn < l => lowest = Some((i, lsn)),
                    (Some(&(&lsn, _)), None) => lowest = Some((i, lsn)),
                    _ => {}
                }
            }
            let (i, lsn) = lowest?;
            let (_, record) = self.sources[i].next()?;
            if self.last != Some(lsn) {
                self.last = Some(lsn);
                return Some(*record);
            }
        }
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
    use aurora_redo_model::types::Epoch;
    use aurora_redo_model::types::ReplicaId;

    fn rec(l: u64) -> Record {
        Record {
            lsn: Lsn(l),
            page: l as u32 % 3,
            value: l * 10,
            epoch: Epoch::FIRST,
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
    fn pull_reads_flushed_records_back_then_answers_with_memory_and_reannounces() {
        let mut n = StorageNode::recover(
            NodeId(2),
            EngineConfig::new(AckPolicy::Memory, 1),
            vec![rec(1), rec(2)],
        );
        assert_eq!((n.scl(), n.flushed()), (Lsn(2), Lsn(2)));
        assert_eq!(n.memory_len(), 0, "recovered records stay on disk");
        n.handle(StorageInput::Deliver(vec![append(3)]));
        let pull = Envelope::pull(ReplicaId(0), NodeId(2), Lsn(2));
        let out = n.handle(StorageInput::Deliver(vec![pull]));
        let (r0, s2) = (ReplicaId(0), NodeId(2));
        let read = ReadBack {
            to: Actor::Replica(r0),
            from: Lsn(2),
            upto: Lsn(2),
        };
        assert_eq!(
            out,
            vec![
                Output::ReadBack(read),
                Output::Send(Envelope::available(s2, r0, Lsn(3))),
                Output::Send(Envelope::flushed(s2, r0, Lsn(2))),
            ]
        );
        let out = n.handle(StorageInput::ReadDone {
            to: read.to,
            from: read.from,
            records: vec![rec(2)],
        });
        assert_eq!(
            sends(&out),
            vec![Envelope::records(s2, r0, vec![rec(2), rec(3)])]
        );
        // What memory holds is answered at once.
        let pull = Envelope::pull(ReplicaId(0), NodeId(2), Lsn(3));
        let out = n.handle(StorageInput::Deliver(vec![pull]));
        assert_eq!(sends(&out)[0], Envelope::records(s2, r0, vec![rec(3)]));
    }

    /// A restarted node announces to a puller only what it has acknowledged since the restart:
    /// its disk may hold a flush that was synced but never acknowledged before the crash, and an
    /// `Available` travels only with an `Ack` (else a replica could apply what only three nodes
    /// acknowledged, as the engine's monitor once saw). A pull makes it acknowledge its disk
    /// first, once.
    #[test]
    fn a_restarted_node_announces_nothing_it_has_not_acknowledged() {
        let (r0, s2) = (ReplicaId(0), NodeId(2));
        let mut n = StorageNode::recover(
            s2,
            EngineConfig::new(AckPolicy::Disk, 1),
            vec![rec(1), rec(2)],
        );
        let available = |out: &[Output]| {
            sends(out).into_iter().find_map(|e| match e.msg {
                Msg::Available { scl, .. } if e.dst == Actor::Replica(r0) => Some(scl),
                _ => None,
            })
        };
        let acked = |out: &[Output]| {
            out.iter()
                .any(|o| matches!(o, Output::Observe(Event::Acked { sent, .. }) if *sent == Lsn(2)))
        };
        let pull = Envelope::pull(r0, s2, Lsn(3));
        let out = n.handle(StorageInput::Deliver(vec![pull.clone()]));
        assert!(acked(&out), "the pull is answered after an Ack: {out:?}");
        assert!(sends(&out).contains(&Envelope::ack(s2, Lsn(2))));
        assert_eq!(available(&out), Some(Lsn(2)));
        // Acknowledged once; the next pull only repeats it.
        let out = n.handle(StorageInput::Deliver(vec![pull]));
        assert!(!acked(&out), "{out:?}");
        assert_eq!(available(&out), Some(Lsn(2)));
    }

    /// A read-back asked for a pull while the node spoke for its epoch is not answered once a
    /// recovery's read has made the node stop speaking (its answer would carry records the
    /// coming seal may annul, under the new epoch), nor once a seal has changed its log.
    #[test]
    fn a_read_back_that_straddles_a_read_or_a_seal_is_not_answered() {
        let (r0, s2) = (ReplicaId(0), NodeId(2));
        let cfg = EngineConfig::new(AckPolicy::Disk, 1);
        for seal_too in [false, true] {
            let mut n = StorageNode::recover(s2, cfg.clone(), vec![rec(1), rec(2)]);
            let out = n.handle(StorageInput::Deliver(vec![Envelope::pull(r0, s2, Lsn(1))]));
            assert!(matches!(out[0], Output::ReadBack(_)), "{out:?}");
            let from_writer = |msg| Envelope {
                src: Actor::Writer,
                dst: Actor::Storage(s2),
                msg,
            };
            let read = from_writer(Msg::Read {
                epoch: Epoch::numbered(1),
            });
            n.handle(StorageInput::Deliver(vec![read]));
            if seal_too {
                let seal = from_writer(Msg::Seal {
                    epoch: Epoch::numbered(1),
                    point: Lsn(1),
                    records: vec![rec(1)],
                });
                n.handle(StorageInput::Deliver(vec![seal]));
                assert!(n.speaks());
            }
            let out = n.handle(StorageInput::ReadDone {
                to: Actor::Replica(r0),
                from: Lsn(1),
                records: vec![rec(1), rec(2)],
            });
            assert_eq!(sends(&out), vec![], "seal too: {seal_too}");
        }
    }

    /// Flushes everything the node holds, as its flusher would.
    fn flush_all(n: &mut StorageNode, out: Vec<Output>) {
        let mut job = persist(&out);
        while let Some(records) = job {
            let upto = records.last().unwrap().lsn;
            job = persist(&n.handle(StorageInput::FlushDone { upto }));
        }
    }

    #[test]
    fn a_recovery_answer_holds_every_record_up_to_the_scl_though_a_flush_freed_some_meanwhile() {
        let mut cfg = EngineConfig::new(AckPolicy::Memory, 1);
        cfg.cache_records = 2;
        let mut n = StorageNode::new(NodeId(0), cfg);
        let out = n.handle(StorageInput::Deliver((1..=10).map(append).collect()));
        flush_all(&mut n, out);
        let out = n.handle(StorageInput::Deliver((11..=20).map(append).collect()));
        assert!(persist(&out).is_some(), "11..=20 are being flushed");
        let read = Envelope {
            src: Actor::Writer,
            dst: Actor::Storage(NodeId(0)),
            msg: Msg::Read {
                epoch: Epoch::numbered(1),
            },
        };
        let out = n.handle(StorageInput::Deliver(vec![read]));
        let asked = |out: &[Output]| {
            out.iter().find_map(|o| match o {
                Output::ReadBack(r) => Some(r.upto),
                _ => None,
            })
        };
        assert_eq!(asked(&out), Some(Lsn(10)));
        // The flush of 11..=20 ends before the read-back does, freeing all but the cache.
        n.handle(StorageInput::FlushDone { upto: Lsn(20) });
        let done = |upto: u64| StorageInput::ReadDone {
            to: Actor::Writer,
            from: Lsn(1),
            records: (1..=upto).map(rec).collect(),
        };
        let out = n.handle(done(10));
        assert!(sends(&out).is_empty(), "no answer with a hole: {out:?}");
        assert_eq!(
            asked(&out),
            Some(Lsn(20)),
            "read back again, to the new flushed"
        );
        let out = n.handle(done(20));
        let answer = &sends(&out)[0];
        let Msg::ReadAnswer { scl, records, .. } = &answer.msg else {
            panic!("{answer:?}")
        };
        assert_eq!(*scl, Lsn(20));
        assert_eq!(
            records.iter().map(|r| r.lsn.0).collect::<Vec<_>>(),
            (1..=20).collect::<Vec<_>>()
        );
    }

    #[test]
    fn flushed_records_are_freed_but_for_a_bounded_cache_and_answers_are_bounded() {
        let mut cfg = EngineConfig::new(AckPolicy::Memory, 1);
        cfg.max_batch = 100;
        cfg.cache_records = 50;
        let mut n = StorageNode::new(NodeId(0), cfg);
        for chunk in (1..=1000).collect::<Vec<u64>>().chunks(64) {
            let out = n.handle(StorageInput::Deliver(
                chunk.iter().map(|l| append(*l)).collect(),
            ));
            flush_all(&mut n, out);
        }
        assert_eq!((n.scl(), n.flushed()), (Lsn(1000), Lsn(1000)));
        assert_eq!(n.memory_len(), 50);
        assert_eq!(n.cached_len(), 50);
        assert!((1..=1000).all(|l| n.holds(Lsn(l))));
        // A pull from the cache: at most max_batch records, in order.
        let out = n.handle(StorageInput::Deliver(vec![Envelope::pull(
            ReplicaId(0),
            NodeId(0),
            Lsn(960),
        )]));
        let answer = &sends(&out)[0];
        let Msg::Records { records, .. } = &answer.msg else {
            panic!("{answer:?}")
        };
        assert_eq!(records.first().map(|r| r.lsn), Some(Lsn(960)));
        assert_eq!(records.len(), 41);
        // A pull from far back: a bounded read-back, up to where the cache begins at most.
        let out = n.handle(StorageInput::Deliver(vec![Envelope::pull(
            ReplicaId(0),
            NodeId(0),
            Lsn(10),
        )]));
        assert!(out.contains(&Output::ReadBack(ReadBack {
            to: Actor::Replica(ReplicaId(0)),
            from: Lsn(10),
            upto: Lsn(109),
        })));
        let out = n.handle(StorageInput::Deliver(vec![Envelope::pull(
            ReplicaId(0),
            NodeId(0),
            Lsn(920),
        )]));
        assert!(out.contains(&Output::ReadBack(ReadBack {
            to: Actor::Replica(ReplicaId(0)),
            from: Lsn(920),
            upto: Lsn(950),
        })));
        // The answer: what was read, then the cache, max_batch in all.
        let out = n.handle(StorageInput::ReadDone {
            to: Actor::Replica(ReplicaId(0)),
            from: Lsn(920),
            records: (920..=950).map(rec).collect(),
        });
        let Msg::Records { records, .. } = &sends(&out)[0].msg else {
            panic!("{out:?}")
        };
        assert_eq!(records, &(920..=1000).map(rec).collect::<Vec<_>>());
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

    fn rec_in(l: u64, epoch: u32) -> Record {
        let mut r = rec(l);
        r.epoch = Epoch::numbered(epoch);
        r
    }

    fn from_writer(node: NodeId, msg: Msg) -> StorageInput {
        StorageInput::Deliver(vec![Envelope {
            src: Actor::Writer,
            dst: Actor::Storage(node),
            msg,
        }])
    }

    fn read(node: NodeId, epoch: u32) -> StorageInput {
        from_writer(
            node,
            Msg::Read {
                epoch: Epoch::numbered(epoch),
            },
        )
    }

    fn seal(node: NodeId, epoch: u32, point: u64, records: Vec<Record>) -> StorageInput {
        from_writer(
            node,
            Msg::Seal {
                epoch: Epoch::numbered(epoch),
                point: Lsn(point),
                records,
            },
        )
    }

    fn records_to(out: &[Output], to: impl Into<Actor>) -> Option<Vec<Record>> {
        let to = to.into();
        sends(out).into_iter().find_map(|e| match e.msg {
            Msg::Records { records, .. } if e.dst == to => Some(records),
            _ => None,
        })
    }

    #[test]
    fn recovery_keeps_the_flushed_prefix_on_disk_and_what_lies_above_a_hole_in_memory() {
        let n = StorageNode::recover(
            NodeId(3),
            EngineConfig::new(AckPolicy::Memory, 1),
            vec![rec(5), rec(2), rec(1), rec(2), rec(4)],
        );
        assert_eq!((n.flushed(), n.scl()), (Lsn(2), Lsn(2)));
        assert!(n.on_disk(Lsn(4)) && n.on_disk(Lsn(5)) && !n.holds(Lsn(3)));
        // 4 and 5 stay in memory until the prefix reaches them; 1 and 2 are read back on demand.
        assert_eq!(n.memory_len(), 2);
        assert_eq!(n.record(Lsn(4)), Some(rec(4)));
        assert_eq!(n.record(Lsn(1)), None);
        assert_eq!((n.epoch(), n.sealed()), (Epoch::FIRST, Epoch::FIRST));
        assert!(n.speaks());
    }

    #[test]
    fn a_node_restarted_between_a_read_and_its_seal_keeps_both_epochs_and_stays_silent() {
        let s1 = NodeId(1);
        let mut n = StorageNode::recover_in(
            s1,
            EngineConfig::new(AckPolicy::Memory, 1),
            vec![rec(1)],
            Epoch::numbered(2),
            Epoch::numbered(1),
        );
        assert_eq!(
            (n.epoch(), n.sealed()),
            (Epoch::numbered(2), Epoch::numbered(1))
        );
        assert!(!n.speaks());
        // Neither an Append of the adopted epoch nor a Pull is answered before its seal.
        let out = n.handle(StorageInput::Deliver(vec![
            Envelope::append(s1, rec_in(2, 2)),
            Envelope::pull(ReplicaId(0), s1, Lsn(1)),
        ]));
        assert_eq!(out, vec![]);
        assert!(!n.holds(Lsn(2)));
    }

    /// EpochFencing at a node: after a read of a newer epoch it takes no record at all until
    /// that epoch's seal, then only records of that epoch.
    #[test]
    fn a_node_takes_no_record_between_a_read_and_its_seal_and_no_older_one_after() {
        let s0 = NodeId(0);
        let mut n = StorageNode::new(s0, EngineConfig::new(AckPolicy::Memory, 1));
        let took = |out: &[Output]| {
            out.iter()
                .filter_map(|o| match o {
                    Output::Observe(Event::Took { record, .. }) => Some(*record),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        // In the first epoch a record is taken without a `Took` event.
        let out = n.handle(StorageInput::Deliver(vec![append(1)]));
        assert!(n.holds(Lsn(1)));
        assert_eq!(took(&out), vec![]);
        n.handle(read(s0, 1));
        assert_eq!((n.epoch(), n.sealed()), (Epoch::numbered(1), Epoch::FIRST));
        let out = n.handle(StorageInput::Deliver(vec![
            Envelope::append(s0, rec_in(2, 0)),
            Envelope::append(s0, rec_in(3, 1)),
            Envelope::pull(ReplicaId(0), s0, Lsn(1)),
        ]));
        assert_eq!(
            out,
            vec![],
            "not speaking: nothing taken, acked or answered"
        );
        assert!(!n.holds(Lsn(2)) && !n.holds(Lsn(3)));
        n.handle(seal(s0, 1, 1, vec![rec(1)]));
        assert!(n.speaks());
        let out = n.handle(StorageInput::Deliver(vec![
            Envelope::append(s0, rec_in(2, 0)),
            Envelope::append(s0, rec_in(3, 1)),
        ]));
        assert!(!n.holds(Lsn(2)), "a record of an older epoch is rejected");
        assert!(n.holds(Lsn(3)));
        assert_eq!(took(&out), vec![rec_in(3, 1)]);
    }

    #[test]
    fn the_seeded_accept_stale_epoch_bug_takes_an_older_record_only_while_not_speaking() {
        let s0 = NodeId(0);
        let cfg = EngineConfig::new(AckPolicy::Memory, 1).with_bug(Some(ImplBug::AcceptStaleEpoch));
        let mut n = StorageNode::new(s0, cfg);
        n.handle(read(s0, 1));
        n.handle(StorageInput::Deliver(vec![append(1)]));
        assert!(n.holds(Lsn(1)), "taken between the read and the seal");
        n.handle(seal(s0, 1, 1, vec![rec(1)]));
        n.handle(StorageInput::Deliver(vec![append(2)]));
        assert!(
            !n.holds(Lsn(2)),
            "rejected once the node speaks for epoch 1"
        );
    }

    #[test]
    fn a_read_adopts_a_newer_epoch_once_and_is_answered_with_the_records_up_to_the_scl() {
        let s0 = NodeId(0);
        let mut n = StorageNode::new(s0, EngineConfig::new(AckPolicy::Memory, 1));
        n.handle(StorageInput::Deliver(vec![append(1), append(2), append(4)]));
        let answer = Output::Send(Envelope {
            src: Actor::Storage(s0),
            dst: Actor::Writer,
            msg: Msg::ReadAnswer {
                node: s0,
                epoch: Epoch::numbered(1),
                sealed: Epoch::FIRST,
                scl: Lsn(2),
                records: vec![rec(1), rec(2)],
            },
        });
        let out = n.handle(read(s0, 1));
        assert_eq!(
            out,
            vec![
                Output::Durable(Durable::Adopt(Epoch::numbered(1))),
                answer.clone()
            ]
        );
        assert_eq!((n.epoch(), n.sealed()), (Epoch::numbered(1), Epoch::FIRST));
        // The writer's tick repeats the read: answered again, the epoch not adopted again.
        assert_eq!(n.handle(read(s0, 1)), vec![answer]);
        // A read of an older epoch is ignored.
        assert_eq!(n.handle(read(s0, 0)), vec![]);
        assert_eq!(n.epoch(), Epoch::numbered(1));
    }

    #[test]
    fn a_read_of_flushed_records_is_answered_once_they_are_read_back() {
        let s2 = NodeId(2);
        let mut n = StorageNode::recover(
            s2,
            EngineConfig::new(AckPolicy::Memory, 1),
            vec![rec(1), rec(2)],
        );
        n.handle(StorageInput::Deliver(vec![append(3)]));
        let out = n.handle(read(s2, 1));
        let back = ReadBack {
            to: Actor::Writer,
            from: Lsn(1),
            upto: Lsn(2),
        };
        assert_eq!(
            out,
            vec![
                Output::Durable(Durable::Adopt(Epoch::numbered(1))),
                Output::ReadBack(back)
            ]
        );
        let out = n.handle(StorageInput::ReadDone {
            to: back.to,
            from: back.from,
            records: vec![rec(1), rec(2)],
        });
        let [Output::Send(Envelope {
            msg: Msg::ReadAnswer { scl, records, .. },
            ..
        })] = &out[..]
        else {
            panic!("{out:?}")
        };
        assert_eq!(*scl, Lsn(3));
        assert_eq!(records, &vec![rec(1), rec(2), rec(3)]);
    }

    /// The write phase at a node (`docs/protocol.md`, "Recovery"): records above the point of an
    /// older epoch are annulled, the recovered records the node had not flushed are persisted
    /// with the seal, `1..=point` is then on disk, and the flush in progress is superseded.
    #[test]
    fn a_seal_annuls_the_older_tail_and_persists_the_recovered_records_above_the_disk() {
        let s1 = NodeId(1);
        let mut n = StorageNode::recover(s1, EngineConfig::new(AckPolicy::Memory, 1), vec![rec(1)]);
        let out = n.handle(StorageInput::Deliver(vec![append(2), append(3), append(4)]));
        assert_eq!(persist(&out), Some(vec![rec(2), rec(3), rec(4)]));
        n.handle(read(s1, 1));
        let out = n.handle(seal(s1, 1, 3, vec![rec(1), rec(2), rec(3)]));
        assert!(out.contains(&Output::Durable(Durable::Seal {
            seal: Seal {
                epoch: Epoch::numbered(1),
                point: Lsn(3),
            },
            records: vec![rec(2), rec(3)],
        })));
        assert!(out.contains(&Output::Send(sealed_msg(s1, Epoch::numbered(1)))));
        assert!(sends(&out).contains(&Envelope::ack(s1, Lsn(3)).in_epoch(Epoch::numbered(1))));
        assert_eq!(n.record(Lsn(4)), None, "4 of epoch 0 lies above the point");
        assert!(!n.holds(Lsn(4)));
        assert_eq!(n.memory_len(), 0, "1..=3 is on disk");
        assert_eq!((n.flushed(), n.scl()), (Lsn(3), Lsn(3)));
        assert_eq!(
            (n.epoch(), n.sealed()),
            (Epoch::numbered(1), Epoch::numbered(1))
        );
        // The superseded flush's completion is stale.
        n.handle(StorageInput::FlushDone { upto: Lsn(4) });
        assert_eq!(n.flushed(), Lsn(3));
        // A repeated seal (the writer did not hear the `Sealed`) is confirmed again, and only
        // confirmed.
        let out = n.handle(seal(s1, 1, 3, vec![rec(1), rec(2), rec(3)]));
        assert_eq!(out, vec![Output::Send(sealed_msg(s1, Epoch::numbered(1)))]);
    }

    #[test]
    fn a_seal_of_an_epoch_the_node_has_not_read_is_persisted_and_an_older_one_ignored() {
        let s0 = NodeId(0);
        let cfg = EngineConfig::new(AckPolicy::Memory, 1);
        // The node missed the read of epoch 1: its seal still brings the node into epoch 1.
        let mut n = StorageNode::new(s0, cfg.clone());
        n.handle(seal(s0, 1, 0, vec![]));
        assert_eq!(
            (n.epoch(), n.sealed()),
            (Epoch::numbered(1), Epoch::numbered(1))
        );
        assert!(n.speaks());
        // A seal of an older writer, arriving after the read of a newer one, is ignored.
        let mut n = StorageNode::new(s0, cfg.clone());
        n.handle(read(s0, 2));
        assert_eq!(n.handle(seal(s0, 1, 0, vec![])), vec![]);
        assert_eq!((n.epoch(), n.sealed()), (Epoch::numbered(2), Epoch::FIRST));
        // The first epoch has no seal: a node speaks for it from the start, and no `Sealed`
        // for it is ever sent.
        let mut n = StorageNode::new(s0, cfg);
        assert_eq!(n.handle(seal(s0, 0, 0, vec![])), vec![]);
    }

    #[test]
    fn the_seeded_skip_truncation_bug_keeps_the_annulled_tail() {
        let s1 = NodeId(1);
        let cfg = EngineConfig::new(AckPolicy::Memory, 1).with_bug(Some(ImplBug::SkipTruncation));
        let mut n = StorageNode::new(s1, cfg);
        n.handle(StorageInput::Deliver(vec![append(1), append(2), append(3)]));
        n.handle(read(s1, 1));
        n.handle(seal(s1, 1, 1, vec![rec(1)]));
        assert_eq!(n.record(Lsn(3)), Some(rec(3)));
        assert_eq!(n.scl(), Lsn(3));
    }

    #[test]
    fn each_puller_is_answered_its_own_read_back_and_only_its_latest() {
        let s0 = NodeId(0);
        let (r0, r1) = (ReplicaId(0), ReplicaId(1));
        let mut n = StorageNode::recover(
            s0,
            EngineConfig::new(AckPolicy::Memory, 2),
            vec![rec(1), rec(2), rec(3)],
        );
        let done = |to: ReplicaId, from: u64| StorageInput::ReadDone {
            to: Actor::Replica(to),
            from: Lsn(from),
            records: (from..=3).map(rec).collect(),
        };
        n.handle(StorageInput::Deliver(vec![
            Envelope::pull(r0, s0, Lsn(1)),
            Envelope::pull(r1, s0, Lsn(2)),
        ]));
        let out = n.handle(done(r0, 1));
        assert_eq!(records_to(&out, r0), Some(vec![rec(1), rec(2), rec(3)]));
        let out = n.handle(done(r1, 2));
        assert_eq!(records_to(&out, r1), Some(vec![rec(2), rec(3)]));
        // A puller that pulled again is answered for its latest pull only.
        n.handle(StorageInput::Deliver(vec![Envelope::pull(r0, s0, Lsn(1))]));
        n.handle(StorageInput::Deliver(vec![Envelope::pull(r0, s0, Lsn(2))]));
        assert_eq!(n.handle(done(r0, 1)), vec![]);
        let out = n.handle(done(r0, 2));
        assert_eq!(records_to(&out, r0), Some(vec![rec(2), rec(3)]));
    }

    #[test]
    fn an_answer_after_a_read_back_holds_at_most_max_batch_records() {
        let (r0, s0) = (ReplicaId(0), NodeId(0));
        let mut cfg = EngineConfig::new(AckPolicy::Memory, 1);
        cfg.max_batch = 3;
        let mut n = StorageNode::recover(s0, cfg, vec![rec(1), rec(2)]);
        n.handle(StorageInput::Deliver(vec![append(3), append(4), append(5)]));
        let out = n.handle(StorageInput::Deliver(vec![Envelope::pull(r0, s0, Lsn(1))]));
        let back = ReadBack {
            to: Actor::Replica(r0),
            from: Lsn(1),
            upto: Lsn(2),
        };
        assert_eq!(out[0], Output::ReadBack(back));
        let out = n.handle(StorageInput::ReadDone {
            to: back.to,
            from: back.from,
            records: vec![rec(1), rec(2)],
        });
        assert_eq!(records_to(&out, r0), Some(vec![rec(1), rec(2), rec(3)]));
    }

    #[test]
    fn memory_and_the_records_recovered_above_a_hole_are_answered_in_lsn_order() {
        let (r0, s0) = (ReplicaId(0), NodeId(0));
        let mut n = StorageNode::recover(
            s0,
            EngineConfig::new(AckPolicy::Memory, 1),
            vec![rec(1), rec(2), rec(5)],
        );
        // 3, 4 and 6 arrive into memory; 5 is the recovered record above the hole.
        n.handle(StorageInput::Deliver(vec![append(3), append(4), append(6)]));
        assert_eq!(n.scl(), Lsn(6));
        let out = n.handle(StorageInput::Deliver(vec![Envelope::pull(r0, s0, Lsn(3))]));
        assert_eq!(
            records_to(&out, r0),
            Some(vec![rec(3), rec(4), rec(5), rec(6)])
        );
    }

    #[test]
    fn records_in_the_flushers_hand_count_in_memory() {
        let mut cfg = EngineConfig::new(AckPolicy::Memory, 1);
        cfg.cache_records = 0;
        // The seeded bug moves the records it hands to the flusher out of the memory log.
        let mut n = StorageNode::new(NodeId(0), cfg.with_bug(Some(ImplBug::EvictBeforeFlush)));
        let out = n.handle(StorageInput::Deliver(vec![append(1), append(2)]));
        assert_eq!(persist(&out), Some(vec![rec(1), rec(2)]));
        assert!(!n.in_memory(Lsn(1)) && n.holds(Lsn(1)));
        assert_eq!(n.record(Lsn(2)), Some(rec(2)));
        assert_eq!(n.memory_len(), 2);
        n.handle(StorageInput::FlushDone { upto: Lsn(2) });
        assert_eq!(n.memory_len(), 0);
    }
}
