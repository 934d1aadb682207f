//! The network: the set of messages in flight.
//!
//! Delivery is unordered. Identical messages in flight coalesce into one: every handler in the
//! protocol is idempotent (watermarks take the max, records apply once, a re-ack repeats an ack),
//! so a second identical copy adds nothing the `duplicating` network does not already explore,
//! and coalescing keeps the state space finite when a replica re-pulls in a loop.
//!
//! The only messages the model keeps in flight are the writers' `Append`s (see `crate::model`),
//! and the model's records are a function of their identity `(epoch, LSN)`
//! ([`crate::state::record_for`]). So the network is a bitset: per storage node, one bit for each
//! `(LSN, epoch)` an `Append` to it may carry (16 LSNs by 16 epochs: four numbers by four writer
//! ids, four `u64`s). A state holds no
//! envelope; [`Network::iter`] yields them from a table built once, in the order of `Envelope`'s
//! `Ord` (node, then LSN, then epoch), the order the sorted list this replaces had.

use crate::state::{record_for, MAX_EPOCHS};
use crate::types::{Actor, Envelope, Epoch, Lsn, Msg, NodeId, WriterId, STORAGE_NODES};
use std::sync::LazyLock;

/// Words per node.
const WORDS: usize = 4;
/// Bits per node: one per `(LSN, epoch)`.
const BITS: usize = 64 * WORDS;
/// Epochs per LSN.
const EPOCHS: usize = (MAX_EPOCHS * MAX_EPOCHS) as usize;

/// `Append` messages in flight, one bitset per destination node.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Network([[u64; WORDS]; STORAGE_NODES]);

/// Every envelope the network can hold, at `node * BITS + bit`.
static ENVELOPES: LazyLock<Vec<Envelope>> = LazyLock::new(|| {
    NodeId::all()
        .flat_map(|node| (0..BITS).map(move |bit| Envelope::append(node, record_of(bit))))
        .collect()
});

/// The bit of an `Append` of `(epoch, lsn)`: LSN-major, then writer, then number, so that bits
/// ascend as envelopes sort (a record's value grows with its writer id, then its number).
fn bit_of(epoch: Epoch, lsn: Lsn) -> usize {
    let per_writer = MAX_EPOCHS as usize;
    (lsn.0 as usize - 1) * EPOCHS + epoch.writer().0 as usize * per_writer + epoch.number() as usize
}

fn record_of(bit: usize) -> crate::types::Record {
    let lsn = Lsn((bit / EPOCHS) as u64 + 1);
    let (writer, number) = (
        (bit % EPOCHS) / MAX_EPOCHS as usize,
        bit % MAX_EPOCHS as usize,
    );
    record_for(Epoch::new(number as u32, WriterId(writer as u32)), lsn)
}

/// Where `envelope` sits in the network, if it is one the network can hold: an `Append` from the
/// writer to a node, of a record the model creates.
fn slot(envelope: &Envelope) -> Option<(usize, usize, u64)> {
    let (Actor::Writer, Actor::Storage(node), Msg::Append(record)) =
        (envelope.src, envelope.dst, &envelope.msg)
    else {
        return None;
    };
    let fits = (1..=16).contains(&record.lsn.0)
        && record.epoch.number() < MAX_EPOCHS
        && record.epoch.writer().0 < MAX_EPOCHS
        && node.index() < STORAGE_NODES
        && *record == record_for(record.epoch, record.lsn);
    let bit = bit_of(record.epoch, record.lsn);
    fits.then(|| (node.index(), bit / 64, 1 << (bit % 64)))
}

impl Network {
    /// Puts a message in flight. Returns whether it was not already there.
    ///
    /// # Panics
    /// If the envelope is not an `Append` the model creates (the model sends no other).
    pub fn send(&mut self, envelope: Envelope) -> bool {
        let (node, word, bit) =
            slot(&envelope).expect("the network holds the model's Appends only");
        let fresh = self.0[node][word] & bit == 0;
        self.0[node][word] |= bit;
        fresh
    }

    /// Takes a message out of flight (delivered once, or lost).
    pub fn remove(&mut self, envelope: &Envelope) {
        if let Some((node, word, bit)) = slot(envelope) {
            self.0[node][word] &= !bit;
        }
    }

    /// Whether `envelope` is in flight.
    pub fn contains(&self, envelope: &Envelope) -> bool {
        slot(envelope).is_some_and(|(node, word, bit)| self.0[node][word] & bit != 0)
    }

    /// Forgets every message addressed to `dst` (it will never be delivered).
    pub fn discard_to(&mut self, dst: Actor) {
        if let Actor::Storage(node) = dst {
            self.0[node.index()] = [0; WORDS];
        }
    }

    /// The messages in flight, in envelope order.
    pub fn iter(&self) -> impl Iterator<Item = &'static Envelope> + '_ {
        let table = &*ENVELOPES;
        self.0.iter().enumerate().flat_map(move |(node, words)| {
            words.iter().enumerate().flat_map(move |(w, &bits)| {
                Bits(bits).map(move |bit| &table[node * BITS + w * 64 + bit])
            })
        })
    }

    pub fn len(&self) -> usize {
        self.0
            .iter()
            .flatten()
            .map(|b| b.count_ones() as usize)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().flatten().all(|&b| b == 0)
    }

    /// The messages to `node`, as its bitset (for symmetry reduction: a renaming of the nodes
    /// moves each node's messages with it).
    pub fn to_node(&self, node: NodeId) -> [u64; WORDS] {
        self.0[node.index()]
    }

    /// The bitsets' words, in node order.
    pub fn words(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().flatten().copied()
    }

    /// Renames node `i` to `new_of_old[i]` in every message.
    pub fn rename(&mut self, new_of_old: &[usize; STORAGE_NODES]) {
        let old = self.0;
        for (i, bits) in old.into_iter().enumerate() {
            self.0[new_of_old[i]] = bits;
        }
    }
}

/// The set bits of a word, lowest first.
struct Bits(u64);

impl Iterator for Bits {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(bit)
    }
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(node: u8, epoch: u32, lsn: u64) -> Envelope {
        Envelope::append(NodeId(node), record_for(Epoch::numbered(epoch), Lsn(lsn)))
    }

    #[test]
    fn identical_messages_coalesce() {
        let mut net = Network::default();
        assert!(net.send(append(1, 0, 1)));
        assert!(!net.send(append(1, 0, 1)));
        assert!(net.send(append(0, 0, 1)));
        assert_eq!(net.len(), 2);
        net.remove(&append(1, 0, 1));
        assert_eq!(net.iter().collect::<Vec<_>>(), vec![&append(0, 0, 1)]);
    }

    #[test]
    fn sending_order_does_not_matter() {
        let (mut a, mut b) = (Network::default(), Network::default());
        for e in [append(2, 0, 1), append(0, 0, 2), append(1, 1, 1)] {
            a.send(e);
        }
        for e in [append(1, 1, 1), append(2, 0, 1), append(0, 0, 2)] {
            b.send(e);
        }
        assert_eq!(a, b);
    }

    /// The bitset yields its envelopes in `Envelope`'s own order, so the steps the model offers
    /// come in the order a sorted list of envelopes gave them.
    #[test]
    fn iteration_follows_envelope_order() {
        let mut net = Network::default();
        let mut sent = Vec::new();
        for node in [5, 0, 3] {
            for (epoch, lsn) in [(2, 16), (0, 1), (1, 1), (3, 7), (0, 2)] {
                let e = append(node, epoch, lsn);
                net.send(e.clone());
                sent.push(e);
            }
            for (number, writer, lsn) in [(1, 2, 1), (1, 1, 1), (3, 3, 16), (2, 3, 16)] {
                let epoch = Epoch::new(number, WriterId(writer));
                let e = Envelope::append(NodeId(node), record_for(epoch, Lsn(lsn)));
                net.send(e.clone());
                sent.push(e);
            }
        }
        sent.sort();
        assert_eq!(net.iter().cloned().collect::<Vec<_>>(), sent);
        assert!(net.contains(&sent[3]));
        net.discard_to(Actor::Storage(NodeId(0)));
        assert!(!net.contains(&sent[3]));
        assert_eq!(net.len(), 18);
    }

    /// An envelope the model never sends (another record, another sender) is not in flight and
    /// removing it changes nothing.
    #[test]
    fn foreign_envelopes_are_never_in_flight() {
        let mut net = Network::default();
        net.send(append(1, 0, 1));
        let mut forged = append(1, 0, 1);
        if let Msg::Append(r) = &mut forged.msg {
            r.value += 1;
        }
        assert!(!net.contains(&forged));
        net.remove(&forged);
        net.remove(&Envelope::ack(NodeId(1), Lsn(1)));
        assert_eq!(net.len(), 1);
    }
}
