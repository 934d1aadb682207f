//! The command line as a user meets it: exit statuses, bad input, the finding, Mermaid output.

mod common;
use common::{aurora_redo, stderr, stdout};

#[test]
fn quick_check_passes_and_reports_its_figures() {
    let out = aurora_redo(&["check", "--preset", "quick"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    for needle in [
        "configuration:",
        "unique: 296",
        "max depth:",
        "seconds:",
        "states/s:",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(text.contains("CommitOnlyAfterQuorum") && text.contains("holds"));
}

#[test]
fn bad_input_is_rejected_with_status_2() {
    let cases: &[&[&str]] = &[
        &["check", "--preset", "fast"],
        &["check", "--ack", "tape"],
        &["run", "--ack", "tape"],
        &["run", "--rate", "0"],
        &["run", "--rate", "abc"],
        &["run", "--rate", "-5"],
        &["run", "--rate", "100", "--batch", "8"],
        &["check", "--lsns", "many"],
        &["check", "--lsns", "0"],
        &["check", "--replicas", "9"],
        &["check", "--bug", "no-such-bug"],
        &["check", "--lost-nodes", "4"],
        &[
            "check",
            "--preset",
            "quick",
            "--expect-violation",
            "Nonsense",
        ],
        &["explore", "--addr", "not-an-address"],
        &["frobnicate"],
    ];
    let out = aurora_redo(&["run", "--ack", "tape"]);
    assert!(
        stderr(&out).contains("expected one of: memory, disk"),
        "{}",
        stderr(&out)
    );
    let out = aurora_redo(&["run", "--rate", "0"]);
    assert!(
        stderr(&out).contains("--rate must be between 1 and"),
        "{}",
        stderr(&out)
    );
    let out = aurora_redo(&["run", "--rate", "abc"]);
    assert!(
        stderr(&out).contains("invalid value 'abc' for '--rate"),
        "{}",
        stderr(&out)
    );
    for args in cases {
        let out = aurora_redo(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{args:?} panicked");
        assert!(stderr(&out).contains("error"), "{args:?} gave no message");
        assert!(
            !stderr(&out).contains("Err("),
            "{args:?} printed Debug text"
        );
    }
}

#[test]
fn a_seeded_bug_fails_the_check_with_a_counterexample() {
    let out = aurora_redo(&[
        "check",
        "--preset",
        "quick",
        "--lsns",
        "2",
        "--bug",
        "commit-at-three",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("CommitOnlyAfterQuorum is violated. Counterexample:"));
    assert!(text.contains("1. W writes LSN 1"), "{text}");
    assert!(text.contains("Why it matters:"));
}

#[test]
fn the_finding_is_asserted_and_drawn() {
    let dir = std::env::temp_dir().join(format!("aurora-redo-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let diagram = dir.join("finding.mmd");
    let out = aurora_redo(&[
        "check",
        "--preset",
        "quick",
        "--storage-crashes",
        "1",
        "--expect-violation",
        "CommittedRecoverable",
        "--mermaid",
        diagram.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let mermaid = std::fs::read_to_string(&diagram).unwrap();
    assert!(mermaid.starts_with("sequenceDiagram\n"));
    assert!(mermaid.contains("crash: memory lost"), "{mermaid}");

    // Expecting a property that holds fails.
    let out = aurora_redo(&[
        "check",
        "--preset",
        "quick",
        "--expect-violation",
        "CommittedRecoverable",
    ]);
    assert_eq!(out.status.code(), Some(1));

    // With disk acks, the same faults violate nothing.
    let out = aurora_redo(&[
        "check",
        "--preset",
        "quick",
        "--storage-crashes",
        "1",
        "--ack",
        "disk",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn json_reports_parse() {
    let out = aurora_redo(&["check", "--preset", "quick", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.trim_start().starts_with('{') && text.contains("\"unique_states\": 296"),
        "{text}"
    );
}

#[test]
fn simulation_runs_and_says_it_is_not_exhaustive() {
    let out = aurora_redo(&[
        "check",
        "--preset",
        "default",
        "--strategy",
        "sim",
        "--timeout",
        "1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "random walks are incomplete: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("(search not exhaustive)"));
    assert!(stdout(&out).contains("INCOMPLETE: the search was cut short after"));
    let out = aurora_redo(&[
        "check",
        "--preset",
        "quick",
        "--lsns",
        "2",
        "--bug",
        "apply-uncommitted",
        "--strategy",
        "sim",
        "--timeout",
        "2",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "random walks find the seeded bug: {}",
        stdout(&out)
    );
}

#[test]
fn an_open_loop_run_reports_tail_latencies() {
    let out = aurora_redo(&["run", "--rate", "2000", "--records", "2000"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "open loop, 2000 writes/s",
        "commit latency   p50",
        "p99.9",
        "replica lag      p50",
        "(2000 samples)",
        "verified",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

/// Every file of `dir` and its bytes: what a command that only reads must leave as it was.
/// Every file of `dir` but `LOCK`, which a writing command leaves naming its pid (not volume
/// data).
fn snapshot(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().map_or(true, |e| e.file_name() != "LOCK"))
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// A volume of `records` records written by `run --dir` (ack disk), in `parent/data`.
fn a_volume(parent: &std::path::Path, records: &str) -> std::path::PathBuf {
    let data = parent.join("data");
    let out = aurora_redo(&[
        "run",
        "--dir",
        data.to_str().unwrap(),
        "--records",
        records,
        "--ack",
        "disk",
        "--replicas",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("committed {records}\n")));
    data
}

#[test]
fn recover_dry_run_writes_nothing_and_recover_then_run_carries_on_in_the_next_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let data = a_volume(dir.path(), "1500");
    let path = |n: u8| data.join(format!("node-{n}.seg"));
    // Damage: S0 a torn tail, S1 a flipped byte in the middle, S2 loses its last 40 records'
    // bytes (as if they were never written).
    let mut s0 = std::fs::read(path(0)).unwrap();
    s0.extend_from_slice(&[9, 0, 0, 0, 1]);
    std::fs::write(path(0), &s0).unwrap();
    let mut s1 = std::fs::read(path(1)).unwrap();
    let mid = s1.len() / 2;
    s1[mid] ^= 0x21;
    std::fs::write(path(1), &s1).unwrap();
    let s2 = std::fs::read(path(2)).unwrap();
    std::fs::write(path(2), &s2[..s2.len() - 40 * 13]).unwrap();

    let before = snapshot(&data);
    let acked = dir.path().join("acked.txt");
    std::fs::write(&acked, "committed 700\ncommitted 1500\n").unwrap();
    let d = data.to_str().unwrap();
    let a = acked.to_str().unwrap();
    let out = aurora_redo(&["recover", d, "--dry-run", "--acked", a]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    for needle in [
        "recovery point   1500",
        "new e1",
        "torn tail of 5 bytes",
        "corrupt bytes",
        "dry run: nothing written",
        "LogAgreement     holds",
        "CommittedSurvivesRecovery  holds: 2 acknowledged commits",
        "verdict          consistent",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let out = aurora_redo(&["recover", d, "--dry-run", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["recovery_point"], 1500);
    assert_eq!(json["epoch"], 1);
    assert_eq!(json["write_phase"]["performed"], false);
    assert_eq!(snapshot(&data), before, "recover --dry-run changed a byte");

    // The real thing: repaired, copied, sealed; then run carries on from 1501 in e1.
    let out = aurora_redo(&["recover", d, "--acked", a]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("S0, S1, S2, S3, S4, S5 written and fsynced"));
    assert_ne!(snapshot(&data), before);
    let out = aurora_redo(&["recover", d, "--dry-run"]);
    let text = stdout(&out);
    assert!(text.contains("highest seen e1, new e2"), "{text}");
    assert!(
        text.contains("damage: none") && !text.contains("torn"),
        "{text}"
    );
    let out = aurora_redo(&["run", "--dir", d, "--records", "300", "--ack", "disk"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("recovery point 1500 into epoch e2"), "{text}");
    assert!(text.contains("committed 1800 of e2\n"), "{text}");
    assert!(text.contains("verified"), "{text}");
    std::fs::write(&acked, "committed 1500\ncommitted 1800 of e2\n").unwrap();
    let out = aurora_redo(&["recover", d, "--dry-run", "--acked", a]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // An acknowledgement the volume never had is reported lost, by LSN: exit 1.
    std::fs::write(&acked, "committed 1801 of e2\ncommitted 1700 of e1\n").unwrap();
    let out = aurora_redo(&["recover", d, "--dry-run", "--acked", a]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("lost: LSN 1801 of e2 is above the recovery point"),
        "{text}"
    );
    assert!(
        text.contains("lost: LSN 1700 of e1 was recovered as a record of e2"),
        "{text}"
    );
}

#[test]
fn recover_rejects_bad_input_and_a_volume_of_three_nodes_is_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let data = a_volume(dir.path(), "200");
    let d = data.to_str().unwrap();
    let expect = |args: &[&str], status: i32, needle: &str| {
        let out = aurora_redo(args);
        assert_eq!(
            out.status.code(),
            Some(status),
            "{args:?}: {}",
            stderr(&out)
        );
        let all = stdout(&out) + &stderr(&out);
        assert!(
            all.contains(needle),
            "{args:?}: missing {needle:?} in {all}"
        );
        assert!(!all.contains("panicked"), "{args:?} panicked");
    };
    let missing = dir.path().join("nope");
    expect(&["recover", missing.to_str().unwrap()], 2, "does not exist");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    expect(&["recover", empty.to_str().unwrap()], 2, "holds no volume");
    let acked = dir.path().join("acked.txt");
    std::fs::write(&acked, "committed 1\ncommitted one\n").unwrap();
    expect(
        &["recover", d, "--acked", acked.to_str().unwrap()],
        2,
        "line 2: cannot read \"committed one\"",
    );
    // A segment of the format before epochs (frames of bare records, no file header).
    let old = dir.path().join("old");
    std::fs::create_dir(&old).unwrap();
    let payload = [1u8, 0, 7]; // postcard {lsn 1, page 0, value 7}
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&crc32(&payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    for n in 0..6 {
        std::fs::write(old.join(format!("node-{n}.seg")), &frame).unwrap();
    }
    let before = snapshot(&old);
    expect(
        &["recover", old.to_str().unwrap()],
        2,
        "node-0.seg: written in the old segment format",
    );
    expect(
        &["run", "--dir", old.to_str().unwrap(), "--records", "10"],
        2,
        "old segment format",
    );
    assert_eq!(
        snapshot(&old),
        before,
        "an old-format volume is left as it is"
    );

    // Three node files: readable, not writable (exit 3, nothing written); two: no read quorum.
    for n in 3..6 {
        std::fs::remove_file(data.join(format!("node-{n}.seg"))).unwrap();
    }
    let before = snapshot(&data);
    expect(&["recover", d], 3, "readable but not writable");
    assert_eq!(snapshot(&data), before);
    expect(
        &["run", "--dir", d, "--records", "10"],
        2,
        "lost node files",
    );
    std::fs::remove_file(data.join("node-2.seg")).unwrap();
    expect(&["recover", d], 2, "needs a read quorum of 3");
}

/// CRC-32 (IEEE), bit by bit, as crc32fast computes it: for hand-made old-format frames.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
