//! Context takeover in each direction, lazy zlib state, and invalid compressed data.

use super::*;

#[test]
fn context_takeover_makes_a_repeated_message_small_and_the_receiver_follows() {
    let msg = r#"{"type":"chat","room":"lobby","user":"alice","text":"hello everyone, how are you today?"}"#;
    for role in ROLES {
        let (mut client, mut server) = pair(
            DeflateParams::default(),
            &DeflateConfig::default(),
            Limits::default(),
        );
        let (sender, receiver) = ends(role, &mut client, &mut server);
        let msgs = [
            Message::text(msg),
            Message::text(msg),
            Message::binary(msg.as_bytes().to_vec()),
        ];
        let (frames, got) = transfer(sender, receiver, &msgs[..2]);
        assert_eq!(got, msgs[..2]);
        let (first, second) = (frames[0].payload.len(), frames[1].payload.len());
        assert!(second * 5 < first, "second {second} vs first {first}");
        // Alone, the second payload does not inflate to the message: it refers back.
        assert_ne!(
            Inflater::new().message(&frames[1].payload),
            Ok(msg.as_bytes().to_vec())
        );
        assert_eq!(
            Puff::default().message(&frames[1].payload),
            Err("distance too far back".into())
        );
        // An uncompressed message in between leaves both windows alone.
        let mut wire = BytesMut::new();
        sender
            .send_uncompressed(&Message::text("x".repeat(500)), &mut wire)
            .unwrap();
        let mut out = BytesMut::new();
        assert_eq!(
            receive_all(receiver, &mut wire, &mut out),
            Ok(vec![Message::text("x".repeat(500))])
        );
        let (more, got) = transfer(sender, receiver, &msgs[2..]);
        assert_eq!(got, msgs[2..]);
        assert_eq!(more[0].payload.len(), second);

        let mut puff = Puff::default();
        let mut inflater = Inflater::new();
        for f in frames.iter().chain(&more) {
            assert_eq!(puff.message(&f.payload).unwrap(), msg.as_bytes());
            assert_eq!(inflater.message(&f.payload).unwrap(), msg.as_bytes());
        }
        assert_eq!(
            sender.deflate_state(),
            DeflateState {
                compressor: true,
                decompressor: false
            }
        );
        assert_eq!(
            receiver.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: true
            }
        );
    }
}

#[test]
fn without_context_takeover_each_message_stands_alone() {
    // Repetitive enough to shrink on its own: without context takeover a message that
    // does not shrink is sent plain.
    let msg = r#"{"type":"chat","room":"lobby","user":"alice","text":"hello hello hello hello hello hello hello everyone"}"#;
    let no_takeover = p(true, true, 15, 15);
    for role in ROLES {
        let (mut client, mut server) =
            pair(no_takeover, &DeflateConfig::default(), Limits::default());
        let (sender, receiver) = ends(role, &mut client, &mut server);
        let mut payloads = Vec::new();
        for _ in 0..3 {
            let (frames, got) = transfer(sender, receiver, &[Message::text(msg)]);
            assert_eq!(got, [Message::text(msg)]);
            assert_eq!(frames[0].rsv, RSV1);
            // Each inflates with a fresh window.
            assert_eq!(inflate(&frames[0].payload), msg.as_bytes());
            assert_eq!(
                Puff::default().message(&frames[0].payload).unwrap(),
                msg.as_bytes()
            );
            payloads.push(frames[0].payload.clone());
            assert_eq!(
                sender.deflate_state(),
                DeflateState {
                    compressor: false,
                    decompressor: false
                }
            );
            assert_eq!(
                receiver.deflate_state(),
                DeflateState {
                    compressor: false,
                    decompressor: false
                }
            );
        }
        assert_eq!(payloads[0], payloads[1]);
        assert_eq!(payloads[1], payloads[2]);
        let level = DeflateConfig::default().level;
        assert_eq!(
            payloads[0],
            Deflater::new(level, 15).message(msg.as_bytes())
        );
    }
}

#[test]
fn each_direction_follows_its_own_context_takeover_flag() {
    let msg = words(400, 7);
    for snct in [false, true] {
        for cnct in [false, true] {
            let params = p(snct, cnct, 15, 15);
            let (mut client, mut server) =
                pair(params, &DeflateConfig::default(), Limits::default());
            // Client to server, twice.
            let (frames, got) = transfer(
                &mut client,
                &mut server,
                &[Message::binary(msg.clone()), Message::binary(msg.clone())],
            );
            assert_eq!(got.len(), 2);
            assert_eq!(frames[0].payload == frames[1].payload, cnct, "{params:?}");
            assert_eq!(
                client.deflate_state(),
                DeflateState {
                    compressor: !cnct,
                    decompressor: false
                },
                "{params:?}"
            );
            assert_eq!(
                server.deflate_state(),
                DeflateState {
                    compressor: false,
                    decompressor: !cnct
                },
                "{params:?}"
            );
            // Server to client, twice.
            let (frames, got) = transfer(
                &mut server,
                &mut client,
                &[Message::binary(msg.clone()), Message::binary(msg.clone())],
            );
            assert_eq!(got.len(), 2);
            assert_eq!(frames[0].payload == frames[1].payload, snct, "{params:?}");
            assert_eq!(
                client.deflate_state(),
                DeflateState {
                    compressor: !cnct,
                    decompressor: !snct
                },
                "{params:?}"
            );
            assert_eq!(
                server.deflate_state(),
                DeflateState {
                    compressor: !snct,
                    decompressor: !cnct
                },
                "{params:?}"
            );
        }
    }
}

#[test]
fn a_receiver_that_resets_decodes_fresh_streams_and_rejects_back_references() {
    for role in ROLES {
        // The peer of `role` promised not to take over context.
        let params = match role {
            Role::Client => p(true, false, 15, 15),
            Role::Server => p(false, true, 15, 15),
        };
        let mut conn = deflating(role, params);
        let mut out = BytesMut::new();
        for k in 0..3 {
            let content = words(300 + k, 8);
            let wire = compressed_to(role, true, OP_BINARY, &compress(&content));
            assert_eq!(
                conn.receive(&mut BytesMut::from(&wire[..]), &mut out),
                Ok(Some(Message::binary(content)))
            );
            assert_eq!(
                conn.deflate_state(),
                DeflateState {
                    compressor: false,
                    decompressor: false
                }
            );
        }
        // While a compressed message is in progress the decompressor exists.
        let payload = compress(&words(3000, 9));
        let first = compressed_to(role, false, OP_BINARY, &payload[..100]);
        assert_eq!(
            conn.receive(&mut BytesMut::from(&first[..]), &mut out),
            Ok(None)
        );
        assert_eq!(
            conn.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: true
            }
        );
        let last = frame(role == Role::Server, true, 0, OP_CONT, &payload[100..]);
        assert_eq!(
            conn.receive(&mut BytesMut::from(&last[..]), &mut out),
            Ok(Some(Message::binary(words(3000, 9))))
        );
        assert_eq!(
            conn.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );

        // The RFC's second "Hello" refers into the first: a reset window cannot follow.
        let mut wire = compressed_to(role, true, OP_TEXT, &HELLO);
        wire.extend(compressed_to(role, true, OP_TEXT, &HELLO_AGAIN));
        let before = assert_rejected_by(
            deflating(role, params),
            &wire,
            Violation::InvalidCompressedData,
            1007,
        );
        assert_eq!(before, [Message::text("Hello")]);
    }
}

#[test]
fn lazy_state_appears_on_first_use_only() {
    for role in ROLES {
        let (mut client, mut server) = pair(
            DeflateParams::default(),
            &with_threshold(32),
            Limits::default(),
        );
        assert!(client.is_compressing() && server.is_compressing());
        let (sender, receiver) = ends(role, &mut client, &mut server);
        assert_eq!(
            sender.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );
        assert_eq!(
            receiver.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );
        // Small, uncompressed and control traffic allocates nothing.
        transfer(
            sender,
            receiver,
            &[Message::text("short"), Message::binary(vec![1; 31])],
        );
        let mut wire = BytesMut::new();
        sender.send(&Message::Ping("p".into()), &mut wire).unwrap();
        sender
            .send_uncompressed(&Message::binary(vec![0; 1000]), &mut wire)
            .unwrap();
        receive_all(receiver, &mut wire, &mut BytesMut::new()).unwrap();
        assert_eq!(
            sender.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );
        assert_eq!(
            receiver.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );
        // The first compressed message creates the sender's compressor and the
        // receiver's decompressor.
        transfer(sender, receiver, &[Message::binary(vec![0; 1000])]);
        assert_eq!(
            sender.deflate_state(),
            DeflateState {
                compressor: true,
                decompressor: false
            }
        );
        assert_eq!(
            receiver.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: true
            }
        );
        transfer(receiver, sender, &[Message::binary(vec![0; 1000])]);
        assert_eq!(
            sender.deflate_state(),
            DeflateState {
                compressor: true,
                decompressor: true
            }
        );
        assert_eq!(
            receiver.deflate_state(),
            DeflateState {
                compressor: true,
                decompressor: true
            }
        );
    }
}

#[test]
fn invalid_compressed_data_is_1007() {
    let bad: [&[u8]; 5] = [
        // BTYPE 11 is reserved
        &[0xff, 0xff, 0xff, 0xff],
        &[0x07],
        // stored block whose NLEN is not the complement of LEN
        &[0x00, 0x05, 0x00, 0x00, 0x00, b'H', b'e', b'l', b'l', b'o'],
        // a back-reference with nothing behind it
        &HELLO_AGAIN,
        // garbage after a final block
        &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xff],
    ];
    for role in ROLES {
        let masked = role == Role::Server;
        for payload in bad {
            for opcode in [OP_TEXT, OP_BINARY] {
                let wire = compressed_to(role, true, opcode, payload);
                let before = assert_rejected_by(
                    deflating(role, DeflateParams::default()),
                    &wire,
                    Violation::InvalidCompressedData,
                    1007,
                );
                assert!(before.is_empty());
                // The same in a continuation after a good start.
                let mut wire = frame(masked, false, RSV1, opcode, &[0x00, 0x00, 0x00, 0xff, 0xff]);
                wire.extend(frame(masked, true, 0, OP_CONT, payload));
                assert_rejected_by(
                    deflating(role, DeflateParams::default()),
                    &wire,
                    Violation::InvalidCompressedData,
                    1007,
                );
            }
        }
    }
}

#[test]
fn invalid_utf8_inside_compressed_text_is_1007() {
    for role in ROLES {
        let masked = role == Role::Server;
        for content in [
            &[0xff][..],
            b"Hello \xc3",
            b"\xed\xa0\x80",
            b"valid for a while, then \xc0\xaf",
        ] {
            let wire = compressed_to(role, true, OP_TEXT, &compress(content));
            assert_rejected_by(
                deflating(role, DeflateParams::default()),
                &wire,
                Violation::InvalidUtf8,
                1007,
            );
            // As binary the same bytes are fine.
            let wire = compressed_to(role, true, OP_BINARY, &compress(content));
            let mut conn = deflating(role, DeflateParams::default());
            assert_eq!(
                conn.receive(&mut BytesMut::from(&wire[..]), &mut BytesMut::new()),
                Ok(Some(Message::binary(content.to_vec())))
            );
        }
        // Invalid UTF-8 in the second fragment.
        let mut d = Deflater::new(6, 15);
        let mut wire = frame(
            masked,
            false,
            RSV1,
            OP_TEXT,
            &d.feed(b"fine so far", FlushCompress::Sync),
        );
        wire.extend(frame(masked, true, 0, OP_CONT, &d.message(b"\xff")));
        let before = assert_rejected_by(
            deflating(role, DeflateParams::default()),
            &wire,
            Violation::InvalidUtf8,
            1007,
        );
        assert!(before.is_empty());
        // A character split between the output of two fragments is fine.
        let mut d = Deflater::new(6, 15);
        let mut wire = frame(
            masked,
            false,
            RSV1,
            OP_TEXT,
            &d.feed(b"caf\xc3", FlushCompress::Sync),
        );
        wire.extend(frame(masked, true, 0, OP_CONT, &d.message(b"\xa9")));
        let mut conn = deflating(role, DeflateParams::default());
        assert_eq!(
            conn.receive(&mut BytesMut::from(&wire[..]), &mut BytesMut::new()),
            Ok(Some(Message::text("café")))
        );
    }
}
