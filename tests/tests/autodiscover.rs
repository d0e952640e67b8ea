//! Autodiscover end to end through the host: a phone that knows only an address and a password
//! learns the ActiveSync URL (POX, after a 401 challenge, with its password checked by IMAP);
//! Outlook mobile's anonymous JSON v2 request gets the same URL.

use eas_edge_tests::gateway::{Gateway, TEST_DOMAIN};
use eas_edge_tests::http::{Client, Reply};
use eas_edge_tests::mailstack::MailStack;

const PASSWORD: &str = "autodiscover pw";
const MOBILESYNC: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006";

fn pox_request(address: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006">
  <Request>
    <EMailAddress>{address}</EMailAddress>
    <AcceptableResponseSchema>{MOBILESYNC}</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#
    )
    .into_bytes()
}

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

#[test]
fn a_phone_finds_the_activesync_url_from_its_address() {
    let stack = MailStack::start().expect("mail stack");
    let user = format!("carol@{TEST_DOMAIN}");
    stack.add_user(&user, PASSWORD).expect("user");
    let gateway = Gateway::start(&stack).expect("gateway");
    let base = gateway.url().replace("/Microsoft-Server-ActiveSync", "");
    let client = Client::default();
    let xml = [("Content-Type", "text/xml")];
    // iOS sends this path in this case
    let pox = format!("{base}/Autodiscover/Autodiscover.xml");

    let anonymous = client.send("POST", &pox, None, &xml, &pox_request(&user)).expect("POST");
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert!(anonymous.header("www-authenticate").is_some_and(|v| v.starts_with("Basic")));

    let wrong =
        client.send("POST", &pox, Some((&user, "wrong")), &xml, &pox_request(&user)).expect("POST");
    assert_eq!(wrong.status, 401, "{wrong:?}");

    let answer = client
        .send("POST", &pox, Some((&user, PASSWORD)), &xml, &pox_request(&user))
        .expect("POST");
    assert_eq!(answer.status, 200, "{answer:?}\n{}", gateway.log());
    assert!(answer.header("content-type").is_some_and(|v| v.starts_with("text/xml")));
    let body = text(&answer);
    // the host's listener is plain HTTP and trusts no proxy: the URL says http
    assert!(body.contains(&format!("<Url>{}</Url>", gateway.url())), "{body}");
    assert!(body.contains(&format!("<EMailAddress>{user}</EMailAddress>")), "{body}");

    // the URL it gave works
    let options = client.options(&gateway.url(), Some((&user, PASSWORD))).expect("OPTIONS");
    assert_eq!(options.status, 200);

    let broken = client
        .send("POST", &pox, Some((&user, PASSWORD)), &xml, b"<Autodiscover><Request>")
        .expect("POST");
    assert_eq!(broken.status, 200);
    assert!(text(&broken).contains("<ErrorCode>600</ErrorCode>"), "{}", text(&broken));

    // Outlook mobile: anonymous JSON
    let json = format!("{base}/autodiscover/autodiscover.json/v1.0/{user}?Protocol=ActiveSync");
    let answer = client.send("GET", &json, None, &[], &[]).expect("GET");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(text(&answer), format!(r#"{{"Protocol":"ActiveSync","Url":"{}"}}"#, gateway.url()));
    let other = client
        .send("GET", &format!("{base}/autodiscover/autodiscover.json?Protocol=Ews"), None, &[], &[])
        .expect("GET");
    assert_eq!(other.status, 400);

    // a proxy-supplied scheme is not believed from an untrusted client
    let spoofed = client
        .send(
            "POST",
            &pox,
            Some((&user, PASSWORD)),
            &[("Content-Type", "text/xml"), ("X-Forwarded-Proto", "https")],
            &pox_request(&user),
        )
        .expect("POST");
    assert!(text(&spoofed).contains(&format!("<Url>{}</Url>", gateway.url())));
}
