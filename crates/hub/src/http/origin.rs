//! Which browser pages may open a WebSocket to the hub: the `Origin` check.
//!
//! Browsers send `Origin` with every WebSocket handshake, and a page from any site can
//! try to connect, carrying the user's cookies. With no `allowed_origins`, only pages
//! served from the hub's own address (the Origin's host equals the `Host` header) are let
//! in; `["*"]` lets every page in and has to be written out. Entries are exact origins
//! (`https://app.example.com`, `http://localhost:3000`) or patterns with a leading `*.`
//! in the host (`https://*.example.com` matches its subdomains, not `example.com`), with
//! or without the scheme. Clients that send no Origin (the SDKs outside browsers) are not
//! browsers and are not checked.

/// Why an Origin is refused, for the 403 body and the log.
pub fn check(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> Result<(), String> {
    let Some(origin) = origin else {
        return Ok(());
    };
    if allowed.iter().any(|a| a == "*") {
        return Ok(());
    }
    let Some((scheme, authority)) = split(origin) else {
        return Err(format!(
            "Origin {origin:?} is not an origin the hub accepts"
        ));
    };
    if allowed.is_empty() {
        let same = host.is_some_and(|h| h.eq_ignore_ascii_case(authority));
        return if same {
            Ok(())
        } else {
            Err(format!(
                "Origin {origin} is not this hub's own address; list it in allowed_origins"
            ))
        };
    }
    if allowed
        .iter()
        .any(|pattern| matches(pattern, scheme, authority))
    {
        Ok(())
    } else {
        Err(format!("Origin {origin} is not in allowed_origins"))
    }
}

/// `scheme://authority` of a serialized origin, lowercased.
fn split(origin: &str) -> Option<(&str, &str)> {
    let (scheme, authority) = origin.split_once("://")?;
    if scheme.is_empty() || authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return None;
    }
    Some((scheme, authority))
}

fn matches(pattern: &str, scheme: &str, authority: &str) -> bool {
    let (pattern_scheme, pattern_authority) = match pattern.split_once("://") {
        Some((s, a)) => (Some(s), a),
        None => (None, pattern),
    };
    if pattern_scheme.is_some_and(|s| !s.eq_ignore_ascii_case(scheme)) {
        return false;
    }
    match pattern_authority.strip_prefix("*.") {
        Some(suffix) => {
            let authority = authority.to_ascii_lowercase();
            let suffix = suffix.to_ascii_lowercase();
            authority.len() > suffix.len() + 1
                && authority.ends_with(&suffix)
                && authority.as_bytes()[authority.len() - suffix.len() - 1] == b'.'
        }
        None => pattern_authority.eq_ignore_ascii_case(authority),
    }
}

/// Checks an `allowed_origins` entry when the configuration is loaded.
pub fn validate_pattern(pattern: &str) -> Result<(), String> {
    if pattern == "*" {
        return Ok(());
    }
    let authority = pattern.split_once("://").map_or(pattern, |(_, a)| a);
    let host = authority.strip_prefix("*.").unwrap_or(authority);
    if host.is_empty() || host.contains(['/', '?', '#', '@', '*']) {
        return Err(format!(
            "{pattern:?} is not an origin: write e.g. \"https://app.example.com\", \"https://*.example.com\" or \"*\""
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_origin_header_is_not_a_browser() {
        assert!(check(None, Some("hub:8080"), &[]).is_ok());
    }

    #[test]
    fn by_default_only_the_hub_s_own_pages() {
        assert!(check(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080"), &[]).is_ok());
        assert!(check(Some("http://HUB.example:80"), Some("hub.example:80"), &[]).is_ok());
        assert!(check(Some("https://evil.example"), Some("127.0.0.1:8080"), &[]).is_err());
        assert!(check(Some("http://127.0.0.1:9999"), Some("127.0.0.1:8080"), &[]).is_err());
        assert!(check(Some("null"), Some("127.0.0.1:8080"), &[]).is_err());
        assert!(check(Some("http://127.0.0.1:8080"), None, &[]).is_err());
    }

    #[test]
    fn exact_origins_and_subdomain_patterns() {
        let allowed = list(&[
            "https://app.example.com",
            "*.trusted.org",
            "http://localhost:3000",
        ]);
        let ok = |o: &str| check(Some(o), Some("hub"), &allowed).is_ok();
        assert!(ok("https://app.example.com"));
        assert!(ok("https://APP.example.com"));
        assert!(
            !ok("http://app.example.com"),
            "the scheme counts when written"
        );
        assert!(!ok("https://app.example.com:8443"), "so does the port");
        assert!(ok("https://a.trusted.org") && ok("http://b.c.trusted.org"));
        assert!(!ok("https://trusted.org"), "*. means subdomains only");
        assert!(!ok("https://eviltrusted.org"));
        assert!(!ok("https://trusted.org.evil.com"));
        assert!(ok("http://localhost:3000"));
        assert!(!ok("http://localhost:3001"));
        assert!(check(Some("https://anything.example"), Some("hub"), &list(&["*"])).is_ok());
    }

    #[test]
    fn patterns_are_checked_at_load() {
        for good in [
            "*",
            "https://app.example.com",
            "*.example.com",
            "https://*.example.com",
            "localhost:3000",
        ] {
            assert!(validate_pattern(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "https://",
            "https://a.example.com/path",
            "https://*",
            "a*.example.com",
            "https://x.com?q",
        ] {
            assert!(validate_pattern(bad).is_err(), "{bad}");
        }
    }
}
