//! ResolveRecipients ([MS-ASCMD] §2.2.1.15, EAS-NOTES §4.12), answered from the account's
//! address book: the addresses seen in the Inbox and Sent (see [`address_book`]).
//!
//! Every recipient found is a personal entry, so it is reported with Type 2 ("contact"), not 1
//! (GAL): there is no directory behind it. Per `To` (§2.2.3.177.12):
//! * 1: resolved, one Recipient (the only match, or the only exact one: the whole address or
//!   the whole display name);
//! * 2: ambiguous, every match returned as a suggestion (at most MaxAmbiguousRecipients,
//!   default [`DEFAULT_MAX_AMBIGUOUS`]);
//! * 3: ambiguous, more matches than MaxAmbiguousRecipients: the best ones;
//! * 4: unresolved: nothing in the address book (an address never seen included).
//!
//! Options: CertificateRetrieval 2/3 gives each recipient `Certificates > Status 7` (no valid
//! certificate: none are known here), CertificateCount 0; Availability gives resolved
//! recipients `Availability > Status 163` (free/busy could not be retrieved: there is no
//! calendar); Picture (14.1+) gives `Picture > Status 173` (no picture).
//!
//! The top-level Status is 1, 5 (protocol error: no or over [`MAX_TO`] `To` elements, an
//! unknown element, bad option values) or 6 (server error: no address book could be read).

pub mod address_book;
#[cfg(test)]
mod tests;

use super::search::criteria;
use super::{answer_common_status, decode_body, wbxml_response};
use crate::ashttp::{CommonStatus, EasRequest, ProtocolVersion};
use crate::capabilities::{Capabilities, Level};
use crate::http::Response;
use address_book::Contact;
use eas_wbxml::tags::resolve_recipients as rr;
use eas_wbxml::{Document, Element};

/// `To` elements in one request (EAS-NOTES §4.12: Status 5 beyond).
pub const MAX_TO: usize = 100;
/// Suggestions per ambiguous `To` when the client sets no MaxAmbiguousRecipients.
pub const DEFAULT_MAX_AMBIGUOUS: usize = 20;
/// The most suggestions per `To` whatever the client asks (it may ask for 9999).
const MAX_AMBIGUOUS: usize = 100;
/// A `To` longer than this (MS-ASCMD: up to 256 characters) cannot name anyone.
const MAX_TO_CHARS: usize = 256;

mod status {
    pub const SUCCESS: u8 = 1;
    pub const AMBIGUOUS: u8 = 2;
    pub const AMBIGUOUS_PARTIAL: u8 = 3;
    pub const UNRESOLVED: u8 = 4;
    pub const PROTOCOL_ERROR: u8 = 5;
    pub const SERVER_ERROR: u8 = 6;
    /// Certificates: the recipient has no valid S/MIME certificate.
    pub const NO_VALID_CERTIFICATE: u8 = 7;
    /// Availability: the free/busy data could not be retrieved.
    pub const FREE_BUSY_FAILED: u16 = 163;
    /// Picture: the contact has no picture.
    pub const NO_PICTURE: u16 = 173;
}

/// What the client asked for besides the names.
#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    certificates: bool,
    max_ambiguous: usize,
    availability: bool,
    pictures: bool,
}

pub async fn run(
    caps: &impl Capabilities,
    identity: &str,
    request: &EasRequest,
    body: &[u8],
) -> Response {
    let Some(document) = decode_body(caps, request, body) else {
        return answer_common_status(request, CommonStatus::InvalidWbxml);
    };
    let root = &document.root;
    if root.tag != rr::RESOLVE_RECIPIENTS {
        return answer_common_status(request, CommonStatus::InvalidXml);
    }
    let recipients: Vec<&Element> = root.children(rr::TO).collect();
    let well_formed = root.child_elements().iter().all(|c| c.tag == rr::TO || c.tag == rr::OPTIONS);
    let options = parse_options(root.child(rr::OPTIONS), request.version);
    let (Some(options), true, 1..=MAX_TO) = (options, well_formed, recipients.len()) else {
        caps.log(Level::Info, "ResolveRecipients: malformed request");
        return top_level(request, status::PROTOCOL_ERROR);
    };
    let book = match address_book::load(caps, identity).await {
        Ok(book) => book,
        Err(why) => {
            caps.log(Level::Warn, &format!("ResolveRecipients: {why}"));
            return top_level(request, status::SERVER_ERROR);
        }
    };
    let mut answer = Element::new(rr::RESOLVE_RECIPIENTS).text_child(rr::STATUS, "1");
    for to in recipients {
        let text = String::from_utf8_lossy(to.bytes().unwrap_or_default());
        answer.push(resolve(&book, &text, &options));
    }
    wbxml_response(&Document::new(answer), request)
}

fn top_level(request: &EasRequest, code: u8) -> Response {
    let document = Document::new(
        Element::new(rr::RESOLVE_RECIPIENTS).text_child(rr::STATUS, code.to_string()),
    );
    wbxml_response(&document, request)
}

/// `Options` (MS-ASCMD §2.2.3.125.4); `None` when a value is malformed.
fn parse_options(options: Option<&Element>, version: ProtocolVersion) -> Option<Options> {
    let mut parsed = Options { max_ambiguous: DEFAULT_MAX_AMBIGUOUS, ..Options::default() };
    let Some(options) = options else { return Some(parsed) };
    for child in options.child_elements() {
        match child.tag {
            tag if tag == rr::CERTIFICATE_RETRIEVAL => {
                // 1: none, 2: full certificates, 3: mini certificates.
                let value = criteria::decimal(child.text()?).filter(|v| (1..=3).contains(v))?;
                parsed.certificates = value > 1;
            }
            tag if tag == rr::MAX_CERTIFICATES => {
                criteria::decimal(child.text()?).filter(|&v| v <= 9999)?;
            }
            tag if tag == rr::MAX_AMBIGUOUS_RECIPIENTS => {
                let value = criteria::decimal(child.text()?).filter(|&v| v <= 9999)?;
                parsed.max_ambiguous = (value as usize).min(MAX_AMBIGUOUS);
            }
            tag if tag == rr::AVAILABILITY && version >= ProtocolVersion::V14_0 => {
                let start = criteria::parse_datetime(child.text_of(rr::START_TIME)?)?;
                let end = criteria::parse_datetime(child.text_of(rr::END_TIME)?)?;
                if end <= start {
                    return None;
                }
                parsed.availability = true;
            }
            tag if tag == rr::PICTURE && version >= ProtocolVersion::V14_1 => {
                for limit in [rr::MAX_SIZE, rr::MAX_PICTURES] {
                    if let Some(value) = child.text_of(limit) {
                        criteria::decimal(value)?;
                    }
                }
                parsed.pictures = true;
            }
            _ => return None,
        }
    }
    Some(parsed)
}

/// One `Response` for one `To`.
fn resolve(book: &address_book::AddressBook, to: &str, options: &Options) -> Element {
    let echoed: String = to.chars().take(1024).collect();
    let mut response = Element::new(rr::RESPONSE).text_child(rr::TO, echoed);
    let lookup = if to.trim().chars().count() > MAX_TO_CHARS {
        address_book::Lookup { matches: Vec::new(), unique: false }
    } else {
        book.lookup(to)
    };
    let (code, chosen): (u8, &[&Contact]) = match lookup.matches.as_slice() {
        [] => (status::UNRESOLVED, &[]),
        [best, ..] if lookup.unique => (status::SUCCESS, std::slice::from_ref(best)),
        all if all.len() > options.max_ambiguous => {
            (status::AMBIGUOUS_PARTIAL, &all[..options.max_ambiguous])
        }
        all => (status::AMBIGUOUS, all),
    };
    response.push(Element::with_text(rr::STATUS, code.to_string()));
    response.push(Element::with_text(rr::RECIPIENT_COUNT, chosen.len().to_string()));
    for contact in chosen {
        response.push(recipient(contact, options, code == status::SUCCESS));
    }
    response
}

/// `Recipient > Type, DisplayName, EmailAddress, Availability?, Certificates?, Picture?`.
fn recipient(contact: &Contact, options: &Options, resolved: bool) -> Element {
    let mut element = Element::new(rr::RECIPIENT)
        .text_child(rr::TYPE, "2")
        .text_child(rr::DISPLAY_NAME, contact.display_name())
        .text_child(rr::EMAIL_ADDRESS, contact.address.as_str());
    // Free/busy goes only with a resolved recipient (MS-ASCMD §2.2.3.16).
    if options.availability && resolved {
        element.push(
            Element::new(rr::AVAILABILITY)
                .text_child(rr::STATUS, status::FREE_BUSY_FAILED.to_string()),
        );
    }
    if options.certificates {
        element.push(
            Element::new(rr::CERTIFICATES)
                .text_child(rr::STATUS, status::NO_VALID_CERTIFICATE.to_string())
                .text_child(rr::CERTIFICATE_COUNT, "0"),
        );
    }
    if options.pictures {
        element
            .push(Element::new(rr::PICTURE).text_child(rr::STATUS, status::NO_PICTURE.to_string()));
    }
    element
}
