//! Out-of-office end to end: a phone sets its automatic reply with Settings > Oof, the gateway
//! stores it as a Sieve vacation script through the real Dovecot Pigeonhole ManageSieve, and
//! the reply really goes out when someone writes (LMTP delivery runs the script). Reading it
//! back and turning it off go the same way.

use anyhow::{Context, Result, bail};
use eas_edge_tests::eas::{Device, Version};
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::imap::ImapClient;
use eas_edge_tests::mailstack::MailStack;
use eas_wbxml::tags::settings as st;
use eas_wbxml::{Document, Element};
use std::time::{Duration, Instant};

const PASSWORD: &str = "oof pw";
const REPLY: &str = "I am hiking until Monday, answers after that.";

fn oof(device: &mut Device, request: Element) -> Result<Element> {
    let document = Document::new(Element::new(st::SETTINGS).with_child(request));
    let root = device.exchange("Settings", &document)?.root.context("Settings: empty answer")?;
    let oof = root.child(st::OOF).context("Settings: no Oof in the answer")?.clone();
    if oof.text_of(st::STATUS) != Some("1") {
        bail!("Oof Status {:?} (expected 1): {oof:?}", oof.text_of(st::STATUS));
    }
    Ok(oof)
}

fn get(device: &mut Device) -> Result<Element> {
    let request =
        Element::new(st::OOF).with_child(Element::new(st::GET).text_child(st::BODY_TYPE, "Text"));
    oof(device, request)?.child(st::GET).cloned().context("Oof: no Get in the answer")
}

fn set(device: &mut Device, state: &str, reply: &str) -> Result<()> {
    let message = Element::new(st::OOF_MESSAGE)
        .empty_child(st::APPLIES_TO_INTERNAL)
        .text_child(st::ENABLED, "1")
        .text_child(st::REPLY_MESSAGE, reply)
        .text_child(st::BODY_TYPE, "Text");
    let request = Element::new(st::OOF)
        .with_child(Element::new(st::SET).text_child(st::OOF_STATE, state).with_child(message));
    oof(device, request).map(drop)
}

/// The INBOX messages of `user` whose text contains `needle`, waiting up to 30 s for one.
fn wait_for_mail_containing(stack: &MailStack, user: &str, needle: &str) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut imap = ImapClient::connect(stack.imap_addr()?)?;
        imap.login(user, PASSWORD)?;
        imap.examine("INBOX")?;
        for uid in imap.uid_search("ALL")? {
            let fetched = imap.uid_fetch(&uid.to_string(), "BODY.PEEK[]")?;
            let text = fetched
                .iter()
                .filter_map(|message| message.item("BODY[]")?.as_text())
                .collect::<String>();
            if text.contains(needle) {
                return Ok(text);
            }
        }
        if Instant::now() > deadline {
            bail!("no message containing {needle:?} reached {user} within 30 s");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn an_automatic_reply_set_on_the_phone_answers_real_mail() -> Result<()> {
    let stack = MailStack::start()?;
    let pat = format!("pat@{TEST_DOMAIN}");
    let friend = format!("friend@{TEST_DOMAIN}");
    stack.add_user(&pat, PASSWORD)?;
    stack.add_user(&friend, PASSWORD)?;
    let sieve = stack.sieve_addr()?;
    let gateway = Gateway::start_with(
        &stack,
        GatewayOptions {
            tenant_extra: format!(
                "[tenant.sieve]\nhost = \"{}\"\nport = {}\n",
                sieve.ip(),
                sieve.port()
            ),
            ..GatewayOptions::default()
        },
    )?;
    let mut phone = Device::new(&gateway.url(), &pat, PASSWORD, "OOFPHONE1", Version::V16_1);
    phone.bootstrap()?;

    let fresh = get(&mut phone).with_context(|| gateway.log())?;
    assert_eq!(fresh.text_of(st::OOF_STATE), Some("0"), "{fresh:?}");

    set(&mut phone, "1", REPLY).with_context(|| gateway.log())?;
    let on = get(&mut phone)?;
    assert_eq!(on.text_of(st::OOF_STATE), Some("1"), "{on:?}");
    let replies: Vec<&str> =
        on.children(st::OOF_MESSAGE).filter_map(|m| m.text_of(st::REPLY_MESSAGE)).collect();
    assert!(replies.iter().any(|text| text.trim() == REPLY), "{on:?}");

    // someone writes: Pigeonhole answers with the reply the phone set
    let message = format!(
        "From: {friend}\r\nTo: {pat}\r\nSubject: lunch?\r\nMessage-ID: <oof-1@{TEST_DOMAIN}>\r\n\
         Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\nLunch on Friday?\r\n"
    );
    eas_edge_tests::smtp::send(stack.smtp_addr()?, None, &friend, &[&pat], message.as_bytes())?;
    let reply = wait_for_mail_containing(&stack, &friend, "hiking until Monday")
        .with_context(|| gateway.log())?;
    assert!(reply.contains("lunch?"), "the reply refers to the subject: {reply}");

    // off again: the state says so and the text is kept for next time
    set(&mut phone, "0", REPLY)?;
    let off = get(&mut phone)?;
    assert_eq!(off.text_of(st::OOF_STATE), Some("0"), "{off:?}");
    Ok(())
}
