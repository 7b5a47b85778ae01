//! Files and disks: permission bits, FIFOs, and a tiny tmpfs that fills up.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};

/// The permission bits of `path` (`0o600`).
pub fn file_mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

pub fn mkfifo(path: &Path) {
    let made = StdCommand::new("mkfifo").arg(path).status().expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// A 64 KiB tmpfs, unmounted on drop.
pub struct TinyDisk {
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

impl TinyDisk {
    /// Mounts one. Only root may: the tests that need one are ignored but
    /// for root, as whom `bash .ci/test` runs them (`--include-ignored`).
    pub fn mount() -> TinyDisk {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = StdCommand::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "mounting a tmpfs failed (this test needs root, as `bash .ci/test` runs it): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        TinyDisk {
            root: dir.path().to_path_buf(),
            _dir: dir,
        }
    }
}

impl TinyDisk {
    /// Makes the disk read-only (or writable again): a write that fails
    /// even for root.
    pub fn set_read_only(&self, read_only: bool) {
        let option = if read_only { "remount,ro" } else { "remount,rw" };
        let status = StdCommand::new("mount")
            .args(["-o", option])
            .arg(&self.root)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -o {option} failed");
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = StdCommand::new("umount").arg(&self.root).status();
    }
}
