//! Malformed close frames, and the size limits.

use super::*;

#[test]
fn close_payload_of_one_byte_fails_with_1002() {
    for role in ROLES {
        for byte in [0x03u8, 0xe8, 0x00] {
            rejected(
                role,
                &frame_to(role, true, OP_CLOSE, &[byte]),
                Violation::CloseFrameOneByte,
                1002,
            );
        }
    }
}

const INVALID_CLOSE_CODES: [u16; 12] = [
    0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
];
const VALID_CLOSE_CODES: [u16; 16] = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
];

#[test]
fn invalid_close_codes_fail_with_1002() {
    for role in ROLES {
        for code in INVALID_CLOSE_CODES {
            rejected(
                role,
                &frame_to(role, true, OP_CLOSE, &close_payload(code, b"")),
                Violation::InvalidCloseCode(code),
                1002,
            );
            rejected(
                role,
                &frame_to(role, true, OP_CLOSE, &close_payload(code, b"why")),
                Violation::InvalidCloseCode(code),
                1002,
            );
        }
    }
}

#[test]
fn valid_close_codes_are_accepted_and_echoed() {
    for role in ROLES {
        for code in VALID_CLOSE_CODES {
            for reason in ["", "bye", "ça va"] {
                let mut conn = Connection::new(role, Limits::default());
                let mut out = BytesMut::new();
                let mut input = BytesMut::from(
                    &frame_to(
                        role,
                        true,
                        OP_CLOSE,
                        &close_payload(code, reason.as_bytes()),
                    )[..],
                );
                let msg = conn.receive(&mut input, &mut out).unwrap();
                let expected = CloseFrame::new(code, reason);
                assert_eq!(msg, Some(Message::Close(Some(expected.clone()))));
                assert_eq!(conn.peer_close(), Some(PeerClose::Frame(&expected)));
                assert_eq!(conn.state(), ConnectionState::Closed);
                // The echo is exactly one close frame carrying the same code.
                let frames = frames_written_by(role, &out);
                assert_eq!(frames.len(), 1);
                assert_eq!(frames[0].opcode, OP_CLOSE);
                assert!(frames[0].fin);
                assert_eq!(frames[0].payload, code.to_be_bytes());
                assert_ends_with_close(role, &out, code);
                if role == Role::Server {
                    let [hi, lo] = code.to_be_bytes();
                    assert_eq!(&out[..], &[0x88, 0x02, hi, lo]);
                }
            }
        }
    }
}

#[test]
fn invalid_utf8_in_a_close_reason_fails_with_1007() {
    for role in ROLES {
        for reason in [
            &b"\xff"[..],
            b"ok\xc0\xaf",
            b"\xed\xa0\x80",
            b"cut \xe2\x82",
        ] {
            rejected(
                role,
                &frame_to(role, true, OP_CLOSE, &close_payload(1000, reason)),
                Violation::InvalidCloseReason,
                1007,
            );
        }
    }
}

#[test]
fn violation_after_we_sent_close_fails_without_a_second_close_frame() {
    for role in ROLES {
        let mut conn = Connection::new(role, Limits::default());
        let mut out = BytesMut::new();
        conn.close(Some(&CloseFrame::new(1000, "")), &mut out)
            .unwrap();
        let written = out.len();
        let mut input = BytesMut::from(&frame(role == Role::Server, true, 0b100, OP_TEXT, b"")[..]);
        assert_eq!(
            conn.receive(&mut input, &mut out),
            Err(Error::Protocol(Violation::ReservedBits))
        );
        assert_eq!(out.len(), written, "no second close frame");
        assert_eq!(conn.state(), ConnectionState::Closed);
    }
}

// ---------------------------------------------------------------- limits

fn limits(frame: usize, message: usize, fragments: usize) -> Limits {
    Limits::default()
        .max_frame_size(frame)
        .max_message_size(message)
        .max_fragments(fragments)
}

#[test]
fn frame_over_max_frame_size_fails_with_1009_from_the_header_alone() {
    for role in ROLES {
        for op in [OP_TEXT, OP_BINARY] {
            // 16-bit length.
            assert_rejected(
                role,
                limits(1000, 1 << 20, 100),
                &header_to(role, true, op, 1001),
                Violation::FrameTooLarge {
                    len: 1001,
                    limit: 1000,
                },
                1009,
            );
            // 7-bit length.
            assert_rejected(
                role,
                limits(100, 1 << 20, 100),
                &header_to(role, false, op, 101),
                Violation::FrameTooLarge {
                    len: 101,
                    limit: 100,
                },
                1009,
            );
        }
        // 64-bit length with the default limits: a terabyte is refused before any
        // payload is buffered.
        assert_rejected(
            role,
            Limits::default(),
            &header_to(role, true, OP_BINARY, 1 << 40),
            Violation::FrameTooLarge {
                len: 1 << 40,
                limit: 16 << 20,
            },
            1009,
        );
    }
}

#[test]
fn continuation_frame_over_max_frame_size_fails_with_1009_from_the_header_alone() {
    for role in ROLES {
        let input = concat(&[
            &frame_to(role, false, OP_BINARY, &[1; 10]),
            &header_to(role, true, OP_CONT, 70_000),
        ]);
        assert_rejected(
            role,
            limits(65_536, 1 << 20, 100),
            &input,
            Violation::FrameTooLarge {
                len: 70_000,
                limit: 65_536,
            },
            1009,
        );
    }
}

#[test]
fn frame_of_exactly_max_frame_size_is_accepted() {
    for role in ROLES {
        let mut conn = Connection::new(role, limits(1000, 1000, 100));
        let mut out = BytesMut::new();
        let mut input = BytesMut::from(&frame_to(role, true, OP_BINARY, &[7; 1000])[..]);
        assert_eq!(
            conn.receive(&mut input, &mut out),
            Ok(Some(Message::binary(vec![7; 1000])))
        );
    }
}

#[test]
fn message_over_max_message_size_fails_with_1009_from_the_header_alone() {
    for role in ROLES {
        // Fragmented: 1000 bytes so far, the next header announces 600 more.
        let input = concat(&[
            &frame_to(role, false, OP_BINARY, &[1; 1000]),
            &header_to(role, true, OP_CONT, 600),
        ]);
        assert_rejected(
            role,
            limits(1000, 1500, 100),
            &input,
            Violation::MessageTooLarge {
                len: 1600,
                limit: 1500,
            },
            1009,
        );
        // Text, three fragments, the third crosses the limit.
        let input = concat(&[
            &frame_to(role, false, OP_TEXT, &[b'a'; 700]),
            &frame_to(role, false, OP_CONT, &[b'b'; 700]),
            &header_to(role, true, OP_CONT, 101),
        ]);
        assert_rejected(
            role,
            limits(1000, 1500, 100),
            &input,
            Violation::MessageTooLarge {
                len: 1501,
                limit: 1500,
            },
            1009,
        );
        // A single frame under the frame limit but over the message limit.
        assert_rejected(
            role,
            limits(2000, 1500, 100),
            &header_to(role, true, OP_TEXT, 1501),
            Violation::MessageTooLarge {
                len: 1501,
                limit: 1500,
            },
            1009,
        );
    }
}

#[test]
fn message_of_exactly_max_message_size_is_accepted() {
    for role in ROLES {
        let mut conn = Connection::new(role, limits(1000, 1500, 100));
        let mut out = BytesMut::new();
        let mut input = BytesMut::new();
        input.extend_from_slice(&frame_to(role, false, OP_BINARY, &[1; 1000]));
        input.extend_from_slice(&frame_to(role, true, OP_PING, b"mid"));
        input.extend_from_slice(&frame_to(role, true, OP_CONT, &[2; 500]));
        let mut expected = vec![1; 1000];
        expected.extend_from_slice(&[2; 500]);
        assert_eq!(
            receive_all(&mut conn, &mut input, &mut out).unwrap(),
            vec![Message::Ping("mid".into()), Message::binary(expected)]
        );
    }
}

#[test]
fn control_frames_do_not_count_towards_the_message_limit() {
    for role in ROLES {
        let mut conn = Connection::new(role, limits(100, 100, 100));
        let mut out = BytesMut::new();
        let mut input = BytesMut::new();
        input.extend_from_slice(&frame_to(role, false, OP_TEXT, &[b'a'; 100]));
        input.extend_from_slice(&frame_to(role, true, OP_PING, &[b'p'; 125]));
        input.extend_from_slice(&frame_to(role, true, OP_PONG, &[b'q'; 125]));
        input.extend_from_slice(&frame_to(role, true, OP_CONT, b""));
        let msgs = receive_all(&mut conn, &mut input, &mut out).unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[2], Message::text("a".repeat(100)));
    }
}

#[test]
fn too_many_fragments_fails_with_1009() {
    for role in ROLES {
        let input = concat(&[
            &frame_to(role, false, OP_TEXT, b"a"),
            &frame_to(role, false, OP_CONT, b"b"),
            &frame_to(role, false, OP_CONT, b"c"),
            &frame_to(role, true, OP_CONT, b"d"),
        ]);
        assert_rejected(
            role,
            limits(1000, 1000, 3),
            &input,
            Violation::TooManyFragments(3),
            1009,
        );
        // From the header of the extra fragment alone; interleaved control frames do
        // not count as fragments.
        let input = concat(&[
            &frame_to(role, false, OP_BINARY, b"a"),
            &frame_to(role, true, OP_PING, b""),
            &frame_to(role, false, OP_CONT, b"b"),
            &frame_to(role, true, OP_PONG, b""),
            &frame_to(role, false, OP_CONT, b"c"),
            &header_to(role, true, OP_CONT, 50),
        ]);
        let before = assert_rejected(
            role,
            limits(1000, 1000, 3),
            &input,
            Violation::TooManyFragments(3),
            1009,
        );
        assert_eq!(
            before,
            vec![Message::Ping("".into()), Message::Pong("".into())]
        );
    }
}

#[test]
fn message_with_exactly_max_fragments_is_accepted() {
    for role in ROLES {
        let mut conn = Connection::new(role, limits(1000, 1000, 3));
        let mut out = BytesMut::new();
        let mut input = BytesMut::new();
        input.extend_from_slice(&frame_to(role, false, OP_TEXT, b"a"));
        input.extend_from_slice(&frame_to(role, false, OP_CONT, b"b"));
        input.extend_from_slice(&frame_to(role, true, OP_CONT, b"c"));
        // The count starts over for the next message.
        input.extend_from_slice(&frame_to(role, false, OP_BINARY, b"d"));
        input.extend_from_slice(&frame_to(role, false, OP_CONT, b"e"));
        input.extend_from_slice(&frame_to(role, true, OP_CONT, b"f"));
        assert_eq!(
            receive_all(&mut conn, &mut input, &mut out).unwrap(),
            vec![Message::text("abc"), Message::binary(&b"def"[..])]
        );
    }
}
