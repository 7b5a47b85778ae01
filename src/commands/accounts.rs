//! `accounts`: the accounts of the deployment (list, rename, remove).

use clap::{Args, Subcommand};

use crate::accounts::AccountName;
use crate::error::{Error, Result, Status};
use crate::http::block_on;
use crate::output::{AccountChangeReport, ErrorBody, ErrorReport, JSON_VERSION, Output};
use crate::settings::Settings;
use crate::tokens::now;

/// List the accounts (one Withings user each) with their expiry, refresh-token age, stale copies and state; rename or remove one
#[derive(Debug, Args)]
#[command(
    after_help = "Each account is one Withings user of the app, with a store of its own: `default` is the store as it always \
was (--store), another account NAME lives beside it (DIR/tokens.accounts/NAME.json, or the Redis key \
withings-token:<client id>:NAME:tokens).\n\
The `state` column is the account's alert state from its event record (docs/events.md): `ok`, `refresh failing` \
(refreshes fail for a passing reason) or `needs reauthorization` (Withings refused the refresh token: \
`withings-token login --account NAME`); JSON: `alert`, `events_waiting`, `events_dropped`, as `status` gives them.\n\
`remove` deletes the local set only: the consent given at Withings remains until revoked in the Withings app \
(Settings > Connected apps).\n\n\
Examples:\n  withings-token accounts\n  withings-token accounts --json\n  withings-token accounts rename default alice\n  withings-token accounts remove bob --yes"
)]
pub struct AccountsArgs {
    #[command(subcommand)]
    pub action: Option<AccountsAction>,
}

#[derive(Debug, Subcommand)]
pub enum AccountsAction {
    /// Give an account another name (its store moves; nothing is sent)
    #[command(after_help = "Examples:\n  withings-token accounts rename default alice")]
    Rename {
        /// The account's name now
        old: String,
        /// Its new name (refused when an account of that name exists)
        new: String,
    },
    /// Delete an account's local token set (the consent at Withings remains)
    #[command(after_help = "Examples:\n  withings-token accounts remove bob --yes")]
    Remove {
        /// The account to remove
        name: String,
        /// Remove it: without this flag, say what would be removed and exit 2
        #[arg(long)]
        yes: bool,
    },
}

pub fn run(args: &AccountsArgs, settings: &Settings, out: &Output) -> Result<Status> {
    match &args.action {
        None => list(settings, out),
        Some(AccountsAction::Rename { old, new }) => rename(settings, old, new, out),
        Some(AccountsAction::Remove { name, yes }) => remove(settings, name, *yes, out),
    }
}

fn list(settings: &Settings, out: &Output) -> Result<Status> {
    let rows = match crate::accounts::overview_local(settings) {
        Some(rows) => rows?,
        None => block_on(crate::accounts::overview(settings))??,
    };
    out.print(&crate::report::accounts_report(&rows, now()))?;
    Ok(Status::Success)
}

/// The settings of `name`, which must exist.
fn existing(settings: &Settings, name: &str) -> Result<Settings> {
    let name = AccountName::parse(name)?;
    let present = match crate::accounts::names_local(settings) {
        Some(names) => names?,
        None => block_on(crate::accounts::names(settings))??,
    };
    if !present.contains(&name) {
        return Err(no_such_account(&name));
    }
    settings.for_account(&name)
}

fn no_such_account(name: &AccountName) -> Error {
    Error::config(
        format!("there is no account {name} in this store; nothing was changed"),
        "`withings-token accounts` lists them",
    )
}

fn rename(settings: &Settings, old: &str, new: &str, out: &Output) -> Result<Status> {
    let from = existing(settings, old)?;
    let new = AccountName::parse(new)?;
    if new == from.account_name() {
        return Err(Error::config(
            format!("the account is called {new} already; nothing was changed"),
            "give another name",
        ));
    }
    refuse_a_table_for(settings, &new)?;
    let to = settings.for_account(&new)?;
    let store = crate::store::move_account(&from, &to)?;
    let store = with_config_change(settings, store, |path| {
        crate::config::rename_account(path, &from.account_name(), &new)
    })?;
    out.print(&AccountChangeReport {
        version: JSON_VERSION,
        change: "renamed",
        account: from.account_name().to_string(),
        new_name: Some(new.to_string()),
        store,
        message: format!(
            "the account {} is now {new}: use `--account {new}` (the set, its userid and consent are as they were; nothing was sent){}",
            from.account_name(),
            renamed_variables(settings, &from, &new)
        ),
    })?;
    Ok(Status::Success)
}

/// Refuses a new name the config file has a table for, before anything
/// moves: a rename that failed on the table after the store moved would
/// leave the set under a name whose table is another's.
fn refuse_a_table_for(settings: &Settings, new: &AccountName) -> Result<()> {
    let Some(path) = settings.config_file() else {
        return Ok(());
    };
    if settings.config().and_then(|c| c.account(new)).is_none() {
        return Ok(());
    }
    Err(Error::config(
        format!(
            "config file {} already has an [account.{new}] table; nothing was changed",
            path.display()
        ),
        format!("merge or delete [account.{new}] in it first, or choose another name than `{new}`"),
    ))
}

/// What the rename does to the copies' variable names: they follow the
/// name unless the account's table fixes them (`variable_prefix`).
fn renamed_variables(settings: &Settings, from: &Settings, new: &AccountName) -> String {
    let old = from.account_name();
    let fixed = settings
        .config()
        .and_then(|c| c.account(&old))
        .is_some_and(|t| t.variable_prefix.is_some());
    let (was, now) = (from.variable_prefix.clone(), new.default_variable_prefix());
    if fixed || was == now {
        return String::new();
    }
    format!(
        "; its copies are now written as {now}WITHINGS_* (they were {was}WITHINGS_*): the old lines stay in the env file and on Railway and are no longer updated (delete them); to keep the old names, set `variable_prefix = \"{was}\"` in its [account.{new}] table"
    )
}

/// What was changed, with the config file's table when it had one: the
/// store moved first, so a failure here leaves a table to fix by hand, never
/// a set without its name.
fn with_config_change(
    settings: &Settings,
    store: String,
    change: impl FnOnce(&std::path::Path) -> Result<bool>,
) -> Result<String> {
    let Some(path) = settings.config_file() else {
        return Ok(store);
    };
    match change(path) {
        Ok(true) => Ok(format!("{store}; the account's table in {}", path.display())),
        Ok(false) => Ok(store),
        Err(e) => Err(Error::config(
            format!("the token set was changed ({store}), but the config file was not: {e}"),
            format!(
                "edit {} by hand: rename or remove the account's `[account.NAME]` table and its name in readers' `accounts`",
                path.display()
            ),
        )),
    }
}

fn remove(settings: &Settings, name: &str, yes: bool, out: &Output) -> Result<Status> {
    let account = existing(settings, name)?;
    let name = account.account_name();
    let location = crate::store::open(&account)?.location();
    if !yes {
        // A usage refusal (exit 2), as clap's would be, saying what `--yes` does.
        out.print(&ErrorReport {
            error: ErrorBody {
                code: "USAGE_ERROR",
                message: format!(
                    "`accounts remove {name}` would delete the token set of account {name} in {location} (the consent at Withings remains); nothing was removed"
                ),
                action: format!("run `withings-token accounts remove {name} --yes` to remove it"),
            },
        })?;
        return Ok(Status::Failed(2));
    }
    let store = block_on(crate::store::remove_account(&account))??;
    let store = with_config_change(settings, store, |path| crate::config::remove_account(path, &name))?;
    out.print(&AccountChangeReport {
        version: JSON_VERSION,
        change: "removed",
        account: name.to_string(),
        new_name: None,
        store,
        message: format!(
            "the local token set of {name} is deleted; the consent given at Withings remains: revoke it in the Withings app (Settings > Connected apps) if it should end; a running `serve` keeps the readers it started with: restart it"
        ),
    })?;
    Ok(Status::Success)
}
