//! The store under hostile conditions, through the real binary: a store
//! reached through a symlink, a disk that is full before the request or
//! fills up while Withings answers, a generation at its maximum, and
//! warnings that are said once per run.
//! `cargo test --features failpoints --test cli hardening_store::`

use crate::support::*;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wiremock::{Request, Respond};

/// [`Rotating`], but it first fills the disk at `dir`, while the request is out.
struct FillingTheDisk {
    dir: PathBuf,
    then: Rotating,
}

impl Respond for FillingTheDisk {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        fill_disk(&self.dir);
        self.then.respond(request)
    }
}

/// Writes to `dir` until its file system is full.
fn fill_disk(dir: &Path) {
    use std::io::Write;
    let Ok(mut filler) = std::fs::File::create(dir.join("filler")) else {
        return;
    };
    while filler.write_all(&[1u8; 4096]).and_then(|()| filler.sync_all()).is_ok() {}
}

/// A user whose store holds a set that is not due (expires in 2.5 h,
/// refreshed 3 h before that: 1 h buffer), with Withings at a mock that
/// must not be asked.
fn given_a_set_not_due() -> (TestEnv, Arc<AtomicU64>, Upstream) {
    let (withings, issued) = withings_always_rotating();
    let mut env = given_store_expiring_in(150 * 60);
    env.withings(&withings.uri());
    (env, issued, withings)
}

/// `args` run as `env.run` runs them, but started by `sh` with files capped
/// at 8 KiB (`ulimit -f 16` counts 512-byte blocks). SIGXFSZ is ignored, so
/// an oversized write fails with EFBIG, as a full disk does.
fn run_with_small_files(env: &TestEnv, args: &[&str]) -> Run {
    env.run_under_sh("trap '' XFSZ; ulimit -f 16", args, std::time::Duration::from_secs(60))
}

#[test]
fn a_store_that_cannot_be_saved_fails_before_anything_is_sent() {
    let (withings, issued) = withings_always_rotating();
    let env = given_expired_store(&withings.uri());
    let stored = env.store_bytes();

    let out = run_with_small_files(&env, &["refresh", "--no-railway", "--retries", "0"]);
    let stderr = &out.stderr;
    assert_eq!(out.code, 3, "{stderr}");
    assert!(stderr.contains("CONFIGURATION_ERROR"), "{stderr}");
    assert!(stderr.contains("cannot reserve"), "{stderr}");
    assert!(stderr.contains("nothing was sent to Withings"), "{stderr}");
    // Issue 18, the trial: the limit is named, not the disk.
    assert!(
        stderr.contains("next: raise the file-size limit (`ulimit -f unlimited` in the shell"),
        "{stderr}"
    );
    assert_eq!(issued.load(Ordering::SeqCst), 0, "the request went out");
    assert_eq!(withings.requests().len(), 0);
    assert_eq!(env.store_bytes(), stored);
    assert!(!env.journal_path().exists(), "journal left behind");
    assert_eq!(env.store_temp_files(), Vec::<String>::new());

    // With room again, the same store refreshes.
    let out = env.run(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(env.stored_refresh_token(), "mock-refresh-1");
}

#[test]
#[ignore = "needs root (mounts a tmpfs): `bash .ci/test` runs it as root"]
fn a_disk_that_fills_up_while_withings_answers_does_not_lose_the_rotated_pair() {
    let disk = TinyDisk::mount();
    let withings = Upstream::start();
    let issued = Arc::new(AtomicU64::new(0));
    withings.mount(token_request().respond_with(FillingTheDisk {
        dir: disk.root.clone(),
        then: Rotating { issued: issued.clone() },
    }));
    let mut env = given_expired_store(&withings.uri());
    let store = disk.root.join("tokens.json");
    std::fs::copy(env.store_path(), &store).expect("store onto the tiny disk");
    env.set("WITHINGS_TOKEN_STORE", store.display().to_string());

    let out = env.run(&["refresh", "--no-railway", "--retries", "0"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    let saved: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    assert_eq!(saved["tokens"]["refresh_token"], "mock-refresh-1");
    assert_eq!(saved["previous"]["refresh_token"], OLD_REFRESH);
    assert_eq!(saved["generation"], 2);
}

#[test]
fn a_store_at_the_largest_generation_is_refused_before_anything_is_sent() {
    let (withings, issued) = withings_always_rotating();
    let env = given_expired_store(&withings.uri());
    let mut store = env.store_json();
    store["generation"] = json!(u64::MAX);
    env.write_store_bytes(&serde_json::to_vec_pretty(&store).unwrap());
    let stored = env.store_bytes();

    let out = env.run(&["refresh", "--no-railway"]);
    let stderr = &out.stderr;
    assert_eq!(out.code, 3, "{stderr}");
    assert!(stderr.contains("18446744073709551615"), "{stderr}");
    assert!(stderr.contains("nothing was sent to Withings"), "{stderr}");
    assert_eq!(issued.load(Ordering::SeqCst), 0);
    assert_eq!(env.store_bytes(), stored, "the generation wrapped or the store changed");
    assert!(!env.journal_path().exists());
}

#[test]
fn refresh_through_a_symlinked_store_replaces_the_real_file_and_keeps_the_link() {
    let (withings, _) = withings_always_rotating();
    let env = given_expired_store(&withings.uri());
    let link = env.work_dir().join("tokens.json");
    std::os::unix::fs::symlink(env.store_path(), &link).unwrap();

    let out = env.run(&["--store", "tokens.json", "refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(env.stored_refresh_token(), "mock-refresh-1");
    assert!(env.store_dir_entries().contains(&"tokens.json.lock".to_owned()));
    let beside_link: Vec<_> = std::fs::read_dir(env.work_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside_link, ["tokens.json"], "lock or journal beside the link");
}

#[test]
fn the_readable_store_warning_is_printed_once_per_run() {
    let (env, issued, _withings) = given_a_set_not_due();
    std::fs::set_permissions(env.store_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    // --if-needed reads the store more than once (before and under the lock).
    let out = env.run(&["refresh", "--if-needed", "--no-railway"]);
    let stderr = &out.stderr;
    assert_eq!(out.code, 0, "{stderr}");
    assert_eq!(issued.load(Ordering::SeqCst), 0);
    assert_eq!(stderr.matches("readable by group or others").count(), 1, "{stderr}");
}

#[test]
fn withings_tokens_own_directory_is_made_private_and_it_is_said_once() {
    let (env, issued, _withings) = given_a_set_not_due();
    std::fs::set_permissions(env.store_path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let dir = env.store_path().parent().unwrap().to_path_buf();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();

    // `auth-url` takes the lock and saves (a set not due is read without it).
    let out = env.run(&["auth-url"]);
    let stderr = &out.stderr;
    assert_eq!(out.code, 0, "{stderr}");
    assert_eq!(issued.load(Ordering::SeqCst), 0);
    assert_eq!(file_mode(&dir), 0o700);
    assert_eq!(
        stderr.matches("it is withings-token's own, so it is now 0700").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_project_directory_holding_the_store_is_warned_about_once_and_left_as_it_is() {
    let (env, issued, _withings) = given_a_set_not_due();
    let project = env.work_dir();
    let store = project.join("tokens.json");
    std::fs::copy(env.store_path(), &store).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&project, std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = env.run(&["--store", "tokens.json", "auth-url"]);
    let stderr = &out.stderr;
    assert_eq!(out.code, 0, "{stderr}");
    assert_eq!(issued.load(Ordering::SeqCst), 0);
    assert_eq!(file_mode(&project), 0o755, "a user's directory was chmod-ed");
    assert_eq!(stderr.matches("is open to group or others").count(), 1, "{stderr}");
    assert!(stderr.contains("chmod 700"), "{stderr}");
}

#[test]
fn a_set_not_due_is_read_without_the_lock_and_nothing_is_written() {
    let (env, issued, _withings) = given_a_set_not_due();
    let before = env.store_bytes();
    // Another run holds the lock: a run that finds nothing to do does not wait for it.
    let lock_path = env.store_path().with_file_name("tokens.json.lock");
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    held.lock().unwrap();
    let out = env.run(&[
        "refresh",
        "--if-needed",
        "--no-railway",
        "--lock-timeout",
        "0s",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["outcome"], "not_due");
    assert_eq!(issued.load(Ordering::SeqCst), 0);
    assert_eq!(env.store_bytes(), before, "nothing written");
    // A forced one does wait for it, and says so.
    let forced = env.run(&["refresh", "--no-railway", "--lock-timeout", "0s"]);
    assert_eq!(forced.code, 5, "{forced:?}");
    assert!(forced.stderr.contains("[LOCK_TIMEOUT]"), "{forced:?}");
    drop(held);
}

/// The store file deleted while Withings answers: the answer is the only
/// live pair; the store is written again, never an internal error.
#[test]
fn a_store_deleted_while_withings_answers_is_written_again_with_the_new_set() {
    let withings =
        withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(std::time::Duration::from_millis(800)))
            .times(1);
    let env = given_expired_store(&withings.uri());
    let out = while_withings_answers(&env, &["refresh", "--timeout", "10s"], &withings, || {
        std::fs::remove_file(env.store_path()).unwrap();
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("was deleted while this run asked Withings; the new set is written again"),
        "{stderr}"
    );
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    withings.verify();
}

/// `ulimit -f` with SIGXFSZ left at its default: the write fails with a
/// message (exit 6, the set saved), never a silent death by signal.
#[test]
fn a_file_size_limit_without_a_trap_is_a_reported_failure_not_a_signal() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());
    let padding = format!("# {}\n", "x".repeat(20 * 1024));
    let env_file = env.write_env_file(&format!("{padding}WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"));
    // 16 KiB: room for the store's reservation, not for the 20 KiB env file.
    let out = env.run_under_sh(
        "ulimit -f 32",
        &["refresh", "--env-file", ".env"],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("[ENV_FILE_UPDATE_FAILED]"), "{out:?}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "the set is saved");
    assert!(
        std::fs::read_to_string(env_file).unwrap().contains(OLD_REFRESH),
        "the env file is intact"
    );
}
