//! `aurora-redo bench`: commit latency and throughput with ack `memory` versus `disk` (real
//! fsync), for several client/batch shapes; medians over repeated runs, as a markdown table.

use std::process::ExitCode;
use std::time::Duration;

use crate::live::{self, RunOptions};
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
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
    println!("| clients x batch | ack | records/s | commit p50 (ms) | commit p99 (ms) |");
    println!("| --- | --- | ---: | ---: | ---: |");
    let mut ratios = Vec::new();
    for &(writers, batch) in &shapes {
        let mut tput = [0.0f64; 2];
        for (i, ack) in [AckPolicy::Memory, AckPolicy::Disk].into_iter().enumerate() {
            let (mut t, mut p50, mut p99) = (Vec::new(), Vec::new(), Vec::new());
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
                match live::run(&opts, &|_| {}) {
                    Ok(r) if r.failures.is_empty() => {
                        t.push(r.records_per_sec);
                        p50.push(ms(r.commit_latency.p50));
                        p99.push(ms(r.commit_latency.p99));
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
            println!(
                "| {writers} x {batch} | {ack} | {:.0} | {:.3} | {:.3} |",
                tput[i],
                median(p50),
                median(p99)
            );
        }
        ratios.push((writers, batch, tput[0] / tput[1]));
    }
    println!();
    for (w, b, r) in ratios {
        println!("throughput memory/disk at {w} x {b}: {r:.1}x");
    }
    ExitCode::SUCCESS
}
