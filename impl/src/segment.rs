//! The on-disk segment format and its recovery.
//!
//! A segment file starts with an 8-byte **file header**: the magic bytes `AURSEG` and the format
//! version (`u16` LE, [`FORMAT_VERSION`]). Then come frames `[len: u32 LE][crc32 of payload: u32
//! LE][payload]`, the payload being one postcard-encoded [`Entry`]: a [`Record`] (which carries
//! the epoch of the writer that created it), or a [`Seal`], the persisted truncation of a volume
//! recovery: "from here on this node has adopted `epoch`, and every record above `point` created
//! in an epoch older than `epoch` is annulled" ([`aurora_redo_model::recovery::annuls`]). Records
//! are appended in LSN order within an epoch.
//!
//! A file without the header (the format before epochs) or with another version is refused with
//! a [`FormatError`] naming the problem; it is never read as damage and never rewritten.
//!
//! **Reading** ([`decode`], [`Segment::inspect`]) is pure: it reads every frame back, checks its
//! CRC and reports damage, never silently skipping it:
//! - a **torn tail** (a last frame cut short, or garbage after the last good frame);
//! - a **corrupt frame in the middle** (bad CRC, bad length, undecodable payload), skipped by
//!   scanning forward for the next frame whose CRC checks, so the synced records after it
//!   survive.
//!
//! It then applies the seals: a record annulled by a seal anywhere in the file is not part of the
//! node's log (a seal annuls what came before it, and a node that adopted it takes no annulled
//! record after it: either way the record is out), and at one LSN a record of a later epoch
//! replaces one of an earlier epoch. The result is at most one record per LSN, the node's SCL
//! ([`Recovered::prefix`]), its sealed epoch and its damage.
//!
//! **Repairing** ([`Segment::open`]) is for paths that write: it writes the header of a new file,
//! truncates a torn tail, and rewrites a file with mid-file damage keeping only its valid frames
//! (seals included). Nothing that only reads calls it.
//!
//! **Reading back** ([`Segment::read`]): a storage node keeps in memory only what it has not yet
//! flushed (and a small cache of recently flushed records); older records a `Pull` needs are read
//! back from the segment. The segment keeps a sparse index for that, one entry per
//! [`INDEX_EVERY`] frames: the chunk's file offset and the lowest and highest LSN in it. A read of
//! an LSN range touches only the chunks whose LSN span overlaps it; frames are appended in LSN
//! order (flush jobs are contiguous runs above the flushed LSN), so that is a couple of chunks
//! per read. The index costs one entry per 1,024 records, not one per record. The segment also
//! keeps its seals (one per recovery the node took part in), so a read back applies them too.

use std::cmp::Reverse;
use std::fmt;
use std::io;

use aurora_redo_model::recovery::{annuls, ReadAnswer};
use aurora_redo_model::types::{Epoch, Lsn, Record};
use serde::{Deserialize, Serialize};

use crate::disk::Disk;
use crate::sync::{lock, Arc, Mutex};

mod summary;
pub use summary::Summary;

/// The frame header: length and CRC.
const HEADER: usize = 8;
/// No encoded entry comes close; a larger length field is damage.
const MAX_PAYLOAD: usize = 64;

/// The magic bytes a segment file starts with.
pub const MAGIC: [u8; 6] = *b"AURSEG";
/// The segment format this build reads and writes: 3, records and seals whose epochs are
/// `(number, writer id)` pairs. (2 had epochs as bare numbers; 1 was the format without a file
/// header.)
pub const FORMAT_VERSION: u16 = 3;
/// Bytes of the file header: the magic and the version.
pub const FILE_HEADER: usize = 8;

/// The file header of this format.
pub fn file_header() -> [u8; FILE_HEADER] {
    let mut h = [0; FILE_HEADER];
    h[..6].copy_from_slice(&MAGIC);
    h[6..].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

/// A persisted truncation: from this frame on the node has adopted `epoch`, and every record
/// above `point` created in an older epoch is annulled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    pub epoch: Epoch,
    pub point: Lsn,
}

impl Seal {
    /// Whether this seal annuls `record`.
    pub fn annuls(&self, record: &Record) -> bool {
        annuls(self.epoch, self.point, record.epoch, record.lsn)
    }
}

impl fmt::Display for Seal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seal {} at {}", self.epoch, self.point)
    }
}

/// One frame's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    Record(Record),
    Seal(Seal),
    /// The node adopted this epoch when a recovery read it (fencing): from here on it takes no
    /// older epoch's record. It annuls nothing; it speaks for the epoch only once sealed in it.
    Adopt(Epoch),
}

fn frame(entry: &Entry, out: &mut Vec<u8>) {
    let payload = postcard::to_stdvec(entry).expect("an entry always encodes");
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// Encodes `records` as consecutive frames (without the file header).
pub fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 24);
    for r in records {
        frame(&Entry::Record(*r), &mut out);
    }
    out
}

/// Encodes a seal as one frame.
pub fn encode_seal(seal: Seal) -> Vec<u8> {
    let mut out = Vec::new();
    frame(&Entry::Seal(seal), &mut out);
    out
}

/// Why a file is not a segment this build can read. Never damage to repair: a file in another
/// format is left alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The file starts with a record frame of the format before file headers and epochs.
    OldFormat,
    /// The file has the magic bytes but another format version.
    UnsupportedVersion(u16),
    /// The file does not start with the magic bytes and is no older segment either.
    NotASegment,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::OldFormat => write!(
                f,
                "written in the old segment format (no file header, records without epochs), \
                 which this version does not read; recreate the volume with this version"
            ),
            FormatError::UnsupportedVersion(2) => write!(
                f,
                "segment format version 2 (epochs without writer ids), but this version reads \
                 version {FORMAT_VERSION} only; recreate the volume with this version"
            ),
            FormatError::UnsupportedVersion(v) => write!(
                f,
                "segment format version {v}, but this version reads version {FORMAT_VERSION} only"
            ),
            FormatError::NotASegment => write!(
                f,
                "not a segment file (it does not start with the magic bytes {:?})",
                String::from_utf8_lossy(&MAGIC)
            ),
        }
    }
}

impl std::error::Error for FormatError {}

impl FormatError {
    /// The format error an I/O error carries, if it is one (see the `From` below).
    pub fn of(error: &io::Error) -> Option<FormatError> {
        error.get_ref()?.downcast_ref::<FormatError>().cloned()
    }
}

impl From<FormatError> for io::Error {
    fn from(e: FormatError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
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

/// What reading a segment found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The node's log: the valid records no seal annuls, in LSN order, one per LSN (the latest
    /// epoch's where several epochs wrote one).
    pub records: Vec<Record>,
    /// Every damaged range, in file order.
    pub damage: Vec<Damage>,
    /// The valid seals, in file order.
    pub seals: Vec<Seal>,
    /// How many valid record frames the seals annul.
    pub annulled: usize,
    /// The epochs the node adopted when read by a recovery, in file order.
    pub adopts: Vec<Epoch>,
}

impl Recovered {
    /// The highest `L` such that `1..=L` were all recovered: the node's SCL after a restart.
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

    /// The epoch the node has adopted: its latest seal's (`Epoch::FIRST` if none).
    pub fn sealed(&self) -> Epoch {
        sealed(&self.seals)
    }

    /// The epoch the node has adopted (fenced itself at): its latest adopt's or seal's.
    pub fn adopted(&self) -> Epoch {
        adopted(&self.adopts, &self.seals)
    }

    /// The highest epoch the node has seen: its sealed epoch or a record's.
    pub fn max_epoch(&self) -> Epoch {
        self.records
            .iter()
            .map(|r| r.epoch)
            .max()
            .unwrap_or(Epoch::FIRST)
            .max(self.sealed())
    }

    /// The node's answer to a recovery read.
    pub fn answer(&self) -> ReadAnswer {
        ReadAnswer {
            sealed: self.sealed(),
            scl: self.prefix(),
        }
    }

    /// A one-line human report of the damage, if any.
    pub fn report(&self) -> Option<String> {
        report(&self.damage)
    }
}

/// The epoch of the latest of `seals` (`Epoch::FIRST` if none).
fn sealed(seals: &[Seal]) -> Epoch {
    seals.iter().map(|s| s.epoch).max().unwrap_or(Epoch::FIRST)
}

/// The epoch a node adopted: its latest adopt's or seal's.
fn adopted(adopts: &[Epoch], seals: &[Seal]) -> Epoch {
    adopts
        .iter()
        .copied()
        .max()
        .unwrap_or(Epoch::FIRST)
        .max(sealed(seals))
}

/// A one-line human report of `damage`, if any.
fn report(damage: &[Damage]) -> Option<String> {
    if damage.is_empty() {
        return None;
    }
    let parts: Vec<String> = damage.iter().map(|d| d.to_string()).collect();
    Some(parts.join("; "))
}

/// Decodes the frame starting at `offset`, if one is there and its CRC checks.
fn frame_at(bytes: &[u8], offset: usize) -> Option<(Entry, usize)> {
    let payload = payload_at(bytes, offset)?;
    let entry: Entry = postcard::from_bytes(payload).ok()?;
    Some((entry, HEADER + payload.len()))
}

/// The CRC-checked payload of the frame at `offset`.
fn payload_at(bytes: &[u8], offset: usize) -> Option<&[u8]> {
    let header = bytes.get(offset..offset.checked_add(HEADER)?)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    if len == 0 || len > MAX_PAYLOAD {
        return None;
    }
    let payload = bytes.get(offset + HEADER..offset + HEADER + len)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// Whether `bytes` start with a frame of the format before file headers: a CRC-checked payload
/// that is a bare record (no entry tag) of the first epoch.
fn old_format(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct OldRecord {
        _lsn: Lsn,
        _page: u32,
        _value: u64,
    }
    payload_at(bytes, 0).is_some_and(
        |p| matches!(postcard::take_from_bytes::<OldRecord>(p), Ok((_, rest)) if rest.is_empty()),
    )
}

/// Checks the file header: `Ok(None)` for a file too short to hold one whose bytes are a prefix
/// of it (a new file torn while its header was written), `Ok(Some(()))` for a good header.
fn check_header(bytes: &[u8]) -> Result<Option<()>, FormatError> {
    let header = file_header();
    if bytes.len() < FILE_HEADER {
        if header.starts_with(bytes) {
            return Ok(None);
        }
        return Err(FormatError::NotASegment);
    }
    if bytes[..6] != MAGIC {
        return Err(if old_format(bytes) {
            FormatError::OldFormat
        } else {
            FormatError::NotASegment
        });
    }
    let version = u16::from_le_bytes([bytes[6], bytes[7]]);
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    Ok(Some(()))
}

/// Parses a segment file's bytes (an empty file is a new segment). Pure, and never panics on any
/// input: a file in another format is a [`FormatError`], damage is reported in the result.
pub fn decode(bytes: &[u8]) -> Result<Recovered, FormatError> {
    let mut damage = Vec::new();
    if check_header(bytes)?.is_none() {
        if !bytes.is_empty() {
            damage.push(Damage::TornTail {
                offset: 0,
                len: bytes.len(),
            });
        }
        return Ok(Recovered {
            damage,
            ..Recovered::default()
        });
    }
    let mut records = Vec::new();
    let mut seals = Vec::new();
    let mut adopts = Vec::new();
    let mut offset = FILE_HEADER;
    while offset < bytes.len() {
        if let Some((entry, size)) = frame_at(bytes, offset) {
            match entry {
                Entry::Record(r) => records.push(r),
                Entry::Seal(s) => seals.push(s),
                Entry::Adopt(e) => adopts.push(e),
            }
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
    let (records, annulled) = live(records, &seals);
    Ok(Recovered {
        records,
        damage,
        seals,
        annulled,
        adopts,
    })
}

/// The records of a node's log among `records` (in file order) under `seals`: those no seal
/// annuls, one per LSN, the latest epoch's (the first written among equals), in LSN order; and
/// how many the seals annulled.
pub fn live(mut records: Vec<Record>, seals: &[Seal]) -> (Vec<Record>, usize) {
    let before = records.len();
    records.retain(|r| !seals.iter().any(|s| s.annuls(r)));
    let annulled = before - records.len();
    records.sort_by_key(|r| (r.lsn, Reverse(r.epoch)));
    records.dedup_by_key(|r| r.lsn);
    (records, annulled)
}

/// Frames per entry of a segment's sparse index.
pub const INDEX_EVERY: u32 = 1024;

/// One entry of the sparse index: a run of up to [`INDEX_EVERY`] consecutive frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Chunk {
    /// The file offset of the run's first frame.
    offset: u64,
    /// The lowest and highest LSN of a record in the run (`min > max`: none yet).
    min: Lsn,
    max: Lsn,
    frames: u32,
}

/// The sparse index of a segment: chunks in file order, where the appended bytes end, and the
/// segment's seals.
#[derive(Debug, Default)]
struct Index {
    chunks: Vec<Chunk>,
    end: u64,
    seals: Vec<Seal>,
}

impl Index {
    /// Adds the frame of `entry`, `size` bytes, appended at the end.
    fn push(&mut self, entry: &Entry, size: usize) {
        if !matches!(self.chunks.last(), Some(c) if c.frames < INDEX_EVERY) {
            self.chunks.push(Chunk {
                offset: self.end,
                min: Lsn(u64::MAX),
                max: Lsn::ZERO,
                frames: 0,
            });
        }
        let c = self.chunks.last_mut().expect("a chunk was just ensured");
        c.frames += 1;
        match entry {
            Entry::Record(record) => {
                c.min = c.min.min(record.lsn);
                c.max = c.max.max(record.lsn);
            }
            Entry::Seal(seal) => self.seals.push(*seal),
            Entry::Adopt(_) => {}
        }
        self.end += size as u64;
    }

    /// Indexes the frames of `bytes` from `offset` on, which must be valid frames only.
    fn extend(&mut self, bytes: &[u8], mut offset: usize) {
        while let Some((entry, size)) = frame_at(bytes, offset) {
            self.push(&entry, size);
            offset += size;
        }
    }

    /// Indexes a segment file's bytes (header, then valid frames only: a repaired segment).
    fn of(bytes: &[u8]) -> Index {
        let mut index = Index {
            end: FILE_HEADER as u64,
            ..Index::default()
        };
        index.extend(bytes, FILE_HEADER);
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
    /// Reads the segment on `disk` without changing a byte of it: its log, seals and damage.
    /// A file in another format is an `InvalidData` error carrying the [`FormatError`].
    pub fn inspect(disk: &dyn Disk) -> io::Result<Recovered> {
        Ok(decode(&disk.read_all()?)?)
    }

    /// Opens the segment on `disk` for writing: recovers its log and **repairs** the file. A new
    /// (empty) file gets its header, durably; a torn tail is truncated; mid-file damage makes it
    /// rewritten with only its valid frames (seals first, then the log). A file in another
    /// format is refused (`InvalidData`) and left as it is. Only paths meant to write call this;
    /// [`Segment::inspect`] reads.
    pub fn open(disk: Arc<dyn Disk>) -> io::Result<(Segment, Recovered)> {
        let bytes = disk.read_all()?;
        let recovered = decode(&bytes)?;
        let index = match recovered.damage.as_slice() {
            [] if bytes.is_empty() => {
                disk.append(&file_header())?;
                disk.sync()?;
                Index::of(&file_header())
            }
            [] => Index::of(&bytes),
            [Damage::TornTail { offset, .. }] if *offset >= FILE_HEADER => {
                disk.truncate(*offset as u64)?;
                Index::of(&bytes[..*offset])
            }
            _ => {
                let mut clean = file_header().to_vec();
                for seal in &recovered.seals {
                    clean.extend_from_slice(&encode_seal(*seal));
                }
                if recovered.adopted() > recovered.sealed() {
                    frame(&Entry::Adopt(recovered.adopted()), &mut clean);
                }
                clean.extend_from_slice(&encode(&recovered.records));
                disk.replace(&clean)?;
                Index::of(&clean)
            }
        };
        Ok((Segment::with_index(disk, index), recovered))
    }

    /// Reads the segment on `disk` in bounded memory ([`Summary`]) without changing a byte.
    pub fn summarize(disk: &dyn Disk) -> io::Result<Summary> {
        match summary::scan(disk)? {
            Some((summary, _)) => Ok(summary),
            None => Ok(Summary::of(&Segment::inspect(disk)?)),
        }
    }

    /// [`Segment::open`] in bounded memory: the same recovery and repairs, reported as a
    /// [`Summary`]. A segment without damage or with only a torn tail (every crash's) is read
    /// in two streaming passes; a new file, or one damaged inside, goes through
    /// [`Segment::open`] (a rewrite holds the file's valid frames in memory).
    pub fn open_summary(disk: Arc<dyn Disk>) -> io::Result<(Segment, Summary)> {
        if let Some((summary, index)) = summary::scan(&*disk)? {
            match summary.damage.as_slice() {
                [] => return Ok((Segment::with_index(disk, index), summary)),
                [Damage::TornTail { offset, .. }] => {
                    disk.truncate(*offset as u64)?;
                    return Ok((Segment::with_index(disk, index), summary));
                }
                _ => {}
            }
        }
        let (segment, recovered) = Segment::open(disk)?;
        Ok((segment, Summary::of(&recovered)))
    }

    fn with_index(disk: Arc<dyn Disk>, index: Index) -> Segment {
        Segment {
            disk,
            index: Mutex::new(index),
        }
    }

    /// Appends records (not yet durable).
    pub fn append(&self, records: &[Record]) -> io::Result<()> {
        self.append_bytes(&encode(records))
    }

    /// Appends a seal frame (not yet durable: [`Segment::sync`] makes it so).
    pub fn seal(&self, seal: Seal) -> io::Result<()> {
        self.append_bytes(&encode_seal(seal))
    }

    /// Appends an adopt frame (not yet durable: [`Segment::sync`] makes it so).
    pub fn adopt(&self, epoch: Epoch) -> io::Result<()> {
        let mut bytes = Vec::new();
        frame(&Entry::Adopt(epoch), &mut bytes);
        self.append_bytes(&bytes)
    }

    fn append_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        self.disk.append(bytes)?;
        // Indexed once the bytes are there: a read never looks past what was written.
        lock(&self.index).extend(bytes, 0);
        Ok(())
    }

    /// Reads back the node's log in `from..=upto`, in LSN order, one record per LSN, with the
    /// segment's seals applied. Reads only the index's chunks that may hold them.
    pub fn read(&self, from: Lsn, upto: Lsn) -> io::Result<Vec<Record>> {
        let (ranges, seals) = {
            let index = lock(&self.index);
            (index.ranges(from, upto), index.seals.clone())
        };
        let mut records = Vec::new();
        for (offset, len) in ranges {
            let bytes = self.disk.read_at(offset, len as usize)?;
            let mut at = 0;
            while at < bytes.len() {
                let Some((entry, size)) = frame_at(&bytes, at) else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("no valid frame at segment offset {}", offset + at as u64),
                    ));
                };
                if let Entry::Record(record) = entry {
                    if (from..=upto).contains(&record.lsn) {
                        records.push(record);
                    }
                }
                at += size;
            }
        }
        Ok(live(records, &seals).0)
    }

    /// The seals the segment holds, in file order.
    pub fn seals(&self) -> Vec<Seal> {
        lock(&self.index).seals.clone()
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
        let back = decode(&[&file_header()[..], &encode(&r)].concat()).unwrap();
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
            let frame_start = FILE_HEADER + encode(&all[..19]).len();
            let disk = Arc::new(SimDisk::new());
            disk.append(&file_header()).unwrap();
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
            if let Ok(rec) = decode(&bytes) {
                assert!(rec.records.len() <= len / HEADER);
            }
            let framed = [&file_header()[..], &bytes].concat();
            let rec = decode(&framed).expect("a good header");
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
        let mid = FILE_HEADER + encode(&recs(2)).len() + 10;
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

    fn rec_of(lsn: u64, epoch: u32) -> Record {
        Record {
            lsn: Lsn(lsn),
            page: lsn as u32 % 3,
            value: lsn * 10 + u64::from(epoch),
            epoch: Epoch::numbered(epoch),
        }
    }

    #[test]
    fn an_old_format_file_is_refused_by_name_and_left_alone() {
        // The format before epochs: frames of bare `{lsn, page, value}` records, no header.
        #[derive(Serialize)]
        struct OldRecord {
            lsn: u64,
            page: u32,
            value: u64,
        }
        let mut old = Vec::new();
        for l in 1..=3u64 {
            let payload = postcard::to_stdvec(&OldRecord {
                lsn: l,
                page: 0,
                value: l,
            })
            .unwrap();
            old.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            old.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            old.extend_from_slice(&payload);
        }
        assert_eq!(decode(&old), Err(FormatError::OldFormat));
        let disk = Arc::new(SimDisk::new());
        disk.append(&old).unwrap();
        let err = Segment::open(disk.clone()).err().expect("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("old segment format"), "{err}");
        assert_eq!(disk.read_all().unwrap(), old, "never rewritten");
        assert_eq!(
            decode(b"hello, world"),
            Err(FormatError::NotASegment),
            "foreign bytes"
        );
        let mut v9 = file_header().to_vec();
        v9[6] = 9;
        assert_eq!(decode(&v9), Err(FormatError::UnsupportedVersion(9)));
        // Version 2, whose epochs were bare numbers: refused by name, never rewritten.
        let mut v2 = file_header().to_vec();
        v2[6] = 2;
        v2.extend_from_slice(&encode(&[rec_of(1, 0)]));
        assert_eq!(decode(&v2), Err(FormatError::UnsupportedVersion(2)));
        let disk = Arc::new(SimDisk::new());
        disk.append(&v2).unwrap();
        let err = Segment::open(disk.clone()).err().expect("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(
            err.to_string()
                .contains("version 2 (epochs without writer ids)"),
            "{err}"
        );
        assert_eq!(disk.read_all().unwrap(), v2, "never rewritten");
        // A new file torn inside its header is an empty segment with a torn tail.
        let torn = decode(&file_header()[..3]).unwrap();
        assert!(torn.records.is_empty());
        assert_eq!(torn.damage, vec![Damage::TornTail { offset: 0, len: 3 }]);
    }

    #[test]
    fn seals_annul_older_records_above_their_point_and_a_later_epoch_replaces() {
        let disk = Arc::new(SimDisk::new());
        let (seg, _) = Segment::open(disk.clone()).unwrap();
        seg.append(&(1..=6).map(|l| rec_of(l, 0)).collect::<Vec<_>>())
            .unwrap();
        let seal = Seal {
            epoch: Epoch::numbered(1),
            point: Lsn(4),
        };
        seg.seal(seal).unwrap();
        // After the seal: a stale epoch-0 record (annulled too) and the new epoch's.
        seg.append(&[rec_of(7, 0), rec_of(5, 1), rec_of(6, 1)])
            .unwrap();
        seg.sync().unwrap();
        let want: Vec<Record> = vec![
            rec_of(1, 0),
            rec_of(2, 0),
            rec_of(3, 0),
            rec_of(4, 0),
            rec_of(5, 1),
            rec_of(6, 1),
        ];
        let rec = Segment::inspect(&*disk).unwrap();
        assert_eq!(rec.records, want);
        assert_eq!(rec.seals, vec![seal]);
        assert_eq!(rec.annulled, 3, "epoch 0's 5, 6 and 7");
        assert_eq!(rec.sealed(), Epoch::numbered(1));
        assert_eq!(rec.prefix(), Lsn(6));
        assert_eq!(
            rec.answer(),
            ReadAnswer {
                sealed: Epoch::numbered(1),
                scl: Lsn(6)
            }
        );
        // Reading back applies the seal too, on the segment written and on one reopened.
        assert_eq!(seg.read(Lsn(1), Lsn(10)).unwrap(), want);
        let (again, _) = Segment::open(disk.clone()).unwrap();
        assert_eq!(again.read(Lsn(4), Lsn(6)).unwrap(), want[3..].to_vec());
        assert_eq!(again.seals(), vec![seal]);
        // Without a seal, a later epoch's record at an LSN replaces an earlier one.
        let bytes = [&file_header()[..], &encode(&[rec_of(1, 0), rec_of(1, 2)])].concat();
        assert_eq!(decode(&bytes).unwrap().records, vec![rec_of(1, 2)]);
    }

    #[test]
    fn inspecting_never_writes_and_a_rewrite_keeps_the_seals() {
        let disk = Arc::new(SimDisk::new());
        let (seg, _) = Segment::open(disk.clone()).unwrap();
        seg.append(&(1..=5).map(|l| rec_of(l, 0)).collect::<Vec<_>>())
            .unwrap();
        let seal = Seal {
            epoch: Epoch::numbered(1),
            point: Lsn(3),
        };
        seg.seal(seal).unwrap();
        seg.sync().unwrap();
        disk.flip_byte(FILE_HEADER + 12); // inside record 1's frame
        disk.append(&[1, 2, 3]).unwrap(); // and a torn tail
        let before = disk.read_all().unwrap();
        let seen = Segment::inspect(&*disk).unwrap();
        assert_eq!(disk.read_all().unwrap(), before, "inspect wrote nothing");
        assert_eq!(seen.damage.len(), 2, "{:?}", seen.damage);
        let (_, opened) = Segment::open(disk.clone()).unwrap();
        assert_eq!(opened, seen);
        let repaired = Segment::inspect(&*disk).unwrap();
        assert!(repaired.damage.is_empty());
        assert_eq!(repaired.seals, vec![seal]);
        assert_eq!(repaired.records, seen.records);
        assert_eq!(repaired.records.first().map(|r| r.lsn), Some(Lsn(2)));
    }
}
