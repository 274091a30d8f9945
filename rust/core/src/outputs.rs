//! What the reducer hands out: activations with their jobs, and tasks for the backend.

use crate::event::{Event, EventBody, EventKind};
use crate::payload::Payload;

/// One inbound event delivered to the workflow code.
///
/// Fields by kind (unused ones are `0` / empty / `None`):
///
/// | kind | fields |
/// |---|---|
/// | `workflow_started` | `name`, `payload` = input, `info` |
/// | `activity_completed` | `id`, `payload` = result, `attempt` |
/// | `activity_failed` | `id`, `payload` = failure, `attempt` |
/// | `timer_fired` | `id` |
/// | `signal_received` | `name`, `payload` |
/// | `child_completed` | `id`, `payload` = result |
/// | `child_failed` | `id`, `payload` = failure |
/// | `signal_external_completed` | `id`, `payload` = failure, `None` when delivered |
/// | `cancel_requested` | `name` = reason, `payload` = reason as a JSON string |
/// | `timed_out` | — |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The event kind.
    pub kind: EventKind,
    /// The event's sequence number.
    pub seq: u64,
    /// Command id, 0 when the kind has none.
    pub id: u64,
    /// Workflow name, signal name or cancel reason.
    pub name: String,
    /// The event's main payload.
    pub payload: Option<Payload>,
    /// Activity attempt, 0 when the kind has none.
    pub attempt: u32,
    /// `workflow_started` info.
    pub info: Option<Payload>,
}

impl Job {
    /// The job for an inbound event.
    pub(crate) fn from_event(event: &Event) -> Job {
        let mut job = Job {
            kind: event.body.kind(),
            seq: event.seq,
            id: event.body.command_id().unwrap_or(0),
            name: String::new(),
            payload: None,
            attempt: 0,
            info: None,
        };
        use EventBody as B;
        match &event.body {
            B::WorkflowStarted { name, input, info } => {
                job.name.clone_from(name);
                job.payload = Some(input.clone());
                job.info = Some(info.clone());
            }
            B::ActivityCompleted {
                result: p, attempt, ..
            }
            | B::ActivityFailed {
                failure: p,
                attempt,
                ..
            } => {
                job.payload = Some(p.clone());
                job.attempt = *attempt;
            }
            B::SignalReceived { name, payload } => {
                job.name.clone_from(name);
                job.payload = Some(payload.clone());
            }
            B::ChildCompleted { result: p, .. } | B::ChildFailed { failure: p, .. } => {
                job.payload = Some(p.clone());
            }
            B::SignalExternalCompleted { failure, .. } => job.payload.clone_from(failure),
            B::CancelRequested { reason } => {
                job.payload = Some(Payload::json_string(reason));
                job.name.clone_from(reason);
            }
            _ => {}
        }
        job
    }
}

/// A batch of inbound events to run the workflow code against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The batch's `task_started` time (microseconds since the epoch): `workflow.now()`.
    pub time: i64,
    /// True for a batch loaded from history.
    pub replaying: bool,
    /// One job per inbound event that still matters, in history order.
    pub jobs: Vec<Job>,
}

/// The kind of a [`Task`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// Schedule an activity task.
    Activity,
    /// Cancel a running activity.
    CancelActivity,
    /// Deliver `timer_fired` at `time`.
    Timer,
    /// Drop a pending timer.
    CancelTimer,
    /// Start a child workflow.
    StartChild,
    /// Cancel a child workflow.
    CancelChild,
    /// Deliver a signal to another instance.
    SignalExternal,
    /// Deliver a cancel request to another instance.
    CancelExternal,
    /// The run completed.
    Complete,
    /// The run failed.
    Fail,
    /// The run was cancelled.
    Canceled,
    /// The run continues as a new run.
    ContinueAsNew,
}

impl TaskKind {
    /// The name Python sees.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Activity => "activity",
            TaskKind::CancelActivity => "cancel_activity",
            TaskKind::Timer => "timer",
            TaskKind::CancelTimer => "cancel_timer",
            TaskKind::StartChild => "start_child",
            TaskKind::CancelChild => "cancel_child",
            TaskKind::SignalExternal => "signal_external",
            TaskKind::CancelExternal => "cancel_external",
            TaskKind::Complete => "complete",
            TaskKind::Fail => "fail",
            TaskKind::Canceled => "canceled",
            TaskKind::ContinueAsNew => "continue_as_new",
        }
    }
}

/// Work for the backend produced by a workflow task.
///
/// Fields by kind (unused ones are `0` / empty / `None`):
///
/// | kind | fields |
/// |---|---|
/// | `activity` | `id`, `name`, `payload` = input, `options` |
/// | `cancel_activity` | `id` |
/// | `timer` | `id`, `time` = fire_at |
/// | `cancel_timer` | `id` |
/// | `start_child` | `id`, `name`, `payload` = input, `options` |
/// | `cancel_child` | `id`, `name`, `options` = the child's options (they name the instance) |
/// | `signal_external` | `id`, `name`, `payload`, `options` |
/// | `complete` | `payload` = result |
/// | `fail` | `payload` = failure |
/// | `canceled` | — |
/// | `continue_as_new` | `payload` = input, `options` |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// What to do.
    pub kind: TaskKind,
    /// Command id, 0 for run-level tasks.
    pub id: u64,
    /// Activity, workflow or signal name.
    pub name: String,
    /// Input, result, failure or signal payload.
    pub payload: Option<Payload>,
    /// Options payload.
    pub options: Option<Payload>,
    /// Fire time of a timer (microseconds since the epoch).
    pub time: i64,
}

impl Task {
    pub(crate) fn new(kind: TaskKind, id: u64) -> Task {
        Task {
            kind,
            id,
            name: String::new(),
            payload: None,
            options: None,
            time: 0,
        }
    }
}
