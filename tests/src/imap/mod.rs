//! A small blocking IMAP client for tests: preparing mailboxes and checking what the gateway did
//! to them.  Not for the product (no TLS, no pipelining beyond MULTIAPPEND, minimal parsing).

mod response;
mod syntax;

use std::collections::VecDeque;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use response::{LineReader, is_timeout};
pub use response::{Response, ResponseLine, Status};
pub use syntax::{Value, parse_uid_set, quote};

/// Default time allowed for each read and write.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Pipelined (LITERAL+) data is written in chunks of about this size.
const WRITE_CHUNK: usize = 256 * 1024;

/// Counts from SELECT / EXAMINE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxStatus {
    pub exists: u32,
    pub uid_validity: u32,
    pub uid_next: u32,
}

/// One `* LIST` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub attributes: Vec<String>,
    pub delimiter: Option<String>,
    pub name: String,
}

impl ListEntry {
    pub fn has_attribute(&self, attribute: &str) -> bool {
        self.attributes.iter().any(|a| a.eq_ignore_ascii_case(attribute))
    }
}

/// One `* n FETCH (...)` response: its items as name/value pairs.
#[derive(Debug, Clone)]
pub struct FetchResponse {
    pub seq: u32,
    pub items: Vec<(String, Value)>,
}

impl FetchResponse {
    pub fn item(&self, name: &str) -> Option<&Value> {
        self.items.iter().find(|(item, _)| item.eq_ignore_ascii_case(name)).map(|(_, value)| value)
    }

    pub fn uid(&self) -> Option<u32> {
        self.item("UID").and_then(Value::as_number)
    }

    pub fn flags(&self) -> Vec<String> {
        match self.item("FLAGS") {
            Some(Value::List(flags)) => flags.iter().filter_map(Value::as_text).collect(),
            _ => Vec::new(),
        }
    }
}

/// Flags and INTERNALDATE for APPEND.
#[derive(Debug, Clone, Default)]
pub struct AppendOptions {
    pub flags: Vec<String>,
    /// IMAP date-time, e.g. `02-Jun-2025 09:00:00 +0000`.
    pub internal_date: Option<String>,
}

/// One piece of a command: text as is, or a literal.
enum Part<'a> {
    Text(String),
    /// `non_sync`: LITERAL+ (`{n+}`), sent without waiting for the server's `+`.
    Literal {
        data: &'a [u8],
        non_sync: bool,
    },
}

/// An astring argument: quoted when possible, else a (synchronising) literal.
fn astring(text: &str) -> Part<'_> {
    match quote(text) {
        Ok(quoted) => Part::Text(quoted),
        Err(_) => Part::Literal { data: text.as_bytes(), non_sync: false },
    }
}

fn text(text: impl Into<String>) -> Part<'static> {
    Part::Text(text.into())
}

#[derive(Debug)]
pub struct ImapClient {
    reader: LineReader,
    next_tag: u32,
    timeout: Duration,
    /// Untagged lines that arrived before IDLE's continuation, handed out by `read_line` first.
    queued: VecDeque<ResponseLine>,
    idle_tag: Option<String>,
}

impl ImapClient {
    /// Connects and reads the greeting (which must be `* OK` or `* PREAUTH`).
    pub fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, DEFAULT_TIMEOUT)
            .with_context(|| format!("connecting to IMAP {addr}"))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let mut client = Self {
            reader: LineReader::new(stream),
            next_tag: 1,
            timeout: DEFAULT_TIMEOUT,
            queued: VecDeque::new(),
            idle_tag: None,
        };
        client.set_timeout(DEFAULT_TIMEOUT)?;
        let greeting = client
            .read_response_line()
            .with_context(|| format!("reading the greeting of IMAP {addr}"))?;
        if !(greeting.text.starts_with("* OK") || greeting.text.starts_with("* PREAUTH")) {
            bail!("IMAP {addr} greeted with {:?}", greeting.text);
        }
        Ok(client)
    }

    /// Time allowed for each read and write from now on.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        let stream = self.reader.stream.get_ref();
        stream.set_read_timeout(Some(timeout)).context("setting the read timeout")?;
        stream.set_write_timeout(Some(timeout)).context("setting the write timeout")?;
        self.timeout = timeout;
        Ok(())
    }

    /// Runs a command without literals (text after the tag, without CRLF); any completion status.
    pub fn execute(&mut self, command: &str) -> Result<Response> {
        self.execute_parts(&[text(command)]).with_context(|| format!("IMAP {command}"))
    }

    /// Like [`execute`](Self::execute), but a NO or BAD completion is an error.
    pub fn run(&mut self, command: &str) -> Result<Response> {
        let response = self.execute(command)?;
        ensure_ok(response, command)
    }

    /// LOGIN; a refusal (NO) is returned as a response, not as an error.
    pub fn try_login(&mut self, user: &str, password: &str) -> Result<Response> {
        let parts = [text("LOGIN "), astring(user), text(" "), astring(password)];
        self.execute_parts(&parts).with_context(|| format!("IMAP LOGIN as {user}"))
    }

    pub fn login(&mut self, user: &str, password: &str) -> Result<()> {
        let response = self.try_login(user, password)?;
        ensure_ok(response, &format!("LOGIN as {user}")).map(drop)
    }

    /// The capabilities in upper case (they change after LOGIN: ask again then).
    pub fn capabilities(&mut self) -> Result<Vec<String>> {
        let response = self.run("CAPABILITY")?;
        let line = response
            .lines_of("CAPABILITY")
            .next()
            .context("CAPABILITY without a * CAPABILITY line")?;
        Ok(line.text.split(' ').skip(2).map(str::to_ascii_uppercase).collect())
    }

    pub fn has_capability(&mut self, capability: &str) -> Result<bool> {
        let wanted = capability.to_ascii_uppercase();
        Ok(self.capabilities()?.contains(&wanted))
    }

    pub fn select(&mut self, mailbox: &str) -> Result<MailboxStatus> {
        self.open_mailbox("SELECT", mailbox)
    }

    /// Read-only SELECT: does not clear \Recent and cannot change flags.
    pub fn examine(&mut self, mailbox: &str) -> Result<MailboxStatus> {
        self.open_mailbox("EXAMINE", mailbox)
    }

    fn open_mailbox(&mut self, verb: &str, mailbox: &str) -> Result<MailboxStatus> {
        let parts = [text(format!("{verb} ")), astring(mailbox)];
        let what = format!("{verb} {mailbox}");
        let response = self.execute_parts(&parts).with_context(|| what.clone())?;
        let response = ensure_ok(response, &what)?;
        let exists = response.untagged.iter().find_map(|l| l.numbered("EXISTS"));
        let code = |name: &str| {
            response.untagged.iter().find_map(|l| l.code_value(name)).and_then(|v| v.parse().ok())
        };
        Ok(MailboxStatus {
            exists: exists.with_context(|| format!("{what}: no EXISTS"))?,
            uid_validity: code("UIDVALIDITY").with_context(|| format!("{what}: no UIDVALIDITY"))?,
            uid_next: code("UIDNEXT").with_context(|| format!("{what}: no UIDNEXT"))?,
        })
    }

    /// Re-EXAMINEs `mailbox` until it holds at least `count` messages (mail delivered through
    /// Postfix arrives asynchronously); fails after `timeout`.
    pub fn wait_for_messages(
        &mut self,
        mailbox: &str,
        count: u32,
        timeout: Duration,
    ) -> Result<MailboxStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.examine(mailbox)?;
            if status.exists >= count {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("{mailbox} has {} message(s), not {count}, after {timeout:?}", status.exists);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn list(&mut self, reference: &str, pattern: &str) -> Result<Vec<ListEntry>> {
        let parts = [text("LIST "), astring(reference), text(" "), astring(pattern)];
        let what = format!("LIST {reference:?} {pattern:?}");
        let response = self.execute_parts(&parts).with_context(|| what.clone())?;
        let response = ensure_ok(response, &what)?;
        response.lines_of("LIST").map(parse_list_line).collect()
    }

    /// APPENDs one message; returns its UID when the server reports it (UIDPLUS).
    pub fn append(
        &mut self,
        mailbox: &str,
        message: &[u8],
        options: &AppendOptions,
    ) -> Result<Option<u32>> {
        let uids = self.multi_append(mailbox, &[(message, options)])?;
        Ok(uids.first().copied())
    }

    /// APPENDs several messages in one command (MULTIAPPEND), without a round trip per message
    /// when the server has LITERAL+.  Returns the new UIDs when the server reports them.
    pub fn multi_append(
        &mut self,
        mailbox: &str,
        messages: &[(&[u8], &AppendOptions)],
    ) -> Result<Vec<u32>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        // a single message gains nothing from LITERAL+, so it skips the CAPABILITY round trip
        let non_sync = messages.len() > 1 && self.has_capability("LITERAL+")?;
        let mut parts = vec![text("APPEND "), astring(mailbox)];
        for (message, options) in messages {
            parts.push(text(format!(" ({})", options.flags.join(" "))));
            if let Some(date) = &options.internal_date {
                parts.push(text(format!(" {}", quote(date)?)));
            }
            parts.push(text(" "));
            parts.push(Part::Literal { data: message, non_sync });
        }
        let what = format!("APPEND of {} message(s) to {mailbox}", messages.len());
        let response = self.execute_parts(&parts).with_context(|| what.clone())?;
        let response = ensure_ok(response, &what)?;
        match response.code_value("APPENDUID") {
            Some(value) => {
                let set = value.split(' ').nth(1).context("APPENDUID without uids")?;
                parse_uid_set(set)
            }
            None => Ok(Vec::new()),
        }
    }

    /// UID SEARCH with the criteria as IMAP text (quote strings with [`quote`]).
    pub fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>> {
        let response = self.run(&format!("UID SEARCH {criteria}"))?;
        let mut uids = Vec::new();
        for line in response.lines_of("SEARCH") {
            for word in line.text.split(' ').skip(2).filter(|w| !w.is_empty()) {
                uids.push(
                    word.parse().with_context(|| format!("bad SEARCH result {:?}", line.text))?,
                );
            }
        }
        Ok(uids)
    }

    /// UID FETCH of arbitrary items, e.g. `(UID FLAGS INTERNALDATE)`.
    pub fn uid_fetch(&mut self, uid_set: &str, items: &str) -> Result<Vec<FetchResponse>> {
        let response = self.run(&format!("UID FETCH {uid_set} {items}"))?;
        response
            .untagged
            .iter()
            .filter(|line| line.numbered("FETCH").is_some())
            .map(parse_fetch_line)
            .collect()
    }

    /// (uid, flags) of the messages in the set.
    pub fn uid_fetch_flags(&mut self, uid_set: &str) -> Result<Vec<(u32, Vec<String>)>> {
        self.uid_fetch(uid_set, "(UID FLAGS)")?
            .into_iter()
            .map(|fetch| {
                let uid =
                    fetch.uid().with_context(|| format!("FETCH {} without UID", fetch.seq))?;
                Ok((uid, fetch.flags()))
            })
            .collect()
    }

    /// The whole message (BODY.PEEK[]: unlike RFC822 it leaves \Seen alone).
    pub fn uid_fetch_rfc822(&mut self, uid: u32) -> Result<Vec<u8>> {
        let fetches = self.uid_fetch(&uid.to_string(), "(UID BODY.PEEK[])")?;
        let fetch = fetches
            .into_iter()
            .find(|f| f.uid() == Some(uid))
            .with_context(|| format!("no message with UID {uid}"))?;
        match fetch.item("BODY[]") {
            Some(Value::Bytes(body)) => Ok(body.clone()),
            other => bail!("FETCH of UID {uid}: BODY[] is {other:?}"),
        }
    }

    /// UID STORE; `operation` is `FLAGS`, `+FLAGS`, `-FLAGS` (optionally `.SILENT`).
    pub fn uid_store(&mut self, uid_set: &str, operation: &str, flags: &[&str]) -> Result<()> {
        self.run(&format!("UID STORE {uid_set} {operation} ({})", flags.join(" "))).map(drop)
    }

    pub fn uid_move(&mut self, uid_set: &str, destination: &str) -> Result<()> {
        let parts = [text(format!("UID MOVE {uid_set} ")), astring(destination)];
        let what = format!("UID MOVE {uid_set} to {destination}");
        let response = self.execute_parts(&parts).with_context(|| what.clone())?;
        ensure_ok(response, &what).map(drop)
    }

    /// UID EXPUNGE (UIDPLUS): removes only these messages, if flagged \Deleted.
    pub fn uid_expunge(&mut self, uid_set: &str) -> Result<()> {
        self.run(&format!("UID EXPUNGE {uid_set}")).map(drop)
    }

    /// Starts IDLE (on the selected mailbox); read pushed lines with [`read_line`](Self::read_line)
    /// and end with [`done`](Self::done).
    pub fn idle(&mut self) -> Result<()> {
        if self.idle_tag.is_some() {
            bail!("already in IDLE");
        }
        let tag = self.new_tag();
        self.write(format!("{tag} IDLE\r\n").as_bytes()).context("sending IDLE")?;
        loop {
            let line = self.read_response_line().context("waiting for IDLE to start")?;
            if line.is_continuation() {
                break;
            }
            if !line.is_untagged() {
                bail!("IDLE refused: {:?}", line.text);
            }
            self.queued.push_back(line);
        }
        self.idle_tag = Some(tag);
        Ok(())
    }

    /// The next raw response line, or `None` if nothing arrived within `timeout`.
    pub fn read_line(&mut self, timeout: Duration) -> Result<Option<ResponseLine>> {
        if let Some(line) = self.queued.pop_front() {
            return Ok(Some(line));
        }
        let stream = self.reader.stream.get_ref();
        stream.set_read_timeout(Some(timeout)).context("setting the read timeout")?;
        let result = self.reader.read_line();
        self.reader
            .stream
            .get_ref()
            .set_read_timeout(Some(self.timeout))
            .context("restoring the read timeout")?;
        match result {
            Ok(line) => Ok(Some(line)),
            Err(error) if is_timeout(&error) => Ok(None),
            Err(error) => Err(error).context("reading an IMAP response line"),
        }
    }

    /// Ends IDLE; the response's untagged lines are those not yet read with `read_line`.
    pub fn done(&mut self) -> Result<Response> {
        let tag = self.idle_tag.take().context("DONE without IDLE")?;
        self.write(b"DONE\r\n").context("sending DONE")?;
        let untagged = self.queued.drain(..).collect();
        let response = self.read_until_tagged(&tag, untagged).context("ending IDLE")?;
        ensure_ok(response, "IDLE")
    }

    pub fn logout(mut self) -> Result<()> {
        self.run("LOGOUT").map(drop)
    }

    fn new_tag(&mut self) -> String {
        let tag = format!("A{:04}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    fn execute_parts(&mut self, parts: &[Part<'_>]) -> Result<Response> {
        let tag = self.new_tag();
        let mut pending = format!("{tag} ").into_bytes();
        let mut untagged = Vec::new();
        for part in parts {
            match part {
                Part::Text(text) => pending.extend_from_slice(text.as_bytes()),
                Part::Literal { data, non_sync: true } => {
                    // no round trip: collected and written in big chunks
                    pending.extend_from_slice(format!("{{{}+}}\r\n", data.len()).as_bytes());
                    pending.extend_from_slice(data);
                    if pending.len() >= WRITE_CHUNK {
                        self.write(&pending)?;
                        pending.clear();
                    }
                }
                Part::Literal { data, non_sync: false } => {
                    pending.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
                    self.write(&pending)?;
                    pending.clear();
                    // the server may refuse the command instead of inviting the literal
                    if let Some(refusal) = self.wait_for_continuation(&tag, &mut untagged)? {
                        return Ok(refusal);
                    }
                    self.write(data)?;
                }
            }
        }
        pending.extend_from_slice(b"\r\n");
        self.write(&pending)?;
        self.read_until_tagged(&tag, untagged)
    }

    fn wait_for_continuation(
        &mut self,
        tag: &str,
        untagged: &mut Vec<ResponseLine>,
    ) -> Result<Option<Response>> {
        loop {
            let line = self.read_response_line()?;
            if line.is_continuation() {
                return Ok(None);
            }
            if line.is_untagged() {
                untagged.push(line);
            } else {
                return Response::from_tagged(line, tag, std::mem::take(untagged)).map(Some);
            }
        }
    }

    fn read_until_tagged(
        &mut self,
        tag: &str,
        mut untagged: Vec<ResponseLine>,
    ) -> Result<Response> {
        loop {
            let line = self.read_response_line()?;
            if line.is_untagged() || line.is_continuation() {
                untagged.push(line);
            } else {
                return Response::from_tagged(line, tag, untagged);
            }
        }
    }

    fn read_response_line(&mut self) -> Result<ResponseLine> {
        self.reader.read_line().map_err(|error| {
            let timeout = self.timeout;
            if is_timeout(&error) {
                anyhow::Error::new(error).context(format!("no IMAP response within {timeout:?}"))
            } else {
                anyhow::Error::new(error).context("reading an IMAP response")
            }
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.reader.stream.get_mut().write_all(bytes).context("writing to the IMAP connection")
    }
}

fn ensure_ok(response: Response, what: &str) -> Result<Response> {
    match response.status {
        Status::Ok => Ok(response),
        status => bail!("IMAP {what} failed: {status:?} {}", response.text),
    }
}

fn parse_list_line(line: &ResponseLine) -> Result<ListEntry> {
    let values = line.values()?;
    let context = || format!("malformed LIST line {:?}", line.text);
    let [_, _, Value::List(attributes), delimiter, name] = values.as_slice() else {
        bail!(context());
    };
    Ok(ListEntry {
        attributes: attributes.iter().filter_map(Value::as_text).collect(),
        delimiter: delimiter.as_text(),
        name: name.as_text().with_context(context)?,
    })
}

fn parse_fetch_line(line: &ResponseLine) -> Result<FetchResponse> {
    let values = line.values()?;
    let context = || format!("malformed FETCH line {:?}", line.text);
    let [_, seq, _, Value::List(items)] = values.as_slice() else {
        bail!(context());
    };
    let seq = seq.as_number().with_context(context)?;
    let mut pairs = Vec::new();
    for pair in items.chunks(2) {
        let [name, value] = pair else { bail!(context()) };
        let name = name.as_text().with_context(context)?;
        pairs.push((name, value.clone()));
    }
    Ok(FetchResponse { seq, items: pairs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_lines_become_items() -> Result<()> {
        let line = ResponseLine {
            text: r"* 2 FETCH (UID 9 FLAGS (\Seen \Flagged) BODY[] {5})".to_string(),
            literals: vec![b"hello".to_vec()],
        };
        let fetch = parse_fetch_line(&line)?;
        assert_eq!(fetch.seq, 2);
        assert_eq!(fetch.uid(), Some(9));
        assert_eq!(fetch.flags(), vec![r"\Seen", r"\Flagged"]);
        assert_eq!(fetch.item("body[]"), Some(&Value::Bytes(b"hello".to_vec())));
        Ok(())
    }

    #[test]
    fn list_lines_become_entries() -> Result<()> {
        let line = ResponseLine {
            text: r#"* LIST (\HasNoChildren \Sent) "/" Sent"#.to_string(),
            literals: Vec::new(),
        };
        let entry = parse_list_line(&line)?;
        assert_eq!(entry.name, "Sent");
        assert_eq!(entry.delimiter.as_deref(), Some("/"));
        assert!(entry.has_attribute(r"\sent"));
        Ok(())
    }
}
