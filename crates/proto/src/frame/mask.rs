//! XOR masking (RFC 6455 section 5.3).

/// XORs `data` with `mask`, as if `data` started `offset` bytes into the payload. The
/// offset lets a payload be unmasked in pieces as it arrives.
///
/// ```
/// use duplex_proto::frame::apply_mask;
/// let mask = [1, 2, 3, 4];
/// let mut whole = *b"abcdefgh";
/// apply_mask(&mut whole, mask, 0);
/// let mut pieces = *b"abcdefgh";
/// apply_mask(&mut pieces[..3], mask, 0);
/// apply_mask(&mut pieces[3..], mask, 3);
/// assert_eq!(whole, pieces);
/// ```
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut mask = mask;
    mask.rotate_left(offset % 4);
    // Word at a time: the compiler turns this into SIMD xors.
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(data: &mut [u8], mask: [u8; 4], offset: usize) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= mask[(i + offset) % 4];
        }
    }

    #[test]
    fn equals_the_byte_loop_for_every_length_and_offset() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in 0..40 {
            for offset in 0..8 {
                let mut a: Vec<u8> = (0..len as u8).collect();
                let mut b = a.clone();
                apply_mask(&mut a, mask, offset);
                naive(&mut b, mask, offset);
                assert_eq!(a, b, "len {len} offset {offset}");
            }
        }
    }
}
