//! One state machine per command kind.
//!
//! Each machine's transitions are data: a `TABLE` of rows `from -(input)-> to`, and the doc
//! comment at the top of each machine's file is that table rendered as Markdown (a test
//! re-renders every table and fails when a doc comment drifts from its code). Looking up an input
//! that has no row is an illegal transition: an [`Error::EngineBug`] that leaves the machine as it
//! was.
//!
//! Inputs come from two places: the commands the code issues (built directly by the reducer) and
//! inbound history events, converted with `TryFrom<&EventBody>`. A conversion that fails means
//! the event belongs to another kind of command: that is *nondeterminism* (history and code
//! disagree about what command N is), never an engine bug.

use crate::error::Error;
use crate::event::EventBody;
use crate::payload::Payload;
use std::fmt::Debug;

pub mod activity;
pub mod child;
pub mod completion;
pub mod external_signal;
pub mod marker;
pub mod side_effect;
pub mod timer;

/// What a transition does besides changing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// A command: when not replaying, a new command event and (for most kinds) a task.
    Record,
    /// An inbound event that resolves the command: a job for the workflow code.
    Deliver,
    /// Nothing besides the state change (e.g. an outcome the code no longer waits for: kept
    /// in history, no job).
    Ignore,
    /// A cancel in the step that issued the command: the command's event and task are taken
    /// back before they leave the reducer, and the cancel records nothing either.
    Withdraw,
}

impl Effect {
    fn label(self) -> &'static str {
        match self {
            Effect::Record => "record command",
            Effect::Deliver => "job",
            Effect::Ignore => "none",
            Effect::Withdraw => "withdraw command",
        }
    }
}

/// One row of a transition table.
#[derive(Debug)]
pub struct Row<S: 'static, I: 'static> {
    /// State before.
    pub from: S,
    /// The input.
    pub input: I,
    /// State after.
    pub to: S,
    /// What else happens.
    pub effect: Effect,
}

/// Labels for table rendering and error messages.
pub trait Label: Copy + Eq + Debug {
    /// A short name (`Scheduled`, `activity_completed`).
    fn label(self) -> &'static str;
}

/// A transition table and its lookup.
pub trait Machine {
    /// What the table is about (`activity`, `timer`...).
    const NAME: &'static str;
    /// States.
    type State: Label + 'static;
    /// Inputs.
    type Input: Label + 'static;
    /// All legal transitions.
    const TABLE: &'static [Row<Self::State, Self::Input>];

    /// The row for `input` in state `from`, or an engine-bug error naming both.
    fn step(from: Self::State, input: Self::Input) -> Result<(Self::State, Effect), Error> {
        Self::TABLE
            .iter()
            .find(|row| row.from == from && row.input == input)
            .map(|row| (row.to, row.effect))
            .ok_or_else(|| {
                Error::engine_bug(format!(
                    "illegal transition: {} machine in state {} got {}",
                    Self::NAME,
                    from.label(),
                    input.label()
                ))
            })
    }
}

/// The table as Markdown inside `//!` comments; each machine's file starts with it.
pub fn render_table<M: Machine>() -> String {
    let mut out = String::from("//! | from | input | to | effect |\n//! |---|---|---|---|\n");
    for row in M::TABLE {
        out.push_str(&format!(
            "//! | {} | {} | {} | {} |\n",
            row.from.label(),
            row.input.label(),
            row.to.label(),
            row.effect.label()
        ));
    }
    out
}

macro_rules! labels {
    ($ty:ident { $($variant:ident => $label:literal),* $(,)? }) => {
        impl $crate::machines::Label for $ty {
            fn label(self) -> &'static str {
                match self { $($ty::$variant => $label,)* }
            }
        }
    };
}
pub(crate) use labels;

/// The event a machine input could not be built from belongs to another kind of command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindMismatch;

/// The current state of one command id's machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineState {
    /// An activity.
    Activity(activity::State),
    /// A timer.
    Timer(timer::State),
    /// A side effect.
    SideEffect(side_effect::State),
    /// A patch marker.
    Marker(marker::State),
    /// A child workflow.
    Child(child::State),
    /// A signal to another workflow.
    ExternalSignal(external_signal::State),
    /// A cancel request to another workflow (`cancel_external`): the external-signal table.
    ExternalCancel(external_signal::State),
}

impl MachineState {
    /// Feeds an inbound event to this machine: `Ok(Err(KindMismatch))` when the event is for
    /// another kind of command, `Err` (engine bug) when the transition is illegal.
    pub fn inbound(
        self,
        body: &EventBody,
    ) -> Result<Result<(MachineState, Effect), KindMismatch>, Error> {
        fn go<M: Machine>(
            from: M::State,
            body: &EventBody,
            wrap: fn(M::State) -> MachineState,
        ) -> Result<Result<(MachineState, Effect), KindMismatch>, Error>
        where
            for<'a> M::Input: TryFrom<&'a EventBody, Error = KindMismatch>,
        {
            match M::Input::try_from(body) {
                Err(mismatch) => Ok(Err(mismatch)),
                Ok(input) => M::step(from, input).map(|(to, effect)| Ok((wrap(to), effect))),
            }
        }
        match self {
            MachineState::Activity(s) => go::<activity::Activity>(s, body, MachineState::Activity),
            MachineState::Timer(s) => go::<timer::Timer>(s, body, MachineState::Timer),
            MachineState::SideEffect(s) => {
                go::<side_effect::SideEffect>(s, body, MachineState::SideEffect)
            }
            MachineState::Marker(s) => go::<marker::Marker>(s, body, MachineState::Marker),
            MachineState::Child(s) => go::<child::Child>(s, body, MachineState::Child),
            MachineState::ExternalSignal(s) => {
                go::<external_signal::ExternalSignal>(s, body, MachineState::ExternalSignal)
            }
            MachineState::ExternalCancel(s) => {
                go::<external_signal::ExternalSignal>(s, body, MachineState::ExternalCancel)
            }
        }
    }
}

/// What the reducer remembers about command id N: its machine state and what messages and
/// parent-close tasks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The machine's state.
    pub state: MachineState,
    /// Activity / child / signal name or patch change id; empty for timers and side effects.
    pub name: Box<str>,
    /// A child's options (the backend needs them to find the child when cancelling it).
    pub options: Option<Payload>,
}

impl Slot {
    /// How the command that created this slot is named in error messages.
    pub fn describe_command(&self) -> String {
        match self.state {
            MachineState::Activity(_) => format!("schedule_activity '{}'", self.name),
            MachineState::Timer(_) => "start_timer".to_owned(),
            MachineState::SideEffect(_) => "side_effect".to_owned(),
            MachineState::Marker(_) => format!("patched '{}'", self.name),
            MachineState::Child(_) => format!("start_child '{}'", self.name),
            MachineState::ExternalSignal(_) => format!("signal_external '{}'", self.name),
            MachineState::ExternalCancel(_) => "cancel_external".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<M: Machine>(source: &str) {
        let rendered = render_table::<M>();
        assert!(
            source.contains(&rendered),
            "the doc table of the {} machine is out of date; it should read:\n{rendered}",
            M::NAME
        );
        // Deterministic: no two rows for the same (state, input).
        for (i, a) in M::TABLE.iter().enumerate() {
            for b in &M::TABLE[i + 1..] {
                assert!(
                    !(a.from == b.from && a.input == b.input),
                    "{}: duplicate row {:?} x {:?}",
                    M::NAME,
                    a.from,
                    a.input
                );
            }
        }
    }

    #[test]
    fn doc_tables_match_the_code() {
        check::<activity::Activity>(include_str!("activity.rs"));
        check::<timer::Timer>(include_str!("timer.rs"));
        check::<side_effect::SideEffect>(include_str!("side_effect.rs"));
        check::<marker::Marker>(include_str!("marker.rs"));
        check::<child::Child>(include_str!("child.rs"));
        check::<external_signal::ExternalSignal>(include_str!("external_signal.rs"));
        check::<completion::Completion>(include_str!("completion.rs"));
    }
}
