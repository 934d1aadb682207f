//! loom model checks of the small concurrent pieces, each with a seeded buggy variant that loom
//! is shown to catch (the failure is asserted, not merely expected).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p aurora-redo-impl --release --test loom`
#![cfg(loom)]

use aurora_redo_impl::disk::{Disk, SimDisk};
use aurora_redo_impl::faults::{FaultConfig, Faults};
use aurora_redo_impl::flusher::persist;
use aurora_redo_impl::output::{Output, ReadBack};
use aurora_redo_impl::retain::{RetainBuffer, RetainBug};
use aurora_redo_impl::segment::{decode, Segment};
use aurora_redo_impl::storage::{StorageInput, StorageNode};
use aurora_redo_impl::sync::{arc_from_box, lock, thread, Arc, AtomicBool, Mutex, Ordering};
use aurora_redo_impl::transport::{Mailbox, MailboxBug, Mailboxes, QuietBug, Ready, Recv};
use aurora_redo_impl::watermark::{
    AllocationBug, AllocationLimit, PublishBug, Published, QuorumBug, SharedQuorum,
};
use aurora_redo_impl::writer::{Writer, WriterInput};
use aurora_redo_impl::{AckPolicy, EngineConfig, ImplBug};
use aurora_redo_model::types::{Envelope, Epoch, Lsn, Msg, NodeId, Record, ReplicaId};

/// Runs the `#[ignore]`d test `name` (a loom model of a seeded bug) in a child process and
/// asserts that loom made it fail; returns the child's output. A child process, because loom
/// cannot unwind cleanly out of some failures (a detected deadlock aborts the process).
fn expect_failure(name: &str) -> String {
    let exe = std::env::current_exe().expect("test binary path");
    let out = std::process::Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .output()
        .expect("run the child test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(name), "the child did not run {name}:\n{text}");
    assert!(
        !out.status.success(),
        "loom explored every interleaving of {name} without catching the seeded bug"
    );
    text
}

fn ack(node: u8, scl: u64) -> WriterInput {
    WriterInput::Deliver(Envelope::ack(NodeId(node), Lsn(scl)))
}

// ---------------------------------------------------------------------------------------------
// 1. The 4-of-6 commit-point tracker: acks handled by two network threads on the shared writer,
//    each publishing the commit point; a client waits for it.

fn commit_tracker(bug: Option<PublishBug>) {
    let mut w = Writer::new(EngineConfig::new(AckPolicy::Memory, 0));
    w.handle(WriterInput::Append { page: 0, value: 1 });
    let writer = Arc::new(Mutex::new(w));
    let committed = Arc::new(Published::with_bug(bug));
    let handles: Vec<_> = [[0u8, 1], [2, 3]]
        .into_iter()
        .map(|nodes| {
            let (writer, committed) = (writer.clone(), committed.clone());
            thread::spawn(move || {
                let point = {
                    let mut w = lock(&writer);
                    for n in nodes {
                        w.handle(ack(n, 1));
                    }
                    w.commit_point()
                };
                committed.raise(point);
            })
        })
        .collect();
    // The client: wait_committed(1) must return (no lost wake-up) and only once committed.
    let seen = committed.wait_for(Lsn(1));
    assert!(seen >= Lsn(1));
    for h in handles {
        h.join().unwrap();
    }
    let truth = lock(&writer).commit_point();
    assert_eq!(truth, Lsn(1), "four acks of 1 commit 1");
    assert_eq!(
        committed.get(),
        truth,
        "the published commit point went backwards"
    );
}

#[test]
fn commit_tracker_is_correct() {
    loom::model(|| commit_tracker(None));
}

#[test]
#[ignore = "a seeded bug: run in a child process by `commit_tracker_racy_store_is_caught`"]
fn commit_tracker_racy_store() {
    loom::model(|| commit_tracker(Some(PublishBug::Store)));
}

#[test]
fn commit_tracker_racy_store_is_caught() {
    let msg = expect_failure("commit_tracker_racy_store");
    assert!(
        msg.contains("went backwards") || msg.contains("deadlock"),
        "{msg}"
    );
}

#[test]
#[ignore = "a seeded bug: run in a child process by `commit_tracker_lost_wakeup_is_caught`"]
fn commit_tracker_lost_wakeup() {
    loom::model(|| commit_tracker(Some(PublishBug::NotifyUnlocked)));
}

#[test]
fn commit_tracker_lost_wakeup_is_caught() {
    let msg = expect_failure("commit_tracker_lost_wakeup");
    assert!(msg.contains("deadlock"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// 2. The durable watermark: flusher threads report synced LSNs concurrently; one node's two
//    reports race (a reordered pair). The point must never drop.

fn durable_watermark(bug: Option<QuorumBug>) {
    let q = Arc::new(SharedQuorum::with_bug(bug));
    for n in 0..3 {
        q.report(NodeId(n), Lsn(5));
    }
    let t1 = {
        let q = q.clone();
        thread::spawn(move || {
            q.report(NodeId(3), Lsn(4));
        })
    };
    let t2 = {
        let q = q.clone();
        thread::spawn(move || {
            q.report(NodeId(3), Lsn(2));
        })
    };
    let first = q.point();
    let second = q.point();
    assert!(
        second >= first,
        "durable watermark dropped from {first} to {second}"
    );
    t1.join().unwrap();
    t2.join().unwrap();
    assert_eq!(
        q.point(),
        Lsn(4),
        "durable watermark is not the 4th-highest max"
    );
}

#[test]
fn durable_watermark_is_correct() {
    loom::model(|| durable_watermark(None));
}

#[test]
#[ignore = "a seeded bug: run in a child process by `durable_watermark_latest_not_max_is_caught`"]
fn durable_watermark_latest_not_max() {
    loom::model(|| durable_watermark(Some(QuorumBug::LatestNotMax)));
}

#[test]
fn durable_watermark_latest_not_max_is_caught() {
    let msg = expect_failure("durable_watermark_latest_not_max");
    assert!(msg.contains("durable watermark"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// 3. The retain/discard buffer: the apply path keeps records while the flush-notice path raises
//    the durable LSN. Nothing durable may stay retained; nothing above it may go.

fn retain_buffer(bug: Option<RetainBug>) {
    let buf = Arc::new(RetainBuffer::with_bug(bug));
    let rec = |l| Record {
        lsn: Lsn(l),
        page: 0,
        value: l,
        epoch: Epoch::FIRST,
    };
    let apply = {
        let buf = buf.clone();
        thread::spawn(move || {
            buf.keep(rec(1));
            buf.keep(rec(2));
        })
    };
    let discarded = buf.discard_through(Lsn(1));
    assert!(
        discarded.iter().all(|l| *l <= Lsn(1)),
        "discarded above durable: {discarded:?}"
    );
    apply.join().unwrap();
    let durable = buf.durable();
    let kept = buf.retained();
    assert!(
        kept.iter().all(|l| *l > durable),
        "durable record still retained: {kept:?} <= {durable}"
    );
    assert_eq!(
        kept,
        vec![Lsn(2)],
        "record 2 is not durable and must be retained"
    );
}

#[test]
fn retain_buffer_is_correct() {
    loom::model(|| retain_buffer(None));
}

#[test]
#[ignore = "a seeded bug: run in a child process by `retain_buffer_check_then_insert_is_caught`"]
fn retain_buffer_check_then_insert() {
    loom::model(|| retain_buffer(Some(RetainBug::CheckThenInsert)));
}

#[test]
fn retain_buffer_check_then_insert_is_caught() {
    let msg = expect_failure("retain_buffer_check_then_insert");
    assert!(msg.contains("durable record still retained"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// 4. The memory-to-disk flush handoff: the node thread hands a flush to the flusher thread and
//    handles its completion; an observer checks that the record is always in memory or on disk,
//    and the node checks that it never announces `Flushed` before the sync.

fn flush_handoff(bug: Option<ImplBug>) {
    let disk: Arc<dyn Disk> = arc_from_box(Box::new(SimDisk::new()));
    let (segment, _) = Segment::open(disk.clone()).unwrap();
    let record = Record {
        lsn: Lsn(1),
        page: 4,
        value: 44,
        epoch: Epoch::FIRST,
    };
    let mut sm = StorageNode::new(
        NodeId(0),
        EngineConfig::new(AckPolicy::Memory, 1).with_bug(bug),
    );
    let out = sm.handle(StorageInput::Deliver(vec![Envelope::append(
        NodeId(0),
        record,
    )]));
    let job = out
        .into_iter()
        .find_map(|o| match o {
            Output::Persist(r) => Some(r),
            _ => None,
        })
        .expect("the node hands the record to the flusher");
    let node = Arc::new(Mutex::new(sm));
    let inbox: Arc<Mailbox<Lsn>> = Arc::new(Mailbox::new());
    let notify_first = bug == Some(ImplBug::FlushNotifyBeforeFsync);

    let flusher = {
        let inbox = inbox.clone();
        thread::spawn(move || {
            persist(
                &segment,
                &job,
                notify_first,
                || true,
                |_| {},
                |upto| inbox.push(upto),
            )
            .unwrap();
        })
    };
    let node_thread = {
        let (node, inbox, disk) = (node.clone(), inbox.clone(), disk.clone());
        thread::spawn(move || {
            let Recv::Items(done) = inbox.recv(1) else {
                unreachable!("never ticked or closed")
            };
            let out = lock(&node).handle(StorageInput::FlushDone { upto: done[0] });
            for o in out {
                if let Output::Send(Envelope {
                    msg: Msg::Flushed { lsn, .. },
                    ..
                }) = o
                {
                    let bytes = disk.read_all().unwrap();
                    let synced = decode(&bytes[..disk.synced_len() as usize])
                        .unwrap()
                        .prefix();
                    assert!(
                        synced >= lsn,
                        "Flushed {lsn} announced before the sync (synced {synced})"
                    );
                }
            }
        })
    };
    // The observer: memory first, then disk (the disk only grows here).
    let in_memory = lock(&node).in_memory(Lsn(1));
    let on_disk = decode(&disk.read_all().unwrap())
        .unwrap()
        .records
        .contains(&record);
    assert!(
        in_memory || on_disk,
        "record 1 is in neither memory nor on disk"
    );
    flusher.join().unwrap();
    node_thread.join().unwrap();
    assert_eq!(lock(&node).flushed(), Lsn(1));
}

#[test]
fn flush_handoff_is_correct() {
    loom::model(|| flush_handoff(None));
}

#[test]
#[ignore = "a seeded bug: run in a child process by `flush_notify_before_fsync_is_caught`"]
fn flush_notify_before_fsync() {
    loom::model(|| flush_handoff(Some(ImplBug::FlushNotifyBeforeFsync)));
}

#[test]
fn flush_notify_before_fsync_is_caught() {
    let msg = expect_failure("flush_notify_before_fsync");
    assert!(msg.contains("before the sync"), "{msg}");
}

#[test]
#[ignore = "a seeded bug: run in a child process by `evict_before_flush_is_caught`"]
fn evict_before_flush() {
    loom::model(|| flush_handoff(Some(ImplBug::EvictBeforeFlush)));
}

#[test]
fn evict_before_flush_is_caught() {
    let msg = expect_failure("evict_before_flush");
    assert!(msg.contains("neither memory nor on disk"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// 5. The read-back handoff: flushed records are freed from the node's memory and a pull of them
//    is answered from the segment. The node thread hands the flush, and any read-back a pull
//    needs, to the flusher thread, which serves them in order; a pull arrives at any moment. The
//    answer must carry the record the node acknowledged, wherever it is by then.

/// What the node thread consumes in this model.
enum NodeIn {
    Pull,
    FlushDone(Lsn),
    ReadDone(ReadBack, Vec<Record>),
}

/// The flusher's jobs in this model, as the engine's flusher takes them.
enum Job {
    Persist(Vec<Record>),
    Read(ReadBack),
}

fn read_back_handoff(bug: Option<ImplBug>) {
    let disk: Arc<dyn Disk> = arc_from_box(Box::new(SimDisk::new()));
    let (segment, _) = Segment::open(disk).unwrap();
    let segment = Arc::new(segment);
    let record = Record {
        lsn: Lsn(1),
        page: 4,
        value: 44,
        epoch: Epoch::FIRST,
    };
    let mut cfg = EngineConfig::new(AckPolicy::Memory, 1).with_bug(bug);
    cfg.cache_records = 0;
    let mut sm = StorageNode::new(NodeId(0), cfg);
    let out = sm.handle(StorageInput::Deliver(vec![Envelope::append(
        NodeId(0),
        record,
    )]));
    let jobs: Arc<Mailbox<Job>> = Arc::new(Mailbox::new());
    let inbox: Arc<Mailbox<NodeIn>> = Arc::new(Mailbox::new());
    // The node thread's side of a step: hand disk work to the flusher; return the pull's answer.
    let route = |out: Vec<Output>, jobs: &Mailbox<Job>| -> Option<Vec<Record>> {
        let mut answer = None;
        for o in out {
            match o {
                Output::Persist(r) => jobs.push(Job::Persist(r)),
                Output::ReadBack(read) => jobs.push(Job::Read(read)),
                Output::Send(Envelope {
                    msg: Msg::Records { records, .. },
                    ..
                }) => answer = Some(records),
                _ => {}
            }
        }
        answer
    };
    assert!(route(out, &jobs).is_none());

    let flusher = {
        let (jobs, inbox, segment) = (jobs.clone(), inbox.clone(), segment.clone());
        thread::spawn(move || loop {
            let Recv::Items(batch) = jobs.recv(1) else {
                return;
            };
            for job in batch {
                match job {
                    Job::Persist(records) => {
                        persist(
                            &segment,
                            &records,
                            false,
                            || true,
                            |_| {},
                            |upto| inbox.push(NodeIn::FlushDone(upto)),
                        )
                        .unwrap();
                    }
                    Job::Read(read) => {
                        let records = segment.read(read.from, read.upto).unwrap();
                        inbox.push(NodeIn::ReadDone(read, records));
                    }
                }
            }
        })
    };
    let node_thread = {
        let (jobs, inbox) = (jobs.clone(), inbox.clone());
        thread::spawn(move || {
            let (mut answer, mut flushed) = (None, false);
            while answer.is_none() || !flushed {
                let Recv::Items(events) = inbox.recv(1) else {
                    unreachable!("never ticked or closed")
                };
                for ev in events {
                    let input = match ev {
                        NodeIn::Pull => StorageInput::Deliver(vec![Envelope::pull(
                            ReplicaId(0),
                            NodeId(0),
                            Lsn(1),
                        )]),
                        NodeIn::FlushDone(upto) => {
                            flushed = true;
                            StorageInput::FlushDone { upto }
                        }
                        NodeIn::ReadDone(read, records) => StorageInput::ReadDone {
                            to: read.to,
                            from: read.from,
                            records,
                        },
                    };
                    if let Some(records) = route(sm.handle(input), &jobs) {
                        answer = Some(records);
                    }
                }
            }
            jobs.close();
            (answer.unwrap_or_default(), sm.memory_len())
        })
    };
    // The replica's pull, at any moment.
    inbox.push(NodeIn::Pull);
    let (answer, memory) = node_thread.join().unwrap();
    flusher.join().unwrap();
    assert!(
        answer.contains(&record),
        "the pull's answer misses record 1, which the node acknowledged: {answer:?}"
    );
    assert_eq!(memory, 0, "the flushed record is freed");
}

#[test]
fn read_back_handoff_is_correct() {
    loom::model(|| read_back_handoff(None));
}

#[test]
#[ignore = "a seeded bug: run in a child process by `free_before_flush_is_caught`"]
fn free_before_flush() {
    loom::model(|| read_back_handoff(Some(ImplBug::FreeBeforeFlush)));
}

#[test]
fn free_before_flush_is_caught() {
    let msg = expect_failure("free_before_flush");
    assert!(msg.contains("misses record 1"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// 6. Turns: the engine runs a node's (or the writer's) step on whichever thread sent it its
//    messages, when the receiver is idle. Two senders each queue a message quietly and take the
//    receiver's turn if they can, while the receiver's own thread takes turns too. Every message
//    must be handled exactly once, by one step at a time; none may be stranded in the queue with
//    nobody to run it.

fn turns(bug: Option<MailboxBug>) {
    let mailbox: Arc<Mailbox<u8>> = Arc::new(Mailbox::with_bug(bug));
    let handled = Arc::new(Mutex::new(Vec::new()));
    let in_step = Arc::new(AtomicBool::new(false));
    let step = {
        let (handled, in_step) = (handled.clone(), in_step.clone());
        move |items: Vec<u8>| {
            assert!(
                !in_step.swap(true, Ordering::SeqCst),
                "two steps of one receiver at once"
            );
            lock(&handled).extend(items);
            in_step.store(false, Ordering::SeqCst);
        }
    };
    let receiver = {
        let (mailbox, step) = (mailbox.clone(), step.clone());
        thread::spawn(move || loop {
            match mailbox.turn(8) {
                Recv::Closed => return,
                Recv::Tick => {}
                Recv::Items(items) => step(items),
            }
            let _ = mailbox.finish();
        })
    };
    let senders: Vec<_> = [1u8, 2]
        .into_iter()
        .map(|item| {
            let (mailbox, step) = (mailbox.clone(), step.clone());
            thread::spawn(move || {
                mailbox.push_all_quiet([(item, None)]);
                // As the engine's `run_here`: take turns while more is queued.
                while let Some(true) = mailbox.run_turn(8, true, step.clone()) {}
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    mailbox.close();
    receiver.join().unwrap();
    let mut handled = lock(&handled).clone();
    handled.sort();
    assert_eq!(
        handled,
        vec![1, 2],
        "a message was stranded in the queue or handled twice"
    );
}

#[test]
fn turns_are_correct() {
    loom::model(|| turns(None));
}

#[test]
#[ignore = "a seeded bug: run in a child process by `turns_finish_blind_is_caught`"]
fn turns_finish_blind() {
    loom::model(|| turns(Some(MailboxBug::FinishBlind)));
}

#[test]
fn turns_finish_blind_is_caught() {
    let msg = expect_failure("turns_finish_blind");
    assert!(msg.contains("stranded"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// 7. The quiet count behind loss repair: the engine counts messages queued for the writer and
//    the nodes until the steps that take them have queued what they send; when the count drops
//    to zero with the commit short, something was lost and the writer re-sends at once. A node
//    step (run by one thread) answers an append with an ack, which another thread's writer step
//    takes. "Quiet" may only be reported when nothing counted is queued: a false quiet while the
//    ack is on its way would be a repair for nothing, and a count that never drops to zero a
//    repair never made.

fn quiet_count(bug: Option<QuietBug>) {
    let net = Arc::new(Mailboxes::with_bug(
        0,
        Faults::new(FaultConfig::none()),
        bug,
    ));
    let quiet_seen = Arc::new(Mutex::new(Vec::new()));
    let mut ready = Ready::default();
    net.send(vec![Envelope::append(NodeId(0), rec1())], &mut ready);
    // The node's step, on this thread: it takes the append and acks it.
    let node = {
        let (net, quiet_seen) = (net.clone(), quiet_seen.clone());
        thread::spawn(move || {
            let mut ready = Ready::default();
            let taken = net.nodes[0].try_turn(8).map_or(0, |items| items.len());
            if taken > 0 {
                let ack = Envelope::ack(NodeId(0), Lsn(1));
                if net.step_done(taken, vec![ack], &mut ready) {
                    let queued = net.writer.len() + net.nodes[0].len();
                    lock(&quiet_seen).push(queued);
                }
                let _ = net.nodes[0].finish();
            }
        })
    };
    // The writer's step, on another thread, whenever the ack is there.
    let writer = {
        let (net, quiet_seen) = (net.clone(), quiet_seen.clone());
        thread::spawn(move || {
            let mut ready = Ready::default();
            if let Some(items) = net.writer.try_turn(8) {
                if net.step_done(items.len(), Vec::new(), &mut ready) {
                    let queued = net.writer.len() + net.nodes[0].len();
                    lock(&quiet_seen).push(queued);
                }
                let _ = net.writer.finish();
            }
        })
    };
    node.join().unwrap();
    writer.join().unwrap();
    // What the writer thread missed (it came too early), taken now.
    if let Some(items) = net.writer.try_turn(8) {
        let mut ready = Ready::default();
        if net.step_done(items.len(), Vec::new(), &mut ready) {
            lock(&quiet_seen).push(net.writer.len());
        }
        let _ = net.writer.finish();
    }
    let seen = lock(&quiet_seen).clone();
    assert!(
        seen.iter().all(|&q| q == 0),
        "quiet reported with {seen:?} messages still queued"
    );
    assert_eq!(
        seen.len(),
        1,
        "quiet reported {} times, not once",
        seen.len()
    );
}

fn rec1() -> Record {
    Record {
        lsn: Lsn(1),
        page: 0,
        value: 1,
        epoch: Epoch::FIRST,
    }
}

#[test]
fn quiet_count_is_correct() {
    loom::model(|| quiet_count(None));
}

#[test]
#[ignore = "a seeded bug: run in a child process by `quiet_count_settle_first_is_caught`"]
fn quiet_count_settle_first() {
    loom::model(|| quiet_count(Some(QuietBug::SettleFirst)));
}

#[test]
fn quiet_count_settle_first_is_caught() {
    let msg = expect_failure("quiet_count_settle_first");
    assert!(msg.contains("quiet reported"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// The LSN allocation limit: a client appends two records one at a time, each admitted against
// the volume durable point with a limit of 1; four flushers' worth of reports make each record
// durable once it exists. Admission must never let the client run more than the limit ahead of
// the durable point, and must never wait for what only its own append can bring.

fn allocation_limit(bug: Option<AllocationBug>) {
    let durable = Arc::new(SharedQuorum::new());
    let appended = Arc::new(Published::new());
    let flusher = {
        let (durable, appended) = (durable.clone(), appended.clone());
        thread::spawn(move || {
            for lsn in 1..=2 {
                appended.wait_for(Lsn(lsn));
                for node in 0..4 {
                    durable.report(NodeId(node), Lsn(lsn));
                }
            }
        })
    };
    let gate = AllocationLimit::with_bug(1, bug);
    for created in 0..2 {
        gate.admit(created, 1, &durable);
        assert!(
            created + 1 <= durable.point().0 + 1,
            "record {} created with the durable point at {}",
            created + 1,
            durable.point()
        );
        appended.raise(Lsn(created + 1));
    }
    flusher.join().unwrap();
}

#[test]
fn allocation_limit_is_correct() {
    loom::model(|| allocation_limit(None));
}

#[test]
#[ignore = "a seeded bug: run in a child process by `allocation_limit_wait_for_own_is_caught`"]
fn allocation_limit_wait_for_own() {
    loom::model(|| allocation_limit(Some(AllocationBug::WaitForOwn)));
}

#[test]
fn allocation_limit_wait_for_own_is_caught() {
    let msg = expect_failure("allocation_limit_wait_for_own");
    assert!(msg.contains("deadlock"), "{msg}");
}
