//! Timer machine: one per `start_timer` command.
//!
//! | from | input | to | effect |
//! |---|---|---|---|
//! | Created | start_timer | Started | record command |
//! | Started | timer_fired | Fired | job |
//! | Started | cancel_timer | Canceled | record command |
//! | Canceled | timer_fired | CanceledFired | none |
//! | Started | cancel_in_same_step | Withdrawn | withdraw command |
//!
//! A cancel in the same workflow step as the start withdraws both: no event, no task.
//!
//! The fire time is data of the `timer_started` event; on replay the recorded one is kept.
//! Recording `timer_started` emits a `timer` task (deliver `timer_fired` at `fire_at`),
//! `timer_canceled` a `cancel_timer` task. A timer the backend fires after the code cancelled it
//! is kept in history but produces no job.

use super::{labels, Effect, KindMismatch, Machine, Row};
use crate::event::EventBody;

/// Where a timer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Before the command (never stored).
    Created,
    /// Waiting to fire.
    Started,
    /// Fired; the code was told.
    Fired,
    /// Cancelled by the code.
    Canceled,
    /// Cancelled, and it fired anyway (ignored).
    CanceledFired,
    /// Cancelled in the step that started it: never in history.
    Withdrawn,
}

labels!(State {
    Created => "Created",
    Started => "Started",
    Fired => "Fired",
    Canceled => "Canceled",
    CanceledFired => "CanceledFired",
    Withdrawn => "Withdrawn",
});

/// What can happen to a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `start_timer` command.
    Start,
    /// `cancel_timer` command.
    Cancel,
    /// `timer_fired` event.
    Fired,
    /// `cancel_timer` command in the step that started it.
    CancelInSameStep,
}

labels!(Input {
    Start => "start_timer",
    Cancel => "cancel_timer",
    Fired => "timer_fired",
    CancelInSameStep => "cancel_in_same_step",
});

impl TryFrom<&EventBody> for Input {
    type Error = KindMismatch;
    fn try_from(body: &EventBody) -> Result<Self, KindMismatch> {
        match body {
            EventBody::TimerFired { .. } => Ok(Input::Fired),
            _ => Err(KindMismatch),
        }
    }
}

/// The timer transition table.
#[derive(Debug)]
pub struct Timer;

impl Machine for Timer {
    const NAME: &'static str = "timer";
    type State = State;
    type Input = Input;
    #[rustfmt::skip]
    const TABLE: &'static [Row<State, Input>] = &[
        Row { from: State::Created, input: Input::Start, to: State::Started, effect: Effect::Record },
        Row { from: State::Started, input: Input::Fired, to: State::Fired, effect: Effect::Deliver },
        Row { from: State::Started, input: Input::Cancel, to: State::Canceled, effect: Effect::Record },
        Row { from: State::Canceled, input: Input::Fired, to: State::CanceledFired, effect: Effect::Ignore },
        Row { from: State::Started, input: Input::CancelInSameStep, to: State::Withdrawn, effect: Effect::Withdraw },
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn fires_once() {
        let (s, _) = Timer::step(State::Created, Input::Start).unwrap();
        let (s, e) = Timer::step(s, Input::Fired).unwrap();
        assert_eq!((s, e), (State::Fired, Effect::Deliver));
        assert!(matches!(
            Timer::step(s, Input::Fired),
            Err(Error::EngineBug { .. })
        ));
        assert!(matches!(
            Timer::step(s, Input::Cancel),
            Err(Error::EngineBug { .. })
        ));
    }

    #[test]
    fn fire_after_cancel_is_ignored() {
        let (s, e) = Timer::step(State::Started, Input::Cancel).unwrap();
        assert_eq!((s, e), (State::Canceled, Effect::Record));
        assert!(matches!(
            Timer::step(s, Input::Cancel),
            Err(Error::EngineBug { .. })
        ));
        assert_eq!(
            Timer::step(s, Input::Fired).unwrap(),
            (State::CanceledFired, Effect::Ignore)
        );
    }

    #[test]
    fn only_timer_fired_converts() {
        assert_eq!(
            Input::try_from(&EventBody::TimerFired { id: 2 }),
            Ok(Input::Fired)
        );
        assert_eq!(Input::try_from(&EventBody::TimedOut), Err(KindMismatch));
    }
}
