//! Honest verdicts: a search cut short is `incomplete` (exit status 3) unless the user accepts it,
//! the JSON and JUnit reports say so, fault budgets and thread counts are bounded, progress shows
//! on a pipe, and no Rust `Debug` text reaches the user.

mod common;
use common::{aurora_redo, stderr, stdout};
use quick_xml::events::Event;
use quick_xml::Reader;
use std::collections::BTreeMap;

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

#[test]
fn a_timed_out_check_is_incomplete() {
    let out = aurora_redo(&["check", "--preset", "full", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("INCOMPLETE: the search was cut short after")
            && text.contains("of ? states")
            && text.contains("no property is shown to hold"),
        "{text}"
    );
    assert!(
        !text.contains(" holds"),
        "nothing holds after a timeout:\n{text}"
    );

    let out = aurora_redo(&["check", "--preset", "full", "--timeout", "1", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let report = json(&out);
    assert_eq!(report["verdict"], "incomplete", "{report}");
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["complete"], false);
    assert_eq!(report["exit_status"], 3);
    assert!(report["incomplete_reason"]
        .as_str()
        .unwrap()
        .contains("time limit"));
    let verdicts: Vec<&str> = report["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["verdict"].as_str().unwrap())
        .collect();
    assert!(!verdicts.contains(&"holds"), "{verdicts:?}");
    assert!(verdicts.contains(&"unknown"), "{verdicts:?}");
}

#[test]
fn allow_incomplete_exits_0_and_still_says_incomplete() {
    let out = aurora_redo(&[
        "check",
        "--preset",
        "full",
        "--timeout",
        "1",
        "--allow-incomplete",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("INCOMPLETE:"), "{}", stdout(&out));
    let out = aurora_redo(&[
        "check",
        "--preset",
        "full",
        "--timeout",
        "1",
        "--allow-incomplete",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["verdict"], "incomplete");
}

#[test]
fn simulation_is_incomplete() {
    let out = aurora_redo(&[
        "check",
        "--preset",
        "default",
        "--strategy",
        "sim",
        "--timeout",
        "1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["verdict"], "incomplete");
    assert!(report["incomplete_reason"]
        .as_str()
        .unwrap()
        .contains("random walks"));
}

#[test]
fn an_exhaustive_pass_and_a_fail_say_so() {
    let out = aurora_redo(&["check", "--preset", "quick", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let report = json(&out);
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["complete"], true);
    let out = aurora_redo(&["check", "--preset", "quick"]);
    assert!(
        stdout(&out).contains("PASS: exhaustive search"),
        "{}",
        stdout(&out)
    );

    let out = aurora_redo(&[
        "check",
        "--preset",
        "quick",
        "--lsns",
        "2",
        "--bug",
        "commit-at-three",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["verdict"], "fail");
    let property = report["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "CommitOnlyAfterQuorum")
        .unwrap();
    assert_eq!(property["verdict"], "violated");
    let steps = property["steps"].as_array().unwrap();
    assert_eq!(steps[0]["number"], 1);
    assert_eq!(steps[0]["actor"], "W");
    assert_eq!(steps[0]["action"], "write");
    assert!(steps[0]["description"]
        .as_str()
        .unwrap()
        .starts_with("W writes LSN 1"));
    let delivery = steps
        .iter()
        .find(|s| s["action"] == "deliver")
        .expect("a delivery");
    let message = &delivery["message"];
    assert_eq!(message["type"], "Append");
    assert_eq!(message["from"], "W");
    assert_eq!(message["to"], delivery["actor"]);
    assert_eq!(message["lsn"], 1);
    assert_eq!(message["page"], 0);
    assert_eq!(message["value"], 101);
    assert_eq!(steps.last().unwrap()["action"], "commit");
}

#[test]
fn an_expected_violation_found_by_a_cut_short_search_passes() {
    // Random walks find the seeded bug: its counterexample is real, so the claim "ReplicaPrefix is
    // violated" is shown, though nothing is shown to hold.
    let args = [
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
        "--expect-violation",
        "ReplicaPrefix",
    ];
    let out = aurora_redo(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            "PASS: as expected, ReplicaPrefix is violated (its counterexample is real; the search \
             was cut short, so no other property is shown to hold)"
        ),
        "{}",
        stdout(&out)
    );
    // A cut-short search that does not find the expected violation (no bug: ReplicaPrefix
    // holds) supports nothing, even with --allow-incomplete.
    let mut holds: Vec<&str> = args.iter().copied().filter(|a| *a != "--bug").collect();
    holds.retain(|a| *a != "apply-uncommitted");
    holds.push("--allow-incomplete");
    let out = aurora_redo(&holds);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
}

/// Expecting one violation where another is violated too passes, and names the other.
#[test]
fn other_violations_are_reported_beside_the_expected_one() {
    let out = aurora_redo(&[
        "check",
        "--preset",
        "quick",
        "--bug",
        "commit-at-three",
        "--expect-violation",
        "CommitOnlyAfterQuorum",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            "PASS: as expected, CommitOnlyAfterQuorum is violated; also violated: \
             CommittedRecoverable (exhaustive search)"
        ),
        "{}",
        stdout(&out)
    );
}

/// A parsed JUnit file: the root's and each suite's attributes, and each test case's name,
/// classname and outcome (`passed`, `failure`, `skipped`).
#[derive(Default, Debug)]
struct Junit {
    root: BTreeMap<String, String>,
    suites: Vec<BTreeMap<String, String>>,
    cases: Vec<(String, String, String)>,
}

fn attributes(e: &quick_xml::events::BytesStart) -> BTreeMap<String, String> {
    e.attributes()
        .map(|a| {
            let a = a.expect("a well-formed attribute");
            (
                String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                a.unescape_value().unwrap().into_owned(),
            )
        })
        .collect()
}

fn parse_junit(xml: &str) -> Junit {
    let mut reader = Reader::from_str(xml);
    let mut junit = Junit::default();
    let mut depth = 0;
    let mut open_case: Option<(String, String, String)> = None;
    loop {
        let event = reader.read_event().expect("well-formed XML");
        let (e, empty) = match &event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(e) = e {
            let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
            match (depth, name.as_str()) {
                (0, "testsuites") => junit.root = attributes(e),
                (1, "testsuite") => junit.suites.push(attributes(e)),
                (2, "testcase") => {
                    let a = attributes(e);
                    let case = (a["name"].clone(), a["classname"].clone(), "passed".into());
                    if empty {
                        junit.cases.push(case);
                    } else {
                        open_case = Some(case);
                    }
                }
                (3, "failure" | "skipped") => {
                    open_case.as_mut().expect("inside a test case").2 = name.clone();
                }
                (2, "properties") | (3, "property") | (3, "system-out") => {}
                (d, other) => panic!("unexpected <{other}> at depth {d}"),
            }
            if !empty {
                depth += 1;
            }
        }
        match event {
            Event::End(e) => {
                depth -= 1;
                if e.name().as_ref() == b"testcase" {
                    junit.cases.push(open_case.take().unwrap());
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unbalanced XML");
    junit
}

fn temp_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("aurora-redo-verdicts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn property_names(args: &[&str]) -> Vec<String> {
    let mut args = args.to_vec();
    args.push("--json");
    json(&aurora_redo(&args))["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn junit_has_one_testcase_per_property_and_counts_that_match() {
    let file = temp_file("fail.xml");
    let args = [
        "check",
        "--preset",
        "quick",
        "--lsns",
        "2",
        "--bug",
        "commit-at-three",
    ];
    let mut with_junit = args.to_vec();
    with_junit.extend(["--junit", file.to_str().unwrap()]);
    let out = aurora_redo(&with_junit);
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&file).unwrap();
    let junit = parse_junit(&xml);
    let names = property_names(&args);
    assert_eq!(junit.suites.len(), 1);
    assert_eq!(
        junit.cases.iter().map(|c| c.0.clone()).collect::<Vec<_>>(),
        names
    );
    let failures = junit.cases.iter().filter(|c| c.2 == "failure").count();
    let skipped = junit.cases.iter().filter(|c| c.2 == "skipped").count();
    for counts in [&junit.root, &junit.suites[0]] {
        assert_eq!(counts["tests"], names.len().to_string());
        assert_eq!(counts["failures"], failures.to_string());
        assert_eq!(counts["skipped"], skipped.to_string());
        assert_eq!(counts["errors"], "0");
    }
    assert!(failures >= 1 && skipped == 0, "{junit:?}");
    assert!(junit
        .cases
        .iter()
        .all(|c| c.1 == "aurora-redo.check.quick+lsns=2+bug=commit-at-three"));
    assert!(
        xml.contains("1. W writes LSN 1") && xml.contains("-&gt;"),
        "the counterexample's numbered steps, escaped:\n{xml}"
    );

    // A cut-short search: every property it could not decide is skipped.
    let file = temp_file("incomplete.xml");
    let out = aurora_redo(&[
        "check",
        "--preset",
        "full",
        "--timeout",
        "1",
        "--junit",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let junit = parse_junit(&std::fs::read_to_string(&file).unwrap());
    let skipped = junit.cases.iter().filter(|c| c.2 == "skipped").count();
    assert!(skipped > 0, "{junit:?}");
    assert_eq!(junit.root["skipped"], skipped.to_string());
    assert_eq!(junit.root["failures"], "0");
    assert!(junit.cases.iter().all(|c| c.1 == "aurora-redo.check.full"));

    // A pass: no failure, nothing skipped.
    let file = temp_file("pass.xml");
    let out = aurora_redo(&[
        "check",
        "--preset",
        "quick",
        "--junit",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let junit = parse_junit(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(junit.root["failures"], "0");
    assert_eq!(junit.root["skipped"], "0");
    assert!(junit.cases.iter().all(|c| c.2 == "passed"));
    std::fs::remove_dir_all(file.parent().unwrap()).ok();
}

#[test]
fn progress_lines_appear_on_a_pipe() {
    let out = aurora_redo(&[
        "check",
        "--preset",
        "full",
        "--timeout",
        "2",
        "--progress-interval",
        "0.3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("progress: "))
        .unwrap_or_else(|| panic!("no progress line in:\n{err}"));
    for needle in ["states,", "unique,", "states/s,", "s elapsed"] {
        assert!(line.contains(needle), "{line}");
    }
}

#[test]
fn bounds_are_enforced_with_clear_messages() {
    let cases: &[(&[&str], &str)] = &[
        (&["check", "--threads", "0"], "at least 1"),
        (&["mutants", "--threads", "0"], "at least 1"),
        (&["explore", "--threads", "0"], "at least 1"),
        (
            &["check", "--storage-crashes", "200"],
            "--storage-crashes must be at most 3, not 200",
        ),
        (
            &["check", "--replica-crashes", "4"],
            "--replica-crashes must be at most 3, not 4",
        ),
        (
            &["check", "--az-outages", "9"],
            "--az-outages must be at most 3, not 9",
        ),
        (&["check", "--storage-crashes", "300"], "300"),
        (
            &["check", "--writer-crashes", "2"],
            "--writer-crashes is at most 1 for now, not 2",
        ),
    ];
    for (args, message) in cases {
        let out = aurora_redo(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("error"), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Rust `Debug` renderings that must not reach a user.
fn looks_like_debug(text: &str) -> Option<&'static str> {
    [
        "Some(", "None", "Record {", "{ node:", "{ from:", "Ok(", "Err(", " Memory", " Disk",
        " Dfs", " Bfs", " Sim", "{\"", "\"}",
    ]
    .into_iter()
    .find(|needle| text.contains(needle))
}

#[test]
fn no_debug_text_in_reports_and_errors() {
    let cases: &[&[&str]] = &[
        &["check", "--threads", "0"],
        &["check", "--storage-crashes", "200"],
        &["check", "--lsns", "99"],
        &["check", "--replicas", "9"],
        &["check", "--lost-nodes", "4"],
        &["check", "--ack", "tape"],
        &["check", "--bug", "no-such-bug"],
        &[
            "check",
            "--preset",
            "quick",
            "--expect-violation",
            "Nonsense",
        ],
        &[
            "check",
            "--preset",
            "quick",
            "--expect-violation",
            "CommittedRecoverable",
        ],
        &[
            "check",
            "--preset",
            "quick",
            "--ack",
            "disk",
            "--strategy",
            "bfs",
        ],
        &["check", "--preset", "full", "--timeout", "1"],
        &[
            "check",
            "--preset",
            "default",
            "--strategy",
            "sim",
            "--timeout",
            "1",
        ],
        &[
            "check",
            "--preset",
            "quick",
            "--storage-crashes",
            "1",
            "--expect-violation",
            "ReplicaPrefix",
        ],
        &["explore", "--addr", "not-an-address"],
    ];
    for args in cases {
        let out = aurora_redo(args);
        for (stream, text) in [("stdout", stdout(&out)), ("stderr", stderr(&out))] {
            // The configuration line names values as `ack=memory`.
            let text: String = text
                .lines()
                .filter(|l| !l.starts_with("configuration:"))
                .collect::<Vec<_>>()
                .join("\n");
            if let Some(needle) = looks_like_debug(&text) {
                panic!("{args:?} printed {needle:?} on {stream}:\n{text}");
            }
        }
    }
}

#[test]
fn explore_prints_the_port_it_bound_and_how_to_stop() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_aurora-redo"))
        .args(["explore", "--preset", "quick", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.starts_with("Explorer: "))
        .expect("an Explorer line");
    child.kill().ok();
    child.wait().ok();
    assert!(line.contains("Ctrl-C"), "{line}");
    let port: u16 = line
        .trim_start_matches("Explorer: http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_ne!(port, 0, "{line}");
}
