//! Who the device says it is: `DeviceId`, `DeviceType` (MS-ASHTTP §2.2.1.1.1.2.3–4) and the
//! policy key it holds (§2.2.1.1.2.8). EAS-NOTES §1.2–§1.4.

use std::fmt;

use super::error::QueryError;

/// Longest textual DeviceId accepted. The ABNF says 1–32 alphanumerics, but real clients send
/// longer ids with `-`, `_` or `.` (e.g. Android builds that append a suffix), so we accept up to
/// 64 characters of `[A-Za-z0-9._-]`.
const MAX_TEXT_DEVICE_ID_LEN: usize = 64;

/// Longest non-text base64-form DeviceId accepted: its hex form must still fit the textual limit,
/// so every [`DeviceId`] obeys one rule. Real clients send 16-byte GUIDs here.
const MAX_RAW_DEVICE_ID_LEN: usize = MAX_TEXT_DEVICE_ID_LEN / 2;

/// Longest DeviceType accepted, in bytes. The value is free text (`iPhone`, `SAMSUNGSMG991B`, …);
/// the limit only keeps logs and device rules sane.
const MAX_DEVICE_TYPE_LEN: usize = 128;

/// A normalised device id, safe to use as (part of) a state key.
///
/// Invariant: 1–64 characters of `[A-Za-z0-9._-]`, whichever query form it came from:
/// * plain form: the percent-decoded value must already be such a string (anything else is
///   refused: the id namespaces per-device state, so it must not smuggle in separators);
/// * base64 form: the raw bytes are kept as text when they are such a string, and otherwise
///   (e.g. a binary GUID) written as upper-case hex, which needs them to be at most 32 bytes.
///
/// A binary id and a client sending that hex text as its id would collide; both belong to the
/// same user's account, so the only victim would be that user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

impl DeviceId {
    /// A plain-form (textual) id.
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        Self::from_text_bytes(text.as_bytes())
    }

    /// A base64-form id: text if it reads as one, otherwise hex of the raw bytes.
    pub fn from_raw_bytes(bytes: &[u8]) -> Result<Self, QueryError> {
        if let Ok(id) = Self::from_text_bytes(bytes) {
            return Ok(id);
        }
        if bytes.is_empty() || bytes.len() > MAX_RAW_DEVICE_ID_LEN {
            return Err(QueryError::InvalidDeviceId);
        }
        Ok(DeviceId(bytes.iter().map(|b| format!("{b:02X}")).collect()))
    }

    pub(crate) fn from_text_bytes(bytes: &[u8]) -> Result<Self, QueryError> {
        let well_formed = (1..=MAX_TEXT_DEVICE_ID_LEN).contains(&bytes.len())
            && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        match std::str::from_utf8(bytes) {
            Ok(text) if well_formed => Ok(DeviceId(text.to_owned())),
            _ => Err(QueryError::InvalidDeviceId),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The device's self-declared type. Invariant: 1–128 bytes of UTF-8 without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceType(String);

impl DeviceType {
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        Self::from_bytes(text.as_bytes())
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, QueryError> {
        match std::str::from_utf8(bytes) {
            Ok(text)
                if (1..=MAX_DEVICE_TYPE_LEN).contains(&text.len())
                    && !text.chars().any(char::is_control) =>
            {
                Ok(DeviceType(text.to_owned()))
            }
            _ => Err(QueryError::InvalidDeviceType),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The policy key the device presents (`X-MS-PolicyKey` or base64 field 7). `0` is a real value
/// ("no policy yet", sent on the initial Provision), distinct from sending no key at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyKey(pub u32);

impl PolicyKey {
    /// Reads the header's decimal form. Only ASCII digits (no sign, no spaces inside).
    pub fn parse_decimal(text: &str) -> Option<Self> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(PolicyKey)
    }
}

impl fmt::Display for PolicyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textual_device_ids() {
        for ok in
            ["ABC123", "v140Device", "androidc1234567890", "a", "Appl-F17_X.1", &"x".repeat(64)]
        {
            assert_eq!(DeviceId::parse(ok).map(|id| id.as_str().to_owned()), Ok(ok.to_owned()));
        }
        for bad in ["", "a b", "a/b", "a:b", "ä", "a%41", &"x".repeat(65), "a\u{0}"] {
            assert_eq!(DeviceId::parse(bad), Err(QueryError::InvalidDeviceId), "{bad:?}");
        }
    }

    #[test]
    fn raw_device_ids_are_hex_unless_they_are_text() {
        assert_eq!(
            DeviceId::from_raw_bytes(b"v140Device").map(|id| id.to_string()),
            Ok("v140Device".to_owned())
        );
        let guid = [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD,
            0xEE, 0xFF,
        ];
        assert_eq!(
            DeviceId::from_raw_bytes(&guid).map(|id| id.to_string()),
            Ok("00112233445566778899AABBCCDDEEFF".to_owned())
        );
        assert_eq!(DeviceId::from_raw_bytes(&[0xFF; 32]).map(|id| id.as_str().len()), Ok(64));
        assert_eq!(DeviceId::from_raw_bytes(&[0xFF; 33]), Err(QueryError::InvalidDeviceId));
        assert_eq!(DeviceId::from_raw_bytes(&[]), Err(QueryError::InvalidDeviceId));
        // Long text that is not a valid textual id is not hex-encoded either.
        assert_eq!(
            DeviceId::from_raw_bytes("x".repeat(65).as_bytes()),
            Err(QueryError::InvalidDeviceId)
        );
    }

    #[test]
    fn device_types() {
        for ok in ["iPhone", "SmartPhone", "Android Phone", "Gerät", &"t".repeat(128)] {
            assert!(DeviceType::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "a\tb", "a\nb", "\u{7f}", &"t".repeat(129)] {
            assert_eq!(DeviceType::parse(bad), Err(QueryError::InvalidDeviceType), "{bad:?}");
        }
        assert_eq!(DeviceType::from_bytes(&[0xC3]), Err(QueryError::InvalidDeviceType));
    }

    #[test]
    fn policy_key_decimal() {
        assert_eq!(PolicyKey::parse_decimal("0"), Some(PolicyKey(0)));
        assert_eq!(PolicyKey::parse_decimal("3942919513"), Some(PolicyKey(3_942_919_513)));
        assert_eq!(PolicyKey::parse_decimal("4294967295"), Some(PolicyKey(u32::MAX)));
        for bad in ["", "4294967296", "+1", "-1", "1 2", "0x10", "١"] {
            assert_eq!(PolicyKey::parse_decimal(bad), None, "{bad:?}");
        }
    }
}
