//! External-signal machine: one per `signal_external` command, and one per `cancel_external`
//! command (a cancel request travels like a signal).
//!
//! | from | input | to | effect |
//! |---|---|---|---|
//! | Created | signal_external | Sent | record command |
//! | Sent | signal_external_completed | Completed | job |
//!
//! Recording `signal_external_sent` emits a `signal_external` task; the backend delivers the
//! signal to the target instance and answers with `signal_external_completed` (its `failure` is
//! `null` when the signal was delivered). A signal cannot be cancelled. Recording
//! `external_cancel_requested` emits a `cancel_external` task, answered the same way.

use super::{labels, Effect, KindMismatch, Machine, Row};
use crate::event::EventBody;

/// Where an outgoing signal is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Before the command (never stored).
    Created,
    /// Handed to the backend.
    Sent,
    /// Delivered, or failed to deliver.
    Completed,
}

labels!(State { Created => "Created", Sent => "Sent", Completed => "Completed" });

/// What can happen to an outgoing signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `signal_external` command.
    Send,
    /// `signal_external_completed` event.
    Completed,
}

labels!(Input { Send => "signal_external", Completed => "signal_external_completed" });

impl TryFrom<&EventBody> for Input {
    type Error = KindMismatch;
    fn try_from(body: &EventBody) -> Result<Self, KindMismatch> {
        match body {
            EventBody::SignalExternalCompleted { .. } => Ok(Input::Completed),
            _ => Err(KindMismatch),
        }
    }
}

/// The external-signal transition table.
#[derive(Debug)]
pub struct ExternalSignal;

impl Machine for ExternalSignal {
    const NAME: &'static str = "external signal";
    type State = State;
    type Input = Input;
    #[rustfmt::skip]
    const TABLE: &'static [Row<State, Input>] = &[
        Row { from: State::Created, input: Input::Send, to: State::Sent, effect: Effect::Record },
        Row { from: State::Sent, input: Input::Completed, to: State::Completed, effect: Effect::Deliver },
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn completes_once() {
        let (s, _) = ExternalSignal::step(State::Created, Input::Send).unwrap();
        let (s, e) = ExternalSignal::step(s, Input::Completed).unwrap();
        assert_eq!((s, e), (State::Completed, Effect::Deliver));
        assert!(matches!(
            ExternalSignal::step(s, Input::Completed),
            Err(Error::EngineBug { .. })
        ));
    }

    #[test]
    fn only_its_event_converts() {
        assert_eq!(
            Input::try_from(&EventBody::SignalExternalCompleted {
                id: 1,
                failure: None
            }),
            Ok(Input::Completed)
        );
        assert_eq!(
            Input::try_from(&EventBody::TimerFired { id: 1 }),
            Err(KindMismatch)
        );
    }
}
