//! Helpers shared by the integration tests: the golden-vector file format.

#![allow(dead_code)] // each test binary uses a different subset

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use eas_wbxml::Tag;

pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// A golden vector: name, WBXML bytes and the XML text.
pub struct Vector {
    pub name: String,
    pub hex_path: PathBuf,
    pub xml_path: PathBuf,
    pub xml: String,
}

impl Vector {
    pub fn bytes(&self) -> Vec<u8> {
        let text = std::fs::read_to_string(&self.hex_path)
            .unwrap_or_else(|e| panic!("{}: {e}", self.hex_path.display()));
        parse_hex(&text).unwrap_or_else(|e| panic!("{}: {e}", self.hex_path.display()))
    }
}

/// Every `*.xml` in `tests/vectors`, sorted by name.
pub fn vectors() -> Vec<Vector> {
    let mut vectors: Vec<Vector> = std::fs::read_dir(vectors_dir())
        .expect("tests/vectors exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "xml"))
        .map(|xml_path| {
            let name = xml_path.file_stem().expect("file name").to_string_lossy().into_owned();
            let xml = std::fs::read_to_string(&xml_path).expect("readable XML vector");
            Vector { hex_path: xml_path.with_extension("hex"), name, xml_path, xml }
        })
        .collect();
    vectors.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(vectors.len() >= 20, "expected the golden vectors in {}", vectors_dir().display());
    vectors
}

/// Parses the vector hex format: hex byte pairs, `"ASCII"` runs, `#` comments.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let mut rest = line;
        loop {
            rest = rest.trim_start();
            if rest.is_empty() || rest.starts_with('#') {
                break;
            }
            if let Some(quoted) = rest.strip_prefix('"') {
                let end =
                    quoted.find('"').ok_or(format!("line {}: unterminated string", number + 1))?;
                bytes.extend_from_slice(&quoted.as_bytes()[..end]);
                rest = &quoted[end + 1..];
            } else {
                let pair =
                    rest.get(..2).ok_or(format!("line {}: dangling hex digit", number + 1))?;
                bytes.push(
                    u8::from_str_radix(pair, 16)
                        .map_err(|_| format!("line {}: bad hex {pair:?}", number + 1))?,
                );
                rest = &rest[2..];
            }
        }
    }
    Ok(bytes)
}

/// Renders WBXML produced by this crate's encoder in the vector format, one element per line
/// with a comment naming it. Only for well-formed EAS WBXML (it is test tooling).
pub fn annotate(bytes: &[u8], title: &str) -> String {
    let mut out = format!("# {title}\n");
    line(&mut out, &hex(&bytes[..4]), "header: WBXML 1.3, public id 1, UTF-8, no string table");
    let mut position = 4;
    let mut page = 0u8;
    let mut open: Vec<Tag> = Vec::new();
    while position < bytes.len() {
        let byte = bytes[position];
        let indent = "  ".repeat(open.len());
        match byte {
            0x00 => {
                page = bytes[position + 1];
                let namespace = eas_wbxml::page_namespace(page).unwrap_or("?");
                line(
                    &mut out,
                    &hex(&bytes[position..position + 2]),
                    &format!("{indent}SWITCH_PAGE {page} ({namespace})"),
                );
                position += 2;
            }
            0x01 => {
                let tag = open.pop().expect("balanced END");
                line(&mut out, "01", &format!("{}END {}", "  ".repeat(open.len()), tag.name()));
                position += 1;
            }
            tag_byte => {
                let tag = Tag::from_token(page, tag_byte & 0x3F).expect("known tag");
                position += 1;
                if tag_byte & 0x40 == 0 {
                    line(&mut out, &hex(&[tag_byte]), &format!("{indent}{} (empty)", tag.name()));
                    continue;
                }
                // A leaf: tag, one STR_I or OPAQUE, END.
                let leaf = match bytes[position] {
                    0x03 => {
                        let len = bytes[position + 1..]
                            .iter()
                            .position(|&b| b == 0)
                            .expect("terminated STR_I");
                        Some((vec![0x03], position + 1, len, "STR_I", vec![0x00, 0x01]))
                    }
                    0xC3 => {
                        let (mut len, mut cursor) = (0usize, position + 1);
                        loop {
                            let b = bytes[cursor];
                            cursor += 1;
                            len = (len << 7) | usize::from(b & 0x7F);
                            if b & 0x80 == 0 {
                                break;
                            }
                        }
                        Some((bytes[position..cursor].to_vec(), cursor, len, "OPAQUE", vec![0x01]))
                    }
                    _ => None,
                };
                match leaf {
                    Some((lead, start, len, kind, trail))
                        if bytes.get(start + len + trail.len() - 1) == Some(&0x01) =>
                    {
                        let payload = payload_units(&bytes[start..start + len]);
                        let head = format!("{} {}", hex(&[tag_byte]), hex(&lead));
                        let comment = format!("{indent}{} = {kind} ({len} bytes)", tag.name());
                        if payload.join(" ").len() <= 40 {
                            line(
                                &mut out,
                                &format!("{head} {} {}", payload.join(" "), hex(&trail)),
                                &comment,
                            );
                        } else {
                            line(&mut out, &head, &comment);
                            for chunk in chunk_units(&payload) {
                                let _ = writeln!(out, "    {chunk}");
                            }
                            line(&mut out, &hex(&trail), &format!("{indent}END {}", tag.name()));
                        }
                        position = start + len + trail.len();
                    }
                    _ => {
                        line(
                            &mut out,
                            &hex(&[tag_byte]),
                            &format!("{indent}{} + content", tag.name()),
                        );
                        open.push(tag);
                    }
                }
            }
        }
    }
    out
}

fn line(out: &mut String, code: &str, comment: &str) {
    let _ = writeln!(out, "{code:<40} # {comment}");
}

/// Printable ASCII (without `"` and `#`) as quoted runs, everything else as hex pairs.
fn payload_units(payload: &[u8]) -> Vec<String> {
    let quotable = |b: u8| (0x20..0x7F).contains(&b) && b != b'"' && b != b'#';
    let mut units = Vec::new();
    let mut index = 0;
    while index < payload.len() {
        if quotable(payload[index]) {
            let run = payload[index..].iter().take_while(|&&b| quotable(b)).count().min(64);
            units.push(format!(
                "\"{}\"",
                std::str::from_utf8(&payload[index..index + run]).expect("ASCII")
            ));
            index += run;
        } else {
            units.push(format!("{:02x}", payload[index]));
            index += 1;
        }
    }
    units
}

/// Joins units into lines of about 72 characters.
fn chunk_units(units: &[String]) -> Vec<String> {
    let mut lines = vec![String::new()];
    for unit in units {
        let current = lines.last_mut().expect("at least one line");
        if !current.is_empty() && current.len() + unit.len() > 72 {
            lines.push(unit.clone());
        } else {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(unit);
        }
    }
    lines
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}
