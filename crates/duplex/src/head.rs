//! Reading an HTTP head, for both roles: the client reads the server's response, the
//! server the client's request. duplex-proto parses; this loop only reads more until
//! it can.

use bytes::BytesMut;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why no head was read.
#[derive(Debug)]
pub(crate) enum HeadError<E> {
    /// The bytes read are not an acceptable head.
    Parse(E),
    /// The stream ended, or failed (`Some`), before a complete head arrived.
    Closed(Option<io::Error>),
}

/// Reads from `stream` into `input` until `parse` finds a complete head there; `parse`
/// answers `Ok(None)` while it needs more bytes. Bytes past the head stay in `input`.
/// Cancel-safe: what was read stays in `input`.
pub(crate) async fn read_head<S, T, E>(
    stream: &mut S,
    input: &mut BytesMut,
    mut parse: impl FnMut(&mut BytesMut) -> Result<Option<T>, E>,
) -> Result<T, HeadError<E>>
where
    S: AsyncRead + Unpin,
{
    loop {
        if let Some(head) = parse(input).map_err(HeadError::Parse)? {
            return Ok(head);
        }
        match stream.read_buf(input).await {
            Ok(0) => return Err(HeadError::Closed(None)),
            Ok(_) => {}
            Err(e) => return Err(HeadError::Closed(Some(e))),
        }
    }
}
