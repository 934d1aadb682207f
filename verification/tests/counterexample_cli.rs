//! The counterexample workflow on the command line: `check --counterexample-out` writes a
//! counterexample file, `replay` drives the implementation through it (exit 1 with the broken
//! invariant, 0 clean, 3 infeasible), `explore --counterexample` prints the Explorer URL of it,
//! and bad counterexample files are rejected with exit status 2. The flags' earlier names
//! (`--trace-out`, `--trace`) and the earlier `format` value are still accepted.

use aurora_redo::counterexample::CounterexampleFile;
use std::path::{Path, PathBuf};

mod common;
use common::{
    assert_engine_violates, aurora_redo, explore_counterexample, stderr, stdout,
    write_counterexample,
};

/// The shortest counterexample of `bug`, written to `dir/<bug>.json`.
fn counterexample_of(dir: &Path, bug: &str) -> PathBuf {
    write_counterexample(dir, bug.parse().unwrap()).0
}

/// `check --counterexample-out` on the documented finding (ack `memory`, one storage crash): the
/// counterexample replays on the correct engine, which loses the committed record the same way.
#[test]
fn check_writes_a_counterexample_that_the_engine_reproduces() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("finding.json");
    let out = aurora_redo(&[
        "check",
        "--preset",
        "quick",
        "--storage-crashes",
        "1",
        "--expect-violation",
        "CommittedRecoverable",
        "--counterexample-out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(json["format"], "aurora-redo-counterexample");
    assert_eq!(json["version"], 1);
    assert_eq!(json["property"], "CommittedRecoverable");
    assert_eq!(json["config"]["storage_crashes"], 1);
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps[0]["action"], "Write");
    assert!(steps.iter().all(|s| s["description"].is_string()));
    assert!(steps.iter().any(|s| s["action"].get("CrashNode").is_some()));

    assert_engine_violates(&file, "CommittedRecoverable");
}

#[test]
fn a_counterexample_replays_on_the_implementation() {
    let dir = tempfile::tempdir().unwrap();
    let file = counterexample_of(dir.path(), "commit-at-three");
    let path = file.to_str().unwrap();
    let out = aurora_redo(&["replay", path, "--bug", "commit-at-three"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("CommitOnlyAfterQuorum VIOLATED on the implementation"),
        "{}",
        stdout(&out)
    );
    // The correct engine cannot commit at three acks: the commit step is infeasible.
    let out = aurora_redo(&["replay", path]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stdout(&out).contains("INFEASIBLE"), "{}", stdout(&out));

    // A replica that discards on `Available`: the correct engine takes every step, breaks nothing.
    let file = counterexample_of(dir.path(), "discard-on-available");
    let path = file.to_str().unwrap();
    let out = aurora_redo(&["replay", path]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("no invariant broken"));
    let out = aurora_redo(&["replay", path, "--bug", "discard-on-available"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("NoDiscardBeforeFlush VIOLATED"));
}

#[test]
fn bad_counterexample_files_are_rejected_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = counterexample_of(dir.path(), "commit-at-three");
    let text = std::fs::read_to_string(&good).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let write = |name: &str, content: &str| {
        let f = dir.path().join(name);
        std::fs::write(&f, content).unwrap();
        f.to_str().unwrap().to_string()
    };
    let garbage = write("garbage.json", "this is not json");
    let other = write(
        "other.json",
        r#"{"format": "something-else", "version": 1}"#,
    );
    json["version"] = 99.into();
    let future = write("future.json", &json.to_string());
    json["version"] = 1.into();
    // Commit before anything was written: not a step of the model.
    json["steps"][0]["action"] = serde_json::json!({ "Commit": 1 });
    let impossible = write("impossible.json", &json.to_string());
    json["steps"] = serde_json::json!([{ "action": { "Teleport": 3 } }]);
    let unknown = write("unknown.json", &json.to_string());
    let missing = dir
        .path()
        .join("missing.json")
        .to_str()
        .unwrap()
        .to_string();
    let good = good.to_str().unwrap().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["replay", &missing],
        vec!["replay", &garbage],
        vec!["replay", &other],
        vec!["replay", &future],
        vec!["replay", &impossible],
        vec!["replay", &unknown],
        vec!["replay", &good, "--bug", "no-such-bug"],
        vec!["explore", "--counterexample", &garbage],
        vec!["explore", "--counterexample", &impossible],
        vec!["explore", "--trace", &garbage],
    ];
    for args in cases {
        let out = aurora_redo(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("error"), "{args:?} gave no message");
        assert!(!stderr(&out).contains("panicked"), "{args:?} panicked");
    }
}

#[test]
fn explore_prints_the_url_of_a_counterexample() {
    let dir = tempfile::tempdir().unwrap();
    let file = counterexample_of(dir.path(), "commit-at-three");
    let (_server, url) = explore_counterexample(&file);
    let prefix_at = url.find("/#/steps/").expect("a path fragment");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        !url.starts_with("http://127.0.0.1:0/"),
        "the real port: {url}"
    );
    let prefix = &url[..prefix_at + "/#/steps/".len()];
    // The initial state's index, then one action index per step.
    let indices: Vec<usize> = url[prefix.len()..]
        .split('/')
        .map(|i| i.parse().unwrap())
        .collect();
    assert_eq!(indices.len(), 1 + 5, "{url}");
    assert_eq!(indices[0], 0);
}

/// Files and flags from before the rename still work: the old `format` value is read, and
/// `--trace-out` is an alias of `--counterexample-out`.
#[test]
fn the_earlier_names_are_still_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old.json");
    let out = aurora_redo(&[
        "check",
        "--preset",
        "quick",
        "--bug",
        "commit-at-three",
        "--trace-out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = std::fs::read_to_string(&file).unwrap();
    let old = text.replace("aurora-redo-counterexample", "aurora-redo-trace");
    assert_ne!(old, text);
    assert!(CounterexampleFile::parse(&old).is_ok());
}
