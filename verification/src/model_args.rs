//! The command-line options that choose a model configuration, shared by every subcommand that
//! checks or explores the model.

use aurora_redo_model::{AckPolicy, Bug, Config, NetworkKind, Preset};
use clap::Args;

/// The largest fault budgets the command line accepts, one per kind of fault. Every fault in a
/// budget multiplies the states a search must visit; these are the largest budgets the model is
/// meant to be checked with (README, "Presets"), not limits of the model's representation.
pub const MAX_STORAGE_CRASHES: u8 = 3;
/// See [`MAX_STORAGE_CRASHES`].
pub const MAX_REPLICA_CRASHES: u8 = 3;
/// See [`MAX_STORAGE_CRASHES`].
pub const MAX_AZ_OUTAGES: u8 = 3;

/// Parses a thread count: a whole number, at least 1.
pub fn parse_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Start from a named configuration; the options below override it.
    #[arg(long, default_value = "default", value_parser = parse::<Preset>)]
    pub preset: Preset,
    /// Records the writer writes (LSNs 1..=N).
    #[arg(long)]
    pub lsns: Option<u8>,
    /// Read replicas.
    #[arg(long)]
    pub replicas: Option<u8>,
    /// Storage crashes (memory lost, disk kept), each followed by a restart (at most 3).
    #[arg(long)]
    pub storage_crashes: Option<u8>,
    /// Replica crashes (everything lost), each followed by a restart (at most 3).
    #[arg(long)]
    pub replica_crashes: Option<u8>,
    /// Allow one AZ outage (both nodes of a zone unreachable, then back).
    #[arg(long, conflicts_with = "az_outages")]
    pub az_outage: bool,
    /// AZ outages allowed (0 turns off a preset's outage; at most 3).
    #[arg(long)]
    pub az_outages: Option<u8>,
    /// Nodes lost for good, disk and all (3 = AZ+1).
    #[arg(long)]
    pub lost_nodes: Option<u8>,
    /// Writer failovers: the writer stops and a new writer recovers the volume in the next epoch
    /// (at most 3).
    #[arg(long)]
    pub writer_crashes: Option<u8>,
    /// A failed-over writer keeps running and sending, cut off from clients (a zombie), so that
    /// fencing matters. `--zombie-writer false` turns off a preset's zombie.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = clap::value_parser!(bool))]
    pub zombie_writer: Option<bool>,
    /// When nodes acknowledge: on receipt (`memory`, the seed) or once on disk (`disk`).
    #[arg(long, value_parser = parse::<AckPolicy>)]
    pub ack: Option<AckPolicy>,
    /// What the network may do besides reorder: `unordered`, `duplicating` or `lossy`.
    #[arg(long, value_parser = parse::<NetworkKind>)]
    pub network: Option<NetworkKind>,
    /// Seed a bug (see `mutants`).
    #[arg(long, value_parser = parse::<Bug>)]
    pub bug: Option<Bug>,
}

/// Parses a named value through its `FromStr`, whose error lists the allowed names.
pub(crate) fn parse<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}

impl ModelArgs {
    /// The configuration these options describe, or a message saying what is wrong with them.
    pub fn config(&self) -> Result<Config, String> {
        let mut config = Config::preset(self.preset);
        let overrides = [
            (&mut config.lsns, self.lsns),
            (&mut config.replicas, self.replicas),
            (&mut config.storage_crashes, self.storage_crashes),
            (&mut config.replica_crashes, self.replica_crashes),
            (&mut config.lost_nodes, self.lost_nodes),
            (&mut config.az_outages, self.az_outages),
            (&mut config.writer_crashes, self.writer_crashes),
        ];
        for (field, value) in overrides {
            if let Some(value) = value {
                *field = value;
            }
        }
        if self.az_outage {
            config.az_outages = config.az_outages.max(1);
        }
        config.zombie_writer = self.zombie_writer.unwrap_or(config.zombie_writer);
        config.ack = self.ack.unwrap_or(config.ack);
        config.network = self.network.unwrap_or(config.network);
        config.bug = self.bug.or(config.bug);
        config.validate()?;
        let budgets = [
            (
                "--storage-crashes",
                config.storage_crashes,
                MAX_STORAGE_CRASHES,
            ),
            (
                "--replica-crashes",
                config.replica_crashes,
                MAX_REPLICA_CRASHES,
            ),
            ("--az-outages", config.az_outages, MAX_AZ_OUTAGES),
        ];
        for (option, value, max) in budgets {
            if value > max {
                return Err(format!(
                    "{option} must be at most {max}, not {value} (each fault in a budget \
                     multiplies the states a search must visit)"
                ));
            }
        }
        Ok(config)
    }
}
