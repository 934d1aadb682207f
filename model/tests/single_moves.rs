//! The checker takes watermark moves one LSN at a time ([`Moves::Stepwise`]); the protocol allows
//! any distance ([`Moves::All`]). These tests hold the two to the same reachable states, seeded
//! bugs included, and hold every shortcut to the chain of single moves that replaces it
//! ([`RedoModel::single_steps`], which opens traces written with shortcuts).

use aurora_redo_model::{AckPolicy, Bug, Config, Moves, Preset};
mod common;
use common::reachable;
use stateright::Model;

/// Small configurations with ranges to move through: two LSNs, each ack policy, and the
/// seeded bugs whose watermark rules differ from the correct ones.
fn configurations() -> Vec<Config> {
    let base = |lsns, ack, bug| Config {
        lsns,
        ack,
        bug,
        ..Config::preset(Preset::Quick)
    };
    vec![
        base(2, AckPolicy::Memory, None),
        base(2, AckPolicy::Disk, None),
        Config {
            replicas: 2,
            ..base(2, AckPolicy::Disk, None)
        },
        base(2, AckPolicy::Memory, Some(Bug::DurableLastMessage)),
        base(2, AckPolicy::Memory, Some(Bug::DurableFromOneNode)),
        base(2, AckPolicy::Memory, Some(Bug::DiscardOnAvailable)),
        base(2, AckPolicy::Memory, Some(Bug::CommitAtThree)),
        // A failover with a zombie writer, without the storage crash.
        Config {
            storage_crashes: 0,
            ..Config::preset(Preset::Recovery)
        },
    ]
}

#[test]
fn single_moves_reach_every_state_that_any_move_reaches() {
    for config in configurations() {
        let model = config.clone().into_model();
        let single = reachable(&model, Moves::Stepwise);
        let all = reachable(&model, Moves::All);
        assert!(all.len() > 100, "{config}: too small to say anything");
        assert_eq!(single.len(), all.len(), "{config}");
        assert!(single == all, "{config}: the same number, other states");
    }
}

#[test]
fn every_shortcut_is_a_chain_of_single_moves_to_the_same_state() {
    let mut shortcuts = 0;
    for config in configurations() {
        let model = config.clone().into_model();
        for s in reachable(&model, Moves::Stepwise) {
            let (mut all, mut single) = (Vec::new(), Vec::new());
            model.steps(&s, Moves::All, &mut all);
            model.steps(&s, Moves::Stepwise, &mut single);
            for action in all {
                let chain = model
                    .single_steps(&s, &action)
                    .unwrap_or_else(|| panic!("{config}: no chain for {action:?} in {s:?}"));
                if single.contains(&action) {
                    assert_eq!(chain, vec![action.clone()], "{config}");
                    continue;
                }
                shortcuts += 1;
                assert!(chain.len() > 1, "{config}: {action:?}");
                let mut end = s.clone();
                for step in &chain {
                    end = model
                        .next_state(&end, step.clone())
                        .expect("a chain step acts");
                }
                assert_eq!(
                    Some(end),
                    model.next_state(&s, action.clone()),
                    "{config}: {action:?} by {chain:?}"
                );
            }
        }
    }
    assert!(
        shortcuts > 1000,
        "only {shortcuts} shortcuts: nothing tested"
    );
}
