//! GetItemEstimate (MS-ASCMD §2.2.1.9, EAS-NOTES §4.5): per collection, how many commands the
//! next Sync would send. Both request forms are read: 14.0+ (`airsync:SyncKey`, FilterType in
//! `airsync:Options`) and 12.1 (`Class`, `airsync:FilterType` directly in the Collection).

use super::{answer_common_status, wbxml_response};
use crate::ashttp::{CommonStatus, EasRequest, ProtocolVersion};
use crate::capabilities::{Capabilities, Level};
use crate::http::Response;
use crate::sync::{self, Estimate};
use eas_wbxml::tags::{air_sync, get_item_estimate as gie};
use eas_wbxml::{Document, Element};

/// Collections in one request (MS-ASCMD §2.2.3.29.1 allows 300).
const MAX_COLLECTIONS: usize = 300;
/// Longest CollectionId or SyncKey read.
const MAX_ID_LEN: usize = 64;

struct Asked {
    collection_id: String,
    sync_key: Option<String>,
    filter_type: Option<u8>,
}

pub async fn run(caps: &impl Capabilities, request: &EasRequest, body: &Element) -> Response {
    let device = request.device_id.as_str();
    let Some(asked) = parse(body) else {
        caps.log(Level::Info, &format!("device {device}: malformed GetItemEstimate"));
        return answer_common_status(request, CommonStatus::InvalidXml);
    };
    let mut root = Element::new(gie::GET_ITEM_ESTIMATE);
    for collection in &asked {
        let estimate = match &collection.sync_key {
            None => Estimate::InvalidKey,
            Some(key) => {
                match sync::estimate(
                    caps,
                    device,
                    &collection.collection_id,
                    key,
                    collection.filter_type,
                )
                .await
                {
                    Ok(estimate) => estimate,
                    Err(error) => {
                        caps.log(
                            Level::Error,
                            &format!("device {device}: GetItemEstimate: {error}"),
                        );
                        return answer_common_status(request, CommonStatus::ServerErrorRetryLater);
                    }
                }
            }
        };
        let mut answer = Element::new(gie::COLLECTION);
        if request.version < ProtocolVersion::V14_0 {
            answer.push(Element::with_text(gie::CLASS, "Email"));
        }
        answer.push(Element::with_text(gie::COLLECTION_ID, collection.collection_id.as_str()));
        if let Estimate::Count(count) = estimate {
            answer.push(Element::with_text(gie::ESTIMATE, count.to_string()));
        }
        root.push(
            Element::new(gie::RESPONSE)
                .text_child(gie::STATUS, estimate.status().to_string())
                .with_child(answer),
        );
    }
    wbxml_response(&Document::new(root), request)
}

fn parse(body: &Element) -> Option<Vec<Asked>> {
    if body.tag != gie::GET_ITEM_ESTIMATE {
        return None;
    }
    let collections: Vec<&Element> =
        body.child(gie::COLLECTIONS)?.children(gie::COLLECTION).collect();
    if collections.is_empty() || collections.len() > MAX_COLLECTIONS {
        return None;
    }
    let short = |text: &str| {
        let text = text.trim();
        (!text.is_empty() && text.len() <= MAX_ID_LEN).then(|| text.to_owned())
    };
    collections
        .into_iter()
        .map(|collection| {
            let collection_id = collection.text_of(gie::COLLECTION_ID).and_then(short)?;
            let sync_key = collection.text_of(air_sync::SYNC_KEY).and_then(short);
            let from_options = collection
                .children(air_sync::OPTIONS)
                .find(|options| {
                    options.text_of(air_sync::CLASS).is_none_or(|class| class.trim() == "Email")
                })
                .and_then(|options| options.text_of(air_sync::FILTER_TYPE));
            let filter_type = collection
                .text_of(air_sync::FILTER_TYPE)
                .or(from_options)
                .and_then(|text| text.trim().parse::<u8>().ok())
                .filter(|&value| value <= 8);
            Some(Asked { collection_id, sync_key, filter_type })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{decoded, post, provisioned_host};
    use super::*;
    use crate::testing::FakeHost;

    fn sync_key_zero(host: &FakeHost) -> String {
        let request = Element::new(air_sync::SYNC).with_child(
            Element::new(air_sync::COLLECTIONS).with_child(
                Element::new(air_sync::COLLECTION)
                    .text_child(air_sync::SYNC_KEY, "0")
                    .text_child(air_sync::COLLECTION_ID, "1"),
            ),
        );
        let answer = decoded(&post(host, "Sync", "16.1", &Document::new(request)));
        answer
            .child(air_sync::COLLECTIONS)
            .and_then(|c| c.child(air_sync::COLLECTION))
            .and_then(|c| c.text_of(air_sync::SYNC_KEY))
            .expect("a key")
            .to_owned()
    }

    fn collection_14(key: &str, id: &str) -> Element {
        Element::new(gie::COLLECTION)
            .text_child(air_sync::SYNC_KEY, key)
            .text_child(gie::COLLECTION_ID, id)
            .with_child(Element::new(air_sync::OPTIONS).text_child(air_sync::FILTER_TYPE, "0"))
    }

    fn collection_12(key: &str, id: &str) -> Element {
        Element::new(gie::COLLECTION)
            .text_child(gie::CLASS, "Email")
            .text_child(gie::COLLECTION_ID, id)
            .text_child(air_sync::FILTER_TYPE, "0")
            .text_child(air_sync::SYNC_KEY, key)
    }

    fn estimate(
        host: &FakeHost,
        version: &str,
        collections: Vec<Element>,
    ) -> Vec<(String, Option<String>)> {
        let request = Element::new(gie::GET_ITEM_ESTIMATE)
            .with_child(Element::with_children(gie::COLLECTIONS, collections));
        let answer = decoded(&post(host, "GetItemEstimate", version, &Document::new(request)));
        answer
            .children(gie::RESPONSE)
            .map(|response| {
                let collection = response.child(gie::COLLECTION).expect("Collection");
                (
                    response.text_of(gie::STATUS).expect("Status").to_owned(),
                    collection.text_of(gie::ESTIMATE).map(str::to_owned),
                )
            })
            .collect()
    }

    #[test]
    fn estimates_in_both_request_forms() {
        let host = provisioned_host();
        for i in 0..7 {
            host.mailbox.borrow_mut().append(
                "INBOX",
                format!("Subject: {i}\r\n\r\nx").as_bytes(),
                &[],
                0,
            );
        }
        assert_eq!(estimate(&host, "16.1", vec![collection_14("0", "1")]), [("3".into(), None)]);
        let key = sync_key_zero(&host);
        assert_eq!(
            estimate(
                &host,
                "16.1",
                vec![
                    collection_14(&key, "1"),
                    collection_14(&key, "77"),
                    collection_14("9-9", "1")
                ]
            ),
            [("1".into(), Some("7".into())), ("2".into(), None), ("4".into(), None)]
        );
        assert_eq!(
            estimate(&host, "12.1", vec![collection_12(&key, "1")]),
            [("1".into(), Some("7".into()))]
        );
    }

    #[test]
    fn malformed_requests_are_refused() {
        let host = provisioned_host();
        let empty = Element::new(gie::GET_ITEM_ESTIMATE);
        let answer = decoded(&post(&host, "GetItemEstimate", "16.1", &Document::new(empty)));
        assert_eq!(answer.text_of(gie::STATUS), Some("103"));
    }
}
