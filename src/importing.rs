//! `import`'s work: an export (`withings-token export`: the four env
//! lines, plain, or sealed to this host's keys by `export --encrypt-to`)
//! read back as a token set ([`read_export`]) and put into the store under
//! its lock ([`import`]) by the rule the environment's seed follows
//! (`tokens::seed_in_use`): it fills an empty store, and replaces the
//! store's set only when dated newer by WITHINGS_TOKEN_LAST_REFRESHED; a
//! set the store already rotated away never comes back. Nothing is sent to
//! Withings.

use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::sealing::Keyring;
use crate::settings::Settings;
use crate::store::{StoreLease, StoreState, TokenStore};
use crate::tokens::{TOKEN_KEYS, TokenSet, VariablesProblem, now, rfc3339, set_of_variables};

/// An export is four lines, a few KiB sealed; anything this large is not one.
const MAX_EXPORT_BYTES: u64 = 64 * 1024;

/// What the import did.
#[derive(Debug)]
pub enum Imported {
    /// The store held no set: it holds this one now.
    IntoEmpty,
    /// The export's set was newer: it replaced the store's (now the
    /// previous refresh token).
    Replaced(TokenSet),
    /// The store holds this very set already: nothing was written.
    AlreadyHeld,
}

/// Where the export comes from, and its bytes: `path`, or `stdin` for
/// none or `-`.
pub fn read_source(path: Option<&Path>, stdin: impl Read) -> Result<(Zeroizing<Vec<u8>>, String)> {
    let Some(path) = path.filter(|p| p.as_os_str() != "-") else {
        let mut bytes = Zeroizing::new(Vec::new());
        stdin
            .take(MAX_EXPORT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| unreadable("stdin", &e.to_string()))?;
        if bytes.len() as u64 > MAX_EXPORT_BYTES {
            return Err(unreadable("stdin", "it is larger than an export (64 KiB)"));
        }
        return Ok((bytes, "stdin".to_owned()));
    };
    let place = path.display().to_string();
    let bytes = crate::fsutil::read_regular_file(path, MAX_EXPORT_BYTES).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_owned(),
            _ => e.to_string(),
        };
        unreadable(&place, &why)
    })?;
    Ok((Zeroizing::new(bytes), place))
}

fn unreadable(place: &str, why: &str) -> Error {
    Error::config(
        format!("cannot read the export {place}: {why}; nothing was imported"),
        "give the file `withings-token export` wrote: `withings-token import FILE`, or on stdin",
    )
}

/// The set in `bytes`, an export read from `place`; sealed, it is opened
/// with `keyring`'s identities (none that opens it: exit 3 saying which
/// are missing).
pub fn read_export(bytes: &[u8], keyring: &Keyring, place: &str) -> Result<TokenSet> {
    let opened;
    let plain = if crate::sealing::is_sealed(bytes) {
        opened = keyring.open(bytes, "the export", place).map_err(|e| match e {
            // An export is no store: nothing to move aside or seed again.
            Error::CorruptStore { reason, .. } => unreadable(place, &reason),
            e => e,
        })?;
        opened.as_slice()
    } else {
        bytes
    };
    let not_one = |why: String| {
        Error::config(
            format!("the export {place} {why}; nothing was imported"),
            "give the file `withings-token export` wrote (the four WITHINGS_* lines, or their encryption by `export --encrypt-to`)",
        )
    };
    let text = std::str::from_utf8(plain).map_err(|_| not_one("is not text".to_owned()))?;
    let lines =
        crate::envfile::EnvFile::parse(text, &TOKEN_KEYS).map_err(|e| not_one(format!("cannot be read: {e}")))?;
    set_of_variables(|name| lines.get(name)).map_err(|problem| {
        not_one(match problem {
            VariablesProblem::ControlCharacter(name) => format!("holds a control character inside {name}"),
            VariablesProblem::NoRefreshToken => format!("has no {} (missing or blank)", TOKEN_KEYS[1]),
            VariablesProblem::NotATime(name) => format!("has a {name} that is not an RFC 3339 time"),
        })
    })
}

/// Puts `set` into the store under its lock, decided on the store as it is
/// there; returns what was done and the store after.
pub async fn import(settings: &Settings, store: &dyn TokenStore, set: TokenSet) -> Result<(Imported, StoreState)> {
    let lock = store.lock(settings.lock_timeout).await?;
    let imported = import_under(settings, store, lock.as_ref(), set).await;
    lock.release().await;
    imported
}

async fn import_under(
    settings: &Settings,
    store: &dyn TokenStore,
    lock: &dyn StoreLease,
    set: TokenSet,
) -> Result<(Imported, StoreState)> {
    let state = lock.load().await?;
    // A set a previous run could not save is newer than the stored one:
    // taken in first, so the export is judged against it, and never
    // outdated by the import's own save (which would drop it).
    crate::rotation::report_interrupted(lock, &state).await;
    let state = crate::rotation::adopt_unsaved(settings, lock, &store.location(), state).await?;
    if let Some(stored) = &state.tokens
        && stored.refresh_token_equals(&set)
    {
        return Ok((Imported::AlreadyHeld, state));
    }
    refuse_older(&state, &set, &store.location())?;
    crate::consent::refuse_another_accounts_token(
        settings,
        &set,
        "in the export",
        "import it into the account whose export it is (`--account NAME`)",
    )
    .await?;
    let imported = match &state.tokens {
        Some(replaced) => Imported::Replaced(replaced.clone()),
        None => Imported::IntoEmpty,
    };
    let next = crate::rotation::with_outside_set(&state, set);
    let generation = lock.save(state.generation, &next).await?;
    let saved = StoreState {
        generation,
        tokens_generation: generation,
        ..next
    };
    Ok((imported, saved))
}

/// The seed's rule: an export replaces the store's set only when it is
/// dated newer, and never with a token the store rotated away.
fn refuse_older(state: &StoreState, set: &TokenSet, location: &str) -> Result<()> {
    if crate::rotation::rotated_away(state, set) {
        return Err(Error::config(
            format!(
                "the export holds the refresh token the token store {location} already rotated away (its previous one); the store was not changed"
            ),
            "the store's set is newer: keep it (`withings-token status` shows it); to restore an older set anyway, move the store aside first",
        ));
    }
    let Some(stored) = &state.tokens else {
        return Ok(());
    };
    if crate::tokens::seed_in_use(Some(stored), set, now()) {
        return Ok(());
    }
    Err(Error::config(
        format!(
            "the token store {location} holds a set last refreshed {}, and the export's was last refreshed {}: the store's is not older, so it stays; the store was not changed",
            when(stored),
            when(set)
        ),
        "keep the store's set (`withings-token status` shows it); to restore the export anyway, move the store aside first, then import it",
    ))
}

/// When a set was last refreshed, as an error says it.
pub fn when(set: &TokenSet) -> String {
    set.last_refreshed
        .map(rfc3339)
        .unwrap_or_else(|| "at an unknown time".to_owned())
}

#[cfg(test)]
mod tests {
    use secrecy::{ExposeSecret, SecretString};

    use super::*;
    use crate::sealing::{IdentitySource, IdentitySources, Recipient};
    use crate::store::PreviousToken;

    const EXPORT: &str = "WITHINGS_ACCESS_TOKEN=acc-1\nWITHINGS_REFRESH_TOKEN=ref-1\nWITHINGS_TOKEN_EXPIRES_AT=2026-01-01T03:00:00Z\nWITHINGS_TOKEN_LAST_REFRESHED=2026-01-01T00:00:00Z\n";

    fn time(text: &str) -> chrono::DateTime<chrono::Utc> {
        text.parse().unwrap()
    }

    fn set(refresh: &str, last_refreshed: Option<&str>) -> TokenSet {
        TokenSet {
            access_token: None,
            refresh_token: SecretString::from(refresh.to_owned()),
            expires_at: None,
            last_refreshed: last_refreshed.map(time),
            userid: None,
            scope: None,
        }
    }

    fn holding(tokens: Option<TokenSet>, previous: Option<&str>) -> StoreState {
        StoreState {
            generation: 4,
            tokens,
            previous: previous.map(|p| PreviousToken {
                refresh_token: SecretString::from(p.to_owned()),
                rotated_at: time("2026-01-01T00:00:00Z"),
            }),
            ..StoreState::default()
        }
    }

    #[test]
    fn an_export_reads_back_as_its_set_plain_or_sealed() {
        let plain = read_export(EXPORT.as_bytes(), &Keyring::default(), "b.env").unwrap();
        assert_eq!(plain.refresh_token.expose_secret(), "ref-1");
        assert_eq!(plain.access_token.as_ref().map(|t| t.expose_secret()), Some("acc-1"));
        assert_eq!(plain.expires_at, Some(time("2026-01-01T03:00:00Z")));
        assert_eq!(plain.last_refreshed, Some(time("2026-01-01T00:00:00Z")));

        let identity = age::x25519::Identity::generate();
        let recipient = Recipient::parse(&identity.to_public().to_string()).unwrap();
        let sealed = crate::sealing::seal_to(&[recipient], EXPORT.as_bytes()).unwrap();
        let key = SecretString::from(identity.to_string().expose_secret().to_owned());
        let keyring = Keyring::new(Vec::new(), IdentitySources(vec![IdentitySource::Variable(key)]), false);
        let opened = read_export(sealed.as_bytes(), &keyring, "b.age").unwrap();
        assert!(opened.refresh_token_equals(&plain));
        assert_eq!(opened.last_refreshed, plain.last_refreshed);

        let no_key = read_export(sealed.as_bytes(), &Keyring::default(), "b.age").unwrap_err();
        assert_eq!(no_key.exit_code(), 3);
        assert!(
            no_key
                .to_string()
                .starts_with("the export b.age is encrypted, and no identity"),
            "{no_key}"
        );
    }

    #[test]
    fn what_is_not_an_export_is_refused_by_name_never_by_value() {
        for (text, why) in [
            (
                "WITHINGS_ACCESS_TOKEN=secret-acc\n",
                "has no WITHINGS_REFRESH_TOKEN (missing or blank)",
            ),
            (
                "WITHINGS_REFRESH_TOKEN=r\nWITHINGS_TOKEN_LAST_REFRESHED=secret-when\n",
                "has a WITHINGS_TOKEN_LAST_REFRESHED that is not an RFC 3339 time",
            ),
            (
                "WITHINGS_REFRESH_TOKEN=\"secret\\tx\"\n",
                "holds a control character inside WITHINGS_REFRESH_TOKEN",
            ),
        ] {
            let e = read_export(text.as_bytes(), &Keyring::default(), "x.env").unwrap_err();
            assert_eq!(e.exit_code(), 3, "{text}");
            assert_eq!(e.to_string(), format!("the export x.env {why}; nothing was imported"));
            assert!(!e.to_string().contains("secret"), "{e}");
        }
        let binary = read_export(b"\xff\xfe", &Keyring::default(), "x.env").unwrap_err();
        assert_eq!(binary.to_string(), "the export x.env is not text; nothing was imported");
    }

    #[test]
    fn an_export_fills_an_empty_store_and_replaces_only_an_older_set() {
        let export = set("new", Some("2026-01-01T00:00:00Z"));
        assert!(refuse_older(&holding(None, None), &export, "s").is_ok());
        let older = holding(Some(set("old", Some("2025-12-31T00:00:00Z"))), None);
        assert!(refuse_older(&older, &export, "s").is_ok());

        for stored in [Some("2026-01-01T00:00:00Z"), Some("2026-01-02T00:00:00Z"), None] {
            let newer = holding(Some(set("old", stored)), None);
            let e = refuse_older(&newer, &export, "s").unwrap_err();
            assert_eq!(e.exit_code(), 3);
            let stored = stored.map_or("at an unknown time".to_owned(), str::to_owned);
            assert_eq!(
                e.to_string(),
                format!(
                    "the token store s holds a set last refreshed {stored}, and the export's was last refreshed 2026-01-01T00:00:00Z: the store's is not older, so it stays; the store was not changed"
                )
            );
        }
        // Of unknown age, an export never beats a stored set.
        let undated = set("new", None);
        assert!(refuse_older(&older, &undated, "s").is_err());
        // A token the store rotated away never comes back, however dated.
        let rotated = holding(Some(set("old", Some("2025-12-31T00:00:00Z"))), Some("new"));
        let e = refuse_older(&rotated, &export, "s").unwrap_err();
        assert!(e.to_string().contains("already rotated away"), "{e}");
    }

    #[test]
    fn stdin_is_read_for_none_or_a_dash_up_to_the_size_of_an_export() {
        for path in [None, Some(Path::new("-"))] {
            let (bytes, place) = read_source(path, std::io::Cursor::new(EXPORT)).unwrap();
            assert_eq!((&bytes[..], place.as_str()), (EXPORT.as_bytes(), "stdin"));
        }
        let huge = vec![b'a'; MAX_EXPORT_BYTES as usize + 1];
        let e = read_source(None, std::io::Cursor::new(huge)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read the export stdin: it is larger than an export (64 KiB); nothing was imported"
        );
        let missing = read_source(Some(Path::new("/nonexistent/b.env")), std::io::empty()).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "cannot read the export /nonexistent/b.env: no such file; nothing was imported"
        );
    }
}
