//! The HTTP CONNECT client (`duplex`'s proxy support) against a fuzzed proxy reply.
//!
//! Input: a flags byte (credentials or not), chunk sizes, then the proxy's bytes, served
//! in those chunks and then end of file.
//!
//! Invariants: no panic, no hang; the request written is exactly the CONNECT request
//! (with `Proxy-Authorization` iff there are credentials); the outcome agrees with a
//! reading of the reply written here: success only for a 2xx after any 1xx interim
//! responses, with the bytes returned exactly those read past that head; a refusal
//! carries the final status, which is not 2xx; any other failure is `ProxyFailed`; no
//! head is read past the 16 KiB bound.
#![no_main]

use duplex::fuzzing::{http_connect, MAX_CONNECT_RESPONSE};
use duplex::{Error, Proxy};
use duplex_fuzz::stream::{run, Scripted};
use duplex_fuzz::Input;
use libfuzzer_sys::fuzz_target;

const REQUEST: &str = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n";
/// base64 of "alice:s3cret", computed apart from the code under test.
const AUTH: &str = "Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n";

/// The final response head in `reply` after any interim ones: (status, where the heads
/// end, bytes of interim heads), or `None` if the reply holds no complete final head.
fn final_head(reply: &[u8]) -> Option<(u16, usize, usize)> {
    let mut pos = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&reply[pos..]) {
            Ok(httparse::Status::Complete(len)) => {
                let code = response.code.unwrap_or(0);
                if (100..200).contains(&code) {
                    pos += len;
                    continue;
                }
                return Some((code, pos + len, pos));
            }
            _ => return None,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let credentials = input.byte() & 1 != 0;
    let chunks = input.chunk_sizes();
    let reply = input.rest();
    let proxy = Proxy::parse(if credentials {
        "http://alice:s3cret@127.0.0.1:3128"
    } else {
        "http://127.0.0.1:3128"
    })
    .unwrap();
    let mut stream = Scripted::new(reply, chunks);
    let got = run(http_connect(&mut stream, &proxy, "example.com", 443));

    let request = format!("{REQUEST}{}\r\n", if credentials { AUTH } else { "" });
    assert_eq!(std::str::from_utf8(&stream.written), Ok(request.as_str()));
    let served = &reply[..stream.served];
    let head = final_head(served);
    match got {
        Ok(leftover) => {
            let (status, end, interim) = head.expect("success without a final head");
            assert!((200..300).contains(&status), "success on {status}");
            assert_eq!(&leftover[..], &served[end..], "the bytes past the head");
            assert!(stream.served - interim <= MAX_CONNECT_RESPONSE);
        }
        Err(Error::ProxyRefused { code, .. }) => {
            let (status, _, _) = head.expect("refused without a final head");
            assert_eq!(code, status);
            assert!(!(200..300).contains(&code), "refused with {code}");
        }
        Err(Error::ProxyFailed { .. }) => {
            // No final head within the bound, or the bytes are not HTTP.
            if let Some((_, end, interim)) = head {
                assert!(end - interim > MAX_CONNECT_RESPONSE || httparse_fails(served));
            }
        }
        Err(e) => panic!("unexpected error {e:?}"),
    }
    assert!(stream.served <= reply.len());
});

/// Whether some head in `reply` does not parse (a failure reason other than size).
fn httparse_fails(reply: &[u8]) -> bool {
    let mut pos = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&reply[pos..]) {
            Ok(httparse::Status::Complete(len))
                if (100..200).contains(&response.code.unwrap_or(0)) =>
            {
                pos += len
            }
            Ok(_) => return false,
            Err(_) => return true,
        }
    }
}
