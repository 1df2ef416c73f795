//! Random traffic in any chunking (property test).

use super::*;

const WORDS: &[&str] = &[
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "{\"id\":",
    "\"name\":",
    "ünïcödé",
    "✓",
    "🦀",
    "\n",
];

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        proptest::collection::vec(proptest::sample::select(WORDS), 0..600)
            .prop_map(|w| Message::text(w.join(" "))),
        proptest::collection::vec(any::<char>(), 0..1000)
            .prop_map(|c| Message::text(c.into_iter().collect::<String>())),
        proptest::collection::vec(any::<u8>(), 0..4096).prop_map(Message::binary),
        (any::<u8>(), 1usize..64, 0usize..4096).prop_map(|(seed, period, len)| {
            Message::binary(
                (0..len)
                    .map(|i| seed.wrapping_add((i % period) as u8))
                    .collect::<Vec<u8>>(),
            )
        }),
    ]
}

/// A message to send: from the client or the server, and whether through
/// `send_uncompressed`.
fn traffic() -> impl Strategy<Value = Vec<(bool, Message, bool)>> {
    proptest::collection::vec(
        (any::<bool>(), message(), proptest::bool::weighted(0.25)),
        0..16,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_traffic_round_trips_in_any_chunking(
        snct in any::<bool>(),
        cnct in any::<bool>(),
        server_bits in 8u8..=15,
        client_bits in 8u8..=15,
        level in 0u32..=9,
        threshold in 0usize..100,
        traffic in traffic(),
        to_server_chunks in proptest::collection::vec(1usize..700, 1..12),
        to_client_chunks in proptest::collection::vec(1usize..700, 1..12),
    ) {
        let params = p(snct, cnct, server_bits, client_bits);
        let config = DeflateConfig::default().level(level).threshold(threshold);
        let (mut client, mut server) = pair(params, &config, Limits::default());
        let (mut to_server, mut to_client) = (BytesMut::new(), BytesMut::new());
        let (mut for_server, mut for_client) = (Vec::new(), Vec::new());
        let (mut rsv_to_server, mut rsv_to_client) = (Vec::new(), Vec::new());
        for (from_client, msg, plain) in &traffic {
            let (sender, wire, expected, rsv) = if *from_client {
                (&mut client, &mut to_server, &mut for_server, &mut rsv_to_server)
            } else {
                (&mut server, &mut to_client, &mut for_client, &mut rsv_to_client)
            };
            if *plain {
                sender.send_uncompressed(msg, wire).unwrap();
            } else {
                sender.send(msg, wire).unwrap();
            }
            expected.push(msg.clone());
            // A sender without context takeover sends plain bytes when compressing did
            // not pay, so either flag is right for its compressible-size messages.
            let sender_resets = if *from_client { cnct } else { snct };
            rsv.push(if *plain || msg.len() < threshold {
                Some(0)
            } else if sender_resets {
                None
            } else {
                Some(RSV1)
            });
        }
        let agrees = |got: &[u8], want: &[Option<u8>]| {
            got.len() == want.len() && got.iter().zip(want).all(|(g, w)| w.is_none_or(|w| w == *g))
        };
        let frames: Vec<u8> = frames_from(Role::Client, &to_server).iter().map(|f| f.rsv).collect();
        prop_assert!(agrees(&frames, &rsv_to_server), "{:?} vs {:?}", frames, rsv_to_server);
        let frames: Vec<u8> = frames_from(Role::Server, &to_client).iter().map(|f| f.rsv).collect();
        prop_assert!(agrees(&frames, &rsv_to_client), "{:?} vs {:?}", frames, rsv_to_client);

        let mut out = BytesMut::new();
        let got = receive_chunked(&mut server, &to_server, &to_server_chunks, &mut out);
        prop_assert_eq!(got, Ok(for_server));
        let got = receive_chunked(&mut client, &to_client, &to_client_chunks, &mut out);
        prop_assert_eq!(got, Ok(for_client));
        prop_assert!(out.is_empty());

        // zlib state is held exactly where context is taken over and was used.
        let client_compressed = rsv_to_server.contains(&Some(RSV1));
        let server_compressed = rsv_to_client.contains(&Some(RSV1));
        prop_assert_eq!(
            client.deflate_state(),
            DeflateState {
                compressor: client_compressed && !cnct,
                decompressor: server_compressed && !snct,
            }
        );
        prop_assert_eq!(
            server.deflate_state(),
            DeflateState {
                compressor: server_compressed && !snct,
                decompressor: client_compressed && !cnct,
            }
        );
    }
}

#[test]
fn without_context_takeover_a_message_that_does_not_shrink_goes_plain() {
    for role in ROLES {
        let (mut client, mut server) =
            pair(p(true, true, 15, 15), &with_threshold(0), Limits::default());
        let (sender, receiver) = ends(role, &mut client, &mut server);
        let msgs = [
            Message::text("ab"),
            Message::text("hello hello hello hello hello hello hello"),
        ];
        let (frames, got) = transfer(sender, receiver, &msgs);
        assert_eq!(got, msgs);
        assert_eq!((frames[0].rsv, &frames[0].payload[..]), (0, &b"ab"[..]));
        assert_eq!(frames[1].rsv, RSV1);
        assert!(frames[1].payload.len() < msgs[1].len());
    }
}
