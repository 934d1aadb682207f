//! Renderings of a path through the model: numbered steps, a Mermaid `sequenceDiagram` (the seed
//! draws the protocol that way), and an SVG sequence diagram for the Explorer.
//!
//! All three come from one account of each step ([`marks`]): the messages it stands for, as
//! arrows (the watermark messages a receiver counted, from the nodes that sent them), and what
//! it did to an actor, as a note on that actor's lifeline (a write, a flush, an apply, a discard,
//! a crash). The diagrams also mark the step that broke an invariant.

use crate::model::{Action, RedoModel};
use crate::properties;
use crate::state::State;
use crate::types::{Actor, Lsn, Msg, NodeId, ReplicaId, STORAGE_NODES};
use std::fmt::Write;

/// Every participant, in diagram order.
fn participants(model: &RedoModel) -> Vec<Actor> {
    let mut actors = vec![Actor::Writer];
    actors.extend(NodeId::all().map(Actor::Storage));
    actors.extend((0..model.config.replicas).map(|r| Actor::Replica(ReplicaId(r))));
    actors
}

/// Part of how a step appears in a diagram: an arrow between two actors, or a note on one
/// actor's lifeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    Arrow {
        from: Actor,
        to: Actor,
        label: String,
    },
    Note {
        over: Actor,
        text: String,
        /// An event that changes what the actor holds (apply, discard, crash, loss): drawn
        /// highlighted.
        event: bool,
    },
}

/// The nodes whose announced watermark reaches `lsn`: the senders of the messages a receiver
/// counted to reach it.
fn nodes_at(values: &[Lsn; STORAGE_NODES], lsn: Lsn) -> Vec<NodeId> {
    NodeId::all().filter(|n| values[n.index()] >= lsn).collect()
}

fn names(nodes: &[NodeId]) -> String {
    let names: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    names.join(", ")
}

fn lsn_list(lsns: &[Lsn]) -> String {
    let names: Vec<String> = lsns.iter().map(|l| l.to_string()).collect();
    names.join(", ")
}

/// What a step did to a replica's records: the LSNs it applied and the LSNs it discarded
/// (freed from its retained set, or applied and dropped at once because already durable). A
/// crash loses everything, which is not a discard.
fn applied_and_discarded(before: &State, after: &State, r: ReplicaId) -> (Vec<Lsn>, Vec<Lsn>) {
    let (b, a) = (before.replica(r), after.replica(r));
    if b.incarnation != a.incarnation || !a.up {
        return (Vec::new(), Vec::new());
    }
    let applied: Vec<Lsn> = (b.applied.0 + 1..=a.applied.0).map(Lsn).collect();
    let discarded = b
        .retained
        .iter()
        .chain(applied.iter().copied())
        .filter(|&l| !a.retained.contains(l))
        .collect();
    (applied, discarded)
}

/// The replica a step acts on, if any.
fn replica_of(action: &Action) -> Option<ReplicaId> {
    match action {
        Action::LearnCommit(r, _) | Action::LearnDurable(r, _) | Action::Pull(r, _) => Some(*r),
        _ => None,
    }
}

/// The consequences of a step on a replica, in words: `R0 applies LSN 1, 2`, `R0 discards LSN 1`.
fn effects(action: &Action, before: &State, after: &State) -> Vec<(ReplicaId, String)> {
    let Some(r) = replica_of(action) else {
        return Vec::new();
    };
    let (applied, discarded) = applied_and_discarded(before, after, r);
    let mut out = Vec::new();
    if !applied.is_empty() {
        out.push((r, format!("{r} applies LSN {}", lsn_list(&applied))));
    }
    if !discarded.is_empty() {
        out.push((r, format!("{r} discards LSN {}", lsn_list(&discarded))));
    }
    out
}

/// The records a pull brings, as the node answers it.
fn pulled(before: &State, r: ReplicaId, n: NodeId) -> (Lsn, Vec<Lsn>) {
    let from = before.replica(r).applied.next();
    (
        from,
        crate::storage::records_from(before.node(n), from)
            .map(|r| r.lsn)
            .collect(),
    )
}

/// How a step appears in a diagram, given the states before and after it.
pub fn marks(action: &Action, before: &State, after: &State) -> Vec<Mark> {
    let note = |over: Actor, text: String| Mark::Note {
        over,
        text,
        event: false,
    };
    let event = |over: Actor, text: String| Mark::Note {
        over,
        text,
        event: true,
    };
    let arrow = |from: NodeId, to: Actor, label: String| Mark::Arrow {
        from: Actor::Storage(from),
        to,
        label,
    };
    let mut out = match action {
        Action::Deliver(e) => vec![Mark::Arrow {
            from: e.src,
            to: e.dst,
            label: e.msg.to_string(),
        }],
        Action::Drop(e) => vec![event(e.dst, format!("lost: {} from {}", e.msg, e.src))],
        Action::Write => vec![note(
            Actor::Writer,
            format!("write LSN {} (Append to all)", before.writer.written.next()),
        )],
        Action::Flush(n, upto) => vec![note(
            Actor::Storage(*n),
            format!("flush 1..={upto} to disk, send Flushed"),
        )],
        Action::Pull(r, n) => {
            let (from, records) = pulled(before, *r, *n);
            vec![
                Mark::Arrow {
                    from: Actor::Replica(*r),
                    to: Actor::Storage(*n),
                    label: Msg::Pull { from }.to_string(),
                },
                arrow(
                    *n,
                    Actor::Replica(*r),
                    format!("Records [{}]", lsn_list(&records)),
                ),
            ]
        }
        Action::Commit(to) => {
            let scl = &before.announced.scl;
            let mut marks: Vec<Mark> = nodes_at(scl, *to)
                .into_iter()
                .map(|n| arrow(n, Actor::Writer, format!("Ack scl {}", scl[n.index()])))
                .collect();
            marks.push(note(Actor::Writer, format!("commit point {to}")));
            marks
        }
        Action::LearnCommit(r, to) => {
            let scl = &before.announced.scl;
            let mut marks: Vec<Mark> = nodes_at(scl, *to)
                .into_iter()
                .map(|n| {
                    arrow(
                        n,
                        Actor::Replica(*r),
                        format!("Available scl {}", scl[n.index()]),
                    )
                })
                .collect();
            marks.push(note(Actor::Replica(*r), format!("known commit {to}")));
            marks
        }
        Action::LearnDurable(r, to) if *to < before.replica(*r).durable => vec![event(
            Actor::Replica(*r),
            format!(
                "stale Flushed: durable LSN {to} (was {})",
                before.replica(*r).durable
            ),
        )],
        Action::LearnDurable(r, to) => {
            let flushed = &before.announced.flushed;
            let mut marks: Vec<Mark> = nodes_at(flushed, *to)
                .into_iter()
                .map(|n| {
                    arrow(
                        n,
                        Actor::Replica(*r),
                        format!("Flushed lsn {}", flushed[n.index()]),
                    )
                })
                .collect();
            marks.push(note(Actor::Replica(*r), format!("durable LSN {to}")));
            marks
        }
        Action::CrashNode(n) => vec![event(Actor::Storage(*n), "crash: memory lost".into())],
        Action::RestartNode(n) => vec![note(Actor::Storage(*n), "restart from disk".into())],
        Action::LoseNode(n) => vec![event(Actor::Storage(*n), "lost for good".into())],
        Action::AzOutage(az) => vec![event(
            Actor::Storage(az.nodes()[0]),
            format!("AZ {az:?} out ({}, {})", az.nodes()[0], az.nodes()[1]),
        )],
        Action::AzRecover(az) => vec![note(
            Actor::Storage(az.nodes()[0]),
            format!("AZ {az:?} back"),
        )],
        Action::CrashReplica(r) => {
            vec![event(Actor::Replica(*r), "crash: everything lost".into())]
        }
        Action::RestartReplica(r) => vec![note(Actor::Replica(*r), "restart".into())],
        Action::FailOver => vec![event(
            Actor::Writer,
            format!("fail over: new writer of {}", after.writer.epoch),
        )],
        Action::ZombieWrite => vec![note(
            Actor::Writer,
            format!(
                "zombie writes LSN {}",
                after.zombie.as_ref().map_or(Lsn::ZERO, |z| z.written)
            ),
        )],
        Action::Read(q) => {
            let mut marks: Vec<Mark> = q
                .iter()
                .map(|n| {
                    arrow(
                        n,
                        Actor::Writer,
                        format!("read: SCL {}", before.node(n).scl()),
                    )
                })
                .collect();
            marks.push(event(
                Actor::Writer,
                format!("recovery point {}", after.writer.point),
            ));
            marks
        }
        Action::Seal(n) => {
            let mut marks = vec![Mark::Arrow {
                from: Actor::Writer,
                to: Actor::Storage(*n),
                label: format!(
                    "seal {}: 1..={}, truncate above",
                    after.writer.epoch, after.writer.point
                ),
            }];
            if after.writer.is_open() && !before.writer.is_open() {
                marks.push(event(
                    Actor::Writer,
                    format!("open: commit point {}", after.writer.commit),
                ));
            }
            marks
        }
        Action::Follow(r) => vec![event(
            Actor::Replica(*r),
            format!("follows {}: starts over", after.replica(*r).epoch),
        )],
    };
    for (r, text) in effects(action, before, after) {
        out.push(event(Actor::Replica(r), text));
    }
    out
}

/// A step in words, with the messages it stands for and what it did, given the states it starts
/// from and leads to: `R0 gets Flushed from S0, S1, S2, S3: durable LSN 1; R0 discards LSN 1`.
pub fn describe(action: &Action, before: &State, after: &State) -> String {
    let text = match action {
        Action::Write => format!(
            "W writes LSN {}, sends Append to every node",
            before.writer.written.next()
        ),
        Action::Commit(to) => format!(
            "W gets Ack from {}: commit point {to}",
            names(&nodes_at(&before.announced.scl, *to))
        ),
        Action::LearnCommit(r, to) => format!(
            "{r:?} gets Available from {}: known commit {to}",
            names(&nodes_at(&before.announced.scl, *to))
        ),
        Action::LearnDurable(r, to) if *to < before.replica(*r).durable => format!(
            "{r:?} gets stale Flushed messages: durable LSN {to} (was {})",
            before.replica(*r).durable
        ),
        Action::LearnDurable(r, to) => format!(
            "{r:?} gets Flushed from {}: durable LSN {to}",
            names(&nodes_at(&before.announced.flushed, *to))
        ),
        Action::Pull(r, n) => {
            let from = before.replica(*r).applied.next();
            let records: Vec<_> = crate::storage::records_from(before.node(*n), from).collect();
            let msg = crate::types::Msg::Records {
                node: *n,
                records,
                epoch: Default::default(),
            };
            format!("{r} -> {n} Pull from {from}; {n} -> {r} {msg}")
        }
        Action::Flush(n, upto) => format!("{n} flushes 1..={upto} to disk, sends Flushed"),
        Action::Deliver(e) => e.to_string(),
        Action::Drop(e) => format!("the network loses {e}"),
        other => format!("{other:?}"),
    };
    let mut parts = vec![text];
    parts.extend(effects(action, before, after).into_iter().map(|(_, e)| e));
    parts.join("; ")
}

/// The path's steps with their descriptions ([`describe`]), in order.
pub fn described_steps(path: &[(State, Option<Action>)]) -> Vec<(Action, String)> {
    path.windows(2)
        .filter_map(|w| {
            let ((before, action), (after, _)) = (&w[0], &w[1]);
            action
                .as_ref()
                .map(|a| (a.clone(), describe(a, before, after)))
        })
        .collect()
}

/// The path's steps, numbered from 1, one line each: `7. W -> S3 Append(...)`.
pub fn numbered_steps(path: &[(State, Option<Action>)]) -> Vec<String> {
    described_steps(path)
        .into_iter()
        .enumerate()
        .map(|(i, (_, step))| format!("{}. {step}", i + 1))
        .collect()
}

/// One step of a path as the diagrams draw it.
struct DiagramStep {
    number: usize,
    marks: Vec<Mark>,
    /// The invariants this step broke (violated after it, not before).
    breaks: Vec<&'static str>,
}

/// The diagram's account of a path: per step, its marks and the invariants it broke; and the
/// violations of the last state.
fn diagram(
    model: &RedoModel,
    path: &[(State, Option<Action>)],
) -> (Vec<DiagramStep>, Vec<properties::Violation>) {
    let mut violated: Vec<Vec<properties::Violation>> = path
        .iter()
        .map(|(s, _)| properties::violations(model, s))
        .collect();
    let steps = path
        .windows(2)
        .enumerate()
        .filter_map(|(i, w)| {
            let ((before, action), (after, _)) = (&w[0], &w[1]);
            let action = action.as_ref()?;
            let breaks = violated[i + 1]
                .iter()
                .map(|v| v.property)
                .filter(|p| !violated[i].iter().any(|v| v.property == *p))
                .collect();
            Some(DiagramStep {
                number: i + 1,
                marks: marks(action, before, after),
                breaks,
            })
        })
        .collect();
    (steps, violated.pop().unwrap_or_default())
}

/// The path as a Mermaid `sequenceDiagram`. A step that broke an invariant is shaded, with a
/// note naming it.
pub fn mermaid(model: &RedoModel, path: &[(State, Option<Action>)]) -> String {
    let actors = participants(model);
    let mut out = String::from("sequenceDiagram\n");
    for actor in &actors {
        let _ = writeln!(out, "    participant {actor:?}");
    }
    let (steps, _) = diagram(model, path);
    let span = format!("{:?},{:?}", actors[0], actors[actors.len() - 1]);
    for step in steps {
        let broken = !step.breaks.is_empty();
        if broken {
            out.push_str("    rect rgb(255, 221, 221)\n");
        }
        for mark in &step.marks {
            let _ = match mark {
                Mark::Arrow { from, to, label } => writeln!(
                    out,
                    "    {from:?}->>{to:?}: {}. {}",
                    step.number,
                    mermaid_text(label)
                ),
                Mark::Note { over, text, .. } => writeln!(
                    out,
                    "    Note over {over:?}: {}. {}",
                    step.number,
                    mermaid_text(text)
                ),
            };
        }
        if broken {
            let _ = writeln!(
                out,
                "    Note over {span}: {}. violates {}\n    end",
                step.number,
                step.breaks.join(", ")
            );
        }
    }
    out
}

/// Mermaid ends a message at `;` and reads `#` as an entity: keep labels plain.
fn mermaid_text(text: &str) -> String {
    text.replace(';', ",").replace('#', "")
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The path as an SVG sequence diagram: one lifeline per actor, one row per arrow or note, the
/// step number at the left of a step's first row. When the last state violates invariants, a
/// banner at the top names each with its evidence; the step that broke one is shaded red.
pub fn sequence_svg(model: &RedoModel, path: &[(State, Option<Action>)]) -> String {
    const COLUMN: usize = 110;
    const ROW: usize = 24;
    const LINE: usize = 16;
    // Room on the left for the step numbers and for notes over the writer, which are centred on
    // its lifeline.
    const MARGIN: usize = 110;
    let actors = participants(model);
    let x_of = |actor: Actor| {
        let i = actors.iter().position(|a| *a == actor).unwrap_or(0);
        MARGIN + COLUMN / 2 + i * COLUMN
    };
    let (steps, violations) = diagram(model, path);
    let rows: usize = steps.iter().map(|s| s.marks.len()).sum();
    let banner_lines: usize = violations.iter().map(|v| 1 + v.evidence.len()).sum();
    let banner = if banner_lines == 0 {
        0
    } else {
        LINE * banner_lines + 12
    };
    let top = banner + 40;
    let width = 2 * MARGIN + COLUMN * actors.len();
    let height = top + ROW * (rows + 1);
    let mut svg = format!(
        "<svg version='1.1' baseProfile='full' width='{width}' height='{height}' \
         viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg' \
         font-family='sans-serif'>\n\
         <defs><marker id='arrow' markerWidth='12' markerHeight='10' refX='12' refY='5' \
         orient='auto'><polygon points='0 0, 12 5, 0 10'/></marker></defs>\n\
         <rect width='100%' height='100%' fill='white'/>\n"
    );
    if banner > 0 {
        let _ = writeln!(
            svg,
            "<rect x='4' y='4' width='{}' height='{}' rx='6' fill='#fde2e2' stroke='#c01c28'/>",
            width - 8,
            banner - 4
        );
        let mut y = 4 + LINE;
        for v in &violations {
            let at = steps
                .iter()
                .find(|s| s.breaks.contains(&v.property))
                .map_or(String::new(), |s| format!(" at step {}", s.number));
            let _ = writeln!(
                svg,
                "<text x='12' y='{y}' font-size='13' font-weight='bold' fill='#c01c28'>✗ \
                 {} violated{at}</text>",
                v.property
            );
            y += LINE;
            for line in &v.evidence {
                let _ = writeln!(
                    svg,
                    "<text x='28' y='{y}' font-size='12' fill='#5c0a10'>{}</text>",
                    xml_escape(line)
                );
                y += LINE;
            }
        }
    }
    for &actor in &actors {
        let x = x_of(actor);
        let _ = writeln!(
            svg,
            "<line x1='{x}' y1='{top}' x2='{x}' y2='{height}' stroke='#999'/>\
             <text x='{x}' y='{}' font-weight='bold' text-anchor='middle'>{actor:?}</text>",
            top - 12
        );
    }
    let mut row = 0;
    for step in &steps {
        let first_y = top + ROW * (row + 1);
        if !step.breaks.is_empty() {
            let _ = writeln!(
                svg,
                "<rect x='2' y='{}' width='{}' height='{}' fill='#c01c28' fill-opacity='0.15' \
                 stroke='#c01c28'/><text x='{}' y='{}' font-size='11' font-weight='bold' \
                 text-anchor='end' fill='#c01c28'>✗ violates {}</text>",
                first_y - ROW + 6,
                width - 4,
                ROW * step.marks.len(),
                width - 8,
                first_y - ROW + 18,
                step.breaks.join(", ")
            );
        }
        let _ = writeln!(
            svg,
            "<text x='8' y='{first_y}' font-size='11' font-weight='bold'>{}.</text>",
            step.number
        );
        for mark in &step.marks {
            row += 1;
            let y = top + ROW * row;
            match mark {
                Mark::Arrow { from, to, label } => {
                    let (x1, x2) = (x_of(*from), x_of(*to));
                    let _ = writeln!(
                        svg,
                        "<line x1='{x1}' y1='{y}' x2='{x2}' y2='{y}' stroke='black' \
                         marker-end='url(#arrow)'/><text x='{}' y='{}' font-size='10' \
                         text-anchor='middle'>{}. {}</text>",
                        (x1 + x2) / 2,
                        y - 4,
                        step.number,
                        xml_escape(label)
                    );
                }
                Mark::Note { over, text, event } => {
                    let label = format!("{}. {}", step.number, text);
                    let w = 6 * label.chars().count() + 10;
                    let x = x_of(*over);
                    let (fill, stroke, color) = if *event {
                        ("#fff4c2", "#b5835a", "#63452c")
                    } else {
                        ("#e8f0fb", "#1a5fb4", "#1a5fb4")
                    };
                    let _ = writeln!(
                        svg,
                        "<rect x='{}' y='{}' width='{w}' height='18' rx='4' fill='{fill}' \
                         stroke='{stroke}'/><text x='{x}' y='{y}' font-size='10' \
                         text-anchor='middle' fill='{color}'>{}</text>",
                        x.saturating_sub(w / 2),
                        y - 13,
                        xml_escape(&label)
                    );
                }
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Bug, Config, Preset};
    use crate::state::record_for;
    use crate::types::{Envelope, Epoch};
    use stateright::Model;

    /// `discard-on-available`'s counterexample: two records reach four nodes, R0 learns commit
    /// 1, applies LSN 1, then learns commit 2 and (the bug) discards LSN 1 on the spot.
    fn discard_on_available_path() -> (RedoModel, Vec<(State, Option<Action>)>) {
        let model = Config {
            lsns: 2,
            bug: Some(Bug::DiscardOnAvailable),
            ..Config::preset(Preset::Quick)
        }
        .into_model();
        let mut actions = vec![Action::Write, Action::Write];
        for n in 0..4 {
            for lsn in 1..=2 {
                actions.push(Action::Deliver(Envelope::append(
                    NodeId(n),
                    record_for(Epoch::FIRST, Lsn(lsn)),
                )));
            }
        }
        actions.extend([
            Action::LearnCommit(ReplicaId(0), Lsn(1)),
            Action::Pull(ReplicaId(0), NodeId(0)),
            Action::LearnCommit(ReplicaId(0), Lsn(2)),
        ]);
        let mut path = Vec::new();
        let mut state = model.init_states().remove(0);
        for action in actions {
            let next = model.next_state(&state, action.clone()).expect("a step");
            path.push((state, Some(action)));
            state = next;
        }
        path.push((state, None));
        (model, path)
    }

    #[test]
    fn steps_and_diagrams_show_the_discard_and_the_violation() {
        let (model, path) = discard_on_available_path();
        let steps = numbered_steps(&path);
        assert_eq!(
            steps[11],
            "12. R0 -> S0 Pull from 1; S0 -> R0 Records [1, 2]; R0 applies LSN 1"
        );
        assert_eq!(
            steps[12],
            "13. R0 gets Available from S0, S1, S2, S3: known commit 2; R0 discards LSN 1"
        );
        let mermaid = mermaid(&model, &path);
        assert!(mermaid.contains("    Note over R0: 13. R0 discards LSN 1\n"));
        assert!(mermaid.contains("    S3->>R0: 13. Available scl 2\n"));
        assert!(mermaid.contains("    Note over W,R0: 13. violates NoDiscardBeforeFlush\n"));
        let svg = sequence_svg(&model, &path);
        assert!(svg.contains("13. R0 discards LSN 1"));
        assert!(svg.contains("✗ NoDiscardBeforeFlush violated at step 13"));
        assert!(svg.contains("✗ violates NoDiscardBeforeFlush"));
        assert!(!svg.contains("RetainUntilDurable"));
    }

    #[test]
    fn the_state_view_names_the_violation_and_keeps_the_raw_state_last() {
        let (model, path) = discard_on_available_path();
        let (before, action) = &path[path.len() - 2];
        let after = &path[path.len() - 1].0;
        let view = crate::view::step_view(&model, before, action.as_ref().unwrap(), after);
        assert!(view.starts_with("✗ VIOLATED: NoDiscardBeforeFlush (broken by this step)\n"));
        assert!(view.contains(
            "evidence: R0 discarded LSN 1, but no node has had it on disk (durable so far 0; 4 \
             disks needed)"
        ));
        assert!(view.contains("AZ a  S0"));
        let complete = format!("{after:#?}");
        let raw = complete.find(crate::view::RAW_STATE).unwrap();
        assert!(complete.starts_with("✗ VIOLATED: NoDiscardBeforeFlush\n"));
        assert!(complete[raw..].contains("State {"));
        assert!(!format!("{after:?}").contains("VIOLATED"));
    }
}
