//! The cluster's messages as NOTIFY payloads: small JSON objects, split so that each stays
//! under PostgreSQL's payload limit (8000 bytes).

use crate::push::{AccountKey, ClusterEvent};
use serde::{Deserialize, Serialize};

/// Below PostgreSQL's 8000-byte NOTIFY payload limit, with room to spare.
const MAX_PAYLOAD: usize = 7000;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "t")]
enum Wire {
    #[serde(rename = "supersede")]
    Supersede { tenant: String, login: String, device: String },
    #[serde(rename = "interest")]
    Interest { tenant: String, login: String, folders: Vec<String>, check: Vec<String> },
    #[serde(rename = "checked")]
    Checked { tenant: String, login: String, tokens: Vec<(String, Option<String>)> },
    #[serde(rename = "watching")]
    Watching { tenant: String, login: String },
}

/// The payloads carrying `event`: one, or several for long folder lists (each a valid event on
/// its own). A single folder name too long for a payload is dropped with a warning (IMAP
/// servers limit names far below that).
pub(super) fn encode(event: &ClusterEvent) -> Vec<String> {
    let mut payloads = Vec::new();
    push_encoded(to_wire(event), &mut payloads);
    payloads
}

fn push_encoded(wire: Wire, payloads: &mut Vec<String>) {
    let Ok(text) = serde_json::to_string(&wire) else { return };
    if text.len() <= MAX_PAYLOAD {
        payloads.push(text);
        return;
    }
    match wire {
        Wire::Interest { tenant, login, mut folders, mut check }
            if folders.len() + check.len() > 1 =>
        {
            let folders_tail = folders.split_off(folders.len() / 2);
            let check_tail = check.split_off(check.len() / 2);
            let head =
                Wire::Interest { tenant: tenant.clone(), login: login.clone(), folders, check };
            push_encoded(head, payloads);
            push_encoded(
                Wire::Interest { tenant, login, folders: folders_tail, check: check_tail },
                payloads,
            );
        }
        Wire::Checked { tenant, login, mut tokens } if tokens.len() > 1 => {
            let tail = tokens.split_off(tokens.len() / 2);
            push_encoded(
                Wire::Checked { tenant: tenant.clone(), login: login.clone(), tokens },
                payloads,
            );
            push_encoded(Wire::Checked { tenant, login, tokens: tail }, payloads);
        }
        _ => tracing::warn!("cluster: a message of {} bytes cannot be sent", text.len()),
    }
}

pub(super) fn decode(payload: &str) -> Option<ClusterEvent> {
    let wire: Wire = serde_json::from_str(payload).ok()?;
    let account = |tenant: &str, login: &str| AccountKey::new(tenant, login);
    Some(match wire {
        Wire::Supersede { tenant, login, device } => {
            ClusterEvent::Supersede { account: account(&tenant, &login), device }
        }
        Wire::Interest { tenant, login, folders, check } => {
            ClusterEvent::Interest { account: account(&tenant, &login), folders, check }
        }
        Wire::Checked { tenant, login, tokens } => {
            ClusterEvent::Checked { account: account(&tenant, &login), tokens }
        }
        Wire::Watching { tenant, login } => {
            ClusterEvent::Watching { account: account(&tenant, &login) }
        }
    })
}

fn to_wire(event: &ClusterEvent) -> Wire {
    let names = |account: &AccountKey| (account.tenant.to_string(), account.login.to_string());
    match event {
        ClusterEvent::Supersede { account, device } => {
            let (tenant, login) = names(account);
            Wire::Supersede { tenant, login, device: device.clone() }
        }
        ClusterEvent::Interest { account, folders, check } => {
            let (tenant, login) = names(account);
            Wire::Interest { tenant, login, folders: folders.clone(), check: check.clone() }
        }
        ClusterEvent::Checked { account, tokens } => {
            let (tenant, login) = names(account);
            Wire::Checked { tenant, login, tokens: tokens.clone() }
        }
        ClusterEvent::Watching { account } => {
            let (tenant, login) = names(account);
            Wire::Watching { tenant, login }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountKey {
        AccountKey::new("t", "tom@example.test")
    }

    #[test]
    fn events_round_trip_including_the_hierarchy_pseudo_folder() {
        let events = [
            ClusterEvent::Supersede { account: account(), device: "dev1".into() },
            ClusterEvent::Interest {
                account: account(),
                folders: vec!["INBOX".into(), "\0hierarchy".into()],
                check: vec!["INBOX".into()],
            },
            ClusterEvent::Checked {
                account: account(),
                tokens: vec![("INBOX".into(), Some("1.2.0.3".into())), ("Old".into(), None)],
            },
            ClusterEvent::Watching { account: account() },
        ];
        for event in events {
            let payloads = encode(&event);
            assert_eq!(payloads.len(), 1);
            assert!(!payloads[0].contains('\0'), "NOTIFY payloads cannot hold NUL");
            assert_eq!(decode(&payloads[0]), Some(event));
        }
        assert_eq!(decode("{\"t\":\"unknown\"}"), None);
    }

    #[test]
    fn long_lists_are_split_into_payloads_that_fit() {
        let folders: Vec<String> = (0..2000).map(|i| format!("Archive/{i:05}")).collect();
        let event = ClusterEvent::Interest {
            account: account(),
            folders: folders.clone(),
            check: folders[..10].to_vec(),
        };
        let payloads = encode(&event);
        assert!(payloads.len() > 1);
        let mut seen = Vec::new();
        for payload in &payloads {
            assert!(payload.len() <= MAX_PAYLOAD);
            match decode(payload) {
                Some(ClusterEvent::Interest { folders, .. }) => seen.extend(folders),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen, folders);
    }
}
