//! Seeded swarms from the command line: `check --strategy sim --seed S` is reproducible (the
//! same seed and walk budget give the same walks, states and counterexample, on one thread or
//! two), its report replays, and `swarm-report` merges shards and rejects what is not one.

mod common;

use common::{aurora_redo, stderr, stdout};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A configuration where random walks find `recover-from-two` after some hundreds of walks for
/// most seeds, and after a few for some.
const BUGGY: &[&str] = &[
    "--preset",
    "quick",
    "--lsns",
    "2",
    "--writer-crashes",
    "1",
    "--bug",
    "recover-from-two",
];

/// The walk (0-based) at which `seed` breaks a property in BUGGY, one thread.
fn counterexample_walk(seed: u64) -> u64 {
    let (report, _) = sim(BUGGY, seed, 100_000, 1);
    report["simulation"]["counterexample_walk"]
        .as_u64()
        .unwrap_or_else(|| panic!("seed {seed} finds the bug within 100,000 walks"))
}

/// The first seed from `from` up whose counterexample comes after `walks` walks.
fn seed_found_after(walks: u64, from: u64) -> u64 {
    (from..from + 50)
        .find(|&seed| counterexample_walk(seed) >= walks)
        .unwrap_or_else(|| panic!("some seed from {from} takes {walks} walks or more"))
}

/// `check BUGGY --strategy sim --seed S --walks W --threads T --json` and its exit status.
fn sim(config: &[&str], seed: u64, walks: u64, threads: u32) -> (Value, Option<i32>) {
    let (seed, walks, threads) = (seed.to_string(), walks.to_string(), threads.to_string());
    let mut args = vec!["check"];
    args.extend_from_slice(config);
    args.extend_from_slice(&[
        "--strategy",
        "sim",
        "--seed",
        &seed,
        "--walks",
        &walks,
        "--threads",
        &threads,
        "--json",
    ]);
    let out = aurora_redo(&args);
    let report = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("a JSON report ({e}): {}", stderr(&out)));
    (report, out.status.code())
}

/// What a run covered and found, without its timing: states, walks, how it stopped, and each
/// property's verdict and steps.
fn outcome(report: &Value) -> Value {
    serde_json::json!({
        "states": report["states"],
        "max_depth": report["max_depth"],
        "walks": report["simulation"]["walks"],
        "stopped_by": report["simulation"]["stopped_by"],
        "counterexample_walk": report["simulation"]["counterexample_walk"],
        "properties": report["properties"],
    })
}

fn violated(report: &Value) -> Vec<String> {
    report["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .filter(|p| p["verdict"] == "violated")
        .map(|p| p["name"].as_str().expect("a name").to_string())
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_walks_and_counterexample_on_one_thread_or_two() {
    // Several rounds of walks on two threads (32 walks per thread per round) before it.
    let seed = seed_found_after(4 * 2 * 32, 1);
    let (one, status) = sim(BUGGY, seed, 100_000, 1);
    assert_eq!(status, Some(1), "a violation fails the check");
    assert_eq!(one["simulation"]["stopped_by"], "violation");
    assert_eq!(violated(&one), ["CommittedSurvivesRecovery"]);
    let walks = one["simulation"]["walks"].as_u64().expect("walks");
    assert_eq!(
        one["simulation"]["counterexample_walk"].as_u64(),
        Some(walks - 1),
        "the run ends with the walk that broke the property"
    );
    let (again, _) = sim(BUGGY, seed, 100_000, 1);
    let (two, _) = sim(BUGGY, seed, 100_000, 2);
    assert_eq!(outcome(&one), outcome(&again));
    assert_eq!(
        outcome(&one),
        outcome(&two),
        "two threads walk the same walks"
    );
}

#[test]
fn a_walk_budget_ends_the_run_and_seeds_differ() {
    let runs: Vec<Value> = (1..=3)
        .map(|seed| {
            let (report, status) = sim(&["--preset", "quick", "--lsns", "3"], seed, 40, 2);
            assert_eq!(status, Some(3), "no violation: incomplete, never a pass");
            assert_eq!(report["verdict"], "incomplete");
            assert_eq!(report["simulation"]["walks"], 40);
            assert_eq!(report["simulation"]["walk_budget"], 40);
            assert_eq!(report["simulation"]["stopped_by"], "walk-budget");
            assert_eq!(report["simulation"]["seed"], seed);
            report
        })
        .collect();
    let (again, _) = sim(&["--preset", "quick", "--lsns", "3"], 1, 40, 1);
    assert_eq!(outcome(&runs[0]), outcome(&again));
    let states: Vec<&Value> = runs.iter().map(|r| &r["states"]).collect();
    assert!(
        states[0] != states[1] || states[1] != states[2],
        "three seeds walked exactly as many states each: {states:?}"
    );
}

#[test]
fn the_reported_replay_command_finds_the_same_counterexample() {
    let (report, _) = sim(BUGGY, seed_found_after(1, 1), 100_000, 2);
    let command = report["simulation"]["replay_command"]
        .as_str()
        .expect("a replay command");
    let args: Vec<&str> = command
        .strip_prefix("aurora-redo ")
        .expect("it runs the tool")
        .split_whitespace()
        .chain(["--json"])
        .collect();
    let out = aurora_redo(&args);
    let replayed: Value = serde_json::from_str(&stdout(&out)).expect("a JSON report");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(outcome(&replayed), outcome(&report));
}

#[test]
fn seed_and_walks_belong_to_sim() {
    let out = aurora_redo(&["check", "--preset", "quick", "--walks", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--strategy sim"), "{}", stderr(&out));
    let out = aurora_redo(&["check", "--preset", "quick", "--seed", "0"]);
    assert_eq!(out.status.code(), Some(2), "--seed 0 is a seed too");
    let out = aurora_redo(&["check", "--strategy", "sim", "--walks", "0"]);
    assert_eq!(out.status.code(), Some(2), "a walk budget of 0 is refused");
}

fn write_shard(dir: &Path, config: &[&str], seed: u64, walks: u64) -> (PathBuf, Value) {
    let (report, _) = sim(config, seed, walks, 1);
    let file = dir.join(format!("shard-{seed}.json"));
    std::fs::write(&file, serde_json::to_string(&report).expect("JSON")).expect("written");
    (file, report)
}

fn swarm_report(files: &[&Path]) -> (Option<i32>, String, String) {
    let mut args = vec!["swarm-report", "--json"];
    args.extend(files.iter().map(|f| f.to_str().expect("a UTF-8 path")));
    let out = aurora_redo(&args);
    (out.status.code(), stdout(&out), stderr(&out))
}

#[test]
fn swarm_report_adds_up_shards_and_names_the_first_counterexample() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // The walks before a seed's counterexample are clean; another seed, run to its
    // counterexample, is broken.
    let clean_seed = seed_found_after(1, 1);
    let clean_walks = counterexample_walk(clean_seed);
    let broken_seed = clean_seed + 1;
    let (clean, clean_report) = write_shard(dir.path(), BUGGY, clean_seed, clean_walks);
    let (broken, broken_report) = write_shard(dir.path(), BUGGY, broken_seed, 100_000);
    assert!(violated(&clean_report).is_empty());
    assert_eq!(violated(&broken_report), ["CommittedSurvivesRecovery"]);
    let (status, out, err) = swarm_report(&[&broken, &clean]);
    assert_eq!(status, Some(1), "{err}");
    let merged: Value = serde_json::from_str(&out).expect("a JSON merged report");
    assert_eq!(merged["verdict"], "fail");
    assert_eq!(merged["shards"], 2);
    assert_eq!(
        merged["seeds"],
        serde_json::json!([clean_seed, broken_seed])
    );
    let sum = |field: &str| {
        clean_report[field].as_u64().expect("a count")
            + broken_report[field].as_u64().expect("a count")
    };
    assert_eq!(merged["states"].as_u64(), Some(sum("states")));
    assert_eq!(
        merged["walks"].as_u64(),
        Some(
            clean_report["simulation"]["walks"].as_u64().expect("walks")
                + broken_report["simulation"]["walks"]
                    .as_u64()
                    .expect("walks")
        )
    );
    let property = merged["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .find(|p| p["name"] == "CommittedSurvivesRecovery")
        .expect("the property");
    assert_eq!(property["verdict"], "violated");
    assert_eq!(property["seeds"], serde_json::json!([broken_seed]));
    let first = &merged["first_counterexample"];
    assert_eq!(first["seed"], broken_seed);
    assert_eq!(
        first["replay_command"],
        broken_report["simulation"]["replay_command"]
    );
    let steps = broken_report["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .find(|p| p["name"] == "CommittedSurvivesRecovery")
        .expect("the property")["steps"]
        .as_array()
        .expect("its steps")
        .len();
    assert_eq!(first["steps"].as_array().expect("steps").len(), steps);

    // One file holding both reports, as `parallel` collects them, merges the same way.
    let both = dir.path().join("both.json");
    let text = std::fs::read_to_string(&clean).expect("read")
        + &std::fs::read_to_string(&broken).expect("read");
    std::fs::write(&both, text).expect("written");
    let (status, out_both, err) = swarm_report(&[&both]);
    assert_eq!(status, Some(1), "{err}");
    let merged_both: Value = serde_json::from_str(&out_both).expect("a JSON merged report");
    assert_eq!(merged_both["states"], merged["states"]);
    assert_eq!(merged_both["seeds"], merged["seeds"]);
    assert_eq!(merged_both["properties"], merged["properties"]);

    // Without the broken shard nothing is shown either way.
    let other_seed = seed_found_after(1, broken_seed + 1);
    let other_walks = counterexample_walk(other_seed);
    let (other, _) = write_shard(dir.path(), BUGGY, other_seed, other_walks);
    let (status, out, _) = swarm_report(&[&clean, &other]);
    assert_eq!(status, Some(3), "a swarm that finds nothing is incomplete");
    let merged: Value = serde_json::from_str(&out).expect("a JSON merged report");
    assert_eq!(merged["verdict"], "incomplete");
    assert!(merged["first_counterexample"].is_null());
}

#[test]
fn swarm_report_rejects_what_is_not_a_shard() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (shard, _) = write_shard(dir.path(), BUGGY, 1, 5);
    let malformed = dir.path().join("malformed.json");
    std::fs::write(&malformed, "{\"schema_version\": 1, \"states\": ").expect("written");
    let (status, out, err) = swarm_report(&[&shard, &malformed]);
    assert_eq!(status, Some(2));
    assert!(out.is_empty(), "no report for bad input: {out}");
    assert!(
        err.contains("malformed.json") && err.contains("not a"),
        "{err}"
    );

    let truncated = dir.path().join("truncated.json");
    let text = std::fs::read_to_string(&shard).expect("read");
    std::fs::write(&truncated, format!("{text}{}", &text[..text.len() / 2])).expect("written");
    let (status, _, err) = swarm_report(&[&truncated]);
    assert_eq!(status, Some(2), "a second report cut short is refused");
    assert!(err.contains("(report 2)"), "{err}");

    let missing = dir.path().join("missing.json");
    let (status, _, err) = swarm_report(&[&missing]);
    assert_eq!(status, Some(2));
    assert!(
        err.contains("cannot read") && err.contains("missing.json"),
        "{err}"
    );

    let (status, _, err) = swarm_report(&[&shard, &shard]);
    assert_eq!(status, Some(2), "a seed twice would count its walks twice");
    assert!(err.contains("seed 1"), "{err}");

    let exhaustive = dir.path().join("dfs.json");
    let out = aurora_redo(&["check", "--preset", "quick", "--json"]);
    std::fs::write(&exhaustive, stdout(&out)).expect("written");
    let (status, _, err) = swarm_report(&[&exhaustive]);
    assert_eq!(status, Some(2));
    assert!(err.contains("not a swarm shard"), "{err}");

    let (other_config, _) = write_shard(dir.path(), &["--preset", "quick"], 2, 5);
    let (status, _, err) = swarm_report(&[&shard, &other_config]);
    assert_eq!(status, Some(2));
    assert!(err.contains("another configuration"), "{err}");
}
