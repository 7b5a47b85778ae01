//! `rekey`'s work: each account's store written again, under its lock
//! (file) or lease (Redis), sealed to the recipients configured now and
//! read with any identity configured (old or new): a key is added or
//! removed while other runs go on refreshing, each of which reloads under
//! the same lock. The token set is the one read, so its generation (what
//! the copies follow) stays; only the store's moves. The account's event
//! record is sealed again the same way, so its outbox follows the keys. A
//! set a previous run could not save is adopted first (`rotation`): its
//! rescue file is sealed to the keys it was written with.
//!
//! With no recipient, every store is written plain, which only
//! `--allow-plaintext` allows (see `sealing`). Nothing is sent to Withings.

use crate::accounts::AccountName;
use crate::error::{Error, Result};
use crate::sealing::Keyring;
use crate::settings::Settings;
use crate::store::{StoreLease, TokenStore};

/// How a store is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    Plain,
    Encrypted,
}

impl Sealing {
    pub fn of(sealed: bool) -> Sealing {
        if sealed { Sealing::Encrypted } else { Sealing::Plain }
    }

    pub fn word(self) -> &'static str {
        match self {
            Sealing::Plain => "plain",
            Sealing::Encrypted => "encrypted",
        }
    }
}

/// One account's store, re-encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rekeyed {
    pub before: Sealing,
    pub after: Sealing,
    /// The store's generation after the write.
    pub generation: u64,
}

/// Refuses a rekey the keyring cannot carry out, before any store is
/// touched: no recipient and no `--allow-plaintext`, or recipients none of
/// this host's identities opens.
pub fn check_keys(keyring: &Keyring) -> Result<()> {
    if !keyring.seals() && !keyring.allows_plaintext() {
        return Err(Error::config(
            "no recipient is configured, so there is nothing to encrypt the stores to; nothing was changed",
            "set WITHINGS_TOKEN_RECIPIENTS (or `encrypt_to` in the config file, or pass `--encrypt-to`) to the age recipients (age1…) to encrypt to; `withings-token keygen` makes a key; to write every store plain (decrypted) on purpose, pass `--allow-plaintext`",
        ));
    }
    keyring.check_write(false, "every account's store")
}

/// The accounts to re-encrypt: the one named (`--account`), which must
/// exist, else every account of the deployment.
pub async fn accounts_to_rekey(settings: &Settings) -> Result<Vec<AccountName>> {
    let present = crate::accounts::names(settings).await?;
    match &settings.account {
        None => Ok(present),
        Some(named) if present.contains(named) => Ok(vec![named.clone()]),
        Some(named) => Err(Error::config(
            format!("there is no account {named} in this store; nothing was changed"),
            "`withings-token accounts` lists them; without `--account`, `rekey` goes through every one",
        )),
    }
}

/// Re-encrypts each of `names` in turn; one that fails does not stop the
/// others.
pub async fn rekey_each(settings: &Settings, names: Vec<AccountName>) -> Vec<(AccountName, Result<Rekeyed>)> {
    let mut done = Vec::with_capacity(names.len());
    for name in names {
        let rekeyed = match settings.for_account(&name) {
            Ok(account) => rekey_account(&account).await,
            Err(e) => Err(e),
        };
        done.push((name, rekeyed));
    }
    done
}

/// Re-encrypts the store of the account `settings` act on.
pub async fn rekey_account(settings: &Settings) -> Result<Rekeyed> {
    let store = crate::store::open(settings)?;
    let lock = store.lock(settings.lock_timeout).await?;
    let rekeyed = rekey_under(settings, store.as_ref(), lock.as_ref()).await;
    lock.release().await;
    rekeyed
}

async fn rekey_under(settings: &Settings, store: &dyn TokenStore, lock: &dyn StoreLease) -> Result<Rekeyed> {
    let state = lock.load().await?;
    if state.generation == 0 {
        return Err(nothing_stored(settings, &state));
    }
    let before = Sealing::of(state.sealed);
    let state = crate::rotation::adopt_unsaved(settings, lock, &store.location(), state).await?;
    let generation = lock.save(state.generation, &state).await?;
    crate::notify::reseal_record(store).await?;
    Ok(Rekeyed {
        before,
        after: Sealing::of(settings.keyring().seals()),
        generation,
    })
}

/// An account listed whose store holds nothing (removed meanwhile, or a
/// Redis key that lost its set).
fn nothing_stored(settings: &Settings, state: &crate::store::StoreState) -> Error {
    if state.lost.is_some() {
        return crate::rotation::no_tokens_error_for(state);
    }
    Error::config(
        format!(
            "the store of account {} holds nothing to re-encrypt (removed meanwhile?); nothing was written",
            settings.account_name()
        ),
        "`withings-token accounts` lists the accounts there are",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealing::{IdentitySource, IdentitySources, Recipient};
    use secrecy::ExposeSecret;

    #[test]
    fn without_a_recipient_only_allow_plaintext_lets_a_rekey_start() {
        let refused = check_keys(&Keyring::default()).unwrap_err();
        assert_eq!(refused.exit_code(), 3);
        assert!(
            refused.action().contains("pass `--allow-plaintext`"),
            "{}",
            refused.action()
        );
        assert!(check_keys(&Keyring::new(Vec::new(), IdentitySources::default(), true)).is_ok());

        let identity = age::x25519::Identity::generate();
        let recipient = Recipient::parse(&identity.to_public().to_string()).unwrap();
        let key = secrecy::SecretString::from(identity.to_string().expose_secret().to_owned());
        let own = IdentitySources(vec![IdentitySource::Variable(key)]);
        assert!(check_keys(&Keyring::new(vec![recipient.clone()], own, false)).is_ok());
        // Not without a key of its own: it could not read back what it writes.
        assert!(check_keys(&Keyring::new(vec![recipient], IdentitySources::default(), false)).is_err());
    }
}
