//! Opaque JSON payloads, kept as text and written back byte for byte.

use serde_json::value::RawValue;
use std::fmt;

/// One JSON value produced by the Python converter. The core checks that it is valid JSON (so
/// the events it writes are valid) but never interprets it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Payload(Box<str>);

impl Payload {
    /// Validates `bytes` as a single JSON value; surrounding whitespace is dropped so that a
    /// payload reads back from an event exactly as it was written.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let raw: &RawValue = serde_json::from_slice(bytes)?;
        Ok(Payload(raw.get().into()))
    }

    /// Wraps text that serde_json already validated as one JSON value.
    pub(crate) fn from_raw(raw: &RawValue) -> Self {
        Payload(raw.get().into())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text as bytes (what crosses into Python).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// True when the payload is the JSON literal `null`.
    pub fn is_null(&self) -> bool {
        &*self.0 == "null"
    }

    /// The JSON encoding of a plain string (used for `cancel_requested` reasons).
    pub(crate) fn json_string(text: &str) -> Self {
        // Serialising a &str cannot fail.
        let encoded = serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\""));
        Payload(encoded.into_boxed_str())
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({})", &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_inner_bytes_and_drops_outer_whitespace() {
        let p = Payload::from_json(b"  {\"a\" : [1,  2.50]}\n").unwrap();
        assert_eq!(p.as_str(), "{\"a\" : [1,  2.50]}");
    }

    #[test]
    fn rejects_invalid_json() {
        assert!(Payload::from_json(b"{").is_err());
        assert!(Payload::from_json(b"1 2").is_err());
        assert!(Payload::from_json(b"").is_err());
        assert!(Payload::from_json(b"\xff").is_err());
    }

    #[test]
    fn encodes_strings() {
        assert_eq!(Payload::json_string("a\"b").as_str(), "\"a\\\"b\"");
    }
}
