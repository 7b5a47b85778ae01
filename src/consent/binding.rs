//! Consent binds an account to one person. A code traded for a set tells
//! which Withings user consented (`userid`); saving that set into an
//! account that holds another user's, or into a second account for a user
//! another account already holds, would silently swap one person's health
//! data for another's, so it is refused before anything is saved unless
//! the consent says `--replace`.

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
async fn holder_of(settings: &Settings, user: &str, except: &AccountName) -> Result<Option<AccountName>> {
    for name in crate::accounts::names(settings).await? {
        if name == *except {
            continue;
        }
        let store = crate::store::open(&settings.for_account(&name)?)?;
        let state = match store.load().await {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!("could not read account {name} to compare its Withings user: {e}");
                continue;
            }
        };
        if state.tokens.and_then(|t| t.userid).as_deref() == Some(user) {
            return Ok(Some(name));
        }
    }
    Ok(None)
}
