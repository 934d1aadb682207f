//! Seeded random walks (`check --strategy sim`): reproducible from a seed, on any number of
//! threads, within a walk budget and a time budget; the walks of a swarm's shards (one seed each)
//! are merged by `swarm-report` (`crate::swarm_report`).
//!
//! Walk `i` of seed `S` draws its choices from ChaCha8 seeded with `S`, on stream `i`: each walk is
//! fixed by `(S, i)` whichever thread runs it. Walks run in rounds; what a run covers is walks
//! `0..n` in index order, so the same seed and the same walk budget give the same walks, states
//! and verdict on one thread or several. A violation at walk `k` ends the run after walks `0..=k`,
//! whatever else was in flight, and the lowest such `k` wins. Only a time budget depends on the
//! machine: the report says how many walks it covered, and `--walks` with that number replays it.
//!
//! A walk starts from an initial state and takes uniformly chosen enabled steps until no step is
//! enabled, the state leaves the model's boundary, or it comes back to a state it has already
//! visited (a cycle). Every state it visits is judged against every property: the first state
//! that breaks an `always` property ends the walk and the run. An `eventually` property is judged,
//! as the exhaustive search does, only at a state with no successor. Walks do not tell states
//! apart from one another's: `states` counts visits.

use crate::checking::{CutShort, PropertyReport, Report, Run, Verdict};
use aurora_redo_model::model::Action;
use aurora_redo_model::render::numbered_steps;
use aurora_redo_model::{Config, RedoModel, State};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use stateright::{Expectation, Model, Path};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How far a simulation may go: a time budget, a walk budget, or both (whichever runs out
/// first). A violation ends it before either.
#[derive(Clone, Copy, Debug, Default)]
pub struct Budget {
    pub seed: u64,
    pub walks: Option<u64>,
    pub time: Option<Duration>,
}

/// What ended a simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoppedBy {
    /// A walk broke a property.
    Violation,
    /// The walk budget (`--walks`) was used up.
    WalkBudget,
    /// The time budget (`--timeout`) ran out.
    TimeBudget,
}

/// What a simulation covered, for the report (`simulation` in the JSON report).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Simulation {
    pub seed: u64,
    /// Walks covered: walks `0..walks` of this seed.
    pub walks: u64,
    /// The walk budget, if one was given.
    pub walk_budget: Option<u64>,
    /// The time budget in seconds, if one was given.
    pub time_budget_seconds: Option<f64>,
    pub stopped_by: StoppedBy,
    /// The walk (0-based) whose counterexample is reported, when one was found.
    pub counterexample_walk: Option<u64>,
    /// The command that replays exactly these walks (same seed, walk budget = `walks`).
    pub replay_command: String,
}

/// One walk's outcome.
struct Walk {
    index: u64,
    states: u64,
    depth: usize,
    /// The properties this walk broke (`always` at its last state; `eventually` at a state with
    /// no successor).
    violated: Vec<&'static str>,
    /// The `sometimes` properties it reached.
    reached: Vec<&'static str>,
    /// Its initial state and its steps, kept when it broke or reached something.
    path: Option<(State, Vec<Action>)>,
}

/// Picks an index below `n` (not 0) from a 64-bit draw: the high word of the product, so the
/// choice depends on every bit of the draw (bias at most `n / 2^64`).
fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// A state's 64-bit hash, with fixed keys (the same on every run), to spot a walk's cycles.
fn fingerprint(state: &State) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    state.hash(&mut hasher);
    hasher.finish()
}

/// Runs walk `index` of `seed`.
fn walk(model: &RedoModel, seed: u64, index: u64) -> Walk {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    let properties = model.properties();
    let mut init_states = model.init_states();
    let init = init_states.swap_remove(below(&mut rng, init_states.len()));
    let mut state = init.clone();
    let mut steps: Vec<Action> = Vec::new();
    let mut visited = HashSet::new();
    let mut pending_eventually: Vec<usize> = properties
        .iter()
        .enumerate()
        .filter(|(_, p)| p.expectation == Expectation::Eventually)
        .map(|(i, _)| i)
        .collect();
    let mut reached: Vec<&'static str> = Vec::new();
    let mut violated: Vec<&'static str> = Vec::new();
    let mut states = 0;
    let mut actions = Vec::new();
    loop {
        if !model.within_boundary(&state) || !visited.insert(fingerprint(&state)) {
            break;
        }
        states += 1;
        for (i, p) in properties.iter().enumerate() {
            let holds = (p.condition)(model, &state);
            match p.expectation {
                Expectation::Always if !holds => violated.push(p.name),
                Expectation::Sometimes if holds && !reached.contains(&p.name) => {
                    reached.push(p.name)
                }
                Expectation::Eventually if holds => pending_eventually.retain(|&e| e != i),
                _ => {}
            }
        }
        if !violated.is_empty() {
            break;
        }
        actions.clear();
        model.actions(&state, &mut actions);
        let next = loop {
            if actions.is_empty() {
                break None;
            }
            let action = actions.swap_remove(below(&mut rng, actions.len()));
            if let Some(next) = model.next_state(&state, action.clone()) {
                break Some((action, next));
            }
        };
        match next {
            Some((action, next)) => {
                steps.push(action);
                state = next;
            }
            None => {
                violated.extend(pending_eventually.iter().map(|&i| properties[i].name));
                break;
            }
        }
    }
    let keep = !violated.is_empty() || !reached.is_empty();
    Walk {
        index,
        states,
        depth: steps.len(),
        violated,
        reached,
        path: keep.then_some((init, steps)),
    }
}

/// Runs walks `first..end` of `seed` on `threads` threads. Returns the walks that count, in
/// index order: all of them, or those up to and including the lowest one that broke a property.
fn round(model: &RedoModel, seed: u64, first: u64, end: u64, threads: usize) -> Vec<Walk> {
    let next = AtomicU64::new(first);
    let lowest_violation = AtomicU64::new(u64::MAX);
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= end || index > lowest_violation.load(Ordering::Relaxed) {
                    break;
                }
                let w = walk(model, seed, index);
                if !w.violated.is_empty() {
                    lowest_violation.fetch_min(index, Ordering::Relaxed);
                }
                done.lock().expect("no walk panics").push(w);
            });
        }
    });
    let mut walks = done.into_inner().expect("no walk panics");
    walks.sort_by_key(|w| w.index);
    let cut = lowest_violation.into_inner();
    walks.retain(|w| w.index <= cut);
    walks
}

/// Walks per thread in one round: small enough to stop soon after a time budget runs out.
const WALKS_PER_THREAD_PER_ROUND: u64 = 32;

/// Runs a seeded simulation of `run.config` and reports as `check` does.
pub fn simulate(run: &Run, budget: Budget) -> Report {
    let model = run.config.clone().into_model();
    let threads = run.threads.max(1);
    let started = Instant::now();
    let mut progress = crate::checking::Progress::new(run.progress, started);
    let mut covered = 0u64;
    let mut states = 0u64;
    let mut max_depth = 0usize;
    // The lowest walk that broke a property, with its path and what it broke.
    let mut counterexample: Option<(u64, State, Vec<Action>, Vec<&'static str>)> = None;
    // Each `sometimes` property's example from the lowest walk that reached it.
    let mut examples: Vec<(&'static str, State, Vec<Action>)> = Vec::new();
    // At least one round, so that every report covers some walks and its replay command runs.
    let stopped_by = loop {
        let mut end = covered + WALKS_PER_THREAD_PER_ROUND * threads as u64;
        if let Some(w) = budget.walks {
            end = end.min(w);
        }
        for w in round(&model, budget.seed, covered, end, threads) {
            covered = w.index + 1;
            states += w.states;
            max_depth = max_depth.max(w.depth);
            if let Some((init, steps)) = w.path {
                for name in &w.reached {
                    if !examples.iter().any(|(n, _, _)| n == name) {
                        examples.push((name, init.clone(), steps.clone()));
                    }
                }
                if !w.violated.is_empty() {
                    counterexample = Some((w.index, init, steps, w.violated));
                }
            }
        }
        progress.tick(states as usize, None, Some(covered));
        if counterexample.is_some() {
            break StoppedBy::Violation;
        }
        if budget.walks.is_some_and(|w| covered >= w) {
            break StoppedBy::WalkBudget;
        }
        if budget.time.is_some_and(|t| started.elapsed() >= t) {
            break StoppedBy::TimeBudget;
        }
    };
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    let rebuild = |init: &State, steps: &[Action]| {
        Path::from_actions(&model, init.clone(), steps)
            .expect("a walk's steps replay on the model that took them")
    };
    let mut properties = Vec::new();
    let mut paths = Vec::new();
    for p in model.properties() {
        let kind = match p.expectation {
            Expectation::Always => "always",
            Expectation::Eventually => "eventually",
            Expectation::Sometimes => "sometimes",
        };
        let broken = counterexample
            .as_ref()
            .filter(|(_, _, _, violated)| violated.contains(&p.name))
            .map(|(_, init, steps, _)| rebuild(init, steps));
        let example = examples
            .iter()
            .find(|(n, _, _)| *n == p.name)
            .map(|(_, init, steps)| rebuild(init, steps));
        let (verdict, path) = match (broken, example) {
            (Some(path), _) => (Verdict::Violated, Some(path)),
            (None, Some(path)) => (Verdict::Reached, Some(path)),
            (None, None) => (Verdict::Unknown, None),
        };
        let steps = path.as_ref().map(|p| numbered_steps(&p.clone().into_vec()));
        if let Some(path) = path {
            paths.push((p.name, path));
        }
        properties.push(PropertyReport {
            name: p.name,
            kind,
            verdict,
            steps,
        });
    }
    let states = usize::try_from(states).unwrap_or(usize::MAX);
    Report {
        config: run.config.clone(),
        strategy: run.strategy,
        threads,
        states,
        unique_states: states,
        max_depth,
        seconds,
        states_per_second: states as f64 / seconds.max(1e-9),
        complete: false,
        cut_short: Some(CutShort::Simulation),
        properties,
        paths,
        simulation: Some(Simulation {
            seed: budget.seed,
            walks: covered,
            walk_budget: budget.walks,
            time_budget_seconds: budget.time.map(|t| t.as_secs_f64()),
            stopped_by,
            counterexample_walk: counterexample.as_ref().map(|c| c.0),
            replay_command: replay_command(&run.config, budget.seed, covered),
        }),
        reduced_from: None,
        reductions: Vec::new(),
    }
}

/// The `check` options that select exactly `config`, from the `quick` preset up.
pub fn config_options(config: &Config) -> String {
    let mut options = format!(
        "--preset quick --lsns {} --replicas {} --storage-crashes {} --replica-crashes {} \
         --az-outages {} --lost-nodes {} --writer-crashes {} --ack {} --network {}",
        config.lsns,
        config.replicas,
        config.storage_crashes,
        config.replica_crashes,
        config.az_outages,
        config.lost_nodes,
        config.writer_crashes,
        config.ack,
        config.network,
    );
    if config.zombie_writer {
        options.push_str(" --zombie-writer");
    }
    if let Some(bug) = config.bug {
        options.push_str(&format!(" --bug {bug}"));
    }
    options
}

/// The command that replays walks `0..walks` of `seed` on `config`.
pub fn replay_command(config: &Config, seed: u64, walks: u64) -> String {
    format!(
        "aurora-redo check {} --strategy sim --seed {seed} --walks {walks}",
        config_options(config)
    )
}
