//! The IMAP layer's types as the `mailbox` interface's generated types, field for field.

use super::eas_edge::gateway::mailbox as wit;
use crate::imap;

pub fn folder(folder: imap::Folder) -> wit::Folder {
    wit::Folder {
        name: folder.raw_name,
        display_name: folder.name,
        delimiter: folder.delimiter,
        role: folder.role.map(role),
        selectable: folder.selectable,
        mailbox_id: folder.mailbox_id,
    }
}

fn role(role: imap::FolderRole) -> wit::FolderRole {
    match role {
        imap::FolderRole::Inbox => wit::FolderRole::Inbox,
        imap::FolderRole::Drafts => wit::FolderRole::Drafts,
        imap::FolderRole::Sent => wit::FolderRole::Sent,
        imap::FolderRole::Trash => wit::FolderRole::Trash,
        imap::FolderRole::Junk => wit::FolderRole::Junk,
        imap::FolderRole::Archive => wit::FolderRole::Archive,
    }
}

pub fn status(status: imap::FolderStatus) -> wit::FolderStatus {
    wit::FolderStatus {
        uid_validity: status.uid_validity,
        uid_next: status.uid_next,
        highest_modseq: status.highest_modseq,
        messages: status.messages,
        unseen: status.unseen,
    }
}

pub fn range(range: imap::UidRange) -> wit::UidRange {
    wit::UidRange { first: range.first, last: range.last }
}

pub fn sync_point(point: wit::SyncPoint) -> imap::SyncPoint {
    imap::SyncPoint { uid_validity: point.uid_validity, highest_modseq: point.highest_modseq }
}

pub fn changes(changes: imap::Changes) -> wit::FolderChanges {
    wit::FolderChanges {
        method: match changes.method {
            imap::ChangeMethod::Qresync => wit::ChangeMethod::Qresync,
            imap::ChangeMethod::Condstore => wit::ChangeMethod::Condstore,
            imap::ChangeMethod::Full => wit::ChangeMethod::Full,
        },
        uid_validity: changes.uid_validity,
        uid_validity_changed: changes.uid_validity_changed,
        highest_modseq: changes.new_highest_modseq,
        // required in every EXAMINE answer (RFC 3501 §6.3.1); 0 only from a broken server
        uid_next: changes.uid_next.unwrap_or(0),
        messages: changes.exists,
        changed: changes
            .changed
            .into_iter()
            .map(|message| wit::MessageFlags { uid: message.uid, flags: message.flags })
            .collect(),
        vanished: changes.vanished.into_iter().map(range).collect(),
        current_uids: changes.current_uids.map(|uids| uids.into_iter().map(range).collect()),
    }
}

pub fn summary(summary: imap::Summary) -> wit::MessageSummary {
    wit::MessageSummary {
        uid: summary.uid,
        flags: summary.flags,
        internal_date: summary.internal_date,
        size: u32::try_from(summary.size).unwrap_or(u32::MAX),
        body_structure: summary.body_structure.into_iter().map(body_part).collect(),
        prefix: summary.prefix,
        rendered: None,
    }
}

/// A summary whose message the plugin rendered ahead: the rendering instead of the prefix
/// and structure it was made from.
pub fn rendered_summary(mut summary: imap::Summary, rendered: Vec<u8>) -> wit::MessageSummary {
    summary.prefix = Vec::new();
    summary.body_structure = Vec::new();
    wit::MessageSummary { rendered: Some(rendered), ..self::summary(summary) }
}

fn body_part(part: imap::BodyPart) -> wit::BodyPart {
    wit::BodyPart {
        section: part.section,
        depth: part.depth,
        is_multipart: part.is_multipart,
        media_type: part.media_type,
        media_subtype: part.media_subtype,
        params: part.params,
        content_id: part.content_id,
        description: part.description,
        encoding: part.encoding,
        size: part.size,
        lines: part.lines,
        disposition: part.disposition,
        disposition_params: part.disposition_params,
    }
}

pub fn message(message: imap::Message) -> wit::Message {
    wit::Message {
        uid: message.uid,
        flags: message.flags,
        internal_date: message.internal_date,
        raw: message.raw,
    }
}
