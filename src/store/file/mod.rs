//! `FileStore`: the token set in one file, for one host.
//!
//! The store is one JSON file (mode 0600, directory 0700) with a `version`
//! and a `generation` that grows by one on every save. Every change happens
//! under an exclusive lock on a sibling `.lock` file: take the lock, reload,
//! decide, (talk to Withings,) save, release. A save that does not start from
//! the generation on disk is refused. A file that does not parse is never
//! overwritten. A sibling `.journal` file marks a request in flight, so a run
//! that finds one knows a previous process died after asking Withings.
//!
//! What else holds, and why:
//! - The path is resolved once, in [`FileStore::new`]: through a symlinked
//!   store (or directory) the real file is the one replaced, and the `.lock`
//!   and `.journal` sit beside it, so runs through a link and through the
//!   real path exclude each other.
//! - Space for the save is reserved before a request is sent
//!   ([`StoreLock::begin_request`]): a disk that is
//!   full fails the run before Withings rotates anything, and one that fills
//!   up while the request is out cannot stop the save (see `fsutil`).
//! - The lock is on the file at the lock path. After locking, a run checks
//!   that the file it locked is still the one there (a file deleted between
//!   open and lock excludes nobody) and otherwise locks the new one. If the
//!   lock file is deleted while a run holds it, a second run can get in; so
//!   before the request is sent and again right before the rename, the
//!   holder checks its lock file is still the one at the path. If it is not,
//!   it locks the file now there when that is free (and re-checks the
//!   generation, which a run that got in and saved has moved on), and
//!   refuses to write when another run holds it. What is left is the
//!   millisecond between that check and the rename.
//! - The generation never wraps: a store at `u64::MAX` is refused before
//!   anything is sent.
//! - `tokens_generation` is the generation at which the current token set
//!   was saved, and `copies` what each copy (env file, Railway) last got,
//!   so saves that do not change the set do not make the copies look stale.
//! - A reader that keeps a copy (`serve`) tells from one `stat` whether it
//!   is still the store: [`FileStore::stamp`] is the file's device and
//!   inode, size, and modification and change times to the nanosecond,
//!   withheld while the file's last change is too recent to be told from
//!   the next one ([`SETTLE`]).

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::opened::LastOpened;
use super::rescue::{PreparedRescue, RescueFile};
use super::{
    InFlight, MAX_STORE_BYTES, ParseFailure, STORE_VERSION, Stamped, StoreLease, StoreStamp, StoreState, TokenStore,
    parse_store, same_set, serialize_store, tokens_generation_after,
};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::locked;
use crate::sealing::Keyring;

mod events;
mod moves;
/// A journal mark is under a hundred bytes.
const MAX_JOURNAL_BYTES: u64 = 64 * 1024;
/// The least space reserved for a save that follows a request: far above
/// any store, and cheap to write.
const MIN_RESERVATION: u64 = 16 * 1024;
/// As many symlinks as the kernel follows before giving up (`ELOOP`).
const MAX_SYMLINKS: usize = 40;
/// The default store lives in a directory of this name, which this tool
/// creates; no other directory is ever chmod-ed.
const OWN_DIR_NAME: &str = "withings-token";

/// Each warning is said once per process, however often the store is read.
static READABLE_STORE_WARNING: Once = Once::new();
static OPEN_DIR_WARNING: Once = Once::new();

#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    /// The app whose store this must be (see `store::bind`).
    client_id: Option<String>,
    /// What the set is sealed to and opened with (see `sealing`).
    keyring: Arc<Keyring>,
    /// The file last read and its state, before `store::bind` (see
    /// `opened`): shared by the clones `serve` holds.
    last: Arc<LastOpened<StoreState>>,
}

impl FileStore {
    /// A store at `path`, resolved once through any symlinks (see the module doc).
    pub fn new(path: PathBuf) -> Self {
        FileStore {
            path: resolve_store_path(&path),
            client_id: None,
            keyring: Keyring::none(),
            last: Arc::new(LastOpened::new()),
        }
    }

    /// The same store, sealed to and opened with `keyring`.
    pub fn sealed_with(self, keyring: Arc<Keyring>) -> Self {
        FileStore { keyring, ..self }
    }

    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// The same store, used by the Withings app `client_id`: a set another
    /// app obtained is refused on load.
    pub fn for_client(self, client_id: Option<String>) -> Self {
        FileStore { client_id, ..self }
    }

    /// The resolved path: the real file that is read and replaced.
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

    /// Where a set this store could not take waits (see `store::rescue`).
    pub fn rescue_file(&self) -> RescueFile {
        RescueFile::new(self.sibling(".rescue"), Arc::clone(&self.keyring))
    }

    /// Reads the store without locking (writes are atomic renames, so a
    /// reader sees a whole file). Absent file → empty state, generation 0.
    pub fn load(&self) -> Result<StoreState> {
        self.load_stamped().map(|(state, _)| state)
    }

    /// The file's stamp (see [`TokenStore::stamp`]): one `stat`.
    pub fn stamp(&self) -> Option<StoreStamp> {
        let looked_at = SystemTime::now();
        match fs::metadata(&self.path) {
            Ok(meta) => stamp_of(&meta, looked_at),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(StoreStamp(Stamped::Absent)),
            Err(_) => None,
        }
    }

    /// [`FileStore::load`], and the stamp of the very file read, taken
    /// from its open handle.
    pub fn load_stamped(&self) -> Result<(StoreState, Option<StoreStamp>)> {
        let looked_at = SystemTime::now();
        let (bytes, meta) = match fsutil::read_regular_file_and_metadata(&self.path, MAX_STORE_BYTES) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let empty = self.bound(StoreState::default())?;
                return Ok((empty, Some(StoreStamp(Stamped::Absent))));
            }
            Err(e) => return Err(self.unreadable(e)),
        };
        // A plain store's bytes are its tokens: wiped once parsed.
        let bytes = zeroize::Zeroizing::new(bytes);
        let state = self.parse(&bytes)?;
        // Only once it is known to be a store: a link to another file
        // (`/etc/passwd`) is not ours to tell to chmod.
        if fsutil::readable_by_others(&meta) {
            READABLE_STORE_WARNING.call_once(|| {
                tracing::warn!(
                    "token store {} is readable by group or others: run `chmod 600 {}` (the next save also rewrites it 0600)",
                    self.path.display(),
                    self.path.display()
                );
            });
        }
        Ok((self.bound(state)?, stamp_of(&meta, looked_at)))
    }

    /// The store in `bytes`, or why it is not one this binary reads.
    fn parse(&self, bytes: &[u8]) -> Result<StoreState> {
        let place = self.path.display().to_string();
        let parse = |bytes: &[u8]| parse_store(bytes, &self.keyring, &place);
        self.last.open(bytes, parse).map_err(|reason| match reason {
            ParseFailure::Newer(v) => Error::config(
                format!(
                    "token store {} has format version {v}, newer than this binary reads ({STORE_VERSION})",
                    self.path.display()
                ),
                "upgrade withings-token, or point `--store` at another file",
            ),
            ParseFailure::Corrupt(reason) => Error::CorruptStore {
                place: self.path.display().to_string(),
                reason,
            },
            ParseFailure::Sealed(e) => e,
        })
    }

    /// Refuses a write the keyring forbids (see `sealing`), before it.
    fn check_write(&self, on_disk: &StoreState, next: &StoreState) -> Result<()> {
        self.keyring.check_write(
            on_disk.sealed || next.sealed,
            &format!("token store {}", self.path.display()),
        )
    }

    fn bound(&self, state: StoreState) -> Result<StoreState> {
        super::bind(state, self.client_id.as_deref(), &self.path.display().to_string())
    }

    fn unreadable(&self, e: std::io::Error) -> Error {
        let message = format!("cannot read token store {}: {e}", self.path.display());
        if let Some(action) = crate::error::limit_action(&e) {
            return Error::config(message, action);
        }
        match e.kind() {
            std::io::ErrorKind::FileTooLarge => Error::CorruptStore {
                place: self.path.display().to_string(),
                reason: e.to_string(),
            },
            // A FIFO, a device or a directory (see `fsutil::read_regular_file`).
            std::io::ErrorKind::InvalidInput => Error::config(
                message,
                "point `--store` (or WITHINGS_TOKEN_STORE) at a regular file, or leave both unset for the default",
            ),
            _ => Error::config(
                message,
                "check the file's and its directory's permissions, or choose another path with `--store`",
            ),
        }
    }

    /// Takes the exclusive lock, waiting at most `timeout`.
    pub fn lock(&self, timeout: Duration) -> Result<StoreLock> {
        let dir = fsutil::parent_dir(&self.path);
        fsutil::create_private_dir(dir).map_err(|e| self.dir_error(dir, e))?;
        secure_store_dir(dir);
        let started = Instant::now();
        let file = self.acquire(timeout)?;
        self.wait_for_live_request(started, timeout)?;
        self.rescue_file().salvage(&[&self.path]);
        // The journal and the rescue are written the same way, so a writer
        // that did not finish can leave their temp files too.
        let (journal, rescue) = (self.journal_path(), self.rescue_file());
        let removed = fsutil::remove_stale_temps(&[&self.path, &journal, rescue.path()]);
        if !removed.is_empty() {
            tracing::warn!(
                "removed {} temporary file(s) left by a run that did not finish",
                removed.len()
            );
        }
        Ok(StoreLock {
            store: self.clone(),
            file: Mutex::new(file),
            request: Mutex::new(None),
        })
    }

    /// A journal some live process holds marks a request in flight, even
    /// with the lock just taken (its lock file was deleted under it): that
    /// run will save its answer, so wait for it rather than send the same
    /// refresh token.
    fn wait_for_live_request(&self, started: Instant, timeout: Duration) -> Result<()> {
        let journal = self.journal_path();
        let mut announced = false;
        while fsutil::is_held_by_a_live_process(&journal) {
            if started.elapsed() >= timeout {
                return Err(Error::LockTimeout {
                    place: format!("{} (another run's request in flight)", journal.display()),
                    waited: timeout,
                });
            }
            if !announced {
                tracing::warn!(
                    "another withings-token run is asking Withings right now although this run holds the lock (was {} deleted?); waiting for it to save its answer",
                    self.lock_path().display()
                );
                announced = true;
            }
            std::thread::sleep(Duration::from_millis(20).min(timeout.saturating_sub(started.elapsed())));
        }
        Ok(())
    }

    /// Locks the file at the lock path. A file deleted (or replaced) between
    /// our open and our lock is locked in vain: nobody else will open it,
    /// so the lock excludes nobody. Then the file now at the path is tried.
    fn acquire(&self, timeout: Duration) -> Result<File> {
        let lock_path = self.lock_path();
        let dir = fsutil::parent_dir(&self.path);
        let started = Instant::now();
        loop {
            let file = open_lock_file(&lock_path).map_err(|e| lock_file_error(&lock_path, e))?;
            wait_for_lock(&file, started, timeout, &lock_path)?;
            if fsutil::is_file_at(&file, &lock_path).map_err(|e| self.dir_error(dir, e))? {
                return Ok(file);
            }
            if started.elapsed() >= timeout {
                return Err(Error::LockTimeout {
                    place: lock_path.display().to_string(),
                    waited: timeout,
                });
            }
            tracing::debug!(
                "{} was replaced while we waited for it; locking the new one",
                lock_path.display()
            );
        }
    }

    fn dir_error(&self, dir: &Path, e: std::io::Error) -> Error {
        Error::config(
            format!("cannot use the token store directory {}: {e}", dir.display()),
            "make the directory writable by this user, or choose another path with `--store` / WITHINGS_TOKEN_STORE",
        )
    }
}

/// How long after a store file last changed its change time is trusted to
/// tell a later change from that one. Every write, rename, `touch` or
/// `chmod` sets the change time (and nothing can set it back but the
/// clock), but to the file system's clock tick, not the instant: ext4, xfs
/// and tmpfs keep nanoseconds of the kernel's coarse clock (a few ms), ext3
/// and HFS+ whole seconds, FAT two. So a second write in place, of the same
/// size, within one tick of the first could leave every time as it was.
/// Until a file's change time is this much older than the moment it is
/// looked at, its stamp is `None` and it is read again each time (as git
/// does with its "racily clean" entries); after that, any change moves it.
/// A store replaced by rename (every save) is another inode, told apart at
/// once; the cost of the window is reading it again for two seconds after
/// each change. (A network file system whose server's clock runs behind
/// this host's by more than the window defeats it, for edits in place.)
const SETTLE: Duration = Duration::from_secs(2);

/// The stamp of the regular file `meta` describes, as looked at
/// `looked_at`; `None` for anything else, or while it has not settled.
fn stamp_of(meta: &fs::Metadata, looked_at: SystemTime) -> Option<StoreStamp> {
    let changed = (meta.ctime(), meta.ctime_nsec());
    let settled = meta.is_file() && has_settled(changed, looked_at);
    settled.then_some(StoreStamp(Stamped::File {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
        modified: (meta.mtime(), meta.mtime_nsec()),
        changed,
    }))
}

/// Whether a file last changed at `changed` (seconds and nanoseconds since
/// the epoch) was at least [`SETTLE`] old at `looked_at`. A time ahead of
/// the clock (a clock set back, a skewed server) never is.
fn has_settled(changed: (i64, i64), looked_at: SystemTime) -> bool {
    let Ok(now) = looked_at.duration_since(UNIX_EPOCH) else {
        return false;
    };
    let changed = i128::from(changed.0) * 1_000_000_000 + i128::from(changed.1);
    let now = i128::try_from(now.as_nanos()).unwrap_or(i128::MAX);
    now.saturating_sub(changed) >= SETTLE.as_nanos() as i128
}

/// Follows `path` to the file that is really read and replaced: the whole
/// path when it exists; else a final symlink to a file not made yet is
/// followed (relative to the link's directory) and the existing parent
/// directory resolved. A path that cannot be resolved is kept as given, so
/// that the error naming it comes from the read or write that needs it.
fn resolve_store_path(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_SYMLINKS {
        if let Ok(real) = fs::canonicalize(&current) {
            return real;
        }
        let is_link = fs::symlink_metadata(&current).is_ok_and(|m| m.file_type().is_symlink());
        let Some(target) = is_link.then(|| fs::read_link(&current).ok()).flatten() else {
            break;
        };
        // `join` keeps an absolute target as it is.
        current = fsutil::parent_dir(&current).join(target);
    }
    let Some(name) = current.file_name() else {
        return current;
    };
    match fs::canonicalize(fsutil::parent_dir(&current)) {
        Ok(dir) => dir.join(name),
        Err(_) => current,
    }
}

/// The directory this tool created for the default store is tightened to
/// 0700; any other directory belongs to the user (a project directory,
/// say) and is only warned about. Either is said once per process.
fn secure_store_dir(dir: &Path) {
    let Ok(meta) = fs::metadata(dir) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return;
    }
    let shown = dir.display();
    if dir.file_name().is_some_and(|n| n == OWN_DIR_NAME) {
        match fs::set_permissions(dir, fs::Permissions::from_mode(0o700)) {
            Ok(()) => OPEN_DIR_WARNING.call_once(|| {
                tracing::warn!("the token store directory {shown} was open to group or others (mode {mode:o}); it is withings-token's own, so it is now 0700");
            }),
            Err(e) => OPEN_DIR_WARNING.call_once(|| {
                tracing::warn!("the token store directory {shown} is open to group or others (mode {mode:o}) and could not be made 0700 ({e}): run `chmod 700 {shown}`");
            }),
        }
        return;
    }
    OPEN_DIR_WARNING.call_once(|| {
        tracing::warn!("the token store directory {shown} is open to group or others (mode {mode:o}); the store file itself is 0600, and the directory is left as it is because it is not withings-token's own: `chmod 700 {shown}`, or a private `--store` path, keeps its file names private too");
    });
}

/// Opens the lock file, making it when missing. One this run makes goes to
/// the directory's owner (root running on a user's store must leave a lock
/// file the user's own runs can open); one that was there is left as it is,
/// since it may be a link this run must not give away the target of. A lock
/// path that is not a regular file (a FIFO would hang the open) is refused.
fn open_lock_file(lock_path: &Path) -> std::io::Result<File> {
    let (file, made) = fsutil::open_regular_for_writing(lock_path)?;
    if made {
        fsutil::give_to_directory_owner(&file, lock_path);
    }
    Ok(file)
}

/// Why the lock file cannot be used, naming it (not the store directory).
fn lock_file_error(lock_path: &Path, e: std::io::Error) -> Error {
    let message = format!("cannot use the lock file {}: {e}", lock_path.display());
    let action = if let Some(action) = crate::error::limit_action(&e) {
        action.to_owned()
    } else if e.kind() == std::io::ErrorKind::InvalidInput {
        format!(
            "move {} aside (withings-token makes it again as a regular file), or choose another store with `--store`",
            lock_path.display()
        )
    } else {
        "make the store's directory writable by this user, or choose another store with `--store` / WITHINGS_TOKEN_STORE".to_owned()
    };
    Error::config(format!("{message}; nothing was sent to Withings"), action)
}

/// Waits for the lock on `file` until `timeout` after `started`.
fn wait_for_lock(file: &File, started: Instant, timeout: Duration, lock_path: &Path) -> Result<()> {
    let mut pause = Duration::from_millis(5);
    let mut announced = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(lock_unsupported(lock_path, e)),
        }
        if started.elapsed() >= timeout {
            return Err(Error::LockTimeout {
                place: lock_path.display().to_string(),
                waited: timeout,
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

fn lock_unsupported(lock_path: &Path, e: std::io::Error) -> Error {
    Error::config(
        format!("cannot lock {}: {e}", lock_path.display()),
        "put the store on a local file system that supports locks (`--store`)",
    )
}

/// How a check of the held lock came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LockCheck {
    /// The locked file is still the one at the lock path.
    Held,
    /// It had been deleted; the file now at the path was free and is locked.
    Retaken,
    /// It had been deleted, and another run holds the file now there.
    HeldByAnother,
}

/// Proof that this process holds the store lock; saving needs one.
/// Dropping it releases the lock (and any space still reserved).
pub struct StoreLock {
    store: FileStore,
    /// Swapped for the new lock file when the held one was deleted.
    file: Mutex<File>,
    /// Between `begin_request` and `end_request`.
    request: Mutex<Option<Request>>,
}

/// What `begin_request` takes before anything is sent, so that the save
/// after the answer needs no new descriptor and no new space (a process at
/// its descriptor limit once lost the answer there), and what marks the
/// request as a live one.
struct Request {
    /// The journal, open and locked: a run that finds it locked knows a
    /// live run is asking Withings (even one whose lock file was deleted
    /// under it), and waits instead of sending the same token.
    journal: File,
    /// The state the request started from: a save may move onto a store
    /// whose other fields (copy records, consent state) changed meanwhile.
    loaded: StoreState,
    /// The store file the state was read from, read again through it.
    store_file: Option<File>,
    /// The store's directory, for the syncs.
    dir: File,
    /// The space the save is written into (taken by the save).
    temp: Option<fsutil::ReservedFile>,
    /// The space a rescue is written into, should the save fail.
    rescue: Option<PreparedRescue>,
}

const UNCHANGED: &str = "nothing was sent to Withings and the stored tokens are unchanged";

impl StoreLock {
    pub fn load(&self) -> Result<StoreState> {
        self.store.load()
    }

    /// Saves `next` as generation `base.generation + 1`. After a request,
    /// into the space `begin_request` took, and kept unless the store
    /// really moved on (see [`StoreLock::commit_after_request`]); a small
    /// save without a request (auth state, copy records) writes a fresh
    /// temporary file and needs the store still at `base_generation`.
    pub fn save(&self, base_generation: u64, next: &StoreState) -> Result<u64> {
        let generation = self.write(base_generation, next)?;
        self.store.unseal_events_after_plain_write();
        Ok(generation)
    }

    fn write(&self, base_generation: u64, next: &StoreState) -> Result<u64> {
        let mut request = locked(&self.request);
        if let Some(request) = request.as_mut() {
            return self.commit_after_request(request, base_generation, next);
        }
        drop(request);
        let temp = fsutil::reserve(&self.store.path, 0).map_err(|e| self.write_error(e))?;
        self.commit(temp, base_generation, next)
    }

    /// Four times the store, at least [`MIN_RESERVATION`].
    fn reservation_size(&self) -> u64 {
        let current = fs::metadata(&self.store.path).map(|m| m.len()).unwrap_or(0);
        current.saturating_mul(4).max(MIN_RESERVATION)
    }

    fn reserve_space(&self, size: u64) -> Result<fsutil::ReservedFile> {
        fsutil::reserve(&self.store.path, size)
            .map_err(|e| self.cannot_prepare(&format!("reserve {size} bytes for saving"), e))
    }

    /// Why the save could not be prepared: nothing was sent.
    fn cannot_prepare(&self, what: &str, e: std::io::Error) -> Error {
        let action = crate::error::limit_action(&e)
            .unwrap_or("free some disk space (or make the store's directory writable) and run the command again");
        Error::config(
            format!(
                "cannot {what} the token store {}: {e}; {UNCHANGED}",
                self.store.path.display()
            ),
            action,
        )
    }

    /// The one writer of a save without a request: checks, fills the
    /// temporary file, renames it over the store.
    fn commit(&self, mut temp: fsutil::ReservedFile, base_generation: u64, next: &StoreState) -> Result<u64> {
        self.ensure_lock_held_alone()?;
        let on_disk = self.store.load()?;
        if on_disk.generation != base_generation && self.store_vanished() {
            // Nothing newer to protect.
            tracing::warn!(
                "the token store {} was deleted while this run held the lock; it is written again",
                self.store.path.display()
            );
        } else {
            self.check_base(on_disk.generation, base_generation)?;
        }
        let generation = next_generation(base_generation, &self.store.path, "the stored tokens are unchanged")?;
        let tokens_generation = tokens_generation_after(&on_disk, next, generation);
        self.store.check_write(&on_disk, next)?;
        let bytes = serialize_store(next, generation, tokens_generation, None, &self.store.keyring)?;
        temp.fill(&bytes).map_err(|e| self.write_error(e))?;
        // Once more right before the rename: a lock re-taken now may have
        // let another run save in between, which the generation shows.
        if self.ensure_lock_held_alone()? == LockCheck::Retaken {
            self.check_base(self.store.load()?.generation, base_generation)?;
        }
        temp.rename_into_place().map_err(|e| self.write_error(e))?;
        Ok(generation)
    }

    /// The save of a Withings answer: into the space and through the
    /// descriptors taken before the request, so that neither a full disk
    /// nor a descriptor limit can stop it now. The answer is kept unless
    /// the store really moved on: a lock file deleted under this run, even
    /// with another run holding the new one, does not stop it (that run
    /// sends nothing while this request is marked live), and a store whose
    /// other fields changed gets this set on top of them.
    fn commit_after_request(&self, request: &mut Request, base_generation: u64, next: &StoreState) -> Result<u64> {
        if self.ensure_lock_held()? == LockCheck::HeldByAnother {
            tracing::warn!(
                "the lock file {} was deleted while this run asked Withings, and another run holds the new one; it has sent nothing (this run's request is marked live), so the answer is saved",
                self.store.lock_path().display()
            );
        }
        let on_disk = self.reload(request)?;
        let (base, next) = self.onto(request, on_disk.clone(), base_generation, next)?;
        let generation = next_generation(base, &self.store.path, "the stored tokens are unchanged")?;
        let tokens_generation = tokens_generation_after(&on_disk, &next, generation);
        self.store.check_write(&on_disk, &next)?;
        let bytes = serialize_store(&next, generation, tokens_generation, None, &self.store.keyring)?;
        let mut temp = request
            .temp
            .take()
            .ok_or_else(|| Error::internal(anyhow::anyhow!("the space reserved for the save was used already")))?;
        // Holding the answer, it outlives a failed save: the next run finds
        // it (see `RescueFile::salvage`) even when no rescue file is written.
        temp.keep_unless_renamed();
        temp.fill(&bytes).map_err(|e| self.write_error(e))?;
        if self.ensure_lock_held()? != LockCheck::Held {
            // Another run may have saved its own fields meanwhile.
            let now = self.reload(request)?;
            if now.generation != on_disk.generation {
                return Err(self.moved_on(now.generation));
            }
        }
        temp.rename_into_place_in(Some(&request.dir))
            .map_err(|e| self.write_error(e))?;
        Ok(generation)
    }

    /// The store as it is now, read through the descriptor opened before
    /// the request while the path still names that file (every save
    /// renames a new file over it, so another inode means a change).
    fn reload(&self, request: &Request) -> Result<StoreState> {
        let path = &self.store.path;
        match &request.store_file {
            Some(file) if fsutil::is_file_at(file, path).unwrap_or(false) => {
                let bytes = fsutil::read_open_file(file, MAX_STORE_BYTES).map_err(|e| self.store.unreadable(e))?;
                let bytes = zeroize::Zeroizing::new(bytes);
                self.store.bound(self.store.parse(&bytes)?)
            }
            None if self.store_vanished() => self.store.bound(StoreState::default()),
            _ => self.store.load(),
        }
    }

    /// Where the answer goes: the base it started from when the store is
    /// still there; the store's new generation when only fields other than
    /// the token set changed (or the store was deleted: nothing newer to
    /// protect); refused when another set was saved.
    fn onto(
        &self,
        request: &Request,
        on_disk: StoreState,
        base_generation: u64,
        next: &StoreState,
    ) -> Result<(u64, StoreState)> {
        if on_disk.generation == base_generation {
            return Ok((base_generation, next.clone()));
        }
        if self.store_vanished() {
            tracing::warn!(
                "the token store {} was deleted while this run asked Withings; the new set is written again",
                self.store.path.display()
            );
            return Ok((base_generation, next.clone()));
        }
        if !same_set(on_disk.tokens.as_ref(), request.loaded.tokens.as_ref()) {
            return Err(self.moved_on(on_disk.generation));
        }
        tracing::debug!(
            "saving onto generation {}: only fields other than the token set changed",
            on_disk.generation
        );
        Ok((on_disk.generation, on_disk.with_set_of(next)))
    }

    fn moved_on(&self, generation: u64) -> Error {
        Error::AnswerDropped {
            detail: format!(
                "another run saved a set of its own in {} (now generation {generation}) while this run asked Withings, which stays",
                self.store.path.display()
            ),
        }
    }

    fn store_vanished(&self) -> bool {
        matches!(fs::symlink_metadata(&self.store.path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
    }

    fn check_base(&self, on_disk: u64, base_generation: u64) -> Result<()> {
        if on_disk == base_generation {
            return Ok(());
        }
        Err(Error::internal(anyhow::anyhow!(
            "store {} moved from generation {base_generation} to {on_disk} under the lock; refusing to overwrite it",
            self.store.path.display()
        )))
    }

    fn write_error(&self, e: std::io::Error) -> Error {
        let action = crate::error::limit_action(&e)
            .unwrap_or("free disk space or fix permissions; the previous store file is intact");
        Error::config(
            format!("cannot write token store {}: {e}", self.store.path.display()),
            action,
        )
    }

    /// [`StoreLock::ensure_lock_held`], refusing when another run holds the
    /// lock file now at the path: for everything but the save of an answer.
    fn ensure_lock_held_alone(&self) -> Result<LockCheck> {
        match self.ensure_lock_held()? {
            LockCheck::HeldByAnother => Err(self.lock_taken()),
            check => Ok(check),
        }
    }

    fn lock_taken(&self) -> Error {
        let lock_path = self.store.lock_path();
        Error::config(
            format!(
                "the lock file {} was deleted while this run held it, and another withings-token run holds the new one; this run stops rather than overwrite {} under it",
                lock_path.display(),
                self.store.path.display()
            ),
            format!(
                "never delete {} while withings-token runs; run the command again once the other run is done",
                lock_path.display()
            ),
        )
    }

    /// Checks that the locked file is still the one at the lock path. When
    /// it was deleted, a second run may have locked a new one and think it
    /// is alone: lock that one too if it is free.
    fn ensure_lock_held(&self) -> Result<LockCheck> {
        let lock_path = self.store.lock_path();
        let mut held = locked(&self.file);
        let io_error = |e: std::io::Error| lock_unsupported(&lock_path, e);
        if fsutil::is_file_at(&held, &lock_path).map_err(io_error)? {
            return Ok(LockCheck::Held);
        }
        let fresh = open_lock_file(&lock_path).map_err(|e| lock_file_error(&lock_path, e))?;
        match fresh.try_lock() {
            Ok(()) if fsutil::is_file_at(&fresh, &lock_path).map_err(io_error)? => {
                tracing::warn!(
                    "the lock file {} was deleted while this run held it; it was made again and locked",
                    lock_path.display()
                );
                *held = fresh;
                Ok(LockCheck::Retaken)
            }
            Ok(()) | Err(std::fs::TryLockError::WouldBlock) => Ok(LockCheck::HeldByAnother),
            Err(std::fs::TryLockError::Error(e)) => Err(io_error(e)),
        }
    }

    /// Marks a Withings request as in flight and takes everything its save
    /// (or, failing that, its rescue) needs, all before it is sent. The
    /// journal comes first, so it stays the first file a refresh writes.
    pub fn begin_request(&self, generation: u64, grant: &str) -> Result<()> {
        // Before the journal: a run that lost its lock must not touch the
        // journal of the run that holds it now.
        self.ensure_lock_held_alone()?;
        let journal = self.write_journal(generation, grant)?;
        match self.prepare(generation, journal) {
            Ok(request) => {
                *locked(&self.request) = Some(request);
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_file(self.store.journal_path());
                Err(e)
            }
        }
    }

    /// Writes the in-flight mark; returns it open and locked (see [`Request`]).
    fn write_journal(&self, generation: u64, grant: &str) -> Result<File> {
        let mark = InFlight {
            pid: std::process::id(),
            started_at: crate::tokens::now(),
            generation,
            grant: grant.to_owned(),
            owner: None,
        };
        let bytes = serde_json::to_vec(&mark).map_err(anyhow::Error::from)?;
        // Not fsync-ed: the mark only lets a later run say that one died
        // mid-request; the tokens' safety rests on the store's own save.
        fsutil::write_atomically_unsynced(&self.store.journal_path(), &bytes).map_err(|e| {
            self.cannot_prepare(
                &format!("write the journal {} of", self.store.journal_path().display()),
                e,
            )
        })
    }

    /// The descriptors and space of [`Request`]; the store must still be at
    /// `generation`.
    fn prepare(&self, generation: u64, journal: File) -> Result<Request> {
        next_generation(generation, &self.store.path, UNCHANGED)?;
        let dir = File::open(fsutil::parent_dir(&self.store.path))
            .map_err(|e| self.cannot_prepare("open the directory of", e))?;
        let store_file = match File::open(&self.store.path) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(self.cannot_prepare("open", e)),
        };
        let mut request = Request {
            journal,
            loaded: StoreState::default(),
            store_file,
            dir,
            temp: None,
            rescue: None,
        };
        request.loaded = self.reload(&request)?;
        if request.loaded.generation != generation {
            return Err(Error::StoreUnavailable {
                detail: format!(
                    "another run saved {} after this run read it; {UNCHANGED}",
                    self.store.path.display()
                ),
            });
        }
        let size = self.reservation_size();
        request.temp = Some(self.reserve_space(size)?);
        let rescue = self.store.rescue_file();
        request.rescue = Some(
            rescue
                .prepare(size)
                .map_err(|e| self.cannot_prepare(&format!("reserve {} for", rescue.path().display()), e))?,
        );
        Ok(request)
    }

    /// Ends the in-flight mark (after the answer was handled, either way)
    /// and gives back any space reserved and not used.
    pub fn end_request(&self) {
        let Some(request) = locked(&self.request).take() else {
            return;
        };
        // Only our own mark: a peer's, made after ours was deleted, stays.
        let journal_path = self.store.journal_path();
        if fsutil::is_file_at(&request.journal, &journal_path).unwrap_or(false) {
            let _ = fs::remove_file(&journal_path);
        }
    }

    /// Keeps `next` in the rescue file whose space `begin_request` took.
    pub fn rescue(&self, base_generation: u64, next: &StoreState) -> Result<String> {
        let prepared = locked(&self.request).as_mut().and_then(|r| r.rescue.take());
        let rescue = self.store.rescue_file();
        let prepared = prepared
            .ok_or_else(|| Error::internal(anyhow::anyhow!("no space was taken for {}", rescue.path().display())))?;
        prepared.write(&rescue, base_generation, next)?;
        Ok(rescue.path().display().to_string())
    }

    /// A mark left by a process that died mid-request, if any.
    pub fn interrupted_request(&self) -> Option<InFlight> {
        // Bounded and regular files only, as the store: a FIFO put there
        // must not hang every run.
        let bytes = fsutil::read_regular_file(&self.store.journal_path(), MAX_JOURNAL_BYTES).ok()?;
        // The stored set is still the last one saved: report its generation.
        Some(
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| InFlight::unreadable(self.store.load().map(|s| s.generation).unwrap_or(0))),
        )
    }
}

/// `generation + 1`, or a refusal at the largest generation there is
/// (`then` says what did not happen).
fn next_generation(generation: u64, path: &Path, then: &str) -> Result<u64> {
    generation.checked_add(1).ok_or_else(|| {
        Error::config(
            format!(
                "token store {} is at generation {generation}, the largest a store can count to, so it cannot be saved again; {then}",
                path.display()
            ),
            format!(
                "with no other withings-token run active, edit {} and set \"generation\" to 1 (or move it aside and seed it again)",
                path.display()
            ),
        )
    })
}

#[async_trait]
impl TokenStore for FileStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn load(&self) -> Result<StoreState> {
        FileStore::load(self)
    }

    fn load_local(&self) -> Option<Result<StoreState>> {
        Some(FileStore::load(self))
    }

    fn stamp(&self) -> Option<StoreStamp> {
        FileStore::stamp(self)
    }

    async fn load_stamped(&self) -> Result<(StoreState, Option<StoreStamp>)> {
        FileStore::load_stamped(self)
    }

    async fn lock(&self, timeout: Duration) -> Result<Box<dyn StoreLease>> {
        Ok(Box::new(FileStore::lock(self, timeout)?))
    }

    /// The rescue file, or a temporary file a run left behind that may
    /// hold a set it could not save (the lock's holder salvages it).
    fn waiting_rescue(&self) -> Option<String> {
        self.rescue_file().waiting(&[&self.path])
    }

    async fn load_events(&self) -> Result<Option<Vec<u8>>> {
        self.load_events_file()
    }

    fn load_events_local(&self) -> Option<Result<Option<Vec<u8>>>> {
        Some(self.load_events_file())
    }

    async fn swap_events(&self, expected: Option<&[u8]>, next: &[u8]) -> Result<bool> {
        self.swap_events_file(expected, next)
    }
}

#[async_trait]
impl StoreLease for StoreLock {
    fn check_write(&self, loaded: &StoreState) -> Result<()> {
        self.store.check_write(loaded, loaded)
    }

    async fn load(&self) -> Result<StoreState> {
        StoreLock::load(self)
    }

    async fn save(&self, base_generation: u64, next: &StoreState) -> Result<u64> {
        StoreLock::save(self, base_generation, next)
    }

    async fn begin_request(&self, generation: u64, grant: &str) -> Result<()> {
        StoreLock::begin_request(self, generation, grant)
    }

    async fn end_request(&self) {
        StoreLock::end_request(self)
    }

    async fn interrupted_request(&self) -> Option<InFlight> {
        StoreLock::interrupted_request(self)
    }

    async fn rescue(&self, base_generation: u64, next: &StoreState) -> Result<String> {
        StoreLock::rescue(self, base_generation, next)
    }

    async fn rescued(&self) -> Option<Result<StoreState>> {
        let rescued = self.store.rescue_file().read()?;
        Some(rescued.and_then(|state| self.store.bound(state)))
    }

    async fn drop_rescue(&self) {
        self.store.rescue_file().remove();
    }

    async fn release(self: Box<Self>) {}
}

#[cfg(test)]
mod tests;
