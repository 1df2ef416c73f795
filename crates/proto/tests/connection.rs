//! Behaviour of a healthy connection: pings and pongs, the close handshake, sending after
//! close, length encodings, masking, and fragmented sending.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use duplex_proto::{
    CloseCode, CloseFrame, Connection, ConnectionState, Error, InvalidSend, Limits, Message,
    OpCode, PeerClose, Role,
};

fn conn(role: Role) -> Connection {
    Connection::new(role, Limits::default())
}

/// Sends `msg` from `role` and decodes it with the other role, returning the message and
/// the frames on the wire.
fn round_trip(role: Role, msg: &Message) -> (Message, Vec<WireFrame>) {
    let mut sender = conn(role);
    let mut receiver = conn(peer_of(role));
    let (mut wire, mut out) = (BytesMut::new(), BytesMut::new());
    sender.send(msg, &mut wire).unwrap();
    let frames = frames_written_by(role, &wire);
    let got = receiver.receive(&mut wire, &mut out).unwrap().unwrap();
    assert!(wire.is_empty(), "the whole frame was consumed");
    assert_eq!(receiver.receive(&mut wire, &mut out), Ok(None));
    (got, frames)
}

// ---------------------------------------------------------------- ping / pong

#[test]
fn server_answers_a_ping_with_an_unmasked_pong_carrying_the_same_payload() {
    for payload in [&b""[..], b"hi", &[0xAB; 125]] {
        let mut server = conn(Role::Server);
        let mut out = BytesMut::new();
        let mut input = BytesMut::from(&frame(true, true, 0, OP_PING, payload)[..]);
        assert_eq!(
            server.receive(&mut input, &mut out),
            Ok(Some(Message::Ping(Bytes::copy_from_slice(payload))))
        );
        assert_eq!(&out[..], &frame(false, true, 0, OP_PONG, payload)[..]);
        assert_eq!(server.state(), ConnectionState::Open);
    }
}

#[test]
fn client_answers_a_ping_with_a_masked_pong_carrying_the_same_payload() {
    for payload in [&b""[..], b"hi", &[0xCD; 125]] {
        let mut client = conn(Role::Client);
        let mut out = BytesMut::new();
        let mut input = BytesMut::from(&frame(false, true, 0, OP_PING, payload)[..]);
        assert_eq!(
            client.receive(&mut input, &mut out),
            Ok(Some(Message::Ping(Bytes::copy_from_slice(payload))))
        );
        assert_eq!(out[0], 0x8A);
        assert_eq!(out[1], 0x80 | payload.len() as u8);
        let frames = frames_written_by(Role::Client, &out);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].opcode, OP_PONG);
        assert!(frames[0].fin);
        assert_eq!(frames[0].payload, payload);
    }
}

#[test]
fn every_ping_gets_its_own_pong_in_order() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();
        let mut input = BytesMut::new();
        for p in [&b"one"[..], b"two", b"three"] {
            input.extend_from_slice(&frame_to(role, true, OP_PING, p));
        }
        let msgs = receive_all(&mut c, &mut input, &mut out).unwrap();
        assert_eq!(msgs.len(), 3);
        let pongs: Vec<Vec<u8>> = frames_written_by(role, &out)
            .into_iter()
            .map(|f| {
                assert_eq!(f.opcode, OP_PONG);
                f.payload
            })
            .collect();
        assert_eq!(
            pongs,
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
    }
}

#[test]
fn unsolicited_pong_is_returned_without_error_or_reply() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();
        let mut input = BytesMut::from(&frame_to(role, true, OP_PONG, b"heartbeat")[..]);
        assert_eq!(
            c.receive(&mut input, &mut out),
            Ok(Some(Message::Pong("heartbeat".into())))
        );
        assert!(out.is_empty(), "a pong is not answered");
        assert_eq!(c.state(), ConnectionState::Open);
        // And the connection goes on.
        let mut input = BytesMut::from(&frame_to(role, true, OP_TEXT, b"next")[..]);
        assert_eq!(
            c.receive(&mut input, &mut out),
            Ok(Some(Message::text("next")))
        );
    }
}

#[test]
fn ping_and_pong_interleaved_inside_a_fragmented_message() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();
        let mut input = BytesMut::new();
        input.extend_from_slice(&frame_to(role, false, OP_TEXT, b"Hel"));
        input.extend_from_slice(&frame_to(role, true, OP_PING, b"p1"));
        input.extend_from_slice(&frame_to(role, false, OP_CONT, b"lo, "));
        input.extend_from_slice(&frame_to(role, true, OP_PONG, b"p2"));
        input.extend_from_slice(&frame_to(role, true, OP_PING, b"p3"));
        input.extend_from_slice(&frame_to(role, true, OP_CONT, b"world"));
        let msgs = receive_all(&mut c, &mut input, &mut out).unwrap();
        assert_eq!(
            msgs,
            vec![
                Message::Ping("p1".into()),
                Message::Pong("p2".into()),
                Message::Ping("p3".into()),
                Message::text("Hello, world"),
            ]
        );
        let frames = frames_written_by(role, &out);
        let pongs: Vec<_> = frames.iter().map(|f| (f.opcode, &f.payload[..])).collect();
        assert_eq!(pongs, vec![(OP_PONG, &b"p1"[..]), (OP_PONG, &b"p3"[..])]);
    }
}

#[test]
fn messages_are_returned_one_per_call() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();
        let mut input = BytesMut::new();
        input.extend_from_slice(&frame_to(role, true, OP_TEXT, b"a"));
        input.extend_from_slice(&frame_to(role, true, OP_BINARY, b"b"));
        let second = frame_to(role, true, OP_TEXT, b"c");
        let cut = second.len() - 1;
        input.extend_from_slice(&second[..cut]);
        assert_eq!(
            c.receive(&mut input, &mut out),
            Ok(Some(Message::text("a")))
        );
        assert_eq!(
            c.receive(&mut input, &mut out),
            Ok(Some(Message::binary(&b"b"[..])))
        );
        assert_eq!(c.receive(&mut input, &mut out), Ok(None));
        input.extend_from_slice(&second[cut..]);
        assert_eq!(
            c.receive(&mut input, &mut out),
            Ok(Some(Message::text("c")))
        );
        assert!(input.is_empty());
    }
}

#[test]
fn text_split_inside_a_code_point_across_fragments_is_reassembled() {
    for role in ROLES {
        let text = "€𝄞é";
        let bytes = text.as_bytes();
        let mut c = conn(role);
        let mut out = BytesMut::new();
        let mut input = BytesMut::new();
        input.extend_from_slice(&frame_to(role, false, OP_TEXT, &bytes[..1]));
        input.extend_from_slice(&frame_to(role, true, OP_PING, b""));
        input.extend_from_slice(&frame_to(role, false, OP_CONT, &bytes[1..4]));
        input.extend_from_slice(&frame_to(role, false, OP_CONT, &bytes[4..6]));
        input.extend_from_slice(&frame_to(role, true, OP_CONT, &bytes[6..]));
        assert_eq!(
            receive_all(&mut c, &mut input, &mut out).unwrap(),
            vec![Message::Ping("".into()), Message::text(text)]
        );
    }
}

// ---------------------------------------------------------------- close handshake

#[test]
fn peer_close_is_echoed_with_the_same_code_and_the_state_becomes_closed() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();
        let mut input =
            BytesMut::from(&frame_to(role, true, OP_CLOSE, &close_payload(1001, b"going"))[..]);
        assert_eq!(
            c.receive(&mut input, &mut out),
            Ok(Some(Message::Close(Some(CloseFrame::new(
                CloseCode::GOING_AWAY,
                "going"
            )))))
        );
        assert_eq!(c.state(), ConnectionState::Closed);
        assert_eq!(
            c.peer_close(),
            Some(PeerClose::Frame(&CloseFrame::new(1001, "going")))
        );
        if role == Role::Server {
            assert_eq!(&out[..], &[0x88, 0x02, 0x03, 0xE9]);
        } else {
            assert_eq!(out.len(), 8);
            assert_ends_with_close(role, &out, 1001);
        }
    }
}

#[test]
fn peer_close_without_a_code_is_echoed_without_a_code() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();
        let mut input = BytesMut::from(&frame_to(role, true, OP_CLOSE, b"")[..]);
        assert_eq!(
            c.receive(&mut input, &mut out),
            Ok(Some(Message::Close(None)))
        );
        assert_eq!(c.state(), ConnectionState::Closed);
        assert_eq!(c.peer_close(), Some(PeerClose::WithoutCode));
        let frames = frames_written_by(role, &out);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].opcode, OP_CLOSE);
        assert!(frames[0].payload.is_empty());
        if role == Role::Server {
            assert_eq!(&out[..], &[0x88, 0x00]);
        }
    }
}

#[test]
fn peer_close_in_the_middle_of_a_fragmented_message_is_answered() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();
        let mut input = BytesMut::new();
        input.extend_from_slice(&frame_to(role, false, OP_TEXT, b"half"));
        input.extend_from_slice(&frame_to(role, true, OP_CLOSE, &close_payload(1000, b"")));
        assert_eq!(
            c.receive(&mut input, &mut out),
            Ok(Some(Message::Close(Some(CloseFrame::new(1000, "")))))
        );
        assert_eq!(c.state(), ConnectionState::Closed);
        assert_ends_with_close(role, &out, 1000);
    }
}

#[test]
fn close_we_initiate_goes_to_close_sent_then_closed_without_a_second_close_frame() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();
        c.close(Some(&CloseFrame::new(CloseCode::NORMAL, "done")), &mut out)
            .unwrap();
        assert_eq!(c.state(), ConnectionState::CloseSent);
        let frames = frames_written_by(role, &out);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].opcode, OP_CLOSE);
        assert!(frames[0].fin);
        assert_eq!(frames[0].payload, close_payload(1000, b"done"));
        if role == Role::Server {
            assert_eq!(&out[..], b"\x88\x06\x03\xe8done");
        }
        let written = out.len();

        // Data the peer sent before it saw our close is still delivered.
        let mut input = BytesMut::from(&frame_to(role, true, OP_TEXT, b"in flight")[..]);
        assert_eq!(
            c.receive(&mut input, &mut out),
            Ok(Some(Message::text("in flight")))
        );
        assert_eq!(c.state(), ConnectionState::CloseSent);

        let mut input =
            BytesMut::from(&frame_to(role, true, OP_CLOSE, &close_payload(1000, b""))[..]);
        assert_eq!(
            c.receive(&mut input, &mut out),
            Ok(Some(Message::Close(Some(CloseFrame::new(1000, "")))))
        );
        assert_eq!(c.state(), ConnectionState::Closed);
        assert_eq!(out.len(), written, "no second close frame");
    }
}

#[test]
fn ping_after_we_sent_close_is_returned_but_not_answered() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();
        c.close(None, &mut out).unwrap();
        let written = out.len();
        let mut input = BytesMut::new();
        input.extend_from_slice(&frame_to(role, true, OP_PING, b"late ping"));
        input.extend_from_slice(&frame_to(role, true, OP_PONG, b"late pong"));
        assert_eq!(
            receive_all(&mut c, &mut input, &mut out).unwrap(),
            vec![
                Message::Ping("late ping".into()),
                Message::Pong("late pong".into())
            ]
        );
        assert_eq!(out.len(), written, "nothing sent after our close");
        assert_eq!(c.state(), ConnectionState::CloseSent);
    }
}

#[test]
fn close_without_a_code_sends_an_empty_close_frame() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();
        c.send(&Message::Close(None), &mut out).unwrap();
        assert_eq!(c.state(), ConnectionState::CloseSent);
        let frames = frames_written_by(role, &out);
        assert_eq!(frames.len(), 1);
        assert_eq!((frames[0].opcode, frames[0].payload.len()), (OP_CLOSE, 0));
    }
}

#[test]
fn send_after_close_returns_send_after_close() {
    for role in ROLES {
        // After we sent close.
        let mut c = conn(role);
        let mut out = BytesMut::new();
        c.close(None, &mut out).unwrap();
        let written = out.len();
        assert_eq!(
            c.send(&Message::text("x"), &mut out),
            Err(Error::SendAfterClose)
        );
        assert_eq!(
            c.send(&Message::binary(&b"x"[..]), &mut out),
            Err(Error::SendAfterClose)
        );
        assert_eq!(
            c.send(&Message::Ping("".into()), &mut out),
            Err(Error::SendAfterClose)
        );
        assert_eq!(
            c.send(&Message::Pong("".into()), &mut out),
            Err(Error::SendAfterClose)
        );
        assert_eq!(
            c.send_frame(OpCode::Binary, b"x", false, &mut out),
            Err(Error::SendAfterClose)
        );
        assert_eq!(c.close(None, &mut out), Err(Error::SendAfterClose));
        assert_eq!(
            c.send(&Message::Close(Some(CloseFrame::new(1000, ""))), &mut out),
            Err(Error::SendAfterClose)
        );
        assert_eq!(out.len(), written);

        // After the peer closed (and we echoed).
        let mut c = conn(role);
        let mut out = BytesMut::new();
        let mut input = BytesMut::from(&frame_to(role, true, OP_CLOSE, b"")[..]);
        c.receive(&mut input, &mut out).unwrap();
        let written = out.len();
        assert_eq!(
            c.send(&Message::text("x"), &mut out),
            Err(Error::SendAfterClose)
        );
        assert_eq!(c.close(None, &mut out), Err(Error::SendAfterClose));
        assert_eq!(out.len(), written);
    }
}

#[test]
fn close_with_a_code_that_may_not_be_sent_is_an_invalid_send() {
    for role in ROLES {
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            let mut c = conn(role);
            let mut out = BytesMut::new();
            assert!(matches!(
                c.close(Some(&CloseFrame::new(code, "")), &mut out),
                Err(Error::InvalidSend(InvalidSend::CloseCodeNotSendable))
            ));
            assert!(matches!(
                c.send(&Message::Close(Some(CloseFrame::new(code, ""))), &mut out),
                Err(Error::InvalidSend(InvalidSend::CloseCodeNotSendable))
            ));
            assert!(out.is_empty(), "nothing written for {code}");
            assert_eq!(c.state(), ConnectionState::Open, "still open after {code}");
        }
    }
}

#[test]
fn close_reason_over_123_bytes_is_an_invalid_send() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();
        assert!(matches!(
            c.close(Some(&CloseFrame::new(1000, "r".repeat(124))), &mut out),
            Err(Error::InvalidSend(InvalidSend::CloseReasonTooLong))
        ));
        assert!(out.is_empty());
        assert_eq!(c.state(), ConnectionState::Open);
        // 123 bytes fit exactly.
        c.close(Some(&CloseFrame::new(1000, "r".repeat(123))), &mut out)
            .unwrap();
        let frames = frames_written_by(role, &out);
        assert_eq!(frames[0].payload.len(), 125);
    }
}

#[test]
fn valid_close_codes_can_be_sent_and_are_received_intact() {
    for role in ROLES {
        for code in [1000u16, 1003, 1007, 1011, 1014, 3000, 4999] {
            let mut sender = conn(role);
            let mut receiver = conn(peer_of(role));
            let (mut wire, mut echo) = (BytesMut::new(), BytesMut::new());
            let frame = CloseFrame::new(code, "ünïcödé reason");
            sender.close(Some(&frame), &mut wire).unwrap();
            assert_eq!(
                receiver.receive(&mut wire, &mut echo),
                Ok(Some(Message::Close(Some(frame))))
            );
            // The echo completes the sender's handshake.
            assert_eq!(
                sender.receive(&mut echo, &mut wire),
                Ok(Some(Message::Close(Some(CloseFrame::new(code, "")))))
            );
            assert_eq!(sender.state(), ConnectionState::Closed);
            assert_eq!(receiver.state(), ConnectionState::Closed);
            assert!(wire.is_empty(), "no reply to the echo");
        }
    }
}

#[test]
fn bytes_after_a_close_frame_are_ignored() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();
        let mut input = BytesMut::new();
        input.extend_from_slice(&frame_to(role, true, OP_CLOSE, &close_payload(1000, b"")));
        input.extend_from_slice(&frame_to(role, true, OP_TEXT, b"after close"));
        input.extend_from_slice(&frame_to(role, true, OP_PING, b"no pong"));
        input.extend_from_slice(&[0xFF, 0xFF, 0x00]); // garbage, a reserved opcode
        assert_eq!(
            c.receive(&mut input, &mut out),
            Ok(Some(Message::Close(Some(CloseFrame::new(1000, "")))))
        );
        let written = out.len();
        assert_eq!(c.receive(&mut input, &mut out), Ok(None));
        assert!(input.is_empty(), "the rest is discarded");
        input.extend_from_slice(&frame_to(role, true, OP_PING, b"later"));
        assert_eq!(c.receive(&mut input, &mut out), Ok(None));
        assert!(input.is_empty());
        assert_eq!(out.len(), written, "nothing answered after the close");
        assert_eq!(c.state(), ConnectionState::Closed);
    }
}

// ---------------------------------------------------------------- sizes and encodings

#[test]
fn zero_length_messages_round_trip() {
    for role in ROLES {
        for msg in [
            Message::text(""),
            Message::binary(Bytes::new()),
            Message::Ping(Bytes::new()),
            Message::Pong(Bytes::new()),
        ] {
            let (got, frames) = round_trip(role, &msg);
            assert_eq!(got, msg);
            assert_eq!(frames.len(), 1);
            assert!(frames[0].payload.is_empty());
            assert_eq!(
                frames[0].header_len,
                if role == Role::Client { 6 } else { 2 }
            );
        }
    }
    // Exact bytes of an empty server text frame.
    let mut server = conn(Role::Server);
    let mut out = BytesMut::new();
    server.send(&Message::text(""), &mut out).unwrap();
    assert_eq!(&out[..], &[0x81, 0x00]);
}

#[test]
fn zero_length_fragments_make_a_zero_length_message() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();
        let mut input = BytesMut::new();
        input.extend_from_slice(&frame_to(role, false, OP_TEXT, b""));
        input.extend_from_slice(&frame_to(role, false, OP_CONT, b""));
        input.extend_from_slice(&frame_to(role, true, OP_CONT, b""));
        input.extend_from_slice(&frame_to(role, false, OP_BINARY, b""));
        input.extend_from_slice(&frame_to(role, true, OP_CONT, b""));
        assert_eq!(
            receive_all(&mut c, &mut input, &mut out).unwrap(),
            vec![Message::text(""), Message::binary(Bytes::new())]
        );
    }
}

#[test]
fn payload_length_encodings_at_the_boundaries_round_trip() {
    // (payload length, length bytes after the opcode byte, without the mask bit)
    let cases: [(usize, &[u8]); 5] = [
        (125, &[125]),
        (126, &[126, 0x00, 0x7E]),
        (65_535, &[126, 0xFF, 0xFF]),
        (65_536, &[127, 0, 0, 0, 0, 0, 1, 0, 0]),
        (65_537, &[127, 0, 0, 0, 0, 0, 1, 0, 1]),
    ];
    for role in ROLES {
        for (len, encoded) in cases {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut sender = conn(role);
            let mut wire = BytesMut::new();
            sender
                .send(&Message::binary(payload.clone()), &mut wire)
                .unwrap();
            assert_eq!(wire[0], 0x82);
            let mask_bit = if role == Role::Client { 0x80 } else { 0 };
            let mut expected = encoded.to_vec();
            expected[0] |= mask_bit;
            assert_eq!(&wire[1..1 + expected.len()], &expected[..], "len {len}");
            let header_len = 1 + expected.len() + if role == Role::Client { 4 } else { 0 };
            assert_eq!(wire.len(), header_len + len);

            let mut receiver = conn(peer_of(role));
            let mut out = BytesMut::new();
            assert_eq!(
                receiver.receive(&mut wire, &mut out),
                Ok(Some(Message::binary(payload.clone())))
            );

            // Text of the same length, to the other role.
            let text: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            let (got, frames) = round_trip(role, &Message::text(text.clone()));
            assert_eq!(got, Message::text(text));
            assert_eq!(frames[0].header_len, header_len);
        }
    }
}

#[test]
fn client_frames_are_masked_and_server_frames_are_not() {
    let messages = [
        Message::text("hello"),
        Message::binary(vec![0u8; 300]),
        Message::Ping("p".into()),
        Message::Pong("q".into()),
    ];
    let mut client = conn(Role::Client);
    let mut server = conn(Role::Server);
    let (mut c_out, mut s_out) = (BytesMut::new(), BytesMut::new());
    for m in &messages {
        client.send(m, &mut c_out).unwrap();
        server.send(m, &mut s_out).unwrap();
    }
    client
        .close(Some(&CloseFrame::new(1000, "")), &mut c_out)
        .unwrap();
    server
        .close(Some(&CloseFrame::new(1000, "")), &mut s_out)
        .unwrap();

    let c_frames = parse_frames(&c_out);
    let s_frames = parse_frames(&s_out);
    assert_eq!(c_frames.len(), 5);
    assert_eq!(s_frames.len(), 5);
    for (c, s) in c_frames.iter().zip(&s_frames) {
        assert!(c.mask.is_some(), "client frame {c:?} must be masked");
        assert!(s.mask.is_none(), "server frame {s:?} must not be masked");
        assert_eq!(c.payload, s.payload, "same payload once unmasked");
        assert_eq!(c.opcode, s.opcode);
    }
    // The mask is actually applied: 300 zero bytes do not go out as zeros.
    let raw = &c_out[..];
    let second = c_frames[0].header_len + c_frames[0].payload.len();
    let start = second + c_frames[1].header_len;
    assert!(raw[start..start + 300].iter().any(|&b| b != 0));
    // Keys are fresh per frame, not one fixed key.
    let keys: std::collections::HashSet<_> = c_frames.iter().map(|f| f.mask).collect();
    assert!(keys.len() > 1, "masking keys must vary: {keys:?}");
}

// ---------------------------------------------------------------- fragmented sending

#[test]
fn send_frame_produces_a_fragmented_message_the_peer_reassembles() {
    for role in ROLES {
        let mut sender = conn(role);
        let mut wire = BytesMut::new();
        sender
            .send_frame(OpCode::Text, b"Hel", false, &mut wire)
            .unwrap();
        sender
            .send_frame(OpCode::Ping, b"mid", true, &mut wire)
            .unwrap();
        sender
            .send_frame(OpCode::Continuation, b"lo ", false, &mut wire)
            .unwrap();
        sender
            .send_frame(OpCode::Continuation, "wörld".as_bytes(), true, &mut wire)
            .unwrap();
        sender
            .send_frame(OpCode::Binary, b"\x00", false, &mut wire)
            .unwrap();
        sender
            .send_frame(OpCode::Continuation, b"", true, &mut wire)
            .unwrap();
        sender
            .send_frame(OpCode::Binary, b"one", true, &mut wire)
            .unwrap();

        let frames = frames_written_by(role, &wire);
        let shape: Vec<(u8, bool)> = frames.iter().map(|f| (f.opcode, f.fin)).collect();
        assert_eq!(
            shape,
            vec![
                (OP_TEXT, false),
                (OP_PING, true),
                (OP_CONT, false),
                (OP_CONT, true),
                (OP_BINARY, false),
                (OP_CONT, true),
                (OP_BINARY, true),
            ]
        );

        let mut receiver = conn(peer_of(role));
        let mut out = BytesMut::new();
        assert_eq!(
            receive_all(&mut receiver, &mut wire, &mut out).unwrap(),
            vec![
                Message::Ping("mid".into()),
                Message::text("Hello wörld"),
                Message::binary(&b"\x00"[..]),
                Message::binary(&b"one"[..]),
            ]
        );
    }
}

#[test]
fn send_frame_misuse_is_an_invalid_send_and_changes_nothing() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();

        // Continuation with no message started.
        for fin in [true, false] {
            assert!(matches!(
                c.send_frame(OpCode::Continuation, b"x", fin, &mut out),
                Err(Error::InvalidSend(InvalidSend::ContinuationWithoutMessage))
            ));
        }
        // Control frames: too long, fragmented, or a close (close() is the way).
        for op in [OpCode::Ping, OpCode::Pong] {
            assert!(matches!(
                c.send_frame(op, &[0; 126], true, &mut out),
                Err(Error::InvalidSend(InvalidSend::ControlPayloadTooLong))
            ));
            assert!(matches!(
                c.send_frame(op, b"", false, &mut out),
                Err(Error::InvalidSend(InvalidSend::FragmentedControl))
            ));
        }
        assert!(matches!(
            c.send_frame(OpCode::Close, b"", true, &mut out),
            Err(Error::InvalidSend(InvalidSend::CloseThroughSendFrame))
        ));
        assert!(matches!(
            c.send(&Message::Ping(vec![0; 126].into()), &mut out),
            Err(Error::InvalidSend(InvalidSend::ControlPayloadTooLong))
        ));
        assert!(matches!(
            c.send(&Message::Pong(vec![0; 126].into()), &mut out),
            Err(Error::InvalidSend(InvalidSend::ControlPayloadTooLong))
        ));
        assert!(out.is_empty(), "nothing written by a refused send");

        // A new data message while a fragmented one is in progress.
        c.send_frame(OpCode::Binary, b"start", false, &mut out)
            .unwrap();
        let written = out.len();
        for op in [OpCode::Text, OpCode::Binary] {
            for fin in [true, false] {
                assert!(matches!(
                    c.send_frame(op, b"x", fin, &mut out),
                    Err(Error::InvalidSend(InvalidSend::FragmentInProgress))
                ));
            }
        }
        assert!(matches!(
            c.send(&Message::text("x"), &mut out),
            Err(Error::InvalidSend(InvalidSend::FragmentInProgress))
        ));
        assert!(matches!(
            c.send(&Message::binary(&b"x"[..]), &mut out),
            Err(Error::InvalidSend(InvalidSend::FragmentInProgress))
        ));
        assert_eq!(out.len(), written);
        assert_eq!(c.state(), ConnectionState::Open);

        // The message in progress can still be finished, and the peer gets it intact.
        c.send(&Message::Ping("p".into()), &mut out).unwrap();
        c.send_frame(OpCode::Continuation, b"-end", true, &mut out)
            .unwrap();
        c.send(&Message::text("after"), &mut out).unwrap();
        let mut peer = conn(peer_of(role));
        let mut peer_out = BytesMut::new();
        assert_eq!(
            receive_all(&mut peer, &mut out, &mut peer_out).unwrap(),
            vec![
                Message::Ping("p".into()),
                Message::binary(&b"start-end"[..]),
                Message::text("after"),
            ]
        );
    }
}

#[test]
fn control_payload_of_125_bytes_can_be_sent() {
    for role in ROLES {
        let (got, frames) = round_trip(role, &Message::Ping(vec![9; 125].into()));
        assert_eq!(got, Message::Ping(vec![9; 125].into()));
        assert_eq!(
            frames[0].header_len,
            if role == Role::Client { 6 } else { 2 }
        );
    }
}

// ---------------------------------------------------------------- misc

#[test]
fn a_connection_reports_its_role_limits_and_initial_state() {
    let limits = Limits::default().max_frame_size(10);
    for role in ROLES {
        let c = Connection::new(role, limits.clone());
        assert_eq!(c.role(), role);
        assert_eq!(c.limits(), &limits);
        assert_eq!(c.state(), ConnectionState::Open);
        assert_eq!(c.peer_close(), None);
    }
}

#[test]
fn payload_remaining_tracks_the_frame_being_received() {
    for role in ROLES {
        let mut c = conn(role);
        let mut out = BytesMut::new();
        let whole = frame_to(role, true, OP_BINARY, &[5; 1000]);
        let header_len = whole.len() - 1000;
        let mut input = BytesMut::from(&whole[..header_len + 100]);
        assert_eq!(c.payload_remaining(&input), None);
        assert_eq!(c.receive(&mut input, &mut out), Ok(None));
        assert_eq!(c.payload_remaining(&input), Some(900));
        input.extend_from_slice(&whole[header_len + 100..]);
        assert_eq!(c.payload_remaining(&input), Some(0));
        assert_eq!(
            c.receive(&mut input, &mut out),
            Ok(Some(Message::binary(vec![5; 1000])))
        );
        assert_eq!(c.payload_remaining(&input), None);
    }
}

#[test]
fn incomplete_headers_wait_for_more_input() {
    for role in ROLES {
        for len in [5u64, 300, 70_000] {
            let payload = vec![b'z'; len as usize];
            let whole = frame_to(role, true, OP_TEXT, &payload);
            let header_len = whole.len() - payload.len();
            for cut in 0..header_len {
                let mut c = conn(role);
                let mut out = BytesMut::new();
                let mut input = BytesMut::from(&whole[..cut]);
                assert_eq!(c.receive(&mut input, &mut out), Ok(None), "cut {cut}");
                assert_eq!(input.len(), cut, "a partial header is not consumed");
                input.extend_from_slice(&whole[cut..]);
                assert_eq!(
                    c.receive(&mut input, &mut out),
                    Ok(Some(Message::text(
                        String::from_utf8(payload.clone()).unwrap()
                    )))
                );
            }
        }
    }
}

#[test]
fn a_seeded_client_masks_the_same_way_every_time() {
    let wire = |seed: u64| {
        let mut c = Connection::new(Role::Client, Limits::default()).with_mask_seed(seed);
        let mut out = BytesMut::new();
        for text in ["one", "two", "three"] {
            c.send(&Message::text(text), &mut out).unwrap();
        }
        out
    };
    assert_eq!(wire(7), wire(7), "same seed, same bytes");
    assert_ne!(wire(7), wire(8), "another seed, other masks");
    // The masks are applied as on any client connection: a server decodes the messages.
    let mut server = Connection::new(Role::Server, Limits::default());
    let (mut input, mut replies) = (wire(7), BytesMut::new());
    for text in ["one", "two", "three"] {
        assert_eq!(
            server.receive(&mut input, &mut replies).unwrap(),
            Some(Message::text(text))
        );
    }
    // A server does not mask, seeded or not.
    let mut plain = Connection::new(Role::Server, Limits::default()).with_mask_seed(7);
    let mut out = BytesMut::new();
    plain.send(&Message::text("one"), &mut out).unwrap();
    assert_eq!(&out[..], b"\x81\x03one");
}

#[test]
fn text_changed_in_the_callers_buffer_after_it_was_checked_is_still_refused() {
    // The caller owns the input buffer and may change bytes the connection has already
    // checked as they arrived: the message is checked again before it becomes text.
    for fragmented in [false, true] {
        let mut c = Connection::new(Role::Client, Limits::default());
        let (mut input, mut out) = (BytesMut::new(), BytesMut::new());
        if fragmented {
            input.extend_from_slice(&[0x01, 2, b'a', b'b']); // text, not final
        } else {
            input.extend_from_slice(&[0x81, 4, b'a', b'b']); // half of a 4-byte frame
        }
        assert_eq!(c.receive(&mut input, &mut out).unwrap(), None);
        if fragmented {
            // The first fragment is already copied out: change the continuation's byte
            // that was checked on arrival instead.
            input.extend_from_slice(&[0x80, 2, b'c']);
            assert_eq!(c.receive(&mut input, &mut out).unwrap(), None);
            let at = input
                .iter()
                .rposition(|&b| b == b'c')
                .expect("c is still buffered");
            input[at] = 0xFF;
            input.extend_from_slice(b"d");
        } else {
            let at = input
                .iter()
                .rposition(|&b| b == b'a')
                .expect("a is still buffered");
            input[at] = 0xFF;
            input.extend_from_slice(b"cd");
        }
        let result = c.receive(&mut input, &mut out);
        assert_eq!(
            result,
            Err(Error::Protocol(duplex_proto::Violation::InvalidUtf8)),
            "fragmented: {fragmented}"
        );
    }
}
