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
fn a_new_file_is_written_private_and_never_over_an_existing_one() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("identity.txt");
    write_new_atomically(&target, b"first").unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"first");
    assert_eq!(fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);

    let refused = write_new_atomically(&target, b"second").unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(fs::read(&target).unwrap(), b"first");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temp left");
}

#[test]
fn a_reservation_filled_and_renamed_becomes_the_target_0600_with_no_temp_left() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("tokens.json");
    fs::write(&target, "old").unwrap();
    let mut reserved = reserve(&target, 16 * 1024).unwrap();
    let temp = reserved.path.clone();
    assert!(
        temp.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".tokens.json.tmp.")
    );
    assert_eq!(
        fs::metadata(&temp).unwrap().len(),
        16 * 1024,
        "the space is really written"
    );
    assert_eq!(fs::metadata(&temp).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fs::read(&target).unwrap(), b"old", "reserving leaves the target alone");

    reserved.fill(b"new contents").unwrap();
    reserved.rename_into_place().unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"new contents");
    assert_eq!(fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temp left");
}

#[test]
fn a_dropped_reservation_removes_its_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("tokens.json");
    let reserved = reserve(&target, 4096).unwrap();
    assert!(reserved.path.exists());
    drop(reserved);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_live_writers_reservation_is_never_taken_for_a_dead_ones() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("tokens.json");
    let reserved = reserve(&target, 4096).unwrap();
    assert_eq!(remove_stale_temps(&[&target]), Vec::<PathBuf>::new());
    assert!(reserved.path.exists());
}

#[test]
fn a_reservation_removed_by_someone_else_is_written_again_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("tokens.json");
    let mut reserved = reserve(&target, 4096).unwrap();
    reserved.fill(b"rotated pair").unwrap();
    fs::remove_file(&reserved.path).unwrap();
    reserved.rename_into_place().unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"rotated pair");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn is_file_at_tells_a_replaced_file_from_the_open_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.lock");
    let file = File::create(&path).unwrap();
    assert!(is_file_at(&file, &path).unwrap());
    fs::remove_file(&path).unwrap();
    assert!(!is_file_at(&file, &path).unwrap(), "gone");
    fs::write(&path, "").unwrap();
    assert!(!is_file_at(&file, &path).unwrap(), "another file at the path");
}

/// A 64 KiB tmpfs, unmounted on drop.
struct TinyDisk {
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl TinyDisk {
    /// Mounts one. Only root may: the tests that need one are ignored but
    /// for root, as whom `bash .ci/test` runs them (`--include-ignored`).
    fn mount() -> TinyDisk {
        let dir = tempfile::tempdir().unwrap();
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
            .arg(dir.path())
            .stdin(std::process::Stdio::null())
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

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.root).status();
    }
}

/// Fills the file system under `dir` until a write fails.
fn fill_disk(dir: &Path) -> std::io::Error {
    let mut filler = File::create(dir.join("filler")).unwrap();
    loop {
        if let Err(e) = filler.write_all(&[1u8; 4096]).and_then(|()| filler.sync_all()) {
            return e;
        }
    }
}

#[test]
#[ignore = "needs root (mounts a tmpfs): `bash .ci/test` runs it as root"]
fn a_reserved_write_succeeds_on_a_disk_that_filled_up_after_reserving() {
    let disk = TinyDisk::mount();
    let target = disk.root.join("tokens.json");
    write_atomically(&target, b"old pair").unwrap();
    let mut reserved = reserve(&target, 16 * 1024).unwrap();

    let full = fill_disk(&disk.root);
    assert_eq!(full.raw_os_error(), Some(28), "ENOSPC expected: {full}");
    assert!(
        write_atomically(&target, b"x").is_err(),
        "an unreserved write fails now"
    );

    let rotated = vec![b'n'; 12 * 1024];
    reserved.fill(&rotated).unwrap();
    reserved.rename_into_place().unwrap();
    assert_eq!(fs::read(&target).unwrap(), rotated);
}

// --- reading only regular files, and not too much of them ---

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

#[test]
fn reading_a_fifo_a_device_or_a_directory_is_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    for (path, kind) in [
        (fifo.as_path(), "a named pipe (FIFO)"),
        (Path::new("/dev/zero"), "a character device"),
        (dir.path(), "a directory"),
    ] {
        let err = read_regular_file(path, 1024).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{path:?}");
        assert_eq!(err.to_string(), format!("it is {kind}, not a regular file"));
    }
}

#[test]
fn reading_a_file_larger_than_the_cap_is_refused_and_up_to_it_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    let file = File::create(&path).unwrap();
    file.set_len(200 * 1024 * 1024).unwrap(); // sparse: costs no disk
    let err = read_regular_file(&path, 1024 * 1024).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
    assert_eq!(err.to_string(), "it is larger than 1 MiB");
    file.set_len(1024 * 1024).unwrap();
    assert_eq!(read_regular_file(&path, 1024 * 1024).unwrap().len(), 1024 * 1024);
    let absent = read_regular_file(&dir.path().join("absent"), 1).unwrap_err();
    assert_eq!(absent.kind(), std::io::ErrorKind::NotFound);
}

// --- owners ---

/// Gives `path` to uid/gid 1234, or `false` where only root could.
fn give_to_1234(path: &Path) -> bool {
    match std::os::unix::fs::chown(path, Some(1234), Some(1234)) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => false,
        Err(e) => panic!("chown {}: {e}", path.display()),
    }
}

fn owner(path: &Path) -> (u32, u32) {
    let meta = fs::metadata(path).unwrap();
    (meta.uid(), meta.gid())
}

#[test]
#[ignore = "needs root (gives files to another user): `bash .ci/test` runs it as root"]
fn a_write_as_root_keeps_the_replaced_files_owner_and_gives_a_new_one_the_directorys() {
    let dir = tempfile::tempdir().unwrap();
    let replaced = dir.path().join("tokens.json");
    fs::write(&replaced, "old").unwrap();
    assert!(
        give_to_1234(&replaced) && give_to_1234(dir.path()),
        "only root can give files away: run it as root, as `bash .ci/test` does"
    );
    write_atomically(&replaced, b"new").unwrap();
    assert_eq!(owner(&replaced), (1234, 1234));
    assert_eq!(fs::metadata(&replaced).unwrap().permissions().mode() & 0o777, 0o600);

    let created = dir.path().join("tokens.json.journal");
    write_atomically(&created, b"mark").unwrap();
    assert_eq!(owner(&created), (1234, 1234));
}

#[test]
fn stale_temps_are_removed_and_others_kept() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("tokens.json");
    fs::write(dir.path().join(".tokens.json.tmp.123.abc"), "partial").unwrap();
    fs::write(dir.path().join("other.json"), "keep").unwrap();
    assert_eq!(remove_stale_temps(&[&target]).len(), 1);
    assert!(dir.path().join("other.json").exists());
}
