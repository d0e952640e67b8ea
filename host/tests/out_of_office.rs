//! The `out-of-office` capability against an in-process ManageSieve server (RFC 5804) that
//! behaves like Dovecot Pigeonhole's: the test mail stack has no ManageSieve. The script's
//! Sieve itself was checked with Pigeonhole's `sieve-test` (see `sieve/script.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use eas_edge::accounts::{Accounts, PoolSettings};
use eas_edge::config::{Endpoint as ConfigEndpoint, TlsMode as ConfigTls};
use eas_edge::imap::{Endpoint, TlsMode, TlsSettings};
use eas_edge::plugin_host::OutOfOfficeCapability;
use eas_edge::plugin_host::eas_edge::gateway::out_of_office::{Error, Host as _, Settings};
use eas_edge::sieve::{OofSettings, SCRIPT_NAME, SieveEndpoint, SieveError};
use eas_edge_tests::mailstack::MailStack;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const USER: &str = "pat@example.test";
const PASSWORD: &str = "s3cret pässword";

/// What the fake server holds for its one user.
#[derive(Debug, Default)]
struct Mailbox {
    scripts: BTreeMap<String, String>,
    active: Option<String>,
}

/// A ManageSieve server for `USER`/`PASSWORD` with these Sieve extensions, serving any number
/// of connections; returns its port and the user's scripts.
async fn sieve_server(extensions: &'static str) -> Result<(u16, Arc<Mutex<Mailbox>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let mailbox = Arc::new(Mutex::new(Mailbox::default()));
    let shared = mailbox.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mailbox = shared.clone();
            tokio::spawn(async move {
                if let Err(error) = serve(stream, extensions, mailbox).await {
                    eprintln!("fake ManageSieve: {error:#}");
                }
            });
        }
    });
    Ok((port, mailbox))
}

async fn serve(
    stream: tokio::net::TcpStream,
    extensions: &str,
    mailbox: Arc<Mutex<Mailbox>>,
) -> Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(
            format!(
                "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SIEVE\" \"{extensions}\"\r\n\
                 \"NOTIFY\" \"mailto\"\r\n\"SASL\" \"PLAIN\"\r\n\"VERSION\" \"1.0\"\r\n\
                 OK \"Dovecot ready.\"\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let mut authenticated = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
        let quoted = |text: &str| -> Result<String> {
            let inner = text.strip_prefix('"').and_then(|t| t.strip_suffix('"'));
            Ok(inner.context("not a quoted string")?.to_string())
        };
        let answer = match command {
            "AUTHENTICATE" => {
                let (mechanism, initial) = rest.split_once(' ').context("no initial response")?;
                ensure!(mechanism == "\"PLAIN\"");
                let token = base64::engine::general_purpose::STANDARD.decode(quoted(initial)?)?;
                let expected = format!("\0{USER}\0{PASSWORD}");
                authenticated = token == expected.as_bytes();
                if authenticated {
                    "OK \"Logged in.\"".to_string()
                } else {
                    "NO \"Authentication failed.\"".to_string()
                }
            }
            _ if !authenticated && command != "LOGOUT" => "NO \"Not authenticated.\"".to_string(),
            "LISTSCRIPTS" => {
                let mailbox = mailbox.lock().expect("lock");
                let mut answer = String::new();
                for name in mailbox.scripts.keys() {
                    let active = mailbox.active.as_deref() == Some(name.as_str());
                    answer.push_str(&format!(
                        "\"{name}\"{}\r\n",
                        if active { " ACTIVE" } else { "" }
                    ));
                }
                answer + "OK \"Listscripts completed.\""
            }
            "GETSCRIPT" => {
                let mailbox = mailbox.lock().expect("lock");
                match mailbox.scripts.get(&quoted(rest)?) {
                    Some(script) => {
                        format!("{{{}}}\r\n{script}\r\nOK \"Getscript completed.\"", script.len())
                    }
                    None => "NO (NONEXISTENT) \"Script does not exist.\"".to_string(),
                }
            }
            "PUTSCRIPT" => {
                let (name, literal) = rest.split_once(' ').context("no script")?;
                let length: usize = literal
                    .strip_prefix('{')
                    .and_then(|l| l.strip_suffix("+}"))
                    .context("not a non-synchronising literal")?
                    .parse()?;
                let mut script = vec![0; length + 2];
                reader.read_exact(&mut script).await?;
                ensure!(script.ends_with(b"\r\n"), "no CRLF after the script");
                script.truncate(length);
                let script = String::from_utf8(script)?;
                if script.contains("vacation") && !extensions.contains("vacation") {
                    "NO \"line 3: require command: unknown Sieve capability `vacation'.\""
                        .to_string()
                } else {
                    mailbox.lock().expect("lock").scripts.insert(quoted(name)?, script);
                    "OK \"PUTSCRIPT completed.\"".to_string()
                }
            }
            "SETACTIVE" => {
                let name = quoted(rest)?;
                let mut mailbox = mailbox.lock().expect("lock");
                if name.is_empty() {
                    mailbox.active = None;
                    "OK \"Active script is now deactivated.\"".to_string()
                } else if mailbox.scripts.contains_key(&name) {
                    mailbox.active = Some(name);
                    "OK \"Setactive completed.\"".to_string()
                } else {
                    "NO (NONEXISTENT) \"There is no script by that name.\"".to_string()
                }
            }
            "LOGOUT" => {
                write.write_all(b"OK \"Logout completed.\"\r\n").await?;
                return Ok(());
            }
            other => bail!("unexpected command {other:?}"),
        };
        write.write_all(answer.as_bytes()).await?;
        write.write_all(b"\r\n").await?;
    }
}

fn endpoint(port: u16) -> Result<SieveEndpoint> {
    let config =
        ConfigEndpoint { host: "127.0.0.1".into(), port, tls: ConfigTls::None, ca_file: None };
    Ok(SieveEndpoint::new(&config)?)
}

#[tokio::test]
async fn vacation_is_stored_activated_read_back_and_deactivated() -> Result<()> {
    let (port, mailbox) = sieve_server("fileinto reject envelope vacation date relational").await?;
    let sieve = endpoint(port)?;
    let password = PASSWORD.as_bytes();

    ensure!(sieve.get(USER, password).await? == OofSettings::default(), "no script yet");

    let away = OofSettings {
        enabled: true,
        start: Some(1_772_841_600),
        end: Some(1_773_446_400),
        subject: Some("Im Urlaub".into()),
        message: "Bin ab Montag zurück.\r\n.\r\nPat".into(),
    };
    sieve.set(USER, password, &away).await?;
    {
        let mailbox = mailbox.lock().expect("lock");
        ensure!(mailbox.active.as_deref() == Some(SCRIPT_NAME));
        let script = mailbox.scripts.get(SCRIPT_NAME).context("no script")?;
        ensure!(script.contains("vacation :subject \"Im Urlaub\" text:\r\n"), "{script}");
        ensure!(script.contains("\r\n..\r\nPat\r\n.\r\n"), "dot-stuffed: {script}");
    }
    ensure!(sieve.get(USER, password).await? == away);

    // off: the message stays for next time, the script is no longer active
    let off = OofSettings { enabled: false, ..away.clone() };
    sieve.set(USER, password, &off).await?;
    ensure!(mailbox.lock().expect("lock").active.is_none());
    ensure!(sieve.get(USER, password).await? == off);

    // another active script is the user's filters: not replaced
    {
        let mut mailbox = mailbox.lock().expect("lock");
        mailbox.scripts.insert("roundcube".into(), "keep;\r\n".into());
        mailbox.active = Some("roundcube".into());
    }
    match sieve.set(USER, password, &away).await {
        Err(SieveError::Refused(text)) if text.contains("roundcube") => {}
        other => bail!("enabling over another active script gave {other:?}"),
    }
    ensure!(mailbox.lock().expect("lock").active.as_deref() == Some("roundcube"));
    // ours, though stored as enabled earlier, is not in effect: reported disabled
    mailbox.lock().expect("lock").scripts.insert(
        SCRIPT_NAME.into(),
        "# eas-edge-oof {\"enabled\":true,\"message\":\"x\"}\r\n".into(),
    );
    ensure!(!sieve.get(USER, password).await?.enabled);
    // disabling is fine either way
    sieve.set(USER, password, &off).await?;
    ensure!(mailbox.lock().expect("lock").active.as_deref() == Some("roundcube"));

    match sieve.get(USER, b"wrong").await {
        Err(SieveError::AuthFailed(_)) => {}
        other => bail!("a wrong password gave {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_server_without_vacation_has_no_out_of_office() -> Result<()> {
    let (port, _) = sieve_server("fileinto reject envelope").await?;
    let sieve = endpoint(port)?;
    ensure!(matches!(sieve.get(USER, PASSWORD.as_bytes()).await, Err(SieveError::NoVacation)));
    let away = OofSettings { enabled: true, message: "x".into(), ..OofSettings::default() };
    ensure!(matches!(
        sieve.set(USER, PASSWORD.as_bytes(), &away).await,
        Err(SieveError::NoVacation)
    ));

    // without [tenant.sieve], and without a user
    let mut none = OutOfOfficeCapability::new("test".into(), None, None);
    ensure!(matches!(none.get().await, Err(Error::Unauthenticated)));
    let mut anonymous = OutOfOfficeCapability::new("test".into(), None, Some(Arc::new(sieve)));
    ensure!(matches!(anonymous.get().await, Err(Error::Unauthenticated)));
    Ok(())
}

/// Through the capability: the account's password (the one IMAP accepted) logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_capability_logs_in_with_the_accounts_password() -> Result<()> {
    let stack = MailStack::start()?;
    stack.add_user(USER, PASSWORD)?;
    let imap = stack.imap_addr()?;
    let tls = TlsSettings { mode: TlsMode::None, ..TlsSettings::default() };
    let accounts = Accounts::new(
        Endpoint::new(&imap.ip().to_string(), imap.port(), &tls)?,
        &PoolSettings::default(),
    );
    let account = accounts.authenticate(USER, PASSWORD.as_bytes()).await?;

    let mut unconfigured = OutOfOfficeCapability::new("test".into(), Some(account.clone()), None);
    ensure!(matches!(unconfigured.get().await, Err(Error::NotAvailable)));

    let (port, mailbox) = sieve_server("vacation date relational").await?;
    let mut oof =
        OutOfOfficeCapability::new("test".into(), Some(account), Some(Arc::new(endpoint(port)?)));
    let settings =
        Settings { enabled: true, start: None, end: None, subject: None, message: "Away".into() };
    oof.set(settings.clone()).await.map_err(anyhow::Error::msg)?;
    ensure!(mailbox.lock().expect("lock").active.as_deref() == Some(SCRIPT_NAME));
    let read = oof.get().await.map_err(anyhow::Error::msg)?;
    ensure!(
        read.enabled && read.message == "Away" && read.start.is_none() && read.subject.is_none()
    );

    let (port, _) = sieve_server("fileinto").await?;
    let mut without = OutOfOfficeCapability::new(
        "test".into(),
        accounts.authenticate(USER, PASSWORD.as_bytes()).await.ok(),
        Some(Arc::new(endpoint(port)?)),
    );
    ensure!(matches!(without.get().await, Err(Error::NotAvailable)));
    Ok(())
}
