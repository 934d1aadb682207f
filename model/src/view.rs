//! A state in words, for people: what the Explorer shows as the current state.
//!
//! First the invariants the state violates, each with the evidence its predicate compared and
//! what it protects ([`crate::properties::violations`]); then the step that led here; then one
//! section per actor (the writer, the six nodes by zone, the replicas), the messages in flight,
//! and, apart, the ghost bookkeeping no actor sees. The raw state (`{:?}`) comes last in the
//! alternate form `{:#?}`, which is what the Explorer's "Complete State?" shows.

use crate::model::{Action, RedoModel};
use crate::properties::{self, Violation};
use crate::state::{LsnSet, Node, NodeStatus, State};
use crate::types::{Az, Lsn, NodeId, ReplicaId, STORAGE_NODES};
use std::fmt::{self, Write};

/// The heading that introduces the raw state at the end of `{:#?}`.
pub const RAW_STATE: &str = "RAW STATE";

/// The view of `s` reached by `step` from `before` (the Explorer's text for a step), judged
/// under `model`: violations first, each marked when this step is the one that broke it.
pub fn step_view(model: &RedoModel, before: &State, action: &Action, s: &State) -> String {
    let broken_before: Vec<&str> = properties::violations(model, before)
        .iter()
        .map(|v| v.property)
        .collect();
    let mut out = String::new();
    violations_section(&mut out, &properties::violations(model, s), |p| {
        !broken_before.contains(&p)
    });
    let _ = writeln!(
        out,
        "THIS STEP\n  {}\n",
        crate::render::describe(action, before, s)
    );
    actors_section(&mut out, Some(model), s);
    out
}

/// The view of a state on its own (no model at hand: QuiescenceConverges, which needs the
/// model's enabled steps, is not judged here).
pub fn state_view(s: &State) -> String {
    let mut out = String::new();
    violations_section(&mut out, &properties::state_violations(s), |_| false);
    actors_section(&mut out, None, s);
    out
}

fn violations_section(
    out: &mut String,
    violations: &[Violation],
    broken_here: impl Fn(&str) -> bool,
) {
    if violations.is_empty() {
        out.push_str("No invariant is violated in this state.\n\n");
        return;
    }
    for v in violations {
        let here = if broken_here(v.property) {
            " (broken by this step)"
        } else {
            ""
        };
        let _ = writeln!(out, "✗ VIOLATED: {}{here}", v.property);
        for line in &v.evidence {
            let _ = writeln!(out, "    evidence: {line}");
        }
        let _ = writeln!(out, "    protects: {}", v.protects());
    }
    out.push('\n');
}

/// `S0 1 · S1 0 · ...`: one watermark per node.
fn per_node(values: &[Lsn; STORAGE_NODES]) -> String {
    NodeId::all()
        .map(|n| format!("{n} {}", values[n.index()]))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn status(s: &State, id: NodeId, node: &Node) -> &'static str {
    match node.status {
        NodeStatus::Up if s.az_out == Some(id.az()) => "cut off",
        NodeStatus::Up => "up",
        NodeStatus::Crashed => "crashed",
        NodeStatus::Lost => "lost",
    }
}

fn zone(az: Az) -> char {
    ['a', 'b', 'c'][az.index()]
}

fn set(lsns: LsnSet) -> String {
    format!("{lsns:?}")
}

fn actors_section(out: &mut String, model: Option<&RedoModel>, s: &State) {
    let w = &s.writer;
    let _ = writeln!(
        out,
        "WRITER W\n  written {}, next LSN {}, commit point {}\n  acks (highest SCL each node \
         has acknowledged in the writer's epoch): {}\n",
        w.written,
        w.written.next(),
        w.commit,
        per_node(&s.acks_in(w.epoch))
    );
    if w.epoch > crate::types::Epoch::FIRST {
        let phase = match w.phase {
            crate::state::Phase::Open => "open (recovery done)".to_string(),
            crate::state::Phase::Reading => "recovering: about to read a read quorum".to_string(),
            crate::state::Phase::Sealing { sealed } => {
                format!("recovering: write phase, sealed {sealed:?} (4 needed)")
            }
        };
        let _ = writeln!(
            out,
            "  epoch {}, {phase}; recovery point {}\n",
            w.epoch, w.point
        );
    }
    if let Some(z) = &s.zombie {
        let _ = writeln!(
            out,
            "ZOMBIE WRITER (epoch {}, cut off from clients)\n  written {}\n",
            z.epoch, z.written
        );
    }

    let _ = writeln!(
        out,
        "STORAGE NODES (write quorum 4 of 6, read quorum 3)\n  {:<10}{:<9}{:<12}{:<12}{:<5}flushed",
        "", "status", "memory", "disk", "SCL"
    );
    for az in Az::ALL {
        for (i, id) in az.nodes().into_iter().enumerate() {
            let node = s.node(id);
            let label = if i == 0 {
                format!("AZ {}  {id}", zone(az))
            } else {
                format!("      {id}")
            };
            let epochs = if w.epoch > crate::types::Epoch::FIRST {
                let old: Vec<String> = node
                    .held()
                    .iter()
                    .filter(|&l| node.epochs.get(l) != node.epoch)
                    .map(|l| format!("{l} of {}", node.epochs.get(l)))
                    .collect();
                format!(
                    "  epoch {}{}{}",
                    node.epoch,
                    if node.speaks() { "" } else { " (not sealed)" },
                    if old.is_empty() {
                        String::new()
                    } else {
                        format!(", older records: {}", old.join(", "))
                    }
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  {label:<10}{:<9}{:<12}{:<12}{:<5}{}{epochs}",
                status(s, id, node),
                set(node.mem),
                set(node.disk),
                node.scl().to_string(),
                node.flushed()
            );
        }
    }
    if let Some(az) = s.az_out {
        let _ = writeln!(
            out,
            "  AZ {} is out: its nodes are cut off (they keep memory and disk)",
            zone(az)
        );
    }
    out.push('\n');

    out.push_str("REPLICAS\n");
    for (i, r) in s.replicas.iter().enumerate() {
        let id = ReplicaId(i as u8);
        let pages: Vec<String> = r
            .pages
            .iter()
            .enumerate()
            .map(|(p, lsn)| match lsn.0 {
                0 => format!("page {p} untouched"),
                _ => format!("page {p} = LSN {lsn}"),
            })
            .collect();
        let epoch = if r.epoch > crate::types::Epoch::FIRST {
            format!(", epoch {}", r.epoch)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {id}  {} (incarnation {}{epoch}): applied {}, known commit {}, durable {}, retained \
             {}, {}",
            if r.up { "up" } else { "down" },
            r.incarnation,
            r.applied,
            r.known_commit,
            r.durable,
            set(r.retained),
            pages.join(", ")
        );
    }
    out.push('\n');

    let _ = writeln!(out, "MESSAGES IN FLIGHT ({} Append)", s.network.len());
    for e in s.network.iter() {
        let _ = writeln!(out, "  {e}");
    }
    let _ = writeln!(
        out,
        "  Ack and Available sent (highest SCL per node): {}\n  Flushed sent (highest per \
         node): {}\n",
        per_node(&s.announced.scl),
        per_node(&s.announced.flushed)
    );

    let g = &s.ghost;
    let _ = writeln!(
        out,
        "GHOST BOOKKEEPING (ground truth for the invariants; no actor sees it)\n  truthful acks \
         (SCL acked while holding 1..=SCL): {}\n  highest LSN each disk has held: {}\n  durable \
         so far {}, volume durable {}\n  flags: {:?}",
        per_node(&g.truthful_ack),
        per_node(&g.disk_high),
        s.durable_so_far(),
        s.volume_durable(),
        g.flags
    );
    for (i, r) in s.replicas.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {} discarded through the discard rule (this incarnation): {}",
            ReplicaId(i as u8),
            set(r.discarded)
        );
    }
    let f = &s.faults;
    let budget = |used: u8, of: fn(&crate::Config) -> u8| match model {
        Some(m) => format!("{used} of {}", of(&m.config)),
        None => used.to_string(),
    };
    let _ = writeln!(
        out,
        "  faults used: storage crashes {}, replica crashes {}, AZ outages {}, nodes lost {}",
        budget(f.storage_crashes, |c| c.storage_crashes),
        budget(f.replica_crashes, |c| c.replica_crashes),
        budget(f.az_outages, |c| c.az_outages),
        budget(f.lost_nodes, |c| c.lost_nodes)
    );
    if model.is_some_and(|m| m.config.writer_crashes > 0) || f.writer_crashes > 0 {
        let _ = writeln!(
            out,
            "  writer failovers {}",
            budget(f.writer_crashes, |c| c.writer_crashes)
        );
    }
}

/// The fields of a state as `#[derive(Debug)]` would print them.
struct Raw<'a>(&'a State);

impl fmt::Debug for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        f.debug_struct("State")
            .field("writer", &s.writer)
            .field("zombie", &s.zombie)
            .field("nodes", &s.nodes)
            .field("replicas", &s.replicas)
            .field("network", &s.network)
            .field("announced", &s.announced)
            .field("az_out", &s.az_out)
            .field("faults", &s.faults)
            .field("ghost", &s.ghost)
            .finish()
    }
}

/// `{:?}` is the raw state on one line. `{:#?}` (what the Explorer shows as the complete state)
/// is the readable view first, then the raw state under [`RAW_STATE`].
impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "{}\n{RAW_STATE}\n{:#?}", state_view(self), Raw(self))
        } else {
            write!(f, "{:?}", Raw(self))
        }
    }
}
