//! Logs fit for operators, the same on every Cairn binary: what is written to stderr and how.
//!
//! - **Filter**: the binary's own variable (`CAIRN_LOG_LOG`, `CAIRN_WITNESS_LOG`, ...) if set,
//!   else `RUST_LOG`, else `info`; the usual `tracing` directives (`warn,cairn_log=debug`).
//! - **Format**: text lines (the default), or JSON lines (`--log-format json`): one object a
//!   line with `timestamp` (RFC 3339, UTC), `level`, `target`, `message` and the event's other
//!   fields under their own names.
//! - **Colours** only when stderr is a terminal: a file or a journal gets no escape codes.
//! - **Floods**: a warning or an error is written at most once per [`REPEAT_INTERVAL`] with the
//!   same message and fields from the same place in the code; the repeats in between are
//!   counted, and the next such line written says how many were left out (`repeated=N`, or
//!   `"repeated": N` in JSON). A server whose disk is full or whose clients all fail the same
//!   way writes a line every few seconds, not one a request; a different error, or the same
//!   error about another witness, is still written. Information and debug lines are never held
//!   back. At most [`MAX_TRACKED_LINES`] distinct lines are tracked at once.

use std::collections::HashMap;
use std::fmt;
use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// At most one warning or error with the same text from one place in the code is written per
/// this interval.
pub const REPEAT_INTERVAL: Duration = Duration::from_secs(10);

/// The most distinct warnings and errors tracked at once; beyond, lines are written untracked.
pub const MAX_TRACKED_LINES: usize = 4096;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// Sets up the process's logging on stderr: `variable` (the binary's own, e.g.
/// `CAIRN_LOG_LOG`) or else `RUST_LOG` filters, `format` formats. Call once, first thing.
pub fn init(format: LogFormat, variable: &str) {
    let filter = [variable, "RUST_LOG"]
        .iter()
        .find_map(|name| {
            let value = std::env::var(name).ok()?;
            match EnvFilter::try_new(&value) {
                Ok(filter) => Some(filter),
                Err(error) => {
                    eprintln!("{name}={value:?} is not a log filter ({error}); using info");
                    Some(EnvFilter::new("info"))
                }
            }
        })
        .unwrap_or_else(|| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal() && format == LogFormat::Text;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .event_format(OperatorFormat::new(format, ansi))
        .init();
}

/// The format of [`init`]: text or JSON, with repeated warnings held back.
pub struct OperatorFormat {
    format: LogFormat,
    text: Format<Full, SystemTime>,
    repeats: Repeats,
}

impl OperatorFormat {
    /// The format `format`, with colours if `ansi`.
    pub fn new(format: LogFormat, ansi: bool) -> OperatorFormat {
        OperatorFormat {
            format,
            text: Format::default().with_ansi(ansi),
            repeats: Repeats::default(),
        }
    }
}

impl<S, N> FormatEvent<S, N> for OperatorFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(repeated) = self.repeats.admit(event, Instant::now()) else {
            // Nothing written: the layer writes nothing for an empty line.
            return Ok(());
        };
        match self.format {
            LogFormat::Json => write_json(&mut writer, event, repeated),
            LogFormat::Text if repeated == 0 => {
                self.text.format_event(context, writer.by_ref(), event)
            }
            LogFormat::Text => {
                // Rare (after a flood): formatted aside, to add the count before the newline.
                let mut line = String::new();
                self.text
                    .format_event(context, Writer::new(&mut line), event)?;
                let line = line.trim_end_matches('\n');
                writeln!(writer, "{line} repeated={repeated}")
            }
        }
    }
}

/// Warnings and errors by the place that writes them and their text: when one was last
/// written, and how many were held back since. A place is a `tracing` call site, known by the
/// address of its static metadata; the text is known by a hash of the event's fields.
#[derive(Debug, Default)]
pub struct Repeats {
    lines: Mutex<HashMap<(usize, u64), (Instant, u64)>>,
}

impl Repeats {
    /// Whether `event` at `now` is written: `Some(repeats held back before it)`, or `None` to
    /// hold it back.
    pub fn admit(&self, event: &Event<'_>, now: Instant) -> Option<u64> {
        let metadata = event.metadata();
        if *metadata.level() > Level::WARN {
            return Some(0);
        }
        let place = metadata as *const Metadata<'static> as usize;
        let mut text = TextHash(std::hash::DefaultHasher::new());
        event.record(&mut text);
        self.admit_line((place, std::hash::Hasher::finish(&text.0)), now)
    }

    fn admit_line(&self, line: (usize, u64), now: Instant) -> Option<u64> {
        let mut lines = match self.lines.lock() {
            Ok(lines) => lines,
            Err(poisoned) => poisoned.into_inner(),
        };
        match lines.get_mut(&line) {
            Some((written, held)) if now.duration_since(*written) < REPEAT_INTERVAL => {
                *held += 1;
                None
            }
            Some((written, held)) => {
                *written = now;
                Some(std::mem::take(held))
            }
            None => {
                if lines.len() >= MAX_TRACKED_LINES {
                    // Forget the lines whose interval is over (their counts were not yet
                    // reported: they are lost, the lines themselves were written).
                    lines.retain(|_, (written, _)| now.duration_since(*written) < REPEAT_INTERVAL);
                }
                if lines.len() < MAX_TRACKED_LINES {
                    lines.insert(line, (now, 0));
                }
                Some(0)
            }
        }
    }
}

/// A hash of an event's field names and values.
struct TextHash(std::hash::DefaultHasher);

impl Visit for TextHash {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        use std::hash::Hash as _;
        use std::io::Write as _;
        field.name().hash(&mut self.0);
        // Written straight into the hasher: no string is made.
        let _ = write!(HashWriter(&mut self.0), "{value:?}");
    }
}

/// An `io::Write` feeding a hasher.
struct HashWriter<'a>(&'a mut std::hash::DefaultHasher);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        std::hash::Hasher::write(self.0, bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One JSON object for `event`, on one line.
fn write_json(writer: &mut Writer<'_>, event: &Event<'_>, repeated: u64) -> fmt::Result {
    let metadata = event.metadata();
    let mut timestamp = String::new();
    SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
    let mut fields = JsonFields(Map::new());
    event.record(&mut fields);
    let mut object = Map::new();
    object.insert("timestamp".into(), Value::String(timestamp));
    object.insert("level".into(), Value::String(metadata.level().to_string()));
    object.insert(
        "target".into(),
        Value::String(metadata.target().to_string()),
    );
    let message = fields
        .0
        .remove("message")
        .unwrap_or(Value::String(String::new()));
    object.insert("message".into(), message);
    for (name, value) in fields.0 {
        // An event field named like one of the above is kept under another name.
        let name = if object.contains_key(&name) {
            format!("field.{name}")
        } else {
            name
        };
        object.insert(name, value);
    }
    if repeated > 0 {
        object.insert("repeated".into(), Value::from(repeated));
    }
    let line = serde_json::to_string(&Value::Object(object)).map_err(|_| fmt::Error)?;
    writeln!(writer, "{line}")
}

/// An event's fields as JSON values.
struct JsonFields(Map<String, Value>);

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), Value::String(value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex as StdMutex};

    /// A writer that keeps what is written, for a subscriber in a test.
    #[derive(Clone, Default)]
    struct Captured(Arc<StdMutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .expect("not poisoned")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(format: LogFormat, emit: impl FnOnce()) -> String {
        capture_with(OperatorFormat::new(format, false), |_| emit())
    }

    /// What `emit` logs through `format` (which it may look into).
    fn capture_with(format: OperatorFormat, emit: impl FnOnce(&OperatorFormat)) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let format = Arc::new(format);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .event_format(Shared(format.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || emit(&format));
        let bytes = captured.0.lock().expect("not poisoned").clone();
        String::from_utf8(bytes).expect("UTF-8")
    }

    /// The format shared with the test that looks into it.
    struct Shared(Arc<OperatorFormat>);

    impl<S, N> FormatEvent<S, N> for Shared
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        fn format_event(
            &self,
            context: &FmtContext<'_, S, N>,
            writer: Writer<'_>,
            event: &Event<'_>,
        ) -> fmt::Result {
            self.0.format_event(context, writer, event)
        }
    }

    #[test]
    fn json_lines_carry_the_message_level_and_fields() {
        let output = capture(LogFormat::Json, || {
            tracing::info!(
                principal = "billing",
                count = 3u64,
                "principals \"reloaded\""
            );
        });
        let line: Value = serde_json::from_str(output.trim()).expect("one JSON line");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "principals \"reloaded\"");
        assert_eq!(line["principal"], "billing");
        assert_eq!(line["count"], 3);
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert!(!output.contains('\x1b'));
    }

    #[test]
    fn a_flood_of_one_warning_is_one_line_then_a_count() {
        let repeats = Repeats::default();
        let output = capture(LogFormat::Text, || {
            for _ in 0..1000 {
                tracing::warn!("accepting failed");
            }
            tracing::info!("information is never held back");
            tracing::info!("information is never held back");
        });
        assert_eq!(output.matches("accepting failed").count(), 1, "{output}");
        assert_eq!(output.matches("never held back").count(), 2, "{output}");
        // The count comes with the next such line, an interval later.
        let start = Instant::now();
        assert_eq!(repeats.admit_line((1, 7), start), Some(0));
        assert_eq!(repeats.admit_line((2, 7), start), Some(0), "another place");
        assert_eq!(repeats.admit_line((1, 8), start), Some(0), "another text");
        for _ in 0..5 {
            let soon = start + Duration::from_secs(1);
            assert_eq!(repeats.admit_line((1, 7), soon), None);
        }
        let later = start + REPEAT_INTERVAL;
        assert_eq!(repeats.admit_line((1, 7), later), Some(5));
        assert_eq!(repeats.admit_line((1, 7), later), None);
        // Full: old lines are forgotten, and beyond, lines are written untracked.
        for text in 0..MAX_TRACKED_LINES as u64 * 2 {
            assert_eq!(repeats.admit_line((3, text), later), Some(0));
        }
        assert_eq!(
            repeats.lines.lock().expect("not poisoned").len(),
            MAX_TRACKED_LINES
        );
    }

    #[test]
    fn the_same_warning_about_different_things_is_not_held_back() {
        let output = capture(LogFormat::Text, || {
            for _ in 0..100 {
                for witness in ["w1", "w2"] {
                    tracing::warn!(witness, "the witness does not answer");
                }
            }
        });
        assert_eq!(output.lines().count(), 2, "{output}");
        assert!(output.contains("w1") && output.contains("w2"), "{output}");
    }

    #[test]
    fn text_lines_after_a_flood_say_how_many_were_left_out() {
        let format = OperatorFormat::new(LogFormat::Text, false);
        // Hold back as if a flood came before: the place is known, written an interval ago.
        let output = capture_with(format, |format| {
            for round in 0..2 {
                tracing::warn!("the disk is full");
                if round == 0 {
                    let mut lines = format.repeats.lines.lock().expect("not poisoned");
                    for (written, held) in lines.values_mut() {
                        *written -= REPEAT_INTERVAL;
                        *held = 41;
                    }
                }
            }
        });
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), 2, "{output}");
        assert!(lines[1].ends_with("repeated=41"), "{output}");
    }
}
