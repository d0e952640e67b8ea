//! What the benchmarks read from the kernel: a process's resident memory and CPU time, TCP
//! connections to a port, and the inotify instance limit Dovecot's IDLE/NOTIFY depend on.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// `VmRSS` of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    status_field(pid, "VmRSS:")
}

/// `Threads` of `pid`.
pub fn threads(pid: u32) -> Result<u64> {
    status_field(pid, "Threads:")
}

fn status_field(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Open file descriptors of `pid`.
pub fn open_fds(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("listing /proc/{pid}/fd"))?
        .count())
}

/// User + system CPU time of `pid` in clock ticks (USER_HZ, 100 per second on Linux).
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // the command name may contain spaces: fields are counted after its closing parenthesis
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // after ")": state is field 3 of stat(5), so utime (14) and stime (15) are at 11 and 12
    let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).context("no utime")?;
    let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).context("no stime")?;
    Ok(utime + stime)
}

/// Waits until `pid` used at most `max_ticks` of CPU per second for `quiet_seconds` seconds in
/// a row (it has finished what it was asked to do), or `limit` passed; returns the time taken.
pub fn wait_quiet(
    pid: u32,
    max_ticks: u64,
    quiet_seconds: u32,
    limit: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    let mut quiet = 0;
    let mut last = cpu_ticks(pid)?;
    while quiet < quiet_seconds && started.elapsed() < limit {
        std::thread::sleep(Duration::from_secs(1));
        let now = cpu_ticks(pid)?;
        quiet = if now - last <= max_ticks { quiet + 1 } else { 0 };
        last = now;
    }
    Ok(started.elapsed())
}

/// Established TCP connections (IPv4, whole machine) whose remote end is `port`: with a server
/// on that port, the connections clients hold to it.
pub fn connections_to(port: u16) -> Result<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp").context("reading /proc/net/tcp")?;
    let wanted = format!(":{port:04X}");
    Ok(table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // rem_address is field 2 (hex ip:port), st is field 3 (01 = ESTABLISHED)
            fields.len() > 3 && fields[2].ends_with(&wanted) && fields[3] == "01"
        })
        .count())
}

/// Dovecot needs one inotify instance per IDLE/NOTIFY connection (per imap process with
/// `client_limit` > 1); beyond the kernel's per-user limit (128 by default) it silently falls
/// back to polling every 30 s. Raises `fs.inotify.max_user_instances` to `at_least` when it is
/// lower (root only) and returns the (old, new) values.
pub fn raise_inotify_instances(at_least: u64) -> Result<(u64, u64)> {
    const PATH: &str = "/proc/sys/fs/inotify/max_user_instances";
    let old: u64 = std::fs::read_to_string(PATH)
        .context("reading fs.inotify.max_user_instances")?
        .trim()
        .parse()
        .context("parsing fs.inotify.max_user_instances")?;
    if old >= at_least {
        return Ok((old, old));
    }
    std::fs::write(PATH, at_least.to_string())
        .context("raising fs.inotify.max_user_instances (needs root)")?;
    Ok((old, at_least))
}
