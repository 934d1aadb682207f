//! Property-based conformance: the model is the reference state machine, the implementation
//! (driven by [`Harness`]) is the system under test.
//!
//! Sequences of steps are generated from the model's *enabled* actions (writes, deliveries in any
//! order, flushes, watermark learning, pulls and every fault in the configuration's budget), so
//! every generated step is one the protocol allows (learning steps only to the highest value
//! allowed: see [`generated`]). Each step is taken on both sides; after it the
//! implementation's state, mapped to the [`Abstraction`], must equal the model's, and every
//! invariant the engine's runtime monitor reports broken must be broken in the model too.
//!
//! One relaxation, for the replica's `applied` (and the `retained` that follows it): the engine's
//! replica keeps records it received above its known commit point and applies them as soon as an
//! `Available` raises that point, where the model's replica applies only inside an atomic `Pull`
//! (reading the node at that moment). The engine may therefore be ahead, by records it received
//! in an earlier answer: its view also matches when it applied more than the model's replica but
//! not past the known commit point, and retains exactly the model's records plus those extra ones
//! above the durable LSN. (No single model step explains it: the records were read while not yet
//! committed. The monitor still checks that every applied record is the writer's, in order, and
//! committed.)

use aurora_redo::abstraction::{conforms, Abstraction};
use aurora_redo::harness::{DiskKind, Harness};
use aurora_redo_impl::ImplBug;
use aurora_redo_model::{Action, Config, Lsn, Moves, RedoModel, ReplicaId, State};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use stateright::{Expectation, Model};
use std::marker::PhantomData;

/// A configuration to check conformance in, and the bug (if any) seeded in the engine.
pub trait Profile: 'static {
    fn config() -> Config;
    fn impl_bug() -> Option<ImplBug> {
        None
    }
}

/// The model as a reference state machine. A transition is `None` only in a state with no
/// enabled step (a stutter), so generation never gets stuck.
pub struct ModelRef<P>(PhantomData<P>);

fn enabled(model: &RedoModel, s: &State) -> Vec<Action> {
    let mut actions = Vec::new();
    // Every move, not the checker's one LSN at a time: an engine's receiver moves as far as the
    // messages it gets allow.
    model.steps(s, Moves::All, &mut actions);
    actions.retain(|a| model.next_state(s, a.clone()).is_some());
    actions
}

/// The receiver and target of a watermark-learning step.
fn learning(a: &Action) -> Option<((u8, Option<ReplicaId>), Lsn)> {
    match *a {
        Action::Commit(to) => Some(((0, None), to)),
        Action::LearnCommit(r, to) => Some(((1, Some(r)), to)),
        Action::LearnDurable(r, to) => Some(((2, Some(r)), to)),
        _ => None,
    }
}

/// The steps generated in `s`: every enabled step, except that a receiver learns a watermark
/// only up to the highest value the announcements allow, and a node flushes its whole contiguous
/// prefix. The model lets a receiver stop at any value below, but SCLs jump (filling a hole can
/// take an SCL from 1 to 3 in one ack), so some of those values are carried by no message at all
/// and no real receiver can stop there; and where an engine flush stops depends on when its job
/// was issued, which the model does not track (trace validation covers partial flushes).
fn generated(model: &RedoModel, s: &State) -> Vec<Action> {
    let actions = enabled(model, s);
    let highest = |who| {
        actions
            .iter()
            .filter_map(learning)
            .filter(|(w, _)| *w == who)
            .map(|(_, to)| to)
            .max()
    };
    let whole_flush = |a: &Action| match a {
        Action::Flush(n, upto) => *upto == s.node(*n).scl(),
        _ => true,
    };
    actions
        .iter()
        .filter(|a| learning(a).is_none_or(|(who, to)| highest(who) == Some(to)))
        .filter(|a| whole_flush(a))
        .cloned()
        .collect()
}

impl<P: Profile> ReferenceStateMachine for ModelRef<P> {
    type State = State;
    type Transition = Option<Action>;

    fn init_state() -> BoxedStrategy<State> {
        Just(State::new(P::config().replicas)).boxed()
    }

    fn transitions(s: &State) -> BoxedStrategy<Option<Action>> {
        let actions = generated(&P::config().into_model(), s);
        if actions.is_empty() {
            Just(None).boxed()
        } else {
            proptest::sample::select(actions).prop_map(Some).boxed()
        }
    }

    fn apply(s: State, t: &Option<Action>) -> State {
        match t {
            Some(a) => P::config()
                .into_model()
                .next_state(&s, a.clone())
                .unwrap_or(s),
            None => s,
        }
    }

    fn preconditions(s: &State, t: &Option<Action>) -> bool {
        match t {
            Some(a) => generated(&P::config().into_model(), s).contains(a),
            None => true,
        }
    }
}

/// The implementation under test.
pub struct Conformance<P>(PhantomData<P>);

/// Panics, describing the difference, unless the engine conforms to the model state `s`.
pub fn assert_conforms(model: &RedoModel, s: &State, harness: &Harness) {
    let expected = Abstraction::of_model(s);
    let actual = harness.abstraction();
    assert!(
        conforms(&expected, &actual),
        "the engine diverges from the model (model vs engine):\n  {}\nsteps: {:#?}",
        expected.differences(&actual).join("\n  "),
        harness.history()
    );
    let violated_in_model: Vec<&str> = model
        .properties()
        .into_iter()
        .filter(|p| p.expectation == Expectation::Always && !(p.condition)(model, s))
        .map(|p| p.name)
        .collect();
    for v in harness.violations() {
        assert!(
            violated_in_model.contains(&v.invariant),
            "the engine breaks {} where the model does not: {}\nsteps: {:#?}",
            v.invariant,
            v.detail,
            harness.history()
        );
    }
}

impl<P: Profile> StateMachineTest for Conformance<P> {
    type SystemUnderTest = Harness;
    type Reference = ModelRef<P>;

    fn init_test(_: &State) -> Harness {
        Harness::new(&P::config(), P::impl_bug(), DiskKind::Simulated).expect("simulated disks")
    }

    fn apply(mut harness: Harness, after: &State, t: Option<Action>) -> Harness {
        if let Some(action) = t {
            if let Err(why) = harness.step(&action) {
                panic!(
                    "the engine cannot take {action:?}: {why}\nsteps: {:#?}",
                    harness.history()
                );
            }
        }
        assert_conforms(&P::config().into_model(), after, &harness);
        harness
    }
}
