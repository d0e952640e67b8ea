//! Plain HTTP requests to a front end (the host or Envoy), as a phone would send them.

use base64::Engine as _;
use std::time::Duration;

/// What a test looks at in an answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A request builder over one agent (connection reuse like a phone's).
pub struct Client {
    agent: ureq::Agent,
}

impl Default for Client {
    fn default() -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        Client { agent: config.into() }
    }
}

impl Client {
    /// Sends `method` to `url` with Basic credentials (if any) and extra headers.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        credentials: Option<(&str, &str)>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Reply> {
        let mut request = http_request(method, url)?;
        if let Some((user, password)) = credentials {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request = request.header("Authorization", format!("Basic {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.to_vec())?;
        let mut response = self.agent.run(request)?;
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            })
            .collect();
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_vec()?;
        Ok(Reply { status, headers, body })
    }

    /// `OPTIONS` on the ActiveSync endpoint.
    pub fn options(&self, url: &str, credentials: Option<(&str, &str)>) -> anyhow::Result<Reply> {
        self.send("OPTIONS", url, credentials, &[], &[])
    }
}

fn http_request(method: &str, url: &str) -> anyhow::Result<ureq::http::request::Builder> {
    Ok(ureq::http::Request::builder().method(method).uri(url))
}
