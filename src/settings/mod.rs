//! Settings: the one door through which configuration enters.
//!
//! Precedence, highest first: command-line flag > process environment >
//! the account's table of the config file > the top of the config file >
//! env file > built-in default. The env file never overrides a variable set
//! in the process environment. This is the only module that reads
//! `std::env` (clippy.toml bans it elsewhere). Where each value came from is
//! kept for `doctor` ([`Settings::origins`]).
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use crate::account_name::AccountName;
use crate::config::Config;
use crate::envfile::{EnvFile, EnvFileOrigin, RepeatedKey};
use crate::error::{Error, Result};
use crate::sealing::Keyring;
use crate::tokens::TokenSet;

pub const DEFAULT_SCOPE: &str = "user.info,user.metrics,user.activity";
pub const DEFAULT_API_URL: &str = "https://wbsapi.withings.net";
pub const DEFAULT_AUTHORIZE_URL: &str = "https://account.withings.com/oauth2_user/authorize2";
/// US-hosted (HIPAA) accounts' hosts (`--region us`).
pub const US_API_URL: &str = "https://wbsapi.us.withingsmed.net";
pub const US_AUTHORIZE_URL: &str = "https://account.us.withingsmed.com/oauth2_user/authorize2";
pub const DEFAULT_RAILWAY_API_URL: &str = "https://backboard.railway.com/graphql/v2";

mod cadence;
mod encryption;
mod events;
mod sources;
mod table;
mod values;
pub use events::{EventSettings, WebhookFormat};
pub use sources::{Origin, Source};
pub use table::{ConfigKey, SETTINGS, settings_markdown, settings_roff};
pub use values::{parse_notify_timeout_flag, value_problem};

/// Every variable read through the env file: the settings of [`SETTINGS`]
/// an env file may set. A line setting one of these must be valid; any
/// other line that neither dotenvy nor python-dotenv can read is skipped
/// with a warning, since the file may belong to another app
/// (`Lookup::get` asserts that this list is complete).
pub const ENV_FILE_KEYS: &[&str] = &table::env_file_keys::<{ table::ENV_FILE_KEY_COUNT }>();

/// At most this many skipped line numbers are listed in the warning.
const LISTED_SKIPPED_LINES: usize = 10;

/// How HTTP calls behave (shared by the Withings and Railway clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpPolicy {
    pub timeout: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
}

/// What the caller sets above the process environment and the env file:
/// the command line's global options (`cli::GlobalArgs::overrides`), or
/// values a caller builds in code (`demo`'s browser step, tests).
#[derive(Debug, Clone)]
pub struct Overrides {
    /// `--env-file`: read this env file (it must exist).
    pub env_file: Option<PathBuf>,
    /// `--no-env-file`: read none.
    pub no_env_file: bool,
    pub store: Option<PathBuf>,
    pub store_key: Option<String>,
    pub server: Option<String>,
    pub region: Option<Region>,
    pub output: OutputOptions,
    pub http: HttpPolicy,
    pub lock_timeout: Duration,
    /// `--upstream-budget`: token requests a minute for the app.
    pub upstream_budget: Option<u32>,
    /// `--account`: the account to act on (checked by `Settings::resolve`).
    pub account: Option<String>,
    /// `--config`: read this config file (it must exist).
    pub config: Option<PathBuf>,
    /// `--on-event`, `--webhook-url`, `--ping-url` (any number of each):
    /// replace the variables' and the config file's.
    pub on_event: Vec<String>,
    pub webhook_urls: Vec<String>,
    pub ping_urls: Vec<String>,
    /// `--notify-timeout`.
    pub notify_timeout: Option<Duration>,
    /// `--encrypt-to` (any number): replaces WITHINGS_TOKEN_RECIPIENTS and
    /// `encrypt_to`.
    pub encrypt_to: Vec<String>,
    /// `--identity FILE` (any number): read beside the other sources.
    pub identities: Vec<PathBuf>,
    /// `--allow-plaintext`: a sealed store may be written plain.
    pub allow_plaintext: bool,
}

/// What a run without flags gets (the command line's defaults say the same:
/// `cli`'s tests hold them together).
impl Default for Overrides {
    fn default() -> Overrides {
        Overrides {
            env_file: None,
            no_env_file: false,
            store: None,
            store_key: None,
            server: None,
            region: None,
            output: OutputOptions {
                format: OutputFormat::Table,
                explicit_format: false,
                reveal: false,
                quiet: false,
            },
            http: HttpPolicy {
                timeout: Duration::from_secs(30),
                retries: 3,
                retry_delay: Duration::from_secs(1),
            },
            lock_timeout: Duration::from_secs(60),
            upstream_budget: None,
            account: None,
            config: None,
            on_event: Vec::new(),
            webhook_urls: Vec::new(),
            ping_urls: Vec::new(),
            notify_timeout: None,
            encrypt_to: Vec::new(),
            identities: Vec::new(),
            allow_plaintext: false,
        }
    }
}

/// How stdout shows a result (`--output`): a table for a person, JSON for
/// a program, env lines (tokens unmasked) for a shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Env,
}

/// Where the Withings account is hosted: the EU/global hosts, or the US
/// (HIPAA) ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Region {
    Eu,
    Us,
}

/// How results are shown.
#[derive(Debug, Clone, Copy)]
pub struct OutputOptions {
    pub format: OutputFormat,
    /// `--output`, `--json` or `--output-env` was given (kept under `--quiet`).
    pub explicit_format: bool,
    pub reveal: bool,
    pub quiet: bool,
}

/// The Railway token and which header carries it.
#[derive(Clone)]
pub enum RailwayAuth {
    /// `RAILWAY_TOKEN`, sent as `Project-Access-Token`.
    Project(SecretString),
    /// `RAILWAY_API_TOKEN`, sent as `Authorization: Bearer`.
    Account(SecretString),
}

/// A URL setting, checked and reported only when a command uses it:
/// `status` is offline and must not fail on a URL it never calls, nor spend
/// its start-up parsing four of them.
#[derive(Debug, Clone)]
pub struct UrlSetting {
    name: &'static str,
    /// How a bad value's message names the setting.
    label: &'static str,
    text: String,
    /// How a bad value's message shows it.
    shown: fn(&str) -> String,
    /// The URL, or the whole message of the configuration error; once asked.
    checked: std::sync::OnceLock<std::result::Result<Url, String>>,
}

/// A URL setting as an error may show it: no userinfo, query or fragment
/// (they can carry a password), and no control characters.
fn shown_setting(text: &str) -> String {
    if !text.contains(['@', '?', '#']) {
        return crate::redact::visible(text);
    }
    if let Ok(url) = Url::parse(text) {
        return crate::redact::shown_url(&url);
    }
    let cut = text.find(['?', '#']).map_or(text, |at| &text[..at]);
    let cut = match (cut.find("://"), cut.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…@{}", &cut[..scheme], &cut[at + 1..]),
        _ => cut.to_owned(),
    };
    crate::redact::visible(&cut)
}

impl UrlSetting {
    fn resolve(vars: &Lookup, name: &'static str, default: &str) -> UrlSetting {
        let text = vars.get(name).unwrap_or_else(|| default.to_owned());
        UrlSetting::new(name, name, text, shown_setting)
    }

    fn new(name: &'static str, label: &'static str, text: String, shown: fn(&str) -> String) -> UrlSetting {
        UrlSetting {
            name,
            label,
            text,
            shown,
            checked: std::sync::OnceLock::new(),
        }
    }

    /// The URL, or a CONFIGURATION_ERROR naming the variable.
    pub fn get(&self) -> Result<&Url> {
        self.checked
            .get_or_init(|| {
                checked_url(&self.text)
                    .map_err(|why| format!("{} is not usable: {why} (`{}`)", self.label, (self.shown)(&self.text)))
            })
            .as_ref()
            .map_err(|message| Error::config(message.clone(), format!("set {} to an https:// URL", self.name)))
    }
}

/// How much of Railway is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RailwayConfig {
    /// None of the token, project id and service id is set: Railway is not used.
    Absent,
    /// Some are set, these are not: most likely a mistake worth a warning.
    Partial { missing: Vec<&'static str> },
    /// Token, project id and service id are all set.
    Complete,
}

#[derive(Clone)]
pub struct RailwaySettings {
    pub auth: Option<RailwayAuth>,
    pub project_id: Option<String>,
    pub service_id: Option<String>,
    pub environment_id: Option<String>,
    pub environment_name: String,
    /// `RAILWAY_API_URL`, or the default; see [`RailwaySettings::api_url`].
    api_url: UrlSetting,
}

impl RailwaySettings {
    /// The GraphQL endpoint, checked on use.
    pub fn api_url(&self) -> Result<&Url> {
        self.api_url.get()
    }

    pub fn configuration(&self) -> RailwayConfig {
        let missing = self.missing();
        if missing.is_empty() {
            RailwayConfig::Complete
        } else if missing.len() == 3 {
            RailwayConfig::Absent
        } else {
            RailwayConfig::Partial { missing }
        }
    }

    /// The variables still missing for Railway to count as configured.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.auth.is_none() {
            missing.push("RAILWAY_TOKEN (or RAILWAY_API_TOKEN)");
        }
        if self.project_id.is_none() {
            missing.push("RAILWAY_PROJECT_ID");
        }
        if self.service_id.is_none() {
            missing.push("RAILWAY_SERVICE_ID");
        }
        missing
    }

    pub fn is_configured(&self) -> bool {
        self.missing().is_empty()
    }
}

/// The env file in use and the values read from it.
#[derive(Debug, Clone)]
pub struct LoadedEnvFile {
    pub path: PathBuf,
    pub file: EnvFile,
    /// What named it.
    pub origin: EnvFileOrigin,
}

/// Everything a command may need, resolved once.
#[derive(Clone)]
pub struct Settings {
    pub output: OutputOptions,
    pub http: HttpPolicy,
    pub lock_timeout: Duration,
    /// The store of the account acted on (see [`Settings::for_account`]).
    pub store: StoreLocation,
    /// The deployment's store: the `default` account's, beside which every
    /// other account's lives (see `accounts`).
    pub deployment_store: StoreLocation,
    /// The account named (`--account`, `WITHINGS_TOKEN_ACCOUNT`) or, after
    /// `accounts::choose`, chosen; `None`: not yet chosen.
    pub account: Option<AccountName>,
    /// The prefix of the variables the account's copies (env file, Railway)
    /// are written under: empty for `default` (the `WITHINGS_*` names).
    pub variable_prefix: String,
    /// How long a Redis lease lives unless renewed (it is renewed while held).
    pub lease_ttl: Duration,
    /// Token requests a minute to Withings for the app (see `budget`).
    pub upstream_budget: u32,
    pub env_file: Option<LoadedEnvFile>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub redirect_uri: Option<String>,
    pub scope: String,
    /// Checked on use: see [`Settings::api_url`].
    api_url: UrlSetting,
    authorize_url: UrlSetting,
    pub buffer: Option<chrono::Duration>,
    /// When else than near expiry the account is refreshed.
    pub policy: RefreshPolicy,
    /// Token set given by `WITHINGS_*` variables, if any.
    pub seed_tokens: Option<TokenSet>,
    /// The seed must be checked against the other accounts' stores before
    /// it is used (see `consent::vet_seed`): set by `accounts::choose` when
    /// the deployment holds several.
    pub seed_to_vet: bool,
    /// Whether the seed tokens were read from the env file (not the process).
    pub railway: RailwaySettings,
    /// What only `serve` reads.
    pub server: ServerSettings,
    /// Where events go (commands, webhooks, pings) and `serve`'s public address.
    pub events: EventSettings,
    /// What stores are sealed to and opened with (see `sealing`): the
    /// deployment's, whichever account.
    keyring: Arc<Keyring>,
    /// Where the settings `doctor` shows came from.
    pub origins: Vec<Origin>,
    /// What these settings were resolved from, when a config file is in
    /// use: [`Settings::for_account`] resolves them again with the
    /// account's table.
    inputs: Option<Arc<Inputs>>,
    /// `--server` / `WITHINGS_TOKEN_SERVER`: a running `serve` to drive
    /// instead of Withings; checked on use like every URL.
    pub remote: Option<UrlSetting>,
    /// How a hint writes the next command to run: `withings-token` and the
    /// flags of this run that choose its files, store, server and hosts
    /// (see [`next_command`]), so that the pasted command works on the same
    /// ones. `None` where the caller runs the next step itself (`demo`).
    pub next_command: Option<String>,
}

/// `serve`'s credentials and the port a platform (Railway) assigns.
#[derive(Clone)]
pub struct ServerSettings {
    /// `ADMIN_API_TOKEN`: opens the admin endpoints (and the broker).
    pub admin_token: Option<SecretString>,
    /// `WITHINGS_TOKEN_READER_TOKEN`: opens only `/v1/access-token`, for
    /// every account.
    pub reader_token: Option<SecretString>,
    /// Named readers from the config file (`[reader.NAME]`), each opening
    /// `/v1/access-token` for its accounts only.
    pub readers: Vec<ReaderGrant>,
    /// `PORT`, as given; checked on use by [`ServerSettings::port`].
    port: Option<String>,
}

impl ServerSettings {
    /// `PORT` as a port number; a value that is not one is a
    /// CONFIGURATION_ERROR for `serve` only.
    pub fn port(&self) -> Result<Option<u16>> {
        let Some(text) = &self.port else { return Ok(None) };
        text.trim().parse::<u16>().map(Some).map_err(|_| {
            Error::config(
                format!("PORT is not a port number: `{text}`"),
                "set PORT to a number from 1 to 65535, or pass `--listen ADDR`",
            )
        })
    }
}

/// A named reader credential (`[reader.NAME]` in the config file): the
/// SHA-256 of its token, never the token, the accounts it may read, and
/// its share of the app's upstream budget through the proxy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReaderGrant {
    pub name: String,
    /// Lower-case hex, 64 characters.
    pub sha256: String,
    pub accounts: Vec<AccountName>,
    /// `accounts = ["*"]`: every account, those created later too.
    pub all_accounts: bool,
    /// `budget = "30/min"`: the most proxied calls it may send; `None`:
    /// only the app's budget bounds it.
    pub budget: Option<crate::budget::Rate>,
}

/// How an account's refreshes are timed, beyond the buffer before expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefreshPolicy {
    /// Refresh an idle account at least this often (its refresh token
    /// then never ages toward Withings' one-year limit); `None`: never
    /// for that reason alone.
    pub refresh_at_least: Option<Duration>,
    /// Up to this much earlier than due, chosen per account, so that a
    /// fleet's or a household's refreshes spread out.
    pub jitter: Duration,
}

/// What the settings were resolved from, kept when a config file is in use.
struct Inputs {
    given: Overrides,
    buffer_flag: Option<Duration>,
    /// The process environment's variables the settings read, as they were.
    environment: Vec<(String, String)>,
    config: Config,
}

impl Inputs {
    /// A variable of the process environment, as it was.
    fn variable(&self, name: &str) -> Option<String> {
        self.environment
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }
}

/// Where a value is looked up, in the order of precedence (flags are the
/// callers' to check first).
struct Lookup<'a> {
    process: &'a dyn Fn(&str) -> Option<String>,
    /// The config file, and the account whose table is read before its top.
    config: Option<(&'a Config, Option<&'a AccountName>)>,
    file: Option<&'a EnvFile>,
}

impl Lookup<'_> {
    /// Process environment first, then the config file, then the env file;
    /// empty counts as unset.
    fn get(&self, name: &str) -> Option<String> {
        self.found(name).map(|(value, _)| value)
    }

    /// The value of `name` and where it was found.
    fn found(&self, name: &str) -> Option<(String, Source)> {
        debug_assert!(ENV_FILE_KEYS.contains(&name), "{name} is missing from ENV_FILE_KEYS");
        let set = |v: &str| !v.trim().is_empty();
        if let Some(value) = (self.process)(name).filter(|v| set(v)) {
            return Some((value, Source::Environment));
        }
        if let Some((config, account)) = self.config
            && let Some((value, place)) = config.value(name, account).filter(|(v, _)| set(v))
        {
            return Some((value.to_owned(), Source::ConfigFile(place)));
        }
        let value = self.file.and_then(|f| f.get(name)).filter(|v| set(v))?;
        Some((value.to_owned(), Source::EnvFile))
    }

    /// A seed variable `name` under `prefix`, with its full name: from the
    /// process environment or the env file, never the config file (a seed
    /// rotates; the tool never writes it there).
    fn seed(&self, prefix: &str, name: &str) -> (String, Option<String>) {
        if prefix.is_empty() {
            return (name.to_owned(), self.get(name));
        }
        let full = format!("{prefix}{name}");
        let set = |v: &String| !v.trim().is_empty();
        let value = (self.process)(&full)
            .filter(set)
            .or_else(|| self.file.and_then(|f| f.get(&full)).map(str::to_owned).filter(set));
        (full, value)
    }

    /// Where the value of `name` comes from (`Default` when unset).
    fn source(&self, name: &str) -> Source {
        self.found(name).map_or(Source::Default, |(_, source)| source)
    }
}

impl Settings {
    /// Resolves settings from flags, the real environment, the config file
    /// and the env file.
    pub fn load(given: &Overrides, buffer_flag: Option<Duration>) -> Result<Settings> {
        refuse_unreadable_variables()?;
        let process = |name: &str| std::env::var(name).ok();
        Settings::resolve(given, buffer_flag, &process)
    }

    /// Same as `load`, with the process environment given (tests, demo).
    /// Without a config file this reads as it always did; with one, these
    /// are the deployment's settings (the top of the file): an account's
    /// table is read when the account is chosen ([`Settings::for_account`]),
    /// and never moves what the whole deployment shares.
    pub fn resolve(
        given: &Overrides,
        buffer_flag: Option<Duration>,
        process: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings> {
        let Some(config) = Config::find(given.config.as_deref(), process)? else {
            return Settings::resolve_from(given, buffer_flag, process, None);
        };
        let inputs = Arc::new(Inputs {
            environment: environment_read(process, &config),
            given: given.clone(),
            buffer_flag,
            config,
        });
        Settings::resolve_with_config(&inputs, None)
    }

    /// The settings from `inputs`, with `account`'s table of the config file.
    fn resolve_with_config(inputs: &Arc<Inputs>, account: Option<&AccountName>) -> Result<Settings> {
        let process = |name: &str| inputs.variable(name);
        let config = Some((&inputs.config, account));
        let mut settings = Settings::resolve_from(&inputs.given, inputs.buffer_flag, &process, config)?;
        settings.server.readers = inputs.config.readers.clone();
        settings.inputs = Some(Arc::clone(inputs));
        Ok(settings)
    }

    fn resolve_from(
        given: &Overrides,
        buffer_flag: Option<Duration>,
        process: &dyn Fn(&str) -> Option<String>,
        config: Option<(&Config, Option<&AccountName>)>,
    ) -> Result<Settings> {
        let env_file = load_env_file(given, process, config)?;
        let vars = Lookup {
            process,
            config,
            file: env_file.as_ref().map(|f| &f.file),
        };
        let seed_tokens = seed_tokens(&vars, "")?;
        let region_hosts = region_hosts(given, &vars)?;
        let store = store_location(given, &vars)?;
        let settings = Settings {
            output: given.output,
            http: given.http,
            lock_timeout: given.lock_timeout,
            deployment_store: store.clone(),
            store,
            account: account(given, &vars)?,
            variable_prefix: String::new(),
            lease_ttl: lease_ttl(&vars)?,
            upstream_budget: upstream_budget(given, &vars)?,
            client_id: vars.get("WITHINGS_CLIENT_ID"),
            client_secret: vars.get("WITHINGS_CLIENT_SECRET").map(SecretString::from),
            redirect_uri: vars.get("WITHINGS_REDIRECT_URI"),
            scope: vars.get("WITHINGS_SCOPE").unwrap_or_else(|| DEFAULT_SCOPE.to_owned()),
            api_url: UrlSetting::resolve(&vars, "WITHINGS_API_URL", region_hosts.0),
            authorize_url: UrlSetting::resolve(&vars, "WITHINGS_AUTHORIZE_URL", region_hosts.1),
            buffer: buffer(buffer_flag, &vars)?,
            policy: policy(&vars)?,
            seed_tokens,
            seed_to_vet: false,
            railway: railway_settings(&vars),
            server: ServerSettings {
                admin_token: vars.get("ADMIN_API_TOKEN").map(SecretString::from),
                reader_token: vars.get("WITHINGS_TOKEN_READER_TOKEN").map(SecretString::from),
                readers: Vec::new(),
                port: vars.get("PORT"),
            },
            events: events::event_settings(given, &vars)?,
            keyring: encryption::keyring(given, &vars, process)?,
            remote: remote_server(given, &vars),
            next_command: Some(next_command(given)),
            origins: sources::origins(given, buffer_flag, &vars, env_file.as_ref()),
            inputs: None,
            env_file,
        };
        // An account's are remembered once it is named (`for_account`).
        if !matches!(config, Some((_, Some(_)))) {
            settings.remember_secrets();
        }
        Ok(settings)
    }

    /// Every secret the settings hold is scrubbed from servers' texts,
    /// whichever server echoes it (see `http::scrub`), each in a slot of
    /// its own: settings read again replace what they held, not add to it.
    fn remember_secrets(&self) {
        let railway = self.railway.auth.as_ref().map(|auth| match auth {
            RailwayAuth::Project(token) | RailwayAuth::Account(token) => token,
        });
        let seed = self.seed_tokens.as_ref();
        let redis_url = match &self.store {
            StoreLocation::Redis { url, .. } => Some(url),
            StoreLocation::File(_) => None,
        };
        // Each account's settings in slots of their own: accounts may hold
        // different values (their seeds, their sinks), and one must not push
        // out another's. (The deployment's, before an account is chosen,
        // have the slots of no account.)
        let account = self.account.as_ref().map(ToString::to_string).unwrap_or_default();
        let env_file = self.env_file.as_ref().map(|f| f.path.display().to_string());
        let prefix = format!("[{account}] {} {}", env_file.unwrap_or_default(), self.variable_prefix);
        let named = [
            ("WITHINGS_CLIENT_SECRET", self.client_secret.as_ref()),
            ("ADMIN_API_TOKEN", self.server.admin_token.as_ref()),
            ("WITHINGS_TOKEN_READER_TOKEN", self.server.reader_token.as_ref()),
            ("RAILWAY_TOKEN", railway),
            ("the Redis URL", redis_url),
            ("seed refresh token", seed.map(|t| &t.refresh_token)),
            ("seed access token", seed.and_then(|t| t.access_token.as_ref())),
            ("the webhook secret", self.events.webhook_secret.as_ref()),
        ];
        let named = named.into_iter().map(|(name, secret)| (name.to_owned(), secret));
        let webhooks = self.events.webhook_urls.iter().enumerate();
        let webhooks = webhooks.map(|(i, url)| (format!("webhook URL {i}"), Some(url)));
        let pings = self.events.ping_urls.iter().enumerate();
        let pings = pings.map(|(i, url)| (format!("ping URL {i}"), Some(url)));
        for (name, secret) in named.chain(webhooks).chain(pings) {
            if let Some(secret) = secret {
                crate::redact::remember_secret(&format!("{prefix} {name}"), secret.expose_secret());
            }
        }
    }

    /// These settings for `account`: its store beside the deployment's,
    /// its variable names, and with a config file, its table's values (its
    /// env file, Railway service, refresh policy...). An account whose table
    /// gives a `variable_prefix` takes its seed tokens from the variables
    /// under it; else only `default` takes them, from the `WITHINGS_*`
    /// variables: another account seeded from those would fork `default`'s
    /// token chain.
    pub fn for_account(&self, account: &AccountName) -> Result<Settings> {
        let mut settings = match &self.inputs {
            Some(inputs) => Settings::resolve_with_config(inputs, Some(account))?,
            None => self.clone(),
        };
        let prefix = self
            .config()
            .and_then(|c| c.account(account))
            .and_then(|t| t.variable_prefix.as_ref())
            .map(|(prefix, _)| prefix.clone());
        // What the caller decided after resolving stays (`demo` drops the
        // hints), and what the deployment shares is the deployment's: an
        // account's env file cannot move the store, change the app or its
        // budget, or open `serve` to other credentials.
        settings.next_command.clone_from(&self.next_command);
        settings.keep_deployment_of(self);
        settings.store = self.deployment_store.of_account(account);
        settings.variable_prefix = prefix.clone().unwrap_or_else(|| account.default_variable_prefix());
        if let Some(owner) = self.config().and_then(|c| c.prefix_owner(&settings.variable_prefix))
            && owner != account
        {
            return Err(Error::config(
                format!(
                    "account {account} would write its copies under the variable names of account {owner} (prefix `{}`, set in {}); nothing was sent",
                    settings.variable_prefix,
                    self.config_file().map(|p| p.display().to_string()).unwrap_or_default()
                ),
                format!("give account {owner} another `variable_prefix`, or give [account.{account}] one of its own"),
            ));
        }
        match prefix.filter(|p| !p.is_empty()) {
            Some(prefix) => settings.seed_tokens = settings.prefixed_seed_tokens(&prefix)?,
            None if !account.is_default() => settings.seed_tokens = None,
            None => {}
        }
        settings.account = Some(account.clone());
        // Again under the account's own slots: its webhooks, its seed.
        settings.remember_secrets();
        Ok(settings)
    }

    fn keep_deployment_of(&mut self, deployment: &Settings) {
        self.deployment_store = deployment.deployment_store.clone();
        self.lease_ttl = deployment.lease_ttl;
        self.upstream_budget = deployment.upstream_budget;
        self.client_id.clone_from(&deployment.client_id);
        self.client_secret.clone_from(&deployment.client_secret);
        self.redirect_uri.clone_from(&deployment.redirect_uri);
        self.scope.clone_from(&deployment.scope);
        self.api_url = deployment.api_url.clone();
        self.authorize_url = deployment.authorize_url.clone();
        self.server = deployment.server.clone();
        self.remote.clone_from(&deployment.remote);
        self.keyring = Arc::clone(&deployment.keyring);
    }

    /// What stores are sealed to and opened with.
    pub fn keyring(&self) -> Arc<Keyring> {
        Arc::clone(&self.keyring)
    }

    /// The seed tokens under `prefix` (`ALICE_WITHINGS_REFRESH_TOKEN`...),
    /// from the process environment or the env file.
    fn prefixed_seed_tokens(&self, prefix: &str) -> Result<Option<TokenSet>> {
        let process = |name: &str| self.inputs.as_ref().and_then(|inputs| inputs.variable(name));
        let vars = Lookup {
            process: &process,
            config: None,
            file: self.env_file.as_ref().map(|f| &f.file),
        };
        seed_tokens(&vars, prefix)
    }

    /// The config file in use, if any.
    pub fn config(&self) -> Option<&Config> {
        self.inputs.as_ref().map(|inputs| &inputs.config)
    }

    /// The config file these settings were read with, if any.
    pub fn config_file(&self) -> Option<&Path> {
        self.inputs.as_ref().map(|inputs| inputs.config.path.as_path())
    }

    /// The account acted on, for messages: `default` until one is chosen.
    pub fn account_name(&self) -> AccountName {
        self.account.clone().unwrap_or_else(AccountName::default_account)
    }

    /// The refresh policy as this account's sets are judged by it.
    pub fn cadence(&self) -> crate::tokens::Cadence {
        cadence::cadence_for(&self.policy, &self.account_name())
    }

    pub fn client_id(&self, needed_for: &str) -> Result<&str> {
        self.client_id
            .as_deref()
            .ok_or_else(|| Error::missing_setting("WITHINGS_CLIENT_ID", needed_for))
    }

    pub fn client_secret(&self, needed_for: &str) -> Result<&SecretString> {
        self.client_secret
            .as_ref()
            .ok_or_else(|| Error::missing_setting("WITHINGS_CLIENT_SECRET", needed_for))
    }

    /// The base of the Withings token API; a bad value is reported here,
    /// by the commands that call Withings, and never by `status`.
    pub fn api_url(&self) -> Result<&Url> {
        self.api_url.get()
    }

    pub fn authorize_url(&self) -> Result<&Url> {
        self.authorize_url.get()
    }

    pub fn railway_api_url(&self) -> Result<&Url> {
        self.railway.api_url()
    }

    pub fn redirect_uri(&self, needed_for: &str) -> Result<&str> {
        self.redirect_uri
            .as_deref()
            .ok_or_else(|| Error::missing_setting("WITHINGS_REDIRECT_URI", needed_for))
    }
}

/// The default API and authorization URLs of the region: `--region`, else
/// `WITHINGS_REGION`, else eu. Explicit URL settings still win.
fn region_hosts(given: &Overrides, vars: &Lookup) -> Result<(&'static str, &'static str)> {
    let region = match (given.region, vars.get("WITHINGS_REGION")) {
        (Some(region), _) => region,
        (None, None) => Region::Eu,
        (None, Some(text)) => values::parse_region(&text)
            .map_err(|refused| Error::config(format!("WITHINGS_REGION {}", refused.why), refused.action))?,
    };
    Ok(match region {
        Region::Eu => (DEFAULT_API_URL, DEFAULT_AUTHORIZE_URL),
        Region::Us => (US_API_URL, US_AUTHORIZE_URL),
    })
}

/// Where `keygen` writes by default: `identity.txt` beside the default
/// config file, the file the keyring reads when no identity is given.
/// Read apart from the other settings: a new key must not wait on a
/// config file that does not parse yet.
pub fn default_identity_file() -> Option<PathBuf> {
    encryption::default_identity_path(&|name| std::env::var(name).ok())
}

/// Whether this runs as a GitHub Actions step (its runner masks values).
pub fn in_github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Whether a browser can be shown here (`login`): macOS always has one; on
/// other Unix systems a graphical session sets DISPLAY or WAYLAND_DISPLAY,
/// and without either (ssh, a container) `xdg-open` would fail or start a
/// text browser in this terminal.
pub fn graphical_session() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    cfg!(target_os = "macos") || set("DISPLAY") || set("WAYLAND_DISPLAY")
}

/// The variables with which reqwest sends through an outbound proxy.
const OUTBOUND_PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Whether an outbound proxy is asked for (see `http::streaming`, which
/// leaves such calls to reqwest).
pub fn outbound_proxy_asked() -> bool {
    names_outbound_proxy(|name| std::env::var_os(name))
}

fn names_outbound_proxy(variable: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    OUTBOUND_PROXY_VARIABLES
        .iter()
        .any(|name| variable(name).is_some_and(|value| !value.is_empty()))
}

/// The label logs carry as `environment`.
pub fn log_environment() -> String {
    std::env::var("RAILWAY_ENVIRONMENT_NAME")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "local".into())
}

/// The process environment's variables settings may read, as they are now,
/// for [`Settings::for_account`] to resolve again: every setting, and the
/// seed variables under the config file's variable prefixes.
/// A setting's variable that is not UTF-8 would read as unset: a
/// recipient dropped so would let the store be written plain. Refused,
/// naming it (the process environment's own variables, HOME and the like,
/// are the system's to set).
fn refuse_unreadable_variables() -> Result<()> {
    let unreadable = SETTINGS
        .iter()
        .filter(|s| s.group != table::SettingGroup::Process)
        .find(|s| std::env::var_os(s.name).is_some_and(|v| v.to_str().is_none()));
    match unreadable {
        Some(setting) => Err(Error::config(
            format!("{} is not valid UTF-8 text; nothing was done", setting.name),
            format!("set {} again as plain text, or unset it", setting.name),
        )),
        None => Ok(()),
    }
}

fn environment_read(process: &dyn Fn(&str) -> Option<String>, config: &Config) -> Vec<(String, String)> {
    let prefixed = config
        .accounts()
        .iter()
        .filter_map(|t| t.variable_prefix.as_ref())
        .filter(|(prefix, _)| !prefix.is_empty())
        .flat_map(|(prefix, _)| SEED_VARIABLES.iter().map(move |name| format!("{prefix}{name}")));
    SETTINGS
        .iter()
        .map(|s| s.name.to_owned())
        .chain(prefixed)
        .filter_map(|name| process(&name).map(|value| (name, value)))
        .collect()
}

/// The variables of a seed token set.
const SEED_VARIABLES: [&str; 4] = [
    "WITHINGS_REFRESH_TOKEN",
    "WITHINGS_ACCESS_TOKEN",
    "WITHINGS_TOKEN_EXPIRES_AT",
    "WITHINGS_TOKEN_LAST_REFRESHED",
];

/// The env file to read and why: `--env-file`, else `WITHINGS_ENV_FILE`,
/// else the config file's `env_file` (the account's, else the top's), else
/// `./.env` when it exists.
fn env_file_named(
    given: &Overrides,
    process: &dyn Fn(&str) -> Option<String>,
    config: Option<(&Config, Option<&AccountName>)>,
) -> (PathBuf, EnvFileOrigin) {
    if let Some(path) = &given.env_file {
        return (path.clone(), EnvFileOrigin::Flag);
    }
    if let Some(path) = process("WITHINGS_ENV_FILE").filter(|v| !v.is_empty()) {
        return (PathBuf::from(path), EnvFileOrigin::Variable);
    }
    let configured = config.and_then(|(config, account)| config.value("WITHINGS_ENV_FILE", account));
    match configured.filter(|(path, _)| !path.is_empty()) {
        Some((path, _)) => (PathBuf::from(path), EnvFileOrigin::ConfigFile),
        None => (PathBuf::from(".env"), EnvFileOrigin::WorkingDirectory),
    }
}

fn load_env_file(
    given: &Overrides,
    process: &dyn Fn(&str) -> Option<String>,
    config: Option<(&Config, Option<&AccountName>)>,
) -> Result<Option<LoadedEnvFile>> {
    if given.no_env_file {
        return Ok(None);
    }
    let (path, origin) = env_file_named(given, process, config);
    if origin == EnvFileOrigin::WorkingDirectory && !path.exists() {
        return Ok(None);
    }
    let file = EnvFile::read(&path, origin, ENV_FILE_KEYS)?;
    // Reported and rewritten by its full path, whatever the working directory.
    let path = path.canonicalize().unwrap_or(path);
    warn_skipped_lines(&path, file.skipped_lines());
    warn_repeated_keys(&path, file.repeated_keys());
    Ok(Some(LoadedEnvFile { path, file, origin }))
}

/// One warning per setting of ours assigned more than once, by line number
/// (never a value): another reader of the file may not pick the same one.
fn warn_repeated_keys(path: &Path, repeated: &[RepeatedKey]) {
    for RepeatedKey { key, lines } in repeated {
        let listed: Vec<String> = lines.iter().map(usize::to_string).collect();
        let last = lines.last().copied().unwrap_or_default();
        tracing::warn!(
            "{key} is set on lines {} of {}: the last one (line {last}) is used, as bash `source` and python-dotenv do; delete the others so that every reader agrees",
            listed.join(", "),
            path.display()
        );
    }
}

/// One warning for all the lines skipped, by number: their content may be
/// another app's secret.
fn warn_skipped_lines(path: &Path, lines: &[usize]) {
    if lines.is_empty() {
        return;
    }
    let mut listed: Vec<String> = lines.iter().take(LISTED_SKIPPED_LINES).map(usize::to_string).collect();
    if lines.len() > LISTED_SKIPPED_LINES {
        listed.push(format!("and {} more", lines.len() - LISTED_SKIPPED_LINES));
    }
    tracing::warn!(
        "ignored line(s) {} of {}: not KEY=value lines that dotenv or python-dotenv can read, and they set none of withings-token's settings",
        listed.join(", "),
        path.display()
    );
}

/// Where the token set lives.
#[derive(Clone)]
pub enum StoreLocation {
    File(PathBuf),
    /// The URL may carry a password, hence wrapped.
    Redis {
        url: SecretString,
        key: String,
        /// On this host, where a set Redis could not take is kept
        /// (`$XDG_STATE_HOME/withings-token/redis-rescue`); `None` when
        /// there is no state directory.
        rescue_dir: Option<PathBuf>,
    },
}

impl StoreLocation {
    /// Where `account` of the deployment whose store this is (the `default`
    /// account's) keeps its set: the same for `default`; beside it in
    /// `tokens.accounts/NAME.json` for a file; under its own key in Redis
    /// (see `accounts`).
    pub fn of_account(&self, account: &AccountName) -> StoreLocation {
        if account.is_default() {
            return self.clone();
        }
        match self {
            StoreLocation::File(path) => {
                StoreLocation::File(crate::account_name::accounts_dir(path).join(format!("{account}.json")))
            }
            StoreLocation::Redis { url, key, rescue_dir } => StoreLocation::Redis {
                url: url.clone(),
                key: crate::account_name::redis_key_of(key, account),
                rescue_dir: rescue_dir.clone(),
            },
        }
    }
}

/// A Redis lease lives this long unless renewed; a holder that dies keeps
/// the others waiting at most this long.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);

fn store_location(given: &Overrides, vars: &Lookup) -> Result<StoreLocation> {
    let named = match &given.store {
        Some(path) => Some(path.clone()),
        None => vars.get("WITHINGS_TOKEN_STORE").map(PathBuf::from),
    };
    if let Some(url) = named.as_ref().and_then(|p| p.to_str()).and_then(store_url) {
        return Ok(StoreLocation::Redis {
            url: SecretString::from(url?),
            key: store_key(given, vars)?,
            rescue_dir: state_home(vars).map(|dir| dir.join("withings-token/redis-rescue")),
        });
    }
    if given.store_key.is_some() {
        return Err(Error::config(
            "--store-key names a Redis key, but the store is a file",
            "pass a redis:// URL to `--store` (or WITHINGS_TOKEN_STORE), or drop `--store-key`",
        ));
    }
    store_path(named, vars).map(StoreLocation::File)
}

/// A store given as a URL: `redis://` or `rediss://` in any case and with
/// the blanks a pasted secret brings; any other `scheme://` is refused, never
/// taken for a file name (hosts would each fork the token chain, and the
/// URL's password would be printed as the store's path). `None`: a path.
fn store_url(text: &str) -> Option<Result<String>> {
    let trimmed = text.trim();
    let (scheme, _) = trimmed.split_once("://")?;
    let is_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "redis" || scheme == "rediss" {
        return Some(Ok(format!("{scheme}{}", &trimmed[scheme.len()..])));
    }
    Some(Err(Error::config(
        format!("the token store is a `{scheme}://` URL; only redis:// and rediss:// stores are supported"),
        "pass a redis:// or rediss:// URL, or a file path, to `--store` (or WITHINGS_TOKEN_STORE)",
    )))
}

/// `--store-key`, else `WITHINGS_TOKEN_STORE_KEY`, else one key per app.
fn store_key(given: &Overrides, vars: &Lookup) -> Result<String> {
    let key = given.store_key.clone().or_else(|| vars.get("WITHINGS_TOKEN_STORE_KEY"));
    if let Some(key) = key {
        return Ok(key);
    }
    match vars.get("WITHINGS_CLIENT_ID") {
        Some(id) => Ok(format!("withings-token:{id}:tokens")),
        None => Err(Error::config(
            "a Redis store needs a key: by default `withings-token:<WITHINGS_CLIENT_ID>:tokens`, and WITHINGS_CLIENT_ID is not set",
            "set WITHINGS_CLIENT_ID, or name the key with `--store-key` (or WITHINGS_TOKEN_STORE_KEY)",
        )),
    }
}

/// `--upstream-budget`, else `WITHINGS_TOKEN_UPSTREAM_BUDGET`, else
/// Withings' own 120 a minute; within the budget's bounds.
fn upstream_budget(given: &Overrides, vars: &Lookup) -> Result<u32> {
    const NAME: &str = "WITHINGS_TOKEN_UPSTREAM_BUDGET";
    if let Some(n) = given.upstream_budget {
        return Ok(n);
    }
    match vars.get(NAME) {
        Some(text) => values::parse_budget(&text).map_err(|refused| refused.of_variable(NAME)),
        None => Ok(crate::budget::DEFAULT_PER_MINUTE),
    }
}

/// `--account`, else `WITHINGS_TOKEN_ACCOUNT`: a checked name, or none.
fn account(given: &Overrides, vars: &Lookup) -> Result<Option<AccountName>> {
    given
        .account
        .clone()
        .or_else(|| vars.get("WITHINGS_TOKEN_ACCOUNT"))
        .map(|text| AccountName::parse(text.trim()))
        .transpose()
}

/// `WITHINGS_TOKEN_LEASE_TTL`, between 1 s and 10 min.
fn lease_ttl(vars: &Lookup) -> Result<Duration> {
    const NAME: &str = "WITHINGS_TOKEN_LEASE_TTL";
    match vars.get(NAME) {
        Some(text) => values::parse_lease_ttl(&text).map_err(|refused| refused.of_variable(NAME)),
        None => Ok(DEFAULT_LEASE_TTL),
    }
}

/// `WITHINGS_TOKEN_REFRESH_AT_LEAST` and `WITHINGS_TOKEN_JITTER`.
fn policy(vars: &Lookup) -> Result<RefreshPolicy> {
    const AT_LEAST: &str = "WITHINGS_TOKEN_REFRESH_AT_LEAST";
    const JITTER: &str = "WITHINGS_TOKEN_JITTER";
    let refresh_at_least = match vars.get(AT_LEAST) {
        Some(text) => values::parse_refresh_at_least(&text).map_err(|refused| refused.of_variable(AT_LEAST))?,
        None => Some(values::DEFAULT_REFRESH_AT_LEAST),
    };
    let jitter = match vars.get(JITTER) {
        Some(text) => values::parse_jitter(&text).map_err(|refused| refused.of_variable(JITTER))?,
        None => Duration::ZERO,
    };
    Ok(RefreshPolicy {
        refresh_at_least,
        jitter,
    })
}

/// `$XDG_STATE_HOME` (when absolute), else `$HOME/.local/state`.
fn state_home(vars: &Lookup) -> Option<PathBuf> {
    (vars.process)("XDG_STATE_HOME")
        .filter(|v| Path::new(v).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            (vars.process)("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| Path::new(&h).join(".local/state"))
        })
}

fn store_path(given: Option<PathBuf>, vars: &Lookup) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path);
    }
    state_home(vars)
        .map(|dir| dir.join("withings-token/tokens.json"))
        .ok_or_else(|| {
            Error::config(
                "cannot place the token store: neither XDG_STATE_HOME nor HOME is set",
                "pass `--store PATH` or set WITHINGS_TOKEN_STORE",
            )
        })
}

/// `withings-token` and the flags of `given` a next command needs to act
/// on the same env file, store, server and Withings hosts (variables carry
/// over by themselves). A value that would show a password (a Redis URL or
/// server URL with one) is written as a placeholder.
pub fn next_command(given: &Overrides) -> String {
    let shell = |text: &str| crate::envfile::format_value(text).unwrap_or_else(|_| "'…'".to_owned());
    let hidden = |text: &str, placeholder: &str| {
        let userinfo = text.split_once("://").is_some_and(|(_, rest)| {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            authority.contains('@')
        });
        if userinfo { placeholder.to_owned() } else { shell(text) }
    };
    let mut words = vec!["withings-token".to_owned()];
    if let Some(path) = &given.config {
        words.push(format!("--config {}", shell(&path.to_string_lossy())));
    }
    if let Some(path) = &given.env_file {
        words.push(format!("--env-file {}", shell(&path.to_string_lossy())));
    }
    if given.no_env_file {
        words.push("--no-env-file".to_owned());
    }
    if let Some(store) = &given.store {
        words.push(format!(
            "--store {}",
            hidden(&store.to_string_lossy(), "'<your Redis URL>'")
        ));
    }
    if let Some(key) = &given.store_key {
        words.push(format!("--store-key {}", shell(key)));
    }
    if let Some(account) = &given.account {
        words.push(format!("--account {}", shell(account.trim())));
    }
    if let Some(server) = &given.server {
        words.push(format!("--server {}", hidden(server, "'<the server URL>'")));
    }
    if let Some(region) = given.region {
        words.push(format!("--region {}", if region == Region::Us { "us" } else { "eu" }));
    }
    words.join(" ")
}

/// `--server`, else `WITHINGS_TOKEN_SERVER`; `None` when neither is set.
fn remote_server(given: &Overrides, vars: &Lookup) -> Option<UrlSetting> {
    const NAME: &str = "WITHINGS_TOKEN_SERVER";
    let text = given.server.clone().or_else(|| vars.get(NAME))?;
    Some(UrlSetting::new(
        NAME,
        "WITHINGS_TOKEN_SERVER (--server)",
        text,
        str::to_owned,
    ))
}

/// `https://`, or `http://` for loopback peers only.
pub fn checked_url(text: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err("plain http:// is only allowed for loopback hosts".into()),
        other => Err(format!("scheme `{other}` is not https")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `--buffer` (already bounded by clap) or `WITHINGS_REFRESH_BUFFER`, held to
/// the same bound: a larger one would overflow the date arithmetic of
/// `status` and `refresh`.
fn buffer(flag: Option<Duration>, vars: &Lookup) -> Result<Option<chrono::Duration>> {
    let std_duration = match flag {
        Some(d) => Some(d),
        None => match vars.get("WITHINGS_REFRESH_BUFFER") {
            Some(text) => {
                Some(values::parse_buffer(&text).map_err(|refused| refused.of_variable("WITHINGS_REFRESH_BUFFER"))?)
            }
            None => None,
        },
    };
    let Some(d) = std_duration else { return Ok(None) };
    // Both sources are bounded already; this keeps the bound in one place
    // for any future caller.
    chrono::Duration::from_std(d)
        .ok()
        .filter(|_| d <= crate::duration::MAX_BUFFER)
        .map(Some)
        .ok_or_else(|| Error::config("the refresh buffer is too long", "use at most 366d"))
}

fn time_var(vars: &Lookup, prefix: &str, name: &str) -> Result<Option<DateTime<Utc>>> {
    let (name, found) = vars.seed(prefix, name);
    let Some(text) = found else { return Ok(None) };
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| {
            Error::config(
                format!("{name} is not an RFC 3339 time ({e}): `{text}`"),
                format!("set {name} like 2025-01-15T12:00:00Z, or remove it"),
            )
        })
}

/// A token variable, refused when it holds a control character (a NUL, a
/// stray newline or CR): it would be sent to Withings as it is, and could not
/// be written back into an env file. The error names the variable only.
fn token_var(vars: &Lookup, prefix: &str, name: &str) -> Result<Option<String>> {
    let (name, found) = vars.seed(prefix, name);
    let Some(value) = found else { return Ok(None) };
    // Blanks around a token are a paste's (quoted, dotenv keeps them): the
    // token is what is between, as Withings and every comparison see it.
    let value = value.trim_matches(' ').to_owned();
    if !value.chars().any(char::is_control) {
        return Ok(Some(value));
    }
    Err(Error::config(
        format!("{name} holds a control character (such as a NUL, a tab or a line break), which no token has"),
        format!("set {name} to the token alone (check how the env file or the environment was written), or remove it"),
    ))
}

/// The seed tokens of the variables under `prefix` (none: the
/// `WITHINGS_*` names themselves).
fn seed_tokens(vars: &Lookup, prefix: &str) -> Result<Option<TokenSet>> {
    let expires_at = time_var(vars, prefix, "WITHINGS_TOKEN_EXPIRES_AT")?;
    let last_refreshed = time_var(vars, prefix, "WITHINGS_TOKEN_LAST_REFRESHED")?;
    let Some(refresh) = token_var(vars, prefix, "WITHINGS_REFRESH_TOKEN")? else {
        return Ok(None);
    };
    let tokens = TokenSet {
        access_token: token_var(vars, prefix, "WITHINGS_ACCESS_TOKEN")?.map(SecretString::from),
        refresh_token: SecretString::from(refresh),
        expires_at,
        last_refreshed,
        userid: None,
        scope: None,
    };
    Ok(Some(tokens))
}

fn railway_settings(vars: &Lookup) -> RailwaySettings {
    let auth = vars
        .get("RAILWAY_TOKEN")
        .map(|t| RailwayAuth::Project(SecretString::from(t)))
        .or_else(|| {
            vars.get("RAILWAY_API_TOKEN")
                .map(|t| RailwayAuth::Account(SecretString::from(t)))
        });
    RailwaySettings {
        auth,
        project_id: vars.get("RAILWAY_PROJECT_ID"),
        service_id: vars.get("RAILWAY_SERVICE_ID"),
        environment_id: vars.get("RAILWAY_ENVIRONMENT_ID"),
        environment_name: vars
            .get("RAILWAY_ENVIRONMENT_NAME")
            .unwrap_or_else(|| "production".into()),
        api_url: UrlSetting::resolve(vars, "RAILWAY_API_URL", DEFAULT_RAILWAY_API_URL),
    }
}

#[cfg(test)]
mod tests;
