//! Network fault injection: drop, duplicate, reorder, and unreachable nodes (crashed nodes, an
//! AZ outage). The random choices come from the runtime ([`Random`]): on std they are
//! deterministic for a given seed and order of sends; under shuttle they are part of the
//! schedule, so every schedule draws its own faults and a replayed schedule replays them.

use aurora_redo_model::types::{Actor, Az, Envelope, NodeId, STORAGE_NODES};
use rand::Rng;

use crate::sync::{lock, AtomicU64, Mutex, Ordering, Random};

/// Probabilities of network faults, per message.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultConfig {
    pub drop: f64,
    pub duplicate: f64,
    pub reorder: f64,
    /// Seeds the draws on std and loom; under shuttle the schedule draws instead.
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
    rng: Random,
    down: [bool; STORAGE_NODES],
    outage: Option<Az>,
}

/// The fault injector shared by every sender.
pub struct Faults {
    cfg: FaultConfig,
    state: Mutex<FaultState>,
    /// The nodes unreachable now (crashed, or in the zone out), one bit each: written under
    /// `state`'s lock, read without it.
    cut: AtomicU64,
}

impl Faults {
    pub fn new(cfg: FaultConfig) -> Faults {
        Faults {
            cfg,
            state: Mutex::new(FaultState {
                rng: Random::seeded(cfg.seed),
                down: [false; STORAGE_NODES],
                outage: None,
            }),
            cut: AtomicU64::new(0),
        }
    }

    /// Recomputes the unreachable set from `s`.
    fn publish_cut(&self, s: &FaultState) {
        let bits = NodeId::all()
            .filter(|n| s.down[n.index()] || s.outage == Some(n.az()))
            .fold(0u64, |b, n| b | 1 << n.index());
        self.cut.store(bits, Ordering::SeqCst);
    }

    /// Marks a node crashed (unreachable) or back.
    pub fn set_down(&self, node: NodeId, down: bool) {
        let mut s = lock(&self.state);
        s.down[node.index()] = down;
        self.publish_cut(&s);
    }

    /// Starts (`Some`) or ends (`None`) an AZ outage: both its nodes unreachable, in and out.
    pub fn set_outage(&self, az: Option<Az>) {
        let mut s = lock(&self.state);
        s.outage = az;
        self.publish_cut(&s);
    }

    /// Whether the network draws random faults at all.
    fn random(&self) -> bool {
        self.cfg.drop > 0.0 || self.cfg.duplicate > 0.0 || self.cfg.reorder > 0.0
    }

    pub fn outage(&self) -> Option<Az> {
        lock(&self.state).outage
    }

    /// Decides the fate of `env`.
    pub fn fate(&self, env: &Envelope) -> Fate {
        let cut = self.cut.load(Ordering::SeqCst);
        let cut_off = |actor: Actor| match actor {
            Actor::Storage(n) => cut & (1 << n.index()) != 0,
            _ => false,
        };
        if cut_off(env.src) || cut_off(env.dst) {
            return Fate::Drop;
        }
        if !self.random() {
            // No draws: no lock.
            return Fate::Deliver {
                copies: 1,
                reorder: false,
            };
        }
        let mut s = lock(&self.state);
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

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use super::*;
    use aurora_redo_model::types::{Lsn, Msg};

    fn draws(seed: u64) -> Vec<(Fate, usize)> {
        let faults = Faults::new(FaultConfig {
            drop: 0.1,
            duplicate: 0.1,
            reorder: 0.2,
            seed,
        });
        let env = Envelope {
            src: Actor::Writer,
            dst: Actor::Storage(NodeId(0)),
            msg: Msg::Pull { from: Lsn(1) },
        };
        (0..64)
            .map(|_| (faults.fate(&env), faults.position(100)))
            .collect()
    }

    #[test]
    fn on_std_the_seed_decides_the_faults() {
        assert_eq!(draws(3), draws(3), "a seed replays its faults");
        assert_ne!(draws(3), draws(4), "another seed draws other faults");
    }
}
