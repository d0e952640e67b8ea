//! Command tests through the whole engine: a provisioned device on an in-memory host.

use super::policy::PolicyRecord;
use crate::capabilities::StateScope;
use crate::drive::run_to_completion;
use crate::http::{IDENTITY_HEADER, Request, Response};
use crate::testing::{FakeHost, FakeMailbox};
use crate::{ENDPOINT, Engine};
use eas_wbxml::{Document, Element, Limits};

pub const DEVICE: &str = "CMDTEST1";
pub const IDENTITY: &str = "jane@example.test";
const POLICY_KEY: u32 = 3_942_919_513;

/// A host with INBOX, Drafts, Sent and Trash, and a device past the policy gate.
pub fn provisioned_host() -> FakeHost {
    let host = FakeHost::default();
    *host.mailbox.borrow_mut() = FakeMailbox::standard();
    let record = PolicyRecord { permanent: Some(POLICY_KEY), ..PolicyRecord::EMPTY };
    host.store(&StateScope::Device(DEVICE.into()), "provisioning", &record.encode());
    host
}

/// POSTs `body` (already WBXML, or anything) as `command` in `version`.
pub fn post_raw(
    host: &FakeHost,
    command: &str,
    version: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Response {
    let mut all_headers = vec![
        (IDENTITY_HEADER.to_owned(), IDENTITY.as_bytes().to_vec()),
        ("ms-asprotocolversion".to_owned(), version.as_bytes().to_vec()),
        ("content-type".to_owned(), b"application/vnd.ms-sync.wbxml".to_vec()),
        ("x-ms-policykey".to_owned(), POLICY_KEY.to_string().into_bytes()),
    ];
    for (name, value) in headers {
        all_headers.push((name.to_ascii_lowercase(), value.as_bytes().to_vec()));
    }
    let request = Request {
        method: "POST".into(),
        path: ENDPOINT.into(),
        query: format!("Cmd={command}&User=jane&DeviceId={DEVICE}&DeviceType=iPhone"),
        headers: all_headers,
        body,
    };
    run_to_completion(Engine::new().handle(host, &request)).expect("engine completes")
}

pub fn post(host: &FakeHost, command: &str, version: &str, body: &Document) -> Response {
    post_raw(host, command, version, eas_wbxml::encode(body).expect("encodes"), &[])
}

/// The root of a 200 WBXML response.
pub fn decoded(response: &Response) -> Element {
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("content-type"), Some(crate::WBXML_CONTENT_TYPE));
    eas_wbxml::decode(&response.body, &Limits::default()).expect("WBXML").root
}
