//! `aurora-redo recover DIR`: crash recovery of a volume on its segment files
//! (`aurora_redo_impl::volume`), with a verdict.
//!
//! It reads the six node files (a missing one is a lost node; one whose header cannot be read is
//! a damaged node, left out of the read), runs the read phase (recovery point, source, new epoch,
//! what each node gets copied and what is annulled), and, without `--dry-run`, the write phase,
//! which also rebuilds every lost or damaged node from the recovered log, so that `run --dir DIR`
//! carries on from there. It refuses to annul records that a write quorum holds above the
//! recovery point unless `--accept-loss` is given. It judges
//! LogAgreement (within `1..=R` every node that holds an LSN holds the recovered record, on the
//! files after the write phase, or as the plan predicts them under `--dry-run`) and, given the
//! acknowledged commits of a run (`--acked`), CommittedSurvivesRecovery.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::history;
use aurora_redo_impl::lock;
use aurora_redo_impl::volume::{
    self, Acked, Disagreement, Lost, Plan, Volume, VolumeError, Written,
};
use aurora_redo_model::types::{Epoch, Lsn, NodeId};
use serde_json::json;

/// Exit statuses of `recover`.
pub const RECOVER_EXIT_STATUS: &str = "\
Exit status:
  0  consistent: recovered (with --dry-run: planned), LogAgreement holds, every acknowledged
     commit of --acked survives, and the volume is writable; lost nodes, and nodes whose file
     cannot be read at all (bad magic, header or version), are rebuilt from the recovered log
     (a damaged file is moved aside to node-N.seg.damaged, never deleted)
  1  an invariant is broken: LogAgreement, or CommittedSurvivesRecovery (an acknowledged commit
     is lost; each loss is named by LSN); or the recovery refused: the new seal would annul
     records that a write quorum (4 or more nodes) holds above the recovery point, evidence of
     commits (each range is named with its holders). Nothing is written; --dry-run reports the
     same refusal with status 1. With --accept-loss the records are annulled (status 0)
  2  bad input: not a directory, no volume, a segment file that cannot be read (an I/O error),
     fewer than 3 readable node files (no read quorum), a damaged node file with fewer than 4
     readable ones (too few to rebuild it from; each damaged file is named with its problem,
     e.g. the old format without a file header), an unreadable or malformed --acked file
  3  consistent but not writable: fewer than 4 node files (the volume is readable, nothing was
     written), or the write phase reached fewer than 4 nodes";

#[derive(clap::Args, Debug)]
pub struct RecoverArgs {
    /// The data directory of the volume (the six node-N.seg segment files).
    pub dir: PathBuf,
    /// Compute and report the recovery without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Acknowledged commits to judge CommittedSurvivesRecovery on (repeatable): a history that
    /// `run --history` wrote (every acknowledged record with its epoch, page and value; each must
    /// be recovered as that very record; a torn last line is ignored with a warning), or the
    /// lines `run` prints (`committed 17`, `committed 17 of e1`; bare LSNs are first-epoch
    /// commits; other lines are ignored).
    #[arg(long, value_name = "FILE")]
    pub acked: Vec<PathBuf>,
    /// Annul records that a write quorum holds above the recovery point (evidence of commits),
    /// which recovery otherwise refuses to do.
    #[arg(long)]
    pub accept_loss: bool,
}

/// Reads acknowledged commits: `committed N`, `committed N of eK` and bare `N` lines; other lines
/// (the rest of `run`'s output) are skipped and counted.
pub fn parse_acked(text: &str) -> Result<(Vec<Acked>, usize), String> {
    let mut acked = Vec::new();
    let mut skipped = 0;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        let bad = || {
            format!(
                "line {}: cannot read {line:?} as an acknowledged commit",
                i + 1
            )
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let (lsn, epoch) = match words.as_slice() {
            ["committed", lsn] => (*lsn, None),
            ["committed", lsn, "of", epoch] => (*lsn, Some(*epoch)),
            [lsn] if lsn.bytes().all(|b| b.is_ascii_digit()) => (*lsn, None),
            _ if line.starts_with("committed") => return Err(bad()),
            _ => {
                skipped += usize::from(!line.is_empty());
                continue;
            }
        };
        let lsn: u64 = lsn.parse().map_err(|_| bad())?;
        let epoch = match epoch {
            None => Epoch::FIRST,
            Some(e) => e.parse::<Epoch>().map_err(|_| bad())?,
        };
        if lsn == 0 {
            return Err(bad());
        }
        acked.push(Acked::commit(Lsn(lsn), epoch));
    }
    Ok((acked, skipped))
}

/// What the write phase came to.
enum WritePhase {
    DryRun,
    NotWritable,
    /// The plan would annul records a write quorum holds, and the loss was not accepted.
    Refused(String),
    Failed(String),
    Done(Written),
}

/// Everything `recover` reports.
struct Report {
    volume: Volume,
    plan: Plan,
    write: WritePhase,
    disagreements: Vec<String>,
    /// `None`: no `--acked`.
    acked: Option<(Vec<Acked>, usize)>,
    lost: Vec<Lost>,
    accept_loss: bool,
}

impl Report {
    /// Whether the plan annuls records a write quorum holds without `--accept-loss`.
    fn refused(&self) -> bool {
        self.plan.refusal(self.accept_loss).is_some()
    }

    fn exit_status(&self) -> u8 {
        if !self.disagreements.is_empty() || !self.lost.is_empty() || self.refused() {
            1
        } else if matches!(self.write, WritePhase::NotWritable | WritePhase::Failed(_))
            || (matches!(self.write, WritePhase::DryRun) && !self.plan.writable())
        {
            3
        } else {
            0
        }
    }

    fn verdict(&self) -> String {
        match self.exit_status() {
            0 if self.plan.loss().is_some() => {
                let n: u64 = self.plan.at_risk.iter().map(|a| a.count()).sum();
                let done = if matches!(self.write, WritePhase::Done(_)) {
                    "annulled"
                } else {
                    "to be annulled"
                };
                format!("consistent, with a LOSS ACCEPTED: {n} records a write quorum holds {done}")
            }
            0 => "consistent".into(),
            1 => {
                let mut broken = Vec::new();
                if !self.disagreements.is_empty() {
                    broken.push("LogAgreement");
                }
                if !self.lost.is_empty() {
                    broken.push("CommittedSurvivesRecovery");
                }
                if broken.is_empty() {
                    return "REFUSED: recovery would annul records a write quorum holds (nothing \
                            written; --accept-loss annuls them)"
                        .into();
                }
                format!("INVARIANT BROKEN: {}", broken.join(", "))
            }
            _ => "consistent, readable but NOT WRITABLE".into(),
        }
    }
}

pub fn recover(args: RecoverArgs) -> ExitCode {
    match run(&args) {
        Ok(report) => {
            if args.json {
                println!("{}", json_of(&report, &args.dir));
            } else {
                print(&report, args.dry_run);
            }
            ExitCode::from(report.exit_status())
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Reads every `--acked` file (`None`: none given): the acknowledgements and the count of lines
/// skipped as not being any. A history's torn last line is a warning on stderr.
fn read_acked(files: &[PathBuf]) -> Result<Option<(Vec<Acked>, usize)>, String> {
    if files.is_empty() {
        return Ok(None);
    }
    let (mut all, mut skipped) = (Vec::new(), 0);
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let (acked, skip) = if history::is_history(&text) {
            let read = history::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            if let Some(torn) = read.torn {
                eprintln!(
                    "warning: {}: the last line is torn (no newline; the run was stopped while \
                     writing it) and is ignored: {torn:?}",
                    file.display()
                );
            }
            (read.acked, 0)
        } else {
            parse_acked(&text).map_err(|e| format!("{}: {e}", file.display()))?
        };
        all.extend(acked);
        skipped += skip;
    }
    Ok(Some((all, skipped)))
}

fn run(args: &RecoverArgs) -> Result<Report, String> {
    let acked = read_acked(&args.acked)?;
    let _lock = if !args.dir.is_dir() || !volume::exists(&args.dir) {
        None // not a volume: `inspect` says so, and nothing is written
    } else if args.dry_run {
        // A read-only look: a shared lock on the directory itself, creating nothing.
        Some(lock::shared(&args.dir).map_err(|e| e.to_string())?)
    } else {
        Some(lock::exclusive(&args.dir).map_err(|e| e.to_string())?)
    };
    let found = volume::inspect(&args.dir).map_err(|e| e.to_string())?;
    let plan = volume::plan(&found).map_err(|e| e.to_string())?;
    let (write, disagreements) = if args.dry_run {
        let d = plan.disagreements().iter().map(describe).collect();
        (WritePhase::DryRun, d)
    } else {
        match volume::write(&args.dir, &plan, args.accept_loss) {
            Ok(None) => (
                WritePhase::NotWritable,
                plan.disagreements().iter().map(describe).collect(),
            ),
            Ok(Some(written)) => {
                let judged = volume::judge_files(&args.dir, &plan, &written.nodes)
                    .map_err(|e| e.to_string())?;
                (WritePhase::Done(written), judged)
            }
            Err(VolumeError::WouldAnnul(m)) => (
                WritePhase::Refused(m),
                plan.disagreements().iter().map(describe).collect(),
            ),
            Err(e) => (
                WritePhase::Failed(e.to_string()),
                plan.disagreements().iter().map(describe).collect(),
            ),
        }
    };
    let lost = acked
        .as_ref()
        .map(|(a, _)| volume::committed_survives_recovery(&plan.log, a))
        .unwrap_or_default();
    Ok(Report {
        volume: found,
        plan,
        write,
        disagreements,
        acked,
        lost,
        accept_loss: args.accept_loss,
    })
}

fn describe(d: &Disagreement) -> String {
    format!("LogAgreement violated: {d}")
}

fn print(r: &Report, dry_run: bool) {
    let plan = &r.plan;
    print_nodes(r);
    println!(
        "read quorum      {} (every readable node)",
        join(&plan.read_quorum)
    );
    println!(
        "recovery point   {} (source {}: the highest sealed epoch, then the highest SCL)",
        plan.point, plan.source
    );
    println!(
        "epoch            highest seen {}, new {}",
        plan.highest_epoch, plan.epoch
    );
    for n in &plan.nodes {
        let mut parts = vec![format!("copy {} ({} records)", n.copy, n.copy.count())];
        if !n.copy_seals.is_empty() {
            let seals: Vec<String> = n.copy_seals.iter().map(|s| s.to_string()).collect();
            parts.push(format!("copy {}", seals.join(", ")));
        }
        parts.push(format!(
            "truncate {} ({} records)",
            n.truncate,
            n.truncate.count()
        ));
        println!("{:<17}{}", n.node.to_string(), parts.join("; "));
    }
    for node in &plan.rebuild {
        println!(
            "{:<17}rebuild: a new segment of the recovered log 1..={} ({} records)",
            node.to_string(),
            plan.point,
            plan.log.len()
        );
    }
    if let Some(loss) = plan.loss() {
        let what = if r.accept_loss {
            "ACCEPTED (--accept-loss): the write phase annuls them"
        } else {
            "REFUSED: nothing is written without --accept-loss"
        };
        println!("at risk          {loss}");
        println!("                 {what}");
    }
    print_write_phase(r, dry_run);
    if r.disagreements.is_empty() {
        println!(
            "LogAgreement     holds: within 1..={} every node that holds an LSN holds the \
             recovered record{}",
            plan.point,
            if dry_run {
                " (as the plan predicts)"
            } else {
                ""
            }
        );
    }
    for d in &r.disagreements {
        println!("LogAgreement     {d}");
    }
    match &r.acked {
        None => println!("CommittedSurvivesRecovery  not judged (no --acked file)"),
        Some((acked, skipped)) => {
            let highest = acked.iter().map(|a| a.lsn).max().unwrap_or(Lsn::ZERO);
            let whole = match acked.iter().filter(|a| a.record.is_some()).count() {
                0 => String::new(),
                n => format!("; {n} records from a history, each recovered as written"),
            };
            if r.lost.is_empty() {
                println!(
                    "CommittedSurvivesRecovery  holds: {} acknowledged commits (highest \
                     {highest}{whole}) all in the recovered log ({skipped} other lines skipped)",
                    acked.len()
                );
            } else {
                println!(
                    "CommittedSurvivesRecovery  VIOLATED: {} of {} acknowledged commits lost",
                    r.lost.len(),
                    acked.len()
                );
                for l in &r.lost {
                    println!("                 lost: {l}");
                }
            }
        }
    }
    println!("verdict          {}", r.verdict());
}

fn print_nodes(r: &Report) {
    println!(
        "volume           {} ({} of 6 node files readable)",
        r.volume.dir.display(),
        r.volume.present().len()
    );
    let rebuilt: Vec<NodeId> = match &r.write {
        WritePhase::Done(w) => w.rebuilt.iter().map(|(n, _)| *n).collect(),
        _ => Vec::new(),
    };
    let would = matches!(r.write, WritePhase::DryRun) && r.plan.writable() && !r.refused();
    for (i, view) in r.volume.nodes.iter().enumerate() {
        let node = NodeId(i as u8);
        let Some(v) = view else {
            let what = match r.volume.damage_of(node) {
                Some(d) => format!(
                    "DAMAGED, cannot be read at all ({}): a faulty node, not read",
                    d.error
                ),
                None => "missing: a lost node, not read".into(),
            };
            let then = if rebuilt.contains(&node) {
                "rebuilt from the recovered log"
            } else if would {
                "to be rebuilt from the recovered log"
            } else {
                "not written"
            };
            println!("{:<17}{what}; {then}", node.to_string());
            continue;
        };
        println!(
            "{:<17}{} records, SCL {}, sealed {}, highest epoch {}, damage: {}",
            node.to_string(),
            v.records,
            v.answer.scl,
            v.answer.sealed,
            v.max_epoch,
            v.damage_report().unwrap_or_else(|| "none".into())
        );
    }
}

fn print_write_phase(r: &Report, dry_run: bool) {
    let plan = &r.plan;
    let next = format!("from {} in {}", plan.point.next(), plan.epoch);
    match &r.write {
        WritePhase::DryRun if r.refused() => {
            println!("write phase      dry run: nothing written; recovery would refuse to write")
        }
        WritePhase::DryRun if plan.writable() => println!(
            "write phase      dry run: nothing written; recovery would write {} nodes{} and \
             accept writes {next}",
            plan.nodes.len() + plan.rebuild.len(),
            if plan.rebuild.is_empty() {
                String::new()
            } else {
                format!(" (rebuilding {})", join(&plan.rebuild))
            }
        ),
        WritePhase::DryRun | WritePhase::NotWritable => println!(
            "write phase      {}only {} nodes readable, fewer than the write quorum of 4: the \
             volume is readable but not writable",
            if dry_run {
                "dry run: nothing written; "
            } else {
                "nothing written: "
            },
            plan.nodes.len()
        ),
        WritePhase::Refused(e) => println!("write phase      refused: {e}"),
        WritePhase::Failed(e) => println!("write phase      {e}"),
        WritePhase::Done(w) => {
            println!(
                "write phase      {} written and fsynced (repaired, copied, sealed {} at {}); \
                 the volume accepts writes {next}",
                join(&w.nodes),
                plan.epoch,
                plan.point
            );
            for (n, aside) in &w.rebuilt {
                match aside {
                    Some(p) => println!(
                        "                 {n} rebuilt; its damaged file moved aside to {}",
                        p.display()
                    ),
                    None => println!("                 {n} rebuilt"),
                }
            }
            for (n, e) in &w.failed {
                println!("                 {n} not written: {e}");
            }
        }
    }
}

fn join(nodes: &[NodeId]) -> String {
    nodes
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn json_of(r: &Report, dir: &Path) -> String {
    let plan = &r.plan;
    let nodes: Vec<_> = r
        .volume
        .nodes
        .iter()
        .enumerate()
        .map(|(i, view)| {
            let node = NodeId(i as u8);
            let planned = plan.nodes.iter().find(|n| n.node == node);
            match view {
                None => json!({
                    "node": node.to_string(),
                    "present": false,
                    "damaged": r.volume.damage_of(node).map(|d| d.error.to_string()),
                    "rebuild": plan.rebuild.contains(&node),
                }),
                Some(v) => json!({
                    "node": node.to_string(),
                    "present": true,
                    "records": v.records,
                    "scl": v.answer.scl.0,
                    "sealed_epoch": v.answer.sealed.number(),
                    "highest_epoch": v.max_epoch.number(),
                    "damage": v.damage.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                    "copied": planned.map_or(0, |p| p.copy.count()),
                    "truncated": planned.map_or(0, |p| p.truncate.count()),
                    "truncated_ranges": planned.map(|p| ranges(&p.truncate.0)),
                }),
            }
        })
        .collect();
    let write = match &r.write {
        WritePhase::DryRun => json!({ "performed": false, "dry_run": true }),
        WritePhase::NotWritable => json!({ "performed": false, "dry_run": false }),
        WritePhase::Refused(e) => json!({ "performed": false, "refused": e }),
        WritePhase::Failed(e) => json!({ "performed": false, "error": e }),
        WritePhase::Done(w) => json!({
            "performed": true,
            "written": w.nodes.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            "rebuilt": w.rebuilt.iter().map(|(n, aside)| json!({
                "node": n.to_string(),
                "moved_aside": aside.as_ref().map(|p| p.display().to_string()),
            })).collect::<Vec<_>>(),
            "failed": w.failed.iter().map(|(n, e)| json!({ "node": n.to_string(), "error": e }))
                .collect::<Vec<_>>(),
        }),
    };
    let out = json!({
        "dir": dir.display().to_string(),
        "recovery_point": plan.point.0,
        "source": plan.source.to_string(),
        "read_quorum": plan.read_quorum.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "highest_epoch": plan.highest_epoch.number(),
        "epoch": plan.epoch.number(),
        "writable": plan.writable(),
        "nodes": nodes,
        "write_phase": write,
        "at_risk": plan.at_risk.iter().map(|a| json!({
            "first": a.first.0,
            "last": a.last.0,
            "holders": a.holders.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "accept_loss": r.accept_loss,
        "log_agreement": r.disagreements,
        "acked": r.acked.as_ref().map(|(a, _)| a.len()),
        "acked_records": r.acked.as_ref()
            .map(|(a, _)| a.iter().filter(|a| a.record.is_some()).count()),
        "lost": r.lost.iter().map(|l| json!({
            "lsn": l.acked.lsn.0,
            "epoch": l.acked.epoch.number(),
            "why": l.to_string(),
        })).collect::<Vec<_>>(),
        "verdict": r.verdict(),
        "exit_status": r.exit_status(),
    });
    serde_json::to_string_pretty(&out).expect("a report serializes")
}

fn ranges(r: &[(Lsn, Lsn)]) -> Vec<[u64; 2]> {
    r.iter().map(|(lo, hi)| [lo.0, hi.0]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acked_lines_parse_and_bad_ones_are_named() {
        let text = "committed 5\nrecords  3 written\ncommitted 9 of e2\n12\n\n";
        let (acked, skipped) = parse_acked(text).unwrap();
        assert_eq!(skipped, 1);
        assert_eq!(
            acked,
            vec![
                Acked::commit(Lsn(5), Epoch::numbered(0)),
                Acked::commit(Lsn(9), Epoch::numbered(2)),
                Acked::commit(Lsn(12), Epoch::numbered(0)),
            ]
        );
        for bad in [
            "committed x",
            "committed 3 of 2",
            "committed 0",
            "committed 1 2 3",
        ] {
            let err = parse_acked(bad).unwrap_err();
            assert!(err.contains("line 1"), "{err}");
        }
    }
}
