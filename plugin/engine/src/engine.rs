//! Routing an HTTP request to the right protocol surface.

use crate::capabilities::{Capabilities, Level};
use crate::http::{IDENTITY_HEADER, Request, Response};
use crate::{commands, options};

/// The single ActiveSync endpoint (MS-ASHTTP §2.2.1.1.1); clients vary its case.
pub const ENDPOINT: &str = "/Microsoft-Server-ActiveSync";

/// The engine. Cheap to construct; holds only configuration.
#[derive(Debug, Default)]
pub struct Engine {}

impl Engine {
    pub fn new() -> Self {
        Engine {}
    }

    /// Answers one request.
    pub async fn handle(&self, caps: &impl Capabilities, request: &Request) -> Response {
        if let Some(surface) = crate::autodiscover::Surface::of(&request.path) {
            return crate::autodiscover::answer(surface, request, identity(request));
        }
        if !request.path.eq_ignore_ascii_case(ENDPOINT) {
            return Response::new(404);
        }
        let Some(identity) = identity(request) else {
            caps.log(Level::Debug, "no authenticated identity: asking for credentials");
            return unauthorized();
        };
        match request.method.as_str() {
            "OPTIONS" => options::answer(),
            "POST" => match crate::ashttp::parse_request(request) {
                Ok(eas_request) => {
                    commands::dispatch(caps, identity, &eas_request, &request.body).await
                }
                Err(error) => {
                    caps.log(Level::Info, &format!("{identity}: request refused: {error}"));
                    error.response()
                }
            },
            _ => Response::new(405).with_header("Allow", options::ALLOWED_METHODS),
        }
    }
}

/// The login the front end authenticated, if any.
fn identity(request: &Request) -> Option<&str> {
    request.header_str(IDENTITY_HEADER).filter(|id| !id.is_empty())
}

/// 401 with a Basic challenge: phones then prompt for the password (MS-ASHTTP §3.1.5.2.1).
pub(crate) fn unauthorized() -> Response {
    Response::new(401).with_header("WWW-Authenticate", "Basic realm=\"ActiveSync\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive::run_to_completion;
    use crate::testing::FakeHost;

    fn request(method: &str, path: &str, identity: Option<&str>) -> Request {
        let mut headers = vec![];
        if let Some(id) = identity {
            headers.push((IDENTITY_HEADER.to_owned(), id.as_bytes().to_vec()));
        }
        Request { method: method.into(), path: path.into(), headers, ..Request::default() }
    }

    fn handle(request: &Request) -> Response {
        run_to_completion(Engine::new().handle(&FakeHost::default(), request))
            .expect("engine completes")
    }

    #[test]
    fn options_without_identity_is_challenged() {
        let response = handle(&request("OPTIONS", ENDPOINT, None));
        assert_eq!(response.status, 401);
        assert_eq!(response.header("www-authenticate"), Some("Basic realm=\"ActiveSync\""));
    }

    #[test]
    fn empty_identity_counts_as_none() {
        assert_eq!(handle(&request("OPTIONS", ENDPOINT, Some(""))).status, 401);
    }

    #[test]
    fn options_with_identity_lists_versions() {
        let response = handle(&request("OPTIONS", "/microsoft-server-activesync", Some("a@b")));
        assert_eq!(response.status, 200);
        assert_eq!(response.header("MS-ASProtocolVersions"), Some("12.1,14.0,14.1,16.0,16.1"));
        assert_eq!(response.header("Allow"), Some("OPTIONS,POST"));
    }

    #[test]
    fn unprovisioned_devices_are_sent_to_provision_per_version() {
        let mut old = request("POST", ENDPOINT, Some("a@b"));
        old.query = "Cmd=FolderSync&User=a&DeviceId=DEV1&DeviceType=iPhone".into();
        old.headers.push(("ms-asprotocolversion".into(), b"12.1".to_vec()));
        assert_eq!(handle(&old).status, 449);

        let mut new = old.clone();
        new.headers.retain(|(name, _)| name != "ms-asprotocolversion");
        new.headers.push(("ms-asprotocolversion".into(), b"16.1".to_vec()));
        let response = handle(&new);
        assert_eq!(response.status, 200);
        let document =
            eas_wbxml::decode(&response.body, &eas_wbxml::Limits::default()).expect("WBXML body");
        assert_eq!(document.root.text_of(eas_wbxml::tags::folder_hierarchy::STATUS), Some("142"));
    }

    #[test]
    fn malformed_queries_are_refused_with_400() {
        let mut bad = request("POST", ENDPOINT, Some("a@b"));
        bad.query = "Cmd=FolderSync".into();
        bad.headers.push(("ms-asprotocolversion".into(), b"16.1".to_vec()));
        assert_eq!(handle(&bad).status, 400);
    }

    #[test]
    fn other_paths_are_not_found() {
        assert_eq!(handle(&request("OPTIONS", "/other", Some("a@b"))).status, 404);
    }

    #[test]
    fn autodiscover_pox_needs_a_login_and_json_does_not() {
        let mut pox = request("POST", "/AutoDiscover/AutoDiscover.xml", None);
        pox.headers.push(("host".into(), b"mail.example.com".to_vec()));
        pox.body =
            b"<Autodiscover><Request><EMailAddress>a@b</EMailAddress></Request></Autodiscover>"
                .to_vec();
        assert_eq!(handle(&pox).status, 401);
        pox.headers.push((IDENTITY_HEADER.to_owned(), b"a@b".to_vec()));
        let answer = handle(&pox);
        assert_eq!(answer.status, 200);
        assert!(
            String::from_utf8_lossy(&answer.body)
                .contains("<Url>https://mail.example.com/Microsoft-Server-ActiveSync</Url>")
        );

        let mut json = request("GET", "/autodiscover/autodiscover.json/v1.0/a@b", None);
        json.query = "Protocol=ActiveSync".into();
        json.headers.push(("host".into(), b"mail.example.com".to_vec()));
        assert_eq!(handle(&json).status, 200);
    }
}
