//! withings-token: keeps Withings accounts' OAuth2 tokens alive.
//!
//! `run()` is the whole program; `main.rs` only calls it. Two faces sit on
//! one core and never import each other.
//!
//! The faces:
//! - `commands`: the command line. Its subcommand list and parser, one file
//!   per subcommand (its clap `Args` and the `run` that calls the core and
//!   hands the result to `output`), `via_server` (the `--server` plumbing)
//!   and `manpage` (man pages and completions made from the clap tree).
//!   `cli` holds the global options and value parsers it shares.
//! - `server`: `serve`, the admin API, the token broker, the background
//!   refresh and the metrics.
//!
//! The operations both faces call:
//! - `rotation`: the one place a token set changes (lock, read, decide,
//!   request, save); `consent`: the authorization URL, the redirect, its
//!   exchange and the loopback consent `login` runs; `broker`: a token that
//!   lives long enough, refreshed first when it does not; `validation`: the
//!   access token checked with Withings; `report`: the copies delivered and
//!   the token and status reports; `railway_copy`: Railway's variables
//!   compared with the store and pulled in; `diagnosis`: `doctor`'s checks;
//!   `accounts`: which account a command acts on, and every account's
//!   overview; `notify`: the events a run noted recorded in each
//!   account's event record, its outbox delivered to the sinks (commands,
//!   webhooks) and the dead-man ping; `rekeying`: every account's store
//!   encrypted again to the recipients configured now (`rekey`);
//!   `importing`: an export, plain or encrypted, read back into the store;
//!   `data_call`: one call of Withings' data API for `api` (locally, or
//!   through a running `serve`'s proxy), judged by Withings' status.
//! - `tokens`: the token set and the one pure decision, `assess`; `clock`:
//!   the one clock, moved by the offset measured against Withings.
//!
//! What they stand on:
//! - `store` (the durable token store, a file or Redis), `sealing` (what
//!   the stores keep encrypted with age: the recipients, this host's
//!   identities, the rules for writing), `envfile`,
//!   `copies` (the env file and Railway, delivered from the store and healed
//!   when behind), `fsutil` (durable writes and guarded reads).
//! - `withings`, `railway` and `server_client` (the outside parties),
//!   `http` (the one HTTP stack and retry loop).
//! - `events` (what happened to an account, as typed events, and the
//!   record that sends each once per change of state; the one-time
//!   re-consent links).
//! - `account_name` (an account's checked name, and where its set lives
//!   beside the deployment's store: a file's directory, a Redis key).
//! - `budget` (the requests to Withings' token endpoint one app may send
//!   a minute, shared by a process's clients and, through Redis, by hosts),
//!   `settings` (flag > env > account table > config file > env file >
//!   default), `config` (the config file, read and edited), `output` (stdout: one
//!   report trait, one file per format), `progress` (what a waiting person
//!   is shown), `logging` (stderr), `signals` (SIGINT/SIGTERM held while a
//!   new set is saved), `redact` (secrets scrubbed from outside text),
//!   `duration`, and `error` (codes, exit statuses, actions).
//! - `sandbox`: Withings and Railway emulated on loopback, for `sandbox`,
//!   `demo` and the tests.

mod account_name;
mod accounts;
mod broker;
mod budget;
mod cli;
mod clock;
mod commands;
mod config;
mod consent;
mod copies;
mod data_call;
mod diagnosis;
mod duration;
mod envfile;
mod error;
mod events;
mod fsutil;
mod http;
mod importing;
mod logging;
mod notify;
mod output;
mod progress;
mod railway;
mod railway_copy;
mod redact;
mod rekeying;
mod report;
mod rotation;
mod sandbox;
mod sealing;
mod server;
mod server_client;
mod settings;
mod signals;
mod store;
mod tokens;
mod validation;
mod withings;

/// What the generated files are made of (the man pages, the completions, the
/// exit-code and settings tables in `docs/`): `tests/cli/generated.rs`
/// regenerates them and fails when a committed copy is stale.
pub mod generated {
    pub use crate::commands::command;
    pub use crate::commands::manpage::{completion_scripts, man_page, man_pages};
    pub use crate::error::{EXIT_STATUS_TABLE, exit_status_markdown};
    pub use crate::settings::{SETTINGS, settings_markdown};
}

/// The env file's quoting and the token keys, for the property tests that
/// check what a dotenv reader takes back.
pub use crate::envfile::format_value;
pub use crate::tokens::TOKEN_KEYS;

use std::process::ExitCode;

use crate::output::{ErrorBody, ErrorReport, Output};
use crate::settings::OutputOptions;

/// A mutex whose holder panicked still guards whole data everywhere this
/// crate uses one (a file, a cached snapshot, a list of secrets), each
/// replaced in one assignment: take it rather than propagate the panic.
pub(crate) fn locked<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Parses the command line, runs the command, reports any error and
/// returns the documented exit code.
pub fn run() -> ExitCode {
    signals::survive_file_size_limits();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut cli = match commands::parse(&args) {
        Ok(cli) => cli,
        // `--help` and `--version` are not errors (use_stderr is false).
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let action = usage_action(&args);
            if cli::asks_for_json(&args) {
                print_usage_error_json(&e, &action);
            }
            print_usage_error(&e, &action);
            return ExitCode::from(2);
        }
    };
    if let commands::Command::Serve(_) = cli.command {
        commands::serve::log_defaults(&mut cli.global);
    }
    cli.global.init_logging();
    if let commands::Command::Serve(_) = cli.command {
        // Before the settings, and the secrets they hold, are read.
        server::keep_out_of_core_dumps();
    }
    let out = Output::new(OutputOptions {
        format: cli.global.output_format(),
        explicit_format: cli.global.explicit_format(),
        reveal: cli.global.reveal,
        quiet: cli.global.quiet,
    });
    match commands::dispatch(cli, &out) {
        Ok(status) => ExitCode::from(status.exit_code()),
        Err(error) => {
            out.error(&error);
            ExitCode::from(error.exit_code())
        }
    }
}

/// What to do after a command line clap refused: the help of the
/// subcommand it names (the first argument that is one), else the
/// top-level help.
fn usage_action(args: &[std::ffi::OsString]) -> String {
    let root = commands::command();
    let named = args.iter().skip(1).find_map(|arg| {
        let arg = arg.to_str()?;
        root.get_subcommands()
            .find(|sub| sub.get_name() == arg && arg != "help")
            .map(|sub| sub.get_name().to_owned())
    });
    match named {
        Some(name) => format!("see `withings-token {name} --help`"),
        None => "see `withings-token --help`".to_owned(),
    }
}

/// clap's own text (its colours too, when stderr takes them), with the
/// code on its `error:` line and a `next:` line after it, as every other
/// error has. A bare `withings-token` shows the help, then both lines.
fn print_usage_error(error: &clap::Error, action: &str) {
    use std::io::Write;
    let rendered = error.render();
    let styled = rendered.ansi().to_string();
    let text = if rendered.to_string().starts_with("error:") {
        let (first, rest) = styled.split_once('\n').unwrap_or((&styled, ""));
        format!("{first} [USAGE_ERROR]\n{rest}")
    } else {
        format!("{styled}\nerror: no subcommand given [USAGE_ERROR]\n")
    };
    let text = format!("{}\n  next: {action}\n", text.trim_end());
    let mut stderr = anstream::AutoStream::new(std::io::stderr().lock(), anstream::ColorChoice::Auto);
    let _ = stderr.write_all(text.as_bytes()).and_then(|()| stderr.flush());
}

/// The contract's JSON error object for a command line clap refused, on
/// stdout; clap's own text still goes to stderr.
fn print_usage_error_json(error: &clap::Error, action: &str) {
    use std::io::Write;
    // clap's first line, without its `error: `: the rest is usage and tips.
    let rendered = error.to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let report = ErrorReport {
        error: ErrorBody {
            code: "USAGE_ERROR",
            message: first.strip_prefix("error: ").unwrap_or(first).to_owned(),
            action: action.to_owned(),
        },
    };
    if let Ok(json) = serde_json::to_string_pretty(&report) {
        let _ = std::io::stdout().lock().write_all(format!("{json}\n").as_bytes());
    }
}
