//! The `mailbox` import's generated types mapped onto the engine's own (field for field).

use crate::bindings::eas_edge::gateway::mailbox as wit;
use eas_engine::mailbox::{
    BodyPart, ChangeMethod, Changes, Folder, FolderRole, FolderStatus, MailboxError, Message,
    MessageFlags, MessageSummary, UidRange,
};

pub fn error(error: wit::Error) -> MailboxError {
    match error {
        wit::Error::Unauthenticated => MailboxError::Unauthenticated,
        wit::Error::NoSuchFolder(name) => MailboxError::NoSuchFolder(name),
        wit::Error::TooLarge(what) => MailboxError::TooLarge(what),
        wit::Error::Unavailable(why) => MailboxError::Unavailable(why),
        wit::Error::Refused(why) => MailboxError::Refused(why),
    }
}

pub fn folder(folder: wit::Folder) -> Folder {
    Folder {
        name: folder.name,
        display_name: folder.display_name,
        delimiter: folder.delimiter,
        role: folder.role.map(|role| match role {
            wit::FolderRole::Inbox => FolderRole::Inbox,
            wit::FolderRole::Drafts => FolderRole::Drafts,
            wit::FolderRole::Sent => FolderRole::Sent,
            wit::FolderRole::Trash => FolderRole::Trash,
            wit::FolderRole::Junk => FolderRole::Junk,
            wit::FolderRole::Archive => FolderRole::Archive,
        }),
        selectable: folder.selectable,
        mailbox_id: folder.mailbox_id,
    }
}

pub fn status(status: wit::FolderStatus) -> FolderStatus {
    FolderStatus {
        uid_validity: status.uid_validity,
        uid_next: status.uid_next,
        highest_modseq: status.highest_modseq,
        messages: status.messages,
        unseen: status.unseen,
    }
}

pub fn range(range: wit::UidRange) -> UidRange {
    UidRange { first: range.first, last: range.last }
}

pub fn changes(changes: wit::FolderChanges) -> Changes {
    Changes {
        method: match changes.method {
            wit::ChangeMethod::Qresync => ChangeMethod::Qresync,
            wit::ChangeMethod::Condstore => ChangeMethod::Condstore,
            wit::ChangeMethod::Full => ChangeMethod::Full,
        },
        uid_validity: changes.uid_validity,
        uid_validity_changed: changes.uid_validity_changed,
        highest_modseq: changes.highest_modseq,
        uid_next: changes.uid_next,
        messages: changes.messages,
        changed: changes
            .changed
            .into_iter()
            .map(|message| MessageFlags { uid: message.uid, flags: message.flags })
            .collect(),
        vanished: changes.vanished.into_iter().map(range).collect(),
        current_uids: changes.current_uids.map(|uids| uids.into_iter().map(range).collect()),
    }
}

fn body_part(part: wit::BodyPart) -> BodyPart {
    BodyPart {
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

pub fn summary(summary: wit::MessageSummary) -> MessageSummary {
    MessageSummary {
        uid: summary.uid,
        flags: summary.flags,
        internal_date: summary.internal_date,
        size: summary.size,
        body_structure: summary.body_structure.into_iter().map(body_part).collect(),
        prefix: summary.prefix,
        rendered: summary.rendered,
    }
}

pub fn message(message: wit::Message) -> Message {
    Message {
        uid: message.uid,
        flags: message.flags,
        internal_date: message.internal_date,
        raw: message.raw,
    }
}
