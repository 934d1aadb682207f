//! A run's history: one line per record a client was told is committed, written by that client
//! at the moment its wait returned, with what the record wrote, so that `recover --acked` judges
//! every acknowledged write whole (LSN, epoch, page, value) and not only a commit point.
//!
//! A line is complete or absent: a kill can lose the unflushed tail, never invent a line, and
//! the reader ignores a torn last line (no newline) with a warning. Format in `docs/testing.md`.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aurora_redo_impl::volume::Acked;
use aurora_redo_model::types::{Epoch, Lsn, PageId};

/// The first line of every history file, which tells it from a list of `committed N` lines.
pub const HEADER: &str = "# aurora-redo history 1: acked LSN EPOCH page PAGE value VALUE at MS";

/// The writer's buffer: what a kill can lose at most, with what came since the last flush.
const BUFFER_BYTES: usize = 64 * 1024;

/// Lines wait in the buffer at most this long while acknowledgements keep coming.
const FLUSH_EVERY: Duration = Duration::from_millis(2);

/// An open history file, shared by the client threads of a run.
pub struct History {
    path: PathBuf,
    started: Instant,
    out: Mutex<Out>,
}

struct Out {
    file: BufWriter<File>,
    flushed: Instant,
    /// The first write error: nothing is written after it, so no line is left half written
    /// before a later one.
    failed: Option<String>,
    /// Set by [`History::finish`]: later acknowledgements are not recorded.
    closed: bool,
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "History({})", self.path.display())
    }
}

impl History {
    /// Creates `path` (which must not exist: an earlier history is never overwritten) and
    /// writes the header, flushed. Times in the history count from here.
    pub fn create(path: &Path) -> Result<History, String> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map(|f| BufWriter::with_capacity(BUFFER_BYTES, f))
            .map_err(|e| format!("cannot create the history {}: {e}", path.display()))?;
        writeln!(file, "{HEADER}")
            .and_then(|()| file.flush())
            .map_err(|e| format!("cannot write the history {}: {e}", path.display()))?;
        Ok(History {
            path: path.to_path_buf(),
            started: Instant::now(),
            out: Mutex::new(Out {
                file,
                flushed: Instant::now(),
                failed: None,
                closed: false,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that the batch `changes`, whose last record is `last`, written by the writer of
    /// `epoch`, is committed: one line per record, flushed when the last flush is
    /// [`FLUSH_EVERY`] old. A write error stops the history (reported by [`History::finish`]).
    pub fn acknowledged(&self, epoch: Epoch, last: Lsn, changes: &[(PageId, u64)]) {
        let at = self.started.elapsed().as_millis();
        let first = last.0 + 1 - changes.len() as u64;
        let mut out = self.lock();
        if out.closed || out.failed.is_some() {
            return;
        }
        let mut written = Ok(());
        for (i, (page, value)) in changes.iter().enumerate() {
            let lsn = first + i as u64;
            written = writeln!(
                out.file,
                "acked {lsn} {epoch} page {page} value {value} at {at}"
            );
            if written.is_err() {
                break;
            }
        }
        if written.is_ok() && out.flushed.elapsed() >= FLUSH_EVERY {
            written = out.file.flush();
            out.flushed = Instant::now();
        }
        if let Err(e) = written {
            eprintln!(
                "error: history {}: {e}; no more lines are recorded",
                self.path.display()
            );
            out.failed = Some(e.to_string());
        }
    }

    /// Flushes and fsyncs the history; later acknowledgements are not recorded. An error, now
    /// or in an earlier write, is returned: the history is then incomplete.
    pub fn finish(&self) -> Result<(), String> {
        let mut out = self.lock();
        out.closed = true;
        if let Some(e) = &out.failed {
            return Err(format!("history {}: {e}", self.path.display()));
        }
        out.file
            .flush()
            .and_then(|()| out.file.get_ref().sync_all())
            .map_err(|e| format!("history {}: {e}", self.path.display()))
    }
}

/// Where a client's acknowledgements go: the run's history, if it keeps one, and the epoch of
/// the writer the client writes through.
#[derive(Clone, Debug)]
pub struct Acks {
    pub history: Option<Arc<History>>,
    pub epoch: Epoch,
}

impl Acks {
    /// See [`History::acknowledged`]; nothing without a history.
    pub fn acknowledged(&self, last: Lsn, changes: &[(PageId, u64)]) {
        if let Some(h) = &self.history {
            h.acknowledged(self.epoch, last, changes);
        }
    }
}

/// A history read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    pub acked: Vec<Acked>,
    /// The torn last line (no newline: the kill came while it was written), ignored.
    pub torn: Option<String>,
}

/// Whether `text` is a history (it starts with [`HEADER`]).
pub fn is_history(text: &str) -> bool {
    text.lines().next() == Some(HEADER)
}

/// Reads a history: after the header, every complete line must be an `acked` line (an error
/// names the first that is not); a last line without its newline is torn, returned apart.
pub fn parse(text: &str) -> Result<Read, String> {
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let torn = match lines.last() {
        Some(last) if !last.ends_with('\n') => lines.pop().map(str::to_string),
        _ => None,
    };
    if lines.first().map(|l| l.trim_end()) != Some(HEADER) {
        return Err(format!(
            "line 1: not a history header (expected {HEADER:?})"
        ));
    }
    let acked = lines[1..]
        .iter()
        .enumerate()
        .map(|(i, line)| {
            parse_line(line.trim_end())
                .map_err(|e| format!("line {}: {e}: {:?}", i + 2, line.trim_end()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Read { acked, torn })
}

/// `acked 17 e1 page 42 value 12345 at 103`.
fn parse_line(line: &str) -> Result<Acked, String> {
    let words: Vec<&str> = line.split(' ').collect();
    let ["acked", lsn, epoch, "page", page, "value", value, "at", at] = words.as_slice() else {
        return Err("not an acked line (acked LSN EPOCH page PAGE value VALUE at MS)".into());
    };
    let number = |what: &str, s: &str| -> Result<u64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{what} {s:?} is not a number"));
        }
        s.parse()
            .map_err(|_| format!("{what} {s:?} is out of range"))
    };
    let lsn = number("LSN", lsn)?;
    if lsn == 0 {
        return Err("LSN 0 is no record".into());
    }
    let page = PageId::try_from(number("page", page)?)
        .map_err(|_| format!("page {page} is out of range"))?;
    number("time", at)?;
    Ok(Acked {
        lsn: Lsn(lsn),
        epoch: epoch.parse()?,
        record: Some((page, number("value", value)?)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_history_reads_back_record_by_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history");
        let h = History::create(&path).unwrap();
        h.acknowledged(Epoch::numbered(0), Lsn(3), &[(7, 70), (8, 80), (9, 90)]);
        h.acknowledged(Epoch::numbered(2), Lsn(4), &[(1, u64::MAX)]);
        h.finish().unwrap();
        h.acknowledged(Epoch::numbered(2), Lsn(5), &[(1, 5)]);
        assert!(
            History::create(&path).is_err(),
            "an existing history is kept"
        );
        let read = parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(read.torn, None);
        let got: Vec<_> = read
            .acked
            .iter()
            .map(|a| (a.lsn.0, a.epoch, a.record))
            .collect();
        let e0 = Epoch::numbered(0);
        assert_eq!(
            got,
            vec![
                (1, e0, Some((7, 70))),
                (2, e0, Some((8, 80))),
                (3, e0, Some((9, 90))),
                (4, Epoch::numbered(2), Some((1, u64::MAX))),
            ]
        );
    }

    #[test]
    fn a_torn_last_line_is_set_apart_and_a_bad_complete_line_is_an_error() {
        let text = format!("{HEADER}\nacked 1 e0 page 2 value 3 at 0\nacked 2 e0 page 2 val");
        let read = parse(&text).unwrap();
        assert_eq!(read.acked.len(), 1);
        assert_eq!(read.torn.as_deref(), Some("acked 2 e0 page 2 val"));
        // The same prefix with its newline is a complete line, and wrong.
        let err = parse(&format!("{text}\n")).unwrap_err();
        assert!(err.starts_with("line 3:"), "{err}");
        for bad in [
            "acked 0 e0 page 1 value 1 at 0",
            "acked 1 1 page 1 value 1 at 0",
            "acked 1 e0 page 99999999999 value 1 at 0",
            "acked 1 e0 page 1 value -1 at 0",
            "acked 1 e0 page 1 value 1",
            "committed 5",
        ] {
            let err = parse(&format!(
                "{HEADER}\n{bad}\nacked 1 e0 page 1 value 1 at 0\n"
            ))
            .unwrap_err();
            assert!(err.starts_with("line 2:"), "{bad}: {err}");
        }
        assert!(parse("committed 5\n").is_err());
        assert!(is_history(&format!("{HEADER}\n")));
        assert!(!is_history("committed 5\n"));
    }
}
