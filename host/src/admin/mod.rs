//! Operating the gateway: the admin listener (`[admin]`: Prometheus `/metrics` and the device
//! API), the `eas-edge devices` and `eas-edge top` commands, and the request-path hook that
//! feeds both ([`observe`]). See docs/operations.md.
//!
//! - `metrics`: counters and histograms, and the text exposition;
//! - `activity`: when each device was last seen (memory, and the store every few minutes);
//! - `devices`: list / show / wipe / block / reset against the state store, with the engine's
//!   own record types;
//! - `api`: the admin listener's routes;
//! - `cli`: the commands, through the running server's admin API or on the store directly.

pub mod activity;
pub mod api;
pub mod cli;
pub mod devices;
pub mod metrics;

use crate::runtime::{PluginFault, PluginResponse};
use crate::tenants::TenantRuntime;
use http::{Method, Uri};
use std::time::Duration;

/// The request path's one hook, called with the answer to a phone's request (`server.rs`):
/// counts it by tenant, EAS command and status, with its time (the plugin's work and any parked
/// wait; the login check before it is not included), counts plugin faults, and notes when the
/// device was seen. A function called after the answer rather than a wrapper around its future:
/// a future passed into another one takes its room twice in the caller's state, and this one is
/// alive for as long as a phone's request is parked.
pub fn observe(
    tenant: &TenantRuntime,
    user: Option<&str>,
    method: &Method,
    uri: &Uri,
    result: &Result<PluginResponse, PluginFault>,
    elapsed: Duration,
) {
    let status = match result {
        Ok(response) => response.status.as_u16(),
        Err(fault) => {
            metrics::global().plugin_fault(&tenant.config.name, fault);
            fault.http_status()
        }
    };
    record(tenant, user, method, uri, status, elapsed);
}

fn record(
    tenant: &TenantRuntime,
    user: Option<&str>,
    method: &Method,
    uri: &Uri,
    status: u16,
    elapsed: Duration,
) {
    let query = uri.query().and_then(|query| eas_engine::ashttp::parse_query(query).ok());
    let command = command_name(query.as_ref(), method, uri);
    metrics::global().request(&tenant.config.name, command, status, elapsed);
    if let (Some(user), Some(query)) = (user, query) {
        let key = activity::DeviceKey {
            tenant: tenant.config.name.clone(),
            user: user.to_owned(),
            device: query.device_id.as_str().to_owned(),
        };
        let seen = activity::LastSeen {
            at: activity::now_unix(),
            command: command.to_owned(),
            device_type: query.device_type.as_str().to_owned(),
            status,
        };
        activity::record(&tenant.plugin.store, key, seen);
    }
}

/// Counts a request the host answered without the plugin (a refused or throttled login, 503
/// for an unreachable IMAP server, a refused body, the browser test page), under `tenant`
/// ("-" when none was chosen yet) like the plugin's answers.
pub fn record_host_answer(
    tenant: &str,
    method: &Method,
    uri: &Uri,
    status: u16,
    elapsed: Duration,
) {
    let query = uri.query().and_then(|query| eas_engine::ashttp::parse_query(query).ok());
    metrics::global().request(tenant, command_name(query.as_ref(), method, uri), status, elapsed);
}

/// The `command` label: the EAS command, else what kind of request it was.
fn command_name(
    query: Option<&eas_engine::ashttp::ParsedQuery>,
    method: &Method,
    uri: &Uri,
) -> &'static str {
    match query {
        Some(query) => query.command.name(),
        None if method == Method::OPTIONS => "Options",
        None if uri.path().to_ascii_lowercase().starts_with("/autodiscover") => "Autodiscover",
        None => "other",
    }
}

/// Decodes `%XX` (and `+` as space, as in form-encoded queries); `None` for broken escapes or
/// text that is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                index += 3;
            }
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            other => {
                out.push(other);
                index += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Writes every byte but unreserved ones (RFC 3986) as `%XX`: safe in a query value.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_coding_round_trips() {
        for text in ["a@b.example", "odd & = % + é", ""] {
            assert_eq!(percent_decode(&percent_encode(text)).as_deref(), Some(text));
        }
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
