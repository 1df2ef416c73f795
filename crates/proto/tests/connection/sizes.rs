//! Length encodings and masking.

use super::*;

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
