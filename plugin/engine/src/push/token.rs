//! The folder state token shared with the host: both sides compute it from STATUS, so the
//! host can tell "this folder moved since the engine looked" without asking the engine.

use crate::mailbox::FolderStatus;

/// `{uidvalidity}.{uidnext}.{highestmodseq or 0}.{messages}`: with CONDSTORE any new message,
/// expunge or flag change moves it; without, only arrivals and expunges do (flag changes then
/// wait for the next Sync). The host computes the same string from its own STATUS to decide when to
/// wake a parked request (docs/architecture.md).
pub fn folder_token(status: &FolderStatus) -> String {
    format!(
        "{}.{}.{}.{}",
        status.uid_validity,
        status.uid_next,
        status.highest_modseq.unwrap_or(0),
        status.messages
    )
}

/// The reserved folder name of the hierarchy watch: a hold that lists it (with
/// [`hierarchy_token`]) wakes when a folder is created, deleted or renamed. NUL never occurs in
/// an IMAP mailbox name, so no folder can collide with it (its channel is `%00hierarchy`).
pub const HIERARCHY: &str = "\0hierarchy";

/// The token of the folder list: `{count}.{fnv1a-64 hex}` over the raw IMAP names from
/// `LIST "" "*"`, sorted by bytes, each followed by a newline, INBOX in any case as `INBOX`.
/// The host computes the same from its own LIST (`push::hierarchy_token`); only names count,
/// so a subscription or flag change does not move it.
pub fn hierarchy_token<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names
        .into_iter()
        .map(|name| if name.eq_ignore_ascii_case("INBOX") { "INBOX" } else { name })
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in names.iter().flat_map(|name| name.bytes().chain([b'\n'])) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}.{hash:016x}", names.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hierarchy_token_depends_on_the_set_of_names_only() {
        let token = hierarchy_token(["INBOX", "Sent", "Archive/2024"]);
        assert_eq!(token, hierarchy_token(["Archive/2024", "inbox", "Sent", "Sent"]));
        assert_ne!(token, hierarchy_token(["INBOX", "Sent", "Archive/2025"]));
        assert_ne!(token, hierarchy_token(["INBOX", "Sent"]));
        // the documented form, shared with the host (host/src/push/mod.rs has the same vector)
        assert_eq!(hierarchy_token(["INBOX", "Sent"]), "2.6ab431195cfb145d");
    }

    #[test]
    fn every_counter_is_in_the_token() {
        let status = FolderStatus {
            uid_validity: 7,
            uid_next: 101,
            highest_modseq: Some(5000),
            messages: 99,
            unseen: 3,
        };
        assert_eq!(folder_token(&status), "7.101.5000.99");
        let without_condstore = FolderStatus { highest_modseq: None, ..status };
        assert_eq!(folder_token(&without_condstore), "7.101.0.99");
    }
}
