//! The tenant's settings that shape answers (the `config` import of `wit/gateway.wit`).

/// Read once per request from the host; defaults are what a host without configuration gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSettings {
    pub heartbeat_min_seconds: u32,
    pub heartbeat_max_seconds: u32,
    pub max_ping_folders: u32,
    /// EASProvisionDoc overrides by element name; an empty value sends the element empty.
    pub policy: Vec<(String, String)>,
}

impl Default for TenantSettings {
    /// Exchange's heartbeat range (MS-ASCMD §2.2.3.88.1 footnote) and a folder limit well
    /// above what phones watch (iOS pings at most a few dozen folders).
    fn default() -> Self {
        Self {
            heartbeat_min_seconds: 60,
            heartbeat_max_seconds: 3540,
            max_ping_folders: 300,
            policy: Vec::new(),
        }
    }
}
