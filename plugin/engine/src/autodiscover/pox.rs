//! The POX Autodiscover exchange ([MS-OXDSCLI] §2.2.3; MS-ASCMD §2.2.1.1 for the mobilesync
//! schema): an XML request naming the address and the response schema, an XML answer with
//! the ActiveSync URL.

use crate::http::{Request, Response};
use quick_xml::Reader;
use quick_xml::escape::escape;
use quick_xml::events::Event;

const MOBILESYNC_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006";
const OUTLOOK_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
const ENVELOPE_NAMESPACE: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
/// A real request is a few hundred bytes; anything this large is not one.
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// What a POX request asks for.
#[derive(Debug, PartialEq, Eq)]
struct PoxRequest {
    address: String,
    schema: String,
}

/// Why a request gets an Autodiscover error instead of settings.
#[derive(Debug, PartialEq, Eq)]
enum PoxError {
    /// ErrorCode 600: not a well-formed Autodiscover request.
    InvalidRequest,
    /// ErrorCode 601: the client accepts no response schema we speak.
    UnsupportedSchema,
}

/// Answers a POX request. `url` is this server's ActiveSync URL, None when the request named
/// no usable Host (then the client is told its request was invalid).
pub fn answer(request: &Request, url: Option<&str>) -> Response {
    let body = match (parse(&request.body), url) {
        (Ok(parsed), Some(url)) if parsed.schema == MOBILESYNC_SCHEMA => {
            mobilesync_settings(&parsed.address, url)
        }
        (Ok(parsed), Some(url)) => outlook_settings(&parsed.address, url),
        (Ok(_), None) => error_body(PoxError::InvalidRequest),
        (Err(error), _) => error_body(error),
    };
    Response::new(200).with_body("text/xml; charset=utf-8", body.into_bytes())
}

/// Reads the address and the accepted schema, by local element name (clients differ in
/// namespace prefixes). A DOCTYPE is refused: no real client sends one, and entity tricks are
/// the only reason to.
fn parse(body: &[u8]) -> Result<PoxRequest, PoxError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(PoxError::InvalidRequest);
    }
    let text = std::str::from_utf8(body).map_err(|_| PoxError::InvalidRequest)?;
    let mut reader = Reader::from_str(text);
    let mut current: Option<(Field, String)> = None;
    let (mut address, mut schema) = (None, None);
    loop {
        match reader.read_event().map_err(|_| PoxError::InvalidRequest)? {
            Event::Start(start) => {
                current = match start.local_name().as_ref() {
                    "EMailAddress" => Some((Field::Address, String::new())),
                    "AcceptableResponseSchema" => Some((Field::Schema, String::new())),
                    _ => None,
                };
            }
            Event::Text(text) => {
                if let Some((_, value)) = &mut current {
                    value.push_str(&text);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some((_, value)) = &mut current {
                    value.push(resolve_reference(&reference)?);
                }
            }
            Event::End(_) => match current.take() {
                Some((Field::Address, value)) => address = Some(value.trim().to_owned()),
                Some((Field::Schema, value)) => schema = Some(value.trim().to_owned()),
                None => {}
            },
            Event::DocType(_) => return Err(PoxError::InvalidRequest),
            Event::Eof => break,
            _ => {}
        }
    }
    let address = address.filter(|a| is_address(a)).ok_or(PoxError::InvalidRequest)?;
    // A request without a schema is answered in the mobilesync one: only phones omit it.
    let schema = schema.unwrap_or_else(|| MOBILESYNC_SCHEMA.to_owned());
    if schema != MOBILESYNC_SCHEMA && schema != OUTLOOK_SCHEMA {
        return Err(PoxError::UnsupportedSchema);
    }
    Ok(PoxRequest { address, schema })
}

#[derive(Clone, Copy)]
enum Field {
    Address,
    Schema,
}

/// `&#38;`-style character references and XML's five predefined entities; there is no DTD,
/// so any other name is an error.
fn resolve_reference(reference: &str) -> Result<char, PoxError> {
    let predefined = match reference {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    };
    let numeric = || {
        let number = reference.strip_prefix('#')?;
        let code = match number.strip_prefix('x') {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        char::from_u32(code).filter(|c| *c != '\0')
    };
    predefined.or_else(numeric).ok_or(PoxError::InvalidRequest)
}

fn is_address(text: &str) -> bool {
    text.len() <= 320
        && text
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn mobilesync_settings(address: &str, url: &str) -> String {
    let (address, url) = (escape(address), escape(url));
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="{ENVELOPE_NAMESPACE}">
  <Response xmlns="{MOBILESYNC_SCHEMA}">
    <Culture>en:us</Culture>
    <User>
      <DisplayName>{address}</DisplayName>
      <EMailAddress>{address}</EMailAddress>
    </User>
    <Action>
      <Settings>
        <Server>
          <Type>MobileSync</Type>
          <Url>{url}</Url>
          <Name>{url}</Name>
        </Server>
      </Settings>
    </Action>
  </Response>
</Autodiscover>
"#
    )
}

/// Outlook's schema has no ActiveSync server type of its own; Outlook (2013 and later)
/// configures an EAS account from a `MobileSync` protocol entry naming the URL.
fn outlook_settings(address: &str, url: &str) -> String {
    let (address, url) = (escape(address), escape(url));
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="{ENVELOPE_NAMESPACE}">
  <Response xmlns="{OUTLOOK_SCHEMA}">
    <User>
      <DisplayName>{address}</DisplayName>
      <EMailAddress>{address}</EMailAddress>
    </User>
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <Protocol>
        <Type>MobileSync</Type>
        <Server>{url}</Server>
        <LoginName>{address}</LoginName>
      </Protocol>
    </Account>
  </Response>
</Autodiscover>
"#
    )
}

fn error_body(error: PoxError) -> String {
    let (code, message) = match error {
        PoxError::InvalidRequest => (600, "Invalid Request"),
        PoxError::UnsupportedSchema => (601, "Requested schema version not supported"),
    };
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="{ENVELOPE_NAMESPACE}">
  <Response>
    <Error>
      <ErrorCode>{code}</ErrorCode>
      <Message>{message}</Message>
      <DebugData />
    </Error>
  </Response>
</Autodiscover>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://mail.example.com/Microsoft-Server-ActiveSync";

    fn body(address: &str, schema: &str) -> Vec<u8> {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006">
  <Request>
    <EMailAddress>{address}</EMailAddress>
    <AcceptableResponseSchema>{schema}</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#
        )
        .into_bytes()
    }

    fn answer_text(body: Vec<u8>, url: Option<&str>) -> String {
        let response = answer(&Request { body, ..Request::default() }, url);
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("text/xml; charset=utf-8"));
        String::from_utf8(response.body).expect("test data")
    }

    #[test]
    fn a_phone_gets_the_mobilesync_url() {
        let text = answer_text(body("chris@example.com", MOBILESYNC_SCHEMA), Some(URL));
        assert!(text.contains(&format!("<Response xmlns=\"{MOBILESYNC_SCHEMA}\">")));
        assert!(text.contains("<Type>MobileSync</Type>"));
        assert!(text.contains(&format!("<Url>{URL}</Url>")));
        assert!(text.contains("<EMailAddress>chris@example.com</EMailAddress>"));
        assert!(!text.contains("<Error>"));
    }

    #[test]
    fn outlook_gets_its_own_schema() {
        let text = answer_text(body("chris@example.com", OUTLOOK_SCHEMA), Some(URL));
        assert!(text.contains(&format!("<Response xmlns=\"{OUTLOOK_SCHEMA}\">")));
        assert!(text.contains(&format!("<Server>{URL}</Server>")));
        assert!(text.contains("<LoginName>chris@example.com</LoginName>"));
    }

    #[test]
    fn prefixed_elements_and_a_missing_schema_are_accepted() {
        let body = br#"<a:Autodiscover xmlns:a="x"><a:Request><a:EMailAddress> pat@example.com </a:EMailAddress></a:Request></a:Autodiscover>"#;
        let text = answer_text(body.to_vec(), Some(URL));
        assert!(text.contains("<EMailAddress>pat@example.com</EMailAddress>"), "{text}");
        assert!(text.contains(MOBILESYNC_SCHEMA));
    }

    #[test]
    fn an_unknown_schema_is_601() {
        let text = answer_text(body("chris@example.com", "urn:other"), Some(URL));
        assert!(text.contains("<ErrorCode>601</ErrorCode>"), "{text}");
    }

    #[test]
    fn malformed_or_hostile_requests_are_600() {
        let huge =
            body(&format!("{}@example.com", "a".repeat(MAX_REQUEST_BYTES)), MOBILESYNC_SCHEMA);
        let doctype = br#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Autodiscover><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>"#;
        for bad in [
            Vec::new(),
            b"not xml <<<".to_vec(),
            b"<Autodiscover><Request></Request></Autodiscover>".to_vec(),
            body("no-at-sign", MOBILESYNC_SCHEMA),
            vec![0xff, 0xfe, 0x00],
            doctype.to_vec(),
            huge,
        ] {
            let text = answer_text(bad.clone(), Some(URL));
            assert!(
                text.contains("<ErrorCode>600</ErrorCode>"),
                "{:?}: {text}",
                String::from_utf8_lossy(&bad)
            );
        }
        let text = answer_text(body("chris@example.com", MOBILESYNC_SCHEMA), None);
        assert!(text.contains("<ErrorCode>600</ErrorCode>"));
    }

    #[test]
    fn markup_in_the_address_is_escaped() {
        let text = answer_text(body("a&amp;b&#60;@example.com", MOBILESYNC_SCHEMA), Some(URL));
        assert!(text.contains("<EMailAddress>a&amp;b&lt;@example.com</EMailAddress>"), "{text}");
    }
}
