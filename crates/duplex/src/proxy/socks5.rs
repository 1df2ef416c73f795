//! SOCKS5 (RFC 1928) with username/password authentication (RFC 1929).

use super::url::{authority, Proxy, ProxyScheme};
use crate::error::Error;
use std::io;
use std::net::IpAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What a SOCKS5 reply code means (RFC 1928 section 6).
pub(crate) fn socks5_reply_message(code: u8) -> String {
    match code {
        0x00 => "succeeded".into(),
        0x01 => "general SOCKS server failure".into(),
        0x02 => "connection not allowed by ruleset".into(),
        0x03 => "network unreachable".into(),
        0x04 => "host unreachable".into(),
        0x05 => "connection refused by the target".into(),
        0x06 => "TTL expired".into(),
        0x07 => "command not supported".into(),
        0x08 => "address type not supported".into(),
        other => format!("unassigned reply code {other:#04x}"),
    }
}

/// Opens a SOCKS5 tunnel to `host:port` over `stream`. The reply is read exactly, so no
/// tunnel bytes are consumed.
pub(crate) async fn connect<S>(
    stream: &mut S,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = proxy.to_string();
    let failed = |reason: String| Error::ProxyFailed {
        proxy: name.clone(),
        reason,
    };
    let io_failed = |what: &str, e: io::Error| {
        use io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
        if matches!(e.kind(), UnexpectedEof | BrokenPipe | ConnectionReset) {
            failed(format!("it closed the connection during {what}"))
        } else {
            failed(format!("{what}: {e}"))
        }
    };
    let refused = |request: String, code: u8, reply: String| Error::ProxyRefused {
        proxy: name.clone(),
        request,
        code: u16::from(code),
        reply,
    };
    let target = authority(host, port);

    // The address to ask for, decided before talking to the proxy.
    let addr = match (host.parse::<IpAddr>(), proxy.scheme) {
        (Ok(ip), _) => Socks5Addr::Ip(ip),
        (Err(_), ProxyScheme::Socks5h) => {
            if host.len() > 255 {
                return Err(failed(format!(
                    "host name {host:?} is longer than the 255 bytes SOCKS5 can send"
                )));
            }
            Socks5Addr::Name(host.to_owned())
        }
        (Err(_), _) => {
            let ip = tokio::net::lookup_host((host, port))
                .await
                .map_err(|source| Error::Dns {
                    host: host.to_owned(),
                    source,
                })?
                .next()
                .ok_or_else(|| Error::Dns {
                    host: host.to_owned(),
                    source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
                })?
                .ip();
            Socks5Addr::Ip(ip)
        }
    };

    // Greeting: offer no authentication, and username/password when we have credentials.
    let greeting: &[u8] = if proxy.credentials.is_some() {
        &[0x05, 0x02, 0x00, 0x02]
    } else {
        &[0x05, 0x01, 0x00]
    };
    stream
        .write_all(greeting)
        .await
        .map_err(|e| io_failed("the SOCKS5 greeting", e))?;
    let mut choice = [0u8; 2];
    stream
        .read_exact(&mut choice)
        .await
        .map_err(|e| io_failed("the SOCKS5 greeting", e))?;
    if choice[0] != 0x05 {
        return Err(failed(format!(
            "it is not a SOCKS5 proxy (version byte {:#04x} in its greeting reply)",
            choice[0]
        )));
    }
    match (choice[1], &proxy.credentials) {
        (0x00, _) => {}
        (0x02, Some((user, pass))) => {
            let mut auth = Vec::with_capacity(3 + user.len() + pass.len());
            auth.push(0x01);
            auth.push(user.len() as u8);
            auth.extend_from_slice(user.as_bytes());
            auth.push(pass.len() as u8);
            auth.extend_from_slice(pass.as_bytes());
            stream
                .write_all(&auth)
                .await
                .map_err(|e| io_failed("username/password authentication", e))?;
            let mut status = [0u8; 2];
            stream
                .read_exact(&mut status)
                .await
                .map_err(|e| io_failed("username/password authentication", e))?;
            if status[1] != 0x00 {
                return Err(refused(
                    "username/password authentication".into(),
                    status[1],
                    format!(
                        "status {:#04x} (RFC 1929): the user name or password is wrong",
                        status[1]
                    ),
                ));
            }
        }
        (0xFF, creds) => {
            let hint = if creds.is_some() {
                "neither no authentication nor username/password is accepted"
            } else {
                "it wants authentication: socks5://user:password@host:port"
            };
            return Err(refused(
                "the SOCKS5 greeting".into(),
                0xFF,
                format!("no acceptable authentication method ({hint})"),
            ));
        }
        (other, _) => {
            return Err(failed(format!(
                "it chose authentication method {other:#04x}, which was not offered"
            )))
        }
    }

    // CONNECT request.
    let mut request = vec![0x05, 0x01, 0x00];
    match &addr {
        Socks5Addr::Ip(IpAddr::V4(ip)) => {
            request.push(0x01);
            request.extend_from_slice(&ip.octets());
        }
        Socks5Addr::Ip(IpAddr::V6(ip)) => {
            request.push(0x04);
            request.extend_from_slice(&ip.octets());
        }
        Socks5Addr::Name(name) => {
            request.push(0x03);
            request.push(name.len() as u8);
            request.extend_from_slice(name.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    stream
        .write_all(&request)
        .await
        .map_err(|e| io_failed("the SOCKS5 CONNECT request", e))?;

    // Reply: VER REP RSV ATYP BND.ADDR BND.PORT, read exactly.
    let mut head = [0u8; 4];
    stream
        .read_exact(&mut head)
        .await
        .map_err(|e| io_failed("the SOCKS5 CONNECT reply", e))?;
    if head[0] != 0x05 {
        return Err(failed(format!(
            "its CONNECT reply has version byte {:#04x}, not 0x05",
            head[0]
        )));
    }
    if head[1] != 0x00 {
        let shown = match &addr {
            Socks5Addr::Ip(ip) if ip.to_string() != host => {
                format!(
                    "{target} (resolved here to {})",
                    authority(&ip.to_string(), port)
                )
            }
            _ => target.clone(),
        };
        return Err(refused(
            format!("CONNECT {shown}"),
            head[1],
            format!(
                "{} (SOCKS5 reply {})",
                socks5_reply_message(head[1]),
                head[1]
            ),
        ));
    }
    let addr_len = match head[3] {
        0x01 => 4,
        0x04 => 16,
        0x03 => {
            let mut len = [0u8; 1];
            stream
                .read_exact(&mut len)
                .await
                .map_err(|e| io_failed("the SOCKS5 CONNECT reply", e))?;
            usize::from(len[0])
        }
        other => {
            return Err(failed(format!(
                "its CONNECT reply has unknown address type {other:#04x}"
            )))
        }
    };
    let mut rest = [0u8; 255 + 2];
    stream
        .read_exact(&mut rest[..addr_len + 2])
        .await
        .map_err(|e| io_failed("the SOCKS5 CONNECT reply", e))?;
    Ok(())
}

enum Socks5Addr {
    Ip(IpAddr),
    Name(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    fn proxy(url: &str) -> Proxy {
        Proxy::parse(url).unwrap()
    }

    #[test]
    fn socks5_reply_messages() {
        let expected = [
            "succeeded",
            "general SOCKS server failure",
            "connection not allowed by ruleset",
            "network unreachable",
            "host unreachable",
            "connection refused by the target",
            "TTL expired",
            "command not supported",
            "address type not supported",
        ];
        for (code, want) in expected.iter().enumerate() {
            assert_eq!(socks5_reply_message(code as u8), *want);
        }
        assert_eq!(socks5_reply_message(9), "unassigned reply code 0x09");
        assert_eq!(socks5_reply_message(0xff), "unassigned reply code 0xff");
    }

    /// A scripted SOCKS5 server: answers `method`, then (if 2) `auth_status`, then
    /// `reply` to the CONNECT; returns the bytes it saw.
    async fn fake_socks(
        url: &str,
        host: &str,
        method: u8,
        auth_status: u8,
        reply: u8,
    ) -> (Result<(), Error>, Vec<u8>, Vec<u8>) {
        let p = proxy(url);
        let (mut client, mut server) = duplex(4096);
        let fake = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut head = [0u8; 2];
            server.read_exact(&mut head).await.unwrap();
            let mut methods = vec![0u8; head[1] as usize];
            server.read_exact(&mut methods).await.unwrap();
            seen.extend_from_slice(&head);
            seen.extend_from_slice(&methods);
            server.write_all(&[5, method]).await.unwrap();
            if method == 0xFF {
                return seen;
            }
            if method == 2 {
                let mut b = [0u8; 2];
                if server.read_exact(&mut b).await.is_err() {
                    return seen; // the client gave up: it had no credentials
                }
                let mut user = vec![0u8; b[1] as usize];
                server.read_exact(&mut user).await.unwrap();
                let mut plen = [0u8; 1];
                server.read_exact(&mut plen).await.unwrap();
                let mut pass = vec![0u8; plen[0] as usize];
                server.read_exact(&mut pass).await.unwrap();
                seen.extend([b[0], b[1]]);
                seen.extend(user);
                seen.push(plen[0]);
                seen.extend(pass);
                server.write_all(&[1, auth_status]).await.unwrap();
                if auth_status != 0 {
                    return seen;
                }
            }
            let mut req = [0u8; 4];
            server.read_exact(&mut req).await.unwrap();
            seen.extend_from_slice(&req);
            let len = match req[3] {
                1 => 4,
                4 => 16,
                _ => {
                    let mut l = [0u8; 1];
                    server.read_exact(&mut l).await.unwrap();
                    seen.push(l[0]);
                    l[0] as usize
                }
            };
            let mut rest = vec![0u8; len + 2];
            server.read_exact(&mut rest).await.unwrap();
            seen.extend(rest);
            // Reply with a domain-name bound address, then tunnel bytes.
            server
                .write_all(&[5, reply, 0, 3, 4, b'h', b'o', b's', b't', 0x1f, 0x90])
                .await
                .unwrap();
            let _ = server.write_all(b"tunnel").await;
            drop(server);
            seen
        });
        let got = connect(&mut client, &p, host, 9001).await;
        let mut after = Vec::new();
        if got.is_ok() {
            client.read_to_end(&mut after).await.unwrap();
        }
        drop(client);
        let seen = fake.await.unwrap();
        (got, seen, after)
    }

    #[tokio::test]
    async fn socks5_success_with_and_without_auth() {
        let (got, seen, after) = fake_socks("socks5h://p:1", "example.com", 0, 0, 0).await;
        got.unwrap();
        let mut want = vec![5, 1, 0, 5, 1, 0, 3, 11];
        want.extend(b"example.com");
        want.extend([0x23, 0x29]);
        assert_eq!(seen, want, "socks5h sends the name");
        assert_eq!(after, b"tunnel", "the reply is read exactly");

        let (got, seen, _) = fake_socks("socks5://bob:pw@p:1", "127.0.0.1", 2, 0, 0).await;
        got.unwrap();
        assert_eq!(
            seen,
            [
                5, 2, 0, 2, 1, 3, b'b', b'o', b'b', 2, b'p', b'w', 5, 1, 0, 1, 127, 0, 0, 1, 0x23,
                0x29
            ]
        );

        // socks5:// resolves locally: an address goes to the proxy, never the name.
        let (got, seen, _) = fake_socks("socks5://p:1", "localhost", 0, 0, 0).await;
        got.unwrap();
        assert_eq!(&seen[..6], &[5, 1, 0, 5, 1, 0]);
        assert!(matches!(seen[6], 1 | 4), "address type {}", seen[6]);
        assert!(!seen.windows(9).any(|w| w == b"localhost"));
    }

    #[tokio::test]
    async fn socks5_failures_are_named() {
        for code in 1u8..=9 {
            let (got, _, _) =
                fake_socks("socks5h://127.0.0.1:1080", "example.com", 0, 0, code).await;
            let e = got.unwrap_err();
            assert!(matches!(e, Error::ProxyRefused { code: c, .. } if c == u16::from(code)));
            let msg = e.to_string();
            let want = format!(
                "proxy socks5h://127.0.0.1:1080 refused CONNECT example.com:9001: {} (SOCKS5 reply {code})",
                socks5_reply_message(code)
            );
            assert_eq!(msg, want);
        }
        let (got, _, _) = fake_socks("socks5h://p:1", "h.example", 0xFF, 0, 0).await;
        let msg = got.unwrap_err().to_string();
        assert!(
            msg.contains("no acceptable authentication method (it wants authentication"),
            "{msg}"
        );
        let (got, _, _) = fake_socks("socks5://u:badpw@p:1", "127.0.0.1", 2, 1, 0).await;
        let msg = got.unwrap_err().to_string();
        assert!(
            msg.starts_with(
                "proxy socks5://p:1 refused username/password authentication: status 0x01"
            ),
            "{msg}"
        );
        assert!(!msg.contains("badpw"), "no password in {msg}");
        // A method that was not offered is a protocol failure.
        let (got, _, _) = fake_socks("socks5://p:1", "127.0.0.1", 2, 0, 0).await;
        assert!(matches!(got.unwrap_err(), Error::ProxyFailed { .. }));
    }

    #[tokio::test]
    async fn socks5_name_that_does_not_resolve_is_a_dns_error() {
        // socks5:// resolves here, before a byte goes to the proxy.
        let p = proxy("socks5://p:1");
        let (mut client, _server) = duplex(64);
        let e = connect(&mut client, &p, "no-such-host.invalid", 1)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Dns { host, .. } if host == "no-such-host.invalid"),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn socks5_proxy_closing_early() {
        let p = proxy("socks5://p:1");
        let (mut client, server) = duplex(64);
        drop(server);
        let e = connect(&mut client, &p, "127.0.0.1", 1).await.unwrap_err();
        assert!(matches!(e, Error::ProxyFailed { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("proxy socks5://p:1 failed: it closed the connection during"),
            "{msg}"
        );
    }
}
