//! The client side of the opening handshake.

use super::{accept_key, check_single, has_token, head_len, header_list, to_header_map};
use crate::config::Limits;
use crate::connection::{Connection, Role};
use crate::deflate::negotiate::{client_accept, client_offer};
use crate::deflate::{DeflateConfig, DeflateParams};
use crate::error::HandshakeFailure;
use base64::{engine::general_purpose::STANDARD, Engine};
use bytes::{BufMut, BytesMut};
use http::{HeaderMap, StatusCode};

/// What the client asks for in its handshake request. `#[non_exhaustive]`: start from
/// `ClientRequest::default()` and chain the setters.
///
/// ```
/// let request = duplex_proto::handshake::client::ClientRequest::default()
///     .host("example.com".into())
///     .path("/chat".into())
///     .protocols(vec!["chat.v2".into()]);
/// assert_eq!(request.origin, None);
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClientRequest {
    /// The `Host` header: host, and port when it is not the scheme's default.
    pub host: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// The `Origin` header, if any (browsers always send one).
    pub origin: Option<String>,
    /// Subprotocols to offer, in order of preference.
    pub protocols: Vec<String>,
    /// Extra headers (authorization, cookies, ...).
    pub headers: HeaderMap,
    /// Offer permessage-deflate with this configuration.
    pub deflate: Option<DeflateConfig>,
}

/// The server's successful answer.
#[derive(Clone, Debug)]
pub struct ServerResponse {
    /// The status (always 101).
    pub status: StatusCode,
    /// All response headers.
    pub headers: HeaderMap,
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
    /// The permessage-deflate parameters, when the server accepted the offer.
    pub deflate: Option<DeflateParams>,
}

impl ClientRequest {
    /// Sets `host`: the `Host` header: host, and port when it is not the scheme's default.
    #[must_use]
    pub fn host(mut self, host: String) -> Self {
        self.host = host;
        self
    }

    /// Sets `path`: path and query, starting with `/`.
    #[must_use]
    pub fn path(mut self, path: String) -> Self {
        self.path = path;
        self
    }

    /// Sets `origin`: the `Origin` header, if any.
    #[must_use]
    pub fn origin(mut self, origin: Option<String>) -> Self {
        self.origin = origin;
        self
    }

    /// Sets `protocols`: the subprotocols to offer, in order of preference.
    #[must_use]
    pub fn protocols(mut self, protocols: Vec<String>) -> Self {
        self.protocols = protocols;
        self
    }

    /// Sets `headers`: extra headers (authorization, cookies, ...).
    #[must_use]
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// Sets `deflate`: offer permessage-deflate with this configuration.
    #[must_use]
    pub fn deflate(mut self, deflate: Option<DeflateConfig>) -> Self {
        self.deflate = deflate;
        self
    }
}

impl ServerResponse {
    /// The client connection this response opens, with permessage-deflate when the
    /// server accepted it (`deflate` is the offer's config: level and threshold).
    pub fn connection(&self, limits: Limits, deflate: Option<&DeflateConfig>) -> Connection {
        Connection::after_handshake(Role::Client, limits, self.deflate, deflate)
    }
}

/// A client handshake in progress: the request is written, the response awaited.
///
/// ```
/// use bytes::BytesMut;
/// use duplex_proto::handshake::client::{ClientHandshake, ClientRequest};
/// use duplex_proto::handshake::accept_key;
///
/// let mut out = BytesMut::new();
/// let request = ClientRequest::default().host("example.com".into()).path("/chat".into());
/// let handshake = ClientHandshake::start(&request, &mut out).unwrap();
/// assert!(out.starts_with(b"GET /chat HTTP/1.1\r\n"));
///
/// let response = format!(
///     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
///      Sec-WebSocket-Accept: {}\r\n\r\n",
///     accept_key(handshake.key().as_bytes())
/// );
/// let mut input = BytesMut::from(response.as_bytes());
/// assert!(handshake.receive(&mut input, &Default::default()).unwrap().is_some());
/// ```
#[derive(Clone, Debug)]
pub struct ClientHandshake {
    key: String,
    protocols: Vec<String>,
    deflate: Option<DeflateConfig>,
}

/// A token as RFC 2616 section 2.2 defines it: visible ASCII without separators.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

impl ClientHandshake {
    /// Writes the request for `request` to `out`, with a fresh random key. Fails, writing
    /// nothing, when the host, path or origin holds control characters (CR/LF would
    /// inject headers), the path is not `/`-rooted without spaces, or a subprotocol is
    /// not a token (RFC 2616: visible ASCII without separators) or is offered twice.
    pub fn start(request: &ClientRequest, out: &mut BytesMut) -> Result<Self, HandshakeFailure> {
        Self::start_with_key(request, rand::random(), out)
    }

    /// [`start`](Self::start) with the 16 bytes of `Sec-WebSocket-Key` given instead of
    /// random: for tests and reproducible fuzzing. RFC 6455 section 4.1 asks for a
    /// random key per connection, so anything else uses `start`.
    pub fn start_with_key(
        request: &ClientRequest,
        key: [u8; 16],
        out: &mut BytesMut,
    ) -> Result<Self, HandshakeFailure> {
        let clean = |s: &str| !s.bytes().any(|b| b.is_ascii_control());
        if request.host.is_empty() || !clean(&request.host) || request.host.contains(' ') {
            return Err(HandshakeFailure::InvalidHeader("Host"));
        }
        if !request.path.starts_with('/') || !clean(&request.path) || request.path.contains(' ') {
            return Err(HandshakeFailure::InvalidHeader("request target"));
        }
        if request.origin.as_deref().is_some_and(|o| !clean(o)) {
            return Err(HandshakeFailure::InvalidHeader("Origin"));
        }
        // RFC 6455 section 4.1: unique non-empty tokens. Anything else would inject
        // headers (CR/LF), or reach the server as other names (a comma splits one).
        let protocols = &request.protocols;
        if protocols
            .iter()
            .enumerate()
            .any(|(i, p)| !is_token(p) || protocols[..i].contains(p))
        {
            return Err(HandshakeFailure::InvalidHeader("Sec-WebSocket-Protocol"));
        }
        let key = STANDARD.encode(key);
        out.put_slice(format!("GET {} HTTP/1.1\r\n", request.path).as_bytes());
        out.put_slice(format!("Host: {}\r\n", request.host).as_bytes());
        out.put_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\n");
        out.put_slice(format!("Sec-WebSocket-Key: {key}\r\n").as_bytes());
        out.put_slice(b"Sec-WebSocket-Version: 13\r\n");
        if let Some(origin) = &request.origin {
            out.put_slice(format!("Origin: {origin}\r\n").as_bytes());
        }
        if !request.protocols.is_empty() {
            let list = request.protocols.join(", ");
            out.put_slice(format!("Sec-WebSocket-Protocol: {list}\r\n").as_bytes());
        }
        if let Some(config) = &request.deflate {
            let offer = client_offer(config);
            out.put_slice(format!("Sec-WebSocket-Extensions: {offer}\r\n").as_bytes());
        }
        for (name, value) in &request.headers {
            out.put_slice(name.as_str().as_bytes());
            out.put_slice(b": ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        Ok(Self {
            key,
            protocols: request.protocols.clone(),
            deflate: request.deflate.clone(),
        })
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Parses the response from `input`. Returns `Ok(None)` while it is incomplete; on
    /// success the response's bytes are consumed and any bytes after it (the first
    /// frames) stay in `input`.
    pub fn receive(
        &self,
        input: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<ServerResponse>, HandshakeFailure> {
        let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
        let mut response = httparse::Response::new(&mut headers);
        let Some(len) = head_len(response.parse(input), input.len(), limits)? else {
            return Ok(None);
        };
        let code = response.code.unwrap_or_default();
        if code != 101 {
            return Err(HandshakeFailure::Status(code));
        }
        let headers = to_header_map(response.headers)?;
        let _ = input.split_to(len);
        let deflate = self.validate(&headers)?;
        // The one `validate` accepted; an empty header names none.
        let protocol = header_list(&headers, "sec-websocket-protocol")
            .next()
            .map(str::to_owned);
        Ok(Some(ServerResponse {
            status: StatusCode::SWITCHING_PROTOCOLS,
            headers,
            protocol,
            deflate,
        }))
    }

    /// Checks the response headers; returns the agreed permessage-deflate parameters.
    fn validate(&self, headers: &HeaderMap) -> Result<Option<DeflateParams>, HandshakeFailure> {
        // RFC 6455 section 11.3: these must not appear more than once in a response
        // (`Sec-WebSocket-Extensions` may, per erratum 3433).
        check_single(headers, &["Sec-WebSocket-Accept", "Sec-WebSocket-Protocol"])?;
        let upgrade = headers
            .get("upgrade")
            .ok_or(HandshakeFailure::MissingHeader("Upgrade"))?;
        if !has_token(upgrade.as_bytes(), "websocket") {
            return Err(HandshakeFailure::InvalidHeader("Upgrade"));
        }
        let connection_ok = headers
            .get_all("connection")
            .iter()
            .any(|v| has_token(v.as_bytes(), "upgrade"));
        if !connection_ok {
            return Err(HandshakeFailure::InvalidHeader("Connection"));
        }
        let accept = headers
            .get("sec-websocket-accept")
            .ok_or(HandshakeFailure::MissingHeader("Sec-WebSocket-Accept"))?;
        if accept.as_bytes().trim_ascii() != accept_key(self.key.as_bytes()).as_bytes() {
            return Err(HandshakeFailure::AcceptMismatch);
        }
        let chosen: Vec<&str> = header_list(headers, "sec-websocket-protocol").collect();
        match chosen.as_slice() {
            [] => {}
            [one] if self.protocols.iter().any(|p| p == one) => {}
            _ => return Err(HandshakeFailure::UnofferedProtocol(chosen.join(", "))),
        }
        let extensions = headers
            .get_all("sec-websocket-extensions")
            .iter()
            .map(|v| v.to_str().unwrap_or("\u{0}"));
        match &self.deflate {
            Some(config) => {
                client_accept(config, extensions).map_err(HandshakeFailure::InvalidExtension)
            }
            None => match header_list(headers, "sec-websocket-extensions").next() {
                // Nothing was offered, so anything in the answer was not offered.
                Some(ext) => Err(HandshakeFailure::UnofferedExtension(ext.to_owned())),
                None => Ok(None),
            },
        }
    }
}
