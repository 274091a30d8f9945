//! The pure reducer at the heart of ostinato.
//!
//! A workflow run is a history of events. The [`Reducer`] replays recorded history against the
//! commands the workflow code issues, detects when they no longer match (nondeterminism), and
//! for new workflow tasks produces the events to append and the tasks for the backend. It never
//! reads a clock, does I/O or draws random numbers: time and ids arrive as inputs.
//!
//! The contract (event kinds, batches, command identities, errors) is
//! `docs/internals/reducer.md`. Each command kind has its own state machine in [`machines`],
//! whose transition table opens its source file.
//!
//! ```
//! use ostinato_core::Reducer;
//!
//! let mut r = Reducer::new();
//! r.add_new_batch(1_000, &[br#"{"kind":"workflow_started","name":"wf","input":[],"info":{}}"#])
//!     .unwrap();
//! let activation = r.next_activation().unwrap().unwrap();
//! assert_eq!(activation.jobs[0].kind.as_str(), "workflow_started");
//! let id = r.schedule_activity("charge", b"[\"o-1\"]", b"{}").unwrap();
//! r.finish_activation().unwrap();
//! assert_eq!(id, 1);
//! assert_eq!(r.take_new_events().len(), 3); // task_started, workflow_started, activity_scheduled
//! assert_eq!(r.take_tasks()[0].kind.as_str(), "activity");
//! ```

#![warn(missing_docs)]

mod canonical;
mod command;
pub mod error;
pub mod event;
mod fields;
mod history;
pub mod machines;
pub mod outputs;
pub mod payload;
mod reducer;
pub mod view;

pub use error::{Error, Nondeterminism, Result};
pub use event::{Event, EventBody, EventClass, EventKind};
pub use outputs::{Activation, Job, Task, TaskKind};
pub use payload::Payload;
pub use reducer::Reducer;
pub use view::{view_history, HistoryView, PendingActivity, PendingChild, PendingTimer};
