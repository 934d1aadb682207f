//! The byte store under a segment file, injectable so the engine runs on real files in
//! production and on a simulated disk under shuttle (which has no real I/O).
//!
//! Both implementations distinguish written from synced bytes: [`Disk::crash`] drops whatever
//! was not synced, as a power loss drops the page cache.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::sync::{lock, Arc, Mutex};

/// An append-only byte store with an explicit sync.
pub trait Disk: Send + Sync {
    /// Appends `bytes` (not yet durable).
    fn append(&self, bytes: &[u8]) -> io::Result<()>;
    /// Makes every appended byte durable (fsync).
    fn sync(&self) -> io::Result<()>;
    /// Reads back the whole content.
    fn read_all(&self) -> io::Result<Vec<u8>>;
    /// Reads `len` bytes at `offset` (all of them, or an error).
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// How many bytes it holds (synced or not).
    fn len(&self) -> u64;
    /// Whether it holds no byte.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Cuts the content to `len` bytes, durably.
    fn truncate(&self, len: u64) -> io::Result<()>;
    /// Replaces the whole content durably and atomically (used to rewrite a damaged segment).
    fn replace(&self, bytes: &[u8]) -> io::Result<()>;
    /// How many bytes are durable (synced).
    fn synced_len(&self) -> u64;
    /// Fault injection: lose every byte that was not synced.
    fn crash(&self);
    /// Fault injection: lose the unsynced bytes except the first `keep` of them (a torn write).
    fn crash_torn(&self, keep: usize);
    /// What the disk is, for error messages: a file's path.
    fn describe(&self) -> String {
        "a simulated disk".into()
    }
}

/// A change to a directory's entries, or the fsync that makes such changes durable: what
/// [`FileDisk`] and [`create_dir_durable`] report to a [`DirTrace`] as they do it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirOp {
    /// A directory was created.
    MadeDir(PathBuf),
    /// A file was created.
    Created(PathBuf),
    /// A file was renamed.
    Renamed { from: PathBuf, to: PathBuf },
    /// A directory was fsynced: every entry change in it so far is durable.
    SyncedDir(PathBuf),
}

/// Told of every [`DirOp`] as it is done (for tests of directory durability).
/// (A real-file facility: std's `Arc`, whatever the model checker's.)
pub type DirTrace = std::sync::Arc<dyn Fn(DirOp) + Send + Sync>;

/// The directory holding `path` (`.` for a bare file name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn note(trace: Option<&DirTrace>, op: impl FnOnce() -> DirOp) {
    if let Some(t) = trace {
        t(op());
    }
}

/// Fsyncs the directory `dir`, making the creations and renames in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    sync_dir_traced(dir, None)
}

fn sync_dir_traced(dir: &Path, trace: Option<&DirTrace>) -> io::Result<()> {
    File::open(dir)?.sync_all()?;
    note(trace, || DirOp::SyncedDir(dir.to_path_buf()));
    Ok(())
}

/// Creates the directory `dir` and its missing ancestors, durably: each directory created is
/// followed by an fsync of its parent (and `dir` itself is fsynced), so a power loss cannot
/// take back a directory that a later file creation relied on.
pub fn create_dir_durable(dir: &Path) -> io::Result<()> {
    create_dir_durable_traced(dir, None)
}

/// [`create_dir_durable`], telling `trace` of each step.
pub fn create_dir_durable_traced(dir: &Path, trace: Option<&DirTrace>) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_durable_traced(parent, trace)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => note(trace, || DirOp::MadeDir(dir.to_path_buf())),
        // Created meanwhile by someone else, who is responsible for its durability.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    sync_dir_traced(&parent_of(dir), trace)?;
    sync_dir_traced(dir, trace)
}

/// A real segment file.
pub struct FileDisk {
    path: PathBuf,
    state: Mutex<FileState>,
    trace: Option<DirTrace>,
}

struct FileState {
    file: File,
    len: u64,
    synced_len: u64,
}

impl FileDisk {
    /// Opens (creating if needed) the segment file at `path`. A file it creates is made durable
    /// in its directory (the directory is fsynced) before this returns.
    pub fn open(path: impl AsRef<Path>) -> io::Result<FileDisk> {
        FileDisk::open_traced(path, None)
    }

    /// [`FileDisk::open`], telling `trace` of every directory change this disk makes.
    pub fn open_traced(path: impl AsRef<Path>, trace: Option<DirTrace>) -> io::Result<FileDisk> {
        let path = path.as_ref().to_path_buf();
        let mut options = OpenOptions::new();
        options.read(true).append(true);
        let file = match options.clone().create_new(true).open(&path) {
            Ok(file) => {
                note(trace.as_ref(), || DirOp::Created(path.clone()));
                sync_dir_traced(&parent_of(&path), trace.as_ref())?;
                file
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => options.open(&path)?,
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        Ok(FileDisk {
            path,
            state: Mutex::new(FileState {
                file,
                len,
                synced_len: len,
            }),
            trace,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Disk for FileDisk {
    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.file.write_all(bytes)?;
        s.len += bytes.len() as u64;
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        // fsync outside the lock would let appends slip under a sync that does not cover them;
        // the flusher is the only writer, so holding the lock costs nothing.
        let mut s = lock(&self.state);
        s.file.sync_data()?;
        s.synced_len = s.len;
        Ok(())
    }

    fn read_all(&self) -> io::Result<Vec<u8>> {
        let mut file = File::open(&self.path)?;
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))?;
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let s = lock(&self.state);
        let mut bytes = vec![0; len];
        s.file.read_exact_at(&mut bytes, offset)?;
        Ok(bytes)
    }

    fn len(&self) -> u64 {
        lock(&self.state).len
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.file.set_len(len)?;
        s.file.sync_all()?;
        s.len = len;
        s.synced_len = len;
        Ok(())
    }

    fn replace(&self, bytes: &[u8]) -> io::Result<()> {
        let mut s = lock(&self.state);
        let tmp = self.path.with_extension("rewrite");
        let trace = self.trace.as_ref();
        {
            let mut f = File::create(&tmp)?;
            note(trace, || DirOp::Created(tmp.clone()));
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        note(trace, || DirOp::Renamed {
            from: tmp.clone(),
            to: self.path.clone(),
        });
        sync_dir_traced(&parent_of(&self.path), trace)?;
        s.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)?;
        s.len = bytes.len() as u64;
        s.synced_len = s.len;
        Ok(())
    }

    fn synced_len(&self) -> u64 {
        lock(&self.state).synced_len
    }

    fn crash(&self) {
        self.crash_torn(0);
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn crash_torn(&self, keep: usize) {
        let mut s = lock(&self.state);
        let cut = (s.synced_len + keep as u64).min(s.len);
        // Emulates losing the page cache: the file keeps only what was synced (plus a torn bit).
        if s.file.set_len(cut).is_ok() {
            s.len = cut;
        }
    }
}

/// The error a [`FaultyDisk`] fails with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// `ENOSPC`: the disk is full.
    NoSpace,
    /// `EIO`: the device failed.
    Io,
}

impl FaultError {
    fn error(self) -> io::Error {
        // The Linux numbers (ENOSPC 28, EIO 5), so the messages read as the real ones.
        io::Error::from_raw_os_error(match self {
            FaultError::NoSpace => 28,
            FaultError::Io => 5,
        })
    }
}

/// Which operation a [`FaultyDisk`]'s fault strikes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOp {
    /// The append that would take the disk past the byte budget fails (writing nothing).
    Write,
    /// Appends succeed; the first fsync once the budget is passed fails.
    Sync,
}

/// A disk fault: `error` on `op` once `after` bytes have been appended. Written
/// `enospc@N`, `eio@N`, `enospc-fsync@N` or `eio-fsync@N` (`@N` may be left out: from the
/// first byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskFault {
    pub error: FaultError,
    pub op: FaultOp,
    pub after: u64,
}

impl std::str::FromStr for DiskFault {
    type Err = String;

    fn from_str(s: &str) -> Result<DiskFault, String> {
        let (kind, after) = match s.split_once('@') {
            Some((k, n)) => {
                let n = n
                    .parse()
                    .map_err(|_| format!("{s:?}: the byte count after @ must be a number"))?;
                (k, n)
            }
            None => (s, 0),
        };
        let (error, op) = match kind {
            "enospc" => (FaultError::NoSpace, FaultOp::Write),
            "eio" => (FaultError::Io, FaultOp::Write),
            "enospc-fsync" => (FaultError::NoSpace, FaultOp::Sync),
            "eio-fsync" => (FaultError::Io, FaultOp::Sync),
            _ => {
                return Err(format!(
                    "{s:?}: a disk fault is enospc, eio, enospc-fsync or eio-fsync, optionally \
                     followed by @BYTES"
                ))
            }
        };
        Ok(DiskFault { error, op, after })
    }
}

/// Fault injection: a disk that fails as [`DiskFault`] says, and from then on fails every
/// write, fsync, truncation and rewrite (a full or broken disk stays so). Reads still work.
pub struct FaultyDisk {
    inner: Arc<dyn Disk>,
    fault: DiskFault,
    state: Mutex<FaultState>,
}

#[derive(Default)]
struct FaultState {
    appended: u64,
    tripped: bool,
}

impl FaultyDisk {
    pub fn new(inner: Arc<dyn Disk>, fault: DiskFault) -> FaultyDisk {
        FaultyDisk {
            inner,
            fault,
            state: Mutex::new(FaultState::default()),
        }
    }

    /// Trips the fault now, whatever the byte budget.
    pub fn fail_now(&self) {
        lock(&self.state).tripped = true;
    }

    /// Fails if tripped; otherwise lets a write-side operation through.
    fn check(&self) -> io::Result<()> {
        if lock(&self.state).tripped {
            Err(self.fault.error.error())
        } else {
            Ok(())
        }
    }
}

impl Disk for FaultyDisk {
    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        {
            let mut s = lock(&self.state);
            let over = s.appended + bytes.len() as u64 > self.fault.after;
            if over && self.fault.op == FaultOp::Write {
                s.tripped = true;
            }
            if s.tripped {
                return Err(self.fault.error.error());
            }
            s.appended += bytes.len() as u64;
        }
        self.inner.append(bytes)
    }

    fn sync(&self) -> io::Result<()> {
        {
            let mut s = lock(&self.state);
            if s.appended > self.fault.after {
                s.tripped = true;
            }
        }
        self.check()?;
        self.inner.sync()
    }

    fn read_all(&self) -> io::Result<Vec<u8>> {
        self.inner.read_all()
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.inner.read_at(offset, len)
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.check()?;
        self.inner.truncate(len)
    }

    fn replace(&self, bytes: &[u8]) -> io::Result<()> {
        self.check()?;
        self.inner.replace(bytes)
    }

    fn synced_len(&self) -> u64 {
        self.inner.synced_len()
    }

    fn crash(&self) {
        self.inner.crash();
    }

    fn crash_torn(&self, keep: usize) {
        self.inner.crash_torn(keep);
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// An in-memory disk that models synced versus unsynced bytes.
#[derive(Default)]
pub struct SimDisk {
    state: Mutex<SimState>,
}

#[derive(Default)]
struct SimState {
    bytes: Vec<u8>,
    synced: usize,
}

impl SimDisk {
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// Flips one byte (media corruption), for tests.
    pub fn flip_byte(&self, offset: usize) {
        let mut s = lock(&self.state);
        if let Some(b) = s.bytes.get_mut(offset) {
            *b ^= 0x5a;
        }
    }
}

impl Disk for SimDisk {
    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        lock(&self.state).bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.synced = s.bytes.len();
        Ok(())
    }

    fn read_all(&self) -> io::Result<Vec<u8>> {
        Ok(lock(&self.state).bytes.clone())
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let s = lock(&self.state);
        let start = offset as usize;
        s.bytes
            .get(start..start + len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))
    }

    fn len(&self) -> u64 {
        lock(&self.state).bytes.len() as u64
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.bytes.truncate(len as usize);
        s.synced = s.bytes.len();
        Ok(())
    }

    fn replace(&self, bytes: &[u8]) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.bytes = bytes.to_vec();
        s.synced = s.bytes.len();
        Ok(())
    }

    fn synced_len(&self) -> u64 {
        lock(&self.state).synced as u64
    }

    fn crash(&self) {
        self.crash_torn(0);
    }

    fn crash_torn(&self, keep: usize) {
        let mut s = lock(&self.state);
        let cut = (s.synced + keep).min(s.bytes.len());
        s.bytes.truncate(cut);
    }
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use super::*;

    /// A trace that keeps every operation, in order.
    fn recorder() -> (DirTrace, std::sync::Arc<std::sync::Mutex<Vec<DirOp>>>) {
        let ops = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = ops.clone();
        let trace: DirTrace = std::sync::Arc::new(move |op| sink.lock().unwrap().push(op));
        (trace, ops)
    }

    /// The entry changes in `ops` that no later fsync of their directory covers.
    fn unsynced(ops: &[DirOp]) -> Vec<DirOp> {
        ops.iter()
            .enumerate()
            .filter(|(i, op)| {
                let dirs = match op {
                    DirOp::MadeDir(p) | DirOp::Created(p) => vec![parent_of(p)],
                    DirOp::Renamed { from, to } => vec![parent_of(from), parent_of(to)],
                    DirOp::SyncedDir(_) => return false,
                };
                !dirs.iter().all(|d| {
                    ops[i + 1..]
                        .iter()
                        .any(|later| later == &DirOp::SyncedDir(d.clone()))
                })
            })
            .map(|(_, op)| op.clone())
            .collect()
    }

    #[test]
    fn every_creation_and_rename_is_followed_by_a_directory_fsync() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a").join("b");
        let (trace, ops) = recorder();
        create_dir_durable_traced(&dir, Some(&trace)).unwrap();
        let path = dir.join("node-0.seg");
        let disk = FileDisk::open_traced(&path, Some(trace.clone())).unwrap();
        disk.append(b"abc").unwrap();
        disk.sync().unwrap();
        disk.replace(b"xy").unwrap();
        let ops = ops.lock().unwrap().clone();
        // Both directories, the file and the rewrite's temporary file and its rename.
        let changes = ops
            .iter()
            .filter(|o| !matches!(o, DirOp::SyncedDir(_)))
            .count();
        assert_eq!(changes, 5, "{ops:#?}");
        assert!(ops.contains(&DirOp::Created(path.clone())), "{ops:#?}");
        assert_eq!(unsynced(&ops), vec![], "{ops:#?}");
        assert_eq!(disk.read_all().unwrap(), b"xy");
    }

    #[test]
    fn reopening_an_existing_file_or_directory_changes_no_entry() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("node-1.seg");
        FileDisk::open(&path).unwrap().append(b"q").unwrap();
        let (trace, ops) = recorder();
        create_dir_durable_traced(root.path(), Some(&trace)).unwrap();
        let disk = FileDisk::open_traced(&path, Some(trace)).unwrap();
        assert_eq!(disk.len(), 1);
        assert_eq!(*ops.lock().unwrap(), vec![]);
    }

    #[test]
    fn the_checker_finds_a_creation_without_a_directory_fsync() {
        let created = DirOp::Created(PathBuf::from("/v/node-0.seg"));
        let other_dir = DirOp::SyncedDir(PathBuf::from("/w"));
        assert_eq!(
            unsynced(&[created.clone(), other_dir]),
            vec![created.clone()]
        );
        let before = DirOp::SyncedDir(PathBuf::from("/v"));
        assert_eq!(unsynced(&[before, created.clone()]), vec![created]);
    }

    #[test]
    fn a_faulty_disk_fails_past_its_budget_and_stays_failed() {
        let sim = Arc::new(SimDisk::new());
        let disk = FaultyDisk::new(sim.clone(), "enospc@5".parse().unwrap());
        disk.append(b"abc").unwrap();
        disk.sync().unwrap();
        let err = disk.append(b"def").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28));
        assert_eq!(
            sim.read_all().unwrap(),
            b"abc",
            "the failed append wrote nothing"
        );
        assert!(disk.append(b"d").is_err(), "a full disk stays full");
        assert!(disk.sync().is_err());
        assert!(disk.truncate(1).is_err());
        assert_eq!(disk.read_all().unwrap(), b"abc", "reads still work");

        let disk = FaultyDisk::new(Arc::new(SimDisk::new()), "eio-fsync@2".parse().unwrap());
        disk.append(b"abc").unwrap();
        assert_eq!(disk.sync().unwrap_err().raw_os_error(), Some(5));
        assert_eq!(disk.synced_len(), 0);
        assert!(disk.append(b"x").is_err());

        let disk = FaultyDisk::new(Arc::new(SimDisk::new()), "eio@100".parse().unwrap());
        disk.append(b"a").unwrap();
        disk.fail_now();
        assert!(disk.append(b"b").is_err());
    }

    #[test]
    fn disk_fault_specs_parse_and_bad_ones_are_explained() {
        let f: DiskFault = "eio-fsync@4096".parse().unwrap();
        assert_eq!(
            f,
            DiskFault {
                error: FaultError::Io,
                op: FaultOp::Sync,
                after: 4096
            }
        );
        assert_eq!("enospc".parse::<DiskFault>().unwrap().after, 0);
        for bad in ["full", "eio@", "eio@x", "enospc@-1"] {
            let err = bad.parse::<DiskFault>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }
}
