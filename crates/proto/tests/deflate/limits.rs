//! Limits: decompression bombs, the message limit, checks before buffering, windows.

use super::*;

/// 10 MiB of zeros in one raw deflate message.
fn bomb() -> Vec<u8> {
    let mut d = Deflater::new(9, 15);
    let zeros = vec![0u8; 64 << 10];
    let mut out = Vec::new();
    for _ in 0..160 {
        out.extend(d.feed(&zeros, FlushCompress::None));
    }
    out.extend(d.message(&[]));
    out
}

#[test]
fn a_decompression_bomb_is_1009_without_allocating_the_message() {
    let payload = bomb();
    assert!(payload.len() < 16 << 10, "bomb of {} bytes", payload.len());
    let limits = Limits::default().max_message_size(MIB);
    let too_large = Violation::MessageTooLarge {
        len: MIB as u64 + 1,
        limit: MIB,
    };
    for role in ROLES {
        let masked = role == Role::Server;
        let one_frame = compressed_to(role, true, OP_BINARY, &payload);
        let text_frame = compressed_to(role, true, OP_TEXT, &payload);
        let mut fragments = Vec::new();
        for (k, piece) in payload.chunks(payload.len() / 8 + 1).enumerate() {
            let (rsv, opcode) = if k == 0 {
                (RSV1, OP_BINARY)
            } else {
                (0, OP_CONT)
            };
            fragments.extend(frame(masked, false, rsv, opcode, piece));
        }
        fragments.extend(frame(masked, true, 0, OP_CONT, b""));
        for wire in [&one_frame, &text_frame, &fragments] {
            let mut conn = Connection::new(role, limits.clone())
                .with_deflate(DeflateParams::default(), &DeflateConfig::default());
            let mut input = BytesMut::from(&wire[..]);
            let mut out = BytesMut::new();
            let (result, peak, largest) = measure(|| {
                let mut got = Vec::new();
                loop {
                    match conn.receive(&mut input, &mut out) {
                        Ok(Some(m)) => got.push(m),
                        Ok(None) => break Ok(got),
                        Err(e) => break Err(e),
                    }
                }
            });
            let err = result.unwrap_err();
            assert!(largest <= MIB + 1, "{role:?}: a block of {largest} bytes");
            assert!(peak < MIB + (256 << 10), "{role:?}: {peak} bytes at once");
            check_failure(role, &mut conn, &mut out, err, too_large.clone(), 1009);
        }
    }
}

#[test]
fn a_compressed_message_exactly_at_the_limit_passes_and_one_byte_more_is_1009() {
    let limit = 256 << 10;
    let limits = Limits::default().max_message_size(limit);
    for role in ROLES {
        for content in [words(limit, 10), noise(limit, 11)] {
            let (mut client, mut server) = pair(
                DeflateParams::default(),
                &DeflateConfig::default(),
                limits.clone(),
            );
            let (sender, receiver) = ends(role, &mut client, &mut server);
            let (frames, got) = transfer(sender, receiver, &[Message::binary(content.clone())]);
            assert_eq!(frames[0].rsv, RSV1);
            assert_eq!(got, [Message::binary(content.clone())]);
        }
        // One byte more: compressible, so the frame is small and inflating stops it.
        let mut content = words(limit + 1, 12);
        let (mut client, mut server) = pair(
            DeflateParams::default(),
            &DeflateConfig::default(),
            limits.clone(),
        );
        let (sender, receiver) = ends(role, &mut client, &mut server);
        let mut wire = BytesMut::new();
        sender
            .send(&Message::binary(content.clone()), &mut wire)
            .unwrap();
        assert!(wire.len() < limit / 2);
        let receiver_role = receiver.role();
        let mut out = BytesMut::new();
        let err = receiver.receive(&mut wire, &mut out).unwrap_err();
        check_failure(
            receiver_role,
            receiver,
            &mut out,
            err,
            Violation::MessageTooLarge {
                len: limit as u64 + 1,
                limit,
            },
            1009,
        );
        // And the reference peer's frame of exactly the limit passes.
        content.truncate(limit);
        let mut conn = Connection::new(peer_of(role), limits.clone())
            .with_deflate(DeflateParams::default(), &DeflateConfig::default());
        let wire = compressed_to(peer_of(role), true, OP_BINARY, &compress(&content));
        assert_eq!(
            conn.receive(&mut BytesMut::from(&wire[..]), &mut BytesMut::new()),
            Ok(Some(Message::binary(content)))
        );
    }
}

/// Compressed bytes can outnumber what they inflate to, so the header check before
/// buffering allows deflate's worst case over the room left (a ninth, plus 64 bytes for
/// flushes); inflating holds the message to the limit exactly.
#[test]
fn compressed_frames_are_checked_before_buffering_with_room_for_deflate_overhead() {
    let limit = 1024;
    let limits = Limits::default().max_message_size(limit);
    let conn = |role| {
        Connection::new(role, limits.clone())
            .with_deflate(DeflateParams::default(), &DeflateConfig::default())
    };
    for role in ROLES {
        let masked = role == Role::Server;
        // (rsv, announced length, rejected)
        for (rsv, len, rejected) in [
            (RSV1, 1024 + 128 + 64, false),
            (RSV1, 1024 + 128 + 64 + 1, true),
            (0, 1024, false),
            (0, 1025, true),
        ] {
            let mut c = conn(role);
            let mut input = BytesMut::from(&header(masked, true, rsv, OP_BINARY, len)[..]);
            let mut out = BytesMut::new();
            let result = c.receive(&mut input, &mut out);
            if rejected {
                let too_large = Violation::MessageTooLarge { len, limit };
                check_failure(role, &mut c, &mut out, result.unwrap_err(), too_large, 1009);
            } else {
                assert_eq!(result, Ok(None), "{rsv} {len}");
                assert_eq!(c.state(), ConnectionState::Open);
            }
        }
        // A continuation gets the room the inflated fragments left: 24 bytes here.
        let first = Deflater::new(6, 15).feed(&words(1000, 15), FlushCompress::Sync);
        for (len, rejected) in [(24 + 3 + 64, false), (24 + 3 + 64 + 1, true)] {
            let mut c = conn(role);
            let mut input = BytesMut::from(&frame(masked, false, RSV1, OP_TEXT, &first)[..]);
            input.extend_from_slice(&header(masked, true, 0, OP_CONT, len));
            let mut out = BytesMut::new();
            let result = c.receive(&mut input, &mut out);
            if rejected {
                let too_large = Violation::MessageTooLarge {
                    len: 1000 + len,
                    limit,
                };
                check_failure(role, &mut c, &mut out, result.unwrap_err(), too_large, 1009);
            } else {
                assert_eq!(result, Ok(None));
            }
        }
        // Incompressible data at the limit, from peers at level 0 (stored blocks) and 1
        // (fixed Huffman codes, over a sixteenth larger), whole and in fragments.
        let content = noise(limit, 16);
        for level in [0, 1] {
            let payload = Deflater::new(level, 15).message(&content);
            assert!(payload.len() > limit, "level {level}: {}", payload.len());
            let mut wire = compressed_to(role, true, OP_BINARY, &payload);
            let pieces: Vec<&[u8]> = payload.chunks(300).collect();
            for (k, piece) in pieces.iter().enumerate() {
                let (rsv, opcode) = if k == 0 {
                    (RSV1, OP_BINARY)
                } else {
                    (0, OP_CONT)
                };
                wire.extend(frame(masked, k + 1 == pieces.len(), rsv, opcode, piece));
            }
            let mut c = conn(role);
            assert_eq!(
                receive_all(&mut c, &mut BytesMut::from(&wire[..]), &mut BytesMut::new()),
                Ok(vec![
                    Message::binary(content.clone()),
                    Message::binary(content.clone())
                ])
            );
        }
    }
}

#[test]
fn an_unbounded_message_limit_still_inflates() {
    let limits = Limits::default().max_message_size(usize::MAX);
    for role in ROLES {
        let mut conn = Connection::new(role, limits.clone())
            .with_deflate(DeflateParams::default(), &DeflateConfig::default());
        let content = words(20_000, 13);
        let mut wire = BytesMut::from(&compressed_to(role, true, OP_TEXT, &HELLO)[..]);
        wire.extend_from_slice(&compressed_to(role, true, OP_BINARY, &compress(&content)));
        assert_eq!(
            receive_all(&mut conn, &mut wire, &mut BytesMut::new()),
            Ok(vec![Message::text("Hello"), Message::binary(content)])
        );
    }
}

#[test]
fn compressed_send_is_refused_during_a_fragmented_send_and_after_close() {
    for role in ROLES {
        let mut conn = Connection::new(role, Limits::default())
            .with_deflate(DeflateParams::default(), &with_threshold(0));
        let mut wire = BytesMut::new();
        conn.send_frame(OpCode::Text, b"part", false, &mut wire)
            .unwrap();
        let written = wire.len();
        assert_eq!(
            conn.send(&Message::text("x".repeat(100)), &mut wire),
            Err(Error::InvalidSend(
                duplex_proto::InvalidSend::FragmentInProgress
            ))
        );
        assert_eq!(wire.len(), written);
        assert_eq!(
            conn.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );
        conn.send(&Message::Ping("p".into()), &mut wire).unwrap();
        conn.send_frame(OpCode::Continuation, b" end", true, &mut wire)
            .unwrap();
        conn.send(&Message::text("x".repeat(100)), &mut wire)
            .unwrap();
        let rsv: Vec<u8> = frames_from(role, &wire).iter().map(|f| f.rsv).collect();
        assert_eq!(rsv, [0, 0, 0, RSV1]);

        conn.close(None, &mut wire).unwrap();
        let written = wire.len();
        assert_eq!(
            conn.send(&Message::text("x".repeat(100)), &mut wire),
            Err(Error::SendAfterClose)
        );
        assert_eq!(wire.len(), written);
    }
}

#[test]
fn every_window_size_stays_within_its_window_on_the_wire() {
    let base = words(20_000, 14);
    let mut reversed = base.clone();
    reversed.reverse();
    let msgs = [
        Message::binary(base.clone()),
        Message::binary(reversed),
        Message::binary(base.clone()),
    ];
    for bits in 8..=15u8 {
        let params = p(false, false, bits, bits);
        for role in ROLES {
            let (mut client, mut server) =
                pair(params, &DeflateConfig::default(), Limits::default());
            let (sender, receiver) = ends(role, &mut client, &mut server);
            let (frames, got) = transfer(sender, receiver, &msgs);
            assert_eq!(got, msgs);
            let mut puff = Puff::default();
            for (f, m) in frames.iter().zip(&msgs) {
                let Message::Binary(b) = m else {
                    unreachable!()
                };
                assert_eq!(puff.message(&f.payload).unwrap(), b.to_vec());
            }
            assert!(
                puff.max_distance <= 1 << bits,
                "{bits} bits: a reference {} back",
                puff.max_distance
            );
            if bits == 15 {
                assert!(puff.max_distance > 1 << 12, "a large window is used");
            }
        }
    }
}
