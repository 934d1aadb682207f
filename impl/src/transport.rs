//! In-process transport: one mailbox per actor, carrying the shared `Msg` in envelopes.
//!
//! Batching happens here: [`Mailboxes::send`] groups a step's envelopes by destination and hands
//! each group to the mailbox in one operation, and a receiver drains everything queued in one
//! [`Mailbox::recv`], so a storage node sees (and acks) a whole batch of appends at once.

use std::collections::VecDeque;

use aurora_redo_model::types::{Actor, Envelope, Lsn, NodeId, Record};

use crate::faults::{Fate, Faults};
use crate::sync::{lock, wait, Condvar, Mutex};

/// What a mailbox delivers.
#[derive(Debug, PartialEq, Eq)]
pub enum Recv<T> {
    Items(Vec<T>),
    Tick,
    Closed,
}

struct Inbox<T> {
    queue: VecDeque<T>,
    tick: bool,
    closed: bool,
}

/// A blocking multi-producer queue with a coalescing tick flag and a close flag.
pub struct Mailbox<T> {
    inbox: Mutex<Inbox<T>>,
    cv: Condvar,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Mailbox::new()
    }
}

impl<T> Mailbox<T> {
    pub fn new() -> Mailbox<T> {
        Mailbox {
            inbox: Mutex::new(Inbox {
                queue: VecDeque::new(),
                tick: false,
                closed: false,
            }),
            cv: Condvar::new(),
        }
    }

    /// Enqueues items; `(item, Some(r))` jumps the queue at a position derived from `r`.
    pub fn push_all(&self, items: impl IntoIterator<Item = (T, Option<usize>)>) {
        let mut inbox = lock(&self.inbox);
        for (item, jump) in items {
            match jump {
                Some(r) => {
                    let at = r % (inbox.queue.len() + 1);
                    inbox.queue.insert(at, item);
                }
                None => inbox.queue.push_back(item),
            }
        }
        self.cv.notify_all();
    }

    pub fn push(&self, item: T) {
        self.push_all([(item, None)]);
    }

    /// Raises the tick flag (coalesced: many ticks before a receive are one).
    pub fn tick(&self) {
        lock(&self.inbox).tick = true;
        self.cv.notify_all();
    }

    /// Closes the mailbox: the receiver gets `Closed` next, whatever is queued.
    pub fn close(&self) {
        lock(&self.inbox).closed = true;
        self.cv.notify_all();
    }

    /// Reopens a closed mailbox, keeping what is queued (messages survive a node crash).
    pub fn reopen(&self) {
        lock(&self.inbox).closed = false;
    }

    /// Blocks until something arrives; returns up to `max` queued items, else a tick, else
    /// `Closed`.
    pub fn recv(&self, max: usize) -> Recv<T> {
        let mut inbox = lock(&self.inbox);
        loop {
            if inbox.closed {
                return Recv::Closed;
            }
            if !inbox.queue.is_empty() {
                let n = inbox.queue.len().min(max);
                return Recv::Items(inbox.queue.drain(..n).collect());
            }
            if inbox.tick {
                inbox.tick = false;
                return Recv::Tick;
            }
            inbox = wait(&self.cv, inbox);
        }
    }

    pub fn len(&self) -> usize {
        lock(&self.inbox).queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a storage node's driver receives: network messages and its flusher's completions (flushes
/// and read-backs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    Net(Envelope),
    /// The flusher of node incarnation `incarnation` synced everything up to `upto`.
    FlushDone {
        upto: Lsn,
        incarnation: u64,
    },
    /// The flusher of node incarnation `incarnation` read back `records` for `to`'s pull from
    /// `from`.
    ReadDone {
        to: Actor,
        from: Lsn,
        records: Vec<Record>,
        incarnation: u64,
    },
}

/// Every actor's mailbox plus the fault injector.
pub struct Mailboxes {
    pub writer: Mailbox<Envelope>,
    pub nodes: Vec<Mailbox<NodeEvent>>,
    pub replicas: Vec<Mailbox<Envelope>>,
    pub faults: Faults,
}

impl Mailboxes {
    pub fn new(replicas: usize, faults: Faults) -> Mailboxes {
        Mailboxes {
            writer: Mailbox::new(),
            nodes: NodeId::all().map(|_| Mailbox::new()).collect(),
            replicas: (0..replicas).map(|_| Mailbox::new()).collect(),
            faults,
        }
    }

    /// Sends envelopes through the faulty network, one mailbox operation per destination.
    pub fn send(&self, envs: Vec<Envelope>) {
        if envs.is_empty() {
            return;
        }
        type Batch = Vec<(Envelope, Option<usize>)>;
        let mut by_dst: Vec<(Actor, Batch)> = Vec::new();
        for env in envs {
            let Fate::Deliver { copies, reorder } = self.faults.fate(&env) else {
                continue;
            };
            let jump = reorder.then(|| self.faults.position(usize::MAX / 2));
            let slot = match by_dst.iter().position(|(d, _)| *d == env.dst) {
                Some(i) => i,
                None => {
                    by_dst.push((env.dst, Vec::new()));
                    by_dst.len() - 1
                }
            };
            for _ in 1..copies {
                by_dst[slot].1.push((env.clone(), None));
            }
            by_dst[slot].1.push((env, jump));
        }
        for (dst, items) in by_dst {
            match dst {
                Actor::Writer => self.writer.push_all(items),
                Actor::Storage(n) => self.nodes[n.index()]
                    .push_all(items.into_iter().map(|(e, j)| (NodeEvent::Net(e), j))),
                Actor::Replica(r) => {
                    if let Some(m) = self.replicas.get(r.index()) {
                        m.push_all(items)
                    }
                }
            }
        }
    }

    /// Raises the tick flag of every actor.
    pub fn tick_all(&self) {
        self.writer.tick();
        for m in &self.nodes {
            m.tick();
        }
        for m in &self.replicas {
            m.tick();
        }
    }
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use super::*;
    use crate::faults::FaultConfig;
    use aurora_redo_model::types::ReplicaId;

    #[test]
    fn recv_drains_a_batch_then_ticks_then_closes() {
        let m = Mailbox::new();
        m.push_all([(1, None), (2, None), (0, Some(0))]);
        m.tick();
        m.tick();
        assert_eq!(m.recv(10), Recv::Items(vec![0, 1, 2]));
        assert_eq!(m.recv(10), Recv::Tick);
        m.push(5);
        m.close();
        assert_eq!(m.recv(10), Recv::Closed);
        m.reopen();
        assert_eq!(m.recv(10), Recv::Items(vec![5]));
    }

    #[test]
    fn an_az_outage_cuts_both_nodes_off() {
        let net = Mailboxes::new(1, Faults::new(FaultConfig::none()));
        net.faults.set_outage(Some(aurora_redo_model::types::Az::B));
        let envs = NodeId::all()
            .map(|n| Envelope::pull(ReplicaId(0), n, Lsn(1)))
            .collect();
        net.send(envs);
        let queued: Vec<usize> = net.nodes.iter().map(|m| m.len()).collect();
        assert_eq!(queued, vec![1, 1, 0, 0, 1, 1]);
    }
}
