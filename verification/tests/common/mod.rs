//! Running the `aurora-redo` binary from the command-line tests.

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
