//! Crash recovery of a volume on its segment files: the six node files of a data directory,
//! read, judged and (on paths meant to write) recovered, as a new writer recovers the volume in
//! `docs/protocol.md`, "Recovery".
//!
//! - [`inspect`] reads every node's segment without writing a byte: its log, sealed epoch, SCL and
//!   damage. A missing node file is a lost node. A file whose header is not this format's (bad
//!   magic, another version, the old format) cannot be read at all: a damaged node, a node fault
//!   like a lost one, reported and left out of the read. A file that cannot be read for an I/O
//!   error stops everything.
//! - [`plan`] is the read phase: every readable node answers (at least [`READ_QUORUM`]); the
//!   recovery point `R` and its source come from [`recovery_point`]; the new epoch is the highest
//!   epoch seen plus one; and per node, what the write phase will copy (records of `1..=R` the
//!   node lacks, taken from the source with their epochs) and what the new seal annuls (its
//!   records above `R`, all of older epochs). It also finds the records above `R` that a write
//!   quorum holds ([`Plan::at_risk`]): the new seal would annul evidence of commits. The plan
//!   writes nothing: a dry run is a plan.
//! - [`write`] is the write phase: on every present node, repair the segment (torn tail,
//!   corruption), copy what the node lacks (and the source's older seals it lacks), append
//!   `Seal { new epoch, R }` and fsync; then rebuild every missing or damaged node from the
//!   recovered log ([`rebuild_node`]: a new segment under a temporary name, renamed into place;
//!   a damaged file is moved aside, never deleted). The volume accepts writes only when at least
//!   [`WRITE_QUORUM`] nodes are readable; with fewer it writes nothing and stays readable, not
//!   writable (and with a damaged node among them, that is an error: too few to rebuild from).
//!   It refuses to annul records a write quorum holds unless the caller accepts the loss.
//!
//! Memory: one node's log at a time, plus the recovered log `1..=R` (the source's).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use aurora_redo_model::invariants::{
    first_disagreement, survives_as_acknowledged, survives_as_written,
};
use aurora_redo_model::recovery::{recovery_point, ReadAnswer};
use aurora_redo_model::types::{
    Epoch, Lsn, NodeId, PageId, Record, READ_QUORUM, STORAGE_NODES, WRITE_QUORUM,
};

use crate::disk::{Disk, FileDisk};
use crate::segment::{self, Damage, FormatError, Recovered, Seal, Segment, Summary};
use crate::sync::{arc_from_box, Arc};

/// The file name of `node`'s segment in a data directory.
pub fn segment_name(node: NodeId) -> String {
    format!("node-{}.seg", node.0)
}

/// The path of `node`'s segment in `dir`.
pub fn segment_path(dir: &Path, node: NodeId) -> PathBuf {
    dir.join(segment_name(node))
}

/// Whether `dir` holds a volume: at least one node's segment file.
pub fn exists(dir: &Path) -> bool {
    NodeId::all().any(|n| segment_path(dir, n).exists())
}

/// Why a volume cannot be read or recovered. Each is bad input (exit status 2) but
/// [`VolumeError::WriteFailed`].
#[derive(Debug)]
pub enum VolumeError {
    /// The path is not a directory.
    NotADirectory(PathBuf),
    /// The directory holds no node segment file.
    NoVolume(PathBuf),
    /// A segment file could not be read.
    Unreadable { path: PathBuf, error: io::Error },
    /// A segment file is in another format.
    Format { path: PathBuf, error: FormatError },
    /// Fewer than a read quorum of nodes are present: recovery could miss a committed record.
    TooFewNodes { present: Vec<NodeId> },
    /// Some node files are damaged past reading and fewer than a write quorum of nodes are
    /// readable: too few to rebuild them from.
    TooFewReadable {
        readable: Vec<NodeId>,
        damaged: Vec<DamagedNode>,
    },
    /// The new seal would annul records that a write quorum holds above the recovery point:
    /// evidence of commits. Nothing was written (see [`Plan::at_risk`]).
    WouldAnnul(String),
    /// The write phase failed on too many nodes to reach a write quorum.
    WriteFailed(String),
}

impl fmt::Display for VolumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VolumeError::NotADirectory(p) if !p.exists() => {
                write!(f, "{} does not exist", p.display())
            }
            VolumeError::NotADirectory(p) => write!(f, "{} is not a directory", p.display()),
            VolumeError::NoVolume(p) => write!(
                f,
                "{} holds no volume (no node-N.seg segment file)",
                p.display()
            ),
            VolumeError::Unreadable { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            VolumeError::Format { path, error } => write!(f, "{}: {error}", path.display()),
            VolumeError::TooFewNodes { present } => write!(
                f,
                "only {} node segment file(s) present ({}); recovery needs a read quorum of {} \
                 nodes, or it could miss a committed record",
                present.len(),
                names(present),
                READ_QUORUM
            ),
            VolumeError::TooFewReadable { readable, damaged } => write!(
                f,
                "{}; only {} node(s) readable ({}), and recovery rebuilds a damaged node only \
                 from a write quorum of {} readable nodes",
                damaged
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
                readable.len(),
                names(readable),
                WRITE_QUORUM
            ),
            VolumeError::WouldAnnul(m) => write!(f, "{m}"),
            VolumeError::WriteFailed(m) => write!(f, "the write phase failed: {m}"),
        }
    }
}

impl std::error::Error for VolumeError {}

fn names(nodes: &[NodeId]) -> String {
    if nodes.is_empty() {
        return "none".into();
    }
    nodes
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads one node's segment file, purely. `Ok(None)`: the file does not exist.
pub fn read_node(dir: &Path, node: NodeId) -> Result<Option<Recovered>, VolumeError> {
    let path = segment_path(dir, node);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(VolumeError::Unreadable { path, error }),
    };
    segment::decode(&bytes)
        .map(Some)
        .map_err(|error| VolumeError::Format { path, error })
}

/// [`read_node`] in bounded memory: the node's [`Summary`] (its prefix, damage, seals; not its
/// log), read without changing a byte.
pub fn summarize_node(dir: &Path, node: NodeId) -> Result<Option<Summary>, VolumeError> {
    let path = segment_path(dir, node);
    let disk = match std::fs::metadata(&path) {
        Ok(_) => FileDisk::open(&path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(VolumeError::Unreadable { path, error }),
    };
    let summary = disk.and_then(|disk| Segment::summarize(&disk));
    summary
        .map(Some)
        .map_err(|error| match FormatError::of(&error) {
            Some(error) => VolumeError::Format {
                path: path.clone(),
                error,
            },
            None => VolumeError::Unreadable { path, error },
        })
}

/// What reading one node found (its log itself is not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    pub node: NodeId,
    /// Records in the node's log.
    pub records: usize,
    /// Its answer to the recovery read: sealed epoch and SCL.
    pub answer: ReadAnswer,
    /// The highest epoch of a seal or record on the node.
    pub max_epoch: Epoch,
    /// The highest LSN of its log.
    pub last: Lsn,
    pub seals: Vec<Seal>,
    /// Record frames its seals annul.
    pub annulled: usize,
    pub damage: Vec<Damage>,
}

impl NodeView {
    fn of(node: NodeId, r: &Recovered) -> NodeView {
        NodeView {
            node,
            records: r.records.len(),
            answer: r.answer(),
            max_epoch: r.max_epoch(),
            last: r.records.last().map_or(Lsn::ZERO, |r| r.lsn),
            seals: r.seals.clone(),
            annulled: r.annulled,
            damage: r.damage.clone(),
        }
    }

    /// The damage report, if any.
    pub fn damage_report(&self) -> Option<String> {
        let parts: Vec<String> = self.damage.iter().map(|d| d.to_string()).collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// A node whose segment file is there but cannot be read at all (its header is not this
/// format's): a faulty node, left out of the read and rebuilt like a lost one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedNode {
    pub node: NodeId,
    pub path: PathBuf,
    pub error: FormatError,
}

impl fmt::Display for DamagedNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

/// A volume as its files are: each node read, missing, or damaged past reading.
#[derive(Clone, Debug)]
pub struct Volume {
    pub dir: PathBuf,
    /// Index = node; `None`: its segment file is missing (a lost node) or in [`Volume::damaged`].
    pub nodes: Vec<Option<NodeView>>,
    /// The node files that cannot be read at all, in node order.
    pub damaged: Vec<DamagedNode>,
}

impl Volume {
    /// The nodes whose segment is present and was read.
    pub fn present(&self) -> Vec<NodeId> {
        self.nodes.iter().flatten().map(|v| v.node).collect()
    }

    /// The nodes whose segment file is missing.
    pub fn missing(&self) -> Vec<NodeId> {
        NodeId::all()
            .filter(|n| self.nodes[n.index()].is_none() && self.damage_of(*n).is_none())
            .collect()
    }

    /// Why `node`'s file cannot be read, if it is damaged past reading.
    pub fn damage_of(&self, node: NodeId) -> Option<&DamagedNode> {
        self.damaged.iter().find(|d| d.node == node)
    }
}

/// Reads every node of the volume in `dir` without writing anything.
pub fn inspect(dir: &Path) -> Result<Volume, VolumeError> {
    if !dir.is_dir() {
        return Err(VolumeError::NotADirectory(dir.to_path_buf()));
    }
    if !exists(dir) {
        return Err(VolumeError::NoVolume(dir.to_path_buf()));
    }
    let mut nodes = Vec::with_capacity(STORAGE_NODES);
    let mut damaged = Vec::new();
    for node in NodeId::all() {
        match read_node(dir, node) {
            Ok(read) => nodes.push(read.map(|r| NodeView::of(node, &r))),
            Err(VolumeError::Format { path, error }) => {
                damaged.push(DamagedNode { node, path, error });
                nodes.push(None);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Volume {
        dir: dir.to_path_buf(),
        nodes,
        damaged,
    })
}

/// LSNs as inclusive ranges, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ranges(pub Vec<(Lsn, Lsn)>);

impl Ranges {
    fn push(&mut self, lsn: Lsn) {
        match self.0.last_mut() {
            Some((_, hi)) if hi.next() == lsn => *hi = lsn,
            _ => self.0.push((lsn, lsn)),
        }
    }

    /// How many LSNs.
    pub fn count(&self) -> u64 {
        self.0.iter().map(|(lo, hi)| hi.0 - lo.0 + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `201..=250, 260` (at most eight ranges, then how many more).
impl fmt::Display for Ranges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "none");
        }
        for (i, (lo, hi)) in self.0.iter().take(8).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}..={hi}")?;
            }
        }
        if self.0.len() > 8 {
            write!(f, " and {} more ranges", self.0.len() - 8)?;
        }
        Ok(())
    }
}

/// What recovery does to one present node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePlan {
    pub node: NodeId,
    /// LSNs of `1..=R` the node lacks (or holds a different record at): copied from the source.
    pub copy: Ranges,
    /// The source's seals the node lacks, copied before the new one.
    pub copy_seals: Vec<Seal>,
    /// LSNs of the node's log the seals it adopts annul: every one above `R` (all of older
    /// epochs), and those a copied older seal annuls.
    pub truncate: Ranges,
    /// Where LogAgreement would fail on the node after the write phase: the first LSN of
    /// `1..=R` where it would hold a record other than the recovered log's.
    pub disagreement: Option<Disagreement>,
}

/// A node that, after recovery, would hold (or holds) another record than the recovered log's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disagreement {
    pub node: NodeId,
    pub recovered: Record,
    pub held: Record,
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} holds {} where the recovered log has {}",
            self.node, self.held, self.recovered
        )
    }
}

/// The read phase's result and the write phase's plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The nodes read (every present one).
    pub read_quorum: Vec<NodeId>,
    /// The node whose log is the recovered log.
    pub source: NodeId,
    /// The recovery point `R`.
    pub point: Lsn,
    /// The highest epoch seen on any node.
    pub highest_epoch: Epoch,
    /// The epoch the volume is recovered into, and writes in next.
    pub epoch: Epoch,
    /// Per present node.
    pub nodes: Vec<NodePlan>,
    /// The recovered log, `1..=R`, from the source.
    pub log: Vec<Record>,
    /// The source's seals (copied to nodes that lack them).
    pub source_seals: Vec<Seal>,
    /// The nodes without a readable segment (missing, or damaged past reading), which the write
    /// phase rebuilds from the recovered log.
    pub rebuild: Vec<NodeId>,
    /// Records above the recovery point that a write quorum holds and the new seal would annul:
    /// the evidence of commits a recovery must not drop unnoticed.
    pub at_risk: Vec<AtRisk>,
}

/// A run of LSNs above the recovery point, each held (as the same record) by the same nodes,
/// at least a write quorum of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AtRisk {
    pub first: Lsn,
    pub last: Lsn,
    pub holders: Vec<NodeId>,
}

impl AtRisk {
    /// How many LSNs.
    pub fn count(&self) -> u64 {
        self.last.0 - self.first.0 + 1
    }
}

impl fmt::Display for AtRisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = if self.first == self.last {
            self.first.to_string()
        } else {
            format!("{}..={}", self.first, self.last)
        };
        write!(
            f,
            "{range} ({} records) held by {}",
            self.count(),
            names(&self.holders)
        )
    }
}

impl Plan {
    /// Whether the write phase can reach a write quorum (enough nodes are present).
    pub fn writable(&self) -> bool {
        self.nodes.len() >= WRITE_QUORUM
    }

    /// The new seal the write phase appends to every node.
    pub fn seal(&self) -> Seal {
        Seal {
            epoch: self.epoch,
            point: self.point,
        }
    }

    /// Every predicted LogAgreement failure.
    pub fn disagreements(&self) -> Vec<Disagreement> {
        self.nodes.iter().filter_map(|n| n.disagreement).collect()
    }

    /// Why the write phase refuses to run, given whether the loss is accepted: [`Plan::loss`]
    /// unless `accept_loss`.
    pub fn refusal(&self, accept_loss: bool) -> Option<String> {
        self.loss().filter(|_| !accept_loss)
    }

    /// Why the write phase refuses to run without an explicit acceptance of the loss: the
    /// records of [`Plan::at_risk`], by range and holders. `None`: nothing held by a write
    /// quorum would be annulled.
    pub fn loss(&self) -> Option<String> {
        if self.at_risk.is_empty() {
            return None;
        }
        let total: u64 = self.at_risk.iter().map(AtRisk::count).sum();
        let runs: Vec<String> = self.at_risk.iter().take(8).map(|r| r.to_string()).collect();
        let more = match self.at_risk.len() {
            n if n > 8 => format!(" and {} more ranges", n - 8),
            _ => String::new(),
        };
        Some(format!(
            "recovery at point {} would annul {total} records that a write quorum ({} or more \
             nodes) holds above it, evidence of commits: {}{more}",
            self.point,
            WRITE_QUORUM,
            runs.join(", ")
        ))
    }
}

/// **LogAgreement** on one node (`docs/protocol.md`, "Recovery"), judged by
/// [`first_disagreement`] within the recovered prefix `1..=R` (`recovered`, one record per LSN
/// from 1): the node's records there against the recovered log, whole (epoch, page and value). Comparing every node with the one
/// recovered log is the same as comparing every two holders of an LSN. Returns the first
/// disagreement.
pub fn log_agreement(
    node: NodeId,
    recovered: &[Record],
    node_log: &[Record],
) -> Option<Disagreement> {
    let point = recovered.last().map_or(Lsn::ZERO, |r| r.lsn);
    let at = |lsn: Lsn| recovered.get(lsn.0.checked_sub(1)? as usize).copied();
    let within = node_log.iter().take_while(|r| r.lsn <= point);
    let lsn = first_disagreement(at, within.clone().map(|r| (r.lsn, *r)))?;
    Some(Disagreement {
        node,
        recovered: at(lsn)?,
        held: *within.clone().find(|r| r.lsn == lsn)?,
    })
}

/// An acknowledged commit: an LSN and the epoch of the writer that acknowledged it; from a
/// client's own history also what the record wrote (`record`: page and value), and then `epoch`
/// is the epoch of the writer that created the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Acked {
    pub lsn: Lsn,
    pub epoch: Epoch,
    pub record: Option<(PageId, u64)>,
}

impl Acked {
    /// A commit known by its LSN and the acknowledging writer's epoch only.
    pub fn commit(lsn: Lsn, epoch: Epoch) -> Acked {
        Acked {
            lsn,
            epoch,
            record: None,
        }
    }

    /// Whether `found`, the recovered log's record at this LSN (`None`: above the recovery
    /// point), is this acknowledgement surviving: [`survives_as_written`] when the record is
    /// known whole, else [`survives_as_acknowledged`].
    pub fn survives_as(&self, found: Option<&Record>) -> bool {
        match self.record {
            Some((page, value)) => {
                let written = Record {
                    lsn: self.lsn,
                    page,
                    value,
                    epoch: self.epoch,
                };
                survives_as_written(&written, found)
            }
            None => survives_as_acknowledged(self.epoch, found.map(|r| r.epoch)),
        }
    }
}

/// An acknowledged commit that did not survive recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lost {
    pub acked: Acked,
    /// The recovered log's record at that LSN (`None`: above the recovery point).
    pub found: Option<Record>,
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Acked { lsn, epoch, record } = self.acked;
        write!(f, "LSN {lsn} of {epoch}")?;
        if let Some((page, value)) = record {
            write!(f, " (page {page} value {value})")?;
        }
        match (self.found, record) {
            (None, _) => write!(f, " is above the recovery point"),
            (Some(r), Some(_)) if r.epoch == epoch => write!(
                f,
                " was recovered as page {} value {} of {}",
                r.page, r.value, r.epoch
            ),
            (Some(r), _) => write!(f, " was recovered as a record of {}", r.epoch),
        }
    }
}

/// **CommittedSurvivesRecovery** (`docs/protocol.md`, "Recovery") for acknowledgements, each
/// judged by [`Acked::survives_as`] against the recovered log `1..=R` (`recovered`, one record
/// per LSN from 1). Returns every loss.
pub fn committed_survives_recovery(recovered: &[Record], acked: &[Acked]) -> Vec<Lost> {
    acked
        .iter()
        .filter_map(|a| {
            let found = (a.lsn.0 as usize)
                .checked_sub(1)
                .and_then(|i| recovered.get(i))
                .copied()
                .filter(|r| r.lsn == a.lsn);
            (!a.survives_as(found.as_ref())).then_some(Lost { acked: *a, found })
        })
        .collect()
}

/// The read phase on `volume`: the recovery point and source, the new epoch, per present node
/// what the write phase will copy and annul, with the predicted LogAgreement, the nodes to
/// rebuild and the records a write quorum holds that the new seal would annul. Reads the source's
/// log and every node's again, one at a time; writes nothing. A node damaged past reading is left
/// out of the read; with one, fewer than a write quorum of readable nodes is an error (too few to
/// rebuild it from).
pub fn plan(volume: &Volume) -> Result<Plan, VolumeError> {
    let views: Vec<&NodeView> = volume.nodes.iter().flatten().collect();
    if !volume.damaged.is_empty() && views.len() < WRITE_QUORUM {
        return Err(VolumeError::TooFewReadable {
            readable: volume.present(),
            damaged: volume.damaged.clone(),
        });
    }
    let answers: Vec<ReadAnswer> = views.iter().map(|v| v.answer).collect();
    let Some((source_index, point)) = recovery_point(&answers) else {
        return Err(VolumeError::TooFewNodes {
            present: volume.present(),
        });
    };
    let source = views[source_index].node;
    let highest_epoch = views
        .iter()
        .map(|v| v.max_epoch)
        .max()
        .unwrap_or(Epoch::FIRST);
    let epoch = highest_epoch.next();
    let read = |node| {
        read_node(&volume.dir, node)?.ok_or_else(|| VolumeError::Unreadable {
            path: segment_path(&volume.dir, node),
            error: io::Error::new(io::ErrorKind::NotFound, "the file went away while reading"),
        })
    };
    let source_rec = read(source)?;
    let log: Vec<Record> = source_rec
        .records
        .iter()
        .take_while(|r| r.lsn <= point)
        .copied()
        .collect();
    let source_seals = source_rec.seals.clone();
    drop(source_rec);
    let seal = Seal { epoch, point };
    let mut nodes = Vec::new();
    let mut above = Holders::default();
    for view in &views {
        let rec = read(view.node)?;
        above.add(view.node, rec.records.iter().filter(|r| seal.annuls(r)));
        nodes.push(plan_node(view.node, rec, &log, &source_seals, seal));
    }
    Ok(Plan {
        read_quorum: views.iter().map(|v| v.node).collect(),
        source,
        point,
        highest_epoch,
        epoch,
        nodes,
        log,
        source_seals,
        rebuild: NodeId::all()
            .filter(|n| volume.nodes[n.index()].is_none())
            .collect(),
        at_risk: above.held_by_a_write_quorum(),
    })
}

/// Per record (LSN and epoch) above the recovery point, the nodes whose log holds it.
#[derive(Default)]
struct Holders(BTreeMap<(Lsn, Epoch), u8>);

impl Holders {
    fn add<'a>(&mut self, node: NodeId, records: impl Iterator<Item = &'a Record>) {
        for r in records {
            *self.0.entry((r.lsn, r.epoch)).or_default() |= 1 << node.0;
        }
    }

    /// The records at least a write quorum holds, as runs of consecutive LSNs with one set of
    /// holders.
    fn held_by_a_write_quorum(&self) -> Vec<AtRisk> {
        let mut runs: Vec<(AtRisk, u8)> = Vec::new();
        let held = self
            .0
            .iter()
            .filter(|(_, mask)| mask.count_ones() as usize >= WRITE_QUORUM);
        for (&(lsn, _), &mask) in held {
            match runs.last_mut() {
                Some((run, m)) if *m == mask && run.last.next() == lsn => run.last = lsn,
                _ => {
                    let holders = NodeId::all().filter(|n| mask & (1 << n.0) != 0).collect();
                    let run = AtRisk {
                        first: lsn,
                        last: lsn,
                        holders,
                    };
                    runs.push((run, mask));
                }
            }
        }
        runs.into_iter().map(|(run, _)| run).collect()
    }
}

/// What the write phase does to `node`, whose segment holds `rec`, and the log it will hold.
fn plan_node(
    node: NodeId,
    rec: Recovered,
    log: &[Record],
    source_seals: &[Seal],
    seal: Seal,
) -> NodePlan {
    let (copy_records, copy_seals) = to_copy(&rec, log, source_seals);
    let mut copy = Ranges::default();
    for r in &copy_records {
        copy.push(r.lsn);
    }
    let mut truncate = Ranges::default();
    let annulled = |r: &Record| seal.annuls(r) || copy_seals.iter().any(|s| s.annuls(r));
    for r in rec.records.iter().filter(|r| annulled(r)) {
        truncate.push(r.lsn);
    }
    // The node's log after the write phase, as a reader of its file will find it.
    let mut records = rec.records;
    records.extend(copy_records);
    let mut seals = rec.seals;
    seals.extend(copy_seals.iter().copied());
    seals.push(seal);
    let (after, _) = segment::live(records, &seals);
    NodePlan {
        node,
        copy,
        copy_seals,
        truncate,
        disagreement: log_agreement(node, log, &after),
    }
}

/// The records of `log` a node holding `rec` lacks (or holds another record at), and the
/// source's seals it lacks.
fn to_copy(rec: &Recovered, log: &[Record], source_seals: &[Seal]) -> (Vec<Record>, Vec<Seal>) {
    let mut held = rec.records.iter().peekable();
    let mut copy = Vec::new();
    for want in log {
        while held.next_if(|r| r.lsn < want.lsn).is_some() {}
        if held.peek().copied() != Some(want) {
            copy.push(*want);
        }
    }
    let seals = source_seals
        .iter()
        .filter(|s| !rec.seals.contains(s))
        .copied()
        .collect();
    (copy, seals)
}

/// What the write phase did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// The nodes written and fsynced (rebuilt ones included).
    pub nodes: Vec<NodeId>,
    /// The nodes rebuilt from the recovered log, and where a damaged file was moved aside.
    pub rebuilt: Vec<(NodeId, Option<PathBuf>)>,
    /// Nodes the write failed on, and why.
    pub failed: Vec<(NodeId, String)>,
}

/// The write phase of `plan` on its volume in `dir`: on every present node, repair the segment,
/// copy what it lacks, append the new seal and fsync; then rebuild every node without a readable
/// segment ([`rebuild_node`]). Writes nothing unless the plan is [`Plan::writable`] (returns
/// `Ok(None)`); refuses ([`VolumeError::WouldAnnul`], nothing written) when it would annul
/// records a write quorum holds ([`Plan::loss`]) unless `accept_loss`; an error when fewer than
/// a write quorum were written.
pub fn write(dir: &Path, plan: &Plan, accept_loss: bool) -> Result<Option<Written>, VolumeError> {
    if !plan.writable() {
        return Ok(None);
    }
    if let Some(loss) = plan.refusal(accept_loss) {
        return Err(VolumeError::WouldAnnul(format!(
            "{loss}; nothing written (--accept-loss annuls them)"
        )));
    }
    let mut written = Written::default();
    for n in &plan.nodes {
        match write_node(dir, n.node, plan) {
            Ok(()) => written.nodes.push(n.node),
            Err(e) => written.failed.push((n.node, e.to_string())),
        }
    }
    for &node in &plan.rebuild {
        match rebuild_node(dir, node, plan) {
            Ok(aside) => {
                written.nodes.push(node);
                written.rebuilt.push((node, aside));
            }
            Err(e) => written.failed.push((node, format!("rebuild failed: {e}"))),
        }
    }
    written.nodes.sort();
    if written.nodes.len() < WRITE_QUORUM {
        let why: Vec<String> = written
            .failed
            .iter()
            .map(|(n, e)| format!("{n}: {e}"))
            .collect();
        return Err(VolumeError::WriteFailed(format!(
            "only {} of the {} nodes needed were written ({})",
            written.nodes.len(),
            WRITE_QUORUM,
            why.join("; ")
        )));
    }
    Ok(Some(written))
}

/// Batch of records copied per append.
const COPY_BATCH: usize = 4096;

fn write_node(dir: &Path, node: NodeId, plan: &Plan) -> io::Result<()> {
    write_segment(&segment_path(dir, node), plan)
}

/// Repairs the segment at `path` (or starts one), copies what it lacks of `plan`'s recovered
/// log and seals, appends the new seal and fsyncs.
fn write_segment(path: &Path, plan: &Plan) -> io::Result<()> {
    let disk: Arc<dyn Disk> = arc_from_box(Box::new(FileDisk::open(path)?));
    let (segment, rec) = Segment::open(disk)?;
    let (copy, seals) = to_copy(&rec, &plan.log, &plan.source_seals);
    drop(rec);
    for s in seals {
        segment.seal(s)?;
    }
    for batch in copy.chunks(COPY_BATCH) {
        segment.append(batch)?;
    }
    segment.seal(plan.seal())?;
    segment.sync()
}

/// The name a rebuilt segment is written under before it takes its node's name.
pub fn rebuild_name(node: NodeId) -> String {
    format!("{}.rebuild", segment_name(node))
}

/// Rebuilds `node`, whose segment is missing or damaged past reading, from `plan`'s recovered
/// log: writes a whole new segment under [`rebuild_name`] and fsyncs it, moves a damaged file
/// aside (to `node-N.seg.damaged`, or `.damaged.2` and on if taken: never deleted, never
/// overwritten), renames the new segment into place and fsyncs the directory. Returns where the
/// damaged file went.
pub fn rebuild_node(dir: &Path, node: NodeId, plan: &Plan) -> io::Result<Option<PathBuf>> {
    let path = segment_path(dir, node);
    let temp = dir.join(rebuild_name(node));
    match std::fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    write_segment(&temp, plan)?;
    let aside = match std::fs::symlink_metadata(&path) {
        Ok(_) => {
            let aside = aside_path(dir, node)?;
            std::fs::rename(&path, &aside)?;
            Some(aside)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    std::fs::rename(&temp, &path)?;
    crate::disk::sync_dir(dir)?;
    Ok(aside)
}

/// A free name to move `node`'s damaged segment to.
fn aside_path(dir: &Path, node: NodeId) -> io::Result<PathBuf> {
    let base = format!("{}.damaged", segment_name(node));
    for i in 1..1000 {
        let name = if i == 1 {
            base.clone()
        } else {
            format!("{base}.{i}")
        };
        let candidate = dir.join(name);
        if !candidate.exists() {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free name to move {} aside to", segment_name(node)),
    ))
}

/// LogAgreement on the files as they are, against `plan`'s recovered log, node by node; and
/// whether each node written has adopted the plan's epoch. For after the write phase.
pub fn judge_files(
    dir: &Path,
    plan: &Plan,
    written: &[NodeId],
) -> Result<Vec<String>, VolumeError> {
    let mut failures = Vec::new();
    for node in NodeId::all() {
        let Some(rec) = read_node(dir, node)? else {
            continue;
        };
        if let Some(d) = log_agreement(node, &plan.log, &rec.records) {
            failures.push(format!("LogAgreement violated: {d}"));
        }
        if written.contains(&node) {
            if rec.sealed() != plan.epoch {
                failures.push(format!(
                    "{node} was written but its sealed epoch is {}, not {}",
                    rec.sealed(),
                    plan.epoch
                ));
            }
            if rec.prefix() < plan.point {
                failures.push(format!(
                    "{node} was written but holds only 1..={} of 1..={}",
                    rec.prefix(),
                    plan.point
                ));
            }
        }
    }
    Ok(failures)
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use super::*;

    fn rec(lsn: u64, epoch: u32) -> Record {
        Record {
            lsn: Lsn(lsn),
            page: lsn as u32,
            value: lsn * 100 + u64::from(epoch),
            epoch: Epoch::numbered(epoch),
        }
    }

    /// Writes node files holding `1..=scl` of epoch 0, each with a header.
    fn volume(dir: &Path, scls: &[u64]) {
        for (i, scl) in scls.iter().enumerate() {
            let disk: Arc<dyn Disk> =
                Arc::new(FileDisk::open(segment_path(dir, NodeId(i as u8))).unwrap());
            let (seg, _) = Segment::open(disk).unwrap();
            seg.append(&(1..=*scl).map(|l| rec(l, 0)).collect::<Vec<_>>())
                .unwrap();
            seg.sync().unwrap();
        }
    }

    #[test]
    fn recovery_point_new_epoch_copies_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        volume(dir.path(), &[5, 7, 3, 9, 0, 6]);
        let v = inspect(dir.path()).unwrap();
        assert_eq!(v.present().len(), 6);
        let plan = plan(&v).unwrap();
        assert_eq!((plan.source, plan.point), (NodeId(3), Lsn(9)));
        assert_eq!(plan.epoch, Epoch::numbered(1));
        assert!(plan.writable());
        assert_eq!(plan.nodes[0].copy, Ranges(vec![(Lsn(6), Lsn(9))]));
        assert!(plan.nodes[3].copy.is_empty() && plan.nodes[3].truncate.is_empty());
        assert!(plan.disagreements().is_empty());
        let written = write(dir.path(), &plan, false).unwrap().unwrap();
        assert_eq!(written.nodes.len(), 6);
        assert!(judge_files(dir.path(), &plan, &written.nodes)
            .unwrap()
            .is_empty());
        // A second recovery: epoch 2, nothing to copy, the same point.
        let again = super::plan(&inspect(dir.path()).unwrap()).unwrap();
        assert_eq!((again.point, again.epoch), (Lsn(9), Epoch::numbered(2)));
        assert!(again.nodes.iter().all(|n| n.copy.is_empty()));
    }

    #[test]
    fn a_node_that_missed_a_recovery_gets_its_seal_and_loses_its_stale_tail() {
        let dir = tempfile::tempdir().unwrap();
        volume(dir.path(), &[8, 8, 8, 8, 8, 8]);
        // Recovery into epoch 1 at 8 happened on S0..S3 only; then epoch 1 wrote 9..=10 there
        // (and S4, S5 kept a stale epoch-0 tail 9..=12 of a zombie, say).
        for n in 0..4u8 {
            let disk: Arc<dyn Disk> =
                Arc::new(FileDisk::open(segment_path(dir.path(), NodeId(n))).unwrap());
            let (seg, _) = Segment::open(disk).unwrap();
            seg.seal(Seal {
                epoch: Epoch::numbered(1),
                point: Lsn(8),
            })
            .unwrap();
            seg.append(&[rec(9, 1), rec(10, 1)]).unwrap();
            seg.sync().unwrap();
        }
        for n in 4..6u8 {
            let disk: Arc<dyn Disk> =
                Arc::new(FileDisk::open(segment_path(dir.path(), NodeId(n))).unwrap());
            let (seg, _) = Segment::open(disk).unwrap();
            seg.append(&(9..=12).map(|l| rec(l, 0)).collect::<Vec<_>>())
                .unwrap();
            seg.sync().unwrap();
        }
        let plan = plan(&inspect(dir.path()).unwrap()).unwrap();
        assert_eq!((plan.point, plan.epoch), (Lsn(10), Epoch::numbered(2)));
        assert!(
            plan.read_quorum.contains(&plan.source) && plan.source.0 < 4,
            "the most advanced sealed epoch is the source"
        );
        assert_eq!(plan.nodes[4].copy, Ranges(vec![(Lsn(9), Lsn(10))]));
        assert_eq!(plan.nodes[4].copy_seals.len(), 1);
        assert_eq!(plan.nodes[4].truncate, Ranges(vec![(Lsn(9), Lsn(12))]));
        assert!(
            plan.disagreements().is_empty(),
            "{:?}",
            plan.disagreements()
        );
        let written = write(dir.path(), &plan, false).unwrap().unwrap();
        assert!(judge_files(dir.path(), &plan, &written.nodes)
            .unwrap()
            .is_empty());
        let s4 = read_node(dir.path(), NodeId(4)).unwrap().unwrap();
        assert_eq!(s4.records.last(), Some(&rec(10, 1)));
        assert_eq!(s4.prefix(), Lsn(10));
    }

    #[test]
    fn three_nodes_are_readable_not_writable_and_two_are_too_few() {
        let dir = tempfile::tempdir().unwrap();
        volume(dir.path(), &[4, 4, 4]);
        let plan = plan(&inspect(dir.path()).unwrap()).unwrap();
        assert_eq!(plan.point, Lsn(4));
        assert!(!plan.writable());
        let before: Vec<Vec<u8>> = (0..3)
            .map(|n| std::fs::read(segment_path(dir.path(), NodeId(n))).unwrap())
            .collect();
        assert_eq!(write(dir.path(), &plan, false).unwrap(), None);
        for (n, bytes) in before.iter().enumerate() {
            let now = std::fs::read(segment_path(dir.path(), NodeId(n as u8))).unwrap();
            assert_eq!(&now, bytes, "nothing written");
        }
        std::fs::remove_file(segment_path(dir.path(), NodeId(2))).unwrap();
        let err = super::plan(&inspect(dir.path()).unwrap()).unwrap_err();
        assert!(matches!(err, VolumeError::TooFewNodes { .. }), "{err}");
        assert!(err.to_string().contains("read quorum of 3"), "{err}");
    }

    #[test]
    fn bad_input_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(inspect(dir.path()), Err(VolumeError::NoVolume(_))));
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(inspect(&file), Err(VolumeError::NotADirectory(_))));
        std::fs::write(segment_path(dir.path(), NodeId(0)), b"garbage!garbage!").unwrap();
        let v = inspect(dir.path()).unwrap();
        assert_eq!(v.damaged.len(), 1);
        let d = v.damaged[0].to_string();
        assert!(
            d.contains("node-0.seg") && d.contains("not a segment file"),
            "{d}"
        );
        let err = super::plan(&v).unwrap_err();
        assert!(matches!(err, VolumeError::TooFewReadable { .. }), "{err}");
        assert!(err.to_string().contains("not a segment file"), "{err}");
        assert!(err.to_string().contains("write quorum of 4"), "{err}");
    }

    #[test]
    fn a_node_damaged_past_reading_is_moved_aside_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        volume(dir.path(), &[30, 30, 30, 30, 30, 30]);
        let s2 = segment_path(dir.path(), NodeId(2));
        let mut bytes = std::fs::read(&s2).unwrap();
        bytes[..6].fill(0);
        std::fs::write(&s2, &bytes).unwrap();
        std::fs::remove_file(segment_path(dir.path(), NodeId(5))).unwrap();
        let v = inspect(dir.path()).unwrap();
        assert_eq!(v.present().len(), 4);
        assert_eq!(
            v.damage_of(NodeId(2)).unwrap().error,
            FormatError::NotASegment
        );
        assert_eq!(v.missing(), vec![NodeId(5)]);
        let plan = plan(&v).unwrap();
        assert_eq!(plan.rebuild, vec![NodeId(2), NodeId(5)]);
        assert_eq!(plan.point, Lsn(30));
        assert!(plan.at_risk.is_empty());
        let written = write(dir.path(), &plan, false).unwrap().unwrap();
        assert_eq!(written.nodes.len(), 6);
        let aside = dir.path().join("node-2.seg.damaged");
        assert_eq!(
            written.rebuilt,
            vec![(NodeId(2), Some(aside.clone())), (NodeId(5), None)]
        );
        assert_eq!(
            std::fs::read(&aside).unwrap(),
            bytes,
            "moved aside as it was"
        );
        assert!(!dir.path().join("node-2.seg.rebuild").exists());
        for n in [2, 5] {
            let r = read_node(dir.path(), NodeId(n)).unwrap().unwrap();
            assert_eq!(r.records, plan.log, "S{n} holds the recovered log");
            assert_eq!(r.sealed(), plan.epoch);
        }
        assert!(judge_files(dir.path(), &plan, &written.nodes)
            .unwrap()
            .is_empty());
        // Damaged again: the first file moved aside is kept, the second goes beside it.
        std::fs::write(&s2, b"\0\0\0\0\0\0\0\0\0\0\0\0").unwrap();
        let again = super::plan(&inspect(dir.path()).unwrap()).unwrap();
        let written = write(dir.path(), &again, false).unwrap().unwrap();
        let second = dir.path().join("node-2.seg.damaged.2");
        assert_eq!(written.rebuilt, vec![(NodeId(2), Some(second.clone()))]);
        assert_eq!(std::fs::read(&aside).unwrap(), bytes);
        assert_eq!(std::fs::read(&second).unwrap().len(), 12);
    }

    #[test]
    fn records_a_write_quorum_holds_above_the_point_are_not_annulled_unasked() {
        let dir = tempfile::tempdir().unwrap();
        volume(dir.path(), &[0, 0, 0, 0, 0, 0]);
        // Every node holds 1..=5 and 8..=12 (6..=7 lost on all); S0..S3 also hold 13.
        for n in 0..6u8 {
            let disk: Arc<dyn Disk> =
                Arc::new(FileDisk::open(segment_path(dir.path(), NodeId(n))).unwrap());
            let (seg, _) = Segment::open(disk).unwrap();
            let top = if n < 4 { 13 } else { 12 };
            let lsns = (1..=5).chain(8..=top);
            seg.append(&lsns.map(|l| rec(l, 0)).collect::<Vec<_>>())
                .unwrap();
            seg.sync().unwrap();
        }
        let plan = plan(&inspect(dir.path()).unwrap()).unwrap();
        assert_eq!(plan.point, Lsn(5));
        let all: Vec<NodeId> = NodeId::all().collect();
        assert_eq!(
            plan.at_risk,
            vec![
                AtRisk {
                    first: Lsn(8),
                    last: Lsn(12),
                    holders: all
                },
                AtRisk {
                    first: Lsn(13),
                    last: Lsn(13),
                    holders: (0..4).map(NodeId).collect()
                },
            ]
        );
        let before: Vec<Vec<u8>> = NodeId::all()
            .map(|n| std::fs::read(segment_path(dir.path(), n)).unwrap())
            .collect();
        let err = write(dir.path(), &plan, false).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, VolumeError::WouldAnnul(_)), "{text}");
        assert!(
            text.contains("8..=12 (5 records) held by S0, S1, S2, S3, S4, S5"),
            "{text}"
        );
        assert!(
            text.contains("13 (1 records) held by S0, S1, S2, S3"),
            "{text}"
        );
        for (n, bytes) in NodeId::all().zip(&before) {
            assert_eq!(&std::fs::read(segment_path(dir.path(), n)).unwrap(), bytes);
        }
        let written = write(dir.path(), &plan, true).unwrap().unwrap();
        assert_eq!(written.nodes.len(), 6);
        let s0 = read_node(dir.path(), NodeId(0)).unwrap().unwrap();
        assert_eq!(s0.records.last().map(|r| r.lsn), Some(Lsn(5)));
    }

    #[test]
    fn log_agreement_names_the_first_record_of_another_epoch() {
        let log = vec![rec(1, 0), rec(2, 1), rec(3, 1)];
        assert_eq!(log_agreement(NodeId(1), &log, &log), None);
        // Above the recovered prefix is not LogAgreement's business here (the seal annuls it).
        let longer = [rec(1, 0), rec(2, 1), rec(3, 1), rec(4, 0)];
        assert_eq!(log_agreement(NodeId(1), &log, &longer), None);
        let d = log_agreement(NodeId(4), &log, &[rec(1, 0), rec(3, 0)]).unwrap();
        assert_eq!(
            (d.node, d.held, d.recovered),
            (NodeId(4), rec(3, 0), rec(3, 1))
        );
    }

    #[test]
    fn committed_survives_recovery_names_each_loss() {
        let log = vec![rec(1, 0), rec(2, 0), rec(3, 1)];
        let ok = [Acked::commit(Lsn(2), Epoch::numbered(0))];
        assert!(committed_survives_recovery(&log, &ok).is_empty());
        let lost = committed_survives_recovery(
            &log,
            &[
                Acked::commit(Lsn(3), Epoch::numbered(0)),
                Acked::commit(Lsn(4), Epoch::numbered(1)),
            ],
        );
        assert_eq!(lost.len(), 2);
        assert_eq!(lost[0].found, Some(rec(3, 1)));
        assert_eq!(lost[1].found, None);
        assert!(lost[1].to_string().contains("above the recovery point"));
    }

    #[test]
    fn a_written_record_with_its_lsn_and_epoch_but_another_value_is_lost() {
        let log = vec![rec(1, 0), rec(2, 0), rec(3, 1)];
        let written = |r: Record, value: u64| Acked {
            lsn: r.lsn,
            epoch: r.epoch,
            record: Some((r.page, value)),
        };
        let same = [
            written(rec(2, 0), rec(2, 0).value),
            written(rec(3, 1), rec(3, 1).value),
        ];
        assert!(committed_survives_recovery(&log, &same).is_empty());
        // LSN and epoch match; the value does not: lost, where the bare commit survives.
        let changed = written(rec(2, 0), 7);
        assert!(
            committed_survives_recovery(&log, &[Acked::commit(Lsn(2), Epoch::numbered(0))])
                .is_empty()
        );
        let lost = committed_survives_recovery(&log, &[changed]);
        assert_eq!(
            lost,
            vec![Lost {
                acked: changed,
                found: Some(rec(2, 0))
            }]
        );
        assert_eq!(
            lost[0].to_string(),
            "LSN 2 of e0 (page 2 value 7) was recovered as page 2 value 200 of e0"
        );
        // A written record of e0 recovered as e1's record: lost, though e1 is newer.
        let replaced = written(rec(3, 0), rec(3, 0).value);
        assert_eq!(committed_survives_recovery(&log, &[replaced]).len(), 1);
    }
}
