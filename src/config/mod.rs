//! The config file: what a deployment of several accounts shares and what
//! differs per account, in one TOML file read on every run and written only
//! by `accounts rename/remove` ([`rename_account`], [`remove_account`]).
//!
//! Found at `--config FILE`, else `WITHINGS_TOKEN_CONFIG`, else
//! `$XDG_CONFIG_HOME/withings-token/config.toml`, else
//! `~/.config/withings-token/config.toml`. A file named by the flag or the
//! variable must exist; the default one is simply not used when it is not
//! there, which costs one failed `stat`.
//!
//! Its keys are the settings' (`settings::SETTINGS`, their `config` key):
//! at the top what the deployment shares, in `[account.NAME]` what one
//! account overrides (and its `variable_prefix`), in `[reader.NAME]` a reader
//! credential scoped to some accounts. Anything else (an unknown key or
//! table, a wrong type, a value the setting refuses) is a configuration
//! error naming the file, the line and the key: a typo silently ignored
//! would leave an account refreshed on the wrong schedule or written to the
//! wrong place. Relative paths (`env_file`, a file `store`) are taken from
//! the config file's directory, whatever the working directory.
//!
//! Secrets may be kept here (`client_secret`, tokens); a file holding one
//! that group or others may read is warned about on every run, as ssh does.

mod edit;
mod parse;

use std::path::{Path, PathBuf};

use crate::account_name::AccountName;
use crate::error::{Error, Result};
use crate::settings::ReaderGrant;

pub use edit::{remove_account, rename_account};

/// The variable that names the config file.
pub const CONFIG_VARIABLE: &str = "WITHINGS_TOKEN_CONFIG";

/// A config file is a page of settings; anything larger is not one.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The key of an account table that is no setting: the prefix of the
/// variables the account's copies are written under.
pub const VARIABLE_PREFIX_KEY: &str = "variable_prefix";

/// How the config file in use was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigOrigin {
    /// `--config FILE`.
    Flag,
    /// `WITHINGS_TOKEN_CONFIG`.
    Variable,
    /// The default place under the config directory.
    Default,
}

/// A parsed config file.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub origin: ConfigOrigin,
    top: Vec<Entry>,
    accounts: Vec<AccountTable>,
    pub readers: Vec<ReaderGrant>,
}

/// One setting given in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The setting's variable (`WITHINGS_REFRESH_BUFFER` for `buffer`).
    pub variable: &'static str,
    pub value: String,
    /// 1-based.
    pub line: usize,
}

/// An `[account.NAME]` table.
#[derive(Debug, Clone)]
pub struct AccountTable {
    pub name: AccountName,
    entries: Vec<Entry>,
    /// `variable_prefix`, with its line.
    pub variable_prefix: Option<(String, usize)>,
    /// The line of its `[account.NAME]`.
    pub line: usize,
}

impl AccountTable {
    /// The prefix the account's copies are written under: the table's, else
    /// its name's.
    pub fn prefix(&self) -> String {
        match &self.variable_prefix {
            Some((prefix, _)) => prefix.clone(),
            None => self.name.default_variable_prefix(),
        }
    }
}

/// Where in the file a value was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub line: usize,
    /// The account whose table holds it; `None`: the top of the file.
    pub account: Option<AccountName>,
}

impl Config {
    /// The config file to use, parsed: the one `flag` or
    /// `WITHINGS_TOKEN_CONFIG` names (it must exist), else the default one
    /// when it exists. `process` reads the process environment.
    pub fn find(flag: Option<&Path>, process: &dyn Fn(&str) -> Option<String>) -> Result<Option<Config>> {
        let named = process(CONFIG_VARIABLE).filter(|v| !v.is_empty()).map(PathBuf::from);
        let (path, origin) = match (flag, named) {
            (Some(path), _) => (path.to_path_buf(), ConfigOrigin::Flag),
            (None, Some(path)) => (path, ConfigOrigin::Variable),
            (None, None) => match default_path(process) {
                Some(path) => (path, ConfigOrigin::Default),
                None => return Ok(None),
            },
        };
        let (bytes, meta) = match crate::fsutil::read_regular_file_and_metadata(&path, MAX_CONFIG_BYTES) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && origin == ConfigOrigin::Default => return Ok(None),
            Err(e) => return Err(unreadable(&path, origin, &e)),
        };
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::config(
                format!("config file {} is not UTF-8 text", path.display()),
                "save it as UTF-8 (TOML files are)",
            )
        })?;
        let config = Config::parse(path, origin, &text)?;
        config.warn_if_secrets_are_shown(&meta);
        Ok(Some(config))
    }

    /// Parses `text`, the contents of the config file at `path`.
    pub fn parse(path: PathBuf, origin: ConfigOrigin, text: &str) -> Result<Config> {
        parse::parse(path, origin, text)
    }

    /// The value the file gives `variable` for `account`: its table's, else
    /// the top's; with where it was found.
    pub fn value(&self, variable: &str, account: Option<&AccountName>) -> Option<(&str, Place)> {
        let table = account.and_then(|name| self.account(name));
        if let Some(table) = table
            && let Some(entry) = table.entries.iter().find(|e| e.variable == variable)
        {
            let place = Place {
                line: entry.line,
                account: Some(table.name.clone()),
            };
            return Some((&entry.value, place));
        }
        let entry = self.top.iter().find(|e| e.variable == variable)?;
        Some((
            &entry.value,
            Place {
                line: entry.line,
                account: None,
            },
        ))
    }

    /// The account whose copies the file puts under `prefix`, if any (an
    /// account without a table takes its name's prefix; see `AccountName`).
    pub fn prefix_owner(&self, prefix: &str) -> Option<&AccountName> {
        self.accounts.iter().find(|t| t.prefix() == prefix).map(|t| &t.name)
    }

    /// The `[account.NAME]` table of `name`, if the file has one.
    pub fn account(&self, name: &AccountName) -> Option<&AccountTable> {
        self.accounts.iter().find(|t| &t.name == name)
    }

    /// Every `[account.NAME]` table, in the file's order.
    pub fn accounts(&self) -> &[AccountTable] {
        &self.accounts
    }

    /// The file as messages name it, with a line: `/x/config.toml:7`.
    pub fn at(&self, line: usize) -> String {
        format!("{}:{line}", self.path.display())
    }

    /// Warns when the file holds a secret and group or others may read it.
    fn warn_if_secrets_are_shown(&self, meta: &std::fs::Metadata) {
        if !crate::fsutil::readable_by_others(meta) {
            return;
        }
        let every = self
            .top
            .iter()
            .chain(self.accounts.iter().flat_map(|t| t.entries.iter()));
        let Some(secret) = every.filter(|e| SECRETS.contains(&e.variable)).min_by_key(|e| e.line) else {
            return;
        };
        let key = parse::key_of(secret.variable).unwrap_or(secret.variable);
        tracing::warn!(
            "{} holds a secret (`{key}`) and group or others may read it: run `chmod 600 {}`",
            self.at(secret.line),
            self.path.display()
        );
    }
}

/// The settings that are secrets: a config file holding one should be
/// readable by its owner alone.
const SECRETS: &[&str] = &[
    "WITHINGS_CLIENT_SECRET",
    "ADMIN_API_TOKEN",
    "WITHINGS_TOKEN_READER_TOKEN",
    "RAILWAY_TOKEN",
    "RAILWAY_API_TOKEN",
];

/// `$XDG_CONFIG_HOME/withings-token/config.toml` (when absolute), else
/// `$HOME/.config/withings-token/config.toml`.
pub fn default_path(process: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let dir = process("XDG_CONFIG_HOME")
        .filter(|v| Path::new(v).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            process("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| Path::new(&home).join(".config"))
        })?;
    Some(dir.join("withings-token/config.toml"))
}

fn unreadable(path: &Path, origin: ConfigOrigin, e: &std::io::Error) -> Error {
    let why = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        _ => e.to_string(),
    };
    let action = match origin {
        ConfigOrigin::Flag => "fix the path given with `--config`",
        ConfigOrigin::Variable => "fix WITHINGS_TOKEN_CONFIG, or unset it to use the default config file",
        ConfigOrigin::Default => "make it a readable file, or move it away",
    };
    Error::config(format!("cannot read config file {}: {why}", path.display()), action)
}

#[cfg(test)]
mod tests;
