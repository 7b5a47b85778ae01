//! Where this host's age identities (private keys) come from: `--identity
//! FILE`, WITHINGS_TOKEN_IDENTITY (the key itself, for a platform's
//! variables), WITHINGS_TOKEN_IDENTITY_FILE (or `identity_file` in the
//! config file), a systemd credential
//! (`$CREDENTIALS_DIRECTORY/withings-token.identity`, so that
//! `LoadCredentialEncrypted=` works), and, when none of those is given, the
//! file `keygen` writes by default. Every source given is read: a store is
//! opened by whichever key opens it, which is how `rekey` reads with the
//! old key and writes to the new.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// The name of the systemd credential read from `$CREDENTIALS_DIRECTORY`.
pub const CREDENTIAL_NAME: &str = "withings-token.identity";

/// An identity file is a few lines; anything this large is not one.
const MAX_IDENTITY_BYTES: u64 = 64 * 1024;

/// One place identities are read from.
#[derive(Clone)]
pub enum IdentitySource {
    /// `--identity FILE`.
    Flag(PathBuf),
    /// WITHINGS_TOKEN_IDENTITY: the key (or keys, one per line) itself.
    Variable(SecretString),
    /// WITHINGS_TOKEN_IDENTITY_FILE, or `identity_file` in the config file.
    VariableFile(PathBuf),
    /// `$CREDENTIALS_DIRECTORY/withings-token.identity`, when it exists.
    Credential(PathBuf),
    /// `keygen`'s default file, when nothing else is given and it exists.
    Default(PathBuf),
}

impl IdentitySource {
    /// How `doctor` and errors name it (never the key).
    pub fn describe(&self) -> String {
        match self {
            IdentitySource::Flag(path) => format!("--identity {}", path.display()),
            IdentitySource::Variable(_) => "WITHINGS_TOKEN_IDENTITY".to_owned(),
            IdentitySource::VariableFile(path) => format!("WITHINGS_TOKEN_IDENTITY_FILE {}", path.display()),
            IdentitySource::Credential(path) => format!("the systemd credential {}", path.display()),
            IdentitySource::Default(path) => format!("{} (keygen's default)", path.display()),
        }
    }

    /// The file it is read from, if it is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            IdentitySource::Flag(p)
            | IdentitySource::VariableFile(p)
            | IdentitySource::Credential(p)
            | IdentitySource::Default(p) => Some(p),
            IdentitySource::Variable(_) => None,
        }
    }

    /// The identities it holds; an error as (message, action).
    pub fn load(&self) -> Result<Vec<age::x25519::Identity>, (String, String)> {
        match self {
            IdentitySource::Variable(text) => parse_identities(text.expose_secret(), "WITHINGS_TOKEN_IDENTITY"),
            _ => {
                let path = self.path().unwrap_or(Path::new(""));
                // systemd guards its credentials itself: a service's is
                // mode 0400 with an ACL for `User=`, which shows as 0440.
                let guarded = matches!(self, IdentitySource::Credential(_));
                let text = read_identity_file(path, &self.describe(), guarded)?;
                parse_identities(&text, &self.describe())
            }
        }
    }
}

impl std::fmt::Debug for IdentitySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Every source of this host's identities, in the order they are tried.
#[derive(Debug, Clone, Default)]
pub struct IdentitySources(pub Vec<IdentitySource>);

impl IdentitySources {
    /// The sources the settings give: `flags` (`--identity`, any number),
    /// the key in `variable`, the file in `variable_file`, the systemd
    /// credential in `credentials_dir` when present; else `default` when
    /// present.
    pub fn of(
        flags: &[PathBuf],
        variable: Option<SecretString>,
        variable_file: Option<PathBuf>,
        credentials_dir: Option<PathBuf>,
        default: Option<PathBuf>,
    ) -> IdentitySources {
        let mut sources: Vec<IdentitySource> = flags.iter().cloned().map(IdentitySource::Flag).collect();
        sources.extend(variable.map(IdentitySource::Variable));
        sources.extend(variable_file.map(IdentitySource::VariableFile));
        let credential = credentials_dir
            .map(|dir| dir.join(CREDENTIAL_NAME))
            .filter(|path| path.exists());
        sources.extend(credential.map(IdentitySource::Credential));
        if sources.is_empty() {
            sources.extend(default.filter(|path| path.exists()).map(IdentitySource::Default));
        }
        IdentitySources(sources)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The sources, named for a message.
    pub fn describe(&self) -> String {
        if self.0.is_empty() {
            return "no source".to_owned();
        }
        self.0
            .iter()
            .map(IdentitySource::describe)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every identity of every source; the first source that fails stops it.
    pub fn load(&self) -> Result<Vec<age::x25519::Identity>, (String, String)> {
        let mut all = Vec::new();
        for source in &self.0 {
            all.extend(source.load()?);
        }
        Ok(all)
    }
}

/// An identity file's text, refused when others may read it (as ssh
/// refuses a private key) or when it is not a small regular file.
fn read_identity_file(path: &Path, named: &str, guarded: bool) -> Result<Zeroizing<String>, (String, String)> {
    let (bytes, meta) = crate::fsutil::read_regular_file_and_metadata(path, MAX_IDENTITY_BYTES).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_owned(),
            _ => e.to_string(),
        };
        (
            format!("the identity file of {named} cannot be read: {why}"),
            "point it at the file `withings-token keygen` (or `age-keygen`) wrote, readable by this user only"
                .to_owned(),
        )
    })?;
    let bytes = Zeroizing::new(bytes);
    if !guarded && !owned_by_this_user(&meta) {
        use std::os::unix::fs::MetadataExt;
        return Err((
            format!(
                "the identity file of {named} belongs to another user (uid {}), so it is not used",
                meta.uid()
            ),
            format!(
                "give this user its own copy, mode 600 (`install -m 600 {} ~/.config/withings-token/identity.txt`), or run as its owner",
                path.display()
            ),
        ));
    }
    if !guarded && crate::fsutil::readable_by_others(&meta) {
        use std::os::unix::fs::PermissionsExt;
        return Err((
            format!(
                "the identity file of {named} may be read by group or others (mode {:o}), so it is not used",
                meta.permissions().mode() & 0o777
            ),
            format!(
                "run `chmod 600 {}` (a private key is for its owner only)",
                path.display()
            ),
        ));
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err((
            format!("the identity file of {named} is not text"),
            "point it at an age identity file (AGE-SECRET-KEY-1… lines)".to_owned(),
        )),
    }
}

/// As ssh asks of a private key: this user's, or root's (whom no file
/// keeps out anyway).
fn owned_by_this_user(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let owner = meta.uid();
    owner == 0 || owner == rustix::process::getuid().as_raw()
}

/// The X25519 identities in `text`: one `AGE-SECRET-KEY-1…` per line,
/// blank lines and `#` comments skipped, as age's own files are.
pub fn parse_identities(text: &str, named: &str) -> Result<Vec<age::x25519::Identity>, (String, String)> {
    let mut identities = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let identity = line.parse::<age::x25519::Identity>().map_err(|_| {
            let what = if line.starts_with("AGE-PLUGIN-") || line.starts_with("-----BEGIN") {
                "a plugin or SSH identity, which is not supported"
            } else {
                "not an age X25519 identity (AGE-SECRET-KEY-1…)"
            };
            (
                format!("line {} of {named} is {what}", index + 1),
                "give age X25519 identities only, one per line (`withings-token keygen` makes one)".to_owned(),
            )
        })?;
        identities.push(identity);
    }
    if identities.is_empty() {
        return Err((
            format!("{named} holds no identity"),
            "give an age identity (AGE-SECRET-KEY-1…): `withings-token keygen` makes one".to_owned(),
        ));
    }
    Ok(identities)
}

/// A new identity: the text of its file (as `age-keygen` writes it: the
/// creation time and the public key as comments, then the key) and its
/// recipient.
pub fn generate_identity(now: chrono::DateTime<chrono::Utc>) -> (SecretString, String) {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let text = format!(
        "# created: {}\n# public key: {recipient}\n{}\n",
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        identity.to_string().expose_secret()
    );
    (SecretString::from(text), recipient)
}

/// Writes a new identity (see [`generate_identity`]) to `path`, never over
/// an existing file (it may hold the key a store is sealed to), mode 0600,
/// its directory made 0700 when missing; returns its recipient.
pub fn write_new_identity(path: &Path, now: chrono::DateTime<chrono::Utc>) -> crate::error::Result<String> {
    use crate::error::Error;
    let (text, recipient) = generate_identity(now);
    let shown = path.display();
    let unwritable = |e: std::io::Error| {
        Error::config(
            format!("cannot write the identity file {shown}: {e}"),
            "make its directory writable by this user, or choose another file: `withings-token keygen --output FILE`",
        )
    };
    crate::fsutil::create_private_dir(crate::fsutil::parent_dir(path)).map_err(unwritable)?;
    match crate::fsutil::write_new_atomically(path, text.expose_secret().as_bytes()) {
        Ok(()) => Ok(recipient),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::config(
            format!(
                "{shown} already exists, and keygen never overwrites a file (it may hold the key a store is encrypted to); it was not changed"
            ),
            format!(
                "choose another file: `withings-token keygen --output FILE`; or, if the key in {shown} encrypts nothing any more, remove it first"
            ),
        )),
        Err(e) => Err(unwritable(e)),
    }
}
