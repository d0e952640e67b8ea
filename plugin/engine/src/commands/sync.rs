//! Sync (MS-ASCMD §2.2.1.21): the protocol lives in `crate::sync`; this puts its answer on
//! the wire.

use super::{answer_common_status, wbxml_response};
use crate::ashttp::{CommonStatus, EasRequest};
use crate::capabilities::Capabilities;
use crate::http::Response;
use crate::push::Hold;
use crate::sync::{self, SyncAnswer};

pub async fn run(
    caps: &impl Capabilities,
    identity: &str,
    request: &EasRequest,
    body: &[u8],
) -> Response {
    match sync::run(caps, identity, request, body).await {
        SyncAnswer::Document(document) => wbxml_response(&document, request),
        // Nothing changed anywhere: 200 with no body (MS-ASCMD §2.2.1.21.2).
        SyncAnswer::Empty { .. } => Response::new(200),
        // Nothing yet, and the client waits: the host parks it; on timeout (or when a newer
        // request of the device ends it) the same empty answer as above, as Exchange sends.
        SyncAnswer::Wait { folders, seconds } => {
            Hold { folders, timeout_seconds: seconds, on_timeout: Response::new(200) }
                .into_response()
        }
        SyncAnswer::NotWbxml => answer_common_status(request, CommonStatus::InvalidWbxml),
        SyncAnswer::Unavailable => {
            answer_common_status(request, CommonStatus::ServerErrorRetryLater)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{decoded, post, post_raw, provisioned_host};
    use eas_wbxml::tags::air_sync;
    use eas_wbxml::{Document, Element};

    fn sync(key: &str) -> Document {
        Document::new(
            Element::new(air_sync::SYNC).with_child(
                Element::new(air_sync::COLLECTIONS).with_child(
                    Element::new(air_sync::COLLECTION)
                        .text_child(air_sync::SYNC_KEY, key)
                        .text_child(air_sync::COLLECTION_ID, "1"),
                ),
            ),
        )
    }

    #[test]
    fn sync_through_the_engine() {
        let host = provisioned_host();
        let first = decoded(&post(&host, "Sync", "14.1", &sync("0")));
        let collection = first
            .child(air_sync::COLLECTIONS)
            .and_then(|c| c.child(air_sync::COLLECTION))
            .expect("collection");
        assert_eq!(collection.text_of(air_sync::STATUS), Some("1"));
        let key = collection.text_of(air_sync::SYNC_KEY).expect("key").to_owned();
        // An empty INBOX: nothing to send, an empty 200 answer.
        let empty = post(&host, "Sync", "14.1", &sync(&key));
        assert_eq!((empty.status, empty.body.len()), (200, 0));
        assert_eq!(empty.header("content-type"), None);
    }

    #[test]
    fn failures_in_the_wire_form_of_each_version() {
        let host = provisioned_host();
        assert_eq!(post_raw(&host, "Sync", "12.1", b"junk".to_vec(), &[]).status, 400);
        let in_body = decoded(&post_raw(&host, "Sync", "16.1", b"junk".to_vec(), &[]));
        assert_eq!(in_body.text_of(air_sync::STATUS), Some("102"));
        host.mailbox.borrow_mut().unavailable = true;
        assert_eq!(post(&host, "Sync", "12.1", &sync("0")).status, 503);
        let retry_later = decoded(&post(&host, "Sync", "16.1", &sync("0")));
        assert_eq!(retry_later.text_of(air_sync::STATUS), Some("111"));
    }

    #[test]
    fn an_empty_sync_with_a_heartbeat_is_a_hold_with_an_empty_timeout_answer() {
        let host = provisioned_host();
        let first = decoded(&post(&host, "Sync", "14.1", &sync("0")));
        let key = first
            .child(air_sync::COLLECTIONS)
            .and_then(|c| c.child(air_sync::COLLECTION))
            .and_then(|c| c.text_of(air_sync::SYNC_KEY))
            .expect("key")
            .to_owned();
        // the listing of the empty INBOX: nothing to say, and no wait asked for
        let listed = post(&host, "Sync", "14.1", &sync(&key));
        assert_eq!((listed.status, listed.body.len(), listed.header("Grip-Hold")), (200, 0, None));
        let mut waiting = sync(&key);
        waiting.root.push(Element::with_text(air_sync::HEARTBEAT_INTERVAL, "90"));
        let held = post(&host, "Sync", "14.1", &waiting);
        assert_eq!(held.header("Grip-Hold"), Some("response"));
        assert_eq!(held.header("Grip-Timeout"), Some("90"));
        let status = host.mailbox.borrow().status("INBOX").expect("status");
        let channel = format!("INBOX; prev-id={}", crate::push::folder_token(&status));
        assert_eq!(held.header("Grip-Channel"), Some(channel.as_str()));
        // the timeout answer is the empty Sync answer
        assert_eq!((held.status, held.body.len()), (200, 0));
    }
}
