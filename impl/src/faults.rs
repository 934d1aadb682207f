//! Seeded network fault injection: drop, duplicate, reorder, and unreachable nodes (crashed
//! nodes, an AZ outage). Deterministic for a given seed and order of sends, so a shuttle
//! schedule replays exactly.

use aurora_redo_model::types::{Actor, Az, Envelope, NodeId, STORAGE_NODES};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::sync::{lock, Mutex};

/// Probabilities of network faults, per message.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultConfig {
    pub drop: f64,
    pub duplicate: f64,
    pub reorder: f64,
    pub seed: u64,
}

impl FaultConfig {
    pub fn none() -> FaultConfig {
        FaultConfig::default()
    }
}

/// What happens to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Drop,
    /// Deliver `copies` times (2 = duplicated); `reorder` = jump the queue at a random place.
    Deliver {
        copies: usize,
        reorder: bool,
    },
}

struct FaultState {
    rng: SmallRng,
    down: [bool; STORAGE_NODES],
    outage: Option<Az>,
}

/// The fault injector shared by every sender.
pub struct Faults {
    cfg: FaultConfig,
    state: Mutex<FaultState>,
}

impl Faults {
    pub fn new(cfg: FaultConfig) -> Faults {
        Faults {
            cfg,
            state: Mutex::new(FaultState {
                rng: SmallRng::seed_from_u64(cfg.seed),
                down: [false; STORAGE_NODES],
                outage: None,
            }),
        }
    }

    /// Marks a node crashed (unreachable) or back.
    pub fn set_down(&self, node: NodeId, down: bool) {
        lock(&self.state).down[node.index()] = down;
    }

    /// Starts (`Some`) or ends (`None`) an AZ outage: both its nodes unreachable, in and out.
    pub fn set_outage(&self, az: Option<Az>) {
        lock(&self.state).outage = az;
    }

    pub fn outage(&self) -> Option<Az> {
        lock(&self.state).outage
    }

    /// Decides the fate of `env`.
    pub fn fate(&self, env: &Envelope) -> Fate {
        let mut s = lock(&self.state);
        let cut_off = |actor: Actor, s: &FaultState| match actor {
            Actor::Storage(n) => s.down[n.index()] || s.outage == Some(n.az()),
            _ => false,
        };
        if cut_off(env.src, &s) || cut_off(env.dst, &s) {
            return Fate::Drop;
        }
        if self.cfg.drop > 0.0 && s.rng.random_bool(self.cfg.drop.min(1.0)) {
            return Fate::Drop;
        }
        let copies = if self.cfg.duplicate > 0.0 && s.rng.random_bool(self.cfg.duplicate.min(1.0)) {
            2
        } else {
            1
        };
        let reorder = self.cfg.reorder > 0.0 && s.rng.random_bool(self.cfg.reorder.min(1.0));
        Fate::Deliver { copies, reorder }
    }

    /// A random index in `0..=len` (for a reordered insertion).
    pub fn position(&self, len: usize) -> usize {
        lock(&self.state).rng.random_range(0..=len)
    }
}
