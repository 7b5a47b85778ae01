//! Reading the config file: TOML (`toml_edit`, which keeps each key's
//! place, so an error names its line) into [`Config`], every key checked.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{Document, Item, TableLike, Value};

use super::{AccountTable, Config, ConfigOrigin, Entry, VARIABLE_PREFIX_KEY};
use crate::account_name::AccountName;
use crate::budget::{MAX_PER_MINUTE, MIN_PER_MINUTE, Rate};
use crate::error::{Error, Result};
use crate::settings::{ConfigKey, ReaderGrant, SETTINGS};

/// The tables of the file that hold tables, one per name.
pub(super) const ACCOUNT_TABLES: &str = "account";
pub(super) const READER_TABLES: &str = "reader";

/// Where keys are read: the top of the file, or one account's table.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Top,
    Account(&'a str),
}

impl Scope<'_> {
    fn shown(self) -> String {
        match self {
            Scope::Top => "at the top of the file".to_owned(),
            Scope::Account(name) => format!("in [account.{name}]"),
        }
    }
}

/// The text being read, for line numbers and messages.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    /// The 1-based line where `span` starts (1 when unknown).
    fn line(&self, span: Option<Range<usize>>) -> usize {
        let start = span.map_or(0, |s| s.start.min(self.text.len()));
        self.text.as_bytes()[..start].iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn error(&self, line: usize, message: impl std::fmt::Display, action: impl Into<String>) -> Error {
        Error::config(format!("{}:{line}: {message}", self.path.display()), action)
    }

    /// The line of `key` in `table`.
    fn key_line(&self, table: &dyn TableLike, key: &str) -> usize {
        self.line(table.key(key).and_then(|k| k.span()))
    }
}

pub(super) fn parse(path: PathBuf, origin: ConfigOrigin, text: &str) -> Result<Config> {
    let source = Source { path: &path, text };
    let doc = Document::parse(text).map_err(|e| {
        let message = e.message().lines().next().unwrap_or("not valid TOML").trim_end();
        source.error(
            source.line(e.span()),
            format!("not valid TOML: {message}"),
            "fix that line (strings are quoted: `buffer = \"3h\"`; tables are `[account.NAME]`)",
        )
    })?;
    let root = doc.as_table();
    let mut top = Vec::new();
    let mut accounts = Vec::new();
    let mut readers = Vec::new();
    for (key, item) in root.iter() {
        let line = source.key_line(root, key);
        match key {
            ACCOUNT_TABLES => accounts = account_tables(&source, item, line)?,
            READER_TABLES => readers = reader_tables(&source, item, line)?,
            _ => top.push(entry(&source, Scope::Top, key, item, line)?),
        }
    }
    let dir = crate::fsutil::parent_dir(&path).to_path_buf();
    let mut config = Config {
        path,
        origin,
        top,
        accounts,
        readers,
    };
    relative_to(&dir, &mut config);
    Ok(config)
}

/// The table of tables `[NAME.*]` (`what` names them), each with its line.
fn tables_of<'a>(
    source: &Source,
    item: &'a Item,
    line: usize,
    what: &str,
) -> Result<Vec<(&'a str, &'a dyn TableLike, usize)>> {
    let action = format!("write each as a table of its own: `[{what}.NAME]`");
    let Some(tables) = item.as_table_like() else {
        return Err(source.error(line, format!("`{what}` must hold [{what}.NAME] tables"), action));
    };
    let mut found = Vec::new();
    for (name, inner) in tables.iter() {
        let at = source.key_line(tables, name);
        let Some(table) = inner.as_table_like() else {
            return Err(source.error(at, format!("`{what}.{name}` must be a table, [{what}.{name}]"), action));
        };
        found.push((name, table, at));
    }
    Ok(found)
}

fn account_tables(source: &Source, item: &Item, line: usize) -> Result<Vec<AccountTable>> {
    let mut accounts = Vec::new();
    for (name, table, at) in tables_of(source, item, line, ACCOUNT_TABLES)? {
        let account =
            AccountName::parse(name).map_err(|e| source.error(at, format!("[account.{name}]: {e}"), e.action()))?;
        let mut entries = Vec::new();
        let mut variable_prefix = None;
        for (key, value) in table.iter() {
            let line = source.key_line(table, key);
            if key == VARIABLE_PREFIX_KEY {
                variable_prefix = Some((prefix(source, name, value, line)?, line));
            } else {
                entries.push(entry(source, Scope::Account(name), key, value, line)?);
            }
        }
        let table = AccountTable {
            name: account,
            entries,
            variable_prefix,
            line: at,
        };
        if let Some(other) = accounts.iter().find(|t: &&AccountTable| t.prefix() == table.prefix()) {
            return Err(shared_prefix(source, &table, &other.name));
        }
        accounts.push(table);
    }
    let default_is_free = |t: &AccountTable| t.name.is_default() || !t.prefix().is_empty();
    let default_unlisted = !accounts.iter().any(|t| t.name.is_default());
    if let Some(table) = accounts.iter().find(|t| default_unlisted && !default_is_free(t)) {
        return Err(shared_prefix(source, table, &AccountName::default_account()));
    }
    Ok(accounts)
}

/// Two accounts whose copies would be written under the same names would
/// overwrite each other's tokens in a shared env file or service.
fn shared_prefix(source: &Source, table: &AccountTable, other: &AccountName) -> Error {
    let line = table.variable_prefix.as_ref().map_or(table.line, |(_, line)| *line);
    source.error(
        line,
        format!(
            "[account.{}] would write its copies under the variable names of account {other} (prefix `{}`)",
            table.name,
            table.prefix()
        ),
        "give each account a `variable_prefix` of its own (`default` alone may have none)",
    )
}

/// `variable_prefix`: letters, digits and `_`, what a variable name takes
/// (empty: the `WITHINGS_*` names themselves).
fn prefix(source: &Source, account: &str, item: &Item, line: usize) -> Result<String> {
    let text = text_of(source, Scope::Account(account), VARIABLE_PREFIX_KEY, item, line)?;
    let valid =
        text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !text.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        return Ok(text);
    }
    Err(source.error(
        line,
        format!(
            "`{VARIABLE_PREFIX_KEY}` in [account.{account}] is not a variable prefix: `{}`",
            crate::redact::visible(&text)
        ),
        "use capital letters, digits and `_`, not starting with a digit, like `ALICE_`",
    ))
}

/// One setting: a known key, where it may be set, of a type it takes, with
/// a value its setting accepts.
fn entry(source: &Source, scope: Scope, key: &str, item: &Item, line: usize) -> Result<Entry> {
    let Some(setting) = SETTINGS.iter().find(|s| s.config.key() == Some(key)) else {
        return Err(unknown_key(source, scope, key, item, line));
    };
    if let (Scope::Account(name), ConfigKey::Top(_)) = (scope, setting.config) {
        return Err(source.error(
            line,
            format!(
                "`{key}` cannot be set per account (in [account.{name}]): every account of the deployment shares it"
            ),
            format!("move `{key}` to the top of the file, before the first table"),
        ));
    }
    let value = text_of(source, scope, key, item, line)?;
    if let Some((why, action)) = crate::settings::value_problem(setting.name, &value) {
        return Err(source.error(line, format!("`{key}` {}: {why}", scope.shown()), action));
    }
    Ok(Entry {
        variable: setting.name,
        value,
        line,
    })
}

/// A value as the setting's text: a string, or an integer (`port = 8080`).
fn text_of(source: &Source, scope: Scope, key: &str, item: &Item, line: usize) -> Result<String> {
    let text = match item.as_value() {
        Some(Value::String(s)) => s.value().clone(),
        Some(Value::Integer(i)) => i.value().to_string(),
        Some(Value::Array(items)) if SEVERAL_KEYS.contains(&key) => return several(source, scope, key, items, line),
        _ => {
            return Err(source.error(
                line,
                format!("`{key}` {} must be a string, not {}", scope.shown(), kind_of(item)),
                format!("quote the value: `{key} = \"...\"`"),
            ));
        }
    };
    refuse_controls(source, scope, key, &text, line)?;
    Ok(text)
}

/// A value holding a control character (a line break) is refused: it could
/// forge a line of the env file or of a message.
fn refuse_controls(source: &Source, scope: Scope, key: &str, text: &str, line: usize) -> Result<()> {
    if !text.chars().any(char::is_control) {
        return Ok(());
    }
    Err(source.error(
        line,
        format!(
            "`{key}` {} holds a control character (such as a line break)",
            scope.shown()
        ),
        format!("set `{key}` (each of its values) on one line, without control characters"),
    ))
}

/// The keys that may hold several values: an array of strings, read as
/// the variable's one-per-line form.
const SEVERAL_KEYS: [&str; 4] = ["on_event", "webhook_url", "ping_url", "encrypt_to"];

fn several(source: &Source, scope: Scope, key: &str, items: &toml_edit::Array, line: usize) -> Result<String> {
    let mut texts = Vec::new();
    for item in items.iter() {
        let Value::String(text) = item else {
            return Err(source.error(
                line,
                format!("`{key}` {} must be an array of strings", scope.shown()),
                format!("quote each value: `{key} = [\"...\", \"...\"]`"),
            ));
        };
        let text = text.value();
        refuse_controls(source, scope, key, text, line)?;
        texts.push(text.clone());
    }
    Ok(texts.join("\n"))
}

fn kind_of(item: &Item) -> &'static str {
    match item {
        Item::Value(Value::Boolean(_)) => "a boolean",
        Item::Value(Value::Float(_)) => "a number with a fraction",
        Item::Value(Value::Datetime(_)) => "a date",
        Item::Value(Value::Array(_)) => "an array",
        Item::Value(Value::InlineTable(_)) | Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        _ => "that",
    }
}

fn unknown_key(source: &Source, scope: Scope, key: &str, item: &Item, line: usize) -> Error {
    let what = if item.is_table_like() { "table" } else { "key" };
    let known = keys_allowed(scope).join(", ");
    let action = match scope {
        Scope::Top => format!(
            "fix or delete it; the top of the file takes {known}, and the tables [account.NAME] and [reader.NAME]"
        ),
        Scope::Account(_) => format!("fix or delete it; an [account.NAME] table takes {known}"),
    };
    source.error(line, format!("unknown {what} `{key}` {}", scope.shown()), action)
}

/// The keys `scope` takes, in the settings' order.
fn keys_allowed(scope: Scope) -> Vec<&'static str> {
    let mut keys: Vec<&str> = SETTINGS
        .iter()
        .filter_map(|s| match (scope, s.config) {
            (_, ConfigKey::Account(key)) | (Scope::Top, ConfigKey::Top(key)) => Some(key),
            _ => None,
        })
        .collect();
    if let Scope::Account(_) = scope {
        keys.push(VARIABLE_PREFIX_KEY);
    }
    keys
}

/// The config key of `variable`, for messages.
pub(super) fn key_of(variable: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .find(|s| s.name == variable)
        .and_then(|s| s.config.key())
}

fn reader_tables(source: &Source, item: &Item, line: usize) -> Result<Vec<ReaderGrant>> {
    let mut readers = Vec::new();
    for (name, table, at) in tables_of(source, item, line, READER_TABLES)? {
        if AccountName::parse(name).is_err() {
            return Err(source.error(
                at,
                format!(
                    "[reader.{name}]: `{}` is not a reader name",
                    crate::redact::visible(name)
                ),
                "use lower-case letters, digits and `-` (starting with a letter or digit, at most 64), like `mcp-alice`",
            ));
        }
        readers.push(reader(source, name, table, at)?);
    }
    Ok(readers)
}

fn reader(source: &Source, name: &str, table: &dyn TableLike, line: usize) -> Result<ReaderGrant> {
    let mut sha256 = None;
    let mut accounts = None;
    let mut budget = None;
    for (key, value) in table.iter() {
        let at = source.key_line(table, key);
        match key {
            "sha256" => sha256 = Some(digest(source, name, value, at)?),
            "accounts" => accounts = Some(readable_accounts(source, name, value, at)?),
            "budget" => budget = Some(share(source, name, value, at)?),
            _ => {
                return Err(source.error(
                    at,
                    format!("unknown key `{key}` in [reader.{name}]"),
                    "fix or delete it; a [reader.NAME] table takes sha256, accounts and (optionally) budget",
                ));
            }
        }
    }
    let missing = |key: &str, example: &str| {
        source.error(
            line,
            format!("[reader.{name}] has no `{key}`"),
            format!("add `{key} = {example}` to it"),
        )
    };
    let sha256 = sha256.ok_or_else(|| missing("sha256", "\"<64 hex digits: the SHA-256 of the reader's token>\""))?;
    let (accounts, every_account) = accounts.ok_or_else(|| missing("accounts", "[\"NAME\"]"))?;
    Ok(ReaderGrant {
        name: name.to_owned(),
        sha256,
        accounts,
        all_accounts: every_account,
        budget,
    })
}

/// `budget`: the reader's share of the app's budget, `N/min` or `N/hour`.
fn share(source: &Source, reader: &str, item: &Item, line: usize) -> Result<Rate> {
    let parsed = match item.as_str() {
        Some(text) => Rate::parse(text),
        None => Err("must be a string, like \"30/min\"".to_owned()),
    };
    parsed.map_err(|why| {
        source.error(
            line,
            format!("`budget` in [reader.{reader}]: {why}"),
            format!(
                "set it to the proxied calls a minute or an hour the reader may send, like `budget = \"30/min\"` or `\"500/hour\"` (from {MIN_PER_MINUTE} to {MAX_PER_MINUTE})"
            ),
        )
    })
}

/// `sha256`: 64 hex digits, kept in lower case.
fn digest(source: &Source, reader: &str, item: &Item, line: usize) -> Result<String> {
    let text = item.as_str().unwrap_or_default();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(text.to_ascii_lowercase());
    }
    Err(source.error(
        line,
        format!("`sha256` in [reader.{reader}] is not 64 hex digits"),
        "set it to the SHA-256 of the reader's token, e.g. the output of `printf %s \"$TOKEN\" | sha256sum`",
    ))
}

/// `accounts`: names, or `"*"` for every account.
fn readable_accounts(source: &Source, reader: &str, item: &Item, line: usize) -> Result<(Vec<AccountName>, bool)> {
    let action = "list the account names it may read, like `accounts = [\"alice\"]`, or `[\"*\"]` for every account";
    let Some(array) = item.as_array() else {
        return Err(source.error(
            line,
            format!("`accounts` in [reader.{reader}] must be an array"),
            action,
        ));
    };
    let mut names = Vec::new();
    let mut every = false;
    for value in array.iter() {
        let at = source.line(value.span()).max(line);
        match value.as_str() {
            Some("*") => every = true,
            Some(text) => match AccountName::parse(text) {
                Ok(name) => names.push(name),
                Err(e) => return Err(source.error(at, format!("`accounts` in [reader.{reader}]: {e}"), e.action())),
            },
            None => {
                return Err(source.error(at, format!("`accounts` in [reader.{reader}] must hold strings"), action));
            }
        }
    }
    Ok((names, every))
}

/// Paths the file gives relative to itself: `env_file`, and a file `store`.
fn relative_to(dir: &Path, config: &mut Config) {
    let entries = config
        .top
        .iter_mut()
        .chain(config.accounts.iter_mut().flat_map(|t| t.entries.iter_mut()));
    for entry in entries {
        let is_path = match entry.variable {
            "WITHINGS_ENV_FILE" => true,
            "WITHINGS_TOKEN_STORE" => !entry.value.contains("://"),
            _ => false,
        };
        if is_path && !entry.value.is_empty() && Path::new(&entry.value).is_relative() {
            entry.value = dir.join(&entry.value).to_string_lossy().into_owned();
        }
    }
}
