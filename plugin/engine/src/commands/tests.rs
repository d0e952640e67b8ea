//! Provisioning and the policy gate, through the whole engine with an in-memory host.

use super::policy::{PolicyRecord, Wipe};
use crate::capabilities::StateScope;
use crate::drive::run_to_completion;
use crate::http::{IDENTITY_HEADER, Request, Response};
use crate::testing::FakeHost;
use crate::{ENDPOINT, Engine};
use eas_wbxml::tags::{folder_hierarchy as fh, provision as pv, settings};
use eas_wbxml::{Document, Element, Limits};

const DEVICE: &str = "PROVTEST1";

fn post(
    host: &FakeHost,
    command: &str,
    version: &str,
    key: Option<u32>,
    body: Option<Document>,
) -> Response {
    let mut headers = vec![
        (IDENTITY_HEADER.to_owned(), b"a@example.test".to_vec()),
        ("ms-asprotocolversion".to_owned(), version.as_bytes().to_vec()),
        ("content-type".to_owned(), b"application/vnd.ms-sync.wbxml".to_vec()),
    ];
    if let Some(key) = key {
        headers.push(("x-ms-policykey".to_owned(), key.to_string().into_bytes()));
    }
    let request = Request {
        method: "POST".into(),
        path: ENDPOINT.into(),
        query: format!("Cmd={command}&User=a&DeviceId={DEVICE}&DeviceType=iPhone"),
        headers,
        body: body.map(|doc| eas_wbxml::encode(&doc).expect("encodes")).unwrap_or_default(),
    };
    run_to_completion(Engine::new().handle(host, &request)).expect("engine completes")
}

fn decoded(response: &Response) -> Element {
    assert_eq!(response.status, 200, "{response:?}");
    eas_wbxml::decode(&response.body, &Limits::default()).expect("WBXML").root
}

fn phase_one(with_device_information: bool) -> Document {
    let mut root = Element::new(pv::PROVISION);
    if with_device_information {
        root.push(
            Element::new(settings::DEVICE_INFORMATION)
                .with_child(Element::new(settings::SET).text_child(settings::MODEL, "iPhone")),
        );
    }
    root.push(Element::new(pv::POLICIES).with_child(
        Element::new(pv::POLICY).text_child(pv::POLICY_TYPE, "MS-EAS-Provisioning-WBXML"),
    ));
    Document::new(root)
}

fn acknowledge(key: u32) -> Document {
    Document::new(
        Element::new(pv::PROVISION).with_child(
            Element::new(pv::POLICIES).with_child(
                Element::new(pv::POLICY)
                    .text_child(pv::POLICY_TYPE, "MS-EAS-Provisioning-WBXML")
                    .text_child(pv::POLICY_KEY, key.to_string())
                    .text_child(pv::STATUS, "1"),
            ),
        ),
    )
}

fn policy_of(root: &Element) -> &Element {
    root.child(pv::POLICIES).and_then(|p| p.child(pv::POLICY)).expect("Policies > Policy")
}

fn key_of(root: &Element) -> u32 {
    policy_of(root).text_of(pv::POLICY_KEY).expect("PolicyKey").parse().expect("decimal key")
}

/// Runs both phases and returns the permanent key.
fn provision(host: &FakeHost, version: &str) -> u32 {
    let first = decoded(&post(host, "Provision", version, None, Some(phase_one(true))));
    assert_eq!(first.text_of(pv::STATUS), Some("1"));
    assert_eq!(
        first.child(settings::DEVICE_INFORMATION).and_then(|d| d.text_of(settings::STATUS)),
        Some("1")
    );
    let policy = policy_of(&first);
    assert_eq!(policy.text_of(pv::STATUS), Some("1"));
    assert!(policy.child(pv::DATA).and_then(|d| d.child(pv::EAS_PROVISION_DOC)).is_some());
    let temporary = key_of(&first);

    let second =
        decoded(&post(host, "Provision", version, Some(temporary), Some(acknowledge(temporary))));
    assert_eq!(second.text_of(pv::STATUS), Some("1"));
    assert_eq!(policy_of(&second).text_of(pv::STATUS), Some("1"));
    let permanent = key_of(&second);
    assert_ne!(permanent, temporary);
    assert_ne!(permanent, 0);
    permanent
}

#[test]
fn two_phase_provisioning_opens_the_gate() {
    let host = FakeHost::default();
    let permanent = provision(&host, "16.1");
    // Past the gate: FolderSync answers.
    let folder_sync = Document::new(Element::new(fh::FOLDER_SYNC).text_child(fh::SYNC_KEY, "0"));
    let passed =
        decoded(&post(&host, "FolderSync", "16.1", Some(permanent), Some(folder_sync.clone())));
    assert_eq!(passed.text_of(fh::STATUS), Some("1"));
    let stale =
        decoded(&post(&host, "FolderSync", "16.1", Some(permanent ^ 1), Some(folder_sync.clone())));
    assert_eq!(stale.text_of(fh::STATUS), Some("144"));
    let missing = decoded(&post(&host, "FolderSync", "16.1", None, Some(folder_sync.clone())));
    assert_eq!(missing.text_of(fh::STATUS), Some("142"));
    // 12.1 gets HTTP codes instead.
    assert_eq!(
        post(&host, "FolderSync", "12.1", Some(permanent ^ 1), Some(folder_sync.clone())).status,
        449
    );
    assert_eq!(post(&host, "FolderSync", "12.1", Some(permanent), Some(folder_sync)).status, 200);
}

#[test]
fn a_wrong_acknowledgement_gets_policy_status_5_and_no_key() {
    let host = FakeHost::default();
    let first = decoded(&post(&host, "Provision", "14.1", None, Some(phase_one(true))));
    let temporary = key_of(&first);
    let second = decoded(&post(
        &host,
        "Provision",
        "14.1",
        Some(temporary),
        Some(acknowledge(temporary ^ 7)),
    ));
    assert_eq!(policy_of(&second).text_of(pv::STATUS), Some("5"));
    assert_eq!(policy_of(&second).text_of(pv::POLICY_KEY), None);
}

#[test]
fn an_unknown_policy_type_gets_policy_status_3() {
    let host = FakeHost::default();
    let body = Document::new(Element::new(pv::PROVISION).with_child(
        Element::new(pv::POLICIES).with_child(
            Element::new(pv::POLICY).text_child(pv::POLICY_TYPE, "MS-WAP-Provisioning-XML"),
        ),
    ));
    let answer = decoded(&post(&host, "Provision", "16.1", None, Some(body)));
    assert_eq!(policy_of(&answer).text_of(pv::STATUS), Some("3"));
}

#[test]
fn a_pending_wipe_blocks_commands_and_is_delivered_by_provision() {
    for (wipe, version, directive) in [
        (Wipe::Full, "16.1", pv::REMOTE_WIPE),
        (Wipe::AccountOnly, "16.1", pv::ACCOUNT_ONLY_REMOTE_WIPE),
        // Before 16.1 there is no account-only wipe: the device gets the full directive.
        (Wipe::AccountOnly, "14.1", pv::REMOTE_WIPE),
    ] {
        let host = FakeHost::default();
        let permanent = provision(&host, version);
        let record = PolicyRecord { permanent: Some(permanent), wipe, ..PolicyRecord::EMPTY };
        host.store(&StateScope::Device(DEVICE.into()), "provisioning", &record.encode());

        let folder_sync =
            Document::new(Element::new(fh::FOLDER_SYNC).text_child(fh::SYNC_KEY, "0"));
        let blocked =
            decoded(&post(&host, "FolderSync", version, Some(permanent), Some(folder_sync)));
        assert_eq!(blocked.text_of(fh::STATUS), Some("140"), "{wipe:?} {version}");

        let answer =
            decoded(&post(&host, "Provision", version, Some(permanent), Some(phase_one(false))));
        assert!(answer.child(directive).is_some(), "{wipe:?} {version}: {answer:?}");
        let ack = Document::new(
            Element::new(pv::PROVISION)
                .with_child(Element::new(directive).text_child(pv::STATUS, "1")),
        );
        let done = decoded(&post(&host, "Provision", version, Some(permanent), Some(ack)));
        assert_eq!(done.text_of(pv::STATUS), Some("1"));
    }
}

#[test]
fn a_blocked_device_gets_129_on_every_command_until_allowed() {
    let host = FakeHost::default();
    let permanent = provision(&host, "16.1");
    let scope = StateScope::Device(DEVICE.into());
    let blocked = PolicyRecord { permanent: Some(permanent), blocked: true, ..PolicyRecord::EMPTY };
    host.store(&scope, "provisioning", &blocked.encode());
    let folder_sync = || Document::new(Element::new(fh::FOLDER_SYNC).text_child(fh::SYNC_KEY, "0"));

    let refused = decoded(&post(&host, "FolderSync", "16.1", Some(permanent), Some(folder_sync())));
    assert_eq!(refused.text_of(fh::STATUS), Some("129"));
    let provision = decoded(&post(&host, "Provision", "16.1", None, Some(phase_one(false))));
    assert_eq!(provision.text_of(pv::STATUS), Some("129"));
    // 12.1 has no status in the body: the HTTP code says it (403)
    assert_eq!(post(&host, "FolderSync", "12.1", Some(permanent), Some(folder_sync())).status, 403);

    // a pending wipe still reaches a blocked device
    let wiping = PolicyRecord { wipe: Wipe::Full, ..blocked.clone() };
    host.store(&scope, "provisioning", &wiping.encode());
    let answer =
        decoded(&post(&host, "Provision", "16.1", Some(permanent), Some(phase_one(false))));
    assert!(answer.child(pv::REMOTE_WIPE).is_some(), "{answer:?}");

    let allowed = PolicyRecord { blocked: false, ..blocked };
    host.store(&scope, "provisioning", &allowed.encode());
    let answer = decoded(&post(&host, "FolderSync", "16.1", Some(permanent), Some(folder_sync())));
    assert_eq!(answer.text_of(fh::STATUS), Some("1"));
}

#[test]
fn a_state_store_down_for_a_moment_means_retry_later() {
    let host = FakeHost::default();
    let permanent = provision(&host, "16.1");
    let folder_sync = || Document::new(Element::new(fh::FOLDER_SYNC).text_child(fh::SYNC_KEY, "0"));
    host.state_down.set(true);
    // the gate cannot read the device's policy record: 111, not 110 (a broken server)
    let answer = decoded(&post(&host, "FolderSync", "16.1", Some(permanent), Some(folder_sync())));
    assert_eq!(answer.text_of(fh::STATUS), Some("111"));
    // 12.1: 503, which phones retry
    assert_eq!(post(&host, "FolderSync", "12.1", Some(permanent), Some(folder_sync())).status, 503);
    host.state_down.set(false);
    let answer = decoded(&post(&host, "FolderSync", "16.1", Some(permanent), Some(folder_sync())));
    assert_eq!(answer.text_of(fh::STATUS), Some("1"));
}

#[test]
fn provision_keeps_the_device_information_for_the_admin_tools() {
    let host = FakeHost::default();
    decoded(&post(&host, "Provision", "16.1", None, Some(phase_one(true))));
    let stored = host
        .stored(&StateScope::Device(DEVICE.into()), "device-information")
        .expect("device information stored");
    let information = crate::device_records::DeviceInformation::decode(&stored).expect("readable");
    assert_eq!(information.model.as_deref(), Some("iPhone"));
}

#[test]
fn a_wipe_acknowledgement_is_kept_for_the_administrator() {
    let host = FakeHost::default();
    let permanent = provision(&host, "16.1");
    let scope = StateScope::Device(DEVICE.into());
    let record =
        PolicyRecord { permanent: Some(permanent), wipe: Wipe::Full, ..PolicyRecord::EMPTY };
    host.store(&scope, "provisioning", &record.encode());
    let ack = Document::new(
        Element::new(pv::PROVISION)
            .with_child(Element::new(pv::REMOTE_WIPE).text_child(pv::STATUS, "1")),
    );
    decoded(&post(&host, "Provision", "16.1", Some(permanent), Some(ack)));
    let stored = PolicyRecord::decode(&host.stored(&scope, "provisioning").expect("record"))
        .expect("readable");
    assert_eq!(stored.wiped, Some(1));
    assert_eq!(stored.wipe, Wipe::Full, "the wipe stays pending until an administrator lifts it");
}

#[test]
fn provision_without_policies_is_a_protocol_error() {
    let host = FakeHost::default();
    let answer = decoded(&post(
        &host,
        "Provision",
        "16.1",
        None,
        Some(Document::new(Element::new(pv::PROVISION))),
    ));
    assert_eq!(answer.text_of(pv::STATUS), Some("2"));
}

#[test]
fn a_garbage_body_is_refused_per_version() {
    let host = FakeHost::default();
    let garbage = Request {
        method: "POST".into(),
        path: ENDPOINT.into(),
        query: format!("Cmd=Provision&User=a&DeviceId={DEVICE}&DeviceType=iPhone"),
        headers: vec![
            (IDENTITY_HEADER.to_owned(), b"a@example.test".to_vec()),
            ("ms-asprotocolversion".to_owned(), b"12.1".to_vec()),
        ],
        body: vec![0x03, 0x01, 0x6A, 0x00, 0xFF],
    };
    let response = run_to_completion(Engine::new().handle(&host, &garbage)).expect("completes");
    assert_eq!(response.status, 400);
}
