//! Checks that recorded history is well formed while it is loaded.
//!
//! The checks are the ones the contract calls *corrupt history*: contiguous `seq`, batches that
//! open with `task_started`, inbound events before command events inside a batch, the run's
//! `workflow_started` first, nothing after the closing command, command ids handed out 1, 2, 3...
//! in order, and every id an event refers to belonging to an earlier command of the right kind.
//! With those guaranteed, anything that goes wrong during replay is either nondeterminism or an
//! engine bug.

use crate::error::{Error, Result};
use crate::event::{Event, EventClass, EventKind};

/// The kind of command that owns an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommandKind {
    Activity,
    Timer,
    SideEffect,
    Marker,
    Child,
    ExternalSignal,
}

/// How an event kind relates to command ids: which kind of command it belongs to and whether it
/// is the event that hands out a new id.
pub(crate) fn id_role(kind: EventKind) -> Option<(CommandKind, bool)> {
    use CommandKind as C;
    use EventKind as K;
    Some(match kind {
        K::ActivityScheduled => (C::Activity, true),
        K::ActivityCompleted | K::ActivityFailed | K::ActivityCancelRequested => {
            (C::Activity, false)
        }
        K::TimerStarted => (C::Timer, true),
        K::TimerFired | K::TimerCanceled => (C::Timer, false),
        K::SideEffectRecorded => (C::SideEffect, true),
        K::MarkerRecorded => (C::Marker, true),
        K::ChildScheduled => (C::Child, true),
        K::ChildCompleted | K::ChildFailed | K::ChildCancelRequested => (C::Child, false),
        K::SignalExternalSent => (C::ExternalSignal, true),
        K::SignalExternalCompleted => (C::ExternalSignal, false),
        _ => return None,
    })
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
    /// Kind of command id N at index N-1.
    kinds: Vec<CommandKind>,
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
            kinds: Vec::new(),
        }
    }

    /// True while the last batch is open (the next load may continue it).
    pub(crate) fn in_batch(&self) -> bool {
        matches!(self.cursor.phase, Phase::Inbound | Phase::Commands)
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark {
            cursor: self.cursor,
            ids: self.kinds.len(),
        }
    }

    pub(crate) fn rollback(&mut self, mark: Mark) {
        self.cursor = mark.cursor;
        self.kinds.truncate(mark.ids);
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
                c.batch_first_id = self.kinds.len() as u64 + 1;
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
        if let (Some((owner, allocates)), Some(id)) = (id_role(kind), event.body.command_id()) {
            let issued = self.kinds.len() as u64;
            if allocates {
                if id != issued + 1 {
                    return corrupt(format!(
                        "{} has id {id}, expected {} (ids are handed out in order)",
                        kind.as_str(),
                        issued + 1
                    ));
                }
                self.kinds.push(owner);
            } else {
                // Inbound events answer commands of earlier tasks; cancels may target a
                // command issued earlier in the same task.
                let known = if placement == Placement::Inbound {
                    c.batch_first_id - 1
                } else {
                    issued
                };
                if id > known {
                    return corrupt(format!(
                        "{} refers to command {id}, which was not issued before it",
                        kind.as_str()
                    ));
                }
                let actual = self.kinds[id as usize - 1];
                if actual != owner {
                    return corrupt(format!(
                        "{} refers to command {id}, which is a {actual:?}, not a {owner:?}",
                        kind.as_str()
                    ));
                }
            }
        }
        self.cursor = c;
        Ok(placement)
    }
}
