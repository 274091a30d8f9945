//! What a recorded history says about its run without running its code: what the run waits for
//! (activities, timers, child workflows) and how many workflow tasks it had. `describe()` and the
//! runtime's history-limit check read it here instead of re-parsing history.
//!
//! The history is checked exactly as [`crate::Reducer::load_history`] checks it (the same
//! validator drives every command's machine), and a command is pending when its machine is still
//! waiting: an activity `Scheduled`, a timer `Started`, a child `Started`. A cancel request ends
//! the wait (the code stopped waiting; the backend may still be winding the command down). A
//! corrupt event ends the view: it describes the history before it and names the event.

use crate::error::Error;
use crate::event::{self, EventBody, SeqRule};
use crate::history::Validator;
use crate::machines::{activity, child, timer, MachineState};
use crate::payload::Payload;

/// An activity the run waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingActivity {
    /// Command id.
    pub id: u64,
    /// Activity name.
    pub name: String,
}

/// A timer that has not fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTimer {
    /// Command id.
    pub id: u64,
    /// When it fires (microseconds since the epoch).
    pub fire_at: i64,
}

/// A child workflow the run waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChild {
    /// Command id.
    pub id: u64,
    /// Workflow name.
    pub name: String,
    /// The child's options payload (it names the child instance).
    pub options: Payload,
}

/// What a recorded history says about its run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryView {
    /// Activities scheduled and not finished or cancelled, by command id.
    pub activities: Vec<PendingActivity>,
    /// Timers started and neither fired nor cancelled, by command id.
    pub timers: Vec<PendingTimer>,
    /// Children started and not finished or cancelled, by command id.
    pub children: Vec<PendingChild>,
    /// Workflow tasks (batches) in the history.
    pub batches: u64,
    /// The first corrupt event, when there is one: the view describes the events before it.
    pub corrupt: Option<Error>,
}

/// Reads `history` (stored events, with `seq`, from the first).
pub fn view_history<B: AsRef<[u8]>>(history: &[B]) -> HistoryView {
    let mut validator = Validator::new();
    // The command events that open a wait, by command id.
    let mut opened: Vec<EventBody> = Vec::new();
    let mut corrupt = None;
    for (i, bytes) in history.iter().enumerate() {
        let seq = i as u64 + 1;
        let checked = event::decode(bytes.as_ref(), seq, SeqRule::Recorded)
            .and_then(|ev| validator.check(&ev).map(|_| ev));
        match checked {
            Ok(ev) => {
                if matches!(
                    ev.body,
                    EventBody::ActivityScheduled { .. }
                        | EventBody::TimerStarted { .. }
                        | EventBody::ChildScheduled { .. }
                ) {
                    opened.push(ev.body);
                }
            }
            Err(error) => {
                corrupt = Some(error);
                break;
            }
        }
    }
    let mut view = HistoryView {
        batches: validator.batches(),
        corrupt,
        ..HistoryView::default()
    };
    for body in opened {
        let Some(id) = body.command_id() else {
            continue;
        };
        let state = validator.state(id);
        match body {
            EventBody::ActivityScheduled { name, .. }
                if state == Some(MachineState::Activity(activity::State::Scheduled)) =>
            {
                view.activities.push(PendingActivity { id, name });
            }
            EventBody::TimerStarted { fire_at, .. }
                if state == Some(MachineState::Timer(timer::State::Started)) =>
            {
                view.timers.push(PendingTimer { id, fire_at });
            }
            EventBody::ChildScheduled { name, options, .. }
                if state == Some(MachineState::Child(child::State::Started)) =>
            {
                view.children.push(PendingChild { id, name, options });
            }
            _ => {}
        }
    }
    view
}
