//! Frames on the wire (RFC 6455 section 5.2): the header, masking and encoding.

mod header;
mod mask;
mod shared;

pub use header::{FrameHeader, OpCode, MAX_HEADER_LEN};
pub use mask::apply_mask;
pub use shared::SharedFrame;

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
    FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    }
    .encode_with_payload(payload, out);
}

impl FrameHeader {
    /// Appends this header and `payload` (masked when the header has a mask) to `out`.
    /// `payload_len` must equal `payload.len()`.
    pub fn encode_with_payload(&self, payload: &[u8], out: &mut BytesMut) {
        debug_assert_eq!(self.payload_len, payload.len() as u64);
        out.reserve(self.encoded_len() + payload.len());
        self.encode(out);
        let start = out.len();
        out.put_slice(payload);
        if let Some(mask) = self.mask {
            apply_mask(&mut out[start..], mask, 0);
        }
    }
}
