//! Moving and removing a file store whole, for `accounts rename` and
//! `accounts remove`: the store file and the siblings that belong to it
//! (journal, rescue, event record, lock), under the lock.

use std::fs::{self, File};
use std::path::Path;
use std::time::Duration;

use super::FileStore;
use crate::error::{Error, Result};
use crate::fsutil;

impl FileStore {
    /// Moves this store (and its journal and rescue) to `to`'s place, under
    /// both locks, taken in the order of their paths so that two moves
    /// never wait for each other. Refused, with nothing moved, when `to`
    /// holds a store already.
    pub fn move_to(&self, to: &FileStore, timeout: Duration) -> Result<()> {
        let (first, second) = if self.path() <= to.path() {
            (self, to)
        } else {
            (to, self)
        };
        let _first = first.lock(timeout)?;
        let _second = second.lock(timeout)?;
        if fs::symlink_metadata(to.path()).is_ok() {
            return Err(Error::config(
                format!("{} holds a token set already; nothing was moved", to.path().display()),
                "choose another name, or remove that account first (`withings-token accounts remove NAME --yes`)",
            ));
        }
        let moves = [
            (self.path().to_path_buf(), to.path().to_path_buf()),
            (self.journal_path(), to.journal_path()),
            (
                self.rescue_file().path().to_path_buf(),
                to.rescue_file().path().to_path_buf(),
            ),
            (self.events_path(), to.events_path()),
        ];
        for (from, into) in &moves {
            match fs::rename(from, into) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(cannot("move", from, e)),
            }
        }
        sync_dirs(&[self.path(), to.path()]);
        remove_if_present(&self.events_lock_path())?;
        remove_if_present(&self.lock_path())
    }

    /// Removes this store, its journal, rescue and lock file, under the lock.
    pub fn remove_whole(&self, timeout: Duration) -> Result<()> {
        let _lock = self.lock(timeout)?;
        for path in [
            self.path().to_path_buf(),
            self.journal_path(),
            self.rescue_file().path().to_path_buf(),
            self.events_path(),
        ] {
            remove_if_present(&path)?;
        }
        sync_dirs(&[self.path()]);
        remove_if_present(&self.events_lock_path())?;
        remove_if_present(&self.lock_path())
    }
}

impl FileStore {
    /// Refuses to move or remove the store of an account at `path` (as
    /// the deployment places it, before any link is followed) when it, or
    /// for a named account the accounts directory it is in, is a symbolic
    /// link: whatever the link points to is not the account's to delete,
    /// and a file linked in from elsewhere is not its set to take along.
    /// A link as the `default` store's own directory is the user's choice
    /// of where the store lives, and stays allowed.
    pub fn refuse_links(path: &Path, named: bool) -> Result<()> {
        let accounts_dir = named.then(|| fsutil::parent_dir(path));
        for place in std::iter::once(path).chain(accounts_dir) {
            let linked = fs::symlink_metadata(place).is_ok_and(|m| m.file_type().is_symlink());
            if linked {
                return Err(Error::config(
                    format!(
                        "{} is a symbolic link; an account's store is never moved or removed through a link, so nothing was changed",
                        place.display()
                    ),
                    format!(
                        "look at where it points (`ls -l {}`) and remove the link by hand (`rm` of the link removes the link alone), then run the command again",
                        place.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(cannot("remove", path, e)),
    }
}

/// A rename or removal lasts once its directory is synced; a failure
/// there leaves it done, only not yet durable.
fn sync_dirs(paths: &[&Path]) {
    for path in paths {
        if let Ok(dir) = File::open(fsutil::parent_dir(path)) {
            let _ = dir.sync_all();
        }
    }
}

fn cannot(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::config(
        format!("cannot {what} {}: {e}", path.display()),
        "make the token store's directory writable by this user, then run the command again",
    )
}
