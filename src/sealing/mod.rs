//! Encryption at rest: what the stores write sealed, in age's format.
//!
//! A [`Keyring`] holds the recipients a store is sealed to (`encrypt_to`,
//! `--encrypt-to`, WITHINGS_TOKEN_RECIPIENTS: age X25519 public keys) and
//! where this host's identities (the private keys) come from, read only
//! when something sealed is opened. Sealed text is age's ASCII armour, so
//! `age -d -i key.txt` (or `rage`) opens it by hand: the stores keep their
//! clear metadata beside it (generation, fence, copy records) and put the
//! tokens, the consent state and the outbox under the seal.
//!
//! The rules every store follows (see `store`):
//! - a store sealed once is never written plain unless `--allow-plaintext`;
//! - a store is never sealed to keys none of this host's identities opens,
//!   when it has any (a set it could not read back would be lost);
//! - both are checked before anything is sent to Withings, as well as on
//!   every write.

pub mod identities;

use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

pub use identities::{IdentitySource, IdentitySources};

/// The first line of age's armour: what tells sealed text from JSON.
pub const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";

/// `age1` and 58 characters of bech32: every X25519 recipient's length;
/// plugin and post-quantum recipients are longer.
const X25519_RECIPIENT_LEN: usize = 62;

/// An age X25519 public key (`age1…`), as configured.
#[derive(Clone)]
pub struct Recipient {
    key: age::x25519::Recipient,
    text: String,
}

impl Recipient {
    /// `text` as a recipient; why not, without echoing it (a private key
    /// pasted by mistake must not reach a log).
    pub fn parse(text: &str) -> std::result::Result<Recipient, String> {
        let text = text.trim();
        // X25519 first: its bech32 data is random, so a prefix alone
        // (`age1pq…`) cannot tell another kind of recipient.
        if let Ok(key) = text.parse::<age::x25519::Recipient>() {
            return Ok(Recipient {
                key,
                text: text.to_owned(),
            });
        }
        Err(if text.starts_with("AGE-SECRET-KEY-") {
            "it is an identity (a private key: AGE-SECRET-KEY-1…), not a recipient; give its public key, which `withings-token keygen` printed (or `age-keygen -y FILE` prints)".to_owned()
        } else if text.starts_with("ssh-") || text.starts_with("age1") && text.len() != X25519_RECIPIENT_LEN {
            "only age X25519 recipients (age1…) are supported, not SSH, plugin or post-quantum ones".to_owned()
        } else {
            "it is not an age X25519 recipient (age1 followed by 58 letters and digits)".to_owned()
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A short name for the key, as `doctor` shows it: `age1` and the
    /// last 8 characters, with the SHA-256 of the whole.
    pub fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.text.as_bytes());
        let hex: String = digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
        let tail = &self.text[self.text.len().saturating_sub(8)..];
        format!("age1…{tail} (SHA256:{hex})")
    }
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Recipient {
    fn eq(&self, other: &Recipient) -> bool {
        self.text == other.text
    }
}

/// The identities, once read from their sources.
type Loaded = Arc<Vec<age::x25519::Identity>>;

/// The recipients a store is sealed to, and the identities it is opened with.
pub struct Keyring {
    recipients: Vec<Recipient>,
    sources: IdentitySources,
    allow_plaintext: bool,
    /// The recipients came from `--encrypt-to` on this command line (not a
    /// variable or the config file): `export` then seals what it prints.
    from_flag: bool,
    loaded: OnceLock<Loaded>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("recipients", &self.recipients)
            .field("sources", &self.sources)
            .field("allow_plaintext", &self.allow_plaintext)
            .field("from_flag", &self.from_flag)
            .finish()
    }
}

impl Default for Keyring {
    fn default() -> Keyring {
        Keyring::new(Vec::new(), IdentitySources::default(), false)
    }
}

impl Keyring {
    pub fn new(recipients: Vec<Recipient>, sources: IdentitySources, allow_plaintext: bool) -> Keyring {
        Keyring {
            recipients,
            sources,
            allow_plaintext,
            from_flag: false,
            loaded: OnceLock::new(),
        }
    }

    /// This keyring, its recipients given by `--encrypt-to`.
    pub fn given_by_flag(mut self) -> Keyring {
        self.from_flag = true;
        self
    }

    /// Whether the recipients came from `--encrypt-to` on this command line.
    pub fn recipients_from_flag(&self) -> bool {
        self.from_flag && self.seals()
    }

    /// No recipient and no identity: stores are written plain, and a
    /// sealed one cannot be opened.
    pub fn none() -> Arc<Keyring> {
        Arc::new(Keyring::default())
    }

    /// Whether writes are sealed.
    pub fn seals(&self) -> bool {
        !self.recipients.is_empty()
    }

    pub fn recipients(&self) -> &[Recipient] {
        &self.recipients
    }

    pub fn sources(&self) -> &IdentitySources {
        &self.sources
    }

    pub fn allows_plaintext(&self) -> bool {
        self.allow_plaintext
    }

    /// The identities, read from their sources on first success (a
    /// failure is not kept: a `serve` whose key file is fixed with `chmod`
    /// reads it at the next use); an error names the source and what to do
    /// (message, action).
    pub fn identities(&self) -> std::result::Result<Loaded, (String, String)> {
        if let Some(loaded) = self.loaded.get() {
            return Ok(Arc::clone(loaded));
        }
        let loaded = Arc::new(self.sources.load()?);
        Ok(Arc::clone(self.loaded.get_or_init(|| loaded)))
    }

    /// `plain` sealed to the recipients, as age's ASCII armour.
    pub fn seal(&self, plain: &[u8]) -> Result<String> {
        seal_to(&self.recipients, plain)
    }

    /// The plain bytes of `sealed` (age, armoured or binary), opened with
    /// this host's identities; `kind` and `place` name what was read
    /// (`token store`, a path). No identity, or none that opens it: exit 3
    /// saying what is missing. A damaged seal: the place is corrupt.
    pub fn open(&self, sealed: &[u8], kind: &str, place: &str) -> Result<Zeroizing<Vec<u8>>> {
        let named = format!("{kind} {place}");
        let identities = self.identities().map_err(|(message, action)| {
            Error::config(format!("{named} is encrypted, and {message}; nothing was sent"), action)
        })?;
        if identities.is_empty() {
            return Err(Error::config(
                format!(
                    "{named} is encrypted, and no identity (age private key) is configured to open it; nothing was sent"
                ),
                IDENTITY_ACTION,
            ));
        }
        open_with(&identities, sealed).map_err(|failure| match failure {
            OpenFailure::NoMatchingKey => Error::config(
                format!(
                    "{named} is encrypted to other keys: no key from {} opens it; nothing was sent",
                    self.sources.describe()
                ),
                "give the identity it was encrypted to (`--identity FILE`, WITHINGS_TOKEN_IDENTITY, WITHINGS_TOKEN_IDENTITY_FILE or $CREDENTIALS_DIRECTORY/withings-token.identity); an identity file may hold several keys, one per line",
            ),
            OpenFailure::Damaged(why) => Error::CorruptStore {
                place: place.to_owned(),
                reason: format!("its encrypted part cannot be decrypted ({why})"),
            },
        })
    }

    /// Whether a store that `was_sealed` may be written now (see the
    /// module's rules); `place` names it. Called before anything is sent
    /// to Withings, and by every write.
    pub fn check_write(&self, was_sealed: bool, place: &str) -> Result<()> {
        self.check_write_then(was_sealed, place, STORE_UNCHANGED)
    }

    /// [`Keyring::check_write`] for an event record: nothing goes to
    /// Withings for one, so its refusal says what it did not change.
    pub fn check_record_write(&self, was_sealed: bool, place: &str) -> Result<()> {
        self.check_write_then(was_sealed, place, RECORD_UNCHANGED)
    }

    /// The rules, `unchanged` saying what the refusal left alone.
    fn check_write_then(&self, was_sealed: bool, place: &str, unchanged: &str) -> Result<()> {
        if !self.seals() {
            if was_sealed && !self.allow_plaintext {
                return Err(Error::config(
                    format!(
                        "{place} is encrypted, and no recipient is configured to encrypt its next write to; {unchanged}"
                    ),
                    self.recipient_action(),
                ));
            }
            return Ok(());
        }
        self.check_opens_own_writes(place, unchanged)
    }

    /// A host must hold a key that opens what it writes: one with none
    /// would seal the store on its first write and fail every run after.
    fn check_opens_own_writes(&self, place: &str, unchanged: &str) -> Result<()> {
        if self.sources.is_empty() {
            return Err(Error::config(
                format!(
                    "{place} is to be encrypted, and no identity (age private key) is configured on this host: it could not read back what it writes; {unchanged}"
                ),
                IDENTITY_ACTION,
            ));
        }
        let identities = self.identities().map_err(|(message, action)| {
            Error::config(
                format!("{place} is to be encrypted, and {message}; {unchanged}"),
                action,
            )
        })?;
        let own: Vec<String> = identities.iter().map(|i| i.to_public().to_string()).collect();
        if self.recipients.iter().any(|r| own.iter().any(|o| o == r.as_str())) {
            return Ok(());
        }
        Err(Error::config(
            format!(
                "{place} would be encrypted only to recipients this host holds no key of ({} of them; its keys come from {}): it could not read back what it writes; {unchanged}",
                self.recipients.len(),
                self.sources.describe()
            ),
            match own.first() {
                Some(mine) => format!(
                    "add this host's recipient to `encrypt_to` (WITHINGS_TOKEN_RECIPIENTS, `--encrypt-to`): {mine}"
                ),
                None => IDENTITY_ACTION.to_owned(),
            },
        ))
    }

    /// What to set to keep a sealed store sealed: this host's own
    /// recipient when it has an identity.
    fn recipient_action(&self) -> String {
        let mine = self
            .identities()
            .ok()
            .and_then(|ids| ids.first().map(|i| i.to_public().to_string()));
        let to = match mine {
            Some(recipient) => format!("set WITHINGS_TOKEN_RECIPIENTS={recipient} (this host's identity's recipient)"),
            None => "set WITHINGS_TOKEN_RECIPIENTS to the age recipients (age1…) it should be encrypted to".to_owned(),
        };
        format!(
            "{to}, or `encrypt_to` in the config file, or pass `--encrypt-to`; to write it plain on purpose, pass `--allow-plaintext`"
        )
    }
}

/// What a refused write of a store left alone.
const STORE_UNCHANGED: &str = "nothing was sent and it was not changed";
/// What a refused write of an event record left alone.
const RECORD_UNCHANGED: &str = "it was not changed (the tokens are not affected)";

pub const IDENTITY_ACTION: &str = "give this host its age identity: `--identity FILE`, WITHINGS_TOKEN_IDENTITY (the key itself), WITHINGS_TOKEN_IDENTITY_FILE, or a systemd credential named withings-token.identity; `withings-token keygen` makes one";

/// `plain` sealed to `recipients`, armoured.
pub fn seal_to(recipients: &[Recipient], plain: &[u8]) -> Result<String> {
    let keys = recipients.iter().map(|r| &r.key as &dyn age::Recipient);
    let encryptor = age::Encryptor::with_recipients(keys)
        .map_err(|_| Error::internal(anyhow::anyhow!("no recipient to encrypt to")))?;
    let written = (|| -> std::io::Result<Vec<u8>> {
        let armor = ArmoredWriter::wrap_output(Vec::with_capacity(plain.len() * 2 + 512), Format::AsciiArmor)?;
        let mut writer = encryptor.wrap_output(armor)?;
        writer.write_all(plain)?;
        writer.finish()?.finish()
    })()
    .map_err(|e| Error::internal(anyhow::anyhow!("cannot encrypt: {e}")))?;
    String::from_utf8(written).map_err(|_| Error::internal(anyhow::anyhow!("age's armour is not text")))
}

/// Why sealed bytes did not open.
#[derive(Debug, PartialEq, Eq)]
pub enum OpenFailure {
    /// None of the identities is one it was sealed to.
    NoMatchingKey,
    /// Not age, cut short, or altered.
    Damaged(String),
}

/// `sealed` opened with `identities`. age's own error texts are not used:
/// they are localised at first use, which costs a start-up.
pub fn open_with(
    identities: &[age::x25519::Identity],
    sealed: &[u8],
) -> std::result::Result<Zeroizing<Vec<u8>>, OpenFailure> {
    let reader = ArmoredReader::new(sealed);
    let decryptor = age::Decryptor::new_buffered(std::io::BufReader::new(reader)).map_err(damaged)?;
    let keys = identities.iter().map(|i| i as &dyn age::Identity);
    let mut stream = decryptor.decrypt(keys).map_err(damaged)?;
    let mut plain = Zeroizing::new(Vec::with_capacity(sealed.len()));
    stream
        .read_to_end(&mut plain)
        .map_err(|e| OpenFailure::Damaged(format!("the payload does not decrypt: {}", e.kind())))?;
    Ok(plain)
}

fn damaged(e: age::DecryptError) -> OpenFailure {
    use age::DecryptError as E;
    OpenFailure::Damaged(match e {
        E::NoMatchingKeys => return OpenFailure::NoMatchingKey,
        E::InvalidHeader | E::UnknownFormat => "its age header is not valid".to_owned(),
        E::InvalidMac => "its age header was altered (MAC mismatch)".to_owned(),
        E::DecryptionFailed | E::KeyDecryptionFailed => "it was altered".to_owned(),
        E::ExcessiveWork { .. } => "it is passphrase-encrypted, which is not supported".to_owned(),
        E::Io(io) => format!("it cannot be read: {}", io.kind()),
    })
}

/// Whether `bytes` look sealed (age's armour), not JSON.
pub fn is_sealed(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes[start..].starts_with(ARMOR_BEGIN.as_bytes())
}

#[cfg(test)]
mod tests;
