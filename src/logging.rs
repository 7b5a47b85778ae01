//! Logs go to stderr, as text or one JSON object per line with the seed's
//! keys (`timestamp`, `level`, `logger`, `service`, `environment`,
//! `message`). Only this crate's events are written: the HTTP stack's own
//! trace output is not ours to vouch for. No call site logs a secret; the
//! secrets-in-logs test holds that at `-vvv`. Lines are plain text, never
//! coloured, so there is nothing for `NO_COLOR` to turn off and a log file
//! gets no escape codes (`tests/cli/terminal.rs`).

use std::io::Write;

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

/// The whole subscriber: events of this crate up to `max`, one line each.
/// No span is recorded (none is made here, and no one else's event is
/// written), so it keeps no per-span state: `tracing-subscriber`'s registry
/// allocates and zeroes a 32 KiB table at every start for nothing.
struct StderrLog {
    max: Level,
    format: LogFormat,
    environment: String,
    /// Span ids must be unique and non-zero, though nothing reads them.
    next_span: std::sync::atomic::AtomicU64,
}

#[derive(Serialize)]
struct JsonLine<'a> {
    timestamp: String,
    level: &'a str,
    logger: &'a str,
    service: &'static str,
    environment: &'a str,
    message: &'a str,
}

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl StderrLog {
    fn writes(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.max && meta.target().starts_with("withings_token")
    }
}

impl Subscriber for StderrLog {
    /// Decided once per call site: the others cost nothing after that.
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.writes(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        self.writes(meta)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.max.into())
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        if !self.writes(meta) {
            return;
        }
        let mut message = Message::default();
        event.record(&mut message);
        let line = match self.format {
            LogFormat::Text => format!("{}: {}\n", level_word(meta.level()), message.0),
            LogFormat::Json => match json_line(meta.level(), meta.target(), &self.environment, &message.0) {
                Some(line) => line,
                None => return,
            },
        };
        write_stderr(&line);
    }
}

/// One log object and its newline.
fn json_line(level: &Level, logger: &str, environment: &str, message: &str) -> Option<String> {
    let line = JsonLine {
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        level: level.as_str(),
        logger,
        service: "withings-token",
        environment,
        message,
    };
    serde_json::to_string(&line).ok().map(|json| json + "\n")
}

/// The `environment` of JSON lines, set by `init` with `--log-format json`.
static JSON_ENVIRONMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Writes a line meant for the person (a note, a warning, the error report)
/// on stderr, whatever the verbosity. As text it is written as given; with
/// `--log-format json` it becomes a log object like every other line (its
/// leading `error: `/`warning: `/`note: ` dropped, the level says it), so
/// stderr stays one JSON object per line for log collectors.
pub fn user_line(level: Level, text: &str) {
    let line = match JSON_ENVIRONMENT.get() {
        None => format!("{text}\n"),
        Some(environment) => {
            let message = ["error: ", "warning: ", "note: "]
                .iter()
                .find_map(|p| text.strip_prefix(p))
                .unwrap_or(text);
            match json_line(&level, "withings_token::output", environment, message) {
                Some(line) => line,
                None => return,
            }
        }
    };
    write_stderr(&line);
}

/// Text for stderr exactly as given, for a reader that is not a person
/// (GitHub Actions' `::add-mask::` commands).
pub fn raw_stderr(text: &str) {
    if !text.is_empty() {
        write_stderr(text);
    }
}

/// The spinner on screen, if any: stderr lines are printed above it.
static SPINNER: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);

/// Registers (or clears) the spinner that stderr lines must not be glued to.
pub fn set_spinner(bar: Option<indicatif::ProgressBar>) {
    if let Ok(mut slot) = SPINNER.lock() {
        *slot = bar;
    }
}

/// Ends the spinner on screen, if any: the wait is over once the answer is
/// printed. Called before every write to stdout, which shares the terminal:
/// a spinner still ticking would glue the report's first line to its own and
/// clear the line after it.
pub fn finish_spinner() {
    let spinner = SPINNER.lock().ok().and_then(|mut slot| slot.take());
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
}

/// Every stderr line goes through here. A failed write to stderr has
/// nowhere to be reported, so it is dropped.
fn write_stderr(line: &str) {
    let spinner = SPINNER.lock().ok().and_then(|slot| slot.clone());
    let write = || {
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    };
    match spinner {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

fn level_word(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// `-q` errors only, default warnings, `-v` info, `-vv` debug, `-vvv` trace.
pub fn level_for(quiet: bool, verbose: u8) -> Level {
    match (quiet, verbose) {
        (true, _) => Level::ERROR,
        (false, 0) => Level::WARN,
        (false, 1) => Level::INFO,
        (false, 2) => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// Log line format on stderr (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the stderr logger for this process (`verbose`: how many `-v`;
/// `environment`: the deployment's name in JSON lines, from the settings);
/// a second call is a no-op.
pub fn init(format: LogFormat, quiet: bool, verbose: u8, environment: String) {
    let log = StderrLog {
        max: level_for(quiet, verbose),
        format,
        environment,
        next_span: std::sync::atomic::AtomicU64::new(1),
    };
    if format == LogFormat::Json {
        let _ = JSON_ENVIRONMENT.set(log.environment.clone());
    }
    let _ = tracing::subscriber::set_global_default(log);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_the_answer_ends_the_spinner() {
        let bar = indicatif::ProgressBar::hidden();
        set_spinner(Some(bar.clone()));
        finish_spinner();
        assert!(bar.is_finished());
        assert!(SPINNER.lock().unwrap().is_none());
        finish_spinner();
    }

    #[test]
    fn verbosity_maps_to_levels() {
        assert_eq!(level_for(true, 0), Level::ERROR);
        assert_eq!(level_for(false, 0), Level::WARN);
        assert_eq!(level_for(false, 1), Level::INFO);
        assert_eq!(level_for(false, 2), Level::DEBUG);
        assert_eq!(level_for(false, 5), Level::TRACE);
    }
}
