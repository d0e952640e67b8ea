//! Sync with Wait / HeartbeatInterval (MS-ASCMD §2.2.3.198, §2.2.3.88.2): when nothing is to
//! be sent, the request waits like a Ping. The engine never waits itself: it names the folders
//! to watch and the state its empty answer was based on, and the host parks the request
//! (docs/architecture.md, "Push").

use super::collection::{self, Folder};
use super::request::SyncRequest;
use super::state::Fingerprint;
use super::{Context, Fatal, watch_state};
use crate::capabilities::Capabilities;
use crate::mailbox::FolderStatus;
use crate::push::folder_token;

/// (IMAP name, token) of every collection of `request` that has been listed: the token is
/// built from the counters stored by the Sync that just found nothing, so a change that
/// arrived since (even while this runs) differs from it and wakes the request at once.
/// Collections never listed are skipped: they had something to say and would not be here.
pub async fn watched_folders<C: Capabilities>(
    context: &Context<'_, C>,
    request: &SyncRequest,
) -> Result<Vec<(String, String)>, Fatal> {
    let mut watched = Vec::with_capacity(request.collections.len());
    for collection in &request.collections {
        let id = collection.collection_id.as_str();
        let Folder::Found(folder) = collection::resolve(context.caps, id).await? else {
            continue;
        };
        let watch = watch_state(context.caps, context.device, id)
            .await
            .map_err(|error| Fatal(format!("collection {id}: {error}")))?;
        if let Some(fingerprint) = watch.and_then(|watch| watch.fingerprint) {
            watched.push((folder.imap_name, token(&fingerprint)));
        }
    }
    Ok(watched)
}

/// The host's STATUS-based token for the counters a fingerprint holds (UNSEEN is not in it).
fn token(fingerprint: &Fingerprint) -> String {
    folder_token(&FolderStatus {
        uid_validity: fingerprint.uid_validity,
        uid_next: fingerprint.uid_next,
        highest_modseq: (fingerprint.highest_modseq != 0).then_some(fingerprint.highest_modseq),
        messages: fingerprint.messages,
        unseen: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_token_equals_the_status_token() {
        let status = FolderStatus {
            uid_validity: 9,
            uid_next: 12,
            highest_modseq: Some(77),
            messages: 10,
            unseen: 4,
        };
        let fingerprint =
            Fingerprint { uid_validity: 9, uid_next: 12, highest_modseq: 77, messages: 10 };
        assert_eq!(token(&fingerprint), folder_token(&status));
        let plain = Fingerprint { highest_modseq: 0, ..fingerprint };
        assert_eq!(token(&plain), folder_token(&FolderStatus { highest_modseq: None, ..status }));
    }
}
