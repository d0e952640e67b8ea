//! Modified UTF-7, the encoding of IMAP mailbox names (RFC 3501 §5.1.3, kept in RFC 9051 for
//! servers without UTF8=ACCEPT): printable ASCII stands for itself except `&`, which is written
//! `&-`; everything else is UTF-16BE in base64 with `,` instead of `/`, between `&` and `-`.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Decodes a mailbox name as it travels on the wire; `None` if it is not valid modified UTF-7.
///
/// Non-ASCII UTF-8 is passed through: servers with UTF8=ACCEPT (RFC 6855) and some broken ones
/// send names in UTF-8, and showing them as they are beats refusing them.
pub fn decode(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let shifted = &rest[start + 1..];
        let end = shifted.find('-')?;
        let encoded = &shifted[..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            decode_utf16_base64(encoded, &mut out)?;
        }
        rest = &shifted[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Decodes like [`decode`], falling back to the raw name when it is not valid modified UTF-7.
pub fn decode_or_raw(raw: &str) -> String {
    decode(raw).unwrap_or_else(|| raw.to_string())
}

/// Encodes a UTF-8 mailbox name for the wire.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut pending: Vec<u16> = Vec::new();
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush_utf16(&mut pending, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut units));
        }
    }
    flush_utf16(&mut pending, &mut out);
    out
}

fn flush_utf16(pending: &mut Vec<u16>, out: &mut String) {
    if pending.is_empty() {
        return;
    }
    let bytes: Vec<u8> = pending.iter().flat_map(|unit| unit.to_be_bytes()).collect();
    out.push('&');
    for chunk in bytes.chunks(3) {
        let b0 = chunk[0];
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let sextets = [b0 >> 2, ((b0 & 0x03) << 4) | (b1 >> 4), ((b1 & 0x0F) << 2) | (b2 >> 6), b2];
        // no padding: a partial group writes only the sextets that carry bits
        for sextet in &sextets[..chunk.len() + 1] {
            out.push(char::from(ALPHABET[usize::from(sextet & 0x3F)]));
        }
    }
    out.push('-');
    pending.clear();
}

fn decode_utf16_base64(encoded: &str, out: &mut String) -> Option<()> {
    let mut bytes = Vec::with_capacity(encoded.len() * 3 / 4);
    let mut accumulator: u32 = 0;
    let mut bits = 0;
    for byte in encoded.bytes() {
        let value = ALPHABET.iter().position(|&a| a == byte)?;
        accumulator = (accumulator << 6) | u32::try_from(value).ok()?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push(u8::try_from((accumulator >> bits) & 0xFF).ok()?);
        }
    }
    // leftover bits must be zero padding (RFC 3501: the base64 is of whole UTF-16 units)
    if bits >= 6 || accumulator & ((1 << bits) - 1) != 0 || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units = bytes.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    for decoded in char::decode_utf16(units) {
        let ch = decoded.ok()?;
        // printable ASCII must not be base64-encoded; accepting it anyway is harmless
        out.push(ch);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_rfc_examples_and_umlauts() {
        assert_eq!(decode("&AOQ-").as_deref(), Some("ä"));
        assert_eq!(decode("&-").as_deref(), Some("&"));
        assert_eq!(decode("Tom &- Jerry").as_deref(), Some("Tom & Jerry"));
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(),
            Some("~peter/mail/台北/日本語")
        );
        assert_eq!(decode("Entw&APw-rfe").as_deref(), Some("Entwürfe"));
        assert_eq!(decode("INBOX").as_deref(), Some("INBOX"));
    }

    #[test]
    fn decodes_surrogate_pairs() {
        assert_eq!(decode(&encode("📬 Post")).as_deref(), Some("📬 Post"));
        assert_eq!(encode("📬"), "&2D3c7A-");
    }

    #[test]
    fn rejects_broken_names() {
        assert_eq!(decode("&AOQ"), None, "unterminated");
        assert_eq!(decode("&A-"), None, "not a whole UTF-16 unit");
        assert_eq!(decode("&AO!-"), None, "not base64");
        assert_eq!(decode("&2D0-"), None, "lone surrogate");
        assert_eq!(decode_or_raw("&AOQ"), "&AOQ");
    }

    #[test]
    fn encodes_and_round_trips() {
        assert_eq!(encode("ä"), "&AOQ-");
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(encode("台北"), "&U,BTFw-");
        for name in ["Entwürfe", "Gelöschte Elemente", "a&b/ü/€uro", "日本語", ""] {
            assert_eq!(decode(&encode(name)).as_deref(), Some(name));
        }
    }
}
