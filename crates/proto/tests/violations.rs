//! Every way a peer can break RFC 6455 after the handshake, in both roles where the rule
//! applies to both. Each test checks the exact violation, that its close code is the one
//! the RFC requires, the close frame written to the output, and the closed state.

mod common;

use bytes::BytesMut;
use common::*;
use duplex_proto::{
    CloseFrame, Connection, ConnectionState, Error, Limits, Message, PeerClose, Role, Violation,
};

fn rejected(role: Role, input: &[u8], violation: Violation, code: u16) -> Vec<Message> {
    assert_rejected(role, Limits::default(), input, violation, code)
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---------------------------------------------------------------- reserved bits

fn reserved_bits_are_rejected(rsv: u8) {
    for role in ROLES {
        let masked = role == Role::Server;
        for opcode in [OP_TEXT, OP_BINARY, OP_PING, OP_PONG, OP_CLOSE] {
            let input = frame(masked, true, rsv, opcode, b"");
            rejected(role, &input, Violation::ReservedBits, 1002);
        }
        // From the header alone: the payload never arrives.
        let input = header(masked, true, rsv, OP_BINARY, 1000);
        rejected(role, &input, Violation::ReservedBits, 1002);
        // On a continuation frame.
        let input = concat(&[
            &frame(masked, false, 0, OP_TEXT, b"a"),
            &frame(masked, true, rsv, OP_CONT, b"b"),
        ]);
        rejected(role, &input, Violation::ReservedBits, 1002);
    }
}

#[test]
fn rsv1_without_extension_fails_with_1002() {
    reserved_bits_are_rejected(0b100);
}

#[test]
fn rsv2_without_extension_fails_with_1002() {
    reserved_bits_are_rejected(0b010);
}

#[test]
fn rsv3_without_extension_fails_with_1002() {
    reserved_bits_are_rejected(0b001);
}

#[test]
fn all_reserved_bits_together_fail_with_1002() {
    reserved_bits_are_rejected(0b111);
}

// ---------------------------------------------------------------- reserved opcodes

#[test]
fn reserved_non_control_opcodes_3_to_7_fail_with_1002() {
    for role in ROLES {
        for op in 0x3..=0x7u8 {
            rejected(
                role,
                &frame_to(role, true, op, b"x"),
                Violation::ReservedOpcode(op),
                1002,
            );
        }
    }
}

#[test]
fn reserved_control_opcodes_b_to_f_fail_with_1002() {
    for role in ROLES {
        for op in 0xB..=0xFu8 {
            rejected(
                role,
                &frame_to(role, true, op, b"x"),
                Violation::ReservedOpcode(op),
                1002,
            );
        }
    }
}

#[test]
fn reserved_opcode_is_rejected_from_the_first_two_bytes() {
    for role in ROLES {
        for op in (0x3..=0x7u8).chain(0xB..=0xF) {
            // Only two bytes: even a masked header is not complete yet.
            let two = &header_to(role, true, op, 50)[..2];
            rejected(role, two, Violation::ReservedOpcode(op), 1002);
        }
    }
}

#[test]
fn reserved_opcode_inside_a_fragmented_message_fails_with_1002() {
    for role in ROLES {
        let input = concat(&[
            &frame_to(role, false, OP_BINARY, b"a"),
            &frame_to(role, true, 0x3, b"b"),
        ]);
        rejected(role, &input, Violation::ReservedOpcode(3), 1002);
    }
}

// ---------------------------------------------------------------- control frames

#[test]
fn control_frame_payload_over_125_fails_with_1002() {
    for role in ROLES {
        for op in [OP_PING, OP_PONG, OP_CLOSE] {
            let mut payload = close_payload(1000, &[b'r'; 124]);
            assert_eq!(payload.len(), 126);
            rejected(
                role,
                &frame_to(role, true, op, &payload),
                Violation::ControlFrameTooLong,
                1002,
            );
            payload.resize(300, b'x');
            rejected(
                role,
                &frame_to(role, true, op, &payload),
                Violation::ControlFrameTooLong,
                1002,
            );
        }
    }
}

#[test]
fn control_frame_over_125_is_rejected_from_the_header_alone() {
    for role in ROLES {
        for op in [OP_PING, OP_PONG, OP_CLOSE] {
            // 16-bit length 126.
            rejected(
                role,
                &header_to(role, true, op, 126),
                Violation::ControlFrameTooLong,
                1002,
            );
            // 64-bit length.
            rejected(
                role,
                &header_to(role, true, op, 1 << 20),
                Violation::ControlFrameTooLong,
                1002,
            );
            // Only the length bytes, no mask yet.
            rejected(
                role,
                &header_to(role, true, op, 126)[..4],
                Violation::ControlFrameTooLong,
                1002,
            );
        }
    }
}

#[test]
fn control_frame_of_exactly_125_bytes_is_accepted() {
    for role in ROLES {
        let payload = [b'p'; 125];
        let mut conn = Connection::new(role, Limits::default());
        let (mut out, mut input) = (BytesMut::new(), BytesMut::new());
        input.extend_from_slice(&frame_to(role, true, OP_PING, &payload));
        input.extend_from_slice(&frame_to(role, true, OP_PONG, &payload));
        let close = close_payload(1000, &[b'r'; 123]);
        input.extend_from_slice(&frame_to(role, true, OP_CLOSE, &close));
        let msgs = receive_all(&mut conn, &mut input, &mut out).unwrap();
        assert_eq!(
            msgs,
            vec![
                Message::Ping(payload.to_vec().into()),
                Message::Pong(payload.to_vec().into()),
                Message::Close(Some(CloseFrame::new(1000, "r".repeat(123)))),
            ]
        );
    }
}

#[test]
fn fragmented_control_frames_fail_with_1002() {
    for role in ROLES {
        for op in [OP_PING, OP_PONG, OP_CLOSE] {
            rejected(
                role,
                &frame_to(role, false, op, b""),
                Violation::FragmentedControlFrame,
                1002,
            );
            rejected(
                role,
                &frame_to(role, false, op, b"ab"),
                Violation::FragmentedControlFrame,
                1002,
            );
            // Also between the fragments of a data message.
            let input = concat(&[
                &frame_to(role, false, OP_TEXT, b"a"),
                &frame_to(role, false, op, b""),
            ]);
            rejected(role, &input, Violation::FragmentedControlFrame, 1002);
        }
    }
}

// ---------------------------------------------------------------- masking direction

/// Each receiving role, the masking its peer must not use, and the violation it is.
const WRONG_MASKING: [(Role, bool, Violation); 2] = [
    (Role::Server, false, Violation::UnmaskedClientFrame),
    (Role::Client, true, Violation::MaskedServerFrame),
];

#[test]
fn frames_masked_the_wrong_way_fail_with_1002() {
    for (role, masked, violation) in WRONG_MASKING {
        for op in [OP_TEXT, OP_BINARY, OP_PING, OP_PONG, OP_CLOSE] {
            for payload in [&b""[..], b"abc"] {
                let input = frame(masked, true, 0, op, payload);
                rejected(role, &input, violation.clone(), 1002);
            }
        }
        // A continuation masked the wrong way after a correct start.
        let input = concat(&[
            &frame(!masked, false, 0, OP_TEXT, b"a"),
            &frame(masked, true, 0, OP_CONT, b"b"),
        ]);
        rejected(role, &input, violation.clone(), 1002);
        // From the header alone: the payload never arrives (for an unmasked frame of
        // 125 bytes, the first two bytes are all there is).
        for (op, len) in [(OP_TEXT, 125), (OP_BINARY, 5000)] {
            let input = header(masked, true, 0, op, len);
            rejected(role, &input, violation.clone(), 1002);
        }
    }
}

// ---------------------------------------------------------------- fragmentation order

#[test]
fn continuation_without_a_message_in_progress_fails_with_1002() {
    for role in ROLES {
        for fin in [true, false] {
            rejected(
                role,
                &frame_to(role, fin, OP_CONT, b"x"),
                Violation::UnexpectedContinuation,
                1002,
            );
            rejected(
                role,
                &frame_to(role, fin, OP_CONT, b""),
                Violation::UnexpectedContinuation,
                1002,
            );
        }
    }
}

#[test]
fn continuation_after_a_finished_message_fails_with_1002() {
    for role in ROLES {
        let input = concat(&[
            &frame_to(role, false, OP_TEXT, b"a"),
            &frame_to(role, true, OP_CONT, b"b"),
            &frame_to(role, true, OP_CONT, b"c"),
        ]);
        let before = rejected(role, &input, Violation::UnexpectedContinuation, 1002);
        assert_eq!(before, vec![Message::text("ab")]);
    }
}

#[test]
fn new_data_frame_inside_a_fragmented_message_fails_with_1002() {
    for role in ROLES {
        for (first, second) in [
            (OP_TEXT, OP_TEXT),
            (OP_TEXT, OP_BINARY),
            (OP_BINARY, OP_TEXT),
            (OP_BINARY, OP_BINARY),
        ] {
            for fin in [true, false] {
                let input = concat(&[
                    &frame_to(role, false, first, b"a"),
                    &frame_to(role, fin, second, b"b"),
                ]);
                rejected(role, &input, Violation::ExpectedContinuation, 1002);
            }
        }
        // After a continuation and an interleaved ping, still in the message.
        let input = concat(&[
            &frame_to(role, false, OP_TEXT, b"a"),
            &frame_to(role, false, OP_CONT, b"b"),
            &frame_to(role, true, OP_PING, b"p"),
            &frame_to(role, true, OP_TEXT, b"c"),
        ]);
        let before = rejected(role, &input, Violation::ExpectedContinuation, 1002);
        assert_eq!(before, vec![Message::Ping("p".into())]);
    }
}

// ---------------------------------------------------------------- length encoding

#[test]
fn length_with_the_top_bit_set_fails_with_1002_from_the_header_alone() {
    for role in ROLES {
        let mask_bit = if role == Role::Server { 0x80 } else { 0 };
        for len in [1u64 << 63, u64::MAX, (1 << 63) | 5] {
            let mut input = vec![0x82, mask_bit | 127];
            input.extend_from_slice(&len.to_be_bytes());
            // Ten bytes: no mask, no payload.
            rejected(role, &input, Violation::LengthTopBit, 1002);
        }
    }
}

// ---------------------------------------------------------------- UTF-8 in text

const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\x80",
    b"abc\xfe",
    b"\xc0\xaf",             // overlong '/'
    b"\xe0\x80\xaf",         // overlong '/'
    b"\xed\xa0\x80",         // UTF-16 surrogate
    b"\xf4\x90\x80\x80",     // above U+10FFFF
    b"\xf8\x88\x80\x80\x80", // 5-byte form
    b"\xce\xbaX\xbf",
    b"\xe2\x82",   // truncated at the end of the message
    b"ok\xf0\x9f", // truncated at the end of the message
];

#[test]
fn invalid_utf8_in_a_single_text_frame_fails_with_1007() {
    for role in ROLES {
        for bad in INVALID_UTF8 {
            rejected(
                role,
                &frame_to(role, true, OP_TEXT, bad),
                Violation::InvalidUtf8,
                1007,
            );
        }
    }
}

#[test]
fn invalid_utf8_split_across_fragments_fails_with_1007() {
    for role in ROLES {
        // A valid prefix of a code point, then a byte that cannot continue it.
        let input = concat(&[
            &frame_to(role, false, OP_TEXT, b"a\xe2\x82"),
            &frame_to(role, true, OP_CONT, b"("),
        ]);
        rejected(role, &input, Violation::InvalidUtf8, 1007);

        // Each fragment alone looks fine; the message ends inside a code point.
        let input = concat(&[
            &frame_to(role, false, OP_TEXT, b"abc"),
            &frame_to(role, false, OP_CONT, b"\xf0\x9f"),
            &frame_to(role, true, OP_CONT, b""),
        ]);
        rejected(role, &input, Violation::InvalidUtf8, 1007);

        // A code point split over three fragments and a ping, wrong at the last byte.
        let input = concat(&[
            &frame_to(role, false, OP_TEXT, b"\xf0"),
            &frame_to(role, false, OP_CONT, b"\x9f"),
            &frame_to(role, true, OP_PING, b""),
            &frame_to(role, true, OP_CONT, b"\x98\x28"),
        ]);
        let before = rejected(role, &input, Violation::InvalidUtf8, 1007);
        assert_eq!(before, vec![Message::Ping("".into())]);
    }
}

#[test]
fn invalid_utf8_in_an_early_fragment_fails_before_the_message_is_complete() {
    for role in ROLES {
        // The final fragment never arrives.
        let input = concat(&[
            &frame_to(role, false, OP_TEXT, b"fine"),
            &frame_to(role, false, OP_CONT, b"bad \xff here"),
        ]);
        rejected(role, &input, Violation::InvalidUtf8, 1007);
    }
}

#[test]
fn invalid_utf8_is_detected_mid_frame_before_the_payload_is_complete() {
    for role in ROLES {
        let mut payload = b"0123456789".repeat(10);
        payload[5] = 0xff;
        let whole = frame_to(role, true, OP_TEXT, &payload);
        let header_len = whole.len() - payload.len();
        // Header plus the first ten payload bytes (which include the bad one).
        let prefix = &whole[..header_len + 10];
        rejected(role, prefix, Violation::InvalidUtf8, 1007);
    }
}

#[test]
fn invalid_utf8_arriving_in_a_later_chunk_fails_while_the_frame_is_incomplete() {
    for role in ROLES {
        let mut payload = "héllo wörld ".repeat(20).into_bytes();
        let bad_at = 60;
        payload[bad_at] = 0xff;
        let whole = frame_to(role, true, OP_TEXT, &payload);
        let header_len = whole.len() - payload.len();

        let mut conn = Connection::new(role, Limits::default());
        let (mut input, mut out) = (BytesMut::new(), BytesMut::new());
        // Everything up to the bad byte: valid so far, the frame is incomplete.
        input.extend_from_slice(&whole[..header_len + bad_at]);
        assert_eq!(conn.receive(&mut input, &mut out), Ok(None));
        assert!(out.is_empty());
        assert_eq!(conn.state(), ConnectionState::Open);
        // The bad byte and a little more; still far from the end of the frame.
        input.extend_from_slice(&whole[header_len + bad_at..header_len + bad_at + 3]);
        let err = conn.receive(&mut input, &mut out).unwrap_err();
        check_failure(role, &mut conn, &mut out, err, Violation::InvalidUtf8, 1007);
    }
}

#[test]
fn invalid_continuation_of_a_code_point_split_across_chunks_fails_mid_frame() {
    for role in ROLES {
        let payload = b"abc\xce\xffdefghijklmnopqrstuvwxyz";
        let whole = frame_to(role, true, OP_TEXT, payload);
        let header_len = whole.len() - payload.len();
        let mut conn = Connection::new(role, Limits::default());
        let (mut input, mut out) = (BytesMut::new(), BytesMut::new());
        // Ends on the lead byte 0xce: a valid prefix so far.
        input.extend_from_slice(&whole[..header_len + 4]);
        assert_eq!(conn.receive(&mut input, &mut out), Ok(None));
        // 0xff cannot continue it.
        input.extend_from_slice(&whole[header_len + 4..header_len + 5]);
        let err = conn.receive(&mut input, &mut out).unwrap_err();
        check_failure(role, &mut conn, &mut out, err, Violation::InvalidUtf8, 1007);
    }
}

#[test]
fn invalid_utf8_mid_frame_in_a_continuation_fails_before_it_completes() {
    for role in ROLES {
        let mut cont = vec![b'x'; 200];
        cont[7] = 0xc0;
        let second = frame_to(role, true, OP_CONT, &cont);
        let header_len = second.len() - cont.len();
        let input = concat(&[
            &frame_to(role, false, OP_TEXT, "ünïcode".as_bytes()),
            &second[..header_len + 9],
        ]);
        rejected(role, &input, Violation::InvalidUtf8, 1007);
    }
}

#[test]
fn invalid_utf8_in_a_binary_message_is_accepted() {
    for role in ROLES {
        let mut conn = Connection::new(role, Limits::default());
        let (mut out, mut input) = (BytesMut::new(), BytesMut::new());
        input.extend_from_slice(&frame_to(role, true, OP_BINARY, b"\xff\xfe"));
        input.extend_from_slice(&frame_to(role, false, OP_BINARY, b"\xe2"));
        input.extend_from_slice(&frame_to(role, true, OP_CONT, b"\x28"));
        assert_eq!(
            receive_all(&mut conn, &mut input, &mut out).unwrap(),
            vec![
                Message::binary(&b"\xff\xfe"[..]),
                Message::binary(&b"\xe2\x28"[..])
            ]
        );
        assert!(out.is_empty());
    }
}

// ---------------------------------------------------------------- close frames

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
