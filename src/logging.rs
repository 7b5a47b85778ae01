//! Logs go to stderr, as text or one JSON object per line with the seed's
//! keys (`timestamp`, `level`, `logger`, `service`, `environment`,
//! `message`). Only this crate's events are written: the HTTP stack's own
//! trace output is not ours to vouch for. No call site logs a secret; the
//! secrets-in-logs test holds that at `-vvv`. Lines are plain text, never
//! coloured, so there is nothing for `NO_COLOR` to turn off and a log file
//! gets no escape codes (`tests/cli/terminal.rs`).
//!
//! The CLI writes each line before it goes on (a person is reading).
//! `serve` writes through a bounded queue and a writer thread
//! ([`write_in_background`]): a reader that stalls (a stuck log shipper, a
//! full pipe) costs lines, counted ([`lines_dropped`]) and reported once
//! the queue drains, and never stalls a refresh or a request.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};

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
        write_stderr(line);
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
    if let Some(line) = formatted_user_line(level, text) {
        write_stderr(line);
    }
}

fn formatted_user_line(level: Level, text: &str) -> Option<String> {
    match JSON_ENVIRONMENT.get() {
        None => Some(format!("{text}\n")),
        Some(environment) => {
            let message = ["error: ", "warning: ", "note: "]
                .iter()
                .find_map(|p| text.strip_prefix(p))
                .unwrap_or(text);
            json_line(&level, "withings_token::output", environment, message)
        }
    }
}

/// Text for stderr exactly as given, for a reader that is not a person
/// (GitHub Actions' `::add-mask::` commands).
pub fn raw_stderr(text: &str) {
    if !text.is_empty() {
        write_stderr(text.to_owned());
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

/// Every stderr line goes through here: into `serve`'s queue when it
/// has one, else written now. A failed write to stderr has nowhere to be
/// reported, so it is dropped.
fn write_stderr(line: String) {
    if let Some(queue) = crate::locked(&BACKGROUND).as_ref() {
        queue_line(queue, line, &DROPPED);
        return;
    }
    let spinner = SPINNER.lock().ok().and_then(|slot| slot.clone());
    let write = || {
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    };
    match spinner {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// How many lines `serve`'s queue holds for a slow reader: a burst of
/// failures fits, and a full queue is a few hundred kilobytes at most.
const QUEUE_LINES: usize = 1024;

/// How long a panic waits for its line to be written before the abort.
const PANIC_FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a clean stop waits for the queued lines to be written.
const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `serve`'s queue to the writer thread, while it writes in the background.
static BACKGROUND: std::sync::Mutex<Option<SyncSender<Queued>>> = std::sync::Mutex::new(None);

/// Lines the queue refused since the process started.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// What the writer thread is given.
enum Queued {
    Line(String),
    /// Answered once every line queued before it is written.
    Flush(SyncSender<()>),
}

/// Lines lost to a full queue (or a writer that is gone) so far: the
/// `withings_token_log_lines_dropped_total` counter.
pub fn lines_dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// While held, stderr lines go through a bounded queue to a writer thread
/// and are dropped (and counted) when it is full; dropped, it waits a
/// little for the queue to be written (a clean stop loses no line when
/// stderr is read).
#[must_use = "lines are written in the background only while the guard is held"]
pub struct BackgroundLog {
    started: bool,
}

/// Sends the stderr lines of this process through a writer thread from
/// now on (see [`BackgroundLog`]). When the thread cannot be started, lines
/// are written as before.
pub fn write_in_background() -> BackgroundLog {
    let (queue, lines) = std::sync::mpsc::sync_channel(QUEUE_LINES);
    let writer = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_queued(&lines, &mut std::io::stderr(), &DROPPED));
    let started = writer.is_ok();
    if started {
        *crate::locked(&BACKGROUND) = Some(queue);
        queue_panics();
    }
    BackgroundLog { started }
}

/// A panic's message goes through the queue too: the default hook writes
/// to stderr itself, and a stalled reader would hold the panicking thread
/// there for ever instead of letting the process abort (and its
/// supervisor restart it). Without the queue (or with its lock taken by
/// the thread that panicked), the previous hook speaks.
fn queue_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let queue = BACKGROUND.try_lock().ok().and_then(|queue| queue.clone());
        let line = formatted_user_line(Level::ERROR, &format!("panic: {info}"));
        match (queue, line) {
            (Some(queue), Some(line)) => {
                queue_line(&queue, line, &DROPPED);
                flush(&queue, PANIC_FLUSH_WAIT);
            }
            _ => previous(info),
        }
    }));
}

impl Drop for BackgroundLog {
    /// Waits up to [`FLUSH_WAIT`] for the queue to be written; then, if it
    /// was, lines are written at once again (the exit's report too). A
    /// reader still stalled keeps the queue: the exit never blocks on it.
    fn drop(&mut self) {
        if !self.started {
            return;
        }
        let queue = crate::locked(&BACKGROUND).clone();
        if let Some(queue) = queue
            && flush(&queue, FLUSH_WAIT)
        {
            crate::locked(&BACKGROUND).take();
        }
    }
}

/// True once every line queued before now is written, within `wait`.
fn flush(queue: &SyncSender<Queued>, wait: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + wait;
    let (done, written) = std::sync::mpsc::sync_channel(1);
    let mut marker = Queued::Flush(done);
    loop {
        match queue.try_send(marker) {
            Ok(()) => break,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(back)) if std::time::Instant::now() < deadline => {
                marker = back;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(TrySendError::Full(_)) => return false,
        }
    }
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    written.recv_timeout(left).is_ok()
}

/// Queues `line`, or counts it in `dropped` when the queue is full.
fn queue_line(queue: &SyncSender<Queued>, line: String, dropped: &AtomicU64) {
    if queue.try_send(Queued::Line(line)).is_err() {
        dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// The writer thread: writes each queued line to `out`, and whenever the
/// queue is drained, one line saying how many were dropped since the last
/// such line, if any were. Ends when the queue is gone.
fn write_queued(lines: &Receiver<Queued>, out: &mut impl Write, dropped: &AtomicU64) {
    let mut reported = 0;
    loop {
        let next = match lines.try_recv() {
            Ok(next) => next,
            Err(TryRecvError::Disconnected) => {
                report_dropped(out, dropped, &mut reported);
                return;
            }
            Err(TryRecvError::Empty) => {
                report_dropped(out, dropped, &mut reported);
                match lines.recv() {
                    Ok(next) => next,
                    Err(_) => return,
                }
            }
        };
        match next {
            Queued::Line(line) => {
                let _ = out.write_all(line.as_bytes());
            }
            Queued::Flush(done) => {
                // Said before the flush is answered: a stop that follows keeps it.
                report_dropped(out, dropped, &mut reported);
                let _ = done.try_send(());
            }
        }
    }
}

fn report_dropped(out: &mut impl Write, dropped: &AtomicU64, reported: &mut u64) {
    let total = dropped.load(Ordering::Relaxed);
    if total == *reported {
        return;
    }
    let text = format!(
        "warning: {} log lines were dropped: stderr was not read fast enough",
        total - *reported
    );
    *reported = total;
    if let Some(line) = formatted_user_line(Level::WARN, &text) {
        let _ = out.write_all(line.as_bytes());
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

    /// A stderr whose reader stalls until `resume` is dropped (or sent
    /// to), and says when the first write is waiting.
    struct StalledReader {
        written: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
        waiting: SyncSender<()>,
        resume: Receiver<()>,
    }

    impl Write for StalledReader {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _ = self.waiting.try_send(());
            let _ = self.resume.recv();
            self.written.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_reader_costs_lines_counted_and_reported_once_drained() {
        static DROPPED_HERE: AtomicU64 = AtomicU64::new(0);
        let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (waiting, first_write) = std::sync::mpsc::sync_channel(1);
        let (resume, resumed) = std::sync::mpsc::sync_channel(0);
        let mut reader = StalledReader {
            written: std::sync::Arc::clone(&written),
            waiting,
            resume: resumed,
        };
        let (queue, lines) = std::sync::mpsc::sync_channel(4);
        let writer = std::thread::spawn(move || write_queued(&lines, &mut reader, &DROPPED_HERE));
        queue_line(&queue, "line 1\n".into(), &DROPPED_HERE);
        first_write.recv().unwrap();
        // The writer is stuck in line 1: four more fit, fifteen are dropped,
        // and queueing never waited.
        for n in 2..=20 {
            queue_line(&queue, format!("line {n}\n"), &DROPPED_HERE);
        }
        assert_eq!(DROPPED_HERE.load(Ordering::Relaxed), 15);
        drop(resume);
        assert!(flush(&queue, std::time::Duration::from_secs(30)));
        // Flushed: every line queued before the flush is written by now.
        let flushed = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        assert!(
            flushed.starts_with("line 1\nline 2\nline 3\nline 4\nline 5\n"),
            "{flushed}"
        );
        drop(queue);
        writer.join().unwrap();
        assert_eq!(
            String::from_utf8(written.lock().unwrap().clone()).unwrap(),
            "line 1\nline 2\nline 3\nline 4\nline 5\n\
             warning: 15 log lines were dropped: stderr was not read fast enough\n"
        );
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
