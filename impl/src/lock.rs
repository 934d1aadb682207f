//! The volume lock: one process at a time writes a volume directory.
//!
//! The lock is an advisory `flock` on the directory itself, so a reader can take it shared
//! without creating anything in the volume. A writer takes it exclusive and also records its
//! process id in a `LOCK` file, so a process that finds the volume busy can say who holds it.
//! The kernel drops the lock when the holder exits, however it exits; a `LOCK` file left behind
//! by a killed process is overwritten by the next writer.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The name of the file in a volume directory that holds the writer's process id.
pub const LOCK_FILE: &str = "LOCK";

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct VolumeLock {
    _dir: File,
    _pid_file: Option<File>,
}

/// Why a volume could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock; its id when the `LOCK` file names one.
    Busy { dir: PathBuf, holder: Option<u32> },
    /// The directory or the `LOCK` file could not be opened, locked or written.
    Io { path: PathBuf, error: io::Error },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Busy { dir, holder } => {
                write!(f, "volume {} is in use by ", dir.display())?;
                match holder {
                    Some(pid) => write!(f, "process {pid}"),
                    None => write!(f, "another process (no pid recorded)"),
                }
            }
            LockError::Io { path, error } => write!(f, "cannot lock {}: {error}", path.display()),
        }
    }
}

impl std::error::Error for LockError {}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> LockError + '_ {
    move |error| LockError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The process id recorded in `dir`'s `LOCK` file, if it holds one.
pub fn holder(dir: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(dir.join(LOCK_FILE))
        .and_then(|mut f| f.read_to_string(&mut text))
        .ok()?;
    text.trim().parse().ok()
}

fn lock_dir(dir: &Path, exclusive: bool) -> Result<File, LockError> {
    let fd = File::open(dir).map_err(io_at(dir))?;
    let taken = if exclusive {
        fd.try_lock()
    } else {
        fd.try_lock_shared()
    };
    match taken {
        Ok(()) => Ok(fd),
        Err(TryLockError::WouldBlock) => Err(LockError::Busy {
            dir: dir.to_path_buf(),
            holder: holder(dir),
        }),
        Err(TryLockError::Error(e)) => Err(io_at(dir)(e)),
    }
}

/// Takes the exclusive lock on the existing directory `dir` at once (never waits) and records
/// this process's id in its `LOCK` file.
pub fn exclusive(dir: &Path) -> Result<VolumeLock, LockError> {
    let fd = lock_dir(dir, true)?;
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_at(&path))?;
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.sync_data())
        .map_err(io_at(&path))?;
    Ok(VolumeLock {
        _dir: fd,
        _pid_file: Some(file),
    })
}

/// Takes a shared lock on `dir` at once (never waits), writing nothing: several readers may
/// hold it together, but not while a writer holds the exclusive lock.
pub fn shared(dir: &Path) -> Result<VolumeLock, LockError> {
    Ok(VolumeLock {
        _dir: lock_dir(dir, false)?,
        _pid_file: None,
    })
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use super::*;

    #[test]
    fn an_exclusive_lock_excludes_every_other_and_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = exclusive(dir.path()).unwrap();
        assert_eq!(holder(dir.path()), Some(std::process::id()));
        for busy in [exclusive(dir.path()), shared(dir.path())] {
            match busy {
                Err(LockError::Busy { holder, .. }) => {
                    assert_eq!(holder, Some(std::process::id()))
                }
                other => panic!("expected busy, got {other:?}"),
            }
        }
        drop(held);
        drop(exclusive(dir.path()).unwrap());
    }

    #[test]
    fn shared_locks_coexist_create_nothing_and_exclude_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let a = shared(dir.path()).unwrap();
        let b = shared(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(matches!(exclusive(dir.path()), Err(LockError::Busy { .. })));
        drop((a, b));
        assert!(exclusive(dir.path()).is_ok());
    }

    #[test]
    fn a_missing_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("absent");
        assert!(matches!(exclusive(&gone), Err(LockError::Io { .. })));
    }
}
