//! Generates the code-page tables from `data/codepages.tsv` (the MS-ASWBXML 16.1 table) and
//! `data/codepages-legacy.tsv` (older tokens a decoder tolerates but an encoder never emits).
//!
//! Two files land in `OUT_DIR`:
//! * `codepage_tables.rs`: lookup tables used by `src/tag.rs` (slot kinds, names, per-page
//!   name indexes, page names and namespaces);
//! * `tag_constants.rs`: one module per page with a `Tag` constant per tag (included by
//!   `src/tags.rs`).
//!
//! Naming scheme (documented in `src/tags.rs`): page modules are the snake_case of the page
//! name (`AirSyncBase` → `air_sync_base`, `GAL` → `gal`; the Rust keyword `move` becomes
//! `r#move`), tag constants the SCREAMING_SNAKE_CASE of the tag name (`GalSearchCriterion` →
//! `GAL_SEARCH_CRITERION`, `SMTPAddress` → `SMTP_ADDRESS`, `Mime` → `MIME`).
//!
//! The data is validated here, so a bad edit of a TSV fails the build with a message instead of
//! producing a table with duplicate tokens or names.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Tag tokens use the low six bits of a tag byte.
const SLOTS_PER_PAGE: usize = 64;
/// Tokens 0x00–0x04 are global tokens (SWITCH_PAGE, END, ENTITY, STR_I, LITERAL) in every page.
const FIRST_TAG_TOKEN: u8 = 0x05;

/// Slot kinds, mirrored by `src/tag.rs`.
const SLOT_CURRENT: u8 = 1;
const SLOT_LEGACY: u8 = 2;
const SLOT_ALIAS_FLAG: u8 = 0x80;

#[derive(Debug)]
struct Row {
    page: u8,
    token: u8,
    name: String,
}

#[derive(Default)]
struct Page {
    name: Option<String>,
    namespace: Option<String>,
    current: Vec<Row>,
    legacy: Vec<Row>,
    /// Legacy tokens whose (page, name) equals a current tag: decoded as that tag.
    aliases: Vec<Row>,
}

type BuildResult<T> = Result<T, String>;

fn main() {
    if let Err(message) = run() {
        eprintln!("eas-wbxml build.rs: {message}");
        std::process::exit(1);
    }
}

fn run() -> BuildResult<()> {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let current_path = manifest_dir.join("data/codepages.tsv");
    let legacy_path = manifest_dir.join("data/codepages-legacy.tsv");
    println!("cargo::rerun-if-changed={}", current_path.display());
    println!("cargo::rerun-if-changed={}", legacy_path.display());

    let mut pages: BTreeMap<u8, Page> = BTreeMap::new();
    for record in read_tsv(&current_path, &["page", "page_name", "namespace", "token_hex", "tag"])?
    {
        let row = Row {
            page: parse_page(&record[0])?,
            token: parse_token(&record[3])?,
            name: record[4].clone(),
        };
        let page = pages.entry(row.page).or_default();
        set_once(&mut page.name, &record[1], row.page, "page_name")?;
        set_once(&mut page.namespace, &record[2], row.page, "namespace")?;
        page.current.push(row);
    }
    for record in read_tsv(&legacy_path, &["page", "page_name", "token_hex", "legacy_tag"])? {
        let row = Row {
            page: parse_page(&record[0])?,
            token: parse_token(&record[2])?,
            name: record[3].clone(),
        };
        let page = pages.entry(row.page).or_default();
        set_once(&mut page.name, &record[1], row.page, "page_name")?;
        if page.current.iter().any(|current| current.name == row.name) {
            page.aliases.push(row);
        } else {
            page.legacy.push(row);
        }
    }

    let page_count = usize::from(*pages.keys().next_back().ok_or("no code pages in the data")?) + 1;
    for number in 0..page_count {
        let number = u8::try_from(number).map_err(|_| "too many pages".to_string())?;
        let page = pages.get(&number).ok_or(format!("page {number} has no rows in either TSV"))?;
        validate_page(number, page)?;
    }

    let out_dir = PathBuf::from(env("OUT_DIR")?);
    write(&out_dir.join("codepage_tables.rs"), &generate_tables(&pages, page_count)?)?;
    write(&out_dir.join("tag_constants.rs"), &generate_constants(&pages)?)?;
    Ok(())
}

fn env(name: &str) -> BuildResult<String> {
    std::env::var(name).map_err(|error| format!("{name}: {error}"))
}

fn write(path: &Path, contents: &str) -> BuildResult<()> {
    std::fs::write(path, contents).map_err(|error| format!("writing {}: {error}", path.display()))
}

/// Reads a tab-separated file whose first columns are `expected` (extra columns are ignored).
fn read_tsv(path: &Path, expected: &[&str]) -> BuildResult<Vec<Vec<String>>> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("reading {}: {error}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> =
        lines.next().ok_or(format!("{} is empty", path.display()))?.split('\t').collect();
    if header.len() < expected.len() || header[..expected.len()] != *expected {
        return Err(format!(
            "{}: header {header:?} does not start with {expected:?}",
            path.display()
        ));
    }
    let mut records = Vec::new();
    for (index, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<String> = line.split('\t').map(|field| field.trim().to_string()).collect();
        if fields.len() < expected.len() || fields[..expected.len()].iter().any(String::is_empty) {
            return Err(format!(
                "{} line {}: missing fields in {line:?}",
                path.display(),
                index + 2
            ));
        }
        records.push(fields);
    }
    Ok(records)
}

fn parse_page(text: &str) -> BuildResult<u8> {
    text.parse().map_err(|_| format!("bad page number {text:?}"))
}

fn parse_token(text: &str) -> BuildResult<u8> {
    let digits = text.strip_prefix("0x").ok_or(format!("token {text:?} is not 0x-prefixed"))?;
    let token = u8::from_str_radix(digits, 16).map_err(|_| format!("bad token {text:?}"))?;
    if !(FIRST_TAG_TOKEN..SLOTS_PER_PAGE as u8).contains(&token) {
        return Err(format!("token {text:?} outside the tag range 0x05–0x3F"));
    }
    Ok(token)
}

fn set_once(slot: &mut Option<String>, value: &str, page: u8, what: &str) -> BuildResult<()> {
    match slot {
        Some(existing) if existing != value => {
            Err(format!("page {page}: conflicting {what} {existing:?} and {value:?}"))
        }
        _ => {
            *slot = Some(value.to_string());
            Ok(())
        }
    }
}

fn validate_page(number: u8, page: &Page) -> BuildResult<()> {
    let mut tokens = BTreeSet::new();
    let mut lower_names = BTreeSet::new();
    let mut constants = BTreeSet::new();
    for row in page.current.iter().chain(&page.legacy) {
        if !tokens.insert(row.token) {
            return Err(format!("page {number}: token {:#04x} listed twice", row.token));
        }
        // XML lookup is case-insensitive, so names must differ in more than case.
        if !lower_names.insert(row.name.to_ascii_lowercase()) {
            return Err(format!("page {number}: name {:?} listed twice (ignoring case)", row.name));
        }
        if !constants
            .insert((page.current.iter().any(|c| c.token == row.token), constant_name(&row.name)))
        {
            return Err(format!("page {number}: constant name of {:?} is not unique", row.name));
        }
        if !row.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("page {number}: tag name {:?} is not a plain XML name", row.name));
        }
    }
    for alias in &page.aliases {
        if !tokens.insert(alias.token) {
            return Err(format!("page {number}: alias token {:#04x} collides", alias.token));
        }
    }
    Ok(())
}

/// Splits `SMTPAddress` → [SMTP, Address], `GalSearchCriterion` → [Gal, Search, Criterion],
/// `Compressed_RTF` → [Compressed, RTF], `Email2` → [Email2].
fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (index, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        if let Some(&previous) = index.checked_sub(1).and_then(|i| chars.get(i)) {
            let next_is_lower = chars.get(index + 1).is_some_and(|n| n.is_ascii_lowercase());
            let starts_word = c.is_ascii_uppercase()
                && (previous.is_ascii_lowercase()
                    || previous.is_ascii_digit()
                    || (previous.is_ascii_uppercase() && next_is_lower));
            if starts_word && !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
        }
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn constant_name(name: &str) -> String {
    words(name).iter().map(|word| word.to_ascii_uppercase()).collect::<Vec<_>>().join("_")
}

fn module_name(page_name: &str) -> String {
    let snake =
        words(page_name).iter().map(|word| word.to_ascii_lowercase()).collect::<Vec<_>>().join("_");
    if RUST_KEYWORDS.contains(&snake.as_str()) { format!("r#{snake}") } else { snake }
}

const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe",
    "use", "where", "while",
];

fn page_name(pages: &BTreeMap<u8, Page>, number: u8) -> BuildResult<&str> {
    pages
        .get(&number)
        .and_then(|page| page.name.as_deref())
        .ok_or(format!("page {number} has no name"))
}

fn generate_tables(pages: &BTreeMap<u8, Page>, page_count: usize) -> BuildResult<String> {
    let mut out = String::new();
    let w = &mut out;
    writeln!(w, "// Generated by build.rs from data/codepages.tsv and data/codepages-legacy.tsv. Do not edit.").ok();
    writeln!(w, "pub(crate) const PAGE_COUNT: usize = {page_count};").ok();
    writeln!(
        w,
        "pub(crate) const CURRENT_TAG_COUNT: usize = {};",
        pages.values().map(|p| p.current.len()).sum::<usize>()
    )
    .ok();
    writeln!(
        w,
        "pub(crate) const LEGACY_TAG_COUNT: usize = {};",
        pages.values().map(|p| p.legacy.len()).sum::<usize>()
    )
    .ok();

    let mut names = Vec::new();
    let mut namespaces = Vec::new();
    let mut prefixes = Vec::new();
    for number in 0..page_count {
        let number = number as u8;
        let name = page_name(pages, number)?;
        // A page without current rows (AirNotify) has no namespace column: its page name is used.
        let namespace =
            pages.get(&number).and_then(|page| page.namespace.as_deref()).unwrap_or(name);
        names.push(format!("{name:?}"));
        namespaces.push(format!("{namespace:?}"));
        prefixes.push(format!("{:?}", name.to_ascii_lowercase()));
    }
    writeln!(w, "pub(crate) static PAGE_NAMES: [&str; PAGE_COUNT] = [{}];", names.join(", ")).ok();
    writeln!(
        w,
        "pub(crate) static PAGE_NAMESPACES: [&str; PAGE_COUNT] = [{}];",
        namespaces.join(", ")
    )
    .ok();
    writeln!(w, "pub(crate) static PAGE_PREFIXES: [&str; PAGE_COUNT] = [{}];", prefixes.join(", "))
        .ok();

    let mut kinds = vec![0u8; page_count * SLOTS_PER_PAGE];
    let mut slot_names = vec![String::new(); page_count * SLOTS_PER_PAGE];
    for (&number, page) in pages {
        let base = usize::from(number) * SLOTS_PER_PAGE;
        for row in &page.current {
            kinds[base + usize::from(row.token)] = SLOT_CURRENT;
            slot_names[base + usize::from(row.token)].clone_from(&row.name);
        }
        for row in &page.legacy {
            kinds[base + usize::from(row.token)] = SLOT_LEGACY;
            slot_names[base + usize::from(row.token)].clone_from(&row.name);
        }
        for row in &page.aliases {
            let target =
                page.current.iter().find(|c| c.name == row.name).ok_or("alias without target")?;
            kinds[base + usize::from(row.token)] = SLOT_ALIAS_FLAG | target.token;
            slot_names[base + usize::from(row.token)].clone_from(&row.name);
        }
    }
    writeln!(w, "/// Per (page, token) slot: 0 unassigned, 1 current, 2 legacy, 0x80|token alias of a current tag.").ok();
    writeln!(w, "pub(crate) static SLOT_KINDS: [u8; PAGE_COUNT * 64] = [").ok();
    for chunk in kinds.chunks(SLOTS_PER_PAGE) {
        let line: Vec<String> = chunk.iter().map(|kind| format!("{kind:#04x}")).collect();
        writeln!(w, "    {},", line.join(", ")).ok();
    }
    writeln!(w, "];").ok();
    writeln!(w, "pub(crate) static SLOT_NAMES: [&str; PAGE_COUNT * 64] = [").ok();
    for chunk in slot_names.chunks(SLOTS_PER_PAGE) {
        let line: Vec<String> = chunk.iter().map(|name| format!("{name:?}")).collect();
        writeln!(w, "    {},", line.join(", ")).ok();
    }
    writeln!(w, "];").ok();

    writeln!(
        w,
        "/// Per page: (ASCII-lowercased name, token) of current and legacy tags, sorted by name."
    )
    .ok();
    writeln!(w, "pub(crate) static NAME_INDEX: [&[(&str, u8)]; PAGE_COUNT] = [").ok();
    for number in 0..page_count {
        let mut entries: Vec<(String, u8)> = pages
            .get(&(number as u8))
            .map(|page| {
                page.current
                    .iter()
                    .chain(&page.legacy)
                    .map(|r| (r.name.to_ascii_lowercase(), r.token))
                    .collect()
            })
            .unwrap_or_default();
        entries.sort();
        let line: Vec<String> =
            entries.iter().map(|(name, token)| format!("({name:?}, {token:#04x})")).collect();
        writeln!(w, "    &[{}],", line.join(", ")).ok();
    }
    writeln!(w, "];").ok();

    for (list, pick) in [("CURRENT_TAGS", true), ("LEGACY_TAGS", false)] {
        let count = if pick { "CURRENT_TAG_COUNT" } else { "LEGACY_TAG_COUNT" };
        writeln!(w, "pub(crate) static {list}: [Tag; {count}] = [").ok();
        for (&number, page) in pages {
            for row in if pick { &page.current } else { &page.legacy } {
                writeln!(w, "    Tag::from_parts({number}, {:#04x}),", row.token).ok();
            }
        }
        writeln!(w, "];").ok();
    }
    Ok(out)
}

fn generate_constants(pages: &BTreeMap<u8, Page>) -> BuildResult<String> {
    let mut out = String::new();
    let w = &mut out;
    writeln!(w, "// Generated by build.rs from data/codepages.tsv and data/codepages-legacy.tsv. Do not edit.").ok();
    for (&number, page) in pages.iter().filter(|(_, page)| !page.current.is_empty()) {
        write_page_module(w, number, page, &page.current, page.namespace.as_deref())?;
    }
    writeln!(
        w,
        "/// Tokens outside the 16.1 table (`data/codepages-legacy.tsv`): the decoder accepts them"
    )
    .ok();
    writeln!(w, "/// (`Tag::is_legacy` is true), the encoder refuses them.").ok();
    writeln!(w, "pub mod legacy {{").ok();
    for (&number, page) in pages.iter().filter(|(_, page)| !page.legacy.is_empty()) {
        write_page_module(w, number, page, &page.legacy, None)?;
    }
    writeln!(w, "}}").ok();
    Ok(out)
}

fn write_page_module(
    w: &mut String,
    number: u8,
    page: &Page,
    rows: &[Row],
    namespace: Option<&str>,
) -> BuildResult<()> {
    let name = page.name.as_deref().ok_or(format!("page {number} has no name"))?;
    let namespace = namespace.map(|ns| format!(", XML namespace `{ns}`")).unwrap_or_default();
    writeln!(w, "/// Code page {number}: {name}{namespace}.").ok();
    writeln!(w, "pub mod {} {{", module_name(name)).ok();
    writeln!(w, "    use crate::Tag;").ok();
    for row in rows {
        writeln!(w, "    /// `{}` (page {number}, token {:#04x}).", row.name, row.token).ok();
        writeln!(
            w,
            "    pub const {}: Tag = Tag::from_parts({number}, {:#04x});",
            constant_name(&row.name),
            row.token
        )
        .ok();
    }
    writeln!(w, "}}").ok();
    Ok(())
}
