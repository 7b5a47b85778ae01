//! Encryption at rest (see `sealing`): whether the store is encrypted or
//! plain, the recipients its writes are encrypted to (by fingerprint),
//! where this host's identities come from, whether they load, and whether
//! this host reads back what it writes. Plain tokens in Redis are a
//! warning (a Redis is often shared with other services, and backed up
//! elsewhere); a plain file is only said (mode 0600 keeps it this user's).

use std::os::unix::fs::PermissionsExt;

use super::{fail, failed, ok, plural, warn};
use crate::output::DoctorCheck;
use crate::sealing::{IDENTITY_ACTION, IdentitySource, Keyring, Recipient};
use crate::settings::{Settings, StoreLocation};
use crate::store::StoreState;

const NAME: &str = "encryption";

/// Where recipients are set, for the actions.
const SET_RECIPIENTS: &str = "set `encrypt_to` in the config file (or WITHINGS_TOKEN_RECIPIENTS, or `--encrypt-to`) to age recipients: `withings-token keygen` makes a key and prints its recipient (docs/encryption.md)";

/// The checks of the store `settings` names, whose state `read` is when
/// it could be read; else its bytes are looked at, and a sealed part
/// opened on its own, to say whether it is encrypted and why it does not
/// open.
pub(super) async fn encryption_checks(settings: &Settings, read: Option<&StoreState>) -> Vec<DoctorCheck> {
    let keyring = settings.keyring();
    let in_redis = matches!(settings.store, StoreLocation::Redis { .. });
    let (form, sealed) = match read {
        Some(state) => (Some(form_check(&keyring, state, in_redis)), state.sealed),
        None => match crate::store::sealed_part(settings).await {
            Some(armour) => {
                let place = crate::store::open(settings).map(|s| s.location()).unwrap_or_default();
                (Some(unread_check(&keyring, &armour, &place)), true)
            }
            // Plain, or not read at all: the `store` line says why.
            None => (None, false),
        },
    };
    let mut checks: Vec<DoctorCheck> = form.into_iter().collect();
    checks.extend(recipients_check(&keyring));
    checks.extend(identity_checks(&keyring, sealed));
    checks
}

/// Encrypted or plain, and what the next write does.
fn form_check(keyring: &Keyring, state: &StoreState, in_redis: bool) -> DoctorCheck {
    if state.sealed {
        return sealed_check(keyring);
    }
    let empty = state.generation == 0;
    let to = plural(keyring.recipients().len() as i64, "recipient");
    match (keyring.seals(), in_redis, empty) {
        (true, _, true) => ok(
            NAME,
            format!("nothing stored yet: its first write is encrypted to {to}"),
        ),
        (true, false, false) => ok(
            NAME,
            format!("plain for now: its next write (or `withings-token rekey`, at once) encrypts it to {to}"),
        ),
        (true, true, false) => warn(
            NAME,
            format!("the Redis value holds plain tokens until its next write, which encrypts them to {to}"),
            "run `withings-token rekey` to encrypt them now",
        ),
        (false, false, true) => ok(
            NAME,
            "nothing stored yet; it will be written plain: no recipient is configured (`encrypt_to`, docs/encryption.md)",
        ),
        (false, false, false) => ok(
            NAME,
            "plain: no recipient is configured (mode 0600 keeps the file this user's); `encrypt_to` encrypts it (docs/encryption.md)",
        ),
        (false, true, true) => warn(
            NAME,
            "nothing stored yet, and no recipient is configured: the tokens will be written plain to Redis, where whoever reads that Redis (other services sharing it, its backups) reads them",
            SET_RECIPIENTS,
        ),
        (false, true, false) => warn(
            NAME,
            "plain tokens in Redis: whoever reads that Redis (other services sharing it, its backups) reads them",
            format!("{SET_RECIPIENTS}; then run `withings-token rekey`"),
        ),
    }
}

/// An encrypted store, and whether its next write stays encrypted.
fn sealed_check(keyring: &Keyring) -> DoctorCheck {
    const SEALED: &str =
        "encrypted (age): the tokens and the consent state; generation, fence and copy records stay in clear";
    if keyring.seals() {
        return ok(NAME, SEALED);
    }
    if keyring.allows_plaintext() {
        return warn(
            NAME,
            "encrypted, and no recipient is configured: with --allow-plaintext its next write stores it plain",
            format!("to keep it encrypted, {SET_RECIPIENTS}"),
        );
    }
    // The refusal every write meets: its action names this host's recipient.
    match keyring.check_write(true, "the token store") {
        Err(e) => fail(
            NAME,
            "encrypted, and no recipient is configured: its next write is refused (nothing is sent to Withings)",
            e.action(),
        ),
        Ok(()) => ok(NAME, SEALED),
    }
}

/// A store that could not be read, whose sealed part is `armour`: why it
/// does not open here, or that it does (then something else is wrong).
fn unread_check(keyring: &Keyring, armour: &str, place: &str) -> DoctorCheck {
    match keyring.open(armour.as_bytes(), "token store", place) {
        Err(e) => failed(NAME, &e),
        Ok(_) => ok(
            NAME,
            "encrypted (age), and this host's identity opens it (the `store` line says what else is wrong)",
        ),
    }
}

/// The recipients by fingerprint, and whether one is this host's.
fn recipients_check(keyring: &Keyring) -> Option<DoctorCheck> {
    const NAME: &str = "recipients";
    if !keyring.seals() {
        return None;
    }
    let recipients = keyring.recipients();
    let listed: Vec<String> = recipients.iter().map(Recipient::fingerprint).collect();
    let listed = format!(
        "{}: {}",
        plural(recipients.len() as i64, "recipient"),
        listed.join(", ")
    );
    // Without identities (or with some that do not load) the identity
    // lines say what is wrong.
    let identities = match keyring.identities() {
        Ok(identities) if !keyring.sources().is_empty() => identities,
        _ => return Some(ok(NAME, listed)),
    };
    let own: Vec<String> = identities.iter().map(|i| i.to_public().to_string()).collect();
    let check = match recipients.iter().find(|r| own.iter().any(|o| o == r.as_str())) {
        Some(mine) => ok(
            NAME,
            format!(
                "{listed}; this host reads back what it writes (it holds the identity of {})",
                mine.fingerprint()
            ),
        ),
        None => fail(
            NAME,
            format!(
                "{listed}; none is this host's (its identities come from {}): it could not read back what it writes, so its writes are refused",
                keyring.sources().describe()
            ),
            format!(
                "add this host's recipient to `encrypt_to` (WITHINGS_TOKEN_RECIPIENTS, `--encrypt-to`): {}",
                own.first().map(String::as_str).unwrap_or_default()
            ),
        ),
    };
    Some(check)
}

/// One line per source of this host's identities: whether it loads, its
/// keys by fingerprint, a file's mode. With none: a failure when the store
/// is encrypted, a warning when it is about to be.
fn identity_checks(keyring: &Keyring, sealed: bool) -> Vec<DoctorCheck> {
    const NAME: &str = "identity";
    let needed = sealed || keyring.seals();
    let sources = &keyring.sources().0;
    if sources.is_empty() {
        return match (sealed, keyring.seals()) {
            (true, _) => vec![fail(
                NAME,
                "none configured: the encrypted store cannot be opened on this host",
                IDENTITY_ACTION,
            )],
            (false, true) => vec![warn(
                NAME,
                "none configured: once the store is encrypted, this host cannot read it",
                IDENTITY_ACTION,
            )],
            (false, false) => Vec::new(),
        };
    }
    sources.iter().map(|source| identity_check(source, needed)).collect()
}

fn identity_check(source: &IdentitySource, needed: bool) -> DoctorCheck {
    const NAME: &str = "identity";
    match source.load() {
        Ok(identities) => {
            let keys: Vec<String> = identities
                .iter()
                .filter_map(|i| Recipient::parse(&i.to_public().to_string()).ok())
                .map(|r| r.fingerprint())
                .collect();
            let mode = source
                .path()
                .and_then(|path| std::fs::metadata(path).ok())
                .map(|meta| format!(", file mode {:04o}", meta.permissions().mode() & 0o777))
                .unwrap_or_default();
            let counted = plural(keys.len() as i64, "key");
            ok(
                NAME,
                format!("{}: {counted} ({}){mode}", source.describe(), keys.join(", ")),
            )
        }
        Err((message, action)) if needed => fail(NAME, message, action),
        Err((message, action)) => warn(NAME, format!("{message} (unused while nothing is encrypted)"), action),
    }
}

#[cfg(test)]
mod tests;
