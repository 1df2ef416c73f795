//! Incremental UTF-8 validation, so invalid text fails as soon as the bad byte arrives,
//! even in the middle of a frame or across fragment boundaries.

/// Validates a byte stream chunk by chunk. A code point split across chunks is carried
/// over (at most 3 bytes), so the result equals validating the concatenation.
///
/// ```
/// use duplex_proto::Utf8Validator;
/// let mut v = Utf8Validator::default();
/// let euro = "€".as_bytes(); // 3 bytes
/// assert!(v.feed(&euro[..1]).is_ok());
/// assert!(!v.is_complete());
/// assert!(v.feed(&euro[1..]).is_ok());
/// assert!(v.is_complete());
/// assert!(v.feed(&[0xff]).is_err());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Utf8Validator {
    partial: [u8; 4],
    /// 0..=3 bytes of an unfinished code point (a byte: this sits in every connection).
    partial_len: u8,
}

/// Invalid UTF-8 was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// Validates the next chunk. After an error the validator must be reset.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let len = usize::from(self.partial_len);
            let width = char_width(self.partial[0]);
            let need = width - len;
            let take = need.min(bytes.len());
            let mut buf = [0u8; 4];
            buf[..len].copy_from_slice(&self.partial[..len]);
            buf[len..len + take].copy_from_slice(&bytes[..take]);
            let have = len + take;
            match std::str::from_utf8(&buf[..have]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_none() => {
                    // Still a valid prefix of a code point; wait for more.
                    self.partial = buf;
                    self.partial_len = have as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
            bytes = &bytes[take..];
        }
        match simdutf8::compat::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &bytes[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                // An incomplete code point: at most 3 bytes.
                self.partial_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Whether the input so far ends on a code point boundary.
    pub fn is_complete(&self) -> bool {
        self.partial_len == 0
    }

    /// Starts over for a new message.
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }
}

/// Width of the code point a lead byte starts. Only called on bytes that began a valid
/// prefix, so 2..=4.
fn char_width(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_all_splits(bytes: &[u8]) {
        let expected = std::str::from_utf8(bytes).is_ok();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let mut v = Utf8Validator::default();
                let ok = v.feed(&bytes[..i]).is_ok()
                    && v.feed(&bytes[i..j]).is_ok()
                    && v.feed(&bytes[j..]).is_ok()
                    && v.is_complete();
                assert_eq!(ok, expected, "{bytes:x?} split at {i},{j}");
            }
        }
    }

    #[test]
    fn matches_std_for_every_split() {
        check_all_splits("aé€𝄞z".as_bytes());
        check_all_splits(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited");
        check_all_splits(b"\xf4\x90\x80\x80");
        check_all_splits(b"\xc0\xaf");
        check_all_splits(b"ab\xf0\x9f\x98");
        check_all_splits(b"\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbd\xf4\x8f\xbf\xbf");
    }

    #[test]
    fn fails_on_the_chunk_with_the_bad_byte() {
        let mut v = Utf8Validator::default();
        assert!(v.feed(b"valid \xce").is_ok());
        assert_eq!(v.feed(b"\xff rest"), Err(InvalidUtf8));
    }
}
