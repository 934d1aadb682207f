//! The on-disk segment format and its recovery.
//!
//! A segment is a sequence of frames `[len: u32 LE][crc32 of payload: u32 LE][payload]`, the
//! payload being one postcard-encoded [`Record`]. Records are appended in LSN order.
//!
//! Recovery reads every frame back and checks its CRC. Damage is reported, never silently
//! skipped:
//! - a **torn tail** (a last frame cut short, or garbage after the last good frame) is cut off;
//! - a **corrupt frame in the middle** (bad CRC, bad length, undecodable payload) is skipped by
//!   scanning forward for the next frame whose CRC checks, so the synced records after it
//!   survive; the segment is then rewritten without the damaged bytes.
//!
//! **Reading back** ([`Segment::read`]): a storage node keeps in memory only what it has not yet
//! flushed (and a small cache of recently flushed records); older records a `Pull` needs are read
//! back from the segment. The segment keeps a sparse index for that, one entry per
//! [`INDEX_EVERY`] frames: the chunk's file offset and the lowest and highest LSN in it. A read of
//! an LSN range touches only the chunks whose LSN span overlaps it; frames are appended in LSN
//! order (flush jobs are contiguous runs above the flushed LSN), so that is a couple of chunks
//! per read. The index costs one entry per 1,024 records, not one per record.

use std::fmt;
use std::io;

use aurora_redo_model::types::{Lsn, Record};

use crate::disk::Disk;
use crate::sync::{lock, Arc, Mutex};

const HEADER: usize = 8;
/// No encoded record comes close; a larger length field is damage.
const MAX_PAYLOAD: usize = 64;

/// Encodes `records` as consecutive frames.
pub fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 24);
    for r in records {
        let payload = postcard::to_stdvec(r).expect("a record always encodes");
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
    }
    out
}

/// One damaged byte range found by recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damage {
    /// Bytes `offset..offset+len` in the middle of the file did not form valid frames; the valid
    /// frames after them were kept.
    Corrupt { offset: usize, len: usize },
    /// The file ended with `len` bytes at `offset` that are not a complete valid frame.
    TornTail { offset: usize, len: usize },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Corrupt { offset, len } => {
                write!(f, "corrupt bytes {offset}..{} skipped", offset + len)
            }
            Damage::TornTail { offset, len } => {
                write!(f, "torn tail of {len} bytes at offset {offset} truncated")
            }
        }
    }
}

/// What recovery read back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The valid records, in LSN order, without duplicates.
    pub records: Vec<Record>,
    /// Every damaged range, in file order.
    pub damage: Vec<Damage>,
}

impl Recovered {
    /// The highest `L` such that `1..=L` were all recovered.
    pub fn prefix(&self) -> Lsn {
        let mut lsn = Lsn::ZERO;
        for r in &self.records {
            if r.lsn == lsn.next() {
                lsn = r.lsn;
            } else if r.lsn > lsn.next() {
                break;
            }
        }
        lsn
    }

    /// A one-line human report of the damage, if any.
    pub fn report(&self) -> Option<String> {
        if self.damage.is_empty() {
            return None;
        }
        let parts: Vec<String> = self.damage.iter().map(|d| d.to_string()).collect();
        Some(parts.join("; "))
    }
}

/// Decodes the frame starting at `offset`, if one is there and its CRC checks.
fn frame_at(bytes: &[u8], offset: usize) -> Option<(Record, usize)> {
    let header = bytes.get(offset..offset + HEADER)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    if len == 0 || len > MAX_PAYLOAD {
        return None;
    }
    let payload = bytes.get(offset + HEADER..offset + HEADER + len)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let record: Record = postcard::from_bytes(payload).ok()?;
    Some((record, HEADER + len))
}

/// Parses a segment's bytes. Never panics on any input.
pub fn decode(bytes: &[u8]) -> Recovered {
    let mut records = Vec::new();
    let mut damage = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        if let Some((record, size)) = frame_at(bytes, offset) {
            records.push(record);
            offset += size;
            continue;
        }
        // Resynchronise: the next offset where a valid frame starts.
        match (offset + 1..bytes.len()).find(|&o| frame_at(bytes, o).is_some()) {
            Some(next) => {
                damage.push(Damage::Corrupt {
                    offset,
                    len: next - offset,
                });
                offset = next;
            }
            None => {
                damage.push(Damage::TornTail {
                    offset,
                    len: bytes.len() - offset,
                });
                break;
            }
        }
    }
    records.sort();
    records.dedup_by_key(|r| r.lsn);
    Recovered { records, damage }
}

/// Frames per entry of a segment's sparse index.
pub const INDEX_EVERY: u32 = 1024;

/// One entry of the sparse index: a run of up to [`INDEX_EVERY`] consecutive frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Chunk {
    /// The file offset of the run's first frame.
    offset: u64,
    /// The lowest and highest LSN in the run.
    min: Lsn,
    max: Lsn,
    frames: u32,
}

/// The sparse index of a segment: chunks in file order, and where the appended bytes end.
#[derive(Debug, Default)]
struct Index {
    chunks: Vec<Chunk>,
    end: u64,
}

impl Index {
    /// Adds the frame of `record`, `size` bytes, appended at the end.
    fn push(&mut self, record: &Record, size: usize) {
        match self.chunks.last_mut() {
            Some(c) if c.frames < INDEX_EVERY => {
                c.min = c.min.min(record.lsn);
                c.max = c.max.max(record.lsn);
                c.frames += 1;
            }
            _ => self.chunks.push(Chunk {
                offset: self.end,
                min: record.lsn,
                max: record.lsn,
                frames: 1,
            }),
        }
        self.end += size as u64;
    }

    /// Indexes a segment's bytes, which must be valid frames only (a repaired segment).
    fn of(bytes: &[u8]) -> Index {
        let mut index = Index::default();
        let mut offset = 0;
        while let Some((record, size)) = frame_at(bytes, offset) {
            index.push(&record, size);
            offset += size;
        }
        index
    }

    /// The byte ranges `(offset, len)` of the chunks that may hold an LSN in `from..=upto`,
    /// adjacent ones merged.
    fn ranges(&self, from: Lsn, upto: Lsn) -> Vec<(u64, u64)> {
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for (i, c) in self.chunks.iter().enumerate() {
            if c.max < from || c.min > upto {
                continue;
            }
            let end = self.chunks.get(i + 1).map_or(self.end, |n| n.offset);
            match ranges.last_mut() {
                Some((o, len)) if *o + *len == c.offset => *len = end - *o,
                _ => ranges.push((c.offset, end - c.offset)),
            }
        }
        ranges
    }
}

/// A node's segment file, with its sparse index.
pub struct Segment {
    disk: Arc<dyn Disk>,
    index: Mutex<Index>,
}

impl Segment {
    /// Opens the segment on `disk`, recovers its records and repairs the file: a torn tail is
    /// truncated; mid-file damage makes it rewritten with only the valid frames.
    pub fn open(disk: Arc<dyn Disk>) -> io::Result<(Segment, Recovered)> {
        let bytes = disk.read_all()?;
        let recovered = decode(&bytes);
        let index = match recovered.damage.as_slice() {
            [] => Index::of(&bytes),
            [Damage::TornTail { offset, .. }] => {
                disk.truncate(*offset as u64)?;
                Index::of(&bytes[..*offset])
            }
            _ => {
                let clean = encode(&recovered.records);
                disk.replace(&clean)?;
                Index::of(&clean)
            }
        };
        let segment = Segment {
            disk,
            index: Mutex::new(index),
        };
        Ok((segment, recovered))
    }

    /// Appends records (not yet durable).
    pub fn append(&self, records: &[Record]) -> io::Result<()> {
        let bytes = encode(records);
        self.disk.append(&bytes)?;
        // Indexed once the bytes are there: a read never looks past what was written.
        let mut index = lock(&self.index);
        let mut offset = 0;
        while let Some((record, size)) = frame_at(&bytes, offset) {
            index.push(&record, size);
            offset += size;
        }
        Ok(())
    }

    /// Reads back the records with an LSN in `from..=upto`, in LSN order, without duplicates.
    /// Reads only the index's chunks that may hold them.
    pub fn read(&self, from: Lsn, upto: Lsn) -> io::Result<Vec<Record>> {
        let ranges = lock(&self.index).ranges(from, upto);
        let mut records = Vec::new();
        for (offset, len) in ranges {
            let bytes = self.disk.read_at(offset, len as usize)?;
            let mut at = 0;
            while at < bytes.len() {
                let Some((record, size)) = frame_at(&bytes, at) else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("no valid frame at segment offset {}", offset + at as u64),
                    ));
                };
                if (from..=upto).contains(&record.lsn) {
                    records.push(record);
                }
                at += size;
            }
        }
        records.sort();
        records.dedup_by_key(|r| r.lsn);
        Ok(records)
    }

    /// How many entries the sparse index holds (one per [`INDEX_EVERY`] frames).
    pub fn index_len(&self) -> usize {
        lock(&self.index).chunks.len()
    }

    /// Makes every appended record durable.
    pub fn sync(&self) -> io::Result<()> {
        self.disk.sync()
    }
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use super::*;
    use crate::disk::{FileDisk, SimDisk};
    use aurora_redo_model::types::Epoch;

    fn recs(n: u64) -> Vec<Record> {
        (1..=n)
            .map(|l| Record {
                lsn: Lsn(l),
                page: (l * 7 % 5) as u32,
                value: l * 1_000_003,
                epoch: Epoch::FIRST,
            })
            .collect()
    }

    #[test]
    fn round_trip() {
        let r = recs(50);
        let back = decode(&encode(&r));
        assert_eq!(back.records, r);
        assert!(back.damage.is_empty());
        assert_eq!(back.prefix(), Lsn(50));
    }

    #[test]
    fn a_torn_tail_is_reported_and_truncated_keeping_every_synced_record() {
        let disk = Arc::new(SimDisk::new());
        let (seg, _) = Segment::open(disk.clone()).unwrap();
        seg.append(&recs(10)).unwrap();
        seg.sync().unwrap();
        let synced = disk.synced_len() as usize;
        seg.append(&recs(12)[10..]).unwrap();
        disk.crash_torn(7); // half a frame of record 11 survives
        let (_, rec) = Segment::open(disk.clone()).unwrap();
        assert_eq!(rec.records, recs(10));
        assert_eq!(
            rec.damage,
            vec![Damage::TornTail {
                offset: synced,
                len: 7
            }]
        );
        assert!(rec.report().unwrap().contains("torn tail"));
        // The file was repaired: opening again finds no damage.
        let (_, again) = Segment::open(disk).unwrap();
        assert!(again.damage.is_empty());
        assert_eq!(again.records, recs(10));
    }

    #[test]
    fn a_flipped_byte_in_the_middle_loses_only_that_record() {
        for target in [0usize, 3, 5, 9, 12] {
            // Flip a byte inside frame 20 (header or payload) of 40.
            let all = recs(40);
            let bytes = encode(&all);
            let frame_start = encode(&all[..19]).len();
            let disk = Arc::new(SimDisk::new());
            disk.append(&bytes).unwrap();
            disk.sync().unwrap();
            disk.flip_byte(frame_start + target);
            let (_, rec) = Segment::open(disk.clone()).unwrap();
            let mut expect = all.clone();
            expect.remove(19);
            assert_eq!(rec.records, expect, "flip at +{target}");
            assert!(
                matches!(rec.damage[..], [Damage::Corrupt { offset, .. }] if offset == frame_start)
            );
            assert_eq!(rec.prefix(), Lsn(19));
            let (_, again) = Segment::open(disk).unwrap();
            assert!(again.damage.is_empty(), "rewritten clean");
            assert_eq!(again.records, expect);
        }
    }

    #[test]
    fn reads_back_ranges_through_the_sparse_index() {
        let disk = Arc::new(SimDisk::new());
        let (seg, _) = Segment::open(disk.clone()).unwrap();
        let all = recs(3000);
        for job in all.chunks(700) {
            seg.append(job).unwrap();
        }
        seg.sync().unwrap();
        assert_eq!(seg.index_len(), 3);
        let lsns = |v: Vec<Record>| v.iter().map(|r| r.lsn.0).collect::<Vec<_>>();
        assert_eq!(
            lsns(seg.read(Lsn(1000), Lsn(1030)).unwrap()),
            (1000..=1030).collect::<Vec<_>>()
        );
        assert_eq!(
            seg.read(Lsn(2990), Lsn(5000)).unwrap(),
            all[2989..].to_vec()
        );
        assert!(seg.read(Lsn(3001), Lsn(4000)).unwrap().is_empty());
        // Reopened, the index is rebuilt from the file.
        let (again, _) = Segment::open(disk).unwrap();
        assert_eq!(again.index_len(), 3);
        assert_eq!(again.read(Lsn(1), Lsn(3000)).unwrap(), all);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u32;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 24) as u8
                })
                .collect();
            let rec = decode(&bytes);
            assert!(rec.records.len() <= len / HEADER);
        }
    }

    #[test]
    fn real_file_crash_drops_unsynced_and_recovery_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s0.seg");
        {
            let disk: Arc<dyn Disk> = Arc::new(FileDisk::open(&path).unwrap());
            let (seg, rec) = Segment::open(disk.clone()).unwrap();
            assert!(rec.records.is_empty());
            seg.append(&recs(5)).unwrap();
            seg.sync().unwrap();
            seg.append(&recs(8)[5..]).unwrap();
            disk.crash_torn(5);
        }
        let disk: Arc<dyn Disk> = Arc::new(FileDisk::open(&path).unwrap());
        let (_, rec) = Segment::open(disk).unwrap();
        assert_eq!(rec.records, recs(5));
        assert_eq!(rec.damage.len(), 1);
        // Mid-file corruption in a real file.
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = encode(&recs(2)).len() + 10;
        bytes[mid] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let disk: Arc<dyn Disk> = Arc::new(FileDisk::open(&path).unwrap());
        let (_, rec) = Segment::open(disk).unwrap();
        assert_eq!(
            rec.records.iter().map(|r| r.lsn.0).collect::<Vec<_>>(),
            vec![1, 2, 4, 5]
        );
        assert!(rec.report().unwrap().contains("corrupt"));
    }
}
