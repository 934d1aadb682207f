//! Reading a segment in bounded memory: what a node needs of its segment to restart (its
//! prefix, the records beyond a hole, seals, adopts, damage), found by two streaming passes over
//! the file in chunks of [`CHUNK`] bytes, without holding its bytes or its records.
//!
//! [`super::decode`] reads a whole file into a [`Recovered`] (every record); recovery of a
//! volume and the `recover` command use it. A node's restart uses [`Summary`], so that restarting
//! after millions of records costs the index and a chunk, not the log.

use std::collections::BTreeMap;
use std::io;

use aurora_redo_model::types::{Epoch, Lsn, Record};

use super::{check_header, frame_at, Damage, Entry, Index, Recovered, Seal, FILE_HEADER};
use super::{HEADER, MAX_PAYLOAD};
use crate::disk::Disk;

/// Bytes read per chunk.
pub const CHUNK: usize = 1 << 20;

/// What a node needs of its segment to restart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The highest `L` such that `1..=L` are all in the log: the node's SCL after a restart.
    pub prefix: Lsn,
    /// The log's records above `prefix + 1` (after a hole), in LSN order.
    pub beyond: Vec<Record>,
    /// How many records the log holds (one per LSN).
    pub records: u64,
    /// Every damaged range, in file order.
    pub damage: Vec<Damage>,
    /// The valid seals, in file order.
    pub seals: Vec<Seal>,
    /// How many valid record frames the seals annul.
    pub annulled: usize,
    /// The epochs the node adopted when read by a recovery, in file order.
    pub adopts: Vec<Epoch>,
}

impl Summary {
    /// The summary of a log read whole.
    pub fn of(recovered: &Recovered) -> Summary {
        let prefix = recovered.prefix();
        Summary {
            prefix,
            beyond: recovered
                .records
                .iter()
                .filter(|r| r.lsn > prefix)
                .copied()
                .collect(),
            records: recovered.records.len() as u64,
            damage: recovered.damage.clone(),
            seals: recovered.seals.clone(),
            annulled: recovered.annulled,
            adopts: recovered.adopts.clone(),
        }
    }

    /// The epoch of its latest seal (`Epoch::FIRST` if none).
    pub fn sealed(&self) -> Epoch {
        super::sealed(&self.seals)
    }

    /// The epoch the node has adopted: its latest adopt's or seal's.
    pub fn adopted(&self) -> Epoch {
        super::adopted(&self.adopts, &self.seals)
    }

    /// A one-line human report of the damage, if any.
    pub fn report(&self) -> Option<String> {
        super::report(&self.damage)
    }
}

/// A window on a disk's bytes, refilled one chunk at a time.
struct Chunks<'a> {
    disk: &'a dyn Disk,
    chunk: usize,
    len: u64,
    start: u64,
    buf: Vec<u8>,
}

impl<'a> Chunks<'a> {
    fn new(disk: &'a dyn Disk, chunk: usize) -> Chunks<'a> {
        Chunks {
            disk,
            chunk: chunk.max(HEADER + MAX_PAYLOAD),
            len: disk.len(),
            start: 0,
            buf: Vec::new(),
        }
    }

    /// The bytes from `offset` on: at least a whole frame's worth, unless the file ends first.
    fn at(&mut self, offset: u64) -> io::Result<&[u8]> {
        let needed = (offset + (HEADER + MAX_PAYLOAD) as u64).min(self.len);
        if offset < self.start || needed > self.start + self.buf.len() as u64 {
            let n = (self.chunk as u64).min(self.len - offset) as usize;
            self.buf = self.disk.read_at(offset, n)?;
            self.start = offset;
        }
        Ok(&self.buf[(offset - self.start) as usize..])
    }
}

/// Walks the frames after the file header in file order, as [`super::decode`] does (the same
/// resynchronisation after damage), calling `visit` with each valid entry and its size; returns
/// the damage.
fn walk(
    disk: &dyn Disk,
    chunk: usize,
    mut visit: impl FnMut(Entry, usize),
) -> io::Result<Vec<Damage>> {
    let mut chunks = Chunks::new(disk, chunk);
    let len = chunks.len;
    let mut damage = Vec::new();
    let mut offset = FILE_HEADER as u64;
    while offset < len {
        if let Some((entry, size)) = frame_at(chunks.at(offset)?, 0) {
            visit(entry, size);
            offset += size as u64;
            continue;
        }
        let mut next = offset + 1;
        while next < len && frame_at(chunks.at(next)?, 0).is_none() {
            next += 1;
        }
        let range = (offset as usize, (next - offset) as usize);
        if next < len {
            damage.push(Damage::Corrupt {
                offset: range.0,
                len: range.1,
            });
            offset = next;
        } else {
            damage.push(Damage::TornTail {
                offset: range.0,
                len: range.1,
            });
            break;
        }
    }
    Ok(damage)
}

/// Reads the segment on `disk` in bounded memory, changing nothing. `None` when the file holds
/// no complete header (new, or torn while its header was written): read it whole instead. A
/// file in another format is an `InvalidData` error, as for [`super::Segment::inspect`]. The
/// index covers the valid frames in file order (exact when the only damage is a torn tail).
pub(super) fn scan(disk: &dyn Disk) -> io::Result<Option<(Summary, Index)>> {
    scan_in(disk, CHUNK)
}

/// [`scan`], reading `chunk` bytes at a time.
fn scan_in(disk: &dyn Disk, chunk: usize) -> io::Result<Option<(Summary, Index)>> {
    let head = disk.read_at(
        0,
        (disk.len() as usize).min(FILE_HEADER + HEADER + MAX_PAYLOAD),
    )?;
    if check_header(&head)?.is_none() {
        return Ok(None);
    }
    // Pass 1: seals, adopts, damage and the index.
    let mut index = Index {
        end: FILE_HEADER as u64,
        ..Index::default()
    };
    let mut adopts = Vec::new();
    let damage = walk(disk, chunk, |entry, size| {
        if let Entry::Adopt(e) = entry {
            adopts.push(e);
        }
        index.push(&entry, size);
    })?;
    let seals = index.seals.clone();
    // Pass 2: the live records (no seal annuls them; per LSN the latest epoch's, the first
    // written among equals), counted into the contiguous prefix; those above a hole are kept.
    let (mut prefix, mut records, mut annulled) = (Lsn::ZERO, 0u64, 0usize);
    let mut beyond: BTreeMap<Lsn, Record> = BTreeMap::new();
    walk(disk, chunk, |entry, _| {
        let Entry::Record(r) = entry else { return };
        if seals.iter().any(|s| s.annuls(&r)) {
            annulled += 1;
            return;
        }
        if r.lsn <= prefix {
            return; // another copy of an LSN already counted
        }
        if r.lsn == prefix.next() {
            records += 1;
            prefix = r.lsn;
            while let Some(next) = beyond.remove(&prefix.next()) {
                prefix = next.lsn;
            }
            return;
        }
        match beyond.get(&r.lsn) {
            Some(held) if held.epoch >= r.epoch => {}
            Some(_) => {
                beyond.insert(r.lsn, r);
            }
            None => {
                records += 1;
                beyond.insert(r.lsn, r);
            }
        }
    })?;
    let summary = Summary {
        prefix,
        beyond: beyond.into_values().collect(),
        records,
        damage,
        seals,
        annulled,
        adopts,
    };
    Ok(Some((summary, index)))
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::disk::SimDisk;
    use crate::segment::{decode, encode, encode_seal, file_header, frame, Segment};
    use crate::sync::Arc;

    /// One thing a segment file can hold, or a way to damage it.
    #[derive(Clone, Debug)]
    enum Piece {
        Record { lsn: u64, epoch: u32 },
        Seal { epoch: u32, point: u64 },
        Adopt(u32),
        Flip { at: usize },
        Cut { keep: usize },
    }

    fn piece() -> impl Strategy<Value = Piece> {
        prop_oneof![
            8 => (1u64..40, 0u32..3).prop_map(|(lsn, epoch)| Piece::Record { lsn, epoch }),
            1 => (1u32..3, 0u64..30).prop_map(|(epoch, point)| Piece::Seal { epoch, point }),
            1 => (1u32..3).prop_map(Piece::Adopt),
            1 => any::<usize>().prop_map(|at| Piece::Flip { at }),
            1 => any::<usize>().prop_map(|keep| Piece::Cut { keep }),
        ]
    }

    fn bytes_of(pieces: &[Piece]) -> Vec<u8> {
        let mut bytes = file_header().to_vec();
        for p in pieces {
            match *p {
                Piece::Record { lsn, epoch } => bytes.extend(encode(&[Record {
                    lsn: Lsn(lsn),
                    page: (lsn % 3) as u32,
                    value: lsn * 10 + u64::from(epoch),
                    epoch: Epoch::numbered(epoch),
                }])),
                Piece::Seal { epoch, point } => bytes.extend(encode_seal(Seal {
                    epoch: Epoch::numbered(epoch),
                    point: Lsn(point),
                })),
                Piece::Adopt(e) => frame(&Entry::Adopt(Epoch::numbered(e)), &mut bytes),
                Piece::Flip { at } => {
                    let i = FILE_HEADER + at % (bytes.len() - FILE_HEADER + 1);
                    if let Some(b) = bytes.get_mut(i) {
                        *b ^= 0x5a;
                    }
                }
                Piece::Cut { keep } => {
                    bytes.truncate(FILE_HEADER + keep % (bytes.len() - FILE_HEADER + 1));
                }
            }
        }
        bytes
    }

    fn disk_with(bytes: &[u8]) -> Arc<SimDisk> {
        let disk = Arc::new(SimDisk::new());
        disk.append(bytes).unwrap();
        disk.sync().unwrap();
        disk
    }

    proptest! {
        /// The streaming scan, at any chunk size, finds what decoding the whole file finds.
        #[test]
        fn the_scan_agrees_with_decoding_the_whole_file(
            pieces in proptest::collection::vec(piece(), 0..120),
            chunk in 1usize..300,
        ) {
            let bytes = bytes_of(&pieces);
            let whole = Summary::of(&decode(&bytes).unwrap());
            let disk = disk_with(&bytes);
            let (small, _) = scan_in(&*disk, chunk).unwrap().unwrap();
            prop_assert_eq!(&small, &whole);
            let (large, _) = scan(&*disk).unwrap().unwrap();
            prop_assert_eq!(&large, &whole);
        }

        /// Opening in bounded memory repairs and reads back what opening whole does.
        #[test]
        fn opening_a_summary_repairs_and_reads_back_like_opening_whole(
            pieces in proptest::collection::vec(piece(), 0..120),
        ) {
            let bytes = bytes_of(&pieces);
            let (whole_disk, summary_disk) = (disk_with(&bytes), disk_with(&bytes));
            let (whole, recovered) = Segment::open(whole_disk.clone()).unwrap();
            let (streamed, summary) = Segment::open_summary(summary_disk.clone()).unwrap();
            prop_assert_eq!(&summary, &Summary::of(&recovered));
            prop_assert_eq!(summary_disk.read_all().unwrap(), whole_disk.read_all().unwrap());
            let all = (Lsn(1), Lsn(u64::MAX));
            prop_assert_eq!(streamed.read(all.0, all.1).unwrap(), whole.read(all.0, all.1).unwrap());
        }
    }
}
