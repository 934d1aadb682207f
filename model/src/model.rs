//! The model: which steps are enabled in a state, and what each step does.
//!
//! A step is a write, the delivery (or loss) of an `Append`, a node's background flush, a
//! receiver learning a watermark, a replica's pull, or a fault. The rules each actor follows live
//! in [`crate::writer`], [`crate::storage`] and [`crate::replica`]; this module only dispatches.
//!
//! # How messages are modelled
//! `Append` messages are individual envelopes in [`crate::network::Network`], delivered in any
//! order, and (by the network switch) redelivered or lost.
//!
//! The watermark messages `Ack`, `Available` and `Flushed` are modelled by what they announce. Each
//! carries a node's watermark, and every receiver keeps the highest per node, so the order,
//! duplication or loss of individual copies only decides *how far* a receiver has got, never
//! *where* it can get: the 4th-highest of what the nodes have sent. The state therefore keeps, per
//! node, the highest value sent ([`crate::state::Announced`]), and a receiver moves its watermark
//! in a step of its own to any value that quorum allows (the checker takes such a move one LSN at a
//! time: see [`Moves`]). This is the "a quorum of such messages exists" style of quorum-protocol
//! specifications; it covers every order of delivery, and it keeps the state small, because no
//! receiver holds six per-node views that lag independently. (Announcements stay receivable once
//! sent, as on a duplicating network: for the other networks this adds behaviours, which is safe
//! for checking safety.)
//!
//! `Pull` and its `Records` answer are one step: records are immutable, so when the answer is
//! read only changes how many of them arrive, which the choice of node and moment already
//! covers.

use crate::config::{Config, NetworkKind};
use crate::properties;
use crate::state::{LsnSet, NodeSet, NodeStatus, State};
use crate::symmetry;
use crate::types::{Actor, Az, Envelope, Lsn, Msg, NodeId, ReplicaId};
use crate::{replica, storage, writer};
use serde::{Deserialize, Serialize};
use stateright::{Model, Path, Property};
use std::fmt;

/// The redo-log protocol under one configuration.
#[derive(Clone, Debug)]
pub struct RedoModel {
    pub config: Config,
}

/// One step of the system. Serializable: a counterexample is a list of these (see the trace
/// format in the README).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// The writer writes its next record and sends `Append` to every node.
    Write,
    /// The network delivers an `Append`.
    Deliver(Envelope),
    /// The network loses an `Append` (`lossy` only).
    Drop(Envelope),
    /// A node flushes `1..=upto` of its contiguous prefix to disk and announces `Flushed`.
    Flush(NodeId, Lsn),
    /// The writer receives `Ack`s that move its commit point to this LSN.
    Commit(Lsn),
    /// A replica receives `Available`s that tell it this commit point.
    LearnCommit(ReplicaId, Lsn),
    /// A replica receives `Flushed`s that make this its durable LSN.
    LearnDurable(ReplicaId, Lsn),
    /// A replica pulls from a node and applies the `Records` it gets.
    Pull(ReplicaId, NodeId),
    CrashNode(NodeId),
    RestartNode(NodeId),
    LoseNode(NodeId),
    AzOutage(Az),
    AzRecover(Az),
    CrashReplica(ReplicaId),
    RestartReplica(ReplicaId),
    /// The writer fails over: a new writer of the next epoch starts recovery (the old one keeps
    /// running as a zombie under `--zombie-writer`).
    FailOver,
    /// The zombie writer writes its next record in its old epoch and sends `Append` to every node.
    ZombieWrite,
    /// The recovering writer reads a read quorum's state (SCLs and records); those nodes adopt the
    /// new epoch.
    Read(NodeSet),
    /// The recovering writer's write phase at a node: re-replicate up to the recovery point,
    /// persist the truncation and the epoch.
    Seal(NodeId),
    /// A replica learns of a newer epoch and starts over in it.
    Follow(ReplicaId),
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Write => write!(f, "W writes the next record"),
            Action::Deliver(e) => write!(f, "{e}"),
            Action::Drop(e) => write!(f, "network loses {e}"),
            Action::Flush(n, upto) => write!(f, "{n:?} flushes 1..={upto} to disk"),
            Action::Commit(l) => write!(f, "W gets Acks: commit point {l}"),
            Action::LearnCommit(r, l) => write!(f, "{r:?} gets Availables: known commit {l}"),
            Action::LearnDurable(r, l) => write!(f, "{r:?} gets Flusheds: durable LSN {l}"),
            Action::Pull(r, n) => write!(f, "{r:?} pulls from {n:?} and applies the Records"),
            Action::CrashNode(n) => write!(f, "{n:?} crashes (memory lost)"),
            Action::RestartNode(n) => write!(f, "{n:?} restarts from disk"),
            Action::LoseNode(n) => write!(f, "{n:?} is lost for good"),
            Action::AzOutage(az) => write!(f, "AZ {az:?} goes out"),
            Action::AzRecover(az) => write!(f, "AZ {az:?} comes back"),
            Action::CrashReplica(r) => write!(f, "{r:?} crashes (everything lost)"),
            Action::RestartReplica(r) => write!(f, "{r:?} restarts"),
            Action::FailOver => write!(f, "W fails over: a new writer starts recovery"),
            Action::ZombieWrite => write!(f, "the zombie writer writes its next record"),
            Action::Read(q) => write!(f, "W reads {q:?}: SCLs and records (fences them)"),
            Action::Seal(n) => write!(f, "W re-replicates and truncates on {n:?} (new epoch)"),
            Action::Follow(r) => write!(f, "{r:?} follows the new epoch and starts over"),
        }
    }
}

impl Config {
    /// The model of this configuration.
    pub fn into_model(self) -> RedoModel {
        RedoModel::new(self)
    }
}

impl RedoModel {
    pub fn new(config: Config) -> RedoModel {
        RedoModel { config }
    }

    /// Every step enabled in `s`, with watermark moves as `moves` says. The checker explores
    /// [`Moves::Stepwise`]; a test that drives the engine with the model's steps asks for
    /// [`Moves::All`], because an engine's receiver moves as far as the messages it gets allow.
    pub fn steps(&self, s: &State, moves: Moves, actions: &mut Vec<Action>) {
        let config = &self.config;
        if writer::may_write(config, s) {
            actions.push(Action::Write);
        }
        if writer::zombie_may_write(config, s) {
            actions.push(Action::ZombieWrite);
        }
        actions.extend(
            writer::read_quorums(config, s)
                .into_iter()
                .map(Action::Read),
        );
        for n in NodeId::all() {
            if writer::may_seal(s, n) {
                actions.push(Action::Seal(n));
            }
        }
        // Every step offered changes the state (stateright's simulation relies on it). On a
        // duplicating network a delivered message stays, so skip redeliveries that do nothing.
        let duplicating = config.network == NetworkKind::Duplicating;
        for e in s.network.iter() {
            if self.deliverable(s, e) && !(duplicating && self.is_noop_delivery(s, e)) {
                actions.push(Action::Deliver(e.clone()));
            }
        }
        if config.network == NetworkKind::Lossy {
            actions.extend(s.network.iter().cloned().map(Action::Drop));
        }
        // A flush that announces every value it passes has no shortcuts (see `Moves::Stepwise`).
        let flush_moves = if storage::keeps_flushed_history(config) {
            Moves::All
        } else {
            moves
        };
        for n in NodeId::all() {
            let (flushed, targets) = (s.node(n).flushed(), storage::flush_targets(s.node(n)));
            let offered = flush_moves.offered(flushed, targets);
            actions.extend(offered.map(|upto| Action::Flush(n, upto)));
        }
        let commit = s.writer.commit;
        let commits = (commit.0 + 1..=writer::commit_bound(config, s).0).map(Lsn);
        actions.extend(moves.offered(commit, commits).map(Action::Commit));
        for r in self.replica_ids() {
            if !s.replica(r).up {
                continue;
            }
            // A receipt is a step wherever it changes the replica: one that raises its known
            // commit point always does; one that leaves it only under a rule that reacts to every
            // receipt (`replica::commit_receipt_acts`).
            let known = s.replica(r).known_commit;
            let lowest = if replica::commit_receipt_acts(config, s, r) {
                known.0
            } else {
                known.0 + 1
            };
            if replica::newer_epoch(s, r).is_some() {
                actions.push(Action::Follow(r));
            }
            let commits = (lowest..=replica::commit_bound(s, r).0).map(Lsn);
            for to in moves.offered(known, commits) {
                actions.push(Action::LearnCommit(r, to));
            }
            let durable = s.replica(r).durable;
            for to in moves.offered(durable, replica::durable_choices(config, s, r)) {
                actions.push(Action::LearnDurable(r, to));
            }
            for n in NodeId::all() {
                if replica::may_pull(config, s, r, n) {
                    actions.push(Action::Pull(r, n));
                }
            }
        }
        self.fault_actions(s, actions);
    }

    fn replica_ids(&self) -> impl Iterator<Item = ReplicaId> {
        (0..self.config.replicas).map(ReplicaId)
    }

    /// Whether the network can deliver `e` now: its receiver is up and reachable, and its sender
    /// is not cut off by an AZ outage (a message from a cut-off node waits for the zone).
    pub fn deliverable(&self, s: &State, e: &Envelope) -> bool {
        let src_ok = match e.src {
            Actor::Storage(n) => s.az_out != Some(n.az()),
            _ => true,
        };
        let dst_ok = match e.dst {
            Actor::Writer => true,
            Actor::Storage(n) => s.reachable(n) && !self.waits(s, e, n),
            Actor::Replica(r) => s.replica(r).up,
        };
        src_ok && dst_ok
    }

    /// Whether node `n` would hold `e` back: an `Append` of an epoch whose truncation the node has
    /// not persisted waits for the writer's write phase to reach it.
    fn waits(&self, s: &State, e: &Envelope, n: NodeId) -> bool {
        match &e.msg {
            Msg::Append(record) => {
                storage::receipt(&self.config, s.node(n), record) == storage::Receipt::Wait
            }
            _ => false,
        }
    }

    /// Whether delivering `e` (leaving it in flight) would change nothing.
    fn is_noop_delivery(&self, s: &State, e: &Envelope) -> bool {
        match (&e.msg, e.dst) {
            (Msg::Append(record), Actor::Storage(n)) => {
                !storage::append_changes_anything(&self.config, s, n, record)
            }
            _ => true,
        }
    }

    /// Applies a delivery to the receiver, leaving the network's copy in place.
    fn receive(&self, s: &mut State, e: &Envelope) {
        if let (Msg::Append(record), Actor::Storage(n)) = (&e.msg, e.dst) {
            storage::on_append(&self.config, s, n, record);
        }
    }

    /// Whether nothing can happen that changes the system: no fault is active or has destroyed
    /// anything, the writer is done, no flush or pull would move anything, and delivering any
    /// message would change no actor.
    pub fn is_quiescent(&self, s: &State) -> bool {
        let fault_free = s.faults.storage_crashes == 0
            && s.faults.lost_nodes == 0
            && s.faults.writer_crashes == 0
            && !s.ghost.flags.contains(crate::state::Flags::DROPPED)
            && s.az_out.is_none()
            && s.nodes.iter().all(|n| n.is_up())
            && s.replicas.iter().all(|r| r.up);
        if !fault_free || s.writer.written.0 < self.config.lsns as u64 {
            return false;
        }
        let mut steps = Vec::new();
        self.actions(s, &mut steps);
        steps.into_iter().all(|step| match step {
            Action::Deliver(e) => self.is_noop_delivery(s, &e),
            // Progress steps are only offered when they change something.
            Action::Write
            | Action::Flush(..)
            | Action::Commit(_)
            | Action::LearnCommit(..)
            | Action::LearnDurable(..)
            | Action::Pull(..)
            | Action::ZombieWrite
            | Action::Read(_)
            | Action::Seal(_)
            | Action::Follow(_) => false,
            // Faults are not progress.
            _ => true,
        })
    }
}

impl Model for RedoModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State::new(self.config.replicas)]
    }

    /// The steps the checker explores: watermark moves one LSN at a time ([`Moves::Stepwise`]).
    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        self.steps(s, Moves::Stepwise, actions);
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        match &action {
            Action::Write => writer::write(&mut s),
            Action::Deliver(e) => {
                if self.config.network != NetworkKind::Duplicating {
                    s.network.remove(e);
                }
                self.receive(&mut s, e);
            }
            Action::Drop(e) => {
                s.network.remove(e);
                s.ghost.flags.insert(crate::state::Flags::DROPPED);
            }
            Action::Flush(n, upto) => storage::flush(&self.config, &mut s, *n, *upto),
            Action::Commit(to) => writer::commit(&mut s, *to),
            Action::LearnCommit(r, to) => replica::learn_commit(&self.config, &mut s, *r, *to),
            Action::LearnDurable(r, to) => replica::learn_durable(&mut s, *r, *to),
            Action::Pull(r, n) => replica::pull(&self.config, &mut s, *r, *n),
            Action::CrashNode(n) => {
                s.faults.storage_crashes += 1;
                storage::crash(&mut s, *n);
                if self.config.instant_faults {
                    storage::restart(&mut s, *n);
                }
            }
            Action::RestartNode(n) => storage::restart(&mut s, *n),
            Action::LoseNode(n) => {
                s.faults.lost_nodes += 1;
                storage::lose(&mut s, *n);
            }
            Action::AzOutage(az) => {
                s.faults.az_outages += 1;
                s.az_out = Some(*az);
            }
            Action::AzRecover(_) => s.az_out = None,
            Action::CrashReplica(r) => {
                s.faults.replica_crashes += 1;
                replica::crash(&mut s, *r);
                if self.config.instant_faults {
                    replica::restart(&mut s, *r);
                }
            }
            Action::RestartReplica(r) => replica::restart(&mut s, *r),
            Action::FailOver => writer::fail_over(&mut s, self.config.zombie_writer),
            Action::ZombieWrite => writer::zombie_write(&mut s),
            Action::Read(q) => writer::read(&self.config, &mut s, *q),
            Action::Seal(n) => writer::seal(&self.config, &mut s, *n),
            Action::Follow(r) => {
                let epoch = replica::newer_epoch(&s, *r).expect("a newer epoch to follow");
                replica::follow(&mut s, *r, epoch);
            }
        }
        s.judge_step(last);
        (s != *last).then_some(s)
    }

    fn format_action(&self, action: &Action) -> String {
        format!("{action:?}")
    }

    /// The Explorer's text for the state a step leads to: the invariants it violates with their
    /// evidence, the step in words, then each actor ([`crate::view::step_view`]). The raw state
    /// is under the Explorer's "Complete State?" (`{:#?}`, which ends with it).
    fn format_step(&self, last_state: &State, action: Action) -> Option<String> {
        let next = self.next_state(last_state, action.clone())?;
        Some(crate::view::step_view(self, last_state, &action, &next))
    }

    fn as_svg(&self, path: Path<State, Action>) -> Option<String> {
        Some(crate::render::sequence_svg(self, &path.into_vec()))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties::properties(&self.config)
    }
}

/// Which watermark moves are steps: a flush, a commit, or a receiver learning a commit point or
/// a durable LSN, each of which a rule allows to any of a range of values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moves {
    /// Every value the rule allows.
    All,
    /// One LSN at a time where the rule allows a range.
    ///
    /// Moving straight to `L` reaches the same state as moving to `L - 1` and then to `L` (every
    /// such step keeps the highest value, and what it frees or announces is everything up to it;
    /// a flush under `durable-last-message`, which remembers each value announced, is the
    /// exception and keeps every target), and `L` is still a choice after `L - 1`. So the moves
    /// past the first LSN of a range are shortcuts: transitions that reach no state the single
    /// steps do not. Leaving them out makes the checker's work per state smaller (`full`: 11%
    /// fewer transitions). A choice whose predecessor is not itself a choice
    /// (`durable-last-message` allows scattered values) or is at most the current value stays.
    /// `model/tests/single_moves.rs` holds the two to the same reachable states, seeded bugs
    /// included, and the pinned unique-state counts are unchanged.
    Stepwise,
}

impl Moves {
    /// The values out of `choices` (the rule's, from `current`) that are steps.
    fn offered(
        self,
        current: Lsn,
        choices: impl IntoIterator<Item = Lsn>,
    ) -> impl Iterator<Item = Lsn> {
        let mut all = LsnSet::EMPTY;
        choices.into_iter().for_each(|to| all.insert(to));
        all.iter().filter(move |to| {
            self == Moves::All || to.0 <= current.0 + 1 || !all.contains(Lsn(to.0 - 1))
        })
    }
}

impl RedoModel {
    /// `action`, enabled in `s` (any move, [`Moves::All`]), as the checker's steps: itself, or,
    /// for a shortcut (a watermark move past the first LSN of its range), the single moves that
    /// reach the same state. `None` if it is not a step there. A trace written with shortcuts
    /// (a file from an older version, or by hand) opens in the Explorer through this.
    pub fn single_steps(&self, s: &State, action: &Action) -> Option<Vec<Action>> {
        /// The receiver of a watermark move (the move with its target zeroed) and its target.
        fn moving(a: &Action) -> Option<(Action, Lsn)> {
            match *a {
                Action::Flush(n, to) => Some((Action::Flush(n, Lsn::ZERO), to)),
                Action::Commit(to) => Some((Action::Commit(Lsn::ZERO), to)),
                Action::LearnCommit(r, to) => Some((Action::LearnCommit(r, Lsn::ZERO), to)),
                Action::LearnDurable(r, to) => Some((Action::LearnDurable(r, Lsn::ZERO), to)),
                _ => None,
            }
        }
        let mut all = Vec::new();
        self.steps(s, Moves::All, &mut all);
        if !all.contains(action) {
            return None;
        }
        let mut chain = Vec::new();
        let mut state = s.clone();
        // Each single move raises the value, which is at most 16.
        for _ in 0..=16 {
            let mut offered = Vec::new();
            self.actions(&state, &mut offered);
            if offered.contains(action) {
                chain.push(action.clone());
                return Some(chain);
            }
            // The furthest single move of the same receiver short of the target.
            let (receiver, target) = moving(action)?;
            let (_, single) = offered
                .into_iter()
                .filter_map(|a| {
                    let (r, to) = moving(&a)?;
                    (r == receiver && to < target).then_some((to, a))
                })
                .max_by_key(|(to, _)| *to)?;
            state = self.next_state(&state, single.clone())?;
            chain.push(single);
        }
        None
    }

    /// The faults still in the budget, as steps. With `Config::instant_faults` a crash is its
    /// restart too (see `next_state`), so nothing is ever down to restart.
    fn fault_actions(&self, s: &State, actions: &mut Vec<Action>) {
        let (config, used) = (&self.config, &s.faults);
        for n in NodeId::all() {
            match s.node(n).status {
                NodeStatus::Up if used.storage_crashes < config.storage_crashes => {
                    actions.push(Action::CrashNode(n))
                }
                NodeStatus::Crashed => actions.push(Action::RestartNode(n)),
                _ => {}
            }
            if s.node(n).status != NodeStatus::Lost && used.lost_nodes < config.lost_nodes {
                actions.push(Action::LoseNode(n));
            }
        }
        if used.writer_crashes < config.writer_crashes {
            actions.push(Action::FailOver);
        }
        match s.az_out {
            Some(az) => actions.push(Action::AzRecover(az)),
            // With instant faults an outage is over as it begins: no step (`crate::reduction`).
            None if used.az_outages < config.az_outages && !config.instant_faults => {
                actions.extend(Az::ALL.map(Action::AzOutage))
            }
            None => {}
        }
        for r in self.replica_ids() {
            if !s.replica(r).up {
                actions.push(Action::RestartReplica(r));
            } else if used.replica_crashes < config.replica_crashes {
                actions.push(Action::CrashReplica(r));
            }
        }
    }

    /// The symmetry reduction for DFS: see [`crate::symmetry`].
    pub fn representative(state: &State) -> State {
        symmetry::representative(state)
    }
}
