//! Patch-marker machine: one per `marker_recorded` event (`workflow.patched`).
//!
//! | from | input | to | effect |
//! |---|---|---|---|
//! | Created | patched | Recorded | record command |
//! | Created | deprecate_patch | Recorded | none |
//!
//! `patched(change_id)` when not replaying records a marker and returns `True`. While replaying
//! it consumes the next command event only if that is a marker for the same change id (then it
//! returns `True`); otherwise it returns `False`, consumes nothing and creates no machine. A
//! deprecated patch never records a marker, but consumes a matching one while replaying (the
//! `deprecate_patch` row) so that the ids of later commands still line up. The reducer remembers
//! which change ids returned `True` and answers `True` for them for the rest of the run without
//! consulting history again. No inbound event refers to a marker and no task is emitted.

use super::{labels, Effect, KindMismatch, Machine, Row};
use crate::event::EventBody;

/// Where a marker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Before the command (never stored).
    Created,
    /// The marker is in history.
    Recorded,
}

labels!(State { Created => "Created", Recorded => "Recorded" });

/// What can happen to a marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `patched(change_id)` that records (or replays) a marker.
    Patched,
    /// `patched(change_id, deprecated=True)` consuming a recorded marker on replay.
    Deprecated,
}

labels!(Input { Patched => "patched", Deprecated => "deprecate_patch" });

impl TryFrom<&EventBody> for Input {
    type Error = KindMismatch;
    /// No inbound event belongs to a marker.
    fn try_from(_: &EventBody) -> Result<Self, KindMismatch> {
        Err(KindMismatch)
    }
}

/// The marker transition table.
#[derive(Debug)]
pub struct Marker;

impl Machine for Marker {
    const NAME: &'static str = "patch marker";
    type State = State;
    type Input = Input;
    #[rustfmt::skip]
    const TABLE: &'static [Row<State, Input>] = &[
        Row { from: State::Created, input: Input::Patched, to: State::Recorded, effect: Effect::Record },
        Row { from: State::Created, input: Input::Deprecated, to: State::Recorded, effect: Effect::Ignore },
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn records_once() {
        let (s, e) = Marker::step(State::Created, Input::Patched).unwrap();
        assert_eq!((s, e), (State::Recorded, Effect::Record));
        assert!(matches!(
            Marker::step(s, Input::Patched),
            Err(Error::EngineBug { .. })
        ));
        assert!(matches!(
            Marker::step(s, Input::Deprecated),
            Err(Error::EngineBug { .. })
        ));
    }

    #[test]
    fn deprecated_consumes_without_recording() {
        assert_eq!(
            Marker::step(State::Created, Input::Deprecated).unwrap(),
            (State::Recorded, Effect::Ignore)
        );
    }

    #[test]
    fn no_event_converts() {
        assert_eq!(Input::try_from(&EventBody::TimedOut), Err(KindMismatch));
    }
}
