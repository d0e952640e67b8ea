//! The `submission` import: sending mail as the authenticated user through the tenant's SMTP
//! submission server, authenticated with the password the IMAP server accepted (or not at all,
//! for a relay with `auth = "none"`). The envelope sender is the login, the user's address.

use super::eas_edge::gateway::submission::{self as wit, Error, RefusedRecipient};
use super::send_journal::{JournalClaim, SendJournal};
use crate::accounts::Account;
use crate::smtp::{AfterFinalDot, Credentials, SmtpError, Submitter};
use crate::state::{Namespace, StateStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub struct SubmissionCapability {
    tenant: Arc<str>,
    account: Option<Arc<Account>>,
    submitter: Arc<Submitter>,
    /// The request's state store: flushed just before a message may leave (see `send`).
    store: Arc<dyn StateStore>,
    /// When a submission must be over (the request's backend deadline, `plugin_host`).
    deadline: Instant,
}

impl SubmissionCapability {
    pub fn new(
        tenant: Arc<str>,
        account: Option<Arc<Account>>,
        submitter: Arc<Submitter>,
        store: Arc<dyn StateStore>,
        deadline: Instant,
    ) -> Self {
        SubmissionCapability { tenant, account, submitter, store, deadline }
    }
}

impl wit::Host for SubmissionCapability {
    async fn send(
        &mut self,
        message: Vec<u8>,
        recipients: Vec<String>,
        claim: Option<wit::Claim>,
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
        let claim = match claim {
            Some(claim) => Some(Claim::new(&self.tenant, login, claim)?),
            None => None,
        };
        // The plugin's claim of this submission (in its resend ledger) is made, and the
        // request's writes made durable, just before the final dot: the claim then survives
        // any crash after which the server may have the message, so the phone's retry is not
        // sent a second time (the plugin answers it "retry later", then "sent"). A crash
        // before leaves no claim, and the retry sends the message that never left; so does a
        // crash during the SMTP conversation, which a claim written by the plugin before
        // sending would not (behind Envoy every state call is durable at once). The send
        // journal covers a crash between the claim's commit and the dot (`send_journal`).
        let claim_lost = AtomicBool::new(false);
        let (store, lost) = (&self.store, &claim_lost);
        let record_claim = Box::pin(async move {
            let journal = SendJournal::installed();
            let mut noted = None;
            if let Some(claim) = &claim {
                noted = journal.map(|journal| (journal, journal.claiming(claim.journal_line())));
                if !claim.make(store.as_ref()).await? {
                    if let Some((journal, id)) = noted {
                        journal.settled(id);
                    }
                    lost.store(true, Ordering::Relaxed);
                    return Err("another request claimed the message first".to_owned());
                }
            }
            store.flush().await.map_err(|error| error.to_string())?;
            let after_final_dot: AfterFinalDot = Box::new(move || {
                if let Some((journal, id)) = noted {
                    journal.dot_written(id);
                }
            });
            Ok(after_final_dot)
        });
        let result = self
            .submitter
            .send(
                Some(self.deadline),
                login,
                credentials.as_ref(),
                &recipients,
                &message,
                record_claim,
            )
            .await;
        let size = message.len();
        let count = recipients.len();
        let server = self.submitter.address();
        if claim_lost.load(Ordering::Relaxed) {
            tracing::info!(
                tenant, %login, %server, size, recipients = count,
                "message not sent: another request for it reached its end first"
            );
            return Err(Error::ClaimLost);
        }
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

/// A send's claim (WIT `submission.claim`), in the store's terms.
struct Claim {
    namespace: Namespace,
    key: String,
    expected: Option<Vec<u8>>,
    value: Vec<u8>,
    presumed: Vec<u8>,
}

impl Claim {
    fn new(tenant: &str, login: &str, claim: wit::Claim) -> Result<Self, Error> {
        let namespace = super::state::namespace(tenant, Some(login), claim.scope)
            .map_err(|_| Error::Unauthenticated)?;
        let wit::Claim { key, expected, value, presumed, .. } = claim;
        Ok(Claim { namespace, key, expected, value, presumed })
    }

    fn journal_line(&self) -> JournalClaim {
        JournalClaim::new(&self.namespace, &self.key, self.expected.as_deref(), &self.value)
            .presumed(&self.presumed)
    }

    /// Writes the claim if its record still holds what the plugin read; false if not.
    async fn make(&self, store: &dyn StateStore) -> Result<bool, String> {
        let (expected, value) = (self.expected.as_deref(), Some(self.value.clone()));
        store
            .compare_and_swap(&self.namespace, &self.key, expected, value)
            .await
            .map_err(|error| format!("recording the send's claim: {error}"))
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
