//! The Email item the engine sends in Sync, ItemOperations and Search (MS-ASEMAIL §2.2.2,
//! EAS-NOTES §6.1, §6.3). Values are already in EAS form; which of them go on the wire for a
//! given protocol version (EAS-NOTES §7) is the encoder's decision.

/// Everything an EAS client needs to show a mail item, except the body, which depends on the
/// client's BodyPreference (see [`super::select_body`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailItem {
    /// email:To: comma-separated `"Name" <address>` (§2.2.2.79).
    pub to: String,
    /// email:Cc, comma-separated (§2.2.2.18).
    pub cc: String,
    /// email:From (§2.2.2.36).
    pub from: String,
    /// email:ReplyTo, semicolon-separated (§2.2.2.66).
    pub reply_to: String,
    /// email2:Sender (14.0+), only when it differs from From (§2.2.2.70).
    pub sender: Option<String>,
    /// email2:Bcc (16.0+, drafts) (§2.2.2.9).
    pub bcc: String,
    pub subject: String,
    /// email:DateReceived from INTERNALDATE, `YYYY-MM-DDTHH:MM:SS.000Z` (§2.2.2.24).
    pub date_received: String,
    /// email:DisplayTo: display names of To, semicolon-separated (§2.2.2.29).
    pub display_to: String,
    pub thread_topic: String,
    pub importance: Importance,
    pub read: bool,
    pub message_class: MessageClass,
    /// email:InternetCPID: Windows code page of the original body charset (§2.2.2.40).
    pub internet_cpid: u32,
    /// email:ContentClass (12.0+) (§2.2.2.20).
    pub content_class: &'static str,
    pub flag: Flag,
    /// email:Categories (14.0+): keywords that are not system or protocol flags.
    pub categories: Vec<String>,
    /// email2:ConversationId (14.0+), 16 bytes (§2.2.2.21); see `conversation.rs` for the rule.
    pub conversation_id: [u8; 16],
    /// email2:ConversationIndex (14.0+): the 22-byte header block (§2.2.2.22).
    pub conversation_index: [u8; 22],
    pub native_body_type: NativeBodyType,
    /// email2:LastVerbExecuted (14.0+) (§2.2.2.44).
    pub last_verb_executed: LastVerb,
    /// email2:IsDraft (16.0+) from `\Draft` (§2.2.2.42).
    pub is_draft: bool,
    pub attachments: Vec<Attachment>,
}

/// email:Importance (§2.2.2.38).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importance {
    Low = 0,
    Normal = 1,
    High = 2,
}

/// email:MessageClass (§2.2.2.49).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageClass {
    Note,
    /// Opaque S/MIME (application/pkcs7-mime): signed-data or enveloped-data.
    Smime,
    /// Clear-signed S/MIME (multipart/signed).
    SmimeMultipartSigned,
    MeetingRequest,
    MeetingCanceled,
    MeetingAccepted,
    MeetingDeclined,
    MeetingTentative,
    /// A delivery status notification (multipart/report; report-type=delivery-status).
    NonDeliveryReport,
    /// A read receipt (multipart/report; report-type=disposition-notification).
    ReadReceipt,
}

impl MessageClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Note => "IPM.Note",
            Self::Smime => "IPM.Note.SMIME",
            Self::SmimeMultipartSigned => "IPM.Note.SMIME.MultipartSigned",
            Self::MeetingRequest => "IPM.Schedule.Meeting.Request",
            Self::MeetingCanceled => "IPM.Schedule.Meeting.Canceled",
            Self::MeetingAccepted => "IPM.Schedule.Meeting.Resp.Pos",
            Self::MeetingDeclined => "IPM.Schedule.Meeting.Resp.Neg",
            Self::MeetingTentative => "IPM.Schedule.Meeting.Resp.Tent",
            Self::NonDeliveryReport => "REPORT.IPM.Note.NDR",
            Self::ReadReceipt => "REPORT.IPM.Note.IPNRN",
        }
    }

    pub fn is_meeting(self) -> bool {
        matches!(
            self,
            Self::MeetingRequest
                | Self::MeetingCanceled
                | Self::MeetingAccepted
                | Self::MeetingDeclined
                | Self::MeetingTentative
        )
    }

    pub fn is_smime(self) -> bool {
        matches!(self, Self::Smime | Self::SmimeMultipartSigned)
    }

    /// email:ContentClass for this class (§2.2.2.20).
    pub fn content_class(self) -> &'static str {
        if self.is_meeting() {
            "urn:content-classes:calendarmessage"
        } else {
            "urn:content-classes:message"
        }
    }
}

/// email:Flag (§2.2.2.34). `Cleared` with nothing else is sent as an empty `<Flag/>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flag {
    pub status: FlagStatus,
    /// email:FlagType, e.g. "Flag for follow up".
    pub flag_type: Option<String>,
    /// email:CompleteTime and tasks:DateCompleted, unix seconds.
    pub complete_time: Option<i64>,
    /// tasks:StartDate / UtcStartDate, unix seconds.
    pub start_date: Option<i64>,
    /// tasks:DueDate / UtcDueDate, unix seconds.
    pub due_date: Option<i64>,
}

/// email:Status inside Flag (§2.2.2.74).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FlagStatus {
    #[default]
    Cleared = 0,
    Complete = 1,
    Active = 2,
}

/// airsyncbase:NativeBodyType (MS-ASAIRS §2.2.2.32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeBodyType {
    PlainText = 1,
    Html = 2,
}

/// email2:LastVerbExecuted (§2.2.2.44).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LastVerb {
    #[default]
    Unknown = 0,
    ReplyToSender = 1,
    ReplyToAll = 2,
    Forward = 3,
}

/// airsyncbase:Attachment (MS-ASAIRS §2.2.2.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub display_name: String,
    /// `<caller's prefix>:<IMAP section>`, resolved later by ItemOperations Fetch.
    pub file_reference: String,
    pub method: AttachmentMethod,
    /// Decoded size estimated from the encoded part size (MS-ASAIRS §2.2.2.23).
    pub estimated_data_size: u32,
    /// Content-ID without angle brackets.
    pub content_id: Option<String>,
    pub is_inline: bool,
    /// MIME type of the part, lower-case (`image/png`), for hosts and 16.x ContentType.
    pub content_type: String,
}

/// airsyncbase:Method (MS-ASAIRS §2.2.2.31).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentMethod {
    Normal = 1,
    EmbeddedMessage = 5,
}
