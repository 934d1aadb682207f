//! `check --reduce`: the report says what was checked in place of what was asked, `all-faults`
//! is reduced by default, and a reduction that does not apply is refused, never dropped.

mod common;
use common::{assert_engine_violates, aurora_redo, stderr, stdout};

/// A small configuration with every fault that has a window and two replicas.
const SMALL: &[&str] = &[
    "check",
    "--preset",
    "faults",
    "--lsns",
    "1",
    "--replicas",
    "2",
    "--network",
    "unordered",
];

fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    SMALL.iter().chain(extra).copied().collect()
}

#[test]
fn a_reduced_check_names_both_configurations_and_keeps_the_verdicts() {
    let full = aurora_redo(&with(&["--reduce", "none"]));
    let reduced = aurora_redo(&with(&["--reduce", "one-replica,fault-windows"]));
    for out in [&full, &reduced] {
        assert_eq!(out.status.code(), Some(0), "{}", stdout(out));
    }
    let (full, reduced) = (stdout(&full), stdout(&reduced));
    assert!(!full.contains("checked as:"), "{full}");
    assert!(
        reduced.contains("configuration: lsns=1 replicas=2 ")
            && reduced.contains("checked as: lsns=1 replicas=1 ")
            && reduced.contains("instant-faults (a reduction with the same verdicts")
            && reduced.contains("  fault-windows: faults take no time")
            && reduced.contains("  one-replica: replicas only observe"),
        "{reduced}"
    );
    let verdicts = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("  always") || l.starts_with("  sometimes"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(verdicts(&full), verdicts(&reduced));
    assert!(verdicts(&full).len() >= 10);
    let unique = |text: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with("states:")).unwrap();
        line.split_whitespace().nth(3).unwrap().parse().unwrap()
    };
    assert!(unique(&reduced) * 4 < unique(&full), "{full}\n{reduced}");
}

#[test]
fn the_json_report_lists_the_reductions_and_the_configuration_asked() {
    let out = aurora_redo(&with(&["--reduce", "fault-windows", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["reductions"], serde_json::json!(["fault-windows"]));
    assert_eq!(report["config"]["instant_faults"], true);
    assert_eq!(report["reduced_from"]["instant_faults"], false);
    assert_eq!(report["reduced_from"]["replicas"], 2);

    let out = aurora_redo(&with(&["--json"]));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["reductions"], serde_json::json!([]));
    assert!(report["reduced_from"].is_null());
}

#[test]
fn all_faults_is_reduced_unless_told_otherwise() {
    // Cut short at once: only the header matters here.
    let out = aurora_redo(&["check", "--preset", "all-faults", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stdout(&out).contains("checked as: lsns=3 replicas=1 "));
    let out = aurora_redo(&[
        "check",
        "--preset",
        "all-faults",
        "--reduce",
        "none",
        "--timeout",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(!stdout(&out).contains("checked as:"), "{}", stdout(&out));
    // Random walks take the system as it is.
    let out = aurora_redo(&[
        "check",
        "--preset",
        "all-faults",
        "--strategy",
        "sim",
        "--walks",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(3), "walks are never exhaustive");
    let text = stdout(&out);
    assert!(
        text.contains("configuration: lsns=3 replicas=2 ") && !text.contains("checked as:"),
        "{text}"
    );
}

#[test]
fn a_reduction_that_does_not_apply_is_refused() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["check", "--preset", "default", "--reduce", "one-replica"],
            "claims liveness (EventuallyConverged)",
        ),
        (
            &["check", "--preset", "all-faults", "--reduce", "two-replicas"],
            "unknown reduction 'two-replicas' (expected one of: fault-windows, one-replica, or none)",
        ),
        (
            &["check", "--preset", "all-faults", "--reduce", ""],
            "unknown reduction ''",
        ),
        (
            &[
                "check",
                "--preset",
                "all-faults",
                "--strategy",
                "sim",
                "--reduce",
                "fault-windows",
            ],
            "--reduce goes with an exhaustive search",
        ),
    ];
    for (args, message) in cases {
        let out = aurora_redo(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
    }
}

/// A counterexample found with faults that take no time is written as the run with each crash's
/// restart, a run of a configuration the engine and the Explorer take as any other: here the
/// finding (memory acks lose a committed record to one storage crash), replayed on the engine.
#[test]
fn a_reduced_counterexample_is_written_with_its_restarts_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("finding.json");
    let out = aurora_redo(&with(&[
        "--ack",
        "memory",
        "--reduce",
        "fault-windows,one-replica",
        "--counterexample-out",
        file.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("CommittedRecoverable"));
    let trace: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(trace["config"]["instant_faults"], false, "{trace}");
    assert_eq!(trace["config"]["replicas"], 1);
    let actions: Vec<String> = trace["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].to_string())
        .collect();
    let crash = actions
        .iter()
        .position(|a| a.contains("CrashNode"))
        .unwrap_or_else(|| panic!("no crash in {actions:?}"));
    assert_eq!(
        actions[crash + 1],
        actions[crash].replace("CrashNode", "RestartNode")
    );
    assert_engine_violates(&file, "CommittedRecoverable");
}
