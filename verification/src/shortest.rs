//! Shortest counterexamples: a breadth-first search of the model, on one thread and without
//! symmetry, that stops at the first violating state of the shallowest depth.
//!
//! Stateright's own breadth-first checker does not give that: it checks states in blocks of 1,500
//! and records a discovery each time a state violates the property, so the path it reports is that
//! of the *last* violating state of the block, often deeper than the first (a violation flag, once
//! set, stays set in every successor); with several threads the blocks race as well. Stopping with
//! `finish_when` only ends the search at the end of a block. This search checks each state when it
//! is generated, in breadth-first order, and returns at the first violation, so no shorter
//! counterexample exists.
//!
//! For an `always` property the target is a state where it fails; for a `sometimes` property, a
//! state where it holds (an example); for an `eventually` property, a terminal state (no step
//! changes anything) reached by a path on which the condition never held, which is what stateright
//! reports as its counterexample: the search then stays within states where the condition fails.

use aurora_redo_model::model::Action;
use aurora_redo_model::{Config, RedoModel, State};
use stateright::{Expectation, Model, Path};
use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

/// What a shortest-counterexample search found.
#[derive(Debug)]
pub struct Shortest {
    /// The counterexample, if the property has one within the budget.
    pub path: Option<Path<State, Action>>,
    /// Distinct states generated.
    pub unique_states: usize,
    /// False when the budget ran out before the search ended.
    pub complete: bool,
}

fn fingerprint(state: &State) -> u64 {
    let mut hasher = DefaultHasher::new();
    state.hash(&mut hasher);
    hasher.finish()
}

/// The shortest counterexample to `property` (or, for a `sometimes` property, the shortest
/// example) in `config`, searching for at most `budget`.
///
/// # Panics
/// If `config` has no property of that name.
pub fn shortest_counterexample(
    config: &Config,
    property: &str,
    budget: Option<Duration>,
) -> Shortest {
    let model = config.clone().into_model();
    let properties = model.properties();
    let property = properties
        .iter()
        .find(|p| p.name == property)
        .unwrap_or_else(|| panic!("{property} is not a property of {config}"));
    let condition = property.condition;
    let expectation = property.expectation.clone();
    // The states a counterexample ends in, and the states a search may pass through.
    let target = |s: &State| match expectation {
        Expectation::Always => !condition(&model, s),
        Expectation::Sometimes => condition(&model, s),
        Expectation::Eventually => false,
    };
    let passable = |s: &State| expectation != Expectation::Eventually || !condition(&model, s);

    let started = Instant::now();
    let init = model.init_states().remove(0);
    let init_fp = fingerprint(&init);
    // Per state generated: the state it was generated from, and the index of the action.
    let mut parents: HashMap<u64, Option<(u64, usize)>> = HashMap::from([(init_fp, None)]);
    let found = |parents: &HashMap<u64, Option<(u64, usize)>>, fp: u64| {
        Some(path_to(&model, &init, parents, fp))
    };
    let mut result = None;
    let mut complete = true;
    if target(&init) {
        result = found(&parents, init_fp);
    } else if passable(&init) {
        let mut frontier = VecDeque::from([(init.clone(), init_fp)]);
        let mut actions = Vec::new();
        'search: while let Some((state, fp)) = frontier.pop_front() {
            if budget.is_some_and(|b| started.elapsed() > b) {
                complete = false;
                break;
            }
            model.actions(&state, &mut actions);
            let mut terminal = true;
            for (index, action) in actions.drain(..).enumerate() {
                let Some(next) = model.next_state(&state, action) else {
                    continue;
                };
                terminal = false;
                if !passable(&next) {
                    continue;
                }
                let next_fp = fingerprint(&next);
                let Entry::Vacant(entry) = parents.entry(next_fp) else {
                    continue;
                };
                entry.insert(Some((fp, index)));
                if target(&next) {
                    result = found(&parents, next_fp);
                    break 'search;
                }
                frontier.push_back((next, next_fp));
            }
            if terminal && expectation == Expectation::Eventually {
                result = found(&parents, fp);
                break;
            }
        }
    }
    Shortest {
        unique_states: parents.len(),
        complete: complete || result.is_some(),
        path: result,
    }
}

/// Rebuilds the path to the state with fingerprint `fp` by replaying the recorded action indices.
fn path_to(
    model: &RedoModel,
    init: &State,
    parents: &HashMap<u64, Option<(u64, usize)>>,
    mut fp: u64,
) -> Path<State, Action> {
    let mut indices = Vec::new();
    while let Some((parent, index)) = parents[&fp] {
        indices.push(index);
        fp = parent;
    }
    indices.reverse();
    let mut state = init.clone();
    let mut steps = Vec::new();
    let mut actions = Vec::new();
    for index in indices {
        model.actions(&state, &mut actions);
        let action = actions.swap_remove(index);
        actions.clear();
        state = model
            .next_state(&state, action.clone())
            .expect("a recorded step is enabled");
        steps.push(action);
    }
    Path::from_actions(model, init.clone(), &steps).expect("the replayed steps form a path")
}
