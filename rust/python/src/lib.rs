//! `ostinato._core`: the PyO3 binding of the reducer.
//!
//! Deliberately thin: bytes and small value types cross the boundary, and nothing here walks
//! Python objects. Every method maps one-to-one onto `ostinato_core::Reducer`; the contract is
//! `docs/internals/reducer.md` and the Python-facing types are `stubs/ostinato/_core.pyi`.

use ostinato_core as core;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

create_exception!(
    ostinato._core,
    NondeterminismError,
    PyException,
    "The workflow code no longer matches its recorded history.\n\n\
     Attributes: seq (the history event, or the next sequence number when history ran out), \
     expected (what history has), got (what the code did)."
);
create_exception!(
    ostinato._core,
    HistoryCorruptError,
    PyException,
    "A stored history event could not be decoded or is out of order.\n\n\
     Attribute: seq (the offending event's sequence number)."
);
create_exception!(
    ostinato._core,
    EngineBugError,
    PyException,
    "An illegal transition that only a bug in ostinato can cause."
);

/// Turns a core error into the matching Python exception, with its attributes set.
fn to_py_err(py: Python<'_>, error: core::Error) -> PyErr {
    match error {
        core::Error::Nondeterminism(n) => {
            let err = NondeterminismError::new_err(n.message);
            let value = err.value(py);
            let set = value
                .setattr("seq", n.seq)
                .and_then(|()| value.setattr("expected", n.expected))
                .and_then(|()| value.setattr("got", n.got));
            match set {
                Ok(()) => err,
                Err(e) => e,
            }
        }
        core::Error::HistoryCorrupt { seq, message } => {
            let err = HistoryCorruptError::new_err(format!("event #{seq}: {message}"));
            match err.value(py).setattr("seq", seq) {
                Ok(()) => err,
                Err(e) => e,
            }
        }
        core::Error::EngineBug { message } => EngineBugError::new_err(message),
    }
}

fn bytes<'py>(py: Python<'py>, payload: Option<&core::Payload>) -> Option<Bound<'py, PyBytes>> {
    payload.map(|p| PyBytes::new(py, p.as_bytes()))
}

/// One inbound event delivered to the workflow code.
#[pyclass(frozen, module = "ostinato._core", name = "Job")]
#[derive(Debug)]
pub struct Job(core::Job);

#[pymethods]
impl Job {
    /// The event kind: workflow_started, activity_completed, activity_failed, timer_fired,
    /// signal_received, child_completed, child_failed, signal_external_completed,
    /// cancel_requested or timed_out.
    #[getter]
    fn kind(&self) -> &'static str {
        self.0.kind.as_str()
    }
    /// The event's sequence number in history.
    #[getter]
    fn seq(&self) -> u64 {
        self.0.seq
    }
    /// The command id the event answers (0 when the kind has none).
    #[getter]
    fn id(&self) -> u64 {
        self.0.id
    }
    /// Workflow name (workflow_started), signal name (signal_received) or reason
    /// (cancel_requested); empty otherwise.
    #[getter]
    fn name(&self) -> &str {
        &self.0.name
    }
    /// JSON bytes: input, result, failure, signal payload or reason, depending on the kind.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        bytes(py, self.0.payload.as_ref())
    }
    /// Activity attempt (activity_completed / activity_failed); 0 otherwise.
    #[getter]
    fn attempt(&self) -> u32 {
        self.0.attempt
    }
    /// workflow_started info (JSON bytes); None otherwise.
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        bytes(py, self.0.info.as_ref())
    }
    fn __repr__(&self) -> String {
        format!(
            "Job(kind={:?}, seq={}, id={}, name={:?}, payload={}, attempt={})",
            self.0.kind.as_str(),
            self.0.seq,
            self.0.id,
            self.0.name,
            self.0.payload.as_ref().map_or("None", |p| p.as_str()),
            self.0.attempt
        )
    }
}

/// A batch of inbound events to run the workflow code against.
#[pyclass(frozen, module = "ostinato._core", name = "Activation")]
#[derive(Debug)]
pub struct Activation {
    time: i64,
    replaying: bool,
    jobs: Vec<Py<Job>>,
}

#[pymethods]
impl Activation {
    /// The workflow task's start time in microseconds since the epoch (workflow.now()).
    #[getter]
    fn time(&self) -> i64 {
        self.time
    }
    /// True when the batch was loaded from recorded history.
    #[getter]
    fn replaying(&self) -> bool {
        self.replaying
    }
    /// One Job per inbound event that still matters, in history order (a new list each time).
    #[getter]
    fn jobs(&self, py: Python<'_>) -> Vec<Py<Job>> {
        self.jobs.iter().map(|j| j.clone_ref(py)).collect()
    }
    fn __repr__(&self) -> String {
        format!(
            "Activation(time={}, replaying={}, jobs=<{} jobs>)",
            self.time,
            if self.replaying { "True" } else { "False" },
            self.jobs.len()
        )
    }
}

/// What a workflow task asks of the backend: one of the reducer's commands (the core's
/// `Task`; in Python "task" means work claimed from a backend).
#[pyclass(frozen, module = "ostinato._core", name = "Command")]
#[derive(Debug)]
pub struct Command(core::Task);

#[pymethods]
impl Command {
    /// activity, cancel_activity, timer, cancel_timer, start_child, cancel_child,
    /// signal_external, cancel_external, complete, fail, canceled or continue_as_new.
    #[getter]
    fn kind(&self) -> &'static str {
        self.0.kind.as_str()
    }
    /// The command id (0 for run-level commands).
    #[getter]
    fn id(&self) -> u64 {
        self.0.id
    }
    /// Activity, workflow or signal name; empty otherwise.
    #[getter]
    fn name(&self) -> &str {
        &self.0.name
    }
    /// JSON bytes: input, signal payload, result or failure, depending on the kind.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        bytes(py, self.0.payload.as_ref())
    }
    /// JSON bytes: the command's options (for cancel_child: the child's options).
    #[getter]
    fn options<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        bytes(py, self.0.options.as_ref())
    }
    /// Fire time of a timer command in microseconds since the epoch; 0 otherwise.
    #[getter]
    fn time(&self) -> i64 {
        self.0.time
    }
    fn __repr__(&self) -> String {
        format!(
            "Command(kind={:?}, id={}, name={:?})",
            self.0.kind.as_str(),
            self.0.id,
            self.0.name
        )
    }
}

/// The state of one workflow run, fed with history and commands.
#[pyclass(module = "ostinato._core", name = "Reducer")]
#[derive(Debug)]
pub struct Reducer(core::Reducer);

#[pymethods]
impl Reducer {
    #[new]
    fn new() -> Self {
        Reducer(core::Reducer::new())
    }

    /// Queue recorded events (with seq) for replay.
    fn load_history(&mut self, py: Python<'_>, events: Vec<PyBackedBytes>) -> PyResult<()> {
        let inner = &mut self.0;
        py.detach(|| inner.load_history(&events))
            .map_err(|e| to_py_err(py, e))
    }

    /// Start a new workflow task at `time` with inbox events (without seq).
    fn add_new_batch(
        &mut self,
        py: Python<'_>,
        time: i64,
        events: Vec<PyBackedBytes>,
    ) -> PyResult<()> {
        self.0
            .add_new_batch(time, &events)
            .map_err(|e| to_py_err(py, e))
    }

    /// The next batch to run the workflow code against, or None.
    fn next_activation(&mut self, py: Python<'_>) -> PyResult<Option<Activation>> {
        let Some(activation) = self.0.next_activation().map_err(|e| to_py_err(py, e))? else {
            return Ok(None);
        };
        let jobs = activation
            .jobs
            .into_iter()
            .map(|job| Py::new(py, Job(job)))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Some(Activation {
            time: activation.time,
            replaying: activation.replaying,
            jobs,
        }))
    }

    /// End the current activation.
    fn finish_activation(&mut self, py: Python<'_>) -> PyResult<()> {
        self.0.finish_activation().map_err(|e| to_py_err(py, e))
    }

    /// Schedule an activity; returns its command id.
    fn schedule_activity(
        &mut self,
        py: Python<'_>,
        name: &str,
        input: &[u8],
        options: &[u8],
    ) -> PyResult<u64> {
        self.0
            .schedule_activity(name, input, options)
            .map_err(|e| to_py_err(py, e))
    }

    /// Stop waiting for activity `id` and ask the backend to cancel it.
    fn cancel_activity(&mut self, py: Python<'_>, id: u64) -> PyResult<()> {
        self.0.cancel_activity(id).map_err(|e| to_py_err(py, e))
    }

    /// Start a durable timer; returns its command id.
    fn start_timer(&mut self, py: Python<'_>, fire_at: i64) -> PyResult<u64> {
        self.0.start_timer(fire_at).map_err(|e| to_py_err(py, e))
    }

    /// Cancel timer `id`.
    fn cancel_timer(&mut self, py: Python<'_>, id: u64) -> PyResult<()> {
        self.0.cancel_timer(id).map_err(|e| to_py_err(py, e))
    }

    /// Record a side effect's value, or return the recorded one while replaying.
    #[pyo3(signature = (value))]
    fn side_effect<'py>(
        &mut self,
        py: Python<'py>,
        value: Option<&[u8]>,
    ) -> PyResult<(u64, Bound<'py, PyBytes>)> {
        let (id, value) = self.0.side_effect(value).map_err(|e| to_py_err(py, e))?;
        Ok((id, PyBytes::new(py, value.as_bytes())))
    }

    /// workflow.patched(change_id) (deprecated=True: workflow.deprecate_patch).
    #[pyo3(signature = (change_id, deprecated = false))]
    fn patched(&mut self, py: Python<'_>, change_id: &str, deprecated: bool) -> PyResult<bool> {
        self.0
            .patched(change_id, deprecated)
            .map_err(|e| to_py_err(py, e))
    }

    /// Start a child workflow; returns its command id.
    fn start_child(
        &mut self,
        py: Python<'_>,
        name: &str,
        input: &[u8],
        options: &[u8],
    ) -> PyResult<u64> {
        self.0
            .start_child(name, input, options)
            .map_err(|e| to_py_err(py, e))
    }

    /// Stop waiting for child `id` and ask the backend to cancel it.
    fn cancel_child(&mut self, py: Python<'_>, id: u64) -> PyResult<()> {
        self.0.cancel_child(id).map_err(|e| to_py_err(py, e))
    }

    /// Signal another workflow instance; returns the command id.
    fn signal_external(
        &mut self,
        py: Python<'_>,
        name: &str,
        payload: &[u8],
        options: &[u8],
    ) -> PyResult<u64> {
        self.0
            .signal_external(name, payload, options)
            .map_err(|e| to_py_err(py, e))
    }

    /// Ask another workflow instance (named in `options`) to cancel; returns the command id.
    fn cancel_external(&mut self, py: Python<'_>, options: &[u8], reason: &str) -> PyResult<u64> {
        self.0
            .cancel_external(options, reason)
            .map_err(|e| to_py_err(py, e))
    }

    /// Close the run with a result.
    fn complete(&mut self, py: Python<'_>, result: &[u8]) -> PyResult<()> {
        self.0.complete(result).map_err(|e| to_py_err(py, e))
    }

    /// Close the run with a failure.
    fn fail(&mut self, py: Python<'_>, failure: &[u8]) -> PyResult<()> {
        self.0.fail(failure).map_err(|e| to_py_err(py, e))
    }

    /// Close the run as cancelled.
    fn cancel(&mut self, py: Python<'_>) -> PyResult<()> {
        self.0.cancel().map_err(|e| to_py_err(py, e))
    }

    /// Close the run and start a new one with `input`.
    fn continue_as_new(&mut self, py: Python<'_>, input: &[u8], options: &[u8]) -> PyResult<()> {
        self.0
            .continue_as_new(input, options)
            .map_err(|e| to_py_err(py, e))
    }

    /// Events to append to history, created since the last call.
    fn take_new_events<'py>(&mut self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.0
            .take_new_events()
            .iter()
            .map(|e| PyBytes::new(py, e))
            .collect()
    }

    /// Commands for the backend, created since the last call.
    fn take_commands(&mut self) -> Vec<Command> {
        self.0.take_tasks().into_iter().map(Command).collect()
    }

    /// Record a workflow task failed without running the code (after load_history only).
    fn fail_task(
        &mut self,
        py: Python<'_>,
        time: i64,
        events: Vec<PyBackedBytes>,
        failure: &[u8],
    ) -> PyResult<()> {
        self.0
            .fail_task(time, &events, failure)
            .map_err(|e| to_py_err(py, e))
    }

    /// True while the current activation replays recorded history.
    #[getter]
    fn replaying(&self) -> bool {
        self.0.replaying()
    }

    /// Number of events in history, recorded and new.
    #[getter]
    fn history_length(&self) -> u64 {
        self.0.history_length()
    }

    /// Number of events in history when the running workflow task started (workflow.info()):
    /// the same value on every replay.
    #[getter]
    fn history_length_here(&self) -> u64 {
        self.0.history_length_here()
    }

    /// True once the run has a closing command (complete, fail, cancel, continue).
    #[getter]
    fn finished(&self) -> bool {
        self.0.finished()
    }

    /// How the run closed (completed, failed, timed_out, canceled, continued_as_new); None
    /// while open.
    #[getter]
    fn close_status(&self) -> Option<&'static str> {
        self.0.close_status()
    }
}

/// What a recorded history says about its run, without running its code.
#[pyclass(frozen, module = "ostinato._core", name = "HistoryView")]
#[derive(Debug)]
pub struct HistoryView(core::HistoryView);

#[pymethods]
impl HistoryView {
    /// (command id, activity name) of each activity the run waits for.
    #[getter]
    fn pending_activities(&self) -> Vec<(u64, String)> {
        self.0
            .activities
            .iter()
            .map(|a| (a.id, a.name.clone()))
            .collect()
    }
    /// (command id, fire time in microseconds since the epoch) of each timer not yet fired.
    #[getter]
    fn pending_timers(&self) -> Vec<(u64, i64)> {
        self.0.timers.iter().map(|t| (t.id, t.fire_at)).collect()
    }
    /// (command id, workflow name, options JSON bytes) of each child the run waits for.
    #[getter]
    fn pending_children<'py>(&self, py: Python<'py>) -> Vec<(u64, String, Bound<'py, PyBytes>)> {
        self.0
            .children
            .iter()
            .map(|c| (c.id, c.name.clone(), PyBytes::new(py, c.options.as_bytes())))
            .collect()
    }
    /// Number of workflow tasks in the history.
    #[getter]
    fn batches(&self) -> u64 {
        self.0.batches
    }
    /// The sequence number of the first corrupt event (the view stops before it), or None.
    #[getter]
    fn corrupt_seq(&self) -> Option<u64> {
        match &self.0.corrupt {
            Some(core::Error::HistoryCorrupt { seq, .. }) => Some(*seq),
            Some(_) => Some(0),
            None => None,
        }
    }
    fn __repr__(&self) -> String {
        format!(
            "HistoryView(batches={}, pending_activities=<{}>, pending_timers=<{}>, \
             pending_children=<{}>)",
            self.0.batches,
            self.0.activities.len(),
            self.0.timers.len(),
            self.0.children.len()
        )
    }
}

/// What `history` (stored events, with seq, from the first) says about its run: what it waits
/// for and how many workflow tasks it had.
#[pyfunction]
fn view_history(py: Python<'_>, history: Vec<PyBackedBytes>) -> HistoryView {
    HistoryView(py.detach(|| core::view_history(&history)))
}

/// The Rust core of ostinato: a pure reducer over workflow history.
///
/// See docs/internals/reducer.md for the event and command contract.
#[pymodule]
mod _core {
    #[pymodule_export]
    use super::{
        view_history, Activation, Command, EngineBugError, HistoryCorruptError, HistoryView, Job,
        NondeterminismError, Reducer,
    };

    #[pymodule_init]
    fn init(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
        use pyo3::types::PyModuleMethods;
        m.add("__version__", env!("CARGO_PKG_VERSION"))
    }
}
