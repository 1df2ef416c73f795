//! Shared frames: compressed once per setting, plain when it does not pay.

use super::*;

/// Sends `msgs` from `server`, each either normally or, where `shared` has a frame, as that
/// shared frame; returns what `client` decodes.
fn send_mixed(
    server: &mut Connection,
    client: &mut Connection,
    steps: &[(Message, Option<&duplex_proto::frame::SharedFrame>)],
) -> (Vec<WireFrame>, Vec<Message>) {
    let mut wire = BytesMut::new();
    for (m, shared) in steps {
        match shared {
            Some(f) => wire.extend_from_slice(&server.send_shared(f).unwrap()),
            None => server.send(m, &mut wire).unwrap(),
        }
    }
    let frames = frames_from(Role::Server, &wire);
    let mut out = BytesMut::new();
    let got = receive_all(client, &mut wire, &mut out).unwrap();
    assert!(wire.is_empty(), "every frame consumed");
    (frames, got)
}

#[test]
fn a_shared_frame_is_compressed_once_per_setting_and_decodes_amid_context_takeover() {
    use duplex_proto::frame::SharedFrame;
    let text = String::from_utf8(words(4000, 7)).unwrap();
    let shared = SharedFrame::new(&Message::text(text.clone())).unwrap();
    // Three connections: two with the default setting (context takeover, 15 bits), one
    // with a 10-bit window and no context takeover.
    let mut a = pair(
        p(false, false, 15, 15),
        &DeflateConfig::default(),
        Limits::default(),
    );
    let mut b = pair(
        p(false, false, 15, 15),
        &DeflateConfig::default(),
        Limits::default(),
    );
    let mut c = pair(
        p(true, true, 10, 15),
        &cfg(true, true, 10, 15),
        Limits::default(),
    );
    let before = Message::text(format!("{text} before"));
    let after = Message::text(format!("{text} after"));
    let mut encodings = Vec::new();
    for (client, server) in [
        (&mut a.0, &mut a.1),
        (&mut b.0, &mut b.1),
        (&mut c.0, &mut c.1),
    ] {
        // A message before builds up the compressor's history; the one after must not
        // refer back into history the peer's window no longer lines up with.
        let steps = [
            (before.clone(), None),
            (Message::text(text.clone()), Some(&shared)),
            (after.clone(), None),
            (after.clone(), None),
        ];
        let (frames, got) = send_mixed(server, client, &steps);
        assert_eq!(
            got,
            steps.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
            "the client decodes every message, shared or not"
        );
        assert!(
            frames.iter().all(|f| f.rsv == RSV1),
            "all four are compressed"
        );
        assert!(
            frames[1].payload.len() < text.len() / 2,
            "the shared frame is compressed ({} bytes)",
            frames[1].payload.len()
        );
        encodings.push(server.send_shared(&shared).unwrap());
    }
    assert_eq!(
        encodings[0].as_ptr(),
        encodings[1].as_ptr(),
        "connections with one setting queue the same bytes"
    );
    assert_ne!(
        encodings[0], encodings[2],
        "another window, another encoding"
    );
    assert_eq!(
        inflate(&frames_from(Role::Server, &encodings[2])[0].payload),
        text.as_bytes()
    );
}

#[test]
fn a_shared_frame_goes_plain_below_the_threshold_without_deflate_and_when_it_does_not_shrink() {
    use duplex_proto::frame::SharedFrame;
    let (mut client, mut server) = pair(
        p(false, false, 15, 15),
        &with_threshold(64),
        Limits::default(),
    );
    let small = SharedFrame::new(&Message::text("tick")).unwrap();
    assert_eq!(server.send_shared(&small).unwrap(), small.bytes());
    let random = SharedFrame::new(&Message::binary(noise(4096, 3))).unwrap();
    assert_eq!(
        server.send_shared(&random).unwrap(),
        random.bytes(),
        "noise does not shrink"
    );
    let ping = SharedFrame::new(&Message::Ping(vec![7u8; 100].into())).unwrap();
    assert_eq!(
        server.send_shared(&ping).unwrap(),
        ping.bytes(),
        "control frames stay plain"
    );
    let mut wire = BytesMut::new();
    for f in [&small, &random, &ping] {
        wire.extend_from_slice(f.bytes());
    }
    let mut out = BytesMut::new();
    let got = receive_all(&mut client, &mut wire, &mut out).unwrap();
    assert_eq!(got.len(), 3);
    let mut plain = Connection::new(Role::Server, Limits::default());
    let big = SharedFrame::new(&Message::text("x".repeat(1000))).unwrap();
    assert_eq!(
        plain.send_shared(&big).unwrap(),
        big.bytes(),
        "no deflate, no compression"
    );
    assert!(matches!(
        Connection::new(Role::Client, Limits::default()).send_shared(&big),
        Err(Error::InvalidSend(
            duplex_proto::InvalidSend::SharedFromClient
        ))
    ));
}

/// Found by the inflate_limits fuzz target: with a window below 15 bits, flate2's zlib-rs
/// backend resets an inflater by allocating a new one (about 47 KiB), and a final block
/// inside a message resets it, so a peer could make us allocate and initialise zlib
/// state for every 2 bytes it sent ("03 00", an empty final block).
#[test]
fn final_blocks_inside_a_message_allocate_no_zlib_state() {
    for role in ROLES {
        // The peer's window is 9 bits, and it keeps its context.
        let mut conn = deflating(role, p(false, false, 9, 9));
        let mut out = BytesMut::new();
        let mut first = BytesMut::from(&compressed_to(role, true, OP_TEXT, &HELLO)[..]);
        assert_eq!(
            conn.receive(&mut first, &mut out),
            Ok(Some(Message::text("Hello")))
        );
        let blocks = [0x03, 0x00].repeat(2000);
        let mut wire = BytesMut::from(&compressed_to(role, true, OP_TEXT, &blocks)[..]);
        let (got, allocated) = allocated_by(|| conn.receive(&mut wire, &mut out));
        assert_eq!(got, Ok(Some(Message::text(""))), "{role:?}");
        assert!(
            allocated < 64 << 10,
            "{role:?}: 2000 empty final blocks allocated {allocated} bytes"
        );
    }
}
