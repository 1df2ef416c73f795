//! The frame header: parsing from any prefix of the input, and encoding.

use crate::error::Violation;
use bytes::{BufMut, BytesMut};

/// Longest possible header: 2 fixed bytes, 8 length bytes, 4 mask bytes.
pub const MAX_HEADER_LEN: usize = 14;

/// A frame opcode. Reserved opcodes never become an `OpCode`: parsing rejects them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: first frame of a text message.
    Text,
    /// 0x2: first frame of a binary message.
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// Decodes the 4-bit opcode field.
    pub fn from_bits(bits: u8) -> Result<Self, Violation> {
        Ok(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(Violation::ReservedOpcode(other)),
        })
    }

    /// The 4-bit opcode field.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Whether this is a control opcode (close, ping, pong).
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment of a message.
    pub fin: bool,
    /// RSV1-3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on client-to-server frames.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the start of `buf`. Returns `Ok(None)` when `buf` does not
    /// hold the whole header yet, and the header with its encoded length otherwise.
    ///
    /// Checks what the header alone decides: reserved opcodes, the 64-bit length's top
    /// bit, and that control frames are short and unfragmented. Reserved bits, masking
    /// direction and limits depend on the connection and are checked there.
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, Violation> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x07;
        let opcode = OpCode::from_bits(b0 & 0x0F)?;
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut pos) = match b1 & 0x7F {
            126 => {
                let Some(b) = buf.get(2..4) else {
                    return Ok(None);
                };
                (u16::from_be_bytes([b[0], b[1]]) as u64, 4)
            }
            127 => {
                let Some(b) = buf.get(2..10) else {
                    return Ok(None);
                };
                let len = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err(Violation::LengthTopBit);
                }
                (len, 10)
            }
            n => (n as u64, 2),
        };
        if opcode.is_control() {
            if payload_len > 125 {
                return Err(Violation::ControlFrameTooLong);
            }
            if !fin {
                return Err(Violation::FragmentedControlFrame);
            }
        }
        let mask = if masked {
            let Some(m) = buf.get(pos..pos + 4) else {
                return Ok(None);
            };
            pos += 4;
            Some([m[0], m[1], m[2], m[3]])
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin,
                rsv,
                opcode,
                mask,
                payload_len,
            },
            pos,
        )))
    }

    /// Length of this header once encoded.
    pub fn encoded_len(&self) -> usize {
        let len_bytes = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Appends the header to `out`, with the shortest length encoding.
    pub fn encode(&self, out: &mut BytesMut) {
        let b0 = (self.fin as u8) << 7 | (self.rsv & 0x07) << 4 | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        out.put_u8(b0);
        match self.payload_len {
            n @ 0..=125 => out.put_u8(mask_bit | n as u8),
            n @ 126..=0xFFFF => {
                out.put_u8(mask_bit | 126);
                out.put_u16(n as u16);
            }
            n => {
                out.put_u8(mask_bit | 127);
                out.put_u64(n);
            }
        }
        if let Some(mask) = self.mask {
            out.put_slice(&mask);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(h: FrameHeader) {
        let mut out = BytesMut::new();
        h.encode(&mut out);
        assert_eq!(out.len(), h.encoded_len());
        assert_eq!(FrameHeader::parse(&out), Ok(Some((h, out.len()))));
        for cut in 0..out.len() {
            assert_eq!(FrameHeader::parse(&out[..cut]), Ok(None), "prefix {cut}");
        }
    }

    #[test]
    fn lengths_use_the_shortest_encoding() {
        for (len, header_len) in [
            (0u64, 2),
            (125, 2),
            (126, 4),
            (0xFFFF, 4),
            (0x1_0000, 10),
            (1 << 40, 10),
        ] {
            let h = FrameHeader {
                fin: true,
                rsv: 0,
                opcode: OpCode::Binary,
                mask: None,
                payload_len: len,
            };
            assert_eq!(h.encoded_len(), header_len);
            roundtrip(h);
            roundtrip(FrameHeader {
                mask: Some([1, 2, 3, 4]),
                ..h
            });
        }
    }

    #[test]
    fn reserved_opcodes_are_rejected() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                FrameHeader::parse(&[0x80 | op, 0]),
                Err(Violation::ReservedOpcode(op))
            );
        }
    }

    #[test]
    fn length_with_top_bit_is_rejected() {
        let buf = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::parse(&buf), Err(Violation::LengthTopBit));
    }

    #[test]
    fn long_control_frames_are_rejected() {
        assert_eq!(
            FrameHeader::parse(&[0x89, 126, 0, 126]),
            Err(Violation::ControlFrameTooLong)
        );
        assert!(FrameHeader::parse(&[0x89, 125]).unwrap().is_some());
    }

    #[test]
    fn fragmented_control_frames_are_rejected() {
        for op in [0x8u8, 0x9, 0xA] {
            assert_eq!(
                FrameHeader::parse(&[op, 0]),
                Err(Violation::FragmentedControlFrame)
            );
        }
    }
}
