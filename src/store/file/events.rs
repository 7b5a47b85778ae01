//! The event record of a file store's account (see `events`): JSON in
//! `<stem>.events.json` beside the set (`tokens.events.json`,
//! `tokens.accounts/alice.events.json`: not a `*.json` account name, so the
//! account listing skips it), replaced atomically, mode 0600, under its
//! own lock file: never the set's lock, so delivering events never holds
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

    pub(super) fn load_events_file(&self) -> Result<Option<Vec<u8>>> {
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
        if self.load_events_file()?.as_deref() != expected {
            return Ok(false);
        }
        fsutil::write_atomically_unsynced(&path, next).map_err(unwritable)?;
        Ok(true)
    }
}
