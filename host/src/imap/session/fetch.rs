//! Fetching message summaries, whole messages and single parts.

use std::collections::HashMap;

use super::{Session, ensure_ok, single};
use crate::imap::bodystructure::BodyPart;
use crate::imap::error::ImapError;
use crate::imap::response::{FetchData, Untagged};
use crate::imap::uidset;

/// UID sets per FETCH command stay below this many bytes (servers cap command lines; Dovecot
/// at 64 KB); the commands for the rest are pipelined behind.
const MAX_SET_LEN: usize = 8 * 1024;

/// What the engine needs to list a message and parse its headers and text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub uid: u32,
    /// System flags and keywords as sent.
    pub flags: Vec<String>,
    /// INTERNALDATE as unix seconds (0 if the server sent none).
    pub internal_date: i64,
    /// RFC822.SIZE.
    pub size: u64,
    /// Pre-order, see [`BodyPart`]; empty if the server's BODYSTRUCTURE was unreadable.
    pub body_structure: Vec<BodyPart>,
    /// The first bytes of the raw message: headers and the start of the body.
    pub prefix: Vec<u8>,
}

impl Summary {
    fn merge(&mut self, data: FetchData) {
        if let Some(flags) = data.flags {
            self.flags = flags;
        }
        if let Some(date) = data.internal_date {
            self.internal_date = date;
        }
        if let Some(size) = data.size {
            self.size = size;
        }
        if let Some(parts) = data.body_structure {
            self.body_structure = parts;
        }
        if let Some(prefix) = data.sections.into_iter().find(|s| s.section.is_empty()) {
            self.prefix = prefix.data.unwrap_or_default();
        }
    }
}

impl Session {
    /// Summaries of the messages with these UIDs in one round trip:
    /// `UID FETCH <set> (UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE BODY.PEEK[]<0.N>)`
    /// (RFC 9051 §6.4.5; BODY.PEEK leaves \Seen alone). Missing (expunged) UIDs are absent from
    /// the result, which is in UID order.
    pub async fn fetch_summaries(
        &mut self,
        raw_name: &str,
        uids: &[u32],
        prefix_bytes: u32,
    ) -> Result<Vec<Summary>, ImapError> {
        let result = async {
            self.begin().await?;
            self.ensure_open(raw_name).await?;
            self.fetch_summaries_inner(uids, prefix_bytes).await
        }
        .await;
        self.end(result)
    }

    async fn fetch_summaries_inner(
        &mut self,
        uids: &[u32],
        prefix_bytes: u32,
    ) -> Result<Vec<Summary>, ImapError> {
        let ranges = uidset::ranges_of(uids);
        let items = if prefix_bytes > 0 {
            format!(
                " (UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE BODY.PEEK[]<0.{prefix_bytes}>)"
            )
        } else {
            " (UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE)".to_string()
        };
        let commands: Vec<_> = uidset::format_sets(&ranges, MAX_SET_LEN)
            .into_iter()
            .map(|set| self.command("UID FETCH").raw(" ").raw(&set).raw(&items).end())
            .collect();
        let mut summaries: Vec<Summary> = Vec::with_capacity(uids.len());
        let mut index_of: HashMap<u32, usize> = HashMap::with_capacity(uids.len());
        let requested = |uid: u32| {
            let found = ranges.binary_search_by(|range| {
                if range.last < uid {
                    std::cmp::Ordering::Less
                } else if range.first > uid {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            });
            found.is_ok()
        };
        let done = self
            .execute(&commands, &mut |data| match data {
                // ours: a requested UID with more than flags (a flag-only FETCH is someone
                // else's change, pushed by the server)
                Untagged::Fetch { data, .. }
                    if data.uid.is_some_and(requested)
                        && (data.size.is_some()
                            || data.body_structure.is_some()
                            || data.internal_date.is_some()
                            || !data.sections.is_empty()) =>
                {
                    let uid = data.uid.unwrap_or_default();
                    let index = *index_of.entry(uid).or_insert_with(|| {
                        summaries.push(Summary { uid, ..Summary::default() });
                        summaries.len() - 1
                    });
                    if let Some(summary) = summaries.get_mut(index) {
                        summary.merge(*data);
                    }
                    None
                }
                other => Some(other),
            })
            .await?;
        for tagged in &done {
            ensure_ok(tagged, "UID FETCH")?;
        }
        summaries.sort_unstable_by_key(|summary| summary.uid);
        Ok(summaries)
    }

    /// The whole raw message, or `None` if the UID does not exist (any more). Over `max_bytes`
    /// it is refused with [`ImapError::TooLarge`] after at most `max_bytes + 1` bytes were
    /// transferred: one round trip asks for RFC822.SIZE and `BODY.PEEK[]<0.max+1>` together.
    pub async fn fetch_message(
        &mut self,
        raw_name: &str,
        uid: u32,
        max_bytes: u32,
    ) -> Result<Option<Vec<u8>>, ImapError> {
        self.fetch_section(raw_name, uid, "", max_bytes).await
    }

    /// One part, as stored (still transfer-encoded: the caller decodes), e.g. section `2` or
    /// `1.2` from [`BodyPart::section`]; `None` if the UID does not exist.
    pub async fn fetch_part(
        &mut self,
        raw_name: &str,
        uid: u32,
        section: &str,
        max_bytes: u32,
    ) -> Result<Option<Vec<u8>>, ImapError> {
        let valid = section
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte == b'.' || byte.is_ascii_alphabetic());
        if !valid {
            return Err(ImapError::Protocol(format!("invalid section {section:?}")));
        }
        self.fetch_section(raw_name, uid, section, max_bytes).await
    }

    async fn fetch_section(
        &mut self,
        raw_name: &str,
        uid: u32,
        section: &str,
        max_bytes: u32,
    ) -> Result<Option<Vec<u8>>, ImapError> {
        let result = async {
            self.begin().await?;
            self.ensure_open(raw_name).await?;
            let probe = u64::from(max_bytes) + 1;
            // RFC822.SIZE tells the real size of a whole message; for parts only the partial
            // fetch's length tells (it is at most max_bytes + 1)
            let size_item = if section.is_empty() { "RFC822.SIZE " } else { "" };
            let command = self
                .command("UID FETCH")
                .raw(&format!(" {uid} (UID {size_item}BODY.PEEK[{section}]<0.{probe}>)"))
                .end();
            let mut found: Option<FetchData> = None;
            let max_literal = usize::try_from(probe).unwrap_or(usize::MAX);
            let done = self
                .execute_with_literal_limit(max_literal, &[command], &mut |data| match data {
                    Untagged::Fetch { data, .. }
                        if data.uid == Some(uid) && data.section(section).is_some() =>
                    {
                        found = Some(*data);
                        None
                    }
                    other => Some(other),
                })
                .await?;
            ensure_ok(&single(done)?, "UID FETCH")?;
            let Some(data) = found else { return Ok(None) };
            let limit = u64::from(max_bytes);
            if let Some(size) = data.size.filter(|&size| size > limit) {
                return Err(ImapError::TooLarge { size, limit });
            }
            let bytes = data
                .sections
                .into_iter()
                .find(|found| found.section.eq_ignore_ascii_case(section))
                .and_then(|found| found.data)
                .unwrap_or_default();
            let length = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            if length > limit {
                return Err(ImapError::TooLarge { size: length, limit });
            }
            Ok(Some(bytes))
        }
        .await;
        self.end(result)
    }
}
