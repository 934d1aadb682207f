//! The reductions of `aurora_redo_model::reduction`, checked by enumeration: on small
//! configurations, the reduced system reaches exactly the states of the full one (up to the fields
//! the reduction drops), each state's properties judge it as its counterpart is judged, and every
//! seeded bug gets the same verdicts.

mod common;
use aurora_redo_model::reduction::reduce;
use aurora_redo_model::state::{NodeStatus, Replicas};
use aurora_redo_model::{
    AckPolicy, Bug, Config, Moves, NetworkKind, Preset, RedoModel, Reduction, State,
};
use common::{fingerprint, for_each_reachable, reachable};
use stateright::{Checker, Expectation, Model};
use std::collections::{BTreeSet, HashSet};

/// The state with every fault window over: nothing down, no zone out, no outage counted.
fn windows_over(s: &State) -> State {
    let mut s = s.clone();
    s.az_out = None;
    s.faults.az_outages = 0;
    for node in &mut s.nodes {
        if node.status == NodeStatus::Crashed {
            node.status = NodeStatus::Up;
        }
    }
    s.replicas.iter_mut().for_each(|r| r.up = true);
    s
}

/// Whether some fault window is open in `s`.
fn in_window(s: &State) -> bool {
    s.az_out.is_some()
        || s.nodes.iter().any(|n| n.status == NodeStatus::Crashed)
        || s.replicas.iter().any(|r| !r.up)
}

/// The state of the writer, the nodes and replica `i` alone (with the replica crash count, which
/// the replicas share, set aside).
fn with_replica(s: &State, i: usize) -> State {
    let mut one = s.clone();
    one.replicas = Replicas::new(1);
    one.replicas[0] = s.replicas[i];
    one.faults.replica_crashes = 0;
    one
}

/// Small configurations with every fault that has a window, so that liveness is not claimed:
/// each ack policy and network, and permanent loss.
fn windowed() -> Vec<Config> {
    let base = Config {
        lsns: 1,
        replicas: 1,
        storage_crashes: 1,
        replica_crashes: 1,
        az_outages: 1,
        ack: AckPolicy::Disk,
        network: NetworkKind::Unordered,
        ..Config::preset(Preset::Quick)
    };
    vec![
        base.clone(),
        Config {
            ack: AckPolicy::Memory,
            network: NetworkKind::Duplicating,
            ..base.clone()
        },
        Config {
            network: NetworkKind::Lossy,
            ..base.clone()
        },
        Config {
            storage_crashes: 0,
            lost_nodes: 3,
            ..base.clone()
        },
    ]
}

/// The verdicts of an exhaustive check (stateright's, with symmetry): the invariants violated
/// and the reachability facts reached.
fn checked_verdicts(config: &Config) -> BTreeSet<&'static str> {
    let checker = config
        .clone()
        .into_model()
        .checker()
        .threads(2)
        .symmetry_fn(RedoModel::representative)
        .spawn_dfs();
    while !checker.is_done() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    checker.discoveries().into_keys().collect()
}

#[test]
fn instant_faults_reach_every_state_up_to_the_windows_and_judge_it_alike() {
    for config in windowed() {
        let full = config.clone().into_model();
        let reduced = reduce(&config, &[Reduction::FaultWindows])
            .unwrap()
            .into_model();
        let states = reachable(&full, Moves::Stepwise);
        let reduced_states = reachable(&reduced, Moves::Stepwise);
        let over: HashSet<State> = states
            .iter()
            .map(|s| RedoModel::representative(&windows_over(s)))
            .collect();
        assert!(
            reduced_states.len() < states.len(),
            "{config}: nothing reduced"
        );
        assert!(
            over == reduced_states,
            "{config}: {} states with the windows over, {} with instant faults",
            over.len(),
            reduced_states.len()
        );
        let properties = full.properties();
        for s in &states {
            let after = windows_over(s);
            for p in &properties {
                let (here, there) = ((p.condition)(&full, s), (p.condition)(&reduced, &after));
                let vacuous = p.name == "QuiescenceConverges" && in_window(s);
                assert!(
                    here == there || (vacuous && here),
                    "{config}: {} judges {s:?} {here} but {after:?} {there}",
                    p.name
                );
            }
        }
    }
}

#[test]
fn one_replica_at_a_time_reaches_the_same_states() {
    // The windowed configurations, and a failover (replicas follow a new epoch).
    let failover = Config {
        storage_crashes: 0,
        zombie_writer: false,
        ..Config::preset(Preset::Recovery)
    };
    for config in windowed().into_iter().chain([failover]) {
        let config = Config {
            replicas: 2,
            ..config
        };
        let full = config.clone().into_model();
        let one = reduce(&config, &[Reduction::OneReplica])
            .unwrap()
            .into_model();
        assert_eq!(one.config.replicas, 1);
        // Each state is judged as its parts are: an invariant fails iff it fails for a part, a
        // fact is reached iff some part reaches it.
        let properties = full.properties();
        let (mut states, mut parts) = (0, HashSet::new());
        for_each_reachable(&full, Moves::Stepwise, |s| {
            states += 1;
            let alone: Vec<State> = (0..s.replicas.len()).map(|i| with_replica(s, i)).collect();
            parts.extend(
                alone
                    .iter()
                    .map(|a| fingerprint(&RedoModel::representative(a))),
            );
            for p in &properties {
                let here = (p.condition)(&full, s);
                let mut verdicts = alone.iter().map(|a| (p.condition)(&one, a));
                let expected = match p.expectation {
                    Expectation::Always => verdicts.all(|h| h),
                    _ => verdicts.any(|h| h),
                };
                assert_eq!(here, expected, "{config}: {} on {s:?}", p.name);
            }
        });
        let mut alone = HashSet::new();
        for_each_reachable(&one, Moves::Stepwise, |s| {
            alone.insert(fingerprint(&RedoModel::representative(&with_replica(s, 0))));
        });
        assert!(
            alone.len() < states,
            "{config}: nothing reduced ({states} states)"
        );
        assert!(
            parts == alone,
            "{config}: {} one-replica parts, {} states with one replica",
            parts.len(),
            alone.len()
        );
    }
}

/// Each seeded bug, in a configuration with every windowed fault and two replicas (a failover
/// and one replica for the recovery bugs, with a zombie writer for the one that needs it): the
/// reduced checks find the same violations and reach the same facts as the full one.
#[test]
fn every_seeded_bug_gets_the_same_verdicts_reduced() {
    let mut missed = BTreeSet::new();
    for bug in Bug::ALL {
        let config = if bug.needs_failover() {
            Config {
                storage_crashes: 0,
                replica_crashes: 1,
                zombie_writer: bug == Bug::AcceptStaleEpoch,
                bug: Some(bug),
                ..Config::preset(Preset::Recovery)
            }
        } else {
            Config {
                replicas: 2,
                bug: Some(bug),
                ..windowed()[1].clone()
            }
        };
        let expected = checked_verdicts(&config);
        let mut reduced: Vec<Config> = [
            &[Reduction::FaultWindows][..],
            &[Reduction::OneReplica],
            &Reduction::ALL,
        ]
        .into_iter()
        .map(|reductions| reduce(&config, reductions).unwrap())
        .filter(|reduced| *reduced != config)
        .collect();
        reduced.dedup();
        for reduced in reduced {
            assert_eq!(checked_verdicts(&reduced), expected, "{bug}: {reduced}");
        }
        if !expected.contains(bug.expected_property()) {
            missed.insert(bug.name());
        }
    }
    // These need two LSNs (a hole, a second `Flushed`, a second retained record) or a lost
    // node (the next test), or are caught by liveness alone (`writer-stalls`), or act only in
    // the second of two failovers in a row (`recover-from-max-scl`).
    let needs_more = [
        "durable-last-message",
        "evict-retained",
        "recover-from-max-scl",
        "scl-with-holes",
        "shrink-quorum-on-loss",
        "writer-stalls",
    ];
    assert_eq!(
        missed,
        BTreeSet::from(needs_more),
        "seeded bugs not caught here"
    );
}

/// The seeded bugs that need two LSNs or a lost node, each where it shows, with one replica: the
/// checks with faults that take no time find the same violations and reach the same facts.
/// (`writer-stalls` is the one left: only EventuallyConverged catches it, a liveness property,
/// and no reduction applies where liveness is claimed.)
#[test]
fn the_bugs_that_need_more_get_the_same_verdicts_with_instant_faults() {
    let two_lsns = Config {
        lsns: 2,
        replica_crashes: 0,
        ..windowed()[1].clone()
    };
    let lost = Config {
        ack: AckPolicy::Disk,
        ..windowed()[3].clone()
    };
    let cases = [
        (Bug::DurableLastMessage, &two_lsns),
        (Bug::EvictRetained, &two_lsns),
        (Bug::SclWithHoles, &two_lsns),
        (Bug::ShrinkQuorumOnLoss, &lost),
    ];
    for (bug, base) in cases {
        let config = Config {
            bug: Some(bug),
            ..base.clone()
        };
        let expected = checked_verdicts(&config);
        assert!(
            expected.contains(bug.expected_property()),
            "{bug} is not caught in {config}"
        );
        let reduced = reduce(&config, &[Reduction::FaultWindows]).unwrap();
        assert_eq!(checked_verdicts(&reduced), expected, "{bug}: {reduced}");
    }
}
