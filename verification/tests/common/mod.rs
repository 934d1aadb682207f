//! Running the `aurora-redo` binary from the command-line tests. Each test file uses some of
//! these helpers and leaves the others unused.
#![allow(dead_code)]

use std::process::{Command, Output};

pub fn aurora_redo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aurora-redo"))
        .args(args)
        .output()
        .expect("the binary runs")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `replay FILE` runs the counterexample on the engine and reports `property` broken there.
pub fn assert_engine_violates(file: &std::path::Path, property: &str) {
    let out = aurora_redo(&["replay", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("{property} VIOLATED on the implementation")),
        "{}",
        stdout(&out)
    );
}

/// Writes the shortest counterexample of `bug` (its smallest configuration, breadth-first, as
/// `aurora-redo mutants` finds it) to `dir/<bug>.json`.
pub fn write_counterexample(
    dir: &std::path::Path,
    bug: aurora_redo_model::Bug,
) -> (
    std::path::PathBuf,
    aurora_redo::counterexample::CounterexampleFile,
) {
    let property = bug.expected_property();
    let report = aurora_redo::mutants::shortest_counterexample(bug);
    let file = dir.join(format!("{bug}.json"));
    let counterexample = aurora_redo::counterexample::CounterexampleFile::from_path(
        &report.config,
        Some(property),
        report.path(property).expect("the bug is caught"),
    );
    counterexample.write(&file).expect("the file is written");
    (file, counterexample)
}

/// A child process, killed when dropped.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `aurora-redo explore --counterexample file` on a port the system chooses; returns the
/// server and the counterexample's URL, as the tool prints them.
pub fn explore_counterexample(file: &std::path::Path) -> (Process, String) {
    use std::io::{BufRead, BufReader};
    let mut server = Process(
        std::process::Command::new(env!("CARGO_BIN_EXE_aurora-redo"))
            .args(["explore", "--counterexample"])
            .arg(file)
            .args(["--addr", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs"),
    );
    let line = BufReader::new(server.0.stdout.take().expect("piped"))
        .lines()
        .map(|l| l.expect("a line"))
        .find(|l| l.starts_with("counterexample ("))
        .expect("explore prints the counterexample's URL");
    let url = line[line.find("http://").expect("a URL")..].to_string();
    (server, url)
}
