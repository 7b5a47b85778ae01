//! The event record of a file store's account (see `events`): JSON in
//! `<stem>.events.json` beside the set (`tokens.events.json`,
//! `tokens.accounts/alice.events.json`: not a `*.json` account name, so the
//! account listing skips it), replaced atomically, mode 0600, under its
//! own lock file, sealed as the set is (see `sealing`): never the set's lock, so delivering events never holds
//! up a refresh. It is not flushed to disk as the set is (two flushes per
//! delivered event would double a refresh's cost): a power cut can lose
//! its last change, an alert, never a token; a crash cannot (rename).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{FileStore, open_lock_file, wait_for_lock};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::store::MAX_EVENTS_BYTES;

/// A swap waits this long for another run's swap: each is a read and a write.
const EVENTS_LOCK_TIMEOUT: Duration = Duration::from_secs(1);

impl FileStore {
    pub fn events_path(&self) -> PathBuf {
        let stem = self
            .path()
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tokens".to_owned());
        self.path().with_file_name(format!("{stem}.events.json"))
    }

    /// The lock of the event record's swaps.
    pub(super) fn events_lock_path(&self) -> PathBuf {
        let mut path = self.events_path().into_os_string();
        path.push(".lock");
        PathBuf::from(path)
    }

    /// The event record's plain bytes (opened when sealed).
    pub(super) fn load_events_file(&self) -> Result<Option<Vec<u8>>> {
        let place = self.events_path().display().to_string();
        self.load_kept_events()?
            .map(|kept| crate::store::open_events(self.keyring(), &place, kept))
            .transpose()
    }

    /// The event record's bytes as kept.
    fn load_kept_events(&self) -> Result<Option<Vec<u8>>> {
        let path = self.events_path();
        match fsutil::read_regular_file(&path, MAX_EVENTS_BYTES) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::config(
                format!("cannot read the event record {}: {e}", path.display()),
                format!(
                    "make it a readable regular file, or move it aside (it holds undelivered events and alert state, no token): `mv {} {}.bad`",
                    path.display(),
                    path.display()
                ),
            )),
        }
    }

    /// Once the set was written plain on purpose (`--allow-plaintext`),
    /// the event record is written plain too, not at its next change:
    /// until then a host that dropped its identity with the seal could
    /// neither show the alert state nor record an event (a sealed record
    /// is not written plain without the flag, which later runs do not
    /// pass). The set is saved whatever becomes of it.
    pub(super) fn unseal_events_after_plain_write(&self) {
        let keyring = self.keyring();
        if keyring.seals() || !keyring.allows_plaintext() {
            return;
        }
        let path = self.events_path();
        let place = path.display().to_string();
        let unsealed = self.load_kept_events().and_then(|kept| match kept {
            Some(kept) if crate::sealing::is_sealed(&kept) => {
                let plain = crate::store::open_events(keyring, &place, kept)?;
                self.swap_events_file(Some(&plain), &plain).map(|_| ())
            }
            _ => Ok(()),
        });
        if let Err(e) = unsealed {
            tracing::warn!("the event record {place} stays encrypted: {e}");
        }
    }

    pub(super) fn swap_events_file(&self, expected: Option<&[u8]>, next: &[u8]) -> Result<bool> {
        let path = self.events_path();
        let lock_path = self.events_lock_path();
        let unwritable = |e: std::io::Error| {
            Error::config(
                format!("cannot write the event record {}: {e}", path.display()),
                "make the store's directory writable by this user; the tokens themselves are not affected",
            )
        };
        let dir = fsutil::parent_dir(&path);
        fsutil::create_private_dir(dir).map_err(unwritable)?;
        let lock = open_lock_file(&lock_path).map_err(unwritable)?;
        wait_for_lock(&lock, Instant::now(), EVENTS_LOCK_TIMEOUT, &lock_path)?;
        let kept = self.load_kept_events()?;
        let place = path.display().to_string();
        let swapped = crate::store::swapped_events(self.keyring(), &place, kept.as_deref(), expected, next)?;
        let Some(next) = swapped else {
            return Ok(false);
        };
        fsutil::write_atomically_unsynced(&path, &next).map_err(unwritable)?;
        Ok(true)
    }
}
