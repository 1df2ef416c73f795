//! The proxy URL (`Proxy::parse`), the choice of proxy from the environment as curl
//! makes it (`Proxy::from_env`) and the builder's setting (`ProxyChoice`).

use super::no_proxy::no_proxy_matches;
use crate::error::Error;
use std::fmt;

/// How the proxy is spoken to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
    pub(super) scheme: ProxyScheme,
    /// Without brackets for IPv6.
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) credentials: Option<(String, String)>,
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
pub(super) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `url` with the password in its userinfo replaced by `***`.
pub(super) fn redact(url: &str) -> String {
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

/// Percent-decodes a URL's user name or password; `None` if the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn proxy(url: &str) -> Proxy {
        Proxy::parse(url).unwrap()
    }

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
            ("http://u:p%FF@h:1", "bad password"),
            ("http://%C3%28:p@h:1", "bad user name"),
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
}
