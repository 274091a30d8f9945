//! Property tests: random workflow "scripts" run against a simulated backend ("world") that
//! resolves commands in random order, with random evictions from the sticky cache (rebuild by
//! replay). Properties:
//!
//! - the history the reducer writes is well formed (contiguous seq, re-encodes byte for byte);
//! - replaying it gives the code the same jobs and results and writes nothing (incremental ==
//!   full replay);
//! - code altered by dropping, inserting or swapping a command is reported as nondeterminism;
//!   any other alteration gives nondeterminism or a clean replay, never an engine bug or panic;
//! - garbage, truncated or bit-flipped events give corrupt history (or, for flips that still
//!   decode, a clean replay or nondeterminism), never a panic.

mod support;

use ostinato_core::{Activation, Error, Event, Reducer, Result, Task, TaskKind};
use proptest::prelude::*;
use proptest::sample::Index;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancelable {
    Activity,
    Timer,
    Child,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Activity(u8),
    Timer(u8),
    SideEffect(u8),
    Patch(u8),
    DeprecatePatch(u8),
    Child(u8),
    Signal(u8),
    /// Cancel the most recent command of this kind that the code still waits for, if any.
    Cancel(Cancelable),
    /// Block until the next activation.
    Await,
}

impl Op {
    /// The identity of a command that is always issued, or `None` for conditional ops.
    fn unconditional(self) -> Option<(u8, u8)> {
        match self {
            Op::Activity(n) => Some((0, n)),
            Op::Timer(_) => Some((1, 0)),
            Op::SideEffect(_) => Some((2, 0)),
            Op::Child(n) => Some((3, n)),
            Op::Signal(n) => Some((4, n)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Complete,
    Fail,
    Cancel,
    ContinueAsNew,
}

#[derive(Debug, Clone)]
struct Script {
    ops: Vec<Op>,
    end: End,
}

fn unconditional_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4).prop_map(Op::Activity),
        (0u8..4).prop_map(Op::Timer),
        (0u8..4).prop_map(Op::SideEffect),
        (0u8..3).prop_map(Op::Child),
        (0u8..3).prop_map(Op::Signal),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => unconditional_op(),
        1 => (0u8..3).prop_map(Op::Patch),
        1 => (0u8..3).prop_map(Op::DeprecatePatch),
        1 => prop_oneof![
            Just(Cancelable::Activity),
            Just(Cancelable::Timer),
            Just(Cancelable::Child)
        ]
        .prop_map(Op::Cancel),
        3 => Just(Op::Await),
    ]
}

fn script() -> impl Strategy<Value = Script> {
    (
        prop::collection::vec(op(), 0..28),
        prop_oneof![
            Just(End::Complete),
            Just(End::Fail),
            Just(End::Cancel),
            Just(End::ContinueAsNew)
        ],
    )
        .prop_map(|(ops, end)| Script { ops, end })
}

/// The workflow code: runs the script, blocking at each `Await`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Driver {
    pc: usize,
    /// Commands the code still waits for, oldest first.
    open: Vec<(u64, Cancelable)>,
    done: bool,
    /// Commands issued by the current activation.
    issued_now: Vec<u64>,
    /// A command was cancelled in the activation that issued it (withdrawn: history has no
    /// trace of it, so changing it can go unnoticed).
    withdrew: bool,
}

impl Driver {
    fn new() -> Self {
        Driver {
            pc: 0,
            open: Vec::new(),
            done: false,
            issued_now: Vec::new(),
            withdrew: false,
        }
    }

    fn activate(
        &mut self,
        script: &Script,
        r: &mut Reducer,
        a: &Activation,
        log: &mut Vec<String>,
    ) -> Result<()> {
        log.push(format!("activation time={}", a.time));
        self.issued_now.clear();
        for job in &a.jobs {
            log.push(format!("  {job:?}"));
            if job.id != 0 {
                self.open.retain(|(id, _)| *id != job.id);
            }
        }
        if self.done {
            return Ok(());
        }
        loop {
            let Some(&op) = script.ops.get(self.pc) else {
                match script.end {
                    End::Complete => r.complete(b"\"ok\"")?,
                    End::Fail => r.fail(br#"{"type":"Boom"}"#)?,
                    End::Cancel => r.cancel()?,
                    End::ContinueAsNew => r.continue_as_new(b"[1]", b"{}")?,
                }
                log.push(format!("{:?}", script.end));
                self.done = true;
                return Ok(());
            };
            self.pc += 1;
            let line = match op {
                Op::Await => return Ok(()),
                Op::Activity(n) => {
                    let id = r.schedule_activity(&format!("act-{n}"), b"[1]", b"{}")?;
                    self.open.push((id, Cancelable::Activity));
                    self.issued_now.push(id);
                    format!("activity {id}")
                }
                Op::Timer(n) => {
                    let id = r.start_timer(i64::from(n) * 1000)?;
                    self.open.push((id, Cancelable::Timer));
                    self.issued_now.push(id);
                    format!("timer {id}")
                }
                Op::SideEffect(n) => {
                    let value = n.to_string();
                    let fresh = (!r.replaying()).then_some(value.as_bytes());
                    let (id, v) = r.side_effect(fresh)?;
                    format!("side effect {id} = {}", v.as_str())
                }
                Op::Patch(n) => format!("patched {}", r.patched(&format!("p{n}"), false)?),
                Op::DeprecatePatch(n) => {
                    format!("deprecated {}", r.patched(&format!("p{n}"), true)?)
                }
                Op::Child(n) => {
                    let options = format!(r#"{{"instance_id":"c{n}"}}"#);
                    let id = r.start_child(&format!("child-{n}"), b"[]", options.as_bytes())?;
                    self.open.push((id, Cancelable::Child));
                    self.issued_now.push(id);
                    format!("child {id}")
                }
                Op::Signal(n) => {
                    let id = r.signal_external(&format!("sig-{n}"), b"1", b"{}")?;
                    format!("signal {id}")
                }
                Op::Cancel(kind) => {
                    let Some(pos) = self.open.iter().rposition(|(_, k)| *k == kind) else {
                        continue;
                    };
                    let (id, _) = self.open.remove(pos);
                    if self.issued_now.contains(&id) {
                        self.withdrew = true;
                    }
                    match kind {
                        Cancelable::Activity => r.cancel_activity(id)?,
                        Cancelable::Timer => r.cancel_timer(id)?,
                        Cancelable::Child => r.cancel_child(id)?,
                    }
                    format!("cancel {id}")
                }
            };
            log.push(line);
        }
    }
}

/// A deterministic random source for the simulated backend.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Debug, Clone, Copy)]
enum Pending {
    Activity(u64),
    Timer(u64),
    Child(u64),
    Signal(u64),
}

/// The backend: resolves pending commands in random order.
struct World {
    rng: Rng,
    time: i64,
    pending: Vec<Pending>,
    cancelled: Vec<Pending>,
}

impl World {
    fn new(seed: u64) -> Self {
        World {
            rng: Rng(seed | 1),
            time: 1_000,
            pending: Vec::new(),
            cancelled: Vec::new(),
        }
    }

    fn ingest(&mut self, tasks: Vec<Task>) {
        for t in tasks {
            let cancel = |w: &mut World, id: u64| {
                if let Some(pos) = w.pending.iter().position(|p| id_of(*p) == id) {
                    let p = w.pending.remove(pos);
                    w.cancelled.push(p);
                }
            };
            match t.kind {
                TaskKind::Activity => self.pending.push(Pending::Activity(t.id)),
                TaskKind::Timer => self.pending.push(Pending::Timer(t.id)),
                TaskKind::StartChild => self.pending.push(Pending::Child(t.id)),
                TaskKind::SignalExternal => self.pending.push(Pending::Signal(t.id)),
                TaskKind::CancelActivity | TaskKind::CancelTimer | TaskKind::CancelChild => {
                    cancel(self, t.id)
                }
                _ => {}
            }
        }
    }

    fn outcome(&mut self, p: Pending) -> String {
        let ok = self.rng.chance(75);
        let n = self.rng.next() % 1000;
        match (p, ok) {
            (Pending::Activity(id), true) => format!(
                r#"{{"kind":"activity_completed","id":{id},"result":{{"n":{n}}},"attempt":1}}"#
            ),
            (Pending::Activity(id), false) => format!(
                r#"{{"kind":"activity_failed","id":{id},"failure":{{"type":"E"}},"attempt":3}}"#
            ),
            (Pending::Timer(id), _) => format!(r#"{{"kind":"timer_fired","id":{id}}}"#),
            (Pending::Child(id), true) => {
                format!(r#"{{"kind":"child_completed","id":{id},"result":{n}}}"#)
            }
            (Pending::Child(id), false) => {
                format!(r#"{{"kind":"child_failed","id":{id},"failure":{{"type":"E"}}}}"#)
            }
            (Pending::Signal(id), true) => {
                format!(r#"{{"kind":"signal_external_completed","id":{id},"failure":null}}"#)
            }
            (Pending::Signal(id), false) => format!(
                r#"{{"kind":"signal_external_completed","id":{id},"failure":{{"type":"NotFound"}}}}"#
            ),
        }
    }

    fn next_batch(&mut self) -> Vec<Vec<u8>> {
        let mut events = Vec::new();
        let mut keep = Vec::new();
        for p in std::mem::take(&mut self.pending) {
            if self.rng.chance(50) {
                let e = self.outcome(p);
                events.push(e);
            } else {
                keep.push(p);
            }
        }
        self.pending = keep;
        // Outcomes of cancelled commands may still arrive (and must produce no job).
        for p in std::mem::take(&mut self.cancelled) {
            if self.rng.chance(40) {
                let e = self.outcome(p);
                events.push(e);
            } else if self.rng.chance(50) {
                self.cancelled.push(p);
            }
        }
        if self.rng.chance(10) {
            events.push(r#"{"kind":"cancel_requested","reason":"user"}"#.to_owned());
        }
        if events.is_empty() || self.rng.chance(15) {
            let n = self.rng.next() % 100;
            events.push(format!(
                r#"{{"kind":"signal_received","name":"s","payload":{n}}}"#
            ));
        }
        self.time += 1 + (self.rng.next() % 10_000) as i64;
        events.into_iter().map(String::into_bytes).collect()
    }
}

fn id_of(p: Pending) -> u64 {
    match p {
        Pending::Activity(id) | Pending::Timer(id) | Pending::Child(id) | Pending::Signal(id) => id,
    }
}

/// Replays `history` from scratch with a fresh driver.
fn replay(script: &Script, history: &[Vec<u8>]) -> Result<(Vec<String>, Reducer, Driver)> {
    let mut r = Reducer::new();
    r.load_history(history)?;
    let mut driver = Driver::new();
    let mut log = Vec::new();
    while let Some(a) = r.next_activation()? {
        driver.activate(script, &mut r, &a, &mut log)?;
        r.finish_activation()?;
    }
    Ok((log, r, driver))
}

struct Run {
    log: Vec<String>,
    history: Vec<Vec<u8>>,
    withdrew: bool,
}

/// Runs the script against the world, evicting and rebuilding the run now and then.
fn run(script: &Script, seed: u64) -> Run {
    let mut world = World::new(seed);
    let mut r = Reducer::new();
    let mut driver = Driver::new();
    let mut log = Vec::new();
    let mut history: Vec<Vec<u8>> = Vec::new();
    let mut first = true;
    while !r.finished() {
        let events = if first {
            vec![
                br#"{"kind":"workflow_started","name":"wf","input":[],"info":{"id":"x"}}"#.to_vec(),
            ]
        } else {
            world.next_batch()
        };
        first = false;
        r.add_new_batch(world.time, &events).expect("add_new_batch");
        let a = r.next_activation().expect("activation").expect("a batch");
        driver
            .activate(script, &mut r, &a, &mut log)
            .expect("the live run never fails");
        r.finish_activation().expect("finish");
        history.extend(r.take_new_events());
        world.ingest(r.take_tasks());
        if !r.finished() && world.rng.chance(25) {
            // Evicted from the cache: rebuild by replay, then carry on with the rebuilt run.
            let (replayed_log, rebuilt, rebuilt_driver) =
                replay(script, &history).expect("rebuild by replay");
            assert_eq!(replayed_log, log);
            assert_eq!(rebuilt_driver, driver);
            r = rebuilt;
            driver = rebuilt_driver;
        }
    }
    Run {
        log,
        history,
        withdrew: driver.withdrew,
    }
}

#[derive(Debug, Clone)]
enum Alteration {
    Drop(Index),
    Insert(Index, Op),
    Swap(Index),
}

/// Applies an alteration that changes the sequence of unconditional commands; `None` when the
/// script offers no place for it.
fn alter(script: &Script, alteration: &Alteration) -> Option<Script> {
    let mut ops = script.ops.clone();
    match alteration {
        Alteration::Drop(i) => {
            let candidates: Vec<usize> = (0..ops.len())
                .filter(|&k| ops[k].unconditional().is_some())
                .collect();
            if candidates.is_empty() {
                return None;
            }
            ops.remove(candidates[i.index(candidates.len())]);
        }
        Alteration::Insert(i, op) => {
            let at = i.index(ops.len() + 1);
            ops.insert(at, *op);
        }
        Alteration::Swap(i) => {
            let candidates: Vec<usize> = (0..ops.len().saturating_sub(1))
                .filter(
                    |&k| match (ops[k].unconditional(), ops[k + 1].unconditional()) {
                        (Some(a), Some(b)) => a != b,
                        _ => false,
                    },
                )
                .collect();
            if candidates.is_empty() {
                return None;
            }
            let k = candidates[i.index(candidates.len())];
            ops.swap(k, k + 1);
        }
    }
    Some(Script {
        ops,
        end: script.end,
    })
}

fn alteration() -> impl Strategy<Value = Alteration> {
    prop_oneof![
        any::<Index>().prop_map(Alteration::Drop),
        (any::<Index>(), unconditional_op()).prop_map(|(i, op)| Alteration::Insert(i, op)),
        any::<Index>().prop_map(Alteration::Swap),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn replay_sees_and_does_what_the_live_run_did(script in script(), seed in any::<u64>()) {
        let live = run(&script, seed);
        for (i, bytes) in live.history.iter().enumerate() {
            let event = Event::decode(bytes, i as u64 + 1).expect("well-formed event");
            prop_assert_eq!(&event.encode(), bytes);
        }
        let (log, mut r, driver) = replay(&script, &live.history).expect("replay");
        prop_assert_eq!(log, live.log);
        prop_assert!(driver.done && r.finished());
        prop_assert!(r.take_new_events().is_empty());
        prop_assert!(r.take_tasks().is_empty());
        prop_assert_eq!(r.history_length(), live.history.len() as u64);
    }

    #[test]
    fn changed_command_sequence_is_nondeterminism(
        script in script(),
        seed in any::<u64>(),
        alteration in alteration(),
    ) {
        let live = run(&script, seed);
        // A command cancelled in the step that issued it left no trace: changing it may go
        // unnoticed (any_change_is_nondeterminism_or_harmless covers those runs).
        if live.withdrew { return Ok(()) }
        let Some(altered) = alter(&script, &alteration) else { return Ok(()) };
        match replay(&altered, &live.history) {
            // The altered code cancels what it added in the same step: no trace, harmless.
            Ok((_, _, driver)) if driver.withdrew => {}
            Err(Error::Nondeterminism(n)) => {
                prop_assert!(n.seq >= 1 && n.seq <= live.history.len() as u64 + 1);
                let names_event = n.message.contains(&format!("#{}", n.seq))
                    || n.message.contains(&format!("#{}", n.seq - 1));
                prop_assert!(names_event, "message does not name the event: {}", n.message);
            }
            other => prop_assert!(false, "altered code replayed as {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn any_change_is_nondeterminism_or_harmless(
        script in script(),
        seed in any::<u64>(),
        at in any::<Index>(),
        replacement in prop::option::of(op()),
    ) {
        let live = run(&script, seed);
        let mut ops = script.ops.clone();
        if ops.is_empty() { return Ok(()) }
        let k = at.index(ops.len());
        match replacement {
            Some(op) => ops[k] = op,
            None => { ops.remove(k); }
        }
        let altered = Script { ops, end: script.end };
        match replay(&altered, &live.history) {
            Ok(_) | Err(Error::Nondeterminism(_)) => {}
            Err(e) => prop_assert!(false, "altered code replayed as {:?}", e),
        }
    }

    #[test]
    fn garbage_is_corrupt_history(events in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..6)) {
        let mut r = Reducer::new();
        match r.load_history(&events) {
            Err(Error::HistoryCorrupt { .. }) => {}
            other => prop_assert!(false, "garbage loaded as {:?}", other),
        }
        prop_assert_eq!(r, Reducer::new());
    }

    #[test]
    fn truncated_event_is_corrupt_history(
        script in script(),
        seed in any::<u64>(),
        which in any::<Index>(),
        cut in any::<Index>(),
    ) {
        let mut history = run(&script, seed).history;
        let k = which.index(history.len());
        let len = history[k].len();
        history[k].truncate(cut.index(len));
        let mut r = Reducer::new();
        match r.load_history(&history) {
            Err(Error::HistoryCorrupt { seq, .. }) => prop_assert_eq!(seq, k as u64 + 1),
            other => prop_assert!(false, "truncated history loaded as {:?}", other),
        }
    }

    #[test]
    fn flipped_byte_never_panics_or_blames_the_engine(
        script in script(),
        seed in any::<u64>(),
        which in any::<Index>(),
        at in any::<Index>(),
        byte in any::<u8>(),
    ) {
        let mut history = run(&script, seed).history;
        let k = which.index(history.len());
        let i = at.index(history[k].len());
        history[k][i] = byte;
        match replay(&script, &history) {
            Ok(_) | Err(Error::HistoryCorrupt { .. }) | Err(Error::Nondeterminism(_)) => {}
            Err(e) => prop_assert!(false, "flipped history replayed as {:?}", e),
        }
    }
}
