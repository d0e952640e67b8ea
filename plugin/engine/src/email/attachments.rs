//! airsyncbase:Attachments (MS-ASAIRS §2.2.2.7–8, EAS-NOTES §6.3) from the structure: names
//! decoded (RFC 2231, RFC 2047), sizes estimated from the encoded size, inline parts found.

use super::input::BodyPart;
use super::item::{Attachment, AttachmentMethod};
use super::limits::{MAX_ATTACHMENTS, MAX_TEXT_FIELD_CHARS};
use super::params::decoded_param;
use super::sanitize::clean_field;
use super::structure::MimeLayout;
use super::transfer::TransferEncoding;

/// `file_reference_prefix` is the caller's opaque prefix (e.g. `"5:1234"` for folder 5, UID
/// 1234); each FileReference is that prefix, `:`, and the IMAP section (`"5:1234:2.1"`), so
/// ItemOperations can fetch `BODY[2.1]` later. `html` is the HTML body we have, for `cid:`
/// references.
pub fn attachments(
    parts: &[BodyPart],
    layout: &MimeLayout,
    file_reference_prefix: &str,
    html: &str,
) -> Vec<Attachment> {
    let referenced_cids = cid_references(html);
    layout
        .attachments
        .iter()
        .take(MAX_ATTACHMENTS)
        .filter_map(|&index| {
            let part = parts.get(index)?;
            let parent_is_related = layout
                .parent
                .get(index)
                .copied()
                .flatten()
                .and_then(|p| parts.get(p))
                .is_some_and(|p| p.is("multipart", "related"));
            Some(describe(part, parent_is_related, file_reference_prefix, &referenced_cids))
        })
        .collect()
}

/// Whether any attachment has a Content-ID, the only way to be shown inline: without one, the
/// caller need not decode the HTML body nor pass it for `cid:` references.
pub fn any_has_content_id(parts: &[BodyPart], layout: &MimeLayout) -> bool {
    layout
        .attachments
        .iter()
        .take(MAX_ATTACHMENTS)
        .filter_map(|&index| parts.get(index))
        .any(|part| part.content_id.as_deref().is_some_and(|id| !id.trim().is_empty()))
}

fn describe(
    part: &BodyPart,
    parent_is_related: bool,
    file_reference_prefix: &str,
    referenced_cids: &[String],
) -> Attachment {
    let content_id = part
        .content_id
        .as_deref()
        .map(|id| {
            clean_field(
                id.trim().trim_start_matches('<').trim_end_matches('>'),
                MAX_TEXT_FIELD_CHARS,
            )
        })
        .filter(|id| !id.is_empty());
    // Inline means "shown inside the HTML body": only possible through a cid: reference. A part
    // marked inline without a Content-ID (Apple Mail's inline PDFs) stays a normal attachment,
    // or clients would hide it.
    let is_inline = content_id.as_ref().is_some_and(|id| {
        referenced_cids.iter().any(|cid| cid.eq_ignore_ascii_case(id))
            || part.has_inline_disposition()
            || parent_is_related
    });
    let file_reference = if file_reference_prefix.is_empty() {
        part.section.clone()
    } else {
        format!("{file_reference_prefix}:{}", part.section)
    };
    let estimated_data_size = TransferEncoding::from_header(part.encoding.as_deref())
        .estimated_decoded_size(u64::from(part.size));
    Attachment {
        display_name: display_name(part),
        file_reference,
        method: if part.is_embedded_message() {
            AttachmentMethod::EmbeddedMessage
        } else {
            AttachmentMethod::Normal
        },
        estimated_data_size: u32::try_from(estimated_data_size).unwrap_or(u32::MAX),
        content_id,
        is_inline,
        content_type: format!("{}/{}", part.media_type, part.media_subtype).to_ascii_lowercase(),
    }
}

/// Content-Disposition filename, else Content-Type name, else a name from the media type.
/// Path components some clients leave in (`C:\Users\x\a.pdf`) are dropped.
fn display_name(part: &BodyPart) -> String {
    let given = decoded_param(&part.disposition_params, "filename")
        .or_else(|| decoded_param(&part.params, "name"))
        .map(|name| {
            let base = name.rsplit(['/', '\\']).next().unwrap_or_default().to_owned();
            clean_field(&base, MAX_TEXT_FIELD_CHARS)
        })
        .filter(|name| !name.is_empty());
    given.unwrap_or_else(|| fallback_name(part).to_owned())
}

fn fallback_name(part: &BodyPart) -> &'static str {
    let mime = format!("{}/{}", part.media_type, part.media_subtype).to_ascii_lowercase();
    match mime.as_str() {
        "message/rfc822" | "message/global" => "message.eml",
        "message/delivery-status" | "message/global-delivery-status" => "delivery-status.txt",
        "message/disposition-notification" => "disposition-notification.txt",
        "text/rfc822-headers" | "message/rfc822-headers" => "headers.txt",
        "text/calendar" | "application/ics" => "invite.ics",
        "text/plain" => "text.txt",
        "text/html" => "page.html",
        "image/png" => "image.png",
        "image/jpeg" | "image/jpg" => "image.jpg",
        "image/gif" => "image.gif",
        "application/pdf" => "document.pdf",
        "application/pkcs7-signature" | "application/x-pkcs7-signature" => "smime.p7s",
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => "smime.p7m",
        "application/pgp-signature" => "signature.asc",
        _ => "attachment.bin",
    }
}

/// Content-IDs referenced as `cid:` URLs in the HTML (RFC 2392), percent-decoding skipped:
/// clients write them literally.
fn cid_references(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    lower
        .match_indices("cid:")
        .map(|(position, _)| {
            let rest = &html[position + 4..];
            let end = rest.find(['"', '\'', '>', ')', ' ', '\t', '\r', '\n']).unwrap_or(rest.len());
            rest[..end].trim_start_matches('<').trim_end_matches('>').to_owned()
        })
        .filter(|cid| !cid.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::structure::layout;
    use crate::email::structure::tests::part;

    #[test]
    fn names_sizes_methods_and_references() {
        let mut pdf = part("2", 1, "application/pdf");
        pdf.disposition = Some("attachment".into());
        pdf.disposition_params = vec![("filename*".into(), "UTF-8''%E2%82%AC%20report.pdf".into())];
        pdf.encoding = Some("base64".into());
        pdf.size = 78_000;
        let mut eml = part("3", 1, "message/rfc822");
        eml.size = 1_000;
        let parts = [part("", 0, "multipart/mixed"), part("1", 1, "text/plain"), pdf, eml];
        let found = attachments(&parts, &layout(&parts), "5:1234", "");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].display_name, "€ report.pdf");
        assert_eq!(found[0].file_reference, "5:1234:2");
        assert_eq!(found[0].estimated_data_size, 57_000);
        assert_eq!(found[0].method, AttachmentMethod::Normal);
        assert!(!found[0].is_inline);
        assert_eq!(found[1].display_name, "message.eml");
        assert_eq!(found[1].method, AttachmentMethod::EmbeddedMessage);
        assert_eq!(found[1].estimated_data_size, 1_000);
    }

    #[test]
    fn inline_needs_a_content_id() {
        let mut logo = part("1.2", 2, "image/png");
        logo.content_id = Some("<logo@x>".into());
        let mut unreferenced = part("2", 1, "application/pdf");
        unreferenced.disposition = Some("inline".into());
        unreferenced.params = vec![("name".into(), "C:\\tmp\\scan.pdf".into())];
        let parts = [
            part("", 0, "multipart/mixed"),
            part("1", 1, "multipart/related"),
            part("1.1", 2, "text/html"),
            logo,
            unreferenced,
        ];
        let found = attachments(&parts, &layout(&parts), "", "<img src=\"CID:logo@x\">");
        assert_eq!(found[0].content_id.as_deref(), Some("logo@x"));
        assert!(found[0].is_inline);
        assert_eq!(found[0].file_reference, "1.2");
        assert_eq!(found[1].display_name, "scan.pdf");
        assert!(!found[1].is_inline);
    }
}
