//! The command line's front door: the top-level [`Cli`] and its `--help`,
//! the [`Command`] list, the global options ([`GlobalArgs`]), the argument
//! groups several commands share ([`DeliveryArgs`]) and the value parsers
//! with their bounds. Each subcommand's own `Args`, whose doc comment is its
//! help text, lives beside its `run` in `commands/<name>.rs`. Commands
//! receive these structs; nothing else parses argv.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands;

#[derive(Debug, Parser)]
#[command(
    name = "withings-token",
    version,
    about = "Keep one Withings account's OAuth2 tokens alive: refresh, check, authorise, push to Railway",
    long_about = "Keep one Withings account's OAuth2 tokens alive.\n\n\
Withings rotates the refresh token on every refresh and the old one dies within hours, so \
withings-token saves every new pair durably (and atomically, under a lock) before doing \
anything else with it. Tokens live in a local store; they can also be written back to your \
.env file and pushed to a Railway service's variables.",
    after_help = "Examples:\n  withings-token demo                      # the whole flow against a built-in sandbox\n  withings-token status\n  withings-token refresh --if-needed\n  withings-token refresh --output-env > tokens.env\n\nExit codes: 0 ok, 1 bug, 2 usage, 3 configuration, 4 grant refused, 5 network/upstream/lock/login timeout, 6 new set saved but a copy (Railway, env file, stdout) stale, 7 refresh due (status --check), 8 Railway drifted from the store (railway-sync --check), 128+n signal."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Status(commands::status::StatusArgs),
    Refresh(commands::refresh::RefreshArgs),
    AuthUrl(commands::auth_url::AuthUrlArgs),
    Exchange(commands::exchange::ExchangeArgs),
    Login(commands::login::LoginArgs),
    RailwaySync(commands::railway_sync::RailwaySyncArgs),
    Pull(commands::pull::PullArgs),
    Export(commands::export::ExportArgs),
    AccessToken(commands::access_token::AccessTokenArgs),
    Exec(commands::exec::ExecArgs),
    Validate(commands::validate::ValidateArgs),
    Doctor(commands::doctor::DoctorArgs),
    Serve(commands::serve::ServeArgs),
    Sandbox(commands::sandbox::SandboxArgs),
    Demo(commands::demo::DemoArgs),
    Completions(commands::completions::CompletionsArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Env,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the Withings account is hosted: the EU/global hosts, or the US
/// (HIPAA) ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Region {
    Eu,
    Us,
}

/// Options accepted before and after the subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "no_env_file")]
    pub env_file: Option<PathBuf>,

    /// Read no env file at all
    #[arg(long, global = true)]
    pub no_env_file: bool,

    /// Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]
    #[arg(long, global = true, value_name = "PATH|URL")]
    pub store: Option<PathBuf>,

    /// Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]
    #[arg(long, global = true, value_name = "KEY")]
    pub store_key: Option<String>,

    /// Output format
    #[arg(short, long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,

    /// Same as `--output env` (prints tokens unmasked)
    #[arg(long, global = true, conflicts_with_all = ["output", "json"])]
    pub output_env: bool,

    /// Same as `--output json`
    #[arg(long, global = true, conflicts_with = "output")]
    pub json: bool,

    /// Show tokens unmasked in table and JSON output
    #[arg(long, global = true)]
    pub reveal: bool,

    /// Print only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log line format on stderr [default: text; json under `serve`]
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)
    #[arg(long, global = true, value_parser = parse_timeout, default_value = DEFAULT_TIMEOUT, value_name = "DURATION")]
    pub timeout: Duration,

    /// Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)
    #[arg(long, global = true, default_value_t = DEFAULT_RETRIES, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_RETRIES)))]
    pub retries: u32,

    /// First pause between attempts; doubles each time (0s allowed, at most 5m)
    #[arg(long, global = true, value_parser = parse_retry_delay, default_value = DEFAULT_RETRY_DELAY, value_name = "DURATION")]
    pub retry_delay: Duration,

    /// Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,

    /// Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]
    #[arg(long, global = true, value_enum, value_name = "REGION")]
    pub region: Option<Region>,

    /// How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)
    #[arg(long, global = true, value_parser = parse_lock_timeout, default_value = DEFAULT_LOCK_TIMEOUT, value_name = "DURATION")]
    pub lock_timeout: Duration,
}

impl GlobalArgs {
    pub fn explicit_format(&self) -> bool {
        self.output_env || self.json || self.output.is_some()
    }

    pub fn output_format(&self) -> OutputFormat {
        if self.output_env {
            OutputFormat::Env
        } else if self.json {
            OutputFormat::Json
        } else {
            self.output.unwrap_or(OutputFormat::Table)
        }
    }
}

/// Where a new token set goes after the store.
#[derive(Debug, Args)]
pub struct DeliveryArgs {
    /// Do not rewrite the token keys of the env file
    #[arg(long)]
    pub no_env_file_update: bool,

    /// Do not push the new tokens to Railway (the token is still rotated)
    #[arg(long, conflicts_with = "trigger_deployment")]
    pub no_railway: bool,

    /// After updating Railway's variables, redeploy the service once
    #[arg(long)]
    pub trigger_deployment: bool,
}

/// Defaults of the global options that have one (also read by
/// [`parse_plain`], which builds `GlobalArgs` without clap).
const DEFAULT_TIMEOUT: &str = "30s";
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_RETRY_DELAY: &str = "1s";
const DEFAULT_LOCK_TIMEOUT: &str = "60s";

/// Bounds of the duration and count flags. Beyond them a value is a typo
/// (`--timeout 30d`), and the larger ones would overflow the time arithmetic
/// done with them.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
pub const MAX_RETRIES: u32 = 10;
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);
pub const MAX_LOCK_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
pub const MAX_BUFFER: Duration = Duration::from_secs(366 * 86_400);

/// `--timeout`: a zero timeout would fail every request before it is sent.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = bounded_duration(text, MAX_TIMEOUT, "1h")?;
    if d.is_zero() {
        return Err("a timeout of 0 would fail every request; use e.g. 30s".into());
    }
    Ok(d)
}

fn parse_retry_delay(text: &str) -> Result<Duration, String> {
    bounded_duration(text, MAX_RETRY_DELAY, "5m")
}

fn parse_lock_timeout(text: &str) -> Result<Duration, String> {
    bounded_duration(text, MAX_LOCK_TIMEOUT, "24h")
}

/// `--buffer` and `WITHINGS_REFRESH_BUFFER`.
pub fn parse_buffer(text: &str) -> Result<Duration, String> {
    bounded_duration(text, MAX_BUFFER, "366d")
}

fn bounded_duration(text: &str, max: Duration, max_text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d > max {
        return Err(format!("`{}` is too long; at most {max_text} is accepted", text.trim()));
    }
    Ok(d)
}

/// Whether `args` (the whole argv, program name first) ask for JSON output,
/// read without clap: when clap refuses the command line, the error must
/// still reach a JSON reader. Accepts `--json`, `--output json`,
/// `--output=json`, `-o json`, `-o=json`, `-ojson` and short clusters such
/// as `-qojson`; stops at `--`.
pub fn asks_for_json(args: &[std::ffi::OsString]) -> bool {
    let args: Vec<std::borrow::Cow<str>> = args.iter().skip(1).map(|a| a.to_string_lossy()).collect();
    for (i, arg) in args.iter().enumerate() {
        let next = args.get(i + 1).map(AsRef::as_ref);
        let value = match arg.as_ref() {
            "--" => return false,
            "--json" => return true,
            "--output" => next,
            a if a.starts_with("--") => a.strip_prefix("--output="),
            a if a.starts_with('-') => a[1..]
                .split_once('o')
                .filter(|(flags, _)| flags.chars().all(|c| c == 'q' || c == 'v'))
                .map(|(_, rest)| rest.strip_prefix('=').unwrap_or(rest))
                .map(|rest| if rest.is_empty() { next.unwrap_or("") } else { rest }),
            _ => None,
        };
        if value == Some("json") {
            return true;
        }
    }
    false
}

/// Parses `30s`, `500ms`, `90m`, `24h`, `2d`, a bare number of seconds, or
/// parts of these one after another (`1h30m`, `4m57s`: as durations are
/// printed).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let not_one = || format!("`{text}` is not a duration; use e.g. 30s, 500ms, 90m, 24h, 1h30m");
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = text.parse().map_err(|_| format!("`{text}` is too long"))?;
        return secs
            .checked_mul(1000)
            .map(Duration::from_millis)
            .ok_or_else(|| format!("`{text}` is too long"));
    }
    let mut rest = text;
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let unit_len = after.find(|c: char| c.is_ascii_digit()).unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let n: u64 = number.parse().map_err(|_| not_one())?;
        let per_unit_ms: u64 = match unit.trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(not_one()),
            other => return Err(format!("unknown unit `{other}` in `{text}`; use ms, s, m, h or d")),
        };
        let part = n
            .checked_mul(per_unit_ms)
            .ok_or_else(|| format!("`{text}` is too long"))?;
        total_ms = total_ms
            .checked_add(part)
            .ok_or_else(|| format!("`{text}` is too long"))?;
        rest = next;
    }
    if text.is_empty() {
        return Err(not_one());
    }
    Ok(Duration::from_millis(total_ms))
}

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
/// `status` run's instructions (issue 18, item 20). So the commonest
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
/// rest of `status` (issue 18, item 20). Accepted: `status` with `--check`
/// and `--buffer DURATION` after it, `access-token` with `--min-ttl
/// DURATION`, `--no-railway` and `--no-env-file-update` after it, and
/// `--no-env-file`, `--env-file PATH`, `--store PATH`, `--json`,
/// `-q`/`--quiet` and `--reveal` anywhere; each once, values after `=` or as
/// the next word (neither empty nor starting with `-`). Anything else,
/// including a value clap would refuse, is left to clap: `None`. That these
/// answers are clap's is pinned by `parse`'s tests, which compare them.
fn parse_plain(args: &[std::ffi::OsString]) -> Option<Cli> {
    let mut global = plain_global_args()?;
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
    use crate::commands::{access_token::AccessTokenArgs, status::StatusArgs};
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

/// The global options as clap gives them when none is on the command line.
fn plain_global_args() -> Option<GlobalArgs> {
    Some(GlobalArgs {
        env_file: None,
        no_env_file: false,
        store: None,
        store_key: None,
        output: None,
        output_env: false,
        json: false,
        reveal: false,
        quiet: false,
        verbose: 0,
        log_format: None,
        timeout: parse_timeout(DEFAULT_TIMEOUT).ok()?,
        retries: DEFAULT_RETRIES,
        retry_delay: parse_retry_delay(DEFAULT_RETRY_DELAY).ok()?,
        server: None,
        region: None,
        lock_timeout: parse_lock_timeout(DEFAULT_LOCK_TIMEOUT).ok()?,
    })
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
const SUBCOMMANDS: [&str; 16] = [
    "status",
    "refresh",
    "auth-url",
    "exchange",
    "login",
    "railway-sync",
    "pull",
    "export",
    "access-token",
    "exec",
    "validate",
    "doctor",
    "serve",
    "sandbox",
    "demo",
    "completions",
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
    use crate::commands::*;
    Some(match name {
        "status" => of::<status::StatusArgs>("status"),
        "refresh" => of::<refresh::RefreshArgs>("refresh"),
        "auth-url" => of::<auth_url::AuthUrlArgs>("auth-url"),
        "exchange" => of::<exchange::ExchangeArgs>("exchange"),
        "login" => of::<login::LoginArgs>("login"),
        "railway-sync" => of::<railway_sync::RailwaySyncArgs>("railway-sync"),
        "pull" => of::<pull::PullArgs>("pull"),
        "export" => of::<export::ExportArgs>("export"),
        "access-token" => of::<access_token::AccessTokenArgs>("access-token"),
        "exec" => of::<exec::ExecArgs>("exec"),
        "validate" => of::<validate::ValidateArgs>("validate"),
        "doctor" => of::<doctor::DoctorArgs>("doctor"),
        "serve" => of::<serve::ServeArgs>("serve"),
        "sandbox" => of::<sandbox::SandboxArgs>("sandbox"),
        "demo" => of::<demo::DemoArgs>("demo"),
        "completions" => of::<completions::CompletionsArgs>("completions"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        // As durations are printed (issue 18: `1h30m` was printed, and refused).
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("4m57s"), Ok(Duration::from_secs(297)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn malformed_durations_are_refused() {
        for bad in [
            "",
            "s",
            "1y",
            "-1s",
            "1.5h",
            "abc",
            "1h30",
            "1h-5m",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("withings-token").chain(args.iter().copied()))
    }

    #[test]
    fn out_of_bounds_flags_are_usage_errors() {
        for args in [
            &["--timeout", "0", "status"][..],
            &["--timeout", "0s", "status"],
            &["--timeout", "0ms", "status"],
            &["--timeout", "2h", "status"],
            &["--retries", "11", "status"],
            &["--retries", "4294967295", "status"],
            &["--retry-delay", "6m", "status"],
            &["--lock-timeout", "25h", "status"],
            &["--lock-timeout", "100000000d", "status"],
            &["status", "--buffer", "100000000d"],
            &["status", "--buffer", "367d"],
            &["refresh", "--buffer", "100000000d"],
        ] {
            let err = parse(args).err().unwrap_or_else(|| panic!("{args:?} was accepted"));
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn flags_at_their_bounds_are_accepted() {
        let cli = parse(&[
            "--timeout",
            "1h",
            "--retries",
            "10",
            "--retry-delay",
            "5m",
            "--lock-timeout",
            "24h",
            "status",
            "--buffer",
            "366d",
        ])
        .unwrap();
        assert_eq!(cli.global.retries, 10);
        let cli = parse(&[
            "--timeout",
            "1ms",
            "--retries",
            "0",
            "--retry-delay",
            "0s",
            "--lock-timeout",
            "0s",
            "status",
        ])
        .unwrap();
        assert_eq!(cli.global.lock_timeout, Duration::ZERO);
    }

    #[test]
    fn json_is_found_in_every_spelling_of_the_flag() {
        let asks = |args: &[&str]| {
            let argv: Vec<std::ffi::OsString> = std::iter::once("withings-token")
                .chain(args.iter().copied())
                .map(Into::into)
                .collect();
            asks_for_json(&argv)
        };
        for yes in [
            &["status", "--json"][..],
            &["--output", "json", "status"],
            &["--output=json"],
            &["-o", "json"],
            &["-ojson"],
            &["-o=json"],
            &["-qojson"],
            &["-vo", "json"],
            &["--timeout", "0", "--json"],
        ] {
            assert!(asks(yes), "{yes:?}");
        }
        for no in [
            &["status"][..],
            &["--output", "env"],
            &["-o", "table", "json"],
            &["exchange", "--", "--json"],
            &["--jsonx"],
            &["-o"],
        ] {
            assert!(!asks(no), "{no:?}");
        }
    }

    /// Every subcommand, at any depth, with clap's `help` left out and
    /// help rendered unwrapped (the source's own line breaks).
    fn every_subcommand() -> Vec<clap::Command> {
        fn walk(cmd: &clap::Command, into: &mut Vec<clap::Command>) {
            for sub in cmd.get_subcommands() {
                into.push(sub.clone());
                walk(sub, into);
            }
        }
        let mut root = command().disable_help_subcommand(true).term_width(0);
        root.build();
        let mut all = Vec::new();
        walk(&root, &mut all);
        all
    }

    /// The house style: every subcommand's help ends with examples, so a
    /// new one cannot forget them (its man page's EXAMPLES comes from there).
    #[test]
    fn every_subcommand_help_ends_with_examples() {
        let all = every_subcommand();
        assert!(all.len() >= 14, "{} subcommands", all.len());
        for mut sub in all {
            let name = sub.get_display_name().unwrap_or_default().to_owned();
            let help = sub.render_long_help().to_string();
            let last = help.trim_end().rsplit("\n\n").next().unwrap_or_default();
            let examples = last
                .strip_prefix("Examples:\n")
                .unwrap_or_else(|| panic!("{name}: the help must end with an `Examples:` block:\n{help}"));
            for line in examples.lines() {
                assert!(
                    line.starts_with("  ") && !line.trim().is_empty(),
                    "{name}: an example is one indented command per line: {line:?}"
                );
            }
            let typed = format!("withings-token {}", sub.get_name());
            assert!(
                examples.lines().any(|line| line.contains(&typed)),
                "{name}: no example runs `{typed}`:\n{examples}"
            );
        }
    }

    /// A subcommand built alone (the fast path of [`parse`]) is the one the
    /// whole tree holds, down to every argument, once both are built.
    #[test]
    fn every_subcommand_is_built_alone_as_the_tree_builds_it() {
        let mut tree = command();
        tree.build();
        let names: Vec<&str> = tree
            .get_subcommands()
            .map(|s| s.get_name())
            .filter(|n| *n != "help")
            .collect();
        assert_eq!(names, SUBCOMMANDS);
        let every_global: Vec<String> = tree
            .get_arguments()
            .filter_map(|a| a.get_long())
            .map(|long| format!("--{long}"))
            .collect();
        for sub in tree.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut lone = lone_tree(sub.get_name(), &every_global).unwrap();
            lone.build();
            // Its place in the root's list of commands is the one difference:
            // that list is shown only by the whole tree's help.
            let alone = lone.find_subcommand(sub.get_name()).unwrap().clone().display_order(0);
            let sub = sub.clone().display_order(0);
            assert_eq!(format!("{alone:?}"), format!("{sub:?}"), "{}", sub.get_name());
        }
    }

    fn argv(words: &[&str]) -> Vec<std::ffi::OsString> {
        std::iter::once("withings-token")
            .chain(words.iter().copied())
            .map(Into::into)
            .collect()
    }

    /// `parse` answers what the whole tree answers: the same command line,
    /// or the same refusal, help or version text.
    fn assert_parses_like_the_whole_tree(words: &[&str]) {
        let args = argv(words);
        let whole = Cli::try_parse_from(&args);
        for (path, answer) in [("plain", parse_plain(&args)), ("lone tree", parse_lone(&args))] {
            if let Some(ours) = answer {
                let whole = whole
                    .as_ref()
                    .unwrap_or_else(|e| panic!("{words:?}: only the {path} path accepts it: {e}"));
                assert_eq!(format!("{ours:?}"), format!("{whole:?}"), "{words:?} ({path})");
            }
        }
        match (super::parse(&args), whole) {
            (Ok(ours), Ok(whole)) => assert_eq!(format!("{ours:?}"), format!("{whole:?}"), "{words:?}"),
            (Err(ours), Err(whole)) => {
                assert_eq!(ours.kind(), whole.kind(), "{words:?}");
                assert_eq!(ours.to_string(), whole.to_string(), "{words:?}");
            }
            (ours, whole) => panic!("{words:?}: {ours:?} vs {whole:?}"),
        }
    }

    #[test]
    fn lone_subcommand_parses_like_the_whole_tree() {
        for words in [
            &["status"][..],
            &["--json", "status", "--check", "--buffer", "30m"],
            &["status", "-qojson", "--store", "/tmp/s.json", "--no-env-file"],
            &["--store", "status", "refresh", "--if-needed"],
            &["--store", "refresh", "status"],
            &["--store=status", "status"],
            &["exec", "--", "status", "--json"],
            &["access-token", "--min-ttl", "4h"],
            &["refresh", "--no-railway", "--trigger-deployment"],
            &["status", "refresh"],
            &["help", "status"],
            &["status", "--help"],
            &["--help"],
            &["--version"],
            &["-V", "status"],
            &["status", "--bogus"],
            &["statu"],
            &[],
            &["--timeout", "0", "status"],
            &["--env-file", "x", "--no-env-file", "status"],
            &["completions", "bash"],
            &["serve", "--listen", "127.0.0.1:0"],
            &["-v", "status", "-vv"],
            &["--json", "status", "-o", "env"],
            &["-o", "json", "status", "--output-env"],
            &["status", "--json", "--output-env"],
            &["--store", "a", "status", "--store", "b"],
            &["--store", "a", "--store", "b", "status"],
            &["-q", "status", "-v"],
            &["status", "-qv"],
            &["--env-file", "x", "status", "--no-env-file"],
            &["status", "--timeout=2s", "--retries", "11"],
        ] {
            assert_parses_like_the_whole_tree(words);
        }
        let plain = |words: &[&str]| parse_plain(&argv(words)).is_some();
        for taken in [
            &["--no-env-file", "--store", "s.json", "status", "--json"][..],
            &["status", "--check", "-q"],
            &[
                "--store=s.json",
                "status",
                "--buffer=2h",
                "--reveal",
                "--env-file",
                ".env",
            ],
            &["--store", "status", "status"],
            &["--no-env-file", "--store", "s.json", "access-token"],
            &["access-token", "--min-ttl", "30m", "--no-railway", "-q"],
            &["--json", "access-token", "--min-ttl=1h", "--no-env-file-update"],
        ] {
            assert!(plain(taken), "the plain path takes {taken:?}");
            assert_parses_like_the_whole_tree(taken);
        }
        for left_to_clap in [
            &["-q", "status", "-q"][..],
            &["--store", "a", "status", "--store", "b"],
            &["--check", "status"],
            &["status", "--buffer", "367d"],
            &["status", "--store", "-"],
            &["--no-env-file", "--env-file", "x", "status"],
            &["status", "-v"],
            &["refresh"],
            &["access-token", "--trigger-deployment"],
            &["access-token", "--check"],
            &["status", "--min-ttl", "1h"],
            &["--min-ttl", "1h", "access-token"],
            &["status", "access-token"],
        ] {
            assert!(!plain(left_to_clap), "the plain path leaves {left_to_clap:?} to clap");
            assert_parses_like_the_whole_tree(left_to_clap);
        }
        for taken in [
            &["--json", "status"][..],
            &["--no-env-file", "--store", "s.json", "status", "--json"],
            &["-v", "status", "-vv"],
            &["--store", "a", "status", "--store", "b"],
            &["--json", "status", "-o", "env"],
            &["exec", "--", "status", "--json"],
        ] {
            assert!(parse_lone(&argv(taken)).is_some(), "the fast path takes {taken:?}");
        }
    }

    /// Words a command line may hold: every global option (long and
    /// short, so a new one is covered), some subcommands and their options,
    /// values, and words that look like neither.
    fn vocabulary() -> Vec<String> {
        let tree = command();
        let globals = tree.get_arguments().flat_map(|a| {
            let long = a.get_long().map(|l| format!("--{l}"));
            let short = a.get_short().map(|c| format!("-{c}"));
            long.into_iter().chain(short)
        });
        let others = [
            "status",
            "refresh",
            "access-token",
            "exec",
            "serve",
            "help",
            "--",
            "-",
            "-qv",
            "-ojson",
            "--json=x",
            "json",
            "env",
            "--check",
            "--buffer",
            "30m",
            "--if-needed",
            "--min-ttl",
            "0",
            "1s",
            "x",
            "s.json",
            "--store=s.json",
            "--env-file=",
            "--buffer=2h",
            "--buffer=367d",
            "status=x",
        ];
        globals.chain(others.iter().map(|w| w.to_string())).collect()
    }

    /// The words of the lines `parse_plain` reads, and a few it must not.
    const PLAIN_WORDS: &[&str] = &[
        "status",
        "status",
        "--check",
        "--buffer",
        "30m",
        "--buffer=2h",
        "--buffer=",
        "--no-env-file",
        "--json",
        "-q",
        "--quiet",
        "--reveal",
        "--store",
        "s.json",
        "--store=s.json",
        "--env-file",
        ".env",
        "--env-file=x",
        "-",
        "-v",
        "access-token",
        "--min-ttl",
        "--min-ttl=1h",
        "--no-railway",
        "--no-env-file-update",
        "--trigger-deployment",
    ];

    proptest::proptest! {
        /// Any line of the words `parse_plain` reads: most are its to answer.
        #[test]
        fn any_plain_line_parses_like_the_whole_tree(
            words in proptest::collection::vec(proptest::sample::select(PLAIN_WORDS), 0..8)
        ) {
            assert_parses_like_the_whole_tree(&words);
        }

        /// Any sequence of words the command line knows, in any order.
        #[test]
        fn any_command_line_parses_like_the_whole_tree(
            words in proptest::collection::vec(proptest::sample::select(vocabulary()), 0..8)
        ) {
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            assert_parses_like_the_whole_tree(&words);
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn sandbox_help_lists_only_its_own_options_and_still_parses_global_ones() {
        let options = |name: &str| {
            let mut root = command().term_width(0);
            root.build();
            let help = root.find_subcommand_mut(name).unwrap().render_long_help().to_string();
            help.split("Examples:").next().unwrap_or_default().to_owned()
        };
        let help = options("sandbox");
        assert!(help.contains("--listen"), "{help}");
        for global in [
            "--env-file",
            "--store",
            "--json",
            "--quiet",
            "--timeout",
            "--server",
            "--lock-timeout",
        ] {
            assert!(!help.contains(global), "{global} in\n{help}");
        }
        let argv = |args: &[&str]| -> Vec<std::ffi::OsString> {
            std::iter::once("withings-token")
                .chain(args.iter().copied())
                .map(Into::into)
                .collect()
        };
        let cli = super::parse(&argv(&["sandbox", "--quiet", "--listen", "127.0.0.1:0"])).unwrap();
        assert!(cli.global.quiet);
        let status = options("status");
        assert!(status.contains("--env-file"), "other commands keep them: {status}");
    }

    #[test]
    fn global_options_work_after_the_subcommand() {
        let cli = Cli::try_parse_from(["withings-token", "refresh", "--output-env"]).unwrap();
        assert_eq!(cli.global.output_format(), OutputFormat::Env);
        let cli = Cli::try_parse_from(["withings-token", "--json", "status"]).unwrap();
        assert_eq!(cli.global.output_format(), OutputFormat::Json);
    }
}
