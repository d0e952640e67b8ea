//! Provision end to end: a device does the two-phase policy dance through the host, its key
//! lives in the host's state store, survives a restart, and opens the policy gate.

use eas_edge_tests::gateway::{Gateway, TEST_DOMAIN};
use eas_edge_tests::http::{Client, Reply};
use eas_edge_tests::mailstack::MailStack;
use eas_wbxml::tags::{folder_hierarchy as fh, provision as pv, settings};
use eas_wbxml::{Document, Element, Limits};

const PASSWORD: &str = "provision pw";
const DEVICE: &str = "E2EPROVISION1";

struct Phone<'g> {
    client: Client,
    gateway: &'g Gateway,
    user: String,
    version: &'static str,
}

impl Phone<'_> {
    fn post(&self, command: &str, key: Option<u32>, body: &Document) -> Reply {
        let url = format!(
            "{}?Cmd={command}&User=alice&DeviceId={DEVICE}&DeviceType=iPhone",
            self.gateway.url()
        );
        let key = key.map(|k| k.to_string());
        let mut headers = vec![
            ("Content-Type", "application/vnd.ms-sync.wbxml"),
            ("MS-ASProtocolVersion", self.version),
        ];
        if let Some(key) = &key {
            headers.push(("X-MS-PolicyKey", key));
        }
        let body = eas_wbxml::encode(body).expect("encodes");
        self.client.send("POST", &url, Some((&self.user, PASSWORD)), &headers, &body).expect("POST")
    }
}

fn root(reply: &Reply) -> Element {
    assert_eq!(reply.status, 200, "{reply:?}");
    eas_wbxml::decode(&reply.body, &Limits::default()).expect("WBXML answer").root
}

fn policy_key(answer: &Element) -> u32 {
    answer
        .child(pv::POLICIES)
        .and_then(|p| p.child(pv::POLICY))
        .and_then(|p| p.text_of(pv::POLICY_KEY))
        .expect("a policy key")
        .parse()
        .expect("decimal")
}

fn phase_one() -> Document {
    Document::new(
        Element::new(pv::PROVISION)
            .with_child(
                Element::new(settings::DEVICE_INFORMATION).with_child(
                    Element::new(settings::SET).text_child(settings::MODEL, "iPhone16,2"),
                ),
            )
            .with_child(Element::new(pv::POLICIES).with_child(
                Element::new(pv::POLICY).text_child(pv::POLICY_TYPE, "MS-EAS-Provisioning-WBXML"),
            )),
    )
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

fn folder_sync() -> Document {
    Document::new(Element::new(fh::FOLDER_SYNC).text_child(fh::SYNC_KEY, "0"))
}

#[test]
fn two_phase_provisioning_through_the_host_survives_a_restart() {
    let stack = MailStack::start().expect("mail stack");
    let user = format!("alice@{TEST_DOMAIN}");
    stack.add_user(&user, PASSWORD).expect("user");
    let mut gateway = Gateway::start(&stack).expect("gateway");
    let phone =
        Phone { client: Client::default(), gateway: &gateway, user: user.clone(), version: "16.1" };

    // Not provisioned yet: every command but Provision is sent there.
    assert_eq!(
        root(&phone.post("FolderSync", None, &folder_sync())).text_of(fh::STATUS),
        Some("142")
    );

    let first = root(&phone.post("Provision", None, &phase_one()));
    assert_eq!(first.text_of(pv::STATUS), Some("1"));
    let temporary = policy_key(&first);
    let second = root(&phone.post("Provision", Some(temporary), &acknowledge(temporary)));
    let permanent = policy_key(&second);
    assert_ne!(permanent, temporary);

    // Past the gate: FolderSync answers (Status 1), not 142/144.
    assert_eq!(
        root(&phone.post("FolderSync", Some(permanent), &folder_sync())).text_of(fh::STATUS),
        Some("1")
    );
    assert_eq!(
        root(&phone.post("FolderSync", Some(temporary), &folder_sync())).text_of(fh::STATUS),
        Some("144")
    );
    drop(phone);

    // The key is in the state store, not in memory.
    gateway.restart().expect("restart");
    let phone =
        Phone { client: Client::default(), gateway: &gateway, user: user.clone(), version: "16.1" };
    assert_eq!(
        root(&phone.post("FolderSync", Some(permanent), &folder_sync())).text_of(fh::STATUS),
        Some("1"),
        "{}",
        gateway.log()
    );
    // 12.1 speaks HTTP codes: 449 for a stale key.
    let old = Phone { version: "12.1", ..phone };
    assert_eq!(old.post("FolderSync", Some(temporary), &folder_sync()).status, 449);
}

#[test]
fn another_users_device_key_does_not_open_the_gate() {
    let stack = MailStack::start().expect("mail stack");
    let alice = format!("alice@{TEST_DOMAIN}");
    let bob = format!("bob@{TEST_DOMAIN}");
    stack.add_user(&alice, PASSWORD).expect("alice");
    stack.add_user(&bob, PASSWORD).expect("bob");
    let gateway = Gateway::start(&stack).expect("gateway");
    let alice_phone =
        Phone { client: Client::default(), gateway: &gateway, user: alice, version: "16.1" };
    let first = root(&alice_phone.post("Provision", None, &phase_one()));
    let temporary = policy_key(&first);
    let permanent =
        policy_key(&root(&alice_phone.post("Provision", Some(temporary), &acknowledge(temporary))));

    // Same DeviceId, other account: state is per user, so bob's device is not provisioned.
    let bob_phone =
        Phone { client: Client::default(), gateway: &gateway, user: bob, version: "16.1" };
    assert_eq!(
        root(&bob_phone.post("FolderSync", Some(permanent), &folder_sync())).text_of(fh::STATUS),
        Some("142")
    );
}
