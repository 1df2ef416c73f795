//! Frames on the wire (RFC 6455 section 5.2): the header, masking and encoding.

mod header;
mod mask;

pub use header::{FrameHeader, OpCode, MAX_HEADER_LEN};
pub use mask::apply_mask;

use bytes::{BufMut, BytesMut};

/// Appends one complete frame to `out`: the header, then the payload, masked when `mask`
/// is given. The length uses the shortest encoding.
///
/// ```
/// use bytes::BytesMut;
/// use duplex_proto::frame::{encode_frame, OpCode};
/// let mut out = BytesMut::new();
/// encode_frame(OpCode::Text, true, None, b"hi", &mut out);
/// assert_eq!(&out[..], b"\x81\x02hi");
/// ```
pub fn encode_frame(
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    payload: &[u8],
    out: &mut BytesMut,
) {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    out.reserve(header.encoded_len() + payload.len());
    header.encode(out);
    let start = out.len();
    out.put_slice(payload);
    if let Some(mask) = mask {
        apply_mask(&mut out[start..], mask, 0);
    }
}
