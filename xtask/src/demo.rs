//! `cargo xtask demo`: the gateway in front of a local demo mail stack.
//!
//! Everything lives in one state directory per checkout, so `--stop` (and a later `--detach`)
//! find what an earlier run started. With `--detach`, stdout carries only the `KEY=VALUE` lines
//! that operators' scripts read; everything else goes to stderr.

use crate::sys::{self, output};
use anyhow::{Context, bail};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DEMO_USER: &str = "demo@example.test";
const DEMO_DOMAIN: &str = "example.test";
/// Preferred gateway port; a free one is picked when it is taken.
const PREFERRED_PORT: u16 = 8080;

pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let state = state_dir(root);
    match args.first().map(String::as_str) {
        Some("--stop") => stop(root, &state),
        Some("--detach") => {
            let demo = start(root, &state)?;
            demo.print_lines();
            Ok(())
        }
        None => {
            let demo = start(root, &state)?;
            eprintln!("\neas-edge demo is running. Press Ctrl-C to stop it.\n");
            demo.print_lines();
            wait_for_interrupt()?;
            stop(root, &state)
        }
        Some(other) => bail!("unknown demo option {other:?}: use --detach or --stop"),
    }
}

struct Demo {
    eas_url: String,
    password: String,
    imap: String,
    smtp: String,
}

impl Demo {
    fn print_lines(&self) {
        println!("EAS_URL={}", self.eas_url);
        println!("EAS_USER={DEMO_USER}");
        println!("EAS_PASSWORD={}", self.password);
        println!("IMAP={}", self.imap);
        println!("SMTP={}", self.smtp);
    }
}

/// One directory per checkout, short enough for Dovecot's unix socket paths.
fn state_dir(root: &Path) -> PathBuf {
    // FNV-1a: stable across Rust versions, unlike the std hasher.
    let hash = root
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf29ce484222325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
    PathBuf::from(format!("/tmp/eas-edge-demo-{:08x}", hash as u32))
}

fn start(root: &Path, state: &Path) -> anyhow::Result<Demo> {
    let built = crate::build(root)?;
    std::fs::create_dir_all(state)?;
    stop_gateway(state)?;

    let mailstack = root.join("tests/mailstack.sh");
    let mail_dir = state.join("mail");
    sys::run(Command::new(&mailstack).arg("start").arg(&mail_dir).env("PORT_BASE", "auto"))?;
    let password = demo_password(state)?;
    sys::run(Command::new(&mailstack).arg("adduser").arg(&mail_dir).arg(DEMO_USER).arg(&password))?;
    let env = stack_env(&mailstack, &mail_dir)?;
    let imap_port = env_value(&env, "IMAP_PORT")?;
    let smtp_port = env_value(&env, "SMTP_PORT")?;
    let submission_port = env_value(&env, "SUBMISSION_PORT")?;
    seed_once(state, env_value(&env, "DOVECOT_CONF")?)?;

    let port = free_port(PREFERRED_PORT)?;
    let config = state.join("eas-edge.toml");
    std::fs::write(
        &config,
        format!(
            "[listen]\nhttp = \"127.0.0.1:{port}\"\n\n[state]\npath = \"state.redb\"\n\n\
             [[tenant]]\nname = \"demo\"\ndomains = [\"{DEMO_DOMAIN}\"]\nplugin = \"{plugin}\"\n\
             imap = {{ host = \"127.0.0.1\", port = {imap_port} }}\n\
             smtp = {{ host = \"127.0.0.1\", port = {submission_port} }}\n",
            plugin = built.plugins.component.display(),
        ),
    )?;
    start_gateway(&built.host, &config, state)?;
    wait_until_listening(SocketAddr::from(([127, 0, 0, 1], port)), state)?;
    eprintln!("xtask: gateway log: {}", state.join("eas-edge.log").display());
    Ok(Demo {
        eas_url: format!("http://127.0.0.1:{port}/Microsoft-Server-ActiveSync"),
        password,
        imap: format!("127.0.0.1:{imap_port}"),
        smtp: format!("127.0.0.1:{smtp_port}"),
    })
}

fn stop(root: &Path, state: &Path) -> anyhow::Result<()> {
    stop_gateway(state)?;
    let mail_dir = state.join("mail");
    if mail_dir.join("mailstack.env").exists() {
        sys::run(Command::new(root.join("tests/mailstack.sh")).arg("stop").arg(&mail_dir))?;
    }
    eprintln!("xtask: demo stopped");
    Ok(())
}

/// The demo password is made once per state directory and kept, so scripts can reuse it.
fn demo_password(state: &Path) -> anyhow::Result<String> {
    let file = state.join("password");
    if let Ok(password) = std::fs::read_to_string(&file) {
        return Ok(password.trim().to_owned());
    }
    let mut bytes = [0u8; 12];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&file, &password)?;
    Ok(password)
}

fn stack_env(mailstack: &Path, dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    Ok(output(Command::new(mailstack).arg("env").arg(dir))?
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect())
}

fn env_value<'e>(env: &'e [(String, String)], key: &str) -> anyhow::Result<&'e str> {
    env.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .with_context(|| format!("mailstack.sh env printed no {key}"))
}

/// A few messages in the demo INBOX, delivered once per state directory.
fn seed_once(state: &Path, dovecot_conf: &str) -> anyhow::Result<()> {
    let marker = state.join("seeded");
    if marker.exists() {
        return Ok(());
    }
    let messages = [
        ("Welcome to eas-edge", "Your phone now gets this mailbox over Exchange ActiveSync."),
        ("Push works", "Send a mail to this account and watch it arrive on the phone."),
        ("Grüße aus dem Demo-Postfach", "Non-ASCII subjects and bodies come through as UTF-8."),
    ];
    for (index, (subject, body)) in messages.iter().enumerate() {
        let message = format!(
            "From: eas-edge <noreply@{DEMO_DOMAIN}>\r\nTo: {DEMO_USER}\r\n\
             Subject: =?UTF-8?B?{subject}?=\r\nDate: Sat, 28 Nov 2026 12:0{index}:00 +0000\r\n\
             Message-ID: <demo-{index}@{DEMO_DOMAIN}>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
             {body}\r\n",
            subject = base64_encode(subject.as_bytes()),
        );
        let mut save = Command::new("doveadm")
            .args(["-c", dovecot_conf, "save", "-u", DEMO_USER, "-m", "INBOX"])
            .stdin(Stdio::piped())
            .spawn()
            .context("starting doveadm save")?;
        std::io::Write::write_all(
            save.stdin.as_mut().context("doveadm stdin")?,
            message.as_bytes(),
        )?;
        drop(save.stdin.take());
        if !save.wait()?.success() {
            bail!("doveadm save failed for the demo messages");
        }
    }
    std::fs::write(marker, "")?;
    Ok(())
}

/// Standard base64, for the RFC 2047 subject of the demo messages.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| (n << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn free_port(preferred: u16) -> anyhow::Result<u16> {
    if TcpListener::bind(("127.0.0.1", preferred)).is_ok() {
        return Ok(preferred);
    }
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn start_gateway(host: &Path, config: &Path, state: &Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(state.join("eas-edge.log"))?;
    let child = Command::new(host)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: it outlives this command and ignores the terminal's Ctrl-C,
        // which the foreground demo handles by stopping everything itself.
        .process_group(0)
        .spawn()
        .context("starting eas-edge")?;
    std::fs::write(state.join("eas-edge.pid"), child.id().to_string())?;
    Ok(())
}

fn stop_gateway(state: &Path) -> anyhow::Result<()> {
    let pid_file = state.join("eas-edge.pid");
    let Ok(pid) = std::fs::read_to_string(&pid_file) else { return Ok(()) };
    let pid = pid.trim();
    // Only signal it if it still is our gateway (the pid may have been reused).
    let is_gateway = std::fs::read_link(format!("/proc/{pid}/exe"))
        .is_ok_and(|exe| exe.file_name().is_some_and(|name| name == "eas-edge"));
    if is_gateway {
        let _ = Command::new("kill").arg(pid).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::fs::remove_file(pid_file)?;
    Ok(())
}

fn wait_until_listening(address: SocketAddr, state: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(state.join("eas-edge.log")).unwrap_or_default();
    bail!("the gateway did not start listening on {address}; its log:\n{log}")
}

fn wait_for_interrupt() -> anyhow::Result<()> {
    let (sender, receiver) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = sender.send(());
    })
    .context("installing the Ctrl-C handler")?;
    receiver.recv().context("waiting for Ctrl-C")
}
