//! The implementation refines the model: random runs generated from the model's enabled steps,
//! taken on the engine's role state machines, agree with the model after every step (see
//! `aurora_redo_tests::conformance`). Two configurations, 4096 cases each of up to 80 steps; a
//! writer failover with a zombie writer, 1024 cases; and a seeded engine bug that conformance
//! catches and shrinks to a short run.

use aurora_redo_impl::ImplBug;
use aurora_redo_model::{AckPolicy, Config, NetworkKind};
use aurora_redo_tests::conformance::{Conformance, ModelRef, Profile};
use proptest::test_runner::{
    Config as RunnerConfig, FileFailurePersistence, RngAlgorithm, TestError, TestRng, TestRunner,
};
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

/// The seed's protocol (ack `memory`) on a duplicating network, with a storage crash, a replica
/// crash and an AZ outage.
struct Seed;

impl Profile for Seed {
    fn config() -> Config {
        Config {
            lsns: 3,
            replicas: 2,
            storage_crashes: 1,
            replica_crashes: 1,
            az_outages: 1,
            lost_nodes: 0,
            writer_crashes: 0,
            zombie_writer: false,
            ack: AckPolicy::Memory,
            network: NetworkKind::Duplicating,
            bug: None,
            instant_faults: false,
        }
    }
}

/// Paper mode (ack `disk`) on a lossy network, with a storage crash and two nodes lost for good.
struct Paper;

impl Profile for Paper {
    fn config() -> Config {
        Config {
            lsns: 3,
            replicas: 1,
            storage_crashes: 1,
            replica_crashes: 1,
            az_outages: 0,
            lost_nodes: 2,
            writer_crashes: 0,
            zombie_writer: false,
            ack: AckPolicy::Disk,
            network: NetworkKind::Lossy,
            bug: None,
            instant_faults: false,
        }
    }
}

/// Writer failover with a zombie writer: ack `disk`, 2 LSNs, one replica, an unordered network.
struct Failover;

impl Profile for Failover {
    fn config() -> Config {
        Config {
            lsns: 2,
            replicas: 1,
            storage_crashes: 0,
            replica_crashes: 0,
            az_outages: 0,
            lost_nodes: 0,
            writer_crashes: 1,
            zombie_writer: true,
            ack: AckPolicy::Disk,
            network: NetworkKind::Unordered,
            bug: None,
            instant_faults: false,
        }
    }
}

prop_state_machine! {
    #![proptest_config(RunnerConfig {
        cases: 1024,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..RunnerConfig::default()
    })]

    #[test]
    fn the_engine_conforms_through_a_failover_with_a_zombie_writer(sequential 1..80 => Conformance<Failover>);
}

prop_state_machine! {
    #![proptest_config(RunnerConfig {
        cases: 4096,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..RunnerConfig::default()
    })]

    #[test]
    fn the_engine_conforms_under_the_seed_protocol(sequential 1..80 => Conformance<Seed>);

    #[test]
    fn the_engine_conforms_in_paper_mode(sequential 1..80 => Conformance<Paper>);
}

/// The engine with its replica discarding on `Available` (the model stays correct).
struct DiscardOnAvailable;

impl Profile for DiscardOnAvailable {
    fn config() -> Config {
        Config {
            replicas: 1,
            replica_crashes: 0,
            az_outages: 0,
            ..Seed::config()
        }
    }
    fn impl_bug() -> Option<ImplBug> {
        Some(ImplBug::DiscardOnAvailable)
    }
}

/// Conformance catches a seeded engine bug, and shrinking leaves a short run: the smallest is
/// write, four deliveries of the record, the replica learning the commit, and a pull (7 steps).
#[test]
fn a_seeded_engine_bug_is_caught_and_shrunk() {
    let config = RunnerConfig {
        cases: 256,
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config.clone(), rng);
    let result = runner.run(
        &ModelRef::<DiscardOnAvailable>::sequential_strategy(1..60),
        |(initial, transitions, seen)| {
            Conformance::<DiscardOnAvailable>::test_sequential(
                config.clone(),
                initial,
                transitions,
                seen,
            );
            Ok(())
        },
    );
    match result {
        Err(TestError::Fail(why, (_, transitions, _))) => {
            let steps: Vec<_> = transitions.iter().flatten().collect();
            assert!(
                steps.len() <= 9,
                "shrunk to {} steps: {steps:#?}\n{why}",
                steps.len()
            );
            assert!(steps.len() >= 7, "too short to show the bug: {steps:#?}");
        }
        other => panic!("conformance did not catch the seeded bug: {other:?}"),
    }
}

/// The harness's nodes cache no flushed record: a pull of a flushed record is answered from the
/// node's segment file (read back and fed to the node), and model and engine still agree.
#[test]
fn a_pull_of_a_flushed_record_is_read_back_from_the_segment() {
    use aurora_redo::abstraction::{conforms, Abstraction};
    use aurora_redo::harness::{DiskKind, Harness};
    use aurora_redo_model::state::record_for;
    use aurora_redo_model::Epoch;
    use aurora_redo_model::{Action, Envelope, Lsn, NodeId, RedoModel, ReplicaId};
    use stateright::Model;

    let config = Config {
        replicas: 1,
        replica_crashes: 0,
        storage_crashes: 0,
        az_outages: 0,
        ..Seed::config()
    };
    let model: RedoModel = config.clone().into_model();
    let mut state = model.init_states().remove(0);
    let mut h = Harness::new(&config, None, DiskKind::Simulated).expect("simulated disks");
    let (r0, s0) = (ReplicaId(0), NodeId(0));
    let mut steps = vec![Action::Write];
    steps.extend((0..4).map(|n| {
        Action::Deliver(Envelope::append(
            NodeId(n),
            record_for(Epoch::FIRST, Lsn(1)),
        ))
    }));
    steps.extend([
        Action::Flush(s0, Lsn(1)),
        Action::Commit(Lsn(1)),
        Action::LearnCommit(r0, Lsn(1)),
        Action::Pull(r0, s0),
    ]);
    for a in &steps {
        h.step(a).unwrap_or_else(|e| panic!("{a:?}: {e}"));
        state = model
            .next_state(&state, a.clone())
            .expect("enabled in the model");
        assert!(conforms(&Abstraction::of_model(&state), &h.abstraction()));
    }
    let node = h.cluster().node(s0).expect("S0 is up");
    assert_eq!((node.flushed(), node.memory_len()), (Lsn(1), 0));
    assert!(h.cluster().pending_reads(s0).is_empty());
    assert_eq!(h.cluster().replica(r0).map(|r| r.applied()), Some(Lsn(1)));
}
