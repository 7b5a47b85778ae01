//! `FileStore`: the durable home of the token set.
//!
//! The store is one JSON file (mode 0600, directory 0700) with a `version`
//! and a `generation` that grows by one on every save. Every change happens
//! under an exclusive lock on a sibling `.lock` file: take the lock, reload,
//! decide, (talk to Withings,) save, release. A save that does not start from
//! the generation on disk is refused. A file that does not parse is never
//! overwritten. A sibling `.journal` file marks a request in flight, so a run
//! that finds one knows a previous process died after asking Withings.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::tokens::TokenSet;

/// The store format this binary writes; it reads this and older ones.
pub const STORE_VERSION: u32 = 1;
/// A store is a few hundred bytes; anything this large is not one.
const MAX_STORE_BYTES: u64 = 1024 * 1024;

/// What the store holds, with secrets wrapped.
#[derive(Debug, Clone, Default)]
pub struct StoreState {
    pub generation: u64,
    pub tokens: Option<TokenSet>,
    pub previous: Option<PreviousToken>,
    pub pending_auth: Option<PendingAuth>,
}

/// The refresh token of the generation before this one, kept because
/// Withings honours it for a few hours after rotating it.
#[derive(Debug, Clone)]
pub struct PreviousToken {
    pub refresh_token: SecretString,
    pub rotated_at: DateTime<Utc>,
}

/// The state `auth-url` issued, for `exchange` to check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingAuth {
    pub state: String,
    pub created_at: DateTime<Utc>,
}

/// A request that was sent but whose transaction did not end (process died).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InFlight {
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub generation: u64,
    pub grant: String,
}

#[derive(Serialize, Deserialize)]
struct StoreFileV1 {
    version: u32,
    generation: u64,
    #[serde(default)]
    tokens: Option<StoredTokens>,
    #[serde(default)]
    previous: Option<StoredPrevious>,
    #[serde(default)]
    pending_auth: Option<PendingAuth>,
}

#[derive(Serialize, Deserialize)]
struct StoredTokens {
    access_token: Option<String>,
    refresh_token: String,
    expires_at: Option<DateTime<Utc>>,
    last_refreshed: Option<DateTime<Utc>>,
    userid: Option<String>,
    scope: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredPrevious {
    refresh_token: String,
    rotated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    pub fn new(path: PathBuf) -> Self {
        FileStore { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    pub fn lock_path(&self) -> PathBuf {
        self.sibling(".lock")
    }

    pub fn journal_path(&self) -> PathBuf {
        self.sibling(".journal")
    }

    /// Reads the store without locking (writes are atomic renames, so a
    /// reader sees a whole file). Absent file → empty state, generation 0.
    pub fn load(&self) -> Result<StoreState> {
        let bytes = match read_limited(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StoreState::default()),
            Err(e) => return Err(self.unreadable(e)),
        };
        if fsutil::readable_by_others(&self.path) {
            tracing::warn!(
                "token store {} is readable by group or others: run `chmod 600 {}` (the next save also rewrites it 0600)",
                self.path.display(),
                self.path.display()
            );
        }
        parse_store(&bytes).map_err(|reason| match reason {
            ParseFailure::Newer(v) => Error::config(
                format!(
                    "token store {} has format version {v}, newer than this binary reads ({STORE_VERSION})",
                    self.path.display()
                ),
                "upgrade withings-token, or point `--store` at another file",
            ),
            ParseFailure::Corrupt(reason) => Error::CorruptStore {
                path: self.path.clone(),
                reason,
            },
        })
    }

    fn unreadable(&self, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::FileTooLarge {
            return Error::CorruptStore {
                path: self.path.clone(),
                reason: e.to_string(),
            };
        }
        Error::config(
            format!("cannot read token store {}: {e}", self.path.display()),
            "check the file's and its directory's permissions, or choose another path with `--store`",
        )
    }

    /// Takes the exclusive lock, waiting at most `timeout`.
    pub fn lock(&self, timeout: Duration) -> Result<StoreLock> {
        let dir = fsutil::parent_dir(&self.path);
        fsutil::create_private_dir(dir).map_err(|e| self.dir_error(dir, e))?;
        let lock_path = self.lock_path();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| self.dir_error(dir, e))?;
        wait_for_lock(&file, timeout, &lock_path)?;
        // The journal is written the same way, so a killed writer can leave its temp file too.
        let mut removed = fsutil::remove_stale_temps(&self.path);
        removed.extend(fsutil::remove_stale_temps(&self.journal_path()));
        if !removed.is_empty() {
            tracing::warn!("removed {} temporary file(s) left by a killed writer", removed.len());
        }
        Ok(StoreLock {
            store: self.clone(),
            _file: file,
        })
    }

    fn dir_error(&self, dir: &Path, e: std::io::Error) -> Error {
        Error::config(
            format!("cannot use the token store directory {}: {e}", dir.display()),
            "make the directory writable by this user, or choose another path with `--store` / WITHINGS_TOKEN_STORE",
        )
    }
}

fn wait_for_lock(file: &File, timeout: Duration, lock_path: &Path) -> Result<()> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    let mut announced = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::config(
                    format!("cannot lock {}: {e}", lock_path.display()),
                    "put the store on a local file system that supports locks (`--store`)",
                ));
            }
        }
        if started.elapsed() >= timeout {
            return Err(Error::LockTimeout {
                path: lock_path.to_path_buf(),
                waited_secs: started.elapsed().as_secs(),
            });
        }
        if !announced {
            tracing::info!(
                "waiting for another withings-token process to release {}",
                lock_path.display()
            );
            announced = true;
        }
        std::thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Proof that this process holds the store lock; saving needs one.
/// Dropping it releases the lock.
pub struct StoreLock {
    store: FileStore,
    _file: File,
}

impl StoreLock {
    pub fn load(&self) -> Result<StoreState> {
        self.store.load()
    }

    /// Saves `next` as generation `base.generation + 1`; refused unless the
    /// file on disk is still at `base.generation`.
    pub fn save(&self, base_generation: u64, next: &StoreState) -> Result<u64> {
        let on_disk = self.store.load()?.generation;
        if on_disk != base_generation {
            return Err(Error::Internal(anyhow::anyhow!(
                "store {} moved from generation {base_generation} to {on_disk} under the lock; refusing to overwrite it",
                self.store.path.display()
            )));
        }
        let generation = base_generation + 1;
        let bytes = serialize_store(next, generation)?;
        fsutil::write_atomically(&self.store.path, &bytes).map_err(|e| {
            Error::config(
                format!("cannot write token store {}: {e}", self.store.path.display()),
                "free disk space or fix permissions; the previous store file is intact",
            )
        })?;
        Ok(generation)
    }

    /// Marks a Withings request as in flight (before it is sent).
    pub fn begin_request(&self, generation: u64, grant: &str) -> Result<()> {
        let mark = InFlight {
            pid: std::process::id(),
            started_at: crate::tokens::now(),
            generation,
            grant: grant.to_owned(),
        };
        let bytes = serde_json::to_vec(&mark).map_err(anyhow::Error::from)?;
        fsutil::write_atomically(&self.store.journal_path(), &bytes).map_err(|e| {
            Error::config(
                format!("cannot write the journal {}: {e}", self.store.journal_path().display()),
                "free disk space or fix the store directory's permissions",
            )
        })
    }

    /// Ends the in-flight mark (after the answer was handled, either way).
    pub fn end_request(&self) {
        let _ = fs::remove_file(self.store.journal_path());
    }

    /// A mark left by a process that died mid-request, if any.
    pub fn interrupted_request(&self) -> Option<InFlight> {
        let bytes = fs::read(self.store.journal_path()).ok()?;
        Some(serde_json::from_slice(&bytes).unwrap_or(InFlight {
            pid: 0,
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            generation: 0,
            grant: "unknown".into(),
        }))
    }
}

fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_STORE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_STORE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {MAX_STORE_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

enum ParseFailure {
    Newer(u32),
    Corrupt(String),
}

fn parse_store(bytes: &[u8]) -> Result<StoreState, ParseFailure> {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let version = serde_json::from_slice::<VersionOnly>(bytes)
        .map_err(not_a_store)?
        .version;
    if version > STORE_VERSION {
        return Err(ParseFailure::Newer(version));
    }
    let file: StoreFileV1 = serde_json::from_slice(bytes).map_err(not_a_store)?;
    Ok(StoreState {
        generation: file.generation,
        tokens: file.tokens.map(|t| TokenSet {
            access_token: t.access_token.map(SecretString::from),
            refresh_token: SecretString::from(t.refresh_token),
            expires_at: t.expires_at,
            last_refreshed: t.last_refreshed,
            userid: t.userid,
            scope: t.scope,
        }),
        previous: file.previous.map(|p| PreviousToken {
            refresh_token: SecretString::from(p.refresh_token),
            rotated_at: p.rotated_at,
        }),
        pending_auth: file.pending_auth,
    })
}

/// serde quotes the offending value ("invalid type: string \"...\""), which
/// in a hand-edited store can be a token: quoted strings are cut out.
fn not_a_store(e: serde_json::Error) -> ParseFailure {
    ParseFailure::Corrupt(format!(
        "not a withings-token store ({})",
        without_quoted_strings(&e.to_string())
    ))
}

fn without_quoted_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        out.push_str("\"…\"");
        let mut escaped = false;
        for c in chars.by_ref() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => break,
                _ => escaped = false,
            }
        }
    }
    out
}

/// The one place tokens leave their wrappers to reach the disk.
fn serialize_store(state: &StoreState, generation: u64) -> Result<Vec<u8>> {
    let file = StoreFileV1 {
        version: STORE_VERSION,
        generation,
        tokens: state.tokens.as_ref().map(|t| StoredTokens {
            access_token: t.access_token.as_ref().map(|s| s.expose_secret().to_owned()),
            refresh_token: t.refresh_token.expose_secret().to_owned(),
            expires_at: t.expires_at,
            last_refreshed: t.last_refreshed,
            userid: t.userid.clone(),
            scope: t.scope.clone(),
        }),
        previous: state.previous.as_ref().map(|p| StoredPrevious {
            refresh_token: p.refresh_token.expose_secret().to_owned(),
            rotated_at: p.rotated_at,
        }),
        pending_auth: state.pending_auth.clone(),
    };
    let mut bytes = serde_json::to_vec_pretty(&file).map_err(anyhow::Error::from)?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tokens(refresh: &str) -> TokenSet {
        TokenSet {
            access_token: Some(SecretString::from("acc")),
            refresh_token: SecretString::from(refresh.to_owned()),
            expires_at: None,
            last_refreshed: None,
            userid: Some("363".into()),
            scope: None,
        }
    }

    #[test]
    fn save_then_load_round_trips_and_bumps_generation() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state/tokens.json"));
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        let state = StoreState {
            tokens: Some(tokens("r1")),
            ..Default::default()
        };
        assert_eq!(lock.save(0, &state).unwrap(), 1);
        let loaded = store.load().unwrap();
        assert_eq!(loaded.generation, 1);
        assert_eq!(loaded.tokens.unwrap().refresh_token.expose_secret(), "r1");
        let mode = fs::metadata(dir.path().join("state")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn save_from_a_stale_generation_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("tokens.json"));
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        lock.save(0, &StoreState::default()).unwrap();
        assert!(lock.save(0, &StoreState::default()).is_err());
        assert_eq!(store.load().unwrap().generation, 1);
    }

    #[test]
    fn corrupt_store_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        fs::write(&path, "{not json").unwrap();
        let err = FileStore::new(path.clone()).load().unwrap_err();
        assert_eq!(err.code(), "CONFIGURATION_ERROR");
        assert_eq!(fs::read_to_string(&path).unwrap(), "{not json");
    }

    #[test]
    fn a_token_in_a_mistyped_field_is_not_quoted_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        for text in [
            r#"{"version": 1, "generation": "secret-refresh-\\\"token"}"#,
            r#"{"version": 1, "generation": 1, "tokens": "secret-refresh-token"}"#,
        ] {
            fs::write(&path, text).unwrap();
            let err = FileStore::new(path.clone()).load().unwrap_err().to_string();
            assert!(!err.contains("secret-refresh"), "{err}");
            assert!(!err.contains("token\""), "{err}");
            assert!(err.contains("invalid type: string \"…\", expected"), "{err}");
        }
    }

    #[test]
    fn newer_store_version_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        fs::write(&path, r#"{"version": 99, "generation": 1}"#).unwrap();
        let err = FileStore::new(path).load().unwrap_err();
        assert!(err.to_string().contains("version 99"), "{err}");
    }

    #[test]
    fn second_lock_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("tokens.json"));
        let _held = store.lock(Duration::from_secs(1)).unwrap();
        let err = store.lock(Duration::from_millis(50)).err().unwrap();
        assert_eq!(err.code(), "LOCK_TIMEOUT");
    }
}
