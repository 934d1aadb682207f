//! In-process transport: one mailbox per actor, carrying the shared `Msg` in envelopes.
//!
//! Batching happens here: [`Mailboxes::send`] groups a step's envelopes by destination and hands
//! each group to the mailbox in one operation, and a receiver drains everything queued in one
//! receive, so a storage node sees (and acks) a whole batch of appends at once.
//!
//! **Turns.** The writer's and the storage nodes' mailboxes may be run by whichever thread sends
//! to them (see [`crate::engine`]): a sender that finds the receiver idle takes its *turn*
//! ([`Mailbox::try_turn`]), runs the receiver's step on its own thread and gives the turn back
//! ([`Mailbox::finish`]); the receiver's own thread takes turns too ([`Mailbox::turn`]). One turn
//! at a time, so the receiver still handles its messages one batch after another in queue order.
//! A queued item always has someone to run it: the holder of the turn looks at the queue when it
//! finishes, a sender that does not run what it queued wakes the receiver's thread
//! ([`Mailbox::kick`]), and a thread is only woken when it sleeps and nobody holds the turn.

use std::collections::VecDeque;

use aurora_redo_model::types::{Actor, Envelope, Lsn, NodeId, Record};

use crate::faults::{Fate, Faults};
use crate::sync::{lock, wait, AtomicU64, Condvar, Mutex, MutexGuard, Ordering};

/// What a mailbox delivers.
#[derive(Debug, PartialEq, Eq)]
pub enum Recv<T> {
    Items(Vec<T>),
    Tick,
    Closed,
}

/// A seeded concurrency bug of the turn protocol, for the loom tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailboxBug {
    /// [`Mailbox::finish`] gives the turn back without looking at the queue: what a sender queued
    /// during the turn (and did not wake anyone for, the turn being taken) is stranded.
    FinishBlind,
}

struct Inbox<T> {
    queue: VecDeque<T>,
    tick: bool,
    closed: bool,
    /// Someone holds the receiver's turn: it is running the receiver's step.
    running: bool,
    /// Threads blocked in a receive: a push wakes one only when there is one.
    sleeping: usize,
}

/// A blocking multi-producer queue with a coalescing tick flag, a close flag and a turn.
pub struct Mailbox<T> {
    inbox: Mutex<Inbox<T>>,
    cv: Condvar,
    bug: Option<MailboxBug>,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Mailbox::new()
    }
}

impl<T> Mailbox<T> {
    pub fn new() -> Mailbox<T> {
        Mailbox::with_bug(None)
    }

    pub fn with_bug(bug: Option<MailboxBug>) -> Mailbox<T> {
        Mailbox {
            inbox: Mutex::new(Inbox {
                queue: VecDeque::new(),
                tick: false,
                closed: false,
                running: false,
                sleeping: 0,
            }),
            cv: Condvar::new(),
            bug,
        }
    }

    /// Wakes the receiver's thread if it sleeps and nobody holds the turn.
    fn wake(&self, inbox: &Inbox<T>) {
        if inbox.sleeping > 0 && !inbox.running {
            self.cv.notify_all();
        }
    }

    fn enqueue(
        inbox: &mut MutexGuard<'_, Inbox<T>>,
        items: impl IntoIterator<Item = (T, Option<usize>)>,
    ) {
        for (item, jump) in items {
            match jump {
                Some(r) => {
                    let at = r % (inbox.queue.len() + 1);
                    inbox.queue.insert(at, item);
                }
                None => inbox.queue.push_back(item),
            }
        }
    }

    /// Enqueues items and wakes the receiver; `(item, Some(r))` jumps the queue at a position
    /// derived from `r`.
    pub fn push_all(&self, items: impl IntoIterator<Item = (T, Option<usize>)>) {
        let mut inbox = lock(&self.inbox);
        Self::enqueue(&mut inbox, items);
        self.wake(&inbox);
    }

    /// Enqueues items without waking anyone: the caller then runs the receiver itself
    /// ([`Mailbox::try_turn`]) or wakes it ([`Mailbox::kick`]).
    pub fn push_all_quiet(&self, items: impl IntoIterator<Item = (T, Option<usize>)>) {
        let mut inbox = lock(&self.inbox);
        Self::enqueue(&mut inbox, items);
    }

    pub fn push(&self, item: T) {
        self.push_all([(item, None)]);
    }

    /// Wakes the receiver's thread for what is queued (after [`Mailbox::push_all_quiet`], when
    /// the sender does not run it).
    pub fn kick(&self) {
        let inbox = lock(&self.inbox);
        if !inbox.queue.is_empty() || inbox.tick {
            self.wake(&inbox);
        }
    }

    /// Raises the tick flag (coalesced: many ticks before a receive are one).
    pub fn tick(&self) {
        let mut inbox = lock(&self.inbox);
        inbox.tick = true;
        self.wake(&inbox);
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

    /// Up to `max` queued items, else a tick, else nothing.
    fn take(inbox: &mut Inbox<T>, max: usize) -> Option<Recv<T>> {
        if !inbox.queue.is_empty() {
            let n = inbox.queue.len().min(max);
            return Some(Recv::Items(inbox.queue.drain(..n).collect()));
        }
        if inbox.tick {
            inbox.tick = false;
            return Some(Recv::Tick);
        }
        None
    }

    /// Blocks until something arrives; returns up to `max` queued items, else a tick, else
    /// `Closed`. For a mailbox whose receiver is only ever its own thread (no turns).
    pub fn recv(&self, max: usize) -> Recv<T> {
        let mut inbox = lock(&self.inbox);
        loop {
            if inbox.closed {
                return Recv::Closed;
            }
            if let Some(got) = Self::take(&mut inbox, max) {
                return got;
            }
            inbox.sleeping += 1;
            inbox = wait(&self.cv, inbox);
            inbox.sleeping -= 1;
        }
    }

    /// [`Mailbox::recv`] for the receiver's own thread on a mailbox that senders may also run:
    /// waits until nobody holds the turn, then takes it with what it returns (items or a tick).
    /// The caller runs the step, then calls [`Mailbox::finish`].
    pub fn turn(&self, max: usize) -> Recv<T> {
        let mut inbox = lock(&self.inbox);
        loop {
            if inbox.closed {
                return Recv::Closed;
            }
            if !inbox.running {
                if let Some(got) = Self::take(&mut inbox, max) {
                    inbox.running = true;
                    return got;
                }
            }
            inbox.sleeping += 1;
            inbox = wait(&self.cv, inbox);
            inbox.sleeping -= 1;
        }
    }

    /// Takes the turn with up to `max` queued items, if there are any and nobody holds it (and
    /// the mailbox is open). The caller runs the step, then calls [`Mailbox::finish`].
    pub fn try_turn(&self, max: usize) -> Option<Vec<T>> {
        let mut inbox = lock(&self.inbox);
        if inbox.closed || inbox.running || inbox.queue.is_empty() {
            return None;
        }
        let n = inbox.queue.len().min(max);
        inbox.running = true;
        Some(inbox.queue.drain(..n).collect())
    }

    /// Gives the turn back. Returns whether items are queued: then the caller takes another turn
    /// or wakes the receiver's thread ([`Mailbox::kick`]), for nobody else will.
    #[must_use]
    pub fn finish(&self) -> bool {
        let mut inbox = lock(&self.inbox);
        inbox.running = false;
        if self.bug == Some(MailboxBug::FinishBlind) {
            return false;
        }
        !inbox.queue.is_empty() || inbox.tick
    }

    /// A sender's turn: if `allowed` and the receiver is idle with items queued, runs `step` on
    /// up to `max` of them on this thread and returns `Some(more)` (`more`: items are queued
    /// again, and this thread takes the next turn or kicks); otherwise wakes the receiver's
    /// thread if something waits for it and returns `None`.
    pub fn run_turn(&self, max: usize, allowed: bool, step: impl FnOnce(Vec<T>)) -> Option<bool> {
        let items = if allowed { self.try_turn(max) } else { None };
        let Some(items) = items else {
            self.kick();
            return None;
        };
        step(items);
        Some(self.finish())
    }

    /// Takes everything queued (what a closed mailbox's receiver left).
    pub fn drain(&self) -> Vec<T> {
        lock(&self.inbox).queue.drain(..).collect()
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

/// An actor that a sender may run on its own thread: the writer or a storage node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runnable {
    Writer,
    Node(NodeId),
}

/// Actors with messages queued for them that the sender has yet to run or wake, in the order
/// they were first sent to, each once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready(VecDeque<Runnable>);

impl Ready {
    pub fn add(&mut self, actor: Runnable) {
        if !self.0.contains(&actor) {
            self.0.push_back(actor);
        }
    }

    pub fn pop(&mut self) -> Option<Runnable> {
        self.0.pop_front()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Every actor's mailbox plus the fault injector.
pub struct Mailboxes {
    pub writer: Mailbox<Envelope>,
    pub nodes: Vec<Mailbox<NodeEvent>>,
    pub replicas: Vec<Mailbox<Envelope>>,
    pub faults: Faults,
    /// Work on the commit path not yet done: messages queued for the writer and the nodes or
    /// being handled, and (counted by the engine under ack `disk`) flush jobs not yet reported.
    /// When it drops to zero with the commit point short of the last record, something was lost
    /// ([`crate::writer::WriterInput::Repair`]).
    pending: AtomicU64,
    bug: Option<QuietBug>,
}

/// A seeded bug of the quiet count, for the loom tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuietBug {
    /// A step settles what it took before queueing what it sent: the count can read zero while
    /// a message is on its way.
    SettleFirst,
}

impl Mailboxes {
    pub fn new(replicas: usize, faults: Faults) -> Mailboxes {
        Mailboxes::with_bug(replicas, faults, None)
    }

    pub fn with_bug(replicas: usize, faults: Faults, bug: Option<QuietBug>) -> Mailboxes {
        Mailboxes {
            writer: Mailbox::new(),
            nodes: NodeId::all().map(|_| Mailbox::new()).collect(),
            replicas: (0..replicas).map(|_| Mailbox::new()).collect(),
            faults,
            pending: AtomicU64::new(0),
            bug,
        }
    }

    /// Counts `n` more pieces of commit-path work (before they are queued).
    pub fn begin(&self, n: usize) {
        self.pending.fetch_add(n as u64, Ordering::SeqCst);
    }

    /// `n` pieces of work are done (after what they caused is queued); returns whether that was
    /// the last of them: the commit path is quiet.
    pub fn settle(&self, n: usize) -> bool {
        n > 0 && self.pending.fetch_sub(n as u64, Ordering::SeqCst) == n as u64
    }

    /// The end of a step that took `taken` counted items: queues what it sent (counted), then
    /// settles the items. Returns whether the commit path is now quiet.
    pub fn step_done(&self, taken: usize, sent: Vec<Envelope>, ready: &mut Ready) -> bool {
        if self.bug == Some(QuietBug::SettleFirst) {
            let quiet = self.settle(taken);
            self.send(sent, ready);
            return quiet;
        }
        self.send(sent, ready);
        self.settle(taken)
    }

    /// Queues `event` for `node` quietly, counted: the caller runs the node or kicks it.
    pub fn push_node(&self, node: NodeId, event: NodeEvent) {
        self.begin(1);
        self.nodes[node.index()].push_all_quiet([(event, None)]);
    }

    /// Sends envelopes through the faulty network, one mailbox operation per destination.
    /// Replicas are woken; what goes to the writer and the storage nodes is queued quietly and
    /// their names are added to `ready`: the caller runs them or kicks them (see
    /// [`crate::engine`]).
    pub fn send(&self, envs: Vec<Envelope>, ready: &mut Ready) {
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
                Actor::Writer => {
                    self.begin(items.len());
                    self.writer.push_all_quiet(items);
                    ready.add(Runnable::Writer);
                }
                Actor::Storage(n) => {
                    self.begin(items.len());
                    self.nodes[n.index()]
                        .push_all_quiet(items.into_iter().map(|(e, j)| (NodeEvent::Net(e), j)));
                    ready.add(Runnable::Node(n));
                }
                Actor::Replica(r) => {
                    if let Some(m) = self.replicas.get(r.index()) {
                        m.push_all(items)
                    }
                }
            }
        }
    }

    /// Wakes the thread of every actor in `ready` that has something queued (for a sender that
    /// does not run them itself).
    pub fn kick(&self, ready: Ready) {
        for actor in ready.0 {
            match actor {
                Runnable::Writer => self.writer.kick(),
                Runnable::Node(n) => self.nodes[n.index()].kick(),
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
    fn one_turn_at_a_time_and_finish_reports_what_arrived_meanwhile() {
        let m = Mailbox::new();
        assert_eq!(m.try_turn(10), None, "nothing queued");
        m.push_all_quiet([(1, None), (2, None)]);
        assert_eq!(m.try_turn(1), Some(vec![1]));
        assert_eq!(m.try_turn(10), None, "the turn is taken");
        m.push_all_quiet([(3, None)]);
        assert!(m.finish(), "2 and 3 wait for the next turn");
        assert_eq!(m.turn(10), Recv::Items(vec![2, 3]));
        assert!(!m.finish());
        m.tick();
        assert_eq!(m.try_turn(10), None, "a tick is the receiver's thread's");
        assert_eq!(m.turn(10), Recv::Tick);
        assert!(!m.finish());
        m.push_all_quiet([(4, None)]);
        m.close();
        assert_eq!(m.try_turn(10), None, "closed");
        let blind = Mailbox::with_bug(Some(MailboxBug::FinishBlind));
        blind.push_all_quiet([(1, None), (2, None)]);
        assert_eq!(blind.try_turn(1), Some(vec![1]));
        assert!(!blind.finish(), "the seeded bug does not look");
    }

    #[test]
    fn an_az_outage_cuts_both_nodes_off() {
        let net = Mailboxes::new(1, Faults::new(FaultConfig::none()));
        net.faults.set_outage(Some(aurora_redo_model::types::Az::B));
        let envs = NodeId::all()
            .map(|n| Envelope::pull(ReplicaId(0), n, Lsn(1)))
            .collect();
        let mut ready = Ready::default();
        net.send(envs, &mut ready);
        assert_eq!(
            ready.0,
            [0, 1, 4, 5].map(|n| Runnable::Node(NodeId(n))),
            "the nodes that got messages, for the sender to run"
        );
        let queued: Vec<usize> = net.nodes.iter().map(|m| m.len()).collect();
        assert_eq!(queued, vec![1, 1, 0, 0, 1, 1]);
    }
}
