//! Property tests: whatever one role encodes, the other decodes to the same sequence of
//! messages however the bytes are cut into reads (all at once, one byte at a time, or
//! random chunk sizes), in both directions.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use duplex_proto::{
    CloseFrame, Connection, ConnectionState, Error, Limits, Message, OpCode, Role, Violation,
};
use proptest::prelude::*;
use proptest::sample::Index;

/// One unit the sender produces.
#[derive(Clone, Debug)]
enum Item {
    /// Sent with `Connection::send`.
    Whole(Message),
    /// Sent with `send_frame`, cut at `cuts`, with an optional control frame after each
    /// fragment but the last.
    Fragmented {
        text: bool,
        data: Vec<u8>,
        cuts: Vec<Index>,
        controls: Vec<Option<Message>>,
    },
}

/// How the receiver's reads are sized.
#[derive(Clone, Debug)]
enum Chunking {
    Whole,
    OneByte,
    Sizes(Vec<usize>),
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0usize..64, 3 => 64usize..1024, 1 => 1024usize..4096]
}

fn binary() -> impl Strategy<Value = Vec<u8>> {
    size().prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n))
}

fn text() -> impl Strategy<Value = String> {
    // Characters of every width, so fragment cuts land inside code points.
    let ch = prop_oneof![
        3 => proptest::char::range('a', 'z'),
        1 => proptest::char::range('\u{80}', '\u{7ff}'),
        1 => proptest::char::range('\u{800}', '\u{ffff}'),
        1 => proptest::char::range('\u{10000}', '\u{10ffff}'),
    ];
    (size().prop_map(|n| n / 2))
        .prop_flat_map(move |n| proptest::collection::vec(ch.clone(), n))
        .prop_map(|chars| chars.into_iter().collect())
}

fn control() -> impl Strategy<Value = Message> {
    let payload = proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Bytes::from);
    prop_oneof![
        payload.clone().prop_map(Message::Ping),
        payload.prop_map(Message::Pong),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    let whole = prop_oneof![
        3 => text().prop_map(Message::text),
        3 => binary().prop_map(Message::binary),
        2 => control(),
    ]
    .prop_map(Item::Whole);
    let data = prop_oneof![
        text().prop_map(|t| (true, t.into_bytes())),
        binary().prop_map(|b| (false, b)),
    ];
    let fragmented = (
        data,
        proptest::collection::vec(any::<Index>(), 0..6),
        proptest::collection::vec(proptest::option::weighted(0.4, control()), 0..6),
    )
        .prop_map(|((text, data), cuts, controls)| Item::Fragmented {
            text,
            data,
            cuts,
            controls,
        });
    prop_oneof![1 => whole, 1 => fragmented]
}

fn close() -> impl Strategy<Value = Option<CloseFrame>> {
    let code = prop_oneof![(1000u16..=1003), (1007u16..=1014), (3000u16..=4999),];
    let reason = proptest::collection::vec(proptest::char::range('\u{20}', '\u{7ff}'), 0..40)
        .prop_map(|chars| {
            let mut s: String = chars.into_iter().collect();
            while s.len() > CloseFrame::MAX_REASON_LEN {
                s.pop();
            }
            s
        });
    proptest::option::of((code, reason).prop_map(|(c, r)| CloseFrame::new(c, r)))
}

fn chunking() -> impl Strategy<Value = Chunking> {
    prop_oneof![
        1 => Just(Chunking::Whole),
        1 => Just(Chunking::OneByte),
        4 => proptest::collection::vec(1usize..300, 1..20).prop_map(Chunking::Sizes),
    ]
}

/// Splits `data` at the sorted cut points.
fn pieces<'a>(data: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
    points.sort_unstable();
    let mut bounds = vec![0];
    bounds.extend(points);
    bounds.push(data.len());
    bounds.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

/// Encodes the items (and the optional close) as `role` and returns the wire bytes and
/// the messages the peer must decode, in order.
fn encode(
    role: Role,
    items: &[Item],
    close: &Option<Option<CloseFrame>>,
) -> (Vec<u8>, Vec<Message>) {
    let mut sender = Connection::new(role, Limits::default());
    let mut wire = BytesMut::new();
    let mut expected = Vec::new();
    for item in items {
        match item {
            Item::Whole(m) => {
                sender.send(m, &mut wire).unwrap();
                expected.push(m.clone());
            }
            Item::Fragmented {
                text,
                data,
                cuts,
                controls,
            } => {
                let parts = pieces(data, cuts);
                let last = parts.len() - 1;
                for (i, part) in parts.iter().enumerate() {
                    let op = match (i, text) {
                        (0, true) => OpCode::Text,
                        (0, false) => OpCode::Binary,
                        _ => OpCode::Continuation,
                    };
                    sender.send_frame(op, part, i == last, &mut wire).unwrap();
                    if i < last {
                        if let Some(Some(c)) = controls.get(i) {
                            sender.send(c, &mut wire).unwrap();
                            expected.push(c.clone());
                        }
                    }
                }
                expected.push(if *text {
                    Message::text(String::from_utf8(data.clone()).unwrap())
                } else {
                    Message::binary(data.clone())
                });
            }
        }
    }
    if let Some(frame) = close {
        sender.close(frame.as_ref(), &mut wire).unwrap();
        assert_eq!(sender.state(), ConnectionState::CloseSent);
        expected.push(Message::Close(frame.clone()));
    }
    // What goes on the wire is well formed and masked iff the sender is a client.
    frames_written_by(role, &wire);
    (wire.to_vec(), expected)
}

/// Decodes `wire` as `role` with the given chunking; returns the messages and the bytes
/// the receiver wrote back.
fn decode(role: Role, wire: &[u8], chunking: &Chunking) -> (Vec<Message>, BytesMut) {
    let mut receiver = Connection::new(role, Limits::default());
    let mut out = BytesMut::new();
    let sizes = match chunking {
        Chunking::Whole => vec![wire.len().max(1)],
        Chunking::OneByte => vec![1],
        Chunking::Sizes(s) => s.clone(),
    };
    let msgs = receive_chunked(&mut receiver, wire, &sizes, &mut out)
        .unwrap_or_else(|e| panic!("{role:?} failed on valid input with {chunking:?}: {e}"));
    (msgs, out)
}

/// The replies the receiver owes: a pong per ping, and the close echo.
fn check_replies(role: Role, expected: &[Message], out: &[u8]) {
    let frames = frames_written_by(role, out);
    let mut replies = frames.iter();
    for m in expected {
        match m {
            Message::Ping(p) => {
                let f = replies.next().expect("a pong for every ping");
                assert_eq!(f.opcode, OP_PONG);
                assert_eq!(&f.payload[..], &p[..]);
            }
            Message::Close(c) => {
                let f = replies.next().expect("a close echo");
                assert_eq!(f.opcode, OP_CLOSE);
                let code = c.as_ref().map(|c| c.code.as_u16().to_be_bytes().to_vec());
                assert_eq!(f.payload, code.unwrap_or_default());
            }
            _ => {}
        }
    }
    assert!(replies.next().is_none(), "no unexpected replies");
}

fn round_trip(
    sender: Role,
    items: &[Item],
    close: &Option<Option<CloseFrame>>,
    chunking: &Chunking,
) {
    let receiver = peer_of(sender);
    let (wire, expected) = encode(sender, items, close);
    for c in [chunking.clone(), Chunking::OneByte, Chunking::Whole] {
        let (got, out) = decode(receiver, &wire, &c);
        assert_eq!(got, expected, "chunking {c:?}");
        check_replies(receiver, &expected, &out);
    }
}

fn items() -> impl Strategy<Value = Vec<Item>> {
    proptest::collection::vec(item(), 0..12)
}

fn final_close() -> impl Strategy<Value = Option<Option<CloseFrame>>> {
    proptest::option::of(close())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn client_to_server_decodes_the_same_messages_under_any_chunking(
        items in items(), close in final_close(), chunking in chunking()
    ) {
        round_trip(Role::Client, &items, &close, &chunking);
    }

    #[test]
    fn server_to_client_decodes_the_same_messages_under_any_chunking(
        items in items(), close in final_close(), chunking in chunking()
    ) {
        round_trip(Role::Server, &items, &close, &chunking);
    }
}

// ---------------------------------------------------------------- UTF-8 under chunking

/// Text-like bytes: valid UTF-8 of every width with a few random bytes overwritten and
/// sometimes cut short, so both valid and invalid payloads are common.
fn texty_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<char>(), 0..48),
        proptest::collection::vec((any::<Index>(), any::<u8>()), 0..3),
        proptest::option::weighted(0.3, any::<Index>()),
    )
        .prop_map(|(chars, corrupt, cut)| {
            let mut bytes = chars.into_iter().collect::<String>().into_bytes();
            if !bytes.is_empty() {
                for (i, b) in corrupt {
                    let at = i.index(bytes.len());
                    bytes[at] = b;
                }
            }
            if let Some(c) = cut {
                bytes.truncate(c.index(bytes.len() + 1));
            }
            bytes
        })
}

/// The shortest prefix of `bytes` that is not the prefix of any valid UTF-8, if any.
fn first_invalid_prefix(bytes: &[u8]) -> Option<usize> {
    (1..=bytes.len())
        .find(|&p| matches!(std::str::from_utf8(&bytes[..p]), Err(e) if e.error_len().is_some()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// A text message in arbitrary fragments (with pings between them), fed one byte at a
    /// time, is accepted iff it is valid UTF-8, and invalid text fails with 1007 on exactly
    /// the byte that makes it invalid (or at the end of the message when it is cut short).
    #[test]
    fn text_fails_on_the_first_invalid_byte_under_any_fragmentation(
        bytes in texty_bytes(),
        cuts in proptest::collection::vec(any::<Index>(), 0..5),
        pings in proptest::collection::vec(any::<bool>(), 0..5),
        sender in prop_oneof![Just(Role::Client), Just(Role::Server)],
    ) {
        let receiver_role = peer_of(sender);
        // Build the wire by hand: `send_frame` only takes what we give it, so raw bytes
        // go out as they are.
        let parts = pieces(&bytes, &cuts);
        let last = parts.len() - 1;
        let mut wire = Vec::new();
        // Wire offset of every payload byte of the text message.
        let mut offsets = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let op = if i == 0 { OP_TEXT } else { OP_CONT };
            let f = frame_to(receiver_role, i == last, op, part);
            let start = wire.len() + f.len() - part.len();
            offsets.extend(start..start + part.len());
            wire.extend_from_slice(&f);
            if i < last && pings.get(i).copied().unwrap_or(false) {
                wire.extend_from_slice(&frame_to(receiver_role, true, OP_PING, b"p"));
            }
        }
        let valid = std::str::from_utf8(&bytes).is_ok();
        // The wire byte on which the error must be reported.
        let fail_at = match first_invalid_prefix(&bytes) {
            Some(p) => Some(offsets[p - 1]),
            None if !valid => Some(wire.len() - 1),
            None => None,
        };

        let mut conn = Connection::new(receiver_role, Limits::default());
        let (mut input, mut out) = (BytesMut::new(), BytesMut::new());
        let mut texts = Vec::new();
        let mut failed = None;
        'feed: for (at, b) in wire.iter().enumerate() {
            input.extend_from_slice(&[*b]);
            loop {
                match conn.receive(&mut input, &mut out) {
                    Ok(Some(Message::Ping(_))) => {}
                    Ok(Some(m)) => texts.push(m),
                    Ok(None) => break,
                    Err(e) => {
                        failed = Some((at, e));
                        break 'feed;
                    }
                }
            }
        }
        match fail_at {
            None => {
                prop_assert!(failed.is_none(), "valid text rejected: {failed:?}");
                prop_assert_eq!(
                    texts,
                    vec![Message::text(String::from_utf8(bytes.clone()).unwrap())]
                );
            }
            Some(expected_at) => {
                let (at, err) = failed.expect("invalid text accepted");
                prop_assert_eq!(err, Error::Protocol(Violation::InvalidUtf8));
                prop_assert_eq!(at, expected_at, "failed on the wrong byte");
                prop_assert!(texts.is_empty());
                assert_ends_with_close(receiver_role, &out, 1007);
                prop_assert_eq!(conn.state(), ConnectionState::Closed);
            }
        }
    }
}

// ---------------------------------------------------------------- arbitrary frames

/// A frame with random, often invalid, fields.
#[derive(Clone, Debug)]
struct RawFrame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    /// Whether to get the masking right for the receiver.
    right_mask: bool,
    payload: Vec<u8>,
}

fn raw_frame() -> impl Strategy<Value = RawFrame> {
    (
        proptest::bool::weighted(0.8),
        prop_oneof![9 => Just(0u8), 1 => 0u8..8],
        prop_oneof![
            6 => prop_oneof![Just(0u8), Just(1), Just(2), Just(8), Just(9), Just(10)],
            1 => 0u8..16,
        ],
        proptest::bool::weighted(0.95),
        prop_oneof![
            3 => texty_bytes(),
            1 => proptest::collection::vec(any::<u8>(), 0..200),
            1 => (prop_oneof![Just(1000u16), 0u16..5100], texty_bytes()).prop_map(|(c, r)| {
                close_payload(c, &r)
            }),
        ],
    )
        .prop_map(|(fin, rsv, opcode, right_mask, payload)| RawFrame {
            fin,
            rsv,
            opcode,
            right_mask,
            payload,
        })
}

/// Everything observable about decoding: messages, the error, and the replies (unmasked,
/// since client masks are random).
type Outcome = (
    Vec<Message>,
    Option<Error>,
    Vec<(u8, bool, Vec<u8>)>,
    ConnectionState,
);

fn outcome(role: Role, wire: &[u8], sizes: &[usize]) -> Outcome {
    let mut conn = Connection::new(role, Limits::default());
    let (mut input, mut out) = (BytesMut::new(), BytesMut::new());
    let mut msgs = Vec::new();
    let mut error = None;
    let mut pos = 0;
    let mut i = 0;
    'feed: while pos < wire.len() {
        let end = (pos + sizes[i % sizes.len()]).min(wire.len());
        input.extend_from_slice(&wire[pos..end]);
        pos = end;
        i += 1;
        loop {
            match conn.receive(&mut input, &mut out) {
                Ok(Some(m)) => msgs.push(m),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
        }
    }
    let replies = frames_written_by(role, &out)
        .into_iter()
        .map(|f| (f.opcode, f.fin, f.payload))
        .collect();
    (msgs, error, replies, conn.state())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Arbitrary (often invalid) frame sequences give the same messages, the same error
    /// and the same replies whether read whole, byte by byte or in random chunks, and a
    /// failure always leaves the connection closed with a close frame queued.
    #[test]
    fn arbitrary_frames_decode_the_same_under_any_chunking(
        frames in proptest::collection::vec(raw_frame(), 1..10),
        sizes in proptest::collection::vec(1usize..40, 1..10),
        role in prop_oneof![Just(Role::Client), Just(Role::Server)],
    ) {
        let mut wire = Vec::new();
        for f in &frames {
            let masked = (role == Role::Server) == f.right_mask;
            wire.extend_from_slice(&frame(masked, f.fin, f.rsv, f.opcode, &f.payload));
        }
        let whole = outcome(role, &wire, &[wire.len()]);
        let bytewise = outcome(role, &wire, &[1]);
        let chunked = outcome(role, &wire, &sizes);
        prop_assert_eq!(&whole, &bytewise);
        prop_assert_eq!(&whole, &chunked);
        if let Some(Error::Protocol(v)) = &whole.1 {
            prop_assert_eq!(whole.3, ConnectionState::Closed);
            let (op, fin, payload) = whole.2.last().expect("a close frame was queued");
            prop_assert_eq!((*op, *fin), (OP_CLOSE, true));
            prop_assert_eq!(&payload[..], &v.close_code().as_u16().to_be_bytes()[..]);
        } else {
            prop_assert!(whole.1.is_none(), "only protocol errors: {:?}", whole.1);
        }
    }
}
