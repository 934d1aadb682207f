//! The Explorer in a real browser: `explore --counterexample FILE` for a seeded bug's
//! counterexample, loaded by headless Chromium, must show the violated invariant with its
//! evidence on the counterexample's last state, and the step that broke it.
//!
//! Chromium is required: `.ci/run` installs Debian's `chromium` when it is missing. Without it
//! these tests fail, saying so, unless `AURORA_REDO_NO_BROWSER=1` opts out explicitly. The
//! binary is `chromium` on the `PATH`, or the one `CHROMIUM` names.

use aurora_redo_model::Bug;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{explore_counterexample, write_counterexample, Process};

/// The Chromium binary, or `None` when the run opted out. Panics when it is missing.
fn chromium() -> Option<PathBuf> {
    if std::env::var_os("AURORA_REDO_NO_BROWSER").is_some_and(|v| v == "1") {
        eprintln!("AURORA_REDO_NO_BROWSER=1: the browser test is skipped on request");
        return None;
    }
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    });
    assert!(
        found.is_some(),
        "chromium is not installed, and the Explorer's browser test needs it: install it \
         (`apt-get install -y chromium`, as .ci/run does), point CHROMIUM at a Chromium binary, \
         or set AURORA_REDO_NO_BROWSER=1 to skip this test on purpose"
    );
    found
}

/// Serves `explore --counterexample file`; returns the server and the counterexample's URL once
/// the Explorer answers.
fn serve(file: &Path) -> (Process, String) {
    let (server, url) = explore_counterexample(file);
    let origin = &url[..url.find("/#").expect("a fragment")];
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("{origin}/.status")).call().is_err() {
        assert!(Instant::now() < deadline, "the Explorer never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, url)
}

/// The page at `url` after its scripts ran, as headless Chromium renders it.
fn rendered_page(chromium: &Path, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut browser = Process(
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                &format!("--user-data-dir={}", profile.path().display()),
                "--virtual-time-budget=5000",
                "--dump-dom",
                url,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts"),
    );
    let mut stdout = browser.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        let _ = stdout.read_to_string(&mut dom);
        dom
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    while browser.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "chromium did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// What the page shows as text: tags dropped, entities decoded, each run of white space one
/// space.
fn page_text(dom: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&gt;", ">")
        .replace("&lt;", "<")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_explorer_shows_what_commit_at_three_broke() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (file, counterexample) = write_counterexample(dir.path(), Bug::CommitAtThree);
    let last = &counterexample.steps.last().unwrap().description;
    // "W gets Ack from S3, S4, S5: commit point 1": the three nodes whose acks were counted.
    let acked = last
        .strip_prefix("W gets Ack from ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("the last step is not the commit: {last}"));
    let (_server, url) = serve(&file);
    let text = page_text(&rendered_page(&chromium, &url));
    let steps = counterexample.steps.len();
    for expected in [
        // The state view of the last state: the violation, its evidence, what it protects.
        "✗ VIOLATED: CommitOnlyAfterQuorum (broken by this step)".to_string(),
        format!("commit point 1, but only {acked} truly acked LSN 1"),
        "protects: The writer committed an LSN that 4 nodes did not truly acknowledge".to_string(),
        // The counterexample opened on its last state.
        format!("THIS STEP {last}"),
        // The per-actor view, zones and all.
        "AZ b S2".to_string(),
        "GHOST BOOKKEEPING".to_string(),
        // The diagram: its banner and the marked step.
        format!("✗ CommitOnlyAfterQuorum violated at step {steps}"),
        "✗ violates CommitOnlyAfterQuorum".to_string(),
    ] {
        assert!(
            text.contains(&expected),
            "the page does not show {expected:?}:\n{text}"
        );
    }
    // The acks counted for the commit are drawn, one arrow label per node.
    let arrows = text.matches(&format!("{steps}. Ack scl 1")).count();
    assert_eq!(arrows, acked.split(", ").count(), "{text}");
}

#[test]
fn the_explorer_shows_the_discard_of_discard_on_available() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (file, counterexample) = write_counterexample(dir.path(), Bug::DiscardOnAvailable);
    let last = &counterexample.steps.last().unwrap().description;
    assert!(last.contains("R0 discards LSN 1"), "{last}");
    let (_server, url) = serve(&file);
    let text = page_text(&rendered_page(&chromium, &url));
    let steps = counterexample.steps.len();
    for expected in [
        "✗ VIOLATED: NoDiscardBeforeFlush (broken by this step)".to_string(),
        "R0 discarded LSN 1, but no node has had it on disk".to_string(),
        format!("{steps}. R0 discards LSN 1"),
        format!("✗ NoDiscardBeforeFlush violated at step {steps}"),
    ] {
        assert!(
            text.contains(&expected),
            "the page does not show {expected:?}:\n{text}"
        );
    }
}
