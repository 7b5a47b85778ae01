//! Files that are not what they seem, through the real binary: a run as root
//! on a user's files (which must stay the user's), a FIFO or a device where
//! the store or the env file should be (refused, never waited on or read
//! without end), token values with control characters or empty, and a token
//! key set twice in the env file.
//! `cargo test --features failpoints --test cli attack_files::`

use crate::support::*;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command as StdCommand;
use std::time::Duration;

/// The user root acts for in the ownership tests.
const USER: u32 = 1234;

fn owner(path: &Path) -> (u32, u32) {
    let meta = std::fs::metadata(path).expect("metadata");
    (meta.uid(), meta.gid())
}

/// Gives `path` to [`USER`]; `false` when this process may not (not root).
fn give_to_user(path: &Path) -> bool {
    match std::os::unix::fs::chown(path, Some(USER), Some(USER)) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => false,
        Err(e) => panic!("chown {}: {e}", path.display()),
    }
}

fn mkfifo(path: &Path) {
    let made = StdCommand::new("mkfifo").arg(path).status().expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// `args` as `env.run` runs them, but killed after 10 s and with its
/// address space capped at 2 GiB, so that a run that waits on a FIFO or
/// reads a device without end fails the test instead of the machine.
fn run_briefly(env: &TestEnv, args: &[&str]) -> Run {
    env.run_under_sh("ulimit -v 2097152", args, Duration::from_secs(10))
}

// ---------------------------------------------------------------------------
// root on a user's files

/// Run as root (as in CI), the files are first given to [`USER`]; run as
/// anyone else, they stay the runner's, who may not give them away. Either
/// way a refresh must leave them with the owner they had, 0600.
#[test]
fn a_refresh_leaves_the_store_and_env_file_their_owners_even_run_as_root() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_expired_store(&withings.uri());
    let env_path = env.write_env_file(&format!("APP=1\nWITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"));
    let store_dir = env.store_path().parent().expect("store dir").to_path_buf();
    let given_away = [&store_dir, &env.store_path(), &env_path]
        .iter()
        .all(|p| give_to_user(p));
    let expected = if given_away {
        (USER, USER)
    } else {
        owner(&env.store_path())
    };

    let out = env.run(&["--env-file", ".env", "refresh", "--no-railway", "--retries", "0"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    let env_text = std::fs::read_to_string(&env_path).expect("read .env");
    assert!(
        env_text.contains(&format!("WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\n")),
        "{env_text}"
    );

    let lock = store_dir.join("tokens.json.lock");
    let mut files = vec![env.store_path(), env_path, lock];
    files.extend(Some(env.journal_path()).filter(|p| p.exists()));
    for file in &files {
        assert_eq!(owner(file), expected, "{} was taken from its owner", file.display());
        assert_eq!(file_mode(file), 0o600, "{}", file.display());
    }
    assert_eq!(owner(&store_dir), expected);
    withings.verify();
}

// ---------------------------------------------------------------------------
// FIFOs, devices and huge files in place of ours

/// Exit 3, CONFIGURATION_ERROR, naming `path` and saying `why`.
fn assert_refused(out: &Run, path: &str, why: &str) {
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("CONFIGURATION_ERROR"), "{out:?}");
    assert!(out.stderr.contains(path), "names {path}: {out:?}");
    assert!(out.stderr.contains(why), "says {why}: {out:?}");
}

#[test]
fn a_fifo_as_the_store_is_refused_not_waited_on() {
    let withings = silent_withings();
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let fifo = env.work_dir().join("tokens.json");
    mkfifo(&fifo);
    for command in ["status", "refresh"] {
        let out = run_briefly(&env, &["--store", "tokens.json", command]);
        assert_refused(&out, "tokens.json", "a named pipe (FIFO), not a regular file");
    }
    withings.verify();
}

/// Issue 18, item 15: a FIFO where the lock file goes is refused at once,
/// never waited on past `--lock-timeout`; nothing is sent.
#[test]
fn a_fifo_as_the_lock_file_is_refused_not_waited_on() {
    let withings = silent_withings();
    let env = given_expired_store(&withings.uri());
    let stored = env.store_bytes();
    let lock = env.store_path().with_file_name("tokens.json.lock");
    mkfifo(&lock);
    let out = run_briefly(&env, &["refresh", "--no-railway", "--lock-timeout", "1s"]);
    assert_refused(&out, "tokens.json.lock", "a named pipe (FIFO), not a regular file");
    let said = format!(
        "error: cannot use the lock file {}: it is a named pipe (FIFO), not a regular file; nothing was sent to Withings [CONFIGURATION_ERROR]",
        lock.display()
    );
    assert!(out.stderr.lines().any(|l| l == said), "{out:?}");
    assert!(
        out.stderr.contains(&format!("next: move {} aside", lock.display())),
        "{out:?}"
    );
    assert_eq!(env.store_bytes(), stored);
    withings.verify();
}

/// Issue 18, item 16: a directory where the lock file goes is reported as
/// the lock file, not as the store's directory.
#[test]
fn a_directory_as_the_lock_file_is_named_as_the_lock_file() {
    let withings = silent_withings();
    let env = given_expired_store(&withings.uri());
    let lock = env.store_path().with_file_name("tokens.json.lock");
    std::fs::create_dir(&lock).expect("mkdir");
    let out = run_briefly(&env, &["refresh", "--no-railway"]);
    let said = format!(
        "error: cannot use the lock file {}: it is a directory, not a regular file; nothing was sent to Withings [CONFIGURATION_ERROR]",
        lock.display()
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.lines().any(|l| l == said), "{out:?}");
    assert!(!out.stderr.contains("cannot use the token store directory"), "{out:?}");
    withings.verify();
}

#[test]
fn a_fifo_as_the_dot_env_in_the_working_directory_is_refused_not_waited_on() {
    let env = given_store_expiring_in(3600);
    mkfifo(&env.work_dir().join(".env"));
    let out = run_briefly(&env, &["status"]);
    assert_refused(&out, "./.env", "a named pipe (FIFO), not a regular file");
    assert!(out.stderr.contains("`--no-env-file`"), "{out:?}");
}

#[test]
fn dev_zero_as_the_env_file_is_refused_not_read_without_end() {
    let env = given_store_expiring_in(3600);
    let out = run_briefly(&env, &["--env-file", "/dev/zero", "status"]);
    assert_refused(&out, "/dev/zero", "a character device, not a regular file");
}

#[test]
fn an_env_file_larger_than_1_mib_is_refused_unread() {
    let env = given_store_expiring_in(3600);
    let big = env.work_dir().join("big.env");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(200 * 1024 * 1024).expect("sparse 200 MB"); // costs no disk
    let out = run_briefly(&env, &["--env-file", "big.env", "status"]);
    assert_refused(&out, "big.env", "larger than 1 MiB");
}

// ---------------------------------------------------------------------------
// token values that must not be sent

#[test]
fn a_nul_in_the_env_files_refresh_token_is_refused_by_name_and_never_sent() {
    let withings = silent_withings();
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    env.write_env_file("WITHINGS_REFRESH_TOKEN=s3cret\0tail\n");
    let out = env.run_fast(&["refresh", "--no-railway"]);
    assert_refused(&out, "WITHINGS_REFRESH_TOKEN", "holds a control character");
    assert!(!out.stderr.contains("s3cret"), "{out:?}");
    withings.verify();
}

#[test]
fn a_control_character_in_a_token_from_the_environment_is_refused_by_name_and_never_sent() {
    let withings = silent_withings();
    for (name, value) in [
        ("WITHINGS_REFRESH_TOKEN", "s3cret\u{1}tail"),
        ("WITHINGS_ACCESS_TOKEN", "s3cret\ttail"),
    ] {
        let mut env = TestEnv::new();
        env.withings(&withings.uri()).set("WITHINGS_REFRESH_TOKEN", OLD_REFRESH);
        env.set(name, value);
        let out = env.run_fast(&["refresh", "--no-railway"]);
        assert_refused(&out, name, "holds a control character");
        assert!(!out.stderr.contains("s3cret"), "{out:?}");
    }
    withings.verify();
}

#[test]
fn a_store_with_an_empty_refresh_token_is_refused_left_untouched_and_never_sent() {
    let withings = silent_withings();
    let env = given_expired_store(&withings.uri());
    let mut store = env.store_json();
    store["tokens"]["refresh_token"] = json!("");
    env.write_store_bytes(&serde_json::to_vec_pretty(&store).expect("json"));
    let before = env.store_bytes();
    let out = env.run_fast(&["refresh", "--no-railway"]);
    assert_refused(&out, "tokens.json", "its field tokens.refresh_token is empty");
    assert_eq!(env.store_bytes(), before);
    withings.verify();
}

// ---------------------------------------------------------------------------
// a key set twice

#[test]
fn a_token_key_set_twice_in_the_env_file_uses_the_last_value_as_bash_does_and_warns_once() {
    let withings = withings_rotating(OLD_REFRESH);
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let env_path = env.write_env_file(&format!(
        "WITHINGS_REFRESH_TOKEN=stale-first-value\nAPP=1\nWITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"
    ));
    let out = env.run(&["refresh", "--no-railway", "--retries", "0"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    let warnings: Vec<&str> = out.stderr.lines().filter(|l| l.contains("is set on lines")).collect();
    assert_eq!(warnings.len(), 1, "{out:?}");
    assert!(
        warnings[0].contains("WITHINGS_REFRESH_TOKEN is set on lines 1, 3 of"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("stale-first-value"), "{out:?}");
    // Both lines are rewritten, so every reader agrees again.
    let text = std::fs::read_to_string(&env_path).expect("read .env");
    assert!(
        text.starts_with(&format!(
            "WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\nAPP=1\nWITHINGS_REFRESH_TOKEN={NEW_REFRESH}\n"
        )),
        "{text}"
    );
    withings.verify();
}

/// Issue 18, the adversarial trial: a store path linked to a file that is
/// not a store (`/etc/passwd`) is refused as such, without first telling
/// the user to chmod that file.
#[test]
fn a_store_linked_to_a_file_that_is_not_a_store_is_refused_without_a_chmod_hint() {
    let env = TestEnv::new();
    let store = env.work_dir().join("tokens.json");
    std::os::unix::fs::symlink("/etc/passwd", &store).expect("symlink");
    let out = env.run(&["--store", "tokens.json", "status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr
            .contains("token store /etc/passwd is unreadable: not a withings-token store"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("chmod"), "{out:?}");
}
