//! The plain query form: `Cmd=…&User=…&DeviceId=…&DeviceType=…[&Param=…]*`
//! (MS-ASHTTP §2.2.1.1.1.2, EAS-NOTES §1.2).
//!
//! Parsed as an ordinary `key=value&…` list, in any order, keys matched case-insensitively and
//! values form-decoded (`%XY` and `+` = space, as ASP.NET and PHP servers do). Unknown keys are
//! ignored; a known key given twice is refused.

use super::command::Command;
use super::device::{DeviceId, DeviceType};
use super::error::{QueryError, RequestError};
use super::percent::{self, Plus};
use super::query::{CommandParams, ParsedQuery, QueryForm};

/// How much of an unknown `Cmd` value an error keeps, for logs.
const MAX_REPORTED_COMMAND_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Cmd,
    User,
    DeviceId,
    DeviceType,
    AttachmentName,
    CollectionId,
    ItemId,
    LongId,
    Occurrence,
    SaveInSent,
}

impl Key {
    const ALL: [Key; 10] = [
        Key::Cmd,
        Key::User,
        Key::DeviceId,
        Key::DeviceType,
        Key::AttachmentName,
        Key::CollectionId,
        Key::ItemId,
        Key::LongId,
        Key::Occurrence,
        Key::SaveInSent,
    ];

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Key::Cmd => "Cmd",
            Key::User => "User",
            Key::DeviceId => "DeviceId",
            Key::DeviceType => "DeviceType",
            Key::AttachmentName => "AttachmentName",
            Key::CollectionId => "CollectionId",
            Key::ItemId => "ItemId",
            Key::LongId => "LongId",
            Key::Occurrence => "Occurrence",
            Key::SaveInSent => "SaveInSent",
        }
    }

    fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|key| key.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// The decoded value of each known key, as given.
#[derive(Default)]
struct RawValues {
    cmd: Option<Vec<u8>>,
    user: Option<Vec<u8>>,
    device_id: Option<Vec<u8>>,
    device_type: Option<Vec<u8>>,
    attachment_name: Option<Vec<u8>>,
    collection_id: Option<Vec<u8>>,
    item_id: Option<Vec<u8>>,
    long_id: Option<Vec<u8>>,
    occurrence: Option<Vec<u8>>,
    save_in_sent: Option<Vec<u8>>,
}

impl RawValues {
    fn slot(&mut self, key: Key) -> &mut Option<Vec<u8>> {
        match key {
            Key::Cmd => &mut self.cmd,
            Key::User => &mut self.user,
            Key::DeviceId => &mut self.device_id,
            Key::DeviceType => &mut self.device_type,
            Key::AttachmentName => &mut self.attachment_name,
            Key::CollectionId => &mut self.collection_id,
            Key::ItemId => &mut self.item_id,
            Key::LongId => &mut self.long_id,
            Key::Occurrence => &mut self.occurrence,
            Key::SaveInSent => &mut self.save_in_sent,
        }
    }
}

pub(crate) fn parse(query: &str) -> Result<ParsedQuery, RequestError> {
    let mut values = RawValues::default();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(key) = Key::from_name(&percent::decode(raw_key, Plus::Space)) else {
            continue;
        };
        let slot = values.slot(key);
        if slot.is_some() {
            return Err(QueryError::DuplicateParameter(key.name()).into());
        }
        *slot = Some(percent::decode(raw_value, Plus::Space));
    }

    let cmd = required(values.cmd, Key::Cmd)?;
    let command = Command::from_name(&cmd).ok_or_else(|| {
        let name: String =
            String::from_utf8_lossy(&cmd).chars().take(MAX_REPORTED_COMMAND_LEN).collect();
        RequestError::UnknownCommand(name)
    })?;
    let device_id = DeviceId::from_text_bytes(&required(values.device_id, Key::DeviceId)?)?;
    let device_type = DeviceType::from_bytes(&required(values.device_type, Key::DeviceType)?)?;
    let user = non_empty(values.user).map(|user| String::from_utf8_lossy(&user).into_owned());
    let params = CommandParams {
        attachment_name: text(values.attachment_name, Key::AttachmentName)?,
        collection_id: text(values.collection_id, Key::CollectionId)?,
        item_id: text(values.item_id, Key::ItemId)?,
        long_id: text(values.long_id, Key::LongId)?,
        occurrence: text(values.occurrence, Key::Occurrence)?,
        save_in_sent: flag(values.save_in_sent, Key::SaveInSent)?,
        accept_multipart: false,
    };
    Ok(ParsedQuery { command, user, device_id, device_type, params, form: QueryForm::Plain })
}

fn non_empty(value: Option<Vec<u8>>) -> Option<Vec<u8>> {
    value.filter(|value| !value.is_empty())
}

fn required(value: Option<Vec<u8>>, key: Key) -> Result<Vec<u8>, QueryError> {
    non_empty(value).ok_or(QueryError::MissingParameter(key.name()))
}

/// An id-like parameter: it must be UTF-8, since a lossy repair would silently name another item.
fn text(value: Option<Vec<u8>>, key: Key) -> Result<Option<String>, QueryError> {
    non_empty(value)
        .map(|value| {
            String::from_utf8(value).map_err(|_| QueryError::InvalidParameterValue(key.name()))
        })
        .transpose()
}

/// `T` or `F` (either case); absent or empty means `F` (§2.2.1.1.1.2.5).
fn flag(value: Option<Vec<u8>>, key: Key) -> Result<bool, QueryError> {
    match non_empty(value).as_deref() {
        None | Some(b"F" | b"f") => Ok(false),
        Some(b"T" | b"t") => Ok(true),
        Some(_) => Err(QueryError::InvalidParameterValue(key.name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(query: &str) -> ParsedQuery {
        match parse(query) {
            Ok(parsed) => parsed,
            Err(error) => panic!("{query:?} should parse: {error}"),
        }
    }

    #[test]
    fn every_parameter() {
        let parsed = parse_ok(
            "Cmd=SmartReply&User=jane%40example.com&DeviceId=ABC123&DeviceType=iPhone\
             &AttachmentName=att%2F1&CollectionId=5&ItemId=5%3A12&LongId=RgAAAA%2Bx\
             &Occurrence=2026-01-02T03%3A04%3A05.000Z&SaveInSent=T",
        );
        assert_eq!(parsed.command, Command::SmartReply);
        assert_eq!(parsed.user.as_deref(), Some("jane@example.com"));
        assert_eq!(parsed.device_id.as_str(), "ABC123");
        assert_eq!(parsed.device_type.as_str(), "iPhone");
        assert_eq!(parsed.form, QueryForm::Plain);
        assert_eq!(
            parsed.params,
            CommandParams {
                attachment_name: Some("att/1".to_owned()),
                collection_id: Some("5".to_owned()),
                item_id: Some("5:12".to_owned()),
                long_id: Some("RgAAAA+x".to_owned()),
                occurrence: Some("2026-01-02T03:04:05.000Z".to_owned()),
                save_in_sent: true,
                accept_multipart: false,
            }
        );
    }

    #[test]
    fn lenient_shape() {
        // Any order, any key case, stray separators, unknown keys, keys without '='.
        let parsed = parse_ok("&&deviceTYPE=SP&foo=bar&devid&DEVICEID=dev-1.x_2&cmd=ping&");
        assert_eq!(parsed.command, Command::Ping);
        assert_eq!(parsed.device_id.as_str(), "dev-1.x_2");
        assert_eq!(parsed.device_type.as_str(), "SP");
        assert_eq!(parsed.user, None);
        assert_eq!(parsed.params, CommandParams::default());
    }

    #[test]
    fn plus_is_a_space_and_escapes_are_lenient() {
        let parsed =
            parse_ok("Cmd=Sync&DeviceId=d&DeviceType=Android+Phone&User=a+b%2Bc%&ItemId=50%");
        assert_eq!(parsed.device_type.as_str(), "Android Phone");
        assert_eq!(parsed.user.as_deref(), Some("a b+c%"));
        assert_eq!(parsed.params.item_id.as_deref(), Some("50%"));
        // Percent-encoded keys are decoded too.
        assert_eq!(parse_ok("%43md=Sync&Device%49d=d&DeviceType=t").command, Command::Sync);
    }

    #[test]
    fn empty_values_count_as_absent() {
        let parsed = parse_ok("Cmd=Sync&DeviceId=d&DeviceType=t&User=&ItemId=&SaveInSent=");
        assert_eq!(parsed.user, None);
        assert_eq!(parsed.params, CommandParams::default());
    }

    #[test]
    fn save_in_sent_values() {
        let flag_of = |value: &str| {
            parse(&format!("Cmd=SendMail&DeviceId=d&DeviceType=t&SaveInSent={value}"))
                .map(|parsed| parsed.params.save_in_sent)
        };
        assert_eq!(flag_of("T"), Ok(true));
        assert_eq!(flag_of("t"), Ok(true));
        assert_eq!(flag_of("F"), Ok(false));
        assert_eq!(flag_of("yes"), Err(QueryError::InvalidParameterValue("SaveInSent").into()));
    }

    #[test]
    fn required_parameters() {
        assert_eq!(
            parse("DeviceId=d&DeviceType=t"),
            Err(QueryError::MissingParameter("Cmd").into())
        );
        assert_eq!(
            parse("Cmd=&DeviceId=d&DeviceType=t"),
            Err(QueryError::MissingParameter("Cmd").into())
        );
        assert_eq!(
            parse("Cmd=Sync&DeviceType=t"),
            Err(QueryError::MissingParameter("DeviceId").into())
        );
        assert_eq!(
            parse("Cmd=Sync&DeviceId=d"),
            Err(QueryError::MissingParameter("DeviceType").into())
        );
    }

    #[test]
    fn refused_values() {
        assert_eq!(
            parse("Cmd=Sync&Cmd=Ping&DeviceId=d&DeviceType=t"),
            Err(QueryError::DuplicateParameter("Cmd").into())
        );
        assert_eq!(
            parse("Cmd=Sync&DeviceId=d&deviceid=e&DeviceType=t"),
            Err(QueryError::DuplicateParameter("DeviceId").into())
        );
        assert_eq!(
            parse("Cmd=Sync&DeviceId=a%2Fb&DeviceType=t"),
            Err(QueryError::InvalidDeviceId.into())
        );
        assert_eq!(
            parse("Cmd=Sync&DeviceId=d&DeviceType=%0A"),
            Err(QueryError::InvalidDeviceType.into())
        );
        assert_eq!(
            parse("Cmd=SmartReply&DeviceId=d&DeviceType=t&ItemId=%FF"),
            Err(QueryError::InvalidParameterValue("ItemId").into())
        );
    }

    #[test]
    fn non_utf8_user_is_repaired_not_refused() {
        let parsed = parse_ok("Cmd=Sync&DeviceId=d&DeviceType=t&User=j%E9r%F4me");
        assert_eq!(parsed.user.as_deref(), Some("j\u{FFFD}r\u{FFFD}me"));
    }

    #[test]
    fn unknown_commands() {
        assert_eq!(
            parse("Cmd=GetHierarchy&DeviceId=d&DeviceType=t"),
            Err(RequestError::UnknownCommand("GetHierarchy".to_owned()))
        );
        let long = "X".repeat(500);
        assert_eq!(
            parse(&format!("Cmd={long}&DeviceId=d&DeviceType=t")),
            Err(RequestError::UnknownCommand("X".repeat(64)))
        );
        assert_eq!(
            parse("Cmd=%FF&DeviceId=d&DeviceType=t"),
            Err(RequestError::UnknownCommand("\u{FFFD}".to_owned()))
        );
    }
}
