//! Side-effect machine: one per `side_effect` command.
//!
//! | from | input | to | effect |
//! |---|---|---|---|
//! | Created | side_effect | Recorded | record command |
//!
//! The value is computed once by the runtime and recorded in `side_effect_recorded`; on replay
//! the recorded value is returned and the runtime does not compute it again. No inbound event
//! refers to a side effect and no task is emitted.

use super::{labels, Effect, KindMismatch, Machine, Row};
use crate::event::EventBody;

/// Where a side effect is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Before the command (never stored).
    Created,
    /// The value is in history.
    Recorded,
}

labels!(State { Created => "Created", Recorded => "Recorded" });

/// What can happen to a side effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `side_effect` command.
    Record,
}

labels!(Input { Record => "side_effect" });

impl TryFrom<&EventBody> for Input {
    type Error = KindMismatch;
    /// No inbound event belongs to a side effect.
    fn try_from(_: &EventBody) -> Result<Self, KindMismatch> {
        Err(KindMismatch)
    }
}

/// The side-effect transition table.
#[derive(Debug)]
pub struct SideEffect;

impl Machine for SideEffect {
    const NAME: &'static str = "side effect";
    type State = State;
    type Input = Input;
    #[rustfmt::skip]
    const TABLE: &'static [Row<State, Input>] = &[
        Row { from: State::Created, input: Input::Record, to: State::Recorded, effect: Effect::Record },
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn records_once() {
        let (s, e) = SideEffect::step(State::Created, Input::Record).unwrap();
        assert_eq!((s, e), (State::Recorded, Effect::Record));
        assert!(matches!(
            SideEffect::step(s, Input::Record),
            Err(Error::EngineBug { .. })
        ));
    }

    #[test]
    fn no_event_converts() {
        assert_eq!(
            Input::try_from(&EventBody::TimerFired { id: 1 }),
            Err(KindMismatch)
        );
    }
}
