use super::*;
use crate::store::PendingAuth;
use crate::tokens::TokenSet;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
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

/// The stamp of `path` as if looked at an hour from now, when the file
/// has long settled.
fn settled_stamp(path: &Path) -> Option<StoreStamp> {
    let meta = fs::metadata(path).unwrap();
    stamp_of(&meta, SystemTime::now() + Duration::from_secs(3600))
}

fn set_mtime(path: &Path, at: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

#[test]
fn a_store_file_has_no_stamp_until_its_last_change_settles() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    assert_eq!(store.stamp(), Some(StoreStamp(Stamped::Absent)));
    assert_eq!(store.load_stamped().unwrap().1, Some(StoreStamp(Stamped::Absent)));
    let lock = store.lock(Duration::from_secs(1)).unwrap();
    lock.save(0, &with_tokens("r1")).unwrap();
    // Just written: its times cannot yet tell a second change from it.
    assert_eq!(store.stamp(), None);
    assert_eq!(store.load_stamped().unwrap().1, None);
    // Even with its modification time set far back: the change time is now.
    set_mtime(store.path(), SystemTime::now() - Duration::from_secs(3600));
    assert_eq!(store.stamp(), None);
    assert!(settled_stamp(store.path()).is_some());
}

#[test]
fn a_store_replaced_by_rename_with_the_same_size_and_mtime_has_another_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let then = SystemTime::now() - Duration::from_secs(3600);
    fs::write(&path, "{\"version\": 1, \"generation\": 1}").unwrap();
    set_mtime(&path, then);
    let before = settled_stamp(&path).unwrap();
    let next = dir.path().join("next.json");
    fs::write(&next, "{\"version\": 1, \"generation\": 2}").unwrap();
    set_mtime(&next, then);
    fs::rename(&next, &path).unwrap();
    let after = settled_stamp(&path).unwrap();
    assert_ne!(before, after);
    let (
        Stamped::File {
            ino: a,
            size: sa,
            modified: ma,
            ..
        },
        Stamped::File {
            ino: b,
            size: sb,
            modified: mb,
            ..
        },
    ) = (before.0, after.0)
    else {
        panic!("{before:?} {after:?}");
    };
    assert_eq!((sa, ma), (sb, mb), "only the file's identity tells them apart");
    assert_ne!(a, b);
}

#[test]
fn a_store_edited_in_place_keeping_size_and_mtime_has_another_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let then = SystemTime::now() - Duration::from_secs(3600);
    fs::write(&path, "{\"version\": 1, \"generation\": 1}").unwrap();
    set_mtime(&path, then);
    let before = settled_stamp(&path).unwrap();
    // Past one tick of the file system's clock (see SETTLE): the
    // change time, which no one can set, moves.
    std::thread::sleep(Duration::from_millis(50));
    fs::write(&path, "{\"version\": 1, \"generation\": 2}").unwrap();
    set_mtime(&path, then);
    assert_ne!(settled_stamp(&path).unwrap(), before);
}

#[test]
fn a_change_settles_after_the_window_and_never_from_the_future() {
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
    assert!(!has_settled((1000, 0), at(1001)));
    assert!(!has_settled((1000, 1), at(1002)));
    assert!(has_settled((1000, 0), at(1002)));
    assert!(has_settled((1000, 999_999_999), at(1003)));
    assert!(!has_settled((5000, 0), at(1000)), "a change time ahead of the clock");
    assert!(!has_settled((0, 0), UNIX_EPOCH - Duration::from_secs(10)));
}

#[test]
fn only_a_regular_file_has_a_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("sub"));
    fs::create_dir(store.path()).unwrap();
    assert_eq!(settled_stamp(store.path()), None);
    assert!(store.load_stamped().is_err());
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
fn an_empty_refresh_token_makes_the_store_corrupt_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    for (text, field) in [
        (
            r#"{"version": 1, "generation": 3, "tokens": {"refresh_token": ""}}"#,
            "tokens.refresh_token",
        ),
        (
            r#"{"version": 1, "generation": 3, "tokens": {"refresh_token": "r"}, "previous": {"refresh_token": "", "rotated_at": "2025-01-01T00:00:00Z"}}"#,
            "previous.refresh_token",
        ),
    ] {
        fs::write(&path, text).unwrap();
        let err = FileStore::new(path.clone()).load().unwrap_err();
        assert!(matches!(err, Error::CorruptStore { .. }), "{err}");
        assert_eq!(err.exit_code(), 3);
        assert!(
            err.to_string().ends_with(&format!("its field {field} is empty")),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
    }
}

#[test]
fn a_fifo_in_place_of_the_store_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let made = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(made.success());
    let err = FileStore::new(path).load().unwrap_err();
    assert_eq!(err.code(), "CONFIGURATION_ERROR");
    assert!(
        err.to_string().ends_with("a named pipe (FIFO), not a regular file"),
        "{err}"
    );
}

#[test]
fn second_lock_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let _held = store.lock(Duration::from_secs(1)).unwrap();
    let err = store.lock(Duration::from_millis(50)).err().unwrap();
    assert_eq!(err.code(), "LOCK_TIMEOUT");
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn with_tokens(refresh: &str) -> StoreState {
    StoreState {
        tokens: Some(tokens(refresh)),
        ..Default::default()
    }
}

// --- symlinked store paths ---

#[test]
fn symlinked_store_is_written_through_to_the_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("real");
    let link_dir = dir.path().join("links");
    fs::create_dir_all(&real_dir).unwrap();
    fs::create_dir_all(&link_dir).unwrap();
    let real = real_dir.join("tokens.json");
    let link = link_dir.join("tokens.json");
    let lock = FileStore::new(real.clone()).lock(Duration::from_secs(1)).unwrap();
    lock.save(0, &with_tokens("r1")).unwrap();
    drop(lock);
    std::os::unix::fs::symlink(&real, &link).unwrap();

    let store = FileStore::new(link.clone());
    assert_eq!(store.path(), fs::canonicalize(&real).unwrap());
    let lock = store.lock(Duration::from_secs(1)).unwrap();
    lock.save(1, &with_tokens("r2")).unwrap();

    assert!(
        fs::symlink_metadata(&link).unwrap().file_type().is_symlink(),
        "the link was replaced"
    );
    let loaded = FileStore::new(real.clone()).load().unwrap();
    assert_eq!(loaded.tokens.unwrap().refresh_token.expose_secret(), "r2");
    assert_eq!(names_in(&link_dir), ["tokens.json"], "no lock or temp beside the link");
    assert!(store.lock_path().starts_with(fs::canonicalize(&real_dir).unwrap()));
    assert!(real_dir.join("tokens.json.lock").exists());
}

#[test]
fn runs_through_a_link_and_through_the_real_path_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("tokens.json");
    fs::write(&real, r#"{"version": 1, "generation": 1}"#).unwrap();
    let link = dir.path().join("elsewhere.json");
    std::os::unix::fs::symlink("tokens.json", &link).unwrap();

    let _held = FileStore::new(link).lock(Duration::from_secs(1)).unwrap();
    let err = FileStore::new(real).lock(Duration::from_millis(50)).err().unwrap();
    assert_eq!(err.code(), "LOCK_TIMEOUT");
}

#[test]
fn a_dangling_store_link_is_followed_to_the_file_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("real");
    let link_dir = dir.path().join("links");
    fs::create_dir_all(&real_dir).unwrap();
    fs::create_dir_all(&link_dir).unwrap();
    let link = link_dir.join("tokens.json");
    // Relative to the link's own directory, not to the process's.
    std::os::unix::fs::symlink("../real/new.json", &link).unwrap();

    let store = FileStore::new(link.clone());
    let real = fs::canonicalize(&real_dir).unwrap().join("new.json");
    assert_eq!(store.path(), real);
    assert_eq!(store.lock_path(), real.with_file_name("new.json.lock"));
    assert_eq!(store.journal_path(), real.with_file_name("new.json.journal"));
    store
        .lock(Duration::from_secs(1))
        .unwrap()
        .save(0, &with_tokens("r1"))
        .unwrap();
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(real.is_file());
    assert_eq!(FileStore::new(link).load().unwrap().generation, 1);
}

#[test]
fn a_store_in_a_symlinked_directory_resolves_to_the_real_directory() {
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("real");
    fs::create_dir_all(&real_dir).unwrap();
    let dir_link = dir.path().join("state");
    std::os::unix::fs::symlink(&real_dir, &dir_link).unwrap();

    let store = FileStore::new(dir_link.join("tokens.json"));
    let real_dir = fs::canonicalize(&real_dir).unwrap();
    assert_eq!(store.path(), real_dir.join("tokens.json"));
    assert_eq!(store.lock_path(), real_dir.join("tokens.json.lock"));
}

#[test]
fn a_store_path_under_missing_directories_is_kept_and_created() {
    let dir = tempfile::tempdir().unwrap();
    let wanted = fs::canonicalize(dir.path()).unwrap().join("a/b/tokens.json");
    let store = FileStore::new(wanted.clone());
    assert_eq!(store.path(), wanted);
    store
        .lock(Duration::from_secs(1))
        .unwrap()
        .save(0, &with_tokens("r1"))
        .unwrap();
    assert!(wanted.is_file());
}

// --- space reserved before the request ---

#[test]
fn a_save_into_the_space_a_request_took_yields_the_store_0600_cut_to_length() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let lock = store.lock(Duration::from_secs(1)).unwrap();
    lock.begin_request(0, "refresh_token").unwrap();
    let temps: Vec<String> = names_in(dir.path())
        .into_iter()
        .filter(|n| n.starts_with(".tokens.json.tmp."))
        .collect();
    assert_eq!(temps.len(), 1, "{temps:?}");
    assert!(fs::metadata(dir.path().join(&temps[0])).unwrap().len() >= MIN_RESERVATION);

    assert_eq!(lock.save(0, &with_tokens("r1")).unwrap(), 1);
    lock.end_request();
    let loaded = store.load().unwrap();
    assert_eq!(loaded.tokens.unwrap().refresh_token.expose_secret(), "r1");
    let text = fs::read_to_string(store.path()).unwrap();
    assert!(text.ends_with("}\n") && !text.contains('\0'), "cut to its real length");
    assert_eq!(fs::metadata(store.path()).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(names_in(dir.path()), ["tokens.json", "tokens.json.lock"]);
}

#[test]
fn a_request_that_ends_without_a_save_leaves_the_store_as_it_was_and_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let lock = store.lock(Duration::from_secs(1)).unwrap();
    lock.save(0, &with_tokens("r1")).unwrap();
    let before = fs::read(store.path()).unwrap();
    lock.begin_request(1, "refresh_token").unwrap();
    lock.end_request();
    assert_eq!(fs::read(store.path()).unwrap(), before);
    assert_eq!(names_in(dir.path()), ["tokens.json", "tokens.json.lock"]);
}

#[test]
fn begin_request_reserves_the_space_the_save_then_uses() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let lock = store.lock(Duration::from_secs(1)).unwrap();
    lock.begin_request(0, "refresh_token").unwrap();
    let names = names_in(dir.path());
    assert_eq!(names.len(), 4, "journal, lock and the two reservations: {names:?}");
    assert!(names[0].starts_with(".tokens.json.rescue.tmp."), "{names:?}");
    assert!(names[1].starts_with(".tokens.json.tmp."), "{names:?}");

    lock.save(0, &with_tokens("r1")).unwrap();
    lock.end_request();
    assert_eq!(names_in(dir.path()), ["tokens.json", "tokens.json.lock"]);
}

#[test]
fn a_request_that_ends_without_a_save_gives_the_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let lock = store.lock(Duration::from_secs(1)).unwrap();
    lock.begin_request(0, "refresh_token").unwrap();
    lock.end_request();
    assert_eq!(names_in(dir.path()), ["tokens.json.lock"]);
}

// --- the lock file deleted while held ---

#[test]
fn a_lock_file_deleted_between_open_and_lock_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let first = store.lock(Duration::from_secs(1)).unwrap();
    // The waiter opens the lock file, then waits for it.
    let waiter = {
        let store = store.clone();
        std::thread::spawn(move || store.lock(Duration::from_millis(1500)).map(drop))
    };
    let lock_path = store.lock_path();
    let opened_twice = || {
        fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| fs::read_link(e.unwrap().path()).ok())
            .filter(|target| *target == lock_path)
            .count()
            >= 2
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !opened_twice() {
        assert!(Instant::now() < deadline, "the waiter never opened the lock file");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The file is deleted and a third run locks a new one; then the
    // first lets go of the deleted file the waiter is waiting on.
    fs::remove_file(&lock_path).unwrap();
    let third = store.lock(Duration::from_secs(1)).unwrap();
    drop(first);
    let err = waiter
        .join()
        .unwrap()
        .expect_err("the waiter got in beside the third run");
    assert_eq!(err.code(), "LOCK_TIMEOUT");
    drop(third);
}

#[test]
fn a_holder_whose_lock_file_was_deleted_refuses_to_save_while_another_run_holds_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let holder = store.lock(Duration::from_secs(1)).unwrap();
    holder.save(0, &with_tokens("r1")).unwrap();
    let before = fs::read(store.path()).unwrap();
    fs::remove_file(store.lock_path()).unwrap();
    let intruder = store.lock(Duration::from_secs(1)).unwrap();

    let err = holder.save(1, &with_tokens("r2")).unwrap_err();
    assert_eq!(err.code(), "CONFIGURATION_ERROR");
    assert!(err.to_string().contains("was deleted while this run held it"), "{err}");
    intruder.begin_request(1, "refresh_token").unwrap();
    assert!(holder.begin_request(1, "refresh_token").is_err());
    assert!(store.journal_path().exists(), "the intruder's journal is left alone");
    assert_eq!(fs::read(store.path()).unwrap(), before);
}

#[test]
fn a_holder_mid_request_saves_its_answer_even_while_another_run_holds_the_new_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let holder = store.lock(Duration::from_secs(1)).unwrap();
    holder.save(0, &with_tokens("r1")).unwrap();
    holder.begin_request(1, "refresh_token").unwrap();
    fs::remove_file(store.lock_path()).unwrap();
    // The run that gets the new lock file waits for the live request.
    let err = store.lock(Duration::from_millis(100)).err().unwrap();
    assert_eq!(err.code(), "LOCK_TIMEOUT");
    assert!(err.to_string().contains("another run's request in flight"), "{err}");
    let intruder = FileStore::new(store.path().to_path_buf());
    let blocked = std::thread::spawn(move || intruder.lock(Duration::from_secs(5)).map(|lock| lock.load()));
    std::thread::sleep(Duration::from_millis(100));

    assert_eq!(holder.save(1, &with_tokens("r2")).unwrap(), 2);
    holder.end_request();
    let seen = blocked.join().unwrap().unwrap().unwrap();
    assert_eq!(seen.tokens.unwrap().refresh_token.expose_secret(), "r2");
}

#[test]
fn a_save_after_a_request_moves_onto_a_store_whose_other_fields_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let holder = store.lock(Duration::from_secs(1)).unwrap();
    holder.save(0, &with_tokens("r1")).unwrap();
    holder.begin_request(1, "refresh_token").unwrap();
    // A consent state saved beside it (a peer that got in: its lock file deleted).
    let mut other = store.load().unwrap();
    other.pending_auth = Some(PendingAuth {
        state: "s".into(),
        created_at: DateTime::<Utc>::UNIX_EPOCH,
    });
    let bytes = serialize_store(&other, 2, 1, None, &crate::sealing::Keyring::default()).unwrap();
    fsutil::write_atomically(store.path(), &bytes).unwrap();

    assert_eq!(holder.save(1, &with_tokens("r2")).unwrap(), 3);
    let saved = store.load().unwrap();
    assert_eq!(saved.tokens.unwrap().refresh_token.expose_secret(), "r2");
    assert_eq!(saved.pending_auth.unwrap().state, "s", "the peer's field stays");
}

#[test]
fn a_save_after_a_request_is_refused_when_another_set_was_saved_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let holder = store.lock(Duration::from_secs(1)).unwrap();
    holder.save(0, &with_tokens("r1")).unwrap();
    holder.begin_request(1, "refresh_token").unwrap();
    let theirs = serialize_store(&with_tokens("theirs"), 2, 2, None, &crate::sealing::Keyring::default()).unwrap();
    fsutil::write_atomically(store.path(), &theirs).unwrap();

    let err = holder.save(1, &with_tokens("ours")).unwrap_err();
    assert_eq!(err.code(), "STORE_UNAVAILABLE");
    assert!(err.to_string().contains("another run saved a set of its own"), "{err}");
    let kept = store.load().unwrap().tokens.unwrap();
    assert_eq!(kept.refresh_token.expose_secret(), "theirs");
}

#[test]
fn a_rescue_is_written_into_the_space_taken_before_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let lock = store.lock(Duration::from_secs(1)).unwrap();
    lock.save(0, &with_tokens("r1")).unwrap();
    lock.begin_request(1, "refresh_token").unwrap();
    let place = lock.rescue(1, &with_tokens("r2")).unwrap();
    lock.end_request();
    assert_eq!(place, store.rescue_file().path().display().to_string());
    let rescued = store.rescue_file().read().unwrap().unwrap();
    assert_eq!(rescued.generation, 2);
    assert_eq!(rescued.tokens.unwrap().refresh_token.expose_secret(), "r2");
    assert_eq!(
        names_in(dir.path()),
        ["tokens.json", "tokens.json.lock", "tokens.json.rescue"],
        "no temp left"
    );
    assert!(lock.rescue(1, &with_tokens("r3")).is_err(), "one rescue per request");
}

#[test]
fn a_holder_whose_lock_file_was_deleted_locks_the_new_one_and_saves_when_it_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let holder = store.lock(Duration::from_secs(1)).unwrap();
    holder.begin_request(0, "refresh_token").unwrap();
    fs::remove_file(store.lock_path()).unwrap();

    assert_eq!(holder.save(0, &with_tokens("r1")).unwrap(), 1);
    assert_eq!(
        store.load().unwrap().tokens.unwrap().refresh_token.expose_secret(),
        "r1"
    );
    let err = store.lock(Duration::from_millis(50)).err().unwrap();
    assert_eq!(err.code(), "LOCK_TIMEOUT", "the holder excludes others again");
}

#[test]
fn a_holder_that_retakes_its_lock_refuses_when_another_run_saved_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let holder = store.lock(Duration::from_secs(1)).unwrap();
    fs::remove_file(store.lock_path()).unwrap();
    let intruder = store.lock(Duration::from_secs(1)).unwrap();
    intruder.save(0, &with_tokens("theirs")).unwrap();
    drop(intruder);

    assert!(holder.save(0, &with_tokens("ours")).is_err());
    let kept = store.load().unwrap().tokens.unwrap();
    assert_eq!(kept.refresh_token.expose_secret(), "theirs");
}

// --- generation overflow ---

#[test]
fn a_store_at_the_largest_generation_is_refused_not_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let text = r#"{"version": 1, "generation": 18446744073709551615, "tokens": {"refresh_token": "r"}}"#;
    fs::write(&path, text).unwrap();
    let store = FileStore::new(path.clone());
    let lock = store.lock(Duration::from_secs(1)).unwrap();
    let state = lock.load().unwrap();
    assert_eq!(state.generation, u64::MAX);

    let err = lock.begin_request(state.generation, "refresh_token").unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("largest"), "{err}");
    assert!(err.to_string().contains("nothing was sent"), "{err}");
    assert!(!store.journal_path().exists());
    let err = lock.save(state.generation, &state).unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    assert_eq!(names_in(dir.path()), ["tokens.json", "tokens.json.lock"]);
}

// --- copy records ---

#[test]
fn a_store_without_copy_records_loads_its_set_as_new_as_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    fs::write(
        &path,
        r#"{"version": 1, "generation": 7, "tokens": {"refresh_token": "r"}}"#,
    )
    .unwrap();
    let state = FileStore::new(path.clone()).load().unwrap();
    assert_eq!((state.tokens_generation, state.copies.len()), (7, 0));

    fs::write(&path, r#"{"version": 1, "generation": 7}"#).unwrap();
    assert_eq!(FileStore::new(path).load().unwrap().tokens_generation, 0);
}

#[test]
fn a_store_with_fields_this_binary_does_not_know_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let text = r#"{"version": 1, "generation": 2, "from_the_future": {"x": [1]}, "tokens": {"refresh_token": "r", "new_field": 1}}"#;
    fs::write(&path, text).unwrap();
    assert_eq!(FileStore::new(path).load().unwrap().generation, 2);
}

#[test]
fn saving_copy_records_keeps_the_generation_of_the_token_set() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let lock = store.lock(Duration::from_secs(1)).unwrap();
    lock.save(0, &with_tokens("r1")).unwrap();
    let text = fs::read_to_string(store.path()).unwrap();
    assert!(
        text.contains("\"tokens_generation\": 1") && !text.contains("copies"),
        "{text}"
    );

    let mut state = store.load().unwrap();
    state.copies.insert("env_file:/p/.env".into(), state.tokens_generation);
    state.copies.insert("railway:svc".into(), state.tokens_generation);
    assert_eq!(lock.save(1, &state).unwrap(), 2);
    let state = store.load().unwrap();
    assert_eq!(state.tokens_generation, 1, "the set did not change");
    assert_eq!(state.copies["env_file:/p/.env"], 1);
    assert_eq!(state.copies["railway:svc"], 1);

    let pending = StoreState {
        pending_auth: Some(PendingAuth {
            state: "s".into(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        }),
        ..state
    };
    lock.save(2, &pending).unwrap();
    assert_eq!(store.load().unwrap().tokens_generation, 1, "nor does the auth state");
}

#[test]
fn a_new_refresh_or_access_token_moves_the_token_generation() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let lock = store.lock(Duration::from_secs(1)).unwrap();
    lock.save(0, &StoreState::default()).unwrap();
    assert_eq!(store.load().unwrap().tokens_generation, 0);
    lock.save(1, &with_tokens("r1")).unwrap();
    assert_eq!(store.load().unwrap().tokens_generation, 2, "tokens appeared");

    let mut state = store.load().unwrap();
    state.copies.insert("railway:svc".into(), 2);
    state.tokens = Some(tokens("r2"));
    lock.save(2, &state).unwrap();
    let state = store.load().unwrap();
    assert_eq!(state.tokens_generation, 3, "new refresh token");
    assert_eq!(state.copies["railway:svc"], 2, "the copy is now behind");

    let mut set = tokens("r2");
    set.access_token = Some(SecretString::from("another access"));
    lock.save(
        3,
        &StoreState {
            tokens: Some(set),
            ..state
        },
    )
    .unwrap();
    assert_eq!(store.load().unwrap().tokens_generation, 4, "new access token");
}

// --- messages ---

#[test]
fn withings_tokens_own_directory_is_tightened_to_0700_when_locking() {
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("withings-token");
    fs::create_dir_all(&own).unwrap();
    fs::set_permissions(&own, fs::Permissions::from_mode(0o755)).unwrap();
    let _lock = FileStore::new(own.join("tokens.json"))
        .lock(Duration::from_secs(1))
        .unwrap();
    assert_eq!(fs::metadata(&own).unwrap().permissions().mode() & 0o777, 0o700);
}

#[test]
fn a_directory_that_is_not_withings_tokens_own_is_never_chmod_ed() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    fs::create_dir_all(&project).unwrap();
    fs::set_permissions(&project, fs::Permissions::from_mode(0o755)).unwrap();
    let _lock = FileStore::new(project.join("tokens.json"))
        .lock(Duration::from_secs(1))
        .unwrap();
    assert_eq!(fs::metadata(&project).unwrap().permissions().mode() & 0o777, 0o755);
}

#[test]
fn a_request_begun_on_an_empty_store_reads_back_as_generation_0_with_nothing_saved() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let lock = store.lock(Duration::from_secs(1)).unwrap();
    lock.begin_request(0, "authorization_code").unwrap();
    drop(lock); // the process "died": no end_request

    let lock = store.lock(Duration::from_secs(1)).unwrap();
    let mark = lock.interrupted_request().unwrap();
    assert_eq!((mark.generation, mark.grant.as_str()), (0, "authorization_code"));
    assert!(lock.load().unwrap().tokens.is_none());
    assert_eq!(
        names_in(dir.path()),
        ["tokens.json.journal", "tokens.json.lock"],
        "no temp left"
    );
}

#[test]
fn an_unreadable_journal_reports_the_stored_generation() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens.json"));
    let lock = store.lock(Duration::from_secs(1)).unwrap();
    lock.save(0, &with_tokens("r1")).unwrap();
    fs::write(store.journal_path(), "garbled").unwrap();
    let mark = lock.interrupted_request().unwrap();
    assert_eq!((mark.generation, mark.grant.as_str()), (1, "unknown"));
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("\"-262143-01-01T00:00:00Z\"".to_owned()),
            Just("\"+262142-12-31T23:59:59Z\"".to_owned()),
            Just("18446744073709551615".to_owned()),
            Just("-1".to_owned()),
            Just("null".to_owned()),
            Just("{}".to_owned()),
            Just("[]".to_owned()),
            "\"[ -~]{0,12}\"",
            any::<i64>().prop_map(|n| n.to_string()),
        ]
    }

    proptest! {
        /// Whatever a hand-edited store holds, loading
        /// it is a value or a clear error, never a panic.
        #[test]
        fn any_store_loads_or_is_refused_without_a_panic(
            version in field(), generation in field(), expires in field(),
            refreshed in field(), refresh in field(), rotated in field(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("tokens.json");
            let text = format!(
                r#"{{"version":{version},"generation":{generation},"tokens":{{"access_token":"a","refresh_token":{refresh},"expires_at":{expires},"last_refreshed":{refreshed}}},"previous":{{"refresh_token":"p","rotated_at":{rotated}}}}}"#
            );
            fs::write(&path, text).unwrap();
            let _ = FileStore::new(path).load();
        }
    }
}

// --- encryption at rest ---

#[test]
fn a_set_written_plain_on_purpose_takes_its_event_record_out_of_the_seal_too() {
    use crate::sealing::{IdentitySource, IdentitySources, Recipient};
    let identity = age::x25519::Identity::generate();
    let recipient = Recipient::parse(&identity.to_public().to_string()).unwrap();
    let key = identity.to_string().expose_secret().to_owned();
    let sources = || IdentitySources(vec![IdentitySource::Variable(SecretString::from(key.clone()))]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let sealing = FileStore::new(path.clone()).sealed_with(Arc::new(Keyring::new(vec![recipient], sources(), false)));
    sealing
        .lock(Duration::from_secs(1))
        .unwrap()
        .save(0, &with_tokens("r1"))
        .unwrap();
    let record = b"{\"health\":{\"state\":\"failing\"}}";
    assert!(sealing.swap_events_file(None, record).unwrap());
    assert!(crate::sealing::is_sealed(&fs::read(sealing.events_path()).unwrap()));

    // No recipient and no flag: the set is not written, the record stays sealed.
    let refused = FileStore::new(path.clone()).sealed_with(Arc::new(Keyring::new(vec![], sources(), false)));
    let lock = refused.lock(Duration::from_secs(1)).unwrap();
    assert_eq!(lock.save(1, &with_tokens("r2")).unwrap_err().exit_code(), 3);
    drop(lock);
    assert!(crate::sealing::is_sealed(&fs::read(sealing.events_path()).unwrap()));

    let plain = FileStore::new(path).sealed_with(Arc::new(Keyring::new(vec![], sources(), true)));
    plain
        .lock(Duration::from_secs(1))
        .unwrap()
        .save(1, &with_tokens("r2"))
        .unwrap();
    assert_eq!(fs::read(plain.events_path()).unwrap(), record);
    // Read back by a host with no identity at all.
    let bare = FileStore::new(plain.path().to_path_buf());
    assert_eq!(bare.load_events_file().unwrap().as_deref(), Some(&record[..]));
    assert!(!bare.load().unwrap().sealed);
}

/// A keyring sealing to a new key it holds: (keyring, the key's text).
fn sealing_keyring() -> Arc<Keyring> {
    use crate::sealing::{IdentitySource, IdentitySources, Recipient};
    let identity = age::x25519::Identity::generate();
    let recipient = Recipient::parse(&identity.to_public().to_string()).unwrap();
    let key = SecretString::from(identity.to_string().expose_secret().to_owned());
    Arc::new(Keyring::new(
        vec![recipient],
        IdentitySources(vec![IdentitySource::Variable(key)]),
        false,
    ))
}

#[test]
fn a_sealed_set_left_in_a_temporary_file_is_kept_by_a_run_that_cannot_open_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let sealing = sealing_keyring();
    let sealed = FileStore::new(path.clone()).sealed_with(Arc::clone(&sealing));
    sealed
        .lock(Duration::ZERO)
        .unwrap()
        .save(0, &with_tokens("first"))
        .unwrap();
    // A run that filled its temporary file with generation 2 and died.
    let left = serialize_store(&with_tokens("issued-then-lost"), 2, 2, None, &sealing).unwrap();
    let temp = dir.path().join(".tokens.json.tmp.deadbeef0001");
    fs::write(&temp, &left[..]).unwrap();

    // A run without the key takes the lock: it cannot open the set, and
    // keeps it for one that can.
    let keyless = FileStore::new(path.clone());
    drop(keyless.lock(Duration::ZERO).unwrap());
    assert!(!temp.exists());
    let rescue = keyless.rescue_file();
    assert_eq!(fs::read(rescue.path()).unwrap(), &left[..]);

    // The run with the key adopts it as the store's next generation.
    let adopted = sealed.rescue_file().read().unwrap().unwrap();
    assert_eq!(adopted.generation, 2);
    assert_eq!(
        adopted.tokens.unwrap().refresh_token.expose_secret(),
        "issued-then-lost"
    );
}

#[test]
fn the_generation_of_a_left_set_is_read_without_its_key() {
    let sealing = sealing_keyring();
    let bytes = serialize_store(&with_tokens("x"), 7, 7, None, &sealing).unwrap();
    assert_eq!(crate::store::held_generation(&bytes), Some(7));
    let plain = serialize_store(&with_tokens("x"), 3, 3, None, &Keyring::default()).unwrap();
    assert_eq!(crate::store::held_generation(&plain), Some(3));
    let empty = serialize_store(&StoreState::default(), 4, 0, None, &Keyring::default()).unwrap();
    assert_eq!(crate::store::held_generation(&empty), None);
    assert_eq!(crate::store::held_generation(b"not json"), None);
}

#[test]
fn a_store_of_the_sealed_format_without_its_seal_or_with_clear_secrets_beside_it_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let store = FileStore::new(path.clone()).sealed_with(sealing_keyring());
    let cases = [
        (r#"{"version": 2, "generation": 3}"#, "has no encrypted part"),
        (
            r#"{"version": 2, "generation": 3, "sealed": null}"#,
            "has no encrypted part",
        ),
        (
            r#"{"version": 2, "generation": 3, "sealed": "-----BEGIN AGE ENCRYPTED FILE-----", "tokens": {"refresh_token": "r"}}"#,
            "in clear beside its encrypted part",
        ),
    ];
    for (text, why) in cases {
        fs::write(&path, text).unwrap();
        match store.load() {
            Err(Error::CorruptStore { reason, .. }) => assert!(reason.contains(why), "{reason}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}
