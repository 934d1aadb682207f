//! `aurora-redo bench`: commit latency and throughput with ack `memory` versus `disk` (real
//! fsync), for several client/batch shapes; medians over repeated runs, as a markdown table, next
//! to the machine's own fsync floor measured in the same run.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::latency::ms;
use crate::live::{self, RunOptions};
use aurora_redo_model::types::STORAGE_NODES;
use aurora_redo_model::AckPolicy;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Records per run.
    #[arg(long, default_value_t = 20_000)]
    pub records: u64,
    /// Runs per configuration (the table shows medians).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Client shapes as WRITERSxBATCH (concurrent clients x records per append batch).
    #[arg(long, value_delimiter = ',', default_value = "1x1,1x64,4x16")]
    pub shapes: Vec<String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Appends a small record (the size of a framed log record) to `f` and waits for
/// `fdatasync`; returns how long that took.
fn append_and_sync(f: &mut File) -> io::Result<Duration> {
    let t = Instant::now();
    f.write_all(&[0x5a; 48])?;
    f.sync_data()?;
    Ok(t.elapsed())
}

fn append_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The machine's fsync floor, in the directory the runs use: one small append + fdatasync
/// (median of `rounds`), and the 4-of-6 quorum floor: six threads each doing one on its own file
/// at once, the 4th-fastest of the six per round (median of `rounds`). No commit under ack
/// `disk` can be faster than the second.
pub struct FsyncFloor {
    pub single: Duration,
    pub quorum: Duration,
}

pub fn fsync_floor(dir: &Path, rounds: usize) -> io::Result<FsyncFloor> {
    let mut f = append_file(&dir.join("floor-single"))?;
    append_and_sync(&mut f)?; // the file's creation
    let mut single = (0..rounds)
        .map(|_| append_and_sync(&mut f))
        .collect::<io::Result<Vec<_>>>()?;
    single.sort();

    let barrier = Arc::new(Barrier::new(STORAGE_NODES));
    let threads: Vec<_> = (0..STORAGE_NODES)
        .map(|i| {
            let (barrier, path) = (barrier.clone(), dir.join(format!("floor-{i}")));
            thread::spawn(move || -> io::Result<Vec<Duration>> {
                let mut f = append_file(&path)?;
                append_and_sync(&mut f)?;
                let mut times = Vec::with_capacity(rounds);
                for _ in 0..rounds {
                    barrier.wait();
                    times.push(append_and_sync(&mut f)?);
                }
                Ok(times)
            })
        })
        .collect();
    let mut per_thread = Vec::new();
    for t in threads {
        per_thread.push(
            t.join()
                .map_err(|_| io::Error::other("an fsync thread panicked"))??,
        );
    }
    let mut quorum: Vec<Duration> = (0..rounds)
        .map(|r| {
            let mut round: Vec<Duration> = per_thread.iter().map(|t| t[r]).collect();
            round.sort();
            round[3] // the 4th-fastest of six
        })
        .collect();
    quorum.sort();
    Ok(FsyncFloor {
        single: single[single.len() / 2],
        quorum: quorum[quorum.len() / 2],
    })
}

/// CPU time this process has used so far (user + system), from `getrusage`.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` writes the struct it is given and nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// What one segment copy of a record costs: `records` records appended to a segment file on
/// `dir` in batches of 256 (encode, CRC, write; no fsync), CPU time per record. Every record is
/// appended by six nodes, so six times this is a floor under the engine's CPU time per record.
pub fn segment_cost(dir: &Path, records: u64) -> io::Result<Duration> {
    use aurora_redo_impl::disk::{Disk, FileDisk};
    use aurora_redo_impl::segment::Segment;
    use aurora_redo_model::types::{Epoch, Lsn, Record};
    let disk: Arc<dyn Disk> = Arc::new(FileDisk::open(dir.join("cost-segment"))?);
    let (segment, _) = Segment::open(disk)?;
    let batch: u64 = 256;
    let start = cpu_time();
    let mut lsn = 0;
    while lsn < records {
        let n = batch.min(records - lsn);
        let run: Vec<Record> = (lsn + 1..=lsn + n)
            .map(|l| Record {
                lsn: Lsn(l),
                page: (l % 1024) as u32,
                value: l,
                epoch: Epoch::FIRST,
            })
            .collect();
        segment.append(&run)?;
        lsn += n;
    }
    Ok((cpu_time() - start) / records as u32)
}

pub fn bench(args: BenchArgs) -> ExitCode {
    let mut shapes = Vec::new();
    for s in &args.shapes {
        let parsed = s
            .split_once('x')
            .and_then(|(w, b)| Some((w.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
        match parsed {
            Some((w, b)) if w > 0 && b > 0 => shapes.push((w, b)),
            _ => {
                eprintln!("error: bad shape {s:?}: expected WRITERSxBATCH, e.g. 4x16");
                return ExitCode::from(2);
            }
        }
    }
    if args.repeats == 0 || args.records == 0 {
        eprintln!("error: --records and --repeats must be at least 1");
        return ExitCode::from(2);
    }
    let floor = match tempfile::tempdir().and_then(|d| fsync_floor(d.path(), 200)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot measure the fsync floor in a temporary directory: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "fsync floor: one 48-byte append + fdatasync {:.3} ms (median of 200); 4th-fastest of 6 \
         in parallel (the 4-of-6 quorum floor under ack disk) {:.3} ms (median of 200 rounds)",
        ms(floor.single),
        ms(floor.quorum)
    );
    match tempfile::tempdir().and_then(|d| segment_cost(d.path(), 200_000)) {
        Ok(cost) => {
            let us = cost.as_secs_f64() * 1e6;
            println!(
                "segment copy cost: {us:.2} us CPU per record (encode + CRC + write, no fsync; \
                 200,000 records in batches of 256); six copies {:.2} us, so at most {:.0} \
                 records/s on 2 cores from the copies alone",
                6.0 * us,
                2.0e6 / (6.0 * us)
            );
        }
        Err(e) => {
            eprintln!("error: cannot measure the segment copy cost in a temporary directory: {e}");
            return ExitCode::from(2);
        }
    }
    println!();
    println!(
        "| clients x batch | ack | records/s | commit p50 (ms) | commit p99 (ms) | commit p99.9 (ms) \
         | commit max (ms) | fsync floor (ms) | replica lag p50 (ms) | replica lag p99 (ms) \
         | CPU per record (us) |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut ratios = Vec::new();
    for &(writers, batch) in &shapes {
        let mut tput = [0.0f64; 2];
        for (i, ack) in [AckPolicy::Memory, AckPolicy::Disk].into_iter().enumerate() {
            let mut t = Vec::new();
            // commit p50, p99, p99.9, max; replica lag p50, p99: one list per column.
            let mut cols: [Vec<f64>; 6] = Default::default();
            let mut cpu = Vec::new();
            for rep in 0..args.repeats {
                let Ok(dir) = tempfile::tempdir() else {
                    eprintln!("error: cannot create a temporary directory");
                    return ExitCode::from(2);
                };
                let mut opts = RunOptions::new(dir.path().join("data"));
                opts.records = args.records;
                opts.replicas = 1;
                opts.ack = ack;
                opts.writers = writers;
                opts.batch = batch;
                opts.seed = rep as u64 + 1;
                opts.monitor = false;
                let cpu_before = cpu_time();
                let result = live::run(&opts, &|_| {});
                cpu.push((cpu_time() - cpu_before).as_secs_f64() * 1e6 / args.records as f64);
                match result {
                    Ok(r) if r.failures.is_empty() => {
                        t.push(r.records_per_sec);
                        let (c, l) = (r.commit_latency, r.replica_lag.lag);
                        for (col, d) in cols
                            .iter_mut()
                            .zip([c.p50, c.p99, c.p999, c.max, l.p50, l.p99])
                        {
                            col.push(ms(d));
                        }
                    }
                    Ok(r) => {
                        eprintln!("VIOLATION during bench: {:?}", r.failures);
                        return ExitCode::from(1);
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            tput[i] = median(t);
            let [p50, p99, p999, max, lag50, lag99] = cols.map(median);
            let cpu = median(cpu);
            let floor = match ack {
                AckPolicy::Memory => "none".to_string(),
                AckPolicy::Disk => format!("{:.3}", ms(floor.quorum)),
            };
            println!(
                "| {writers} x {batch} | {ack} | {:.0} | {p50:.3} | {p99:.3} | {p999:.3} | {max:.3} \
                 | {floor} | {lag50:.3} | {lag99:.3} | {cpu:.2} |",
                tput[i],
            );
        }
        ratios.push((writers, batch, tput[0] / tput[1]));
    }
    println!();
    println!(
        "Medians of {} runs each; commit latency per operation (a batch: append to \
         wait_committed), replica lag per record (writer's commit to the replica's apply); the \
         fsync floor is the 4-of-6 figure above (no fsync is on the commit path under ack memory); \
         CPU per record is the process's user + system time over the whole run (appends, \
         shutdown, restart from the segments and verification) divided by its records.",
        args.repeats
    );
    for (w, b, r) in ratios {
        println!("throughput memory/disk at {w} x {b}: {r:.1}x");
    }
    ExitCode::SUCCESS
}
