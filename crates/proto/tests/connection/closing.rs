//! The close handshake, and sending after close.

use super::*;

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
