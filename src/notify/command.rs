//! A command sink (`on_event`): `/bin/sh -c CMD`, the event as JSON on its
//! stdin (closed after it) and as `WITHINGS_TOKEN_EVENT_*` variables, in
//! this process's environment less every secret this tool reads (a hook
//! never receives a token). Hooks run one at a time in the whole process,
//! so `serve`'s background deliveries and a test event never overlap. Each
//! starts a process group of its own, and the group (the hook and all it
//! started) is killed after 10 s or at the deadline, whichever comes first.
//!
//! Its stdout is dropped. Its stderr is read (the first 4 kB kept) and,
//! when the hook fails, logged as one line: inherited, it would break the
//! one-object-a-line log of `serve --log-format json`.
//!
//! tokio's processes rather than std's and a thread: the wait, its limit
//! and the kill run on the runtime the webhooks and `serve` share, and
//! nothing blocks it.

use std::ffi::OsString;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::sent::{Sent, SinkInfo, sink_id};
use crate::duration::humanize;
use crate::events::Event;

/// A hook still running this long is killed.
pub const KILL_AFTER: Duration = Duration::from_secs(10);
/// The most of a hook's stderr kept for the log.
const MAX_STDERR: usize = 4 * 1024;
/// How long a hook's stderr is still read once it exited: a background
/// child it left may hold the pipe open for as long as it runs.
const STDERR_GRACE: Duration = Duration::from_millis(200);

/// Held while a hook runs: one at a time, in the whole process.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Variables that hold this tool's secrets, by name.
const SECRET_VARIABLES: &[&str] = &[
    "WITHINGS_REFRESH_TOKEN",
    "WITHINGS_ACCESS_TOKEN",
    "WITHINGS_CLIENT_SECRET",
    "ADMIN_API_TOKEN",
    "WITHINGS_TOKEN_READER_TOKEN",
    "RAILWAY_TOKEN",
    "RAILWAY_API_TOKEN",
    "WITHINGS_TOKEN_WEBHOOK_SECRET",
    "WITHINGS_TOKEN_IDENTITY",
    // Their paths are credentials.
    "WITHINGS_TOKEN_WEBHOOK_URL",
    "WITHINGS_TOKEN_PING_URL",
];

/// An account's own seed tokens (`ALICE_WITHINGS_REFRESH_TOKEN`).
const SECRET_SUFFIXES: &[&str] = &["_WITHINGS_REFRESH_TOKEN", "_WITHINGS_ACCESS_TOKEN"];

pub struct CommandSink {
    command: String,
    id: String,
}

/// How a hook's run ended.
#[derive(Debug)]
enum Ended {
    Exited(std::process::ExitStatus),
    /// At its limit: `KILL_AFTER`, or the deadline when that came first.
    Killed {
        after: Duration,
        at_deadline: bool,
    },
    NotStarted(std::io::Error),
}

impl CommandSink {
    pub fn new(command: &str) -> CommandSink {
        CommandSink {
            command: command.to_owned(),
            id: sink_id("command", command),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn info(&self) -> SinkInfo {
        SinkInfo {
            id: self.id.clone(),
            kind: "command",
            // A command may hold a secret written into it.
            shown: crate::redact::scrub(&self.command, &[]),
        }
    }

    /// Runs the hook for `event` when no other hook runs, until its limit;
    /// exit 0 is delivered, anything else is worth another try.
    pub async fn run(&self, event: &Event, deadline: Instant) -> Sent {
        let out_of_time = || Sent::Retry {
            after: None,
            why: "another event's command was still running at the notify timeout".to_owned(),
        };
        if Instant::now() >= deadline {
            return out_of_time();
        }
        let Ok(_turn) = tokio::time::timeout_at(deadline.into(), TURN.lock()).await else {
            return out_of_time();
        };
        let json = match serde_json::to_vec(event) {
            Ok(json) => json,
            Err(e) => {
                return Sent::Refused {
                    why: format!("the event could not be written as JSON ({e})"),
                };
            }
        };
        let (ended, stderr) = run_hook(hook_command(&self.command, event), &json, Limit::until(deadline)).await;
        let sent = match &ended {
            Ended::Exited(status) if status.success() => Sent::Delivered,
            _ => Sent::Retry {
                after: None,
                why: why_failed(&ended),
            },
        };
        if sent != Sent::Delivered && !stderr.is_empty() {
            let text = crate::redact::scrub(String::from_utf8_lossy(&stderr).trim_end(), &[]);
            tracing::warn!("the on_event command {} wrote on stderr: {text}", self.info().shown);
        }
        sent
    }
}

/// When a hook is killed: [`KILL_AFTER`] from its start, or the deadline
/// when that comes first.
struct Limit {
    at: Instant,
    after: Duration,
    at_deadline: bool,
}

impl Limit {
    fn until(deadline: Instant) -> Limit {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        let at_deadline = left < KILL_AFTER;
        let after = if at_deadline { left } else { KILL_AFTER };
        Limit {
            at: now + after,
            after,
            at_deadline,
        }
    }
}

/// `sh -c COMMAND` in a process group of its own, with the event's
/// variables and without this tool's secrets.
fn hook_command(command: &str, event: &Event) -> tokio::process::Command {
    let mut hook = tokio::process::Command::new("/bin/sh");
    hook.arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in inherited_secret_variables() {
        hook.env_remove(name);
    }
    hook.envs(event.variables());
    hook
}

/// The variables of this process a hook must not inherit: by name, and any
/// whose value holds a secret this process knows (from the env file or the
/// config file, under any name). Only to leave them out: settings are read
/// in `settings` alone.
fn inherited_secret_variables() -> Vec<OsString> {
    std::env::vars_os()
        .filter(|(name, value)| withheld(&name.to_string_lossy(), &value.to_string_lossy()))
        .map(|(name, _)| name)
        .collect()
}

/// Whether a hook must not see the variable `name=value`. An inherited
/// `WITHINGS_TOKEN_EVENT_*` is not this event's: it goes too.
pub(super) fn withheld(name: &str, value: &str) -> bool {
    SECRET_VARIABLES.contains(&name)
        || SECRET_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
        || name.starts_with("WITHINGS_TOKEN_EVENT_")
        || crate::redact::scrub(value, &[]) != crate::redact::visible(value)
}

/// Runs `hook` with `json` on its stdin until `limit`, then kills its
/// process group; returns how it ended and the start of its stderr.
async fn run_hook(mut hook: tokio::process::Command, json: &[u8], limit: Limit) -> (Ended, Vec<u8>) {
    let mut child = match hook.spawn() {
        Ok(child) => child,
        Err(e) => return (Ended::NotStarted(e), Vec::new()),
    };
    let captured = Arc::new(Mutex::new(Vec::new()));
    let mut reader = child
        .stderr
        .take()
        .map(|stderr| tokio::spawn(read_capped(stderr, Arc::clone(&captured))));
    let mut stdin = child.stdin.take();
    let fed_and_waited = async {
        if let Some(stdin) = stdin.as_mut() {
            // A hook that does not read its stdin closes it: not a failure.
            let _ = stdin.write_all(json).await;
        }
        drop(stdin.take());
        child.wait().await
    };
    let ended = match tokio::time::timeout_at(limit.at.into(), fed_and_waited).await {
        Ok(Ok(status)) => Ended::Exited(status),
        Ok(Err(e)) => Ended::NotStarted(e),
        Err(_) => {
            kill_group(&mut child).await;
            Ended::Killed {
                after: limit.after,
                at_deadline: limit.at_deadline,
            }
        }
    };
    if let Some(reader) = reader.as_mut()
        && tokio::time::timeout(STDERR_GRACE, &mut *reader).await.is_err()
    {
        reader.abort();
    }
    let stderr = crate::locked(&captured).clone();
    (ended, stderr)
}

/// Kills the hook's whole process group, then reaps the hook.
async fn kill_group(child: &mut tokio::process::Child) {
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(group) = group
        && let Err(e) = rustix::process::kill_process_group(group, rustix::process::Signal::KILL)
    {
        tracing::debug!("could not kill the on_event command's process group: {e}");
    }
    // The hook itself, should its group be gone already; then reaped.
    let _ = child.kill().await;
}

/// Reads `stderr` to its end, keeping its first [`MAX_STDERR`] bytes (the
/// rest is read and dropped, so a chatty hook never blocks on the pipe).
async fn read_capped(mut stderr: tokio::process::ChildStderr, captured: Arc<Mutex<Vec<u8>>>) {
    let mut buffer = [0u8; 1024];
    while let Ok(read) = stderr.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        let mut kept = crate::locked(&captured);
        let room = MAX_STDERR.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..read.min(room)]);
    }
}

/// `exited with status 3`, `killed after 10 s`.
fn why_failed(ended: &Ended) -> String {
    use std::os::unix::process::ExitStatusExt;
    match ended {
        Ended::Exited(status) => match (status.code(), status.signal()) {
            (Some(127), _) => "exited with status 127 (the shell found no such command)".to_owned(),
            (Some(126), _) => "exited with status 126 (the shell could not run the command)".to_owned(),
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => format!("ended without a status ({status})"),
        },
        Ended::Killed {
            after,
            at_deadline: false,
        } => format!("killed after {}", humanize(*after)),
        Ended::Killed {
            after,
            at_deadline: true,
        } => format!("killed at the notify timeout, after {}", humanize(*after)),
        Ended::NotStarted(e) => format!("could not be started: {e}"),
    }
}
