//! Ping (MS-ASCMD §2.2.1.13, §3.1.5.8; EAS-NOTES §4.6): "tell me when these folders change".
//!
//! The engine never waits. It compares each folder's current state token with the one the
//! device last synced to; if any moved it answers Status 2 at once, else it answers with a
//! [`Hold`] and the host parks the request until a token moves (then calls again, flagged with
//! the wake header) or the heartbeat expires (then sends the Status 1 answer inside the hold).

mod request;
#[cfg(test)]
mod tests;

use crate::capabilities::{Capabilities, Level};
use crate::folders::{self, hierarchy};
use crate::http::Response;
use crate::mailbox::MailboxError;
use crate::push::{HIERARCHY, Hold, folder_token, hierarchy_token};
use crate::sync;
use eas_wbxml::tags::ping;
use eas_wbxml::{Document, Element};
use request::{PingBody, PingSet};

/// Ping Status values (MS-ASCMD §2.2.3.177.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    NoChanges = 1,
    Changes = 2,
    MissingParameters = 3,
    SyntaxError = 4,
    HeartbeatOutOfRange = 5,
    TooManyFolders = 6,
    HierarchyChanged = 7,
    ServerError = 8,
}

/// Answers one Ping: a final answer, or a hold for the host to park.
pub async fn run(caps: &impl Capabilities, device: &str, body: Option<&Element>) -> Response {
    let parsed = match body.map(PingBody::parse).transpose() {
        Ok(parsed) => parsed.unwrap_or_default(),
        Err(error) => {
            caps.log(Level::Info, &format!("device {device}: Ping refused: {}", error.0));
            return answer(Status::SyntaxError, None);
        }
    };
    let cached = match request::cached(caps, device).await {
        Ok(cached) => cached,
        Err(error) => {
            caps.log(Level::Error, &format!("reading the cached Ping of {device}: {error}"));
            return answer(Status::ServerError, None);
        }
    };
    let asked_for_something = parsed != PingBody::default();
    let Some(set) = parsed.complete(cached.as_ref()) else {
        return answer(Status::MissingParameters, None);
    };

    let settings = caps.settings();
    let (min, max) = (settings.heartbeat_min_seconds, settings.heartbeat_max_seconds.max(1));
    if set.heartbeat_seconds < min || set.heartbeat_seconds > max {
        let nearest = set.heartbeat_seconds.clamp(min.min(max), max);
        return answer(
            Status::HeartbeatOutOfRange,
            Some(Element::with_text(ping::HEARTBEAT_INTERVAL, nearest.to_string())),
        );
    }
    if set.folders.len() > settings.max_ping_folders as usize {
        return answer(
            Status::TooManyFolders,
            Some(Element::with_text(ping::MAX_FOLDERS, settings.max_ping_folders.to_string())),
        );
    }
    if asked_for_something
        && cached.as_ref() != Some(&set)
        && let Err(error) = request::remember(caps, device, &set).await
    {
        caps.log(Level::Error, &format!("caching the Ping of {device}: {error}"));
        return answer(Status::ServerError, None);
    }

    // A folder created, deleted or renamed since the device's last FolderSync: Status 7, at
    // once or (through the hierarchy watch in the hold) while parked.
    let hierarchy = match hierarchy::compare_with_device(caps, device).await {
        Ok((true, _)) => {
            caps.log(Level::Info, &format!("device {device}: Ping: hierarchy changed"));
            return answer(Status::HierarchyChanged, None);
        }
        Ok((false, map)) => {
            hierarchy_token(map.entries().iter().map(|entry| entry.imap_name.as_str()))
        }
        Err(error) => {
            caps.log(Level::Warn, &format!("Ping of {device}: {error}"));
            return answer(Status::ServerError, None);
        }
    };

    match evaluate(caps, device, &set).await {
        Ok(Evaluation::Changed(folders)) => {
            let list = Element::with_children(
                ping::FOLDERS,
                folders.into_iter().map(|id| Element::with_text(ping::FOLDER, id)).collect(),
            );
            answer(Status::Changes, Some(list))
        }
        Ok(Evaluation::Unchanged(mut watched)) => Hold {
            folders: {
                watched.push((HIERARCHY.to_owned(), hierarchy));
                watched
            },
            timeout_seconds: set.heartbeat_seconds,
            on_timeout: answer(Status::NoChanges, None),
        }
        .into_response(),
        Err(status) => answer(status, None),
    }
}

enum Evaluation {
    /// ServerIds of the folders with something new for this device.
    Changed(Vec<String>),
    /// Nothing new: (IMAP name, current token) of every watched folder.
    Unchanged(Vec<(String, String)>),
}

async fn evaluate(
    caps: &impl Capabilities,
    device: &str,
    set: &PingSet,
) -> Result<Evaluation, Status> {
    let mut entries = Vec::with_capacity(set.folders.len());
    for id in &set.folders {
        match folders::resolve(caps, id).await {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => {
                caps.log(Level::Info, &format!("device {device} pings unknown folder {id}"));
                return Err(Status::HierarchyChanged);
            }
            Err(error) => {
                caps.log(Level::Warn, &format!("Ping of {device}: {error}"));
                return Err(Status::ServerError);
            }
        }
    }
    let names: Vec<String> = entries.iter().map(|entry| entry.imap_name.clone()).collect();
    let statuses = caps.folder_status(&names).await.map_err(|error| {
        caps.log(Level::Warn, &format!("Ping of {device}: {error}"));
        Status::ServerError
    })?;
    let mut changed = Vec::new();
    let mut watched = Vec::with_capacity(entries.len());
    for (entry, status) in entries.iter().zip(statuses) {
        let status = match status {
            Ok(status) => status,
            Err(MailboxError::NoSuchFolder(_)) => return Err(Status::HierarchyChanged),
            Err(error) => {
                caps.log(Level::Warn, &format!("Ping of {device}: {error}"));
                return Err(Status::ServerError);
            }
        };
        let watch = sync::watch_state(caps, device, &entry.server_id).await.map_err(|error| {
            caps.log(Level::Error, &format!("Ping of {device}: {error}"));
            Status::ServerError
        })?;
        // A folder the device never synced is only watched: it syncs it when it wants to.
        if watch.is_some_and(|watch| watch.pending(&status)) {
            changed.push(entry.server_id.clone());
        }
        watched.push((entry.imap_name.clone(), folder_token(&status)));
    }
    Ok(if changed.is_empty() {
        Evaluation::Unchanged(watched)
    } else {
        Evaluation::Changed(changed)
    })
}

fn answer(status: Status, extra: Option<Element>) -> Response {
    let mut root = Element::new(ping::PING).text_child(ping::STATUS, (status as u8).to_string());
    if let Some(extra) = extra {
        root.push(extra);
    }
    match eas_wbxml::encode(&Document::new(root)) {
        Ok(body) => Response::new(200).with_body(crate::WBXML_CONTENT_TYPE, body),
        Err(_) => Response::new(500),
    }
}
