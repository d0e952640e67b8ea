//! EAS commands: their names (`Cmd=` in the plain query, `MS-ASProtocolCommands`) and their
//! base64-query codes (MS-ASHTTP §2.2.1.1.1.1.2, EAS-NOTES §1.3).

use std::fmt;

use super::version::ProtocolVersion;

/// Every command of MS-ASProtocolCommands. The pre-12 leftovers (GetHierarchy, CreateCollection,
/// DeleteCollection, MoveCollection: codes 5–8) are deliberately absent (EAS-NOTES §4.15), so a
/// request for them is an unknown command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Sync,
    SendMail,
    SmartForward,
    SmartReply,
    GetAttachment,
    FolderSync,
    FolderCreate,
    FolderDelete,
    FolderUpdate,
    MoveItems,
    GetItemEstimate,
    MeetingResponse,
    Search,
    Settings,
    Ping,
    ItemOperations,
    Provision,
    ResolveRecipients,
    ValidateCert,
    Find,
}

impl Command {
    /// Every command, in the order of the base64 code table.
    pub const ALL: [Command; 20] = [
        Command::Sync,
        Command::SendMail,
        Command::SmartForward,
        Command::SmartReply,
        Command::GetAttachment,
        Command::FolderSync,
        Command::FolderCreate,
        Command::FolderDelete,
        Command::FolderUpdate,
        Command::MoveItems,
        Command::GetItemEstimate,
        Command::MeetingResponse,
        Command::Search,
        Command::Settings,
        Command::Ping,
        Command::ItemOperations,
        Command::Provision,
        Command::ResolveRecipients,
        Command::ValidateCert,
        Command::Find,
    ];

    /// The name as spelled in `Cmd=` and `MS-ASProtocolCommands`.
    pub const fn name(self) -> &'static str {
        match self {
            Command::Sync => "Sync",
            Command::SendMail => "SendMail",
            Command::SmartForward => "SmartForward",
            Command::SmartReply => "SmartReply",
            Command::GetAttachment => "GetAttachment",
            Command::FolderSync => "FolderSync",
            Command::FolderCreate => "FolderCreate",
            Command::FolderDelete => "FolderDelete",
            Command::FolderUpdate => "FolderUpdate",
            Command::MoveItems => "MoveItems",
            Command::GetItemEstimate => "GetItemEstimate",
            Command::MeetingResponse => "MeetingResponse",
            Command::Search => "Search",
            Command::Settings => "Settings",
            Command::Ping => "Ping",
            Command::ItemOperations => "ItemOperations",
            Command::Provision => "Provision",
            Command::ResolveRecipients => "ResolveRecipients",
            Command::ValidateCert => "ValidateCert",
            Command::Find => "Find",
        }
    }

    /// The base64-query command code. Find's 23 is not printed in MS-ASHTTP's table; it comes
    /// from Microsoft's test suite and grommunio, which agree (EAS-NOTES §1.3).
    pub const fn code(self) -> u8 {
        match self {
            Command::Sync => 0,
            Command::SendMail => 1,
            Command::SmartForward => 2,
            Command::SmartReply => 3,
            Command::GetAttachment => 4,
            Command::FolderSync => 9,
            Command::FolderCreate => 10,
            Command::FolderDelete => 11,
            Command::FolderUpdate => 12,
            Command::MoveItems => 13,
            Command::GetItemEstimate => 14,
            Command::MeetingResponse => 15,
            Command::Search => 16,
            Command::Settings => 17,
            Command::Ping => 18,
            Command::ItemOperations => 19,
            Command::Provision => 20,
            Command::ResolveRecipients => 21,
            Command::ValidateCert => 22,
            Command::Find => 23,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Looks a `Cmd=` value up. Case-insensitive: Exchange (ASP.NET) matches query values that
    /// way, and being strict would only break sloppy clients.
    pub fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// Whether the command exists in `version` (among the versions this server serves):
    /// GetAttachment is gone from 14.0 on (ItemOperations replaces it, EAS-NOTES §4.15) and Find
    /// arrived in 16.1 (§4.14). Everything else exists in 12.1 and later.
    pub fn is_available_in(self, version: ProtocolVersion) -> bool {
        match self {
            Command::GetAttachment => version <= ProtocolVersion::V12_1,
            Command::Find => version >= ProtocolVersion::V16_1,
            _ => true,
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_table_matches_the_spec() {
        let table: Vec<(&str, u8)> = Command::ALL.iter().map(|c| (c.name(), c.code())).collect();
        assert_eq!(
            table,
            [
                ("Sync", 0),
                ("SendMail", 1),
                ("SmartForward", 2),
                ("SmartReply", 3),
                ("GetAttachment", 4),
                ("FolderSync", 9),
                ("FolderCreate", 10),
                ("FolderDelete", 11),
                ("FolderUpdate", 12),
                ("MoveItems", 13),
                ("GetItemEstimate", 14),
                ("MeetingResponse", 15),
                ("Search", 16),
                ("Settings", 17),
                ("Ping", 18),
                ("ItemOperations", 19),
                ("Provision", 20),
                ("ResolveRecipients", 21),
                ("ValidateCert", 22),
                ("Find", 23),
            ]
        );
    }

    #[test]
    fn lookups_round_trip() {
        for command in Command::ALL {
            assert_eq!(Command::from_code(command.code()), Some(command));
            assert_eq!(Command::from_name(command.name().as_bytes()), Some(command));
            let upper = command.name().to_ascii_uppercase();
            assert_eq!(Command::from_name(upper.as_bytes()), Some(command));
        }
        for retired in 5..=8 {
            assert_eq!(Command::from_code(retired), None);
        }
        assert_eq!(Command::from_code(24), None);
        assert_eq!(Command::from_code(255), None);
        assert_eq!(Command::from_name(b"GetHierarchy"), None);
        assert_eq!(Command::from_name(b""), None);
        assert_eq!(Command::from_name(b"Sync "), None);
    }

    #[test]
    fn availability_per_version() {
        use ProtocolVersion::*;
        assert!(Command::GetAttachment.is_available_in(V12_1));
        assert!(!Command::GetAttachment.is_available_in(V14_0));
        assert!(!Command::Find.is_available_in(V16_0));
        assert!(Command::Find.is_available_in(V16_1));
        for version in ProtocolVersion::ALL {
            assert!(Command::Sync.is_available_in(version));
            assert!(Command::ItemOperations.is_available_in(version));
        }
    }
}
