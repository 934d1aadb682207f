//! What the model's integration tests share.

use aurora_redo_model::{Moves, RedoModel, State};
use stateright::Model;
use std::collections::{HashSet, VecDeque};

/// Every state reachable with `moves`, up to symmetry (the representative of each), by a plain
/// breadth-first search.
pub fn reachable(model: &RedoModel, moves: Moves) -> HashSet<State> {
    let init = RedoModel::representative(&model.init_states().remove(0));
    let mut seen = HashSet::from([init.clone()]);
    let mut frontier = VecDeque::from([init]);
    let mut steps = Vec::new();
    while let Some(s) = frontier.pop_front() {
        model.steps(&s, moves, &mut steps);
        for action in steps.drain(..) {
            if let Some(next) = model.next_state(&s, action) {
                let next = RedoModel::representative(&next);
                if seen.insert(next.clone()) {
                    frontier.push_back(next);
                }
            }
        }
    }
    seen
}
