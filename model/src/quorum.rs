//! Watermark arithmetic: contiguous prefixes and "the highest LSN that a quorum reaches".
//!
//! The writer's commit point, a replica's known commit point and durable LSN, and the volume
//! durable LSN are all the same computation over different per-node watermarks.

use crate::types::{Lsn, WRITE_QUORUM};

/// The `k`-th highest of `values` (1-based), or `Lsn::ZERO` when there are fewer than `k`.
///
/// Up to eight values (a protection group's six, the common case) are ranked on the stack with
/// no allocation: the model computes a watermark for nearly every state it generates.
pub fn kth_highest(values: impl IntoIterator<Item = Lsn>, k: usize) -> Lsn {
    assert!(k > 0, "k is 1-based");
    let mut values = values.into_iter();
    let mut small = [Lsn::ZERO; 8];
    let mut len = 0;
    for (slot, value) in small.iter_mut().zip(values.by_ref()) {
        *slot = value;
        len += 1;
    }
    if len == small.len() {
        if let Some(more) = values.next() {
            let mut all: Vec<Lsn> = small.into_iter().chain([more]).chain(values).collect();
            if all.len() < k {
                return Lsn::ZERO;
            }
            let (_, kth, _) = all.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
            return *kth;
        }
    }
    let small = &mut small[..len];
    if small.len() < k {
        return Lsn::ZERO;
    }
    // Insertion sort, highest first: a handful of values.
    for i in 1..small.len() {
        let mut j = i;
        while j > 0 && small[j - 1] < small[j] {
            small.swap(j - 1, j);
            j -= 1;
        }
    }
    small[k - 1]
}

/// The highest `L` that at least [`WRITE_QUORUM`] (4) of the per-node `watermarks` reach: the
/// 4th-highest. Applied to acked SCLs it is the commit point; to flushed LSNs, the durable LSN.
pub fn quorum_watermark(watermarks: impl IntoIterator<Item = Lsn>) -> Lsn {
    kth_highest(watermarks, WRITE_QUORUM)
}

/// The highest `L` such that `holds(l)` for every `l` in `1..=L`: a hole stops it.
pub fn contiguous_prefix(mut holds: impl FnMut(Lsn) -> bool) -> Lsn {
    let mut lsn = Lsn::ZERO;
    while holds(lsn.next()) {
        lsn = lsn.next();
    }
    lsn
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsns(values: &[u64]) -> Vec<Lsn> {
        values.iter().copied().map(Lsn).collect()
    }

    #[test]
    fn quorum_is_the_fourth_highest() {
        assert_eq!(quorum_watermark(lsns(&[5, 1, 4, 2, 3, 0])), Lsn(2));
        assert_eq!(quorum_watermark(lsns(&[7, 7, 7, 0, 0, 0])), Lsn(0));
        assert_eq!(quorum_watermark(lsns(&[7, 7, 7, 7, 0, 0])), Lsn(7));
        assert_eq!(quorum_watermark(lsns(&[9, 9, 9])), Lsn(0));
    }

    #[test]
    fn kth_highest_counts_from_the_top() {
        let values = lsns(&[3, 9, 1, 4]);
        assert_eq!(kth_highest(values.clone(), 1), Lsn(9));
        assert_eq!(kth_highest(values.clone(), 3), Lsn(3));
        assert_eq!(kth_highest(values, 5), Lsn(0));
    }

    /// More values than fit on the stack rank the same way.
    #[test]
    fn many_values_rank_alike() {
        let values = lsns(&[3, 9, 1, 4, 12, 0, 7, 7, 5, 2, 11]);
        let mut sorted = values.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        for k in 1..=values.len() {
            assert_eq!(kth_highest(values.clone(), k), sorted[k - 1], "k = {k}");
            assert_eq!(kth_highest(values[..8].to_vec(), k.min(8)), {
                let mut eight = values[..8].to_vec();
                eight.sort_by(|a, b| b.cmp(a));
                eight[k.min(8) - 1]
            });
        }
        assert_eq!(kth_highest(values.clone(), 12), Lsn(0));
    }

    #[test]
    fn exactly_k_values_have_a_kth_highest() {
        assert_eq!(kth_highest(lsns(&[3, 9, 1, 4]), 4), Lsn(1));
        assert_eq!(quorum_watermark(lsns(&[5, 6, 7, 8])), Lsn(5));
    }

    #[test]
    fn a_hole_stops_the_prefix() {
        let held = [1u64, 2, 4, 5];
        assert_eq!(contiguous_prefix(|l| held.contains(&l.0)), Lsn(2));
        assert_eq!(contiguous_prefix(|_| false), Lsn(0));
    }
}
