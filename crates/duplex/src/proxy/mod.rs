//! Client proxies: the TCP step of a client connection, made directly or through an
//! HTTP CONNECT proxy (`http://`, `https://`) or a SOCKS5 proxy (`socks5://` resolves the
//! target locally, `socks5h://` lets the proxy resolve it), with credentials from the
//! proxy URL, and the choice of proxy from the environment as curl makes it.
//!
//! | URL | protocol | default port |
//! | --- | --- | --- |
//! | `http://[user:pass@]host[:port]` (or just `host:port`) | HTTP/1.1 `CONNECT`, `Proxy-Authorization: Basic` | 1080 |
//! | `https://[user:pass@]host[:port]` | the same inside TLS to the proxy | 443 |
//! | `socks5://[user:pass@]host[:port]` | SOCKS5 (RFC 1928), target resolved here | 1080 |
//! | `socks5h://[user:pass@]host[:port]` | SOCKS5, the host name is sent to the proxy | 1080 |
//!
//! Credentials are percent-decoded (`p%40ss` is `p@ss`). SOCKS5 authenticates with
//! username/password (RFC 1929) when credentials are given. Error messages and `Display`
//! name the proxy as `scheme://host:port`, never with its credentials.

mod connect;
mod direct;
mod no_proxy;
mod rewind;
mod socks5;
mod url;

pub use self::no_proxy::no_proxy_matches;
pub(crate) use self::url::ProxyChoice;
pub use self::url::{Proxy, ProxyScheme};

use self::url::authority;
use crate::error::{Error, Phase};
use crate::tls::ClientTls;
use crate::transport::ClientStream;
use std::io;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Opens the byte stream to `host:port`: directly, or through `proxy` (TLS to an
/// `https://` proxy uses `tls`). Everything, including name resolution, TLS to the proxy
/// and the proxy's negotiation, finishes within `timeout`.
pub(crate) async fn open(
    host: &str,
    port: u16,
    proxy: Option<&Proxy>,
    tls: &ClientTls,
    timeout: Duration,
) -> Result<ClientStream, Error> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let deadline = Instant::now() + timeout;
    let Some(proxy) = proxy else {
        let tcp = tokio::time::timeout_at(deadline, direct::connect(host, port))
            .await
            .map_err(|_| Error::Timeout(Phase::Connect))??;
        tcp.set_nodelay(true)?;
        return Ok(ClientStream::new(tcp));
    };
    let tcp = tokio::time::timeout_at(
        deadline,
        TcpStream::connect((proxy.host.as_str(), proxy.port)),
    )
    .await
    .map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out after {timeout:?}"),
        )
    })
    .and_then(|r| r)
    .map_err(|source| Error::ProxyConnect {
        proxy: proxy.to_string(),
        source,
    })?;
    tcp.set_nodelay(true)?;
    let negotiate = async {
        match proxy.scheme {
            ProxyScheme::Http => {
                let mut tcp = tcp;
                let leftover = connect::http_connect(&mut tcp, proxy, host, port).await?;
                Ok(rewind::rewind(tcp, leftover))
            }
            ProxyScheme::Https => {
                let left = deadline.saturating_duration_since(Instant::now());
                let mut stream = crate::tls::connect(tls, &proxy.host, tcp, left)
                    .await
                    .map_err(|e| Error::ProxyTls {
                        proxy: proxy.to_string(),
                        source: Box::new(e),
                    })?;
                let leftover = connect::http_connect(&mut stream, proxy, host, port).await?;
                Ok(rewind::rewind(stream, leftover))
            }
            ProxyScheme::Socks5 | ProxyScheme::Socks5h => {
                let mut tcp = tcp;
                socks5::connect(&mut tcp, proxy, host, port).await?;
                Ok(ClientStream::new(tcp))
            }
        }
    };
    tokio::time::timeout_at(deadline, negotiate)
        .await
        .map_err(|_| Error::ProxyFailed {
            proxy: proxy.to_string(),
            reason: format!("no tunnel to {} within {timeout:?}", authority(host, port)),
        })?
}

/// Entry points for the fuzz targets in `fuzz/`, not a stable API: the CONNECT and
/// SOCKS5 client exchanges over any stream, so a fuzzer can play the proxy from memory.
#[doc(hidden)]
pub mod fuzzing {
    use super::{Error, Proxy};
    use bytes::Bytes;
    use tokio::io::{AsyncRead, AsyncWrite};

    /// The bound on a proxy's response head to `CONNECT`.
    pub const MAX_CONNECT_RESPONSE: usize = super::connect::MAX_CONNECT_RESPONSE;

    /// Asks for a tunnel to `host:port` with HTTP `CONNECT`; returns the bytes read past
    /// the response.
    pub async fn http_connect<S>(
        stream: &mut S,
        proxy: &Proxy,
        host: &str,
        port: u16,
    ) -> Result<Bytes, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        super::connect::http_connect(stream, proxy, host, port).await
    }

    /// Opens a SOCKS5 tunnel to `host:port`, reading the replies exactly.
    pub async fn socks5_connect<S>(
        stream: &mut S,
        proxy: &Proxy,
        host: &str,
        port: u16,
    ) -> Result<(), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        super::socks5::connect(stream, proxy, host, port).await
    }
}
