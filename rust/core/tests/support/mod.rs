//! Test helpers: a history builder, inbox-event constructors, and a driver that runs a test
//! "workflow" against the reducer twice — incrementally (one new batch per activation) and as a
//! full replay of the history the first run produced.

#![allow(dead_code)] // each test binary uses a different subset

use ostinato_core::{Activation, Error, Event, EventBody, Payload, Reducer, Result, Task};

pub fn p(json: &str) -> Payload {
    Payload::from_json(json.as_bytes()).expect("test payloads are valid JSON")
}

/// Writes recorded histories; ids are handed out like the reducer does (1, 2, 3...).
#[derive(Default)]
pub struct HistoryBuilder {
    events: Vec<Event>,
    next_id: u64,
}

impl HistoryBuilder {
    pub fn new() -> Self {
        HistoryBuilder {
            events: Vec::new(),
            next_id: 1,
        }
    }
    fn push(&mut self, body: EventBody) -> &mut Self {
        let seq = self.events.len() as u64 + 1;
        self.events.push(Event { seq, body });
        self
    }
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }
    pub fn task(&mut self, time: i64) -> &mut Self {
        self.push(EventBody::TaskStarted { time })
    }
    pub fn workflow_started(&mut self, name: &str, input: &str) -> &mut Self {
        self.push(EventBody::WorkflowStarted {
            name: name.into(),
            input: p(input),
            info: p("{}"),
        })
    }
    pub fn activity_scheduled(&mut self, name: &str, input: &str) -> &mut Self {
        let id = self.id();
        self.push(EventBody::ActivityScheduled {
            id,
            name: name.into(),
            input: p(input),
            options: p("{}"),
        })
    }
    pub fn external_cancel_requested(&mut self, instance_id: &str, reason: &str) -> &mut Self {
        let id = self.id();
        self.push(EventBody::ExternalCancelRequested {
            id,
            options: p(&format!("{{\"instance_id\":\"{instance_id}\"}}")),
            reason: reason.into(),
        })
    }
    /// An `activity_scheduled` with id `id`: the ids before it were withdrawn.
    pub fn activity_scheduled_with_id(&mut self, id: u64, name: &str, input: &str) -> &mut Self {
        self.next_id = id + 1;
        self.push(EventBody::ActivityScheduled {
            id,
            name: name.into(),
            input: p(input),
            options: p("{}"),
        })
    }
    pub fn activity_completed(&mut self, id: u64, result: &str) -> &mut Self {
        self.push(EventBody::ActivityCompleted {
            id,
            result: p(result),
            attempt: 1,
        })
    }
    pub fn activity_failed(&mut self, id: u64, failure: &str) -> &mut Self {
        self.push(EventBody::ActivityFailed {
            id,
            failure: p(failure),
            attempt: 3,
        })
    }
    pub fn activity_cancel_requested(&mut self, id: u64) -> &mut Self {
        self.push(EventBody::ActivityCancelRequested { id })
    }
    pub fn timer_started(&mut self, fire_at: i64) -> &mut Self {
        let id = self.id();
        self.push(EventBody::TimerStarted { id, fire_at })
    }
    pub fn timer_fired(&mut self, id: u64) -> &mut Self {
        self.push(EventBody::TimerFired { id })
    }
    pub fn timer_canceled(&mut self, id: u64) -> &mut Self {
        self.push(EventBody::TimerCanceled { id })
    }
    pub fn signal_received(&mut self, name: &str, payload: &str) -> &mut Self {
        self.push(EventBody::SignalReceived {
            name: name.into(),
            payload: p(payload),
        })
    }
    pub fn side_effect_recorded(&mut self, value: &str) -> &mut Self {
        let id = self.id();
        self.push(EventBody::SideEffectRecorded {
            id,
            value: p(value),
        })
    }
    pub fn marker_recorded(&mut self, change_id: &str) -> &mut Self {
        let id = self.id();
        self.push(EventBody::MarkerRecorded {
            id,
            name: change_id.into(),
        })
    }
    pub fn child_scheduled(&mut self, name: &str, instance_id: &str) -> &mut Self {
        let id = self.id();
        self.push(EventBody::ChildScheduled {
            id,
            name: name.into(),
            input: p("[]"),
            options: p(&format!("{{\"instance_id\":\"{instance_id}\"}}")),
        })
    }
    pub fn child_completed(&mut self, id: u64, result: &str) -> &mut Self {
        self.push(EventBody::ChildCompleted {
            id,
            result: p(result),
        })
    }
    pub fn child_cancel_requested(&mut self, id: u64) -> &mut Self {
        self.push(EventBody::ChildCancelRequested { id })
    }
    pub fn signal_external_sent(&mut self, name: &str) -> &mut Self {
        let id = self.id();
        self.push(EventBody::SignalExternalSent {
            id,
            name: name.into(),
            payload: p("1"),
            options: p("{\"instance_id\":\"other\"}"),
        })
    }
    pub fn signal_external_completed(&mut self, id: u64, failure: Option<&str>) -> &mut Self {
        self.push(EventBody::SignalExternalCompleted {
            id,
            failure: failure.map(p),
        })
    }
    pub fn cancel_requested(&mut self, reason: &str) -> &mut Self {
        self.push(EventBody::CancelRequested {
            reason: reason.into(),
        })
    }
    pub fn timed_out(&mut self) -> &mut Self {
        self.push(EventBody::TimedOut)
    }
    pub fn workflow_completed(&mut self, result: &str) -> &mut Self {
        self.push(EventBody::WorkflowCompleted { result: p(result) })
    }
    pub fn workflow_failed(&mut self, failure: &str) -> &mut Self {
        self.push(EventBody::WorkflowFailed {
            failure: p(failure),
        })
    }
    pub fn workflow_canceled(&mut self) -> &mut Self {
        self.push(EventBody::WorkflowCanceled)
    }
    pub fn workflow_continued_as_new(&mut self, input: &str) -> &mut Self {
        self.push(EventBody::WorkflowContinuedAsNew {
            input: p(input),
            options: p("{}"),
        })
    }
    pub fn build(&self) -> Vec<Vec<u8>> {
        self.events.iter().map(Event::encode).collect()
    }
    /// The inbox of every batch (inbound events without seq), as the backend delivered them.
    pub fn inboxes(&self) -> Vec<(i64, Vec<Vec<u8>>)> {
        let mut out: Vec<(i64, Vec<Vec<u8>>)> = Vec::new();
        for ev in &self.events {
            match &ev.body {
                EventBody::TaskStarted { time } => out.push((*time, Vec::new())),
                body if body.kind().class() == ostinato_core::EventClass::Inbound => {
                    out.last_mut()
                        .expect("history starts with a task")
                        .1
                        .push(strip_seq(&ev.encode()));
                }
                _ => {}
            }
        }
        out
    }
}

/// The inbox form of an encoded event.
pub fn strip_seq(bytes: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(bytes).unwrap();
    let rest = &text[text.find(',').unwrap() + 1..];
    format!("{{{rest}").into_bytes()
}

/// Inbox events (no seq) for hand-written batches.
pub mod inbox {
    pub fn workflow_started(name: &str) -> Vec<u8> {
        format!(r#"{{"kind":"workflow_started","name":"{name}","input":[],"info":{{}}}}"#)
            .into_bytes()
    }
    pub fn activity_completed(id: u64, result: &str) -> Vec<u8> {
        format!(r#"{{"kind":"activity_completed","id":{id},"result":{result},"attempt":1}}"#)
            .into_bytes()
    }
    pub fn timer_fired(id: u64) -> Vec<u8> {
        format!(r#"{{"kind":"timer_fired","id":{id}}}"#).into_bytes()
    }
    pub fn signal(name: &str, payload: &str) -> Vec<u8> {
        format!(r#"{{"kind":"signal_received","name":"{name}","payload":{payload}}}"#).into_bytes()
    }
    pub fn child_completed(id: u64, result: &str) -> Vec<u8> {
        format!(r#"{{"kind":"child_completed","id":{id},"result":{result}}}"#).into_bytes()
    }
}

/// A test workflow: reacts to an activation by issuing commands, logging what it did.
pub trait Workflow {
    fn activate(&mut self, r: &mut Reducer, a: &Activation, log: &mut Vec<String>) -> Result<()>;
}

impl<F> Workflow for F
where
    F: FnMut(&mut Reducer, &Activation, &mut Vec<String>) -> Result<()>,
{
    fn activate(&mut self, r: &mut Reducer, a: &Activation, log: &mut Vec<String>) -> Result<()> {
        self(r, a, log)
    }
}

/// What a run looked like from the workflow code's side: every job it saw and everything it
/// logged, activation by activation (`replaying` left out: it is the one thing that differs).
pub type Trace = Vec<String>;

fn log_activation(a: &Activation, log: &mut Trace) {
    log.push(format!("activation time={}", a.time));
    for job in &a.jobs {
        log.push(format!("  {job:?}"));
    }
}

/// Result of an incremental run.
pub struct Incremental {
    pub trace: Trace,
    pub history: Vec<Vec<u8>>,
    pub tasks: Vec<Task>,
    pub reducer: Reducer,
}

/// Feeds `inboxes` one batch per activation, like a worker with a sticky cache.
pub fn run_incremental(
    wf: &mut dyn Workflow,
    inboxes: &[(i64, Vec<Vec<u8>>)],
) -> Result<Incremental> {
    let mut r = Reducer::new();
    let mut trace = Trace::new();
    let mut history = Vec::new();
    let mut tasks = Vec::new();
    for (time, events) in inboxes {
        r.add_new_batch(*time, events)?;
        let a = r.next_activation()?.expect("a new batch is queued");
        assert!(!a.replaying && !r.replaying());
        log_activation(&a, &mut trace);
        wf.activate(&mut r, &a, &mut trace)?;
        r.finish_activation()?;
        assert!(r.next_activation()?.is_none());
        history.extend(r.take_new_events());
        tasks.extend(r.take_tasks());
        assert_eq!(r.history_length(), history.len() as u64);
    }
    Ok(Incremental {
        trace,
        history,
        tasks,
        reducer: r,
    })
}

/// Loads `history` and replays every batch.
pub fn run_replay(wf: &mut dyn Workflow, history: &[Vec<u8>]) -> Result<(Trace, Reducer)> {
    let mut r = Reducer::new();
    r.load_history(history)?;
    let mut trace = Trace::new();
    while let Some(a) = r.next_activation()? {
        assert!(a.replaying && r.replaying());
        log_activation(&a, &mut trace);
        wf.activate(&mut r, &a, &mut trace)?;
        r.finish_activation()?;
    }
    assert!(!r.replaying());
    Ok((trace, r))
}

/// Runs a scenario both ways: the incremental run must write exactly `expected` and the replay
/// must see and do the same things without writing anything.
pub fn scenario<W: Workflow>(
    make: impl Fn() -> W,
    expected: &HistoryBuilder,
) -> (Incremental, Trace) {
    let expected_history = expected.build();
    let inc = run_incremental(&mut make(), &expected.inboxes()).expect("incremental run");
    assert_eq!(
        as_text(&inc.history),
        as_text(&expected_history),
        "incremental run wrote a different history"
    );
    let (trace, mut replayed) = run_replay(&mut make(), &expected_history).expect("replay");
    assert_eq!(trace, inc.trace, "replay saw or did something else");
    assert!(replayed.take_new_events().is_empty(), "replay wrote events");
    assert!(replayed.take_tasks().is_empty(), "replay produced tasks");
    assert_eq!(replayed.history_length(), inc.reducer.history_length());
    assert_eq!(replayed.finished(), inc.reducer.finished());
    (inc, trace)
}

pub fn as_text(events: &[Vec<u8>]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect()
}

/// Runs `op` and checks that it failed and left the reducer exactly as it was.
pub fn fails_unchanged<T: std::fmt::Debug>(
    r: &mut Reducer,
    op: impl FnOnce(&mut Reducer) -> Result<T>,
) -> Error {
    let before = r.clone();
    let result = op(r);
    assert_eq!(*r, before, "a failing call changed the reducer");
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}
