//! What a Ping asks for, and the per-device cache that lets later Pings omit it
//! (MS-ASCMD §2.2.1.13, §3.1.5.8: a Ping may leave out the interval, the folders, or send no
//! body at all).

use crate::capabilities::{Capabilities, StateResult, StateScope};
use eas_wbxml::Element;
use eas_wbxml::tags::ping;
use serde::{Deserialize, Serialize};

/// State key of the cached Ping in the device scope.
const KEY: &str = "ping";
/// Leading byte of the stored form.
const FORMAT: u8 = 1;

/// The interval and folders a Ping watches, after filling gaps from the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingSet {
    pub heartbeat_seconds: u32,
    /// Folder ServerIds, in the client's order, without duplicates.
    pub folders: Vec<String>,
}

/// The parts of a Ping body; both optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PingBody {
    pub heartbeat_seconds: Option<u32>,
    pub folders: Option<Vec<String>>,
}

/// Why a Ping body is unusable: Ping Status 4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub &'static str);

impl PingBody {
    pub fn parse(root: &Element) -> Result<PingBody, SyntaxError> {
        if root.tag != ping::PING {
            return Err(SyntaxError("the root is not Ping"));
        }
        let heartbeat_seconds = match root.child(ping::HEARTBEAT_INTERVAL) {
            None => None,
            Some(element) => Some(
                element
                    .text()
                    .and_then(|text| text.trim().parse().ok())
                    .ok_or(SyntaxError("HeartbeatInterval is not a number"))?,
            ),
        };
        let folders = match root.child(ping::FOLDERS) {
            None => None,
            Some(folders) => {
                let mut ids: Vec<String> = Vec::new();
                for folder in folders.children(ping::FOLDER) {
                    let id = folder
                        .text_of(ping::ID)
                        .filter(|id| !id.is_empty() && id.len() <= 64)
                        .ok_or(SyntaxError("a Folder without a usable Id"))?;
                    if !ids.iter().any(|known| known == id) {
                        ids.push(id.to_owned());
                    }
                }
                if ids.is_empty() {
                    return Err(SyntaxError("Folders without a Folder"));
                }
                Some(ids)
            }
        };
        Ok(PingBody { heartbeat_seconds, folders })
    }

    /// Fills what the body left out from the cache; `None` when something is still missing
    /// (Ping Status 3).
    pub fn complete(self, cached: Option<&PingSet>) -> Option<PingSet> {
        Some(PingSet {
            heartbeat_seconds: self.heartbeat_seconds.or(cached.map(|c| c.heartbeat_seconds))?,
            folders: self.folders.or_else(|| cached.map(|c| c.folders.clone()))?,
        })
    }
}

impl PingSet {
    fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![FORMAT];
        bytes.extend(postcard::to_allocvec(self).unwrap_or_default());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<PingSet> {
        match bytes.split_first() {
            Some((&FORMAT, rest)) => postcard::from_bytes(rest).ok(),
            _ => None,
        }
    }
}

/// The device's last Ping set; an unreadable one counts as none.
pub async fn cached(caps: &impl Capabilities, device: &str) -> StateResult<Option<PingSet>> {
    let scope = StateScope::Device(device.to_owned());
    Ok(caps.state_get(&scope, KEY).await?.as_deref().and_then(PingSet::decode))
}

pub async fn remember(caps: &impl Capabilities, device: &str, set: &PingSet) -> StateResult<()> {
    caps.state_put(&StateScope::Device(device.to_owned()), KEY, set.encode()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(heartbeat: Option<&str>, ids: &[&str]) -> Element {
        let mut root = Element::new(ping::PING);
        if let Some(heartbeat) = heartbeat {
            root.push(Element::with_text(ping::HEARTBEAT_INTERVAL, heartbeat));
        }
        if !ids.is_empty() {
            let mut folders = Element::new(ping::FOLDERS);
            for id in ids {
                folders.push(
                    Element::new(ping::FOLDER)
                        .text_child(ping::ID, *id)
                        .text_child(ping::CLASS, "Email"),
                );
            }
            root.push(folders);
        }
        root
    }

    #[test]
    fn parses_interval_and_folders_without_duplicates() {
        let parsed = PingBody::parse(&body(Some("480"), &["1", "5", "1"])).expect("valid");
        assert_eq!(parsed.heartbeat_seconds, Some(480));
        assert_eq!(parsed.folders, Some(vec!["1".to_owned(), "5".to_owned()]));
    }

    #[test]
    fn refuses_garbage() {
        assert!(PingBody::parse(&body(Some("soon"), &["1"])).is_err());
        assert!(PingBody::parse(&Element::new(eas_wbxml::tags::air_sync::SYNC)).is_err());
        let empty_folders = Element::new(ping::PING).with_child(Element::new(ping::FOLDERS));
        assert!(PingBody::parse(&empty_folders).is_err());
    }

    #[test]
    fn gaps_are_filled_from_the_cache_or_reported() {
        let cached = PingSet { heartbeat_seconds: 300, folders: vec!["2".to_owned()] };
        let only_interval = PingBody { heartbeat_seconds: Some(600), folders: None };
        assert_eq!(
            only_interval.clone().complete(Some(&cached)),
            Some(PingSet { heartbeat_seconds: 600, folders: vec!["2".to_owned()] })
        );
        assert_eq!(only_interval.complete(None), None);
        assert_eq!(PingBody::default().complete(Some(&cached)), Some(cached.clone()));
        assert_eq!(PingSet::decode(&cached.encode()), Some(cached));
    }
}
