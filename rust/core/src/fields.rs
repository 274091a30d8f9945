//! How one event field of each type is read and written, in the three places the event table
//! (`crate::event`) uses it: the general decoder (any valid JSON, through serde), the canonical
//! fast decoder (`crate::canonical`) and the encoder.
//!
//! The type of a field says how it is handled:
//!
//! | type | JSON | notes |
//! |---|---|---|
//! | `i64` | integer | times (microseconds since the epoch) |
//! | `u64` | positive integer | the command id (`0` is corrupt); [`Field::command_id`] |
//! | `u32` | integer | activity attempt |
//! | `String` | string | names and reasons |
//! | `Payload` | any JSON value | kept as raw text, written back byte for byte |
//! | `Option<Payload>` | any JSON value | `null` means `None` (delivered external signal) |

use crate::canonical::Cursor;
use crate::payload::Payload;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::fmt::Write as _;

/// The reading and writing of one field type.
pub(crate) trait Field: Sized {
    /// What the general decoder deserialises the field into (absent: `Default`).
    type Wire<'a>: Default;

    /// The field from the general decoder; the error describes what is missing or wrong.
    fn from_wire(wire: Self::Wire<'_>, key: &str) -> Result<Self, String>;

    /// The field's value in canonical form at the cursor (after its key), or `None`.
    fn read(c: &mut Cursor<'_>) -> Option<Self>;

    /// Writes the value (after its key).
    fn write(&self, w: &mut Writer);

    /// The command id, when the field is one.
    fn command_id(&self) -> Option<u64> {
        None
    }
}

fn need<T>(value: Option<T>, key: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("field `{key}`"))
}

impl Field for i64 {
    type Wire<'a> = Option<i64>;
    fn from_wire(wire: Option<i64>, key: &str) -> Result<Self, String> {
        need(wire, key)
    }
    #[inline]
    fn read(c: &mut Cursor<'_>) -> Option<Self> {
        c.signed()
    }
    fn write(&self, w: &mut Writer) {
        w.int(self);
    }
}

/// `u64` is the command id: positive.
impl Field for u64 {
    type Wire<'a> = Option<u64>;
    fn from_wire(wire: Option<u64>, key: &str) -> Result<Self, String> {
        match wire {
            Some(0) => Err(format!("a positive `{key}` (ids start at 1)")),
            other => need(other, key),
        }
    }
    #[inline]
    fn read(c: &mut Cursor<'_>) -> Option<Self> {
        c.unsigned().filter(|&id| id > 0)
    }
    fn write(&self, w: &mut Writer) {
        w.int(self);
    }
    fn command_id(&self) -> Option<u64> {
        Some(*self)
    }
}

impl Field for u32 {
    type Wire<'a> = Option<u32>;
    fn from_wire(wire: Option<u32>, key: &str) -> Result<Self, String> {
        need(wire, key)
    }
    #[inline]
    fn read(c: &mut Cursor<'_>) -> Option<Self> {
        u32::try_from(c.unsigned()?).ok()
    }
    fn write(&self, w: &mut Writer) {
        w.int(self);
    }
}

impl Field for String {
    type Wire<'a> = Option<String>;
    fn from_wire(wire: Option<String>, key: &str) -> Result<Self, String> {
        need(wire, key)
    }
    #[inline]
    fn read(c: &mut Cursor<'_>) -> Option<Self> {
        c.string()
    }
    fn write(&self, w: &mut Writer) {
        w.string(self);
    }
}

impl Field for Payload {
    type Wire<'a> = RawField<'a>;
    fn from_wire(wire: RawField<'_>, key: &str) -> Result<Self, String> {
        need(wire.0, key).map(Payload::from_raw)
    }
    #[inline]
    fn read(c: &mut Cursor<'_>) -> Option<Self> {
        c.payload()
    }
    fn write(&self, w: &mut Writer) {
        w.raw(self.as_str());
    }
}

/// A payload whose JSON `null` means "none" (and is written as `null`).
impl Field for Option<Payload> {
    type Wire<'a> = RawField<'a>;
    fn from_wire(wire: RawField<'_>, key: &str) -> Result<Self, String> {
        let payload = Payload::from_wire(wire, key)?;
        Ok((!payload.is_null()).then_some(payload))
    }
    #[inline]
    fn read(c: &mut Cursor<'_>) -> Option<Self> {
        let payload = c.payload()?;
        Some((!payload.is_null()).then_some(payload))
    }
    fn write(&self, w: &mut Writer) {
        w.raw(self.as_ref().map_or("null", Payload::as_str));
    }
}

/// A payload field for the general decoder: absent, or present with any JSON value (including
/// `null`).
#[derive(Default)]
pub(crate) struct RawField<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for RawField<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(deserializer).map(|raw| RawField(Some(raw)))
    }
}

/// Writes events as compact JSON objects with a fixed field order.
pub(crate) struct Writer(String);

impl Writer {
    pub(crate) fn start(seq: u64, kind: &str) -> Self {
        let mut out = String::with_capacity(96);
        // Writing to a String cannot fail.
        let _ = write!(out, "{{\"seq\":{seq},\"kind\":\"{kind}\"");
        Writer(out)
    }
    /// `,"key":`, written by the table.
    pub(crate) fn key(&mut self, key: &str) {
        self.0.push_str(key);
    }
    fn int(&mut self, value: impl std::fmt::Display) {
        let _ = write!(self.0, "{value}");
    }
    fn string(&mut self, value: &str) {
        // serde_json escapes; serialising a &str cannot fail.
        self.0
            .push_str(&serde_json::to_string(value).unwrap_or_default());
    }
    fn raw(&mut self, value: &str) {
        self.0.push_str(value);
    }
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.0.push('}');
        self.0.into_bytes()
    }
}
