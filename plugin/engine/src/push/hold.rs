//! A hold as an HTTP response with GRIP headers.

use crate::http::Response;

/// Park the request: watch these folders (IMAP name, token seen) for `timeout_seconds`, then
/// send `on_timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub folders: Vec<(String, String)>,
    pub timeout_seconds: u32,
    pub on_timeout: Response,
}

impl Hold {
    /// The response the host interprets: the timeout answer plus `Grip-Hold`, one
    /// `Grip-Channel` per folder and `Grip-Timeout`.
    pub fn into_response(self) -> Response {
        let mut response = self.on_timeout;
        response.headers.push(("Grip-Hold".to_owned(), "response".to_owned()));
        for (folder, token) in &self.folders {
            response
                .headers
                .push(("Grip-Channel".to_owned(), format!("{}; prev-id={token}", channel(folder))));
        }
        response.headers.push(("Grip-Timeout".to_owned(), self.timeout_seconds.to_string()));
        response
    }
}

/// A folder name as a GRIP channel: `;`, `,`, `%`, space and anything outside printable ASCII
/// are percent-encoded (IMAP names are modified UTF-7, so this is rare).
fn channel(folder: &str) -> String {
    let mut encoded = String::with_capacity(folder.len());
    for byte in folder.bytes() {
        if byte.is_ascii_graphic() && !matches!(byte, b';' | b',' | b'%') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_carries_channels_tokens_and_the_timeout_answer() {
        let hold = Hold {
            folders: vec![
                ("INBOX".to_owned(), "1.2.3.4.5".to_owned()),
                ("Projects/Q1; draft".to_owned(), "9.9.9.9.9".to_owned()),
            ],
            timeout_seconds: 480,
            on_timeout: Response::new(200).with_body("application/vnd.ms-sync.wbxml", vec![1]),
        };
        let response = hold.into_response();
        let channels: Vec<_> = response
            .headers
            .iter()
            .filter(|(name, _)| name == "Grip-Channel")
            .map(|(_, value)| value.as_str())
            .collect();
        assert_eq!(
            channels,
            ["INBOX; prev-id=1.2.3.4.5", "Projects/Q1%3B%20draft; prev-id=9.9.9.9.9"]
        );
        assert_eq!(response.header("Grip-Hold"), Some("response"));
        assert_eq!(response.header("Grip-Timeout"), Some("480"));
        assert_eq!((response.status, response.body.as_slice()), (200, &[1u8][..]));
    }
}
