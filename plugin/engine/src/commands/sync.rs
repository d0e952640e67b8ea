//! Sync (MS-ASCMD §2.2.1.21): the protocol lives in `crate::sync`; this puts its answer on
//! the wire.

use super::{answer_common_status, wbxml_response};
use crate::ashttp::{CommonStatus, EasRequest};
use crate::capabilities::Capabilities;
use crate::http::Response;
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
}
