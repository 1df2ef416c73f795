//! The direct TCP connection, when no proxy is used.

use crate::error::Error;
use std::io;
use tokio::net::TcpStream;

/// Resolves `host` and connects to its addresses in turn, naming the step that failed.
pub(super) async fn connect(host: &str, port: u16) -> Result<TcpStream, Error> {
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
