//! Activity machine: one per `schedule_activity` command.
//!
//! | from | input | to | effect |
//! |---|---|---|---|
//! | Created | schedule_activity | Scheduled | record command |
//! | Scheduled | activity_completed | Completed | job |
//! | Scheduled | activity_failed | Failed | job |
//! | Scheduled | cancel_activity | CancelRequested | record command |
//! | CancelRequested | activity_completed | Canceled | none |
//! | CancelRequested | activity_failed | Canceled | none |
//! | Scheduled | cancel_in_same_step | Withdrawn | withdraw command |
//!
//! A cancel in the same workflow step as the schedule (`start_activity(...).cancel()`) withdraws
//! both: no event, no task; replay re-issues and re-withdraws it, matching nothing.
//! Cancelling abandons the activity: the code stops waiting at once (the runtime resolves the
//! awaitable with a cancellation), so an outcome that arrives later is kept in history but
//! produces no job. Recording `activity_scheduled` emits an `activity` task,
//! `activity_cancel_requested` a `cancel_activity` task. `activity_completed` / `activity_failed`
//! are final outcomes (retries happen inside the backend), so a second one is illegal.

use super::{labels, Effect, KindMismatch, Machine, Row};
use crate::event::EventBody;

/// Where an activity is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Before the command (never stored).
    Created,
    /// Waiting for an outcome.
    Scheduled,
    /// Cancelled by the code; a late outcome is ignored.
    CancelRequested,
    /// Resolved with a result.
    Completed,
    /// Resolved with a failure.
    Failed,
    /// Cancelled, and its late outcome arrived.
    Canceled,
    /// Cancelled in the step that scheduled it: never in history.
    Withdrawn,
}

labels!(State {
    Created => "Created",
    Scheduled => "Scheduled",
    CancelRequested => "CancelRequested",
    Completed => "Completed",
    Failed => "Failed",
    Canceled => "Canceled",
    Withdrawn => "Withdrawn",
});

/// What can happen to an activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `schedule_activity` command.
    Schedule,
    /// `cancel_activity` command.
    Cancel,
    /// `activity_completed` event.
    Completed,
    /// `activity_failed` event.
    Failed,
    /// `cancel_activity` command in the step that scheduled it.
    CancelInSameStep,
}

labels!(Input {
    Schedule => "schedule_activity",
    Cancel => "cancel_activity",
    Completed => "activity_completed",
    Failed => "activity_failed",
    CancelInSameStep => "cancel_in_same_step",
});

impl TryFrom<&EventBody> for Input {
    type Error = KindMismatch;
    fn try_from(body: &EventBody) -> Result<Self, KindMismatch> {
        match body {
            EventBody::ActivityCompleted { .. } => Ok(Input::Completed),
            EventBody::ActivityFailed { .. } => Ok(Input::Failed),
            _ => Err(KindMismatch),
        }
    }
}

/// The activity transition table.
#[derive(Debug)]
pub struct Activity;

impl Machine for Activity {
    const NAME: &'static str = "activity";
    type State = State;
    type Input = Input;
    #[rustfmt::skip]
    const TABLE: &'static [Row<State, Input>] = &[
        Row { from: State::Created, input: Input::Schedule, to: State::Scheduled, effect: Effect::Record },
        Row { from: State::Scheduled, input: Input::Completed, to: State::Completed, effect: Effect::Deliver },
        Row { from: State::Scheduled, input: Input::Failed, to: State::Failed, effect: Effect::Deliver },
        Row { from: State::Scheduled, input: Input::Cancel, to: State::CancelRequested, effect: Effect::Record },
        Row { from: State::CancelRequested, input: Input::Completed, to: State::Canceled, effect: Effect::Ignore },
        Row { from: State::CancelRequested, input: Input::Failed, to: State::Canceled, effect: Effect::Ignore },
        Row { from: State::Scheduled, input: Input::CancelInSameStep, to: State::Withdrawn, effect: Effect::Withdraw },
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::machines::Label as _;
    use crate::payload::Payload;

    #[test]
    fn happy_path() {
        let (s, e) = Activity::step(State::Created, Input::Schedule).unwrap();
        assert_eq!((s, e), (State::Scheduled, Effect::Record));
        assert_eq!(
            Activity::step(s, Input::Completed).unwrap(),
            (State::Completed, Effect::Deliver)
        );
        assert_eq!(
            Activity::step(s, Input::Failed).unwrap(),
            (State::Failed, Effect::Deliver)
        );
    }

    #[test]
    fn late_outcome_after_cancel_is_ignored_once() {
        let (s, _) = Activity::step(State::Scheduled, Input::Cancel).unwrap();
        assert_eq!(s, State::CancelRequested);
        let (s, e) = Activity::step(s, Input::Completed).unwrap();
        assert_eq!((s, e), (State::Canceled, Effect::Ignore));
        assert!(matches!(
            Activity::step(s, Input::Completed),
            Err(Error::EngineBug { .. })
        ));
    }

    #[test]
    fn illegal_transitions_are_engine_bugs() {
        for (from, input) in [
            (State::Completed, Input::Completed),
            (State::Completed, Input::Cancel),
            (State::Failed, Input::Cancel),
            (State::Scheduled, Input::Schedule),
            (State::CancelRequested, Input::Cancel),
            (State::Created, Input::Completed),
        ] {
            match Activity::step(from, input) {
                Err(Error::EngineBug { message }) => {
                    assert!(message.contains("activity"), "{message}");
                    assert!(message.contains(input.label()), "{message}");
                }
                other => panic!("{from:?} x {input:?} -> {other:?}"),
            }
        }
    }

    #[test]
    fn only_activity_events_convert() {
        let p = Payload::from_json(b"1").unwrap();
        assert_eq!(
            Input::try_from(&EventBody::ActivityCompleted {
                id: 1,
                result: p.clone(),
                attempt: 1
            }),
            Ok(Input::Completed)
        );
        assert_eq!(
            Input::try_from(&EventBody::TimerFired { id: 1 }),
            Err(KindMismatch)
        );
        assert_eq!(
            Input::try_from(&EventBody::ChildCompleted { id: 1, result: p }),
            Err(KindMismatch)
        );
    }
}
