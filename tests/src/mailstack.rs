//! A private Dovecot + Postfix stack for one test, run by `tests/mailstack.sh`.
//!
//! Each [`MailStack`] lives in its own temp directory on ports the script picks
//! (`PORT_BASE=auto`), so tests run in parallel.  It is stopped on drop, also when the test
//! panics; and the script's watchdog (`MAILSTACK_OWNER_PID`) stops it if this process dies
//! without unwinding.  Package installation on first use is serialised by the script itself.

use std::collections::HashMap;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::imap::ImapClient;

/// The script's settings that it would take from our environment: cleared so that a variable
/// like `DEBUG` or `IMAP_PORT` set for something else cannot change the stack.
const SCRIPT_SETTINGS: &[&str] = &[
    "PORT_BASE",
    "IMAP_PORT",
    "IMAPS_PORT",
    "SMTP_PORT",
    "SUBMISSION_PORT",
    "SMTPS_PORT",
    "LMTP_PORT",
    "SIEVE_PORT",
    "SIEVE_EXTENSIONS",
    "AUTH_FAILURE_DELAY",
    "MAIL_FORMAT",
    "MAIL_FSYNC",
    "MAX_USERIP_CONN",
    "IMAP_PROCESS_LIMIT",
    "IMAP_CLIENT_LIMIT",
    "HIBERNATE_TIMEOUT",
    "EXTERNAL_TRANSPORT",
    "MAIL_HOSTNAME",
    "PASS_SCHEME",
    "MAIL_USER",
    "DEBUG",
];

#[derive(Debug)]
pub struct MailStack {
    /// Our temp directory; the stack lives in `root/stack`.
    root: PathBuf,
    dir: PathBuf,
    settings: HashMap<String, String>,
    host: IpAddr,
    running: bool,
}

impl MailStack {
    /// Starts a fresh stack in a new temp directory (installs the packages on first use).
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// Like [`start`](Self::start), with some of the script's settings (see the header of
    /// `tests/mailstack.sh`, e.g. `("HIBERNATE_TIMEOUT", "2s")`, `("IMAP_PROCESS_LIMIT", "4000")`)
    /// instead of its defaults; benchmarks use it to size Dovecot for thousands of connections.
    pub fn start_with(settings: &[(&str, &str)]) -> Result<Self> {
        if let Some((name, _)) = settings.iter().find(|(name, _)| !SCRIPT_SETTINGS.contains(name)) {
            bail!("{name} is not a mailstack.sh setting");
        }
        let root = make_temp_root()?;
        let dir = root.join("stack");
        let mut stack = Self {
            root,
            dir,
            settings: HashMap::new(),
            host: IpAddr::from([127, 0, 0, 1]),
            running: true,
        };
        // from here on, Drop cleans up whatever part of the start succeeded
        stack.script_with("start", &[], settings).context("starting the mail stack")?;
        let env = stack.script("env", &[])?;
        stack.settings = parse_env(&String::from_utf8_lossy(&env.stdout));
        stack.host = stack.setting("HOST")?.parse().context("mailstack.sh env: bad HOST")?;
        Ok(stack)
    }

    /// The stack's directory: configs, logs (`log/`), mail, Postfix queue.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A value printed by `mailstack.sh env` (e.g. `DOVECOT_CONF`, `LOG_DIR`, `MAIL_HOSTNAME`).
    pub fn setting(&self, key: &str) -> Result<&str> {
        self.settings
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("mailstack.sh env printed no {key}"))
    }

    pub fn imap_addr(&self) -> Result<SocketAddr> {
        self.addr("IMAP_PORT")
    }

    /// IMAP over TLS, with the self-signed certificate at [`tls_cert`](Self::tls_cert).
    pub fn imaps_addr(&self) -> Result<SocketAddr> {
        self.addr("IMAPS_PORT")
    }

    /// SMTP: loopback clients may send to the stack's users without AUTH.
    pub fn smtp_addr(&self) -> Result<SocketAddr> {
        self.addr("SMTP_PORT")
    }

    /// Submission: requires AUTH (PLAIN is allowed without TLS).
    pub fn submission_addr(&self) -> Result<SocketAddr> {
        self.addr("SUBMISSION_PORT")
    }

    /// ManageSieve (RFC 5804, Dovecot Pigeonhole); LMTP delivery runs the active script.
    pub fn sieve_addr(&self) -> Result<SocketAddr> {
        self.addr("SIEVE_PORT")
    }

    pub fn tls_cert(&self) -> Result<PathBuf> {
        self.setting("TLS_CERT").map(PathBuf::from)
    }

    fn addr(&self, key: &str) -> Result<SocketAddr> {
        let port =
            self.setting(key)?.parse().with_context(|| format!("mailstack.sh env: bad {key}"))?;
        Ok(SocketAddr::new(self.host, port))
    }

    /// Creates the user (`local@domain`) or changes its password; usable at once.
    pub fn add_user(&self, user: &str, password: &str) -> Result<()> {
        self.script("adduser", &[user, password])
            .with_context(|| format!("adding mail user {user}"))
            .map(drop)
    }

    /// Creates many users in one call of the script (each one call of [`add_user`](Self::add_user)
    /// would re-render the Postfix maps every time).
    pub fn add_users(&self, users: &[(String, String)]) -> Result<()> {
        let args: Vec<&str> =
            users.iter().flat_map(|(user, password)| [user.as_str(), password.as_str()]).collect();
        if args.is_empty() {
            return Ok(());
        }
        self.script("adduser", &args)
            .with_context(|| format!("adding {} mail users", users.len()))
            .map(drop)
    }

    /// A new IMAP connection, logged in as `user`.
    pub fn imap_login(&self, user: &str, password: &str) -> Result<ImapClient> {
        let mut client = ImapClient::connect(self.imap_addr()?)?;
        client.login(user, password)?;
        Ok(client)
    }

    /// Stops and restarts Dovecot only (same ports): IMAP connections drop, mail stays.
    pub fn imap_restart(&self) -> Result<()> {
        self.script("imap-restart", &[]).context("restarting Dovecot").map(drop)
    }

    /// Stops the daemons; called by Drop, so calling it is only needed to see its error.
    pub fn stop(&mut self) -> Result<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        self.script("stop", &[]).context("stopping the mail stack").map(drop)
    }

    fn script(&self, command: &str, args: &[&str]) -> Result<Output> {
        self.script_with(command, args, &[])
    }

    fn script_with(
        &self,
        command: &str,
        args: &[&str],
        settings: &[(&str, &str)],
    ) -> Result<Output> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("mailstack.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg(command).arg(&self.dir).args(args);
        for setting in SCRIPT_SETTINGS {
            cmd.env_remove(setting);
        }
        cmd.env("PORT_BASE", "auto")
            .env("MAILSTACK_OWNER_PID", std::process::id().to_string())
            .envs(settings.iter().copied())
            .stdin(Stdio::null());
        let output =
            cmd.output().with_context(|| format!("running {} {command}", script.display()))?;
        if !output.status.success() {
            bail!(
                "mailstack.sh {command} failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        // The script's notes on the machine (it raised fs.inotify.max_user_instances, or could
        // not) change what push tests and benchmarks measure: show them.
        for line in String::from_utf8_lossy(&output.stderr).lines() {
            if line.contains("inotify") {
                eprintln!("{line}");
            }
        }
        Ok(output)
    }
}

impl Drop for MailStack {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!("mailstack: {error:#}");
        }
        // keep the logs of a failed test; a passing one leaves nothing behind
        if std::thread::panicking() {
            eprintln!("mailstack: logs kept in {}/log", self.dir.display());
        } else if let Err(error) = fs::remove_dir_all(&self.root) {
            eprintln!("mailstack: removing {}: {error}", self.root.display());
        }
    }
}

/// A new directory under the system temp dir, searchable by the daemons' users (0711).
fn make_temp_root() -> Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos =
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or_default();
    let base = std::env::temp_dir();
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let root = base.join(format!("mailstack-{}-{n}-{nanos:x}", std::process::id()));
        match fs::create_dir(&root) {
            Ok(()) => {
                fs::set_permissions(&root, fs::Permissions::from_mode(0o711))
                    .with_context(|| format!("chmod {}", root.display()))?;
                return Ok(root);
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => {
                return Err(error).with_context(|| format!("creating {}", root.display()));
            }
        }
    }
    bail!("could not create a temp directory in {}", base.display())
}

/// `KEY=VALUE` lines; the value is the rest of the line, unquoted.
fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_keep_spaces_and_equals_signs() {
        let env = parse_env("IMAP_PORT=20000\nEXTERNAL_TRANSPORT=discard:a b=c\nnoise\n");
        assert_eq!(env.get("IMAP_PORT").map(String::as_str), Some("20000"));
        assert_eq!(env.get("EXTERNAL_TRANSPORT").map(String::as_str), Some("discard:a b=c"));
        assert_eq!(env.len(), 2);
    }
}
