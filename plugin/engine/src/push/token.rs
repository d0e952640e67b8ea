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

#[cfg(test)]
mod tests {
    use super::*;

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
