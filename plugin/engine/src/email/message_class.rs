//! email:MessageClass (MS-ASEMAIL §2.2.2.49) from the MIME structure: S/MIME (RFC 8551 §3.4,
//! §3.5), delivery and read reports (RFC 6522), iTIP invitations (RFC 5546 §1.4).

use super::input::BodyPart;
use super::item::MessageClass;
use super::structure::MimeLayout;

/// `calendar_text` gives the decoded text of a section when the bytes we have contain it; it
/// is used for the iTIP METHOD when the Content-Type omits it, and for a reply's PARTSTAT.
pub fn message_class(
    parts: &[BodyPart],
    layout: &MimeLayout,
    calendar_text: impl Fn(&str) -> Option<String>,
) -> MessageClass {
    let Some(root) = parts.first() else {
        return MessageClass::Note;
    };
    if root.is("multipart", "signed")
        && root
            .param("protocol")
            .is_some_and(|p| p.to_ascii_lowercase().contains("pkcs7-signature"))
    {
        return MessageClass::SmimeMultipartSigned;
    }
    if root.is("application", "pkcs7-mime") || root.is("application", "x-pkcs7-mime") {
        return MessageClass::Smime;
    }
    if root.is("multipart", "report") {
        match root.param("report-type").map(|t| t.trim().to_ascii_lowercase()).as_deref() {
            Some("delivery-status" | "global-delivery-status") => {
                return MessageClass::NonDeliveryReport;
            }
            Some("disposition-notification" | "global-disposition-notification") => {
                return MessageClass::ReadReceipt;
            }
            _ => {}
        }
    }
    invitation_class(parts, layout, calendar_text).unwrap_or(MessageClass::Note)
}

/// The first calendar part that is part of the message itself (not an attached .ics file,
/// not inside a forwarded message) decides.
fn invitation_class(
    parts: &[BodyPart],
    layout: &MimeLayout,
    calendar_text: impl Fn(&str) -> Option<String>,
) -> Option<MessageClass> {
    let calendar = parts.iter().enumerate().find(|&(index, part)| {
        (part.is("text", "calendar") || part.is("application", "ics"))
            && !part.has_attachment_disposition()
            && !inside_embedded_message(parts, layout, index)
    });
    let (_, calendar) = calendar?;
    let text = calendar_text(&calendar.section);
    let method = calendar
        .param("method")
        .map(str::to_owned)
        .or_else(|| text.as_deref().and_then(|t| ical_property(t, "METHOD")))?;
    match method.trim().to_ascii_uppercase().as_str() {
        "REQUEST" => Some(MessageClass::MeetingRequest),
        "CANCEL" => Some(MessageClass::MeetingCanceled),
        "REPLY" => {
            let status = text.as_deref().and_then(participation_status)?;
            match status.as_str() {
                "ACCEPTED" => Some(MessageClass::MeetingAccepted),
                "DECLINED" => Some(MessageClass::MeetingDeclined),
                "TENTATIVE" => Some(MessageClass::MeetingTentative),
                _ => None,
            }
        }
        _ => None,
    }
}

fn inside_embedded_message(parts: &[BodyPart], layout: &MimeLayout, index: usize) -> bool {
    let mut current = layout.parent.get(index).copied().flatten();
    while let Some(ancestor) = current {
        if parts.get(ancestor).is_some_and(BodyPart::is_embedded_message) {
            return true;
        }
        current = layout.parent.get(ancestor).copied().flatten();
    }
    false
}

/// The value of a top-level iCalendar property line (`METHOD:REQUEST`).
fn ical_property(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
    })
}

/// PARTSTAT of the (single) ATTENDEE of an iTIP REPLY (RFC 5546 §3.2.3).
fn participation_status(text: &str) -> Option<String> {
    let upper = text.to_ascii_uppercase();
    let start = upper.find("PARTSTAT=")? + "PARTSTAT=".len();
    let value: String =
        upper[start..].chars().take_while(|c| c.is_ascii_alphabetic() || *c == '-').collect();
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::structure::layout;

    fn part(mime: &str, depth: u32, params: &[(&str, &str)]) -> BodyPart {
        let (media_type, media_subtype) = mime.split_once('/').unwrap_or((mime, ""));
        BodyPart {
            section: String::new(),
            depth,
            is_multipart: media_type == "multipart",
            media_type: media_type.into(),
            media_subtype: media_subtype.into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..BodyPart::default()
        }
    }

    fn class_of(parts: &[BodyPart], text: Option<&str>) -> MessageClass {
        message_class(parts, &layout(parts), |_| text.map(str::to_owned))
    }

    #[test]
    fn smime_and_reports() {
        let signed = [
            part("multipart/signed", 0, &[("protocol", "application/pkcs7-signature")]),
            part("text/plain", 1, &[]),
            part("application/pkcs7-signature", 1, &[]),
        ];
        assert_eq!(class_of(&signed, None), MessageClass::SmimeMultipartSigned);
        let pgp = [part("multipart/signed", 0, &[("protocol", "application/pgp-signature")])];
        assert_eq!(class_of(&pgp, None), MessageClass::Note);
        let opaque = [part("application/x-pkcs7-mime", 0, &[("smime-type", "enveloped-data")])];
        assert_eq!(class_of(&opaque, None), MessageClass::Smime);
        let dsn = [part("multipart/report", 0, &[("report-type", "delivery-status")])];
        assert_eq!(class_of(&dsn, None), MessageClass::NonDeliveryReport);
        let mdn = [part("multipart/report", 0, &[("report-type", "disposition-notification")])];
        assert_eq!(class_of(&mdn, None), MessageClass::ReadReceipt);
    }

    #[test]
    fn invitations() {
        let request = [
            part("multipart/alternative", 0, &[]),
            part("text/plain", 1, &[]),
            part("text/calendar", 1, &[("method", "REQUEST")]),
        ];
        assert_eq!(class_of(&request, None), MessageClass::MeetingRequest);
        let from_body = [part("text/calendar", 0, &[])];
        assert_eq!(
            class_of(&from_body, Some("BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\n")),
            MessageClass::MeetingCanceled
        );
        let reply = [part("text/calendar", 0, &[("method", "reply")])];
        assert_eq!(
            class_of(&reply, Some("ATTENDEE;PARTSTAT=TENTATIVE;CN=x:mailto:x@y")),
            MessageClass::MeetingTentative
        );
        assert_eq!(class_of(&reply, None), MessageClass::Note);
        let mut attached = part("text/calendar", 1, &[("method", "REQUEST")]);
        attached.disposition = Some("attachment".into());
        assert_eq!(
            class_of(&[part("multipart/mixed", 0, &[]), attached], None),
            MessageClass::Note
        );
        let forwarded = [
            part("multipart/mixed", 0, &[]),
            part("message/rfc822", 1, &[]),
            part("text/calendar", 2, &[("method", "REQUEST")]),
        ];
        assert_eq!(class_of(&forwarded, None), MessageClass::Note);
    }
}
