//! Child processes that tests start and must never leave behind.

use anyhow::{Context, bail};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// A loopback port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
