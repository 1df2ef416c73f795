//! The Protobuf codec against bytes written by hand from `client.proto`'s field numbers
//! (not by the wire types under test), and round trips through prost's own decoder.

use super::*;
use crate::protocol::reply::{HistoryResult, PresenceResult};
use std::sync::Arc;

/// A varint (protobuf's base-128 encoding).
fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Field `tag` with a varint value.
fn int(tag: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(tag << 3, &mut out);
    varint(n, &mut out);
    out
}

/// Field `tag` with a length-delimited value.
fn field(tag: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint((tag << 3) | 2, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// A message made of `fields`, prefixed with its length.
fn delimited(fields: &[Vec<u8>]) -> Vec<u8> {
    let body = fields.concat();
    let mut out = Vec::new();
    varint(body.len() as u64, &mut out);
    out.extend_from_slice(&body);
    out
}

fn json(s: &str) -> Json {
    Arc::from(RawValue::from_string(s.to_owned()).unwrap())
}

#[test]
fn several_commands_per_message_as_the_sdks_send_them() {
    // connect {token "t", name "js"}, subscribe {channel "chat:a", recover, epoch "e",
    // offset 7}, publish {channel "chat:a", data {"a":1}}, then a pong (empty command).
    let message = [
        delimited(&[
            int(1, 1),
            field(4, &[field(1, b"t"), field(4, b"js")].concat()),
        ]),
        delimited(&[
            int(1, 2),
            field(
                5,
                &[field(1, b"chat:a"), int(3, 1), field(6, b"e"), int(7, 7)].concat(),
            ),
        ]),
        delimited(&[
            int(1, 3),
            field(7, &[field(1, b"chat:a"), field(2, b"{\"a\":1}")].concat()),
        ]),
        delimited(&[]),
    ]
    .concat();
    let commands = decode(&message).unwrap();
    assert_eq!(commands.len(), 4);
    assert!(
        matches!(&commands[0].request, Request::Connect(c) if c.token == "t" && c.name == "js" && c.data.is_none())
    );
    match &commands[1].request {
        Request::Subscribe(s) => assert_eq!(
            (s.channel.as_str(), s.recover, s.epoch.as_str(), s.offset),
            ("chat:a", true, "e", 7)
        ),
        other => panic!("{other:?}"),
    }
    match &commands[2].request {
        Request::Publish(p) => {
            assert_eq!(commands[2].id, 3);
            assert_eq!(p.data.as_ref().unwrap().as_bytes(), b"{\"a\":1}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(commands[3].request, Request::Pong));
}

#[test]
fn history_since_and_ping() {
    let message = [
        delimited(&[
            int(1, 4),
            field(
                10,
                &[
                    field(1, b"c"),
                    int(7, 10),
                    field(8, &[int(1, 5), field(2, b"ep")].concat()),
                    int(9, 1),
                ]
                .concat(),
            ),
        ]),
        delimited(&[int(1, 5), field(11, &[])]),
    ]
    .concat();
    let commands = decode(&message).unwrap();
    match &commands[0].request {
        Request::History(h) => {
            assert_eq!((h.channel.as_str(), h.limit, h.reverse), ("c", 10, true));
            assert_eq!(
                h.since,
                Some(StreamPosition {
                    offset: 5,
                    epoch: "ep".into()
                })
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(commands[1].request, Request::Ping));
}

#[test]
fn a_publication_carries_any_bytes_and_other_payloads_must_be_json() {
    let message = [
        delimited(&[
            int(1, 1),
            field(7, &[field(1, b"c"), field(2, b"\x00\x01binary")].concat()),
        ]),
        delimited(&[
            int(1, 2),
            field(7, &[field(1, b"c"), field(2, b"plain text")].concat()),
        ]),
        delimited(&[
            int(1, 3),
            field(7, &[field(1, b"c"), field(2, b"\"ok\"")].concat()),
        ]),
        delimited(&[
            int(1, 4),
            field(13, &[field(1, b"\xff"), field(2, b"m")].concat()),
        ]),
    ]
    .concat();
    let commands = decode(&message).unwrap();
    let published = |i: usize| match &commands[i].request {
        Request::Publish(p) => p.data.clone().unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(published(0).is_binary());
    assert_eq!(published(0).as_bytes(), b"\x00\x01binary");
    assert!(published(1).is_binary());
    assert_eq!(published(1).as_bytes(), b"plain text");
    assert!(!published(2).is_binary());
    assert_eq!(published(2).as_bytes(), b"\"ok\"");
    assert!(matches!(
        commands[3].request,
        Request::Refused { method: "rpc", .. }
    ));
}

#[test]
fn a_binary_publication_reaches_protobuf_clients_as_sent() {
    let publication = Publication {
        data: Payload::from_bytes(vec![0, 0xff, b'\n']).unwrap(),
        info: None,
        offset: 3,
    };
    let item = encode_publication("c", &publication);
    let reply = wire::Reply::decode_length_delimited(&item[..]).unwrap();
    let push = reply.push.unwrap();
    assert_eq!(push.publication.unwrap().data, [0, 0xff, b'\n']);
}

#[test]
fn rejections_name_the_command() {
    // A length past the end of the message.
    let mut truncated = delimited(&[int(1, 1), field(11, &[])]);
    truncated[0] += 5;
    assert!(matches!(
        decode(&truncated),
        Err(DecodeError::Protobuf { index: 1, .. })
    ));
    // A publish without an id, second in the message.
    let message = [
        delimited(&[int(1, 1), field(11, &[])]),
        delimited(&[field(7, &field(1, b"c"))]),
    ]
    .concat();
    assert_eq!(
        decode(&message).unwrap_err(),
        DecodeError::MissingId {
            index: 2,
            method: "publish"
        }
    );
    // Garbage: a field with wire type 7 (none exists).
    assert!(matches!(
        decode(&delimited(&[vec![0x0f, 0x01]])),
        Err(DecodeError::Protobuf { index: 1, .. })
    ));
    // A length prefix whose varint never ends.
    assert!(matches!(
        decode(&[0xff; 11]),
        Err(DecodeError::Protobuf { index: 1, .. })
    ));
}

#[test]
fn a_message_holds_at_most_max_commands() {
    // An empty command is one byte: a pong.
    assert_eq!(decode(&vec![0; MAX_COMMANDS]).unwrap().len(), MAX_COMMANDS);
    assert_eq!(
        decode(&vec![0; MAX_COMMANDS + 1]).unwrap_err(),
        DecodeError::TooMany
    );
}

#[test]
fn a_publication_push_is_a_reply_with_a_push() {
    let publication = Publication {
        data: Payload::Json(json("{\"text\":\"hi\"}")),
        info: Some(ClientInfo {
            user: "u".into(),
            client: "c1".into(),
            conn_info: None,
            chan_info: Some(json("[1]")),
        }),
        offset: 12,
    };
    let bytes = encode_publication("chat:x", &publication);
    let expected = delimited(&[field(
        4,
        &[
            field(2, b"chat:x"),
            field(
                4,
                &[
                    field(4, b"{\"text\":\"hi\"}"),
                    field(
                        5,
                        &[field(1, b"u"), field(2, b"c1"), field(4, b"[1]")].concat(),
                    ),
                    int(6, 12),
                ]
                .concat(),
            ),
        ]
        .concat(),
    )]);
    assert_eq!(bytes, expected);
}

#[test]
fn replies_errors_and_the_ping() {
    assert_eq!(encode_ping(), [0]);
    assert_eq!(
        encode_error(2, ErrorCode::PermissionDenied),
        delimited(&[
            int(1, 2),
            field(2, &[int(1, 103), field(2, b"permission denied")].concat())
        ])
    );
    assert_eq!(
        encode_error(3, ErrorCode::Internal),
        delimited(&[
            int(1, 3),
            field(
                2,
                &[int(1, 100), field(2, b"internal server error"), int(3, 1)].concat()
            )
        ])
    );
    assert_eq!(
        encode_reply(7, &Reply::Publish),
        delimited(&[int(1, 7), field(8, &[])])
    );
    let history = Reply::History(HistoryResult {
        publications: vec![Publication {
            data: Payload::Json(json("1")),
            info: None,
            offset: 3,
        }],
        epoch: "ep".into(),
        offset: 3,
    });
    assert_eq!(
        encode_reply(8, &history),
        delimited(&[
            int(1, 8),
            field(
                11,
                &[
                    field(1, &[field(4, b"1"), int(6, 3)].concat()),
                    field(2, b"ep"),
                    int(3, 3)
                ]
                .concat()
            )
        ])
    );
}

#[test]
fn pushes_decode_with_the_schema() {
    let who = ClientInfo {
        user: "u".into(),
        client: "c".into(),
        conn_info: Some(json("{\"n\":1}")),
        chan_info: None,
    };
    let decode = |bytes: Vec<u8>| wire::Reply::decode_length_delimited(bytes.as_slice()).unwrap();
    let join = decode(encode_join("room", &who)).push.unwrap();
    assert_eq!(join.channel, "room");
    let info = join.join.unwrap().info.unwrap();
    assert_eq!(
        (info.user.as_str(), info.conn_info.as_slice()),
        ("u", &b"{\"n\":1}"[..])
    );
    let leave = decode(encode_leave("room", &who)).push.unwrap();
    assert_eq!(leave.leave.unwrap().info.unwrap().client, "c");
    let unsub = decode(encode_unsubscribe("room", UnsubscribeCode::Server))
        .push
        .unwrap()
        .unsubscribe
        .unwrap();
    assert_eq!(unsub.code, UnsubscribeCode::Server.code());
    let disconnect = decode(encode_disconnect(DisconnectCode::Shutdown))
        .push
        .unwrap()
        .disconnect
        .unwrap();
    assert_eq!(
        (disconnect.code, disconnect.reconnect),
        (u32::from(DisconnectCode::Shutdown.code()), true)
    );
    let subscribe = decode(encode_subscribe(
        "room",
        &SubscribeResult {
            recoverable: true,
            epoch: "e".into(),
            offset: 4,
            positioned: true,
            ..Default::default()
        },
    ))
    .push
    .unwrap()
    .subscribe
    .unwrap();
    assert_eq!(
        (
            subscribe.recoverable,
            subscribe.epoch.as_str(),
            subscribe.offset,
            subscribe.positioned
        ),
        (true, "e", 4, true)
    );
    let mut presence = std::collections::BTreeMap::new();
    presence.insert("c".to_owned(), who.clone());
    let reply = decode(encode_reply(
        9,
        &Reply::Presence(PresenceResult { presence }),
    ));
    assert_eq!(reply.id, 9);
    assert_eq!(reply.presence.unwrap().presence["c"].user, "u");
}
