//! `aurora-redo run`: the engine live on a data directory, with figures and a final
//! verification after a restart from disk.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::history::History;
use crate::live::{self, RunOptions};
use crate::model_args::parse;
use aurora_redo_impl::disk::DiskFault;
use aurora_redo_model::types::{Epoch, Lsn, NodeId, STORAGE_NODES};
use aurora_redo_model::AckPolicy;

/// The line `run` prints when the commit point reaches `lsn` in `epoch`: `committed 17`, or
/// `committed 17 of e1` past the first epoch. `recover --acked` reads these lines back.
pub fn committed_line(lsn: Lsn, epoch: Epoch) -> String {
    if epoch == Epoch::FIRST {
        format!("committed {lsn}")
    } else {
        format!("committed {lsn} of {epoch}")
    }
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Records to write.
    #[arg(long, default_value_t = 10_000)]
    pub records: u64,
    /// Read replicas.
    #[arg(long, default_value_t = 2)]
    pub replicas: usize,
    /// When nodes acknowledge: on receipt into memory (`memory`, the seed) or once the record
    /// is fsynced (`disk`).
    #[arg(long, default_value = "memory", value_parser = parse::<AckPolicy>)]
    pub ack: AckPolicy,
    /// Data directory for the six segment files (default: a fresh temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Storage nodes to crash (and restart) during the run.
    #[arg(long, default_value_t = 0)]
    pub crash_nodes: usize,
    /// Probability that the network drops a message (duplicates and reorders at half of it).
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Seed of the fault injection.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Records per append batch (default 64; not with `--rate`, whose writes are one record each).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Concurrent client threads.
    #[arg(long, default_value_t = 1)]
    pub writers: usize,
    /// Open-loop load: issue N single-record writes per second on a fixed schedule, whether or
    /// not earlier ones have committed; commit latency counts from each write's scheduled time.
    #[arg(long, value_name = "N")]
    pub rate: Option<u64>,
    /// Inject a disk fault into a node's segment file: `S3=enospc@65536` (writes fail with
    /// ENOSPC once 65536 bytes were appended), `eio`, `enospc-fsync`, `eio-fsync` (the fsync
    /// fails); repeatable, one per node. A node whose disk fails stops; the run carries on
    /// while 4 nodes remain and exits 3 naming each failure once fewer do.
    #[arg(long, value_name = "NODE=FAULT", value_parser = parse_disk_fault)]
    pub disk_fault: Vec<(NodeId, DiskFault)>,
    /// On a --dir that holds a volume: let its recovery annul records that a write quorum holds
    /// above the recovery point (evidence of commits). Without it, such a recovery is refused
    /// with exit status 1 and nothing is written.
    #[arg(long)]
    pub accept_loss: bool,
    /// Write the run's history to FILE (created; it must not exist): one line per record a
    /// client was told is committed, written by that client when its wait returned, with the
    /// record's LSN, epoch, page, value and the milliseconds since the run started. Flushed
    /// every few milliseconds and fsynced at the end: a kill can lose its last lines, never
    /// invent one. `recover --acked FILE` judges each record.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
}

/// `S3=enospc@65536` (or `3=...`): a node and its disk fault.
fn parse_disk_fault(s: &str) -> Result<(NodeId, DiskFault), String> {
    let (node, fault) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected NODE=FAULT, e.g. S3=enospc@65536"))?;
    let index: u8 = node
        .strip_prefix('S')
        .unwrap_or(node)
        .parse()
        .ok()
        .filter(|&i| usize::from(i) < STORAGE_NODES)
        .ok_or_else(|| format!("{node:?}: a node is S0 to S{}", STORAGE_NODES - 1))?;
    Ok((NodeId(index), fault.parse()?))
}

pub fn run(args: RunArgs) -> ExitCode {
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => match tempfile::tempdir() {
            Ok(t) => {
                tmp = t;
                tmp.path().to_path_buf()
            }
            Err(e) => {
                eprintln!("error: cannot create a temporary data directory: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let mut opts = RunOptions::new(dir.clone());
    opts.records = args.records;
    opts.replicas = args.replicas;
    opts.ack = args.ack;
    opts.crash_nodes = args.crash_nodes;
    opts.drop_rate = args.drop_rate;
    opts.seed = args.seed;
    opts.accept_loss = args.accept_loss;
    if args.rate.is_some() && args.batch.is_some() {
        eprintln!("error: --batch does not apply with --rate (every write is one record)");
        return ExitCode::from(2);
    }
    opts.batch = if args.rate.is_some() {
        1
    } else {
        args.batch.unwrap_or(64)
    };
    opts.rate = args.rate;
    opts.writers = args.writers;
    opts.disk_faults = args.disk_fault.clone();
    if let Err(e) = live::validate(&opts) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    if let Some(path) = &args.history {
        match History::create(path) {
            Ok(h) => opts.history = Some(Arc::new(h)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let bar = indicatif::ProgressBar::new(args.records);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} committed {pos}/{len} [{bar:40}] {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    // Every acknowledged commit, as the commit point advances: `committed 17` (or `committed 17
    // of e1` past the first epoch), a line flushed at once so a reader sees it even if the
    // process is killed right after. Commits are a prefix, so the latest line covers every LSN
    // below it; the run polls the commit point every few milliseconds, which coalesces them.
    let printed = AtomicU64::new(0);
    let progress = |p: live::Progress| {
        bar.set_position(p.this_run);
        if printed.fetch_max(p.committed.0, Ordering::Relaxed) < p.committed.0 {
            bar.suspend(|| {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", committed_line(p.committed, p.epoch));
                let _ = out.flush();
            });
        }
    };
    let report = live::run(&opts, &progress);
    // The history ends with the run, however the run ends: what was acknowledged stays true.
    let history = opts.history.as_ref().map(|h| h.finish());
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            bar.abandon();
            eprintln!("error: {e}");
            if let Some(Err(h)) = history {
                eprintln!("error: {h}");
            }
            return ExitCode::from(e.exit_status());
        }
    };
    bar.finish();
    println!("data directory   {}", dir.display());
    if let Some(r) = &report.resumed {
        println!(
            "recovered        the volume at recovery point {} into epoch {}: {} records copied \
             to nodes that lacked them, {} annulled; writing from {}",
            r.point,
            r.epoch,
            r.copied,
            r.truncated,
            r.point.next()
        );
        for d in &r.damage {
            println!("repaired         {d}");
        }
    }
    println!(
        "records          {} written, commit point {}, ack {}, {} replicas",
        report.records, report.committed, opts.ack, opts.replicas
    );
    println!(
        "faults           {} node crashes, drop rate {}",
        report.crashes, opts.drop_rate
    );
    println!(
        "throughput       {:.0} records/s ({:.2} s)",
        report.records_per_sec,
        report.elapsed.as_secs_f64()
    );
    match opts.rate {
        Some(rate) => println!(
            "load             open loop, {rate} writes/s offered on a fixed schedule; latency \
             counts from each write's scheduled time (no coordinated omission)"
        ),
        None => println!(
            "load             closed loop, {} client(s), each waiting for its batch of {} to \
             commit before the next",
            opts.writers, opts.batch
        ),
    }
    print_percentiles("commit latency", &report.commit_latency);
    let lags = &report.replica_lag;
    print_percentiles("replica lag", &lags.lag);
    println!(
        "                 (per record and replica, from the writer's commit to the replica having \
         applied it; {} applies came first and count as 0; {} not timed)",
        lags.early, lags.missed
    );
    print_percentiles("lag from append", &lags.from_append);
    println!("                 (per record and replica, from the writer's append to the replica's apply)");
    println!("discards         {}", report.discards);
    for s in &report.stopped_nodes {
        println!("stopped          {s}; the run carried on without it");
        eprintln!("{s}");
    }
    for r in &report.recoveries {
        println!("recovery         {r}");
    }
    if let Some(first) = report.finding.first() {
        println!(
            "finding          {} moments when a committed record was on too few nodes for every \
             read quorum (expected under ack memory with crashes; see the README), first: {first}",
            report.finding.len()
        );
    }
    if let Some(Err(e)) = history {
        eprintln!("error: {e}; the history is incomplete");
        return ExitCode::from(1);
    }
    if report.failures.is_empty() {
        println!(
            "verified         all invariants held; after restart from disk every committed record \
             is on >= 4 disks and every replica's pages match the writer's"
        );
        ExitCode::SUCCESS
    } else {
        for f in &report.failures {
            eprintln!("VIOLATION: {f}");
        }
        ExitCode::from(1)
    }
}

/// One line per percentile, so each can be read (and grepped) on its own.
fn print_percentiles(what: &str, p: &live::Percentiles) {
    let ms = crate::latency::ms;
    println!("{what:<16} p50   {:>10.3} ms", ms(p.p50));
    println!("{:<16} p99   {:>10.3} ms", "", ms(p.p99));
    println!("{:<16} p99.9 {:>10.3} ms", "", ms(p.p999));
    println!(
        "{:<16} max   {:>10.3} ms ({} samples)",
        "",
        ms(p.max),
        p.samples
    );
}
