//! The behaviour every [`StateStore`] backend must have. A backend's tests call
//! [`run_conformance`] on a fresh store; each part uses its own tenant, so parts do not see each
//! other's entries.

use super::{
    Condition, ListPage, ListScope, MAX_PAGE_ITEMS, Namespace, PageRequest, StateError, StateStore,
    Write,
};
use futures_util::future::join_all;

pub(crate) async fn run_conformance(store: &(impl StateStore + ?Sized)) {
    get_put_delete(store).await;
    namespaces_are_isolated(store).await;
    compare_and_swap(store).await;
    transact_is_all_or_nothing(store).await;
    listing_stays_inside_its_scope(store).await;
    listing_pages(store).await;
    delete_namespace_removes_exactly_one_namespace(store).await;
    limits_are_enforced(store).await;
    concurrent_compare_and_swap_has_one_winner(store).await;
    concurrent_counter_loses_no_increment(store).await;
}

async fn get_put_delete(store: &(impl StateStore + ?Sized)) {
    let ns = Namespace::device("basic", "alice", "phone");
    assert_eq!(store.get(&ns, "k").await.expect("get"), None);
    store.put(&ns, "k", b"one".to_vec()).await.expect("put");
    assert_eq!(store.get(&ns, "k").await.expect("get"), Some(b"one".to_vec()));
    store.put(&ns, "k", b"two".to_vec()).await.expect("overwrite");
    assert_eq!(store.get(&ns, "k").await.expect("get"), Some(b"two".to_vec()));
    store.put(&ns, "empty", Vec::new()).await.expect("put empty value");
    assert_eq!(store.get(&ns, "empty").await.expect("get"), Some(Vec::new()), "empty != absent");
    store.delete(&ns, "k").await.expect("delete");
    assert_eq!(store.get(&ns, "k").await.expect("get"), None);
    store.delete(&ns, "never-written").await.expect("deleting an absent key is fine");
    store.put(&ns, "", b"empty key".to_vec()).await.expect("the empty key is a key");
    assert_eq!(store.get(&ns, "").await.expect("get"), Some(b"empty key".to_vec()));
}

/// Names that would collide under a naive "tenant/user/device/key" or NUL-joined encoding.
fn adversarial_namespaces() -> Vec<Namespace> {
    vec![
        Namespace::user("iso", "a"),
        Namespace::user("iso", "ab"),
        Namespace::user("iso", "a/b"),
        Namespace::user("iso/a", "b"),
        Namespace::user("iso", "a\0"),
        Namespace::user("iso\0a", ""),
        Namespace::user("iso", ""),
        Namespace::device("iso", "a", ""),
        Namespace::device("iso", "a", "d"),
        Namespace::device("iso", "a", "d\0"),
        Namespace::device("iso", "a", "d\0\u{1}"),
        Namespace::device("iso", "a\0\u{1}", "d"),
        Namespace::device("iso", "a\0\u{ff}", "d"),
        Namespace::device("iso2", "a", "d"),
        Namespace::device("is", "oa", "d"),
    ]
}

async fn namespaces_are_isolated(store: &(impl StateStore + ?Sized)) {
    let namespaces = adversarial_namespaces();
    for (i, ns) in namespaces.iter().enumerate() {
        store.put(ns, "k", i.to_string().into_bytes()).await.expect("put");
        store.put(ns, "k\0", format!("{i}-nul").into_bytes()).await.expect("put");
    }
    for (i, ns) in namespaces.iter().enumerate() {
        assert_eq!(store.get(ns, "k").await.expect("get"), Some(i.to_string().into_bytes()));
        assert_eq!(store.get(ns, "k\0").await.expect("get"), Some(format!("{i}-nul").into_bytes()));
    }
}

async fn compare_and_swap(store: &(impl StateStore + ?Sized)) {
    let ns = Namespace::device("cas", "alice", "phone");
    let cas = |expected: Option<&'static [u8]>, new: Option<&'static [u8]>| {
        store.compare_and_swap(&ns, "k", expected, new.map(<[u8]>::to_vec))
    };
    assert!(!cas(Some(b"x"), Some(b"y")).await.expect("cas"), "expects a value on an absent key");
    assert_eq!(store.get(&ns, "k").await.expect("get"), None);
    assert!(cas(None, Some(b"v1")).await.expect("cas"), "creates an absent key");
    assert!(!cas(None, Some(b"v2")).await.expect("cas"), "the key is no longer absent");
    assert!(!cas(Some(b"wrong"), Some(b"v2")).await.expect("cas"));
    assert_eq!(store.get(&ns, "k").await.expect("get"), Some(b"v1".to_vec()), "failed CAS wrote");
    assert!(cas(Some(b"v1"), Some(b"v2")).await.expect("cas"));
    assert_eq!(store.get(&ns, "k").await.expect("get"), Some(b"v2".to_vec()));
    assert!(!cas(Some(b"v2\0"), None).await.expect("cas"), "compares whole values");
    assert!(!cas(Some(b"v"), None).await.expect("cas"), "compares whole values");
    assert!(cas(Some(b"v2"), None).await.expect("cas"), "deletes on match");
    assert_eq!(store.get(&ns, "k").await.expect("get"), None);
    assert!(cas(None, None).await.expect("cas"), "absent stays absent");
    store.put(&ns, "k", Vec::new()).await.expect("put");
    assert!(!cas(None, Some(b"x")).await.expect("cas"), "an empty value is not absent");
    assert!(cas(Some(b""), Some(b"x")).await.expect("cas"));
}

async fn transact_is_all_or_nothing(store: &(impl StateStore + ?Sized)) {
    let ns = Namespace::device("transact", "alice", "phone");
    store.put(&ns, "synckey", b"1".to_vec()).await.expect("put");
    store.put(&ns, "uids", b"1,2,3".to_vec()).await.expect("put");

    // A SyncKey advance whose precondition is stale: nothing at all may change.
    let stale = [Condition::equals("synckey", "1"), Condition::equals("uids", "stale")];
    let writes =
        vec![Write::put("synckey", "2"), Write::put("previous", "1"), Write::delete("uids")];
    assert!(!store.transact(&ns, &stale, writes.clone()).await.expect("transact"));
    assert_eq!(store.get(&ns, "synckey").await.expect("get"), Some(b"1".to_vec()));
    assert_eq!(store.get(&ns, "previous").await.expect("get"), None);
    assert_eq!(store.get(&ns, "uids").await.expect("get"), Some(b"1,2,3".to_vec()));

    let current = [
        Condition::equals("synckey", "1"),
        Condition::equals("uids", "1,2,3"),
        Condition::absent("previous"),
    ];
    assert!(store.transact(&ns, &current, writes).await.expect("transact"));
    assert_eq!(store.get(&ns, "synckey").await.expect("get"), Some(b"2".to_vec()));
    assert_eq!(store.get(&ns, "previous").await.expect("get"), Some(b"1".to_vec()));
    assert_eq!(store.get(&ns, "uids").await.expect("get"), None);

    let later_write_wins = vec![Write::put("k", "first"), Write::put("k", "second")];
    assert!(store.transact(&ns, &[], later_write_wins).await.expect("transact"));
    assert_eq!(store.get(&ns, "k").await.expect("get"), Some(b"second".to_vec()));

    // Without writes, a transaction is an atomic check of several keys.
    let check = [Condition::equals("synckey", "2"), Condition::equals("k", "second")];
    assert!(store.transact(&ns, &check, Vec::new()).await.expect("transact"));
    assert!(!store.transact(&ns, &[Condition::absent("k")], Vec::new()).await.expect("transact"));

    // Conditions and writes stay in their namespace: same key names elsewhere are untouched.
    let other = Namespace::device("transact", "alice", "tablet");
    assert!(!store.transact(&other, &check, Vec::new()).await.expect("transact"));
}

async fn list_all(store: &(impl StateStore + ?Sized), scope: &ListScope) -> Vec<String> {
    let mut items = Vec::new();
    let mut page = PageRequest::first(MAX_PAGE_ITEMS);
    loop {
        let ListPage { items: mut got, next } = store.list(scope, &page).await.expect("list");
        items.append(&mut got);
        match next {
            Some(after) => page = PageRequest::after(after, MAX_PAGE_ITEMS),
            None => return items,
        }
    }
}

async fn listing_stays_inside_its_scope(store: &(impl StateStore + ?Sized)) {
    let entries = [
        Namespace::user("list", "a"),
        Namespace::device("list", "a", "phone"),
        Namespace::device("list", "a", "phone"),
        Namespace::device("list", "a", "tablet"),
        Namespace::device("list", "a", "tablet\0"),
        Namespace::user("list", "ab"),
        Namespace::device("list", "ab", "other-phone"),
        Namespace::device("list", "a\0", "x"),
        Namespace::device("list", "b", "y"),
        Namespace::device("list2", "intruder", "z"),
        Namespace::device("lis", "tintruder", "z"),
        Namespace::device("list\0", "intruder", "z"),
    ];
    for (i, ns) in entries.iter().enumerate() {
        store.put(ns, &format!("key{i}"), b"v".to_vec()).await.expect("put");
    }
    let users = list_all(store, &ListScope::Users { tenant: "list".into() }).await;
    assert_eq!(users, ["a", "a\0", "ab", "b"], "each user once, sorted, no other tenant's");

    let devices = |user: &str| ListScope::Devices { tenant: "list".into(), user: user.into() };
    assert_eq!(list_all(store, &devices("a")).await, ["phone", "tablet", "tablet\0"]);
    assert_eq!(list_all(store, &devices("ab")).await, ["other-phone"]);
    assert!(list_all(store, &devices("nobody")).await.is_empty());

    let keys = |ns: &Namespace| ListScope::Keys(ns.clone());
    assert_eq!(list_all(store, &keys(&Namespace::user("list", "a"))).await, ["key0"]);
    assert_eq!(
        list_all(store, &keys(&Namespace::device("list", "a", "phone"))).await,
        ["key1", "key2"]
    );
    assert_eq!(list_all(store, &keys(&Namespace::device("list", "a", "tablet"))).await, ["key3"]);
    assert!(list_all(store, &ListScope::Users { tenant: "nobody".into() }).await.is_empty());
}

async fn listing_pages(store: &(impl StateStore + ?Sized)) {
    let ns = Namespace::device("pages", "alice", "phone");
    let names: Vec<String> = (0..MAX_PAGE_ITEMS + 5).map(|i| format!("k{i:05}")).collect();
    let writes = names.iter().map(|name| Write::put(name.as_str(), "v")).collect();
    assert!(store.transact(&ns, &[], writes).await.expect("transact"));
    let scope = ListScope::Keys(ns);

    let first = store.list(&scope, &PageRequest::first(2)).await.expect("list");
    assert_eq!(first.items, ["k00000", "k00001"]);
    assert_eq!(first.next.as_deref(), Some("k00001"));
    let second = store.list(&scope, &PageRequest::after("k00001", 2)).await.expect("list");
    assert_eq!(second.items, ["k00002", "k00003"]);
    let from_gap = store.list(&scope, &PageRequest::after("k00002x", 1)).await.expect("list");
    assert_eq!(from_gap.items, ["k00003"], "the cursor need not be an existing item");

    let clamped = store.list(&scope, &PageRequest::first(usize::MAX)).await.expect("list");
    assert_eq!(clamped.items.len(), MAX_PAGE_ITEMS, "pages are bounded");
    assert_eq!(clamped.next.as_deref(), Some(names[MAX_PAGE_ITEMS - 1].as_str()));
    let at_least_one = store.list(&scope, &PageRequest::first(0)).await.expect("list");
    assert_eq!(at_least_one.items, ["k00000"]);

    let last_page = PageRequest::after(names[names.len() - 3].clone(), 2);
    let last = store.list(&scope, &last_page).await.expect("list");
    assert_eq!(last.items, names[names.len() - 2..]);
    assert_eq!(last.next, None, "an exactly full last page has no next");
    assert_eq!(list_all(store, &scope).await, names);
}

async fn delete_namespace_removes_exactly_one_namespace(store: &(impl StateStore + ?Sized)) {
    let target = Namespace::device("reset", "alice", "phone");
    let survivors = [
        Namespace::user("reset", "alice"),
        Namespace::device("reset", "alice", "phone\0"),
        Namespace::device("reset", "alice", "phone2"),
        Namespace::device("reset", "alicex", "phone"),
        Namespace::device("reset2", "alice", "phone"),
    ];
    for key in ["a", "b", "c"] {
        store.put(&target, key, b"v".to_vec()).await.expect("put");
    }
    for ns in &survivors {
        store.put(ns, "a", b"keep".to_vec()).await.expect("put");
    }
    assert_eq!(store.delete_namespace(&target).await.expect("delete namespace"), 3);
    assert_eq!(store.get(&target, "a").await.expect("get"), None);
    assert!(list_all(store, &ListScope::Keys(target.clone())).await.is_empty());
    for ns in &survivors {
        assert_eq!(store.get(ns, "a").await.expect("get"), Some(b"keep".to_vec()), "{ns:?}");
    }
    assert_eq!(store.delete_namespace(&target).await.expect("delete namespace"), 0);

    // The account-wide namespace does not contain the devices.
    let account = Namespace::user("reset", "alice");
    assert_eq!(store.delete_namespace(&account).await.expect("delete namespace"), 1);
    let phone2 = Namespace::device("reset", "alice", "phone2");
    assert_eq!(store.get(&phone2, "a").await.expect("get"), Some(b"keep".to_vec()));
}

async fn limits_are_enforced(store: &(impl StateStore + ?Sized)) {
    let limits = store.limits().clone();
    let ns = Namespace::device("limits", "alice", "phone");
    let at_limit = vec![7u8; limits.max_value_bytes];
    store.put(&ns, "big", at_limit.clone()).await.expect("a value at the limit fits");
    assert_eq!(store.get(&ns, "big").await.expect("get"), Some(at_limit.clone()));

    let over = vec![7u8; limits.max_value_bytes + 1];
    let error = store.put(&ns, "too-big", over.clone()).await.expect_err("over the value limit");
    assert!(matches!(error, StateError::ValueTooLarge { .. }), "{error:?}");
    let error = store
        .compare_and_swap(&ns, "big", Some(&at_limit), Some(over))
        .await
        .expect_err("over the value limit");
    assert!(matches!(error, StateError::ValueTooLarge { .. }), "{error:?}");
    assert_eq!(store.get(&ns, "big").await.expect("get"), Some(at_limit), "nothing written");
    assert_eq!(store.get(&ns, "too-big").await.expect("get"), None);

    let long_name = "x".repeat(limits.max_name_bytes + 1);
    let error = store.put(&ns, &long_name, Vec::new()).await.expect_err("key too long");
    assert!(matches!(error, StateError::NameTooLong { what: "key", .. }), "{error:?}");
    let long_device = Namespace::device("limits", "alice", long_name.clone());
    let error = store.get(&long_device, "k").await.expect_err("device id too long");
    assert!(matches!(error, StateError::NameTooLong { what: "device id", .. }), "{error:?}");
    let long_user = Namespace::user("limits", long_name);
    let error = store.delete_namespace(&long_user).await.expect_err("user name too long");
    assert!(matches!(error, StateError::NameTooLong { what: "user name", .. }), "{error:?}");

    let value_count = limits.max_transaction_bytes / limits.max_value_bytes.max(1) + 1;
    let writes = (0..value_count)
        .map(|i| Write::put(format!("part{i}"), vec![1u8; limits.max_value_bytes]))
        .collect();
    let error = store.transact(&ns, &[], writes).await.expect_err("transaction too large");
    assert!(matches!(error, StateError::TransactionTooLarge { .. }), "{error:?}");
    assert_eq!(store.get(&ns, "part0").await.expect("get"), None, "nothing written");
}

async fn concurrent_compare_and_swap_has_one_winner(store: &(impl StateStore + ?Sized)) {
    const CONTENDERS: usize = 16;
    const ROUNDS: usize = 10;
    let ns = Namespace::device("race", "alice", "phone");
    let mut current: Option<Vec<u8>> = None;
    for round in 0..ROUNDS {
        let attempts = (0..CONTENDERS).map(|contender| {
            let new = format!("round{round}-contender{contender}").into_bytes();
            store.compare_and_swap(&ns, "leader", current.as_deref(), Some(new))
        });
        let results: Vec<bool> =
            join_all(attempts).await.into_iter().map(|r| r.expect("cas")).collect();
        let winners: Vec<usize> = (0..CONTENDERS).filter(|&i| results[i]).collect();
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let stored = store.get(&ns, "leader").await.expect("get");
        let expected = format!("round{round}-contender{}", winners[0]).into_bytes();
        assert_eq!(stored.as_deref(), Some(expected.as_slice()), "the winner's value is stored");
        current = stored;
    }
}

async fn concurrent_counter_loses_no_increment(store: &(impl StateStore + ?Sized)) {
    const TASKS: u64 = 8;
    const INCREMENTS: u64 = 25;
    let ns = Namespace::device("counter", "alice", "phone");
    let increment_many = |_task| {
        let ns = &ns;
        async move {
            for _ in 0..INCREMENTS {
                loop {
                    let current = store.get(ns, "n").await.expect("get");
                    let next = current.as_deref().map_or(0, decode_counter) + 1;
                    let new = Some(next.to_le_bytes().to_vec());
                    if store.compare_and_swap(ns, "n", current.as_deref(), new).await.expect("cas")
                    {
                        break;
                    }
                }
            }
        }
    };
    join_all((0..TASKS).map(increment_many)).await;
    let stored = store.get(&ns, "n").await.expect("get").expect("counter written");
    assert_eq!(decode_counter(&stored), TASKS * INCREMENTS);
}

fn decode_counter(bytes: &[u8]) -> u64 {
    let bytes: [u8; 8] = bytes.try_into().expect("counters are 8 bytes");
    u64::from_le_bytes(bytes)
}
