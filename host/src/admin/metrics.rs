//! Counters and histograms of the request path, and their Prometheus text exposition
//! (format 0.0.4, written by hand: a few metric families do not need a crate).
//!
//! The counters are process-wide (one [`Metrics`] behind [`global`]) so that the places that
//! count (the request path, the plugin runtime, the login check) need no handle passed down;
//! gauges (parked requests, watchers, IMAP pools) are read from their owners when scraped.

use crate::runtime::PluginFault;
// only counting happens under these locks: a panic there leaves usable numbers
use crate::unpoisoned::lock;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// Upper bounds (seconds) of the latency buckets: milliseconds for ordinary commands up to
/// the hour a Ping or Sync with Wait may be parked.
const BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// What the login check did instead of asking IMAP straight away, or what IMAP said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LoginEvent {
    /// IMAP refused the password.
    Failed,
    /// Recent failures: the check waited before asking IMAP.
    Delayed,
    /// Too many failures: refused without asking IMAP.
    Refused,
}

impl LoginEvent {
    fn label(self) -> &'static str {
        match self {
            LoginEvent::Failed => "failed",
            LoginEvent::Delayed => "delayed",
            LoginEvent::Refused => "refused",
        }
    }
}

#[derive(Default)]
struct Histogram {
    /// Cumulative counts are computed when rendering; these are per bucket (+Inf last).
    buckets: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let index = BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(BUCKETS.len());
        self.buckets[index] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// (tenant, command) of a request.
type CommandKey = (String, &'static str);

#[derive(Default)]
pub struct Metrics {
    /// (tenant, command, HTTP status) → requests.
    requests: Mutex<BTreeMap<(String, &'static str, u16), u64>>,
    latency: Mutex<BTreeMap<CommandKey, Histogram>>,
    /// (tenant, kind) → plugin calls that ended without an answer.
    plugin_faults: Mutex<BTreeMap<(String, &'static str), u64>>,
    login_events: Mutex<BTreeMap<LoginEvent, u64>>,
    /// Device records written by `eas-edge devices` through the admin API.
    admin_actions: AtomicU64,
    /// Phone connections closed at once: their address was over `[connections]`'s cap.
    connections_refused: AtomicU64,
}

impl Metrics {
    pub fn request(&self, tenant: &str, command: &'static str, status: u16, elapsed: Duration) {
        *lock(&self.requests).entry((tenant.to_owned(), command, status)).or_default() += 1;
        lock(&self.latency)
            .entry((tenant.to_owned(), command))
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    pub fn plugin_fault(&self, tenant: &str, fault: &PluginFault) {
        let kind = match fault {
            PluginFault::Busy(_) => "busy",
            PluginFault::Deadline => "deadline",
            PluginFault::Trap(_) => "trap",
            PluginFault::State(_) => "state",
        };
        *lock(&self.plugin_faults).entry((tenant.to_owned(), kind)).or_default() += 1;
    }

    pub fn login(&self, event: LoginEvent) {
        *lock(&self.login_events).entry(event).or_default() += 1;
    }

    /// Counts what the login throttle decided, when it did more than let the login through.
    pub fn login_verdict(&self, verdict: &crate::auth::throttle::Verdict) {
        use crate::auth::throttle::Verdict;
        match verdict {
            Verdict::Proceed => {}
            Verdict::Delay(_) => self.login(LoginEvent::Delayed),
            Verdict::Refuse { .. } => self.login(LoginEvent::Refused),
        }
    }

    pub fn admin_action(&self) {
        self.admin_actions.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the counters and histograms in the text exposition format.
    pub fn render(&self, out: &mut String) {
        family(
            out,
            "eas_edge_requests_total",
            "counter",
            "Requests answered, by tenant, EAS command and HTTP status.",
        );
        for ((tenant, command, status), count) in lock(&self.requests).iter() {
            let labels = labels(&[
                ("tenant", tenant),
                ("command", command),
                ("status", &status.to_string()),
            ]);
            let _ = writeln!(out, "eas_edge_requests_total{labels} {count}");
        }
        family(
            out,
            "eas_edge_request_duration_seconds",
            "histogram",
            "Time from request to answer, by tenant and EAS command (a parked Ping or Sync counts its wait).",
        );
        for ((tenant, command), histogram) in lock(&self.latency).iter() {
            let mut cumulative = 0;
            for (index, count) in histogram.buckets.iter().enumerate() {
                cumulative += count;
                let bound = BUCKETS.get(index).map_or_else(|| "+Inf".to_owned(), f64::to_string);
                let labels = labels(&[("tenant", tenant), ("command", command), ("le", &bound)]);
                let _ =
                    writeln!(out, "eas_edge_request_duration_seconds_bucket{labels} {cumulative}");
            }
            let labels = labels(&[("tenant", tenant), ("command", command)]);
            let _ =
                writeln!(out, "eas_edge_request_duration_seconds_sum{labels} {}", histogram.sum);
            let _ = writeln!(
                out,
                "eas_edge_request_duration_seconds_count{labels} {}",
                histogram.count
            );
        }
        family(
            out,
            "eas_edge_plugin_faults_total",
            "counter",
            "Plugin calls that ended without an answer: trap, deadline (CPU time), busy (no instance), state (writes not durable).",
        );
        for ((tenant, kind), count) in lock(&self.plugin_faults).iter() {
            let labels = labels(&[("tenant", tenant), ("kind", kind)]);
            let _ = writeln!(out, "eas_edge_plugin_faults_total{labels} {count}");
        }
        family(
            out,
            "eas_edge_login_events_total",
            "counter",
            "Login throttling: passwords IMAP refused (failed), checks delayed after failures (delayed), logins refused without asking IMAP (refused).",
        );
        let events = lock(&self.login_events);
        for event in [LoginEvent::Failed, LoginEvent::Delayed, LoginEvent::Refused] {
            let count = events.get(&event).copied().unwrap_or(0);
            let _ =
                writeln!(out, "eas_edge_login_events_total{{event=\"{}\"}} {count}", event.label());
        }
        unlabelled_counter(
            out,
            "eas_edge_admin_actions_total",
            "Device records changed through the admin API (wipe, block, reset, ...).",
            self.admin_actions.load(Ordering::Relaxed),
        );
        unlabelled_counter(
            out,
            "eas_edge_connections_refused_total",
            "Phone connections closed as soon as accepted: their address held [connections] max_per_address already.",
            self.connections_refused.load(Ordering::Relaxed),
        );
    }
}

/// A counter family of one sample without labels.
fn unlabelled_counter(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);
    &METRICS
}

/// `# HELP` and `# TYPE` lines of a metric family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `{a="x",b="y"}` with the values escaped as the format asks (backslash, quote, newline).
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = write!(out, "{name}=\"{escaped}\"");
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_end_with_inf() {
        let metrics = Metrics::default();
        metrics.request("t", "Ping", 200, Duration::from_millis(3));
        metrics.request("t", "Ping", 200, Duration::from_secs(100));
        metrics.request("t", "Ping", 200, Duration::from_secs(7200));
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(
            out.contains("eas_edge_requests_total{tenant=\"t\",command=\"Ping\",status=\"200\"} 3")
        );
        assert!(out.contains(
            "eas_edge_request_duration_seconds_bucket{tenant=\"t\",command=\"Ping\",le=\"0.005\"} 1"
        ));
        assert!(out.contains(
            "eas_edge_request_duration_seconds_bucket{tenant=\"t\",command=\"Ping\",le=\"300\"} 2"
        ));
        assert!(out.contains(
            "eas_edge_request_duration_seconds_bucket{tenant=\"t\",command=\"Ping\",le=\"+Inf\"} 3"
        ));
        assert!(
            out.contains(
                "eas_edge_request_duration_seconds_count{tenant=\"t\",command=\"Ping\"} 3"
            )
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&[("a", "x\"y\\z\n")]), "{a=\"x\\\"y\\\\z\\n\"}");
    }
}
