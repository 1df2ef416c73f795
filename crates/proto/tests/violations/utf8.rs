//! Invalid UTF-8 in text messages, whole and fragmented.

use super::*;

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
