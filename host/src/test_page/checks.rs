//! The checks behind the test page, run for a user who just authenticated: the IMAP session
//! and its folders as the plugin would see them, the submission server, the plugin itself
//! (an OPTIONS through the normal request path), and the push method watchers would use.
//!
//! Every check has a time bound and ends in a [`Check`]: one friendly sentence and a short
//! technical detail (an error's text, which never holds a password). Nothing here panics or
//! forwards a backtrace.

use crate::accounts::Account;
use crate::imap::{Capabilities, Folder, FolderRole, ImapError, Session};
use crate::push::PushSettings;
use crate::server::{Gateway, IDENTITY_HEADER};
use crate::smtp::{SmtpError, Timeouts};
use crate::tenants::TenantRuntime;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The longest the IMAP checks (capabilities and folder listing) may take.
const IMAP_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest the plugin's OPTIONS may take (a cold instance compiles nothing: it is
/// pre-instantiated, but the first call of a tenant may still page in a lot).
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(15);
/// SMTP: connecting (with implicit TLS) and each command.
const SMTP_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(5),
    command: Duration::from_secs(10),
    data: Duration::from_secs(10),
};

/// The IMAP extensions the page lists, in this order.
const IMAP_EXTENSIONS: &[&str] =
    &["NOTIFY", "IDLE", "CONDSTORE", "QRESYNC", "SPECIAL-USE", "MOVE", "UIDPLUS"];

/// The answer to a check request.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Whether every check passed.
    pub ok: bool,
    pub account: String,
    pub tenant: String,
    pub imap: ImapReport,
    pub folders: FoldersReport,
    pub smtp: SmtpReport,
    pub eas: EasReport,
    pub push: PushReport,
}

/// The outcome every section has.
#[derive(Debug, Serialize)]
pub struct Check {
    pub ok: bool,
    /// One sentence for the user.
    pub message: String,
    /// A short technical detail for the administrator (no secrets, no backtrace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Check {
    fn ok(message: impl Into<String>) -> Check {
        Check { ok: true, message: message.into(), detail: None }
    }

    fn failed(message: impl Into<String>, detail: impl Into<String>) -> Check {
        Check { ok: false, message: message.into(), detail: Some(detail.into()) }
    }
}

/// A refused check request (wrong credentials, throttled, IMAP unreachable): the page shows
/// `error.message`.
#[derive(Debug, Serialize)]
pub struct Refusal {
    pub ok: bool,
    pub error: Check,
}

pub fn refusal(message: &str, detail: Option<&str>) -> Refusal {
    Refusal {
        ok: false,
        error: Check {
            ok: false,
            message: message.to_string(),
            detail: detail.map(str::to_string),
        },
    }
}

#[derive(Debug, Serialize)]
pub struct ImapReport {
    #[serde(flatten)]
    pub check: Check,
    /// `host:port` from the tenant config.
    pub server: String,
    pub tls: &'static str,
    /// The extensions the gateway uses, each with whether the server announced it.
    pub extensions: Vec<Extension>,
    /// Everything the server announced after LOGIN.
    pub capabilities: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Extension {
    pub name: &'static str,
    pub offered: bool,
}

#[derive(Debug, Serialize)]
pub struct FoldersReport {
    #[serde(flatten)]
    pub check: Check,
    pub list: Vec<FolderReport>,
}

#[derive(Debug, Serialize)]
pub struct FolderReport {
    pub name: String,
    /// The IMAP role (special-use attribute or well-known name), if any.
    pub role: Option<&'static str>,
    /// The EAS folder type phones get (MS-ASCMD §2.2.3.186.3), as the engine maps roles.
    pub eas_type: u8,
    pub eas_type_name: &'static str,
}

#[derive(Debug, Serialize)]
pub struct SmtpReport {
    #[serde(flatten)]
    pub check: Check,
    pub server: String,
    pub tls: &'static str,
    pub auth_mechanisms: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct EasReport {
    #[serde(flatten)]
    pub check: Check,
    /// `MS-ASProtocolVersions` of the plugin's OPTIONS answer.
    pub versions: Vec<String>,
    /// `MS-ASProtocolCommands` of the same answer.
    pub commands: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PushReport {
    #[serde(flatten)]
    pub check: Check,
    /// `NOTIFY`, `IDLE` or `polling`; `null` when IMAP could not be asked.
    pub method: Option<&'static str>,
}

/// Runs every check for `account` (authenticated just now) of `tenant`, concurrently.
pub async fn run(
    gateway: &Gateway,
    tenant: &TenantRuntime,
    account: Arc<Account>,
    headers: &http::HeaderMap,
) -> Report {
    let (imap, smtp, eas) =
        tokio::join!(imap(&account), smtp(tenant), eas(gateway, tenant, &account, headers));
    let (imap, folders, capabilities) = imap_reports(tenant, imap);
    let push = push(gateway.push.settings(), capabilities.as_ref());
    let ok = imap.check.ok && folders.check.ok && smtp.check.ok && eas.check.ok;
    Report {
        ok,
        account: account.login().to_string(),
        tenant: tenant.config.name.clone(),
        imap,
        folders,
        smtp,
        eas,
        push,
    }
}

/// The capabilities after LOGIN and the folder list, on one of the account's pooled sessions
/// (usually the one the login just made), with the listing the mailbox capability uses.
async fn imap(account: &Account) -> Result<(Capabilities, Result<Vec<Folder>, ImapError>), String> {
    let work = account.run(async |session: &mut Session| {
        let capabilities = session.capabilities().clone();
        // a failed listing still shows the capabilities; only a broken session retries
        match session.list_folders().await {
            Err(error) if error.breaks_session() => Err(error),
            listed => Ok((capabilities, listed)),
        }
    });
    match tokio::time::timeout(IMAP_TIMEOUT, work).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {IMAP_TIMEOUT:?}")),
    }
}

fn imap_reports(
    tenant: &TenantRuntime,
    outcome: Result<(Capabilities, Result<Vec<Folder>, ImapError>), String>,
) -> (ImapReport, FoldersReport, Option<Capabilities>) {
    let config = &tenant.config.imap;
    let server = format!("{}:{}", config.host, config.port);
    let tls = tls_name(config.tls);
    let (capabilities, listed) = match outcome {
        Ok(found) => found,
        Err(detail) => {
            let imap = ImapReport {
                check: Check::failed(
                    format!("Logged in, but the mail server (IMAP at {server}) stopped answering."),
                    detail,
                ),
                server,
                tls,
                extensions: Vec::new(),
                capabilities: Vec::new(),
            };
            let folders = FoldersReport {
                check: Check::failed("The folders could not be listed.", "IMAP session failed"),
                list: Vec::new(),
            };
            return (imap, folders, None);
        }
    };
    let extensions = IMAP_EXTENSIONS
        .iter()
        .map(|&name| Extension { name, offered: offers(&capabilities, name) })
        .collect();
    let imap = ImapReport {
        check: Check::ok(format!("Logged in to the mail server (IMAP at {server}).")),
        server,
        tls,
        extensions,
        capabilities: capabilities.all.clone(),
    };
    let folders = match listed {
        Ok(folders) => folders_report(&folders),
        Err(error) => FoldersReport {
            check: Check::failed("The mail server refused to list the folders.", error.to_string()),
            list: Vec::new(),
        },
    };
    (imap, folders, Some(capabilities))
}

/// Whether the server offers `name`, by the session's reading of the list (so IMAP4rev2's
/// folded-in extensions count).
fn offers(capabilities: &Capabilities, name: &str) -> bool {
    match name {
        "NOTIFY" => capabilities.notify,
        "IDLE" => capabilities.idle,
        "CONDSTORE" => capabilities.condstore,
        "QRESYNC" => capabilities.qresync,
        "SPECIAL-USE" => capabilities.special_use,
        "MOVE" => capabilities.move_command,
        "UIDPLUS" => capabilities.uidplus,
        other => capabilities.has(other),
    }
}

fn folders_report(folders: &[Folder]) -> FoldersReport {
    let list: Vec<FolderReport> = folders
        .iter()
        .filter(|folder| folder.selectable)
        .map(|folder| {
            let (eas_type, eas_type_name) = eas_type(folder.role);
            FolderReport {
                name: folder.name.clone(),
                role: folder.role.map(role_name),
                eas_type,
                eas_type_name,
            }
        })
        .collect();
    // phones need these four; a missing one is worth telling (sending still files into Sent
    // only when the server has one)
    let missing: Vec<&str> =
        [FolderRole::Inbox, FolderRole::Drafts, FolderRole::Sent, FolderRole::Trash]
            .into_iter()
            .filter(|role| !folders.iter().any(|folder| folder.role == Some(*role)))
            .map(role_name)
            .collect();
    let check = if missing.is_empty() {
        Check::ok(format!("Found {} folders, with Inbox, Drafts, Sent and Trash.", list.len()))
    } else {
        Check::failed(
            format!(
                "Found {} folders, but none for {}: phones will miss them.",
                list.len(),
                missing.join(", ")
            ),
            "no folder with the special-use attribute or a well-known name",
        )
    };
    FoldersReport { check, list }
}

fn role_name(role: FolderRole) -> &'static str {
    match role {
        FolderRole::Inbox => "Inbox",
        FolderRole::Drafts => "Drafts",
        FolderRole::Sent => "Sent",
        FolderRole::Trash => "Trash",
        FolderRole::Junk => "Junk",
        FolderRole::Archive => "Archive",
    }
}

/// The engine's mapping (`plugin/engine/src/folders/map.rs`): EAS has no Junk or Archive type.
fn eas_type(role: Option<FolderRole>) -> (u8, &'static str) {
    match role {
        Some(FolderRole::Inbox) => (2, "Inbox"),
        Some(FolderRole::Drafts) => (3, "Drafts"),
        Some(FolderRole::Trash) => (4, "Deleted Items"),
        Some(FolderRole::Sent) => (5, "Sent Items"),
        Some(FolderRole::Junk | FolderRole::Archive) | None => (12, "Mail folder"),
    }
}

/// Connects and greets the submission server as sending would, without sending or
/// authenticating; with `auth = "user"` the server must offer a mechanism the gateway speaks.
async fn smtp(tenant: &TenantRuntime) -> SmtpReport {
    let config = &tenant.config.smtp;
    let server = format!("{}:{}", config.host, config.port);
    let tls = tls_name(config.tls);
    let submitter = tenant.plugin.services.submitter.as_ref().clone().with_timeouts(SMTP_TIMEOUTS);
    let (check, auth_mechanisms) = match submitter.probe().await {
        Ok(offer) if submitter.authenticates() && !offer.usable_auth => (
            Check::failed(
                format!(
                    "The outgoing mail server (SMTP at {server}) answers, but offers no login \
                     the gateway can use: sending mail will fail."
                ),
                format!(
                    "AUTH offered: {}; the gateway needs PLAIN or LOGIN (or auth = \"none\" \
                     for a relay)",
                    if offer.auth_mechanisms.is_empty() {
                        "none".to_string()
                    } else {
                        offer.auth_mechanisms.join(" ")
                    }
                ),
            ),
            offer.auth_mechanisms,
        ),
        Ok(offer) => (
            Check::ok(format!("The outgoing mail server (SMTP at {server}) answers.")),
            offer.auth_mechanisms,
        ),
        Err(error) => (smtp_failure(&server, &error), Vec::new()),
    };
    SmtpReport { check, server, tls, auth_mechanisms }
}

fn smtp_failure(server: &str, error: &SmtpError) -> Check {
    let message = match error {
        SmtpError::Tls(_) => format!(
            "The gateway reaches the outgoing mail server (SMTP at {server}) but cannot set up \
             TLS with it: check the tenant's smtp tls and ca_file settings. Sending mail will fail."
        ),
        _ => format!(
            "The gateway cannot reach the outgoing mail server (SMTP at {server}): sending mail \
             from phones will fail until it can. Check that the server runs and the tenant's \
             smtp host and port."
        ),
    };
    Check::failed(message, error.to_string())
}

/// An authenticated OPTIONS through the normal request path, as a phone's first request:
/// proves the tenant's plugin loads and runs, and tells the versions it offers.
async fn eas(
    gateway: &Gateway,
    tenant: &TenantRuntime,
    account: &Arc<Account>,
    headers: &http::HeaderMap,
) -> EasReport {
    let mut request_headers = http::HeaderMap::new();
    if let Ok(identity) = http::HeaderValue::from_str(account.login()) {
        request_headers.insert(IDENTITY_HEADER, identity);
    }
    if let Some(host) = headers.get(http::header::HOST) {
        request_headers.insert(http::header::HOST, host.clone());
    }
    let request = crate::parking::PluginRequest {
        method: http::Method::OPTIONS,
        uri: http::Uri::from_static("/Microsoft-Server-ActiveSync"),
        headers: crate::packed_headers::PackedHeaders::pack(&request_headers),
        body: bytes::Bytes::new(),
    };
    let call = crate::parking::answer(tenant, &gateway.push, request, Some(account.clone()));
    let failed = |detail: String| EasReport {
        check: Check::failed(
            "The gateway's ActiveSync plugin did not answer: phones cannot sync. The \
             administrator should look at the gateway log.",
            detail,
        ),
        versions: Vec::new(),
        commands: Vec::new(),
    };
    let response = match tokio::time::timeout(PLUGIN_TIMEOUT, call).await {
        Ok(Ok(response)) => response,
        Ok(Err(fault)) => return failed(fault_summary(&fault)),
        Err(_) => return failed(format!("no answer within {PLUGIN_TIMEOUT:?}")),
    };
    let list = |name: &str| -> Vec<String> {
        response
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = list("ms-asprotocolversions");
    let commands = list("ms-asprotocolcommands");
    if !response.status.is_success() || versions.is_empty() {
        return failed(format!("OPTIONS answered {} without protocol versions", response.status));
    }
    EasReport {
        check: Check::ok(format!(
            "ActiveSync works; phones may use version {}.",
            versions.join(", ")
        )),
        versions,
        commands,
    }
}

/// A plugin fault in one line: its first line only, where a trap's wasm backtrace would follow.
fn fault_summary(fault: &crate::runtime::PluginFault) -> String {
    let text = fault.to_string();
    text.lines().next().unwrap_or("plugin fault").chars().take(200).collect()
}

/// How watchers would follow this account's folders (`push::watcher` decides the same way:
/// NOTIFY when offered and allowed, else IDLE up to the connection cap, else STATUS polling).
fn push(settings: &PushSettings, capabilities: Option<&Capabilities>) -> PushReport {
    let Some(capabilities) = capabilities else {
        return PushReport {
            check: Check::failed(
                "Push could not be checked: IMAP did not answer.",
                "no capabilities",
            ),
            method: None,
        };
    };
    let poll = settings.poll_interval.as_secs().max(1);
    let (method, message) = if settings.use_notify && capabilities.notify {
        (
            "NOTIFY",
            "New mail is pushed at once: one IMAP connection watches all folders (NOTIFY)."
                .to_string(),
        )
    } else if capabilities.idle && settings.max_idle_connections > 0 {
        (
            "IDLE",
            format!(
                "New mail is pushed at once for up to {} folders (IDLE); other folders are \
                 checked every {poll} seconds.",
                settings.max_idle_connections
            ),
        )
    } else {
        (
            "polling",
            format!("The mail server offers no push: folders are checked every {poll} seconds."),
        )
    };
    let detail = (capabilities.notify && !settings.use_notify)
        .then(|| "the server offers NOTIFY, but [watchers] use_notify = false".to_string());
    PushReport { check: Check { ok: true, message, detail }, method: Some(method) }
}

fn tls_name(mode: crate::config::TlsMode) -> &'static str {
    match mode {
        crate::config::TlsMode::None => "none",
        crate::config::TlsMode::Starttls => "STARTTLS",
        crate::config::TlsMode::Implicit => "implicit TLS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capabilities(list: &str) -> Capabilities {
        Capabilities::from_atoms(list.split(' ').map(str::as_bytes))
    }

    #[test]
    fn push_method_follows_the_watchers_rules() {
        let settings = PushSettings::default();
        let method = |settings: &PushSettings, list: &str| {
            push(settings, Some(&capabilities(list))).method.expect("a method")
        };
        assert_eq!(method(&settings, "IMAP4rev1 IDLE NOTIFY"), "NOTIFY");
        assert_eq!(method(&settings, "IMAP4rev1 IDLE"), "IDLE");
        assert_eq!(method(&settings, "IMAP4rev2"), "IDLE");
        assert_eq!(method(&settings, "IMAP4rev1"), "polling");
        let no_notify = PushSettings { use_notify: false, ..settings };
        let report = push(&no_notify, Some(&capabilities("IMAP4rev1 IDLE NOTIFY")));
        assert_eq!(report.method, Some("IDLE"));
        assert!(report.check.detail.is_some_and(|d| d.contains("use_notify = false")));
        let no_idle = PushSettings { max_idle_connections: 0, ..no_notify };
        assert_eq!(method(&no_idle, "IMAP4rev1 IDLE"), "polling");
        assert!(push(&settings, None).method.is_none());
    }

    #[test]
    fn roles_map_to_eas_types_like_the_engine() {
        assert_eq!(eas_type(Some(FolderRole::Inbox)), (2, "Inbox"));
        assert_eq!(eas_type(Some(FolderRole::Trash)).0, 4);
        assert_eq!(eas_type(Some(FolderRole::Sent)).0, 5);
        assert_eq!(eas_type(Some(FolderRole::Junk)).0, 12);
        assert_eq!(eas_type(None).0, 12);
    }

    #[test]
    fn missing_roles_are_reported() {
        let folder = |name: &str, role| Folder {
            name: name.to_string(),
            raw_name: name.to_string(),
            delimiter: Some('/'),
            role,
            selectable: true,
            subscribed: None,
            mailbox_id: None,
        };
        let report = folders_report(&[
            folder("INBOX", Some(FolderRole::Inbox)),
            folder("Sent", Some(FolderRole::Sent)),
            folder("Projects", None),
        ]);
        assert!(!report.check.ok);
        assert!(
            report.check.message.contains("none for Drafts, Trash"),
            "{}",
            report.check.message
        );
        assert_eq!(report.list.len(), 3);
        assert_eq!(report.list[2].eas_type_name, "Mail folder");
    }
}
