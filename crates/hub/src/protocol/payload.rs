//! A publication's payload: JSON, or bytes that are not JSON (from a Protobuf client or
//! the HTTP API's `b64data`).
//!
//! The protocol's `data` fields are `bytes`: the JSON format embeds them as JSON, the
//! Protobuf format carries them as they are. The hub keeps the two kinds apart so a
//! Protobuf client's binary publication reaches Protobuf subscribers byte for byte, and
//! JSON subscribers still get valid JSON: a base64 string, as protobuf's own JSON mapping
//! writes `bytes`. Bytes that are valid JSON count as JSON (without the whitespace around
//! the value), so JSON and Protobuf clients of one channel see the same values.

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;

/// The payload of a publication, shared between the stored copy, its pushes and history.
#[derive(Clone, Debug)]
pub enum Payload {
    /// A JSON value, embedded as written.
    Json(Arc<RawValue>),
    /// Bytes that are not JSON.
    Binary(Bytes),
}

/// The first byte of a binary payload's stored form: JSON text never starts with it, so
/// the JSON stored before binary payloads existed reads back unchanged.
const BINARY_TAG: u8 = 0;

impl Payload {
    /// The payload of a Protobuf `bytes` field: absent when empty (Protobuf cannot tell
    /// empty from unset), JSON when the bytes are JSON, binary otherwise.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Payload> {
        if bytes.is_empty() {
            return None;
        }
        let json = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| serde_json::from_str::<Box<RawValue>>(text).ok());
        Some(match json {
            Some(raw) => Payload::Json(Arc::from(raw)),
            None => Payload::Binary(Bytes::from(bytes)),
        })
    }

    /// The bytes a Protobuf client gets.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Payload::Json(raw) => raw.get().as_bytes(),
            Payload::Binary(bytes) => bytes,
        }
    }

    /// Whether it holds bytes that are not JSON.
    pub fn is_binary(&self) -> bool {
        matches!(self, Payload::Binary(_))
    }

    /// Its size in bytes, as `max_publication_size` counts it.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether it is empty (never, for a payload that was accepted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload as the Redis engine stores it: JSON text (borrowed: the publish path
    /// copies it once, into the command), or a zero byte and the bytes.
    pub fn to_stored(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Payload::Json(raw) => raw.get().as_bytes().into(),
            Payload::Binary(bytes) => [&[BINARY_TAG][..], bytes].concat().into(),
        }
    }

    /// Reads [`Payload::to_stored`]'s form back.
    pub fn from_stored(stored: &[u8]) -> Result<Payload, String> {
        match stored.split_first() {
            Some((&BINARY_TAG, bytes)) => Ok(Payload::Binary(Bytes::copy_from_slice(bytes))),
            _ => Payload::from_json_text(stored),
        }
    }

    /// A JSON payload from its text.
    pub fn from_json_text(text: &[u8]) -> Result<Payload, String> {
        let text = std::str::from_utf8(text).map_err(|_| "not UTF-8".to_owned())?;
        RawValue::from_string(text.to_owned())
            .map(|raw| Payload::Json(Arc::from(raw)))
            .map_err(|e| format!("not JSON: {e}"))
    }

    /// A binary payload from base64 (the HTTP API's and the backend's `b64data`).
    pub fn from_base64(text: &str) -> Result<Payload, base64::DecodeError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
        Ok(Payload::from_bytes(bytes).unwrap_or(Payload::Binary(Bytes::new())))
    }

    /// The base64 of a binary payload (`None` for JSON).
    pub fn base64(&self) -> Option<String> {
        match self {
            Payload::Json(_) => None,
            Payload::Binary(bytes) => Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Json(raw) => raw.serialize(serializer),
            Payload::Binary(_) => serializer.serialize_str(&self.base64().unwrap_or_default()),
        }
    }
}

/// JSON commands carry JSON payloads only.
impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(|raw| Payload::Json(Arc::from(raw)))
    }
}

impl From<Box<RawValue>> for Payload {
    fn from(raw: Box<RawValue>) -> Payload {
        Payload::Json(Arc::from(raw))
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.is_binary() == other.is_binary() && self.as_bytes() == other.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_bytes_are_json_when_they_parse() {
        let json = Payload::from_bytes(b" {\"a\":1} ".to_vec()).unwrap();
        assert!(!json.is_binary());
        assert_eq!(json.as_bytes(), b"{\"a\":1}");
        assert_eq!(serde_json::to_string(&json).unwrap(), "{\"a\":1}");
        for bytes in [&b"\xff\x00\x01"[..], b"plain text", b"{\"a\":", b"\x00{}"] {
            let binary = Payload::from_bytes(bytes.to_vec()).unwrap();
            assert!(binary.is_binary(), "{bytes:?}");
            assert_eq!(binary.as_bytes(), bytes);
        }
        assert_eq!(Payload::from_bytes(Vec::new()), None);
    }

    #[test]
    fn json_clients_get_binary_payloads_as_base64_strings() {
        let binary = Payload::from_bytes(vec![0xff, 0x00, 0x01]).unwrap();
        assert_eq!(serde_json::to_string(&binary).unwrap(), "\"/wAB\"");
        assert_eq!(binary.base64().as_deref(), Some("/wAB"));
        assert_eq!(Payload::from_base64("/wAB").unwrap(), binary);
        // base64 of JSON text is a JSON payload, as the same bytes from a Protobuf client.
        assert!(!Payload::from_base64("eyJhIjoxfQ==").unwrap().is_binary());
        assert!(Payload::from_base64("not base64!").is_err());
    }

    #[test]
    fn the_stored_form_reads_back_and_old_json_still_reads() {
        for payload in [
            Payload::from_bytes(b"[1,2]".to_vec()).unwrap(),
            Payload::from_bytes(vec![0, 1, 2, b'\n', 0xff]).unwrap(),
            Payload::from_bytes(vec![b'{']).unwrap(),
        ] {
            let stored = payload.to_stored();
            assert_eq!(Payload::from_stored(&stored).unwrap(), payload);
        }
        assert_eq!(
            Payload::from_stored(b"{\"x\":true}").unwrap(),
            Payload::from_bytes(b"{\"x\":true}".to_vec()).unwrap()
        );
        assert!(Payload::from_stored(b"{not json").is_err());
        assert!(Payload::from_stored(b"\xff").is_err());
    }
}
