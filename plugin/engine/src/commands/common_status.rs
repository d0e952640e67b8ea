//! Where each command puts a common status (MS-ASCMD §2.2.2): inside its top-level response
//! element, in the Status element of that element's code page.

use crate::ashttp::Command;
use eas_wbxml::tags::{
    air_sync, compose_mail, find, folder_hierarchy, get_item_estimate, item_operations,
    meeting_response, r#move, ping, provision, resolve_recipients, search, settings, validate_cert,
};
use eas_wbxml::{Document, Element, Tag};

/// The response's root element and its Status element.
fn status_location(command: Command) -> (Tag, Tag) {
    match command {
        Command::Sync => (air_sync::SYNC, air_sync::STATUS),
        Command::SendMail => (compose_mail::SEND_MAIL, compose_mail::STATUS),
        Command::SmartForward => (compose_mail::SMART_FORWARD, compose_mail::STATUS),
        Command::SmartReply => (compose_mail::SMART_REPLY, compose_mail::STATUS),
        // GetAttachment exists only up to 12.1, where failures are HTTP codes; this entry is
        // never used for it but keeps the table total.
        Command::GetAttachment => (item_operations::ITEM_OPERATIONS, item_operations::STATUS),
        Command::FolderSync => (folder_hierarchy::FOLDER_SYNC, folder_hierarchy::STATUS),
        Command::FolderCreate => (folder_hierarchy::FOLDER_CREATE, folder_hierarchy::STATUS),
        Command::FolderDelete => (folder_hierarchy::FOLDER_DELETE, folder_hierarchy::STATUS),
        Command::FolderUpdate => (folder_hierarchy::FOLDER_UPDATE, folder_hierarchy::STATUS),
        Command::MoveItems => (r#move::MOVE_ITEMS, r#move::STATUS),
        Command::GetItemEstimate => {
            (get_item_estimate::GET_ITEM_ESTIMATE, get_item_estimate::STATUS)
        }
        Command::MeetingResponse => (meeting_response::MEETING_RESPONSE, meeting_response::STATUS),
        Command::Search => (search::SEARCH, search::STATUS),
        Command::Settings => (settings::SETTINGS, settings::STATUS),
        Command::Ping => (ping::PING, ping::STATUS),
        Command::ItemOperations => (item_operations::ITEM_OPERATIONS, item_operations::STATUS),
        Command::Provision => (provision::PROVISION, provision::STATUS),
        Command::ResolveRecipients => {
            (resolve_recipients::RESOLVE_RECIPIENTS, resolve_recipients::STATUS)
        }
        Command::ValidateCert => (validate_cert::VALIDATE_CERT, validate_cert::STATUS),
        Command::Find => (find::FIND, find::STATUS),
    }
}

/// `<Root><Status>code</Status></Root>` as WBXML, or `None` if it cannot be encoded.
pub fn status_document(command: Command, code: u16) -> Option<Vec<u8>> {
    let (root, status) = status_location(command);
    let document = Document::new(Element::new(root).text_child(status, code.to_string()));
    eas_wbxml::encode(&document).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_an_encodable_status_document() {
        for command in Command::ALL {
            let bytes = status_document(command, 137).expect("encodes");
            let document =
                eas_wbxml::decode(&bytes, &eas_wbxml::Limits::default()).expect("decodes");
            let (root, status) = status_location(command);
            assert_eq!(document.root.tag, root, "{command:?}");
            assert_eq!(document.root.text_of(status), Some("137"), "{command:?}");
        }
    }

    #[test]
    fn folder_sync_status_matches_the_spec_bytes() {
        // FolderSync (page 7, 0x16) > Status (0x0C) "142"
        let bytes = status_document(Command::FolderSync, 142).expect("encodes");
        assert_eq!(
            bytes,
            [
                0x03, 0x01, 0x6A, 0x00, 0x00, 0x07, 0x56, 0x4C, 0x03, b'1', b'4', b'2', 0x00, 0x01,
                0x01
            ]
        );
    }
}
