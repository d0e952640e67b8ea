//! A second opinion on the bytes the client sends: libwbxml's `wbxml2xml` (Debian
//! `libwbxml2-utils`) decodes them with its own code-page table, and the result is compared
//! with an outline written by hand from the spec's element names. A bug shared by our encoder
//! and our decoder (a wrong token in the table, a missing END) cannot hide from that.
//!
//! Missing tool: the check is skipped with a message, unless `EAS_EDGE_REQUIRE_LIBWBXML` is set
//! (to anything), in which case it fails. `cargo xtask test` installs the tool, and the codec's
//! own libwbxml cross-check (plugin/wbxml/tests/libwbxml.rs) fails without it anyway.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// Set to require the tool (fail instead of skipping when it is missing).
pub const REQUIRE_VARIABLE: &str = "EAS_EDGE_REQUIRE_LIBWBXML";

const TOOL: &str = "wbxml2xml";

/// One element as libwbxml shows it: namespace (libwbxml writes `AirSync:` with a colon),
/// local name, text, children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub namespace: String,
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// An indented outline, one element a line: `Namespace:Name` or `Namespace:Name = text`,
    /// two spaces per level. Namespaces lose libwbxml's trailing colon.
    pub fn outline(&self) -> String {
        let mut out = String::new();
        self.write_outline(0, &mut out);
        out
    }

    fn write_outline(&self, depth: usize, out: &mut String) {
        out.push_str(&"  ".repeat(depth));
        out.push_str(self.namespace.trim_end_matches(':'));
        out.push(':');
        out.push_str(&self.name);
        if !self.text.is_empty() {
            out.push_str(" = ");
            out.push_str(&self.text);
        }
        out.push('\n');
        for child in &self.children {
            child.write_outline(depth + 1, out);
        }
    }
}

/// Whether the tool can run here; `Err` when it is missing and required.
/// `Ok(false)`: missing and not required — the caller skips (after a message on stderr).
pub fn available() -> Result<bool> {
    let found = Command::new(TOOL).arg("--help").output().is_ok();
    if found {
        return Ok(true);
    }
    if std::env::var_os(REQUIRE_VARIABLE).is_some() {
        bail!(
            "`{TOOL}` not found and {REQUIRE_VARIABLE} is set: install Debian's libwbxml2-utils \
             (apt-get install libwbxml2-utils)"
        );
    }
    eprintln!(
        "SKIPPED: libwbxml cross-check: `{TOOL}` not found (apt-get install libwbxml2-utils; \
         set {REQUIRE_VARIABLE}=1 to make this a failure)"
    );
    Ok(false)
}

/// libwbxml's reading of `wbxml`, or `None` when the tool is missing and not required.
pub fn decode(wbxml: &[u8]) -> Result<Option<Node>> {
    if !available()? {
        return Ok(None);
    }
    let xml = wbxml2xml(wbxml)?;
    parse(&xml).map(Some).with_context(|| format!("parsing wbxml2xml output:\n{xml}"))
}

/// Runs `wbxml2xml -l ACTIVESYNC` on `wbxml` and returns the XML text.
pub fn wbxml2xml(wbxml: &[u8]) -> Result<String> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let scratch = |extension: &str| -> PathBuf {
        std::env::temp_dir()
            .join(format!("eas-client-libwbxml-{}-{n}.{extension}", std::process::id()))
    };
    let (input, output) = (scratch("wbxml"), scratch("xml"));
    std::fs::write(&input, wbxml).with_context(|| format!("writing {}", input.display()))?;
    // -m 0: no indentation; -k: keep whitespace in text as it is
    let result = Command::new(TOOL)
        .args(["-l", "ACTIVESYNC", "-m", "0", "-k", "-o"])
        .arg(&output)
        .arg(&input)
        .output();
    let xml = std::fs::read(&output);
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    let result = result.with_context(|| format!("running {TOOL}"))?;
    if !result.status.success() {
        bail!(
            "{TOOL} rejected the bytes ({}): {}{}\nbytes: {}",
            result.status,
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr),
            hex(wbxml)
        );
    }
    String::from_utf8(xml.with_context(|| format!("{TOOL} wrote no output"))?)
        .context("wbxml2xml output is not UTF-8")
}

/// Parses wbxml2xml's XML into a tree.
pub fn parse(xml: &str) -> Result<Node> {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Node> = Vec::new();
    loop {
        let (namespace, event) = reader.read_resolved_event()?;
        let namespace = match namespace {
            ResolveResult::Bound(namespace) => namespace.0.to_string(),
            _ => String::new(),
        };
        let close = matches!(event, Event::End(_) | Event::Empty(_));
        match event {
            Event::Start(start) | Event::Empty(start) => {
                let local_name = start.local_name();
                stack.push(Node {
                    namespace,
                    name: local_name.as_ref().to_string(),
                    text: String::new(),
                    children: Vec::new(),
                });
            }
            Event::Text(text) => {
                if let Some(node) = stack.last_mut() {
                    // raw: wbxml2xml writes CR bytes as they are; references come separately
                    node.text.push_str(&text.into_inner());
                }
            }
            Event::GeneralRef(reference) => {
                let c = match reference.resolve_char_ref()? {
                    Some(c) => c,
                    None => match &*reference {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "quot" => '"',
                        "apos" => '\'',
                        other => bail!("entity {other} in libwbxml output"),
                    },
                };
                if let Some(node) = stack.last_mut() {
                    node.text.push(c);
                }
            }
            Event::Eof => bail!("no root element"),
            _ => {}
        }
        if close {
            let node = stack.pop().context("unbalanced XML")?;
            match stack.last_mut() {
                Some(parent) => parent.children.push(node),
                None => return Ok(node),
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}
