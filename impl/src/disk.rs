//! The byte store under a segment file, injectable so the engine runs on real files in
//! production and on a simulated disk under shuttle (which has no real I/O).
//!
//! Both implementations distinguish written from synced bytes: [`Disk::crash`] drops whatever
//! was not synced, as a power loss drops the page cache.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::sync::{lock, Mutex};

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
}

/// A real segment file.
pub struct FileDisk {
    path: PathBuf,
    state: Mutex<FileState>,
}

struct FileState {
    file: File,
    len: u64,
    synced_len: u64,
}

impl FileDisk {
    /// Opens (creating if needed) the segment file at `path`.
    pub fn open(path: impl AsRef<Path>) -> io::Result<FileDisk> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        Ok(FileDisk {
            path,
            state: Mutex::new(FileState {
                file,
                len,
                synced_len: len,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sync_dir(&self) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
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
        {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        self.sync_dir()?;
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

    fn crash_torn(&self, keep: usize) {
        let mut s = lock(&self.state);
        let cut = (s.synced_len + keep as u64).min(s.len);
        // Emulates losing the page cache: the file keeps only what was synced (plus a torn bit).
        if s.file.set_len(cut).is_ok() {
            s.len = cut;
        }
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
