//! Fast decoding of history events written in the core's own canonical encoding.
//!
//! This file holds the frame (`seq`, `kind`) and the cursor; the fields of each kind are read
//! by code generated from the event table (`crate::event`), one [`crate::fields::Field`] per
//! field type.
//!
//! Replaying a long history is dominated by decoding its events. Stored events are the bytes
//! [`crate::event::encode`] wrote: no whitespace, `seq` then `kind` then the kind's fields in a
//! fixed order. This decoder accepts exactly that shape (matching keys byte for byte, parsing
//! integers and plain strings by hand, and letting serde_json validate and delimit each payload)
//! and returns `None` for anything else — escaped strings, other field orders, extra fields,
//! whitespace, errors — so the general decoder handles it and reports any problem. Whatever this
//! decoder accepts, the general decoder accepts too, with the same result (a property test in
//! `event.rs` checks this on valid and damaged events).

use crate::event::{read_canonical, Event, EventKind};
use crate::payload::Payload;
use serde::Deserialize;
use serde_json::value::RawValue;

pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// Consumes `literal` if the input continues with it.
    pub(crate) fn literal(&mut self, literal: &[u8]) -> Option<()> {
        if self.bytes[self.at..].starts_with(literal) {
            self.at += literal.len();
            Some(())
        } else {
            None
        }
    }

    /// A JSON unsigned integer without sign, fraction or exponent (and no leading zero).
    pub(crate) fn unsigned(&mut self) -> Option<u64> {
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

    pub(crate) fn signed(&mut self) -> Option<i64> {
        if self.literal(b"-").is_some() {
            let magnitude = self.unsigned()?;
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(self.unsigned()?).ok()
        }
    }

    /// A string without escapes or control characters.
    pub(crate) fn string(&mut self) -> Option<String> {
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
    pub(crate) fn payload(&mut self) -> Option<Payload> {
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
    let kind = std::str::from_utf8(&c.bytes[c.at..c.at + kind_len]).ok()?;
    let kind = EventKind::parse(kind)?;
    c.at += kind_len + 1;
    // The kind's fields, in its row's order (generated from the event table).
    let body = read_canonical(kind, &mut c)?;
    c.literal(b"}")?;
    (c.at == bytes.len()).then_some(Event {
        seq: expected_seq,
        body,
    })
}
