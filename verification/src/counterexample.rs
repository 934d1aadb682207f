//! The counterexample file: what `aurora-redo check --trace-out` writes and what `replay`
//! and `explore --trace` read.
//!
//! A trace is JSON (see `docs/conformance.md`):
//!
//! ```json
//! { "format": "aurora-redo-counterexample", "version": 1,
//!   "config": { "lsns": 2, "replicas": 1, ..., "bug": "commit-at-three" },
//!   "property": "CommitOnlyAfterQuorum",
//!   "steps": [ { "action": "Write", "description": "W writes LSN 1, sends Append to every node" },
//!              { "action": { "Commit": 1 }, "description": "W gets Ack from S0, S1, S2: ..." } ] }
//! ```
//!
//! `action` is a serde-serialized [`aurora_redo_model::Action`]: the machine-readable step.
//! `description` is [`aurora_redo_model::render::describe`] of it (with what it did), for people;
//! readers ignore it.
//! Reading a trace checks it against the model: every step must be enabled where it is taken,
//! so a file that does not describe a run of the model is rejected, not half-replayed.

use aurora_redo_model::reduction::with_restarts;
use aurora_redo_model::render::described_steps;
use aurora_redo_model::{Action, Config, RedoModel, State};
use serde::{Deserialize, Serialize};
use stateright::{Expectation, Model, Path};
use std::path::Path as FsPath;

/// The value of the `format` field.
pub const FORMAT: &str = "aurora-redo-counterexample";
/// The `format` the same files had before they were called counterexample files; still read.
pub const OLD_FORMAT: &str = "aurora-redo-trace";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

/// One step of a counterexample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterexampleStep {
    pub action: Action,
    #[serde(default)]
    pub description: String,
}

/// A counterexample (or any run of the model), with the configuration it is a run of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterexampleFile {
    pub format: String,
    pub version: u32,
    pub config: Config,
    /// The property the run violates (or `null` for a run that is not a counterexample).
    pub property: Option<String>,
    pub steps: Vec<CounterexampleStep>,
}

impl CounterexampleFile {
    /// The trace of a path through the model of `config`.
    pub fn from_path(config: &Config, property: Option<&str>, path: &Path<State, Action>) -> Self {
        let steps = described_steps(&path.clone().into_vec())
            .into_iter()
            .map(|(action, description)| CounterexampleStep {
                action,
                description,
            })
            .collect();
        CounterexampleFile {
            format: FORMAT.to_string(),
            version: VERSION,
            config: config.clone(),
            property: property.map(str::to_string),
            steps,
        }
    }

    /// The counterexample file of a path a check found in the model of `config`. A check with
    /// faults that take no time (`Config::instant_faults`, a reduction) writes its run as the same
    /// run with faults that take time (each crash followed by its restart), so that `replay`, the
    /// engine and the Explorer take it as any other run.
    pub fn of_check(
        config: &Config,
        property: Option<&str>,
        path: &Path<State, Action>,
    ) -> Result<Self, String> {
        if !config.instant_faults {
            return Ok(Self::from_path(config, property, path));
        }
        let timed = Config {
            instant_faults: false,
            ..config.clone()
        };
        let model = timed.clone().into_model();
        let actions = with_restarts(path.clone().into_actions());
        let init = model.init_states().remove(0);
        let path = Path::from_actions(&model, init, actions.iter()).ok_or_else(|| {
            "internal error: the counterexample with its restarts is not a run of the model"
                .to_string()
        })?;
        Ok(Self::from_path(&timed, property, &path))
    }

    pub fn actions(&self) -> Vec<Action> {
        self.steps.iter().map(|s| s.action.clone()).collect()
    }

    /// Writes the trace as pretty JSON.
    pub fn write(&self, file: &FsPath) -> Result<(), String> {
        let json = serde_json::to_string_pretty(self).expect("a trace serializes");
        std::fs::write(file, json + "\n")
            .map_err(|e| format!("cannot write {}: {e}", file.display()))
    }

    /// Reads and checks a trace: readable, JSON of this format and version, a valid
    /// configuration, every step enabled in the model where it is taken, and, if it names a
    /// property, the model's run really violating it.
    pub fn read(file: &FsPath) -> Result<CounterexampleFile, String> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", file.display()))
    }

    /// Parses and checks a counterexample from its JSON text (see [`CounterexampleFile::read`]).
    pub fn parse(text: &str) -> Result<CounterexampleFile, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT | OLD_FORMAT) => {}
            Some(other) => return Err(format!("not an {FORMAT} file (its format is '{other}')")),
            None => return Err(format!("not an {FORMAT} file (it has no \"format\" field)")),
        }
        match value.get("version") {
            Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
            Some(v) => {
                return Err(format!(
                    "unsupported counterexample version {v} (this build reads {VERSION})"
                ))
            }
            None => return Err("it has no \"version\" field".to_string()),
        }
        let trace: CounterexampleFile =
            serde_json::from_value(value).map_err(|e| format!("malformed counterexample: {e}"))?;
        trace
            .config
            .validate()
            .map_err(|e| format!("bad config: {e}"))?;
        let path = trace.model_path()?;
        if let Some(name) = &trace.property {
            let model = trace.model();
            let property = model
                .properties()
                .into_iter()
                .find(|p| p.name == name.as_str())
                .ok_or_else(|| {
                    format!("the model has no property '{name}' in this configuration")
                })?;
            let holds = (property.condition)(&model, path.last_state());
            let violated = match property.expectation {
                Expectation::Always => !holds,
                // A `sometimes` "example" or an `eventually` counterexample: the trace reaches
                // (or ends without) the condition; only `always` is judged on the last state.
                Expectation::Sometimes => holds,
                Expectation::Eventually => !holds,
            };
            if !violated {
                return Err(format!(
                    "the trace's last state does not show '{name}' ({} steps replayed on the model)",
                    trace.steps.len()
                ));
            }
        }
        Ok(trace)
    }

    pub fn model(&self) -> RedoModel {
        self.config.clone().into_model()
    }

    /// The trace as a path through the model, or the first step the model does not allow.
    ///
    /// A step may move a watermark any distance the protocol allows; the path takes such a move
    /// one LSN at a time, as the checker does ([`RedoModel::single_steps`]), so it may be longer
    /// than the trace.
    pub fn model_path(&self) -> Result<Path<State, Action>, String> {
        let model = self.model();
        let init = model.init_states().remove(0);
        let mut state = init.clone();
        let mut singles = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let chain = model.single_steps(&state, &step.action).ok_or_else(|| {
                format!(
                    "step {} ({:?}) is not a step the model allows there",
                    i + 1,
                    step.action
                )
            })?;
            state = model
                .next_state(&state, step.action.clone())
                .ok_or_else(|| format!("step {} ({:?}) changes nothing", i + 1, step.action))?;
            singles.extend(chain);
        }
        Path::from_actions(&model, init, &singles)
            .ok_or_else(|| "the steps do not form a path of the model".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_redo_model::state::record_for;
    use aurora_redo_model::{Envelope, Epoch, Lsn, NodeId, Preset};

    /// Two records written and delivered to four nodes (acked from memory), then `last`.
    fn trace_ending_with(last: Action) -> CounterexampleFile {
        let config = Config {
            lsns: 2,
            ..Config::preset(Preset::Quick)
        };
        let mut actions = vec![Action::Write, Action::Write];
        for lsn in [Lsn(1), Lsn(2)] {
            for node in 0..4 {
                let record = record_for(Epoch::FIRST, lsn);
                actions.push(Action::Deliver(Envelope::append(NodeId(node), record)));
            }
        }
        actions.push(last);
        let steps = actions
            .into_iter()
            .map(|action| CounterexampleStep {
                action,
                description: String::new(),
            })
            .collect();
        CounterexampleFile {
            format: FORMAT.to_string(),
            version: VERSION,
            config,
            property: None,
            steps,
        }
    }

    #[test]
    fn a_shortcut_opens_as_single_steps_and_a_move_past_the_quorum_is_refused() {
        let trace = trace_ending_with(Action::Commit(Lsn(2)));
        let path = trace
            .model_path()
            .expect("committing 2 at once is a protocol step");
        let actions = path.clone().into_actions();
        assert_eq!(actions.len(), trace.steps.len() + 1);
        assert_eq!(
            actions[actions.len() - 2..],
            [Action::Commit(Lsn(1)), Action::Commit(Lsn(2))]
        );
        assert_eq!(path.last_state().writer.commit, Lsn(2));
        // The Explorer addresses the path by the checker's step indices.
        assert!(!path.encode(&trace.model()).is_empty());

        let past = trace_ending_with(Action::Commit(Lsn(3)));
        let err = past.model_path().unwrap_err();
        assert!(err.starts_with("step 11 "), "{err}");
    }
}
