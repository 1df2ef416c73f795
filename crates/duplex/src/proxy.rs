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

use crate::error::Error;
use crate::tls::ClientTls;
use crate::transport::ClientStream;
use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Most bytes accepted for an HTTP proxy's response head to `CONNECT`.
pub(crate) const MAX_CONNECT_RESPONSE: usize = 16 * 1024;
/// Most header lines accepted in that response.
const MAX_CONNECT_HEADERS: usize = 64;

/// How the proxy is spoken to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyScheme {
    /// `http://`: HTTP/1.1 `CONNECT` over plain TCP.
    Http,
    /// `https://`: HTTP/1.1 `CONNECT` inside TLS to the proxy.
    Https,
    /// `socks5://`: SOCKS5, the target host is resolved locally and sent as an address.
    Socks5,
    /// `socks5h://`: SOCKS5, the target host name is sent to the proxy to resolve.
    Socks5h,
}

impl ProxyScheme {
    fn as_str(self) -> &'static str {
        match self {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            ProxyScheme::Https => 443,
            _ => 1080,
        }
    }
}

/// A proxy to open client connections through, parsed from a URL such as
/// `http://user:pass@127.0.0.1:3128` or `socks5h://127.0.0.1:1080`.
///
/// `Display` shows `scheme://host:port` without credentials; so does `Debug`, plus
/// whether credentials are set.
///
/// ```
/// let proxy = duplex::Proxy::parse("http://alice:s3cret@127.0.0.1:3128").unwrap();
/// assert_eq!(proxy.to_string(), "http://127.0.0.1:3128");
/// assert_eq!(proxy.scheme(), duplex::ProxyScheme::Http);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    scheme: ProxyScheme,
    /// Without brackets for IPv6.
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl Proxy {
    /// Parses a proxy URL: `http://`, `https://`, `socks5://` or `socks5h://`, with
    /// optional percent-encoded `user:password@` and port. A URL without a scheme
    /// (`host:port`) is an HTTP proxy, as in curl. The error names the URL with its
    /// password hidden.
    pub fn parse(url: &str) -> Result<Proxy, Error> {
        let trimmed = url.trim();
        let bad = |reason: &str| Error::ProxyUrl {
            url: redact(trimmed),
            reason: reason.to_owned(),
        };
        if trimmed.is_empty() {
            return Err(bad("empty"));
        }
        let with_scheme;
        let full = if trimmed.contains("://") {
            trimmed
        } else {
            with_scheme = format!("http://{trimmed}");
            &with_scheme
        };
        let parsed = url::Url::parse(full).map_err(|e| bad(&e.to_string()))?;
        let scheme = match parsed.scheme() {
            "http" => ProxyScheme::Http,
            "https" => ProxyScheme::Https,
            "socks5" => ProxyScheme::Socks5,
            "socks5h" => ProxyScheme::Socks5h,
            other => {
                return Err(bad(&format!(
                    "scheme {other:?} is not one of http, https, socks5, socks5h"
                )))
            }
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
            return Err(bad("a proxy URL has no path or query"));
        }
        // `url` knows the default ports of http and https and then reports no port; curl's
        // default for an http:// proxy is 1080, so the explicit port is looked up by hand.
        let port = explicit_port(full).unwrap_or(scheme.default_port());
        if port == 0 {
            return Err(bad("port 0"));
        }
        let credentials = if parsed.username().is_empty() && parsed.password().is_none() {
            None
        } else {
            let user = percent_decode(parsed.username()).ok_or_else(|| bad("bad user name"))?;
            let pass = percent_decode(parsed.password().unwrap_or(""))
                .ok_or_else(|| bad("bad password"))?;
            if matches!(scheme, ProxyScheme::Socks5 | ProxyScheme::Socks5h)
                && (user.is_empty() || user.len() > 255 || pass.len() > 255)
            {
                return Err(bad(
                    "SOCKS5 user names are 1 to 255 bytes and passwords at most 255 (RFC 1929)",
                ));
            }
            Some((user, pass))
        };
        Ok(Proxy {
            scheme,
            host,
            port,
            credentials,
        })
    }

    /// The proxy chosen by the environment for a connection to `host:port`, as curl
    /// chooses it: for `ws://` (`secure == false`) `http_proxy` then `HTTP_PROXY`, for
    /// `wss://` `https_proxy` then `HTTPS_PROXY`, then `all_proxy`, `ALL_PROXY`; `None`
    /// when none is set (empty counts as unset) or `no_proxy`/`NO_PROXY` matches the
    /// target (see [`no_proxy_matches`]).
    ///
    /// `lookup` reads a variable, so this can run over any map: the builder passes
    /// `std::env::var`. An invalid URL is an error naming its variable.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// let env = HashMap::from([("HTTPS_PROXY", "socks5h://127.0.0.1:1080"),
    ///                          ("NO_PROXY", ".internal")]);
    /// let lookup = |k: &str| env.get(k).map(|v| v.to_string());
    /// let p = duplex::Proxy::from_env(true, "example.com", 443, lookup).unwrap();
    /// assert_eq!(p.unwrap().to_string(), "socks5h://127.0.0.1:1080");
    /// assert!(duplex::Proxy::from_env(true, "db.internal", 443, lookup).unwrap().is_none());
    /// ```
    pub fn from_env(
        secure: bool,
        host: &str,
        port: u16,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>, Error> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let names: [&str; 4] = if secure {
            ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
        } else {
            ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        };
        let Some((name, value)) = names.iter().find_map(|n| get(n).map(|v| (*n, v))) else {
            return Ok(None);
        };
        if let Some(list) = get("no_proxy").or_else(|| get("NO_PROXY")) {
            if no_proxy_matches(&list, host, port) {
                return Ok(None);
            }
        }
        Proxy::parse(&value).map(Some).map_err(|e| match e {
            Error::ProxyUrl { url, reason } => Error::ProxyUrl {
                url,
                reason: format!("{reason} (from the environment variable {name})"),
            },
            other => other,
        })
    }

    /// How the proxy is spoken to.
    pub fn scheme(&self) -> ProxyScheme {
        self.scheme
    }

    /// The proxy's host (IPv6 addresses without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name, if credentials are set.
    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(u, _)| u.as_str())
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}",
            self.scheme.as_str(),
            authority(&self.host, self.port)
        )
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.to_string())
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

/// The port written in `url`'s authority, if any.
fn explicit_port(url: &str) -> Option<u16> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let hostport = &authority[authority.rfind('@').map_or(0, |i| i + 1)..];
    let after_host = match hostport.rfind(']') {
        Some(i) => &hostport[i + 1..],
        None => hostport,
    };
    after_host.rsplit_once(':')?.1.parse().ok()
}

/// The proxy setting of a [`ClientBuilder`](crate::ClientBuilder).
#[derive(Clone, Debug, Default)]
pub(crate) enum ProxyChoice {
    /// From the environment at connect time (the default).
    #[default]
    Env,
    /// Never: `no_proxy()`.
    Off,
    /// This one, whatever the environment says.
    Explicit(Proxy),
    /// An explicit URL that did not parse; `connect` fails with this.
    Invalid { url: String, reason: String },
}

impl ProxyChoice {
    /// `ProxyChoice::Explicit`, or `Invalid` with the parse error.
    pub(crate) fn from_url(url: &str) -> Self {
        match Proxy::parse(url) {
            Ok(p) => ProxyChoice::Explicit(p),
            Err(Error::ProxyUrl { url, reason }) => ProxyChoice::Invalid { url, reason },
            Err(e) => ProxyChoice::Invalid {
                url: redact(url),
                reason: e.to_string(),
            },
        }
    }

    /// The proxy for a connection to `host:port` (`secure` for `wss://`).
    pub(crate) fn resolve(
        &self,
        secure: bool,
        host: &str,
        port: u16,
    ) -> Result<Option<Proxy>, Error> {
        match self {
            ProxyChoice::Env => {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                Proxy::from_env(secure, host, port, |k| std::env::var(k).ok())
            }
            ProxyChoice::Off => Ok(None),
            ProxyChoice::Explicit(p) => Ok(Some(p.clone())),
            ProxyChoice::Invalid { url, reason } => Err(Error::ProxyUrl {
                url: url.clone(),
                reason: reason.clone(),
            }),
        }
    }
}

/// `host:port`, with brackets around an IPv6 host.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `url` with the password in its userinfo replaced by `***`.
fn redact(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => {
            let userinfo = &url[start..start + at];
            match userinfo.find(':') {
                Some(colon) => format!("{}:***{}", &url[..start + colon], &url[start + at..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether a `NO_PROXY` list bypasses the proxy for `host:port`, as curl reads it: entries
/// separated by commas (and spaces); `*` alone matches every host; a domain matches
/// itself and its subdomains, with or without a leading dot (`example.com` and
/// `.example.com` both match `example.com` and `a.example.com`, not `badexample.com`);
/// IP addresses match exactly, or as a CIDR block (`10.0.0.0/8`, `fd00::/8`); IPv6
/// may be written `::1` or `[::1]`; an entry with a port (`host:8080`, `[::1]:8080`)
/// matches only that port. Names compare case-insensitively, ignoring a trailing dot.
pub fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let host_ip: Option<IpAddr> = host.parse().ok();
    list.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let (name, entry_port) = split_entry(entry);
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Some((net, bits)) = name.split_once('/') {
                return match (net.parse::<IpAddr>(), bits.parse::<u8>(), host_ip) {
                    (Ok(net), Ok(bits), Some(ip)) => cidr_contains(net, bits, ip),
                    _ => false,
                };
            }
            if let Ok(ip) = name.parse::<IpAddr>() {
                return host_ip == Some(ip);
            }
            let domain = name.trim_start_matches('.');
            !domain.is_empty()
                && host_ip.is_none()
                && (host == domain
                    || (host.len() > domain.len()
                        && host.ends_with(domain)
                        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'))
        })
}

/// Splits a `NO_PROXY` entry into host (or CIDR) and optional port.
fn split_entry(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, tail)) => (ip, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (entry, None),
        };
    }
    match entry.rsplit_once(':') {
        // One colon: host:port. More: a bare IPv6 address (possibly a CIDR block).
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host, Some(p)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// Opens the byte stream to `host:port`: directly, or through `proxy` (TLS to an
/// `https://` proxy uses `tls`). Everything, including name resolution, TLS to the proxy
/// and the proxy's negotiation, finishes within `timeout`.
/// Resolves `host` and connects to its addresses in turn, naming the step that failed.
async fn connect_direct(host: &str, port: u16) -> Result<TcpStream, Error> {
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| Error::Dns {
            host: host.to_owned(),
            source,
        })?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some((*addr, e)),
        }
    }
    let (addr, source) = last.ok_or_else(|| Error::Dns {
        host: host.to_owned(),
        source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
    })?;
    Err(Error::Tcp { addr, source })
}

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
        let tcp = tokio::time::timeout_at(deadline, connect_direct(host, port))
            .await
            .map_err(|_| Error::Timeout("TCP connect"))??;
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
                let leftover = http_connect(&mut tcp, proxy, host, port).await?;
                Ok(rewind(tcp, leftover))
            }
            ProxyScheme::Https => {
                let left = deadline.saturating_duration_since(Instant::now());
                let mut stream = crate::tls::connect(tls, &proxy.host, tcp, left)
                    .await
                    .map_err(|e| Error::ProxyTls {
                        proxy: proxy.to_string(),
                        source: Box::new(e),
                    })?;
                let leftover = http_connect(&mut stream, proxy, host, port).await?;
                Ok(rewind(stream, leftover))
            }
            ProxyScheme::Socks5 | ProxyScheme::Socks5h => {
                let mut tcp = tcp;
                socks5_connect(&mut tcp, proxy, host, port).await?;
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

fn rewind<S: crate::Io>(stream: S, leftover: Bytes) -> ClientStream {
    if leftover.is_empty() {
        ClientStream::new(stream)
    } else {
        ClientStream::new(Rewind {
            prefix: leftover,
            inner: stream,
        })
    }
}

/// A stream that first yields bytes already read from it (past the proxy's response).
struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------
// HTTP CONNECT

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

// ---------------------------------------------------------------------------------------
// SOCKS5 (RFC 1928) with username/password authentication (RFC 1929)

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
pub(crate) async fn socks5_connect<S>(
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
        if e.kind() == io::ErrorKind::UnexpectedEof {
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
                .map_err(|e| {
                    Error::Io(io::Error::new(
                        e.kind(),
                        format!("resolving {host} for SOCKS5 proxy {name}: {e}"),
                    ))
                })?
                .next()
                .ok_or_else(|| {
                    Error::Io(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("resolving {host} for SOCKS5 proxy {name}: no address"),
                    ))
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

/// Entry points for the fuzz targets in `fuzz/`, not a stable API: the CONNECT and
/// SOCKS5 client exchanges over any stream, so a fuzzer can play the proxy from memory.
#[doc(hidden)]
pub mod fuzzing {
    use super::{Error, Proxy};
    use bytes::Bytes;
    use tokio::io::{AsyncRead, AsyncWrite};

    /// The bound on a proxy's response head to `CONNECT`.
    pub const MAX_CONNECT_RESPONSE: usize = super::MAX_CONNECT_RESPONSE;

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
        super::http_connect(stream, proxy, host, port).await
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
        super::socks5_connect(stream, proxy, host, port).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use tokio::io::duplex;

    fn proxy(url: &str) -> Proxy {
        Proxy::parse(url).unwrap()
    }

    // ---- URL parsing --------------------------------------------------------------

    #[test]
    fn parses_proxy_urls() {
        let p = proxy("http://alice:p%40ss@127.0.0.1:3128");
        assert_eq!(p.scheme(), ProxyScheme::Http);
        assert_eq!((p.host(), p.port()), ("127.0.0.1", 3128));
        assert_eq!(p.credentials, Some(("alice".into(), "p@ss".into())));
        assert_eq!(p.to_string(), "http://127.0.0.1:3128");
        assert!(!format!("{p:?}").contains("p@ss"));
        assert_eq!(
            proxy("proxy.example:8080").to_string(),
            "http://proxy.example:8080"
        );
        assert_eq!(proxy("http://proxy.example").port(), 1080, "curl's default");
        assert_eq!(proxy("http://proxy.example:80").port(), 80);
        assert_eq!(
            proxy("socks5://[::1]:1081/").to_string(),
            "socks5://[::1]:1081"
        );
        assert_eq!(proxy("SOCKS5H://h").scheme(), ProxyScheme::Socks5h);
        assert_eq!(proxy("socks5h://h").port(), 1080);
    }

    #[test]
    fn rejects_bad_proxy_urls_without_showing_the_password() {
        for (url, why) in [
            ("ftp://h:1", "scheme"),
            ("", "empty"),
            ("http://h:1/path", "no path"),
            ("http://:1", "empty host"),
            ("socks5://:pw@h:1", "RFC 1929"),
        ] {
            let e = Proxy::parse(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
        let e = Proxy::parse("ftp://bob:hunter2@h:1")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2") && e.contains("bob:***@h:1"), "{e}");
        assert_eq!(redact("http://a:b@h/x@y"), "http://a:***@h/x@y");
        assert_eq!(redact("http://a@h"), "http://a@h");
    }

    // ---- NO_PROXY -----------------------------------------------------------------

    #[test]
    fn no_proxy_matching() {
        let cases: &[(&str, &str, u16, bool)] = &[
            ("*", "anything.example", 80, true),
            ("", "example.com", 80, false),
            ("example.com", "example.com", 80, true),
            ("example.com", "a.b.example.com", 80, true),
            ("example.com", "badexample.com", 80, false),
            (".example.com", "example.com", 80, true),
            (".example.com", "www.example.com", 80, true),
            ("EXAMPLE.com.", "www.Example.COM", 80, true),
            ("example.com", "example.com.", 80, true),
            ("other.org, example.com", "example.com", 80, true),
            ("other.org example.com", "example.com", 80, true),
            ("other.org", "example.com", 80, false),
            ("example.com:8080", "example.com", 8080, true),
            ("example.com:8080", "example.com", 80, false),
            ("localhost", "localhost", 9001, true),
            ("127.0.0.1", "127.0.0.1", 1, true),
            ("127.0.0.1", "127.0.0.2", 1, false),
            ("127.0.0.1:9001", "127.0.0.1", 9001, true),
            ("127.0.0.1:9001", "127.0.0.1", 9002, false),
            ("10.0.0.0/8", "10.1.2.3", 1, true),
            ("10.0.0.0/8", "11.1.2.3", 1, false),
            ("0.0.0.0/0", "8.8.8.8", 1, true),
            ("::1", "::1", 1, true),
            ("::1", "[::1]", 1, true),
            ("[::1]", "::1", 1, true),
            ("[::1]:443", "::1", 443, true),
            ("[::1]:443", "::1", 80, false),
            ("fd00::/8", "fd12::1", 1, true),
            ("fd00::/8", "fe80::1", 1, false),
            // An IP entry does not match names, nor a domain an IP.
            ("127.0.0.1", "localhost", 1, false),
            ("0.1", "10.0.0.1", 1, false),
            ("*.example.com", "a.example.com", 1, false),
        ];
        for &(list, host, port, want) in cases {
            assert_eq!(
                no_proxy_matches(list, host, port),
                want,
                "NO_PROXY={list:?} host={host} port={port}"
            );
        }
    }

    // ---- environment --------------------------------------------------------------

    fn env_proxy(vars: &[(&str, &str)], secure: bool, host: &str) -> Option<String> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Proxy::from_env(secure, host, 443, |k| env.get(k).cloned())
            .unwrap()
            .map(|p| p.to_string())
    }

    #[test]
    fn env_precedence() {
        let all = [
            ("http_proxy", "http://lower-http:1"),
            ("HTTP_PROXY", "http://upper-http:1"),
            ("https_proxy", "http://lower-https:1"),
            ("HTTPS_PROXY", "http://upper-https:1"),
            ("all_proxy", "socks5://lower-all:1"),
            ("ALL_PROXY", "socks5://upper-all:1"),
        ];
        let h = "example.com";
        assert_eq!(env_proxy(&all, false, h).unwrap(), "http://lower-http:1");
        assert_eq!(env_proxy(&all, true, h).unwrap(), "http://lower-https:1");
        assert_eq!(
            env_proxy(&all[1..], false, h).unwrap(),
            "http://upper-http:1"
        );
        assert_eq!(
            env_proxy(&all[3..], true, h).unwrap(),
            "http://upper-https:1"
        );
        // ws:// never uses the https variables, wss:// never the http ones.
        assert_eq!(
            env_proxy(&all[2..], false, h).unwrap(),
            "socks5://lower-all:1"
        );
        let http_only = [all[0], all[1]];
        assert_eq!(env_proxy(&http_only, true, h), None);
        assert_eq!(
            env_proxy(&all[5..], true, h).unwrap(),
            "socks5://upper-all:1"
        );
        // Empty counts as unset.
        assert_eq!(
            env_proxy(&[("http_proxy", ""), ("HTTP_PROXY", "u:2")], false, h).unwrap(),
            "http://u:2"
        );
        assert_eq!(env_proxy(&[], false, h), None);
        // NO_PROXY bypasses, lower case first.
        let mut with_no = all.to_vec();
        with_no.push(("NO_PROXY", "example.com"));
        assert_eq!(env_proxy(&with_no, true, h), None);
        assert!(env_proxy(&with_no, true, "example.org").is_some());
        with_no.push(("no_proxy", "other.org"));
        assert!(
            env_proxy(&with_no, true, h).is_some(),
            "no_proxy wins over NO_PROXY"
        );
        with_no.push(("no_proxy", "*"));
        assert_eq!(
            env_proxy(&with_no[..6], true, h).as_deref(),
            Some("http://lower-https:1")
        );
    }

    #[test]
    fn env_errors_name_the_variable() {
        let e = Proxy::from_env(true, "h", 1, |k| {
            (k == "HTTPS_PROXY").then(|| "gopher://u:secret@p:1".to_owned())
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("HTTPS_PROXY") && !e.contains("secret"), "{e}");
        // A bypassed target does not even look at the URL.
        let r = Proxy::from_env(true, "h", 1, |k| match k {
            "HTTPS_PROXY" => Some("gopher://p".into()),
            "NO_PROXY" => Some("h".into()),
            _ => None,
        });
        assert!(r.unwrap().is_none());
    }

    // ---- CONNECT ------------------------------------------------------------------

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

        // The Rewind wrapper hands those bytes out first.
        let mut s = rewind(tokio::io::empty(), Bytes::from_static(b"abc"));
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"abc");
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

    // ---- SOCKS5 -------------------------------------------------------------------

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
        let got = socks5_connect(&mut client, &p, host, 9001).await;
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
    async fn socks5_proxy_closing_early() {
        let p = proxy("socks5://p:1");
        let (mut client, server) = duplex(64);
        drop(server);
        let msg = socks5_connect(&mut client, &p, "h", 1)
            .await
            .unwrap_err()
            .to_string();
        assert!(msg.contains("socks5://p:1"), "{msg}");
    }
}
