//! Our vacation script: written from the settings, and the settings read back from its first
//! line.

use serde::{Deserialize, Serialize};

/// The one script the gateway manages for each user.
pub const SCRIPT_NAME: &str = "eas-edge-oof";

/// The first line's prefix; the settings follow as JSON.
const MARKER: &str = "# eas-edge-oof ";

/// The last second a four-digit year can name (9999-12-31 23:59:59 UTC).
const LAST_SECOND: i64 = 253_402_300_799;

/// Out-of-office settings as the plugin sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OofSettings {
    pub enabled: bool,
    /// Unix seconds; `None`: open-ended.
    #[serde(default)]
    pub start: Option<i64>,
    #[serde(default)]
    pub end: Option<i64>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub message: String,
}

/// The script for `settings`: the settings line, and the vacation rule when enabled.
pub fn render(settings: &OofSettings) -> String {
    // serde_json writes one line: control characters in strings are escaped
    let json = serde_json::to_string(settings).unwrap_or_else(|_| "{}".to_string());
    let mut script = format!(
        "{MARKER}{json}\r\n# Out-of-office reply, managed by eas-edge (Exchange ActiveSync): \
         changes here are overwritten.\r\n"
    );
    if !settings.enabled {
        return script;
    }
    let mut conditions = Vec::new();
    if let Some(start) = settings.start {
        conditions.push(format!(
            "currentdate :zone \"+0000\" :value \"ge\" \"iso8601\" \"{}\"",
            iso8601(start)
        ));
    }
    if let Some(end) = settings.end {
        conditions.push(format!(
            "currentdate :zone \"+0000\" :value \"lt\" \"iso8601\" \"{}\"",
            iso8601(end)
        ));
    }
    let mut vacation = String::from("vacation");
    if let Some(subject) = settings.subject.as_deref().filter(|subject| !subject.is_empty()) {
        vacation.push_str(&format!(" :subject {}", quoted(subject)));
    }
    vacation.push_str(" text:\r\n");
    vacation.push_str(&multiline(&settings.message));
    vacation.push_str(";\r\n");
    if conditions.is_empty() {
        script.push_str("require [\"vacation\"];\r\n");
        script.push_str(&vacation);
    } else {
        script.push_str("require [\"vacation\", \"date\", \"relational\"];\r\n");
        script.push_str(&format!("if allof ({}) {{\r\n", conditions.join(", ")));
        script.push_str(&vacation);
        script.push_str("}\r\n");
    }
    script
}

/// The settings of a script we wrote; `None` for any other script.
pub fn parse(script: &str) -> Option<OofSettings> {
    let first = script.lines().next()?;
    serde_json::from_str(first.strip_prefix(MARKER)?.trim_end()).ok()
}

/// A Sieve quoted string (RFC 5228 §2.4.2): `"` and `\` escaped; line breaks and other
/// controls (a subject is one line) become spaces.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            ch if ch.is_control() => out.push(' '),
            ch => out.push(ch),
        }
    }
    out.push('"');
    out
}

/// A Sieve multi-line string body (RFC 5228 §2.4.2): CRLF line ends, a dot doubled at the
/// start of a line, the `.` line at the end.
fn multiline(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalized.lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

/// `yyyy-mm-ddThh:mm:ss` (UTC). Without a zone suffix, so that `currentdate`'s string, which
/// continues with its zone, compares after it at the same second: "ge" holds from the start
/// second on, "lt" stops at the end second.
fn iso8601(unix_seconds: i64) -> String {
    let seconds = unix_seconds.clamp(0, LAST_SECOND);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Howard Hinnant's algorithm,
/// as in the IMAP client's dates).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_the_script() {
        let settings = OofSettings {
            enabled: true,
            start: Some(1_772_841_600),
            end: Some(1_773_446_400),
            subject: Some("Away \"until\" Monday\r\n".into()),
            message: "Hello,\r\n.I am away.\r\n\r\n-- \r\nPat".into(),
        };
        let script = render(&settings);
        assert_eq!(parse(&script), Some(settings));
        assert!(script.starts_with("# eas-edge-oof {"));
        assert!(script.contains("require [\"vacation\", \"date\", \"relational\"];\r\n"));
        assert!(script.contains(
            "currentdate :zone \"+0000\" :value \"ge\" \"iso8601\" \"2026-03-07T00:00:00\", \
             currentdate :zone \"+0000\" :value \"lt\" \"iso8601\" \"2026-03-14T00:00:00\""
        ));
        assert!(script.contains(":subject \"Away \\\"until\\\" Monday  \" text:\r\n"));
        assert!(
            script.contains("text:\r\nHello,\r\n..I am away.\r\n\r\n-- \r\nPat\r\n.\r\n;\r\n}")
        );
    }

    #[test]
    fn disabled_settings_keep_the_message_without_a_rule() {
        let settings = OofSettings { message: "Back soon".into(), ..OofSettings::default() };
        let script = render(&settings);
        assert!(!script.contains("require") && !script.contains("vacation "));
        assert_eq!(parse(&script), Some(settings));
        let open = OofSettings { enabled: true, message: "x".into(), ..OofSettings::default() };
        let script = render(&open);
        assert!(script.contains("require [\"vacation\"];\r\nvacation text:\r\nx\r\n.\r\n;\r\n"));
    }

    #[test]
    fn other_scripts_have_no_settings() {
        assert_eq!(parse("require \"fileinto\";\r\n"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("# eas-edge-oof not json\r\n"), None);
    }

    #[test]
    fn dates_are_utc_seconds() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00");
        assert_eq!(iso8601(951_868_799), "2000-02-29T23:59:59");
        assert_eq!(iso8601(-1), "1970-01-01T00:00:00");
        assert_eq!(iso8601(i64::MAX), "9999-12-31T23:59:59");
    }
}
