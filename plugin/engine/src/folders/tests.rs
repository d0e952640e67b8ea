use super::map::FolderType;
use super::*;
use crate::drive::run_to_completion;
use crate::mailbox::FolderRole;
use crate::testing::{FakeHost, FakeMailbox};

fn host() -> FakeHost {
    let host = FakeHost::default();
    *host.mailbox.borrow_mut() = FakeMailbox::standard();
    host.mailbox.borrow_mut().add_folder("Projects", None);
    host.mailbox.borrow_mut().add_folder("Projects/2026", None);
    host
}

fn refreshed(host: &FakeHost) -> FolderMap {
    run_to_completion(refresh(host)).expect("completes").expect("refreshes")
}

#[test]
fn types_parents_and_names() {
    let host = host();
    let map = refreshed(&host);
    let inbox = map.entries().iter().find(|e| e.folder_type == FolderType::Inbox).expect("inbox");
    assert_eq!((inbox.imap_name.as_str(), inbox.parent_id.as_str()), ("INBOX", "0"));
    assert_eq!(
        map.entries()
            .iter()
            .find(|e| e.folder_type == FolderType::DeletedItems)
            .map(|e| e.display_name.as_str()),
        Some("Trash")
    );
    let child = map.entries().iter().find(|e| e.path == "Projects/2026").expect("child");
    let parent = map.entries().iter().find(|e| e.path == "Projects").expect("parent");
    assert_eq!(child.parent_id, parent.server_id);
    assert_eq!(child.display_name, "2026");
    assert_eq!(child.folder_type.code(), 12);
}

#[test]
fn server_ids_survive_renames_and_are_never_reused() {
    let host = host();
    let before = refreshed(&host);
    let id_of = |map: &FolderMap, path: &str| {
        map.entries().iter().find(|e| e.path == path).map(|e| e.server_id.clone())
    };
    let projects = id_of(&before, "Projects").expect("listed");
    host.mailbox.borrow_mut().rename_folder("Projects", "Work");
    host.mailbox.borrow_mut().delete_folder("Sent");
    host.mailbox.borrow_mut().add_folder("Sent", Some(FolderRole::Sent));
    let after = refreshed(&host);
    assert_eq!(id_of(&after, "Work"), Some(projects));
    let old_sent = id_of(&before, "Sent");
    let new_sent = id_of(&after, "Sent");
    assert!(new_sent.is_some() && new_sent != old_sent, "a recreated folder is a new folder");
    assert!(before.entries().iter().all(|old| {
        after
            .entries()
            .iter()
            .all(|new| new.server_id != old.server_id || new.mailbox_id == old.mailbox_id)
    }));
}

#[test]
fn the_map_round_trips_and_rejects_other_formats() {
    let map = refreshed(&host());
    assert_eq!(FolderMap::decode(&map.encode()), Some(map.clone()));
    assert_eq!(FolderMap::decode(&[]), None);
    let mut other = map.encode();
    other[0] = 99;
    assert_eq!(FolderMap::decode(&other), None);
}

#[test]
fn resolve_finds_folders_listed_after_the_last_refresh() {
    let host = host();
    refreshed(&host);
    host.mailbox.borrow_mut().add_folder("Later", None);
    let stored = run_to_completion(stored(&host)).expect("completes").expect("reads");
    let later_id = (stored.entries().len() + 1).to_string();
    let found = run_to_completion(resolve(&host, &later_id)).expect("completes").expect("ok");
    assert_eq!(found.map(|e| e.imap_name), Some("Later".to_owned()));
    assert_eq!(run_to_completion(resolve(&host, "999")).expect("completes"), Ok(None));
}
