//! The SOCKS5 client (`duplex`'s proxy support) against fuzzed proxy replies.
//!
//! Input: a flags byte (credentials or not; the target an IPv4 address, an IPv6 address
//! or a name the proxy resolves), chunk sizes, then the proxy's bytes, served in those
//! chunks and then end of file.
//!
//! Invariants: no panic, no hang; the outcome, the bytes read and the bytes written all
//! equal those of a model of RFC 1928 / RFC 1929 written here: the replies are read
//! exactly (not one tunnel byte more), a refusal carries the proxy's code (the method
//! 0xFF, the authentication status, the reply code), every other failure is
//! `ProxyFailed`, and no error message shows the password.
#![no_main]

use duplex::fuzzing::socks5_connect;
use duplex::{Error, Proxy};
use duplex_fuzz::stream::{run, Scripted};
use duplex_fuzz::Input;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
enum Outcome {
    Tunnel,
    Refused(u16),
    Failed,
}

/// What a client that follows the RFCs does with `reply`: the outcome, the bytes it
/// reads, the bytes it writes.
fn model(reply: &[u8], credentials: bool, request: &[u8]) -> (Outcome, usize, Vec<u8>) {
    let mut written = if credentials {
        vec![5, 2, 0, 2]
    } else {
        vec![5, 1, 0]
    };
    let mut pos = 0;
    // Reads exactly `n` bytes, or ends the exchange at end of file.
    macro_rules! read {
        ($n:expr) => {{
            let n = $n;
            if reply.len() - pos < n {
                return (Outcome::Failed, reply.len(), written);
            }
            pos += n;
            &reply[pos - n..pos]
        }};
    }
    let choice = read!(2);
    if choice[0] != 5 {
        return (Outcome::Failed, pos, written);
    }
    match (choice[1], credentials) {
        (0, _) => {}
        (2, true) => {
            written.extend_from_slice(b"\x01\x05alice\x06s3cret");
            let status = read!(2);
            if status[1] != 0 {
                return (Outcome::Refused(status[1].into()), pos, written);
            }
        }
        (0xFF, _) => return (Outcome::Refused(0xFF), pos, written),
        _ => return (Outcome::Failed, pos, written),
    }
    written.extend_from_slice(request);
    let head = read!(4);
    if head[0] != 5 {
        return (Outcome::Failed, pos, written);
    }
    if head[1] != 0 {
        return (Outcome::Refused(head[1].into()), pos, written);
    }
    let len = match head[3] {
        1 => 4,
        4 => 16,
        3 => usize::from(read!(1)[0]),
        _ => return (Outcome::Failed, pos, written),
    };
    let _ = read!(len + 2);
    (Outcome::Tunnel, pos, written)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = input.byte();
    let credentials = flags & 1 != 0;
    let (host, request): (&str, &[u8]) = match (flags >> 1) % 3 {
        0 => ("127.0.0.1", b"\x05\x01\x00\x01\x7f\x00\x00\x01\x23\x29"),
        1 => (
            "::1",
            b"\x05\x01\x00\x04\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\x23\x29",
        ),
        _ => ("example.com", b"\x05\x01\x00\x03\x0bexample.com\x23\x29"),
    };
    let chunks = input.chunk_sizes();
    let reply = input.rest();
    // socks5h: a name goes to the proxy, so nothing is resolved here.
    let proxy = Proxy::parse(if credentials {
        "socks5h://alice:s3cret@127.0.0.1:1080"
    } else {
        "socks5h://127.0.0.1:1080"
    })
    .unwrap();
    let mut stream = Scripted::new(reply, chunks);
    let got = run(socks5_connect(&mut stream, &proxy, host, 9001));

    let (outcome, read, written) = model(reply, credentials, request);
    let actual = match &got {
        Ok(()) => Outcome::Tunnel,
        Err(Error::ProxyRefused { code, .. }) => Outcome::Refused(*code),
        Err(Error::ProxyFailed { .. }) => Outcome::Failed,
        Err(e) => panic!("unexpected error {e:?}"),
    };
    assert_eq!(actual, outcome);
    assert_eq!(stream.served, read, "bytes read");
    assert_eq!(stream.written, written, "bytes written");
    if let Err(e) = got {
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
});
