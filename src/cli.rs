//! The command line's shared parts: the global options ([`GlobalArgs`]),
//! the argument groups several commands share ([`DeliveryArgs`]) and the
//! value parsers with their bounds. The top-level command line, its
//! subcommand list and its parser live with the commands
//! (`commands::Cli`); each subcommand's own `Args`, whose doc comment is
//! its help text, lives beside its `run` in `commands/<name>.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::copies::Choices;
use crate::duration::bounded;
pub use crate::duration::{parse_buffer, parse_duration};
pub use crate::logging::LogFormat;
use crate::settings::{HttpPolicy, OutputFormat, OutputOptions, Overrides, Region};

/// Options accepted before and after the subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "no_env_file")]
    pub env_file: Option<PathBuf>,

    /// Read no env file at all
    #[arg(long, global = true)]
    pub no_env_file: bool,

    /// Read settings from this config file (TOML: the deployment's at the top, each account's in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]
    #[arg(long, global = true, value_name = "PATH|URL")]
    pub store: Option<PathBuf>,

    /// The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]
    #[arg(long, global = true, value_name = "NAME")]
    pub account: Option<String>,

    /// Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]
    #[arg(long, global = true, value_name = "KEY")]
    pub store_key: Option<String>,

    /// Output format
    #[arg(short, long, global = true, value_name = "FORMAT",
          value_parser = clap::builder::TypedValueParser::map(clap::builder::EnumValueParser::<OutputFormat>::new(), OutputFlag::Format))]
    pub output: Option<OutputFlag>,

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

    /// Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,

    /// Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]
    #[arg(long, global = true, value_enum, value_name = "REGION")]
    pub region: Option<Region>,

    /// How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)
    #[arg(long, global = true, value_parser = parse_lock_timeout, default_value = DEFAULT_LOCK_TIMEOUT, value_name = "DURATION")]
    pub lock_timeout: Duration,

    /// Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(u32).range(i64::from(crate::budget::MIN_PER_MINUTE)..=i64::from(crate::budget::MAX_PER_MINUTE)))]
    pub upstream_budget: Option<u32>,

    /// Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]
    #[arg(long, global = true, value_name = "CMD")]
    pub on_event: Vec<String>,

    /// POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub webhook_url: Vec<String>,

    /// Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub ping_url: Vec<String>,

    /// Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]
    #[arg(long, global = true, value_parser = parse_notify_timeout, value_name = "DURATION")]
    pub notify_timeout: Option<Duration>,

    /// Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]
    #[arg(long, global = true, value_name = "RECIPIENT")]
    pub encrypt_to: Vec<String>,

    /// Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential
    #[arg(long, global = true, value_name = "FILE")]
    pub identity: Vec<PathBuf>,

    /// Let a store that was encrypted be written plain (no recipient configured)
    #[arg(long, global = true)]
    pub allow_plaintext: bool,
}

impl GlobalArgs {
    pub fn explicit_format(&self) -> bool {
        self.output_env || self.json || matches!(self.output, Some(OutputFlag::Format(_)))
    }

    /// What these flags set above the environment and the env file.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            env_file: self.env_file.clone(),
            no_env_file: self.no_env_file,
            store: self.store.clone(),
            store_key: self.store_key.clone(),
            server: self.server.clone(),
            region: self.region,
            output: OutputOptions {
                format: self.output_format(),
                explicit_format: self.explicit_format(),
                reveal: self.reveal,
                quiet: self.quiet,
            },
            http: HttpPolicy {
                timeout: self.timeout,
                retries: self.retries,
                retry_delay: self.retry_delay,
            },
            lock_timeout: self.lock_timeout,
            upstream_budget: self.upstream_budget,
            account: self.account.clone(),
            config: self.config.clone(),
            on_event: self.on_event.clone(),
            webhook_urls: self.webhook_url.clone(),
            ping_urls: self.ping_url.clone(),
            notify_timeout: self.notify_timeout,
            encrypt_to: self.encrypt_to.clone(),
            identities: self.identity.clone(),
            allow_plaintext: self.allow_plaintext,
        }
    }

    /// Installs the stderr logger these flags ask for.
    pub fn init_logging(&self) {
        crate::logging::init(
            self.log_format.unwrap_or(LogFormat::Text),
            self.quiet,
            self.verbose,
            crate::settings::log_environment(),
        );
    }

    pub fn output_format(&self) -> OutputFormat {
        if self.output_env {
            OutputFormat::Env
        } else if self.json {
            OutputFormat::Json
        } else {
            match self.output {
                Some(OutputFlag::Format(format)) => format,
                Some(OutputFlag::File(_)) | None => OutputFormat::Table,
            }
        }
    }

    /// The global options as clap gives them when none is on the command
    /// line (for the command lines read without clap).
    pub(crate) fn defaults() -> Option<GlobalArgs> {
        Some(GlobalArgs {
            env_file: None,
            no_env_file: false,
            config: None,
            store: None,
            account: None,
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
            upstream_budget: None,
            on_event: Vec::new(),
            webhook_url: Vec::new(),
            ping_url: Vec::new(),
            notify_timeout: None,
            encrypt_to: Vec::new(),
            identity: Vec::new(),
            allow_plaintext: false,
        })
    }
}

/// What `-o`/`--output` gave: the output format everywhere, except under
/// `keygen`, whose own `--output FILE` (as `age-keygen -o`) is the file it
/// writes. clap copies a global option's value between the levels by its
/// id, so both are one id of one type; `keygen`'s own argument keeps the
/// global one out of it, and its value reaches the top as a file, which
/// leaves the format the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputFlag {
    Format(OutputFormat),
    File(PathBuf),
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

impl DeliveryArgs {
    /// The copies these flags ask for.
    pub fn choices(&self) -> Choices {
        Choices {
            env_file: !self.no_env_file_update,
            railway: !self.no_railway,
            deploy: self.trigger_deployment,
        }
    }
}

/// Defaults of the global options that have one (also read by
/// [`GlobalArgs::defaults`], which builds them without clap).
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

/// `--timeout`: a zero timeout would fail every request before it is sent.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = bounded(text, MAX_TIMEOUT, "1h")?;
    if d.is_zero() {
        return Err("a timeout of 0 would fail every request; use e.g. 30s".into());
    }
    Ok(d)
}

fn parse_retry_delay(text: &str) -> Result<Duration, String> {
    bounded(text, MAX_RETRY_DELAY, "5m")
}

fn parse_notify_timeout(text: &str) -> Result<Duration, String> {
    crate::settings::parse_notify_timeout_flag(text)
}

fn parse_lock_timeout(text: &str) -> Result<Duration, String> {
    bounded(text, MAX_LOCK_TIMEOUT, "24h")
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

/// What `args` (the global options alone, no program name) set, as clap
/// parses them.
#[cfg(test)]
pub(crate) fn overrides(args: &[&str]) -> Overrides {
    global_args(args).overrides()
}

#[cfg(test)]
fn global_args(args: &[&str]) -> GlobalArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Globals {
        #[command(flatten)]
        global: GlobalArgs,
    }
    Globals::parse_from(std::iter::once("withings-token").chain(args.iter().copied())).global
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_flag_sets_what_the_settings_take_by_default() {
        let given = global_args(&[]).overrides();
        let default = Overrides::default();
        assert_eq!(format!("{given:?}"), format!("{default:?}"));
        let fast = GlobalArgs::defaults().unwrap().overrides();
        assert_eq!(format!("{fast:?}"), format!("{default:?}"));
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
}
