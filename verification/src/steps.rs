//! A path through the model as structured steps, for `check --json`: who acts, what kind of step
//! it is, its parameters, and for a message delivery the message's fields; each with the same
//! human description the text report prints.

use aurora_redo_model::render::describe;
use aurora_redo_model::storage::records_from;
use aurora_redo_model::{Action, Actor, Az, Envelope, Msg, Record, State};
use serde::Serialize;

/// One step of a counterexample (or of an example of a `sometimes` property).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// 1-based, as in the numbered text.
    pub number: usize,
    /// Who takes the step: `W`, `S0`..`S5`, `R0`.., or `AZ A`..`AZ C` for a zone's outage.
    pub actor: String,
    /// The kind of step: the model's `Action` variant in kebab case (`deliver`, `commit`, ...).
    pub action: &'static str,
    /// The storage node the step concerns, when it is not the actor (`pull`: the node pulled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The LSN the step names: the record written (`write`), the flush's upper end (`flush`), the
    /// new commit point (`commit`, `learn-commit`), the new durable LSN (`learn-durable`) or the
    /// first LSN pulled (`pull`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lsn: Option<u64>,
    /// The message delivered (`deliver`), lost (`drop`) or answered (`pull`: the `Records`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// The step in words, as the text report prints it.
    pub description: String,
}

/// A message and its fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    pub from: String,
    pub to: String,
    #[serde(flatten)]
    pub body: MessageBody,
}

/// The fields of each `Msg` variant; `type` names the variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum MessageBody {
    Append {
        lsn: u64,
        page: u32,
        value: u64,
    },
    Ack {
        node: String,
        scl: u64,
    },
    Available {
        node: String,
        scl: u64,
    },
    Pull {
        from: u64,
    },
    Records {
        node: String,
        records: Vec<RecordFields>,
    },
    Flushed {
        node: String,
        lsn: u64,
    },
    Read {
        epoch: u32,
    },
    ReadAnswer {
        node: String,
        sealed: u32,
        scl: u64,
    },
    Seal {
        epoch: u32,
        point: u64,
    },
    Sealed {
        node: String,
        epoch: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordFields {
    pub lsn: u64,
    pub page: u32,
    pub value: u64,
}

impl From<&Record> for RecordFields {
    fn from(r: &Record) -> Self {
        RecordFields {
            lsn: r.lsn.0,
            page: r.page,
            value: r.value,
        }
    }
}

fn az_name(az: Az) -> &'static str {
    match az {
        Az::A => "AZ A",
        Az::B => "AZ B",
        Az::C => "AZ C",
    }
}

fn message(e: &Envelope) -> Message {
    let body = match &e.msg {
        Msg::Append(r) => MessageBody::Append {
            lsn: r.lsn.0,
            page: r.page,
            value: r.value,
        },
        Msg::Ack { node, scl, .. } => MessageBody::Ack {
            node: node.to_string(),
            scl: scl.0,
        },
        Msg::Available { node, scl, .. } => MessageBody::Available {
            node: node.to_string(),
            scl: scl.0,
        },
        Msg::Pull { from } => MessageBody::Pull { from: from.0 },
        Msg::Records { node, records, .. } => MessageBody::Records {
            node: node.to_string(),
            records: records.iter().map(RecordFields::from).collect(),
        },
        Msg::Flushed { node, lsn, .. } => MessageBody::Flushed {
            node: node.to_string(),
            lsn: lsn.0,
        },
        Msg::Read { epoch } => MessageBody::Read {
            epoch: epoch.number(),
        },
        Msg::ReadAnswer {
            node, sealed, scl, ..
        } => MessageBody::ReadAnswer {
            node: node.to_string(),
            sealed: sealed.number(),
            scl: scl.0,
        },
        Msg::Seal { epoch, point, .. } => MessageBody::Seal {
            epoch: epoch.number(),
            point: point.0,
        },
        Msg::Sealed { node, epoch } => MessageBody::Sealed {
            node: node.to_string(),
            epoch: epoch.number(),
        },
    };
    Message {
        from: e.src.to_string(),
        to: e.dst.to_string(),
        body,
    }
}

/// One step: `action` taken in `before`, leading to `after`.
pub fn step(number: usize, action: &Action, before: &State, after: &State) -> Step {
    let mut s = Step {
        number,
        actor: String::new(),
        action: "",
        node: None,
        lsn: None,
        message: None,
        description: describe(action, before, after),
    };
    let (actor, kind): (String, &'static str) = match action {
        Action::Write => {
            s.lsn = Some(before.writer.written.next().0);
            (Actor::Writer.to_string(), "write")
        }
        Action::Deliver(e) => {
            s.message = Some(message(e));
            (e.dst.to_string(), "deliver")
        }
        Action::Drop(e) => {
            s.message = Some(message(e));
            (e.dst.to_string(), "drop")
        }
        Action::Flush(n, upto) => {
            s.lsn = Some(upto.0);
            (n.to_string(), "flush")
        }
        Action::Commit(l) => {
            s.lsn = Some(l.0);
            (Actor::Writer.to_string(), "commit")
        }
        Action::LearnCommit(r, l) => {
            s.lsn = Some(l.0);
            (r.to_string(), "learn-commit")
        }
        Action::LearnDurable(r, l) => {
            s.lsn = Some(l.0);
            (r.to_string(), "learn-durable")
        }
        Action::Pull(r, n) => {
            let from = before.replica(*r).applied.next();
            let records: Vec<Record> = records_from(before.node(*n), from).collect();
            s.node = Some(n.to_string());
            s.lsn = Some(from.0);
            s.message = Some(message(&Envelope::records(*n, *r, records)));
            (r.to_string(), "pull")
        }
        Action::CrashNode(n) => (n.to_string(), "crash-node"),
        Action::RestartNode(n) => (n.to_string(), "restart-node"),
        Action::LoseNode(n) => (n.to_string(), "lose-node"),
        Action::AzOutage(az) => (az_name(*az).to_string(), "az-outage"),
        Action::AzRecover(az) => (az_name(*az).to_string(), "az-recover"),
        Action::CrashReplica(r) => (r.to_string(), "crash-replica"),
        Action::RestartReplica(r) => (r.to_string(), "restart-replica"),
        Action::FailOver => (Actor::Writer.to_string(), "fail-over"),
        Action::ZombieWrite => {
            s.lsn = before.zombie.as_ref().map(|z| z.written.next().0);
            ("zombie".to_string(), "zombie-write")
        }
        Action::Read(q) => {
            s.node = Some(format!("{q:?}"));
            s.lsn = Some(after.writer.point.0);
            (Actor::Writer.to_string(), "read")
        }
        Action::Seal(n) => {
            s.node = Some(n.to_string());
            s.lsn = Some(after.writer.point.0);
            (Actor::Writer.to_string(), "seal")
        }
        Action::Follow(r) => (r.to_string(), "follow-epoch"),
    };
    s.actor = actor;
    s.action = kind;
    s
}

/// The structured steps of a path, numbered from 1 like `render::numbered_steps`.
pub fn steps(path: &[(State, Option<Action>)]) -> Vec<Step> {
    path.windows(2)
        .filter_map(|w| {
            let ((before, action), (after, _)) = (&w[0], &w[1]);
            action.as_ref().map(|a| (a, before, after))
        })
        .enumerate()
        .map(|(i, (action, before, after))| step(i + 1, action, before, after))
        .collect()
}
