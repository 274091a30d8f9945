//! History events: the decoded form, decoding from stored bytes and encoding to them.
//!
//! Each event is one JSON object with `seq`, `kind` and the kind's fields (see
//! `docs/internals/reducer.md`). Payload fields are kept as raw JSON text. The encoder writes the
//! fields in a fixed order (`seq`, `kind`, then the table's order), so the same event always has
//! the same bytes.

use crate::error::{Error, Result};
use crate::payload::Payload;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt::Write as _;

/// The role an event plays inside a workflow task (batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClass {
    /// `task_started`: opens a batch.
    Marker,
    /// Something that happened, delivered to the code as a job.
    Inbound,
    /// Something the code decided.
    Command,
    /// `workflow_terminated`, written by the backend after the last batch.
    Terminal,
}

macro_rules! event_kinds {
    ($($variant:ident => $name:literal, $class:ident;)*) => {
        /// The `kind` of an event.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind { $(#[doc = $name] $variant,)* }

        impl EventKind {
            /// Every kind, in the order of the contract's table.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant,)*];

            /// The wire name (`activity_scheduled`, ...).
            pub fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $name,)* }
            }

            /// Where the kind may appear in a batch.
            pub fn class(self) -> EventClass {
                match self { $(EventKind::$variant => EventClass::$class,)* }
            }

            /// Parses a wire name.
            pub fn parse(name: &str) -> Option<EventKind> {
                match name { $($name => Some(EventKind::$variant),)* _ => None }
            }
        }
    };
}

event_kinds! {
    TaskStarted => "task_started", Marker;
    WorkflowStarted => "workflow_started", Inbound;
    ActivityScheduled => "activity_scheduled", Command;
    ActivityCompleted => "activity_completed", Inbound;
    ActivityFailed => "activity_failed", Inbound;
    ActivityCancelRequested => "activity_cancel_requested", Command;
    TimerStarted => "timer_started", Command;
    TimerFired => "timer_fired", Inbound;
    TimerCanceled => "timer_canceled", Command;
    SignalReceived => "signal_received", Inbound;
    SideEffectRecorded => "side_effect_recorded", Command;
    MarkerRecorded => "marker_recorded", Command;
    ChildScheduled => "child_scheduled", Command;
    ChildCompleted => "child_completed", Inbound;
    ChildFailed => "child_failed", Inbound;
    ChildCancelRequested => "child_cancel_requested", Command;
    SignalExternalSent => "signal_external_sent", Command;
    SignalExternalCompleted => "signal_external_completed", Inbound;
    ExternalCancelRequested => "external_cancel_requested", Command;
    CancelRequested => "cancel_requested", Inbound;
    TimedOut => "timed_out", Inbound;
    WorkflowCompleted => "workflow_completed", Command;
    WorkflowFailed => "workflow_failed", Command;
    WorkflowCanceled => "workflow_canceled", Command;
    WorkflowContinuedAsNew => "workflow_continued_as_new", Command;
    WorkflowTerminated => "workflow_terminated", Terminal;
}

impl Event {
    /// Decodes one stored history event, which must carry `seq = expected_seq`.
    pub fn decode(bytes: &[u8], expected_seq: u64) -> Result<Event> {
        decode(bytes, expected_seq, SeqRule::Recorded)
    }

    /// The bytes the core stores for this event.
    pub fn encode(&self) -> Vec<u8> {
        encode(self.seq, &self.body)
    }
}

/// A decoded event without its `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // the fields are the contract's table
pub enum EventBody {
    TaskStarted {
        time: i64,
    },
    WorkflowStarted {
        name: String,
        input: Payload,
        info: Payload,
    },
    ActivityScheduled {
        id: u64,
        name: String,
        input: Payload,
        options: Payload,
    },
    ActivityCompleted {
        id: u64,
        result: Payload,
        attempt: u32,
    },
    ActivityFailed {
        id: u64,
        failure: Payload,
        attempt: u32,
    },
    ActivityCancelRequested {
        id: u64,
    },
    TimerStarted {
        id: u64,
        fire_at: i64,
    },
    TimerFired {
        id: u64,
    },
    TimerCanceled {
        id: u64,
    },
    SignalReceived {
        name: String,
        payload: Payload,
    },
    SideEffectRecorded {
        id: u64,
        value: Payload,
    },
    MarkerRecorded {
        id: u64,
        name: String,
    },
    ChildScheduled {
        id: u64,
        name: String,
        input: Payload,
        options: Payload,
    },
    ChildCompleted {
        id: u64,
        result: Payload,
    },
    ChildFailed {
        id: u64,
        failure: Payload,
    },
    ChildCancelRequested {
        id: u64,
    },
    SignalExternalSent {
        id: u64,
        name: String,
        payload: Payload,
        options: Payload,
    },
    /// `workflow.cancel_external`: a cancel request for another instance (`options` names it);
    /// answered by `signal_external_completed` like a signal.
    ExternalCancelRequested {
        id: u64,
        options: Payload,
        reason: String,
    },
    /// `failure` is JSON `null` on the wire when the signal was delivered.
    SignalExternalCompleted {
        id: u64,
        failure: Option<Payload>,
    },
    CancelRequested {
        reason: String,
    },
    TimedOut,
    WorkflowCompleted {
        result: Payload,
    },
    WorkflowFailed {
        failure: Payload,
    },
    WorkflowCanceled,
    WorkflowContinuedAsNew {
        input: Payload,
        options: Payload,
    },
    WorkflowTerminated {
        reason: String,
    },
}

/// One history event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// 1-based, contiguous within a run.
    pub seq: u64,
    /// Kind and fields.
    pub body: EventBody,
}

impl EventBody {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        use EventBody as B;
        use EventKind as K;
        match self {
            B::TaskStarted { .. } => K::TaskStarted,
            B::WorkflowStarted { .. } => K::WorkflowStarted,
            B::ActivityScheduled { .. } => K::ActivityScheduled,
            B::ActivityCompleted { .. } => K::ActivityCompleted,
            B::ActivityFailed { .. } => K::ActivityFailed,
            B::ActivityCancelRequested { .. } => K::ActivityCancelRequested,
            B::TimerStarted { .. } => K::TimerStarted,
            B::TimerFired { .. } => K::TimerFired,
            B::TimerCanceled { .. } => K::TimerCanceled,
            B::SignalReceived { .. } => K::SignalReceived,
            B::SideEffectRecorded { .. } => K::SideEffectRecorded,
            B::MarkerRecorded { .. } => K::MarkerRecorded,
            B::ChildScheduled { .. } => K::ChildScheduled,
            B::ChildCompleted { .. } => K::ChildCompleted,
            B::ChildFailed { .. } => K::ChildFailed,
            B::ChildCancelRequested { .. } => K::ChildCancelRequested,
            B::SignalExternalSent { .. } => K::SignalExternalSent,
            B::SignalExternalCompleted { .. } => K::SignalExternalCompleted,
            B::ExternalCancelRequested { .. } => K::ExternalCancelRequested,
            B::CancelRequested { .. } => K::CancelRequested,
            B::TimedOut => K::TimedOut,
            B::WorkflowCompleted { .. } => K::WorkflowCompleted,
            B::WorkflowFailed { .. } => K::WorkflowFailed,
            B::WorkflowCanceled => K::WorkflowCanceled,
            B::WorkflowContinuedAsNew { .. } => K::WorkflowContinuedAsNew,
            B::WorkflowTerminated { .. } => K::WorkflowTerminated,
        }
    }

    /// The command id the event carries, if its kind has one.
    pub fn command_id(&self) -> Option<u64> {
        use EventBody as B;
        match self {
            B::ActivityScheduled { id, .. }
            | B::ActivityCompleted { id, .. }
            | B::ActivityFailed { id, .. }
            | B::ActivityCancelRequested { id }
            | B::TimerStarted { id, .. }
            | B::TimerFired { id }
            | B::TimerCanceled { id }
            | B::SideEffectRecorded { id, .. }
            | B::MarkerRecorded { id, .. }
            | B::ChildScheduled { id, .. }
            | B::ChildCompleted { id, .. }
            | B::ChildFailed { id, .. }
            | B::ChildCancelRequested { id }
            | B::SignalExternalSent { id, .. }
            | B::ExternalCancelRequested { id, .. }
            | B::SignalExternalCompleted { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// How the event is named in error messages: `activity_scheduled 'charge'`,
    /// `timer_fired for command 3`, `workflow_completed`.
    pub fn describe(&self) -> String {
        use EventBody as B;
        let kind = self.kind().as_str();
        match self {
            B::ActivityScheduled { name, .. }
            | B::MarkerRecorded { name, .. }
            | B::ChildScheduled { name, .. }
            | B::SignalExternalSent { name, .. } => format!("{kind} '{name}'"),
            B::SignalReceived { name, .. } => format!("{kind} '{name}'"),
            B::TimerStarted { .. }
            | B::SideEffectRecorded { .. }
            | B::ExternalCancelRequested { .. } => kind.to_owned(),
            _ => match self.command_id() {
                Some(id) => format!("{kind} for command {id}"),
                None => kind.to_owned(),
            },
        }
    }
}

/// Whether the decoder requires or forbids a `seq` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqRule {
    /// History events carry their `seq`; it must be `expected`.
    Recorded,
    /// Inbox events have none yet; the core assigns it.
    Inbox,
}

/// A payload field: absent, or present with any JSON value (including `null`).
#[derive(Default)]
struct RawField<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for RawField<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(deserializer).map(|raw| RawField(Some(raw)))
    }
}

/// Every field of every kind; which ones are required depends on `kind`.
#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(default)]
    seq: Option<u64>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    time: Option<i64>,
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, borrow)]
    input: RawField<'a>,
    #[serde(default, borrow)]
    info: RawField<'a>,
    #[serde(default, borrow)]
    options: RawField<'a>,
    #[serde(default, borrow)]
    result: RawField<'a>,
    #[serde(default, borrow)]
    failure: RawField<'a>,
    #[serde(default, borrow)]
    payload: RawField<'a>,
    #[serde(default, borrow)]
    value: RawField<'a>,
    #[serde(default)]
    attempt: Option<u32>,
    #[serde(default)]
    fire_at: Option<i64>,
    #[serde(default)]
    reason: Option<String>,
}

/// Decodes one stored event. `expected_seq` is the number it must carry (history) or will get
/// (inbox); errors name it.
pub(crate) fn decode(bytes: &[u8], expected_seq: u64, rule: SeqRule) -> Result<Event> {
    if rule == SeqRule::Recorded {
        if let Some(event) = crate::canonical::decode(bytes, expected_seq) {
            return Ok(event);
        }
    }
    decode_general(bytes, expected_seq, rule)
}

/// Decodes any valid JSON encoding of an event (and explains what is wrong with invalid ones).
fn decode_general(bytes: &[u8], expected_seq: u64, rule: SeqRule) -> Result<Event> {
    let wire: WireEvent<'_> = serde_json::from_slice(bytes)
        .map_err(|e| Error::corrupt(expected_seq, format!("event is not valid: {e}")))?;
    match (rule, wire.seq) {
        (SeqRule::Recorded, None) => {
            return Err(Error::corrupt(expected_seq, "event has no seq"));
        }
        (SeqRule::Recorded, Some(seq)) if seq != expected_seq => {
            return Err(Error::corrupt(
                expected_seq,
                format!("event has seq {seq}, expected {expected_seq}"),
            ));
        }
        (SeqRule::Inbox, Some(seq)) => {
            return Err(Error::corrupt(
                expected_seq,
                format!("inbox event already has seq {seq}; the core assigns seq"),
            ));
        }
        _ => {}
    }
    let kind = EventKind::parse(&wire.kind).ok_or_else(|| {
        Error::corrupt(expected_seq, format!("unknown event kind '{}'", wire.kind))
    })?;
    let body = body_from_wire(kind, wire).map_err(|field| {
        Error::corrupt(
            expected_seq,
            format!("{} event is missing {field}", kind.as_str()),
        )
    })?;
    Ok(Event {
        seq: expected_seq,
        body,
    })
}

/// Builds the body; the error is the description of the missing or invalid field.
fn body_from_wire(kind: EventKind, w: WireEvent<'_>) -> std::result::Result<EventBody, String> {
    fn need<T>(v: Option<T>, field: &str) -> std::result::Result<T, String> {
        v.ok_or_else(|| format!("field `{field}`"))
    }
    fn id(v: Option<u64>) -> std::result::Result<u64, String> {
        match v {
            Some(0) => Err("a positive `id` (ids start at 1)".to_owned()),
            Some(id) => Ok(id),
            None => Err("field `id`".to_owned()),
        }
    }
    fn payload(v: RawField<'_>, field: &str) -> std::result::Result<Payload, String> {
        need(v.0, field).map(Payload::from_raw)
    }
    use EventBody as B;
    use EventKind as K;
    Ok(match kind {
        K::TaskStarted => B::TaskStarted {
            time: need(w.time, "time")?,
        },
        K::WorkflowStarted => B::WorkflowStarted {
            name: need(w.name, "name")?,
            input: payload(w.input, "input")?,
            info: payload(w.info, "info")?,
        },
        K::ActivityScheduled => B::ActivityScheduled {
            id: id(w.id)?,
            name: need(w.name, "name")?,
            input: payload(w.input, "input")?,
            options: payload(w.options, "options")?,
        },
        K::ActivityCompleted => B::ActivityCompleted {
            id: id(w.id)?,
            result: payload(w.result, "result")?,
            attempt: need(w.attempt, "attempt")?,
        },
        K::ActivityFailed => B::ActivityFailed {
            id: id(w.id)?,
            failure: payload(w.failure, "failure")?,
            attempt: need(w.attempt, "attempt")?,
        },
        K::ActivityCancelRequested => B::ActivityCancelRequested { id: id(w.id)? },
        K::TimerStarted => B::TimerStarted {
            id: id(w.id)?,
            fire_at: need(w.fire_at, "fire_at")?,
        },
        K::TimerFired => B::TimerFired { id: id(w.id)? },
        K::TimerCanceled => B::TimerCanceled { id: id(w.id)? },
        K::SignalReceived => B::SignalReceived {
            name: need(w.name, "name")?,
            payload: payload(w.payload, "payload")?,
        },
        K::SideEffectRecorded => B::SideEffectRecorded {
            id: id(w.id)?,
            value: payload(w.value, "value")?,
        },
        K::MarkerRecorded => B::MarkerRecorded {
            id: id(w.id)?,
            name: need(w.name, "name")?,
        },
        K::ChildScheduled => B::ChildScheduled {
            id: id(w.id)?,
            name: need(w.name, "name")?,
            input: payload(w.input, "input")?,
            options: payload(w.options, "options")?,
        },
        K::ChildCompleted => B::ChildCompleted {
            id: id(w.id)?,
            result: payload(w.result, "result")?,
        },
        K::ChildFailed => B::ChildFailed {
            id: id(w.id)?,
            failure: payload(w.failure, "failure")?,
        },
        K::ChildCancelRequested => B::ChildCancelRequested { id: id(w.id)? },
        K::SignalExternalSent => B::SignalExternalSent {
            id: id(w.id)?,
            name: need(w.name, "name")?,
            payload: payload(w.payload, "payload")?,
            options: payload(w.options, "options")?,
        },
        K::ExternalCancelRequested => B::ExternalCancelRequested {
            id: id(w.id)?,
            options: payload(w.options, "options")?,
            reason: need(w.reason, "reason")?,
        },
        K::SignalExternalCompleted => {
            let failure = payload(w.failure, "failure")?;
            B::SignalExternalCompleted {
                id: id(w.id)?,
                failure: (!failure.is_null()).then_some(failure),
            }
        }
        K::CancelRequested => B::CancelRequested {
            reason: need(w.reason, "reason")?,
        },
        K::TimedOut => B::TimedOut,
        K::WorkflowCompleted => B::WorkflowCompleted {
            result: payload(w.result, "result")?,
        },
        K::WorkflowFailed => B::WorkflowFailed {
            failure: payload(w.failure, "failure")?,
        },
        K::WorkflowCanceled => B::WorkflowCanceled,
        K::WorkflowContinuedAsNew => B::WorkflowContinuedAsNew {
            input: payload(w.input, "input")?,
            options: payload(w.options, "options")?,
        },
        K::WorkflowTerminated => B::WorkflowTerminated {
            reason: need(w.reason, "reason")?,
        },
    })
}

/// Writes events as compact JSON objects with a fixed field order.
struct Writer(String);

impl Writer {
    fn start(seq: u64, kind: EventKind) -> Self {
        let mut out = String::with_capacity(96);
        // Writing to a String cannot fail.
        let _ = write!(out, "{{\"seq\":{seq},\"kind\":\"{}\"", kind.as_str());
        Writer(out)
    }
    fn int(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        let _ = write!(self.0, ",\"{key}\":{value}");
        self
    }
    fn string(&mut self, key: &str, value: &str) -> &mut Self {
        let _ = write!(self.0, ",\"{key}\":");
        // serde_json escapes; serialising a &str cannot fail.
        self.0
            .push_str(&serde_json::to_string(value).unwrap_or_default());
        self
    }
    fn raw(&mut self, key: &str, value: &Payload) -> &mut Self {
        let _ = write!(self.0, ",\"{key}\":");
        self.0.push_str(value.as_str());
        self
    }
    fn finish(mut self) -> Vec<u8> {
        self.0.push('}');
        self.0.into_bytes()
    }
}

/// Encodes an event to the bytes the core stores.
pub(crate) fn encode(seq: u64, body: &EventBody) -> Vec<u8> {
    use EventBody as B;
    let mut w = Writer::start(seq, body.kind());
    match body {
        B::TaskStarted { time } => {
            w.int("time", time);
        }
        B::WorkflowStarted { name, input, info } => {
            w.string("name", name).raw("input", input).raw("info", info);
        }
        B::ActivityScheduled {
            id,
            name,
            input,
            options,
        }
        | B::ChildScheduled {
            id,
            name,
            input,
            options,
        } => {
            w.int("id", id)
                .string("name", name)
                .raw("input", input)
                .raw("options", options);
        }
        B::ActivityCompleted {
            id,
            result,
            attempt,
        } => {
            w.int("id", id)
                .raw("result", result)
                .int("attempt", attempt);
        }
        B::ActivityFailed {
            id,
            failure,
            attempt,
        } => {
            w.int("id", id)
                .raw("failure", failure)
                .int("attempt", attempt);
        }
        B::ActivityCancelRequested { id }
        | B::TimerFired { id }
        | B::TimerCanceled { id }
        | B::ChildCancelRequested { id } => {
            w.int("id", id);
        }
        B::TimerStarted { id, fire_at } => {
            w.int("id", id).int("fire_at", fire_at);
        }
        B::SignalReceived { name, payload } => {
            w.string("name", name).raw("payload", payload);
        }
        B::SideEffectRecorded { id, value } => {
            w.int("id", id).raw("value", value);
        }
        B::MarkerRecorded { id, name } => {
            w.int("id", id).string("name", name);
        }
        B::ChildCompleted { id, result } => {
            w.int("id", id).raw("result", result);
        }
        B::ChildFailed { id, failure } => {
            w.int("id", id).raw("failure", failure);
        }
        B::SignalExternalSent {
            id,
            name,
            payload,
            options,
        } => {
            w.int("id", id)
                .string("name", name)
                .raw("payload", payload)
                .raw("options", options);
        }
        B::ExternalCancelRequested {
            id,
            options,
            reason,
        } => {
            w.int("id", id)
                .raw("options", options)
                .string("reason", reason);
        }
        B::SignalExternalCompleted { id, failure } => {
            w.int("id", id);
            match failure {
                Some(failure) => w.raw("failure", failure),
                None => w.int("failure", "null"),
            };
        }
        B::CancelRequested { reason } | B::WorkflowTerminated { reason } => {
            w.string("reason", reason);
        }
        B::TimedOut | B::WorkflowCanceled => {}
        B::WorkflowCompleted { result } => {
            w.raw("result", result);
        }
        B::WorkflowFailed { failure } => {
            w.raw("failure", failure);
        }
        B::WorkflowContinuedAsNew { input, options } => {
            w.raw("input", input).raw("options", options);
        }
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Payload {
        Payload::from_json(text.as_bytes()).unwrap()
    }

    fn one_of_each() -> Vec<EventBody> {
        use EventBody as B;
        vec![
            B::TaskStarted { time: -5 },
            B::WorkflowStarted {
                name: "wf \"quoted\" ✓".into(),
                input: p("[1, 2]"),
                info: p("{}"),
            },
            B::ActivityScheduled {
                id: 1,
                name: "charge".into(),
                input: p("null"),
                options: p("{\"retry\":{}}"),
            },
            B::ActivityCompleted {
                id: 1,
                result: p("null"),
                attempt: 3,
            },
            B::ActivityFailed {
                id: 1,
                failure: p("{\"message\":\"x\"}"),
                attempt: 1,
            },
            B::ActivityCancelRequested { id: 1 },
            B::TimerStarted {
                id: 2,
                fire_at: 1_700_000_000_000_000,
            },
            B::TimerFired { id: 2 },
            B::TimerCanceled { id: 2 },
            B::SignalReceived {
                name: "go".into(),
                payload: p("\"\\u00e9\""),
            },
            B::SideEffectRecorded {
                id: 3,
                value: p("0.25"),
            },
            B::MarkerRecorded {
                id: 4,
                name: "fix-1".into(),
            },
            B::ChildScheduled {
                id: 5,
                name: "child".into(),
                input: p("[]"),
                options: p("{\"instance_id\":\"c-1\"}"),
            },
            B::ChildCompleted {
                id: 5,
                result: p("1"),
            },
            B::ChildFailed {
                id: 5,
                failure: p("{}"),
            },
            B::ChildCancelRequested { id: 5 },
            B::SignalExternalSent {
                id: 6,
                name: "sig".into(),
                payload: p("true"),
                options: p("{\"instance_id\":\"o\"}"),
            },
            B::SignalExternalCompleted {
                id: 6,
                failure: None,
            },
            B::SignalExternalCompleted {
                id: 6,
                failure: Some(p("{\"m\":1}")),
            },
            B::ExternalCancelRequested {
                id: 7,
                options: p("{\"instance_id\":\"o\"}"),
                reason: "superseded".into(),
            },
            B::CancelRequested {
                reason: "user".into(),
            },
            B::TimedOut,
            B::WorkflowCompleted {
                result: p("\"ok\""),
            },
            B::WorkflowFailed { failure: p("{}") },
            B::WorkflowCanceled,
            B::WorkflowContinuedAsNew {
                input: p("[1]"),
                options: p("{}"),
            },
            B::WorkflowTerminated {
                reason: "ops".into(),
            },
        ]
    }

    #[test]
    fn every_kind_round_trips_byte_for_byte() {
        let bodies = one_of_each();
        let mut kinds: Vec<_> = bodies.iter().map(|b| b.kind()).collect();
        kinds.dedup();
        assert_eq!(
            kinds,
            EventKind::ALL,
            "test covers every kind in table order"
        );
        for (i, body) in bodies.into_iter().enumerate() {
            let seq = i as u64 + 1;
            let bytes = encode(seq, &body);
            let decoded = decode(&bytes, seq, SeqRule::Recorded).unwrap();
            assert_eq!(decoded.body, body);
            assert_eq!(encode(seq, &decoded.body), bytes);
        }
    }

    /// The stored bytes of every kind, pinned: history written by earlier versions must keep
    /// decoding, and the encoder must keep writing exactly these bytes.
    #[test]
    fn the_wire_format_is_pinned() {
        let expected = [
            r#"{"seq":1,"kind":"task_started","time":-5}"#,
            r#"{"seq":2,"kind":"workflow_started","name":"wf \"quoted\" ✓","input":[1, 2],"info":{}}"#,
            r#"{"seq":3,"kind":"activity_scheduled","id":1,"name":"charge","input":null,"options":{"retry":{}}}"#,
            r#"{"seq":4,"kind":"activity_completed","id":1,"result":null,"attempt":3}"#,
            r#"{"seq":5,"kind":"activity_failed","id":1,"failure":{"message":"x"},"attempt":1}"#,
            r#"{"seq":6,"kind":"activity_cancel_requested","id":1}"#,
            r#"{"seq":7,"kind":"timer_started","id":2,"fire_at":1700000000000000}"#,
            r#"{"seq":8,"kind":"timer_fired","id":2}"#,
            r#"{"seq":9,"kind":"timer_canceled","id":2}"#,
            r#"{"seq":10,"kind":"signal_received","name":"go","payload":"\u00e9"}"#,
            r#"{"seq":11,"kind":"side_effect_recorded","id":3,"value":0.25}"#,
            r#"{"seq":12,"kind":"marker_recorded","id":4,"name":"fix-1"}"#,
            r#"{"seq":13,"kind":"child_scheduled","id":5,"name":"child","input":[],"options":{"instance_id":"c-1"}}"#,
            r#"{"seq":14,"kind":"child_completed","id":5,"result":1}"#,
            r#"{"seq":15,"kind":"child_failed","id":5,"failure":{}}"#,
            r#"{"seq":16,"kind":"child_cancel_requested","id":5}"#,
            r#"{"seq":17,"kind":"signal_external_sent","id":6,"name":"sig","payload":true,"options":{"instance_id":"o"}}"#,
            r#"{"seq":18,"kind":"signal_external_completed","id":6,"failure":null}"#,
            r#"{"seq":19,"kind":"signal_external_completed","id":6,"failure":{"m":1}}"#,
            r#"{"seq":20,"kind":"external_cancel_requested","id":7,"options":{"instance_id":"o"},"reason":"superseded"}"#,
            r#"{"seq":21,"kind":"cancel_requested","reason":"user"}"#,
            r#"{"seq":22,"kind":"timed_out"}"#,
            r#"{"seq":23,"kind":"workflow_completed","result":"ok"}"#,
            r#"{"seq":24,"kind":"workflow_failed","failure":{}}"#,
            r#"{"seq":25,"kind":"workflow_canceled"}"#,
            r#"{"seq":26,"kind":"workflow_continued_as_new","input":[1],"options":{}}"#,
            r#"{"seq":27,"kind":"workflow_terminated","reason":"ops"}"#,
        ];
        let bodies = one_of_each();
        assert_eq!(bodies.len(), expected.len());
        for (i, (body, text)) in bodies.iter().zip(expected).enumerate() {
            let seq = i as u64 + 1;
            assert_eq!(String::from_utf8(encode(seq, body)).unwrap(), text);
            let decoded = decode(text.as_bytes(), seq, SeqRule::Recorded).unwrap();
            assert_eq!(&decoded.body, body);
            let general = decode_general(text.as_bytes(), seq, SeqRule::Recorded).unwrap();
            assert_eq!(&general.body, body);
        }
    }

    #[test]
    fn writes_a_fixed_shape() {
        let body = EventBody::ActivityScheduled {
            id: 1,
            name: "charge".into(),
            input: p("[ \"o-1\", 100 ]"),
            options: p("{}"),
        };
        assert_eq!(
            String::from_utf8(encode(3, &body)).unwrap(),
            r#"{"seq":3,"kind":"activity_scheduled","id":1,"name":"charge","input":[ "o-1", 100 ],"options":{}}"#
        );
    }

    #[test]
    fn corrupt_events_name_the_seq() {
        let cases: &[&[u8]] = &[
            b"",
            b"{",
            b"[]",
            br#"{"seq":7,"kind":"nope"}"#,
            br#"{"seq":7,"kind":"timer_started","id":1}"#,
            br#"{"seq":7,"kind":"timer_started","id":0,"fire_at":1}"#,
            br#"{"seq":7,"kind":"timer_started","id":-1,"fire_at":1}"#,
            br#"{"seq":7,"kind":"timer_started","id":"1","fire_at":1}"#,
            br#"{"seq":8,"kind":"timed_out"}"#,
            br#"{"kind":"timed_out"}"#,
            br#"{"seq":7,"kind":"timed_out","kind":"timed_out"}"#,
            br#"{"seq":7,"kind":"signal_received","name":null,"payload":1}"#,
            br#"{"seq":7,"kind":"activity_completed","id":1,"attempt":1}"#,
        ];
        for bytes in cases {
            match decode(bytes, 7, SeqRule::Recorded) {
                Err(Error::HistoryCorrupt { seq: 7, .. }) => {}
                other => panic!("{:?} -> {other:?}", String::from_utf8_lossy(bytes)),
            }
        }
    }

    #[test]
    fn null_payloads_are_payloads() {
        let e = decode(
            br#"{"seq":1,"kind":"activity_completed","id":1,"result":null,"attempt":1}"#,
            1,
            SeqRule::Recorded,
        )
        .unwrap();
        assert!(
            matches!(e.body, EventBody::ActivityCompleted { ref result, .. } if result.is_null())
        );
    }

    #[test]
    fn inbox_events_must_not_carry_seq() {
        assert!(decode(br#"{"kind":"timed_out"}"#, 4, SeqRule::Inbox).is_ok());
        assert!(matches!(
            decode(br#"{"seq":4,"kind":"timed_out"}"#, 4, SeqRule::Inbox),
            Err(Error::HistoryCorrupt { seq: 4, .. })
        ));
    }

    /// The canonical fast path accepts only what the general decoder accepts, with the same
    /// result, and accepts every event the encoder writes.
    #[test]
    fn canonical_decoder_agrees_with_the_general_one() {
        use proptest::prelude::*;
        let bodies = one_of_each();
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
            cases: 2048,
            failure_persistence: None,
            ..Default::default()
        });
        runner
            .run(
                &(
                    0..bodies.len(),
                    any::<proptest::sample::Index>(),
                    any::<u8>(),
                    0u8..4,
                ),
                |(which, at, byte, how)| {
                    let seq = which as u64 + 1;
                    let mut bytes = encode(seq, &bodies[which]);
                    // Strings with escapes are left to the general decoder.
                    let escaped = matches!(
                        &bodies[which],
                        EventBody::WorkflowStarted { name, .. } if name.contains('"')
                    );
                    let fast = crate::canonical::decode(&bytes, seq).map(|e| e.body);
                    prop_assert_eq!(fast, (!escaped).then(|| bodies[which].clone()));
                    let i = at.index(bytes.len());
                    match how {
                        0 => bytes[i] = byte,
                        1 => bytes.truncate(i),
                        2 => bytes.insert(i, byte),
                        _ => bytes.insert(i, b' '),
                    }
                    if let Some(fast) = crate::canonical::decode(&bytes, seq) {
                        let general = decode_general(&bytes, seq, SeqRule::Recorded);
                        prop_assert_eq!(Ok(fast), general, "{}", String::from_utf8_lossy(&bytes));
                    }
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn canonical_decoder_declines_what_it_does_not_know() {
        for bytes in [
            &br#"{"seq":1,"kind":"signal_received","name":"a\"b","payload":1}"#[..],
            br#"{"seq":1, "kind":"timed_out"}"#,
            br#"{"kind":"timed_out","seq":1}"#,
            br#"{"seq":1,"kind":"timed_out","extra":1}"#,
            br#"{"seq":01,"kind":"timed_out"}"#,
            br#"{"seq":1,"kind":"timer_fired","id":1.0}"#,
            br#"{"seq":1,"kind":"timer_fired","id":0}"#,
            br#"{"seq":1,"kind":"task_started","time":-9223372036854775809}"#,
            br#"{"seq":1,"kind":"timed_out"} "#,
        ] {
            assert_eq!(
                crate::canonical::decode(bytes, 1),
                None,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(
            crate::canonical::decode(
                br#"{"seq":1,"kind":"task_started","time":-9223372036854775808}"#,
                1
            )
            .map(|e| e.body),
            Some(EventBody::TaskStarted { time: i64::MIN })
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let e = decode(
            br#"{"seq":1,"kind":"timer_fired","id":2,"backend_note":{"x":1}}"#,
            1,
            SeqRule::Recorded,
        )
        .unwrap();
        assert_eq!(e.body, EventBody::TimerFired { id: 2 });
    }
}
