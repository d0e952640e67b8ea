//! Byte scanning shared by the decoder (STR_I terminator) and the encoder (NUL inside text).

/// Position of the first NUL byte.
///
/// Tests eight bytes per step (a word has a zero byte iff `(w - 0x01..01) & !w & 0x80..80` is
/// non-zero): STR_I bodies carry multi-kilobyte HTML, and a byte-at-a-time loop was the
/// decoder's hot spot.
#[inline]
pub(crate) fn find_nul(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let (words, tail) = bytes.as_chunks::<8>();
    for (index, word) in words.iter().enumerate() {
        let value = u64::from_ne_bytes(*word);
        if value.wrapping_sub(ONES) & !value & HIGHS != 0 {
            let start = index * 8;
            return word.iter().position(|&byte| byte == 0).map(|found| start + found);
        }
    }
    let start = words.len() * 8;
    tail.iter().position(|&byte| byte == 0).map(|found| start + found)
}

#[cfg(test)]
mod tests {
    use super::find_nul;

    #[test]
    fn finds_the_first_nul_at_every_position() {
        for len in 0..40 {
            for nul in 0..len {
                let mut bytes = vec![0xFFu8; len];
                bytes[nul] = 0;
                if nul + 1 < len {
                    bytes[len - 1] = 0;
                }
                assert_eq!(find_nul(&bytes), Some(nul), "len {len} nul {nul}");
            }
            assert_eq!(find_nul(&vec![0x80u8; len]), None);
            assert_eq!(find_nul(&vec![0x01u8; len]), None);
        }
    }

    #[test]
    fn high_bytes_next_to_one_do_not_false_positive() {
        assert_eq!(find_nul(&[0x01, 0x80, 0x81, 0xFF, 0x01, 0x01, 0x7F, 0x80, 0x00]), Some(8));
    }
}
