//! The one list of settings: every variable the tool reads, the flag that
//! overrides it, its default and what it does. The configuration page's
//! tables (`docs/configuration.md`) and the man page's ENVIRONMENT section
//! are generated from [`SETTINGS`], and the env file's keys
//! ([`super::ENV_FILE_KEYS`]) are taken from it, so the three cannot
//! disagree. `tests/cli/generated.rs` fails when the committed page is stale.
//! The config file's keys are taken from it too ([`Setting::config`]).

use super::{DEFAULT_API_URL, DEFAULT_AUTHORIZE_URL, DEFAULT_RAILWAY_API_URL, DEFAULT_SCOPE};

/// Which part of the tool a setting belongs to; the documents list the
/// groups in this order, each under its heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingGroup {
    App,
    Seed,
    Store,
    Railway,
    Serve,
    Events,
    Encryption,
    Process,
}

impl SettingGroup {
    pub const ALL: [SettingGroup; 8] = [
        SettingGroup::App,
        SettingGroup::Seed,
        SettingGroup::Store,
        SettingGroup::Railway,
        SettingGroup::Serve,
        SettingGroup::Events,
        SettingGroup::Encryption,
        SettingGroup::Process,
    ];

    pub fn heading(self) -> &'static str {
        match self {
            SettingGroup::App => "The Withings app",
            SettingGroup::Seed => "Seed tokens",
            SettingGroup::Store => "Store, env file and refresh",
            SettingGroup::Railway => "Railway",
            SettingGroup::Serve => "serve and --server",
            SettingGroup::Events => "Events and alerts",
            SettingGroup::Encryption => "Encryption at rest",
            SettingGroup::Process => "The process environment (never read from the env file)",
        }
    }
}

/// A setting's default: a value (shown as code), or a sentence.
#[derive(Debug, Clone, Copy)]
pub enum SettingDefault {
    Value(&'static str),
    Text(&'static str),
}

/// One variable a user can set.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    /// The command-line flag that wins over the variable, if any.
    pub flag: Option<&'static str>,
    pub default: SettingDefault,
    /// One line; backticks mark code, as in the exit-code table.
    pub meaning: &'static str,
    pub group: SettingGroup,
    /// Read from the env file as well as the process environment: a line
    /// of the env file setting it must be valid (see `envfile`).
    pub in_env_file: bool,
    /// Its key in the config file, and where it may be set there.
    pub config: ConfigKey,
}

/// Where a setting may be given in the config file (see `config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKey {
    /// Not at all: a seed token rotates, and the process's own variables
    /// describe the machine, not the deployment.
    None,
    /// At the top only: what every account of the deployment shares (the
    /// app, the store, `serve`).
    Top(&'static str),
    /// At the top (every account's default) or in an `[account.NAME]` table.
    Account(&'static str),
}

impl ConfigKey {
    pub fn key(self) -> Option<&'static str> {
        match self {
            ConfigKey::None => None,
            ConfigKey::Top(key) | ConfigKey::Account(key) => Some(key),
        }
    }
}

/// A setting of `group`; its meaning is given by [`Setting::means`].
const fn setting(group: SettingGroup, name: &'static str, default: SettingDefault) -> Setting {
    Setting {
        name,
        flag: None,
        default,
        meaning: "",
        in_env_file: !matches!(group, SettingGroup::Process),
        config: ConfigKey::None,
        group,
    }
}

impl Setting {
    const fn means(self, meaning: &'static str) -> Setting {
        Setting { meaning, ..self }
    }

    /// The command-line flag that wins over the variable.
    const fn flag(self, flag: &'static str) -> Setting {
        Setting {
            flag: Some(flag),
            ..self
        }
    }

    /// Set at the top of the config file as `key`.
    const fn top(self, key: &'static str) -> Setting {
        Setting {
            config: ConfigKey::Top(key),
            ..self
        }
    }

    /// Set at the top of the config file or in an account's table as `key`.
    const fn per_account(self, key: &'static str) -> Setting {
        Setting {
            config: ConfigKey::Account(key),
            ..self
        }
    }

    /// Read from the process environment only, whatever its group.
    const fn process_only(self) -> Setting {
        Setting {
            in_env_file: false,
            ..self
        }
    }
}

use SettingDefault::{Text, Value};
use SettingGroup::{App, Encryption, Events, Process, Railway, Seed, Serve, Store};

pub const SETTINGS: &[Setting] = &[
    setting(App, "WITHINGS_CLIENT_ID", Text("required by the commands that call Withings")).top("client_id")
        .means("the Withings app's client id; a store records the app that saved it and refuses another (exit 3)"),
    setting(App, "WITHINGS_CLIENT_SECRET", Text("required by the commands that call Withings")).top("client_secret")
        .means("the Withings app's client secret"),
    setting(App, "WITHINGS_REDIRECT_URI", Text("required by `auth-url`, `exchange`; `login`: `http://127.0.0.1:8585/callback`")).top("redirect_uri")
        .means("the callback registered with Withings; `login` listens on it when it is a loopback `http://` URL"),
    setting(App, "WITHINGS_SCOPE", Value(DEFAULT_SCOPE)).per_account("scope")
        .means("comma-separated scopes asked for at consent"),
    setting(App, "WITHINGS_REGION", Value("eu")).flag("--region").top("region")
        .means("`eu` or `us`: the default hosts of the two URLs below; `us` is `wbsapi.us.withingsmed.net` and `account.us.withingsmed.com` (US-hosted HIPAA accounts); explicit URLs still win"),
    setting(App, "WITHINGS_API_URL", Value(DEFAULT_API_URL)).top("api_url")
        .means("base of the token API (`/v2/oauth2` is appended)"),
    setting(App, "WITHINGS_AUTHORIZE_URL", Value(DEFAULT_AUTHORIZE_URL)).top("authorize_url")
        .means("the authorization (consent) page"),
    setting(Seed, "WITHINGS_REFRESH_TOKEN", Text("none"))
        .means("seeds the store when it holds none; wins over the store's set only when dated newer (`WITHINGS_TOKEN_LAST_REFRESHED`)"),
    setting(Seed, "WITHINGS_ACCESS_TOKEN", Text("none"))
        .means("the access token that goes with the seed refresh token"),
    setting(Seed, "WITHINGS_TOKEN_EXPIRES_AT", Text("none"))
        .means("RFC 3339 UTC expiry of the seed access token"),
    setting(Seed, "WITHINGS_TOKEN_LAST_REFRESHED", Text("none"))
        .means("RFC 3339 UTC time the seed tokens were issued; decides whether they are newer than the store's"),
    setting(Store, "WITHINGS_TOKEN_CONFIG", Text("`$XDG_CONFIG_HOME/withings-token/config.toml`, else `~/.config/withings-token/config.toml`, when it exists")).flag("--config").process_only()
        .means("the config file (TOML): settings shared by the deployment at the top, per-account ones in `[account.NAME]` tables, named readers in `[reader.NAME]` tables; one named by the flag or the variable must exist"),
    setting(Store, "WITHINGS_ENV_FILE", Text("`./.env` when it exists")).flag("--env-file").process_only().per_account("env_file")
        .means("the env file to read (and whose token keys are rewritten); `--no-env-file` reads none"),
    setting(Store, "WITHINGS_TOKEN_ACCOUNT", Text("the only account in the store (`default` while there is none)")).flag("--account")
        .means("the account (one Withings user of the app) a command acts on; with several in the store, a command that needs one and is given none fails with exit 3 listing them"),
    setting(Store, "WITHINGS_TOKEN_STORE", Text("`$XDG_STATE_HOME/withings-token/tokens.json`, else `~/.local/state/withings-token/tokens.json`")).flag("--store").top("store")
        .means("the token store: a file path, or a `redis://` / `rediss://` URL shared by many hosts"),
    setting(Store, "WITHINGS_TOKEN_STORE_KEY", Value("withings-token:<WITHINGS_CLIENT_ID>:tokens")).flag("--store-key").top("store_key")
        .means("the Redis key of the set, with a Redis store"),
    setting(Store, "WITHINGS_TOKEN_LEASE_TTL", Value("15s")).top("lease_ttl")
        .means("how long a Redis lease lives unless renewed (it is renewed every third of it while held): `1s` to `10m`"),
    setting(Store, "WITHINGS_TOKEN_UPSTREAM_BUDGET", Value("120")).flag("--upstream-budget").top("upstream_budget")
        .means("requests a minute the app may send to Withings (`1` to `10000000`), shared by every refresh and every call `serve` proxies, of a process and, with a Redis store, of every host; one over it waits up to 5 s or fails with `RATE_LIMITED`, nothing sent"),
    setting(Store, "WITHINGS_REFRESH_BUFFER", Text("`min(24h, lifetime / 3)`: 1 h for Withings' 3 h tokens")).flag("--buffer").per_account("buffer")
        .means("how long before expiry a refresh is due: `24h`, `90m`, `3600s`, at most `366d`"),
    setting(Store, "WITHINGS_TOKEN_REFRESH_AT_LEAST", Value("7d")).per_account("refresh_at_least")
        .means("refresh an account at least this often even when its access token is far from expiry, so that an idle account's refresh token never ages toward Withings' one-year limit: `1h` to `300d`, or `0s` for never"),
    setting(Store, "WITHINGS_TOKEN_JITTER", Value("0s")).per_account("jitter")
        .means("refresh up to this much earlier than due, by an amount fixed per account, so that a household's or a fleet's refreshes spread out: at most `1d`"),
    setting(Railway, "RAILWAY_TOKEN", Text("none")).per_account("railway_token")
        .means("Railway project token, sent as `Project-Access-Token` (wins when both tokens are set)"),
    setting(Railway, "RAILWAY_API_TOKEN", Text("none")).per_account("railway_api_token")
        .means("Railway account or team token, sent as `Authorization: Bearer`"),
    setting(Railway, "RAILWAY_PROJECT_ID", Text("none")).per_account("railway_project_id")
        .means("the project of the Railway service that holds the tokens"),
    setting(Railway, "RAILWAY_SERVICE_ID", Text("none")).per_account("railway_service_id")
        .means("the Railway service that holds the tokens"),
    setting(Railway, "RAILWAY_ENVIRONMENT_ID", Text("looked up by `RAILWAY_ENVIRONMENT_NAME`")).per_account("railway_environment_id")
        .means("the service's environment"),
    setting(Railway, "RAILWAY_ENVIRONMENT_NAME", Value("production")).per_account("railway_environment_name")
        .means("the environment looked up when `RAILWAY_ENVIRONMENT_ID` is unset; also the `environment` of JSON log lines (`local` when unset)"),
    setting(Railway, "RAILWAY_API_URL", Value(DEFAULT_RAILWAY_API_URL)).top("railway_api_url")
        .means("Railway's GraphQL endpoint"),
    setting(Serve, "ADMIN_API_TOKEN", Text("required by `serve` and `--server`")).top("admin_api_token")
        .means("the `X-Admin-Token` that opens `serve`'s admin endpoints (and its broker); `--server` sends it"),
    setting(Serve, "WITHINGS_TOKEN_READER_TOKEN", Text("none (then only the admin token opens the broker)")).top("reader_token")
        .means("the bearer credential that opens only `GET /v1/access-token` and the Withings proxy `/v1/withings/PATH`; `access-token`, `exec` and `api` with `--server` send it"),
    setting(Serve, "PORT", Text("none (`127.0.0.1:8080`)")).flag("--listen").top("port")
        .means("`serve` listens on `0.0.0.0:$PORT` when `--listen` is not given (Railway sets it)"),
    setting(Serve, "WITHINGS_TOKEN_SERVER", Text("none (work locally)")).flag("--server").top("server")
        .means("a running `serve` that `status`, `refresh`, `auth-url`, `exchange`, `access-token`, `exec` and `api` ask instead of Withings and the local store, and `usage` and `health` read"),
    setting(Events, "WITHINGS_TOKEN_ON_EVENT", Text("none")).flag("--on-event").per_account("on_event")
        .means("a shell command run for every event (the event as JSON on stdin and as `WITHINGS_TOKEN_EVENT_*` variables), one at a time, killed after 10 s; several: one per line, `--on-event` again, or an array in the config file"),
    setting(Events, "WITHINGS_TOKEN_WEBHOOK_URL", Text("none")).flag("--webhook-url").per_account("webhook_url")
        .means("a URL every event is POSTed to (signed as Standard Webhooks say when `WITHINGS_TOKEN_WEBHOOK_SECRET` is set), retried on network errors, 5xx and 429; several: separated by blanks, `--webhook-url` again, or an array; never printed whole"),
    setting(Events, "WITHINGS_TOKEN_WEBHOOK_SECRET", Text("none (unsigned)")).per_account("webhook_secret")
        .means("the signing secret of the webhooks: `whsec_` and base64 (as Svix and Standard Webhooks issue them), or any other text used as it is"),
    setting(Events, "WITHINGS_TOKEN_WEBHOOK_FORMAT", Value("json")).per_account("webhook_format")
        .means("the webhooks' body: `json` (the event), `slack` or `discord` (an incoming webhook's message), `text` (one plain line, for ntfy and the like)"),
    setting(Events, "WITHINGS_TOKEN_PING_URL", Text("none")).flag("--ping-url").per_account("ping_url")
        .means("a dead-man check for cron (healthchecks.io's convention): `refresh` requests `URL/start`, then `URL` on success or `URL/fail` with the report; `serve` pings once a check interval (at least a minute): `URL` while every account works, else `URL/fail` naming the failing ones"),
    setting(Events, "WITHINGS_TOKEN_NOTIFY_TIMEOUT", Value("5s")).flag("--notify-timeout").top("notify_timeout")
        .means("how long a CLI run waits for its deliveries before it exits (what is not delivered stays in the outbox for the next run); never changes the exit code"),
    setting(Events, "WITHINGS_TOKEN_PUBLIC_URL", Text("none (no re-consent link in events)")).top("public_url")
        .means("the address people reach `serve` at (`https://tokens.example.com`): `reauthorization_required` carries a one-time link to `/auth/start` there"),
    setting(Events, "WITHINGS_TOKEN_REFRESH_TOKEN_AGING", Value("300d")).per_account("refresh_token_aging")
        .means("`refresh_token_aging` is sent once the refresh token in use is this old (Withings ends one unused for a year)"),
    setting(Encryption, "WITHINGS_TOKEN_RECIPIENTS", Text("none (stores are written plain)")).flag("--encrypt-to").top("encrypt_to")
        .means("age X25519 recipients (`age1…`, separated by commas or blanks; an array in the config file) every store's tokens, consent state and outbox are encrypted to; a store encrypted once is never written plain again without `--allow-plaintext`"),
    setting(Encryption, "WITHINGS_TOKEN_IDENTITY", Text("none")).process_only()
        .means("an age identity itself (`AGE-SECRET-KEY-1…`, several: one a line), for a platform's variables; never read from a file"),
    setting(Encryption, "WITHINGS_TOKEN_IDENTITY_FILE", Text("none")).flag("--identity").top("identity_file")
        .means("a file of age identities (one a line, `#` comments), readable by its owner only (refused otherwise, as ssh refuses a key); `--identity` may be given again; every source given is tried"),
    setting(Encryption, "CREDENTIALS_DIRECTORY", Text("none")).process_only()
        .means("set by systemd (`LoadCredential=`, `LoadCredentialEncrypted=`): its `withings-token.identity` is read as an identity file; with no source given, `identity.txt` beside the config file (`keygen`'s) is"),
    setting(Process, "HOME", Text("none"))
        .means("the default store lives under `$HOME/.local/state` when `XDG_STATE_HOME` is unset"),
    setting(Process, "XDG_CONFIG_HOME", Value("$HOME/.config"))
        .means("the config directory (when absolute): the default config file"),
    setting(Process, "XDG_STATE_HOME", Value("$HOME/.local/state"))
        .means("the state directory (when absolute): the default store, and a Redis store's rescue files"),
    setting(Process, "GITHUB_ACTIONS", Text("none"))
        .means("`true` (set by GitHub Actions): every token printed is first masked in the log with `::add-mask::` on stderr"),
    setting(Process, "DISPLAY", Text("none"))
        .means("with `WAYLAND_DISPLAY`: a graphical session, where `login` opens a browser (always on macOS)"),
    setting(Process, "WAYLAND_DISPLAY", Text("none"))
        .means("see `DISPLAY`"),
    setting(Process, "NO_COLOR", Text("none"))
        .means("turns off the only colour, in `--help` and usage errors"),
    setting(Process, "TERM", Text("none"))
        .means("unset or `dumb`: no spinner on stderr"),
    setting(Process, "HTTPS_PROXY", Text("none"))
        .means("an outbound proxy for every call to Withings and Railway (also `HTTP_PROXY`, `ALL_PROXY`, lower case too; `NO_PROXY` lists hosts sent to directly)"),
];

/// How many settings the env file may set.
pub const ENV_FILE_KEY_COUNT: usize = {
    let mut count = 0;
    let mut i = 0;
    while i < SETTINGS.len() {
        if SETTINGS[i].in_env_file {
            count += 1;
        }
        i += 1;
    }
    count
};

/// The names of the settings the env file may set, in table order.
pub const fn env_file_keys<const N: usize>() -> [&'static str; N] {
    let mut keys = [""; N];
    let (mut i, mut k) = (0, 0);
    while i < SETTINGS.len() {
        if SETTINGS[i].in_env_file {
            keys[k] = SETTINGS[i].name;
            k += 1;
        }
        i += 1;
    }
    keys
}

/// A setting's name and its flag, as a heading shows them.
fn name_and_flag(setting: &Setting, code: fn(&str) -> String) -> String {
    match setting.flag {
        Some(flag) => format!("{} ({})", code(setting.name), code(flag)),
        None => code(setting.name),
    }
}

fn default_text(default: SettingDefault, code: fn(&str) -> String) -> String {
    match default {
        Value(value) => code(value),
        Text(text) => text.to_owned(),
    }
}

/// A setting's config key: `key` at the top of the file, `key` (also
/// per account) where an `[account.NAME]` table may set it too.
fn config_text(config: ConfigKey, code: fn(&str) -> String) -> String {
    match config {
        ConfigKey::None => String::new(),
        ConfigKey::Top(key) => code(key),
        ConfigKey::Account(key) => format!("{} (also per account)", code(key)),
    }
}

fn in_backticks(text: &str) -> String {
    format!("`{text}`")
}

/// The settings tables of `docs/configuration.md`: one per group.
pub fn settings_markdown() -> String {
    let mut page = String::new();
    for group in SettingGroup::ALL {
        page.push_str(&format!(
            "### {}\n\n| variable | flag | config key | default | meaning |\n|---|---|---|---|---|\n",
            group.heading()
        ));
        for setting in SETTINGS.iter().filter(|s| s.group == group) {
            page.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                setting.name,
                setting.flag.map(in_backticks).unwrap_or_default(),
                config_text(setting.config, in_backticks),
                default_text(setting.default, in_backticks),
                setting.meaning
            ));
        }
        page.push('\n');
    }
    page
}

/// The ENVIRONMENT section of withings-token(1), with `escape` the page's
/// roff escaping. A man page shows code as plain words: no backticks.
pub fn settings_roff(escape: fn(&str) -> String) -> String {
    let plain = |text: &str| escape(&text.replace('`', ""));
    let mut section = String::from(".SH ENVIRONMENT\n");
    for group in SettingGroup::ALL {
        section.push_str(&format!(".SS \"{}\"\n", plain(group.heading())));
        for setting in SETTINGS.iter().filter(|s| s.group == group) {
            let default = match setting.default {
                Text("none") => String::new(),
                other => format!(" (default: {})", plain(&default_text(other, str::to_owned))),
            };
            let config = match setting.config {
                ConfigKey::None => String::new(),
                other => format!(" Config file: {}.", plain(&config_text(other, str::to_owned))),
            };
            section.push_str(&format!(
                ".TP\n\\fB{}\\fR\n{}{default}{config}\n",
                plain(&name_and_flag(setting, str::to_owned)),
                plain(setting.meaning),
            ));
        }
    }
    section
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_listed_once() {
        for (i, setting) in SETTINGS.iter().enumerate() {
            assert!(
                SETTINGS[i + 1..].iter().all(|other| other.name != setting.name),
                "{} is listed twice",
                setting.name
            );
            assert!(
                !setting.meaning.contains('|'),
                "{}: a `|` breaks the table",
                setting.name
            );
        }
    }

    #[test]
    fn the_env_file_keys_are_the_settings_an_env_file_may_set() {
        let keys = super::super::ENV_FILE_KEYS;
        assert_eq!(keys.len(), ENV_FILE_KEY_COUNT);
        assert!(keys.contains(&"WITHINGS_TOKEN_SERVER") && keys.contains(&"PORT"));
        assert!(!keys.contains(&"WITHINGS_ENV_FILE"), "an env file cannot name another");
        assert!(!keys.contains(&"HOME"));
    }

    /// Names in `src` that look like settings and are not: what `exec`
    /// hands its command, the `PATH` it finds the command on as a shell
    /// does, and a switch compiled into test builds only.
    const NOT_SETTINGS: &[&str] = &["WITHINGS_USERID", "PATH", "WITHINGS_TOKEN_FAILPOINT"];

    /// Every name the code reads (a `"WITHINGS_…"` or `"RAILWAY_…"` string,
    /// or the argument of an environment lookup) outside test code.
    fn names_read_in(code: &str) -> Vec<String> {
        let mut names = Vec::new();
        for (at, _) in code.match_indices('"') {
            let rest = &code[at + 1..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name.is_empty() || !rest[name.len()..].starts_with('"') {
                continue;
            }
            let before = &code[..at];
            let looked_up = ["var(", "var_os(", "process)(", "process(", "set(", "vars.get("]
                .iter()
                .any(|call| before.ends_with(call));
            let ours = (name.starts_with("WITHINGS_") || name.starts_with("RAILWAY_")) && !name.ends_with('_');
            if ours || looked_up {
                names.push(name);
            }
        }
        names
    }

    fn source_files(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                source_files(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tests.rs") {
                files.push(path);
            }
        }
    }

    #[test]
    fn every_variable_the_code_reads_is_in_the_table() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        source_files(&src, &mut files);
        let codes: Vec<&str> = crate::error::EXIT_STATUS_TABLE
            .iter()
            .flat_map(|row| row.codes.split(", "))
            .collect();
        let mut missing = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            // Test code names variables that are not settings on purpose.
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
            for name in names_read_in(code) {
                let known = SETTINGS.iter().any(|s| s.name == name)
                    || NOT_SETTINGS.contains(&name.as_str())
                    || codes.contains(&name.as_str());
                if !known {
                    missing.push(format!("{name} ({})", file.display()));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "not in SETTINGS (src/settings/table.rs): {missing:?}"
        );
        assert!(
            names_read_in(r#"let p = std::env::var_os("PATH");"#) == ["PATH"],
            "the scan sees lookups"
        );
    }
}
