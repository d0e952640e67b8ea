//! Namespaces and their encoding into ordered storage keys.
//!
//! Every stored entry lives under one namespace (tenant, user, optional device). The storage key
//! is the concatenation of self-delimiting components, so that
//! - no two (namespace, key) pairs share a storage key, whatever bytes the names contain;
//! - everything under a tenant, a user or a namespace is one contiguous key range (a prefix),
//!   which is what listing and `delete_namespace` scan;
//! - byte order of storage keys equals the order of the names as strings, so pages of a listing
//!   come out sorted the way any other backend (e.g. SQL `ORDER BY`) would sort them.
//!
//! Component encoding: every NUL byte of the name is written as `00 FF`, and the component ends
//! with `00 01`. The terminator cannot occur inside an escaped name, and because `01 < FF` and
//! `00 01` sorts below any name byte, "a" < "a\0" < "ab" holds for the encoded forms too.
//! Between the user and the device a one-byte tag says whether a device follows.

/// Who owns a set of entries: one tenant's user, either account-wide (`device: None`) or one of
/// that user's devices. A plugin can only name keys inside the namespace the host hands it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace {
    pub tenant: String,
    pub user: String,
    pub device: Option<String>,
}

impl Namespace {
    /// The account-wide namespace of `user` (state shared by all the user's devices).
    pub fn user(tenant: impl Into<String>, user: impl Into<String>) -> Self {
        Namespace { tenant: tenant.into(), user: user.into(), device: None }
    }

    /// The namespace of one device of `user`.
    pub fn device(
        tenant: impl Into<String>,
        user: impl Into<String>,
        device: impl Into<String>,
    ) -> Self {
        Namespace { tenant: tenant.into(), user: user.into(), device: Some(device.into()) }
    }
}

const ESCAPE: u8 = 0x00;
const ESCAPED_NUL: u8 = 0xFF;
const TERMINATOR: u8 = 0x01;
/// Tag after the user component: what follows is the key (account-wide namespace).
const TAG_ACCOUNT_WIDE: u8 = 0x00;
/// Tag after the user component: what follows is a device component, then the key.
const TAG_DEVICE: u8 = 0x01;

fn push_component(out: &mut Vec<u8>, name: &str) {
    for &byte in name.as_bytes() {
        if byte == ESCAPE {
            out.extend_from_slice(&[ESCAPE, ESCAPED_NUL]);
        } else {
            out.push(byte);
        }
    }
    out.extend_from_slice(&[ESCAPE, TERMINATOR]);
}

/// Splits the first encoded component off `bytes`; `None` if it is not a well-formed UTF-8
/// component (which, for bytes read from the store, means the store is damaged).
pub(crate) fn split_component(bytes: &[u8]) -> Option<(String, &[u8])> {
    let mut name = Vec::new();
    let mut rest = bytes;
    loop {
        match rest {
            [ESCAPE, ESCAPED_NUL, tail @ ..] => {
                name.push(ESCAPE);
                rest = tail;
            }
            [ESCAPE, TERMINATOR, tail @ ..] => return Some((String::from_utf8(name).ok()?, tail)),
            [ESCAPE, ..] | [] => return None,
            [byte, tail @ ..] => {
                name.push(*byte);
                rest = tail;
            }
        }
    }
}

/// Prefix of every entry of `tenant`.
pub(crate) fn tenant_prefix(tenant: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(tenant.len() + 2);
    push_component(&mut out, tenant);
    out
}

/// Prefix of every entry of `user`, account-wide and of all devices.
pub(crate) fn user_prefix(tenant: &str, user: &str) -> Vec<u8> {
    let mut out = tenant_prefix(tenant);
    push_component(&mut out, user);
    out
}

/// Prefix of the device namespaces of `user` (account-wide entries excluded); what follows it is
/// a device component.
pub(crate) fn devices_prefix(tenant: &str, user: &str) -> Vec<u8> {
    let mut out = user_prefix(tenant, user);
    out.push(TAG_DEVICE);
    out
}

/// Prefix of every entry of exactly this namespace; what follows it is a key component.
pub(crate) fn namespace_prefix(ns: &Namespace) -> Vec<u8> {
    let mut out = user_prefix(&ns.tenant, &ns.user);
    match &ns.device {
        None => out.push(TAG_ACCOUNT_WIDE),
        Some(device) => {
            out.push(TAG_DEVICE);
            push_component(&mut out, device);
        }
    }
    out
}

/// The storage key of `key` in `ns`.
pub(crate) fn storage_key(ns: &Namespace, key: &str) -> Vec<u8> {
    let mut out = namespace_prefix(ns);
    push_component(&mut out, key);
    out
}

/// `prefix` followed by one encoded component: the prefix of everything under that child.
pub(crate) fn child_prefix(prefix: &[u8], child: &str) -> Vec<u8> {
    let mut out = prefix.to_vec();
    push_component(&mut out, child);
    out
}

/// The smallest byte string above every string that starts with `prefix`, i.e. the exclusive
/// upper bound of the prefix's range; `None` when no such bound exists (all bytes 0xFF).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Names built from the bytes that matter to the encoding, so collisions are likely if the
    /// encoding had any.
    fn adversarial_name() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just('\0'),
                Just('\u{1}'),
                Just('\u{ff}'),
                Just('/'),
                Just(':'),
                Just('a'),
                Just('b'),
                Just('é'),
            ],
            0..6,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn namespace() -> impl Strategy<Value = Namespace> {
        (adversarial_name(), adversarial_name(), proptest::option::of(adversarial_name()))
            .prop_map(|(tenant, user, device)| Namespace { tenant, user, device })
    }

    proptest! {
        #[test]
        fn storage_keys_are_injective(
            a in namespace(), ka in adversarial_name(), b in namespace(), kb in adversarial_name()
        ) {
            let same_pair = a == b && ka == kb;
            prop_assert_eq!(storage_key(&a, &ka) == storage_key(&b, &kb), same_pair);
        }

        #[test]
        fn prefixes_contain_exactly_their_own_entries(
            a in namespace(), b in namespace(), key in adversarial_name()
        ) {
            let stored = storage_key(&b, &key);
            prop_assert_eq!(stored.starts_with(&namespace_prefix(&a)), a == b);
            prop_assert_eq!(stored.starts_with(&tenant_prefix(&a.tenant)), a.tenant == b.tenant);
            prop_assert_eq!(
                stored.starts_with(&user_prefix(&a.tenant, &a.user)),
                a.tenant == b.tenant && a.user == b.user
            );
            prop_assert_eq!(
                stored.starts_with(&devices_prefix(&a.tenant, &a.user)),
                a.tenant == b.tenant && a.user == b.user && b.device.is_some()
            );
        }

        #[test]
        fn encoding_preserves_string_order(a in adversarial_name(), b in adversarial_name()) {
            prop_assert_eq!(tenant_prefix(&a).cmp(&tenant_prefix(&b)), a.cmp(&b));
        }

        #[test]
        fn components_round_trip(name in adversarial_name(), tail in adversarial_name()) {
            let mut encoded = tenant_prefix(&name);
            encoded.extend_from_slice(tail.as_bytes());
            let (decoded, rest) = split_component(&encoded).expect("well-formed component");
            prop_assert_eq!(decoded, name);
            prop_assert_eq!(rest, tail.as_bytes());
        }

        #[test]
        fn prefix_end_bounds_the_prefix_range(prefix in proptest::collection::vec(any::<u8>(), 0..8),
                                             suffix in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut inside = prefix.clone();
            inside.extend_from_slice(&suffix);
            match prefix_end(&prefix) {
                Some(end) => {
                    prop_assert!(inside < end);
                    prop_assert!(prefix < end);
                }
                None => prop_assert!(prefix.iter().all(|&b| b == u8::MAX)),
            }
        }
    }

    #[test]
    fn user_a_is_not_a_prefix_of_user_ab() {
        let a = storage_key(&Namespace::user("t", "a"), "k");
        assert!(!a.starts_with(&user_prefix("t", "ab")));
        let ab = storage_key(&Namespace::user("t", "ab"), "k");
        assert!(!ab.starts_with(&user_prefix("t", "a")));
    }

    #[test]
    fn malformed_components_are_rejected() {
        assert_eq!(split_component(b"abc"), None, "missing terminator");
        assert_eq!(split_component(&[b'a', 0x00, 0x02]), None, "unknown escape");
        assert_eq!(split_component(&[0xC3, 0x00, 0x01]), None, "invalid UTF-8");
    }
}
