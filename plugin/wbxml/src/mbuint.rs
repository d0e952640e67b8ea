//! WBXML `mb_u_int32`: big-endian base-128, high bit set on every byte but the last
//! (`300` → `82 2C`). At most 5 bytes, and the value must fit 32 bits.

/// Longest encoding of a 32-bit value: 5 × 7 bits ≥ 32 bits.
pub(crate) const MAX_LEN: usize = 5;

/// Why an `mb_u_int32` could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MbUintError {
    /// The input ended before the last byte (high bit clear).
    Truncated,
    /// More than 5 bytes, or a value above `u32::MAX`.
    Overflow,
}

/// Reads an `mb_u_int32` from the start of `bytes`; returns the value and the bytes consumed.
#[inline]
pub(crate) fn read(bytes: &[u8]) -> Result<(u32, usize), MbUintError> {
    let mut value: u32 = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        if index == MAX_LEN {
            return Err(MbUintError::Overflow);
        }
        // Shifting out any of the top 7 bits would lose data: the value needs more than 32 bits.
        if value > (u32::MAX >> 7) {
            return Err(MbUintError::Overflow);
        }
        value = (value << 7) | u32::from(byte & 0x7F);
        if byte & 0x80 == 0 {
            return Ok((value, index + 1));
        }
    }
    if bytes.len() >= MAX_LEN { Err(MbUintError::Overflow) } else { Err(MbUintError::Truncated) }
}

/// Appends the `mb_u_int32` encoding of `value`.
#[inline]
pub(crate) fn write(value: u32, out: &mut Vec<u8>) {
    let mut buffer = [0u8; MAX_LEN];
    let mut start = MAX_LEN - 1;
    let mut rest = value;
    buffer[start] = (rest & 0x7F) as u8;
    rest >>= 7;
    while rest != 0 {
        start -= 1;
        buffer[start] = 0x80 | (rest & 0x7F) as u8;
        rest >>= 7;
    }
    out.extend_from_slice(&buffer[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: u32) -> Vec<u8> {
        let mut out = Vec::new();
        write(value, &mut out);
        out
    }

    #[test]
    fn spec_examples() {
        assert_eq!(encoded(0), [0x00]);
        assert_eq!(encoded(0x29), [0x29]);
        assert_eq!(encoded(0x7F), [0x7F]);
        assert_eq!(encoded(0x80), [0x81, 0x00]);
        assert_eq!(encoded(300), [0x82, 0x2C]);
        assert_eq!(encoded(u32::MAX), [0x8F, 0xFF, 0xFF, 0xFF, 0x7F]);
    }

    #[test]
    fn round_trips_boundaries() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            268_435_455,
            268_435_456,
            u32::MAX,
        ] {
            let bytes = encoded(value);
            assert_eq!(read(&bytes), Ok((value, bytes.len())));
        }
    }

    #[test]
    fn leading_zero_groups_are_accepted() {
        assert_eq!(read(&[0x80, 0x80, 0x05]), Ok((5, 3)));
    }

    #[test]
    fn rejects_overlong_and_overflowing() {
        assert_eq!(read(&[0x90, 0x80, 0x80, 0x80, 0x00]), Err(MbUintError::Overflow));
        assert_eq!(read(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), Err(MbUintError::Overflow));
        assert_eq!(read(&[0xFF; 64]), Err(MbUintError::Overflow));
    }

    #[test]
    fn rejects_truncated() {
        assert_eq!(read(&[]), Err(MbUintError::Truncated));
        assert_eq!(read(&[0x81]), Err(MbUintError::Truncated));
        assert_eq!(read(&[0x81, 0x80, 0x80, 0x80]), Err(MbUintError::Truncated));
    }
}
