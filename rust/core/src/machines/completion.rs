//! Workflow-completion machine: one per run, guarding every command and activation.
//!
//! | from | input | to | effect |
//! |---|---|---|---|
//! | Running | new_batch | Running | none |
//! | Running | command | Running | none |
//! | Running | complete | Completed | record command |
//! | Running | fail | Failed | record command |
//! | Running | cancel | Canceled | record command |
//! | Running | continue_as_new | ContinuedAsNew | record command |
//! | Running | timed_out | TimingOut | none |
//! | TimingOut | new_batch | TimingOut | none |
//! | TimingOut | command | TimingOut | none |
//! | TimingOut | complete | Completed | record command |
//! | TimingOut | fail | TimedOut | record command |
//! | TimingOut | cancel | Canceled | record command |
//! | TimingOut | continue_as_new | ContinuedAsNew | record command |
//!
//! `timed_out` is an activation delivering the `timed_out` event (the execution deadline
//! passed): the runtime then fails the run, and the reducer reports its close status as
//! `timed_out` ([`State::close_status`]); what closed the run decides, never the failure's text.
//! `command` is every non-closing command: once the run has closed, any further command, a new
//! batch, or a second closing command is an engine bug (the runtime must stop the workflow code
//! after a closing command). Recording a closing command emits the matching task (`complete`,
//! `fail`, `canceled`, `continue_as_new`) after a `cancel_child` task for every child that is
//! still running.

use super::{labels, Effect, KindMismatch, Machine, Row};
use crate::event::EventBody;

/// Whether the run is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Open.
    Running,
    /// Open, but its execution deadline passed (the `timed_out` event was delivered): the code
    /// is closing it, and a failure now means the run timed out.
    TimingOut,
    /// Closed with a result.
    Completed,
    /// Closed with a failure.
    Failed,
    /// Closed with a failure after its execution deadline passed.
    TimedOut,
    /// Closed by cancellation.
    Canceled,
    /// Closed and restarted as a new run.
    ContinuedAsNew,
}

labels!(State {
    Running => "Running",
    TimingOut => "TimingOut",
    Completed => "Completed",
    Failed => "Failed",
    TimedOut => "TimedOut",
    Canceled => "Canceled",
    ContinuedAsNew => "ContinuedAsNew",
});

/// What the run sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `add_new_batch`.
    NewBatch,
    /// An activation delivers the `timed_out` event.
    TimedOut,
    /// Any non-closing command.
    Command,
    /// `complete`.
    Complete,
    /// `fail`.
    Fail,
    /// `cancel`.
    Cancel,
    /// `continue_as_new`.
    ContinueAsNew,
}

labels!(Input {
    NewBatch => "new_batch",
    TimedOut => "timed_out",
    Command => "command",
    Complete => "complete",
    Fail => "fail",
    Cancel => "cancel",
    ContinueAsNew => "continue_as_new",
});

impl TryFrom<&EventBody> for Input {
    type Error = KindMismatch;
    /// The closing command an event records.
    fn try_from(body: &EventBody) -> Result<Self, KindMismatch> {
        match body {
            EventBody::WorkflowCompleted { .. } => Ok(Input::Complete),
            EventBody::WorkflowFailed { .. } => Ok(Input::Fail),
            EventBody::WorkflowCanceled => Ok(Input::Cancel),
            EventBody::WorkflowContinuedAsNew { .. } => Ok(Input::ContinueAsNew),
            _ => Err(KindMismatch),
        }
    }
}

impl State {
    /// True until a closing command was recorded.
    pub fn is_open(self) -> bool {
        matches!(self, State::Running | State::TimingOut)
    }

    /// How the run closed, as the backend records it: `completed`, `failed`, `timed_out`
    /// (failed after its execution deadline passed), `canceled` or `continued_as_new`;
    /// `None` while open.
    pub fn close_status(self) -> Option<&'static str> {
        match self {
            State::Running | State::TimingOut => None,
            State::Completed => Some("completed"),
            State::Failed => Some("failed"),
            State::TimedOut => Some("timed_out"),
            State::Canceled => Some("canceled"),
            State::ContinuedAsNew => Some("continued_as_new"),
        }
    }
}

/// The workflow-completion transition table.
#[derive(Debug)]
pub struct Completion;

impl Machine for Completion {
    const NAME: &'static str = "workflow";
    type State = State;
    type Input = Input;
    #[rustfmt::skip]
    const TABLE: &'static [Row<State, Input>] = &[
        Row { from: State::Running, input: Input::NewBatch, to: State::Running, effect: Effect::Ignore },
        Row { from: State::Running, input: Input::Command, to: State::Running, effect: Effect::Ignore },
        Row { from: State::Running, input: Input::Complete, to: State::Completed, effect: Effect::Record },
        Row { from: State::Running, input: Input::Fail, to: State::Failed, effect: Effect::Record },
        Row { from: State::Running, input: Input::Cancel, to: State::Canceled, effect: Effect::Record },
        Row { from: State::Running, input: Input::ContinueAsNew, to: State::ContinuedAsNew, effect: Effect::Record },
        Row { from: State::Running, input: Input::TimedOut, to: State::TimingOut, effect: Effect::Ignore },
        Row { from: State::TimingOut, input: Input::NewBatch, to: State::TimingOut, effect: Effect::Ignore },
        Row { from: State::TimingOut, input: Input::Command, to: State::TimingOut, effect: Effect::Ignore },
        Row { from: State::TimingOut, input: Input::Complete, to: State::Completed, effect: Effect::Record },
        Row { from: State::TimingOut, input: Input::Fail, to: State::TimedOut, effect: Effect::Record },
        Row { from: State::TimingOut, input: Input::Cancel, to: State::Canceled, effect: Effect::Record },
        Row { from: State::TimingOut, input: Input::ContinueAsNew, to: State::ContinuedAsNew, effect: Effect::Record },
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::machines::Label as _;

    #[test]
    fn closes_once() {
        for input in [
            Input::Complete,
            Input::Fail,
            Input::Cancel,
            Input::ContinueAsNew,
        ] {
            for from in [State::Running, State::TimingOut] {
                let (closed, e) = Completion::step(from, input).unwrap();
                assert_ne!(closed, State::Running);
                assert_eq!(e, Effect::Record);
                for after in [Input::Command, Input::NewBatch, Input::Complete, input] {
                    match Completion::step(closed, after) {
                        Err(Error::EngineBug { message }) => {
                            assert!(message.contains(closed.label()))
                        }
                        other => panic!("{closed:?} x {after:?} -> {other:?}"),
                    }
                }
                assert!(!closed.is_open());
                assert!(closed.close_status().is_some());
            }
        }
    }

    /// A run fails as timed out only after the `timed_out` event; the deadline changes
    /// nothing else.
    #[test]
    fn the_deadline_decides_the_close_status() {
        let (timing_out, _) = Completion::step(State::Running, Input::TimedOut).unwrap();
        assert!(timing_out.is_open());
        assert_eq!(timing_out.close_status(), None);
        let status = |from, input| Completion::step(from, input).unwrap().0.close_status();
        assert_eq!(status(State::Running, Input::Fail), Some("failed"));
        assert_eq!(status(timing_out, Input::Fail), Some("timed_out"));
        assert_eq!(status(timing_out, Input::Complete), Some("completed"));
        assert_eq!(status(timing_out, Input::Command), None);
    }

    #[test]
    fn closing_events_convert() {
        assert_eq!(
            Input::try_from(&EventBody::WorkflowCanceled),
            Ok(Input::Cancel)
        );
        assert_eq!(Input::try_from(&EventBody::TimedOut), Err(KindMismatch));
    }
}
