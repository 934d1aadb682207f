//! `aurora-redo`: check, explore and mutate the model of Aurora's redo-log protocol; run,
//! benchmark and replay counterexamples on its implementation.

use aurora_redo::checking::{self, Run, Stop, Strategy, EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use aurora_redo::counterexample::CounterexampleFile;
use aurora_redo::model_args::{parse_threads, ModelArgs};
use aurora_redo::{bench, explore, junit, mutants, recover, replay, run, simulation, swarm_report};
use aurora_redo_model::reduction::{self, Reduction};
use aurora_redo_model::render::mermaid;
use aurora_redo_model::{Bug, Config};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit status: a property failed.
const FAILED: u8 = EXIT_FAIL;
/// Exit status: the command line was wrong (clap uses it too).
const USAGE: u8 = EXIT_USAGE;

const CHECK_EXIT_STATUS: &str = "\
Exit status:
  0  pass: an exhaustive search; every invariant holds and every reachability fact was reached
     (with --expect-violation P: P, and only P, is violated)
  1  fail: a property is violated, or an exhaustive search never reached a reachability fact
     (with --expect-violation P: another property is violated, or an exhaustive search does not
     violate P)
  2  bad arguments
  3  incomplete: the search was cut short (--timeout, --strategy sim) before any of the above
     was shown; with --allow-incomplete this is 0 when nothing was found (or, with
     --expect-violation P, when P and nothing else was found)";

const MUTANTS_EXIT_STATUS: &str = "\
Exit status:
  0  every seeded bug is caught by its expected property and the control passes
  1  some bug is not caught, or the control fails
  2  bad arguments";

#[derive(Parser, Debug)]
#[command(
    name = "aurora-redo",
    version,
    about = "Model-check Aurora's redo log, replica sync and flush lifecycle"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a configuration, exhaustively or (--strategy sim) by seeded random walks, and report
    /// every property's verdict.
    #[command(after_help = CHECK_EXIT_STATUS)]
    Check(CheckArgs),
    /// Check every seeded bug and show which invariant catches it.
    #[command(after_help = MUTANTS_EXIT_STATUS)]
    Mutants(MutantsArgs),
    /// Serve the Stateright Explorer for a configuration.
    Explore(ExploreArgs),
    /// Drive the implementation through a counterexample (from `check --counterexample-out`) and
    /// report the invariant that breaks. Exit 0: none; 1: one broke; 2: bad counterexample file;
    /// 3: the engine cannot take some step of it.
    Replay(ReplayArgs),
    /// Run the implementation live on a data directory, then verify it after a restart.
    Run(run::RunArgs),
    /// Benchmark the implementation's commit latency and throughput, ack memory versus disk.
    Bench(bench::BenchArgs),
    /// Recover a volume from its segment files (read phase, then the write phase unless
    /// --dry-run) and judge it: recovery point, new epoch, truncation, damage, a verdict.
    #[command(after_help = recover::RECOVER_EXIT_STATUS)]
    Recover(recover::RecoverArgs),
    /// Merge the JSON reports of a swarm's shards (`check --strategy sim --seed S --json`):
    /// seeds, walks and states covered, each property's verdict, the first counterexample and
    /// the command that replays it.
    #[command(after_help = SWARM_REPORT_EXIT_STATUS)]
    SwarmReport(SwarmReportArgs),
}

const SWARM_REPORT_EXIT_STATUS: &str = "\
Exit status:
  1  fail: some shard found a violation
  2  bad input: a file missing, unreadable, not a `check --strategy sim --json` report, of
     another configuration than the first, or a seed given twice
  3  incomplete: no shard found a violation (a swarm is never exhaustive, so it never passes)";

#[derive(clap::Args, Debug)]
struct SwarmReportArgs {
    /// The shards' reports (`check --strategy sim --seed S --json > FILE`); a file may hold
    /// several, one after the other, as `parallel` collects its jobs' output.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print the merged report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// The counterexample file (JSON, see docs/conformance.md).
    file: PathBuf,
    /// Switch this seeded bug on in the implementation (default: the correct engine).
    #[arg(long)]
    bug: Option<String>,
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// How to search the state space.
    #[arg(long, value_enum, default_value = "dfs")]
    strategy: Strategy,
    /// Check a smaller system with the same verdicts: a comma-separated list of `fault-windows`
    /// (faults take no time) and `one-replica` (replicas only observe), or `none`. Default: both
    /// for `all-faults`, none otherwise. docs/checking.md, "Reductions".
    #[arg(long, value_name = "LIST", value_parser = parse_reductions)]
    reduce: Option<Reductions>,
    /// Checker threads (at least 1).
    #[arg(long, default_value = "2", value_parser = parse_threads)]
    threads: usize,
    /// Stop after this many seconds; a search cut short is `incomplete` (exit status 3). `sim`
    /// runs 10 seconds when given neither --timeout nor --walks.
    #[arg(long)]
    timeout: Option<u64>,
    /// With `--strategy sim`: the seed of the random walks (the same seed and walk budget give
    /// the same walks and verdict, on any number of threads). Default 0.
    #[arg(long)]
    seed: Option<u64>,
    /// With `--strategy sim`: stop after this many walks (at least 1). Without it (and without
    /// --timeout) sim runs 10 seconds.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    walks: Option<u64>,
    /// Exit 0 when the search was cut short but found nothing against the claim (the report still
    /// says `incomplete`).
    #[arg(long)]
    allow_incomplete: bool,
    /// Print the report as JSON (schema in docs/checking.md, "JSON report").
    #[arg(long)]
    json: bool,
    /// Write the verdicts as JUnit XML to this file, one test case per property.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Seconds between progress lines on standard error when it is not a terminal.
    #[arg(long, hide = true, default_value_t = 5.0)]
    progress_interval: f64,
    /// Write the counterexample as a Mermaid sequenceDiagram to this file.
    #[arg(long, value_name = "FILE")]
    mermaid: Option<PathBuf>,
    /// Succeed when this property is violated (any other property violated is reported beside
    /// it); fail when an exhaustive search shows it holds.
    #[arg(long, value_name = "PROPERTY")]
    expect_violation: Option<String>,
    /// Write the counterexample to a file (JSON) for `replay` and `explore --counterexample`.
    #[arg(long, value_name = "FILE", alias = "trace-out")]
    counterexample_out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct MutantsArgs {
    /// Checker threads for the exhaustive checks (the shortest-counterexample searches are
    /// single-threaded breadth-first).
    #[arg(long, default_value = "2", value_parser = parse_threads)]
    threads: usize,
    /// Print the table as JSON.
    #[arg(long)]
    json: bool,
    /// Seconds between progress lines on standard error when it is not a terminal.
    #[arg(long, hide = true, default_value_t = 5.0)]
    progress_interval: f64,
}

#[derive(clap::Args, Debug)]
struct ExploreArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Where to serve the Explorer (port 0: any free port; the one chosen is printed).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Checker threads (at least 1).
    #[arg(long, default_value = "2", value_parser = parse_threads)]
    threads: usize,
    /// Open the Explorer on this counterexample file (its configuration replaces the model
    /// options).
    #[arg(long, value_name = "FILE", alias = "trace")]
    counterexample: Option<PathBuf>,
}

/// Restores the default action of SIGPIPE, so `aurora-redo check | head` ends quietly when the
/// reader goes away instead of panicking on a failed print (Rust ignores SIGPIPE by default).
fn die_quietly_on_closed_pipes() {
    #[cfg(unix)]
    // SAFETY: called once at start-up, before any other thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Caps glibc's malloc at two arenas. The engine's threads allocate on one thread and free on
/// another all the time; with an arena per thread, freed memory stayed in arenas no thread
/// reused, and the peak RSS of a long `run` wandered with scheduling (45 to 82 MiB for the same
/// million records) rather than following what the engine holds.
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called once, before the command starts any thread; mallopt only sets a parameter
    // of the allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    die_quietly_on_closed_pipes();
    match Cli::parse().command {
        Command::Check(args) => check(args),
        Command::Mutants(args) => mutants(args),
        Command::Explore(args) => explore(args),
        Command::Replay(args) => replay(args),
        Command::Run(args) => {
            few_malloc_arenas();
            run::run(args)
        }
        Command::Bench(args) => {
            few_malloc_arenas();
            bench::bench(args)
        }
        Command::Recover(args) => recover::recover(args),
        Command::SwarmReport(args) => swarm_report(args),
    }
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(USAGE)
}

/// Sets the hidden `--progress-interval`, rejecting what is not a positive number of seconds.
fn set_progress_interval(seconds: f64) -> Result<(), String> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!(
            "--progress-interval must be a positive number of seconds, not {seconds}"
        ));
    }
    checking::set_progress_interval(Duration::from_secs_f64(seconds));
    Ok(())
}

/// The reductions of `--reduce`.
#[derive(Clone, Debug)]
struct Reductions(Vec<Reduction>);

fn parse_reductions(s: &str) -> Result<Reductions, String> {
    if s == "none" {
        return Ok(Reductions(Vec::new()));
    }
    let mut list: Vec<Reduction> = s.split(',').map(str::parse).collect::<Result<_, _>>()?;
    list.sort();
    list.dedup();
    Ok(Reductions(list))
}

/// The reductions a check of `asked` applies: those `--reduce` names (each must apply), or else
/// the preset's own where they apply (the report names those used). Random walks take the system
/// as it is (their replay command names no reduction).
fn reductions_to_apply(args: &CheckArgs, asked: &Config) -> Result<Vec<Reduction>, String> {
    let sim = args.strategy == Strategy::Sim;
    match &args.reduce {
        Some(Reductions(list)) if sim && !list.is_empty() => {
            Err("--reduce goes with an exhaustive search (--strategy dfs or bfs)".into())
        }
        Some(Reductions(list)) => Ok(list.clone()),
        None if sim => Ok(Vec::new()),
        None => Ok(reduction::preset_reductions(args.model.preset)
            .iter()
            .copied()
            .filter(|r| r.refusal(asked).is_none())
            .collect()),
    }
}

fn check(args: CheckArgs) -> ExitCode {
    if let Err(message) = set_progress_interval(args.progress_interval) {
        return usage_error(message);
    }
    let asked = match args.model.config() {
        Ok(config) => config,
        Err(message) => return usage_error(message),
    };
    let sim = args.strategy == Strategy::Sim;
    let reductions = match reductions_to_apply(&args, &asked) {
        Ok(reductions) => reductions,
        Err(message) => return usage_error(message),
    };
    let config = match reduction::reduce(&asked, &reductions) {
        Ok(config) => config,
        Err(message) => return usage_error(message),
    };
    let model_properties: Vec<&str> = {
        use stateright::Model;
        config
            .clone()
            .into_model()
            .properties()
            .iter()
            .map(|p| p.name)
            .collect()
    };
    if let Some(expected) = &args.expect_violation {
        if !model_properties.contains(&expected.as_str()) {
            return usage_error(format!(
                "unknown property '{expected}' for this configuration (expected one of: {})",
                model_properties.join(", ")
            ));
        }
    }
    if !sim && (args.walks.is_some() || args.seed.is_some()) {
        return usage_error("--seed and --walks go with --strategy sim");
    }
    let timeout = args.timeout.map(Duration::from_secs);
    let run = Run {
        config: config.clone(),
        strategy: args.strategy,
        threads: args.threads,
        timeout,
        stop: Stop::Never,
        progress: true,
    };
    let mut report = if sim {
        let time = match (timeout, args.walks) {
            (None, None) => Some(checking::DEFAULT_SIMULATION_TIME),
            (time, _) => time,
        };
        simulation::simulate(
            &run,
            simulation::Budget {
                seed: args.seed.unwrap_or(0),
                walks: args.walks,
                time,
            },
        )
    } else {
        checking::check(&run)
    };
    if !reductions.is_empty() {
        report.reduced_from = Some(asked.clone());
        report.reductions = reductions;
    }
    // A walk's counterexample is kept as the walk took it, so that its seed replays it.
    if !sim {
        checking::shorten_counterexamples(&mut report, Duration::from_secs(60));
    }
    let expected = args.expect_violation.as_deref();
    if args.json {
        println!("{}", report.to_json(expected, args.allow_incomplete));
    } else {
        checking::print(&report);
        checking::print_verdict(&report, expected, args.allow_incomplete);
    }
    if let Some(file) = &args.junit {
        let classname = junit::classname(args.model.preset, &asked);
        if let Err(e) = junit::write(&report, &classname, expected, file) {
            return usage_error(e);
        }
        eprintln!("wrote the JUnit report to {}", file.display());
    }
    let violations = report.violations();
    let chosen = args
        .expect_violation
        .as_deref()
        .filter(|p| violations.contains(p))
        .or_else(|| violations.first().copied());
    if let Some(file) = &args.counterexample_out {
        match chosen.and_then(|name| report.path(name).map(|path| (name, path))) {
            Some((name, path)) => {
                let written = CounterexampleFile::of_check(&report.config, Some(name), path)
                    .and_then(|trace| trace.write(file));
                if let Err(e) = written {
                    return usage_error(e);
                }
                eprintln!("wrote the counterexample of {name} to {}", file.display());
            }
            None => eprintln!("no counterexample: nothing written to {}", file.display()),
        }
    }
    if let Some(file) = &args.mermaid {
        match chosen.and_then(|name| report.path(name)) {
            Some(path) => {
                let diagram = mermaid(&config.clone().into_model(), &path.clone().into_vec());
                if let Err(e) = std::fs::write(file, diagram) {
                    eprintln!("error: cannot write {}: {e}", file.display());
                    return ExitCode::from(USAGE);
                }
                eprintln!(
                    "wrote the counterexample as a Mermaid diagram to {}",
                    file.display()
                );
            }
            None => eprintln!("no counterexample: nothing written to {}", file.display()),
        }
    }
    ExitCode::from(report.exit_status(expected, args.allow_incomplete))
}

fn mutants(args: MutantsArgs) -> ExitCode {
    if let Err(message) = set_progress_interval(args.progress_interval) {
        return usage_error(message);
    }
    checking::report_progress_in_every_search();
    let subjects = mutants::Subject::all();
    let total = subjects.len();
    let rows: Vec<_> = subjects
        .into_iter()
        .enumerate()
        .map(|(i, subject)| {
            eprintln!("mutant {}/{total}: {}", i + 1, subject.name());
            mutants::run_mutant(subject, args.threads)
        })
        .collect();
    let controls: Vec<_> = mutants::NETWORKS
        .into_iter()
        .map(|network| {
            eprintln!("control: no bug, {network} network");
            mutants::run_control(network, args.threads)
        })
        .collect();
    if args.json {
        let controls: Vec<_> = controls
            .iter()
            .map(|c| {
                serde_json::json!({ "config": c.config, "unique_states": c.unique_states,
                                    "violations": c.violations() })
            })
            .collect();
        let out = serde_json::json!({
            "mutants": rows,
            "sole_catchers": mutants::coverage(&rows),
            "controls": controls,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("rows serialize")
        );
    } else {
        mutants::print_table(&rows, &controls);
    }
    let all_caught = mutants::all_caught(&rows);
    if !all_caught && !args.json {
        println!("some mutant was not caught by its expected property");
    }
    if all_caught && controls.iter().all(|c| c.all_good()) {
        ExitCode::from(EXIT_PASS)
    } else {
        ExitCode::from(FAILED)
    }
}

fn explore(args: ExploreArgs) -> ExitCode {
    let (config, trace) = match &args.counterexample {
        Some(file) => match CounterexampleFile::read(file) {
            Ok(trace) => (trace.config.clone(), Some(trace)),
            Err(message) => return usage_error(message),
        },
        None => match args.model.config() {
            Ok(config) => (config, None),
            Err(message) => return usage_error(message),
        },
    };
    match explore::serve(config, args.addr, args.threads, trace.as_ref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => usage_error(message),
    }
}

fn replay(args: ReplayArgs) -> ExitCode {
    let bug = match args.bug.as_deref().map(str::parse::<Bug>).transpose() {
        Ok(bug) => bug,
        Err(message) => return usage_error(message),
    };
    let trace = match CounterexampleFile::read(&args.file) {
        Ok(trace) => trace,
        Err(message) => return usage_error(message),
    };
    match replay::replay(&trace, bug) {
        Ok(outcome) => {
            replay::print(&trace, bug, &outcome);
            ExitCode::from(outcome.exit_status())
        }
        Err(message) => usage_error(message),
    }
}

fn swarm_report(args: SwarmReportArgs) -> ExitCode {
    let report = match swarm_report::merge(&args.files) {
        Ok(report) => report,
        Err(message) => return usage_error(message),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a merged report serializes")
        );
    } else {
        swarm_report::print(&report);
    }
    ExitCode::from(report.exit_status)
}
