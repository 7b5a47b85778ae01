//! An account's name: what a person types after `--account`, and a part of
//! a file name, a Redis key, a variable prefix and a metrics label, so it is
//! kept to characters every one of those takes as they are.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The account of a deployment that never named one.
pub const DEFAULT_ACCOUNT: &str = "default";

/// Long enough for a name, short enough for a label and a file name.
pub const MAX_NAME_LEN: usize = 64;

/// A checked account name: lower-case ASCII letters, digits and `-`,
/// starting with a letter or digit, at most [`MAX_NAME_LEN`] characters.
/// One case and no `_`, so that two names never share a file on a
/// case-blind disk, nor a variable prefix (`home-2` → `HOME_2_`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountName(String);

impl AccountName {
    pub fn parse(text: &str) -> Result<AccountName> {
        let ok = !text.is_empty()
            && text.len() <= MAX_NAME_LEN
            && text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            return Ok(AccountName(text.to_owned()));
        }
        let shown: String = text.chars().take(MAX_NAME_LEN).flat_map(char::escape_debug).collect();
        Err(Error::config(
            format!("`{shown}` is not an account name"),
            format!(
                "use lower-case letters, digits and `-` (starting with a letter or digit, at most {MAX_NAME_LEN}), like `alice` or `home-2`"
            ),
        ))
    }

    pub fn default_account() -> AccountName {
        AccountName(DEFAULT_ACCOUNT.to_owned())
    }

    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_ACCOUNT
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The prefix of the variables this account's copies are written under
    /// by default: none for `default` (the `WITHINGS_*` names), else the
    /// name in capitals with `_` for `-` (`home-2` → `HOME_2_`).
    pub fn default_variable_prefix(&self) -> String {
        if self.is_default() {
            return String::new();
        }
        let upper: String = self
            .0
            .chars()
            .map(|c| if c == '-' { '_' } else { c.to_ascii_uppercase() })
            .collect();
        format!("{upper}_")
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a file store keeps its accounts other than `default`: beside it,
/// in a directory named after it (`tokens.json` → `tokens.accounts/`).
pub fn accounts_dir(base: &Path) -> PathBuf {
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tokens".to_owned());
    base.with_file_name(format!("{stem}.accounts"))
}

/// The Redis key of a named account's set, from the deployment's key.
pub fn redis_key_of(base_key: &str, account: &AccountName) -> String {
    match app_of(base_key) {
        Some(app) => format!("{app}:{account}:tokens"),
        None => format!("{base_key}:account:{account}"),
    }
}

/// The Redis set that lists a deployment's accounts.
pub fn redis_index_key(base_key: &str) -> String {
    match app_of(base_key) {
        Some(app) => format!("{app}:accounts"),
        None => format!("{base_key}:accounts"),
    }
}

/// `withings-token:<client id>` of the default key
/// `withings-token:<client id>:tokens`; `None` for a key given by hand.
fn app_of(base_key: &str) -> Option<&str> {
    base_key
        .strip_suffix(":tokens")
        .filter(|p| p.starts_with("withings-token:"))
}
