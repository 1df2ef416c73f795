//! Pings and pongs, and how received messages are handed out.

use super::*;

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
