//! The `out-of-office` import: the user's vacation reply as a Sieve script on the tenant's
//! ManageSieve server (`[tenant.sieve]`), logged in as the user with the password the IMAP
//! server accepted. Without `[tenant.sieve]` it is `not-available`.

use super::eas_edge::gateway::out_of_office::{self as wit, Error, Settings};
use crate::accounts::Account;
use crate::sieve::{OofSettings, SieveEndpoint, SieveError};
use std::sync::Arc;

pub struct OutOfOfficeCapability {
    tenant: Arc<str>,
    account: Option<Arc<Account>>,
    sieve: Option<Arc<SieveEndpoint>>,
}

/// What a ManageSieve call needs: the account, its password and the server.
type SieveCall = (Arc<Account>, Vec<u8>, Arc<SieveEndpoint>);

impl OutOfOfficeCapability {
    pub fn new(
        tenant: Arc<str>,
        account: Option<Arc<Account>>,
        sieve: Option<Arc<SieveEndpoint>>,
    ) -> Self {
        OutOfOfficeCapability { tenant, account, sieve }
    }

    /// The account, its password and the server; the errors the plugin gets without them.
    fn parts(&self) -> Result<SieveCall, Error> {
        let account = self.account.clone().ok_or(Error::Unauthenticated)?;
        let sieve = self.sieve.clone().ok_or(Error::NotAvailable)?;
        let password = account.verified_password().ok_or_else(|| {
            Error::Unavailable("the mail server no longer accepts the password".to_string())
        })?;
        Ok((account, password, sieve))
    }

    fn error(&self, account: &Account, sieve: &SieveEndpoint, error: SieveError) -> Error {
        let tenant = &*self.tenant;
        let login = account.login();
        let server = sieve.address();
        match error {
            SieveError::NoVacation => Error::NotAvailable,
            SieveError::Refused(text) => Error::Refused(text),
            SieveError::Unavailable(_) | SieveError::AuthFailed(_) | SieveError::Tls(_) => {
                tracing::warn!(tenant, %login, %server, "out-of-office call failed: {error}");
                Error::Unavailable(error.to_string())
            }
        }
    }
}

impl wit::Host for OutOfOfficeCapability {
    async fn get(&mut self) -> Result<Settings, Error> {
        let (account, password, sieve) = self.parts()?;
        let settings = sieve
            .get(account.login(), &password)
            .await
            .map_err(|error| self.error(&account, &sieve, error))?;
        Ok(Settings {
            enabled: settings.enabled,
            start: settings.start,
            end: settings.end,
            subject: settings.subject,
            message: settings.message,
        })
    }

    async fn set(&mut self, settings: Settings) -> Result<(), Error> {
        let (account, password, sieve) = self.parts()?;
        let settings = OofSettings {
            enabled: settings.enabled,
            start: settings.start,
            end: settings.end,
            subject: settings.subject,
            message: settings.message,
        };
        sieve
            .set(account.login(), &password, &settings)
            .await
            .map_err(|error| self.error(&account, &sieve, error))?;
        tracing::info!(
            tenant = &*self.tenant,
            login = %account.login(),
            enabled = settings.enabled,
            "out-of-office updated"
        );
        Ok(())
    }
}
