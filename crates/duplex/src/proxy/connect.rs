//! HTTP `CONNECT` (RFC 9110 section 9.3.6) to an `http://` or `https://` proxy.

use super::url::{authority, Proxy};
use crate::error::Error;
use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Most bytes accepted for an HTTP proxy's response head to `CONNECT`.
pub(crate) const MAX_CONNECT_RESPONSE: usize = 16 * 1024;
/// Most header lines accepted in that response.
const MAX_CONNECT_HEADERS: usize = 64;

/// The `CONNECT` request for `host:port`.
pub(crate) fn connect_request(proxy: &Proxy, host: &str, port: u16) -> String {
    let target = authority(host, port);
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some((user, pass)) = &proxy.credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// What a proxy answered to `CONNECT`, parsed from the bytes read so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ConnectResponse {
    /// More bytes are needed.
    Partial,
    /// A final response with this status and reason; the head is `len` bytes long.
    Done {
        status: u16,
        reason: String,
        len: usize,
    },
    /// A 1xx interim response of `len` bytes, to be skipped.
    Interim { len: usize },
}

/// Parses an HTTP proxy's response head; errors are reasons for `Error::ProxyFailed`.
pub(crate) fn parse_connect_response(buf: &[u8]) -> Result<ConnectResponse, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_CONNECT_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let status = response.code.unwrap_or(0);
            if (100..200).contains(&status) {
                return Ok(ConnectResponse::Interim { len });
            }
            let reason = match response.reason.filter(|r| !r.is_empty()) {
                Some(r) => r.to_owned(),
                None => http::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("")
                    .to_owned(),
            };
            Ok(ConnectResponse::Done {
                status,
                reason,
                len,
            })
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_CONNECT_RESPONSE => Err(format!(
            "its response to CONNECT is larger than {MAX_CONNECT_RESPONSE} bytes"
        )),
        Ok(httparse::Status::Partial) => Ok(ConnectResponse::Partial),
        Err(httparse::Error::TooManyHeaders) => Err(format!(
            "its response to CONNECT has more than {MAX_CONNECT_HEADERS} headers"
        )),
        Err(e) => Err(format!("its response to CONNECT is not HTTP/1.x ({e})")),
    }
}

/// Asks an HTTP proxy for a tunnel to `host:port` over `stream`; returns the bytes read
/// past the response, which belong to the tunnel.
pub(crate) async fn http_connect<S>(
    stream: &mut S,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<Bytes, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let failed = |reason: String| Error::ProxyFailed {
        proxy: proxy.to_string(),
        reason,
    };
    let io_failed = |what: &str, e: io::Error| failed(format!("{what}: {e}"));
    let target = authority(host, port);
    stream
        .write_all(connect_request(proxy, host, port).as_bytes())
        .await
        .map_err(|e| io_failed("sending CONNECT", e))?;
    stream
        .flush()
        .await
        .map_err(|e| io_failed("sending CONNECT", e))?;
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        match parse_connect_response(&buf).map_err(failed)? {
            ConnectResponse::Partial => {}
            ConnectResponse::Interim { len } => {
                buf.advance(len);
                continue;
            }
            ConnectResponse::Done {
                status,
                reason,
                len,
            } => {
                if !(200..300).contains(&status) {
                    let hint = match (status, proxy.credentials.is_some()) {
                        (407, false) => {
                            " (the proxy wants credentials: http://user:password@host:port)"
                        }
                        // tinyproxy, for one, answers wrong credentials with 401.
                        (401 | 407, true) => " (the credentials were not accepted)",
                        _ => "",
                    };
                    return Err(Error::ProxyRefused {
                        proxy: proxy.to_string(),
                        request: format!("CONNECT {target}"),
                        code: status,
                        reply: format!("{status} {reason}{hint}").trim_end().to_owned(),
                    });
                }
                buf.advance(len);
                return Ok(buf.freeze());
            }
        }
        // Read at most up to the bound, so the check above sees an oversized head.
        let room = MAX_CONNECT_RESPONSE - buf.len();
        let mut chunk = (&mut *stream).take(room as u64);
        match chunk.read_buf(&mut buf).await {
            Ok(0) => {
                return Err(failed(format!(
                    "it closed the connection before answering CONNECT {target}"
                )))
            }
            Ok(_) => {}
            Err(e) => return Err(io_failed("reading its response to CONNECT", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    fn proxy(url: &str) -> Proxy {
        Proxy::parse(url).unwrap()
    }

    #[test]
    fn connect_request_format() {
        let p = proxy("http://Aladdin:open%20sesame@p:1");
        assert_eq!(
            connect_request(&p, "example.com", 443),
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\
             Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
        assert_eq!(
            connect_request(&proxy("p:1"), "::1", 80),
            "CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"
        );
    }

    #[test]
    fn connect_response_parsing() {
        use ConnectResponse::*;
        let ok = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n";
        assert_eq!(
            parse_connect_response(ok).unwrap(),
            Done {
                status: 200,
                reason: "Connection established".into(),
                len: ok.len()
            }
        );
        assert_eq!(parse_connect_response(&ok[..20]).unwrap(), Partial);
        assert_eq!(parse_connect_response(b"").unwrap(), Partial);
        let denied = b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n";
        assert!(matches!(
            parse_connect_response(denied).unwrap(),
            Done { status: 407, ref reason, .. } if reason == "Proxy Authentication Required"
        ));
        // No reason phrase: the canonical one.
        assert!(matches!(
            parse_connect_response(b"HTTP/1.1 502 \r\n\r\n").unwrap(),
            Done { status: 502, ref reason, .. } if reason == "Bad Gateway"
        ));
        assert_eq!(
            parse_connect_response(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap(),
            Interim { len: 25 }
        );
        let garbage = parse_connect_response(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap_err();
        assert!(garbage.contains("not HTTP/1.x"), "{garbage}");
        let big = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_CONNECT_RESPONSE));
        let e = parse_connect_response(big.as_bytes()).unwrap_err();
        assert!(e.contains("larger than 16384"), "{e}");
        let many: String = "HTTP/1.1 200 OK\r\n".to_owned() + &"X: y\r\n".repeat(65) + "\r\n";
        let e = parse_connect_response(many.as_bytes()).unwrap_err();
        assert!(e.contains("more than 64 headers"), "{e}");
    }

    /// Runs `http_connect` against a fake proxy that answers `reply` (in two pieces) and
    /// returns what the client got plus the request the proxy saw.
    async fn fake_http_proxy(url: &str, reply: Vec<u8>) -> (Result<Bytes, Error>, String) {
        let p = proxy(url);
        let (mut client, mut server) = duplex(64 * 1024);
        let fake = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.ends_with(b"\r\n\r\n") {
                let n = server.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            let half = reply.len() / 2;
            let _ = server.write_all(&reply[..half]).await;
            tokio::task::yield_now().await;
            let _ = server.write_all(&reply[half..]).await;
            drop(server);
            String::from_utf8(seen).unwrap()
        });
        let got = http_connect(&mut client, &p, "example.com", 443).await;
        (got, fake.await.unwrap())
    }

    #[tokio::test]
    async fn http_connect_keeps_bytes_past_the_response() {
        let reply =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101 early".to_vec();
        let (got, seen) = fake_http_proxy("http://u:p@127.0.0.1:3128", reply).await;
        assert_eq!(&got.unwrap()[..], b"HTTP/1.1 101 early");
        assert!(
            seen.starts_with("CONNECT example.com:443 HTTP/1.1\r\n"),
            "{seen}"
        );
        assert!(
            seen.contains("Proxy-Authorization: Basic dTpw\r\n"),
            "{seen}"
        );
    }

    #[tokio::test]
    async fn http_connect_failures() {
        let (got, _) = fake_http_proxy(
            "http://127.0.0.1:8888",
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n".to_vec(),
        )
        .await;
        let e = got.unwrap_err();
        assert!(matches!(e, Error::ProxyRefused { code: 407, .. }));
        let msg = e.to_string();
        assert!(
            msg.starts_with(
                "proxy http://127.0.0.1:8888 refused CONNECT example.com:443: \
                 407 Proxy Authentication Required (the proxy wants credentials"
            ),
            "{msg}"
        );

        let (got, _) = fake_http_proxy("http://p:1", b"HTTP/1.1 200 OK\r\n".to_vec()).await;
        let msg = got.unwrap_err().to_string();
        assert!(
            msg.contains("closed the connection before answering CONNECT"),
            "{msg}"
        );

        let (got, _) = fake_http_proxy("http://p:1", b"hello there\r\n\r\n".to_vec()).await;
        let e = got.unwrap_err();
        assert!(matches!(e, Error::ProxyFailed { .. }), "{e}");

        let big = [b"HTTP/1.1 200 OK\r\n".as_slice(), &vec![b'x'; 40_000]].concat();
        let (got, _) = fake_http_proxy("http://p:1", big).await;
        let msg = got.unwrap_err().to_string();
        assert!(msg.contains("larger than 16384 bytes"), "{msg}");
    }
}
