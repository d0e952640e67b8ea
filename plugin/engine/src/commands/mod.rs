//! EAS commands: from a parsed request to the response.

mod common_status;
mod compose_mail;
mod find;
mod folder_changes;
mod folder_sync;
mod get_item_estimate;
mod item_operations;
mod move_items;
mod ping;
pub(crate) mod policy;
mod provision;
mod resolve_recipients;
mod search;
pub(crate) mod settings;
mod sync;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use crate::ashttp::{Command, CommonStatus, EasRequest, WireForm};
use crate::capabilities::{Capabilities, Level, StateError};
use crate::http::Response;
use eas_wbxml::{Document, Limits};
use policy::Wipe;

pub use common_status::status_document;

/// Commands that the engine answers. Grows with each command; never lists one that would be
/// refused as not supported (`MS-ASProtocolCommands` in the OPTIONS answer is this list).
pub const IMPLEMENTED: &[&str] = &[
    "FolderSync",
    "Settings",
    "ItemOperations",
    "Provision",
    "Sync",
    "GetItemEstimate",
    "Ping",
    "SendMail",
    "SmartReply",
    "SmartForward",
    "Search",
    "ResolveRecipients",
    "Find",
    "MoveItems",
    "FolderCreate",
    "FolderUpdate",
    "FolderDelete",
];

/// Runs the command of an authenticated, parsed request.
pub async fn dispatch(
    caps: &impl Capabilities,
    identity: &str,
    request: &EasRequest,
    body: &[u8],
) -> Response {
    let device = request.device_id.as_str();
    if let Some(status) = policy_gate(caps, request).await {
        caps.log(
            Level::Info,
            &format!(
                "{identity} device {device}: {} refused: status {}",
                request.command.name(),
                status.code()
            ),
        );
        return answer_common_status(request, status);
    }
    match request.command {
        Command::Provision => {
            let Some(document) = decode_body(caps, request, body) else {
                return answer_common_status(request, CommonStatus::InvalidWbxml);
            };
            match provision::run(caps, request, &document.root).await {
                provision::Outcome::Document(answer) => wbxml_response(&answer, request),
                provision::Outcome::Failed(status) => answer_common_status(request, status),
            }
        }
        Command::FolderSync => folder_sync::run(caps, request, body).await,
        Command::ItemOperations => item_operations::run(caps, request, body).await,
        Command::Settings => settings::run(caps, identity, request, body).await,
        Command::Search => search::run(caps, identity, request, body).await,
        Command::Find => find::run(caps, identity, request, body).await,
        Command::ResolveRecipients => resolve_recipients::run(caps, identity, request, body).await,
        Command::Sync => sync::run(caps, identity, request, body).await,
        Command::MoveItems => move_items::run(caps, request, body).await,
        Command::FolderCreate | Command::FolderUpdate | Command::FolderDelete => {
            folder_changes::run(caps, request, body).await
        }
        // An empty Ping repeats the device's last one (MS-ASCMD §2.2.1.13).
        Command::Ping if body.is_empty() => ping::run(caps, device, None).await,
        Command::Ping => match decode_body(caps, request, body) {
            Some(document) => ping::run(caps, device, Some(&document.root)).await,
            None => answer_common_status(request, CommonStatus::InvalidWbxml),
        },
        Command::SendMail | Command::SmartReply | Command::SmartForward => {
            compose_mail::run(caps, identity, request, body).await
        }
        Command::GetItemEstimate => {
            let Some(document) = decode_body(caps, request, body) else {
                return answer_common_status(request, CommonStatus::InvalidWbxml);
            };
            get_item_estimate::run(caps, request, &document.root).await
        }
        _ => {
            caps.log(
                Level::Info,
                &format!(
                    "{identity} device {device} sent {} v{}: not implemented",
                    request.command.name(),
                    request.version.as_str()
                ),
            );
            answer_common_status(request, CommonStatus::CommandNotSupported)
        }
    }
}

/// The check every command passes first. A device an administrator blocked gets 129
/// (DeviceIsBlockedForThisUser, MS-ASCMD §2.2.2) on every command, unless a wipe is pending:
/// the wipe still reaches it. Then, for every command but Provision and Ping (MS-ASPROV
/// §3.2.5.1): a pending wipe, a missing key or a stale key sends the device to Provision.
async fn policy_gate(caps: &impl Capabilities, request: &EasRequest) -> Option<CommonStatus> {
    let stored = match policy::load(caps, request.device_id.as_str()).await {
        Ok(stored) => stored.record,
        Err(error) => {
            caps.log(Level::Error, &format!("reading the policy record: {error}"));
            // a store that is down for a moment (the gateway behind Envoy restarting, the
            // database failing over): the phone should come back, not report a broken server
            return Some(match error {
                StateError::Unavailable(_) => CommonStatus::ServerErrorRetryLater,
                StateError::Unauthenticated | StateError::TooLarge(_) => CommonStatus::ServerError,
            });
        }
    };
    if stored.blocked && stored.wipe == Wipe::None {
        return Some(CommonStatus::DeviceIsBlockedForThisUser);
    }
    if matches!(request.command, Command::Provision | Command::Ping) {
        return None;
    }
    if stored.wipe != Wipe::None {
        return Some(CommonStatus::RemoteWipeRequested);
    }
    match (request.policy_key.map(|key| key.0), stored.permanent) {
        (None | Some(0), _) | (_, None) => Some(CommonStatus::DeviceNotProvisioned),
        (Some(sent), Some(permanent)) if sent != permanent => Some(CommonStatus::InvalidPolicyKey),
        _ => None,
    }
}

fn decode_body(caps: &impl Capabilities, request: &EasRequest, body: &[u8]) -> Option<Document> {
    match eas_wbxml::decode(body, &Limits::default()) {
        Ok(document) => Some(document),
        Err(error) => {
            caps.log(
                Level::Info,
                &format!("{} body is not valid WBXML: {error}", request.command.name()),
            );
            None
        }
    }
}

fn wbxml_response(document: &Document, request: &EasRequest) -> Response {
    match eas_wbxml::encode(document) {
        Ok(body) => Response::new(200).with_body(crate::WBXML_CONTENT_TYPE, body),
        Err(_) => answer_common_status(request, CommonStatus::ServerError),
    }
}

/// A command-independent failure in the wire form the request's version wants: an HTTP code
/// for 12.1, or `<Command><Status>N</Status></Command>` for 14.0+ (MS-ASCMD §2.2.2).
pub fn answer_common_status(request: &EasRequest, status: CommonStatus) -> Response {
    match request.wire_form(status) {
        WireForm::Http(reply) => reply.into_response(),
        WireForm::StatusInBody(code) => match status_document(request.command, code) {
            Some(body) => Response::new(200).with_body(crate::WBXML_CONTENT_TYPE, body),
            // Only a broken code-page table could get here; 500 is the honest answer.
            None => Response::new(500),
        },
    }
}
