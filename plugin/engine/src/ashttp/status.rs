//! The one place that decides how an outcome goes on the wire for a protocol version.
//!
//! MS-ASCMD §2.2.2 (EAS-NOTES §1.7, §5): from 14.0 on, a common failure is HTTP 200 with a 1xx
//! `Status` inside the command's own top-level response element; for 12.1 and earlier the same
//! condition is an HTTP status code with an empty body.

use super::command::Command;
use super::headers::{PROTOCOL_VERSIONS_HEADER, RETRY_AFTER_HEADER};
use super::version::{ProtocolVersion, SUPPORTED_VERSIONS};
use crate::http::Response;

/// `Retry-After` sent with a 503 when the caller does not choose one (MS-ASHTTP §3.2.5.1 asks
/// for the header; the value is our judgement: long enough to shed load, short for a phone).
pub const DEFAULT_RETRY_AFTER_SECS: u32 = 60;

macro_rules! common_statuses {
    ($($variant:ident = $code:literal => $name:literal,)+) => {
        /// The common status values of MS-ASCMD §2.2.2 (EAS-NOTES §5).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CommonStatus {
            $($variant = $code,)+
        }

        impl CommonStatus {
            /// Every common status, in code order.
            pub const ALL: &'static [CommonStatus] = &[$(CommonStatus::$variant,)+];

            /// The number carried in `<Status>`.
            pub const fn code(self) -> u16 {
                self as u16
            }

            /// The name MS-ASCMD gives it.
            pub const fn name(self) -> &'static str {
                match self {
                    $(CommonStatus::$variant => $name,)+
                }
            }
        }
    };
}

common_statuses! {
    InvalidContent = 101 => "InvalidContent",
    InvalidWbxml = 102 => "InvalidWBXML",
    InvalidXml = 103 => "InvalidXML",
    InvalidDateTime = 104 => "InvalidDateTime",
    InvalidCombinationOfIds = 105 => "InvalidCombinationOfIDs",
    InvalidIds = 106 => "InvalidIDs",
    InvalidMime = 107 => "InvalidMIME",
    DeviceIdMissingOrInvalid = 108 => "DeviceIdMissingOrInvalid",
    DeviceTypeMissingOrInvalid = 109 => "DeviceTypeMissingOrInvalid",
    ServerError = 110 => "ServerError",
    ServerErrorRetryLater = 111 => "ServerErrorRetryLater",
    ActiveDirectoryAccessDenied = 112 => "ActiveDirectoryAccessDenied",
    MailboxQuotaExceeded = 113 => "MailboxQuotaExceeded",
    MailboxServerOffline = 114 => "MailboxServerOffline",
    SendQuotaExceeded = 115 => "SendQuotaExceeded",
    MessageRecipientUnresolved = 116 => "MessageRecipientUnresolved",
    MessageReplyNotAllowed = 117 => "MessageReplyNotAllowed",
    MessagePreviouslySent = 118 => "MessagePreviouslySent",
    MessageHasNoRecipient = 119 => "MessageHasNoRecipient",
    MailSubmissionFailed = 120 => "MailSubmissionFailed",
    MessageReplyFailed = 121 => "MessageReplyFailed",
    AttachmentIsTooLarge = 122 => "AttachmentIsTooLarge",
    UserHasNoMailbox = 123 => "UserHasNoMailbox",
    UserCannotBeAnonymous = 124 => "UserCannotBeAnonymous",
    UserPrincipalCouldNotBeFound = 125 => "UserPrincipalCouldNotBeFound",
    UserDisabledForSync = 126 => "UserDisabledForSync",
    UserOnNewMailboxCannotSync = 127 => "UserOnNewMailboxCannotSync",
    UserOnLegacyMailboxCannotSync = 128 => "UserOnLegacyMailboxCannotSync",
    DeviceIsBlockedForThisUser = 129 => "DeviceIsBlockedForThisUser",
    AccessDenied = 130 => "AccessDenied",
    AccountDisabled = 131 => "AccountDisabled",
    SyncStateNotFound = 132 => "SyncStateNotFound",
    SyncStateLocked = 133 => "SyncStateLocked",
    SyncStateCorrupt = 134 => "SyncStateCorrupt",
    SyncStateAlreadyExists = 135 => "SyncStateAlreadyExists",
    SyncStateVersionInvalid = 136 => "SyncStateVersionInvalid",
    CommandNotSupported = 137 => "CommandNotSupported",
    VersionNotSupported = 138 => "VersionNotSupported",
    DeviceNotFullyProvisionable = 139 => "DeviceNotFullyProvisionable",
    RemoteWipeRequested = 140 => "RemoteWipeRequested",
    LegacyDeviceOnStrictPolicy = 141 => "LegacyDeviceOnStrictPolicy",
    DeviceNotProvisioned = 142 => "DeviceNotProvisioned",
    PolicyRefresh = 143 => "PolicyRefresh",
    InvalidPolicyKey = 144 => "InvalidPolicyKey",
    ExternallyManagedDevicesNotAllowed = 145 => "ExternallyManagedDevicesNotAllowed",
    NoRecurrenceInCalendar = 146 => "NoRecurrenceInCalendar",
    UnexpectedItemClass = 147 => "UnexpectedItemClass",
    RemoteServerHasNoSsl = 148 => "RemoteServerHasNoSSL",
    InvalidStoredRequest = 149 => "InvalidStoredRequest",
    ItemNotFound = 150 => "ItemNotFound",
    TooManyFolders = 151 => "TooManyFolders",
    NoFoldersFound = 152 => "NoFoldersFound",
    ItemsLostAfterMove = 153 => "ItemsLostAfterMove",
    FailureInMoveOperation = 154 => "FailureInMoveOperation",
    MoveCommandDisallowedForNonPersistentMoveAction = 155 => "MoveCommandDisallowedForNonPersistentMoveAction",
    MoveCommandInvalidDestinationFolder = 156 => "MoveCommandInvalidDestinationFolder",
    AvailabilityTooManyRecipients = 160 => "AvailabilityTooManyRecipients",
    AvailabilityDlLimitReached = 161 => "AvailabilityDLLimitReached",
    AvailabilityTransientFailure = 162 => "AvailabilityTransientFailure",
    AvailabilityFailure = 163 => "AvailabilityFailure",
    BodyPartPreferenceTypeNotSupported = 164 => "BodyPartPreferenceTypeNotSupported",
    DeviceInformationRequired = 165 => "DeviceInformationRequired",
    InvalidAccountId = 166 => "InvalidAccountId",
    AccountSendDisabled = 167 => "AccountSendDisabled",
    IrmFeatureDisabled = 168 => "IRM_FeatureDisabled",
    IrmTransientError = 169 => "IRM_TransientError",
    IrmPermanentError = 170 => "IRM_PermanentError",
    IrmInvalidTemplateId = 171 => "IRM_InvalidTemplateID",
    IrmOperationNotPermitted = 172 => "IRM_OperationNotPermitted",
    NoPicture = 173 => "NoPicture",
    PictureTooLarge = 174 => "PictureTooLarge",
    PictureLimitReached = 175 => "PictureLimitReached",
    BodyPartConversationTooLarge = 176 => "BodyPart_ConversationTooLarge",
    MaximumDevicesReached = 177 => "MaximumDevicesReached",
    InvalidMimeBodyCombination = 178 => "InvalidMimeBodyCombination",
    InvalidSmartForwardParameters = 179 => "InvalidSmartForwardParameters",
    InvalidRecipients = 183 => "InvalidRecipients",
    OneOrMoreExceptionsFailed = 184 => "OneOrMoreExceptionsFailed",
}

impl CommonStatus {
    /// The status with this number, if it is a common status.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.code() == code)
    }

    /// The HTTP code that stands for this status in 12.1 and earlier.
    ///
    /// Bracketed equivalents of MS-ASCMD §2.2.2 (EAS-NOTES §5, §1.7) are followed exactly,
    /// including their per-command exceptions. The spec gives none for the other statuses
    /// (most belong to features that 12.1 lacks); for those we pick the code of the
    /// spec-mapped status they resemble: bad input → 400 (like 101–103), "not allowed" → 403
    /// (like 112/125/126), transient → 503 (like 111), anything else → 500 (like 110).
    fn http_equivalent(self, command: Option<Command>, policy_key_sent: bool) -> u16 {
        use CommonStatus::*;
        match self {
            // Spec-given equivalents.
            InvalidContent | InvalidWbxml | InvalidXml | VersionNotSupported => 400,
            InvalidIds if command == Some(Command::SendMail) => 500,
            InvalidIds => 400,
            ServerError => 500,
            ServerErrorRetryLater => 503,
            ActiveDirectoryAccessDenied | UserPrincipalCouldNotBeFound | UserDisabledForSync => 403,
            MailboxQuotaExceeded => 507,
            SyncStateNotFound if command == Some(Command::Provision) => 500,
            SyncStateNotFound => 403,
            CommandNotSupported => 501,
            // 449 asks the client to run Provision; a client that sent no policy key does not
            // take part in provisioning, so it is simply refused.
            RemoteWipeRequested if !policy_key_sent => 403,
            RemoteWipeRequested
            | LegacyDeviceOnStrictPolicy
            | DeviceNotProvisioned
            | PolicyRefresh
            | InvalidPolicyKey => 449,

            // Our judgement, by resemblance (see above).
            InvalidDateTime
            | InvalidCombinationOfIds
            | InvalidMime
            | DeviceIdMissingOrInvalid
            | DeviceTypeMissingOrInvalid
            | NoRecurrenceInCalendar
            | UnexpectedItemClass
            | InvalidStoredRequest
            | ItemNotFound
            | MoveCommandDisallowedForNonPersistentMoveAction
            | MoveCommandInvalidDestinationFolder
            | AvailabilityTooManyRecipients
            | AvailabilityDlLimitReached
            | BodyPartPreferenceTypeNotSupported
            | DeviceInformationRequired
            | InvalidAccountId
            | IrmInvalidTemplateId
            | NoPicture
            | PictureTooLarge
            | PictureLimitReached
            | BodyPartConversationTooLarge
            | InvalidMimeBodyCombination
            | InvalidSmartForwardParameters
            | InvalidRecipients => 400,
            UserHasNoMailbox
            | UserCannotBeAnonymous
            | UserOnNewMailboxCannotSync
            | UserOnLegacyMailboxCannotSync
            | DeviceIsBlockedForThisUser
            | AccessDenied
            | AccountDisabled
            | DeviceNotFullyProvisionable
            | ExternallyManagedDevicesNotAllowed
            | AccountSendDisabled
            | IrmFeatureDisabled
            | IrmOperationNotPermitted
            | MaximumDevicesReached => 403,
            MailboxServerOffline
            | SyncStateLocked
            | AvailabilityTransientFailure
            | IrmTransientError => 503,
            // ≤12.1 SendMail answers every submission failure with 500 (cf. 106 above).
            SendQuotaExceeded
            | MessageRecipientUnresolved
            | MessageReplyNotAllowed
            | MessagePreviouslySent
            | MessageHasNoRecipient
            | MailSubmissionFailed
            | MessageReplyFailed
            | AttachmentIsTooLarge
            | SyncStateCorrupt
            | SyncStateAlreadyExists
            | SyncStateVersionInvalid
            | RemoteServerHasNoSsl
            | TooManyFolders
            | NoFoldersFound
            | ItemsLostAfterMove
            | FailureInMoveOperation
            | AvailabilityFailure
            | IrmPermanentError
            | OneOrMoreExceptionsFailed => 500,
        }
    }
}

/// What the reply depends on besides the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyContext {
    pub version: ProtocolVersion,
    pub command: Command,
    /// Whether the request carried a policy key (header or base64 field), even `0`.
    pub policy_key_sent: bool,
}

/// How an outcome is put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireForm {
    /// ≤12.1: answer with this bodiless HTTP reply.
    Http(HttpReply),
    /// 14.0+: HTTP 200, and the command puts `<Status>` with this value inside its top-level
    /// response element (e.g. `FolderSync > Status`).
    StatusInBody(u16),
}

/// The wire form of `status` for a request.
pub fn wire_form(status: CommonStatus, context: &ReplyContext) -> WireForm {
    if context.version.uses_status_in_body() {
        WireForm::StatusInBody(status.code())
    } else {
        let code = status.http_equivalent(Some(context.command), context.policy_key_sent);
        WireForm::Http(HttpReply::with_status_headers(status, code))
    }
}

/// A bodiless HTTP answer: the ≤12.1 form of a common status, and the answer to every request
/// refused before a command ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpReply {
    code: u16,
    retry_after_secs: Option<u32>,
    advertise_versions: bool,
}

impl HttpReply {
    /// A reply with this code; a 503 gets [`DEFAULT_RETRY_AFTER_SECS`].
    pub fn new(code: u16) -> Self {
        HttpReply {
            code,
            retry_after_secs: (code == 503).then_some(DEFAULT_RETRY_AFTER_SECS),
            advertise_versions: false,
        }
    }

    /// The HTTP answer to a request refused with `status` before any command ran (no command
    /// or no usable version, so the context cannot matter).
    pub(crate) fn for_request_line(status: CommonStatus) -> Self {
        Self::with_status_headers(status, status.http_equivalent(None, false))
    }

    /// A version refusal carries `MS-ASProtocolVersions` so the client can choose again
    /// (MS-ASHTTP §2.2.2.1.2.8, §3.1.3).
    fn with_status_headers(status: CommonStatus, code: u16) -> Self {
        HttpReply {
            advertise_versions: status == CommonStatus::VersionNotSupported,
            ..Self::new(code)
        }
    }

    /// Overrides the `Retry-After` seconds (sent whatever the code).
    pub fn with_retry_after(self, seconds: u32) -> Self {
        HttpReply { retry_after_secs: Some(seconds), ..self }
    }

    pub fn code(&self) -> u16 {
        self.code
    }

    pub fn retry_after_secs(&self) -> Option<u32> {
        self.retry_after_secs
    }

    pub fn advertises_versions(&self) -> bool {
        self.advertise_versions
    }

    /// The response: no body, `Content-Length: 0` (EAS-NOTES §1.5, §8), plus `Retry-After`
    /// and `MS-ASProtocolVersions` when they apply.
    pub fn into_response(self) -> Response {
        let mut response = Response::new(self.code).with_header("Content-Length", "0");
        if let Some(seconds) = self.retry_after_secs {
            response = response.with_header(RETRY_AFTER_HEADER, seconds.to_string());
        }
        if self.advertise_versions {
            response = response.with_header(PROTOCOL_VERSIONS_HEADER, SUPPORTED_VERSIONS);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CommonStatus::*;

    /// Every status with its ≤12.1 HTTP code for an ordinary command (Sync) that sent a key.
    const LEGACY_TABLE: &[(CommonStatus, u16)] = &[
        (InvalidContent, 400),
        (InvalidWbxml, 400),
        (InvalidXml, 400),
        (InvalidDateTime, 400),
        (InvalidCombinationOfIds, 400),
        (InvalidIds, 400),
        (InvalidMime, 400),
        (DeviceIdMissingOrInvalid, 400),
        (DeviceTypeMissingOrInvalid, 400),
        (ServerError, 500),
        (ServerErrorRetryLater, 503),
        (ActiveDirectoryAccessDenied, 403),
        (MailboxQuotaExceeded, 507),
        (MailboxServerOffline, 503),
        (SendQuotaExceeded, 500),
        (MessageRecipientUnresolved, 500),
        (MessageReplyNotAllowed, 500),
        (MessagePreviouslySent, 500),
        (MessageHasNoRecipient, 500),
        (MailSubmissionFailed, 500),
        (MessageReplyFailed, 500),
        (AttachmentIsTooLarge, 500),
        (UserHasNoMailbox, 403),
        (UserCannotBeAnonymous, 403),
        (UserPrincipalCouldNotBeFound, 403),
        (UserDisabledForSync, 403),
        (UserOnNewMailboxCannotSync, 403),
        (UserOnLegacyMailboxCannotSync, 403),
        (DeviceIsBlockedForThisUser, 403),
        (AccessDenied, 403),
        (AccountDisabled, 403),
        (SyncStateNotFound, 403),
        (SyncStateLocked, 503),
        (SyncStateCorrupt, 500),
        (SyncStateAlreadyExists, 500),
        (SyncStateVersionInvalid, 500),
        (CommandNotSupported, 501),
        (VersionNotSupported, 400),
        (DeviceNotFullyProvisionable, 403),
        (RemoteWipeRequested, 449),
        (LegacyDeviceOnStrictPolicy, 449),
        (DeviceNotProvisioned, 449),
        (PolicyRefresh, 449),
        (InvalidPolicyKey, 449),
        (ExternallyManagedDevicesNotAllowed, 403),
        (NoRecurrenceInCalendar, 400),
        (UnexpectedItemClass, 400),
        (RemoteServerHasNoSsl, 500),
        (InvalidStoredRequest, 400),
        (ItemNotFound, 400),
        (TooManyFolders, 500),
        (NoFoldersFound, 500),
        (ItemsLostAfterMove, 500),
        (FailureInMoveOperation, 500),
        (MoveCommandDisallowedForNonPersistentMoveAction, 400),
        (MoveCommandInvalidDestinationFolder, 400),
        (AvailabilityTooManyRecipients, 400),
        (AvailabilityDlLimitReached, 400),
        (AvailabilityTransientFailure, 503),
        (AvailabilityFailure, 500),
        (BodyPartPreferenceTypeNotSupported, 400),
        (DeviceInformationRequired, 400),
        (InvalidAccountId, 400),
        (AccountSendDisabled, 403),
        (IrmFeatureDisabled, 403),
        (IrmTransientError, 503),
        (IrmPermanentError, 500),
        (IrmInvalidTemplateId, 400),
        (IrmOperationNotPermitted, 403),
        (NoPicture, 400),
        (PictureTooLarge, 400),
        (PictureLimitReached, 400),
        (BodyPartConversationTooLarge, 400),
        (MaximumDevicesReached, 403),
        (InvalidMimeBodyCombination, 400),
        (InvalidSmartForwardParameters, 400),
        (InvalidRecipients, 400),
        (OneOrMoreExceptionsFailed, 500),
    ];

    fn context(version: ProtocolVersion, command: Command, policy_key_sent: bool) -> ReplyContext {
        ReplyContext { version, command, policy_key_sent }
    }

    fn http_code(form: WireForm) -> Option<u16> {
        match form {
            WireForm::Http(reply) => Some(reply.code()),
            WireForm::StatusInBody(_) => None,
        }
    }

    #[test]
    fn table_covers_every_status_in_order() {
        let listed: Vec<CommonStatus> = LEGACY_TABLE.iter().map(|(s, _)| *s).collect();
        assert_eq!(listed, CommonStatus::ALL);
        let codes: Vec<u16> = CommonStatus::ALL.iter().map(|s| s.code()).collect();
        let expected: Vec<u16> = (101..=156).chain(160..=179).chain(183..=184).collect();
        assert_eq!(codes, expected);
    }

    #[test]
    fn every_status_for_12_1_14_0_and_16_1() {
        for &(status, legacy) in LEGACY_TABLE {
            let old = wire_form(status, &context(ProtocolVersion::V12_1, Command::Sync, true));
            assert_eq!(http_code(old), Some(legacy), "{status:?} in 12.1");
            for version in [ProtocolVersion::V14_0, ProtocolVersion::V16_1] {
                assert_eq!(
                    wire_form(status, &context(version, Command::Sync, true)),
                    WireForm::StatusInBody(status.code()),
                    "{status:?} in {version}"
                );
            }
        }
    }

    #[test]
    fn per_command_and_policy_key_exceptions() {
        let v12 = ProtocolVersion::V12_1;
        let code = |status, command, key| http_code(wire_form(status, &context(v12, command, key)));
        assert_eq!(code(RemoteWipeRequested, Command::Sync, false), Some(403));
        assert_eq!(code(RemoteWipeRequested, Command::Sync, true), Some(449));
        assert_eq!(code(DeviceNotProvisioned, Command::Sync, false), Some(449));
        assert_eq!(code(InvalidIds, Command::SendMail, true), Some(500));
        assert_eq!(code(InvalidIds, Command::SmartReply, true), Some(400));
        assert_eq!(code(SyncStateNotFound, Command::Provision, true), Some(500));
        assert_eq!(code(SyncStateNotFound, Command::FolderSync, true), Some(403));
        // 14.0+ never depends on them.
        let new = context(ProtocolVersion::V14_1, Command::SendMail, false);
        assert_eq!(wire_form(RemoteWipeRequested, &new), WireForm::StatusInBody(140));
        assert_eq!(wire_form(InvalidIds, &new), WireForm::StatusInBody(106));
    }

    #[test]
    fn names_and_codes() {
        assert_eq!(InvalidWbxml.name(), "InvalidWBXML");
        assert_eq!(IrmFeatureDisabled.name(), "IRM_FeatureDisabled");
        assert_eq!(BodyPartConversationTooLarge.name(), "BodyPart_ConversationTooLarge");
        assert_eq!(InvalidPolicyKey.code(), 144);
        for &status in CommonStatus::ALL {
            assert_eq!(CommonStatus::from_code(status.code()), Some(status));
        }
        for unassigned in [0, 1, 100, 157, 158, 159, 180, 181, 182, 185] {
            assert_eq!(CommonStatus::from_code(unassigned), None);
        }
    }

    #[test]
    fn http_replies_carry_the_right_headers() {
        let v12 = context(ProtocolVersion::V12_1, Command::Sync, true);
        let WireForm::Http(busy) = wire_form(ServerErrorRetryLater, &v12) else {
            panic!("12.1 must use the HTTP form");
        };
        let response = busy.into_response();
        assert_eq!(response.status, 503);
        assert_eq!(response.header("Content-Length"), Some("0"));
        assert_eq!(response.header("Retry-After"), Some("60"));
        assert!(response.body.is_empty());
        assert_eq!(busy.with_retry_after(5).into_response().header("Retry-After"), Some("5"));

        let WireForm::Http(version) = wire_form(VersionNotSupported, &v12) else {
            panic!("12.1 must use the HTTP form");
        };
        let response = version.into_response();
        assert_eq!(response.status, 400);
        assert_eq!(response.header("MS-ASProtocolVersions"), Some("12.1,14.0,14.1,16.0,16.1"));
        assert_eq!(response.header("Retry-After"), None);

        let response = HttpReply::new(449).into_response();
        assert_eq!(response.status, 449);
        assert_eq!(response.headers, [("Content-Length".to_owned(), "0".to_owned())]);
    }
}
