//! The opening handshake (RFC 6455 section 4): an HTTP/1.1 Upgrade exchange.
//!
//! - [`client`]: build the request, validate the server's response.
//! - [`server`]: parse and validate a request, answer 101 or an error status.

pub mod client;
pub mod server;

use base64::{engine::general_purpose::STANDARD, Engine};
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 appends to the key before hashing.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`.
///
/// ```
/// // The example from RFC 6455 section 1.3.
/// assert_eq!(
///     duplex_proto::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(ACCEPT_GUID);
    STANDARD.encode(sha.finalize())
}

/// Whether a comma-separated header value contains `token`, compared case-insensitively
/// (for `Connection: keep-alive, Upgrade` and the like).
pub(crate) fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// The comma-separated items of every header named `name`, trimmed, non-empty.
pub(crate) fn header_list<'a>(
    headers: &'a http::HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Fails on the first of `names` that appears more than once in `headers`: one value
/// must not be picked silently when two disagree (RFC 6455 section 11.3).
pub(crate) fn check_single(
    headers: &http::HeaderMap,
    names: &[&'static str],
) -> Result<(), crate::HandshakeFailure> {
    match names
        .iter()
        .find(|name| headers.get_all(**name).iter().nth(1).is_some())
    {
        Some(name) => Err(crate::HandshakeFailure::DuplicateHeader(name)),
        None => Ok(()),
    }
}

/// Copies parsed httparse headers into a `HeaderMap`, rejecting invalid names or values.
pub(crate) fn to_header_map(
    headers: &[httparse::Header<'_>],
) -> Result<http::HeaderMap, crate::HandshakeFailure> {
    let mut map = http::HeaderMap::with_capacity(headers.len());
    for h in headers {
        let name = http::HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| {
            crate::HandshakeFailure::MalformedHttp(format!("header name {:?}", h.name))
        })?;
        let value = http::HeaderValue::from_bytes(h.value)
            .map_err(|_| crate::HandshakeFailure::MalformedHttp(format!("value of {}", h.name)))?;
        map.append(name, value);
    }
    Ok(map)
}

/// Interprets an httparse result under the limits: the length of a complete head,
/// `None` while incomplete and within `max_header_bytes`, or the failure.
pub(crate) fn head_len(
    parsed: httparse::Result<usize>,
    buffered: usize,
    limits: &crate::Limits,
) -> Result<Option<usize>, crate::HandshakeFailure> {
    use crate::HandshakeFailure::{HeadersTooLarge, MalformedHttp, TooManyHeaders};
    match parsed {
        Ok(httparse::Status::Complete(len)) if len <= limits.max_header_bytes => Ok(Some(len)),
        Ok(httparse::Status::Partial) if buffered <= limits.max_header_bytes => Ok(None),
        Ok(_) => Err(HeadersTooLarge(limits.max_header_bytes)),
        Err(httparse::Error::TooManyHeaders) => Err(TooManyHeaders(limits.max_headers)),
        Err(e) => Err(MalformedHttp(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_case_insensitive_lists() {
        assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(has_token(b"UPGRADE", "upgrade"));
        assert!(!has_token(b"upgrades", "upgrade"));
        assert!(!has_token(b"", "upgrade"));
    }
}
