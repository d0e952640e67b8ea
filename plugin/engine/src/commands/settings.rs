//! Settings ([MS-ASCMD] §2.2.1.18, EAS-NOTES §4.13): DeviceInformation Set (kept in the device
//! scope for the admin tools), UserInformation Get (the authenticated address), and
//! well-formed refusals for what this server does not offer yet.
//!
//! The top-level Status is 1, or 2 (protocol error, no property answers) for a request with an
//! element Settings does not know; each property then answers in request order with its own
//! Status (§2.2.3.177.15): 1 success, 2 protocol error, 3 access denied, 4 server unavailable,
//! 5 invalid arguments, 6 conflicting arguments, 7 denied by policy.
//!
//! * Oof Get / Set: the out-of-office capability (Sieve vacation through ManageSieve), see
//!   `oof.rs`; 7 when the tenant's server has no vacation replies.
//! * DevicePassword Set: 7, as the policy sent by Provision has PasswordRecoveryEnabled 0.
//! * RightsManagementInformation Get (14.1+): 1 with an empty template list (no IRM here).

mod oof;

use super::{answer_common_status, decode_body, wbxml_response};
use crate::ashttp::{CommonStatus, EasRequest, ProtocolVersion};
use crate::capabilities::{Capabilities, Level, StateResult, StateScope};
use crate::http::Response;
use eas_wbxml::tags::{rights_management as rm, settings as st};
use eas_wbxml::{Document, Element};
use serde::{Deserialize, Serialize};

/// State key of the last DeviceInformation a device sent, in its device scope.
pub const DEVICE_INFORMATION_KEY: &str = "device-information";

const STATUS_SUCCESS: &str = "1";
const STATUS_PROTOCOL_ERROR: &str = "2";
const STATUS_SERVER_UNAVAILABLE: &str = "4";
const STATUS_DENIED_BY_POLICY: &str = "7";

/// Longest value kept per DeviceInformation field (they are names and numbers; a longer one is
/// cut at a character boundary so one device cannot fill the store).
const MAX_FIELD_BYTES: usize = 1024;

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
    if root.tag != st::SETTINGS {
        return answer_common_status(request, CommonStatus::InvalidXml);
    }
    let properties = root.child_elements();
    let known = |tag| {
        [st::OOF, st::DEVICE_INFORMATION, st::USER_INFORMATION, st::DEVICE_PASSWORD].contains(&tag)
            || (tag == st::RIGHTS_MANAGEMENT_INFORMATION
                && request.version >= ProtocolVersion::V14_1)
    };
    if properties.is_empty() || properties.iter().any(|property| !known(property.tag)) {
        caps.log(Level::Info, "Settings with no or unknown properties: protocol error");
        return wbxml_response(&status_document(STATUS_PROTOCOL_ERROR), request);
    }
    let mut response = Element::new(st::SETTINGS).text_child(st::STATUS, STATUS_SUCCESS);
    let device = request.device_id.as_str();
    for property in properties {
        let answer = match property.tag {
            tag if tag == st::DEVICE_INFORMATION => {
                device_information(caps, device, property).await
            }
            tag if tag == st::USER_INFORMATION => user_information(identity, request, property),
            tag if tag == st::RIGHTS_MANAGEMENT_INFORMATION => rights_management(property),
            tag if tag == st::OOF => oof::answer(caps, property).await,
            // DevicePassword.
            _ => denied(property),
        };
        response.push(answer);
    }
    wbxml_response(&Document::new(response), request)
}

fn status_document(status: &str) -> Document {
    Document::new(Element::new(st::SETTINGS).text_child(st::STATUS, status))
}

/// `<Property><Status>status</Status></Property>`.
fn property_status(property: &Element, status: &str) -> Element {
    Element::new(property.tag).text_child(st::STATUS, status)
}

/// DevicePassword: a well-formed request is denied by policy, a malformed one is a protocol
/// error.
fn denied(property: &Element) -> Element {
    let well_formed = property.child(st::SET).is_some_and(|set| set.child(st::PASSWORD).is_some());
    let status = if well_formed { STATUS_DENIED_BY_POLICY } else { STATUS_PROTOCOL_ERROR };
    property_status(property, status)
}

async fn device_information(caps: &impl Capabilities, device: &str, property: &Element) -> Element {
    let Some(set) = property.child(st::SET) else {
        return property_status(property, STATUS_PROTOCOL_ERROR);
    };
    match store_device_information(caps, device, set).await {
        Ok(()) => property_status(property, STATUS_SUCCESS),
        Err(error) => {
            caps.log(Level::Error, &format!("storing the device information of {device}: {error}"));
            property_status(property, STATUS_SERVER_UNAVAILABLE)
        }
    }
}

/// Keeps what a `DeviceInformation > Set` says (Settings, and Provision on 14.1+ which carries
/// the same element).
pub async fn store_device_information(
    caps: &impl Capabilities,
    device: &str,
    set: &Element,
) -> StateResult<()> {
    let information = DeviceInformation::from_set(set);
    caps.state_put(
        &StateScope::Device(device.to_owned()),
        DEVICE_INFORMATION_KEY,
        information.encode(),
    )
    .await
}

/// UserInformation Get: the authenticated address. 12.1 and 14.0 list it under
/// `Get > EmailAddresses`; 14.1+ under `Get > Accounts > Account > EmailAddresses`, with
/// `PrimarySmtpAddress` (MS-ASCMD §2.2.3.57, §2.2.3.138). A login that is not an address has
/// no EmailAddresses at all rather than a false one.
fn user_information(identity: &str, request: &EasRequest, property: &Element) -> Element {
    if property.child(st::GET).is_none() {
        return property_status(property, STATUS_PROTOCOL_ERROR);
    }
    let address =
        Some(identity.trim()).filter(|id| id.contains('@') && !id.contains(char::is_whitespace));
    let mut get = Element::new(st::GET);
    if let Some(address) = address {
        if request.version >= ProtocolVersion::V14_1 {
            let addresses = Element::new(st::EMAIL_ADDRESSES)
                .text_child(st::SMTP_ADDRESS, address)
                .text_child(st::PRIMARY_SMTP_ADDRESS, address);
            get.push(
                Element::new(st::ACCOUNTS)
                    .with_child(Element::new(st::ACCOUNT).with_child(addresses)),
            );
        } else {
            get.push(Element::new(st::EMAIL_ADDRESSES).text_child(st::SMTP_ADDRESS, address));
        }
    }
    property_status(property, STATUS_SUCCESS).with_child(get)
}

/// RightsManagementInformation Get (14.1+): no templates, as there is no IRM.
fn rights_management(property: &Element) -> Element {
    if property.child(st::GET).is_none() {
        return property_status(property, STATUS_PROTOCOL_ERROR);
    }
    property_status(property, STATUS_SUCCESS)
        .with_child(Element::new(st::GET).with_child(Element::new(rm::RIGHTS_MANAGEMENT_TEMPLATES)))
}

/// Leading byte of the stored [`DeviceInformation`]; bump when the layout changes.
const FORMAT: u8 = 1;

/// What a device says about itself (MS-ASCMD §2.2.3.45).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInformation {
    pub model: Option<String>,
    pub imei: Option<String>,
    pub friendly_name: Option<String>,
    pub os: Option<String>,
    pub os_language: Option<String>,
    pub phone_number: Option<String>,
    pub user_agent: Option<String>,
    pub enable_outbound_sms: Option<bool>,
    pub mobile_operator: Option<String>,
}

impl DeviceInformation {
    /// From `DeviceInformation > Set`; unknown children are ignored, values cut to
    /// [`MAX_FIELD_BYTES`], invalid UTF-8 replaced.
    pub fn from_set(set: &Element) -> Self {
        let text = |tag| {
            set.child(tag).and_then(Element::bytes).map(|bytes| {
                let text = String::from_utf8_lossy(bytes);
                let mut end = text.len().min(MAX_FIELD_BYTES);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text[..end].to_owned()
            })
        };
        DeviceInformation {
            model: text(st::MODEL),
            imei: text(st::IMEI),
            friendly_name: text(st::FRIENDLY_NAME),
            os: text(st::OS),
            os_language: text(st::OS_LANGUAGE),
            phone_number: text(st::PHONE_NUMBER),
            user_agent: text(st::USER_AGENT),
            enable_outbound_sms: text(st::ENABLE_OUTBOUND_SMS)
                .map(|value| matches!(value.trim(), "" | "1")),
            mobile_operator: text(st::MOBILE_OPERATOR),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![FORMAT];
        // Serialising plain owned data into a Vec cannot fail.
        bytes.extend(postcard::to_allocvec(self).unwrap_or_default());
        bytes
    }

    /// For the admin tools (device listing), which read the stored record.
    pub fn decode(bytes: &[u8]) -> Option<DeviceInformation> {
        let (&format, rest) = bytes.split_first()?;
        if format != FORMAT {
            return None;
        }
        postcard::from_bytes(rest).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::test_support::{
        DEVICE, IDENTITY, decoded, post, post_raw, provisioned_host,
    };
    use crate::testing::FakeHost;

    fn settings(host: &FakeHost, version: &str, properties: Vec<Element>) -> Element {
        let body = Document::new(Element::with_children(st::SETTINGS, properties));
        decoded(&post(host, "Settings", version, &body))
    }

    fn get(tag: eas_wbxml::Tag) -> Element {
        Element::new(tag).with_child(Element::new(st::GET))
    }

    #[test]
    fn device_information_is_stored_for_the_device() {
        let host = provisioned_host();
        let set = Element::new(st::SET)
            .text_child(st::MODEL, "iPhone15,2")
            .text_child(st::IMEI, "356938035643809")
            .text_child(st::FRIENDLY_NAME, "Jane's phone")
            .text_child(st::OS, "iOS 18.1")
            .text_child(st::USER_AGENT, "Apple-iPhone15C2/2201.1")
            .empty_child(st::ENABLE_OUTBOUND_SMS)
            .text_child(st::MOBILE_OPERATOR, "x".repeat(5000));
        let answer =
            settings(&host, "14.0", vec![Element::new(st::DEVICE_INFORMATION).with_child(set)]);
        assert_eq!(answer.text_of(st::STATUS), Some("1"));
        let property = answer.child(st::DEVICE_INFORMATION).expect("answered");
        assert_eq!(property.text_of(st::STATUS), Some("1"));
        let stored = host
            .stored(&StateScope::Device(DEVICE.into()), DEVICE_INFORMATION_KEY)
            .and_then(|bytes| DeviceInformation::decode(&bytes))
            .expect("stored");
        assert_eq!(stored.model.as_deref(), Some("iPhone15,2"));
        assert_eq!(stored.friendly_name.as_deref(), Some("Jane's phone"));
        assert_eq!(stored.phone_number, None);
        assert_eq!(stored.enable_outbound_sms, Some(true));
        assert_eq!(stored.mobile_operator.map(|m| m.len()), Some(MAX_FIELD_BYTES));
        let without_set = settings(&host, "14.0", vec![Element::new(st::DEVICE_INFORMATION)]);
        let property = without_set.child(st::DEVICE_INFORMATION).expect("answered");
        assert_eq!(property.text_of(st::STATUS), Some("2"));
    }

    #[test]
    fn user_information_per_version() {
        let host = provisioned_host();
        for version in ["12.1", "14.0"] {
            let answer = settings(&host, version, vec![get(st::USER_INFORMATION)]);
            let info = answer.child(st::USER_INFORMATION).expect("answered");
            assert_eq!(info.text_of(st::STATUS), Some("1"));
            let addresses = info.child(st::GET).and_then(|g| g.child(st::EMAIL_ADDRESSES));
            assert_eq!(addresses.and_then(|a| a.text_of(st::SMTP_ADDRESS)), Some(IDENTITY));
            assert!(info.child(st::GET).and_then(|g| g.child(st::ACCOUNTS)).is_none());
        }
        for version in ["14.1", "16.0", "16.1"] {
            let answer = settings(&host, version, vec![get(st::USER_INFORMATION)]);
            let info = answer.child(st::USER_INFORMATION).expect("answered");
            let get = info.child(st::GET).expect("Get");
            assert!(get.child(st::EMAIL_ADDRESSES).is_none(), "{version}");
            let addresses = get
                .child(st::ACCOUNTS)
                .and_then(|a| a.child(st::ACCOUNT))
                .and_then(|a| a.child(st::EMAIL_ADDRESSES))
                .expect("Accounts > Account > EmailAddresses");
            assert_eq!(addresses.text_of(st::SMTP_ADDRESS), Some(IDENTITY));
            assert_eq!(addresses.text_of(st::PRIMARY_SMTP_ADDRESS), Some(IDENTITY));
        }
    }

    #[test]
    fn unavailable_features_are_refused_per_property_in_request_order() {
        let host = provisioned_host();
        let oof_set =
            Element::new(st::OOF).with_child(Element::new(st::SET).text_child(st::OOF_STATE, "1"));
        let password = Element::new(st::DEVICE_PASSWORD)
            .with_child(Element::new(st::SET).text_child(st::PASSWORD, "1234"));
        let answer = settings(
            &host,
            "16.1",
            vec![
                get(st::OOF),
                oof_set,
                Element::new(st::OOF),
                password,
                get(st::RIGHTS_MANAGEMENT_INFORMATION),
                get(st::USER_INFORMATION),
            ],
        );
        assert_eq!(answer.text_of(st::STATUS), Some("1"));
        let answered: Vec<_> = answer
            .child_elements()
            .iter()
            .skip(1)
            .map(|p| (p.tag, p.text_of(st::STATUS).unwrap_or("?")))
            .collect();
        assert_eq!(
            answered,
            [
                (st::OOF, "7"),
                (st::OOF, "7"),
                (st::OOF, "2"),
                (st::DEVICE_PASSWORD, "7"),
                (st::RIGHTS_MANAGEMENT_INFORMATION, "1"),
                (st::USER_INFORMATION, "1"),
            ]
        );
        let templates = answer
            .child(st::RIGHTS_MANAGEMENT_INFORMATION)
            .and_then(|r| r.child(st::GET))
            .and_then(|g| g.child(rm::RIGHTS_MANAGEMENT_TEMPLATES));
        assert!(templates.is_some_and(Element::is_empty));
    }

    #[test]
    fn unknown_or_missing_properties_are_a_protocol_error() {
        let host = provisioned_host();
        let protocol_error = |version: &str, properties: Vec<Element>| {
            let answer = settings(&host, version, properties);
            assert_eq!(answer.text_of(st::STATUS), Some("2"), "{version}");
            assert_eq!(answer.child_elements().len(), 1, "no property answers");
        };
        protocol_error("16.1", vec![]);
        protocol_error("16.1", vec![get(st::USER_INFORMATION), Element::new(st::MODEL)]);
        // RightsManagementInformation does not exist before 14.1.
        protocol_error("14.0", vec![get(st::RIGHTS_MANAGEMENT_INFORMATION)]);

        let garbage = vec![0x03, 0x01, 0x6A, 0x00, 0x00, 0x12, 0x45];
        assert_eq!(post_raw(&host, "Settings", "12.1", garbage.clone(), &[]).status, 400);
        let in_body = decoded(&post_raw(&host, "Settings", "16.1", garbage, &[]));
        assert_eq!(in_body.text_of(st::STATUS), Some("102"));
    }

    #[test]
    fn a_login_that_is_no_address_gets_no_address() {
        let request = crate::ashttp::parse_request(&crate::http::Request {
            method: "POST".into(),
            path: crate::ENDPOINT.into(),
            query: "Cmd=Settings&User=jane&DeviceId=D1&DeviceType=iPhone".into(),
            headers: vec![("ms-asprotocolversion".into(), b"16.1".to_vec())],
            body: Vec::new(),
        })
        .expect("parses");
        let answer = user_information("jane", &request, &get(st::USER_INFORMATION));
        assert_eq!(answer.text_of(st::STATUS), Some("1"));
        assert!(answer.child(st::GET).is_some_and(Element::is_empty));
    }
}
