//! The trace checker on hand-made traces: a correct trace is accepted, and corrupt ones are
//! rejected at the offending event with a reason.

use aurora_redo::recording_check::{check_recording, RecordingFailure};
use aurora_redo_impl::recorder::Step;
use aurora_redo_impl::storage::StorageInput;
use aurora_redo_impl::writer::WriterInput;
use aurora_redo_impl::EngineConfig;
use aurora_redo_model::state::record_for;
use aurora_redo_model::{
    AckPolicy, Config, Envelope, Epoch, Lsn, NodeId, Preset, Record, ReplicaId,
};

fn model_config() -> Config {
    Config {
        lsns: 2,
        replicas: 1,
        storage_crashes: 0,
        replica_crashes: 0,
        az_outages: 0,
        lost_nodes: 0,
        ack: AckPolicy::Memory,
        bug: None,
        ..Config::preset(Preset::Default)
    }
}

fn impl_config() -> EngineConfig {
    EngineConfig::new(AckPolicy::Memory, 1)
}

fn write(lsn: u64) -> Step {
    let r = record_for(Epoch::FIRST, Lsn(lsn));
    Step::Writer(WriterInput::Append {
        page: r.page,
        value: r.value,
    })
}

fn append(node: u8, record: Record) -> Envelope {
    Envelope::append(NodeId(node), record)
}

fn to_node(node: u8, batch: Vec<Envelope>) -> Step {
    Step::Node {
        node: NodeId(node),
        input: StorageInput::Deliver(batch),
    }
}

fn ack(node: u8, scl: u64) -> Step {
    Step::Writer(WriterInput::Deliver(Envelope::ack(NodeId(node), Lsn(scl))))
}

/// W writes LSN 1, four nodes store it and their acks reach the writer: commit point 1.
fn committed_trace() -> Vec<Step> {
    let mut t = vec![write(1)];
    for n in 0..4 {
        t.push(to_node(
            n,
            vec![append(n, record_for(Epoch::FIRST, Lsn(1)))],
        ));
    }
    for n in 0..4 {
        t.push(ack(n, 1));
    }
    t
}

fn rejected(events: &[Step]) -> RecordingFailure {
    match check_recording(&model_config(), &impl_config(), events) {
        Ok(report) => panic!("accepted: {report:?}"),
        Err(failure) => failure,
    }
}

#[test]
fn a_correct_trace_is_accepted() {
    let report = check_recording(&model_config(), &impl_config(), &committed_trace())
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.events, 9);
}

#[test]
fn a_message_never_sent_is_rejected() {
    // S4 receives an Append of LSN 2, which the writer never wrote.
    let mut t = committed_trace();
    t.push(to_node(
        4,
        vec![append(4, record_for(Epoch::FIRST, Lsn(2)))],
    ));
    let f = rejected(&t);
    assert_eq!(f.index, 9);
    assert!(f.reason.contains("never sent"), "{f}");
}

#[test]
fn a_record_other_than_the_writers_is_rejected() {
    let mut t = committed_trace();
    let forged = Record {
        value: 999,
        ..record_for(Epoch::FIRST, Lsn(1))
    };
    t.insert(5, to_node(4, vec![append(4, forged)]));
    let f = rejected(&t);
    assert_eq!(f.index, 5);
    assert!(f.reason.contains("never sent"), "{f}");
}

#[test]
fn a_commit_at_three_acks_is_rejected_at_the_third_ack() {
    // Every message is really sent, but the writer's machine (seeded `CommitAtThree`) commits
    // LSN 1 when three nodes have stored it: no model step reaches commit point 1 there.
    let mut t = vec![write(1)];
    for n in 0..3 {
        t.push(to_node(
            n,
            vec![append(n, record_for(Epoch::FIRST, Lsn(1)))],
        ));
    }
    for n in 0..3 {
        t.push(ack(n, 1));
    }
    let buggy = impl_config().with_bug(Some(aurora_redo_impl::ImplBug::CommitAtThree));
    let f = check_recording(&model_config(), &buggy, &t).unwrap_err();
    assert_eq!(f.index, 6, "{f}");
    assert!(f.event.contains("W receives"), "{f}");
    assert!(
        f.reason.contains("reaches the implementation's state"),
        "{f}"
    );
    assert!(
        f.closest
            .iter()
            .any(|c| c.contains("W commit point 0 vs 1")),
        "{f}"
    );
    // The same trace on the correct writer is explained (commit point stays 0).
    let report =
        check_recording(&model_config(), &impl_config(), &t).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.events, 7);
}

#[test]
fn a_replica_that_learns_a_commit_nobody_announced_is_rejected() {
    // The replica hears four Availables for LSN 1, but only three nodes stored it: the fourth
    // Available is forged (never sent).
    let mut t = vec![write(1)];
    for n in 0..3 {
        t.push(to_node(
            n,
            vec![append(n, record_for(Epoch::FIRST, Lsn(1)))],
        ));
    }
    for n in 0..4 {
        t.push(Step::Replica {
            replica: ReplicaId(0),
            input: aurora_redo_impl::replica::ReplicaInput::Deliver(Envelope::available(
                NodeId(n),
                ReplicaId(0),
                Lsn(1),
            )),
        });
    }
    let f = rejected(&t);
    assert_eq!(f.index, 7);
    assert!(f.reason.contains("never sent"), "{f}");
}
