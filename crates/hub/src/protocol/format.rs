//! The two encodings of the protocol, chosen per connection at the handshake: JSON (text
//! messages, one object per line) or Protobuf (binary messages, length-delimited). Every
//! encoder returns the bytes of one reply or push, ready to join into a message.

use super::codes::{DisconnectCode, ErrorCode, UnsubscribeCode};
use super::command::{Command, DecodeError};
use super::protobuf;
use super::reply::{self, ClientInfo, Publication, Reply, SubscribeResult};

/// The subprotocol some clients offer for the JSON format.
pub const JSON_SUBPROTOCOL: &str = "centrifuge-json";

/// How a connection encodes its messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Text messages of newline-separated JSON objects (the default).
    #[default]
    Json,
    /// Binary messages of varint-length-prefixed Protobuf messages (subprotocol
    /// `centrifuge-protobuf`).
    Protobuf,
}

impl Format {
    /// The format for a handshake offering `subprotocols`, and the subprotocol to answer:
    /// Protobuf when `centrifuge-protobuf` is offered, otherwise JSON (answering
    /// `centrifuge-json` when that is offered, as Centrifugo does; none otherwise).
    pub fn negotiate<'a>(
        subprotocols: impl Iterator<Item = &'a str>,
    ) -> (Format, Option<&'static str>) {
        let mut json = None;
        for offered in subprotocols {
            if offered == protobuf::SUBPROTOCOL {
                return (Format::Protobuf, Some(protobuf::SUBPROTOCOL));
            }
            if offered == JSON_SUBPROTOCOL {
                json = Some(JSON_SUBPROTOCOL);
            }
        }
        (Format::Json, json)
    }

    /// Its name, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Protobuf => "protobuf",
        }
    }

    /// Whether its messages are text (JSON) rather than binary (Protobuf).
    pub fn is_text(self) -> bool {
        self == Format::Json
    }

    /// Decodes one client message of this format.
    pub fn decode(self, message: &[u8]) -> Result<Vec<Command>, DecodeError> {
        match self {
            Format::Json => match std::str::from_utf8(message) {
                Ok(text) => super::command::decode(text),
                // Text messages are valid UTF-8 (the library checks); kept total anyway.
                Err(e) => Err(DecodeError::Json {
                    line: 1,
                    reason: e.to_string(),
                }),
            },
            Format::Protobuf => protobuf::decode(message),
        }
    }

    /// The WebSocket message of `bytes` (one or more encoded items).
    pub fn message(self, bytes: Vec<u8>) -> duplex::Message {
        match self {
            // Every JSON encoder writes a String: this only checks what it wrote.
            Format::Json => duplex::Message::text(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
            Format::Protobuf => duplex::Message::binary(bytes),
        }
    }

    /// Appends `item` to the message being built in `out`.
    pub fn append(self, out: &mut Vec<u8>, item: Vec<u8>) {
        if out.is_empty() {
            *out = item;
            return;
        }
        if self == Format::Json {
            out.push(b'\n');
        }
        out.extend_from_slice(&item);
    }

    /// The reply to command `id`.
    pub fn reply(self, id: u32, r: &Reply) -> Vec<u8> {
        match self {
            Format::Json => reply::encode_reply(id, r).into_bytes(),
            Format::Protobuf => protobuf::encode_reply(id, r),
        }
    }

    /// Command `id` failed with `code`.
    pub fn error(self, id: u32, code: ErrorCode) -> Vec<u8> {
        match self {
            Format::Json => reply::encode_error(id, code).into_bytes(),
            Format::Protobuf => protobuf::encode_error(id, code),
        }
    }

    /// Command `id` failed with the backend's error.
    pub fn custom_error(self, id: u32, code: u32, message: &str, temporary: bool) -> Vec<u8> {
        match self {
            Format::Json => reply::encode_custom_error(id, code, message, temporary).into_bytes(),
            Format::Protobuf => protobuf::encode_custom_error(id, code, message, temporary),
        }
    }

    /// The hub's ping.
    pub fn ping(self) -> Vec<u8> {
        match self {
            Format::Json => reply::PING.as_bytes().to_vec(),
            Format::Protobuf => protobuf::encode_ping(),
        }
    }

    /// A `pub` push.
    pub fn publication(self, channel: &str, p: &Publication) -> Vec<u8> {
        match self {
            Format::Json => reply::encode_publication(channel, p).into_bytes(),
            Format::Protobuf => protobuf::encode_publication(channel, p),
        }
    }

    /// A `join` (`joined`) or `leave` push.
    pub fn presence_change(self, channel: &str, info: &ClientInfo, joined: bool) -> Vec<u8> {
        match (self, joined) {
            (Format::Json, true) => reply::encode_join(channel, info).into_bytes(),
            (Format::Json, false) => reply::encode_leave(channel, info).into_bytes(),
            (Format::Protobuf, true) => protobuf::encode_join(channel, info),
            (Format::Protobuf, false) => protobuf::encode_leave(channel, info),
        }
    }

    /// An `unsubscribe` push.
    pub fn unsubscribe(self, channel: &str, code: UnsubscribeCode) -> Vec<u8> {
        match self {
            Format::Json => reply::encode_unsubscribe(channel, code).into_bytes(),
            Format::Protobuf => protobuf::encode_unsubscribe(channel, code),
        }
    }

    /// A `disconnect` push.
    pub fn disconnect(self, code: DisconnectCode) -> Vec<u8> {
        self.custom_disconnect(code.code(), code.reason())
    }

    /// A `disconnect` push with the backend's code and reason.
    pub fn custom_disconnect(self, code: u16, reason: &str) -> Vec<u8> {
        match self {
            Format::Json => reply::encode_custom_disconnect(code, reason).into_bytes(),
            Format::Protobuf => protobuf::encode_custom_disconnect(code, reason),
        }
    }

    /// A `subscribe` push (a server-side subscription).
    pub fn subscribe(self, channel: &str, r: &SubscribeResult) -> Vec<u8> {
        match self {
            Format::Json => reply::encode_subscribe(channel, r).into_bytes(),
            Format::Protobuf => protobuf::encode_subscribe(channel, r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_chooses_the_format() {
        let pick = |offered: &[&str]| Format::negotiate(offered.iter().copied());
        assert_eq!(pick(&[]), (Format::Json, None));
        assert_eq!(pick(&["chat", "v2"]), (Format::Json, None));
        assert_eq!(
            pick(&["centrifuge-json"]),
            (Format::Json, Some("centrifuge-json"))
        );
        assert_eq!(
            pick(&["centrifuge-json", "centrifuge-protobuf"]),
            (Format::Protobuf, Some("centrifuge-protobuf"))
        );
        assert_eq!(
            pick(&["centrifuge-protobuf"]),
            (Format::Protobuf, Some("centrifuge-protobuf"))
        );
    }

    #[test]
    fn items_join_into_one_message_per_format() {
        let mut json = Vec::new();
        Format::Json.append(&mut json, b"{\"a\":1}".to_vec());
        Format::Json.append(&mut json, Format::Json.ping());
        assert_eq!(json, b"{\"a\":1}\n{}");
        assert!(
            matches!(Format::Json.message(json), duplex::Message::Text(t) if t.as_str() == "{\"a\":1}\n{}")
        );
        let mut binary = Vec::new();
        Format::Protobuf.append(&mut binary, Format::Protobuf.ping());
        Format::Protobuf.append(&mut binary, Format::Protobuf.ping());
        assert_eq!(binary, [0, 0]);
        assert!(
            matches!(Format::Protobuf.message(binary), duplex::Message::Binary(b) if b[..] == [0, 0])
        );
    }
}
