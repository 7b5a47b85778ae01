//! Consent binds an account to one person. A code traded for a set tells
//! which Withings user consented (`userid`); saving that set into an
//! account that holds another user's, or into a second account for a user
//! another account already holds, would silently swap one person's health
//! data for another's, so it is refused before anything is saved unless
//! the consent says `--replace`.

use secrecy::ExposeSecret;

use crate::accounts::AccountName;
use crate::error::{Error, Result};
use crate::settings::Settings;
use crate::store::StoreState;
use crate::tokens::TokenSet;

/// Whether a consent may replace another person's set (`--replace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Replace {
    #[default]
    Refuse,
    Allow,
}

impl Replace {
    /// `--replace` (the CLI) or `"replace": true` (the admin exchange).
    pub fn when(given: bool) -> Replace {
        if given { Replace::Allow } else { Replace::Refuse }
    }
}

/// Refuses `new` for the account `settings` act on when it is another
/// person's than the one the account holds, or one another account holds;
/// with [`Replace::Allow`], says what it replaces instead.
pub(crate) async fn check(settings: &Settings, current: &StoreState, new: &TokenSet, replace: Replace) -> Result<()> {
    let Some(user) = new.userid.as_deref() else {
        return Ok(());
    };
    let account = settings.account_name();
    let held = current.tokens.as_ref().and_then(|t| t.userid.as_deref());
    if let Some(held) = held.filter(|held| *held != user) {
        return verdict(
            replace,
            format!(
                "account {account} holds the tokens of Withings user {held}, and this consent was given by user {user}"
            ),
            format!("replaced account {account}'s set of Withings user {held} with user {user}'s (--replace)"),
            &account,
        );
    }
    if let Some(other) = holder_of(settings, user, &account).await? {
        return verdict(
            replace,
            format!(
                "Withings user {user} is already account {other}; this consent for account {account} would keep a second token chain for the same person"
            ),
            format!("account {account} now holds Withings user {user}, whom account {other} holds too (--replace)"),
            &account,
        );
    }
    Ok(())
}

fn verdict(replace: Replace, refused: String, replaced: String, account: &AccountName) -> Result<()> {
    match replace {
        Replace::Allow => {
            tracing::warn!("{replaced}");
            Ok(())
        }
        Replace::Refuse => Err(Error::AccountMismatch {
            detail: format!("{refused}; nothing was saved"),
            action: format!(
                "if that was the wrong person's login, run `withings-token login --account {account}` again and sign in as the right one (a code is used once: this one is spent); to give account {account} this person's tokens deliberately, consent again with `--replace`"
            ),
        }),
    }
}

/// The account other than `except` whose stored set is Withings user
/// `user`'s, if any. Reads without locks: each store is read whole.
pub(crate) async fn holder_of(settings: &Settings, user: &str, except: &AccountName) -> Result<Option<AccountName>> {
    other_account_where(settings, except, "its Withings user", |state| {
        state.tokens.as_ref().and_then(|t| t.userid.as_deref()) == Some(user)
    })
    .await
}

/// Refuses a set about to be adopted from outside the store (the
/// environment's seed, Railway's copy) into the account `settings` act on
/// when another account holds its refresh token, as its current or its
/// previous one: a seed left over from before an `accounts rename`, or a
/// copy of another account's, would send that person's token under this
/// name, forking their chain (their next refresh is refused). `whence`
/// names where the set came from; `remedy` what to do about it.
pub(crate) async fn refuse_another_accounts_token(
    settings: &Settings,
    set: &TokenSet,
    whence: &str,
    remedy: &str,
) -> Result<()> {
    let account = settings.account_name();
    let token = set.refresh_token.expose_secret();
    let holder = other_account_where(settings, &account, "its refresh token", |state| {
        let current = state.tokens.as_ref().map(|t| t.refresh_token.expose_secret());
        let previous = state.previous.as_ref().map(|p| p.refresh_token.expose_secret());
        current == Some(token) || previous == Some(token)
    })
    .await?;
    let Some(holder) = holder else {
        return Ok(());
    };
    Err(Error::AccountMismatch {
        detail: format!(
            "the refresh token {whence} is account {holder}'s (its store holds it); using it as account {account}'s would fork {holder}'s token chain; nothing was sent or saved"
        ),
        action: format!("{remedy}; to act on that account, name it: `--account {holder}`"),
    })
}

/// A seed (`WITHINGS_*` variables, or the account's prefixed ones) that is
/// another account's current or previous refresh token is refused before
/// the set is used at all, not only before it is sent: its access token
/// would otherwise be handed out (`access-token`, `exec`, the broker) as
/// this account's. Only a deployment of several accounts is scanned.
pub(crate) async fn vet_seed(settings: &Settings) -> Result<()> {
    let Some(seed) = settings.seed_tokens.as_ref() else {
        return Ok(());
    };
    let account = settings.account_name();
    let stored = crate::store::open(settings)?.load().await?;
    if !crate::tokens::seed_in_use(stored.tokens.as_ref(), seed, crate::tokens::now()) {
        return Ok(());
    }
    let others = crate::accounts::names(settings)
        .await?
        .into_iter()
        .any(|n| n != account);
    if !others {
        return Ok(());
    }
    refuse_another_accounts_seed(settings, seed).await
}

/// Refuses the environment's seed when another account holds its refresh
/// token (a seed left in place after `accounts rename`): checked only when
/// a seed is in use, which is rare, so the normal refresh lists no accounts.
pub(crate) async fn refuse_another_accounts_seed(settings: &Settings, seed: &TokenSet) -> Result<()> {
    let variable = format!("{}WITHINGS_REFRESH_TOKEN", settings.variable_prefix);
    refuse_another_accounts_token(
        settings,
        seed,
        &format!("in {variable} (the environment or the env file)"),
        &format!(
            "remove or replace the stale {}WITHINGS_* lines (the env file, the process environment), or authorise this account: `withings-token login --account {}`",
            settings.variable_prefix,
            settings.account_name()
        ),
    )
    .await
}

/// The first account other than `except` whose store, read whole and
/// without its lock, satisfies `holds`. Each store is opened at its place
/// in the deployment, not through its config table: another account's
/// broken table must not stop this check. A store that cannot be read is
/// said (`what` it was read for) and passed over.
async fn other_account_where(
    settings: &Settings,
    except: &AccountName,
    what: &str,
    holds: impl Fn(&StoreState) -> bool,
) -> Result<Option<AccountName>> {
    for name in crate::accounts::names(settings).await? {
        if name == *except {
            continue;
        }
        let mut other = settings.clone();
        other.store = crate::accounts::location_of(&settings.deployment_store, &name);
        other.account = Some(name.clone());
        let state = match crate::store::open(&other)?.load().await {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!("could not read account {name} to compare {what}: {e}");
                continue;
            }
        };
        if holds(&state) {
            return Ok(Some(name));
        }
    }
    Ok(None)
}
