//! Child-workflow machine: one per `start_child` command.
//!
//! | from | input | to | effect |
//! |---|---|---|---|
//! | Created | start_child | Started | record command |
//! | Started | child_completed | Completed | job |
//! | Started | child_failed | Failed | job |
//! | Started | cancel_child | CancelRequested | record command |
//! | Started | parent_closed | Abandoned | none |
//! | CancelRequested | child_completed | Canceled | none |
//! | CancelRequested | child_failed | Canceled | none |
//! | Started | cancel_in_same_step | Withdrawn | withdraw command |
//!
//! A cancel in the same workflow step as the start (`start_child(...).cancel()`) withdraws both:
//! no event and no task, so the child is never created and its id stays free.
//!
//! Recording `child_scheduled` emits a `start_child` task, `child_cancel_requested` a
//! `cancel_child` task carrying the child's options (they name the child instance). Like an
//! activity, a cancelled child is abandoned by the code: its outcome, when it arrives, produces
//! no job. When the parent run closes (complete, fail, cancel, continue-as-new) every child still
//! `Started` gets a `cancel_child` task (parent-close policy: cancel) and moves to `Abandoned`;
//! no event is recorded for that, and nothing can follow because a closed run takes no events.

use super::{labels, Effect, KindMismatch, Machine, Row};
use crate::event::EventBody;

/// Where a child workflow is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Before the command (never stored).
    Created,
    /// Running.
    Started,
    /// Finished with a result.
    Completed,
    /// Finished with a failure.
    Failed,
    /// Cancelled by the code; its outcome is ignored.
    CancelRequested,
    /// Cancelled, and its outcome arrived.
    Canceled,
    /// Still running when the parent closed; the backend cancels it.
    Abandoned,
    /// Cancelled in the step that started it: never in history, never created.
    Withdrawn,
}

labels!(State {
    Created => "Created",
    Started => "Started",
    Completed => "Completed",
    Failed => "Failed",
    CancelRequested => "CancelRequested",
    Canceled => "Canceled",
    Abandoned => "Abandoned",
    Withdrawn => "Withdrawn",
});

/// What can happen to a child workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `start_child` command.
    Start,
    /// `cancel_child` command.
    Cancel,
    /// `child_completed` event.
    Completed,
    /// `child_failed` event.
    Failed,
    /// The parent issued a closing command while the child runs.
    ParentClosed,
    /// `cancel_child` command in the step that started it.
    CancelInSameStep,
}

labels!(Input {
    Start => "start_child",
    Cancel => "cancel_child",
    Completed => "child_completed",
    Failed => "child_failed",
    ParentClosed => "parent_closed",
    CancelInSameStep => "cancel_in_same_step",
});

impl TryFrom<&EventBody> for Input {
    type Error = KindMismatch;
    fn try_from(body: &EventBody) -> Result<Self, KindMismatch> {
        match body {
            EventBody::ChildCompleted { .. } => Ok(Input::Completed),
            EventBody::ChildFailed { .. } => Ok(Input::Failed),
            _ => Err(KindMismatch),
        }
    }
}

/// The child-workflow transition table.
#[derive(Debug)]
pub struct Child;

impl Machine for Child {
    const NAME: &'static str = "child workflow";
    type State = State;
    type Input = Input;
    #[rustfmt::skip]
    const TABLE: &'static [Row<State, Input>] = &[
        Row { from: State::Created, input: Input::Start, to: State::Started, effect: Effect::Record },
        Row { from: State::Started, input: Input::Completed, to: State::Completed, effect: Effect::Deliver },
        Row { from: State::Started, input: Input::Failed, to: State::Failed, effect: Effect::Deliver },
        Row { from: State::Started, input: Input::Cancel, to: State::CancelRequested, effect: Effect::Record },
        Row { from: State::Started, input: Input::ParentClosed, to: State::Abandoned, effect: Effect::Ignore },
        Row { from: State::CancelRequested, input: Input::Completed, to: State::Canceled, effect: Effect::Ignore },
        Row { from: State::CancelRequested, input: Input::Failed, to: State::Canceled, effect: Effect::Ignore },
        Row { from: State::Started, input: Input::CancelInSameStep, to: State::Withdrawn, effect: Effect::Withdraw },
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::payload::Payload;

    #[test]
    fn completes_or_fails() {
        let (s, _) = Child::step(State::Created, Input::Start).unwrap();
        assert_eq!(
            Child::step(s, Input::Completed).unwrap(),
            (State::Completed, Effect::Deliver)
        );
        assert_eq!(
            Child::step(s, Input::Failed).unwrap(),
            (State::Failed, Effect::Deliver)
        );
    }

    #[test]
    fn cancelled_child_outcome_is_ignored() {
        let (s, _) = Child::step(State::Started, Input::Cancel).unwrap();
        assert_eq!(
            Child::step(s, Input::Failed).unwrap(),
            (State::Canceled, Effect::Ignore)
        );
        assert!(matches!(
            Child::step(s, Input::Cancel),
            Err(Error::EngineBug { .. })
        ));
        assert!(matches!(
            Child::step(s, Input::ParentClosed),
            Err(Error::EngineBug { .. })
        ));
    }

    #[test]
    fn parent_close_only_abandons_running_children() {
        assert_eq!(
            Child::step(State::Started, Input::ParentClosed).unwrap(),
            (State::Abandoned, Effect::Ignore)
        );
        assert!(Child::step(State::Completed, Input::ParentClosed).is_err());
        assert!(Child::step(State::Abandoned, Input::Completed).is_err());
    }

    #[test]
    fn only_child_events_convert() {
        let p = Payload::from_json(b"{}").unwrap();
        assert_eq!(
            Input::try_from(&EventBody::ChildFailed {
                id: 1,
                failure: p.clone()
            }),
            Ok(Input::Failed)
        );
        assert_eq!(
            Input::try_from(&EventBody::ActivityCompleted {
                id: 1,
                result: p,
                attempt: 1
            }),
            Err(KindMismatch)
        );
    }
}
