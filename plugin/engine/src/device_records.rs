//! The records of a device's state scope that the host's admin commands (`eas-edge devices`)
//! read and write: the provisioning record (policy keys, remote wipe, block) and the device's
//! own description. Re-exported from the commands that own them, so the admin tools use exactly
//! the engine's keys and encodings.

pub use crate::commands::policy::{KEY as POLICY_KEY, PolicyRecord, Wipe};
pub use crate::commands::settings::{DEVICE_INFORMATION_KEY, DeviceInformation};

/// The keys a reset keeps: who the device is and what an administrator decided about it.
/// Everything else in a device's scope is sync state (SyncKeys, the folder hierarchy it has,
/// the last Ping, ...), and forgetting it makes the device synchronise from scratch: its next
/// FolderSync or Sync with an old key is told the key is invalid.
pub const KEPT_BY_RESET: &[&str] = &[POLICY_KEY, DEVICE_INFORMATION_KEY];
