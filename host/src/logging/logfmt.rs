//! A logfmt line format for tracing-subscriber (`ts=… level=info target=… key=value msg="…"`),
//! hand-written because no maintained crate does it for the subscriber version we use.
//! Span fields (the request id) come before the event's own fields.

use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format.
pub struct Logfmt;

/// The field format, used for span fields (stored once per span, then copied into each line).
pub struct LogfmtFields;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str("ts=")?;
        SystemTime.format_time(&mut writer)?;
        let metadata = event.metadata();
        write!(
            writer,
            " level={} target={}",
            metadata.level().as_str().to_ascii_lowercase(),
            Value(metadata.target())
        )?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, " {}", fields.fields)?;
                }
            }
        }
        let mut pairs = Pairs { writer: &mut writer, first: false, result: Ok(()) };
        event.record(&mut pairs);
        pairs.result?;
        writeln!(writer)
    }
}

impl<'w> FormatFields<'w> for LogfmtFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut pairs = Pairs { writer: &mut writer, first: true, result: Ok(()) };
        fields.record(&mut pairs);
        pairs.result
    }
}

/// Writes each field as ` key=value`; the event's message is `msg`.
struct Pairs<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Pairs<'_, '_> {
    fn pair(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let key = match field.name() {
            "message" => "msg",
            name => name.strip_prefix("r#").unwrap_or(name),
        };
        let separator = if std::mem::take(&mut self.first) { "" } else { " " };
        self.result = write!(self.writer, "{separator}{key}={}", Value(value));
    }
}

impl Visit for Pairs<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.pair(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields and messages arrive here with their Display text
        self.pair(field, &format!("{value:?}"));
    }
}

/// A value, quoted (with `\"`, `\\`, `\n` escapes) when it is empty or has spaces, quotes,
/// `=` or control characters, as logfmt parsers expect.
struct Value<'a>(&'a str);

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = !self.0.is_empty()
            && !self.0.chars().any(|c| c == ' ' || c == '=' || c == '"' || c.is_control());
        if plain {
            return f.write_str(self.0);
        }
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_key_value_pairs_with_span_fields_first() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .event_format(Logfmt)
            .fmt_fields(LogfmtFields)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = "r1", peer = "a b");
            let _entered = span.enter();
            tracing::info!(tenant = "t", status = 200u16, ok = true, "request \"done\"\nnext");
        });
        let text = String::from_utf8(buffer.0.lock().expect("buffer lock").clone()).expect("utf-8");
        let line = text.lines().next().expect("one line");
        assert!(line.starts_with("ts=") && line.contains(" level=info target="), "{line}");
        assert!(
            line.ends_with(
                " request_id=r1 peer=\"a b\" msg=\"request \\\"done\\\"\\nnext\" tenant=t status=200 ok=true"
            ),
            "{line}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}
