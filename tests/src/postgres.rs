//! A throwaway PostgreSQL server for one test, from the Debian `postgresql` package.
//!
//! Each [`Postgres`] gets its own temp directory (`initdb`), listens on a free loopback port and
//! on a Unix socket in that directory, and is stopped on drop (fast shutdown, then SIGKILL),
//! also when the test panics. PostgreSQL refuses to run as root, so when we are root the server
//! runs as the package's `postgres` user and the directory is handed to it.
//!
//! `fsync` stays on: the state store's durability design (one WAL flush per request) is part of
//! what the tests and benchmarks exercise.

use anyhow::{Context, Result, bail};
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::process::free_port;

/// The database every test uses; created by `initdb` as the bootstrap database.
pub const DATABASE: &str = "postgres";
/// The superuser `initdb` creates; local connections are trusted, so no password.
pub const USER: &str = "postgres";

pub struct Postgres {
    root: PathBuf,
    address: SocketAddr,
    child: Child,
    bin: PathBuf,
}

impl Postgres {
    /// Initialises and starts a fresh cluster; returns once it accepts connections.
    pub fn start() -> Result<Postgres> {
        let bin = find_bin_dir()?;
        let root = make_temp_root()?;
        let run_as = if is_root()? { Some(postgres_ids()?) } else { None };
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&root, Some(uid), Some(gid))
                .with_context(|| format!("chown {}", root.display()))?;
        }
        let data = root.join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
            .stdin(Stdio::null());
        as_user(&mut initdb, run_as);
        let output = initdb.output().context("running initdb")?;
        if !output.status.success() {
            let _ = fs::remove_dir_all(&root);
            bail!(
                "initdb failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }

        let port = free_port()?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let log = root.join("postgres.log");
        let log_file =
            fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&log, Some(uid), Some(gid))?;
        }
        let mut server = Command::new(bin.join("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", root.display()))
            // room for two gateways' pools, their LISTEN connections and the test's own
            .args(["-c", "max_connections=200", "-c", "shared_buffers=32MB"])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        as_user(&mut server, run_as);
        let child = server.spawn().context("starting postgres")?;
        let mut postgres = Postgres { root, address, child, bin };
        postgres.wait_ready(Duration::from_secs(60))?;
        Ok(postgres)
    }

    /// The TCP address (loopback).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A libpq-style connection URL for [`DATABASE`] as [`USER`].
    pub fn url(&self) -> String {
        format!("postgresql://{USER}@{}/{DATABASE}", self.address)
    }

    /// Creates a new, empty database and returns its URL: tests sharing one server stay
    /// independent.
    pub fn create_database(&self, name: &str) -> Result<String> {
        self.psql(&format!("CREATE DATABASE \"{name}\""))?;
        Ok(format!("postgresql://{USER}@{}/{name}", self.address))
    }

    /// Runs one SQL command with `psql` and returns its unaligned output.
    pub fn psql(&self, sql: &str) -> Result<String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.address.ip().to_string())
            .args(["-p", &self.address.port().to_string(), "-U", USER, "-d", DATABASE, "-c", sql])
            .stdin(Stdio::null())
            .output()
            .context("running psql")?;
        if !output.status.success() {
            bail!("psql {sql:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The server's log so far, for failure messages.
    pub fn log_text(&self) -> String {
        fs::read_to_string(self.root.join("postgres.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("postgres exited with {status}; its log:\n{}", self.log_text());
            }
            // Accepting TCP is not enough (it refuses logins while starting up): ask it.
            if TcpStream::connect_timeout(&self.address, Duration::from_millis(200)).is_ok()
                && self.psql("SELECT 1").is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("postgres did not start within {limit:?}; its log:\n{}", self.log_text())
    }

    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGINT is PostgreSQL's fast shutdown: ends sessions, writes a checkpoint.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("postgres: log kept in {}/postgres.log", self.root.display());
        } else if let Err(error) = fs::remove_dir_all(&self.root) {
            eprintln!("postgres: removing {}: {error}", self.root.display());
        }
    }
}

fn as_user(command: &mut Command, run_as: Option<(u32, u32)>) {
    if let Some((uid, gid)) = run_as {
        command.uid(uid).gid(gid).env("HOME", "/tmp");
    }
}

/// The server binaries: `EAS_EDGE_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`
/// (Debian keeps them off `PATH`).
fn find_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("EAS_EDGE_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let base = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(base)
        .with_context(|| {
            format!("{} not found: install the Debian package `postgresql`", base.display())
        })?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!("no PostgreSQL server under {}", base.display()),
    }
}

fn is_root() -> Result<bool> {
    Ok(command_output(Command::new("id").arg("-u"))? == "0")
}

fn postgres_ids() -> Result<(u32, u32)> {
    let uid = command_output(Command::new("id").args(["-u", "postgres"]))?;
    let gid = command_output(Command::new("id").args(["-g", "postgres"]))?;
    Ok((uid.parse().context("uid of postgres")?, gid.parse().context("gid of postgres")?))
}

fn command_output(command: &mut Command) -> Result<String> {
    let output = command.stdin(Stdio::null()).output().with_context(|| format!("{command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn make_temp_root() -> Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos =
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or_default();
    let base = std::env::temp_dir();
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let root = base.join(format!("postgres-{}-{n}-{nanos:x}", std::process::id()));
        match fs::create_dir(&root) {
            Ok(()) => {
                // initdb insists on owning its directory; the parent must be traversable
                fs::set_permissions(&root, fs::Permissions::from_mode(0o700))
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
