//! `run --history` and `recover --acked HISTORY` as a user meets them: every acknowledged record
//! is in the history with its value, and recovery judges each one whole (a value the volume does
//! not hold is a loss, named by LSN); and the volume lock between two processes.
#![cfg(all(unix, not(feature = "shuttle")))]

mod common;
use common::{aurora_redo, stderr, stdout, Process};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_aurora-redo");

/// The history's `acked` lines, as (LSN, epoch, page, value).
fn acked_lines(text: &str) -> Vec<(u64, String, u32, u64)> {
    text.lines()
        .skip(1)
        .map(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            assert_eq!(
                (w[0], w[3], w[5], w[7]),
                ("acked", "page", "value", "at"),
                "{l}"
            );
            (
                w[1].parse().unwrap(),
                w[2].to_string(),
                w[4].parse().unwrap(),
                w[6].parse().unwrap(),
            )
        })
        .collect()
}

fn recover_dry_run(data: &Path, acked: &Path) -> std::process::Output {
    aurora_redo(&[
        "recover",
        data.to_str().unwrap(),
        "--dry-run",
        "--acked",
        acked.to_str().unwrap(),
    ])
}

#[test]
fn a_history_names_every_acknowledged_record_and_recover_judges_each_value() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let history = dir.path().join("history");
    let (d, h) = (data.to_str().unwrap(), history.to_str().unwrap());
    let args = [
        "run",
        "--dir",
        d,
        "--records",
        "3000",
        "--ack",
        "disk",
        "--replicas",
        "1",
        "--writers",
        "3",
        "--batch",
        "16",
        "--history",
        h,
    ];
    let out = aurora_redo(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&history).unwrap();
    assert!(text.ends_with('\n'));
    let mut lines = acked_lines(&text);
    lines.sort();
    let lsns: Vec<u64> = lines.iter().map(|l| l.0).collect();
    assert_eq!(lsns, (1..=3000).collect::<Vec<_>>(), "each record once");
    assert!(lines.iter().all(|l| l.1 == "e0"));

    // A second run does not overwrite the history.
    let out = aurora_redo(&args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot create the history"),
        "{}",
        stderr(&out)
    );

    let out = recover_dry_run(&data, &history);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("3000 records from a history, each recovered as written"),
        "{}",
        stdout(&out)
    );

    // One line's value edited: its LSN and epoch are still the volume's, its value is not.
    let (lsn, _, page, value) = lines[1233].clone();
    let wrong = value ^ 1;
    let edited = text.replace(
        &format!("acked {lsn} e0 page {page} value {value} at"),
        &format!("acked {lsn} e0 page {page} value {wrong} at"),
    );
    assert_ne!(edited, text);
    let bad = dir.path().join("edited");
    std::fs::write(&bad, &edited).unwrap();
    let out = recover_dry_run(&data, &bad);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let expected = format!(
        "lost: LSN {lsn} of e0 (page {page} value {wrong}) was recovered as page {page} value \
         {value} of e0"
    );
    assert!(stdout(&out).contains(&expected), "{}", stdout(&out));
    assert!(stdout(&out).contains("CommittedSurvivesRecovery  VIOLATED: 1 of 3000"));

    // A torn last line is ignored with a warning; a malformed complete one is bad input.
    let torn = dir.path().join("torn");
    std::fs::write(&torn, format!("{text}acked 3001 e0 pa")).unwrap();
    let out = recover_dry_run(&data, &torn);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("the last line is torn"),
        "{}",
        stderr(&out)
    );
    let malformed = dir.path().join("malformed");
    let mut broken: Vec<&str> = text.lines().collect();
    broken[10] = "acked 10 e0 page 3 value ten at 5";
    std::fs::write(&malformed, broken.join("\n") + "\n").unwrap();
    let out = recover_dry_run(&data, &malformed);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("line 11: value \"ten\" is not a number"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"));
}

/// Starts `run --dir data` for long enough and waits (at most 60 s) for its first commit, so
/// that it holds the volume's lock; the process is killed when dropped.
fn a_running_writer(data: &Path) -> Process {
    let mut child = Process(
        Command::new(BIN)
            .args(["run", "--dir"])
            .arg(data)
            .args(["--records", "50000000", "--ack", "disk", "--replicas", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts"),
    );
    let stdout = child.0.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    // Drains the run's output to its end, so that the run never blocks on a full pipe.
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("committed ") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the run commits within 60 s");
    child
}

#[test]
fn a_running_volume_is_locked_against_a_second_run_and_a_recover_even_a_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let mut first = a_running_writer(&data);
    let pid = first.0.id();
    let busy = format!("volume {d} is in use by process {pid}");
    let cases: [&[&str]; 3] = [
        &["run", "--dir", d, "--records", "10"],
        &["recover", d],
        // A dry run takes the lock shared, which a writer's exclusive lock excludes.
        &["recover", "--dry-run", d],
    ];
    for args in cases {
        let started = Instant::now();
        let out = aurora_redo(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert!(stderr(&out).contains(&busy), "{args:?}: {}", stderr(&out));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{args:?} waited for the lock"
        );
        assert!(
            first.0.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
    }
    // Once the writer is gone (killed: the kernel drops its lock), the volume opens again.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let out = aurora_redo(&["recover", "--dry-run", d]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("verdict          consistent"));
}
