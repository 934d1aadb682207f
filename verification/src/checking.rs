//! Running the model checker and reporting what it found: statistics, one verdict per property,
//! and counterexamples as numbered steps.

use aurora_redo_model::model::Action;
use aurora_redo_model::properties::{eventually_converged_evidence, explain, EVENTUALLY_CONVERGED};
use aurora_redo_model::render::numbered_steps;
use aurora_redo_model::{Config, RedoModel, Reduction, State};
use serde::Serialize;
use stateright::{Checker, Expectation, HasDiscoveries, Model, Path};
use std::collections::BTreeSet;
use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The version of the `check --json` layout (docs/checking.md, "JSON report"). Bumped when a field changes
/// meaning or goes away; new fields may appear without a bump.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// How the checker walks the state space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Depth-first, with symmetry reduction over node renamings (exhaustive).
    Dfs,
    /// Breadth-first, without symmetry (exhaustive; shortest counterexamples single-threaded).
    Bfs,
    /// Seeded random walks within a time or walk budget (not exhaustive; `crate::simulation`).
    Sim,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Dfs => "dfs",
            Strategy::Bfs => "bfs",
            Strategy::Sim => "sim",
        })
    }
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
    /// Report progress on standard error while checking: one line kept up to date on a terminal,
    /// otherwise a line every few seconds (see [`set_progress_interval`]).
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
    /// The search was cut short before finding a counterexample (or an example): nothing is
    /// shown either way.
    Unknown,
}

/// Why a search was not exhaustive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutShort {
    /// The time limit (`--timeout`) ran out.
    Timeout(Duration),
    /// Random walks (`--strategy sim`) never cover the whole state space.
    Simulation,
    /// The search stopped at the first violation of one property.
    StoppedAtViolation(&'static str),
}

impl fmt::Display for CutShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CutShort::Timeout(t) => write!(f, "the time limit of {} s ran out", t.as_secs_f64()),
            CutShort::Simulation => f.write_str("random walks (strategy sim) are never exhaustive"),
            CutShort::StoppedAtViolation(p) => {
                write!(f, "it stopped at the first violation of {p}")
            }
        }
    }
}

/// The verdict of a whole check, which decides its exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overall {
    /// Exhaustive; every invariant holds and every reachability fact was reached (with an
    /// expected violation: that property is violated; a counterexample is real however the search
    /// ended, and any other property violated is reported beside it).
    Pass,
    /// A property is violated, or (exhaustive search) a reachability fact is never reached, or
    /// (with an expected violation) the expectation is shown wrong.
    Fail,
    /// The search was cut short before either could be shown.
    Incomplete,
}

impl fmt::Display for Overall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Overall::Pass => "pass",
            Overall::Fail => "fail",
            Overall::Incomplete => "incomplete",
        })
    }
}

/// Exit status of `check` (and `mutants`): the verdict is `pass`.
pub const EXIT_PASS: u8 = 0;
/// Exit status: the verdict is `fail`.
pub const EXIT_FAIL: u8 = 1;
/// Exit status: the command line was wrong (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the verdict is `incomplete` (and `--allow-incomplete` was not given, or cannot
/// turn it into a success).
pub const EXIT_INCOMPLETE: u8 = 3;

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
    /// False when a time limit, random walks or an early stop cut the search short.
    pub complete: bool,
    /// Why the search was cut short, when it was.
    #[serde(skip)]
    pub cut_short: Option<CutShort>,
    /// (The JSON report lists the properties with structured steps instead.)
    #[serde(skip)]
    pub properties: Vec<PropertyReport>,
    #[serde(skip)]
    pub paths: Vec<(&'static str, Path<State, Action>)>,
    /// For `--strategy sim`: the seed, the walks covered, the budget and how to replay them.
    pub simulation: Option<crate::simulation::Simulation>,
    /// The configuration asked about, when `config` is its reduction (`reductions`); the
    /// verdicts are that configuration's (`aurora_redo_model::reduction`).
    pub reduced_from: Option<Config>,
    #[serde(serialize_with = "reduction_names")]
    pub reductions: Vec<Reduction>,
}

fn reduction_names<S: serde::Serializer>(list: &[Reduction], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(list.iter().map(|r| r.name()))
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

    /// The search was exhaustive, every invariant holds and every reachability fact was reached.
    pub fn all_good(&self) -> bool {
        self.complete && self.violations().is_empty() && self.unreached().is_empty()
    }

    /// The verdict of the whole check. Without `expected`: `fail` on any violation (a
    /// counterexample is real however the search ended) or, after an exhaustive search, on a
    /// reachability fact never reached; `pass` after an exhaustive search otherwise;
    /// `incomplete` when the search was cut short before any violation. With `expected` (a
    /// property that must be violated): `pass` when it is violated (its counterexample is real;
    /// other violations are reported beside it, and `mutants` is where the exact set of catchers
    /// is established); `fail` when an exhaustive search does not violate it; `incomplete` when
    /// the search was cut short before it was.
    pub fn overall(&self, expected: Option<&str>) -> Overall {
        let violations = self.violations();
        match expected {
            None if !violations.is_empty() => Overall::Fail,
            None if !self.complete => Overall::Incomplete,
            None if !self.unreached().is_empty() => Overall::Fail,
            None => Overall::Pass,
            Some(p) if violations.contains(p) => Overall::Pass,
            Some(_) if !self.complete => Overall::Incomplete,
            Some(_) => Overall::Fail,
        }
    }

    /// The exit status of `check` for this report. `allow_incomplete` turns `incomplete` into 0
    /// when the search found nothing wrong before it was cut short.
    pub fn exit_status(&self, expected: Option<&str>, allow_incomplete: bool) -> u8 {
        match self.overall(expected) {
            Overall::Pass => EXIT_PASS,
            Overall::Fail => EXIT_FAIL,
            Overall::Incomplete => {
                if allow_incomplete && expected.is_none() {
                    EXIT_PASS
                } else {
                    EXIT_INCOMPLETE
                }
            }
        }
    }

    /// The structured steps of the path recorded for `name`, if any.
    pub fn structured_steps(&self, name: &str) -> Option<Vec<crate::steps::Step>> {
        self.path(name)
            .map(|p| crate::steps::steps(&p.clone().into_vec()))
    }
}

/// How often a progress line is printed when standard error is not a terminal, in milliseconds.
static PROGRESS_INTERVAL_MS: AtomicU64 = AtomicU64::new(5_000);
/// Report progress in every search, whatever its `Run::progress` says (`mutants`).
static PROGRESS_IN_EVERY_SEARCH: AtomicBool = AtomicBool::new(false);

/// Sets how often searches print a progress line when standard error is not a terminal.
pub fn set_progress_interval(interval: Duration) {
    let ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    PROGRESS_INTERVAL_MS.store(ms, Ordering::Relaxed);
}

/// Makes every search of this process report progress, as if its `Run::progress` were set.
pub fn report_progress_in_every_search() {
    PROGRESS_IN_EVERY_SEARCH.store(true, Ordering::Relaxed);
}

/// One progress line's figures: a simulation's walks instead of unique states (walks do not tell
/// states apart).
fn progress_figures(
    states: usize,
    unique: Option<usize>,
    walks: Option<u64>,
    elapsed: Duration,
) -> String {
    let seconds = elapsed.as_secs_f64();
    let counts = match (walks, unique) {
        (Some(walks), _) => format!("{walks} walks, {states} states"),
        (None, Some(unique)) => format!("{states} states, {unique} unique"),
        (None, None) => format!("{states} states"),
    };
    format!(
        "{counts}, {:.0} states/s, {seconds:.0} s elapsed",
        states as f64 / seconds.max(1e-9)
    )
}

/// Progress on standard error while a search runs: one line kept up to date on a terminal,
/// otherwise a line every few seconds (see [`set_progress_interval`]).
pub(crate) struct Progress {
    show: bool,
    on_terminal: bool,
    interval: Duration,
    started: Instant,
    next_line: Instant,
}

impl Progress {
    /// Progress for a search that started at `started`; shown when `requested` (or in every
    /// search, see [`report_progress_in_every_search`]).
    pub(crate) fn new(requested: bool, started: Instant) -> Progress {
        let interval = Duration::from_millis(PROGRESS_INTERVAL_MS.load(Ordering::Relaxed));
        Progress {
            show: requested || PROGRESS_IN_EVERY_SEARCH.load(Ordering::Relaxed),
            on_terminal: std::io::stderr().is_terminal(),
            interval,
            started,
            next_line: started + interval,
        }
    }

    /// Reports the figures so far, if it is time to.
    pub(crate) fn tick(&mut self, states: usize, unique: Option<usize>, walks: Option<u64>) {
        if !self.show {
            return;
        }
        let figures = || progress_figures(states, unique, walks, self.started.elapsed());
        if self.on_terminal {
            eprint!("\r  {} ", figures());
        } else if Instant::now() >= self.next_line {
            eprintln!("progress: {}", figures());
            self.next_line += self.interval;
        }
    }

    /// Clears the terminal's progress line.
    pub(crate) fn finish(&self) {
        if self.show && self.on_terminal {
            eprint!("\r{:80}\r", "");
        }
    }
}

/// The time budget of `--strategy sim` when neither a time nor a walk budget is given.
pub const DEFAULT_SIMULATION_TIME: Duration = Duration::from_secs(10);

/// Checks a configuration and reports. `--strategy sim` runs seed 0 within `run.timeout` (or
/// [`DEFAULT_SIMULATION_TIME`]); [`crate::simulation::simulate`] takes any seed and budget.
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
        Strategy::Sim => {
            let budget = crate::simulation::Budget {
                seed: 0,
                walks: None,
                time: run.timeout.or(Some(DEFAULT_SIMULATION_TIME)),
            };
            return crate::simulation::simulate(run, budget);
        }
    };
    let mut progress = Progress::new(run.progress, started);
    // `join` can hang on some checkers; poll instead.
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(10));
        progress.tick(
            checker.state_count(),
            Some(checker.unique_state_count()),
            None,
        );
    }
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    let discoveries = checker.discoveries();
    let timed_out = run.timeout.is_some_and(|t| started.elapsed() >= t);
    let stopped_early = match run.stop {
        Stop::On(name) => discoveries.contains_key(name),
        Stop::Never => false,
    };
    let cut_short = match (run.timeout, &run.stop) {
        (_, Stop::On(name)) if stopped_early => Some(CutShort::StoppedAtViolation(name)),
        (Some(t), _) if timed_out => Some(CutShort::Timeout(t)),
        _ => None,
    };
    let complete = cut_short.is_none();
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
        // Without a counterexample (or an example), a cut-short search shows nothing.
        let verdict = match verdict {
            Verdict::Holds | Verdict::NotReached if !complete => Verdict::Unknown,
            verdict => verdict,
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
        complete,
        cut_short,
        properties: reports,
        paths,
        simulation: None,
        reduced_from: None,
        reductions: Vec::new(),
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
    match &report.reduced_from {
        None => println!("configuration: {}", report.config),
        Some(asked) => {
            println!("configuration: {asked}");
            println!(
                "checked as: {} (a reduction with the same verdicts; docs/checking.md, \"Reductions\")",
                report.config
            );
            for r in &report.reductions {
                println!("  {}: {}", r.name(), r.describe());
            }
        }
    }
    println!(
        "strategy: {}, threads: {}{}",
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
    if let Some(sim) = &report.simulation {
        println!(
            "seed: {}  walks: {}  stopped by: {}  (walks do not tell states apart: states counts \
             visits)",
            sim.seed,
            sim.walks,
            match sim.stopped_by {
                crate::simulation::StoppedBy::Violation => "a violation",
                crate::simulation::StoppedBy::WalkBudget => "the walk budget",
                crate::simulation::StoppedBy::TimeBudget => "the time budget",
            }
        );
        println!("replay: {}", sim.replay_command);
    }
    println!();
    for p in &report.properties {
        let verdict = match p.verdict {
            Verdict::Holds => "holds",
            Verdict::Violated => "VIOLATED",
            Verdict::Reached => "reached",
            Verdict::NotReached => "NOT REACHED",
            Verdict::Unknown if p.kind == "sometimes" => "not reached so far (search cut short)",
            Verdict::Unknown => "no violation found so far (search cut short)",
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
        if p.name == EVENTUALLY_CONVERGED {
            let model = report.config.clone().into_model();
            if let Some(last) = report.path(p.name).map(|path| path.last_state()) {
                let missing = eventually_converged_evidence(&model, last);
                println!("The run ends with: {}", missing.join(", "));
            }
        }
        println!("Why it matters: {}", explain(p.name));
    }
}

/// The `check --json` report (docs/checking.md, "JSON report").
#[derive(Serialize)]
pub struct JsonReport<'a> {
    pub schema_version: u32,
    /// `pass`, `fail` or `incomplete`, as [`Report::overall`].
    pub verdict: Overall,
    /// The exit status the command ends with.
    pub exit_status: u8,
    /// Why the search was cut short (`null` when it was exhaustive).
    pub incomplete_reason: Option<String>,
    /// The property `--expect-violation` names, if any.
    pub expect_violation: Option<&'a str>,
    /// The configuration and the search's statistics, `complete` among them: the check's own
    /// [`Report`] fields.
    #[serde(flatten)]
    pub search: &'a Report,
    pub properties: Vec<JsonProperty>,
}

/// One property in the JSON report.
#[derive(Serialize)]
pub struct JsonProperty {
    pub name: &'static str,
    /// `always`, `eventually` or `sometimes`.
    pub kind: &'static str,
    pub verdict: Verdict,
    /// The counterexample (or, for `sometimes`, the example) step by step; `null` if none.
    pub steps: Option<Vec<crate::steps::Step>>,
}

impl Report {
    /// The JSON report of this check, pretty-printed.
    pub fn to_json(&self, expected: Option<&str>, allow_incomplete: bool) -> String {
        let report = JsonReport {
            schema_version: JSON_SCHEMA_VERSION,
            verdict: self.overall(expected),
            exit_status: self.exit_status(expected, allow_incomplete),
            incomplete_reason: self.cut_short.map(|c| c.to_string()),
            expect_violation: expected,
            search: self,
            properties: self
                .properties
                .iter()
                .map(|p| JsonProperty {
                    name: p.name,
                    kind: p.kind,
                    verdict: p.verdict.clone(),
                    steps: self.structured_steps(p.name),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&report).expect("a report serializes")
    }

    /// The `INCOMPLETE: ...` sentence for a search that was cut short.
    pub fn incomplete_sentence(&self) -> String {
        let reason = self.cut_short.map_or(String::new(), |c| format!(" ({c})"));
        format!(
            "INCOMPLETE: the search was cut short after {} of ? states{reason}; no property is \
             shown to hold",
            self.unique_states
        )
    }
}

/// Prints the verdict of the whole check, the last lines of the text report.
pub fn print_verdict(report: &Report, expected: Option<&str>, allow_incomplete: bool) {
    let violations: Vec<&str> = report.violations().into_iter().collect();
    let unreached = report.unreached();
    println!();
    if !unreached.is_empty() {
        println!(
            "never reached (a property they back may be vacuous): {}",
            unreached.join(", ")
        );
    }
    match report.overall(expected) {
        Overall::Pass => match expected {
            Some(p) => {
                let others: Vec<&str> = violations.iter().copied().filter(|v| *v != p).collect();
                let search = if report.complete {
                    "exhaustive search"
                } else {
                    "its counterexample is real; the search was cut short, so no other property \
                     is shown to hold"
                };
                if others.is_empty() && report.complete {
                    println!("PASS: as expected, {p} is violated, and nothing else ({search})")
                } else if others.is_empty() {
                    println!("PASS: as expected, {p} is violated ({search})")
                } else {
                    println!(
                        "PASS: as expected, {p} is violated; also violated: {} ({search})",
                        others.join(", ")
                    )
                }
            }
            None => println!(
                "PASS: exhaustive search; every invariant holds and every reachability fact was \
                 reached"
            ),
        },
        Overall::Fail => {
            let violated = if violations.is_empty() {
                "nothing".to_string()
            } else {
                violations.join(", ")
            };
            match expected {
                Some(p) => {
                    println!("FAIL: expected {p} to be violated; violated: {violated}")
                }
                None if violations.is_empty() => {
                    println!("FAIL: some reachability fact was never reached")
                }
                None => println!("FAIL: violated: {violated}"),
            }
        }
        Overall::Incomplete => {
            println!("{}", report.incomplete_sentence());
            if report.exit_status(expected, allow_incomplete) == EXIT_PASS {
                println!("(accepted as a success: --allow-incomplete)");
            }
        }
    }
}
