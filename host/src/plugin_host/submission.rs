//! The `submission` import: sending mail as the authenticated user through the tenant's SMTP
//! submission server, authenticated with the password the IMAP server accepted (or not at all,
//! for a relay with `auth = "none"`). The envelope sender is the login, the user's address.

use super::eas_edge::gateway::submission::{self as wit, Error, RefusedRecipient};
use crate::accounts::Account;
use crate::smtp::{Credentials, SmtpError, Submitter};
use crate::state::StateStore;
use std::sync::Arc;
use std::time::Instant;

pub struct SubmissionCapability {
    tenant: Arc<str>,
    account: Option<Arc<Account>>,
    submitter: Arc<Submitter>,
    /// The request's state store: flushed just before a message may leave (see `send`).
    store: Arc<dyn StateStore>,
    /// When the request's plugin call started: a submission must end within its budget.
    started: Instant,
}

impl SubmissionCapability {
    pub fn new(
        tenant: Arc<str>,
        account: Option<Arc<Account>>,
        submitter: Arc<Submitter>,
        store: Arc<dyn StateStore>,
    ) -> Self {
        SubmissionCapability { tenant, account, submitter, store, started: Instant::now() }
    }
}

impl wit::Host for SubmissionCapability {
    async fn send(
        &mut self,
        message: Vec<u8>,
        recipients: Vec<String>,
    ) -> Result<Vec<RefusedRecipient>, Error> {
        let account = self.account.clone().ok_or(Error::Unauthenticated)?;
        let login = account.login();
        let tenant = &*self.tenant;
        let password = if self.submitter.authenticates() {
            let Some(password) = account.verified_password() else {
                return Err(Error::Unavailable(
                    "the mail server no longer accepts the password".to_string(),
                ));
            };
            Some(password)
        } else {
            None
        };
        let credentials = password.as_deref().map(|password| Credentials { login, password });
        let deadline = self.submitter.deadline(self.started);
        // The plugin claimed this submission in its resend ledger before sending; a request's
        // writes are normally made durable once, at its end. Made durable just before the
        // final dot, the claim survives any crash after which the server may have the
        // message, so the phone's retry is not sent a second time (the plugin answers it
        // "retry later", then "sent"). A crash before leaves no claim, and the retry sends
        // the message that never left.
        let store = &self.store;
        let record_claim =
            Box::pin(async move { store.flush().await.map_err(|error| error.to_string()) });
        let result = self
            .submitter
            .send(deadline, login, credentials.as_ref(), &recipients, &message, record_claim)
            .await;
        let size = message.len();
        let count = recipients.len();
        let server = self.submitter.address();
        match result {
            Ok(refused) => {
                tracing::info!(
                    tenant, %login, %server, size, recipients = count, refused = refused.len(),
                    "message submitted"
                );
                Ok(refused
                    .into_iter()
                    .map(|refusal| RefusedRecipient {
                        address: refusal.address,
                        reply: refusal.reply,
                    })
                    .collect())
            }
            Err(error) => {
                match &error {
                    SmtpError::Rejected(_) | SmtpError::TooLarge(_) => tracing::info!(
                        tenant, %login, %server, size, recipients = count, "message not sent: {error}"
                    ),
                    SmtpError::OutcomeUnknown(_) => tracing::warn!(
                        tenant, %login, %server, size, recipients = count,
                        "message possibly sent, not to be sent again: {error}"
                    ),
                    _ => tracing::warn!(
                        tenant, %login, %server, size, recipients = count, "message not sent: {error}"
                    ),
                }
                Err(plugin_error(error))
            }
        }
    }
}

/// How a submission failure looks to the plugin: what the phone should do about it.
fn plugin_error(error: SmtpError) -> Error {
    match error {
        SmtpError::Rejected(text) => Error::Rejected(text),
        SmtpError::TooLarge(text) => Error::TooLarge(text),
        SmtpError::OutcomeUnknown(text) => Error::OutcomeUnknown(text),
        // the IMAP server accepted the password: an SMTP server that does not, or a TLS setup
        // that fails, is the operator's to fix, and the phone keeps the message meanwhile
        SmtpError::Unavailable(_) | SmtpError::AuthFailed(_) | SmtpError::Tls(_) => {
            Error::Unavailable(error.to_string())
        }
    }
}
