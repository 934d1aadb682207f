//! Recovery of a volume whose node files are faulty: a file damaged past reading, a lost file,
//! and damage on every copy that would annul records a write quorum holds.

mod common;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use common::{aurora_redo, stderr, stdout};

/// Every file of `dir` but `LOCK`: its bytes and modification time, what a command that only
/// reads must leave as it was.
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        // The lock's pid file names the last writing command, not volume data.
        .filter(|e| e.as_ref().map_or(true, |e| e.file_name() != "LOCK"))
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let modified = e.metadata().unwrap().modified().unwrap();
            (name, (std::fs::read(e.path()).unwrap(), modified))
        })
        .collect()
}

/// A volume of `records` records written by `run --dir` (ack disk), in `parent/data`.
fn a_volume(parent: &Path, records: u64) -> PathBuf {
    let data = parent.join("data");
    let n = records.to_string();
    let out = run_on(&data, &["--records", &n]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("committed {records}\n")));
    data
}

fn run_on(data: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        "--dir",
        data.to_str().unwrap(),
        "--ack",
        "disk",
        "--replicas",
        "1",
    ];
    args.extend_from_slice(extra);
    aurora_redo(&args)
}

fn node(data: &Path, n: u8) -> PathBuf {
    data.join(format!("node-{n}.seg"))
}

fn zero_header(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[..6].fill(0);
    std::fs::write(path, &bytes).unwrap();
    bytes
}

fn all(out: &std::process::Output) -> String {
    stdout(out) + &stderr(out)
}

/// `recover --dry-run --acked` of every LSN up to `lsn` of `epoch`: the commits survive.
fn assert_survives(data: &Path, line: &str) {
    let acked = data.parent().unwrap().join("acked.txt");
    std::fs::write(&acked, format!("{line}\n")).unwrap();
    let out = aurora_redo(&[
        "recover",
        data.to_str().unwrap(),
        "--dry-run",
        "--acked",
        acked.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(
        stdout(&out).contains("CommittedSurvivesRecovery  holds: 1 acknowledged commits"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_node_file_with_a_zeroed_header_is_rebuilt_and_a_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = a_volume(dir.path(), 2000);
    let d = data.to_str().unwrap();
    let damaged = zero_header(&node(&data, 0));
    let before = snapshot(&data);

    let out = aurora_redo(&["recover", d, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let text = stdout(&out);
    for needle in [
        "5 of 6 node files readable",
        "S0               DAMAGED, cannot be read at all (not a segment file",
        "to be rebuilt from the recovered log",
        "recovery point   2000",
        "rebuild: a new segment of the recovered log 1..=2000 (2000 records)",
        "dry run: nothing written; recovery would write 6 nodes (rebuilding S0)",
        "verdict          consistent",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let out = aurora_redo(&["recover", d, "--dry-run", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["nodes"][0]["rebuild"], true);
    assert!(json["nodes"][0]["damaged"]
        .as_str()
        .unwrap()
        .contains("not a segment file"));
    assert_eq!(snapshot(&data), before, "recover --dry-run changed a file");

    let out = aurora_redo(&["recover", d]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let text = stdout(&out);
    assert!(
        text.contains("S0, S1, S2, S3, S4, S5 written and fsynced"),
        "{text}"
    );
    assert!(
        text.contains("S0 rebuilt; its damaged file moved aside to"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(data.join("node-0.seg.damaged")).unwrap(),
        damaged,
        "the damaged file is kept as it was"
    );
    assert!(!data.join("node-0.seg.rebuild").exists());
    assert_eq!(
        std::fs::read(node(&data, 0)).unwrap().len(),
        std::fs::read(node(&data, 1)).unwrap().len(),
        "S0 holds what S1 holds"
    );
    assert_survives(&data, "committed 2000");
    let out = aurora_redo(&["recover", d, "--dry-run"]);
    assert!(
        stdout(&out).contains("6 of 6 node files readable"),
        "{}",
        stdout(&out)
    );
    let out = run_on(&data, &["--records", "200"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(stdout(&out).contains("committed 2200 of e2\n"));
}

#[test]
fn run_on_a_volume_with_a_lost_and_a_damaged_node_rebuilds_both_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = a_volume(dir.path(), 1500);
    std::fs::remove_file(node(&data, 3)).unwrap();
    zero_header(&node(&data, 1));
    let out = run_on(&data, &["--records", "300"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let text = stdout(&out);
    assert!(text.contains("recovery point 1500 into epoch e1"), "{text}");
    assert!(text.contains("committed 1800 of e1\n"), "{text}");
    assert!(text.contains("verified"), "{text}");
    assert!(node(&data, 3).exists() && data.join("node-1.seg.damaged").exists());
    assert_survives(&data, "committed 1800 of e1");

    // Four damaged or lost: too few readable nodes to rebuild from, an error naming the files.
    for n in [0, 2] {
        zero_header(&node(&data, n));
    }
    std::fs::remove_file(node(&data, 5)).unwrap();
    let before = snapshot(&data);
    for args in [
        vec!["recover", data.to_str().unwrap()],
        vec!["run", "--dir", data.to_str().unwrap(), "--records", "10"],
    ] {
        let out = aurora_redo(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", all(&out));
        let text = all(&out);
        assert!(
            text.contains("node-0.seg: not a segment file")
                && text.contains("node-2.seg: not a segment file")
                && text.contains("only 3 node(s) readable"),
            "{args:?}: {text}"
        );
        assert_eq!(snapshot(&data), before, "{args:?} wrote");
    }
}

/// Flips the same 64 bytes in every node file: each loses the same records, and every node
/// still holds the records after them.
fn damage_every_copy(data: &Path) {
    for n in 0..6 {
        let mut bytes = std::fs::read(node(data, n)).unwrap();
        let at = bytes.len() / 3;
        for b in &mut bytes[at..at + 64] {
            *b ^= 0xff;
        }
        std::fs::write(node(data, n), &bytes).unwrap();
    }
}

#[test]
fn damage_on_every_copy_is_not_truncated_away_without_accept_loss() {
    let dir = tempfile::tempdir().unwrap();
    let data = a_volume(dir.path(), 3000);
    let d = data.to_str().unwrap();
    damage_every_copy(&data);
    let before = snapshot(&data);
    let holders = "held by S0, S1, S2, S3, S4, S5";
    for args in [
        vec!["recover", d, "--dry-run"],
        vec!["recover", d],
        vec!["run", "--dir", d, "--records", "10"],
    ] {
        let out = aurora_redo(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", all(&out));
        let text = all(&out);
        assert!(
            text.contains("a write quorum (4 or more nodes) holds above it")
                && text.contains(holders)
                && text.contains("..=3000 ("),
            "{args:?}: {text}"
        );
        assert_eq!(snapshot(&data), before, "{args:?} wrote");
    }
    let out = aurora_redo(&["recover", d, "--dry-run", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let point = json["recovery_point"].as_u64().unwrap();
    let at_risk = &json["at_risk"][0];
    assert!(point < 3000 && at_risk["first"].as_u64().unwrap() > point);
    assert_eq!(at_risk["last"], 3000);
    assert_eq!(at_risk["holders"].as_array().unwrap().len(), 6);
    let out = aurora_redo(&["recover", d]);
    assert!(
        stdout(&out).contains("verdict          REFUSED"),
        "{}",
        stdout(&out)
    );

    // Accepted: run recovers at the point, annuls the rest and carries on from it.
    let out = run_on(&data, &["--records", "100", "--accept-loss"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let text = stdout(&out);
    let resumed = format!("recovery point {point} into epoch e1");
    assert!(text.contains(&resumed), "{text}");
    assert!(
        text.contains(&format!("committed {} of e1\n", point + 100)),
        "{text}"
    );
    let out = aurora_redo(&["recover", d, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
}

#[test]
fn recover_accept_loss_annuls_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = a_volume(dir.path(), 2000);
    let d = data.to_str().unwrap();
    damage_every_copy(&data);
    let out = aurora_redo(&["recover", d, "--accept-loss", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(stdout(&out).contains("ACCEPTED (--accept-loss)"));
    let out = aurora_redo(&["recover", d, "--accept-loss"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let text = stdout(&out);
    assert!(
        text.contains("S0, S1, S2, S3, S4, S5 written and fsynced"),
        "{text}"
    );
    assert!(
        text.contains("consistent, with a LOSS ACCEPTED") && text.contains("annulled"),
        "{text}"
    );
    // The records are annulled on every node: a second recovery finds nothing at risk.
    let out = aurora_redo(&["recover", d, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(!stdout(&out).contains("at risk"), "{}", stdout(&out));
}
