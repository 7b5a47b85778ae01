//! Accounts: the Withings users one app's deployment keeps tokens for, each
//! under a name, each with a store of its own.
//!
//! An account is one person (the `userid` Withings returns) under one app.
//! A deployment that never named one has one account, `default`, kept where
//! the store always was: a store written before accounts existed is that
//! account as it is, nothing moved, nothing sent. Another account `NAME`
//! lives beside it, so that its lock (or lease) is its own and a refresh
//! of one never waits for another's:
//! - a file store `DIR/tokens.json`: `DIR/tokens.accounts/NAME.json`;
//! - a Redis store under the default key `withings-token:<client id>:tokens`:
//!   `withings-token:<client id>:NAME:tokens` (a key `K` given by hand:
//!   `K:account:NAME`), the names listed in the set
//!   `withings-token:<client id>:accounts` (`K:accounts`).
//!
//! Which account a command acts on ([`choose`]): the one named
//! (`--account`, `WITHINGS_TOKEN_ACCOUNT`); else the only one there is
//! (`default` while there is none); with several and none named, exit 3
//! listing them, before anything is sent.

mod overview;

use std::path::Path;

use crate::error::{Error, Result};
use crate::settings::{Settings, StoreLocation};

pub use crate::account_name::{AccountName, accounts_dir};
pub use overview::{AccountRow, overview, overview_local};

/// The store location of `account` in the deployment whose store is `base`
/// (the `default` account's): see [`StoreLocation::of_account`].
pub fn location_of(base: &StoreLocation, account: &AccountName) -> StoreLocation {
    base.of_account(account)
}

/// The accounts of a file-store deployment, sorted, `default` first when
/// its store exists: one `stat` and one directory listing.
pub fn names_in_files(base: &Path) -> Result<Vec<AccountName>> {
    let mut names = Vec::new();
    if std::fs::symlink_metadata(base).is_ok() {
        names.push(AccountName::default_account());
    }
    let dir = accounts_dir(base);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        // No directory, or a path through a file: no other account (the
        // store's own open says what is wrong with its path).
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(names);
        }
        Err(e) => {
            return Err(Error::config(
                format!(
                    "cannot list the accounts of the token store {} (in {}): {e}",
                    base.display(),
                    dir.display()
                ),
                format!(
                    "make {} and {} readable by this user (`ls -ld` shows their owner and mode), or pass `--account NAME`",
                    base.parent().unwrap_or(base).display(),
                    dir.display()
                ),
            ));
        }
    };
    let mut named: Vec<AccountName> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let file = entry.file_name();
            let stem = file.to_str()?.strip_suffix(".json")?;
            AccountName::parse(stem).ok().filter(|n| !n.is_default())
        })
        .collect();
    named.sort();
    names.extend(named);
    Ok(names)
}

/// The accounts of the deployment `settings` name, from the store itself.
pub async fn names(settings: &Settings) -> Result<Vec<AccountName>> {
    match &settings.deployment_store {
        StoreLocation::File(path) => names_in_files(path),
        StoreLocation::Redis { .. } => crate::store::redis_account_names(settings).await,
    }
}

/// [`names`] without a runtime, for a file store (offline commands start
/// none); `None` for Redis.
pub fn names_local(settings: &Settings) -> Option<Result<Vec<AccountName>>> {
    match &settings.deployment_store {
        StoreLocation::File(path) => Some(names_in_files(path)),
        StoreLocation::Redis { .. } => None,
    }
}

/// What a command does with the account it acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Reads or refreshes a set: a named account must exist (`default`
    /// may be empty: it is seeded from the `WITHINGS_*` variables).
    Use,
    /// Gives it a set (consent): a new name creates the account.
    Create,
}

/// The settings of the account a command acts on (see the module's
/// comment), with the account's store, variables and table.
pub async fn choose(settings: &Settings, purpose: Purpose) -> Result<Settings> {
    let present = names(settings).await?;
    chosen(settings, present, purpose)
}

/// [`choose`] without a runtime, for a file store; `None` for Redis.
pub fn choose_local(settings: &Settings, purpose: Purpose) -> Option<Result<Settings>> {
    let present = names_local(settings)?;
    Some(present.and_then(|present| chosen(settings, present, purpose)))
}

/// What a command that can act on every account (`status`) acts on.
pub enum Choice {
    /// The account named, or the only one: as [`choose`] gives it.
    One(Box<Settings>),
    /// Several accounts and none named: all of them.
    Every,
}

/// [`choose`] for a command that acts on every account when there are
/// several and none is named.
pub async fn choose_or_every(settings: &Settings, purpose: Purpose) -> Result<Choice> {
    let present = names(settings).await?;
    chosen_or_every(settings, present, purpose)
}

/// [`choose_or_every`] without a runtime, for a file store; `None` for Redis.
pub fn choose_or_every_local(settings: &Settings, purpose: Purpose) -> Option<Result<Choice>> {
    let present = names_local(settings)?;
    Some(present.and_then(|present| chosen_or_every(settings, present, purpose)))
}

fn chosen_or_every(settings: &Settings, present: Vec<AccountName>, purpose: Purpose) -> Result<Choice> {
    if settings.account.is_none() && present.len() > 1 {
        return Ok(Choice::Every);
    }
    chosen(settings, present, purpose).map(|one| Choice::One(Box::new(one)))
}

fn chosen(settings: &Settings, present: Vec<AccountName>, purpose: Purpose) -> Result<Settings> {
    let name = match &settings.account {
        Some(named) if purpose == Purpose::Create || named.is_default() || present.contains(named) => named.clone(),
        Some(named) => return Err(no_such_account(named, &present)),
        None => only_one(present.clone(), settings)?,
    };
    let mut chosen = settings.for_account(&name)?;
    // A seed among several accounts may be another's token: vetted before
    // use (`consent::vet_seed`); one account alone costs nothing more.
    chosen.seed_to_vet = chosen.seed_tokens.is_some() && present.iter().any(|n| *n != name);
    Ok(chosen)
}

fn no_such_account(named: &AccountName, present: &[AccountName]) -> Error {
    let listed = match present {
        [] => "none yet".to_owned(),
        _ => present.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
    };
    Error::config(
        format!("there is no account {named} in this store (accounts: {listed}); nothing was sent"),
        format!(
            "check the name (`withings-token accounts` lists them), or create it: `withings-token login --account {named}`"
        ),
    )
}

/// The only account present (`default` when there is none); several: the
/// error that lists them.
fn only_one(mut present: Vec<AccountName>, settings: &Settings) -> Result<AccountName> {
    match present.len() {
        0 => Ok(AccountName::default_account()),
        1 => Ok(present.remove(0)),
        _ => Err(several_accounts(&present, settings)),
    }
}

fn several_accounts(present: &[AccountName], settings: &Settings) -> Error {
    let listed = present.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ");
    let example = settings
        .next_command
        .clone()
        .unwrap_or_else(|| "withings-token".to_owned());
    Error::config(
        format!(
            "this store keeps {} accounts ({listed}) and none was named; nothing was sent",
            present.len()
        ),
        format!(
            "name one with `--account NAME` (or WITHINGS_TOKEN_ACCOUNT), e.g. `{example} --account {}`; `withings-token accounts` lists them",
            present[0]
        ),
    )
}

#[cfg(test)]
mod tests;
