//! Durable file writes shared by the token store and the env file.
//!
//! A write goes to a unique temporary file beside the target, created 0600,
//! is fsync-ed, renamed over the target, and the directory is fsync-ed, so a
//! crash at any instant leaves either the old or the new complete file.
//! Callers hold a cross-process lock. Every temporary file is also locked
//! (`flock`) by the process that made it for as long as it has it open, so
//! one found beside the target and not locked belongs to a writer that
//! died, and is removed; a live writer's never is (a peer that wrongly
//! believes it holds the store lock, its lock file deleted, must not take
//! away the space another run's answer is to be saved in).
//!
//! The temporary file can be made (and filled with real zero bytes, fsync-ed)
//! before the new contents are known: [`reserve`]. The later write then
//! overwrites blocks the file system already handed out, so a disk that fills
//! up in between cannot stop it. That holds on file systems that overwrite in
//! place (ext4, xfs, tmpfs); copy-on-write ones (btrfs, ZFS) may still need
//! fresh blocks, and there the reservation only proves the space was there.
//!
//! A file that replaces another keeps the old one's owner and group, and a
//! new one takes its directory's: root running the tool on a user's files
//! must not leave them unreadable to the user's own runs. Only the file this
//! process made is ever chown-ed, through its open handle, never a path.
//!
//! Reading goes through [`read_regular_file`]: a FIFO or a device in place
//! of a file is refused before a byte is read, and size is capped.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

const TEMP_MARK: &str = ".tmp.";

/// `O_NONBLOCK`, so that opening a FIFO for reading returns at once instead
/// of waiting for a writer. Its value is 0o4000 on the Linux architectures
/// listed (others differ); elsewhere no flag is passed, and the type check
/// by path before opening still refuses a FIFO (leaving only the race of
/// one being put there in between).
const O_NONBLOCK: i32 = if cfg!(all(
    target_os = "linux",
    any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "powerpc64",
        target_arch = "s390x",
        target_arch = "loongarch64"
    )
)) {
    0o4000
} else {
    0
};

/// Reads the file at `path` whole, when it is a regular file of at most
/// `max_bytes`. A FIFO (whose reader waits for a writer forever), a device
/// such as `/dev/zero` (which never ends) or a directory is refused with
/// `InvalidInput` before a byte is read; a larger file with `FileTooLarge`.
/// Both messages read after "cannot read PATH: ".
pub fn read_regular_file(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    read_regular_file_and_metadata(path, max_bytes).map(|(bytes, _)| bytes)
}

/// [`read_regular_file`], and the metadata of the file that was read (taken
/// from the open handle, before reading): what a cache of its contents
/// compares later (`store::FileStore::stamp`).
pub fn read_regular_file_and_metadata(path: &Path, max_bytes: u64) -> std::io::Result<(Vec<u8>, fs::Metadata)> {
    // By path first: where O_NONBLOCK is unknown, opening a FIFO would block.
    check_regular(&fs::metadata(path)?, max_bytes)?;
    let file = OpenOptions::new().read(true).custom_flags(O_NONBLOCK).open(path)?;
    // Then the handle: the file that is really read.
    let meta = file.metadata()?;
    check_regular(&meta, max_bytes)?;
    // Sized for the whole file and the read that finds its end.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).saturating_add(1));
    // The file may grow after the check; never keep more than the cap.
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok((bytes, meta))
}

/// Opens `path` for writing, creating it (mode 0600) when missing, when it
/// is a regular file: a FIFO (whose opening waits for a reader forever), a
/// device or a directory is refused with `InvalidInput`, as for reading.
/// `Ok((file, true))` when this call made the file.
pub fn open_regular_for_writing(path: &Path) -> std::io::Result<(File, bool)> {
    let made = OpenOptions::new().create_new(true).write(true).mode(0o600).open(path);
    match made {
        Ok(file) => return Ok((file, true)),
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        Err(_) => {}
    }
    // By path first: where O_NONBLOCK is unknown, opening a FIFO would block.
    match fs::metadata(path) {
        Ok(meta) => check_regular(&meta, u64::MAX)?,
        // Vanished since: made below, without a new owner.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(O_NONBLOCK)
        .open(path)?;
    check_regular(&file.metadata()?, u64::MAX)?;
    Ok((file, false))
}

/// Whether `e` is the process (or system) running out of file descriptors:
/// the limit's fault, not the disk's or the permissions'.
pub fn out_of_descriptors(e: &std::io::Error) -> bool {
    // EMFILE (this process), ENFILE (the whole system).
    matches!(e.raw_os_error(), Some(24 | 23))
}

fn check_regular(meta: &fs::Metadata, max_bytes: u64) -> std::io::Result<()> {
    let kind = meta.file_type();
    if kind.is_file() {
        return if meta.len() > max_bytes {
            Err(too_large(max_bytes))
        } else {
            Ok(())
        };
    }
    let kind_name = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "something else"
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("it is {kind_name}, not a regular file"),
    ))
}

fn too_large(max_bytes: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::FileTooLarge,
        format!("it is larger than {}", byte_size(max_bytes)),
    )
}

/// `1 MiB`, `64 KiB` or `100 bytes`.
/// A size as people say it: `64 KiB`, `1 MiB`, `300 bytes`.
pub fn byte_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Creates `dir` (and parents) with mode 0700 when it does not exist.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// The directory a file lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}{TEMP_MARK}")
}

fn temp_path_for(target: &Path) -> PathBuf {
    parent_dir(target).join(format!(
        "{}{}.{}",
        temp_prefix(target),
        std::process::id(),
        random_suffix()
    ))
}

/// Writes `bytes` to `target` atomically (never half-written) but not
/// durably: for marks whose loss in a power cut costs only a message (the
/// in-flight journal), saving two disk flushes per refresh. Returns the
/// file, still open and locked: while the caller keeps it, the mark is
/// known to be a live process's (see [`is_locked_by_another`]).
pub fn write_atomically_unsynced(target: &Path, bytes: &[u8]) -> std::io::Result<File> {
    let (path, mut file) = create_temp(target)?;
    let written = file.write_all(bytes).and_then(|()| {
        failpoint("after_temp_write", target);
        fs::rename(&path, target)
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    failpoint("after_rename", target);
    Ok(file)
}

/// Whether another open file (this process's or another's) holds a lock on
/// the file `file` has open. A file that cannot be locked at all (a file
/// system without locks) counts as not held.
pub fn is_locked_by_another(file: &File) -> bool {
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(_)) => false,
    }
}

/// Reads the whole file `file` has open (from its start, whatever its
/// position), up to `max_bytes`: a file opened before a request is read
/// again after it without a new descriptor.
pub fn read_open_file(file: &File, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = file.read_at(&mut chunk, bytes.len() as u64)?;
        if n == 0 {
            return Ok(bytes);
        }
        bytes.extend_from_slice(&chunk[..n]);
        if bytes.len() as u64 > max_bytes {
            return Err(too_large(max_bytes));
        }
    }
}

/// Writes `bytes` to `target` atomically and durably, mode 0600.
pub fn write_atomically(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temp = reserve(target, 0)?;
    temp.fill(bytes)?;
    temp.rename_into_place()
}

/// Writes `bytes` to `target`, which must not exist, atomically and
/// durably, mode 0600: a temporary file beside it, fsync-ed, then linked in
/// under its name and the directory fsync-ed. A link never replaces a file,
/// so a file already there, or put there meanwhile, is `AlreadyExists` and
/// stays as it was: for what must never be overwritten (a private key).
pub fn write_new_atomically(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temp = reserve(target, 0)?;
    temp.fill(bytes)?;
    temp.link_into_place()
}

/// A temporary file beside `target`, holding space for its next contents.
/// Dropped before [`ReservedFile::rename_into_place`], it is removed.
pub struct ReservedFile {
    path: PathBuf,
    target: PathBuf,
    file: File,
    /// What `fill` wrote, kept in case the temporary file has to be made again.
    contents: Vec<u8>,
    renamed: bool,
    /// Left in place when it is never renamed (see [`ReservedFile::keep_unless_renamed`]).
    keep: bool,
}

/// Creates the temporary file for `target` (mode 0600, `create_new`) and
/// writes `size` zero bytes to it, so that the space is taken now: a full
/// disk fails this write (ext4 and XFS count delayed allocations when the
/// write is made, tmpfs allocates pages), not the save that overwrites
/// them. No fsync: forcing zeros to disk would reserve nothing more, and it
/// costs a disk flush on every refresh. With `size` 0 it only creates the file.
pub fn reserve(target: &Path, size: u64) -> std::io::Result<ReservedFile> {
    let (path, file) = create_temp(target)?;
    let mut reserved = ReservedFile {
        path,
        target: target.to_path_buf(),
        file,
        contents: Vec::new(),
        renamed: false,
        keep: false,
    };
    if size > 0 {
        // Drop removes the partial file when this fails (ENOSPC, EFBIG).
        write_zeros(&mut reserved.file, size)?;
    }
    Ok(reserved)
}

/// A new temporary file for `target` (mode 0600, `create_new`, so never a
/// file someone else put there), owned as `target` is, or, when there is no
/// target yet, as its directory is, and locked while it is open (see the
/// module doc).
fn create_temp(target: &Path) -> std::io::Result<(PathBuf, File)> {
    let path = temp_path_for(target);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    if let Err(e) = file.try_lock() {
        // A file system without locks: the store lock still guards it.
        tracing::debug!("{} is not locked ({e:?})", path.display());
    }
    let owner = fs::metadata(target).or_else(|_| fs::metadata(parent_dir(target)));
    if let Ok(owner) = owner {
        give_to(&file, &path, owner.uid(), owner.gid());
    }
    Ok((path, file))
}

/// Gives `file`, which this process has just created at `path`, to the owner
/// and group of the directory it is in (a lock file made by root in a
/// user's directory stays the user's). Never fails: see [`give_to`].
pub fn give_to_directory_owner(file: &File, path: &Path) {
    if let Ok(dir) = fs::metadata(parent_dir(path)) {
        give_to(file, path, dir.uid(), dir.gid());
    }
}

/// `fchown`s the open `file` to `uid`:`gid` when it is not theirs already.
/// Only root may give a file away (an ordinary user can at most change its
/// group), so EPERM is expected when not root; no failure here is worth
/// failing a save for, so each is only logged at debug.
fn give_to(file: &File, path: &Path, uid: u32, gid: u32) {
    let Ok(meta) = file.metadata() else { return };
    if (meta.uid(), meta.gid()) == (uid, gid) {
        return;
    }
    if let Err(e) = std::os::unix::fs::fchown(file, Some(uid), Some(gid)) {
        tracing::debug!(
            "{} keeps owner {}:{}; giving it to {uid}:{gid} failed ({e})",
            path.display(),
            meta.uid(),
            meta.gid()
        );
    }
}

fn write_zeros(file: &mut File, size: u64) -> std::io::Result<()> {
    let chunk = [0u8; 8192];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(())
}

impl ReservedFile {
    /// Keeps the file where it is should it never be renamed into place:
    /// for contents that exist nowhere else (a Withings answer), which the
    /// next run under the lock can still find (`store::FileStore`).
    pub fn keep_unless_renamed(&mut self) {
        self.keep = true;
    }

    /// Gives the file `mode` instead of 0600: for a file that replaces one
    /// whose mode its owner chose (the config file).
    pub fn set_mode(&self, mode: u32) -> std::io::Result<()> {
        self.file.set_permissions(fs::Permissions::from_mode(mode))
    }

    /// Overwrites the reservation from offset 0 with `bytes`, cuts it to
    /// their length and fsyncs it.
    pub fn fill(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        injected_error("fill", &self.target)?;
        self.contents = bytes.to_vec();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(bytes)?;
        self.file.set_len(bytes.len() as u64)?;
        failpoint("after_temp_write", &self.target);
        self.file.sync_all()
    }

    /// Renames the filled file over the target and fsyncs the directory.
    pub fn rename_into_place(self) -> std::io::Result<()> {
        self.rename_into_place_in(None)
    }

    /// [`ReservedFile::rename_into_place`], syncing the directory through
    /// `dir`, opened before (so that the save needs no new descriptor).
    pub fn rename_into_place_in(mut self, dir: Option<&File>) -> std::io::Result<()> {
        // Only a peer that wrongly believed it held the lock removes our
        // temporary file; the contents are still here, so write them again.
        if !is_file_at(&self.file, &self.path)? {
            self.recreate()?;
        }
        injected_error("rename", &self.target)?;
        fs::rename(&self.path, &self.target)?;
        self.renamed = true;
        failpoint("after_rename", &self.target);
        // The new content is in place: a failed directory fsync only weakens
        // durability across a power cut, and reporting the write as failed
        // would make a saved set look lost.
        let synced = match dir {
            Some(dir) => dir.sync_all(),
            None => File::open(parent_dir(&self.target)).and_then(|dir| dir.sync_all()),
        };
        if let Err(e) = synced {
            tracing::warn!(
                "{} was written, but its directory could not be synced ({e})",
                self.target.display()
            );
        }
        Ok(())
    }

    /// Links the filled file in as the target, which must not exist
    /// (`AlreadyExists` otherwise), removes its temporary name and fsyncs
    /// the directory.
    pub fn link_into_place(mut self) -> std::io::Result<()> {
        if !is_file_at(&self.file, &self.path)? {
            self.recreate()?;
        }
        fs::hard_link(&self.path, &self.target)?;
        // The target holds the file now; the temporary name goes.
        self.renamed = true;
        let _ = fs::remove_file(&self.path);
        if let Err(e) = File::open(parent_dir(&self.target)).and_then(|dir| dir.sync_all()) {
            tracing::warn!(
                "{} was written, but its directory could not be synced ({e})",
                self.target.display()
            );
        }
        Ok(())
    }

    fn recreate(&mut self) -> std::io::Result<()> {
        let (path, mut file) = create_temp(&self.target)?;
        self.path = path;
        file.write_all(&self.contents)?;
        file.sync_all()?;
        self.file = file;
        Ok(())
    }
}

impl Drop for ReservedFile {
    fn drop(&mut self) {
        // The copy of a set (or a key) kept for `recreate`.
        zeroize::Zeroize::zeroize(&mut self.contents);
        if !self.renamed && !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// True when `path` names the very file `file` has open (same device and
/// inode); false when the path is gone or names another file.
pub fn is_file_at(file: &File, path: &Path) -> std::io::Result<bool> {
    let open = file.metadata()?;
    match fs::metadata(path) {
        Ok(at_path) => Ok(open.dev() == at_path.dev() && open.ino() == at_path.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes temporary files left beside `targets` by a writer that died:
/// those no live process holds locked (see the module doc). Only call this
/// while holding the lock that every writer of them takes.
pub fn remove_stale_temps(targets: &[&Path]) -> Vec<PathBuf> {
    stale_temps(targets)
        .into_iter()
        .filter(|p| fs::remove_file(p).is_ok())
        .collect()
}

/// The temporary files beside `targets` that no live process holds; each
/// directory is read once, however many of `targets` it holds (a store, its
/// journal and its rescue: one `getdents` on the paths that run often).
pub fn stale_temps(targets: &[&Path]) -> Vec<PathBuf> {
    let mut dirs: Vec<&Path> = targets.iter().map(|t| parent_dir(t)).collect();
    dirs.sort();
    dirs.dedup();
    let prefixes: Vec<String> = targets.iter().map(|t| temp_prefix(t)).collect();
    dirs.into_iter()
        .flat_map(|dir| {
            dot_names(dir)
                .iter()
                .filter(|name| {
                    let name = name.to_string_lossy();
                    prefixes.iter().any(|prefix| name.starts_with(prefix.as_str()))
                })
                .map(|name| dir.join(name))
                .collect::<Vec<_>>()
        })
        .filter(|p| !is_held_by_a_live_process(p))
        .collect()
}

/// A directory's hidden names (temporary files are), as listed when its
/// change time was `changed`; `settled`: that time was over a second old
/// when listed, so any later change moves it (times are coarser than a
/// rename), and the listing stands while it stays.
struct DotNames {
    changed: (i64, i64),
    settled: bool,
    names: Arc<Vec<std::ffi::OsString>>,
}

/// Listings kept per directory: `refresh --all` over a thousand accounts
/// beside one another asks of their one directory a thousand times.
static DOT_NAMES: LazyLock<Mutex<HashMap<PathBuf, DotNames>>> = LazyLock::new(Default::default);

fn dot_names(dir: &Path) -> Arc<Vec<std::ffi::OsString>> {
    let Ok(meta) = fs::metadata(dir) else {
        return Arc::default();
    };
    let changed = (meta.mtime(), meta.mtime_nsec());
    if let Some(kept) = crate::locked(&DOT_NAMES).get(dir)
        && kept.settled
        && kept.changed == changed
    {
        return Arc::clone(&kept.names);
    }
    let settled = meta
        .modified()
        .ok()
        .and_then(|m| std::time::SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(1));
    let names: Arc<Vec<std::ffi::OsString>> = Arc::new(match fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name())
            .filter(|name| name.as_encoded_bytes().first() == Some(&b'.'))
            .collect(),
        Err(_) => Vec::new(),
    });
    let kept = DotNames {
        changed,
        settled,
        names: Arc::clone(&names),
    };
    crate::locked(&DOT_NAMES).insert(dir.to_path_buf(), kept);
    names
}

/// Whether a live process holds the file at `path` open and locked (a
/// temporary file, the journal). Opened without blocking (a FIFO put there).
pub fn is_held_by_a_live_process(path: &Path) -> bool {
    match OpenOptions::new().read(true).custom_flags(O_NONBLOCK).open(path) {
        Ok(file) => is_locked_by_another(&file),
        Err(_) => false,
    }
}

/// True when group or others may read the file `meta` describes.
pub fn readable_by_others(meta: &fs::Metadata) -> bool {
    meta.permissions().mode() & 0o077 != 0
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    // A clash only makes `create_new` fail, which the caller reports.
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether exec(2) would find `program`, as it searches: a name with a
/// slash is a path, any other is looked for in each PATH directory. The
/// error is the one exec would give (not found, or not executable), worded
/// for the `exec` command, which asks before it refreshes anything.
pub fn find_program(program: &std::ffi::OsStr) -> std::io::Result<()> {
    let runnable = |path: &Path| fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    let candidates: Vec<PathBuf> = if program.as_encoded_bytes().contains(&b'/') {
        vec![program.into()]
    } else {
        // The one door to the environment is `settings`; PATH is exec's own.
        #[allow(clippy::disallowed_methods)]
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
        std::env::split_paths(&path).map(|dir| dir.join(program)).collect()
    };
    if candidates.iter().any(|c| runnable(c)) {
        return Ok(());
    }
    if candidates.iter().any(|c| c.exists()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "it exists but is not an executable file",
        ));
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "not found (nothing was refreshed)",
    ))
}

/// A hex string of `len` random bytes (states, temporary names).
pub fn random_hex(len: usize) -> std::io::Result<String> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A private temporary directory, removed (with its contents) on drop.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(prefix: &str) -> std::io::Result<ScratchDir> {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", random_hex(6)?));
        fs::create_dir(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        Ok(ScratchDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Test builds only (`--features failpoints`): dies on the spot when
/// `WITHINGS_TOKEN_FAILPOINT` names this point, to prove crash safety.
/// `after_rename` fires on the first write of any file;
/// `after_rename:tokens.json` only on a write of a file of that name (so a
/// test can crash the store write rather than the journal's, which comes
/// first). Release builds compile this to nothing.
#[cfg(feature = "failpoints")]
pub fn failpoint(name: &str, target: &Path) {
    #[allow(clippy::disallowed_methods)]
    let Ok(wanted) = std::env::var("WITHINGS_TOKEN_FAILPOINT") else {
        return;
    };
    let file = target.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let hit = match wanted.split_once(':') {
        Some((point, only)) => point == name && only == file,
        None => wanted == name,
    };
    if hit {
        std::process::abort();
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn failpoint(_name: &str, _target: &Path) {}

/// Test builds only: `WITHINGS_TOKEN_FAILPOINT=error:NAME[:FILE][#N]` makes
/// the step NAME (`fill`, `rename`) fail with an I/O error, for any file or only one
/// of that name, the first N times or always: a disk that fails after
/// Withings answered. Release builds compile this to nothing.
#[cfg(feature = "failpoints")]
pub fn injected_error(name: &str, target: &Path) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static HITS: AtomicU64 = AtomicU64::new(0);
    #[allow(clippy::disallowed_methods)]
    let Ok(wanted) = std::env::var("WITHINGS_TOKEN_FAILPOINT") else {
        return Ok(());
    };
    let Some(spec) = wanted.strip_prefix("error:") else {
        return Ok(());
    };
    let (spec, times) = match spec.split_once('#') {
        Some((spec, n)) => (spec, n.parse::<u64>().ok()),
        None => (spec, None),
    };
    let file = target.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let hit = match spec.split_once(':') {
        Some((point, only)) => point == name && only == file,
        None => spec == name,
    };
    if hit && times.is_none_or(|n| HITS.fetch_add(1, Ordering::SeqCst) < n) {
        return Err(std::io::Error::other("injected failure (WITHINGS_TOKEN_FAILPOINT)"));
    }
    Ok(())
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn injected_error(_name: &str, _target: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests;
