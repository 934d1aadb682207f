//! Symmetry reduction: states that differ only by a renaming of storage nodes, or of replicas,
//! are one state.
//!
//! Nodes are interchangeable as long as zones stay zones: an AZ outage takes out both nodes of one
//! zone, so the renamings that preserve behaviour are those that swap the two nodes within a zone
//! and permute the zones (48 of them). The representative of a state sorts the nodes by a
//! signature holding everything the state says about each node: its logs and status, what it has
//! announced, the ghost facts about it, and every message to or from it. Two nodes with
//! equal signatures are indistinguishable, so the sorted state is canonical: every state in a
//! class maps to the same representative.

use crate::state::{epoch_code, NodeSet, NodeStatus, Phase, State};
use crate::types::{Az, Lsn, NodeId, STORAGE_NODES};

/// Everything a state says about one node, for sorting nodes, packed into eight words compared in
/// order: its logs and their epochs; its status, epochs, announcements and ghost watermarks, and whether the
/// recovering writer has sealed it; its flushed history; and the messages to it, as its bitset of
/// `Append`s in flight ([`crate::network::Network::to_node`]), which names no node, so it moves
/// with the node under any renaming. Two nodes with equal signatures are indistinguishable: each
/// field has its own bits (an LSN fits a byte, an epoch code four bits).
type Signature = [u64; 8];

/// The nodes the recovering writer's write phase has sealed so far.
fn sealed_set(phase: &Phase) -> NodeSet {
    match phase {
        Phase::Open | Phase::Reading => NodeSet::default(),
        Phase::Sealing { sealed } => *sealed,
    }
}

fn rename_set(set: &mut NodeSet, new_of_old: &[usize; STORAGE_NODES]) {
    let old = *set;
    *set = NodeSet::default();
    for n in old.iter() {
        set.insert(NodeId(new_of_old[n.index()] as u8));
    }
}

fn signature(s: &State, sealed: NodeSet, n: NodeId) -> Signature {
    let i = n.index();
    let node = &s.nodes[i];
    let (a, g) = (&s.announced, &s.ghost);
    let byte = |l: Lsn| l.0 & 0xff;
    let status = match node.status {
        NodeStatus::Up => 0,
        NodeStatus::Crashed => 1,
        NodeStatus::Lost => 2,
    };
    let logs = (node.mem.bits() as u64) << 16 | node.disk.bits() as u64;
    let code = |e| epoch_code(e) as u64;
    let facts = status << 62
        | byte(a.scl[i]) << 48
        | byte(a.flushed[i]) << 40
        | (sealed.contains(n) as u64) << 37
        | byte(a.prev[i].1) << 24
        | byte(a.prev[i].2) << 16
        | byte(g.truthful_ack[i]) << 8
        | byte(g.disk_high[i]);
    let epochs = code(node.epoch) << 12 | code(node.sealed) << 8 | code(a.epoch[i]) << 4;
    let more = (epochs | code(a.prev[i].0)) << 32
        | byte(g.prev_disk_high[i]) << 16
        | a.flushed_history[i].bits() as u64;
    let [m0, m1, m2, m3] = s.network.to_node(n);
    [logs, node.epochs.bits(), facts, more, m0, m1, m2, m3]
}

fn permute<T: Copy>(values: &mut [T; STORAGE_NODES], new_of_old: &[usize; STORAGE_NODES]) {
    let old = *values;
    for (i, v) in old.into_iter().enumerate() {
        values[new_of_old[i]] = v;
    }
}

/// The canonical member of `state`'s symmetry class.
///
/// One sort, no search over renamings: each zone puts its smaller signature first, then the
/// zones sort by (out?, first signature, second signature). Signatures are compared at most
/// 3 + 3 times (a three-element sort), and the renaming is applied once.
pub fn representative(state: &State) -> State {
    let sealed = sealed_set(&state.writer.phase);
    let signatures: [Signature; STORAGE_NODES] =
        std::array::from_fn(|i| signature(state, sealed, NodeId(i as u8)));
    // Within each zone, the smaller signature first; then the zones in order of (out?, nodes).
    let mut zones: [(bool, [usize; 2]); 3] = Az::ALL.map(|az| {
        let [a, b] = az.nodes().map(NodeId::index);
        let pair = if signatures[a] <= signatures[b] {
            [a, b]
        } else {
            [b, a]
        };
        (state.az_out == Some(az), pair)
    });
    let key = |(out, pair): &(bool, [usize; 2])| (*out, signatures[pair[0]], signatures[pair[1]]);
    // A three-element insertion sort: stable, as the sort it replaces.
    for i in 1..zones.len() {
        let mut j = i;
        while j > 0 && key(&zones[j - 1]) > key(&zones[j]) {
            zones.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut new_of_old = [0; STORAGE_NODES];
    for (slot, (_, pair)) in zones.iter().enumerate() {
        new_of_old[pair[0]] = 2 * slot;
        new_of_old[pair[1]] = 2 * slot + 1;
    }
    let mut s = state.clone();
    if new_of_old != [0, 1, 2, 3, 4, 5] {
        rename(&mut s, &new_of_old);
    }
    // Replicas are interchangeable too: no message in flight names one (pulls are single steps).
    s.replicas.sort_unstable();
    s
}

/// `state` with node `i` renamed to `new_of_old[i]` throughout.
#[cfg(test)]
fn apply(state: &State, new_of_old: &[usize; STORAGE_NODES]) -> State {
    let mut s = state.clone();
    rename(&mut s, new_of_old);
    s
}

/// Renames node `i` to `new_of_old[i]` throughout the state, in place.
fn rename(s: &mut State, new_of_old: &[usize; STORAGE_NODES]) {
    permute(&mut s.nodes, new_of_old);
    permute(&mut s.announced.scl, new_of_old);
    permute(&mut s.announced.flushed, new_of_old);
    permute(&mut s.announced.flushed_history, new_of_old);
    permute(&mut s.ghost.truthful_ack, new_of_old);
    permute(&mut s.ghost.disk_high, new_of_old);
    permute(&mut s.announced.epoch, new_of_old);
    permute(&mut s.announced.prev, new_of_old);
    permute(&mut s.ghost.prev_disk_high, new_of_old);
    if let Phase::Sealing { sealed } = &mut s.writer.phase {
        rename_set(sealed, new_of_old);
    }
    s.network.rename(new_of_old);
    s.az_out = s
        .az_out
        .map(|az| NodeId(new_of_old[az.nodes()[0].index()] as u8).az());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Preset};
    use crate::model::Action;
    use stateright::Model;

    /// The 48 renamings that keep zones together: a permutation of the zones, and in each zone
    /// the two nodes kept or swapped.
    fn zone_renamings() -> impl Iterator<Item = [usize; STORAGE_NODES]> {
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        orders.into_iter().flat_map(|zones| {
            (0..8).map(move |swaps: usize| {
                std::array::from_fn(|i| {
                    let (zone, within) = (i / 2, i % 2);
                    let swapped = swaps >> zone & 1;
                    2 * zones[zone] + (within ^ swapped)
                })
            })
        })
    }

    /// Along a walk through the recovery configuration (epochs, a seal in progress, a zombie's
    /// messages), every state's representative is the same under all 48 renamings.
    #[test]
    fn representatives_are_canonical_through_recovery() {
        let model = Config {
            replicas: 2,
            ..Config::preset(Preset::Recovery)
        }
        .into_model();
        let mut s = model.init_states().remove(0);
        let mut seen = 0;
        for step in 0..40 {
            let mut actions = Vec::new();
            model.actions(&s, &mut actions);
            let Some(action) = actions.into_iter().nth(step * 7 % 5) else {
                break;
            };
            let Some(next) = model.next_state(&s, action) else {
                continue;
            };
            s = next;
            let canonical = representative(&s);
            for p in zone_renamings() {
                assert_eq!(representative(&apply(&s, &p)), canonical, "renaming {p:?}");
            }
            seen += 1;
        }
        assert!(seen > 10, "the walk went {seen} steps");
    }

    /// Renaming a state's nodes by any zone-preserving permutation leaves its representative
    /// unchanged, and the representative is itself a renaming (same node contents, multiset).
    #[test]
    fn representatives_are_canonical() {
        let model = Config::preset(Preset::Default).into_model();
        let mut s = model.init_states().remove(0);
        for action in [Action::Write, Action::AzOutage(Az::B)] {
            s = model.next_state(&s, action).unwrap();
        }
        // Deliver a few appends to distinct nodes so nodes differ.
        let first: Vec<_> = s.network.iter().take(3).cloned().collect();
        for e in first {
            if model.deliverable(&s, &e) {
                s = model.next_state(&s, Action::Deliver(e)).unwrap();
            }
        }
        let canonical = representative(&s);
        for p in zone_renamings() {
            let renamed = apply(&s, &p);
            assert_eq!(representative(&renamed), canonical, "renaming {p:?}");
        }
        // The representative is one of the renamings, not some other state.
        assert!(zone_renamings().any(|p| apply(&s, &p) == canonical));
        // Replicas are interchangeable too.
        let mut two = Config {
            replicas: 2,
            ..Config::preset(Preset::Quick)
        }
        .into_model()
        .init_states()
        .remove(0);
        two.replicas[0].known_commit = crate::types::Lsn(1);
        let mut swapped = two.clone();
        swapped.replicas.swap(0, 1);
        assert_ne!(two, swapped);
        assert_eq!(representative(&two), representative(&swapped));

        let mut before: Vec<_> = s.nodes.to_vec();
        let mut after: Vec<_> = canonical.nodes.to_vec();
        before.sort();
        after.sort();
        assert_eq!(before, after);
    }
}
