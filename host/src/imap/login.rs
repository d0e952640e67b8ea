//! Checking a user's credentials with an IMAP LOGIN: the gateway keeps no passwords of its own.

use super::wire::{Argument, argument, read_line};
use anyhow::{Context, bail};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Time allowed for the whole check; a slow server must not hold the phone's request forever.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    Accepted,
    /// The server said NO: wrong user or password.
    Rejected,
}

/// Logs in and out again. `Err` means the server could not be asked (down, broken, timed out),
/// which is not the same as a wrong password.
pub async fn check_login(
    host: &str,
    port: u16,
    user: &str,
    password: &[u8],
) -> anyhow::Result<LoginOutcome> {
    tokio::time::timeout(LOGIN_TIMEOUT, login_session(host, port, user, password))
        .await
        .with_context(|| format!("IMAP {host}:{port} did not answer within {LOGIN_TIMEOUT:?}"))?
}

async fn login_session(
    host: &str,
    port: u16,
    user: &str,
    password: &[u8],
) -> anyhow::Result<LoginOutcome> {
    let stream = TcpStream::connect((host, port))
        .await
        .with_context(|| format!("connecting to IMAP {host}:{port}"))?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let greeting = read_line(&mut reader).await.context("reading the IMAP greeting")?;
    if !greeting.starts_with(b"* OK") {
        bail!("unexpected IMAP greeting: {}", String::from_utf8_lossy(&greeting));
    }

    let mut command = b"L1 LOGIN ".to_vec();
    for (index, value) in [user.as_bytes(), password].into_iter().enumerate() {
        if index > 0 {
            command.push(b' ');
        }
        match argument(value) {
            Argument::Quoted(quoted) => command.extend_from_slice(quoted.as_bytes()),
            Argument::Literal(bytes) => {
                command.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
                writer.write_all(&command).await?;
                command.clear();
                let continuation = read_line(&mut reader).await?;
                if !continuation.starts_with(b"+") {
                    // The server refused the literal, e.g. a NO for a bad user name.
                    return Ok(LoginOutcome::Rejected);
                }
                command.extend_from_slice(bytes);
            }
        }
    }
    command.extend_from_slice(b"\r\n");
    writer.write_all(&command).await?;

    let outcome = loop {
        let line = read_line(&mut reader).await.context("reading the LOGIN answer")?;
        if let Some(status) = line.strip_prefix(b"L1 ") {
            break if status.starts_with(b"OK") {
                LoginOutcome::Accepted
            } else if status.starts_with(b"NO") {
                LoginOutcome::Rejected
            } else {
                bail!("IMAP LOGIN failed: {}", String::from_utf8_lossy(&line));
            };
        }
    };
    // Best effort: the answer is known already.
    let _ = writer.write_all(b"L2 LOGOUT\r\n").await;
    Ok(outcome)
}
