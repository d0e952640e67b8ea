//! Provision: the two-phase policy key exchange and remote wipe ([MS-ASPROV] §3.2.5.1,
//! [MS-ASCMD] §2.2.1.14, EAS-NOTES §4.1).

use super::policy::{self, PolicyRecord, Stored, Wipe};
use crate::ashttp::{CommonStatus, EasRequest, ProtocolVersion};
use crate::capabilities::{Capabilities, Level};
use eas_wbxml::tags::{provision as pv, settings};
use eas_wbxml::{Document, Element};

/// The only policy type of EAS 12.0 and later.
const POLICY_TYPE: &str = "MS-EAS-Provisioning-WBXML";

/// `Provision > Status` values (MS-ASPROV §2.2.2.54.2).
const STATUS_SUCCESS: &str = "1";
const STATUS_PROTOCOL_ERROR: &str = "2";
/// `Policy > Status` values (MS-ASPROV §2.2.2.54.1).
const POLICY_UNKNOWN_TYPE: &str = "3";
const POLICY_WRONG_KEY: &str = "5";

/// What Provision answers: a document, or a common status for the caller to put on the wire.
pub enum Outcome {
    Document(Document),
    Failed(CommonStatus),
}

pub async fn run(caps: &impl Capabilities, request: &EasRequest, body: &Element) -> Outcome {
    let device = request.device_id.as_str();
    let stored = match policy::load(caps, device).await {
        Ok(stored) => stored,
        Err(error) => {
            caps.log(Level::Error, &format!("Provision for {device}: {error}"));
            return Outcome::Failed(CommonStatus::ServerError);
        }
    };
    let mut response = Element::new(pv::PROVISION);
    if let Some(information) = body.child(settings::DEVICE_INFORMATION) {
        // 14.1+ devices describe themselves here instead of in Settings: kept the same way
        // (the admin tools list the model). Acknowledging it is what the client waits for
        // (MS-ASPROV §3.2.5.1.1); failing to keep it must not stop provisioning.
        if let Some(set) = information.child(settings::SET)
            && let Err(error) = super::settings::store_device_information(caps, device, set).await
        {
            caps.log(Level::Warn, &format!("storing the device information of {device}: {error}"));
        }
        response.push(Element::new(settings::DEVICE_INFORMATION).text_child(settings::STATUS, "1"));
    }

    if let Some(wipe_ack) =
        body.child(pv::REMOTE_WIPE).or_else(|| body.child(pv::ACCOUNT_ONLY_REMOTE_WIPE))
    {
        let status = wipe_ack.text_of(pv::STATUS).unwrap_or("?");
        caps.log(
            Level::Warn,
            &format!("device {device} acknowledged the remote wipe with status {status}"),
        );
        remember_wipe_acknowledgement(caps, device, &stored, status).await;
        response.push(Element::with_text(pv::STATUS, STATUS_SUCCESS));
        return Outcome::Document(Document::new(response));
    }
    if stored.record.wipe != Wipe::None {
        // A pending wipe answers any Provision with the directive (MS-ASPROV §3.2.5.1.2.2).
        response.push(Element::with_text(pv::STATUS, STATUS_SUCCESS));
        let directive = match stored.record.wipe {
            Wipe::AccountOnly if request.version >= ProtocolVersion::V16_1 => {
                pv::ACCOUNT_ONLY_REMOTE_WIPE
            }
            _ => pv::REMOTE_WIPE,
        };
        response.push(Element::new(directive));
        return Outcome::Document(Document::new(response));
    }

    let Some(policy) = body.child(pv::POLICIES).and_then(|policies| policies.child(pv::POLICY))
    else {
        response.push(Element::with_text(pv::STATUS, STATUS_PROTOCOL_ERROR));
        return Outcome::Document(Document::new(response));
    };
    let policy_type = policy.text_of(pv::POLICY_TYPE).unwrap_or_default();
    let mut answer = Element::new(pv::POLICY).text_child(pv::POLICY_TYPE, policy_type);
    if policy_type != POLICY_TYPE {
        answer.push(Element::with_text(pv::STATUS, POLICY_UNKNOWN_TYPE));
    } else {
        match policy.text_of(pv::POLICY_KEY) {
            None => match phase_one(caps, device, &stored).await {
                Some(temporary) => {
                    answer.push(Element::with_text(pv::STATUS, "1"));
                    answer.push(Element::with_text(pv::POLICY_KEY, temporary.to_string()));
                    let policy = provision_document(&caps.settings().policy);
                    answer.push(Element::new(pv::DATA).with_child(policy));
                }
                None => return Outcome::Failed(CommonStatus::ServerError),
            },
            Some(acknowledged) => {
                let acknowledged = acknowledged.trim().parse::<u32>().ok();
                match phase_two(caps, device, &stored, acknowledged).await {
                    Ok(Some(permanent)) => {
                        answer.push(Element::with_text(pv::STATUS, "1"));
                        answer.push(Element::with_text(pv::POLICY_KEY, permanent.to_string()));
                    }
                    Ok(None) => answer.push(Element::with_text(pv::STATUS, POLICY_WRONG_KEY)),
                    Err(()) => return Outcome::Failed(CommonStatus::ServerError),
                }
            }
        }
    }
    response.push(Element::with_text(pv::STATUS, STATUS_SUCCESS));
    response.push(Element::new(pv::POLICIES).with_child(answer));
    Outcome::Document(Document::new(response))
}

/// Keeps the acknowledgement's status in the record for the administrator (`eas-edge devices
/// show`). Only for a wipe that was asked for; failing to store it changes nothing for the device.
async fn remember_wipe_acknowledgement(
    caps: &impl Capabilities,
    device: &str,
    stored: &Stored,
    status: &str,
) {
    let Ok(status) = status.trim().parse::<u8>() else { return };
    if stored.record.wipe == Wipe::None || stored.record.wiped == Some(status) {
        return;
    }
    let record = PolicyRecord { wiped: Some(status), ..stored.record.clone() };
    if let Err(error) = policy::replace(caps, device, stored, &record).await {
        caps.log(Level::Warn, &format!("storing the wipe acknowledgement of {device}: {error}"));
    }
}

/// Issues and stores a temporary key; the permanent one (if any) stays valid until replaced,
/// so a device re-provisioning after a policy refresh is not locked out midway.
async fn phase_one(caps: &impl Capabilities, device: &str, stored: &Stored) -> Option<u32> {
    let Some(temporary) = policy::new_key(caps) else {
        caps.log(Level::Error, "no randomness for a policy key");
        return None;
    };
    let record = PolicyRecord { temporary: Some(temporary), ..stored.record.clone() };
    match policy::replace(caps, device, stored, &record).await {
        Ok(true) => Some(temporary),
        Ok(false) => {
            caps.log(Level::Warn, &format!("concurrent Provision for {device}; asking to retry"));
            None
        }
        Err(error) => {
            caps.log(Level::Error, &format!("storing the temporary key of {device}: {error}"));
            None
        }
    }
}

/// Exchanges the acknowledged temporary key for a permanent one; `Ok(None)` if it is not the
/// key this device was given.
async fn phase_two(
    caps: &impl Capabilities,
    device: &str,
    stored: &Stored,
    acknowledged: Option<u32>,
) -> Result<Option<u32>, ()> {
    if acknowledged.is_none() || acknowledged != stored.record.temporary {
        caps.log(
            Level::Info,
            &format!("device {device} acknowledged a policy key it was not given"),
        );
        return Ok(None);
    }
    let Some(permanent) = policy::new_key(caps) else {
        caps.log(Level::Error, "no randomness for a policy key");
        return Err(());
    };
    let record =
        PolicyRecord { temporary: None, permanent: Some(permanent), ..stored.record.clone() };
    match policy::replace(caps, device, stored, &record).await {
        Ok(true) => Ok(Some(permanent)),
        Ok(false) => Err(()),
        Err(error) => {
            caps.log(Level::Error, &format!("storing the policy key of {device}: {error}"));
            Err(())
        }
    }
}

/// The policy handed to devices: by default no device password demanded, mail features allowed
/// (MS-ASPROV §2.2.2.2–§2.2.2.52), in token order as Exchange sends it; the tenant's
/// `overrides` replace values by element name. Unset limits are sent empty, as §3.2.5.1.1 asks.
fn provision_document(overrides: &[(String, String)]) -> Element {
    let settings: [(eas_wbxml::Tag, Option<&str>); 38] = [
        (pv::DEVICE_PASSWORD_ENABLED, Some("0")),
        (pv::ALPHANUMERIC_DEVICE_PASSWORD_REQUIRED, Some("0")),
        (pv::REQUIRE_STORAGE_CARD_ENCRYPTION, Some("0")),
        (pv::PASSWORD_RECOVERY_ENABLED, Some("0")),
        (pv::ATTACHMENTS_ENABLED, Some("1")),
        (pv::MIN_DEVICE_PASSWORD_LENGTH, Some("1")),
        (pv::MAX_INACTIVITY_TIME_DEVICE_LOCK, None),
        (pv::MAX_DEVICE_PASSWORD_FAILED_ATTEMPTS, None),
        (pv::MAX_ATTACHMENT_SIZE, None),
        (pv::ALLOW_SIMPLE_DEVICE_PASSWORD, Some("1")),
        (pv::DEVICE_PASSWORD_EXPIRATION, None),
        (pv::DEVICE_PASSWORD_HISTORY, Some("0")),
        (pv::ALLOW_STORAGE_CARD, Some("1")),
        (pv::ALLOW_CAMERA, Some("1")),
        (pv::REQUIRE_DEVICE_ENCRYPTION, Some("0")),
        (pv::ALLOW_UNSIGNED_APPLICATIONS, Some("1")),
        (pv::ALLOW_UNSIGNED_INSTALLATION_PACKAGES, Some("1")),
        (pv::MIN_DEVICE_PASSWORD_COMPLEX_CHARACTERS, Some("1")),
        (pv::ALLOW_WI_FI, Some("1")),
        (pv::ALLOW_TEXT_MESSAGING, Some("1")),
        (pv::ALLOW_POPIMAP_EMAIL, Some("1")),
        (pv::ALLOW_BLUETOOTH, Some("2")),
        (pv::ALLOW_IR_DA, Some("1")),
        (pv::REQUIRE_MANUAL_SYNC_WHEN_ROAMING, Some("0")),
        (pv::ALLOW_DESKTOP_SYNC, Some("1")),
        (pv::MAX_CALENDAR_AGE_FILTER, Some("0")),
        (pv::ALLOW_HTML_EMAIL, Some("1")),
        (pv::MAX_EMAIL_AGE_FILTER, Some("0")),
        (pv::MAX_EMAIL_BODY_TRUNCATION_SIZE, None),
        (pv::MAX_EMAIL_HTML_BODY_TRUNCATION_SIZE, None),
        (pv::REQUIRE_SIGNED_SMIME_MESSAGES, Some("0")),
        (pv::REQUIRE_ENCRYPTED_SMIME_MESSAGES, Some("0")),
        (pv::ALLOW_SMIME_ENCRYPTION_ALGORITHM_NEGOTIATION, Some("2")),
        (pv::ALLOW_SMIME_SOFT_CERTS, Some("1")),
        (pv::ALLOW_BROWSER, Some("1")),
        (pv::ALLOW_CONSUMER_EMAIL, Some("1")),
        (pv::ALLOW_REMOTE_DESKTOP, Some("1")),
        (pv::ALLOW_INTERNET_SHARING, Some("1")),
    ];
    let mut document = Element::new(pv::EAS_PROVISION_DOC);
    for (tag, default) in settings {
        let value = overrides
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(tag.name()))
            .map_or(default, |(_, value)| (!value.is_empty()).then_some(value.as_str()));
        document.push(match value {
            Some(value) => Element::with_text(tag, value),
            None => Element::new(tag),
        });
    }
    document
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    #[test]
    fn tenant_overrides_replace_defaults_by_name() {
        let overrides = vec![
            ("devicepasswordenabled".to_owned(), "1".to_owned()),
            ("MinDevicePasswordLength".to_owned(), "6".to_owned()),
            ("AllowCamera".to_owned(), String::new()),
        ];
        let document = provision_document(&overrides);
        assert_eq!(document.text_of(pv::DEVICE_PASSWORD_ENABLED), Some("1"));
        assert_eq!(document.text_of(pv::MIN_DEVICE_PASSWORD_LENGTH), Some("6"));
        assert!(document.child(pv::ALLOW_CAMERA).is_some_and(Element::is_empty));
        assert_eq!(document.text_of(pv::ALLOW_WI_FI), Some("1"));
    }
}
