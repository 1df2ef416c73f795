//! Compressed frames through `Connection`: the RFC examples, what is sent compressed, and
//! the RSV1 rules.

use super::*;

#[test]
fn rfc_7692_examples_decode_in_both_roles() {
    assert_eq!(
        frame(false, true, RSV1, OP_TEXT, &HELLO),
        [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        "the frame helper writes the RFC's bytes"
    );
    let hello = || Message::text("Hello");
    // (section, frames as (fin, rsv, opcode, payload), messages)
    type Frames = Vec<(bool, u8, u8, Vec<u8>)>;
    let cases: Vec<(&str, Frames, Vec<Message>)> = vec![
        (
            "7.2.3.1 one frame",
            vec![(true, RSV1, OP_TEXT, HELLO.to_vec())],
            vec![hello()],
        ),
        (
            "7.2.3.1 two fragments",
            vec![
                (false, RSV1, OP_TEXT, vec![0xf2, 0x48, 0xcd]),
                (true, 0, OP_CONT, vec![0xc9, 0xc9, 0x07, 0x00]),
            ],
            vec![hello()],
        ),
        (
            "7.2.3.2 sharing the window",
            vec![
                (true, RSV1, OP_TEXT, HELLO.to_vec()),
                (true, RSV1, OP_TEXT, HELLO_AGAIN.to_vec()),
            ],
            vec![hello(), hello()],
        ),
        (
            "7.2.3.3 a stored block",
            vec![(
                true,
                RSV1,
                OP_TEXT,
                vec![
                    0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
                ],
            )],
            vec![hello()],
        ),
        (
            "7.2.3.4 a block with BFINAL set",
            vec![(
                true,
                RSV1,
                OP_TEXT,
                vec![0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
            )],
            vec![hello()],
        ),
        (
            "7.2.3.5 two blocks in one message",
            vec![(
                true,
                RSV1,
                OP_TEXT,
                vec![
                    0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
                ],
            )],
            vec![hello()],
        ),
        (
            "7.2.3.6 an empty last fragment",
            vec![
                (
                    false,
                    RSV1,
                    OP_TEXT,
                    vec![
                        0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x00, 0xff, 0xff,
                    ],
                ),
                (true, 0, OP_CONT, vec![0x00]),
            ],
            vec![hello()],
        ),
        (
            "an empty message",
            vec![(true, RSV1, OP_BINARY, vec![0x00])],
            vec![Message::binary(&b""[..])],
        ),
        (
            "7.2.3.4 split after the final block, then 7.2.3.1",
            vec![
                (
                    false,
                    RSV1,
                    OP_TEXT,
                    vec![0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
                ),
                (true, 0, OP_CONT, vec![0x00]),
                (true, RSV1, OP_TEXT, HELLO.to_vec()),
            ],
            vec![hello(), hello()],
        ),
    ];
    for (section, frames, expected) in cases {
        for role in ROLES {
            let mut wire = Vec::new();
            for (fin, rsv, opcode, payload) in &frames {
                wire.extend(frame(role == Role::Server, *fin, *rsv, *opcode, payload));
            }
            for sizes in [&[usize::MAX][..], &[1]] {
                let mut conn = deflating(role, DeflateParams::default());
                let mut out = BytesMut::new();
                let got = receive_chunked(&mut conn, &wire, sizes, &mut out);
                assert_eq!(got, Ok(expected.clone()), "{section}, {role:?}");
                assert!(out.is_empty());
                assert_eq!(conn.state(), ConnectionState::Open);
            }
        }
    }
}

/// RFC 7692 section 7.2.1: "The next DEFLATE block follows the padded data if any", so
/// a final block ends a deflate stream but not the message; what follows is a new stream.
#[test]
fn blocks_after_a_final_block_belong_to_the_same_message() {
    let final_hello = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    for role in ROLES {
        let mut payload = final_hello.to_vec();
        payload.extend(compress(b", World"));
        let mut wire = compressed_to(role, true, OP_TEXT, &payload);
        // The stream after the final block stays in use for the next message.
        let mut d = Deflater::new(6, 15);
        let mut second = final_hello.to_vec();
        second.extend(d.message(b", World"));
        wire.extend(compressed_to(role, true, OP_TEXT, &second));
        wire.extend(compressed_to(role, true, OP_TEXT, &d.message(b", World")));
        let mut conn = deflating(role, DeflateParams::default());
        assert_eq!(
            receive_all(
                &mut conn,
                &mut BytesMut::from(&wire[..]),
                &mut BytesMut::new()
            ),
            Ok(vec![
                Message::text("Hello, World"),
                Message::text("Hello, World"),
                Message::text(", World"),
            ])
        );
    }
}

#[test]
fn compressed_frames_from_a_reference_peer_decode_in_both_roles() {
    let contents = [
        Vec::new(),
        b"x".to_vec(),
        words(100, 1),
        words(70_000, 2),
        noise(200_000, 3),
        vec![0u8; 300_000],
    ];
    for role in ROLES {
        for content in &contents {
            let mut messages = vec![(OP_BINARY, Message::binary(content.clone()))];
            if let Ok(text) = String::from_utf8(content.clone()) {
                messages.push((OP_TEXT, Message::text(text)));
            }
            for (opcode, expected) in messages {
                for level in [0, 1, 6, 9] {
                    let payload = Deflater::new(level, 15).message(content);
                    let wire = compressed_to(role, true, opcode, &payload);
                    let mut input = BytesMut::from(&wire[..]);
                    let mut out = BytesMut::new();
                    let mut conn = deflating(role, DeflateParams::default());
                    assert_eq!(
                        conn.receive(&mut input, &mut out),
                        Ok(Some(expected.clone()))
                    );
                    assert!(input.is_empty() && out.is_empty());
                }
            }
        }
    }
}

#[test]
fn send_compresses_from_the_threshold_on_and_marks_only_that_frame_with_rsv1() {
    for role in ROLES {
        let (mut client, mut server) = pair(
            DeflateParams::default(),
            &with_threshold(32),
            Limits::default(),
        );
        let (sender, receiver) = ends(role, &mut client, &mut server);
        let msgs = [
            Message::text("a".repeat(31)),
            Message::text("a".repeat(32)),
            Message::binary(vec![7u8; 31]),
            Message::binary(vec![7u8; 32]),
            Message::text(String::from_utf8(words(5000, 4)).unwrap()),
        ];
        let (frames, got) = transfer(sender, receiver, &msgs);
        assert_eq!(got, msgs);
        let rsv: Vec<u8> = frames.iter().map(|f| f.rsv).collect();
        assert_eq!(rsv, [0, RSV1, 0, RSV1, RSV1]);
        let mut inflater = Inflater::new();
        for (f, m) in frames.iter().zip(&msgs) {
            assert!(f.fin);
            let expected_opcode = if matches!(m, Message::Text(_)) {
                OP_TEXT
            } else {
                OP_BINARY
            };
            assert_eq!(f.opcode, expected_opcode);
            let payload = match m {
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Binary(b) => b.to_vec(),
                _ => unreachable!(),
            };
            if f.rsv == RSV1 {
                assert_eq!(inflater.message(&f.payload).unwrap(), payload);
            } else {
                assert_eq!(f.payload, payload);
            }
        }
    }
}

#[test]
fn a_zero_threshold_compresses_even_an_empty_message_to_a_single_zero_byte() {
    for params in [DeflateParams::default(), p(true, true, 15, 15)] {
        for role in ROLES {
            let (mut client, mut server) = pair(params, &with_threshold(0), Limits::default());
            let (sender, receiver) = ends(role, &mut client, &mut server);
            let msgs = [
                Message::text(""),
                Message::binary(&b""[..]),
                Message::text("Hello"),
                Message::text(""),
                Message::text("Hello"),
            ];
            let (frames, got) = transfer(sender, receiver, &msgs);
            assert_eq!(got, msgs);
            let mut puff = Puff::default();
            for (f, m) in frames.iter().zip(&msgs) {
                if params.server_no_context_takeover && f.payload.len() >= m.len() {
                    // Without context takeover a message that does not shrink goes
                    // plain: the empty ones here.
                    assert_eq!((f.rsv, &f.payload[..]), (0, m_bytes(m)), "{params:?}");
                    continue;
                }
                assert_eq!(f.rsv, RSV1);
                if m.is_empty() {
                    // RFC 7692 section 7.2.3.6: an empty block's header, tail stripped.
                    assert_eq!(f.payload, [0x00], "{params:?}");
                }
                if params.server_no_context_takeover {
                    puff = Puff::default();
                }
                assert_eq!(puff.message(&f.payload).unwrap().len(), m.len());
            }
        }
    }
}

#[test]
fn send_uncompressed_and_control_frames_never_set_rsv1() {
    for role in ROLES {
        let (mut client, mut server) = pair(
            DeflateParams::default(),
            &with_threshold(0),
            Limits::default(),
        );
        let (sender, receiver) = ends(role, &mut client, &mut server);
        let big = words(10_000, 5);
        let mut wire = BytesMut::new();
        sender
            .send_uncompressed(
                &Message::text(String::from_utf8(big.clone()).unwrap()),
                &mut wire,
            )
            .unwrap();
        sender
            .send_uncompressed(&Message::binary(big.clone()), &mut wire)
            .unwrap();
        sender.send(&Message::Ping("p".into()), &mut wire).unwrap();
        sender.send(&Message::Pong("q".into()), &mut wire).unwrap();
        sender
            .send_frame(OpCode::Binary, &big[..100], false, &mut wire)
            .unwrap();
        sender
            .send_frame(OpCode::Continuation, &big[100..], true, &mut wire)
            .unwrap();
        let frames = frames_from(role, &wire);
        assert!(frames.iter().all(|f| f.rsv == 0), "{frames:?}");
        assert_eq!(frames[0].payload, big);
        assert_eq!(frames[1].payload, big);
        assert_eq!(
            sender.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );

        let mut out = BytesMut::new();
        let got = receive_all(receiver, &mut wire, &mut out).unwrap();
        assert_eq!(
            got,
            [
                Message::text(String::from_utf8(big.clone()).unwrap()),
                Message::binary(big.clone()),
                Message::Ping("p".into()),
                Message::Pong("q".into()),
                Message::binary(big.clone()),
            ]
        );
        assert_eq!(
            receiver.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );
        // The close goes out uncompressed too.
        let mut wire = BytesMut::new();
        sender.send(&Message::Close(None), &mut wire).unwrap();
        assert_eq!(frames_from(role, &wire)[0].rsv, 0);
    }
}

#[test]
fn a_compressed_message_may_be_fragmented_with_rsv1_on_the_first_frame_only() {
    let text = "fragmented and compressed: ünïcödé ✓, fragmented and compressed: ünïcödé ✓";
    let payload = compress(text.as_bytes());
    for role in ROLES {
        let masked = role == Role::Server;
        for i in 0..=payload.len() {
            for j in i..=payload.len() {
                let mut wire = frame(masked, false, RSV1, OP_TEXT, &payload[..i]);
                wire.extend(frame(masked, false, 0, OP_CONT, &payload[i..j]));
                wire.extend(frame(masked, true, 0, OP_PING, b"p"));
                wire.extend(frame(masked, true, 0, OP_CONT, &payload[j..]));
                let mut conn = deflating(role, DeflateParams::default());
                let mut out = BytesMut::new();
                let got = receive_all(&mut conn, &mut BytesMut::from(&wire[..]), &mut out);
                assert_eq!(
                    got,
                    Ok(vec![Message::Ping("p".into()), Message::text(text)]),
                    "{role:?} split at {i}, {j}"
                );
            }
        }
        // A large binary message in many fragments, fed a byte at a time and in chunks.
        let content = noise(50_000, 6);
        let payload = compress(&content);
        let mut wire = Vec::new();
        let pieces: Vec<&[u8]> = payload.chunks(5000).collect();
        for (k, piece) in pieces.iter().enumerate() {
            let (rsv, opcode) = if k == 0 {
                (RSV1, OP_BINARY)
            } else {
                (0, OP_CONT)
            };
            wire.extend(frame(masked, k + 1 == pieces.len(), rsv, opcode, piece));
        }
        for sizes in [&[1][..], &[777, 3, 4096]] {
            let mut conn = deflating(role, DeflateParams::default());
            let mut out = BytesMut::new();
            assert_eq!(
                receive_chunked(&mut conn, &wire, sizes, &mut out),
                Ok(vec![Message::binary(content.clone())])
            );
        }
    }
}

#[test]
fn rsv1_on_a_continuation_frame_is_1002() {
    for role in ROLES {
        let masked = role == Role::Server;
        let payload = compress(b"Hello, fragments");
        for (first_rsv, opcode) in [
            (RSV1, OP_TEXT),
            (RSV1, OP_BINARY),
            (0, OP_TEXT),
            (0, OP_BINARY),
        ] {
            let first: &[u8] = if first_rsv == RSV1 {
                &payload[..4]
            } else {
                b"plain"
            };
            let mut wire = frame(masked, false, first_rsv, opcode, first);
            wire.extend(frame(masked, true, RSV1, OP_CONT, &payload[4..]));
            let before = assert_rejected_by(
                deflating(role, DeflateParams::default()),
                &wire,
                Violation::ReservedBits,
                1002,
            );
            assert!(before.is_empty());
        }
    }
}

#[test]
fn rsv1_on_a_control_frame_is_1002_even_with_deflate() {
    for role in ROLES {
        let masked = role == Role::Server;
        for (opcode, payload) in [
            (OP_PING, &b"p"[..]),
            (OP_PONG, &b""[..]),
            (OP_CLOSE, &close_payload(1000, b"bye")[..]),
            (OP_PING, &HELLO[..]),
        ] {
            let wire = frame(masked, true, RSV1, opcode, payload);
            assert_rejected_by(
                deflating(role, DeflateParams::default()),
                &wire,
                Violation::ReservedBits,
                1002,
            );
            // Also in the middle of a compressed fragmented message.
            let mut wire = frame(masked, false, RSV1, OP_TEXT, &HELLO[..3]);
            wire.extend(frame(masked, true, RSV1, opcode, payload));
            assert_rejected_by(
                deflating(role, DeflateParams::default()),
                &wire,
                Violation::ReservedBits,
                1002,
            );
        }
    }
}

#[test]
fn rsv1_without_negotiated_deflate_is_1002() {
    for role in ROLES {
        for opcode in [OP_TEXT, OP_BINARY] {
            let wire = compressed_to(role, true, opcode, &HELLO);
            let before = assert_rejected(
                role,
                Limits::default(),
                &wire,
                Violation::ReservedBits,
                1002,
            );
            assert!(before.is_empty());
            let conn = Connection::new(role, Limits::default());
            assert!(!conn.is_compressing());
            assert_eq!(
                conn.deflate_state(),
                DeflateState {
                    compressor: false,
                    decompressor: false
                }
            );
        }
    }
}

#[test]
fn rsv2_and_rsv3_are_1002_even_with_deflate() {
    for role in ROLES {
        let masked = role == Role::Server;
        for rsv in [0b010, 0b001, 0b011, 0b110, 0b101, 0b111] {
            for (opcode, payload) in [
                (OP_TEXT, &HELLO[..]),
                (OP_BINARY, &HELLO[..]),
                (OP_PING, &b""[..]),
            ] {
                let wire = frame(masked, true, rsv, opcode, payload);
                assert_rejected_by(
                    deflating(role, DeflateParams::default()),
                    &wire,
                    Violation::ReservedBits,
                    1002,
                );
            }
            let mut wire = frame(masked, false, RSV1, OP_TEXT, &HELLO[..3]);
            wire.extend(frame(masked, true, rsv & 0b011, OP_CONT, &HELLO[3..]));
            assert_rejected_by(
                deflating(role, DeflateParams::default()),
                &wire,
                Violation::ReservedBits,
                1002,
            );
        }
    }
}
