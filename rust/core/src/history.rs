//! Checks that recorded history is well formed while it is loaded.
//!
//! The checks are the ones the contract calls *corrupt history*: contiguous `seq`, batches that
//! open with `task_started`, inbound events before command events inside a batch, the run's
//! `workflow_started` first, nothing after the closing command, command ids handed out in
//! increasing order (an id history skips belongs to a command withdrawn by a cancel in the step
//! that issued it), and every id an event refers to belonging to an earlier command of the right kind.
//! The validator also runs every command's machine over the recorded events, so an outcome
//! delivered twice or a cancel after the outcome is caught here as corrupt history instead of
//! surfacing later, during replay, as an engine bug. With all that guaranteed, anything that goes
//! wrong during replay is either nondeterminism or an engine bug in the live code.

use crate::error::{Error, Result};
use crate::event::{Event, EventBody, EventClass, EventKind};
use crate::machines::{
    activity, child, external_signal, marker, side_effect, timer, Machine, MachineState,
};

/// The machine state right after the command event that hands out a new id, or `None` when
/// the event does not hand out ids.
fn allocated_state(kind: EventKind) -> Option<MachineState> {
    // Every first step is a legal row (the machines' unit tests prove it).
    Some(match kind {
        EventKind::ActivityScheduled => MachineState::Activity(activity::State::Scheduled),
        EventKind::TimerStarted => MachineState::Timer(timer::State::Started),
        EventKind::SideEffectRecorded => MachineState::SideEffect(side_effect::State::Recorded),
        EventKind::MarkerRecorded => MachineState::Marker(marker::State::Recorded),
        EventKind::ChildScheduled => MachineState::Child(child::State::Started),
        EventKind::SignalExternalSent => MachineState::ExternalSignal(external_signal::State::Sent),
        EventKind::ExternalCancelRequested => {
            MachineState::ExternalCancel(external_signal::State::Sent)
        }
        _ => return None,
    })
}

/// Applies a recorded cancel command to its target: `Ok(None)` when the target is not of the
/// kind the cancel is for.
fn cancel(kind: EventKind, state: MachineState) -> Result<Option<MachineState>> {
    Ok(Some(match (kind, state) {
        (EventKind::ActivityCancelRequested, MachineState::Activity(s)) => {
            MachineState::Activity(activity::Activity::step(s, activity::Input::Cancel)?.0)
        }
        (EventKind::TimerCanceled, MachineState::Timer(s)) => {
            MachineState::Timer(timer::Timer::step(s, timer::Input::Cancel)?.0)
        }
        (EventKind::ChildCancelRequested, MachineState::Child(s)) => {
            MachineState::Child(child::Child::step(s, child::Input::Cancel)?.0)
        }
        _ => return Ok(None),
    }))
}

/// How a machine state is named in corrupt-history messages.
fn describe(state: MachineState) -> &'static str {
    match state {
        MachineState::Activity(_) => "an activity",
        MachineState::Timer(_) => "a timer",
        MachineState::SideEffect(_) => "a side effect",
        MachineState::Marker(_) => "a patch marker",
        MachineState::Child(_) => "a child workflow",
        MachineState::ExternalSignal(_) => "an external signal",
        MachineState::ExternalCancel(_) => "an external cancel",
    }
}

/// Where in a batch the validator is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No batch yet.
    Start,
    /// After `task_started`, before any command event.
    Inbound,
    /// After the first command event of the batch.
    Commands,
    /// After `workflow_terminated`: nothing may follow.
    Terminated,
}

/// The scalar part of the validator (restored as a whole when a load fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    phase: Phase,
    batches: u64,
    batch_first_id: u64,
    workflow_started: bool,
    closed: bool,
}

/// Validates recorded events one by one, remembering what it needs across calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Validator {
    cursor: Cursor,
    /// Machine state of command id N at index N-1, as recorded history drives it; `None` for an
    /// id history skips (a command withdrawn by a cancel in the step that issued it).
    machines: Vec<Option<MachineState>>,
    /// Previous states of machines changed by the load in progress (for rollback).
    undo: Vec<(usize, MachineState)>,
}

/// What to do with a valid event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// `task_started`: open a batch.
    NewBatch,
    /// An inbound event of the open batch.
    Inbound,
    /// A command event of the open batch.
    Command,
    /// `workflow_terminated`: kept nowhere.
    Terminal,
}

/// Undo information for [`Validator::rollback`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    cursor: Cursor,
    ids: usize,
    undo: usize,
}

impl Validator {
    pub(crate) fn new() -> Self {
        Validator {
            cursor: Cursor {
                phase: Phase::Start,
                batches: 0,
                batch_first_id: 1,
                workflow_started: false,
                closed: false,
            },
            machines: Vec::new(),
            undo: Vec::new(),
        }
    }

    /// The machine state of command `id`, as recorded history drove it (`None` for an id not
    /// issued, or withdrawn).
    pub(crate) fn state(&self, id: u64) -> Option<MachineState> {
        self.machines
            .get(id.checked_sub(1)? as usize)
            .copied()
            .flatten()
    }

    /// Number of workflow tasks (batches) seen.
    pub(crate) fn batches(&self) -> u64 {
        self.cursor.batches
    }

    /// True once recorded history has the run's closing command.
    pub(crate) fn closed(&self) -> bool {
        self.cursor.closed
    }

    /// True while the last batch is open (the next load may continue it).
    pub(crate) fn in_batch(&self) -> bool {
        matches!(self.cursor.phase, Phase::Inbound | Phase::Commands)
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark {
            cursor: self.cursor,
            ids: self.machines.len(),
            undo: self.undo.len(),
        }
    }

    /// Forgets how to undo: the load succeeded.
    pub(crate) fn commit(&mut self) {
        self.undo.clear();
    }

    /// Restores the state at `mark`.
    pub(crate) fn rollback(&mut self, mark: Mark) {
        while self.undo.len() > mark.undo {
            let (index, state) = self.undo.pop().expect("length checked");
            self.machines[index] = Some(state);
        }
        self.machines.truncate(mark.ids);
        self.cursor = mark.cursor;
    }

    /// Checks one event (already decoded with the right `seq`) and updates the validator.
    pub(crate) fn check(&mut self, event: &Event) -> Result<Placement> {
        let seq = event.seq;
        let kind = event.body.kind();
        let mut c = self.cursor;
        let corrupt = |message: String| Err(Error::corrupt(seq, message));
        if c.phase == Phase::Terminated {
            return corrupt(format!("{} follows workflow_terminated", kind.as_str()));
        }
        if c.phase == Phase::Start && kind != EventKind::TaskStarted {
            return corrupt(format!(
                "history must start with task_started, not {}",
                kind.as_str()
            ));
        }
        // The first batch must deliver workflow_started before anything else.
        if c.batches == 1 && !c.workflow_started && kind != EventKind::WorkflowStarted {
            return corrupt(format!(
                "the first workflow task must begin with workflow_started, not {}",
                kind.as_str()
            ));
        }
        let placement = match kind.class() {
            EventClass::Marker => {
                if c.closed {
                    return corrupt("task_started after the run closed".to_owned());
                }
                c.phase = Phase::Inbound;
                c.batches += 1;
                c.batch_first_id = self.machines.len() as u64 + 1;
                Placement::NewBatch
            }
            EventClass::Terminal => {
                c.phase = Phase::Terminated;
                Placement::Terminal
            }
            EventClass::Inbound => {
                if c.phase == Phase::Commands {
                    return corrupt(format!(
                        "inbound event {} after the command events of its workflow task",
                        kind.as_str()
                    ));
                }
                if kind == EventKind::WorkflowStarted {
                    if c.workflow_started {
                        return corrupt("a second workflow_started".to_owned());
                    }
                    c.workflow_started = true;
                }
                Placement::Inbound
            }
            EventClass::Command => {
                if c.closed {
                    return corrupt(format!("{} after the run's closing command", kind.as_str()));
                }
                c.phase = Phase::Commands;
                if matches!(
                    kind,
                    EventKind::WorkflowCompleted
                        | EventKind::WorkflowFailed
                        | EventKind::WorkflowCanceled
                        | EventKind::WorkflowContinuedAsNew
                ) {
                    c.closed = true;
                }
                Placement::Command
            }
        };
        if let Some(id) = event.body.command_id() {
            self.check_id(seq, id, &event.body, placement, c.batch_first_id)?;
        }
        self.cursor = c;
        Ok(placement)
    }

    /// Checks the id an event carries and drives its machine.
    fn check_id(
        &mut self,
        seq: u64,
        id: u64,
        body: &EventBody,
        placement: Placement,
        batch_first_id: u64,
    ) -> Result<()> {
        let kind = body.kind();
        let issued = self.machines.len() as u64;
        if let Some(state) = allocated_state(kind) {
            // Ids increase; a gap is a command withdrawn in the step that issued it.
            if id <= issued {
                return Err(Error::corrupt(
                    seq,
                    format!(
                        "{} has id {id}, expected {} or more (ids are handed out in order)",
                        kind.as_str(),
                        issued + 1
                    ),
                ));
            }
            self.machines.resize(id as usize - 1, None);
            self.machines.push(Some(state));
            return Ok(());
        }
        // Inbound events answer commands of earlier tasks; cancels may target a command
        // issued earlier in the same task.
        let known = if placement == Placement::Inbound {
            batch_first_id - 1
        } else {
            issued
        };
        if id > known {
            return Err(Error::corrupt(
                seq,
                format!(
                    "{} refers to command {id}, which was not issued before it",
                    kind.as_str()
                ),
            ));
        }
        let index = (id - 1) as usize;
        let Some(state) = self.machines[index] else {
            return Err(Error::corrupt(
                seq,
                format!(
                    "{} refers to command {id}, which history does not have (withdrawn in \
                     the step that issued it)",
                    kind.as_str()
                ),
            ));
        };
        let illegal = |e: Error| {
            Error::corrupt(
                seq,
                format!("{} for command {id}: {}", kind.as_str(), e.message()),
            )
        };
        let next = if placement == Placement::Inbound {
            state.inbound(body).map_err(illegal)?.ok().map(|(to, _)| to)
        } else {
            cancel(kind, state).map_err(illegal)?
        };
        let Some(next) = next else {
            return Err(Error::corrupt(
                seq,
                format!(
                    "{} refers to command {id}, which is {}",
                    kind.as_str(),
                    describe(state)
                ),
            ));
        };
        self.undo.push((index, state));
        self.machines[index] = Some(next);
        Ok(())
    }
}
