//! What the model's integration tests share.
#![allow(dead_code)]

use aurora_redo_model::{Moves, RedoModel, State};
use stateright::Model;
use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

/// A 64-bit fingerprint of a state, for sets too large to hold the states themselves.
pub fn fingerprint(s: &State) -> u64 {
    let mut hasher = DefaultHasher::new();
    s.hash(&mut hasher);
    hasher.finish()
}

/// Calls `visit` once on every state reachable with `moves`, up to symmetry (the representative
/// of each), by a plain breadth-first search that remembers fingerprints, not states.
pub fn for_each_reachable(model: &RedoModel, moves: Moves, mut visit: impl FnMut(&State)) {
    let init = RedoModel::representative(&model.init_states().remove(0));
    let mut seen = HashSet::from([fingerprint(&init)]);
    let mut frontier = VecDeque::from([init]);
    let mut steps = Vec::new();
    while let Some(s) = frontier.pop_front() {
        visit(&s);
        model.steps(&s, moves, &mut steps);
        for action in steps.drain(..) {
            if let Some(next) = model.next_state(&s, action) {
                let next = RedoModel::representative(&next);
                if seen.insert(fingerprint(&next)) {
                    frontier.push_back(next);
                }
            }
        }
    }
}

/// Every state reachable with `moves`, up to symmetry.
pub fn reachable(model: &RedoModel, moves: Moves) -> HashSet<State> {
    let mut states = HashSet::new();
    for_each_reachable(model, moves, |s| {
        states.insert(s.clone());
    });
    states
}
