//! EAS protocol versions: the `MS-ASProtocolVersion` header (MS-ASHTTP §2.2.1.1.2.6), the version
//! byte of the base64 query (§2.2.1.1.1.1) and negotiation (§3.1.3). EAS-NOTES §1.3, §1.4, §7.

use std::fmt;
use std::str::FromStr;

/// The `MS-ASProtocolVersions` value this server advertises (OPTIONS, version errors).
///
/// 2.5 and 12.0 are left out on purpose (EAS-NOTES §7): they predate AirSyncBase and the base64
/// query form, and every client we target speaks 12.1 or later.
pub const SUPPORTED_VERSIONS: &str = "12.1,14.0,14.1,16.0,16.1";

/// A protocol version this server serves. Declaration order is protocol order, so code can say
/// `version >= ProtocolVersion::V14_0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    V12_1,
    V14_0,
    V14_1,
    V16_0,
    V16_1,
}

impl ProtocolVersion {
    /// Every supported version, oldest first (the order of [`SUPPORTED_VERSIONS`]).
    pub const ALL: [ProtocolVersion; 5] = [
        ProtocolVersion::V12_1,
        ProtocolVersion::V14_0,
        ProtocolVersion::V14_1,
        ProtocolVersion::V16_0,
        ProtocolVersion::V16_1,
    ];

    /// The header spelling, e.g. `"14.1"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V12_1 => "12.1",
            ProtocolVersion::V14_0 => "14.0",
            ProtocolVersion::V14_1 => "14.1",
            ProtocolVersion::V16_0 => "16.0",
            ProtocolVersion::V16_1 => "16.1",
        }
    }

    /// The base64-query byte: the version × 10 (EAS-NOTES §1.3, field 1).
    pub const fn base64_byte(self) -> u8 {
        match self {
            ProtocolVersion::V12_1 => 121,
            ProtocolVersion::V14_0 => 140,
            ProtocolVersion::V14_1 => 141,
            ProtocolVersion::V16_0 => 160,
            ProtocolVersion::V16_1 => 161,
        }
    }

    /// Reads the base64-query version byte. `25` and `120` are recognised as 2.5 and 12.0 (which
    /// cannot legally use that form anyway) and reported as unsupported.
    pub fn from_base64_byte(byte: u8) -> Result<Self, VersionError> {
        if let Some(version) = Self::ALL.into_iter().find(|v| v.base64_byte() == byte) {
            return Ok(version);
        }
        match byte {
            25 => Err(VersionError::Legacy(LegacyVersion::V2_5)),
            120 => Err(VersionError::Legacy(LegacyVersion::V12_0)),
            _ => Err(VersionError::Unknown),
        }
    }

    /// Reads a header value such as `"16.1"` (surrounding spaces ignored).
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let text = text.trim();
        if let Some(version) = Self::ALL.into_iter().find(|v| v.as_str() == text) {
            return Ok(version);
        }
        match text {
            "2.5" => Err(VersionError::Legacy(LegacyVersion::V2_5)),
            "12.0" => Err(VersionError::Legacy(LegacyVersion::V12_0)),
            _ => Err(VersionError::Unknown),
        }
    }

    /// Whether common failures travel as a 1xx `Status` inside the command's response (14.0+)
    /// rather than as an HTTP status code (≤12.1). MS-ASCMD §2.2.2, EAS-NOTES §1.7.
    pub fn uses_status_in_body(self) -> bool {
        self >= ProtocolVersion::V14_0
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProtocolVersion {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// A real EAS version that this server does not serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyVersion {
    V2_5,
    V12_0,
}

impl LegacyVersion {
    pub const fn as_str(self) -> &'static str {
        match self {
            LegacyVersion::V2_5 => "2.5",
            LegacyVersion::V12_0 => "12.0",
        }
    }
}

/// Why a version value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionError {
    /// A version EAS defines but this server does not offer.
    Legacy(LegacyVersion),
    /// Not an EAS version at all.
    Unknown,
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionError::Legacy(version) => {
                write!(f, "protocol version {} is not supported", version.as_str())
            }
            VersionError::Unknown => f.write_str("unknown protocol version"),
        }
    }
}

impl std::error::Error for VersionError {}

/// The highest version both sides speak, given a comma-separated list such as a server's
/// `MS-ASProtocolVersions` header or a client's own list (clients pick the highest common
/// version, MS-ASHTTP §3.1.3). Entries that are not supported versions are skipped.
pub fn highest_common_version(offered: &str) -> Option<ProtocolVersion> {
    offered.split(',').filter_map(|entry| ProtocolVersion::parse(entry).ok()).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_list_matches_the_enum() {
        let joined: Vec<&str> = ProtocolVersion::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(joined.join(","), SUPPORTED_VERSIONS);
    }

    #[test]
    fn versions_are_ordered_oldest_first() {
        assert!(ProtocolVersion::ALL.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(ProtocolVersion::V16_1 >= ProtocolVersion::V14_0);
        assert!(!ProtocolVersion::V12_1.uses_status_in_body());
        assert!(ProtocolVersion::V14_0.uses_status_in_body());
        assert!(ProtocolVersion::V16_1.uses_status_in_body());
    }

    #[test]
    fn header_text_round_trips() {
        for version in ProtocolVersion::ALL {
            assert_eq!(version.as_str().parse::<ProtocolVersion>(), Ok(version));
            assert_eq!(version.to_string(), version.as_str());
        }
        assert_eq!(ProtocolVersion::parse(" 14.1 "), Ok(ProtocolVersion::V14_1));
    }

    #[test]
    fn legacy_and_unknown_versions_are_refused() {
        assert_eq!(ProtocolVersion::parse("2.5"), Err(VersionError::Legacy(LegacyVersion::V2_5)));
        assert_eq!(ProtocolVersion::parse("12.0"), Err(VersionError::Legacy(LegacyVersion::V12_0)));
        for text in ["", "15.0", "14", "14.10", "16.1.0", "v16.1", "1\u{0}6.1"] {
            assert_eq!(ProtocolVersion::parse(text), Err(VersionError::Unknown), "{text:?}");
        }
    }

    #[test]
    fn base64_bytes() {
        assert_eq!(ProtocolVersion::from_base64_byte(121), Ok(ProtocolVersion::V12_1));
        for version in ProtocolVersion::ALL {
            assert_eq!(ProtocolVersion::from_base64_byte(version.base64_byte()), Ok(version));
        }
        assert_eq!(
            ProtocolVersion::from_base64_byte(25),
            Err(VersionError::Legacy(LegacyVersion::V2_5))
        );
        assert_eq!(
            ProtocolVersion::from_base64_byte(120),
            Err(VersionError::Legacy(LegacyVersion::V12_0))
        );
        let accepted =
            (0..=u8::MAX).filter(|&b| ProtocolVersion::from_base64_byte(b).is_ok()).count();
        assert_eq!(accepted, ProtocolVersion::ALL.len());
    }

    #[test]
    fn negotiation_picks_the_highest_common_version() {
        assert_eq!(highest_common_version(SUPPORTED_VERSIONS), Some(ProtocolVersion::V16_1));
        assert_eq!(highest_common_version("2.5,12.0,12.1,14.0,14.1"), Some(ProtocolVersion::V14_1));
        assert_eq!(highest_common_version(" 14.0 , 12.1 "), Some(ProtocolVersion::V14_0));
        assert_eq!(highest_common_version("2.5,12.0"), None);
        assert_eq!(highest_common_version(""), None);
    }
}
