//! The hub protocol as the generator speaks it, in either format: the few commands it
//! sends, and what it needs from each message the hub sends back.
//!
//! Protobuf messages are built and read with the hub's own `client.proto` types; the
//! SDK interop suite (`tests/hub/sdk_test.js` on centrifuge-js's Protobuf build) is what
//! checks those against an independent implementation.

use duplex::Message;
use duplex_hub::protocol::protobuf::wire;
use prost::Message as _;
use serde_json::{json, Value};

/// The protocol format the connections speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// Text messages of JSON lines.
    Json,
    /// Binary messages of length-delimited Protobuf (subprotocol `centrifuge-protobuf`).
    Protobuf,
}

/// What one item of a hub message means to the generator.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// The hub's ping (answer with [`Protocol::pong`]).
    Ping,
    /// The reply to command `id`: accepted (with the stream's top offset when it is a
    /// subscribe reply), or refused with the hub's error.
    Reply {
        id: u32,
        outcome: Result<u64, String>,
    },
    /// A publication pushed to a subscriber: its offset and the send time in its data.
    Publication { offset: u64, sent_us: Option<u64> },
    /// Anything else (join, leave, ...).
    Other,
}

/// The send time a generator publication carries (`{"t": MICROSECONDS, "pad": ...}`).
fn sent_us(data: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Value>(data).ok()?["t"].as_u64()
}

impl Protocol {
    /// The subprotocol a connection offers, if the format needs one.
    pub fn subprotocol(self) -> Option<&'static str> {
        match self {
            Protocol::Json => None,
            Protocol::Protobuf => Some(duplex_hub::protocol::protobuf::SUBPROTOCOL),
        }
    }

    fn command(self, json: Value, protobuf: wire::Command) -> Message {
        match self {
            Protocol::Json => Message::text(json.to_string()),
            Protocol::Protobuf => Message::binary(protobuf.encode_length_delimited_to_vec()),
        }
    }

    /// `connect` (id 1) with `token`.
    pub fn connect(self, token: &str) -> Message {
        let name = "duplex-bench";
        self.command(
            json!({"id": 1, "connect": {"token": token, "name": name}}),
            wire::Command {
                id: 1,
                connect: Some(wire::ConnectRequest {
                    token: token.to_owned(),
                    name: name.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
    }

    /// `subscribe` to `channel`.
    pub fn subscribe(self, id: u32, channel: &str) -> Message {
        self.command(
            json!({"id": id, "subscribe": {"channel": channel}}),
            wire::Command {
                id,
                subscribe: Some(wire::SubscribeRequest {
                    channel: channel.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
    }

    /// `publish` of `data` (a JSON value) to `channel`.
    pub fn publish(self, id: u32, channel: &str, data: &Value) -> Message {
        match self {
            Protocol::Json => self.command(
                json!({"id": id, "publish": {"channel": channel, "data": data}}),
                wire::Command::default(),
            ),
            Protocol::Protobuf => self.command(
                Value::Null,
                wire::Command {
                    id,
                    publish: Some(wire::PublishRequest {
                        channel: channel.to_owned(),
                        data: data.to_string().into_bytes(),
                    }),
                    ..Default::default()
                },
            ),
        }
    }

    /// The answer to the hub's ping: an empty command.
    pub fn pong(self) -> Message {
        match self {
            Protocol::Json => Message::text("{}"),
            Protocol::Protobuf => Message::binary(vec![0u8]),
        }
    }

    /// The events in one data message from the hub.
    pub fn decode(self, message: &[u8]) -> Result<Vec<Event>, String> {
        match self {
            Protocol::Json => {
                let text = std::str::from_utf8(message).map_err(|e| e.to_string())?;
                text.split('\n').map(json_event).collect()
            }
            Protocol::Protobuf => {
                let mut rest = message;
                let mut events = Vec::new();
                while !rest.is_empty() {
                    let reply = wire::Reply::decode_length_delimited(&mut rest)
                        .map_err(|e| format!("not a Protobuf reply: {e}"))?;
                    events.push(protobuf_event(reply));
                }
                Ok(events)
            }
        }
    }
}

fn json_event(line: &str) -> Result<Event, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    if value.as_object().is_some_and(|o| o.is_empty()) {
        return Ok(Event::Ping);
    }
    if let Some(id) = value["id"].as_u64().filter(|&id| id != 0) {
        let outcome = match value.get("error") {
            Some(error) => Err(format!("error {error}")),
            None => Ok(value["subscribe"]["offset"].as_u64().unwrap_or(0)),
        };
        let id = u32::try_from(id).map_err(|_| format!("reply id {id} out of range"))?;
        return Ok(Event::Reply { id, outcome });
    }
    Ok(match value.get("push").and_then(|p| p.get("pub")) {
        Some(publication) => Event::Publication {
            offset: publication["offset"].as_u64().unwrap_or(0),
            sent_us: publication["data"]["t"].as_u64(),
        },
        None => Event::Other,
    })
}

fn protobuf_event(reply: wire::Reply) -> Event {
    if reply.id != 0 {
        let outcome = match reply.error {
            Some(e) => Err(format!("error {} {}", e.code, e.message)),
            None => Ok(reply.subscribe.map_or(0, |s| s.offset)),
        };
        return Event::Reply {
            id: reply.id,
            outcome,
        };
    }
    match reply.push {
        Some(wire::Push {
            publication: Some(p),
            ..
        }) => Event::Publication {
            offset: p.offset,
            sent_us: sent_us(&p.data),
        },
        Some(_) => Event::Other,
        None => Event::Ping,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hub's own encoders are the other side: what they write, the generator reads.
    #[test]
    fn both_formats_read_what_the_hub_writes() {
        use duplex_hub::protocol::reply::{Publication, Reply, SubscribeResult};
        use duplex_hub::protocol::{ErrorCode, Format};
        use serde_json::value::RawValue;
        let data: std::sync::Arc<RawValue> =
            RawValue::from_string("{\"t\":42,\"pad\":\"xx\"}".into())
                .unwrap()
                .into();
        for (format, protocol) in [
            (Format::Json, Protocol::Json),
            (Format::Protobuf, Protocol::Protobuf),
        ] {
            let mut message = Vec::new();
            let subscribed = Reply::Subscribe(SubscribeResult {
                offset: 7,
                ..Default::default()
            });
            format.append(&mut message, format.reply(2, &subscribed));
            format.append(&mut message, format.ping());
            let publication = Publication {
                data: data.clone(),
                info: None,
                offset: 8,
            };
            format.append(&mut message, format.publication("c", &publication));
            format.append(&mut message, format.error(3, ErrorCode::PermissionDenied));
            let events = protocol.decode(&message).unwrap();
            assert_eq!(events.len(), 4, "{format:?}");
            assert_eq!(
                events[0],
                Event::Reply {
                    id: 2,
                    outcome: Ok(7)
                }
            );
            assert_eq!(events[1], Event::Ping);
            assert_eq!(
                events[2],
                Event::Publication {
                    offset: 8,
                    sent_us: Some(42)
                }
            );
            assert!(
                matches!(&events[3], Event::Reply { id: 3, outcome: Err(e) } if e.contains("103")),
                "{format:?}: {:?}",
                events[3]
            );
        }
    }

    /// What the generator writes, the hub decodes as the commands meant.
    #[test]
    fn the_hub_reads_what_both_formats_write() {
        use duplex_hub::protocol::{Format, Request};
        for (format, protocol) in [
            (Format::Json, Protocol::Json),
            (Format::Protobuf, Protocol::Protobuf),
        ] {
            let bytes = |m: Message| match m {
                Message::Text(t) => t.as_str().as_bytes().to_vec(),
                Message::Binary(b) => b.to_vec(),
                other => panic!("{other:?}"),
            };
            let publish = protocol.publish(9, "chat:x", &json!({"t": 1, "pad": "p"}));
            let commands = format.decode(&bytes(publish)).unwrap();
            match &commands[0].request {
                Request::Publish(p) => {
                    assert_eq!(commands[0].id, 9);
                    assert_eq!(p.channel, "chat:x");
                    assert_eq!(p.data.as_ref().unwrap().get(), "{\"pad\":\"p\",\"t\":1}");
                }
                other => panic!("{format:?}: {other:?}"),
            }
            let connect = format.decode(&bytes(protocol.connect("tok"))).unwrap();
            assert!(matches!(&connect[0].request, Request::Connect(c) if c.token == "tok"));
            let subscribe = format.decode(&bytes(protocol.subscribe(2, "c"))).unwrap();
            assert!(matches!(&subscribe[0].request, Request::Subscribe(s) if s.channel == "c"));
            let pong = format.decode(&bytes(protocol.pong())).unwrap();
            assert!(matches!(pong[0].request, Request::Pong));
        }
    }
}
