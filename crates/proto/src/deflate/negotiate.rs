//! The `Sec-WebSocket-Extensions` header for permessage-deflate (RFC 7692 section 7.1).
//!
//! The server declines an offer it cannot accept (unknown or duplicate parameters,
//! invalid values) and tries the next one; the client fails the handshake on a response
//! it did not ask for or that breaks the rules.

use super::{DeflateConfig, DeflateParams};

/// The extension's registered name.
pub const NAME: &str = "permessage-deflate";

/// One extension from a header: its name and parameters (value `None` for a bare one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// The extension token.
    pub name: String,
    /// Parameters in order.
    pub params: Vec<(String, Option<String>)>,
}

/// Parses header values into extensions: `name; p1; p2=v, name2 ...`, with quoted-string
/// values (RFC 6455 section 9.1). `None` if the syntax is broken.
pub fn parse_extensions<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Vec<Extension>> {
    let mut list = Vec::new();
    for value in values {
        for item in split_outside_quotes(value, ',') {
            if item.trim().is_empty() {
                continue;
            }
            let mut parts = split_outside_quotes(item, ';').into_iter();
            let name = parts.next()?.trim();
            if !is_token(name) {
                return None;
            }
            let mut params = Vec::new();
            for p in parts {
                let (key, val) = match p.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(unquote(v.trim())?)),
                    None => (p.trim(), None),
                };
                if !is_token(key) {
                    return None;
                }
                params.push((key.to_ascii_lowercase(), val));
            }
            list.push(Extension {
                name: name.to_ascii_lowercase(),
                params,
            });
        }
    }
    Some(list)
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn unquote(v: &str) -> Option<String> {
    match v.strip_prefix('"') {
        None if is_token(v) => Some(v.to_owned()),
        None => None,
        Some(rest) => {
            let inner = rest.strip_suffix('"')?;
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next()? } else { c });
            }
            // RFC 6455: a quoted value must still be a token once unquoted.
            is_token(&out).then_some(out)
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A window size: digits 8 to 15 without a leading zero.
fn window_bits(value: &str) -> Option<u8> {
    let bits: u8 = value.parse().ok()?;
    ((8..=15).contains(&bits) && value == bits.to_string()).then_some(bits)
}

/// What one permessage-deflate parameter list says, after checking each parameter is
/// known, appears once and has a valid value.
#[derive(Default)]
struct Parsed {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value.
    client_max_window_bits: Option<Option<u8>>,
}

fn parse_params(params: &[(String, Option<String>)]) -> Result<Parsed, String> {
    let mut parsed = Parsed::default();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in params {
        if seen.contains(&key.as_str()) {
            return Err(format!("duplicate parameter {key}"));
        }
        seen.push(key);
        let bad_value = || format!("invalid value {value:?} for {key}");
        match (key.as_str(), value) {
            ("server_no_context_takeover", None) => parsed.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => parsed.client_no_context_takeover = true,
            ("server_max_window_bits", Some(v)) => {
                parsed.server_max_window_bits = Some(window_bits(v).ok_or_else(bad_value)?)
            }
            ("client_max_window_bits", None) => parsed.client_max_window_bits = Some(None),
            ("client_max_window_bits", Some(v)) => {
                parsed.client_max_window_bits = Some(Some(window_bits(v).ok_or_else(bad_value)?))
            }
            (
                "server_no_context_takeover"
                | "client_no_context_takeover"
                | "server_max_window_bits",
                _,
            ) => return Err(bad_value()),
            _ => return Err(format!("unknown parameter {key}")),
        }
    }
    Ok(parsed)
}

/// The client's offer for `config`: always `client_max_window_bits` (so the server may
/// ask for a smaller client window), and each request the config makes.
///
/// ```
/// use duplex_proto::deflate::{negotiate::client_offer, DeflateConfig};
/// assert_eq!(client_offer(&DeflateConfig::default()), "permessage-deflate; client_max_window_bits");
/// ```
pub fn client_offer(config: &DeflateConfig) -> String {
    let mut offer = String::from(NAME);
    if config.client_max_window_bits < 15 {
        offer += &format!("; client_max_window_bits={}", config.client_max_window_bits);
    } else {
        offer += "; client_max_window_bits";
    }
    if config.server_max_window_bits < 15 {
        offer += &format!("; server_max_window_bits={}", config.server_max_window_bits);
    }
    if config.client_no_context_takeover {
        offer += "; client_no_context_takeover";
    }
    if config.server_no_context_takeover {
        offer += "; server_no_context_takeover";
    }
    offer
}

/// Validates the server's answer to [`client_offer`]. `Ok(None)`: no extension accepted.
/// Any other extension, a second permessage-deflate, an unknown or duplicate parameter,
/// an invalid value, a window larger than offered, or a missing
/// `server_no_context_takeover` the client asked for is an error naming the problem.
pub fn client_accept<'a>(
    config: &DeflateConfig,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Option<DeflateParams>, String> {
    let extensions = parse_extensions(values).ok_or("malformed Sec-WebSocket-Extensions header")?;
    let ext = match extensions.as_slice() {
        [] => return Ok(None),
        [one] if one.name == NAME => one,
        [one] => return Err(format!("extension {:?} was not offered", one.name)),
        _ => return Err("more than one extension in the answer; one was offered".into()),
    };
    let p = parse_params(&ext.params)?;
    if config.server_no_context_takeover && !p.server_no_context_takeover {
        return Err("server_no_context_takeover was requested but not confirmed".into());
    }
    let server_bits = p.server_max_window_bits.unwrap_or(15);
    if server_bits > config.server_max_window_bits {
        return Err(format!(
            "server_max_window_bits={server_bits} exceeds the {} offered",
            config.server_max_window_bits
        ));
    }
    let client_bits = match p.client_max_window_bits {
        None => config.client_max_window_bits,
        Some(None) => return Err("client_max_window_bits needs a value in a response".into()),
        Some(Some(bits)) if bits > config.client_max_window_bits => {
            return Err(format!(
                "client_max_window_bits={bits} exceeds the {} offered",
                config.client_max_window_bits
            ))
        }
        Some(Some(bits)) => bits,
    };
    Ok(Some(DeflateParams {
        server_no_context_takeover: p.server_no_context_takeover,
        client_no_context_takeover: p.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    }))
}

/// Picks the first acceptable permessage-deflate offer from the client's header values
/// under the server's `config`, and returns the agreed parameters with the response
/// header value. Invalid offers are declined one by one; `None` when none is left.
///
/// ```
/// use duplex_proto::deflate::{negotiate::server_accept, DeflateConfig};
/// let offer = "permessage-deflate; server_max_window_bits=10; client_max_window_bits";
/// let (params, response) = server_accept(&DeflateConfig::default(), [offer]).unwrap();
/// assert_eq!(params.server_max_window_bits, 10);
/// assert_eq!(response, "permessage-deflate; server_max_window_bits=10");
/// ```
pub fn server_accept<'a>(
    config: &DeflateConfig,
    values: impl IntoIterator<Item = &'a str>,
) -> Option<(DeflateParams, String)> {
    let extensions = parse_extensions(values)?;
    extensions
        .iter()
        .filter(|e| e.name == NAME)
        .find_map(|offer| accept_offer(config, offer))
}

fn accept_offer(config: &DeflateConfig, offer: &Extension) -> Option<(DeflateParams, String)> {
    let p = parse_params(&offer.params).ok()?;
    let mut response = String::from(NAME);
    let server_no_context_takeover =
        p.server_no_context_takeover || config.server_no_context_takeover;
    if server_no_context_takeover {
        response += "; server_no_context_takeover";
    }
    // A client that offers client_no_context_takeover volunteers to reset; confirming it
    // binds the client and lets us release our decompressor between its messages.
    let client_no_context_takeover =
        config.client_no_context_takeover || p.client_no_context_takeover;
    if client_no_context_takeover {
        response += "; client_no_context_takeover";
    }
    let server_bits = p
        .server_max_window_bits
        .unwrap_or(15)
        .min(config.server_max_window_bits);
    if p.server_max_window_bits.is_some() || server_bits < 15 {
        response += &format!("; server_max_window_bits={server_bits}");
    }
    let client_bits = match p.client_max_window_bits {
        // The client cannot limit its window: accept its default unless we need less,
        // in which case this offer is not acceptable.
        None if config.client_max_window_bits < 15 => return None,
        None => 15,
        Some(offered) => {
            let bits = offered.unwrap_or(15).min(config.client_max_window_bits);
            if bits < 15 {
                response += &format!("; client_max_window_bits={bits}");
            }
            bits
        }
    };
    Some((
        DeflateParams {
            server_no_context_takeover,
            // Only what the response says binds the client, so the flag is exactly what
            // the response carries.
            client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        },
        response,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_params_and_quoted_values() {
        let got = parse_extensions([
            "permessage-deflate; client_max_window_bits, x-foo; a=\"10\"; b",
            "y",
        ])
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0].params,
            vec![("client_max_window_bits".to_owned(), None)]
        );
        assert_eq!(
            got[1].params,
            vec![
                ("a".to_owned(), Some("10".to_owned())),
                ("b".to_owned(), None)
            ]
        );
        assert_eq!(got[2].name, "y");
        assert!(parse_extensions(["permessage-deflate; a=\"unterminated"]).is_none());
        assert!(parse_extensions(["bad name"]).is_none());
    }
}
