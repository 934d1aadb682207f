//! A live run of the engine on a data directory: real segment files and fsync, client threads,
//! a timer thread, crash injection, then a verification after a clean shutdown and a restart
//! from disk. An application of the engine on real threads (std only), not engine code: the
//! `aurora-redo run` and `bench` subcommands are thin wrappers around it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use aurora_redo_impl::disk::{Disk, DiskFault, FaultyDisk, FileDisk};
use aurora_redo_impl::engine::Engine;
use aurora_redo_impl::faults::FaultConfig;
use aurora_redo_impl::lock;
use aurora_redo_impl::monitor::Monitor;
use aurora_redo_impl::observer::{NoObserver, Observer};
use aurora_redo_impl::volume::{self, Plan};
use aurora_redo_impl::{AckPolicy, EngineConfig, ImplBug};
use aurora_redo_model::invariants::COMMITTED_RECOVERABLE;
use aurora_redo_model::quorum::quorum_watermark;
use aurora_redo_model::types::{Epoch, Lsn, NodeId, PageId, ReplicaId, STORAGE_NODES};
use hdrhistogram::Histogram;

use crate::history::{Acks, History};
use crate::latency::{self, LagClock};
pub use crate::latency::{Percentiles, ReplicaLags};

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
    /// Open-loop load: this many writes (one record each) per second, issued on a fixed schedule
    /// whether or not earlier ones have committed. `None`: the closed loop of `writers` clients
    /// each waiting for its batch to commit before the next.
    pub rate: Option<u64>,
    /// Disk faults injected into these nodes' segment files (at most one per node): each such
    /// node stops when its fault strikes.
    pub disk_faults: Vec<(NodeId, DiskFault)>,
    /// On a directory that holds a volume: let its recovery annul records that a write quorum
    /// holds above the recovery point (refused otherwise, [`RunError::Refused`]).
    pub accept_loss: bool,
    /// Where clients record each record they were told is committed (`run --history`).
    pub history: Option<Arc<History>>,
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
            rate: None,
            disk_faults: Vec::new(),
            accept_loss: false,
            history: None,
        }
    }
}

/// Where a run is: the commit point (every LSN up to it is acknowledged), the epoch it writes
/// in, and how many of this run's records are committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub committed: Lsn,
    pub epoch: Epoch,
    pub this_run: u64,
}

/// How a run on a directory that already held a volume recovered it before writing.
#[derive(Clone, Debug)]
pub struct Resumed {
    /// The recovery point: the run's first record is `point + 1`.
    pub point: Lsn,
    /// The epoch the run writes in.
    pub epoch: Epoch,
    /// Records copied to nodes that lacked them, and records annulled, over all nodes.
    pub copied: u64,
    pub truncated: u64,
    /// Each node's damage, cut out by the repair (`S0: torn tail ...`).
    pub damage: Vec<String>,
}

/// What a run measured and verified.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// Set when the directory held a volume, which the run recovered first.
    pub resumed: Option<Resumed>,
    pub records: u64,
    pub committed: Lsn,
    pub elapsed: Duration,
    pub records_per_sec: f64,
    /// Commit latency per operation: closed loop, from a batch's append to `wait_committed`
    /// returning; open loop (`rate`), from a write's scheduled time to `wait_committed` returning.
    pub commit_latency: Percentiles,
    /// Per record and replica: from the writer's commit of the record to the replica having
    /// applied it (see [`LagClock`]).
    pub replica_lag: ReplicaLags,
    /// Damage reports from segment recoveries (node restarts), if any.
    pub recoveries: Vec<String>,
    pub crashes: usize,
    pub discards: u64,
    /// Invariant violations and failed final checks; empty means the run verified.
    pub failures: Vec<String>,
    /// Moments when a committed record was readable by fewer than every read quorum: the
    /// memory-ack finding, expected (and tolerated) under ack `memory` with node crashes.
    pub finding: Vec<String>,
    /// Nodes stopped by a disk error during the run (the run carried on without them).
    pub stopped_nodes: Vec<String>,
}

/// Why a run could not start.
#[derive(Debug)]
pub enum RunError {
    /// The options or the directory are unusable (exit 2).
    BadInput(String),
    /// Disk errors stopped more storage nodes than a write quorum can spare, so the run cannot
    /// commit any more: each failure is named (node, file, error).
    Stopped(String),
    /// Recovering the volume would annul evidence of commits, and the loss was not accepted
    /// (exit 1).
    Refused(String),
}

impl RunError {
    /// The exit status `run` ends with.
    pub fn exit_status(&self) -> u8 {
        match self {
            RunError::BadInput(_) => 2,
            RunError::Refused(_) => 1,
            RunError::Stopped(_) => 3,
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::BadInput(m) | RunError::Refused(m) => write!(f, "{m}"),
            RunError::Stopped(m) => write!(f, "the run stopped: {m}"),
        }
    }
}

fn segment_path(dir: &Path, node: NodeId) -> PathBuf {
    volume::segment_path(dir, node)
}

/// The six segment files of `dir`, which [`lock_volume`] has created and locked.
fn open_disks(dir: &Path) -> Result<Vec<Arc<dyn Disk>>, RunError> {
    NodeId::all()
        .map(|n| {
            let path = segment_path(dir, n);
            FileDisk::open(&path)
                .map(|d| Arc::new(d) as Arc<dyn Disk>)
                .map_err(|e| RunError::BadInput(format!("cannot open {}: {e}", path.display())))
        })
        .collect()
}

/// Highest `--rate` accepted, in writes per second.
pub const MAX_RATE: u64 = 10_000_000;

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
    if let Some(rate) = opts.rate {
        if !(1..=MAX_RATE).contains(&rate) {
            return Err(RunError::BadInput(format!(
                "--rate must be between 1 and {MAX_RATE} writes per second"
            )));
        }
    }
    for (i, (node, _)) in opts.disk_faults.iter().enumerate() {
        if opts.disk_faults[..i].iter().any(|(n, _)| n == node) {
            return Err(RunError::BadInput(format!(
                "--disk-fault names {node} twice; give each node at most one fault"
            )));
        }
    }
    if opts.writers == 0 || opts.batch == 0 {
        return Err(RunError::BadInput(
            "writers and batch must be at least 1".into(),
        ));
    }
    if let Ok(mut entries) = std::fs::read_dir(&opts.dir) {
        if entries.any(|e| {
            e.map(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                !name.starts_with("node-") && name != lock::LOCK_FILE
            })
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

/// Runs the engine live. `progress` is called whenever the commit point has moved (polled every
/// few milliseconds, so several commits coalesce into one call). On a directory that already
/// holds a volume, the volume is recovered first (the write phase of [`volume::write`]) and the
/// run carries on from its recovery point in the next epoch.
pub fn run(opts: &RunOptions, progress: &(dyn Fn(Progress) + Sync)) -> Result<RunReport, RunError> {
    validate(opts)?;
    let _lock = lock_volume(&opts.dir)?;
    let recovered = recover_existing(&opts.dir, opts.accept_loss)?;
    let mut monitor = monitor_for(opts);
    let mut failures = Vec::new();
    let (epoch, base) = match &recovered {
        Some(Recovery { plan, judged, .. }) => {
            failures.extend(judged.iter().cloned());
            monitor = monitor
                .resuming(plan.log.clone(), [plan.point; STORAGE_NODES])
                .in_epoch(plan.epoch);
            (plan.epoch, plan.point)
        }
        None => (Epoch::FIRST, Lsn::ZERO),
    };
    let monitor = Arc::new(monitor);
    let inner: Arc<dyn Observer> = if opts.monitor {
        monitor.clone()
    } else {
        Arc::new(NoObserver)
    };
    let lag_clock = Arc::new(LagClock::new(opts.replicas, inner));
    let engine = Arc::new(start_engine(opts, lag_clock.clone(), epoch, base)?);
    let appended = Arc::new(AtomicU64::new(0));
    let started = Instant::now();

    let ticker = start_ticker(&engine);
    let chaos = start_chaos(&engine, &appended, opts);
    let clients = Clients::start(&engine, &appended, opts, epoch);
    let mut report_progress = ProgressReporter::new(progress, epoch, base);
    while !clients.finished() {
        thread::sleep(Duration::from_millis(5));
        report_progress.update(&engine);
        if let Some(why) = engine.stopped() {
            // The clients wait on commits that cannot come: the caller is to exit, and the
            // threads with it.
            return Err(RunError::Stopped(why));
        }
    }
    let latencies = clients.join();
    let elapsed = started.elapsed();
    report_progress.update(&engine);

    // Stop crashing (the chaos driver restarts every crashed node on its way out), then wait for
    // quiescence; the ticker keeps the retries going until then.
    let (crashes, recoveries) = chaos
        .stop()
        .unwrap_or((0, vec!["chaos thread panicked".into()]));
    failures.extend(wait_quiescent(&engine, Duration::from_secs(120)).err());
    if let Some(why) = engine.stopped() {
        return Err(RunError::Stopped(why));
    }
    let _ = ticker.stop();

    let stopped_nodes = engine.io_errors();
    let (committed, discards) = shut_down_and_verify(opts, engine, &monitor, &mut failures);
    let resumed = recovered.map(|Recovery { plan, damage, .. }| Resumed {
        point: plan.point,
        epoch: plan.epoch,
        copied: plan.nodes.iter().map(|n| n.copy.count()).sum(),
        truncated: plan.nodes.iter().map(|n| n.truncate.count()).sum(),
        damage,
    });
    Ok(RunReport {
        resumed,
        records: opts.records,
        committed,
        elapsed,
        records_per_sec: opts.records as f64 / elapsed.as_secs_f64(),
        commit_latency: Percentiles::of(&latencies),
        replica_lag: lag_clock.lags(),
        recoveries,
        crashes,
        discards,
        failures,
        finding: monitor.tolerated().iter().map(|v| v.to_string()).collect(),
        stopped_nodes,
    })
}

/// The run's monitor. Under ack `memory` a node crash can leave a committed record on too few
/// nodes for a moment: the documented finding, recorded but not a failure of this run. So can a
/// node stopped by an injected disk fault.
fn monitor_for(opts: &RunOptions) -> Monitor {
    let nodes_fail = opts.crash_nodes > 0 || !opts.disk_faults.is_empty();
    if opts.ack == AckPolicy::Memory && nodes_fail {
        Monitor::new(false).tolerating(COMMITTED_RECOVERABLE)
    } else {
        Monitor::new(false)
    }
}

/// How [`recover_existing`] recovered a volume.
struct Recovery {
    plan: Plan,
    /// Each node's damage, cut out by the write phase's repair.
    damage: Vec<String>,
    /// What judging the files after the write phase found wrong.
    judged: Vec<String>,
}

/// Creates `dir` if missing and takes its exclusive volume lock, at once: another process
/// holding it is bad input (exit 2), named by its pid.
fn lock_volume(dir: &Path) -> Result<lock::VolumeLock, RunError> {
    aurora_redo_impl::disk::create_dir_durable(dir).map_err(|e| {
        RunError::BadInput(format!("cannot use data directory {}: {e}", dir.display()))
    })?;
    lock::exclusive(dir).map_err(|e| RunError::BadInput(e.to_string()))
}

/// Recovers the volume `dir` holds, if it holds one: the read phase and the write phase, which
/// rebuilds every lost or damaged node from the recovered log, so that the engine starts on six
/// nodes. Refuses to annul records a write quorum holds unless `accept_loss`.
fn recover_existing(dir: &Path, accept_loss: bool) -> Result<Option<Recovery>, RunError> {
    if !dir.is_dir() || !volume::exists(dir) {
        return Ok(None);
    }
    let bad =
        |e: volume::VolumeError| RunError::BadInput(format!("cannot recover the volume: {e}"));
    let found = volume::inspect(dir).map_err(bad)?;
    let plan = volume::plan(&found).map_err(bad)?;
    let mut damage: Vec<String> = found
        .nodes
        .iter()
        .flatten()
        .filter_map(|v| v.damage_report().map(|d| format!("{}: {d}", v.node)))
        .collect();
    let written = match volume::write(dir, &plan, accept_loss) {
        Ok(Some(written)) => written,
        Ok(None) => {
            let missing: Vec<String> = found
                .missing()
                .into_iter()
                .map(volume::segment_name)
                .collect();
            return Err(RunError::BadInput(format!(
                "the volume in {} is readable but not writable: only {} node files readable \
                 (lost node files: {}), fewer than the write quorum of 4",
                dir.display(),
                plan.nodes.len(),
                missing.join(", ")
            )));
        }
        Err(volume::VolumeError::WouldAnnul(m)) => {
            return Err(RunError::Refused(format!(
                "cannot recover the volume in {}: {m}",
                dir.display()
            )))
        }
        Err(e) => return Err(bad(e)),
    };
    for (node, aside) in &written.rebuilt {
        damage.push(match (aside, found.damage_of(*node)) {
            (Some(p), Some(d)) => format!(
                "{node}: cannot be read at all ({}); moved aside to {} and rebuilt",
                d.error,
                p.display()
            ),
            (Some(p), None) => format!("{node}: moved aside to {} and rebuilt", p.display()),
            (None, _) => format!("{node}: missing; rebuilt from the recovered log"),
        });
    }
    let judged = volume::judge_files(dir, &plan, &written.nodes).map_err(bad)?;
    Ok(Some(Recovery {
        plan,
        damage,
        judged,
    }))
}

/// Starts the engine on the data directory's segment files: a new volume, or one that
/// [`recover_existing`] recovered into `epoch` at `base`.
fn start_engine(
    opts: &RunOptions,
    observer: Arc<dyn Observer>,
    epoch: Epoch,
    base: Lsn,
) -> Result<Engine, RunError> {
    let mut disks = open_disks(&opts.dir)?;
    for (node, fault) in &opts.disk_faults {
        let disk = &mut disks[node.index()];
        *disk = Arc::new(FaultyDisk::new(disk.clone(), *fault));
    }
    let mut cfg = EngineConfig::new(opts.ack, opts.replicas)
        .with_bug(opts.bug)
        .resuming(epoch, base);
    cfg.max_batch = 4096;
    let faults = FaultConfig {
        drop: opts.drop_rate,
        duplicate: opts.drop_rate / 2.0,
        reorder: opts.drop_rate / 2.0,
        seed: opts.seed,
    };
    let (engine, recovered) = Engine::start(cfg, faults, disks, observer)
        .map_err(|e| RunError::BadInput(format!("cannot start on {}: {e}", opts.dir.display())))?;
    if let Some((i, r)) = recovered
        .iter()
        .enumerate()
        .find(|(_, r)| r.prefix != base || r.records != base.0)
    {
        engine.shutdown();
        return Err(RunError::BadInput(format!(
            "S{i} of {} holds 1..={} ({} records) where recovery left 1..={base}",
            opts.dir.display(),
            r.prefix,
            r.records
        )));
    }
    Ok(engine)
}

/// A thread that runs until it is told to stop, then hands back its result.
struct Worker<T> {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<T>,
}

impl<T: Send + 'static> Worker<T> {
    /// Spawns `body`, which must return soon after the flag it is given is set.
    fn spawn(body: impl FnOnce(&AtomicBool) -> T + Send + 'static) -> Worker<T> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        Worker {
            stop,
            handle: thread::spawn(move || body(&flag)),
        }
    }

    /// Tells the thread to stop and waits for its result (`Err` if it panicked).
    fn stop(self) -> thread::Result<T> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join()
    }
}

/// Ticks the engine every 2 ms (its retries: re-sends, re-pulls) until stopped.
fn start_ticker(engine: &Arc<Engine>) -> Worker<()> {
    let engine = engine.clone();
    Worker::spawn(move |stop| {
        while !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(2));
            engine.tick();
        }
    })
}

/// The fault driver: crashes storage nodes as the appends pass planned points and restarts each
/// one later. Node k crashes at (k+1)/(n+1) of the run, alternating zones, and restarts after
/// another tenth of the records, or when the driver is stopped.
struct Chaos {
    /// Not yet crashed: (crash at, restart at, node), in appended records.
    plan: Vec<(u64, u64, NodeId)>,
    /// Down now: (restart at, node).
    down: Vec<(u64, NodeId)>,
    crashes: usize,
    /// Damage reports of the restarts' recoveries, and failed restarts.
    notes: Vec<String>,
}

impl Chaos {
    fn new(crash_nodes: usize, records: u64) -> Chaos {
        let order = [0u8, 2, 4, 1, 3, 5];
        let n = crash_nodes as u64;
        let plan = (0..crash_nodes)
            .map(|k| {
                let at = records * (k as u64 + 1) / (n + 1);
                (at, at + records / 10, NodeId(order[k % STORAGE_NODES]))
            })
            .collect();
        Chaos {
            plan,
            down: Vec::new(),
            crashes: 0,
            notes: Vec::new(),
        }
    }

    /// Crashes the nodes due at `appended` records (none once `stopping`) and restarts those due
    /// back (all of them once `stopping`).
    fn step(&mut self, engine: &Engine, appended: u64, stopping: bool) {
        if !stopping {
            let (plan, down) = (&mut self.plan, &mut self.down);
            let crashes = &mut self.crashes;
            plan.retain(|&(at, back, node)| {
                if appended >= at && !down.iter().any(|(_, d)| *d == node) {
                    engine.crash_node(node);
                    *crashes += 1;
                    down.push((back, node));
                    false
                } else {
                    true
                }
            });
        }
        let mut i = 0;
        while i < self.down.len() {
            if stopping || appended >= self.down[i].0 {
                let node = self.down.remove(i).1;
                match engine.restart_node(node) {
                    Ok(rec) => {
                        if let Some(d) = rec.report() {
                            self.notes.push(format!("{node}: {d}"));
                        }
                    }
                    Err(e) => self.notes.push(format!("{node}: restart failed: {e}")),
                }
            } else {
                i += 1;
            }
        }
    }
}

/// Runs the fault driver every millisecond until stopped; returns the number of crashes and the
/// recovery notes once every crashed node is back.
fn start_chaos(
    engine: &Arc<Engine>,
    appended: &Arc<AtomicU64>,
    opts: &RunOptions,
) -> Worker<(usize, Vec<String>)> {
    let (engine, appended) = (engine.clone(), appended.clone());
    let mut chaos = Chaos::new(opts.crash_nodes, opts.records);
    Worker::spawn(move |stop| loop {
        let stopping = stop.load(Ordering::Relaxed);
        chaos.step(&engine, appended.load(Ordering::Relaxed), stopping);
        if stopping && chaos.down.is_empty() {
            return (chaos.crashes, chaos.notes);
        }
        thread::sleep(Duration::from_millis(1));
    })
}

/// The client load: `writers` threads appending the run's records, closed loop (each waits for
/// its batch to commit before the next) or open loop (`rate`).
struct Clients {
    threads: Vec<thread::JoinHandle<Histogram<u64>>>,
}

impl Clients {
    fn start(
        engine: &Arc<Engine>,
        appended: &Arc<AtomicU64>,
        opts: &RunOptions,
        epoch: Epoch,
    ) -> Clients {
        let per_writer = opts.records / opts.writers as u64;
        let start = Instant::now();
        let threads = (0..opts.writers)
            .map(|w| {
                let count = if w == 0 {
                    opts.records - per_writer * (opts.writers as u64 - 1)
                } else {
                    per_writer
                };
                let (engine, appended) = (engine.clone(), appended.clone());
                let (batch, seed, writers) = (opts.batch as u64, opts.seed, opts.writers as u64);
                let w = w as u64;
                let acks = Acks {
                    history: opts.history.clone(),
                    epoch,
                };
                match opts.rate {
                    None => thread::spawn(move || {
                        client(&engine, &appended, &acks, w, count, batch, seed)
                    }),
                    Some(rate) => {
                        let schedule = Schedule {
                            start,
                            rate,
                            writers,
                            w,
                        };
                        thread::spawn(move || {
                            open_loop_client(&engine, &appended, &acks, &schedule, count, seed)
                        })
                    }
                }
            })
            .collect();
        Clients { threads }
    }

    fn finished(&self) -> bool {
        self.threads.iter().all(|c| c.is_finished())
    }

    /// Every operation's commit latency.
    fn join(self) -> Histogram<u64> {
        let mut all = latency::histogram();
        for c in self.threads {
            if let Ok(h) = c.join() {
                latency::merge(&mut all, &h);
            }
        }
        all
    }
}

/// The change client `w` makes in its `k`th record.
fn change(w: u64, k: u64, seed: u64) -> (PageId, u64) {
    (((k * 7919 + w) % 1024) as PageId, k ^ seed)
}

/// Client `w`: appends `count` records in batches of `batch`, counting them in `appended` and
/// each committed batch in `acks`; returns each batch's append-to-commit latency.
fn client(
    engine: &Engine,
    appended: &AtomicU64,
    acks: &Acks,
    w: u64,
    count: u64,
    batch: u64,
    seed: u64,
) -> Histogram<u64> {
    let mut latencies = latency::histogram();
    let mut done = 0u64;
    while done < count {
        let n = batch.min(count - done);
        let changes: Vec<(PageId, u64)> = (0..n).map(|i| change(w, done + i, seed)).collect();
        let t = Instant::now();
        let last = engine.append_batch(&changes);
        appended.fetch_add(n, Ordering::Relaxed);
        engine.wait_committed(last);
        acks.acknowledged(last, &changes);
        latency::record(&mut latencies, t.elapsed());
        done += n;
    }
    latencies
}

/// When open-loop client `w` of `writers` issues its writes: together the clients issue `rate`
/// writes per second, write `i` of the run at `start + i / rate`, client `w` taking every
/// `writers`th one.
struct Schedule {
    start: Instant,
    rate: u64,
    writers: u64,
    w: u64,
}

impl Schedule {
    /// When this client's `k`th write is due.
    fn due(&self, k: u64) -> Instant {
        let i = k * self.writers + self.w;
        self.start
            + Duration::from_nanos((u128::from(i) * 1_000_000_000 / u128::from(self.rate)) as u64)
    }
}

/// Open-loop client: appends `count` single-record writes, each at its scheduled time (at once
/// when it is already late) without waiting for earlier ones to commit. A second thread waits
/// for each write's commit and records the time from its *scheduled* issue, so a stall delays
/// neither the schedule nor what the histogram sees of it (no coordinated omission).
fn open_loop_client(
    engine: &Arc<Engine>,
    appended: &AtomicU64,
    acks: &Acks,
    schedule: &Schedule,
    count: u64,
    seed: u64,
) -> Histogram<u64> {
    let (tx, rx) = mpsc::channel::<(Lsn, Instant, (PageId, u64))>();
    let waiter = {
        let (engine, acks) = (engine.clone(), acks.clone());
        thread::spawn(move || {
            let mut latencies = latency::histogram();
            for (lsn, due, written) in rx {
                engine.wait_committed(lsn);
                acks.acknowledged(lsn, &[written]);
                latency::record(&mut latencies, due.elapsed());
            }
            latencies
        })
    };
    for k in 0..count {
        let due = schedule.due(k);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        let written = change(schedule.w, k, seed);
        let lsn = engine.append_batch(&[written]);
        appended.fetch_add(1, Ordering::Relaxed);
        if tx.send((lsn, due, written)).is_err() {
            break;
        }
    }
    drop(tx);
    waiter.join().unwrap_or_else(|_| latency::histogram())
}

/// Reports the commit point to `progress` when it moves, and the engine's state on stderr when it
/// has not moved for 10 s.
struct ProgressReporter<'a> {
    progress: &'a (dyn Fn(Progress) + Sync),
    epoch: Epoch,
    /// Where the run started (a recovered volume's recovery point).
    base: Lsn,
    last: Lsn,
    since: Instant,
}

impl<'a> ProgressReporter<'a> {
    fn new(
        progress: &'a (dyn Fn(Progress) + Sync),
        epoch: Epoch,
        base: Lsn,
    ) -> ProgressReporter<'a> {
        ProgressReporter {
            progress,
            epoch,
            base,
            last: base,
            since: Instant::now(),
        }
    }

    fn update(&mut self, engine: &Engine) {
        let c = engine.commit_point();
        if c > self.last {
            (self.progress)(Progress {
                committed: c,
                epoch: self.epoch,
                this_run: c.0 - self.base.0,
            });
            self.last = c;
            self.since = Instant::now();
        } else if self.since.elapsed() > Duration::from_secs(10) {
            for f in engine.io_errors() {
                eprintln!("{f}");
            }
            eprintln!("no commit progress for 10 s:\n{}", engine.describe());
            self.since = Instant::now();
        }
    }
}

/// Waits until the engine is quiescent (or has stopped: [`Engine::stopped`]), or fails after
/// `timeout`.
fn wait_quiescent(engine: &Engine, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while !engine.quiescent() && engine.stopped().is_none() {
        if Instant::now() > deadline {
            return Err(format!(
                "the system did not quiesce within {} s",
                timeout.as_secs()
            ));
        }
        thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// The final checks of a quiescent engine: the monitor's, I/O errors, every replica's pages
/// against the writer's; then a clean shutdown and [`verify_from_disk`]. Adds what fails to
/// `failures`; returns the commit point and the replicas' discards.
fn shut_down_and_verify(
    opts: &RunOptions,
    engine: Arc<Engine>,
    monitor: &Monitor,
    failures: &mut Vec<String>,
) -> (Lsn, u64) {
    if opts.monitor {
        monitor.check_quiescent(&engine);
    }
    let committed = engine.commit_point();
    // The writer's last LSN is never below the monitor's window: its image is always known.
    let expected = monitor
        .expected_pages(engine.last_lsn())
        .unwrap_or_default();
    let replica_pages: Vec<_> = (0..opts.replicas)
        .map(|r| {
            let r = ReplicaId(r as u8);
            (r, engine.with_replica(r, |rep| rep.pages().clone()))
        })
        .collect();
    let stats = monitor.stats();
    match Arc::try_unwrap(engine) {
        Ok(engine) => engine.shutdown(),
        Err(_) => failures.push("engine still referenced at shutdown".into()),
    }
    for v in monitor.violations() {
        failures.push(v.to_string());
    }
    if stats.unjudged > 0 {
        failures.push(format!(
            "the monitor could not judge {} checks: the writer's records they needed had left its window",
            stats.unjudged
        ));
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
    (committed, stats.discards)
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
    // Read first, without writing (a damaged segment is reported as it is, not repaired away).
    let mut prefixes = Vec::new();
    for node in NodeId::all() {
        match volume::summarize_node(&opts.dir, node) {
            Ok(Some(rec)) => {
                if let Some(d) = rec.report() {
                    failures.push(format!(
                        "{node}: segment damaged after a clean shutdown: {d}"
                    ));
                }
                prefixes.push(rec.prefix);
            }
            Ok(None) => failures.push(format!("{node}: segment file missing")),
            Err(e) => failures.push(format!("{node}: {e}")),
        }
    }
    let disks = match open_disks(&opts.dir) {
        Ok(d) => d,
        Err(e) => return vec![e.to_string()],
    };
    let on_four = quorum_watermark(prefixes.iter().copied());
    if on_four < committed {
        failures.push(format!(
            "committed up to {committed} but only 1..={on_four} is on 4 disks (per-disk {prefixes:?})"
        ));
    }
    let Some(expected) = expected else {
        return failures;
    };
    let cfg = EngineConfig::new(opts.ack, 1);
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
