//! The multipart ItemOperations response ([MS-ASCMD] §2.2.1.10.1.1, EAS-NOTES §4.7):
//!
//! ```text
//! PartsCount (int32 LE) | PartsCount × { Offset int32 LE, Length int32 LE } | parts…
//! ```
//!
//! Offsets count from the start of the body. Part 0 is the WBXML response; its
//! `itemoperations:Part` elements hold the indexes of the data parts (1, 2, …).

/// Content type of a multipart response (MS-ASCMD §2.2.1.10.1).
pub const CONTENT_TYPE: &str = "application/vnd.ms-sync.multipart";

/// The data parts of one response, collected while the WBXML is built.
#[derive(Debug, Default)]
pub struct Parts {
    data: Vec<Vec<u8>>,
}

impl Parts {
    /// Keeps `bytes` as the next part; returns the index to put in `itemoperations:Part`.
    pub fn push(&mut self, bytes: Vec<u8>) -> usize {
        self.data.push(bytes);
        self.data.len()
    }

    /// Total bytes of the data parts.
    pub fn len(&self) -> usize {
        self.data.iter().map(Vec::len).sum()
    }

    /// The body: `wbxml` as part 0, then the data parts. `None` if it cannot be framed (over
    /// the int32 offsets, which the callers' size budget rules out).
    pub fn into_body(self, wbxml: Vec<u8>) -> Option<Vec<u8>> {
        let count = self.data.len() + 1;
        let header = 4 + 8 * count;
        let total = header + wbxml.len() + self.len();
        let as_i32 = |value: usize| i32::try_from(value).ok().map(i32::to_le_bytes);
        let mut body = Vec::with_capacity(total);
        body.extend(as_i32(count)?);
        let mut offset = header;
        for part in std::iter::once(&wbxml).chain(&self.data) {
            body.extend(as_i32(offset)?);
            body.extend(as_i32(part.len())?);
            offset += part.len();
        }
        as_i32(total)?;
        body.extend(&wbxml);
        for part in self.data {
            body.extend(part);
        }
        Some(body)
    }
}

/// Splits a multipart body back into its parts, checking every offset and length. For tests
/// (ours and a client's view of our output).
#[cfg(test)]
pub fn split(body: &[u8]) -> Option<Vec<&[u8]>> {
    let read = |at: usize| -> Option<usize> {
        let bytes: [u8; 4] = body.get(at..at + 4)?.try_into().ok()?;
        usize::try_from(i32::from_le_bytes(bytes)).ok()
    };
    let count = read(0)?;
    let mut parts = Vec::with_capacity(count.min(1024));
    for index in 0..count {
        let offset = read(4 + 8 * index)?;
        let length = read(8 + 8 * index)?;
        parts.push(body.get(offset..offset.checked_add(length)?)?);
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_matches_the_spec_layout() {
        let mut parts = Parts::default();
        assert_eq!(parts.push(b"abc".to_vec()), 1);
        assert_eq!(parts.push(Vec::new()), 2);
        let body = parts.into_body(b"WBXML".to_vec()).expect("frames");
        // 3 parts: 4 + 3 × 8 = 28 bytes of header.
        assert_eq!(&body[..4], &3i32.to_le_bytes());
        assert_eq!(&body[4..12], &[28, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(&body[12..20], &[33, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&body[20..28], &[36, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&body[28..], b"WBXMLabc");
        assert_eq!(split(&body), Some(vec![&b"WBXML"[..], b"abc", b""]));
    }

    #[test]
    fn split_refuses_parts_outside_the_body() {
        let mut body = Parts::default().into_body(b"x".to_vec()).expect("frames");
        assert!(split(&body).is_some());
        body[8] = 9;
        assert_eq!(split(&body), None);
        assert_eq!(split(&[1, 0]), None);
    }
}
