//! Independent peers: flate2 deflaters and inflaters, and a small inflater written here.

use super::*;

// ---------------------------------------------------------------- a reference peer

/// A raw-deflate compressor used the way a peer uses it: each message ends with a sync
/// flush whose `00 00 ff ff` tail is stripped (RFC 7692 section 7.2.1).
pub(crate) struct Deflater(Compress);

impl Deflater {
    pub(crate) fn new(level: u32, bits: u8) -> Self {
        Self(Compress::new_with_window_bits(
            Compression::new(level),
            false,
            bits,
        ))
    }

    /// Everything zlib produces for `data` with `flush`.
    pub(crate) fn feed(&mut self, data: &[u8], flush: FlushCompress) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let start = self.0.total_in();
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(1024));
            }
            let done = (self.0.total_in() - start) as usize;
            self.0.compress_vec(&data[done..], &mut out, flush).unwrap();
            let done = (self.0.total_in() - start) as usize;
            if done == data.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }

    /// One message: sync flush, tail stripped.
    pub(crate) fn message(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = self.feed(data, FlushCompress::Sync);
        assert!(out.ends_with(&TAIL), "a sync flush ends with 00 00 ff ff");
        out.truncate(out.len() - TAIL.len());
        out
    }
}

/// One message compressed by a fresh compressor with a 15-bit window.
pub(crate) fn compress(data: &[u8]) -> Vec<u8> {
    Deflater::new(6, 15).message(data)
}

/// A raw-deflate decompressor that appends the tail to each message, as RFC 7692 section
/// 7.2.2 says, and keeps its window between messages.
pub(crate) struct Inflater(Decompress);

impl Inflater {
    pub(crate) fn new() -> Self {
        Self(Decompress::new(false))
    }

    pub(crate) fn message(&mut self, payload: &[u8]) -> Result<Vec<u8>, String> {
        let mut input = payload.to_vec();
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(payload.len() * 4 + 64);
        let start = self.0.total_in();
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            let (done, produced) = ((self.0.total_in() - start) as usize, out.len());
            let status = self
                .0
                .decompress_vec(&input[done..], &mut out, FlushDecompress::Sync)
                .map_err(|e| e.to_string())?;
            let now = (self.0.total_in() - start) as usize;
            if status == Status::StreamEnd || (now == input.len() && out.len() < out.capacity()) {
                return Ok(out);
            }
            if now == done && out.len() == produced && out.len() < out.capacity() {
                return Err("no progress".into());
            }
        }
    }
}

/// One message decompressed by a fresh decompressor.
pub(crate) fn inflate(payload: &[u8]) -> Vec<u8> {
    Inflater::new().message(payload).unwrap()
}

// ---------------------------------------------------------------- an independent inflater

/// A small DEFLATE decoder (after Mark Adler's puff) that keeps all history and records
/// the farthest back-reference, to check what goes on the wire independently of zlib.
#[derive(Default)]
pub(crate) struct Puff {
    history: Vec<u8>,
    pub(crate) max_distance: usize,
}

pub(crate) struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    pub(crate) fn bit(&mut self) -> Result<u32, String> {
        let byte = *self.data.get(self.pos / 8).ok_or("ran out of input")?;
        let bit = (byte >> (self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit as u32)
    }

    pub(crate) fn bits(&mut self, n: u32) -> Result<u32, String> {
        let mut value = 0;
        for i in 0..n {
            value |= self.bit()? << i;
        }
        Ok(value)
    }

    pub(crate) fn align(&mut self) {
        self.pos = self.pos.div_ceil(8) * 8;
    }
}

pub(crate) struct Huffman {
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    pub(crate) fn new(lengths: &[u8]) -> Self {
        let mut counts = [0u16; 16];
        for &l in lengths {
            counts[l as usize] += 1;
        }
        counts[0] = 0;
        let mut offsets = [0u16; 16];
        for len in 1..15 {
            offsets[len + 1] = offsets[len] + counts[len];
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (symbol, &l) in lengths.iter().enumerate() {
            if l != 0 {
                symbols[offsets[l as usize] as usize] = symbol as u16;
                offsets[l as usize] += 1;
            }
        }
        Self { counts, symbols }
    }

    pub(crate) fn decode(&self, bits: &mut Bits<'_>) -> Result<usize, String> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.bit()? as i32;
            let count = self.counts[len] as i32;
            if code - first < count {
                return Ok(self.symbols[(index + code - first) as usize] as usize);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err("invalid Huffman code".into())
    }
}

pub(crate) const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
pub(crate) const LENGTH_EXTRA: [u32; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
pub(crate) const DISTANCE_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
pub(crate) const DISTANCE_EXTRA: [u32; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

impl Puff {
    /// Decodes one message payload (the tail appended), continuing the history.
    pub(crate) fn message(&mut self, payload: &[u8]) -> Result<Vec<u8>, String> {
        let mut data = payload.to_vec();
        data.extend_from_slice(&TAIL);
        let start = self.history.len();
        let mut bits = Bits {
            data: &data,
            pos: 0,
        };
        while bits.pos < data.len() * 8 {
            let last = bits.bit()? == 1;
            match bits.bits(2)? {
                0 => {
                    bits.align();
                    let len = bits.bits(16)?;
                    if len != !bits.bits(16)? & 0xFFFF {
                        return Err("stored block lengths do not match".into());
                    }
                    for _ in 0..len {
                        self.history.push(bits.bits(8)? as u8);
                    }
                }
                1 => {
                    let mut lengths = [8u8; 288];
                    lengths[144..256].fill(9);
                    lengths[256..280].fill(7);
                    self.codes(&mut bits, &Huffman::new(&lengths), &Huffman::new(&[5; 30]))?;
                }
                2 => {
                    let (lit, dist) = dynamic_tables(&mut bits)?;
                    self.codes(&mut bits, &lit, &dist)?;
                }
                _ => return Err("reserved block type".into()),
            }
            if last {
                bits.align();
            }
        }
        Ok(self.history[start..].to_vec())
    }

    pub(crate) fn codes(
        &mut self,
        bits: &mut Bits<'_>,
        lit: &Huffman,
        dist: &Huffman,
    ) -> Result<(), String> {
        loop {
            match lit.decode(bits)? {
                symbol @ 0..=255 => self.history.push(symbol as u8),
                256 => return Ok(()),
                symbol @ 257..=285 => {
                    let i = symbol - 257;
                    let len = LENGTH_BASE[i] as usize + bits.bits(LENGTH_EXTRA[i])? as usize;
                    let d = dist.decode(bits)?;
                    if d >= 30 {
                        return Err("invalid distance code".into());
                    }
                    let distance =
                        DISTANCE_BASE[d] as usize + bits.bits(DISTANCE_EXTRA[d])? as usize;
                    if distance > self.history.len() {
                        return Err("distance too far back".into());
                    }
                    self.max_distance = self.max_distance.max(distance);
                    for _ in 0..len {
                        let b = self.history[self.history.len() - distance];
                        self.history.push(b);
                    }
                }
                _ => return Err("invalid literal/length code".into()),
            }
        }
    }
}

pub(crate) fn dynamic_tables(bits: &mut Bits<'_>) -> Result<(Huffman, Huffman), String> {
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let nlen = bits.bits(5)? as usize + 257;
    let ndist = bits.bits(5)? as usize + 1;
    let ncode = bits.bits(4)? as usize + 4;
    let mut code_lengths = [0u8; 19];
    for &i in &ORDER[..ncode] {
        code_lengths[i] = bits.bits(3)? as u8;
    }
    let lencode = Huffman::new(&code_lengths);
    let mut lengths: Vec<u8> = Vec::with_capacity(nlen + ndist);
    while lengths.len() < nlen + ndist {
        let (value, repeat) = match lencode.decode(bits)? {
            symbol @ 0..=15 => (symbol as u8, 1),
            16 => (
                *lengths.last().ok_or("repeat without a length")?,
                3 + bits.bits(2)?,
            ),
            17 => (0, 3 + bits.bits(3)?),
            _ => (0, 11 + bits.bits(7)?),
        };
        lengths.resize(lengths.len() + repeat as usize, value);
    }
    if lengths.len() != nlen + ndist {
        return Err("too many lengths".into());
    }
    Ok((
        Huffman::new(&lengths[..nlen]),
        Huffman::new(&lengths[nlen..]),
    ))
}

#[test]
fn the_reference_inflaters_agree_with_the_rfc_examples() {
    let mut puff = Puff::default();
    assert_eq!(puff.message(&HELLO).unwrap(), b"Hello");
    assert_eq!(puff.message(&HELLO_AGAIN).unwrap(), b"Hello");
    assert_eq!(puff.max_distance, 5);
    let mut inflater = Inflater::new();
    assert_eq!(inflater.message(&HELLO).unwrap(), b"Hello");
    assert_eq!(inflater.message(&HELLO_AGAIN).unwrap(), b"Hello");
    assert_eq!(compress(b"Hello"), HELLO);
    let text = words(50_000, 1);
    assert_eq!(Puff::default().message(&compress(&text)).unwrap(), text);
}
