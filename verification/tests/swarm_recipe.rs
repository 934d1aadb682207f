//! The swarm recipe of docs/swarms.md on all local cores ("All local cores"), run as
//! written with GNU `parallel` (which `.ci/run` installs), on two cores, against this build of
//! the tool: the seeded bug is found and `swarm-report` names its first counterexample.

use std::process::Command;

/// The shell block that follows `marker` in docs/swarms.md.
fn readme_block(marker: &str) -> String {
    let readme = include_str!("../../docs/swarms.md");
    let start = readme
        .find(marker)
        .unwrap_or_else(|| panic!("docs/swarms.md has '{marker}'"));
    let rest = &readme[start..];
    let open = rest.find("```sh\n").expect("a shell block follows") + "```sh\n".len();
    let close = rest[open..].find("```").expect("the block ends");
    rest[open..open + close].to_string()
}

#[test]
fn the_readmes_parallel_recipe_finds_the_seeded_bug() {
    let parallel = Command::new("parallel").arg("--version").output();
    assert!(
        parallel
            .is_ok_and(|o| o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("GNU parallel")),
        "GNU parallel is needed (Debian's `parallel` package; .ci/run installs it)"
    );
    let block = readme_block("**All local cores**");
    assert!(block.contains("| parallel --jobs"), "{block}");
    let binary = env!("CARGO_BIN_EXE_aurora-redo");
    // The tool is already built; two jobs as on this project's machines.
    let script: String = block
        .lines()
        .filter(|l| !l.starts_with("cargo build"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("target/release/aurora-redo", binary)
        .replace("\"$(nproc)\"", "2");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .output()
        .expect("bash runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "swarm-report finds a violation:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("CommittedSurvivesRecovery      VIOLATED"),
        "{text}"
    );
    assert!(
        text.contains("FAIL: the first counterexample (lowest seed) is seed "),
        "{text}"
    );
    assert!(text.contains("replay: aurora-redo check "), "{text}");
}
