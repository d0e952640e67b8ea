//! The base64 query form (MS-ASHTTP §2.2.1.1.1.1). Byte layout, little-endian (EAS-NOTES §1.3):
//!
//! ```text
//! version(1) command(1) locale(2) id-len(1) id(n) key-len(1: 0|4) key(0|4) type-len(1) type(n)
//! then parameters: tag(1) len(1) value(len), repeated
//! ```
//!
//! Every length is checked against what is left, so a short or lying blob is an error, never a
//! panic.

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

use super::command::Command;
use super::device::{DeviceId, DeviceType, PolicyKey};
use super::error::{BlobField, EncodeError, QueryError, RequestError};
use super::percent::{self, Plus};
use super::query::{CommandParams, PackedFields, ParsedQuery, QueryForm};
use super::version::ProtocolVersion;

/// Options bits (§2.2.1.1.1.1.3): the only flags the base64 form has.
const OPTION_SAVE_IN_SENT: u8 = 0x01;
const OPTION_ACCEPT_MULTIPART: u8 = 0x02;

/// The standard alphabet, read leniently: padding is stripped before decoding (clients omit it,
/// as the spec's own example does) and stray low bits in the last character are ignored.
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Parameter tags (§2.2.1.1.1.1.3). Tags 2 and 5 (CollectionName, ParentId) are not in use and
/// are refused like any unknown tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    AttachmentName = 0,
    CollectionId = 1,
    ItemId = 3,
    LongId = 4,
    Occurrence = 6,
    Options = 7,
    User = 8,
}

impl Tag {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Tag::AttachmentName),
            1 => Some(Tag::CollectionId),
            3 => Some(Tag::ItemId),
            4 => Some(Tag::LongId),
            6 => Some(Tag::Occurrence),
            7 => Some(Tag::Options),
            8 => Some(Tag::User),
            _ => None,
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Tag::AttachmentName => "AttachmentName",
            Tag::CollectionId => "CollectionId",
            Tag::ItemId => "ItemId",
            Tag::LongId => "LongId",
            Tag::Occurrence => "Occurrence",
            Tag::Options => "Options",
            Tag::User => "User",
        }
    }

    /// This tag's bit in the set of tags already seen.
    const fn bit(self) -> u16 {
        1 << self as u8
    }
}

/// A cursor over the blob that reports which field ran out.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self, field: BlobField) -> Result<u8, QueryError> {
        self.next_byte().ok_or(QueryError::Truncated(field))
    }

    fn bytes(&mut self, len: usize, field: BlobField) -> Result<&'a [u8], QueryError> {
        let (taken, rest) = self.rest.split_at_checked(len).ok_or(QueryError::Truncated(field))?;
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: BlobField) -> Result<[u8; N], QueryError> {
        self.bytes(N, field)?.try_into().map_err(|_| QueryError::Truncated(field))
    }

    /// A length byte, then that many bytes.
    fn counted(&mut self, length: BlobField, value: BlobField) -> Result<&'a [u8], QueryError> {
        let len = self.byte(length)?;
        self.bytes(usize::from(len), value)
    }

    /// The next byte, if any is left (where the end is a valid place to stop).
    fn next_byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(first)
    }
}

pub(crate) fn parse(query: &str) -> Result<ParsedQuery, RequestError> {
    let blob = decode_blob(query)?;
    let mut reader = Reader { rest: &blob };

    let version = ProtocolVersion::from_base64_byte(reader.byte(BlobField::Version)?)?;
    let code = reader.byte(BlobField::Command)?;
    let command = Command::from_code(code).ok_or(RequestError::UnknownCommandCode(code))?;
    let locale = u16::from_le_bytes(reader.array::<2>(BlobField::Locale)?);
    let device_id =
        DeviceId::from_raw_bytes(reader.counted(BlobField::DeviceIdLength, BlobField::DeviceId)?)?;
    let policy_key = match reader.byte(BlobField::PolicyKeyLength)? {
        0 => None,
        4 => Some(PolicyKey(u32::from_le_bytes(reader.array::<4>(BlobField::PolicyKey)?))),
        other => return Err(QueryError::InvalidPolicyKeyLength(other).into()),
    };
    let device_type = DeviceType::from_bytes(
        reader.counted(BlobField::DeviceTypeLength, BlobField::DeviceType)?,
    )?;

    let mut params = CommandParams::default();
    let mut user = None;
    let mut seen: u16 = 0;
    while let Some(tag_byte) = reader.next_byte() {
        let tag = Tag::from_byte(tag_byte).ok_or(QueryError::UnknownParameterTag(tag_byte))?;
        let len = reader.byte(BlobField::ParameterLength)?;
        let value = reader.bytes(usize::from(len), BlobField::ParameterValue)?;
        if seen & tag.bit() != 0 {
            return Err(QueryError::DuplicateParameter(tag.name()).into());
        }
        seen |= tag.bit();
        match tag {
            Tag::AttachmentName => params.attachment_name = text(value, tag)?,
            Tag::CollectionId => params.collection_id = text(value, tag)?,
            Tag::ItemId => params.item_id = text(value, tag)?,
            Tag::LongId => params.long_id = text(value, tag)?,
            Tag::Occurrence => params.occurrence = text(value, tag)?,
            Tag::Options => {
                // Unknown bits are ignored: they can only be future options.
                let [bits] = *value else {
                    return Err(QueryError::InvalidOptionsLength(len).into());
                };
                params.save_in_sent = bits & OPTION_SAVE_IN_SENT != 0;
                params.accept_multipart = bits & OPTION_ACCEPT_MULTIPART != 0;
            }
            // For logging only, like the plain form's User: repaired, not refused.
            Tag::User => {
                user = (!value.is_empty()).then(|| String::from_utf8_lossy(value).into_owned());
            }
        }
    }

    Ok(ParsedQuery {
        command,
        user,
        device_id,
        device_type,
        params,
        form: QueryForm::Base64(PackedFields { version, locale, policy_key }),
    })
}

/// URL-decodes first (clients may send `%2B %2F %3D`), then base64. A space can only be a `+`
/// that some hop form-decoded, so it is read as one.
fn decode_blob(query: &str) -> Result<Vec<u8>, QueryError> {
    let mut text = percent::decode(query, Plus::Literal);
    for byte in &mut text {
        if *byte == b' ' {
            *byte = b'+';
        }
    }
    while text.last() == Some(&b'=') {
        text.pop();
    }
    if text.is_empty() {
        return Err(QueryError::Empty);
    }
    LENIENT_STANDARD.decode(&text).map_err(|_| QueryError::NotBase64)
}

/// Id-like values must be UTF-8 (a lossy repair would name another item); empty means absent.
fn text(value: &[u8], tag: Tag) -> Result<Option<String>, QueryError> {
    if value.is_empty() {
        return Ok(None);
    }
    std::str::from_utf8(value)
        .map(|text| Some(text.to_owned()))
        .map_err(|_| QueryError::InvalidParameterValue(tag.name()))
}

/// Everything the blob holds, borrowed from the caller.
pub(crate) struct BlobContents<'a> {
    pub(crate) fields: PackedFields,
    pub(crate) command: Command,
    pub(crate) device_id: &'a DeviceId,
    pub(crate) device_type: &'a DeviceType,
    pub(crate) user: Option<&'a str>,
    pub(crate) params: &'a CommandParams,
}

/// Writes the blob in tag order and returns its standard, padded base64 text (what the spec
/// example shows); the caller may percent-encode it further.
pub(crate) fn encode(contents: &BlobContents<'_>) -> Result<String, EncodeError> {
    let mut blob = vec![contents.fields.version.base64_byte(), contents.command.code()];
    blob.extend_from_slice(&contents.fields.locale.to_le_bytes());
    push_counted(&mut blob, contents.device_id.as_str().as_bytes(), "DeviceId")?;
    match contents.fields.policy_key {
        Some(PolicyKey(key)) => {
            blob.push(4);
            blob.extend_from_slice(&key.to_le_bytes());
        }
        None => blob.push(0),
    }
    push_counted(&mut blob, contents.device_type.as_str().as_bytes(), "DeviceType")?;

    let params = contents.params;
    let mut options = 0;
    if params.save_in_sent {
        options |= OPTION_SAVE_IN_SENT;
    }
    if params.accept_multipart {
        options |= OPTION_ACCEPT_MULTIPART;
    }
    fn bytes(value: &Option<String>) -> Option<&[u8]> {
        value.as_deref().map(str::as_bytes)
    }
    let tagged = [
        (Tag::AttachmentName, bytes(&params.attachment_name)),
        (Tag::CollectionId, bytes(&params.collection_id)),
        (Tag::ItemId, bytes(&params.item_id)),
        (Tag::LongId, bytes(&params.long_id)),
        (Tag::Occurrence, bytes(&params.occurrence)),
        (Tag::Options, (options != 0).then_some(std::slice::from_ref(&options))),
        (Tag::User, contents.user.map(str::as_bytes)),
    ];
    for (tag, value) in tagged {
        if let Some(value) = value.filter(|value| !value.is_empty()) {
            blob.push(tag as u8);
            push_counted(&mut blob, value, tag.name())?;
        }
    }
    Ok(STANDARD.encode(blob))
}

fn push_counted(blob: &mut Vec<u8>, value: &[u8], name: &'static str) -> Result<(), EncodeError> {
    let len = u8::try_from(value.len()).map_err(|_| EncodeError::FieldTooLong(name))?;
    blob.push(len);
    blob.extend_from_slice(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ashttp::version::{LegacyVersion, VersionError};

    /// EAS-NOTES §1.3, own worked example: 16.1 SmartReply, en-US, DeviceId ABC123, policy key
    /// 3942919513, DeviceType iPhone, CollectionId 5, ItemId 5:12, Options SaveInSent.
    const OWN_EXAMPLE: [u8; 35] = [
        0xa1, 0x03, 0x09, 0x04, 0x06, b'A', b'B', b'C', b'1', b'2', b'3', 0x04, 0x59, 0x2d, 0x04,
        0xeb, 0x06, b'i', b'P', b'h', b'o', b'n', b'e', 0x01, 0x01, b'5', 0x03, 0x04, b'5', b':',
        b'1', b'2', 0x07, 0x01, 0x01,
    ];
    const OWN_EXAMPLE_TEXT: &str = "oQMJBAZBQkMxMjMEWS0E6wZpUGhvbmUBATUDBDU6MTIHAQE=";
    /// MS-ASHTTP's own example: 14.0 Sync, en-US, DeviceId v140Device, no key, SmartPhone.
    const SPEC_EXAMPLE_TEXT: &str = "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l";

    fn parse_blob(blob: &[u8]) -> Result<ParsedQuery, RequestError> {
        parse(&STANDARD.encode(blob))
    }

    fn packed(parsed: &ParsedQuery) -> PackedFields {
        match parsed.form {
            QueryForm::Base64(fields) => fields,
            QueryForm::Plain => panic!("expected the base64 form"),
        }
    }

    fn own_example_expected() -> ParsedQuery {
        ParsedQuery {
            command: Command::SmartReply,
            user: None,
            device_id: DeviceId::parse("ABC123").expect("valid id"),
            device_type: DeviceType::parse("iPhone").expect("valid type"),
            params: CommandParams {
                collection_id: Some("5".to_owned()),
                item_id: Some("5:12".to_owned()),
                save_in_sent: true,
                ..CommandParams::default()
            },
            form: QueryForm::Base64(PackedFields {
                version: ProtocolVersion::V16_1,
                locale: 0x0409,
                policy_key: Some(PolicyKey(3_942_919_513)),
            }),
        }
    }

    #[test]
    fn golden_own_example() {
        assert_eq!(STANDARD.encode(OWN_EXAMPLE), OWN_EXAMPLE_TEXT);
        let expected = own_example_expected();
        assert_eq!(parse(OWN_EXAMPLE_TEXT), Ok(expected.clone()));
        let QueryForm::Base64(fields) = expected.form else {
            panic!("expected the base64 form");
        };
        let contents = BlobContents {
            fields,
            command: expected.command,
            device_id: &expected.device_id,
            device_type: &expected.device_type,
            user: None,
            params: &expected.params,
        };
        assert_eq!(encode(&contents), Ok(OWN_EXAMPLE_TEXT.to_owned()));
    }

    #[test]
    fn golden_spec_example() {
        let parsed = parse(SPEC_EXAMPLE_TEXT).expect("the spec example parses");
        assert_eq!(parsed.command, Command::Sync);
        assert_eq!(parsed.device_id.as_str(), "v140Device");
        assert_eq!(parsed.device_type.as_str(), "SmartPhone");
        assert_eq!(parsed.user, None);
        assert_eq!(parsed.params, CommandParams::default());
        assert_eq!(
            packed(&parsed),
            PackedFields { version: ProtocolVersion::V14_0, locale: 0x0409, policy_key: None }
        );
    }

    #[test]
    fn percent_encoded_padded_and_space_mangled_text() {
        let expected = Ok(own_example_expected());
        for text in [
            "oQMJBAZBQkMxMjMEWS0E6wZpUGhvbmUBATUDBDU6MTIHAQE",
            "oQMJBAZBQkMxMjMEWS0E6wZpUGhvbmUBATUDBDU6MTIHAQE%3D",
            "oQMJBAZBQkMxMjMEWS0E6wZpUGhvbmUBATUDBDU6MTIHAQE%3d%3D",
            "%6FQMJBAZBQkMxMjMEWS0E6wZpUGhvbmUBATUDBDU6MTIHAQE=",
        ] {
            assert_eq!(parse(text), expected, "{text:?}");
        }
        // '+' and '/' in the text: percent-encoded, raw, or turned into a space by a proxy.
        let blob = [0xa1, 0x00, 0x3f, 0xf8, 0x01, b'd', 0x00, 0x01, b't'];
        let raw = STANDARD.encode(blob);
        assert!(raw.contains('+') && raw.contains('/'), "{raw}");
        let reference = parse(&raw).expect("raw base64 parses");
        assert_eq!(packed(&reference).locale, 0xf83f);
        for variant in [
            raw.replace('+', "%2B").replace('/', "%2F"),
            raw.replace('+', "%2b").replace('/', "%2f"),
            raw.replace('+', " "),
        ] {
            assert_eq!(parse(&variant), Ok(reference.clone()), "{variant:?}");
        }
    }

    /// Every prefix of the own example: a cut inside a field names that field; a cut at a
    /// parameter boundary is a valid request with fewer parameters.
    #[test]
    fn truncated_at_every_byte() {
        use BlobField as F;
        for len in 0..=OWN_EXAMPLE.len() {
            let expected_field = match len {
                0 => Some(F::Version),
                1 => Some(F::Command),
                2..=3 => Some(F::Locale),
                4 => Some(F::DeviceIdLength),
                5..=10 => Some(F::DeviceId),
                11 => Some(F::PolicyKeyLength),
                12..=15 => Some(F::PolicyKey),
                16 => Some(F::DeviceTypeLength),
                17..=22 => Some(F::DeviceType),
                24 | 27 | 33 => Some(F::ParameterLength),
                25 | 28..=31 | 34 => Some(F::ParameterValue),
                _ => None,
            };
            let result = parse_blob(&OWN_EXAMPLE[..len]);
            match expected_field {
                Some(_) if len == 0 => assert_eq!(result, Err(QueryError::Empty.into())),
                Some(field) => assert_eq!(
                    result,
                    Err(QueryError::Truncated(field).into()),
                    "prefix of {len} bytes"
                ),
                None => assert!(result.is_ok(), "prefix of {len} bytes: {result:?}"),
            }
        }
        assert_eq!(
            parse_blob(&OWN_EXAMPLE[..23]).map(|parsed| parsed.params),
            Ok(CommandParams::default())
        );
    }

    /// Every length byte set to 255: the blob cannot hold that much.
    #[test]
    fn oversized_lengths() {
        use BlobField as F;
        for (position, field) in [
            (4, F::DeviceId),
            (16, F::DeviceType),
            (24, F::ParameterValue),
            (27, F::ParameterValue),
            (33, F::ParameterValue),
        ] {
            let mut blob = OWN_EXAMPLE;
            blob[position] = 0xFF;
            assert_eq!(
                parse_blob(&blob),
                Err(QueryError::Truncated(field).into()),
                "length at {position}"
            );
        }
        let mut blob = OWN_EXAMPLE;
        blob[11] = 0xFF;
        assert_eq!(parse_blob(&blob), Err(QueryError::InvalidPolicyKeyLength(0xFF).into()));
    }

    /// Every value at every position: never a panic, and the header bytes are judged right.
    #[test]
    fn every_byte_value_at_every_position() {
        for position in 0..OWN_EXAMPLE.len() {
            for value in 0..=u8::MAX {
                let mut blob = OWN_EXAMPLE;
                blob[position] = value;
                let result = parse_blob(&blob);
                match position {
                    0 => match ProtocolVersion::from_base64_byte(value) {
                        Ok(version) => {
                            assert_eq!(result.map(|parsed| packed(&parsed).version), Ok(version))
                        }
                        Err(error) => assert_eq!(result, Err(error.into())),
                    },
                    1 => match Command::from_code(value) {
                        Some(command) => {
                            assert_eq!(result.map(|parsed| parsed.command), Ok(command));
                        }
                        None => assert_eq!(result, Err(RequestError::UnknownCommandCode(value))),
                    },
                    11 if value != 0 && value != 4 => {
                        assert_eq!(result, Err(QueryError::InvalidPolicyKeyLength(value).into()))
                    }
                    12..=15 => assert!(result.is_ok()),
                    23 if Tag::from_byte(value).is_none() => {
                        assert_eq!(result, Err(QueryError::UnknownParameterTag(value).into()))
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn version_byte_errors() {
        let mut blob = OWN_EXAMPLE;
        blob[0] = 25;
        assert_eq!(
            parse_blob(&blob),
            Err(RequestError::UnsupportedVersion(VersionError::Legacy(LegacyVersion::V2_5)))
        );
        blob[0] = 120;
        assert_eq!(
            parse_blob(&blob),
            Err(RequestError::UnsupportedVersion(VersionError::Legacy(LegacyVersion::V12_0)))
        );
        blob[0] = 150;
        assert_eq!(parse_blob(&blob), Err(RequestError::UnsupportedVersion(VersionError::Unknown)));
    }

    #[test]
    fn trailing_garbage_and_bad_parameters() {
        let with_tail = |tail: &[u8]| {
            let mut blob = OWN_EXAMPLE.to_vec();
            blob.extend_from_slice(tail);
            parse_blob(&blob)
        };
        assert_eq!(with_tail(&[2]), Err(QueryError::UnknownParameterTag(2).into()));
        assert_eq!(with_tail(&[5, 0]), Err(QueryError::UnknownParameterTag(5).into()));
        assert_eq!(with_tail(&[9]), Err(QueryError::UnknownParameterTag(9).into()));
        assert_eq!(with_tail(&[0xFF; 3]), Err(QueryError::UnknownParameterTag(0xFF).into()));
        assert_eq!(
            with_tail(&[1, 1, b'6']),
            Err(QueryError::DuplicateParameter("CollectionId").into())
        );
        assert_eq!(
            with_tail(&[4, 1, 0xFF]),
            Err(QueryError::InvalidParameterValue("LongId").into())
        );
        // Fresh blob without Options to test the Options length rule.
        let base = &OWN_EXAMPLE[..23];
        let with_options = |options: &[u8]| {
            let mut blob = base.to_vec();
            blob.extend_from_slice(options);
            parse_blob(&blob)
        };
        assert_eq!(with_options(&[7, 0]), Err(QueryError::InvalidOptionsLength(0).into()));
        assert_eq!(with_options(&[7, 2, 1, 1]), Err(QueryError::InvalidOptionsLength(2).into()));
        let flags = |bits: u8| {
            with_options(&[7, 1, bits]).map(|p| (p.params.save_in_sent, p.params.accept_multipart))
        };
        assert_eq!(flags(0x00), Ok((false, false)));
        assert_eq!(flags(0x01), Ok((true, false)));
        assert_eq!(flags(0x02), Ok((false, true)));
        assert_eq!(flags(0xFF), Ok((true, true)));
    }

    #[test]
    fn every_parameter_and_raw_device_id() {
        let mut blob = vec![0x79, 0x04, 0x07, 0x04, 0x10];
        blob.extend_from_slice(&[0xC0; 16]);
        blob.extend_from_slice(&[0x00, 0x02]);
        blob.extend_from_slice(b"SP");
        for (tag, value) in [
            (0u8, &b"att/1"[..]),
            (1, b"5"),
            (3, b"5:12"),
            (4, b"RgAAAA+x"),
            (6, b"2026-01-02T03:04:05.000Z"),
            (7, &[0x03][..]),
            (8, b"jane@example.com"),
        ] {
            blob.push(tag);
            blob.push(u8::try_from(value.len()).expect("short"));
            blob.extend_from_slice(value);
        }
        let parsed = parse_blob(&blob).expect("valid blob");
        assert_eq!(parsed.command, Command::GetAttachment);
        assert_eq!(parsed.device_id.as_str(), "C0".repeat(16));
        assert_eq!(parsed.device_type.as_str(), "SP");
        assert_eq!(parsed.user.as_deref(), Some("jane@example.com"));
        assert_eq!(
            packed(&parsed),
            PackedFields { version: ProtocolVersion::V12_1, locale: 0x0407, policy_key: None }
        );
        assert_eq!(
            parsed.params,
            CommandParams {
                attachment_name: Some("att/1".to_owned()),
                collection_id: Some("5".to_owned()),
                item_id: Some("5:12".to_owned()),
                long_id: Some("RgAAAA+x".to_owned()),
                occurrence: Some("2026-01-02T03:04:05.000Z".to_owned()),
                save_in_sent: true,
                accept_multipart: true,
            }
        );
    }

    #[test]
    fn device_field_errors() {
        // Empty device id, and an empty device type.
        assert_eq!(
            parse_blob(&[0xa1, 0x00, 0x09, 0x04, 0x00, 0x00, 0x01, b't']),
            Err(QueryError::InvalidDeviceId.into())
        );
        assert_eq!(
            parse_blob(&[0xa1, 0x00, 0x09, 0x04, 0x01, b'd', 0x00, 0x00]),
            Err(QueryError::InvalidDeviceType.into())
        );
        assert_eq!(
            parse_blob(&[0xa1, 0x00, 0x09, 0x04, 0x01, b'd', 0x00, 0x01, 0xFF]),
            Err(QueryError::InvalidDeviceType.into())
        );
    }

    #[test]
    fn text_that_is_not_base64() {
        assert_eq!(parse(""), Err(QueryError::Empty.into()));
        assert_eq!(parse("=="), Err(QueryError::Empty.into()));
        for bad in ["!!!!", "a", "abc=d", "ab%00cd", "jAAJ\u{e9}", "jA-_"] {
            assert_eq!(parse(bad), Err(QueryError::NotBase64.into()), "{bad:?}");
        }
    }

    #[test]
    fn encoder_refuses_oversized_fields() {
        let expected = own_example_expected();
        let QueryForm::Base64(fields) = expected.form else {
            panic!("expected the base64 form");
        };
        let long = "x".repeat(256);
        let params = CommandParams { item_id: Some(long.clone()), ..CommandParams::default() };
        let contents = BlobContents {
            fields,
            command: expected.command,
            device_id: &expected.device_id,
            device_type: &expected.device_type,
            user: None,
            params: &params,
        };
        assert_eq!(encode(&contents), Err(EncodeError::FieldTooLong("ItemId")));
        let contents = BlobContents { user: Some(&long), params: &expected.params, ..contents };
        assert_eq!(encode(&contents), Err(EncodeError::FieldTooLong("User")));
    }
}
