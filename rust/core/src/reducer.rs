//! The reducer: the state of one workflow run, fed with history and commands.
//!
//! Sans-I/O: the caller (the Python runtime) pushes recorded history (`load_history`) and new
//! inbox events (`add_new_batch`), pulls activations, reports the commands the workflow code
//! issues, and drains the new events and tasks. Time arrives as an argument; nothing here reads a
//! clock, does I/O or draws random numbers. Every method either succeeds or returns an [`Error`]
//! and leaves the reducer exactly as it was (methods validate everything before they change
//! anything).

use crate::command::Identity;
use crate::error::{Error, Result};
use crate::event::{self, Event, EventBody, EventClass, EventKind, SeqRule};
use crate::history::{Placement, Validator};
use crate::machines::{
    activity, child, completion, external_signal, marker, side_effect, timer, Effect, Machine,
    MachineState, Slot,
};
use crate::outputs::{Activation, Job, Task, TaskKind};
use crate::payload::Payload;
use std::collections::VecDeque;
use std::ops::Range;

/// One workflow task waiting to be activated.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Batch {
    /// The `task_started` time.
    time: i64,
    /// Loaded from history (true) or created by `add_new_batch` (false).
    replaying: bool,
    /// Indexes into `Reducer::events`.
    inbound: Range<usize>,
    /// Indexes into `Reducer::events`; empty for a new batch.
    commands: Range<usize>,
    /// Sequence number of the batch's last event.
    last_seq: u64,
    /// Sequence number of the batch's last inbound event (its `task_started` when it has none).
    inbound_seq: u64,
}

/// The activation the workflow code is running.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Current {
    replaying: bool,
    /// Next recorded command event to match.
    next: usize,
    /// End of the batch's recorded command events.
    end: usize,
    /// Sequence number of the batch's last event.
    last_seq: u64,
    /// Sequence number of the batch's last inbound event: the length of history when the
    /// workflow task started (`workflow.info().history_length`).
    inbound_seq: u64,
}

/// Where a command's event comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// Not replaying: record a new event (and task).
    Fresh,
    /// Replaying: the recorded event at this index of `Reducer::events` matches.
    Recorded(usize),
    /// Replaying a command that can be cancelled (activity, timer, child) that history does
    /// not have at this point: it was withdrawn when it ran, if the code cancels it in this same
    /// step. Otherwise `finish_activation` reports this nondeterminism.
    Tentative(Error),
}

/// A command issued in the current activation that can still be withdrawn by a cancel in the
/// same step.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unsent {
    id: u64,
    /// `None` when recorded fresh (its event and task are withdrawn); the nondeterminism to
    /// report at `finish_activation` when it was accepted tentatively on replay.
    mismatch: Option<Error>,
}

/// The state of one workflow run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reducer {
    /// Decoded inbound and command events of batches not yet finished (cleared when none are
    /// left, so a long-lived run does not accumulate them).
    events: Vec<Event>,
    /// Batches waiting for `next_activation`.
    batches: VecDeque<Batch>,
    /// The activation in progress.
    current: Option<Current>,
    /// Machine of command id N at index N-1.
    slots: Vec<Slot>,
    /// Open or closed.
    run: completion::State,
    /// Change ids `patched` has answered for this run, with the answer (kept for the rest of
    /// the run, true or false).
    patches: Vec<(Box<str>, bool)>,
    /// Events in history, recorded and new.
    history_length: u64,
    /// Checks recorded history as it is loaded.
    validator: Validator,
    /// `add_new_batch` was called: history can no longer be loaded.
    has_new_batches: bool,
    /// A new batch is queued or running.
    new_batch_open: bool,
    /// Encoded events not yet taken.
    new_events: Vec<Vec<u8>>,
    /// Command events recorded by the current (fresh) activation, encoded with their sequence
    /// numbers when it finishes (a cancel in the same step may withdraw one).
    fresh: Vec<EventBody>,
    /// Cancellable commands issued by the current activation.
    unsent: Vec<Unsent>,
    /// Tasks not yet taken.
    tasks: Vec<Task>,
}

impl Default for Reducer {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks a payload coming from the runtime; invalid JSON is a bug in the converter.
fn payload(bytes: &[u8], what: &str) -> Result<Payload> {
    Payload::from_json(bytes)
        .map_err(|e| Error::engine_bug(format!("{what} is not a single valid JSON value: {e}")))
}

impl Reducer {
    /// An empty run.
    pub fn new() -> Self {
        Reducer {
            events: Vec::new(),
            batches: VecDeque::new(),
            current: None,
            slots: Vec::new(),
            run: completion::State::Running,
            patches: Vec::new(),
            history_length: 0,
            validator: Validator::new(),
            has_new_batches: false,
            new_batch_open: false,
            new_events: Vec::new(),
            fresh: Vec::new(),
            unsent: Vec::new(),
            tasks: Vec::new(),
        }
    }

    // ----------------------------------------------------------------------------------------
    // Inputs: history and inbox

    /// Queues recorded events (with `seq`) for replay. May be called several times with
    /// consecutive parts of the history, but not after [`Reducer::add_new_batch`].
    pub fn load_history<B: AsRef<[u8]>>(&mut self, raw: &[B]) -> Result<()> {
        if self.has_new_batches {
            return Err(Error::engine_bug(
                "load_history called after add_new_batch; recorded history must be loaded first",
            ));
        }
        if raw.is_empty() {
            return Ok(());
        }
        // A load that does not start a task continues the last loaded one, which must not have
        // been activated yet.
        let continues_open_batch = self.validator.in_batch();
        let can_continue = self.batches.back().is_some_and(|b| b.replaying);
        let mark = self.validator.mark();
        let base = self.events.len();
        let mut decoded: Vec<Event> = Vec::with_capacity(raw.len());
        let mut new_batches: Vec<Batch> = Vec::new();
        // Growth of the last queued batch when this load continues it.
        // (inbound_end, commands_end, last_seq, inbound_seq)
        let mut tail: Option<(usize, usize, u64, u64)> = None;
        let mut seq = self.history_length;
        let result = (|| -> Result<()> {
            for bytes in raw {
                seq += 1;
                let ev = event::decode(bytes.as_ref(), seq, SeqRule::Recorded)?;
                let placement = self.validator.check(&ev)?;
                let index = base + decoded.len();
                match placement {
                    Placement::NewBatch => {
                        let EventBody::TaskStarted { time } = ev.body else {
                            unreachable!("validator places only task_started here")
                        };
                        new_batches.push(Batch {
                            time,
                            replaying: true,
                            inbound: index..index,
                            commands: index..index,
                            last_seq: seq,
                            inbound_seq: seq,
                        });
                        continue; // task_started itself is not kept
                    }
                    Placement::Terminal => continue,
                    Placement::Inbound | Placement::Command => {
                        let is_inbound = placement == Placement::Inbound;
                        if let Some(batch) = new_batches.last_mut() {
                            if is_inbound {
                                batch.inbound.end = index + 1;
                                batch.commands = index + 1..index + 1;
                                batch.inbound_seq = seq;
                            } else {
                                batch.commands.end = index + 1;
                            }
                            batch.last_seq = seq;
                        } else {
                            if !(continues_open_batch && can_continue) {
                                return Err(Error::engine_bug(format!(
                                    "load_history: event #{seq} continues a workflow task that \
                                     was already activated"
                                )));
                            }
                            let last = self.batches.back().expect("checked above");
                            let (inbound_end, _, _, inbound_seq) = tail.unwrap_or((
                                last.inbound.end,
                                last.commands.end,
                                0,
                                last.inbound_seq,
                            ));
                            tail = Some(if is_inbound {
                                (index + 1, index + 1, seq, seq)
                            } else {
                                (inbound_end, index + 1, seq, inbound_seq)
                            });
                        }
                    }
                }
                decoded.push(ev);
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.validator.rollback(mark);
            return Err(e);
        }
        self.validator.commit();
        if let Some((inbound_end, commands_end, last_seq, inbound_seq)) = tail {
            let last = self
                .batches
                .back_mut()
                .expect("tail implies a queued batch");
            last.inbound.end = inbound_end;
            if last.commands.start < inbound_end {
                last.commands.start = inbound_end;
            }
            last.commands.end = commands_end;
            last.last_seq = last_seq;
            last.inbound_seq = inbound_seq;
        }
        self.events.extend(decoded);
        self.batches.extend(new_batches);
        self.history_length = seq;
        Ok(())
    }

    /// Starts a new workflow task at `time` with inbox events (without `seq`): records its
    /// `task_started` and the events with fresh sequence numbers and queues the batch.
    pub fn add_new_batch<B: AsRef<[u8]>>(&mut self, time: i64, raw: &[B]) -> Result<()> {
        completion::Completion::step(self.run, completion::Input::NewBatch)
            .map_err(|e| Error::engine_bug(format!("add_new_batch: {}", e.message())))?;
        if self.new_batch_open {
            return Err(Error::engine_bug(
                "add_new_batch called before the previous new batch was activated and finished",
            ));
        }
        let first_seq = self.history_length + 1;
        let mut decoded = Vec::with_capacity(raw.len());
        for (i, bytes) in raw.iter().enumerate() {
            let seq = first_seq + 1 + i as u64;
            let ev = event::decode(bytes.as_ref(), seq, SeqRule::Inbox)?;
            let kind = ev.body.kind();
            if kind.class() != EventClass::Inbound {
                return Err(Error::corrupt(
                    seq,
                    format!("{} cannot arrive in a run's inbox", kind.as_str()),
                ));
            }
            let first_of_run = self.history_length == 0 && i == 0;
            if (kind == EventKind::WorkflowStarted) != first_of_run {
                return Err(Error::corrupt(
                    seq,
                    if first_of_run {
                        format!(
                            "a run must begin with workflow_started, not {}",
                            kind.as_str()
                        )
                    } else {
                        "workflow_started can only be the first event of a run".to_owned()
                    },
                ));
            }
            decoded.push(ev);
        }
        if self.history_length == 0 && decoded.is_empty() {
            return Err(Error::corrupt(
                first_seq + 1,
                "a run must begin with workflow_started",
            ));
        }
        // Commit.
        let start = self.events.len();
        self.new_events
            .push(event::encode(first_seq, &EventBody::TaskStarted { time }));
        for ev in &decoded {
            self.new_events.push(event::encode(ev.seq, &ev.body));
        }
        let last_seq = first_seq + decoded.len() as u64;
        self.events.extend(decoded);
        let end = self.events.len();
        self.batches.push_back(Batch {
            time,
            replaying: false,
            inbound: start..end,
            commands: end..end,
            last_seq,
            inbound_seq: last_seq,
        });
        self.history_length = last_seq;
        self.has_new_batches = true;
        self.new_batch_open = true;
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // Activations

    /// The next batch to run the workflow code against, or `None` when there is none. Applies
    /// the batch's inbound events to their machines.
    pub fn next_activation(&mut self) -> Result<Option<Activation>> {
        if self.current.is_some() {
            return Err(Error::engine_bug(
                "next_activation called before finish_activation of the current activation",
            ));
        }
        let Some(batch) = self.batches.front() else {
            return Ok(None);
        };
        // Compute every transition first (later events may hit the same machine), commit after.
        let mut changes: Vec<(usize, MachineState)> = Vec::new();
        let mut jobs = Vec::with_capacity(batch.inbound.len());
        for ev in &self.events[batch.inbound.clone()] {
            let Some(id) = ev.body.command_id() else {
                jobs.push(Job::from_event(ev));
                continue;
            };
            let index = (id - 1) as usize;
            let Some(slot) = self.slots.get(index) else {
                let expected = ev.body.describe();
                return Err(Error::nondeterminism(
                    ev.seq,
                    expected.clone(),
                    format!("no command {id}"),
                    format!(
                        "history event #{} is {expected} but the workflow code never issued \
                         command {id}",
                        ev.seq
                    ),
                ));
            };
            let from = changes
                .iter()
                .rev()
                .find(|(i, _)| *i == index)
                .map_or(slot.state, |(_, s)| *s);
            match from.inbound(&ev.body)? {
                Ok((to, effect)) => {
                    changes.push((index, to));
                    if effect == Effect::Deliver {
                        jobs.push(Job::from_event(ev));
                    }
                }
                Err(_mismatch) => {
                    let expected = ev.body.describe();
                    let got = slot.describe_command();
                    return Err(Error::nondeterminism(
                        ev.seq,
                        expected.clone(),
                        got.clone(),
                        format!(
                            "history event #{} is {expected} but the workflow code issued {got} \
                             as command {id}",
                            ev.seq
                        ),
                    ));
                }
            }
        }
        // The execution deadline passed: a failure from now on closes the run as timed out.
        let run = if jobs.iter().any(|job| job.kind == EventKind::TimedOut) {
            completion::Completion::step(self.run, completion::Input::TimedOut)
                .map_err(|e| Error::engine_bug(format!("timed_out: {}", e.message())))?
                .0
        } else {
            self.run
        };
        for (index, state) in changes {
            self.slots[index].state = state;
        }
        self.run = run;
        let batch = self.batches.pop_front().expect("peeked above");
        self.current = Some(Current {
            replaying: batch.replaying,
            next: batch.commands.start,
            end: batch.commands.end,
            last_seq: batch.last_seq,
            inbound_seq: batch.inbound_seq,
        });
        Ok(Some(Activation {
            time: batch.time,
            replaying: batch.replaying,
            jobs,
        }))
    }

    /// Ends the current activation. For a replayed batch, every recorded command event must
    /// have been matched.
    pub fn finish_activation(&mut self) -> Result<()> {
        let Some(current) = &self.current else {
            return Err(Error::engine_bug(
                "finish_activation called without an activation in progress",
            ));
        };
        if let Some(mismatch) = self.unsent.iter().find_map(|u| u.mismatch.clone()) {
            return Err(mismatch);
        }
        if current.replaying && current.next < current.end {
            let ev = &self.events[current.next];
            let expected = ev.body.describe();
            return Err(Error::nondeterminism(
                ev.seq,
                expected.clone(),
                "no further command",
                format!(
                    "history event #{} is {expected} but the workflow code no longer issues it",
                    ev.seq
                ),
            ));
        }
        if !current.replaying {
            self.new_batch_open = false;
        }
        let first = self.history_length - self.fresh.len() as u64 + 1;
        for (i, body) in std::mem::take(&mut self.fresh).iter().enumerate() {
            self.new_events.push(event::encode(first + i as u64, body));
        }
        self.unsent.clear();
        self.current = None;
        if self.batches.is_empty() {
            self.events.clear();
        }
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // Commands

    /// The checks every command goes through, in order: an activation is running (else engine
    /// bug), the run is open (else engine bug), and while replaying the next recorded command
    /// event has the same identity (else nondeterminism). Changes nothing.
    fn check_command(
        &self,
        identity: &Identity<'_>,
        run_input: completion::Input,
    ) -> Result<(Source, completion::State)> {
        let Some(current) = &self.current else {
            return Err(Error::engine_bug(format!(
                "{} issued outside an activation",
                identity.describe()
            )));
        };
        let (run, _) = completion::Completion::step(self.run, run_input)
            .map_err(|e| Error::engine_bug(format!("{}: {}", identity.describe(), e.message())))?;
        if !current.replaying {
            return Ok((Source::Fresh, run));
        }
        let Some(ev) = self.events[current.next..current.end].first() else {
            let got = identity.describe();
            let seq = current.last_seq + 1;
            let tail = if seq > self.history_length {
                format!("history ends at event #{}", current.last_seq)
            } else {
                format!(
                    "the workflow task ending at history event #{} recorded no further command",
                    current.last_seq
                )
            };
            return Err(Error::nondeterminism(
                seq,
                "no further command",
                got.clone(),
                format!("{tail} but the workflow code issued {got}"),
            ));
        };
        match Identity::try_from(&ev.body) {
            Ok(recorded) if recorded == *identity => Ok((Source::Recorded(current.next), run)),
            _ => {
                let got = identity.describe();
                let expected = ev.body.describe();
                Err(Error::nondeterminism(
                    ev.seq,
                    expected.clone(),
                    got.clone(),
                    format!(
                        "history event #{} is {expected} but the workflow code issued {got}",
                        ev.seq
                    ),
                ))
            }
        }
    }

    /// Moves past the matched recorded command event.
    fn consume(&mut self) {
        if let Some(current) = &mut self.current {
            current.next += 1;
        }
    }

    /// Appends a new command event with the next sequence number (encoded when the activation
    /// finishes).
    fn record(&mut self, body: &EventBody) {
        self.history_length += 1;
        self.fresh.push(body.clone());
    }

    /// Like [`Reducer::check_command`] for a command that a cancel in the same step can
    /// withdraw (schedule_activity, start_timer, start_child). While replaying, a recorded
    /// command event that hands out a later id than this command's (or none at all) means the
    /// command may have been withdrawn when it ran: it is accepted tentatively.
    fn check_cancellable(&self, identity: &Identity<'_>) -> Result<(Source, completion::State)> {
        match self.check_command(identity, completion::Input::Command) {
            Ok((Source::Recorded(index), run)) => {
                let ev = &self.events[index];
                let id = self.next_id();
                if ev.body.command_id() == Some(id) {
                    return Ok((Source::Recorded(index), run));
                }
                // The recorded command is a later one: this one was withdrawn, or is extra.
                let expected = ev.body.describe();
                let got = identity.describe();
                let e = Error::nondeterminism(
                    ev.seq,
                    expected.clone(),
                    got.clone(),
                    format!(
                        "history event #{} is {expected} but the workflow code issued {got} as \
                         command {id}",
                        ev.seq
                    ),
                );
                Ok((Source::Tentative(e), run))
            }
            Ok(found) => Ok(found),
            Err(e @ Error::Nondeterminism(_)) => {
                let current = self
                    .current
                    .as_ref()
                    .expect("nondeterminism implies replay");
                let next = self.events[current.next..current.end].first();
                let hands_out_this_id = next.is_some_and(|ev| {
                    allocates_id(&ev.body) && ev.body.command_id() == Some(self.next_id())
                });
                if hands_out_this_id {
                    return Err(e);
                }
                let (run, _) = completion::Completion::step(self.run, completion::Input::Command)
                    .map_err(|err| {
                    Error::engine_bug(format!("{}: {}", identity.describe(), err.message()))
                })?;
                Ok((Source::Tentative(e), run))
            }
            Err(e) => Err(e),
        }
    }

    /// Remembers a cancellable command issued by this activation.
    fn issued(&mut self, id: u64, source: Source) {
        match source {
            Source::Fresh => self.unsent.push(Unsent { id, mismatch: None }),
            Source::Tentative(e) => self.unsent.push(Unsent {
                id,
                mismatch: Some(e),
            }),
            Source::Recorded(_) => {}
        }
    }

    /// A cancel of command `id` in the step that issued it: takes its event and task back.
    /// Returns false when `id` was not issued by this activation (or came from history).
    fn withdraw(&mut self, id: u64, command: &str) -> Result<bool> {
        let Some(at) = self.unsent.iter().position(|u| u.id == id) else {
            return Ok(false);
        };
        let index = (id - 1) as usize;
        let to = match (command, self.slots[index].state) {
            ("cancel_activity", MachineState::Activity(s)) => MachineState::Activity(
                activity::Activity::step(s, activity::Input::CancelInSameStep)?.0,
            ),
            ("cancel_timer", MachineState::Timer(s)) => {
                MachineState::Timer(timer::Timer::step(s, timer::Input::CancelInSameStep)?.0)
            }
            ("cancel_child", MachineState::Child(s)) => {
                MachineState::Child(child::Child::step(s, child::Input::CancelInSameStep)?.0)
            }
            // Another kind of command: the regular path reports it.
            _ => return Ok(false),
        };
        completion::Completion::step(self.run, completion::Input::Command)
            .map_err(|e| Error::engine_bug(format!("{command}({id}): {}", e.message())))?;
        if self.unsent[at].mismatch.is_none() {
            let event = self
                .fresh
                .iter()
                .position(|b| allocates_id(b) && b.command_id() == Some(id))
                .ok_or_else(|| Error::engine_bug(format!("{command}({id}): event not found")))?;
            self.fresh.remove(event);
            self.history_length -= 1;
            self.tasks.retain(|t| {
                !(t.id == id
                    && matches!(
                        t.kind,
                        TaskKind::Activity | TaskKind::Timer | TaskKind::StartChild
                    ))
            });
        }
        self.unsent.remove(at);
        self.slots[index].state = to;
        Ok(true)
    }

    fn next_id(&self) -> u64 {
        self.slots.len() as u64 + 1
    }

    /// The recorded event at `index` (replay only).
    fn recorded(&self, index: usize) -> &EventBody {
        &self.events[index].body
    }

    /// Looks up the target of a cancel command.
    fn target(&self, id: u64, command: &str) -> Result<(usize, MachineState)> {
        let index = id.checked_sub(1).map(|i| i as usize);
        match index.and_then(|i| self.slots.get(i).map(|s| (i, s.state))) {
            Some(found) => Ok(found),
            None => Err(Error::engine_bug(format!(
                "{command}({id}): the workflow code never issued command {id}"
            ))),
        }
    }

    fn wrong_target(command: &str, id: u64, slot: &Slot) -> Error {
        Error::engine_bug(format!(
            "{command}({id}): command {id} is {}",
            slot.describe_command()
        ))
    }

    /// `schedule_activity`: returns the activity's command id.
    pub fn schedule_activity(&mut self, name: &str, input: &[u8], options: &[u8]) -> Result<u64> {
        let (source, run) = self.check_cancellable(&Identity::ScheduleActivity(name))?;
        let (state, _) =
            activity::Activity::step(activity::State::Created, activity::Input::Schedule)?;
        let id = self.next_id();
        match source {
            Source::Fresh => {
                let input = payload(input, "activity input")?;
                let options = payload(options, "activity options")?;
                let mut task = Task::new(TaskKind::Activity, id);
                task.name = name.to_owned();
                task.payload = Some(input.clone());
                task.options = Some(options.clone());
                self.record(&EventBody::ActivityScheduled {
                    id,
                    name: name.to_owned(),
                    input,
                    options,
                });
                self.tasks.push(task);
            }
            Source::Recorded(_) => self.consume(),
            Source::Tentative(_) => {}
        }
        self.slots.push(Slot {
            state: MachineState::Activity(state),
            name: name.into(),
            options: None,
        });
        self.issued(id, source);
        self.run = run;
        Ok(id)
    }

    /// `cancel_activity`: the code stops waiting for activity `id`.
    pub fn cancel_activity(&mut self, id: u64) -> Result<()> {
        if self.withdraw(id, "cancel_activity")? {
            return Ok(());
        }
        let (source, run) =
            self.check_command(&Identity::CancelActivity(id), completion::Input::Command)?;
        let (index, state) = self.target(id, "cancel_activity")?;
        let MachineState::Activity(from) = state else {
            return Err(Self::wrong_target(
                "cancel_activity",
                id,
                &self.slots[index],
            ));
        };
        let (to, _) = activity::Activity::step(from, activity::Input::Cancel)?;
        match source {
            Source::Fresh => {
                self.record(&EventBody::ActivityCancelRequested { id });
                self.tasks.push(Task::new(TaskKind::CancelActivity, id));
            }
            Source::Recorded(_) => self.consume(),
            Source::Tentative(_) => unreachable!("only check_cancellable accepts tentatively"),
        }
        self.slots[index].state = MachineState::Activity(to);
        self.run = run;
        Ok(())
    }

    /// `start_timer`: returns the timer's command id. While replaying the recorded fire time
    /// is kept.
    pub fn start_timer(&mut self, fire_at: i64) -> Result<u64> {
        let (source, run) = self.check_cancellable(&Identity::StartTimer)?;
        let (state, _) = timer::Timer::step(timer::State::Created, timer::Input::Start)?;
        let id = self.next_id();
        match source {
            Source::Fresh => {
                self.record(&EventBody::TimerStarted { id, fire_at });
                let mut task = Task::new(TaskKind::Timer, id);
                task.time = fire_at;
                self.tasks.push(task);
            }
            Source::Recorded(_) => self.consume(),
            Source::Tentative(_) => {}
        }
        self.slots.push(Slot {
            state: MachineState::Timer(state),
            name: "".into(),
            options: None,
        });
        self.issued(id, source);
        self.run = run;
        Ok(id)
    }

    /// `cancel_timer`: the code stops waiting for timer `id`.
    pub fn cancel_timer(&mut self, id: u64) -> Result<()> {
        if self.withdraw(id, "cancel_timer")? {
            return Ok(());
        }
        let (source, run) =
            self.check_command(&Identity::CancelTimer(id), completion::Input::Command)?;
        let (index, state) = self.target(id, "cancel_timer")?;
        let MachineState::Timer(from) = state else {
            return Err(Self::wrong_target("cancel_timer", id, &self.slots[index]));
        };
        let (to, _) = timer::Timer::step(from, timer::Input::Cancel)?;
        match source {
            Source::Fresh => {
                self.record(&EventBody::TimerCanceled { id });
                self.tasks.push(Task::new(TaskKind::CancelTimer, id));
            }
            Source::Recorded(_) => self.consume(),
            Source::Tentative(_) => unreachable!("only check_cancellable accepts tentatively"),
        }
        self.slots[index].state = MachineState::Timer(to);
        self.run = run;
        Ok(())
    }

    /// `side_effect`: records `value` (not replaying) or returns the recorded value (replaying;
    /// `value` may then be `None` and is ignored otherwise). Returns the command id and value.
    pub fn side_effect(&mut self, value: Option<&[u8]>) -> Result<(u64, Payload)> {
        let (source, run) =
            self.check_command(&Identity::SideEffect, completion::Input::Command)?;
        let (state, _) =
            side_effect::SideEffect::step(side_effect::State::Created, side_effect::Input::Record)?;
        let id = self.next_id();
        let value = match source {
            Source::Fresh => {
                let Some(bytes) = value else {
                    return Err(Error::engine_bug(
                        "side_effect(None) outside replay: the runtime must compute the value",
                    ));
                };
                let value = payload(bytes, "side effect value")?;
                self.record(&EventBody::SideEffectRecorded {
                    id,
                    value: value.clone(),
                });
                value
            }
            Source::Recorded(index) => {
                let EventBody::SideEffectRecorded { value, .. } = self.recorded(index) else {
                    unreachable!("identity matched side_effect_recorded")
                };
                let value = value.clone();
                self.consume();
                value
            }
            Source::Tentative(_) => unreachable!("only check_cancellable accepts tentatively"),
        };
        self.slots.push(Slot {
            state: MachineState::SideEffect(state),
            name: "".into(),
            options: None,
        });
        self.run = run;
        Ok((id, value))
    }

    /// `workflow.patched(change_id)` / `deprecate_patch(change_id)` (`deprecated = true`).
    ///
    /// Not replaying: records a marker and returns true (a deprecated patch records nothing and
    /// returns true). Replaying: consumes the next recorded command event if it is a marker for
    /// `change_id` and returns true; otherwise consumes nothing and returns false (true for a
    /// deprecated patch). Once `patched` (not deprecated) has answered for a change id, it gives
    /// the same answer for the rest of the run: a run that replayed the old path (false) keeps
    /// it after replay has caught up, and records no marker.
    pub fn patched(&mut self, change_id: &str, deprecated: bool) -> Result<bool> {
        let Some(current) = &self.current else {
            return Err(Error::engine_bug(format!(
                "patched '{change_id}' issued outside an activation"
            )));
        };
        completion::Completion::step(self.run, completion::Input::Command)
            .map_err(|e| Error::engine_bug(format!("patched '{change_id}': {}", e.message())))?;
        if let Some((_, answer)) = self.patches.iter().find(|(p, _)| &**p == change_id) {
            return Ok(*answer);
        }
        let input = if deprecated {
            marker::Input::Deprecated
        } else {
            marker::Input::Patched
        };
        let (state, _) = marker::Marker::step(marker::State::Created, input)?;
        let id = self.next_id();
        if current.replaying {
            // The marker must also hand out this very id: a later one (after a withdrawn
            // command) belongs to a later patched() call.
            let next_is_marker = self.events[current.next..current.end].first().is_some_and(
                |ev| matches!(&ev.body, EventBody::MarkerRecorded { id: m, name } if name == change_id && *m == id),
            );
            if !next_is_marker {
                if !deprecated {
                    self.patches.push((change_id.into(), false));
                }
                return Ok(deprecated);
            }
            self.consume();
        } else {
            if deprecated {
                return Ok(true);
            }
            self.record(&EventBody::MarkerRecorded {
                id,
                name: change_id.to_owned(),
            });
        }
        self.slots.push(Slot {
            state: MachineState::Marker(state),
            name: change_id.into(),
            options: None,
        });
        self.patches.push((change_id.into(), true));
        Ok(true)
    }

    /// `start_child`: returns the child's command id.
    pub fn start_child(&mut self, name: &str, input: &[u8], options: &[u8]) -> Result<u64> {
        let (source, run) = self.check_cancellable(&Identity::StartChild(name))?;
        let (state, _) = child::Child::step(child::State::Created, child::Input::Start)?;
        let id = self.next_id();
        let options = match &source {
            Source::Fresh => {
                let input = payload(input, "child input")?;
                let options = payload(options, "child options")?;
                let mut task = Task::new(TaskKind::StartChild, id);
                task.name = name.to_owned();
                task.payload = Some(input.clone());
                task.options = Some(options.clone());
                self.record(&EventBody::ChildScheduled {
                    id,
                    name: name.to_owned(),
                    input,
                    options: options.clone(),
                });
                self.tasks.push(task);
                options
            }
            Source::Recorded(index) => {
                let EventBody::ChildScheduled { options, .. } = self.recorded(*index) else {
                    unreachable!("identity matched child_scheduled")
                };
                let options = options.clone();
                self.consume();
                options
            }
            Source::Tentative(_) => payload(options, "child options")?,
        };
        self.slots.push(Slot {
            state: MachineState::Child(state),
            name: name.into(),
            options: Some(options),
        });
        self.issued(id, source);
        self.run = run;
        Ok(id)
    }

    fn cancel_child_task(&self, id: u64) -> Task {
        let slot = &self.slots[(id - 1) as usize];
        let mut task = Task::new(TaskKind::CancelChild, id);
        task.name = slot.name.to_string();
        task.options.clone_from(&slot.options);
        task
    }

    /// `cancel_child`: the code stops waiting for child `id` and asks the backend to cancel it.
    pub fn cancel_child(&mut self, id: u64) -> Result<()> {
        if self.withdraw(id, "cancel_child")? {
            return Ok(());
        }
        let (source, run) =
            self.check_command(&Identity::CancelChild(id), completion::Input::Command)?;
        let (index, state) = self.target(id, "cancel_child")?;
        let MachineState::Child(from) = state else {
            return Err(Self::wrong_target("cancel_child", id, &self.slots[index]));
        };
        let (to, _) = child::Child::step(from, child::Input::Cancel)?;
        match source {
            Source::Fresh => {
                self.record(&EventBody::ChildCancelRequested { id });
                let task = self.cancel_child_task(id);
                self.tasks.push(task);
            }
            Source::Recorded(_) => self.consume(),
            Source::Tentative(_) => unreachable!("only check_cancellable accepts tentatively"),
        }
        self.slots[index].state = MachineState::Child(to);
        self.run = run;
        Ok(())
    }

    /// `signal_external`: returns the signal's command id.
    pub fn signal_external(&mut self, name: &str, payload_: &[u8], options: &[u8]) -> Result<u64> {
        let (source, run) =
            self.check_command(&Identity::SignalExternal(name), completion::Input::Command)?;
        let (state, _) = external_signal::ExternalSignal::step(
            external_signal::State::Created,
            external_signal::Input::Send,
        )?;
        let id = self.next_id();
        match source {
            Source::Fresh => {
                let payload_ = payload(payload_, "signal payload")?;
                let options = payload(options, "signal options")?;
                let mut task = Task::new(TaskKind::SignalExternal, id);
                task.name = name.to_owned();
                task.payload = Some(payload_.clone());
                task.options = Some(options.clone());
                self.record(&EventBody::SignalExternalSent {
                    id,
                    name: name.to_owned(),
                    payload: payload_,
                    options,
                });
                self.tasks.push(task);
            }
            Source::Recorded(_) => self.consume(),
            Source::Tentative(_) => unreachable!("only check_cancellable accepts tentatively"),
        }
        self.slots.push(Slot {
            state: MachineState::ExternalSignal(state),
            name: name.into(),
            options: None,
        });
        self.run = run;
        Ok(id)
    }

    /// `cancel_external`: ask the instance named in `options` to cancel, with `reason`;
    /// returns the command id. Answered by `signal_external_completed`, like a signal.
    pub fn cancel_external(&mut self, options: &[u8], reason: &str) -> Result<u64> {
        let (source, run) =
            self.check_command(&Identity::CancelExternal, completion::Input::Command)?;
        let (state, _) = external_signal::ExternalSignal::step(
            external_signal::State::Created,
            external_signal::Input::Send,
        )?;
        let id = self.next_id();
        match source {
            Source::Fresh => {
                let options = payload(options, "cancel options")?;
                let mut task = Task::new(TaskKind::CancelExternal, id);
                task.payload = Some(Payload::json_string(reason));
                task.options = Some(options.clone());
                self.record(&EventBody::ExternalCancelRequested {
                    id,
                    options,
                    reason: reason.to_owned(),
                });
                self.tasks.push(task);
            }
            Source::Recorded(_) => self.consume(),
            Source::Tentative(_) => unreachable!("only check_cancellable accepts tentatively"),
        }
        self.slots.push(Slot {
            state: MachineState::ExternalCancel(state),
            name: "".into(),
            options: None,
        });
        self.run = run;
        Ok(id)
    }

    /// The shared tail of the four closing commands. `fresh` holds the event and task to
    /// record when not replaying.
    fn close(
        &mut self,
        identity: Identity<'_>,
        input: completion::Input,
        fresh: impl FnOnce() -> Result<(EventBody, Task)>,
    ) -> Result<()> {
        let (source, run) = self.check_command(&identity, input)?;
        // Parent-close policy: every running child is cancelled.
        let mut running_children = Vec::new();
        for (index, slot) in self.slots.iter().enumerate() {
            if slot.state == MachineState::Child(child::State::Started) {
                let (to, _) =
                    child::Child::step(child::State::Started, child::Input::ParentClosed)?;
                running_children.push((index, to));
            }
        }
        match source {
            Source::Fresh => {
                let (body, task) = fresh()?;
                for &(index, _) in &running_children {
                    let task = self.cancel_child_task(index as u64 + 1);
                    self.tasks.push(task);
                }
                self.record(&body);
                self.tasks.push(task);
            }
            Source::Recorded(_) => self.consume(),
            Source::Tentative(_) => unreachable!("only check_cancellable accepts tentatively"),
        }
        for (index, to) in running_children {
            self.slots[index].state = MachineState::Child(to);
        }
        self.run = run;
        Ok(())
    }

    /// `complete(result)`: the run returns `result`.
    pub fn complete(&mut self, result: &[u8]) -> Result<()> {
        self.close(Identity::Complete, completion::Input::Complete, || {
            let result = payload(result, "workflow result")?;
            let mut task = Task::new(TaskKind::Complete, 0);
            task.payload = Some(result.clone());
            Ok((EventBody::WorkflowCompleted { result }, task))
        })
    }

    /// `fail(failure)`: the run fails with `failure`.
    pub fn fail(&mut self, failure: &[u8]) -> Result<()> {
        self.close(Identity::Fail, completion::Input::Fail, || {
            let failure = payload(failure, "workflow failure")?;
            let mut task = Task::new(TaskKind::Fail, 0);
            task.payload = Some(failure.clone());
            Ok((EventBody::WorkflowFailed { failure }, task))
        })
    }

    /// `cancel()`: the run ends as cancelled.
    pub fn cancel(&mut self) -> Result<()> {
        self.close(Identity::Cancel, completion::Input::Cancel, || {
            Ok((
                EventBody::WorkflowCanceled,
                Task::new(TaskKind::Canceled, 0),
            ))
        })
    }

    /// `continue_as_new(input, options)`: the run ends and a new run starts with `input`.
    pub fn continue_as_new(&mut self, input: &[u8], options: &[u8]) -> Result<()> {
        self.close(
            Identity::ContinueAsNew,
            completion::Input::ContinueAsNew,
            || {
                let input = payload(input, "continue-as-new input")?;
                let options = payload(options, "continue-as-new options")?;
                let mut task = Task::new(TaskKind::ContinueAsNew, 0);
                task.payload = Some(input.clone());
                task.options = Some(options.clone());
                Ok((EventBody::WorkflowContinuedAsNew { input, options }, task))
            },
        )
    }

    /// Records a workflow task whose code is not run because the run fails instead (the worker
    /// option `nondeterminism="fail"`): its `task_started` at `time`, its inbox events (without
    /// `seq`, checked as by [`Reducer::add_new_batch`]) and `workflow_failed` with `failure`,
    /// numbered after the history loaded so far, with the `fail` task. The run is closed
    /// afterwards. Call it on a reducer given the run's whole history with
    /// [`Reducer::load_history`] and nothing else: no activation has run and no new batch was
    /// added. Recorded batches are not replayed; the run's children are not cancelled.
    pub fn fail_task<B: AsRef<[u8]>>(
        &mut self,
        time: i64,
        raw: &[B],
        failure: &[u8],
    ) -> Result<()> {
        if self.current.is_some() || self.has_new_batches || !self.run.is_open() {
            return Err(Error::engine_bug(
                "fail_task is only for a reducer that has loaded history and done nothing else",
            ));
        }
        if self.validator.closed() {
            return Err(Error::engine_bug(
                "fail_task: the run's history already closes it",
            ));
        }
        let failure = payload(failure, "workflow failure")?;
        let (run, _) = completion::Completion::step(self.run, completion::Input::Fail)
            .map_err(|e| Error::engine_bug(format!("fail_task: {}", e.message())))?;
        self.add_new_batch(time, raw)?;
        // The code does not run: nothing is left to activate.
        self.batches.clear();
        self.events.clear();
        self.new_batch_open = false;
        self.history_length += 1;
        let body = EventBody::WorkflowFailed {
            failure: failure.clone(),
        };
        self.new_events
            .push(event::encode(self.history_length, &body));
        let mut task = Task::new(TaskKind::Fail, 0);
        task.payload = Some(failure);
        self.tasks.push(task);
        self.run = run;
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // Outputs

    /// Encoded events to append to history, created since the last call.
    pub fn take_new_events(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.new_events)
    }

    /// Tasks for the backend, created since the last call.
    pub fn take_tasks(&mut self) -> Vec<Task> {
        std::mem::take(&mut self.tasks)
    }

    /// True while the current activation replays recorded history.
    pub fn replaying(&self) -> bool {
        self.current.as_ref().is_some_and(|c| c.replaying)
    }

    /// Number of events in history, recorded and new.
    pub fn history_length(&self) -> u64 {
        self.history_length
    }

    /// Number of events in history when the running workflow task started (up to its inbound
    /// events; the commands it issues are not counted): the same value on every replay, which
    /// [`Reducer::history_length`] is not. Outside an activation, `history_length`.
    pub fn history_length_here(&self) -> u64 {
        self.current
            .as_ref()
            .map_or(self.history_length, |c| c.inbound_seq)
    }

    /// True once the run has a closing command.
    pub fn finished(&self) -> bool {
        !self.run.is_open()
    }

    /// How the run closed, decided by the reducer from what closed it: `completed`, `failed`,
    /// `timed_out` (failed after the `timed_out` event), `canceled` or `continued_as_new`;
    /// `None` while the run is open.
    pub fn close_status(&self) -> Option<&'static str> {
        self.run.close_status()
    }
}

/// True for the command events that hand out a new command id.
fn allocates_id(body: &EventBody) -> bool {
    matches!(
        body,
        EventBody::ActivityScheduled { .. }
            | EventBody::TimerStarted { .. }
            | EventBody::SideEffectRecorded { .. }
            | EventBody::MarkerRecorded { .. }
            | EventBody::ChildScheduled { .. }
            | EventBody::SignalExternalSent { .. }
            | EventBody::ExternalCancelRequested { .. }
    )
}
