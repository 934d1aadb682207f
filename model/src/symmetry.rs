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

use crate::state::{LsnSet, Node, NodeSet, Phase, State};
use crate::types::{Actor, Az, Envelope, Epoch, Lsn, Msg, NodeId, STORAGE_NODES};

/// Stands for "this node" in a signature's messages.
const SELF: NodeId = NodeId(u8::MAX);

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Signature {
    node: Node,
    announced_scl: Lsn,
    announced_flushed: Lsn,
    announced_epoch: Epoch,
    announced_prev: (Epoch, Lsn, Lsn),
    flushed_history: LsnSet,
    truthful_ack: Lsn,
    disk_high: Lsn,
    prev_disk_high: Lsn,
    /// Whether the recovering writer has sealed it.
    sealed_by_writer: bool,
    messages: Vec<Envelope>,
}

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

fn rename_node(id: &mut NodeId, f: &impl Fn(NodeId) -> NodeId) {
    *id = f(*id);
}

/// Rewrites every node id in an envelope.
fn rename(e: &mut Envelope, f: impl Fn(NodeId) -> NodeId) {
    for actor in [&mut e.src, &mut e.dst] {
        if let Actor::Storage(n) = actor {
            rename_node(n, &f);
        }
    }
    match &mut e.msg {
        Msg::Ack { node, .. }
        | Msg::Available { node, .. }
        | Msg::Records { node, .. }
        | Msg::Flushed { node, .. }
        | Msg::ReadAnswer { node, .. }
        | Msg::Sealed { node, .. } => rename_node(node, &f),
        Msg::Append(_) | Msg::Pull { .. } | Msg::Read { .. } | Msg::Seal { .. } => {}
    }
}

fn signature(s: &State, n: NodeId) -> Signature {
    let i = n.index();
    let involves = |e: &&Envelope| e.src == Actor::Storage(n) || e.dst == Actor::Storage(n);
    let mut messages: Vec<Envelope> = s
        .network
        .iter()
        .filter(involves)
        .map(|e| {
            let mut e = e.clone();
            rename(&mut e, |m| if m == n { SELF } else { m });
            e
        })
        .collect();
    messages.sort_unstable();
    let sealed = sealed_set(&s.writer.phase);
    Signature {
        node: s.nodes[i].clone(),
        announced_scl: s.announced.scl[i],
        announced_flushed: s.announced.flushed[i],
        announced_epoch: s.announced.epoch[i],
        announced_prev: s.announced.prev[i],
        flushed_history: s.announced.flushed_history[i],
        truthful_ack: s.ghost.truthful_ack[i],
        disk_high: s.ghost.disk_high[i],
        prev_disk_high: s.ghost.prev_disk_high[i],
        sealed_by_writer: sealed.contains(n),
        messages,
    }
}

fn permute<T: Clone>(values: &mut [T; STORAGE_NODES], new_of_old: &[usize; STORAGE_NODES]) {
    let old = values.clone();
    for (i, v) in old.into_iter().enumerate() {
        values[new_of_old[i]] = v;
    }
}

/// The canonical member of `state`'s symmetry class.
pub fn representative(state: &State) -> State {
    let signatures: Vec<Signature> = NodeId::all().map(|n| signature(state, n)).collect();
    // Within each zone, the smaller signature first; then the zones in order of (out?, nodes).
    let mut zones: Vec<(bool, [usize; 2])> = Az::ALL
        .iter()
        .map(|&az| {
            let [a, b] = az.nodes().map(NodeId::index);
            let pair = if signatures[a] <= signatures[b] {
                [a, b]
            } else {
                [b, a]
            };
            (state.az_out == Some(az), pair)
        })
        .collect();
    zones.sort_by(|(out_x, x), (out_y, y)| {
        (out_x, &signatures[x[0]], &signatures[x[1]]).cmp(&(
            out_y,
            &signatures[y[0]],
            &signatures[y[1]],
        ))
    });
    let mut new_of_old = [0; STORAGE_NODES];
    for (slot, (_, pair)) in zones.iter().enumerate() {
        new_of_old[pair[0]] = 2 * slot;
        new_of_old[pair[1]] = 2 * slot + 1;
    }
    let mut s = if new_of_old == [0, 1, 2, 3, 4, 5] {
        state.clone()
    } else {
        apply(state, &new_of_old)
    };
    // Replicas are interchangeable too: no message in flight names one (pulls are single steps).
    s.replicas.sort_unstable();
    s
}

/// Renames node `i` to `new_of_old[i]` throughout the state.
fn apply(state: &State, new_of_old: &[usize; STORAGE_NODES]) -> State {
    let mut s = state.clone();
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
    s.network
        .map(|e| rename(e, |n| NodeId(new_of_old[n.index()] as u8)));
    s.az_out = s
        .az_out
        .map(|az| NodeId(new_of_old[az.nodes()[0].index()] as u8).az());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Preset};
    use crate::model::Action;
    use stateright::Model;

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
        for e in s
            .network
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .take(3)
        {
            if model.deliverable(&s, &e) {
                s = model.next_state(&s, Action::Deliver(e)).unwrap();
            }
        }
        let canonical = representative(&s);
        let renamings: [[usize; 6]; 4] = [
            [1, 0, 2, 3, 4, 5],
            [2, 3, 0, 1, 4, 5],
            [5, 4, 3, 2, 1, 0],
            [4, 5, 1, 0, 3, 2],
        ];
        for p in renamings {
            let renamed = apply(&s, &p);
            assert_eq!(representative(&renamed), canonical, "renaming {p:?}");
        }
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
