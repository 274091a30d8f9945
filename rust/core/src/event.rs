//! History events: the decoded form, decoding from stored bytes and encoding to them.
//!
//! Each event is one JSON object with `seq`, `kind` and the kind's fields (see
//! `docs/internals/reducer.md`). Everything the core knows about an event kind is one row of the
//! table below (`event_table!`): its wire name, where it may appear in a workflow task, and its
//! fields in their stored order, each with its type. From that row the macro generates the
//! [`EventKind`] and [`EventBody`] variants, the general decoder (any valid JSON encoding), the
//! canonical fast decoder (`crate::canonical`) and the encoder. How a field of each type is
//! read and written is `crate::fields`. The encoder writes `seq`, `kind`, then the row's fields
//! in order, so the same event always has the same bytes.
//!
//! A new event kind is a new row (and a line in the contract's table); nothing else here changes.

use crate::canonical::Cursor;
use crate::error::{Error, Result};
use crate::fields::{Field, Writer};
use crate::payload::Payload;
use serde::Deserialize;
use std::borrow::Cow;

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

/// Generates everything per event kind from one row per kind:
///
/// ```text
/// Variant => "wire_name", Class { field: Type, ... };
/// ```
///
/// Field types are the types of [`EventBody`]'s fields and choose how the field is read and
/// written (`crate::fields`): `i64` (times), `u64` (the command id: positive), `u32` (attempt),
/// `String`, `Payload` (raw JSON), `Option<Payload>` (raw JSON whose `null` means `None`). A
/// kind without fields has no braces.
macro_rules! event_table {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident => $name:literal, $class:ident $({ $($field:ident : $ty:ty),* $(,)? })?;
    )*) => {
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

        /// A decoded event without its `seq`.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[allow(missing_docs)] // the fields are the contract's table
        pub enum EventBody {
            $(
                $(#[doc = $doc])*
                $variant $({ $($field: $ty),* })?,
            )*
        }

        impl EventBody {
            /// The event's kind.
            pub fn kind(&self) -> EventKind {
                match self { $(EventBody::$variant { .. } => EventKind::$variant,)* }
            }

            /// The command id the event carries, if its kind has one.
            pub fn command_id(&self) -> Option<u64> {
                match self {
                    $(
                        #[allow(unused_variables)]
                        EventBody::$variant $({ $($field),* })? => {
                            None $($(.or(<$ty as Field>::command_id($field)))*)?
                        }
                    )*
                }
            }
        }

        /// Builds the body from the general decoder's fields; the error describes the missing
        /// or invalid field.
        fn body_from_wire(
            kind: EventKind,
            #[allow(unused_variables)] w: WireEvent<'_>,
        ) -> std::result::Result<EventBody, String> {
            Ok(match kind {
                $(
                    EventKind::$variant => EventBody::$variant $({ $(
                        $field: <$ty as Field>::from_wire(w.$field, stringify!($field))?,
                    )* })?,
                )*
            })
        }

        /// Reads the fields of a `kind` event in canonical form (`crate::canonical`), or
        /// `None` when they are not exactly in that form.
        #[inline]
        pub(crate) fn read_canonical(
            kind: EventKind,
            #[allow(unused_variables)] c: &mut Cursor<'_>,
        ) -> Option<EventBody> {
            Some(match kind {
                $(
                    EventKind::$variant => EventBody::$variant $({ $(
                        $field: {
                            c.literal(concat!(",\"", stringify!($field), "\":").as_bytes())?;
                            <$ty as Field>::read(c)?
                        },
                    )* })?,
                )*
            })
        }

        /// Encodes an event to the bytes the core stores.
        pub(crate) fn encode(seq: u64, body: &EventBody) -> Vec<u8> {
            let mut w = Writer::start(seq, body.kind().as_str());
            match body {
                $(
                    EventBody::$variant $({ $($field),* })? => {
                        $($(
                            w.key(concat!(",\"", stringify!($field), "\":"));
                            <$ty as Field>::write($field, &mut w);
                        )*)?
                    }
                )*
            }
            w.finish()
        }
    };
}

event_table! {
    TaskStarted => "task_started", Marker { time: i64 };
    WorkflowStarted => "workflow_started", Inbound { name: String, input: Payload, info: Payload };
    ActivityScheduled => "activity_scheduled", Command {
        id: u64, name: String, input: Payload, options: Payload
    };
    ActivityCompleted => "activity_completed", Inbound { id: u64, result: Payload, attempt: u32 };
    ActivityFailed => "activity_failed", Inbound { id: u64, failure: Payload, attempt: u32 };
    ActivityCancelRequested => "activity_cancel_requested", Command { id: u64 };
    TimerStarted => "timer_started", Command { id: u64, fire_at: i64 };
    TimerFired => "timer_fired", Inbound { id: u64 };
    TimerCanceled => "timer_canceled", Command { id: u64 };
    SignalReceived => "signal_received", Inbound { name: String, payload: Payload };
    SideEffectRecorded => "side_effect_recorded", Command { id: u64, value: Payload };
    MarkerRecorded => "marker_recorded", Command { id: u64, name: String };
    ChildScheduled => "child_scheduled", Command {
        id: u64, name: String, input: Payload, options: Payload
    };
    ChildCompleted => "child_completed", Inbound { id: u64, result: Payload };
    ChildFailed => "child_failed", Inbound { id: u64, failure: Payload };
    ChildCancelRequested => "child_cancel_requested", Command { id: u64 };
    SignalExternalSent => "signal_external_sent", Command {
        id: u64, name: String, payload: Payload, options: Payload
    };
    /// `failure` is JSON `null` on the wire when the signal was delivered.
    SignalExternalCompleted => "signal_external_completed", Inbound {
        id: u64, failure: Option<Payload>
    };
    /// `workflow.cancel_external`: a cancel request for another instance (`options` names it);
    /// answered by `signal_external_completed` like a signal.
    ExternalCancelRequested => "external_cancel_requested", Command {
        id: u64, options: Payload, reason: String
    };
    CancelRequested => "cancel_requested", Inbound { reason: String };
    TimedOut => "timed_out", Inbound;
    WorkflowCompleted => "workflow_completed", Command { result: Payload };
    WorkflowFailed => "workflow_failed", Command { failure: Payload };
    WorkflowCanceled => "workflow_canceled", Command;
    WorkflowContinuedAsNew => "workflow_continued_as_new", Command {
        input: Payload, options: Payload
    };
    WorkflowTerminated => "workflow_terminated", Terminal { reason: String };
}

/// The general decoder reads every field any kind has: each field name has one wire type
/// (`crate::fields`), and a kind's row picks the fields it needs.
macro_rules! wire_fields {
    ($($field:ident: $ty:ty),* $(,)?) => {
        /// Every field of every kind; which ones are required depends on `kind`.
        #[derive(Deserialize)]
        struct WireEvent<'a> {
            #[serde(default)]
            seq: Option<u64>,
            #[serde(borrow)]
            kind: Cow<'a, str>,
            $(
                #[serde(default, borrow)]
                $field: <$ty as Field>::Wire<'a>,
            )*
        }
    };
}

wire_fields! {
    time: i64,
    id: u64,
    name: String,
    input: Payload,
    info: Payload,
    options: Payload,
    result: Payload,
    failure: Payload,
    payload: Payload,
    value: Payload,
    attempt: u32,
    fire_at: i64,
    reason: String,
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

/// One history event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// 1-based, contiguous within a run.
    pub seq: u64,
    /// Kind and fields.
    pub body: EventBody,
}

impl EventBody {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

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

    /// Any JSON encoding of an event decodes to the same body: here every kind's fields in
    /// reverse alphabetical order with whitespace, which only the general decoder accepts.
    #[test]
    fn every_kind_decodes_from_any_field_order() {
        for (i, body) in one_of_each().into_iter().enumerate() {
            let seq = i as u64 + 1;
            let canonical = String::from_utf8(encode(seq, &body)).unwrap();
            let fields: Vec<(String, Box<RawValue>)> = serde_json::from_str::<
                std::collections::BTreeMap<String, Box<RawValue>>,
            >(&canonical)
            .unwrap()
            .into_iter()
            .rev()
            .collect();
            let reordered = format!(
                "{{ {} }}",
                fields
                    .iter()
                    .map(|(k, v)| format!("{:?} : {}", k, v.get()))
                    .collect::<Vec<_>>()
                    .join(" , ")
            );
            assert_eq!(crate::canonical::decode(reordered.as_bytes(), seq), None);
            let decoded = decode(reordered.as_bytes(), seq, SeqRule::Recorded).unwrap();
            assert_eq!(decoded.body, body, "{reordered}");
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
