//! `NO_PROXY`: which targets bypass the proxy.

use ipnet::IpNet;
use std::net::IpAddr;

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
            if name.contains('/') {
                return match (name.parse::<IpNet>(), host_ip) {
                    (Ok(net), Some(ip)) => net.contains(&ip),
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

#[cfg(test)]
mod tests {
    use super::*;

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
            ("10.1.2.3/8", "10.9.9.9", 1, true),
            ("10.0.0.0/33", "10.0.0.1", 1, false),
            ("10.0.0.0/x", "10.0.0.1", 1, false),
            ("10.0.0.0/8", "example.com", 1, false),
            ("10.0.0.0/8", "::ffff:10.0.0.1", 1, false),
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
}
