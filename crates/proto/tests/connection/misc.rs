//! What a connection reports, input that stops mid-header, seeded masks, and text that
//! changes in the caller's buffer after it was checked.

use super::*;

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
