//! Fetching message summaries, whole messages and single parts.

use std::collections::HashMap;

use super::{MailboxOpening, Session, ensure_ok};
use crate::imap::bodystructure::BodyPart;
use crate::imap::error::{ImapError, RefusalStatus};
use crate::imap::response::{FetchData, Untagged};
use crate::imap::uidset;

/// UID sets per FETCH command stay below this many bytes (servers cap command lines; Dovecot
/// at 64 KB); the commands for the rest are pipelined behind.
const MAX_SET_LEN: usize = 8 * 1024;

/// A summary's header block is fetched whole up to this size; a longer one is cut here and
/// then nothing of the body follows it.
pub const MAX_HEADER_BYTES: u32 = 64 * 1024;

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
    /// The first bytes of the raw message: its header block and the start of its body.
    pub prefix: Vec<u8>,
    /// How many bytes of `prefix` are the header block (blank line included).
    pub header_len: usize,
}

/// A whole message with what a client shows next to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub uid: u32,
    /// System flags and keywords as sent.
    pub flags: Vec<String>,
    /// INTERNALDATE as unix seconds (0 if the server sent none).
    pub internal_date: i64,
    /// The raw message (RFC 5322).
    pub raw: Vec<u8>,
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
        let mut header = None;
        let mut text = None;
        for section in data.sections {
            if section.section.eq_ignore_ascii_case("HEADER") {
                header = section.data;
            } else if section.section.eq_ignore_ascii_case("TEXT") {
                text = section.data;
            }
        }
        if let Some(header) = header {
            self.set_prefix(header, text.unwrap_or_default());
        }
    }

    /// The prefix from `BODY[HEADER]` and `BODY[TEXT]`, which together are `BODY[]` (RFC 9051
    /// §6.4.5): the text follows only a header block that came whole, with the empty line
    /// that ends it. From a server that leaves that line out, the body's lines would read
    /// as header fields: the prefix is then the header block alone, and the engine fetches
    /// the text it needs whole.
    fn set_prefix(&mut self, mut header: Vec<u8>, text: Vec<u8>) {
        self.header_len = header.len();
        let ends_with_empty_line = header.ends_with(b"\r\n\r\n") || header.ends_with(b"\n\n");
        if header.len() < MAX_HEADER_BYTES as usize && ends_with_empty_line {
            header.extend_from_slice(&text);
        }
        self.prefix = header;
    }

    /// The prefix cut to what a fetch of `body_bytes` would have given: the header block and
    /// at most that many bytes after it.
    pub fn cut_body_to(&mut self, body_bytes: u32) {
        let body_bytes = usize::try_from(body_bytes).unwrap_or(usize::MAX);
        self.prefix.truncate(self.header_len.saturating_add(body_bytes));
    }
}

impl Session {
    /// Summaries of the messages with these UIDs in one round trip: EXAMINE and
    /// `UID FETCH <set> (UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE
    /// BODY.PEEK[HEADER]<0.H> BODY.PEEK[TEXT]<0.N>)` (RFC 9051 §6.4.5; BODY.PEEK leaves \Seen
    /// alone), pipelined: the prefix is the header block, whatever its length (up to
    /// [`MAX_HEADER_BYTES`]), and the first `prefix_bytes` of the body. Missing (expunged)
    /// UIDs are absent from the result, which is in UID order.
    ///
    /// The EXAMINE is sent even when the folder is open already: a session that waited in a
    /// pool sees the folder as of its last command, and Dovecot answers FETCH and SEARCH from
    /// that view, so messages that arrived since would be missing.
    pub async fn fetch_summaries(
        &mut self,
        raw_name: &str,
        uids: &[u32],
        prefix_bytes: u32,
    ) -> Result<Vec<Summary>, ImapError> {
        self.fetch_summaries_and_flags(raw_name, uids, prefix_bytes, &[]).await
    }

    /// [`fetch_summaries`](Self::fetch_summaries) of `uids`, and in the same round trip only
    /// the flags of `flags_only` (`UID FETCH <set> (UID FLAGS)`): those come back as summaries
    /// with nothing but their UID and flags. The caller holds the rest of those messages
    /// already (it never changes for a UID while the UIDVALIDITY, [`Session::selected`]
    /// afterwards, stays the same).
    pub async fn fetch_summaries_and_flags(
        &mut self,
        raw_name: &str,
        uids: &[u32],
        prefix_bytes: u32,
        flags_only: &[u32],
    ) -> Result<Vec<Summary>, ImapError> {
        let result = async {
            self.begin().await?;
            let summaries =
                self.fetch_summaries_inner(raw_name, uids, prefix_bytes, flags_only).await;
            self.explain_refusal(raw_name, summaries).await
        }
        .await;
        self.end(result)
    }

    async fn fetch_summaries_inner(
        &mut self,
        raw_name: &str,
        uids: &[u32],
        prefix_bytes: u32,
        flags_only: &[u32],
    ) -> Result<Vec<Summary>, ImapError> {
        let ranges = uidset::ranges_of(uids);
        let flag_ranges = uidset::ranges_of(flags_only);
        let items = if prefix_bytes > 0 {
            format!(
                " (UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE \
                 BODY.PEEK[HEADER]<0.{MAX_HEADER_BYTES}> BODY.PEEK[TEXT]<0.{prefix_bytes}>)"
            )
        } else {
            " (UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE)".to_string()
        };
        let mut commands = vec![self.examine_command(raw_name, None)];
        for set in uidset::format_sets(&ranges, MAX_SET_LEN) {
            commands.push(self.command("UID FETCH").raw(" ").raw(&set).raw(&items).end());
        }
        for set in uidset::format_sets(&flag_ranges, MAX_SET_LEN) {
            commands.push(self.command("UID FETCH").raw(" ").raw(&set).raw(" (UID FLAGS)").end());
        }
        let mut opening = MailboxOpening::new(raw_name);
        let mut summaries: Vec<Summary> = Vec::with_capacity(uids.len() + flags_only.len());
        let mut index_of: HashMap<u32, usize> = HashMap::with_capacity(summaries.capacity());
        let done = self
            .execute(&commands, &mut |data| match data {
                // ours: a requested UID with more than flags (a flag-only FETCH is someone
                // else's change, pushed by the server), or the flags asked for alone (a
                // pushed flag change then says the same: the flags as they are now)
                Untagged::Fetch { data, .. }
                    if data.uid.is_some_and(|uid| {
                        (in_ranges(&ranges, uid)
                            && (data.size.is_some()
                                || data.body_structure.is_some()
                                || data.internal_date.is_some()
                                || !data.sections.is_empty()))
                            || (in_ranges(&flag_ranges, uid) && data.flags.is_some())
                    }) =>
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
                other => opening.take(other),
            })
            .await?;
        let mut done = done.into_iter();
        let examined =
            done.next().ok_or_else(|| ImapError::Protocol("no completion".to_string()))?;
        self.finish_open(opening, &examined)?;
        for tagged in done {
            ensure_ok(&tagged, "UID FETCH")?;
        }
        summaries.sort_unstable_by_key(|summary| summary.uid);
        Ok(summaries)
    }

    /// The whole raw message with its flags and internal date, or `None` if the UID does not
    /// exist (any more). Over `max_bytes` it is refused with [`ImapError::TooLarge`] after at
    /// most `max_bytes + 1` bytes were transferred: one round trip asks for FLAGS,
    /// INTERNALDATE, RFC822.SIZE and `BODY.PEEK[]<0.max+1>` together.
    pub async fn fetch_message(
        &mut self,
        raw_name: &str,
        uid: u32,
        max_bytes: u32,
    ) -> Result<Option<Message>, ImapError> {
        let fetched = self.fetch_section(raw_name, uid, "", max_bytes).await?;
        Ok(fetched.map(|(data, raw)| Message {
            uid,
            flags: data.flags.unwrap_or_default(),
            internal_date: data.internal_date.unwrap_or(0),
            raw,
        }))
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
            // refused here rather than by the server: the rest of the command must stay ours
            return Err(ImapError::Refused {
                command: "UID FETCH",
                status: RefusalStatus::Bad,
                text: format!("invalid section {section:?}"),
            });
        }
        let fetched = self.fetch_section(raw_name, uid, section, max_bytes).await?;
        Ok(fetched.map(|(_, bytes)| bytes))
    }

    /// EXAMINE (fresh, see [`fetch_summaries`](Self::fetch_summaries)) and one UID FETCH of a
    /// section, pipelined: the FETCH data and the section's bytes.
    async fn fetch_section(
        &mut self,
        raw_name: &str,
        uid: u32,
        section: &str,
        max_bytes: u32,
    ) -> Result<Option<(FetchData, Vec<u8>)>, ImapError> {
        let result = async {
            self.begin().await?;
            let fetched = self.fetch_section_inner(raw_name, uid, section, max_bytes).await;
            self.explain_refusal(raw_name, fetched).await
        }
        .await;
        self.end(result)
    }

    async fn fetch_section_inner(
        &mut self,
        raw_name: &str,
        uid: u32,
        section: &str,
        max_bytes: u32,
    ) -> Result<Option<(FetchData, Vec<u8>)>, ImapError> {
        let probe = u64::from(max_bytes) + 1;
        // RFC822.SIZE tells the real size of a whole message; for parts only the partial
        // fetch's length tells (it is at most max_bytes + 1)
        let items = if section.is_empty() { "FLAGS INTERNALDATE RFC822.SIZE " } else { "" };
        let examine = self.examine_command(raw_name, None);
        let fetch = self
            .command("UID FETCH")
            .raw(&format!(" {uid} (UID {items}BODY.PEEK[{section}]<0.{probe}>)"))
            .end();
        let mut opening = MailboxOpening::new(raw_name);
        let mut found: Option<FetchData> = None;
        let max_literal = usize::try_from(probe).unwrap_or(usize::MAX);
        let done = self
            .execute_with_literal_limit(max_literal, &[examine, fetch], &mut |data| match data {
                Untagged::Fetch { data, .. }
                    if data.uid == Some(uid) && data.section(section).is_some() =>
                {
                    found = Some(*data);
                    None
                }
                other => opening.take(other),
            })
            .await?;
        let [examined, fetched] = <[_; 2]>::try_from(done)
            .map_err(|_| ImapError::Protocol("missing completions".to_string()))?;
        self.finish_open(opening, &examined)?;
        ensure_ok(&fetched, "UID FETCH")?;
        let Some(mut data) = found else { return Ok(None) };
        let limit = u64::from(max_bytes);
        if let Some(size) = data.size.filter(|&size| size > limit) {
            return Err(ImapError::TooLarge { size, limit });
        }
        let sections = std::mem::take(&mut data.sections);
        let bytes = sections
            .into_iter()
            .find(|found| found.section.eq_ignore_ascii_case(section))
            .and_then(|found| found.data)
            .unwrap_or_default();
        let length = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if length > limit {
            return Err(ImapError::TooLarge { size: length, limit });
        }
        Ok(Some((data, bytes)))
    }
}

/// Whether `uid` is in one of the sorted, disjoint `ranges`.
fn in_ranges(ranges: &[uidset::UidRange], uid: u32) -> bool {
    ranges
        .binary_search_by(|range| {
            if range.last < uid {
                std::cmp::Ordering::Less
            } else if range.first > uid {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix_of(header: &[u8], text: &[u8]) -> Vec<u8> {
        let mut summary = Summary::default();
        summary.set_prefix(header.to_vec(), text.to_vec());
        summary.prefix
    }

    #[test]
    fn the_text_follows_a_whole_header_block() {
        assert_eq!(prefix_of(b"A: 1\r\n\r\n", b"body"), b"A: 1\r\n\r\nbody");
        assert_eq!(prefix_of(b"A: 1\n\n", b"body"), b"A: 1\n\nbody");
        // a message without a body: its header block is all of it
        assert_eq!(prefix_of(b"A: 1\r\n", b""), b"A: 1\r\n");
    }

    #[test]
    fn no_text_after_a_cut_header_block_or_one_without_its_empty_line() {
        assert_eq!(prefix_of(b"A: 1\r\n", b"body"), b"A: 1\r\n");
        let mut long = vec![b'x'; MAX_HEADER_BYTES as usize - 4];
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(prefix_of(&long, b"body"), long);
        let mut summary = Summary::default();
        summary.set_prefix(long.clone(), b"body".to_vec());
        summary.cut_body_to(0);
        assert_eq!(summary.prefix.len(), long.len());
    }

    #[test]
    fn cutting_keeps_the_header_block_and_that_many_body_bytes() {
        let mut summary = Summary::default();
        summary.set_prefix(b"A: 1\r\n\r\n".to_vec(), b"0123456789".to_vec());
        summary.cut_body_to(4);
        assert_eq!(summary.prefix, b"A: 1\r\n\r\n0123");
        summary.cut_body_to(100);
        assert_eq!(summary.prefix, b"A: 1\r\n\r\n0123");
    }
}
