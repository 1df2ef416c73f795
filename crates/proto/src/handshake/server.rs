//! The server side of the opening handshake.

use super::{accept_key, check_single, has_token, head_len, header_list, to_header_map};
use crate::config::Limits;
use crate::deflate::negotiate::server_accept;
use crate::deflate::{DeflateConfig, DeflateParams};
use crate::error::HandshakeFailure;
use base64::{engine::general_purpose::STANDARD, Engine};
use bytes::{BufMut, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, Version};

/// A validated WebSocket upgrade request. Inspect it, then [`accept`](Self::accept) or
/// answer with any status through [`write_response`].
#[derive(Clone, Debug)]
pub struct UpgradeRequest {
    method: Method,
    target: String,
    headers: HeaderMap,
    key: String,
}

impl UpgradeRequest {
    /// Parses a request from `input`. Returns `Ok(None)` while it is incomplete. On
    /// success the request's bytes are consumed. A failure carries the HTTP status to
    /// answer with ([`HandshakeFailure::status`]); [`reject`] writes that answer.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use duplex_proto::handshake::server::UpgradeRequest;
    /// let mut input = BytesMut::from(
    ///     "GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
    ///      Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    ///      Sec-WebSocket-Version: 13\r\n\r\n",
    /// );
    /// let request = UpgradeRequest::parse(&mut input, &Default::default()).unwrap().unwrap();
    /// assert_eq!(request.path(), "/chat");
    /// assert_eq!(request.query(), Some("room=1"));
    /// let mut out = BytesMut::new();
    /// request.accept(None, &Default::default(), &mut out);
    /// assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    /// ```
    pub fn parse(input: &mut BytesMut, limits: &Limits) -> Result<Option<Self>, HandshakeFailure> {
        let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
        let mut request = httparse::Request::new(&mut headers);
        let Some(len) = head_len(request.parse(input), input.len(), limits)? else {
            return Ok(None);
        };
        check_request_line(request.method, request.version)?;
        let target = request.path.unwrap_or("/").to_owned();
        let headers = to_header_map(request.headers)?;
        let _ = input.split_to(len);
        Self::validated(target, headers).map(Some)
    }

    /// Validates a request whose head was parsed elsewhere (by hyper, for an axum
    /// extractor, ...) under the same rules as [`parse`](Self::parse): method GET, HTTP/1.1,
    /// `Host`, `Upgrade: websocket`, `Connection: upgrade`, `Sec-WebSocket-Version: 13` and
    /// a 16-byte `Sec-WebSocket-Key`. A failure carries the status to answer with.
    ///
    /// ```
    /// use duplex_proto::handshake::server::UpgradeRequest;
    /// let request = http::Request::get("/chat?room=1")
    ///     .header("host", "example.com")
    ///     .header("upgrade", "websocket")
    ///     .header("connection", "Upgrade")
    ///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("sec-websocket-version", "13")
    ///     .body(())
    ///     .unwrap();
    /// let upgrade = UpgradeRequest::from_request(&request).unwrap();
    /// assert_eq!(upgrade.path(), "/chat");
    /// assert_eq!(upgrade.query(), Some("room=1"));
    /// ```
    pub fn from_request<B>(request: &http::Request<B>) -> Result<Self, HandshakeFailure> {
        Self::from_http(
            request.method(),
            request.version(),
            request.uri(),
            request.headers(),
        )
    }

    /// Like [`from_request`](Self::from_request), from the parts of a request head.
    pub fn from_http(
        method: &Method,
        version: Version,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Self, HandshakeFailure> {
        if method != Method::GET {
            return Err(HandshakeFailure::MethodNotGet(method.as_str().to_owned()));
        }
        if version != Version::HTTP_11 {
            return Err(HandshakeFailure::HttpVersion);
        }
        Self::validated(uri.to_string(), headers.clone())
    }

    fn validated(target: String, headers: HeaderMap) -> Result<Self, HandshakeFailure> {
        let key = validate(&headers)?;
        Ok(Self {
            method: Method::GET,
            target,
            headers,
            key,
        })
    }

    /// The method (always GET).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request target as sent: path and query.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path, without the query. An absolute-form target (`http://host/path`, which
    /// RFC 6455 section 4.2.1 allows) yields its path.
    pub fn path(&self) -> &str {
        match origin_form(&self.target).split('?').next() {
            Some(path) if !path.is_empty() => path,
            _ => "/",
        }
    }

    /// The query string after `?`, if any.
    pub fn query(&self) -> Option<&str> {
        origin_form(&self.target).split_once('?').map(|(_, q)| q)
    }

    /// All request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The `Origin` header, if sent.
    pub fn origin(&self) -> Option<&str> {
        self.headers.get("origin").and_then(|v| v.to_str().ok())
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &str> {
        header_list(&self.headers, "sec-websocket-protocol")
    }

    /// The `Sec-WebSocket-Key`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Writes the 101 response to `out`, choosing `protocol` (which must be one the client
    /// offered; others are not sent) and adding `extra` headers. Extensions are declined.
    pub fn accept(&self, protocol: Option<&str>, extra: &HeaderMap, out: &mut BytesMut) {
        self.accept_with_deflate(protocol, None, extra, out);
    }

    /// The permessage-deflate parameters and response header this request's offers
    /// would agree on under `config`, if any offer is acceptable.
    pub fn negotiate_deflate(&self, config: &DeflateConfig) -> Option<(DeflateParams, String)> {
        let offers = self
            .headers
            .get_all("sec-websocket-extensions")
            .iter()
            .filter_map(|v| v.to_str().ok());
        server_accept(config, offers)
    }

    /// Like [`accept`](Self::accept), and accepts permessage-deflate under `deflate`
    /// when the client offered it acceptably. Returns the agreed parameters.
    pub fn accept_with_deflate(
        &self,
        protocol: Option<&str>,
        deflate: Option<&DeflateConfig>,
        extra: &HeaderMap,
        out: &mut BytesMut,
    ) -> Option<DeflateParams> {
        let (headers, negotiated) = self.accept_headers(protocol, deflate, extra);
        write_response(StatusCode::SWITCHING_PROTOCOLS, &headers, b"", out);
        negotiated
    }

    /// The headers of the 101 response [`accept_with_deflate`](Self::accept_with_deflate)
    /// writes, with the agreed permessage-deflate parameters: for servers that write the
    /// response themselves (hyper, axum).
    ///
    /// ```
    /// use duplex_proto::deflate::DeflateConfig;
    /// use duplex_proto::handshake::server::UpgradeRequest;
    /// let request = http::Request::get("/")
    ///     .header("host", "example.com")
    ///     .header("upgrade", "websocket")
    ///     .header("connection", "Upgrade")
    ///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("sec-websocket-version", "13")
    ///     .header("sec-websocket-protocol", "chat, superchat")
    ///     .header("sec-websocket-extensions", "permessage-deflate")
    ///     .body(())
    ///     .unwrap();
    /// let upgrade = UpgradeRequest::from_request(&request).unwrap();
    /// let config = DeflateConfig::default();
    /// let (headers, deflate) = upgrade.accept_headers(Some("chat"), Some(&config), &Default::default());
    /// assert_eq!(headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /// assert_eq!(headers["sec-websocket-protocol"], "chat");
    /// assert_eq!(headers["sec-websocket-extensions"], "permessage-deflate");
    /// assert!(deflate.is_some());
    /// ```
    pub fn accept_headers(
        &self,
        protocol: Option<&str>,
        deflate: Option<&DeflateConfig>,
        extra: &HeaderMap,
    ) -> (HeaderMap, Option<DeflateParams>) {
        let mut headers = HeaderMap::new();
        headers.insert("upgrade", HeaderValue::from_static("websocket"));
        headers.insert("connection", HeaderValue::from_static("Upgrade"));
        let accept = accept_key(self.key.as_bytes());
        headers.insert(
            "sec-websocket-accept",
            HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
        );
        if let Some(p) = protocol.filter(|p| self.protocols().any(|o| o == *p)) {
            if let Ok(v) = HeaderValue::from_str(p) {
                headers.insert("sec-websocket-protocol", v);
            }
        }
        let negotiated = deflate.and_then(|config| self.negotiate_deflate(config));
        if let Some((_, response)) = &negotiated {
            if let Ok(v) = HeaderValue::from_str(response) {
                headers.insert("sec-websocket-extensions", v);
            }
        }
        for (name, value) in extra {
            headers.append(name, value.clone());
        }
        (headers, negotiated.map(|(params, _)| params))
    }
}

/// Whether a request with these headers attempts a WebSocket upgrade at all: an `Upgrade`
/// header naming `websocket`, or a `Sec-WebSocket-Key` or `Sec-WebSocket-Version` header.
/// Such a request is validated and, when broken, answered 400/405/426; any other request
/// is plain HTTP, for an HTTP handler (or 404) to answer.
///
/// ```
/// use duplex_proto::handshake::server::is_upgrade_attempt;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("host", "example.com".parse().unwrap());
/// assert!(!is_upgrade_attempt(&headers));
/// headers.insert("upgrade", "WebSocket".parse().unwrap());
/// assert!(is_upgrade_attempt(&headers));
/// ```
pub fn is_upgrade_attempt(headers: &HeaderMap) -> bool {
    headers
        .get_all("upgrade")
        .iter()
        .any(|v| has_token(v.as_bytes(), "websocket"))
        || headers.contains_key("sec-websocket-key")
        || headers.contains_key("sec-websocket-version")
}

/// A request read by [`IncomingRequest::parse`]: a WebSocket upgrade or a plain HTTP
/// request that does not attempt one.
#[derive(Debug)]
pub enum IncomingRequest {
    /// A valid WebSocket upgrade request.
    Upgrade(UpgradeRequest),
    /// A request that is not a WebSocket upgrade attempt ([`is_upgrade_attempt`]); its
    /// head only: any body is left in the input.
    Http(http::Request<()>),
}

impl IncomingRequest {
    /// Parses a request head from `input`, like [`UpgradeRequest::parse`], but returns a
    /// request that does not attempt a WebSocket upgrade as [`IncomingRequest::Http`]
    /// (any method, HTTP/1.0 or 1.1) instead of failing with 400. A request that
    /// attempts an upgrade and breaks the rules still fails with the same status as in
    /// [`UpgradeRequest::parse`]; so does a head over the limits (431) or malformed (400).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use duplex_proto::handshake::server::IncomingRequest;
    /// let mut input = BytesMut::from("GET /health HTTP/1.1\r\nHost: example.com\r\n\r\n");
    /// match IncomingRequest::parse(&mut input, &Default::default()).unwrap().unwrap() {
    ///     IncomingRequest::Http(request) => assert_eq!(request.uri().path(), "/health"),
    ///     IncomingRequest::Upgrade(_) => unreachable!(),
    /// }
    /// ```
    pub fn parse(input: &mut BytesMut, limits: &Limits) -> Result<Option<Self>, HandshakeFailure> {
        let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
        let mut request = httparse::Request::new(&mut headers);
        let Some(len) = head_len(request.parse(input), input.len(), limits)? else {
            return Ok(None);
        };
        let header_map = to_header_map(request.headers)?;
        if is_upgrade_attempt(&header_map) {
            check_request_line(request.method, request.version)?;
            let target = request.path.unwrap_or("/").to_owned();
            let _ = input.split_to(len);
            return UpgradeRequest::validated(target, header_map).map(|r| Some(Self::Upgrade(r)));
        }
        // A plain request with two Hosts is as ambiguous as an upgrade with two.
        check_single(&header_map, &["Host"])?;
        let method = request.method.unwrap_or_default();
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| HandshakeFailure::MalformedHttp(format!("method {method:?}")))?;
        let target = request.path.unwrap_or("/");
        let uri = Uri::try_from(target)
            .map_err(|_| HandshakeFailure::MalformedHttp(format!("request target {target:?}")))?;
        let version = match request.version {
            Some(0) => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        let _ = input.split_to(len);
        let mut http = http::Request::new(());
        *http.method_mut() = method;
        *http.uri_mut() = uri;
        *http.version_mut() = version;
        *http.headers_mut() = header_map;
        Ok(Some(Self::Http(http)))
    }
}

/// The `/path?query` part of a request target, also for the absolute form.
fn origin_form(target: &str) -> &str {
    let lower = |n: usize| target.get(..n).map(str::to_ascii_lowercase);
    let scheme_len = if lower(7).as_deref() == Some("http://") {
        7
    } else if lower(8).as_deref() == Some("https://") {
        8
    } else {
        return target;
    };
    let rest = &target[scheme_len..];
    // After the authority: "/path?query", "?query" (empty path) or nothing.
    rest.find(['/', '?']).map_or("", |i| &rest[i..])
}

/// An upgrade must be a GET in HTTP/1.1.
fn check_request_line(method: Option<&str>, version: Option<u8>) -> Result<(), HandshakeFailure> {
    let method = method.unwrap_or_default();
    if method != "GET" {
        return Err(HandshakeFailure::MethodNotGet(method.to_owned()));
    }
    if version != Some(1) {
        return Err(HandshakeFailure::HttpVersion);
    }
    Ok(())
}

/// Request headers that may appear only once: RFC 6455 section 11.3 for the key and
/// the version, RFC 9112 section 3.2 for `Host` (a server must answer 400).
const SINGLE_REQUEST_HEADERS: [&str; 3] = ["Host", "Sec-WebSocket-Key", "Sec-WebSocket-Version"];

/// Checks the WebSocket-specific headers and returns the key.
fn validate(headers: &HeaderMap) -> Result<String, HandshakeFailure> {
    check_single(headers, &SINGLE_REQUEST_HEADERS)?;
    if headers.get("host").is_none() {
        return Err(HandshakeFailure::MissingHeader("Host"));
    }
    let upgrade_ok = headers
        .get_all("upgrade")
        .iter()
        .any(|v| has_token(v.as_bytes(), "websocket"));
    if !upgrade_ok {
        return Err(HandshakeFailure::MissingHeader("Upgrade: websocket"));
    }
    let connection_ok = headers
        .get_all("connection")
        .iter()
        .any(|v| has_token(v.as_bytes(), "upgrade"));
    if !connection_ok {
        return Err(HandshakeFailure::MissingHeader("Connection: upgrade"));
    }
    let version = headers
        .get("sec-websocket-version")
        .ok_or(HandshakeFailure::UnsupportedVersion)?;
    if version.as_bytes().trim_ascii() != b"13" {
        return Err(HandshakeFailure::UnsupportedVersion);
    }
    let key = headers
        .get("sec-websocket-key")
        .ok_or(HandshakeFailure::MissingHeader("Sec-WebSocket-Key"))?;
    let key = key
        .to_str()
        .map_err(|_| HandshakeFailure::InvalidHeader("Sec-WebSocket-Key"))?
        .trim();
    match STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => Ok(key.to_owned()),
        _ => Err(HandshakeFailure::InvalidHeader("Sec-WebSocket-Key")),
    }
}

/// Writes the HTTP answer to a failed handshake: the failure's status, a plain-text body
/// naming the reason, and `Sec-WebSocket-Version: 13` on a version mismatch.
pub fn reject(failure: &HandshakeFailure, out: &mut BytesMut) {
    let (status, headers, body) = rejection(failure);
    write_response(status, &headers, body.as_bytes(), out);
}

/// The answer [`reject`] writes, as parts: status, headers (`Sec-WebSocket-Version: 13`
/// on a version mismatch) and the plain-text body naming the reason. For servers that
/// write the response themselves (hyper, axum).
///
/// ```
/// use duplex_proto::{handshake::server::rejection, HandshakeFailure};
/// let (status, headers, body) = rejection(&HandshakeFailure::UnsupportedVersion);
/// assert_eq!(status, 426);
/// assert_eq!(headers["sec-websocket-version"], "13");
/// assert!(body.contains("Sec-WebSocket-Version"));
/// ```
pub fn rejection(failure: &HandshakeFailure) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    if *failure == HandshakeFailure::UnsupportedVersion {
        headers.insert("sec-websocket-version", HeaderValue::from_static("13"));
    }
    (failure.status(), headers, format!("{failure}\n"))
}

/// Writes an HTTP/1.1 response with `headers` and `body` to `out`. Responses other than
/// 101 carry `Content-Length` and `Connection: close`, since the server closes after them.
pub fn write_response(status: StatusCode, headers: &HeaderMap, body: &[u8], out: &mut BytesMut) {
    out.put_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    for (name, value) in headers {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    if status != StatusCode::SWITCHING_PROTOCOLS {
        if !headers.contains_key("content-type") && !body.is_empty() {
            out.put_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
        }
        out.put_slice(
            format!("Content-Length: {}\r\nConnection: close\r\n", body.len()).as_bytes(),
        );
    }
    out.put_slice(b"\r\n");
    out.put_slice(body);
}
