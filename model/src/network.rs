//! The network: the set of messages in flight.
//!
//! Delivery is unordered. Identical messages in flight coalesce into one: every handler in the
//! protocol is idempotent (watermarks take the max, records apply once, a re-ack repeats an ack),
//! so a second identical copy adds nothing the `duplicating` network does not already explore,
//! and coalescing keeps the state space finite when a replica re-pulls in a loop.

use crate::types::{Actor, Envelope};

/// Messages in flight, kept sorted so equal networks hash equally.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Network(Vec<Envelope>);

impl Network {
    /// Puts a message in flight. Returns whether it was not already there.
    pub fn send(&mut self, envelope: Envelope) -> bool {
        match self.0.binary_search(&envelope) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, envelope);
                true
            }
        }
    }

    /// Takes a message out of flight (delivered once, or lost).
    pub fn remove(&mut self, envelope: &Envelope) {
        if let Ok(at) = self.0.binary_search(envelope) {
            self.0.remove(at);
        }
    }

    /// Forgets every message addressed to `dst` (it will never be delivered).
    pub fn discard_to(&mut self, dst: Actor) {
        self.0.retain(|e| e.dst != dst);
    }

    pub fn iter(&self) -> impl Iterator<Item = &Envelope> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Rewrites every envelope (used by symmetry reduction), restoring the order.
    pub fn map(&mut self, mut f: impl FnMut(&mut Envelope)) {
        self.0.iter_mut().for_each(&mut f);
        self.0.sort_unstable();
        self.0.dedup();
    }
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Lsn, NodeId};

    fn ack(node: u8, scl: u64) -> Envelope {
        Envelope::ack(NodeId(node), Lsn(scl))
    }

    #[test]
    fn identical_messages_coalesce() {
        let mut net = Network::default();
        assert!(net.send(ack(1, 1)));
        assert!(!net.send(ack(1, 1)));
        assert!(net.send(ack(0, 1)));
        assert_eq!(net.len(), 2);
        net.remove(&ack(1, 1));
        assert_eq!(net.iter().collect::<Vec<_>>(), vec![&ack(0, 1)]);
    }

    #[test]
    fn sending_order_does_not_matter() {
        let (mut a, mut b) = (Network::default(), Network::default());
        for e in [ack(2, 1), ack(0, 2), ack(1, 1)] {
            a.send(e);
        }
        for e in [ack(1, 1), ack(2, 1), ack(0, 2)] {
            b.send(e);
        }
        assert_eq!(a, b);
    }
}
