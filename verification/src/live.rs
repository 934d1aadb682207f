//! A live run of the engine on a data directory: real segment files and fsync, client threads,
//! a timer thread, crash injection, then a verification after a clean shutdown and a restart
//! from disk. An application of the engine on real threads (std only), not engine code: the
//! `aurora-redo run` and `bench` subcommands are thin wrappers around it.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use aurora_redo_impl::disk::{Disk, FileDisk};
use aurora_redo_impl::engine::Engine;
use aurora_redo_impl::faults::FaultConfig;
use aurora_redo_impl::monitor::Monitor;
use aurora_redo_impl::observer::{NoObserver, Observer};
use aurora_redo_impl::segment::Segment;
use aurora_redo_impl::{AckPolicy, Config, ImplBug};
use aurora_redo_model::quorum::quorum_watermark;
use aurora_redo_model::types::{Lsn, NodeId, PageId, ReplicaId, STORAGE_NODES};

/// What to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub records: u64,
    pub replicas: usize,
    pub ack: AckPolicy,
    /// The data directory (created if missing); must be empty of other files' names we use.
    pub dir: PathBuf,
    /// How many storage nodes to crash (each one restarted later) during the run.
    pub crash_nodes: usize,
    /// Per-message probability of a drop; duplicates and reorders happen at half this rate.
    pub drop_rate: f64,
    pub seed: u64,
    /// Client threads appending concurrently.
    pub writers: usize,
    /// Records per append batch (each client waits for its batch to commit before the next).
    pub batch: usize,
    pub bug: Option<ImplBug>,
    /// Skip the monitor (for benchmarks: it serialises every event through one lock).
    pub monitor: bool,
}

impl RunOptions {
    pub fn new(dir: PathBuf) -> RunOptions {
        RunOptions {
            records: 10_000,
            replicas: 2,
            ack: AckPolicy::Memory,
            dir,
            crash_nodes: 0,
            drop_rate: 0.0,
            seed: 1,
            writers: 1,
            batch: 64,
            bug: None,
            monitor: true,
        }
    }
}

/// Latency percentiles.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub samples: usize,
}

impl Percentiles {
    pub fn of(mut samples: Vec<Duration>) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            max: samples[samples.len() - 1],
            samples: samples.len(),
        }
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} samples)",
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            self.samples
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What a run measured and verified.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub records: u64,
    pub committed: Lsn,
    pub elapsed: Duration,
    pub records_per_sec: f64,
    /// Append-to-commit latency, per batch.
    pub commit_latency: Percentiles,
    /// Time from a commit to each replica having applied it (sampled).
    pub replica_lag: Percentiles,
    /// Damage reports from segment recoveries (node restarts), if any.
    pub recoveries: Vec<String>,
    pub crashes: usize,
    pub discards: u64,
    /// Invariant violations and failed final checks; empty means the run verified.
    pub failures: Vec<String>,
    /// Moments when a committed record was readable by fewer than every read quorum: the
    /// memory-ack finding, expected (and tolerated) under ack `memory` with node crashes.
    pub finding: Vec<String>,
}

/// Why a run could not start.
#[derive(Debug)]
pub enum RunError {
    /// The options or the directory are unusable (exit 2).
    BadInput(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::BadInput(m) => write!(f, "{m}"),
        }
    }
}

fn segment_path(dir: &Path, node: NodeId) -> PathBuf {
    dir.join(format!("node-{}.seg", node.0))
}

fn open_disks(dir: &Path) -> Result<Vec<Arc<dyn Disk>>, RunError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        RunError::BadInput(format!("cannot use data directory {}: {e}", dir.display()))
    })?;
    NodeId::all()
        .map(|n| {
            let path = segment_path(dir, n);
            FileDisk::open(&path)
                .map(|d| Arc::new(d) as Arc<dyn Disk>)
                .map_err(|e| RunError::BadInput(format!("cannot open {}: {e}", path.display())))
        })
        .collect()
}

/// Validates options that the type system does not.
pub fn validate(opts: &RunOptions) -> Result<(), RunError> {
    if opts.records == 0 {
        return Err(RunError::BadInput("--records must be at least 1".into()));
    }
    if opts.replicas == 0 || opts.replicas > 64 {
        return Err(RunError::BadInput(
            "--replicas must be between 1 and 64".into(),
        ));
    }
    if !(0.0..0.5).contains(&opts.drop_rate) {
        return Err(RunError::BadInput(
            "--drop-rate must be a probability in [0, 0.5)".into(),
        ));
    }
    if opts.crash_nodes > 2 * STORAGE_NODES {
        return Err(RunError::BadInput(format!(
            "--crash-nodes must be at most {}",
            2 * STORAGE_NODES
        )));
    }
    if opts.writers == 0 || opts.batch == 0 {
        return Err(RunError::BadInput(
            "writers and batch must be at least 1".into(),
        ));
    }
    if let Ok(mut entries) = std::fs::read_dir(&opts.dir) {
        if entries.any(|e| {
            e.map(|e| !e.file_name().to_string_lossy().starts_with("node-"))
                .unwrap_or(false)
        }) {
            return Err(RunError::BadInput(format!(
                "data directory {} holds files that are not segments; use an empty directory",
                opts.dir.display()
            )));
        }
    }
    Ok(())
}

/// Ticks the engine every 2 ms (its retries: re-sends, re-pulls) until `stop` is set.
fn spawn_ticker(engine: &Arc<Engine>, stop: &Arc<AtomicBool>) -> thread::JoinHandle<()> {
    let (engine, stop) = (engine.clone(), stop.clone());
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(2));
            engine.tick();
        }
    })
}

/// Runs the engine live. `progress` is called with the number of committed records.
pub fn run(opts: &RunOptions, progress: &(dyn Fn(u64) + Sync)) -> Result<RunReport, RunError> {
    validate(opts)?;
    let disks = open_disks(&opts.dir)?;
    let mut cfg = Config::new(opts.ack, opts.replicas).with_bug(opts.bug);
    cfg.max_batch = 4096;
    let faults = FaultConfig {
        drop: opts.drop_rate,
        duplicate: opts.drop_rate / 2.0,
        reorder: opts.drop_rate / 2.0,
        seed: opts.seed,
    };
    // Under ack `memory` a node crash can leave a committed record on too few nodes for a moment:
    // the documented finding, recorded but not a failure of this run.
    let monitor = if opts.ack == AckPolicy::Memory && opts.crash_nodes > 0 {
        Monitor::new(false).tolerating("CommittedRecoverable")
    } else {
        Monitor::new(false)
    };
    let monitor = Arc::new(monitor);
    let observer: Arc<dyn Observer> = if opts.monitor {
        monitor.clone()
    } else {
        Arc::new(NoObserver)
    };
    let (engine, recovered) = Engine::start(cfg, faults, disks, observer)
        .map_err(|e| RunError::BadInput(format!("cannot start on {}: {e}", opts.dir.display())))?;
    if recovered.iter().any(|r| !r.records.is_empty()) {
        engine.shutdown();
        return Err(RunError::BadInput(format!(
            "data directory {} already holds a log; use an empty directory",
            opts.dir.display()
        )));
    }
    let engine = Arc::new(engine);
    let stop = Arc::new(AtomicBool::new(false));
    let appended = Arc::new(AtomicU64::new(0));
    let started = Instant::now();

    let ticker = spawn_ticker(&engine, &stop);
    let lag_sampler = {
        let (engine, stop) = (engine.clone(), stop.clone());
        let replicas = opts.replicas;
        thread::spawn(move || {
            let mut pending: Vec<VecDeque<(Lsn, Instant)>> = vec![VecDeque::new(); replicas];
            let mut lags = Vec::new();
            let mut last_commit = Lsn::ZERO;
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(1));
                let c = engine.commit_point();
                let now = Instant::now();
                for (r, q) in pending.iter_mut().enumerate() {
                    if c > last_commit {
                        q.push_back((c, now));
                    }
                    let applied = engine.with_replica(ReplicaId(r as u8), |rep| rep.applied());
                    while let Some(&(l, t)) = q.front() {
                        if applied < l {
                            break;
                        }
                        lags.push(now - t);
                        q.pop_front();
                    }
                }
                last_commit = c;
            }
            lags
        })
    };
    let chaos = {
        let (engine, stop, appended) = (engine.clone(), stop.clone(), appended.clone());
        let (n, total) = (opts.crash_nodes, opts.records);
        thread::spawn(move || {
            // Node k crashes at (k+1)/(n+1) of the run, alternating zones, and restarts after
            // another tenth of the records (or at the end).
            let order = [0u8, 2, 4, 1, 3, 5];
            let mut plan: Vec<(u64, u64, NodeId)> = (0..n)
                .map(|k| {
                    let at = total * (k as u64 + 1) / (n as u64 + 1);
                    (at, at + total / 10, NodeId(order[k % STORAGE_NODES]))
                })
                .collect();
            let mut down: Vec<(u64, NodeId)> = Vec::new();
            let mut notes = Vec::new();
            let mut crashes = 0;
            loop {
                let done = stop.load(Ordering::Relaxed);
                let now = appended.load(Ordering::Relaxed);
                if !done {
                    plan.retain(|&(at, back, node)| {
                        if now >= at && !down.iter().any(|(_, d)| *d == node) {
                            engine.crash_node(node);
                            crashes += 1;
                            down.push((back, node));
                            false
                        } else {
                            true
                        }
                    });
                }
                let mut i = 0;
                while i < down.len() {
                    if done || now >= down[i].0 {
                        let node = down.remove(i).1;
                        match engine.restart_node(node) {
                            Ok(rec) => {
                                if let Some(d) = rec.report() {
                                    notes.push(format!("{node}: {d}"));
                                }
                            }
                            Err(e) => notes.push(format!("{node}: restart failed: {e}")),
                        }
                    } else {
                        i += 1;
                    }
                }
                if done && down.is_empty() {
                    return (crashes, notes);
                }
                thread::sleep(Duration::from_millis(1));
            }
        })
    };

    // Clients.
    let per_writer = opts.records / opts.writers as u64;
    let mut clients = Vec::new();
    for w in 0..opts.writers {
        let count = if w == 0 {
            opts.records - per_writer * (opts.writers as u64 - 1)
        } else {
            per_writer
        };
        let (engine, appended) = (engine.clone(), appended.clone());
        let batch = opts.batch as u64;
        let seed = opts.seed;
        clients.push(thread::spawn(move || {
            let mut latencies = Vec::new();
            let mut done = 0u64;
            while done < count {
                let n = batch.min(count - done);
                let changes: Vec<(PageId, u64)> = (0..n)
                    .map(|i| {
                        let k = done + i;
                        (((k * 7919 + w as u64) % 1024) as PageId, k ^ seed)
                    })
                    .collect();
                let t = Instant::now();
                let last = engine.append_batch(&changes);
                appended.fetch_add(n, Ordering::Relaxed);
                engine.wait_committed(last);
                latencies.push(t.elapsed());
                done += n;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    let mut last_progress = 0;
    let mut since = Instant::now();
    while clients.iter().any(|c| !c.is_finished()) {
        thread::sleep(Duration::from_millis(20));
        let c = engine.commit_point().0;
        if c != last_progress {
            progress(c);
            last_progress = c;
            since = Instant::now();
        } else if since.elapsed() > Duration::from_secs(10) {
            eprintln!("no commit progress for 10 s:\n{}", engine.describe());
            since = Instant::now();
        }
    }
    for c in clients {
        latencies.extend(c.join().unwrap_or_default());
    }
    let elapsed = started.elapsed();
    progress(engine.commit_point().0);

    // Let the chaos thread restart every crashed node, then wait for quiescence.
    let mut failures = Vec::new();
    let wait_quiet = |failures: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !engine.quiescent() {
            if Instant::now() > deadline {
                failures.push("the system did not quiesce within 120 s".into());
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
    };
    let stop_chaos = stop.clone();
    stop_chaos.store(true, Ordering::Relaxed);
    let (crashes, recoveries) = chaos
        .join()
        .unwrap_or((0, vec!["chaos thread panicked".into()]));
    // The ticker must keep running until quiescence; restart it.
    let _ = ticker.join();
    let lags = lag_sampler.join().unwrap_or_default();
    stop.store(false, Ordering::Relaxed);
    let ticker = spawn_ticker(&engine, &stop);
    wait_quiet(&mut failures);
    stop.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    if opts.monitor {
        monitor.check_quiescent(&engine);
    }
    for e in engine.io_errors() {
        failures.push(format!("I/O error: {e}"));
    }
    let committed = engine.commit_point();
    let last = engine.last_lsn();
    let expected = monitor.expected_pages(last);
    let mut replica_pages = Vec::new();
    for r in 0..opts.replicas {
        let r = ReplicaId(r as u8);
        replica_pages.push((r, engine.with_replica(r, |rep| rep.pages().clone())));
    }
    let stats = monitor.stats();
    match Arc::try_unwrap(engine) {
        Ok(engine) => engine.shutdown(),
        Err(_) => failures.push("engine still referenced at shutdown".into()),
    }
    for v in monitor.violations() {
        failures.push(v.to_string());
    }
    if opts.monitor {
        for (r, pages) in &replica_pages {
            if pages != &expected {
                failures.push(format!("{r}'s pages differ from the writer's"));
            }
        }
    }
    failures.extend(verify_from_disk(
        opts,
        committed,
        opts.monitor.then_some(&expected),
    ));
    Ok(RunReport {
        records: opts.records,
        committed,
        elapsed,
        records_per_sec: opts.records as f64 / elapsed.as_secs_f64(),
        commit_latency: Percentiles::of(latencies),
        replica_lag: Percentiles::of(lags),
        recoveries,
        crashes,
        discards: stats.discards,
        failures,
        finding: monitor.tolerated().iter().map(|v| v.to_string()).collect(),
    })
}

/// After a clean shutdown: reopen every segment from disk and check that every committed record
/// is on at least 4 disks; then start the nodes again with a fresh replica that catches up from
/// disk alone and check its pages equal the writer's.
pub fn verify_from_disk(
    opts: &RunOptions,
    committed: Lsn,
    expected: Option<&BTreeMap<PageId, (u64, Lsn)>>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let disks = match open_disks(&opts.dir) {
        Ok(d) => d,
        Err(e) => return vec![e.to_string()],
    };
    let mut prefixes = Vec::new();
    for (i, disk) in disks.iter().enumerate() {
        match Segment::open(disk.clone()) {
            Ok((_, rec)) => {
                if let Some(d) = rec.report() {
                    failures.push(format!("S{i}: segment damaged after a clean shutdown: {d}"));
                }
                prefixes.push(rec.prefix());
            }
            Err(e) => failures.push(format!("S{i}: cannot read segment: {e}")),
        }
    }
    let on_four = quorum_watermark(prefixes.iter().copied());
    if on_four < committed {
        failures.push(format!(
            "committed up to {committed} but only 1..={on_four} is on 4 disks (per-disk {prefixes:?})"
        ));
    }
    let Some(expected) = expected else {
        return failures;
    };
    let cfg = Config::new(opts.ack, 1);
    let Ok((engine, _)) = Engine::start(cfg, FaultConfig::none(), disks, Arc::new(NoObserver))
    else {
        failures.push("cannot restart the nodes from disk".into());
        return failures;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let want = expected
        .values()
        .map(|(_, l)| *l)
        .max()
        .unwrap_or(Lsn::ZERO);
    let r0 = ReplicaId(0);
    while engine.with_replica(r0, |r| r.applied()) < want && Instant::now() < deadline {
        engine.tick();
        thread::sleep(Duration::from_millis(1));
    }
    let pages = engine.with_replica(r0, |r| r.pages().clone());
    let restricted: BTreeMap<_, _> = expected.clone();
    if pages != restricted {
        failures.push(format!(
            "a fresh replica caught up from the restarted nodes to {} but its pages differ from the writer's",
            engine.with_replica(r0, |r| r.applied())
        ));
    }
    engine.shutdown();
    failures
}
