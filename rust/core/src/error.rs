//! The three ways a reducer call can fail.
//!
//! They are never mixed: *nondeterminism* means the workflow code no longer matches its history
//! (fixable by deploying the right code or a `patched()` branch), *corrupt history* means a stored
//! event cannot be used at all, and an *engine bug* is an illegal transition that only a bug in
//! ostinato (the runtime, a backend or this crate) can cause. Every failing call leaves the
//! reducer exactly as it was before the call.

use std::fmt;

/// A reducer call failed; the reducer state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The workflow code no longer matches its recorded history.
    Nondeterminism(Nondeterminism),
    /// A stored event could not be decoded or is out of order.
    HistoryCorrupt {
        /// The sequence number of the offending event (the expected one when it is unreadable).
        seq: u64,
        /// What is wrong with it.
        message: String,
    },
    /// An illegal transition that only a bug in ostinato can cause.
    EngineBug {
        /// What happened, naming the machine, its state and the input.
        message: String,
    },
}

/// Details of a nondeterminism error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nondeterminism {
    /// The history event the code disagrees with (the next sequence number when history ran out).
    pub seq: u64,
    /// What history says, e.g. `activity_scheduled 'charge'`.
    pub expected: String,
    /// What the workflow code did, e.g. `start_timer`.
    pub got: String,
    /// A sentence for humans naming the event, what history has and what the code did.
    pub message: String,
}

impl Error {
    pub(crate) fn nondeterminism(
        seq: u64,
        expected: impl Into<String>,
        got: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Nondeterminism(Nondeterminism {
            seq,
            expected: expected.into(),
            got: got.into(),
            message: message.into(),
        })
    }

    pub(crate) fn corrupt(seq: u64, message: impl Into<String>) -> Self {
        Error::HistoryCorrupt {
            seq,
            message: message.into(),
        }
    }

    pub(crate) fn engine_bug(message: impl Into<String>) -> Self {
        Error::EngineBug {
            message: message.into(),
        }
    }

    /// The human-readable message, without the error kind.
    pub fn message(&self) -> &str {
        match self {
            Error::Nondeterminism(n) => &n.message,
            Error::HistoryCorrupt { message, .. } | Error::EngineBug { message } => message,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Nondeterminism(n) => write!(f, "nondeterminism: {}", n.message),
            Error::HistoryCorrupt { seq, message } => {
                write!(f, "corrupt history at event #{seq}: {message}")
            }
            Error::EngineBug { message } => write!(f, "ostinato engine bug: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for reducer results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
