//! Fragmented sending, and the largest control payload.

use super::*;

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
