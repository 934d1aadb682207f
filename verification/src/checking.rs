//! Running the model checker and reporting what it found: statistics, one verdict per property,
//! and counterexamples as numbered steps.

use aurora_redo_model::model::Action;
use aurora_redo_model::properties::explain;
use aurora_redo_model::render::numbered_steps;
use aurora_redo_model::{Config, RedoModel, State};
use serde::Serialize;
use stateright::{Checker, Expectation, HasDiscoveries, Model, Path, UniformChooser};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How the checker walks the state space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Depth-first, with symmetry reduction over node renamings (exhaustive).
    Dfs,
    /// Breadth-first, without symmetry (exhaustive; shortest counterexamples single-threaded).
    Bfs,
    /// Random walks until the time limit (not exhaustive).
    Sim,
}

/// When to stop early.
#[derive(Clone, Debug)]
pub enum Stop {
    /// Explore everything (or until the time limit).
    Never,
    /// As soon as this property has a discovery.
    On(&'static str),
}

#[derive(Clone, Debug)]
pub struct Run {
    pub config: Config,
    pub strategy: Strategy,
    pub threads: usize,
    pub timeout: Option<Duration>,
    pub stop: Stop,
    /// Print a progress line to standard error while checking (only on a terminal).
    pub progress: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// An `always` or `eventually` property with no counterexample.
    Holds,
    /// An `always` or `eventually` property with a counterexample.
    Violated,
    /// A `sometimes` property with an example.
    Reached,
    /// A `sometimes` property with no example: the property it backs may be vacuous.
    NotReached,
}

#[derive(Clone, Debug, Serialize)]
pub struct PropertyReport {
    pub name: &'static str,
    pub kind: &'static str,
    pub verdict: Verdict,
    /// The counterexample (or example) as numbered steps.
    pub steps: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub config: Config,
    pub strategy: Strategy,
    pub threads: usize,
    pub states: usize,
    pub unique_states: usize,
    pub max_depth: usize,
    pub seconds: f64,
    pub states_per_second: f64,
    /// False when a time limit or an early stop cut the search short.
    pub complete: bool,
    pub properties: Vec<PropertyReport>,
    #[serde(skip)]
    pub paths: Vec<(&'static str, Path<State, Action>)>,
}

impl Report {
    /// Names of the `always`/`eventually` properties with a counterexample.
    pub fn violations(&self) -> BTreeSet<&'static str> {
        self.properties
            .iter()
            .filter(|p| p.verdict == Verdict::Violated)
            .map(|p| p.name)
            .collect()
    }

    pub fn unreached(&self) -> Vec<&'static str> {
        self.properties
            .iter()
            .filter(|p| p.verdict == Verdict::NotReached)
            .map(|p| p.name)
            .collect()
    }

    pub fn path(&self, name: &str) -> Option<&Path<State, Action>> {
        self.paths.iter().find(|(n, _)| *n == name).map(|(_, p)| p)
    }

    /// Every invariant holds and every reachability fact was reached.
    pub fn all_good(&self) -> bool {
        self.violations().is_empty() && self.unreached().is_empty()
    }
}

/// Checks a configuration and reports.
pub fn check(run: &Run) -> Report {
    let model = run.config.clone().into_model();
    let properties = model.properties();
    let mut builder = model.checker().threads(run.threads.max(1));
    if let Some(timeout) = run.timeout {
        builder = builder.timeout(timeout);
    }
    if let Stop::On(name) = run.stop {
        builder = builder.finish_when(HasDiscoveries::AnyOf(BTreeSet::from([name])));
    }
    let started = Instant::now();
    let checker: Box<dyn Checker<RedoModel>> = match run.strategy {
        Strategy::Dfs => Box::new(builder.symmetry_fn(RedoModel::representative).spawn_dfs()),
        Strategy::Bfs => Box::new(builder.spawn_bfs()),
        Strategy::Sim => Box::new(builder.spawn_simulation(0, UniformChooser)),
    };
    let show_progress = run.progress && std::io::stderr().is_terminal();
    // `join` can hang on some checkers; poll instead.
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(10));
        if show_progress {
            eprint!(
                "\r  {} states, {} unique, {:.0}s ",
                checker.state_count(),
                checker.unique_state_count(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    if show_progress {
        eprint!("\r{:60}\r", "");
    }
    let seconds = started.elapsed().as_secs_f64();
    let discoveries = checker.discoveries();
    let timed_out = run.timeout.is_some_and(|t| started.elapsed() >= t);
    let stopped_early = match run.stop {
        Stop::On(name) => discoveries.contains_key(name),
        Stop::Never => false,
    };
    let mut reports = Vec::new();
    let mut paths = Vec::new();
    for property in &properties {
        let path = discoveries.get(property.name);
        let (kind, verdict) = match (&property.expectation, path.is_some()) {
            (Expectation::Always, false) => ("always", Verdict::Holds),
            (Expectation::Always, true) => ("always", Verdict::Violated),
            (Expectation::Eventually, false) => ("eventually", Verdict::Holds),
            (Expectation::Eventually, true) => ("eventually", Verdict::Violated),
            (Expectation::Sometimes, true) => ("sometimes", Verdict::Reached),
            (Expectation::Sometimes, false) => ("sometimes", Verdict::NotReached),
        };
        let steps = path.map(|p| numbered_steps(&p.clone().into_vec()));
        if let Some(path) = path {
            paths.push((property.name, path.clone()));
        }
        reports.push(PropertyReport {
            name: property.name,
            kind,
            verdict,
            steps,
        });
    }
    let states = checker.state_count();
    Report {
        config: run.config.clone(),
        strategy: run.strategy,
        threads: run.threads,
        states,
        unique_states: checker.unique_state_count(),
        max_depth: checker.max_depth(),
        seconds,
        states_per_second: states as f64 / seconds.max(1e-9),
        complete: run.strategy != Strategy::Sim && !timed_out && !stopped_early,
        properties: reports,
        paths,
    }
}

/// Replaces each counterexample a search found (the checker keeps the last violating state it
/// happened to visit, however deep) with a shortest one, from a breadth-first search that stops at
/// the first violating state of the shallowest depth (`crate::shortest`). Keeps the original if
/// the search exceeds `budget`.
pub fn shorten_counterexamples(report: &mut Report, budget: Duration) {
    for name in report.violations() {
        let shortest = crate::shortest::shortest_counterexample(&report.config, name, Some(budget));
        let Some(path) = shortest.path else {
            continue;
        };
        let steps = numbered_steps(&path.clone().into_vec());
        if let Some(p) = report.properties.iter_mut().find(|p| p.name == name) {
            p.steps = Some(steps);
        }
        report.paths.retain(|(n, _)| *n != name);
        report.paths.push((name, path));
    }
}

/// Prints a report for a person to read.
pub fn print(report: &Report) {
    println!("configuration: {}", report.config);
    println!(
        "strategy: {:?}, threads: {}{}",
        report.strategy,
        report.threads,
        if report.strategy == Strategy::Dfs {
            ", symmetry: node and replica renamings"
        } else {
            ""
        }
    );
    println!(
        "states: {}  unique: {}  max depth: {}  seconds: {:.2}  states/s: {:.0}{}",
        report.states,
        report.unique_states,
        report.max_depth,
        report.seconds,
        report.states_per_second,
        if report.complete {
            ""
        } else {
            "  (search not exhaustive)"
        }
    );
    println!();
    for p in &report.properties {
        let verdict = match p.verdict {
            Verdict::Holds => "holds",
            Verdict::Violated => "VIOLATED",
            Verdict::Reached => "reached",
            Verdict::NotReached => "NOT REACHED",
        };
        println!("  {:<10} {:<30} {verdict}", p.kind, p.name);
    }
    for p in report
        .properties
        .iter()
        .filter(|p| p.verdict == Verdict::Violated)
    {
        println!();
        println!("{} is violated. Counterexample:", p.name);
        for step in p.steps.iter().flatten() {
            println!("  {step}");
        }
        println!("Why it matters: {}", explain(p.name));
    }
}
