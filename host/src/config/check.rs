//! Reading a config file so that an operator learns every mistake at once, each with its line,
//! its key and what is expected: syntax errors (all of them, not the first), type errors per
//! section (one bad `[[tenant]]` does not hide another), rules the types cannot express, and
//! files that do not exist. `eas-edge check-config` prints the same report that makes `serve`
//! refuse to start.

use super::Config;
use serde::de::DeserializeOwned;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// The top-level sections, in the order the report suggests them.
const SECTIONS: &[&str] = &[
    "listen",
    "capability",
    "state",
    "login_throttle",
    "connections",
    "watchers",
    "plugin_memory",
    "admin",
    "log",
    "tenant_selection",
    "tenant",
];

/// One mistake: where (a byte range of the file, when known), which key, what is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    span: Option<Range<usize>>,
    key: String,
    message: String,
}

/// Every mistake found in one config file.
#[derive(Debug)]
pub struct ConfigError {
    file: PathBuf,
    text: String,
    problems: Vec<Problem>,
}

impl ConfigError {
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl Problem {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        let plural = if count == 1 { "" } else { "s" };
        writeln!(f, "config {}: {count} mistake{plural}", self.file.display())?;
        for problem in &self.problems {
            let key =
                if problem.key.is_empty() { String::new() } else { format!("`{}`: ", problem.key) };
            match problem.span.as_ref().map(|span| position(&self.text, span.start)) {
                Some((line, column)) => {
                    writeln!(f, "  line {line}, column {column}, {key}{}", problem.message)?;
                    let source = self.text.lines().nth(line - 1).unwrap_or_default();
                    writeln!(f, "    {line} | {source}")?;
                }
                None => writeln!(f, "  {key}{}", problem.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |tail| tail.chars().count()) + 1;
    (line, column)
}

/// Reads, checks and completes (relative paths) the config at `path`.
pub fn read(path: &Path) -> Result<Config, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            let problem = Problem {
                span: None,
                key: String::new(),
                message: format!("cannot be read: {error}"),
            };
            return Err(ConfigError {
                file: path.into(),
                text: String::new(),
                problems: vec![problem],
            });
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    match parse(&text).and_then(|mut config| {
        config.resolve_paths(base);
        let missing = missing_files(&config);
        if missing.is_empty() { Ok(config) } else { Err(locate(&text, missing)) }
    }) {
        Ok(config) => Ok(config),
        Err(problems) => Err(ConfigError { file: path.into(), text, problems }),
    }
}

/// Parses and checks a config text (no file system access).
pub(super) fn parse(text: &str) -> Result<Config, Vec<Problem>> {
    parse_unsorted(text).map_err(|mut problems| {
        problems.sort_by_key(|problem| problem.span.as_ref().map_or(usize::MAX, |span| span.start));
        problems
    })
}

fn parse_unsorted(text: &str) -> Result<Config, Vec<Problem>> {
    let (table, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|error| Problem {
                span: error.span(),
                key: String::new(),
                message: error.message().to_string(),
            })
            .collect());
    }
    let mut problems = Vec::new();
    let mut sections = Sections::default();
    for (key, value) in table.get_ref() {
        let name: &str = key.get_ref();
        let problems = &mut problems;
        match name {
            "listen" => sections.listen = section(value, name, problems),
            "capability" => sections.capability = section(value, name, problems).map(Some),
            "state" => sections.state = section(value, name, problems),
            "login_throttle" => sections.login_throttle = section(value, name, problems),
            "connections" => sections.connections = section(value, name, problems),
            "watchers" => sections.watchers = section(value, name, problems),
            "plugin_memory" => sections.plugin_memory = section(value, name, problems),
            "admin" => sections.admin = section(value, name, problems).map(Some),
            "log" => sections.log = section(value, name, problems),
            "tenant_selection" => sections.tenant_selection = section(value, name, problems),
            "tenant" => match value.get_ref() {
                DeValue::Array(items) => {
                    for (index, item) in items.iter().enumerate() {
                        sections.tenants.push(section(item, &format!("tenant[{index}]"), problems));
                    }
                }
                _ => problems.push(Problem {
                    span: Some(value.span()),
                    key: name.to_string(),
                    message: "must be written [[tenant]] (one table per tenant)".to_string(),
                }),
            },
            _ => problems.push(Problem {
                span: Some(key.span()),
                key: name.to_string(),
                message: format!("unknown section, expected one of {}", SECTIONS.join(", ")),
            }),
        }
    }
    if !table.get_ref().keys().any(|key| key.get_ref() == "listen") {
        problems.push(Problem {
            span: None,
            key: "listen".to_string(),
            message: "missing: [listen] with http = \"ADDRESS:PORT\" or [listen.https]".to_string(),
        });
    }
    if sections.tenants.is_empty() {
        problems.push(Problem {
            span: None,
            key: "tenant".to_string(),
            message: "missing: at least one [[tenant]] is required".to_string(),
        });
    }
    let config = sections.complete();
    match config {
        Some(config) if problems.is_empty() => {
            let rules = config.problems();
            if rules.is_empty() { Ok(config) } else { Err(locate(text, rules)) }
        }
        _ => Err(problems),
    }
}

/// The sections as they deserialized; None where a section had a mistake.
struct Sections {
    listen: Option<super::Listen>,
    capability: Option<Option<super::CapabilityListener>>,
    state: Option<super::StateConfig>,
    login_throttle: Option<crate::auth::ThrottleSettings>,
    connections: Option<crate::connection_cap::ConnectionSettings>,
    watchers: Option<super::WatcherConfig>,
    plugin_memory: Option<super::PluginMemory>,
    admin: Option<Option<super::AdminConfig>>,
    log: Option<crate::logging::LogConfig>,
    tenant_selection: Option<super::TenantSelection>,
    tenants: Vec<Option<super::Tenant>>,
}

impl Default for Sections {
    fn default() -> Self {
        Sections {
            listen: None,
            capability: Some(None),
            state: Some(Default::default()),
            login_throttle: Some(Default::default()),
            connections: Some(Default::default()),
            watchers: Some(Default::default()),
            plugin_memory: Some(Default::default()),
            admin: Some(None),
            log: Some(Default::default()),
            tenant_selection: Some(Default::default()),
            tenants: Vec::new(),
        }
    }
}

impl Sections {
    fn complete(self) -> Option<Config> {
        Some(Config {
            listen: self.listen?,
            capability: self.capability?,
            state: self.state?,
            login_throttle: self.login_throttle?,
            connections: self.connections?,
            watchers: self.watchers?,
            plugin_memory: self.plugin_memory?,
            admin: self.admin?,
            log: self.log?,
            tenant_selection: self.tenant_selection?,
            tenants: self.tenants.into_iter().collect::<Option<_>>()?,
        })
    }
}

/// Deserializes one section on its own, so that its mistake does not hide the next section's.
fn section<T: DeserializeOwned>(
    value: &Spanned<DeValue<'_>>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    match T::deserialize(ValueDeserializer::from(value.clone())) {
        Ok(section) => Some(section),
        Err(error) => {
            // Without the source text, the error's Display ends with "in `a.b`": the key
            // inside the section (the span points at it too).
            let shown = error.to_string();
            let inner = shown.lines().find_map(|line| line.strip_prefix("in `")?.strip_suffix('`'));
            let key = match inner {
                Some(inner) => format!("{key}.{inner}"),
                None => key.to_string(),
            };
            problems.push(Problem {
                span: error.span().or(Some(value.span())),
                key,
                message: error.message().to_string(),
            });
            None
        }
    }
}

/// Config files that do not exist (plugin, CA files, the state file's directory).
fn missing_files(config: &Config) -> Vec<(String, String)> {
    let mut missing = Vec::new();
    if let Some(https) = &config.listen.https {
        for (key, file) in
            [("certificate", &https.certificate), ("private_key", &https.private_key)]
        {
            if !file.is_file() {
                missing.push((
                    format!("listen.https.{key}"),
                    format!("{} is not a file (PEM)", file.display()),
                ));
            }
        }
    }
    let state_dir = config.state.path.parent().filter(|dir| !dir.as_os_str().is_empty());
    if let Some(dir) = state_dir
        && config.state.backend == super::StateBackend::Redb
        && !dir.is_dir()
    {
        missing.push((
            "state.path".to_string(),
            format!("directory {} does not exist (create it for the state store)", dir.display()),
        ));
    }
    for (index, tenant) in config.tenants.iter().enumerate() {
        if !tenant.plugin_searched.is_empty() {
            let searched: Vec<String> =
                tenant.plugin_searched.iter().map(|dir| dir.display().to_string()).collect();
            missing.push((
                format!("tenant.{index}"),
                format!(
                    "no `plugin` given and none of {} exists (install the plugin there, e.g. with `cargo xtask install`, or set plugin = \"PATH\")",
                    searched.join(", ")
                ),
            ));
        } else if !tenant.plugin_built_in && !tenant.plugin.is_file() {
            missing.push((
                format!("tenant.{index}.plugin"),
                format!(
                    "{} is not a file (the plugin component, built by `cargo xtask build`)",
                    tenant.plugin.display()
                ),
            ));
        }
        let ca_files = [
            ("imap", tenant.imap.ca_file.as_ref()),
            ("smtp", tenant.smtp.ca_file.as_ref()),
            ("sieve", tenant.sieve.as_ref().and_then(|sieve| sieve.ca_file.as_ref())),
        ];
        for (section, ca_file) in ca_files {
            if let Some(ca_file) = ca_file.filter(|file| !file.is_file()) {
                missing.push((
                    format!("tenant.{index}.{section}.ca_file"),
                    format!("{} is not a file (a PEM certificate)", ca_file.display()),
                ));
            }
        }
    }
    missing
}

/// Turns (dotted key path, message) pairs into problems located in the text: the span of the
/// deepest part of the path the file spells out (a default that is wrong only in combination
/// points at its table).
fn locate(text: &str, found: Vec<(String, String)>) -> Vec<Problem> {
    let (table, _) = DeTable::parse_recoverable(text);
    found
        .into_iter()
        .map(|(path, message)| Problem {
            span: span_of(&table, &path),
            key: display_path(&path),
            message,
        })
        .collect()
}

fn span_of(table: &Spanned<DeTable<'_>>, path: &str) -> Option<Range<usize>> {
    let mut segments = path.split('.');
    let first = segments.next()?;
    let (mut span, mut value) = entry(table.get_ref(), first)?;
    for segment in segments {
        let next = match (value.get_ref(), segment.parse::<usize>()) {
            (DeValue::Array(items), Ok(index)) => items.get(index).map(|item| (item.span(), item)),
            (DeValue::Table(inner), _) => entry(inner, segment),
            _ => None,
        };
        match next {
            Some((next_span, next_value)) => (span, value) = (next_span, next_value),
            None => break,
        }
    }
    Some(span)
}

/// A key of a table: the span of the key itself (case-insensitive for policy names).
fn entry<'t, 'i>(
    table: &'t DeTable<'i>,
    name: &str,
) -> Option<(Range<usize>, &'t Spanned<DeValue<'i>>)> {
    table
        .iter()
        .find(|(key, _)| key.get_ref().eq_ignore_ascii_case(name))
        .map(|(key, value)| (key.span(), value))
}

/// `tenant.0.push.x` as `tenant[0].push.x`.
fn display_path(path: &str) -> String {
    let mut shown = String::new();
    for segment in path.split('.') {
        if segment.parse::<usize>().is_ok() {
            shown.push_str(&format!("[{segment}]"));
        } else {
            if !shown.is_empty() {
                shown.push('.');
            }
            shown.push_str(segment);
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "[[tenant]]\nname = \"t\"\ndomains = [\"d.test\"]\nplugin = \"p.wasm\"\n\
        imap = { host = \"h\", port = 1 }\nsmtp = { host = \"h\", port = 2 }\n";

    fn problems(text: &str) -> Vec<(usize, String, String)> {
        let problems = parse(text).expect_err("mistakes");
        problems
            .into_iter()
            .map(|p| (p.span.map_or(0, |s| position(text, s.start).0), p.key, p.message))
            .collect()
    }

    #[test]
    fn a_good_config_parses() {
        let config = parse(&format!("[listen]\nhttp = \"127.0.0.1:1\"\n{TENANT}")).expect("valid");
        assert_eq!(config.tenants[0].name, "t");
    }

    #[test]
    fn every_syntax_error_is_reported_with_its_line() {
        let found = problems("[listen]\nhttp = \n[[tenant]]\nname = \"t\nx = = 1\n");
        assert!(found.len() >= 2, "{found:?}");
        assert_eq!(found[0].0, 2, "{found:?}");
        assert!(found.iter().any(|(line, _, _)| *line >= 4), "{found:?}");
    }

    #[test]
    fn mistakes_in_several_sections_are_all_named_with_key_and_line() {
        let text = format!(
            "[listen]\nhttp = \"not an address\"\n[watcherz]\nx = 1\n{TENANT}\
             [tenant.push]\nheartbeat_minimum = 5\n{}",
            TENANT.replace("port = 2 }", "port = \"two\" }")
        );
        let found = problems(&text);
        let keys: Vec<&str> = found.iter().map(|(_, key, _)| key.as_str()).collect();
        assert!(keys.contains(&"listen.http"), "{found:?}");
        assert!(keys.contains(&"watcherz"), "{found:?}");
        assert!(keys.iter().any(|k| k.starts_with("tenant[0].push")), "{found:?}");
        assert!(keys.iter().any(|k| k.starts_with("tenant[1].smtp")), "{found:?}");
        let watchers = found.iter().find(|(_, key, _)| key == "watcherz").expect("test data");
        assert_eq!(watchers.0, 3);
        assert!(watchers.2.contains("expected one of listen"), "{found:?}");
        let push =
            found.iter().find(|(_, key, _)| key.starts_with("tenant[0].push")).expect("test data");
        assert_eq!(push.0, 12, "{found:?}");
        assert!(push.2.contains("heartbeat_min_seconds"), "expected keys are named: {found:?}");
    }

    #[test]
    fn rules_beyond_types_point_at_their_key() {
        let text = format!(
            "[listen]\nhttp = \"127.0.0.1:1\"\n{TENANT}[tenant.push]\nheartbeat_min_seconds = 600\n\
             heartbeat_max_seconds = 300\n[tenant.policy]\nDevicePassword = 1\n{TENANT}"
        );
        let found = problems(&text);
        let min = found.iter().find(|(_, key, _)| key == "tenant[0].push.heartbeat_min_seconds");
        assert_eq!(min.map(|p| p.0), Some(10), "{found:?}");
        assert!(min.expect("test data").2.contains("must not exceed heartbeat_max_seconds (300)"));
        let policy = found.iter().find(|(_, key, _)| key == "tenant[0].policy.DevicePassword");
        assert_eq!(policy.map(|p| p.0), Some(13), "{found:?}");
        // the second tenant repeats name and domain
        assert!(found.iter().any(|(_, key, m)| key == "tenant[1].name" && m.contains("unique")));
        assert!(found.iter().any(|(_, key, m)| key == "tenant[1].domains" && m.contains("d.test")));
    }

    #[test]
    fn missing_sections_are_named() {
        let found = problems("");
        let keys: Vec<&str> = found.iter().map(|(_, key, _)| key.as_str()).collect();
        assert_eq!(keys, ["listen", "tenant"]);
    }

    #[test]
    fn files_are_checked_and_the_report_shows_the_line() {
        let dir = std::env::temp_dir().join(format!("eas-edge-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("test data");
        let file = dir.join("eas-edge.toml");
        let text = format!(
            "[listen]\nhttp = \"127.0.0.1:1\"\n{}",
            TENANT.replace("port = 1 }", "port = 1, ca_file = \"nope.pem\" }")
        );
        std::fs::write(&file, &text).expect("test data");
        let error = read(&file).expect_err("missing plugin and CA");
        let shown = error.to_string();
        assert!(shown.contains("2 mistakes"), "{shown}");
        assert!(
            shown.contains("`tenant[0].plugin`") && shown.contains("p.wasm is not a file"),
            "{shown}"
        );
        assert!(shown.contains("line 6, column 1, `tenant[0].plugin`"), "{shown}");
        assert!(shown.contains("`tenant[0].imap.ca_file`"), "{shown}");
        assert!(shown.contains("6 | plugin = \"p.wasm\""), "{shown}");
        std::fs::write(dir.join("p.wasm"), b"").expect("test data");
        std::fs::write(dir.join("nope.pem"), b"").expect("test data");
        let config = read(&file).expect("files exist now");
        assert_eq!(config.tenants[0].plugin, dir.join("p.wasm"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
