//! The Kubernetes manifest of a swarm (`deploy/swarm-job.yaml`), checked without a cluster: its
//! structure (an indexed Job whose pods never restart in place, a violation failing the whole
//! Job, the volume the script writes to), then its script, run with `sh` as a pod of completion
//! index 2 would run it, against this build of the tool, for one second.

mod common;

use common::aurora_redo;
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

fn manifest() -> Yaml {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/swarm-job.yaml");
    let text = std::fs::read_to_string(path).expect("deploy/swarm-job.yaml is readable");
    let mut documents = YamlLoader::load_from_str(&text).expect("deploy/swarm-job.yaml is YAML");
    assert_eq!(documents.len(), 1, "one object");
    documents.remove(0)
}

fn str_at<'a>(yaml: &'a Yaml, what: &str) -> &'a str {
    yaml.as_str()
        .unwrap_or_else(|| panic!("{what} is a string"))
}

fn int_at(yaml: &Yaml, what: &str) -> i64 {
    yaml.as_i64()
        .unwrap_or_else(|| panic!("{what} is an integer"))
}

/// The value of the container's environment variable `name`.
fn env_value<'a>(container: &'a Yaml, name: &str) -> &'a str {
    let env = container["env"]
        .as_vec()
        .expect("the container has an env list");
    let var = env
        .iter()
        .find(|v| v["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("env {name} is set"));
    str_at(&var["value"], name)
}

#[test]
fn the_swarm_job_is_an_indexed_job_that_stops_at_the_first_counterexample() {
    let job = manifest();
    assert_eq!(str_at(&job["apiVersion"], "apiVersion"), "batch/v1");
    assert_eq!(str_at(&job["kind"], "kind"), "Job");
    assert!(!str_at(&job["metadata"]["name"], "metadata.name").is_empty());
    let spec = &job["spec"];
    assert_eq!(
        str_at(&spec["completionMode"], "completionMode"),
        "Indexed",
        "one seed per completion index"
    );
    let completions = int_at(&spec["completions"], "completions");
    let parallelism = int_at(&spec["parallelism"], "parallelism");
    assert!(completions >= 1 && (1..=completions).contains(&parallelism));
    let pod = &spec["template"]["spec"];
    assert_eq!(
        str_at(&pod["restartPolicy"], "restartPolicy"),
        "Never",
        "a pod failure policy needs restartPolicy Never"
    );
    let containers = pod["containers"].as_vec().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let name = str_at(&container["name"], "container name");
    assert!(!str_at(&container["image"], "image").is_empty());

    // A violation (exit 1) and bad options (exit 2) fail the Job at once.
    let rules = spec["podFailurePolicy"]["rules"]
        .as_vec()
        .expect("a pod failure policy");
    let fail_job = rules
        .iter()
        .find(|r| r["action"].as_str() == Some("FailJob"))
        .expect("a FailJob rule");
    let on_exit = &fail_job["onExitCodes"];
    assert_eq!(str_at(&on_exit["containerName"], "containerName"), name);
    assert_eq!(str_at(&on_exit["operator"], "operator"), "In");
    let codes: Vec<i64> = on_exit["values"]
        .as_vec()
        .expect("exit codes")
        .iter()
        .map(|c| int_at(c, "an exit code"))
        .collect();
    assert!(codes.contains(&1) && codes.contains(&2), "{codes:?}");

    // The script writes into the mounted results volume, which is a claim.
    let results = env_value(container, "RESULTS");
    let mounts = container["volumeMounts"].as_vec().expect("volume mounts");
    let mount = mounts
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(results))
        .expect("RESULTS is a mounted volume");
    let volume_name = str_at(&mount["name"], "mount name");
    let volumes = pod["volumes"].as_vec().expect("volumes");
    let volume = volumes
        .iter()
        .find(|v| v["name"].as_str() == Some(volume_name))
        .expect("the mounted volume is declared");
    assert!(!str_at(&volume["persistentVolumeClaim"]["claimName"], "claimName").is_empty());
    env_value(container, "BASE_SEED")
        .parse::<u64>()
        .expect("BASE_SEED is a whole number");
    env_value(container, "BUDGET_SECONDS")
        .parse::<u64>()
        .expect("BUDGET_SECONDS is a whole number of seconds");
}

#[test]
fn the_swarm_jobs_script_runs_the_seed_of_its_completion_index() {
    let job = manifest();
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let command: Vec<&str> = container["command"]
        .as_vec()
        .expect("a command")
        .iter()
        .map(|c| str_at(c, "a command word"))
        .collect();
    let args = container["args"].as_vec().expect("args");
    assert_eq!(args.len(), 1, "one script");
    // Kubernetes reduces `$$` to `$` in args; with `$$` used for every `$(`, nothing else in the
    // script is a Kubernetes substitution.
    let script = str_at(&args[0], "the script").replace("$$", "$");
    let base: u64 = env_value(container, "BASE_SEED").parse().expect("a seed");
    let results = tempfile::tempdir().expect("a temporary directory");
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_aurora-redo"));
    let path = format!(
        "{}:{}",
        binary.parent().expect("a directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = Command::new(command[0])
        .args(&command[1..])
        .arg(&script)
        .env("PATH", path)
        .env("JOB_COMPLETION_INDEX", "2")
        .env("BASE_SEED", base.to_string())
        .env("BUDGET_SECONDS", "1")
        .env("CHECK_OPTIONS", env_value(container, "CHECK_OPTIONS"))
        .env("RESULTS", results.path())
        .status()
        .expect("sh runs");
    assert!(
        matches!(status.code(), Some(0 | 1)),
        "nothing found (0, --allow-incomplete) or a violation (1), not {status:?}"
    );
    let seed = base + 2;
    let shard = results.path().join(format!("shard-{seed}.json"));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&shard).expect("the shard's report is written"),
    )
    .expect("a JSON report");
    assert_eq!(report["simulation"]["seed"], seed);
    assert_eq!(report["strategy"], "sim");
    let out = aurora_redo(&["swarm-report", shard.to_str().expect("a UTF-8 path")]);
    assert!(
        matches!(out.status.code(), Some(1 | 3)),
        "swarm-report reads the shard: {out:?}"
    );
}
