//! The Explorer serves the model: start it on a free loopback port, run the check to completion
//! through its HTTP interface, and read the verdicts it reports.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(url: &str) -> Option<String> {
    ureq::get(url)
        .timeout(Duration::from_secs(5))
        .call()
        .ok()?
        .into_string()
        .ok()
}

#[test]
fn explorer_serves_and_checks_the_model() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_aurora-redo"))
            .args(["explore", "--preset", "quick", "--addr", &addr])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(&format!("{base}/.status")).is_none() {
        assert!(Instant::now() < deadline, "the Explorer never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = get(&format!("{base}/")).unwrap();
    assert!(
        page.contains("<html") || page.contains("<!DOCTYPE"),
        "no UI page"
    );
    let states = get(&format!("{base}/.states")).unwrap();
    assert!(
        states.contains("svg") || states.contains("state"),
        "{states}"
    );
    // The state is shown in words (no violation, then each actor), the raw state last.
    let init: serde_json::Value = serde_json::from_str(&states).unwrap();
    let text = init[0]["state"].as_str().unwrap();
    assert!(
        text.starts_with("No invariant is violated in this state."),
        "{text}"
    );
    assert!(
        text.contains("STORAGE NODES") && text.contains("AZ c  S4"),
        "{text}"
    );
    assert!(text.contains("RAW STATE\nState {"), "{text}");
    // A step's text says what the step did.
    let first = get(&format!("{base}/.states/0")).unwrap();
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    let outcome = first[0]["outcome"].as_str().unwrap();
    assert!(
        outcome.contains("THIS STEP\n  W writes LSN 1, sends Append to every node"),
        "{outcome}"
    );

    ureq::post(&format!("{base}/.runtocompletion"))
        .call()
        .unwrap();
    let status = loop {
        let text = get(&format!("{base}/.status")).unwrap();
        let status: serde_json::Value = serde_json::from_str(&text).unwrap();
        if status["done"] == true {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the Explorer's check never finished"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // The Explorer searches without symmetry reduction: 3,648 states where `check` visits 296
    // representatives.
    assert_eq!(status["unique_state_count"], 3648, "{status}");
    let properties = status["properties"].as_array().unwrap();
    let names: Vec<&str> = properties.iter().map(|p| p[1].as_str().unwrap()).collect();
    for expected in [
        "NoDiscardBeforeFlush",
        "CommitOnlyAfterQuorum",
        "CommittedRecoverable",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
    for p in properties {
        let kind = p[0].as_str().unwrap();
        if kind == "Always" {
            assert!(p[2].is_null(), "invariant {} has a counterexample", p[1]);
        }
    }
}
