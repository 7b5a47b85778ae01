//! Durable file writes shared by the token store and the env file.
//!
//! A write goes to a unique temporary file beside the target, created 0600,
//! is fsync-ed, renamed over the target, and the directory is fsync-ed, so a
//! crash at any instant leaves either the old or the new complete file.
//! Callers hold a cross-process lock, which is also why any temporary file
//! found beside the target belongs to a writer that died: it is removed.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const TEMP_MARK: &str = ".tmp.";

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

/// Writes `bytes` to `target` atomically and durably, mode 0600.
pub fn write_atomically(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = parent_dir(target);
    let temp = dir.join(format!(
        "{}{}.{}",
        temp_prefix(target),
        std::process::id(),
        random_suffix()
    ));
    let result = write_then_rename(&temp, target, bytes);
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result?;
    failpoint("after_rename", target);
    File::open(dir)?.sync_all()
}

fn write_then_rename(temp: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(temp)?;
    file.write_all(bytes)?;
    failpoint("after_temp_write", target);
    file.sync_all()?;
    drop(file);
    fs::rename(temp, target)
}

/// Removes temporary files left beside `target` by a writer that was killed.
/// Only call this while holding the lock that every writer of `target` takes.
pub fn remove_stale_temps(target: &Path) -> Vec<PathBuf> {
    let prefix = temp_prefix(target);
    let Ok(entries) = fs::read_dir(parent_dir(target)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .filter(|p| fs::remove_file(p).is_ok())
        .collect()
}

/// True when group or others may read the file.
pub fn readable_by_others(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o077 != 0)
        .unwrap_or(false)
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    // A clash only makes `create_new` fail, which the caller reports.
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_creates_a_private_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tokens.json");
        write_atomically(&target, b"one").unwrap();
        write_atomically(&target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temps_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tokens.json");
        fs::write(dir.path().join(".tokens.json.tmp.123.abc"), "partial").unwrap();
        fs::write(dir.path().join("other.json"), "keep").unwrap();
        assert_eq!(remove_stale_temps(&target).len(), 1);
        assert!(dir.path().join("other.json").exists());
    }
}
