//! The rescue file: where a set Withings issued goes when the store cannot
//! take it (a descriptor limit, a disk error, a lock file deleted
//! under the run, a Redis unreachable past the lease). Without it the
//! answer would die with the process, and the chain with it whenever a
//! consumer used the new access token meanwhile.
//!
//! The file is a store file (the same format and parser) holding the set
//! as the generation it should have been. Its space and every descriptor
//! its write needs are taken before the request is sent
//! ([`RescueFile::prepare`]), like the store's own. The next run that takes
//! the store's lock adopts it (`rotation`): saved into the store when the
//! store is still at the generation the request started from (or empty),
//! dropped when the store moved on, since then another run saved a set of
//! its own. A file store keeps its rescue beside it (`tokens.json.rescue`),
//! a Redis store on this host, under the state directory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{MAX_STORE_BYTES, StoreState, parse_store, serialize_store};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::sealing::Keyring;

/// The least space held for a rescue: as for a save of the store.
const MIN_RESERVATION: u64 = 16 * 1024;

#[derive(Debug, Clone)]
pub struct RescueFile {
    path: PathBuf,
    /// The store's: a rescued set is sealed as the store would be.
    keyring: Arc<Keyring>,
}

/// Space and descriptors for one rescue, taken before a request.
pub struct PreparedRescue {
    temp: fsutil::ReservedFile,
    dir: File,
}

impl RescueFile {
    pub fn new(path: PathBuf, keyring: Arc<Keyring>) -> RescueFile {
        RescueFile { path, keyring }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where a rescued set waits: this file (one `stat`), else a temporary
    /// file left by a run that did not finish, of this file or of one of
    /// `also` (the store's own), which may hold one (see [`Self::salvage`]).
    pub fn waiting(&self, also: &[&Path]) -> Option<String> {
        if std::fs::symlink_metadata(&self.path).is_ok() {
            return Some(self.path.display().to_string());
        }
        let left = self.stale_temps(also).into_iter().next()?;
        Some(left.display().to_string())
    }

    fn stale_temps(&self, also: &[&Path]) -> Vec<PathBuf> {
        let targets: Vec<&Path> = also.iter().copied().chain([self.path.as_path()]).collect();
        fsutil::stale_temps(&targets)
    }

    /// A temporary file left with a whole store in it (of this file, or of
    /// one of `also`) holds a set a run received and could not save: its
    /// rename failed, or it died after filling it. The newest such set
    /// becomes this rescue file, which the transaction adopts when it still
    /// fits; nothing else is written from here. Call under the store's lock.
    pub fn salvage(&self, also: &[&Path]) {
        // By the clear generations: a sealed set this run cannot open is
        // kept all the same, for a run that holds its key.
        let generation_in = |path: &Path| {
            let bytes = zeroize::Zeroizing::new(fsutil::read_regular_file(path, MAX_STORE_BYTES).ok()?);
            super::held_generation(&bytes)
        };
        let waiting = generation_in(&self.path).unwrap_or(0);
        let best = self
            .stale_temps(also)
            .into_iter()
            .filter_map(|path| Some((generation_in(&path)?, path)))
            .max_by_key(|(generation, _)| *generation);
        let Some((generation, path)) = best.filter(|(generation, _)| *generation > waiting) else {
            return;
        };
        match std::fs::rename(&path, &self.path) {
            Ok(()) => tracing::warn!(
                "found a set a previous run received but did not save (generation {generation}) in {}; it is kept as {}",
                path.display(),
                self.path.display()
            ),
            Err(e) => tracing::warn!(
                "found a set a previous run did not save in {}, but cannot keep it as {}: {e}",
                path.display(),
                self.path.display()
            ),
        }
    }

    /// Takes what writing the rescue will need: its directory (made 0700
    /// when missing), a temporary file holding `size` bytes, and the
    /// directory open for the sync.
    pub fn prepare(&self, size: u64) -> std::io::Result<PreparedRescue> {
        let dir = fsutil::parent_dir(&self.path);
        fsutil::create_private_dir(dir)?;
        let dir_file = File::open(dir)?;
        let temp = fsutil::reserve(&self.path, size.max(MIN_RESERVATION))?;
        Ok(PreparedRescue { temp, dir: dir_file })
    }

    /// The rescued set, as the store generation it should have been; `None`
    /// when there is none. An unreadable one is an error naming the file.
    pub fn read(&self) -> Option<Result<StoreState>> {
        let bytes = match fsutil::read_regular_file(&self.path, MAX_STORE_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(self.unusable(&e.to_string()))),
        };
        let place = self.path.display().to_string();
        Some(parse_store(&bytes, &self.keyring, &place).map_err(|failure| {
            let reason = match failure {
                super::ParseFailure::Newer(v) => format!("format version {v}, newer than this binary reads"),
                super::ParseFailure::Corrupt(reason) => reason,
                super::ParseFailure::Sealed(e) => return e,
            };
            self.unusable(&reason)
        }))
    }

    fn unusable(&self, why: &str) -> Error {
        Error::CorruptStore {
            place: format!("{} (a set a previous run could not save)", self.path.display()),
            reason: why.to_owned(),
        }
    }

    /// Removes it (adopted, or superseded).
    pub fn remove(&self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}

impl PreparedRescue {
    /// Writes `next` as generation `base_generation + 1` into the space
    /// taken before the request, renames it into place and syncs it.
    pub fn write(mut self, rescue: &RescueFile, base_generation: u64, next: &StoreState) -> Result<()> {
        let generation = base_generation.saturating_add(1);
        let bytes = serialize_store(next, generation, generation, None, &rescue.keyring)?;
        self.temp.keep_unless_renamed();
        let written = self
            .temp
            .fill(&bytes)
            .and_then(|()| self.temp.rename_into_place_in(Some(&self.dir)));
        written.map_err(|e| {
            Error::config(
                format!("cannot write {}: {e}", rescue.path.display()),
                "free disk space or fix the directory's permissions",
            )
        })
    }
}
