//! Trace validation: a run of the concurrent engine, recorded step by step
//! ([`aurora_redo_impl::recorder`]), is checked against the model's transition relation.
//!
//! The recorded events are replayed on fresh role machines (`Writer`, six `StorageNode`s, the
//! `Replica`s), which reproduces the engine's states exactly, and after each event the
//! implementation's [`Abstraction`] is computed. Alongside, the checker keeps the set of model
//! states consistent with the trace so far (starting from the model's initial state). For each
//! event the new set is every state reachable from one in the old set by the model steps the
//! event maps to (below) whose abstraction the implementation's [`conforms`] to (the comparison
//! the property-based conformance tests use). An empty set is a failure: the event is one the
//! model does not allow, or the states diverged.
//!
//! The replay checks the network too: every delivered message must have been sent earlier by
//! some replayed machine, and every delivered `Append` must carry the record the writer created.
//!
//! # How an event maps to model steps
//! - writer append: `Write`;
//! - a batch delivered to a node: `Deliver` of each `Append` in it, in order (a duplicate that
//!   changes nothing is a stutter; `Pull` requests change no model state: the answer is the
//!   model's step);
//! - a flush completion: `Flush(node, upto)` for any `upto`, or a stutter (a stale completion);
//! - a read-back completion (a node's records for a pull, read from its segment): a stutter, like
//!   the `Pull` request; the answer it sends is the model's `Pull` when the replica consumes it.
//!   The replay checks that the records were created by the writer (and the cluster, that they
//!   are what the node asked for and on its synced disk);
//! - `Ack` to the writer: `Commit(L)` or a stutter; `Flushed` to the writer, ticks: stutters;
//! - `Available` to a replica: `LearnCommit(r, L)`, optionally followed by `Pull(r, n)` (the
//!   engine's replica applies records it buffered earlier as soon as its known commit point
//!   rises: the model explains that as the pull it would make then), or a stutter;
//! - `Flushed` to a replica: `LearnDurable(r, L)` or a stutter;
//! - `Records` to a replica: `Pull(r, n)` from any node (the model's pull reads the node's
//!   holdings at that moment: if the sender has since lost the records, another node that holds
//!   them explains it), or a stutter (records above the known commit point are only buffered);
//! - node crash: `CrashNode(n)`, preceded by `Flush(n, on_disk)` when the flusher had synced more
//!   than the node had been told (the completion was lost with the crash); node restart:
//!   `RestartNode(n)`; replica crash: `CrashReplica(r)` then `RestartReplica(r)` (the engine does
//!   both at once); AZ outage: `AzOutage(az)` / `AzRecover(az)`.
//!
//! **AZ outages cut the network at send time** in the engine: a message that was already queued
//! in a node's mailbox (or a `Records` answer already queued for a replica) is still consumed
//! while the zone is out, where the model delivers nothing to a zone that is out and pulls
//! nothing from it. The checker explains such a step as the zone coming back for it:
//! `AzRecover(az)`, the step, `AzOutage(az)`; so the model is given an unbounded outage budget.
//! The network is modelled as duplicating: that covers the engine's duplication, its reordering,
//! and its losses (a lost message is one never delivered).

use crate::abstraction::{conforms, Abstraction};
use aurora_redo_impl::cluster::{Cluster, Step};
use aurora_redo_impl::observer::Event;
use aurora_redo_impl::replica::ReplicaInput;
use aurora_redo_impl::storage::StorageInput;
use aurora_redo_impl::writer::WriterInput;
use aurora_redo_impl::EngineConfig;
use aurora_redo_model::state::record_for;
use aurora_redo_model::Epoch;
use aurora_redo_model::{
    Action, Actor, Config, Envelope, Lsn, Moves, Msg, NetworkKind, NodeId, Record, RedoModel,
    ReplicaId, State,
};
use stateright::Model;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

/// Most model states kept as candidates after one event; beyond it the check stops and says so.
pub const CANDIDATE_CAP: usize = 20_000;

/// A trace the model explains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingReport {
    /// Events checked.
    pub events: usize,
    /// The largest candidate set after any event.
    pub most_candidates: usize,
}

/// Why a trace was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingFailure {
    /// The index of the offending event in the trace.
    pub index: usize,
    /// The offending event.
    pub event: String,
    pub reason: String,
    /// The implementation's abstraction after the event (when the replay got that far).
    pub implementation: Option<String>,
    /// The model states closest to the implementation's, with how they differ (model vs
    /// engine).
    pub closest: Vec<String>,
}

impl fmt::Display for RecordingFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "trace validation failed at event {}: {}\n  {}",
            self.index, self.event, self.reason
        )?;
        if let Some(a) = &self.implementation {
            writeln!(f, "  implementation: {a}")?;
        }
        for (i, c) in self.closest.iter().enumerate() {
            writeln!(f, "  closest model candidate {i}: {c}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RecordingFailure {}

/// The engine's role machines, replayed from the recording, and what the network has carried.
struct Replayed {
    cluster: Cluster,
    /// Every message any machine has sent.
    sent: BTreeSet<Envelope>,
    /// The records the writer created.
    written: BTreeMap<Lsn, Record>,
}

impl Replayed {
    fn new(cfg: &EngineConfig) -> Replayed {
        Replayed {
            cluster: Cluster::new(cfg.clone()),
            sent: BTreeSet::new(),
            written: BTreeMap::new(),
        }
    }

    fn delivered(&self, e: &Envelope, to: Actor) -> Result<(), String> {
        if e.dst != to {
            return Err(format!("{e:?} is addressed to {:?}, not {to:?}", e.dst));
        }
        if !self.sent.contains(e) {
            return Err(format!("{e:?} was delivered but never sent"));
        }
        if let Msg::Append(r) = &e.msg {
            if self.written.get(&r.lsn) != Some(r) {
                return Err(format!("{e:?} carries a record the writer did not create"));
            }
        }
        Ok(())
    }

    /// Takes the step on the cluster, after checking that whatever it delivers was sent.
    fn apply(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Writer(WriterInput::Deliver(e)) => self.delivered(e, Actor::Writer)?,
            Step::Node {
                node,
                input: StorageInput::Deliver(batch),
            } => {
                for e in batch {
                    self.delivered(e, Actor::Storage(*node))?;
                }
            }
            Step::Node {
                input: StorageInput::ReadDone { records, .. },
                ..
            } => {
                if let Some(r) = records.iter().find(|r| self.written.get(&r.lsn) != Some(r)) {
                    return Err(format!("read back {r:?}, which the writer did not create"));
                }
            }
            Step::Replica {
                replica,
                input: ReplicaInput::Deliver(e),
            } => self.delivered(e, Actor::Replica(*replica))?,
            _ => {}
        }
        let fx = self.cluster.step(step)?;
        for ev in fx.observed {
            if let Event::Appended(r) = ev {
                self.written.insert(r.lsn, r);
            }
        }
        self.sent.extend(fx.sent);
        Ok(())
    }
}

/// The model configuration a trace is checked against: `config` with a duplicating network and
/// an unbounded AZ-outage budget (see the module documentation).
pub fn checking_config(config: &Config) -> Config {
    Config {
        network: NetworkKind::Duplicating,
        az_outages: u8::MAX,
        ..config.clone()
    }
}

struct Checker {
    model: RedoModel,
}

impl Checker {
    /// `a` taken in `s`, if the model allows it there.
    fn step(&self, s: &State, a: &Action) -> Option<State> {
        let mut actions = Vec::new();
        self.model.steps(s, Moves::All, &mut actions);
        if actions.contains(a) {
            self.model.next_state(s, a.clone())
        } else {
            None
        }
    }

    /// `a` in `s`, or, when `s` has a zone out, with the zone back for that one step.
    fn step_bridging_outage(&self, s: &State, a: &Action) -> Option<State> {
        if let Some(next) = self.step(s, a) {
            return Some(next);
        }
        let az = s.az_out?;
        let back = self.step(s, &Action::AzRecover(az))?;
        let after = self.step(&back, a)?;
        self.step(&after, &Action::AzOutage(az))
    }

    /// The enabled steps in `s` that `pick` selects, taken.
    fn steps_where(&self, s: &State, pick: impl Fn(&Action) -> bool) -> Vec<State> {
        let mut actions = Vec::new();
        self.model.steps(s, Moves::All, &mut actions);
        actions
            .into_iter()
            .filter(|a| pick(a))
            .filter_map(|a| self.model.next_state(s, a))
            .collect()
    }

    /// `Pull(r, n)` from every node that explains it.
    fn pulls(&self, s: &State, r: ReplicaId) -> Vec<State> {
        NodeId::all()
            .filter_map(|n| self.step_bridging_outage(s, &Action::Pull(r, n)))
            .collect()
    }

    /// The model's delivery of the `Append` of `lsn` to `n`: a step, or a stutter when the
    /// duplicate changes nothing; `None` when the model cannot deliver it.
    fn deliver_append(&self, s: &State, n: NodeId, lsn: Lsn) -> Option<State> {
        let e = Envelope::append(n, record_for(Epoch::FIRST, lsn));
        if !s.network.iter().any(|x| *x == e) {
            return None;
        }
        let action = Action::Deliver(e);
        if let Some(next) = self.step_bridging_outage(s, &action) {
            return Some(next);
        }
        // Not offered: on a duplicating network, a redelivery that changes nothing.
        match self.model.next_state(s, action) {
            None => Some(s.clone()),
            Some(_) => None,
        }
    }

    /// Every model state the event may lead to from `s` (before comparing abstractions).
    fn successors(&self, s: &State, ev: &Step) -> Vec<State> {
        let stutter = || vec![s.clone()];
        match ev {
            Step::Writer(WriterInput::Append { .. }) => {
                self.step(s, &Action::Write).into_iter().collect()
            }
            Step::Writer(WriterInput::Deliver(e)) => match e.msg {
                Msg::Ack { .. } => {
                    let mut out = stutter();
                    out.extend(self.steps_where(s, |a| matches!(a, Action::Commit(_))));
                    out
                }
                _ => stutter(),
            },
            Step::Writer(WriterInput::Tick | WriterInput::Repair) => stutter(),
            Step::Node { node, input } => match input {
                StorageInput::Deliver(batch) => {
                    let mut states = stutter();
                    for e in batch {
                        if let Msg::Append(r) = &e.msg {
                            states = states
                                .iter()
                                .filter_map(|st| self.deliver_append(st, *node, r.lsn))
                                .collect();
                        }
                    }
                    states
                }
                StorageInput::FlushDone { .. } => {
                    let mut out = stutter();
                    out.extend(
                        self.steps_where(s, |a| matches!(a, Action::Flush(n, _) if n == node)),
                    );
                    out
                }
                StorageInput::ReadDone { .. } => stutter(),
            },
            Step::Replica { replica, input } => {
                let r = *replica;
                let ReplicaInput::Deliver(e) = input else {
                    return stutter();
                };
                match e.msg {
                    Msg::Available { .. } => {
                        let mut out = stutter();
                        let learned = self
                            .steps_where(s, |a| matches!(a, Action::LearnCommit(x, _) if *x == r));
                        for st in &learned {
                            out.extend(self.pulls(st, r));
                        }
                        out.extend(learned);
                        out
                    }
                    Msg::Flushed { .. } => {
                        let mut out = stutter();
                        out.extend(self.steps_where(
                            s,
                            |a| matches!(a, Action::LearnDurable(x, _) if *x == r),
                        ));
                        out
                    }
                    Msg::Records { .. } => {
                        let mut out = stutter();
                        out.extend(self.pulls(s, r));
                        out
                    }
                    _ => stutter(),
                }
            }
            Step::NodeCrashed { node, on_disk } => {
                let crash = Action::CrashNode(*node);
                let mut out: Vec<State> = self.step(s, &crash).into_iter().collect();
                if *on_disk > s.node(*node).flushed() {
                    out.extend(
                        self.step(s, &Action::Flush(*node, *on_disk))
                            .and_then(|f| self.step(&f, &crash)),
                    );
                }
                out
            }
            Step::NodeLost(node) => self.step(s, &Action::LoseNode(*node)).into_iter().collect(),
            Step::ReplicaCrashed(replica) => self
                .step(s, &Action::CrashReplica(*replica))
                .into_iter()
                .collect(),
            Step::NodeRestarted { node, .. } => self
                .step(s, &Action::RestartNode(*node))
                .into_iter()
                .collect(),
            Step::ReplicaRestarted { replica, .. } => {
                let restart = Action::RestartReplica(*replica);
                if s.replicas[replica.index()].up {
                    self.step(s, &Action::CrashReplica(*replica))
                        .and_then(|c| self.step(&c, &restart))
                } else {
                    self.step(s, &restart)
                }
                .into_iter()
                .collect()
            }
            Step::AzOutage(Some(az)) => self.step(s, &Action::AzOutage(*az)).into_iter().collect(),
            Step::AzOutage(None) => match s.az_out {
                Some(az) => self.step(s, &Action::AzRecover(az)).into_iter().collect(),
                None => stutter(),
            },
            // A failover is the model's (the zombie's presence is the configuration's).
            Step::FailOver { .. } => self.step(s, &Action::FailOver).into_iter().collect(),
            Step::Zombie(WriterInput::Append { .. }) => {
                self.step(s, &Action::ZombieWrite).into_iter().collect()
            }
            Step::Zombie(_) => stutter(),
        }
    }
}

/// The model states closest to `target` among `states`, with their differences.
fn closest(states: &[State], target: &Abstraction) -> Vec<String> {
    let mut ranked: Vec<(usize, String)> = states
        .iter()
        .map(|s| {
            let d = Abstraction::of_model(s).differences(target);
            (d.len(), d.join("; "))
        })
        .collect();
    ranked.sort();
    ranked.dedup();
    ranked
        .into_iter()
        .take(3)
        .map(|(_, d)| format!("differs (model vs engine): {d}"))
        .collect()
}

/// Checks a recorded trace of an engine running with `impl_cfg` against the model configured by
/// `config` (through [`checking_config`]). `config.lsns` must cover every record written.
pub fn check_recording(
    config: &Config,
    impl_cfg: &EngineConfig,
    events: &[Step],
) -> Result<RecordingReport, RecordingFailure> {
    let model = checking_config(config).into_model();
    let mut candidates: Vec<State> = model.init_states();
    let checker = Checker { model };
    let mut replayed = Replayed::new(impl_cfg);
    let mut most = candidates.len();
    for (index, ev) in events.iter().enumerate() {
        let fail =
            |reason: String, implementation: Option<&Abstraction>, closest| RecordingFailure {
                index,
                event: ev.to_string(),
                reason,
                implementation: implementation.map(|a| a.to_string()),
                closest,
            };
        if let Step::Writer(WriterInput::Append { .. }) = ev {
            if replayed.cluster.writer().last_lsn().0 >= u64::from(config.lsns) {
                return Err(fail(
                    format!(
                        "the writer creates more records than the model's {} LSNs",
                        config.lsns
                    ),
                    None,
                    Vec::new(),
                ));
            }
        }
        if let Err(why) = replayed.apply(ev) {
            return Err(fail(why, None, Vec::new()));
        }
        let actual = Abstraction::of_cluster(&replayed.cluster);
        let mut seen = HashSet::new();
        let mut considered = Vec::new();
        let mut next = Vec::new();
        for s in &candidates {
            for succ in checker.successors(s, ev) {
                if !seen.insert(succ.clone()) {
                    continue;
                }
                if conforms(&Abstraction::of_model(&succ), &actual) {
                    next.push(succ);
                    if next.len() > CANDIDATE_CAP {
                        return Err(fail(
                            format!("more than {CANDIDATE_CAP} model states explain the trace so far: the candidate cap is hit"),
                            Some(&actual),
                            Vec::new(),
                        ));
                    }
                } else if considered.len() < 256 {
                    considered.push(succ);
                }
            }
        }
        if next.is_empty() {
            let reason = if considered.is_empty() {
                format!(
                    "no model step this event maps to is enabled in any of the {} candidate \
                     states",
                    candidates.len()
                )
            } else {
                format!(
                    "no model step this event maps to reaches the implementation's state \
                     (from {} candidate states)",
                    candidates.len()
                )
            };
            let pool = if considered.is_empty() {
                &candidates
            } else {
                &considered
            };
            return Err(fail(reason, Some(&actual), closest(pool, &actual)));
        }
        most = most.max(next.len());
        candidates = next;
    }
    Ok(RecordingReport {
        events: events.len(),
        most_candidates: most,
    })
}
