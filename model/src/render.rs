//! Renderings of a path through the model: numbered steps, a Mermaid `sequenceDiagram` (the seed
//! draws the protocol that way), and an SVG sequence diagram for the Explorer.

use crate::model::{Action, RedoModel};
use crate::state::State;
use crate::types::{Actor, Lsn, NodeId, ReplicaId, STORAGE_NODES};
use std::fmt::Write;

/// Every participant, in diagram order.
fn participants(model: &RedoModel) -> Vec<Actor> {
    let mut actors = vec![Actor::Writer];
    actors.extend(NodeId::all().map(Actor::Storage));
    actors.extend((0..model.config.replicas).map(|r| Actor::Replica(ReplicaId(r))));
    actors
}

/// How a step appears in a diagram: an arrow between two actors, or a note over one.
enum Mark {
    Arrow {
        from: Actor,
        to: Actor,
        label: String,
    },
    Note {
        over: Actor,
        text: String,
    },
}

fn mark(action: &Action, before: &State) -> Mark {
    let note = |over: Actor, text: String| Mark::Note { over, text };
    match action {
        Action::Deliver(e) => Mark::Arrow {
            from: e.src,
            to: e.dst,
            label: format!("{:?}", e.msg),
        },
        Action::Drop(e) => note(e.dst, format!("lost: {:?} from {:?}", e.msg, e.src)),
        Action::Write => note(
            Actor::Writer,
            format!("write LSN {} (Append to all)", before.writer.written.next()),
        ),
        Action::Flush(n, upto) => note(Actor::Storage(*n), format!("flush 1..={upto} to disk")),
        Action::Pull(r, n) => Mark::Arrow {
            from: Actor::Storage(*n),
            to: Actor::Replica(*r),
            label: format!(
                "Records from {} (pulled)",
                before.replica(*r).applied.next()
            ),
        },
        Action::Commit(to) => note(Actor::Writer, format!("Acks: commit point {to}")),
        Action::LearnCommit(r, to) => {
            note(Actor::Replica(*r), format!("Availables: known commit {to}"))
        }
        Action::LearnDurable(r, to) => {
            note(Actor::Replica(*r), format!("Flusheds: durable LSN {to}"))
        }
        Action::CrashNode(n) => note(Actor::Storage(*n), "crash: memory lost".into()),
        Action::RestartNode(n) => note(Actor::Storage(*n), "restart from disk".into()),
        Action::LoseNode(n) => note(Actor::Storage(*n), "lost for good".into()),
        Action::AzOutage(az) => note(Actor::Storage(az.nodes()[0]), format!("AZ {az:?} out")),
        Action::AzRecover(az) => note(Actor::Storage(az.nodes()[0]), format!("AZ {az:?} back")),
        Action::CrashReplica(r) => note(Actor::Replica(*r), "crash: everything lost".into()),
        Action::RestartReplica(r) => note(Actor::Replica(*r), "restart".into()),
    }
}

/// The nodes whose announced watermark reaches `lsn`.
fn nodes_at(values: &[Lsn; STORAGE_NODES], lsn: Lsn) -> String {
    let nodes: Vec<String> = NodeId::all()
        .filter(|n| values[n.index()] >= lsn)
        .map(|n| n.to_string())
        .collect();
    nodes.join(", ")
}

/// A step in words, with the messages it stands for, given the state it starts from.
pub fn describe(action: &Action, before: &State) -> String {
    match action {
        Action::Write => format!(
            "W writes LSN {}, sends Append to every node",
            before.writer.written.next()
        ),
        Action::Commit(to) => format!(
            "W gets Ack from {}: commit point {to}",
            nodes_at(&before.announced.scl, *to)
        ),
        Action::LearnCommit(r, to) => format!(
            "{r:?} gets Available from {}: known commit {to}",
            nodes_at(&before.announced.scl, *to)
        ),
        Action::LearnDurable(r, to) if *to < before.replica(*r).durable => format!(
            "{r:?} gets stale Flushed messages: durable LSN {to} (was {})",
            before.replica(*r).durable
        ),
        Action::LearnDurable(r, to) => format!(
            "{r:?} gets Flushed from {}: durable LSN {to}",
            nodes_at(&before.announced.flushed, *to)
        ),
        Action::Pull(r, n) => {
            let from = before.replica(*r).applied.next();
            let records: Vec<_> = crate::storage::records_from(before.node(*n), from).collect();
            format!("{r:?} -> {n:?} Pull {{ from: {from} }}; {n:?} -> {r:?} Records {records:?}")
        }
        Action::Flush(n, upto) => format!("{n:?} flushes 1..={upto} to disk, sends Flushed"),
        other => format!("{other:?}"),
    }
}

/// The path's steps, numbered from 1, one line each: `7. W -> S3 Append(...)`.
pub fn numbered_steps(path: &[(State, Option<Action>)]) -> Vec<String> {
    path.iter()
        .filter_map(|(state, action)| action.as_ref().map(|a| describe(a, state)))
        .enumerate()
        .map(|(i, step)| format!("{}. {step}", i + 1))
        .collect()
}

/// The path as a Mermaid `sequenceDiagram`.
pub fn mermaid(model: &RedoModel, path: &[(State, Option<Action>)]) -> String {
    let mut out = String::from("sequenceDiagram\n");
    for actor in participants(model) {
        let _ = writeln!(out, "    participant {actor:?}");
    }
    for (i, (state, action)) in path.iter().enumerate() {
        let Some(action) = action else { continue };
        match mark(action, state) {
            Mark::Arrow { from, to, label } => {
                let _ = writeln!(
                    out,
                    "    {from:?}->>{to:?}: {}. {}",
                    i + 1,
                    mermaid_text(&label)
                );
            }
            Mark::Note { over, text } => {
                let _ = writeln!(
                    out,
                    "    Note over {over:?}: {}. {}",
                    i + 1,
                    mermaid_text(&text)
                );
            }
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

/// The path as an SVG sequence diagram: one lifeline per actor, one row per step.
pub fn sequence_svg(model: &RedoModel, path: &[(State, Option<Action>)]) -> String {
    const COLUMN: usize = 110;
    const ROW: usize = 28;
    const TOP: usize = 40;
    // Room on the left for notes over the writer, which are centred on its lifeline.
    const MARGIN: usize = 90;
    let actors = participants(model);
    let x_of = |actor: Actor| {
        let i = actors.iter().position(|a| *a == actor).unwrap_or(0);
        MARGIN + COLUMN / 2 + i * COLUMN
    };
    let steps: Vec<_> = path
        .iter()
        .filter_map(|(s, a)| a.as_ref().map(|a| mark(a, s)))
        .collect();
    let width = 2 * MARGIN + COLUMN * actors.len();
    let height = TOP + ROW * (steps.len() + 1);
    let mut svg = format!(
        "<svg version='1.1' baseProfile='full' width='{width}' height='{height}' \
         viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg'>\n\
         <defs><marker id='arrow' markerWidth='12' markerHeight='10' refX='12' refY='5' \
         orient='auto'><polygon points='0 0, 12 5, 0 10'/></marker></defs>\n\
         <rect width='100%' height='100%' fill='white'/>\n"
    );
    for &actor in &actors {
        let x = x_of(actor);
        let _ = writeln!(
            svg,
            "<line x1='{x}' y1='{TOP}' x2='{x}' y2='{height}' stroke='#999'/>\
             <text x='{x}' y='{}' font-weight='bold' text-anchor='middle'>{actor:?}</text>",
            TOP - 12
        );
    }
    for (i, step) in steps.iter().enumerate() {
        let y = TOP + ROW * (i + 1);
        match step {
            Mark::Arrow { from, to, label } => {
                let (x1, x2) = (x_of(*from), x_of(*to));
                let _ = writeln!(
                    svg,
                    "<line x1='{x1}' y1='{y}' x2='{x2}' y2='{y}' stroke='black' \
                     marker-end='url(#arrow)'/><text x='{}' y='{}' font-size='10' \
                     text-anchor='middle'>{}. {}</text>",
                    (x1 + x2) / 2,
                    y - 4,
                    i + 1,
                    xml_escape(label)
                );
            }
            Mark::Note { over, text } => {
                let _ = writeln!(
                    svg,
                    "<text x='{}' y='{y}' font-size='10' font-style='italic' \
                     text-anchor='middle' fill='#1a5fb4'>{}. {}</text>",
                    x_of(*over),
                    i + 1,
                    xml_escape(text)
                );
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}
