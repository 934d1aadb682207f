//! How a state is hashed: once, over a packed image of it.
//!
//! The checker hashes every state it generates twice (its representative, to look it up, and the
//! state itself), so hashing is a large share of the cost of a state. A derived `Hash` feeds the
//! hasher field by field, well over a hundred small writes; this one packs the state into bytes
//! (an LSN, an epoch or a count in one byte, a set of LSNs in two, an epoch map in eight) and
//! hands the hasher one slice.
//!
//! The image is injective on the states the model reaches: every LSN is at most
//! [`crate::config::MAX_LSNS`], both halves of every epoch below
//! [`crate::state::MAX_EPOCHS`], so each fits its byte (an [`epoch_code`]), and the
//! fields sit at fixed places (replicas last, after their count). Equal states pack equally, so
//! the hash agrees with `Eq`.

use crate::state::{
    epoch_code, EpochMap, LsnSet, Node, NodeSet, NodeStatus, Phase, Replica, State, Writer,
    MAX_REPLICAS,
};
use crate::types::{Epoch, Lsn, STORAGE_NODES};
use std::hash::{Hash, Hasher};

/// Bytes of a writer's image.
const WRITER: usize = 14;
/// Bytes of a replica's image.
const REPLICA: usize = 20;
/// Room for the largest image.
const CAPACITY: usize = WRITER
    + 1
    + WRITER
    + STORAGE_NODES * (15 + 8 * 4 + 8 + 2)
    + STORAGE_NODES * 5
    + 2
    + 6
    + 4
    + 1
    + MAX_REPLICAS * REPLICA;

/// A state's packed image, built front to back.
struct Image {
    bytes: [u8; CAPACITY],
    len: usize,
}

impl Image {
    fn u8(&mut self, value: u8) {
        self.bytes[self.len] = value;
        self.len += 1;
    }

    fn slice(&mut self, values: &[u8]) {
        self.bytes[self.len..self.len + values.len()].copy_from_slice(values);
        self.len += values.len();
    }

    fn lsn(&mut self, lsn: Lsn) {
        debug_assert!(
            lsn.0 <= u8::MAX as u64,
            "LSN {lsn} outside the model's range"
        );
        self.u8(lsn.0 as u8);
    }

    fn epoch(&mut self, epoch: Epoch) {
        self.u8(epoch_code(epoch));
    }

    fn lsns(&mut self, set: LsnSet) {
        self.slice(&set.bits().to_le_bytes());
    }

    fn epochs(&mut self, map: EpochMap) {
        self.slice(&map.bits().to_le_bytes());
    }

    fn nodes(&mut self, set: NodeSet) {
        self.u8(set.0);
    }

    fn writer(&mut self, w: &Writer) {
        self.epoch(w.epoch);
        self.lsn(w.written);
        self.lsn(w.commit);
        self.epochs(w.log);
        self.lsn(w.point);
        match w.phase {
            Phase::Open => self.slice(&[0, 0]),
            Phase::Reading => self.slice(&[1, 0]),
            Phase::Sealing { sealed } => {
                self.u8(2);
                self.nodes(sealed);
            }
        }
    }

    fn node(&mut self, n: &Node) {
        self.u8(match n.status {
            NodeStatus::Up => 0,
            NodeStatus::Crashed => 1,
            NodeStatus::Lost => 2,
        });
        self.lsns(n.mem);
        self.lsns(n.disk);
        self.epochs(n.epochs);
        self.epoch(n.epoch);
        self.epoch(n.sealed);
    }

    fn replica(&mut self, r: &Replica) {
        self.u8(r.up as u8);
        self.epoch(r.epoch);
        self.u8(r.incarnation);
        self.lsn(r.known_commit);
        self.lsn(r.durable);
        self.lsn(r.applied);
        r.pages.iter().for_each(|&page| self.lsn(page));
        self.epochs(r.applied_epochs);
        self.lsns(r.retained);
        self.lsns(r.discarded);
    }

    fn of(s: &State) -> Image {
        let mut image = Image {
            bytes: [0; CAPACITY],
            len: 0,
        };
        image.writer(&s.writer);
        match &s.zombie {
            None => image.slice(&[0; WRITER + 1]),
            Some(z) => {
                image.u8(1);
                image.writer(z);
            }
        }
        s.nodes.iter().for_each(|n| image.node(n));
        for word in s.network.words() {
            image.slice(&word.to_le_bytes());
        }
        let a = &s.announced;
        for i in 0..STORAGE_NODES {
            image.lsn(a.scl[i]);
            image.lsn(a.flushed[i]);
            image.epoch(a.epoch[i]);
            image.epoch(a.prev[i].0);
            image.lsn(a.prev[i].1);
            image.lsn(a.prev[i].2);
            image.lsns(a.flushed_history[i]);
        }
        let g = &s.ghost;
        for i in 0..STORAGE_NODES {
            image.lsn(g.truthful_ack[i]);
            image.lsn(g.disk_high[i]);
            image.lsn(g.prev_disk_high[i]);
        }
        image.lsn(g.acked);
        image.epochs(g.acked_log);
        image.u8(g.flags.bits());
        image.u8(s.az_out.map_or(0, |az| az.index() as u8 + 1));
        let f = &s.faults;
        image.slice(&[
            f.storage_crashes,
            f.replica_crashes,
            f.az_outages,
            f.lost_nodes,
            f.writer_crashes,
        ]);
        image.u8(s.replicas.len() as u8);
        s.replicas.iter().for_each(|r| image.replica(r));
        image
    }
}

impl Hash for State {
    fn hash<H: Hasher>(&self, hasher: &mut H) {
        let image = Image::of(self);
        hasher.write(&image.bytes[..image.len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Preset};
    use crate::state::Flags;
    use crate::types::{Az, NodeId};
    use stateright::Model;
    use std::collections::{HashMap, HashSet};
    use std::hash::{BuildHasher, RandomState};

    fn image(s: &State) -> Vec<u8> {
        let image = Image::of(s);
        image.bytes[..image.len].to_vec()
    }

    /// Changing any one field of a state changes its image: the image tells states apart.
    #[test]
    fn every_field_shows_in_the_image() {
        let base = State::new(2);
        let mut variants: Vec<State> = Vec::new();
        let mut change = |f: &dyn Fn(&mut State)| {
            let mut s = base.clone();
            f(&mut s);
            variants.push(s);
        };
        change(&|s| s.writer.epoch = Epoch::numbered(1));
        change(&|s| s.writer.written = Lsn(1));
        change(&|s| s.writer.commit = Lsn(1));
        change(&|s| s.writer.log.set(Lsn(2), Epoch::numbered(1)));
        change(&|s| s.writer.point = Lsn(1));
        change(&|s| s.writer.phase = Phase::Reading);
        change(&|s| s.writer.phase = Phase::Sealing { sealed: NodeSet(1) });
        change(&|s| s.writer.phase = Phase::Sealing { sealed: NodeSet(0) });
        change(&|s| s.zombie = Some(Writer::default()));
        change(&|s| {
            s.zombie = Some(Writer {
                written: Lsn(1),
                ..Writer::default()
            })
        });
        for i in [0, 5] {
            change(&move |s| s.nodes[i].status = NodeStatus::Crashed);
            change(&move |s| s.nodes[i].status = NodeStatus::Lost);
            change(&move |s| s.nodes[i].mem.insert(Lsn(16)));
            change(&move |s| s.nodes[i].disk.insert(Lsn(1)));
            change(&move |s| s.nodes[i].epochs.set(Lsn(3), Epoch::numbered(3)));
            change(&move |s| s.nodes[i].epoch = Epoch::numbered(2));
            change(&move |s| s.nodes[i].sealed = Epoch::numbered(2));
            change(&move |s| s.announced.scl[i] = Lsn(1));
            change(&move |s| s.announced.flushed[i] = Lsn(1));
            change(&move |s| s.announced.epoch[i] = Epoch::numbered(1));
            change(&move |s| s.announced.prev[i].0 = Epoch::numbered(1));
            change(&move |s| s.announced.prev[i].1 = Lsn(1));
            change(&move |s| s.announced.prev[i].2 = Lsn(1));
            change(&move |s| s.announced.flushed_history[i].insert(Lsn(9)));
            change(&move |s| s.ghost.truthful_ack[i] = Lsn(1));
            change(&move |s| s.ghost.disk_high[i] = Lsn(1));
            change(&move |s| s.ghost.prev_disk_high[i] = Lsn(1));
        }
        change(&|s| {
            s.network.send(crate::types::Envelope::append(
                NodeId(4),
                crate::state::record_for(Epoch::numbered(1), Lsn(2)),
            ));
        });
        change(&|s| s.ghost.acked = Lsn(1));
        change(&|s| s.ghost.acked_log.set(Lsn(1), Epoch::numbered(1)));
        change(&|s| s.ghost.flags.insert(Flags::FENCE_BROKEN));
        change(&|s| s.az_out = Some(Az::A));
        change(&|s| s.az_out = Some(Az::C));
        change(&|s| s.faults.storage_crashes = 1);
        change(&|s| s.faults.replica_crashes = 1);
        change(&|s| s.faults.az_outages = 1);
        change(&|s| s.faults.lost_nodes = 1);
        change(&|s| s.faults.writer_crashes = 1);
        for r in [0, 1] {
            change(&move |s| s.replicas[r].up = false);
            change(&move |s| s.replicas[r].epoch = Epoch::numbered(1));
            change(&move |s| s.replicas[r].incarnation = 1);
            change(&move |s| s.replicas[r].known_commit = Lsn(1));
            change(&move |s| s.replicas[r].durable = Lsn(1));
            change(&move |s| s.replicas[r].applied = Lsn(1));
            change(&move |s| s.replicas[r].pages[1] = Lsn(2));
            change(&move |s| s.replicas[r].applied_epochs.set(Lsn(1), Epoch::numbered(2)));
            change(&move |s| s.replicas[r].retained.insert(Lsn(1)));
            change(&move |s| s.replicas[r].discarded.insert(Lsn(1)));
        }
        change(&|s| s.replicas = crate::state::Replicas::new(3));
        let mut images = HashSet::new();
        images.insert(image(&base));
        for v in &variants {
            assert_ne!(*v, base);
            assert!(images.insert(image(v)), "two states pack alike: {v:?}");
        }
    }

    /// The states of a small check pack differently unless they are equal, and equal states
    /// hash equally.
    #[test]
    fn reachable_states_pack_apart() {
        let model = Config::preset(Preset::Recovery).into_model();
        let mut frontier = model.init_states();
        let mut seen: HashMap<Vec<u8>, State> = HashMap::new();
        let mut revisits = 0;
        while let Some(s) = frontier.pop() {
            match seen.get(&image(&s)) {
                Some(earlier) => {
                    assert_eq!(*earlier, s, "two states pack alike");
                    revisits += 1;
                    continue;
                }
                None if seen.len() >= 20_000 => continue,
                None => {}
            }
            let mut actions = Vec::new();
            model.actions(&s, &mut actions);
            frontier.extend(actions.into_iter().filter_map(|a| model.next_state(&s, a)));
            seen.insert(image(&s), s);
        }
        assert!(seen.len() >= 20_000 && revisits > 0);
        let hasher = RandomState::new();
        let some = seen.values().next().unwrap();
        assert_eq!(hasher.hash_one(some.clone()), hasher.hash_one(some));
    }
}
