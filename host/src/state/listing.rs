//! Paginated listing for admin tools: the users of a tenant, the devices of a user, the keys of
//! a namespace. Pages are bounded so one admin request cannot pull a whole tenant into memory.

use super::namespace::Namespace;

/// The most items one page may hold, whatever the caller asks for.
pub const MAX_PAGE_ITEMS: usize = 1000;

/// What to list. Items are the names one level below the scope, each once, in string order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// Users of `tenant` that have any entry (account-wide or on a device).
    Users { tenant: String },
    /// Devices of `user` that have any entry; the account-wide namespace is not a device.
    Devices { tenant: String, user: String },
    /// Keys of one namespace.
    Keys(Namespace),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Start after this item (the previous page's `next`); `None` for the first page.
    pub after: Option<String>,
    /// At most this many items, clamped to `1..=MAX_PAGE_ITEMS`.
    pub limit: usize,
}

impl PageRequest {
    pub fn first(limit: usize) -> Self {
        PageRequest { after: None, limit }
    }

    pub fn after(item: impl Into<String>, limit: usize) -> Self {
        PageRequest { after: Some(item.into()), limit }
    }

    /// The page size a backend must use.
    pub fn effective_limit(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE_ITEMS)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    pub items: Vec<String>,
    /// Where the next page starts (pass it as `PageRequest::after`); `None` on the last page.
    pub next: Option<String>,
}
