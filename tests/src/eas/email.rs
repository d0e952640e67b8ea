//! An Email `ApplicationData` (Sync) or `Properties` (ItemOperations) read into fields
//! (MS-ASEMAIL §2.2.2, MS-ASAIRS §2.2.2; EAS-NOTES §6).

use anyhow::{Context, Result, bail};
use eas_wbxml::tags::{air_sync_base as asb, email as em, email2 as em2};
use eas_wbxml::{Element, Tag};

use super::answer::xml;

/// `airsyncbase:Body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// 1 plain text, 2 HTML, 3 RTF, 4 MIME.
    pub body_type: u8,
    pub estimated_data_size: Option<u64>,
    pub truncated: Option<bool>,
    pub data: Option<Vec<u8>>,
    pub preview: Option<String>,
}

impl Body {
    /// The Data as text (lossy), or "" without Data.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.data.as_deref().unwrap_or_default()).into_owned()
    }

    pub fn is_truncated(&self) -> bool {
        self.truncated == Some(true)
    }
}

/// `airsyncbase:Attachments > Attachment`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub display_name: Option<String>,
    pub file_reference: Option<String>,
    /// 1 normal, 5 embedded message, 6 OLE/inline.
    pub method: Option<u8>,
    pub estimated_data_size: Option<u64>,
    pub content_id: Option<String>,
    pub content_location: Option<String>,
    pub is_inline: Option<bool>,
}

/// `email:Flag`: empty when the message is not flagged (MS-ASEMAIL §2.2.2.34).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flag {
    /// `email:Status`: 0 cleared, 1 complete, 2 active.
    pub status: Option<u8>,
    pub flag_type: Option<String>,
}

impl Flag {
    pub fn is_active(&self) -> bool {
        self.status == Some(2)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Email {
    pub to: Option<String>,
    pub cc: Option<String>,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub subject: Option<String>,
    pub date_received: Option<String>,
    pub display_to: Option<String>,
    pub thread_topic: Option<String>,
    pub importance: Option<u8>,
    pub read: Option<bool>,
    pub message_class: Option<String>,
    pub internet_cpid: Option<String>,
    pub content_class: Option<String>,
    /// `None` when the element is absent; `Some(Flag::default())` for an empty `<Flag/>`.
    pub flag: Option<Flag>,
    /// 14.0+: `None` when absent, `Some(vec![])` for an empty `<Categories/>`.
    pub categories: Option<Vec<String>>,
    pub native_body_type: Option<u8>,
    pub body: Option<Body>,
    /// `None` when there is no Attachments element.
    pub attachments: Option<Vec<Attachment>>,
    pub conversation_id: Option<Vec<u8>>,
    pub conversation_index: Option<Vec<u8>>,
    pub received_as_bcc: Option<bool>,
    pub is_draft: Option<bool>,
    /// Names of every child element, in order (to check what a Change carries).
    pub element_names: Vec<&'static str>,
}

impl Email {
    pub fn parse(data: &Element) -> Result<Email> {
        Email::parse_fields(data).with_context(|| xml(data))
    }

    fn parse_fields(data: &Element) -> Result<Email> {
        let text = |tag: Tag| data.text_of(tag).map(str::to_string);
        let flag = match data.child(em::FLAG) {
            None => None,
            Some(flag) => Some(Flag {
                status: small(flag, em::STATUS)?,
                flag_type: flag.text_of(em::FLAG_TYPE).map(str::to_string),
            }),
        };
        let categories = data.child(em::CATEGORIES).map(|categories| {
            categories.children(em::CATEGORY).filter_map(|c| c.text().map(str::to_string)).collect()
        });
        let body = match data.child(asb::BODY) {
            None => None,
            Some(body) => Some(Body {
                body_type: small(body, asb::TYPE)?.context("Body without Type")?,
                estimated_data_size: number(body, asb::ESTIMATED_DATA_SIZE)?,
                truncated: boolean(body, asb::TRUNCATED)?,
                data: body.bytes_of(asb::DATA).map(<[u8]>::to_vec),
                preview: body.text_of(asb::PREVIEW).map(str::to_string),
            }),
        };
        let attachments = match data.child(asb::ATTACHMENTS) {
            None => None,
            Some(attachments) => Some(
                attachments
                    .children(asb::ATTACHMENT)
                    .map(|a| {
                        Ok(Attachment {
                            display_name: a.text_of(asb::DISPLAY_NAME).map(str::to_string),
                            file_reference: a.text_of(asb::FILE_REFERENCE).map(str::to_string),
                            method: small(a, asb::METHOD)?,
                            estimated_data_size: number(a, asb::ESTIMATED_DATA_SIZE)?,
                            content_id: a.text_of(asb::CONTENT_ID).map(str::to_string),
                            content_location: a.text_of(asb::CONTENT_LOCATION).map(str::to_string),
                            is_inline: boolean(a, asb::IS_INLINE)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        Ok(Email {
            to: text(em::TO),
            cc: text(em::CC),
            from: text(em::FROM),
            reply_to: text(em::REPLY_TO),
            subject: text(em::SUBJECT),
            date_received: text(em::DATE_RECEIVED),
            display_to: text(em::DISPLAY_TO),
            thread_topic: text(em::THREAD_TOPIC),
            importance: small(data, em::IMPORTANCE)?,
            read: boolean(data, em::READ)?,
            message_class: text(em::MESSAGE_CLASS),
            internet_cpid: text(em::INTERNET_CPID),
            content_class: text(em::CONTENT_CLASS),
            flag,
            categories,
            native_body_type: small(data, asb::NATIVE_BODY_TYPE)?,
            body,
            attachments,
            conversation_id: data.bytes_of(em2::CONVERSATION_ID).map(<[u8]>::to_vec),
            conversation_index: data.bytes_of(em2::CONVERSATION_INDEX).map(<[u8]>::to_vec),
            received_as_bcc: boolean(data, em2::RECEIVED_AS_BCC)?,
            is_draft: boolean(data, em2::IS_DRAFT)?,
            element_names: data.child_elements().iter().map(|c| c.tag.name()).collect(),
        })
    }

    /// The attachments, or none.
    pub fn attachment_list(&self) -> &[Attachment] {
        self.attachments.as_deref().unwrap_or_default()
    }

    /// `DateReceived` as unix seconds.
    pub fn date_received_unix(&self) -> Result<i64> {
        parse_date_time(self.date_received.as_deref().context("no DateReceived")?)
    }
}

fn number(element: &Element, tag: Tag) -> Result<Option<u64>> {
    match element.text_of(tag) {
        None => Ok(None),
        Some(text) => {
            text.trim().parse().map(Some).with_context(|| format!("{}: {text:?}", tag.name()))
        }
    }
}

fn small(element: &Element, tag: Tag) -> Result<Option<u8>> {
    match element.text_of(tag) {
        None => Ok(None),
        Some(text) => {
            text.trim().parse().map(Some).with_context(|| format!("{}: {text:?}", tag.name()))
        }
    }
}

/// MS-ASDTYPE §2.1: "0"/"1", and an element present without a value is TRUE.
fn boolean(element: &Element, tag: Tag) -> Result<Option<bool>> {
    match element.text_of(tag) {
        None => Ok(None),
        Some("" | "1") => Ok(Some(true)),
        Some("0") => Ok(Some(false)),
        Some(other) => bail!("{} is not a boolean: {other:?}", tag.name()),
    }
}

/// MS-ASDTYPE §2.3 dateTime `YYYY-MM-DDTHH:MM:SS[.mmm]Z` (UTC) as unix seconds.
pub fn parse_date_time(text: &str) -> Result<i64> {
    let bad = || format!("not an EAS dateTime: {text:?}");
    let body = text.strip_suffix('Z').with_context(bad)?;
    let (date, time) = body.split_once('T').with_context(bad)?;
    let time = time.split('.').next().with_context(bad)?;
    let date: Vec<i64> =
        date.split('-').map(str::parse).collect::<Result<_, _>>().with_context(bad)?;
    let time: Vec<i64> =
        time.split(':').map(str::parse).collect::<Result<_, _>>().with_context(bad)?;
    let ([year, month, day], [hour, minute, second]) = (date.as_slice(), time.as_slice()) else {
        bail!(bad());
    };
    Ok(days_from_civil(*year, *month, *day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use eas_wbxml::tags::air_sync as as_;

    #[test]
    fn dates_parse_with_and_without_milliseconds() -> Result<()> {
        assert_eq!(parse_date_time("1970-01-01T00:00:00.000Z")?, 0);
        assert_eq!(parse_date_time("2025-06-02T09:00:00.000Z")?, 1_748_854_800);
        assert_eq!(parse_date_time("2000-02-29T23:59:59Z")?, 951_868_799);
        assert!(parse_date_time("2025-06-02 09:00:00").is_err());
        Ok(())
    }

    #[test]
    fn application_data_becomes_fields() -> Result<()> {
        let data = Element::new(as_::APPLICATION_DATA)
            .text_child(em::SUBJECT, "Hi")
            .text_child(em::READ, "0")
            .with_child(Element::new(em::FLAG).text_child(em::STATUS, "2"))
            .with_child(
                Element::new(asb::BODY)
                    .text_child(asb::TYPE, "1")
                    .text_child(asb::ESTIMATED_DATA_SIZE, "5000")
                    .text_child(asb::TRUNCATED, "1")
                    .text_child(asb::DATA, "Hello"),
            )
            .with_child(
                Element::new(asb::ATTACHMENTS).with_child(
                    Element::new(asb::ATTACHMENT)
                        .text_child(asb::DISPLAY_NAME, "a.pdf")
                        .text_child(asb::FILE_REFERENCE, "ref-1")
                        .text_child(asb::METHOD, "1")
                        .text_child(asb::ESTIMATED_DATA_SIZE, "1234"),
                ),
            )
            .opaque_child(em2::CONVERSATION_ID, [1, 2, 3]);
        let email = Email::parse(&data)?;
        assert_eq!(email.subject.as_deref(), Some("Hi"));
        assert_eq!(email.read, Some(false));
        assert!(email.flag.as_ref().is_some_and(Flag::is_active));
        let body = email.body.as_ref().context("body")?;
        assert!(body.is_truncated());
        assert_eq!((body.body_type, body.estimated_data_size), (1, Some(5000)));
        assert_eq!(body.text(), "Hello");
        assert_eq!(email.attachment_list()[0].file_reference.as_deref(), Some("ref-1"));
        assert_eq!(email.conversation_id.as_deref(), Some(&[1, 2, 3][..]));
        assert_eq!(
            email.element_names,
            ["Subject", "Read", "Flag", "Body", "Attachments", "ConversationId"]
        );
        Ok(())
    }
}
