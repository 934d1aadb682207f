//! `aurora-redo swarm-report FILE...`: merges the JSON reports of a swarm's shards (`check
//! --strategy sim --seed S --json`, one seed each; a file may hold several, one after the other)
//! into one verdict: the seeds, walks and states
//! covered, each property's verdict over all shards, and the first counterexample (lowest seed)
//! with the command that replays it.

use crate::checking::{EXIT_FAIL, EXIT_INCOMPLETE, JSON_SCHEMA_VERSION};
use crate::simulation::Simulation;
use aurora_redo_model::Config;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The part of a shard's `check --json` report that the merge reads.
#[derive(Deserialize)]
struct Shard {
    schema_version: u32,
    strategy: String,
    config: Config,
    states: u64,
    seconds: f64,
    simulation: Option<Simulation>,
    properties: Vec<ShardProperty>,
}

#[derive(Deserialize)]
struct ShardProperty {
    name: String,
    kind: String,
    verdict: String,
    steps: Option<Vec<ShardStep>>,
}

#[derive(Deserialize)]
struct ShardStep {
    description: String,
}

/// One property's verdict over all shards.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct MergedProperty {
    pub name: String,
    pub kind: String,
    /// `violated` (some shard broke it), `reached` (some shard reached it; `sometimes`), or
    /// `unknown` (no shard found anything: a swarm shows nothing holds).
    pub verdict: String,
    /// The seeds whose shard broke or reached it.
    pub seeds: Vec<u64>,
}

/// The first counterexample of the swarm: the one of the lowest seed that found any.
#[derive(Debug, Serialize)]
pub struct FirstCounterexample {
    pub file: PathBuf,
    pub seed: u64,
    /// The walk (0-based) of that seed that broke it.
    pub walk: Option<u64>,
    pub properties: Vec<String>,
    /// The steps of its first broken property, in words.
    pub steps: Vec<String>,
    pub replay_command: String,
}

/// The merged report (`swarm-report --json`).
#[derive(Debug, Serialize)]
pub struct SwarmReport {
    pub schema_version: u32,
    /// `fail` when some shard found a violation, otherwise `incomplete` (a swarm is never
    /// exhaustive).
    pub verdict: String,
    pub exit_status: u8,
    pub config: Config,
    pub shards: usize,
    pub seeds: Vec<u64>,
    pub walks: u64,
    pub states: u64,
    /// The shards' seconds added up (machine time, not wall time when shards ran side by side).
    pub shard_seconds: f64,
    pub properties: Vec<MergedProperty>,
    pub first_counterexample: Option<FirstCounterexample>,
}

/// Reads the shards in one file (one report, or several one after the other, as `parallel`
/// collects them on its standard output), or says what is wrong with them.
fn read_shards(file: &Path) -> Result<Vec<(PathBuf, Shard, Simulation)>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut shards = Vec::new();
    for (i, shard) in serde_json::Deserializer::from_str(&text)
        .into_iter::<Shard>()
        .enumerate()
    {
        let at = if i == 0 {
            file.display().to_string()
        } else {
            format!("{} (report {})", file.display(), i + 1)
        };
        let shard = shard
            .map_err(|e| format!("{at} is not a `check --strategy sim --json` report: {e}"))?;
        if shard.schema_version != JSON_SCHEMA_VERSION {
            return Err(format!(
                "{at}: report schema version {}, this tool reads {JSON_SCHEMA_VERSION}",
                shard.schema_version
            ));
        }
        let Some(simulation) = shard.simulation.clone() else {
            return Err(format!(
                "{at}: not a swarm shard (strategy {}, no `simulation`): only `check --strategy \
                 sim` reports merge",
                shard.strategy
            ));
        };
        shards.push((PathBuf::from(at), shard, simulation));
    }
    if shards.is_empty() {
        return Err(format!("{}: no report in it", file.display()));
    }
    Ok(shards)
}

/// Merges shard reports. Errors name the file at fault: unreadable, not a sim report, another
/// configuration than the first shard's, or a seed already merged (its walks would count twice).
pub fn merge(files: &[PathBuf]) -> Result<SwarmReport, String> {
    if files.is_empty() {
        return Err("no shard report given".to_string());
    }
    let mut shards: Vec<(PathBuf, Shard, Simulation)> = Vec::new();
    for (file, shard, simulation) in files
        .iter()
        .map(|f| read_shards(f))
        .collect::<Result<Vec<_>, String>>()?
        .into_iter()
        .flatten()
    {
        if let Some((first, s, _)) = shards.first() {
            if s.config != shard.config {
                return Err(format!(
                    "{} checks another configuration than {}: {} against {}",
                    file.display(),
                    first.display(),
                    shard.config,
                    s.config
                ));
            }
        }
        if let Some((other, _, _)) = shards.iter().find(|(_, _, s)| s.seed == simulation.seed) {
            return Err(format!(
                "{} and {} both ran seed {}: its walks would count twice",
                other.display(),
                file.display(),
                simulation.seed
            ));
        }
        shards.push((file, shard, simulation));
    }
    shards.sort_by_key(|(_, _, s)| s.seed);
    let mut properties: BTreeMap<String, MergedProperty> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut first_counterexample = None;
    for (file, shard, sim) in &shards {
        let mut broken = Vec::new();
        let mut broken_steps = None;
        for p in &shard.properties {
            let merged = properties.entry(p.name.clone()).or_insert_with(|| {
                order.push(p.name.clone());
                MergedProperty {
                    name: p.name.clone(),
                    kind: p.kind.clone(),
                    verdict: "unknown".to_string(),
                    seeds: Vec::new(),
                }
            });
            match p.verdict.as_str() {
                "violated" => {
                    merged.verdict = "violated".to_string();
                    merged.seeds.push(sim.seed);
                    broken.push(p.name.clone());
                    if broken_steps.is_none() {
                        broken_steps = p
                            .steps
                            .as_ref()
                            .map(|steps| steps.iter().map(|s| s.description.clone()).collect());
                    }
                }
                "reached" => {
                    if merged.verdict != "violated" {
                        merged.verdict = "reached".to_string();
                    }
                    merged.seeds.push(sim.seed);
                }
                _ => {}
            }
        }
        if first_counterexample.is_none() && !broken.is_empty() {
            first_counterexample = Some(FirstCounterexample {
                file: file.clone(),
                seed: sim.seed,
                walk: sim.counterexample_walk,
                properties: broken,
                steps: broken_steps.unwrap_or_default(),
                replay_command: sim.replay_command.clone(),
            });
        }
    }
    let (verdict, exit_status) = if first_counterexample.is_some() {
        ("fail", EXIT_FAIL)
    } else {
        ("incomplete", EXIT_INCOMPLETE)
    };
    Ok(SwarmReport {
        schema_version: JSON_SCHEMA_VERSION,
        verdict: verdict.to_string(),
        exit_status,
        config: shards[0].1.config.clone(),
        shards: shards.len(),
        seeds: shards.iter().map(|(_, _, s)| s.seed).collect(),
        walks: shards.iter().map(|(_, _, s)| s.walks).sum(),
        states: shards.iter().map(|(_, s, _)| s.states).sum(),
        shard_seconds: shards.iter().map(|(_, s, _)| s.seconds).sum(),
        properties: order
            .iter()
            .filter_map(|name| properties.remove(name))
            .collect(),
        first_counterexample,
    })
}

/// Seeds as ranges: `0-15, 20, 22-23`.
fn seed_ranges(seeds: &[u64]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < seeds.len() {
        let mut j = i;
        while j + 1 < seeds.len() && seeds[j + 1] == seeds[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            seeds[i].to_string()
        } else {
            format!("{}-{}", seeds[i], seeds[j])
        });
        i = j + 1;
    }
    parts.join(", ")
}

/// Prints a merged report for a person to read.
pub fn print(report: &SwarmReport) {
    println!("configuration: {}", report.config);
    println!(
        "shards: {}  seeds: {}  walks: {}  states: {}  shard seconds: {:.1}",
        report.shards,
        seed_ranges(&report.seeds),
        report.walks,
        report.states,
        report.shard_seconds
    );
    println!();
    for p in &report.properties {
        let verdict = match p.verdict.as_str() {
            "violated" => format!("VIOLATED (seeds {})", seed_ranges(&p.seeds)),
            "reached" => format!("reached (seeds {})", seed_ranges(&p.seeds)),
            _ if p.kind == "sometimes" => "not reached by any shard".to_string(),
            _ => "no violation found by any shard".to_string(),
        };
        println!("  {:<10} {:<30} {verdict}", p.kind, p.name);
    }
    println!();
    match &report.first_counterexample {
        Some(c) => {
            println!(
                "FAIL: the first counterexample (lowest seed) is seed {}'s{}, in {}: violated {}",
                c.seed,
                c.walk.map_or(String::new(), |w| format!(" walk {w}")),
                c.file.display(),
                c.properties.join(", ")
            );
            for (i, step) in c.steps.iter().enumerate() {
                println!("  {:>3}. {step}", i + 1);
            }
            println!("replay: {}", c.replay_command);
        }
        None => println!(
            "INCOMPLETE: no shard found a violation in {} walks ({} states); a swarm is never \
             exhaustive, so no property is shown to hold",
            report.walks, report.states
        ),
    }
}
