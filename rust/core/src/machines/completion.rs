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
//!
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
    /// Closed with a result.
    Completed,
    /// Closed with a failure.
    Failed,
    /// Closed by cancellation.
    Canceled,
    /// Closed and restarted as a new run.
    ContinuedAsNew,
}

labels!(State {
    Running => "Running",
    Completed => "Completed",
    Failed => "Failed",
    Canceled => "Canceled",
    ContinuedAsNew => "ContinuedAsNew",
});

/// What the run sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `add_new_batch`.
    NewBatch,
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
            let (closed, e) = Completion::step(State::Running, input).unwrap();
            assert_ne!(closed, State::Running);
            assert_eq!(e, Effect::Record);
            for after in [Input::Command, Input::NewBatch, Input::Complete, input] {
                match Completion::step(closed, after) {
                    Err(Error::EngineBug { message }) => assert!(message.contains(closed.label())),
                    other => panic!("{closed:?} x {after:?} -> {other:?}"),
                }
            }
        }
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
