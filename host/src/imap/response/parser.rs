//! Parsing one framed response (RFC 9051 §7 and §9, RFC 3501 §7, RFC 7162, RFC 4731, RFC 5258).
//!
//! Tolerant where servers are known to stray: repeated spaces, unknown responses and FETCH items
//! (skipped by shape), NIL where a string belongs. A response that still cannot be read is an
//! error for the caller to judge: fatal for a tagged line, skippable for untagged data.

use std::borrow::Cow;

use super::cursor::{Brackets, Cursor, ParseResult, text, text_of};
use super::{
    Code, ESearch, FetchData, ListEntry, Response, SectionData, Status, StatusItems, Tagged,
    Untagged,
};
use crate::imap::bodystructure;
use crate::imap::capabilities::Capabilities;
use crate::imap::uidset::{self, UidRange};

/// Parses one response: a frame from [`super::framing::find_frame`], CRLF included.
pub fn parse_response(frame: &[u8]) -> ParseResult<Response> {
    let line = frame.strip_suffix(b"\n").unwrap_or(frame);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut cursor = Cursor::new(line);
    match cursor.peek() {
        Some(b'+') => {
            cursor.eat(b'+');
            cursor.skip_spaces();
            Ok(Response::Continuation(text_of(cursor.rest())))
        }
        Some(b'*') => {
            cursor.eat(b'*');
            cursor.space()?;
            parse_untagged(&mut cursor).map(Response::Untagged)
        }
        _ => {
            let tag = text_of(cursor.atom(Brackets::Both)?);
            cursor.space()?;
            let status = match parse_status(&mut cursor)? {
                status @ (Status::Ok | Status::No | Status::Bad) => status,
                _ => return cursor.error("OK, NO or BAD after a tag"),
            };
            let (code, text) = parse_resp_text(&mut cursor)?;
            Ok(Response::Tagged(Tagged { tag, status, code, text }))
        }
    }
}

fn parse_status(cursor: &mut Cursor<'_>) -> ParseResult<Status> {
    let word = cursor.atom(Brackets::Neither)?;
    Ok(match word.to_ascii_uppercase().as_slice() {
        b"OK" => Status::Ok,
        b"NO" => Status::No,
        b"BAD" => Status::Bad,
        b"PREAUTH" => Status::PreAuth,
        b"BYE" => Status::Bye,
        _ => return cursor.error("a status"),
    })
}

/// `resp-text = ["[" resp-text-code "]" SP] text`; the text may be missing (a known quirk).
fn parse_resp_text(cursor: &mut Cursor<'_>) -> ParseResult<(Option<Code>, String)> {
    cursor.skip_spaces();
    let code = if cursor.peek() == Some(b'[') {
        let inside = cursor.bracketed()?;
        cursor.skip_spaces();
        Some(parse_code(inside))
    } else {
        None
    };
    Ok((code, text_of(cursor.rest())))
}

fn parse_code(inside: &[u8]) -> Code {
    let mut cursor = Cursor::new(inside);
    let Ok(name) = cursor.atom(Brackets::Neither) else {
        return Code::Other { name: String::new(), arguments: text_of(inside) };
    };
    let name = name.to_ascii_uppercase();
    cursor.skip_spaces();
    let known = parse_known_code(&name, &mut cursor);
    match known {
        Some(code) if cursor.at_end() => code,
        _ => {
            Code::Other { name: text_of(&name), arguments: text_of(cursor_rest_of(inside, &name)) }
        }
    }
}

fn cursor_rest_of<'a>(inside: &'a [u8], name: &[u8]) -> &'a [u8] {
    inside.get(name.len()..).map(<[u8]>::trim_ascii_start).unwrap_or_default()
}

fn parse_known_code(name: &[u8], cursor: &mut Cursor<'_>) -> Option<Code> {
    Some(match name {
        b"UIDVALIDITY" => Code::UidValidity(cursor.number_u32().ok()?),
        b"UIDNEXT" => Code::UidNext(cursor.number_u32().ok()?),
        b"UNSEEN" => Code::Unseen(cursor.number_u32().ok()?),
        b"HIGHESTMODSEQ" => Code::HighestModSeq(cursor.number().ok()?),
        b"NOMODSEQ" => Code::NoModSeq,
        b"CAPABILITY" => Code::Capability(parse_capability_atoms(cursor).ok()?),
        b"PERMANENTFLAGS" => Code::PermanentFlags(parse_flag_list(cursor).ok()?),
        b"READ-ONLY" => Code::ReadOnly,
        b"READ-WRITE" => Code::ReadWrite,
        b"TRYCREATE" => Code::TryCreate,
        b"NONEXISTENT" => Code::NonExistent,
        b"CLOSED" => Code::Closed,
        b"APPENDUID" => {
            let uid_validity = cursor.number_u32().ok()?;
            cursor.space().ok()?;
            Code::AppendUid { uid_validity, uids: uid_set(cursor).ok()? }
        }
        b"COPYUID" => {
            let uid_validity = cursor.number_u32().ok()?;
            cursor.space().ok()?;
            let source = uid_set(cursor).ok()?;
            cursor.space().ok()?;
            Code::CopyUid { uid_validity, source, destination: uid_set(cursor).ok()? }
        }
        _ => return None,
    })
}

fn parse_untagged(cursor: &mut Cursor<'_>) -> ParseResult<Untagged> {
    if cursor.peek().is_some_and(|b| b.is_ascii_digit()) {
        return parse_numbered(cursor);
    }
    let name = cursor.atom(Brackets::Neither)?.to_ascii_uppercase();
    match name.as_slice() {
        b"OK" | b"NO" | b"BAD" | b"PREAUTH" | b"BYE" => {
            let status = match name.as_slice() {
                b"OK" => Status::Ok,
                b"NO" => Status::No,
                b"BAD" => Status::Bad,
                b"PREAUTH" => Status::PreAuth,
                _ => Status::Bye,
            };
            let (code, text) = parse_resp_text(cursor)?;
            Ok(Untagged::Condition { status, code, text })
        }
        b"CAPABILITY" => {
            cursor.skip_spaces();
            parse_capability_atoms(cursor).map(Untagged::Capability)
        }
        b"ENABLED" => {
            let mut enabled = Vec::new();
            cursor.skip_spaces();
            while !cursor.at_end() {
                enabled.push(text_of(cursor.atom(Brackets::Open)?).to_ascii_uppercase());
                cursor.skip_spaces();
            }
            Ok(Untagged::Enabled(enabled))
        }
        b"LIST" | b"LSUB" => {
            cursor.space()?;
            parse_list(cursor, name.as_slice() == b"LSUB").map(Untagged::List)
        }
        b"STATUS" => {
            cursor.space()?;
            let raw_name = text(cursor.astring()?);
            cursor.space()?;
            let items = parse_status_items(cursor)?;
            Ok(Untagged::Status { raw_name, items })
        }
        b"SEARCH" => parse_search(cursor),
        b"ESEARCH" => parse_esearch(cursor).map(Untagged::ESearch),
        b"FLAGS" => {
            cursor.skip_spaces();
            parse_flag_list(cursor).map(Untagged::Flags)
        }
        b"VANISHED" => {
            cursor.space()?;
            let mut earlier = false;
            if cursor.eat(b'(') {
                let word = cursor.atom(Brackets::Neither)?;
                earlier = word.eq_ignore_ascii_case(b"EARLIER");
                cursor.expect(b')', "the end of (EARLIER)")?;
                cursor.space()?;
            }
            Ok(Untagged::Vanished { earlier, uids: uid_set(cursor)? })
        }
        _ => Ok(Untagged::Other(text_of(&name))),
    }
}

/// `* n EXISTS`, `* n RECENT`, `* n EXPUNGE`, `* n FETCH (...)`.
fn parse_numbered(cursor: &mut Cursor<'_>) -> ParseResult<Untagged> {
    let number = cursor.number_u32()?;
    cursor.space()?;
    let name = cursor.atom(Brackets::Neither)?.to_ascii_uppercase();
    match name.as_slice() {
        b"EXISTS" => Ok(Untagged::Exists(number)),
        b"RECENT" => Ok(Untagged::Recent(number)),
        b"EXPUNGE" => Ok(Untagged::Expunge(number)),
        b"FETCH" => {
            cursor.space()?;
            let data = parse_fetch_items(cursor)?;
            Ok(Untagged::Fetch { seq: number, data: Box::new(data) })
        }
        _ => Ok(Untagged::Other(text_of(&name))),
    }
}

fn parse_capability_atoms(cursor: &mut Cursor<'_>) -> ParseResult<Capabilities> {
    let mut atoms = Vec::new();
    while !cursor.at_end() {
        atoms.push(cursor.atom(Brackets::Open)?);
        cursor.skip_spaces();
    }
    Ok(Capabilities::from_atoms(atoms))
}

/// `"(" [flag *(SP flag)] ")"`
fn parse_flag_list(cursor: &mut Cursor<'_>) -> ParseResult<Vec<String>> {
    cursor.expect(b'(', "a flag list")?;
    let mut flags = Vec::new();
    cursor.skip_spaces();
    while !cursor.eat(b')') {
        flags.push(text_of(cursor.atom(Brackets::Open)?));
        cursor.skip_spaces();
    }
    Ok(flags)
}

/// `mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
/// [SP mbox-list-extended]`
fn parse_list(cursor: &mut Cursor<'_>, from_lsub: bool) -> ParseResult<ListEntry> {
    let attributes = parse_flag_list(cursor)?;
    cursor.space()?;
    let delimiter = match cursor.nstring()? {
        None => None,
        Some(bytes) => text(bytes).chars().next(),
    };
    cursor.space()?;
    let raw_name = text(cursor.astring()?);
    // mbox-list-extended (CHILDINFO, OLDNAME...): not used, skipped by shape
    cursor.skip_spaces();
    while !cursor.at_end() {
        cursor.skip_value()?;
    }
    Ok(ListEntry { attributes, delimiter, raw_name, from_lsub })
}

/// `"(" [status-att-val *(SP status-att-val)] ")"`
fn parse_status_items(cursor: &mut Cursor<'_>) -> ParseResult<StatusItems> {
    cursor.expect(b'(', "STATUS items")?;
    let mut items = StatusItems::default();
    cursor.skip_spaces();
    while !cursor.eat(b')') {
        let name = cursor.atom(Brackets::Neither)?.to_ascii_uppercase();
        cursor.space()?;
        match name.as_slice() {
            b"MESSAGES" => items.messages = Some(cursor.number_u32()?),
            b"UIDNEXT" => items.uid_next = Some(cursor.number_u32()?),
            b"UIDVALIDITY" => items.uid_validity = Some(cursor.number_u32()?),
            b"UNSEEN" => items.unseen = Some(cursor.number_u32()?),
            b"RECENT" => items.recent = Some(cursor.number_u32()?),
            b"HIGHESTMODSEQ" => items.highest_modseq = Some(cursor.number()?),
            b"MAILBOXID" => {
                // `"(" objectid ")"`, objectid = 1*255(ALPHA / DIGIT / "_" / "-")
                cursor.expect(b'(', "(objectid)")?;
                items.mailbox_id = Some(text_of(cursor.atom(Brackets::Neither)?));
                cursor.expect(b')', "the end of (objectid)")?;
            }
            _ => cursor.skip_value()?,
        }
        // quirk: a trailing space before the closing parenthesis
        cursor.skip_spaces();
    }
    Ok(items)
}

/// `* SEARCH 1 2 3 (MODSEQ 9)`
fn parse_search(cursor: &mut Cursor<'_>) -> ParseResult<Untagged> {
    let mut numbers = Vec::new();
    let mut modseq = None;
    cursor.skip_spaces();
    while !cursor.at_end() {
        if cursor.eat(b'(') {
            let name = cursor.atom(Brackets::Neither)?;
            if !name.eq_ignore_ascii_case(b"MODSEQ") {
                return cursor.error("MODSEQ");
            }
            cursor.space()?;
            modseq = Some(cursor.number()?);
            cursor.expect(b')', "the end of (MODSEQ n)")?;
        } else {
            numbers.push(cursor.number_u32()?);
        }
        cursor.skip_spaces();
    }
    Ok(Untagged::Search { numbers, modseq })
}

/// `esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)`
fn parse_esearch(cursor: &mut Cursor<'_>) -> ParseResult<ESearch> {
    let mut result = ESearch::default();
    cursor.skip_spaces();
    if cursor.eat(b'(') {
        let name = cursor.atom(Brackets::Neither)?;
        if !name.eq_ignore_ascii_case(b"TAG") {
            return cursor.error("TAG");
        }
        cursor.space()?;
        result.tag = Some(text(cursor.string()?));
        cursor.skip_spaces();
        cursor.expect(b')', "the end of the search correlator")?;
        cursor.skip_spaces();
    }
    if cursor.peek_keyword(b"UID") {
        cursor.atom(Brackets::Neither)?;
        result.uid = true;
        cursor.skip_spaces();
    }
    while !cursor.at_end() {
        let name = cursor.atom(Brackets::Neither)?.to_ascii_uppercase();
        cursor.space()?;
        match name.as_slice() {
            b"MIN" => result.min = Some(cursor.number_u32()?),
            b"MAX" => result.max = Some(cursor.number_u32()?),
            b"COUNT" => result.count = Some(cursor.number_u32()?),
            b"ALL" => result.all = Some(uid_set(cursor)?),
            b"MODSEQ" => result.modseq = Some(cursor.number()?),
            _ => cursor.skip_value()?,
        }
        cursor.skip_spaces();
    }
    Ok(result)
}

fn uid_set(cursor: &mut Cursor<'_>) -> ParseResult<Vec<UidRange>> {
    let start = cursor.position();
    let set = cursor.atom(Brackets::Neither)?;
    uidset::parse(set).ok_or(super::cursor::ParseError { position: start, expected: "a UID set" })
}

/// `msg-att = "(" (msg-att-dynamic / msg-att-static) *(SP ...) ")"`
fn parse_fetch_items(cursor: &mut Cursor<'_>) -> ParseResult<FetchData> {
    cursor.expect(b'(', "FETCH items")?;
    let mut data = FetchData::default();
    cursor.skip_spaces();
    while !cursor.eat(b')') {
        let name = cursor.atom(Brackets::Neither)?.to_ascii_uppercase();
        match name.as_slice() {
            b"BODY" | b"BINARY" | b"RFC822" | b"RFC822.HEADER" | b"RFC822.TEXT"
                if cursor.peek() == Some(b'[') || name.as_slice() != b"BODY" =>
            {
                data.sections.push(parse_section_data(cursor, &name)?);
            }
            b"BODY" | b"BODYSTRUCTURE" => {
                cursor.space()?;
                data.body_structure = Some(parse_body_structure(cursor)?);
            }
            b"UID" => {
                cursor.space()?;
                data.uid = Some(cursor.number_u32()?);
            }
            b"FLAGS" => {
                cursor.space()?;
                let mut flags = parse_flag_list(cursor)?;
                // \Recent belongs to one session, not to the message (dropped in IMAP4rev2,
                // RFC 9051 Appendix E): kept, it would make every snapshot diff flicker
                flags.retain(|flag| !flag.eq_ignore_ascii_case("\\Recent"));
                data.flags = Some(flags);
            }
            b"MODSEQ" => {
                cursor.space()?;
                cursor.expect(b'(', "(modseq)")?;
                data.modseq = Some(cursor.number()?);
                cursor.expect(b')', "the end of (modseq)")?;
            }
            b"INTERNALDATE" => {
                cursor.space()?;
                data.internal_date = cursor.nstring()?.as_deref().and_then(parse_internal_date);
            }
            b"RFC822.SIZE" => {
                cursor.space()?;
                data.size = Some(cursor.number()?);
            }
            _ => {
                // unknown item (ENVELOPE, X-GM-LABELS, BINARY.SIZE[1]...): skipped by shape
                if cursor.peek() == Some(b'[') {
                    cursor.bracketed()?;
                }
                cursor.space()?;
                cursor.skip_value()?;
            }
        }
        cursor.skip_spaces();
    }
    Ok(data)
}

/// A body structure, or an empty list when the server's does not parse (then skipped by shape,
/// so one odd message does not cost the whole response).
fn parse_body_structure(cursor: &mut Cursor<'_>) -> ParseResult<Vec<crate::imap::BodyPart>> {
    let start = cursor.clone();
    match bodystructure::parse(cursor) {
        Ok(parts) => Ok(parts),
        Err(error) => {
            tracing::debug!(%error, "unreadable BODYSTRUCTURE skipped");
            *cursor = start;
            cursor.skip_value()?;
            Ok(Vec::new())
        }
    }
}

/// `BODY[section]<origin> nstring`; for RFC822, RFC822.HEADER and RFC822.TEXT the section is the
/// equivalent BODY section (`""`, `HEADER`, `TEXT`).
fn parse_section_data(cursor: &mut Cursor<'_>, name: &[u8]) -> ParseResult<SectionData> {
    let section = match name {
        b"RFC822" => String::new(),
        b"RFC822.HEADER" => "HEADER".to_string(),
        b"RFC822.TEXT" => "TEXT".to_string(),
        _ => text_of(cursor.bracketed()?),
    };
    let mut origin = None;
    if cursor.eat(b'<') {
        origin = Some(cursor.number_u32()?);
        cursor.expect(b'>', "the end of the origin")?;
    }
    cursor.space()?;
    let data = cursor.nstring()?.map(Cow::into_owned);
    Ok(SectionData { section, origin, data })
}

/// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`,
/// e.g. `17-Jul-1996 02:44:25 -0700`, as unix seconds.
pub fn parse_internal_date(value: &[u8]) -> Option<i64> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (date, rest) = value.split_once(' ')?;
    let (time, zone) = rest.trim_start().split_once(' ')?;
    let mut date_parts = date.split('-');
    let day: i64 = date_parts.next()?.trim().parse().ok()?;
    let month = month_number(date_parts.next()?)?;
    let year: i64 = date_parts.next()?.parse().ok()?;
    let mut time_parts = time.split(':');
    let hour: i64 = time_parts.next()?.parse().ok()?;
    let minute: i64 = time_parts.next()?.parse().ok()?;
    let second: i64 = time_parts.next()?.parse().ok()?;
    let zone = zone.trim();
    let (sign, digits) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let zone_hours: i64 = digits[..2].parse().ok()?;
    let zone_minutes: i64 = digits[2..].parse().ok()?;
    let offset = sign * (zone_hours * 3600 + zone_minutes * 60);
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

fn month_number(name: &str) -> Option<i64> {
    const MONTHS: [&str; 12] =
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let index = MONTHS.iter().position(|month| month.eq_ignore_ascii_case(name))?;
    i64::try_from(index).ok().map(|index| index + 1)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's civil-from-days
/// algorithm, inverted).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}
