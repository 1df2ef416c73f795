//! Violations in a frame header: reserved bits and opcodes, control frames, the masking
//! direction, the order of fragments, the length encoding.

use super::*;

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
fn reserved_opcodes_fail_with_1002() {
    // Non-control 0x3-0x7 and control 0xB-0xF.
    for role in ROLES {
        for op in (0x3..=0x7u8).chain(0xB..=0xF) {
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
