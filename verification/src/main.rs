//! `aurora-redo`: check, explore and mutate the model of Aurora's redo-log protocol; run,
//! benchmark and replay counterexamples on its implementation.

use aurora_redo::checking::{self, Run, Stop, Strategy};
use aurora_redo::counterexample::CounterexampleFile;
use aurora_redo::model_args::ModelArgs;
use aurora_redo::{bench, explore, mutants, replay, run};
use aurora_redo_model::render::mermaid;
use aurora_redo_model::Bug;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit status: a property failed.
const FAILED: u8 = 1;
/// Exit status: the command line was wrong (clap uses it too).
const USAGE: u8 = 2;

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
    /// Check a configuration exhaustively and report every property's verdict.
    Check(CheckArgs),
    /// Check every seeded bug and show which invariant catches it.
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
    /// Checker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Stop after this many seconds (the report then says the search is not exhaustive);
    /// `sim` runs 10 seconds unless told otherwise.
    #[arg(long)]
    timeout: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Write the counterexample as a Mermaid sequenceDiagram to this file.
    #[arg(long, value_name = "FILE")]
    mermaid: Option<PathBuf>,
    /// Succeed exactly when this property, and only it, is violated.
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
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Print the table as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct ExploreArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Where to serve the Explorer.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Checker threads.
    #[arg(long, default_value_t = 2)]
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

fn main() -> ExitCode {
    die_quietly_on_closed_pipes();
    match Cli::parse().command {
        Command::Check(args) => check(args),
        Command::Mutants(args) => mutants(args),
        Command::Explore(args) => explore(args),
        Command::Replay(args) => replay(args),
        Command::Run(args) => run::run(args),
        Command::Bench(args) => bench::bench(args),
    }
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(USAGE)
}

fn check(args: CheckArgs) -> ExitCode {
    let config = match args.model.config() {
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
    let timeout = args
        .timeout
        .or((args.strategy == Strategy::Sim).then_some(10))
        .map(Duration::from_secs);
    let mut report = checking::check(&Run {
        config: config.clone(),
        strategy: args.strategy,
        threads: args.threads,
        timeout,
        stop: Stop::Never,
        progress: !args.json,
    });
    checking::shorten_counterexamples(&mut report, Duration::from_secs(60));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a report serializes")
        );
    } else {
        checking::print(&report);
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
                if let Err(e) = CounterexampleFile::from_path(&config, Some(name), path).write(file)
                {
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
    let ok = match &args.expect_violation {
        Some(expected) => {
            let only = violations.len() == 1 && violations.contains(expected.as_str());
            if !args.json {
                println!();
                if only {
                    println!("as expected, {expected} and only it is violated");
                } else {
                    println!(
                        "expected {expected} and only it to be violated; violated: {violations:?}"
                    );
                }
            }
            only
        }
        None => {
            let unreached = report.unreached();
            if !unreached.is_empty() && !args.json {
                println!();
                println!("never reached (a property they back may be vacuous): {unreached:?}");
            }
            report.all_good()
        }
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILED)
    }
}

fn mutants(args: MutantsArgs) -> ExitCode {
    let rows = mutants::run_all(args.threads);
    let controls: Vec<_> = mutants::NETWORKS
        .into_iter()
        .map(|network| mutants::run_control(network, args.threads))
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
        ExitCode::SUCCESS
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
