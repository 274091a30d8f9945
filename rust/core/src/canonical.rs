//! Fast decoding of history events written in the core's own canonical encoding.
//!
//! Replaying a long history is dominated by decoding its events. Stored events are the bytes
//! [`crate::event::encode`] wrote: no whitespace, `seq` then `kind` then the kind's fields in a
//! fixed order. This decoder accepts exactly that shape (matching keys byte for byte, parsing
//! integers and plain strings by hand, and letting serde_json validate and delimit each payload)
//! and returns `None` for anything else — escaped strings, other field orders, extra fields,
//! whitespace, errors — so the general decoder handles it and reports any problem. Whatever this
//! decoder accepts, the general decoder accepts too, with the same result (a property test in
//! `event.rs` checks this on valid and damaged events).

use crate::event::{Event, EventBody};
use crate::payload::Payload;
use serde::Deserialize;
use serde_json::value::RawValue;

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// Consumes `literal` if the input continues with it.
    fn literal(&mut self, literal: &[u8]) -> Option<()> {
        if self.bytes[self.at..].starts_with(literal) {
            self.at += literal.len();
            Some(())
        } else {
            None
        }
    }

    /// `,"key":`
    fn key(&mut self, key: &str) -> Option<()> {
        self.literal(b",\"")?;
        self.literal(key.as_bytes())?;
        self.literal(b"\":")
    }

    /// A JSON unsigned integer without sign, fraction or exponent (and no leading zero).
    fn unsigned(&mut self) -> Option<u64> {
        let digits = self.bytes[self.at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || (digits > 1 && self.bytes[self.at] == b'0') {
            return None;
        }
        let mut value: u64 = 0;
        for &b in &self.bytes[self.at..self.at + digits] {
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        }
        self.at += digits;
        // A fraction or exponent would make it a float: leave that to the general decoder.
        match self.bytes.get(self.at) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(value),
        }
    }

    fn signed(&mut self) -> Option<i64> {
        if self.literal(b"-").is_some() {
            let magnitude = self.unsigned()?;
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(self.unsigned()?).ok()
        }
    }

    fn id(&mut self) -> Option<u64> {
        self.key("id")?;
        self.unsigned().filter(|&id| id > 0)
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<String> {
        self.literal(b"\"")?;
        let rest = &self.bytes[self.at..];
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        let text = std::str::from_utf8(&rest[..len]).ok()?;
        self.at += len + 1;
        Some(text.to_owned())
    }

    /// One JSON value, validated and delimited by serde_json.
    fn payload(&mut self) -> Option<Payload> {
        let rest = &self.bytes[self.at..];
        if rest.first().is_none_or(u8::is_ascii_whitespace) {
            return None;
        }
        let mut de = serde_json::Deserializer::from_slice(rest);
        let raw = <&RawValue>::deserialize(&mut de).ok()?;
        let text = raw.get();
        // `text` borrows from `rest`; its end is how far the value reached.
        let start = text.as_ptr() as usize - rest.as_ptr() as usize;
        if start != 0 {
            return None;
        }
        self.at += text.len();
        Some(Payload::from_raw(raw))
    }

    fn field<T>(&mut self, key: &str, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        self.key(key)?;
        read(self)
    }
}

/// Decodes `bytes` if they are in canonical form with `seq == expected_seq`.
pub(crate) fn decode(bytes: &[u8], expected_seq: u64) -> Option<Event> {
    let mut c = Cursor { bytes, at: 0 };
    c.literal(b"{\"seq\":")?;
    if c.unsigned()? != expected_seq {
        return None;
    }
    c.literal(b",\"kind\":\"")?;
    let kind_len = c.bytes[c.at..].iter().position(|&b| b == b'"')?;
    let kind = &c.bytes[c.at..c.at + kind_len];
    c.at += kind_len + 1;
    use EventBody as B;
    let body = match kind {
        b"task_started" => B::TaskStarted {
            time: c.field("time", Cursor::signed)?,
        },
        b"workflow_started" => B::WorkflowStarted {
            name: c.field("name", Cursor::string)?,
            input: c.field("input", Cursor::payload)?,
            info: c.field("info", Cursor::payload)?,
        },
        b"activity_scheduled" => B::ActivityScheduled {
            id: c.id()?,
            name: c.field("name", Cursor::string)?,
            input: c.field("input", Cursor::payload)?,
            options: c.field("options", Cursor::payload)?,
        },
        b"activity_completed" => B::ActivityCompleted {
            id: c.id()?,
            result: c.field("result", Cursor::payload)?,
            attempt: u32::try_from(c.field("attempt", Cursor::unsigned)?).ok()?,
        },
        b"activity_failed" => B::ActivityFailed {
            id: c.id()?,
            failure: c.field("failure", Cursor::payload)?,
            attempt: u32::try_from(c.field("attempt", Cursor::unsigned)?).ok()?,
        },
        b"activity_cancel_requested" => B::ActivityCancelRequested { id: c.id()? },
        b"timer_started" => B::TimerStarted {
            id: c.id()?,
            fire_at: c.field("fire_at", Cursor::signed)?,
        },
        b"timer_fired" => B::TimerFired { id: c.id()? },
        b"timer_canceled" => B::TimerCanceled { id: c.id()? },
        b"signal_received" => B::SignalReceived {
            name: c.field("name", Cursor::string)?,
            payload: c.field("payload", Cursor::payload)?,
        },
        b"side_effect_recorded" => B::SideEffectRecorded {
            id: c.id()?,
            value: c.field("value", Cursor::payload)?,
        },
        b"marker_recorded" => B::MarkerRecorded {
            id: c.id()?,
            name: c.field("name", Cursor::string)?,
        },
        b"child_scheduled" => B::ChildScheduled {
            id: c.id()?,
            name: c.field("name", Cursor::string)?,
            input: c.field("input", Cursor::payload)?,
            options: c.field("options", Cursor::payload)?,
        },
        b"child_completed" => B::ChildCompleted {
            id: c.id()?,
            result: c.field("result", Cursor::payload)?,
        },
        b"child_failed" => B::ChildFailed {
            id: c.id()?,
            failure: c.field("failure", Cursor::payload)?,
        },
        b"child_cancel_requested" => B::ChildCancelRequested { id: c.id()? },
        b"signal_external_sent" => B::SignalExternalSent {
            id: c.id()?,
            name: c.field("name", Cursor::string)?,
            payload: c.field("payload", Cursor::payload)?,
            options: c.field("options", Cursor::payload)?,
        },
        b"external_cancel_requested" => B::ExternalCancelRequested {
            id: c.id()?,
            options: c.field("options", Cursor::payload)?,
            reason: c.field("reason", Cursor::string)?,
        },
        b"signal_external_completed" => {
            let id = c.id()?;
            let failure = c.field("failure", Cursor::payload)?;
            B::SignalExternalCompleted {
                id,
                failure: (!failure.is_null()).then_some(failure),
            }
        }
        b"cancel_requested" => B::CancelRequested {
            reason: c.field("reason", Cursor::string)?,
        },
        b"timed_out" => B::TimedOut,
        b"workflow_completed" => B::WorkflowCompleted {
            result: c.field("result", Cursor::payload)?,
        },
        b"workflow_failed" => B::WorkflowFailed {
            failure: c.field("failure", Cursor::payload)?,
        },
        b"workflow_canceled" => B::WorkflowCanceled,
        b"workflow_continued_as_new" => B::WorkflowContinuedAsNew {
            input: c.field("input", Cursor::payload)?,
            options: c.field("options", Cursor::payload)?,
        },
        b"workflow_terminated" => B::WorkflowTerminated {
            reason: c.field("reason", Cursor::string)?,
        },
        _ => return None,
    };
    c.literal(b"}")?;
    (c.at == bytes.len()).then_some(Event {
        seq: expected_seq,
        body,
    })
}
