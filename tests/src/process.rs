//! Child processes that tests start and must never leave behind.

use anyhow::{Context, bail};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A server process killed on drop, with its output in a log file for failure messages.
pub struct ServerProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `command` with stdout and stderr in `log`, and waits until `address` accepts
    /// connections.
    pub fn start(
        name: &'static str,
        command: &mut Command,
        log: &Path,
        address: SocketAddr,
    ) -> anyhow::Result<ServerProcess> {
        let file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        let mut process = ServerProcess { name, child, log: log.to_path_buf() };
        process.wait_listening(address, Duration::from_secs(30))?;
        Ok(process)
    }

    fn wait_listening(&mut self, address: SocketAddr, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited with {status}; its log:\n{}", self.name, self.log_text());
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{} did not listen on {address} within {limit:?}; its log:\n{}",
            self.name,
            self.log_text()
        )
    }

    /// The process's output so far, for assertion messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl ServerProcess {
    /// SIGKILL, like a crash: nothing gets to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The ports [`free_port`] hands out: below 20,000, where `tests/mailstack.sh` starts picking its
/// own, and so below the kernel's ephemeral range, where any outgoing connection (a gateway's IMAP
/// login, a test client) may take a port between our check and the server's bind: CI once saw a
/// gateway fail with "Address already in use" on a port that `bind(0)` had just called free.
const PORT_RANGE: std::ops::Range<u32> = 10_000..20_000;

/// A loopback port that nobody listens on, outside the ephemeral range.  Threads of one test
/// process walk the range from a per-process random start without ever sharing a port.
pub fn free_port() -> anyhow::Result<u16> {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = PORT_RANGE.end - PORT_RANGE.start;
    let _ =
        NEXT.compare_exchange(u32::MAX, process_seed() % span, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst) % span;
        let port = u16::try_from(PORT_RANGE.start + offset).expect("range below 65536");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port in {PORT_RANGE:?}")
}

/// Differs between test processes, so that two binaries run side by side (a bench beside a test)
/// start in different parts of [`PORT_RANGE`].
fn process_seed() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    std::process::id().wrapping_mul(7919) ^ nanos
}
