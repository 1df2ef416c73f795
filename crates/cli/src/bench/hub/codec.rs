//! The hub protocol as the generator speaks it, in either format (and Socket.IO's, for
//! the side-by-side comparison): the few commands it sends, and what it needs from each
//! message the server sends back.
//!
//! Protobuf messages are built and read with the hub's own `client.proto` types; the
//! SDK interop suite (`tests/hub/sdk_test.js` on centrifuge-js's Protobuf build) is what
//! checks those against an independent implementation. Socket.IO is Engine.IO v4
//! packets over WebSocket, one per message, talking to `bench/peers/socketio-hub.js`:
//! `40` connects, `42ID["subscribe",CHANNEL]` and `42ID["publish",{channel,data}]` are
//! acknowledged with `43ID[{offset}]`, publications arrive as `42["pub",{offset,data}]`,
//! and the server's ping `2` is answered with `3`.

use super::pusher;
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
    /// Socket.IO 4 (Engine.IO v4 over WebSocket) to `bench/peers/socketio-hub.js`, for
    /// comparison; the URL is the server's `/socket.io/` path.
    #[value(name = "socketio")]
    SocketIo,
    /// The Pusher protocol 7, for comparison with a Pusher-compatible server (sockudo);
    /// the URL is `ws://HOST:PORT/app/KEY`, publishers use its HTTP API (`--api-key
    /// APP_ID:SECRET`).
    Pusher,
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
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Json => "json",
            Protocol::Protobuf => "protobuf",
            Protocol::SocketIo => "socketio",
            Protocol::Pusher => "pusher",
        }
    }

    /// The subprotocol a connection offers, if the format needs one.
    pub fn subprotocol(self) -> Option<&'static str> {
        match self {
            Protocol::Json | Protocol::SocketIo | Protocol::Pusher => None,
            Protocol::Protobuf => Some(duplex_hub::protocol::protobuf::SUBPROTOCOL),
        }
    }

    /// The WebSocket URL for a server URL: Socket.IO's carries the Engine.IO version and
    /// transport in its query.
    pub fn url(self, url: &str) -> String {
        match self {
            Protocol::SocketIo if !url.contains('?') => format!("{url}?EIO=4&transport=websocket"),
            Protocol::Pusher => pusher::url(url),
            _ => url.to_owned(),
        }
    }

    fn command(self, json: Value, protobuf: wire::Command) -> Message {
        match self {
            Protocol::Protobuf => Message::binary(protobuf.encode_length_delimited_to_vec()),
            _ => Message::text(json.to_string()),
        }
    }

    /// Whether a channel's publications arrive in order, numbered by the server. With
    /// Pusher, the generator numbers them, and concurrent HTTP publishes have no order.
    pub fn ordered(self) -> bool {
        self != Protocol::Pusher
    }

    /// `connect` (id 1) with `token`; none for Pusher, whose server greets unasked (an
    /// event that counts as the reply to id 1).
    pub fn connect(self, token: &str) -> Option<Message> {
        let name = "duplex-bench";
        match self {
            Protocol::Pusher => return None,
            // Socket.IO CONNECT to the main namespace; the token as its auth payload.
            Protocol::SocketIo => {
                return Some(match token {
                    "" => Message::text("40"),
                    token => Message::text(format!("40{}", json!({ "token": token }))),
                })
            }
            Protocol::Json | Protocol::Protobuf => {}
        }
        Some(self.command(
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
        ))
    }

    /// `subscribe` to `channel`.
    pub fn subscribe(self, id: u32, channel: &str) -> Message {
        match self {
            Protocol::SocketIo => {
                return Message::text(format!("42{id}{}", json!(["subscribe", channel])))
            }
            Protocol::Pusher => return Message::text(pusher::subscribe(channel)),
            Protocol::Json | Protocol::Protobuf => {}
        }
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

    /// `publish` of `data` (a JSON value) to `channel`. With Pusher, a client event,
    /// unacknowledged and refused on public channels: the generator publishes through
    /// the HTTP API instead.
    pub fn publish(self, id: u32, channel: &str, data: &Value) -> Message {
        match self {
            Protocol::Pusher => Message::text(pusher::client_event(channel, data)),
            Protocol::Json => self.command(
                json!({"id": id, "publish": {"channel": channel, "data": data}}),
                wire::Command::default(),
            ),
            Protocol::SocketIo => Message::text(format!(
                "42{id}{}",
                json!(["publish", {"channel": channel, "data": data}])
            )),
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
            Protocol::SocketIo => Message::text("3"),
            Protocol::Pusher => Message::text(pusher::pong()),
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
            Protocol::SocketIo => {
                let text = std::str::from_utf8(message).map_err(|e| e.to_string())?;
                socketio_event(text).map(|event| vec![event])
            }
            Protocol::Pusher => {
                let text = std::str::from_utf8(message).map_err(|e| e.to_string())?;
                pusher::decode(text).map(|event| vec![event])
            }
        }
    }
}

/// One Engine.IO packet: `2` ping, `4` a Socket.IO packet (`0` connect, `2` event, `3`
/// ack, `4` connect error), anything else (the `0` open packet) unused here.
fn socketio_event(packet: &str) -> Result<Event, String> {
    let Some(socketio) = packet.strip_prefix('4') else {
        return Ok(if packet == "2" {
            Event::Ping
        } else {
            Event::Other
        });
    };
    let (kind, rest) = socketio.split_at(socketio.len().min(1));
    // An ack id may follow the type (digits), then the JSON payload.
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (id, payload) = rest.split_at(digits);
    let id = id.parse::<u32>().ok();
    let parse = || {
        serde_json::from_str::<Value>(payload)
            .map_err(|e| format!("Socket.IO packet {packet:?}: {e}"))
    };
    match kind {
        "0" => Ok(Event::Reply {
            id: 1,
            outcome: Ok(0),
        }),
        "4" => Ok(Event::Reply {
            id: 1,
            outcome: Err(format!("connect refused: {payload}")),
        }),
        "3" => {
            let id = id.ok_or_else(|| format!("Socket.IO ack without an id: {packet:?}"))?;
            let answer = &parse()?[0];
            let outcome = match answer.get("error") {
                Some(e) => Err(e.to_string()),
                None => Ok(answer["offset"].as_u64().unwrap_or(0)),
            };
            Ok(Event::Reply { id, outcome })
        }
        "2" => {
            let event = parse()?;
            if event[0] != "pub" {
                return Ok(Event::Other);
            }
            Ok(Event::Publication {
                offset: event[1]["offset"].as_u64().unwrap_or(0),
                sent_us: event[1]["data"]["t"].as_u64(),
            })
        }
        _ => Ok(Event::Other),
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
                data: duplex_hub::protocol::Payload::Json(data.clone()),
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

    /// Engine.IO v4 / Socket.IO 4 packets as `socket.io` 4.8 writes them.
    #[test]
    fn socketio_packets() {
        let p = Protocol::SocketIo;
        let decode = |packet: &str| p.decode(packet.as_bytes()).unwrap().remove(0);
        assert_eq!(
            decode(r#"0{"sid":"x","upgrades":[],"pingInterval":25000}"#),
            Event::Other
        );
        assert_eq!(
            decode(r#"40{"sid":"y"}"#),
            Event::Reply {
                id: 1,
                outcome: Ok(0)
            }
        );
        assert!(matches!(
            decode(r#"44{"message":"no"}"#),
            Event::Reply {
                id: 1,
                outcome: Err(_)
            }
        ));
        assert_eq!(decode("2"), Event::Ping);
        assert_eq!(
            decode(r#"4317[{"offset":9}]"#),
            Event::Reply {
                id: 17,
                outcome: Ok(9)
            }
        );
        assert!(
            matches!(decode(r#"432[{"error":"bad"}]"#), Event::Reply { id: 2, outcome: Err(e) } if e.contains("bad"))
        );
        assert_eq!(
            decode(r#"42["pub",{"offset":3,"data":{"t":77,"pad":"x"}}]"#),
            Event::Publication {
                offset: 3,
                sent_us: Some(77)
            }
        );
        assert_eq!(decode(r#"42["other",1]"#), Event::Other);
        assert!(p.decode(b"42[not json").is_err());
        assert!(p.decode(b"43[{}]").is_err(), "an ack needs its id");
        let text = |m: Message| match m {
            Message::Text(t) => t.as_str().to_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(text(p.connect("").unwrap()), "40");
        assert_eq!(text(p.subscribe(5, "a\"b")), r#"425["subscribe","a\"b"]"#);
        assert_eq!(
            text(p.publish(6, "c", &json!({"t": 1}))),
            r#"426["publish",{"channel":"c","data":{"t":1}}]"#
        );
        assert_eq!(text(p.pong()), "3");
        assert_eq!(
            p.url("ws://h:1/socket.io/"),
            "ws://h:1/socket.io/?EIO=4&transport=websocket"
        );
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
                    assert_eq!(
                        p.data.as_ref().unwrap().as_bytes(),
                        b"{\"pad\":\"p\",\"t\":1}"
                    );
                }
                other => panic!("{format:?}: {other:?}"),
            }
            let connect = format
                .decode(&bytes(protocol.connect("tok").unwrap()))
                .unwrap();
            assert!(matches!(&connect[0].request, Request::Connect(c) if c.token == "tok"));
            let subscribe = format.decode(&bytes(protocol.subscribe(2, "c"))).unwrap();
            assert!(matches!(&subscribe[0].request, Request::Subscribe(s) if s.channel == "c"));
            let pong = format.decode(&bytes(protocol.pong())).unwrap();
            assert!(matches!(pong[0].request, Request::Pong));
        }
    }
}
