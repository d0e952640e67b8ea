//! Folders as the engine sees them: decoded names and special-use roles (RFC 6154), with
//! well-known names as the fallback for servers that announce no roles.

use super::mutf7;
use super::response::ListEntry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FolderRole {
    Inbox,
    Drafts,
    Sent,
    Trash,
    Junk,
    Archive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// UTF-8, decoded from modified UTF-7.
    pub name: String,
    /// As on the wire: pass this back to the session's folder operations.
    pub raw_name: String,
    pub delimiter: Option<char>,
    pub role: Option<FolderRole>,
    /// `\Noselect` / `\NonExistent` folders only hold other folders.
    pub selectable: bool,
    /// `None` when the server was not asked (it never is without LIST-EXTENDED or LSUB).
    pub subscribed: Option<bool>,
    /// RFC 8474 MAILBOXID, stable across renames; `None` without OBJECTID.
    pub mailbox_id: Option<String>,
}

/// Names that mean a role when no folder carries the role's attribute (case-insensitive), as
/// used by Outlook, Apple Mail, Thunderbird and common server defaults.
const ROLE_NAMES: &[(FolderRole, &[&str])] = &[
    (FolderRole::Drafts, &["Drafts", "Draft", "Entwürfe"]),
    (FolderRole::Sent, &["Sent", "Sent Items", "Sent Messages", "Sent Mail", "Gesendet"]),
    (FolderRole::Trash, &["Trash", "Deleted Items", "Deleted Messages", "Bin", "Papierkorb"]),
    (FolderRole::Junk, &["Junk", "Junk E-mail", "Junk Email", "Spam", "Bulk Mail"]),
    (FolderRole::Archive, &["Archive", "Archives"]),
];

fn role_from_attributes(entry: &ListEntry) -> Option<FolderRole> {
    entry.attributes.iter().find_map(|attribute| {
        let attribute = attribute.to_ascii_lowercase();
        Some(match attribute.as_str() {
            "\\drafts" => FolderRole::Drafts,
            "\\sent" => FolderRole::Sent,
            "\\trash" => FolderRole::Trash,
            "\\junk" => FolderRole::Junk,
            "\\archive" => FolderRole::Archive,
            _ => return None,
        })
    })
}

/// Folders from LIST (and LSUB) entries: one per name, in the server's order, `\NonExistent`
/// ones left out, roles from attributes first and from names for roles nobody claimed.
pub fn folders_from_list(entries: &[ListEntry], subscriptions_known: bool) -> Vec<Folder> {
    let mut folders: Vec<Folder> = Vec::new();
    let listed = entries.iter().filter(|entry| !entry.from_lsub);
    for entry in listed {
        if entry.has_attribute("\\NonExistent")
            || folders.iter().any(|folder| folder.raw_name == entry.raw_name)
        {
            continue;
        }
        let subscribed = subscriptions_known.then(|| {
            entry.has_attribute("\\Subscribed")
                || entries.iter().any(|other| other.from_lsub && other.raw_name == entry.raw_name)
        });
        let is_inbox = entry.raw_name.eq_ignore_ascii_case("INBOX");
        folders.push(Folder {
            name: if is_inbox {
                "INBOX".to_string()
            } else {
                mutf7::decode_or_raw(&entry.raw_name)
            },
            raw_name: entry.raw_name.clone(),
            delimiter: entry.delimiter,
            // INBOX is special by protocol (RFC 9051 §5.1); an attribute cannot make it another
            role: if is_inbox { Some(FolderRole::Inbox) } else { role_from_attributes(entry) },
            selectable: !entry.has_attribute("\\Noselect"),
            subscribed,
            // from LIST-STATUS data, which the session adds
            mailbox_id: None,
        });
    }
    assign_roles_by_name(&mut folders);
    folders
}

/// Gives each unclaimed role to the first selectable folder with a well-known name, at the top
/// level or directly under INBOX (Courier/Cyrus style `INBOX.Sent`).
fn assign_roles_by_name(folders: &mut [Folder]) {
    for (role, names) in ROLE_NAMES {
        if folders.iter().any(|folder| folder.role == Some(*role)) {
            continue;
        }
        // candidates in the order of the name list: "Sent" beats "Sent Items" when both exist
        let chosen = names.iter().find_map(|wanted| {
            folders.iter().position(|folder| {
                folder.role.is_none()
                    && folder.selectable
                    && short_name(folder).is_some_and(|short| short.eq_ignore_ascii_case(wanted))
            })
        });
        if let Some(index) = chosen
            && let Some(folder) = folders.get_mut(index)
        {
            folder.role = Some(*role);
        }
    }
}

/// The name without an `INBOX` parent; `None` for deeper folders.
fn short_name(folder: &Folder) -> Option<&str> {
    let Some(delimiter) = folder.delimiter else { return Some(&folder.name) };
    match folder.name.split_once(delimiter) {
        None => Some(&folder.name),
        Some((parent, rest))
            if parent.eq_ignore_ascii_case("INBOX") && !rest.contains(delimiter) =>
        {
            Some(rest)
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(attributes: &[&str], name: &str) -> ListEntry {
        ListEntry {
            attributes: attributes.iter().map(|a| a.to_string()).collect(),
            delimiter: Some('/'),
            raw_name: name.to_string(),
            from_lsub: false,
        }
    }

    #[test]
    fn roles_from_special_use_attributes_win_over_names() {
        let entries = [
            entry(&["\\HasNoChildren"], "INBOX"),
            entry(&["\\HasNoChildren"], "Sent"),
            entry(&["\\HasNoChildren", "\\Sent"], "Gesendete Objekte"),
            entry(&["\\Drafts"], "Entw&APw-rfe"),
            entry(&["\\Noselect", "\\HasChildren"], "Archiv"),
            entry(&["\\NonExistent"], "Gone"),
        ];
        let folders = folders_from_list(&entries, false);
        let role_of = |name: &str| folders.iter().find(|f| f.name == name).and_then(|f| f.role);
        assert_eq!(folders.len(), 5);
        assert_eq!(role_of("INBOX"), Some(FolderRole::Inbox));
        assert_eq!(role_of("Gesendete Objekte"), Some(FolderRole::Sent));
        assert_eq!(role_of("Sent"), None);
        assert_eq!(role_of("Entwürfe"), Some(FolderRole::Drafts));
        assert!(folders.iter().all(|f| f.subscribed.is_none()));
        assert!(!folders.iter().any(|f| f.name == "Archiv" && f.selectable));
    }

    #[test]
    fn name_fallbacks_when_the_server_gives_no_roles() {
        let mut entries = vec![
            entry(&[], "inbox"),
            entry(&[], "Sent Messages"),
            entry(&[], "Deleted Items"),
            entry(&[], "INBOX/Spam"),
            entry(&[], "Projects/Drafts"),
            entry(&[], "Archive"),
        ];
        entries.push(ListEntry { from_lsub: true, ..entry(&[], "Archive") });
        let folders = folders_from_list(&entries, true);
        let role_of = |name: &str| folders.iter().find(|f| f.name == name).and_then(|f| f.role);
        assert_eq!(role_of("INBOX"), Some(FolderRole::Inbox));
        assert_eq!(role_of("Sent Messages"), Some(FolderRole::Sent));
        assert_eq!(role_of("Deleted Items"), Some(FolderRole::Trash));
        assert_eq!(role_of("INBOX/Spam"), Some(FolderRole::Junk));
        assert_eq!(role_of("Projects/Drafts"), None, "too deep to be the drafts folder");
        assert_eq!(role_of("Archive"), Some(FolderRole::Archive));
        let archive = folders.iter().find(|f| f.name == "Archive");
        assert_eq!(archive.and_then(|f| f.subscribed), Some(true));
        assert_eq!(folders.len(), 6);
    }
}
