//! `run --disk-fault`: a node whose segment file fails a write or an fsync stops, named with its
//! file and error; the run carries on and verifies on the other five, and exits 3 at once,
//! naming every failure, when fewer than a write quorum remain (rather than waiting for ever
//! on commits that cannot come).
#![cfg(all(unix, not(feature = "shuttle")))]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

/// Runs the binary, killing it (and failing) if it has not exited within `limit`: a guard
/// against a hang, not a measure of speed.
fn run_bounded(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aurora-redo"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let started = Instant::now();
    while child.try_wait().expect("poll the child").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}: {}", common::stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect the output")
}

#[test]
fn a_full_disk_on_one_node_stops_it_and_the_run_completes_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let out = run_bounded(
        &[
            "run",
            "--dir",
            dir.to_str().unwrap(),
            "--records",
            "3000",
            "--ack",
            "disk",
            "--replicas",
            "1",
            "--disk-fault",
            "S2=enospc@20000",
        ],
        Duration::from_secs(120),
    );
    let (stdout, stderr) = (common::stdout(&out), common::stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let file = dir.join("node-2.seg");
    let line = format!(
        "stopped          S2 stopped on a disk error: a write or fsync of {} failed: No space \
         left on device (os error 28)",
        file.display()
    );
    assert!(stdout.contains(&line), "{stdout}");
    assert!(stdout.contains("committed 3000\n"), "{stdout}");
    assert!(stdout.contains("verified"), "{stdout}");
    assert_eq!(stdout.matches("stopped on a disk error").count(), 1);
}

#[test]
fn disk_errors_on_three_nodes_end_the_run_with_exit_3_naming_each() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let out = run_bounded(
        &[
            "run",
            "--dir",
            dir.to_str().unwrap(),
            "--records",
            "200000",
            "--replicas",
            "1",
            "--disk-fault",
            "S1=enospc@20000",
            "--disk-fault",
            "S3=eio-fsync@30000",
            "--disk-fault",
            "5=eio@10000",
        ],
        Duration::from_secs(120),
    );
    let (stdout, stderr) = (common::stdout(&out), common::stderr(&out));
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("error: the run stopped: 3 of 6 storage nodes stopped on disk errors"),
        "{stderr}"
    );
    for (node, error) in [
        (1, "No space left on device (os error 28)"),
        (3, "Input/output error (os error 5)"),
        (5, "Input/output error (os error 5)"),
    ] {
        let named = format!(
            "S{node} stopped on a disk error: a write or fsync of {} failed: {error}",
            dir.join(format!("node-{node}.seg")).display()
        );
        assert!(stderr.contains(&named), "{named}\n{stderr}");
    }
    assert!(!stdout.contains("committed 200000\n"), "{stdout}");
    assert!(!stderr.contains("no commit progress"), "{stderr}");
}

#[test]
fn bad_disk_faults_are_refused_with_exit_2() {
    for (fault, why) in [
        ("S9=eio", "a node is S0 to S5"),
        ("S1=full", "a disk fault is enospc"),
        ("S1", "expected NODE=FAULT"),
    ] {
        let out = common::aurora_redo(&["run", "--records", "10", "--disk-fault", fault]);
        assert_eq!(out.status.code(), Some(2), "{fault}");
        assert!(
            common::stderr(&out).contains(why),
            "{}",
            common::stderr(&out)
        );
    }
    let out = common::aurora_redo(&[
        "run",
        "--records",
        "10",
        "--disk-fault",
        "S1=eio",
        "--disk-fault",
        "S1=enospc",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("names S1 twice"));
}
