//! Out-of-office replies as a Sieve vacation script (RFC 5230), managed over ManageSieve
//! (RFC 5804) as the user.
//!
//! The gateway owns one script, [`SCRIPT_NAME`]. Its first line is a comment holding the
//! settings as JSON, so reading them back never parses Sieve; the rest is the vacation rule,
//! within the dates when there are any (RFC 5260 `currentdate`). Enabling activates the script,
//! but only when no other script is active: there is one active script per user, and replacing
//! the user's filters with an out-of-office reply would be worse than refusing. Disabling keeps
//! the script (and the message, for next time) and deactivates it.

mod client;
mod script;

use std::time::Duration;

use crate::imap::{ImapError, TlsClient, TlsMode, TlsSettings};

pub use script::{OofSettings, SCRIPT_NAME};

/// How long connecting (with the TLS handshake) and each command may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SieveError {
    /// Unreachable, timed out, closed, or an answer we cannot read.
    #[error("ManageSieve server unavailable: {0}")]
    Unavailable(String),
    /// The server refused the credentials.
    #[error("ManageSieve login refused: {0}")]
    AuthFailed(String),
    /// The server has no vacation extension.
    #[error("the Sieve server has no vacation extension")]
    NoVacation,
    /// The server refused a command (e.g. the script), with its reason.
    #[error("ManageSieve refused: {0}")]
    Refused(String),
    #[error("ManageSieve TLS: {0}")]
    Tls(String),
}

/// A tenant's ManageSieve server, ready to connect (TLS roots loaded once, here).
#[derive(Debug, Clone)]
pub struct SieveEndpoint {
    host: String,
    port: u16,
    tls_mode: TlsMode,
    tls: Option<TlsClient>,
}

impl SieveEndpoint {
    pub fn new(config: &crate::config::Endpoint) -> Result<Self, SieveError> {
        let tls_mode = match config.tls {
            crate::config::TlsMode::None => TlsMode::None,
            crate::config::TlsMode::Starttls => TlsMode::StartTls,
            crate::config::TlsMode::Implicit => TlsMode::Implicit,
        };
        let tls = match tls_mode {
            TlsMode::None => None,
            TlsMode::StartTls | TlsMode::Implicit => {
                let settings = TlsSettings {
                    mode: tls_mode,
                    ca_file: config.ca_file.clone(),
                    server_name: None,
                };
                Some(TlsClient::new(&settings, &config.host).map_err(tls_error)?)
            }
        };
        Ok(SieveEndpoint { host: config.host.clone(), port: config.port, tls_mode, tls })
    }

    /// `host:port`, for logs.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The user's out-of-office settings: those of our script, enabled only while it is the
    /// active one; disabled defaults without a script.
    pub async fn get(&self, login: &str, password: &[u8]) -> Result<OofSettings, SieveError> {
        let mut session = client::Session::open(self, login, password).await?;
        let result = async {
            if !session.has_extension("vacation") {
                return Err(SieveError::NoVacation);
            }
            let scripts = session.list_scripts().await?;
            let Some(ours) = scripts.iter().find(|script| script.name == SCRIPT_NAME) else {
                return Ok(OofSettings::default());
            };
            let active = ours.active;
            let text = session.get_script(SCRIPT_NAME).await?;
            let mut settings = script::parse(&text).unwrap_or_default();
            settings.enabled &= active;
            Ok(settings)
        }
        .await;
        session.logout().await;
        result
    }

    /// Stores the settings in our script; activates it when enabled (refused while another
    /// script is active), deactivates it when disabled.
    pub async fn set(
        &self,
        login: &str,
        password: &[u8],
        settings: &OofSettings,
    ) -> Result<(), SieveError> {
        let mut session = client::Session::open(self, login, password).await?;
        let result = async {
            if !session.has_extension("vacation") {
                return Err(SieveError::NoVacation);
            }
            let scripts = session.list_scripts().await?;
            let active =
                scripts.iter().find(|script| script.active).map(|script| script.name.clone());
            let ours_active = active.as_deref() == Some(SCRIPT_NAME);
            if settings.enabled
                && let Some(other) = active.as_deref().filter(|name| *name != SCRIPT_NAME)
            {
                return Err(SieveError::Refused(format!(
                    "the Sieve script {other:?} is active; an out-of-office reply would replace it"
                )));
            }
            session.put_script(SCRIPT_NAME, &script::render(settings)).await?;
            if settings.enabled && !ours_active {
                session.set_active(SCRIPT_NAME).await?;
            } else if !settings.enabled && ours_active {
                session.set_active("").await?;
            }
            Ok(())
        }
        .await;
        session.logout().await;
        result
    }
}

fn tls_error(error: ImapError) -> SieveError {
    match error {
        ImapError::Unavailable(text) => SieveError::Unavailable(text),
        ImapError::Tls(text) => SieveError::Tls(text),
        other => SieveError::Tls(other.to_string()),
    }
}
