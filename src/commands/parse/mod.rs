//! Parsing the command line into a [`Cli`]: as clap's whole tree would,
//! without building that tree for the lines scripts run most.

use std::path::PathBuf;

use clap::Args;

use super::{Cli, Command};
use crate::cli::{DeliveryArgs, GlobalArgs, parse_buffer};

/// The command tree: the derived one, with the global options hidden
/// under `sandbox`, which reads none of them (clap propagates a global
/// option to a subcommand only when it has no argument of that id, so each
/// gets a hidden copy there; a value given still reaches [`GlobalArgs`]).
pub fn command() -> clap::Command {
    hide_globals_under_sandbox(<Cli as clap::CommandFactory>::command())
}

/// `root` with hidden copies of every global option under `sandbox` (see
/// [`command`]); the lone tree of `sandbox` gets the same.
fn hide_globals_under_sandbox(root: clap::Command) -> clap::Command {
    let globals: Vec<clap::Arg> = <GlobalArgs as Args>::augment_args(clap::Command::new("globals"))
        .get_arguments()
        .map(|a| a.clone().global(true).hide(true))
        .collect();
    // `mut_subcommands` keeps the order (`mut_subcommand` moves it last).
    root.mut_subcommands(|sub| match sub.get_name() {
        "sandbox" => globals.iter().fold(sub, |sub, arg| sub.arg(arg.clone())),
        _ => sub,
    })
}

/// Parses `args` (the program name first) with [`command`]'s whole tree:
/// what [`parse`] falls back on, whose messages and help are the contract.
fn parse_whole(args: &[std::ffi::OsString]) -> Result<Cli, clap::Error> {
    let mut root = command();
    let mut matches = root.try_get_matches_from_mut(args)?;
    <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut root))
}

/// Parses the command line (`args`: the whole argv, program name first)
/// exactly as [`Cli::try_parse_from`] does, without building the whole
/// command tree when it can: clap copies each of the 17 global options into
/// all 16 subcommands before it parses one, copies every global value back
/// and forth between the levels after, and drops the lot: most of a
/// `status` run's instructions. So the commonest
/// `status` lines are read without clap ([`parse_plain`]); for the others,
/// the first word that names a subcommand is tried alone first, under a root
/// of the global options (see [`lone_tree`]). A success there is the whole tree's answer:
/// the root takes no positional, so every word before the subcommand is a
/// global option or its value in both trees, and the subcommand is built by
/// the same derive (`lone_subcommand_parses_like_the_whole_tree`). Anything
/// else (a guess that was an option's value, `--help`, `--version`, any
/// usage error) is parsed again with the whole tree, whose messages and help
/// are the contract.
pub fn parse(args: &[std::ffi::OsString]) -> Result<Cli, clap::Error> {
    parse_plain(args)
        .or_else(|| parse_lone(args))
        .map_or_else(|| parse_whole(args), Ok)
}

/// The `status` and `access-token` lines that scripts, cron and consumers
/// run, read without clap at all: even the lone tree costs more than the
/// rest of `status`. Accepted: `status` with `--check`
/// and `--buffer DURATION` after it, `access-token` with `--min-ttl
/// DURATION`, `--no-railway` and `--no-env-file-update` after it, and
/// `--no-env-file`, `--env-file PATH`, `--store PATH`, `--account NAME`, `--json`,
/// `-q`/`--quiet` and `--reveal` anywhere; each once, values after `=` or as
/// the next word (neither empty nor starting with `-`). Anything else,
/// including a value clap would refuse, is left to clap: `None`. That these
/// answers are clap's is pinned by `parse`'s tests, which compare them.
fn parse_plain(args: &[std::ffi::OsString]) -> Option<Cli> {
    let mut global = GlobalArgs::defaults()?;
    let mut command: Option<Command> = None;
    let mut seen: Vec<&str> = Vec::new();
    let mut words = args.iter().skip(1);
    while let Some(word) = words.next() {
        let word = word.to_str()?;
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value)),
            _ => (if word == "-q" { "--quiet" } else { word }, None),
        };
        if seen.contains(&name) {
            return None;
        }
        seen.push(name);
        if command.is_none()
            && inline.is_none()
            && let Some(plain) = plain_command(name)
        {
            command = Some(plain);
            continue;
        }
        let mut value = || {
            let value = match inline {
                Some(value) => value,
                None => words.next()?.to_str()?,
            };
            (!value.is_empty() && !value.starts_with('-')).then_some(value)
        };
        match (name, inline, command.as_mut()) {
            ("--check", None, Some(Command::Status(args))) => args.check = true,
            ("--buffer", _, Some(Command::Status(args))) => args.buffer = Some(parse_buffer(value()?).ok()?),
            ("--min-ttl", _, Some(Command::AccessToken(args))) => args.min_ttl = parse_buffer(value()?).ok()?,
            ("--no-railway", None, Some(Command::AccessToken(args))) => args.delivery.no_railway = true,
            ("--no-env-file-update", None, Some(Command::AccessToken(args))) => args.delivery.no_env_file_update = true,
            ("--no-env-file", None, _) => global.no_env_file = true,
            ("--json", None, _) => global.json = true,
            ("--quiet", None, _) => global.quiet = true,
            ("--reveal", None, _) => global.reveal = true,
            ("--store", _, _) => global.store = Some(PathBuf::from(value()?)),
            ("--account", _, _) => global.account = Some(value()?.to_owned()),
            ("--env-file", _, _) => global.env_file = Some(PathBuf::from(value()?)),
            _ => return None,
        }
    }
    // The one conflict among the accepted options: left to clap to word.
    let conflict = global.no_env_file && global.env_file.is_some();
    Some(Cli {
        global,
        command: command?,
    })
    .filter(|_| !conflict)
}

/// The subcommand `name` with clap's defaults, if `parse_plain` reads it.
fn plain_command(name: &str) -> Option<Command> {
    use super::{access_token::AccessTokenArgs, status::StatusArgs};
    match name {
        "status" => Some(Command::Status(StatusArgs {
            check: false,
            buffer: None,
        })),
        // access_token.rs's `--min-ttl` default; the tests compare the two.
        "access-token" => Some(Command::AccessToken(AccessTokenArgs {
            min_ttl: parse_buffer("5m").ok()?,
            delivery: DeliveryArgs {
                no_env_file_update: false,
                no_railway: false,
                trigger_deployment: false,
            },
        })),
        _ => None,
    }
}

fn parse_lone(args: &[std::ffi::OsString]) -> Option<Cli> {
    use clap::FromArgMatches;
    let words: Vec<std::borrow::Cow<str>> = args.iter().skip(1).map(|a| a.to_string_lossy()).collect();
    let at = words.iter().position(|w| SUBCOMMANDS.contains(&w.as_ref()))?;
    let mut matches = lone_tree(&words[at], &words[at + 1..])?
        .try_get_matches_from(args)
        .ok()?;
    Cli::from_arg_matches_mut(&mut matches).ok()
}

/// The name of every subcommand of [`Command`], as clap spells it.
const SUBCOMMANDS: [&str; 24] = [
    "status",
    "refresh",
    "auth-url",
    "exchange",
    "login",
    "railway-sync",
    "pull",
    "export",
    "import",
    "access-token",
    "exec",
    "api",
    "validate",
    "doctor",
    "serve",
    "sandbox",
    "demo",
    "completions",
    "accounts",
    "notify",
    "keygen",
    "rekey",
    "usage",
    "health",
];

/// The global options and the subcommand called `name`, nothing else. Of
/// the global options, only those the words `after` the subcommand may name
/// (and the options they conflict with) stay global; the others are the
/// root's alone, where the whole tree's answer takes them from too (a global
/// option's value below the root is the root's unless given there). A word
/// naming one that was not seen here is refused by the subcommand, and the
/// whole tree parses the line again.
fn lone_tree(name: &str, after: &[impl AsRef<str>]) -> Option<clap::Command> {
    let root = <GlobalArgs as Args>::augment_args(clap::Command::new("withings-token"));
    let mut global: Vec<clap::Id> = Vec::new();
    for arg in root.get_arguments().filter(|a| may_name(after, a)) {
        global.push(arg.get_id().clone());
        global.extend(root.get_arg_conflicts_with(arg).iter().map(|a| a.get_id().clone()));
    }
    let root = root.mut_args(|a| {
        let keep = global.contains(a.get_id());
        a.global(keep)
    });
    let tree = root.subcommand(lone_subcommand(name)?).subcommand_required(true);
    Some(hide_globals_under_sandbox(tree))
}

/// Whether any of `words` may be `arg`: `--long`, `--long=…`, or a short
/// cluster holding its letter (`-qv`, `-ojson`). A superset is harmless.
fn may_name(words: &[impl AsRef<str>], arg: &clap::Arg) -> bool {
    words
        .iter()
        .map(AsRef::as_ref)
        .any(|word| match word.strip_prefix("--") {
            Some(rest) => arg
                .get_long()
                .and_then(|long| rest.strip_prefix(long))
                .is_some_and(|tail| tail.is_empty() || tail.starts_with('=')),
            None => word.starts_with('-') && arg.get_short().is_some_and(|short| word[1..].contains(short)),
        })
}

/// The subcommand called `name` as the `Command` derive builds it, alone.
fn lone_subcommand(name: &str) -> Option<clap::Command> {
    fn of<A: Args>(name: &'static str) -> clap::Command {
        A::augment_args(clap::Command::new(name))
    }
    use super::*;
    Some(match name {
        "status" => of::<status::StatusArgs>("status"),
        "refresh" => of::<refresh::RefreshArgs>("refresh"),
        "auth-url" => of::<auth_url::AuthUrlArgs>("auth-url"),
        "exchange" => of::<exchange::ExchangeArgs>("exchange"),
        "login" => of::<login::LoginArgs>("login"),
        "railway-sync" => of::<railway_sync::RailwaySyncArgs>("railway-sync"),
        "pull" => of::<pull::PullArgs>("pull"),
        "export" => of::<export::ExportArgs>("export"),
        "import" => of::<import::ImportArgs>("import"),
        "access-token" => of::<access_token::AccessTokenArgs>("access-token"),
        "exec" => of::<exec::ExecArgs>("exec"),
        "api" => of::<api::ApiArgs>("api"),
        "validate" => of::<validate::ValidateArgs>("validate"),
        "doctor" => of::<doctor::DoctorArgs>("doctor"),
        "serve" => of::<serve::ServeArgs>("serve"),
        "sandbox" => of::<sandbox::SandboxArgs>("sandbox"),
        "demo" => of::<demo::DemoArgs>("demo"),
        "completions" => of::<completions::CompletionsArgs>("completions"),
        "accounts" => of::<accounts::AccountsArgs>("accounts"),
        "notify" => of::<notify::NotifyArgs>("notify"),
        "keygen" => of::<keygen::KeygenArgs>("keygen"),
        "rekey" => of::<rekey::RekeyArgs>("rekey"),
        "usage" => of::<usage::UsageArgs>("usage"),
        "health" => of::<health::HealthArgs>("health"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
