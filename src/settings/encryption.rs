//! Encryption at rest (see `sealing`): the recipients a store is sealed to
//! (`--encrypt-to`, WITHINGS_TOKEN_RECIPIENTS, `encrypt_to`), where this
//! host's identities come from, and `--allow-plaintext`.

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::SecretString;

use super::{Lookup, Overrides};
use crate::error::{Error, Result};
use crate::sealing::{IdentitySources, Keyring, Recipient};

/// The keyring the flags, the variables and the config file describe.
/// Recipients are checked now (a typo is a CONFIGURATION_ERROR before
/// anything runs); identities are read when something sealed is opened.
pub(super) fn keyring(
    given: &Overrides,
    vars: &Lookup,
    process: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<Keyring>> {
    let (texts, origin) = if given.encrypt_to.is_empty() {
        let texts = vars
            .get("WITHINGS_TOKEN_RECIPIENTS")
            .map(|t| recipient_words(&t))
            .unwrap_or_default();
        (texts, "WITHINGS_TOKEN_RECIPIENTS (or `encrypt_to`)")
    } else {
        let texts = given.encrypt_to.iter().flat_map(|t| recipient_words(t)).collect();
        (texts, "--encrypt-to")
    };
    let mut recipients: Vec<Recipient> = Vec::new();
    for (index, text) in texts.iter().enumerate() {
        let recipient = Recipient::parse(text).map_err(|why| {
            Error::config(
                format!("recipient {} of {origin} is refused: {why}", index + 1),
                "give age X25519 recipients (age1…), separated by commas or blanks; `withings-token keygen` prints one",
            )
        })?;
        if !recipients.contains(&recipient) {
            recipients.push(recipient);
        }
    }
    let set = |v: &String| !v.trim().is_empty();
    let identity = process("WITHINGS_TOKEN_IDENTITY").filter(set);
    // Scrubbed from any text a server or a tool echoes, as every secret.
    let keys = identity.iter().flat_map(|text| text.lines()).map(str::trim);
    for (index, key) in keys.filter(|line| line.starts_with("AGE-SECRET-KEY-")).enumerate() {
        crate::redact::remember_secret(&format!("WITHINGS_TOKEN_IDENTITY key {index}"), key);
    }
    let sources = IdentitySources::of(
        &given.identities,
        identity.map(SecretString::from),
        vars.get("WITHINGS_TOKEN_IDENTITY_FILE")
            .map(|p| PathBuf::from(p.trim())),
        process("CREDENTIALS_DIRECTORY").filter(set).map(PathBuf::from),
        default_identity_path(process),
    );
    let keyring = Keyring::new(recipients, sources, given.allow_plaintext);
    Ok(Arc::new(if given.encrypt_to.is_empty() {
        keyring
    } else {
        keyring.given_by_flag()
    }))
}

/// Recipients are separated by commas or blanks (age's own files: one a line).
fn recipient_words(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Where `keygen` writes by default, and the identity read when no other
/// is given: beside the config file.
pub fn default_identity_path(process: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    crate::config::default_path(process).map(|config| config.with_file_name("identity.txt"))
}
