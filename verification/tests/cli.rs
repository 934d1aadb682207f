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
