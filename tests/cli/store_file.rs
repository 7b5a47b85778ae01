//! The store file: a corrupt one is refused (exit 3) left byte-identical
//! with nothing sent; a store, lock file or store directory that is not
//! what it seems (unreadable, a FIFO, a directory, a link to another file,
//! an empty token) is refused by name; a store reached through a symlink is
//! replaced behind the link; permissions are made private with one warning;
//! a run as root leaves a user's files to the user.

use crate::support::*;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;

// ---------------------------------------------------------------------------
// corrupt stores

#[test]
fn corrupt_store_is_exit_3_left_untouched_and_nothing_is_sent() {
    let withings = silent_withings();
    for corrupt in [&b"{\"version\":1,\"generation\":4,\"tokens\":{\"refresh_tok"[..], b""] {
        let mut env = TestEnv::new();
        env.withings(&withings.uri())
            .set("WITHINGS_REFRESH_TOKEN", "seed-refresh-from-env");
        env.write_store_bytes(corrupt);
        let store = env.store_path().display().to_string();

        for args in [
            &["refresh", "--json"][..],
            &["status", "--json"],
            &["refresh", "--dry-run", "--json"],
        ] {
            let out = env.run_fast(args);
            let (message, action) = assert_json_error(&out, 3, "CONFIGURATION_ERROR");
            assert!(
                message.starts_with(&format!("token store {store} is unreadable: ")),
                "{message}"
            );
            assert!(action.contains(&store) && action.contains("left untouched"), "{action}");
            assert_eq!(env.store_bytes(), corrupt, "{args:?} touched the corrupt store");
        }
        assert_eq!(env.store_dir_entries(), ["tokens.json"]);
    }
    assert!(withings.requests().is_empty());
    withings.verify();
}

fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut bytes = vec![b'['; depth];
    bytes.extend(std::iter::repeat_n(b']', depth));
    bytes
}

fn valid_store_with(extra_key: &str, extra: Value) -> Vec<u8> {
    let mut store = json!({
        "version": 1,
        "generation": 3,
        "tokens": {
            "access_token": "stored-access-token",
            "refresh_token": "stored-refresh-token",
            "expires_at": "2020-01-01T00:00:00Z",
            "last_refreshed": "2019-12-31T21:00:00Z",
        },
    });
    store[extra_key] = extra;
    serde_json::to_vec_pretty(&store).expect("json")
}

/// Store files that are not stores, by name.
fn corrupt_stores() -> Vec<(&'static str, Vec<u8>)> {
    let mut binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    binary.extend_from_slice(b"\xff\xfe\xc3\x28");
    let half_store = {
        let whole = valid_store_with("pad", json!(null));
        whole[..whole.len() / 2].to_vec()
    };
    let mut huge_valid = valid_store_with("pad", json!("x".repeat(1024 * 1024 + 10)));
    huge_valid.push(b'\n');
    let mut huge_whitespace = b"{\"version\": 1, \"generation\": 1}".to_vec();
    huge_whitespace.extend(std::iter::repeat_n(b' ', 2 * 1024 * 1024));
    vec![
        ("empty", Vec::new()),
        ("whitespace only", b"  \n\t\n".to_vec()),
        ("binary", binary),
        ("NUL bytes", vec![0u8; 64]),
        ("truncated store", half_store),
        ("JSON array", b"[1, 2, 3]".to_vec()),
        ("JSON string", b"\"tokens\"".to_vec()),
        ("JSON null", b"null".to_vec()),
        (
            "object of another program",
            br#"{"access_token": "a", "refresh_token": "r"}"#.to_vec(),
        ),
        ("version as a string", br#"{"version": "1", "generation": 1}"#.to_vec()),
        ("negative generation", br#"{"version": 1, "generation": -1}"#.to_vec()),
        ("no generation", br#"{"version": 1}"#.to_vec()),
        (
            "refresh token as a number",
            br#"{"version": 1, "generation": 1, "tokens": {"refresh_token": 42}}"#.to_vec(),
        ),
        (
            "expiry not a time",
            br#"{"version": 1, "generation": 1, "tokens": {"refresh_token": "r", "expires_at": "tomorrow"}}"#.to_vec(),
        ),
        (
            "tokens as a list",
            br#"{"version": 1, "generation": 1, "tokens": ["a", "r"]}"#.to_vec(),
        ),
        ("newer format version", br#"{"version": 99, "generation": 1}"#.to_vec()),
        ("10000 nested arrays", nested_arrays(10_000)),
        ("huge valid-looking store (>1 MiB)", huge_valid),
        ("huge whitespace padding (>1 MiB)", huge_whitespace),
    ]
}

#[test]
fn corrupt_store_files_are_refused_untouched_and_nothing_is_sent() {
    let withings = silent_withings();
    let commands: [&[&str]; 6] = [
        &["status"],
        &["status", "--json"],
        &["refresh"],
        &["refresh", "--json"],
        &["refresh", "--if-needed"],
        &["refresh", "--dry-run"],
    ];
    for (name, bytes) in corrupt_stores() {
        let mut env = TestEnv::new();
        env.withings(&withings.uri());
        // A valid seed in the environment must not paper over a corrupt store.
        env.set("WITHINGS_REFRESH_TOKEN", "seed-refresh-token");
        env.write_store_bytes(&bytes);
        let store = env.store_path();
        let before_entries = env.store_dir_entries();
        for args in commands {
            let out = env.run(args);
            let what = format!("{name}: {}", args.join(" "));
            assert_eq!(out.code, 3, "{what}: exit code\nstderr: {}", out.stderr);
            assert!(
                out.stderr.contains(&store.display().to_string()),
                "{what}: stderr names the file: {}",
                out.stderr
            );
            assert!(out.stderr.contains("[CONFIGURATION_ERROR]"), "{what}: {}", out.stderr);
            if args.contains(&"--json") {
                let report: Value = serde_json::from_str(&out.stdout)
                    .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {}", out.stdout));
                assert_eq!(report["error"]["code"], "CONFIGURATION_ERROR", "{what}");
                assert!(
                    report["error"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .contains(&store.display().to_string()),
                    "{what}: {report}"
                );
            }
            assert!(env.store_bytes() == bytes, "{what}: the store file changed");
            assert_eq!(
                env.store_dir_entries(),
                before_entries,
                "{what}: files appeared beside the store"
            );
        }
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
// paths that are not a store

#[test]
fn unreadable_store_directory_is_a_configuration_error() {
    let withings = silent_withings();
    let env = given_expired_store(&withings.uri());
    let dir = env.store_path().parent().expect("dir").to_path_buf();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    // root reads through any mode: the runs are a user's (see `run_as_a_user`).
    let outcomes: Vec<(String, Run)> = [&["status"][..], &["refresh"], &["refresh", "--json"]]
        .into_iter()
        .map(|args| (args.join(" "), env.run_as_a_user(args)))
        .collect();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod back");
    for (what, out) in outcomes {
        assert_eq!(out.code, 3, "{what}: {}", out.stderr);
        assert!(out.stderr.contains("tokens.json"), "{what}: {}", out.stderr);
        assert!(
            out.stderr.to_lowercase().contains("permission denied"),
            "{what}: {}",
            out.stderr
        );
    }
    withings.verify();
}

/// The same failure, in forms that even root cannot read through.
#[test]
fn store_paths_that_cannot_be_read_are_configuration_errors() {
    let withings = silent_withings();
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let a_directory = env.home().join("a-directory");
    std::fs::create_dir_all(&a_directory).expect("dir");
    let a_file = env.home().join("a-file");
    std::fs::write(&a_file, "not a directory").expect("file");
    let under_a_file = a_file.join("tokens.json");
    for store in [&a_directory, &under_a_file] {
        let store_arg = store.display().to_string();
        for args in [&["status"][..], &["refresh"], &["refresh", "--json"]] {
            let mut full = vec!["--store", store_arg.as_str()];
            full.extend_from_slice(args);
            let out = env.run(&full);
            let what = full.join(" ");
            assert_eq!(out.code, 3, "{what}: {}", out.stderr);
            assert!(
                out.stderr.contains(&store_arg),
                "{what}: names the store: {}",
                out.stderr
            );
            assert!(out.stderr.contains("[CONFIGURATION_ERROR]"), "{what}: {}", out.stderr);
        }
    }
    assert_eq!(std::fs::read_to_string(&a_file).expect("file"), "not a directory");
    assert_eq!(std::fs::read_dir(&a_directory).expect("dir").count(), 0);
    withings.verify();
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

/// A FIFO where the lock file goes is refused at once,
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

/// A directory where the lock file goes is reported as
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

/// A store path linked to a file that is
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

// ---------------------------------------------------------------------------
// permissions and owners

#[test]
fn a_store_others_can_read_is_warned_about_and_saved_0600() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_expired_store(&withings.uri());
    let store = env.store_path();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).expect("chmod 644");

    let status = env.run(&["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status.stderr.contains("readable by group or others") && status.stderr.contains(&store.display().to_string()),
        "status warns and names the file: {}",
        status.stderr
    );
    assert_eq!(file_mode(&store), 0o644, "status writes nothing");

    let quiet = env.run(&["status", "-q"]);
    assert_eq!(quiet.code, 0);
    assert_eq!(quiet.stderr, "", "-q silences the warning");

    let refresh = env.run(&["refresh", "--json"]);
    assert_eq!(refresh.code, 0, "{}", refresh.stderr);
    assert!(
        refresh.stderr.contains("readable by group or others"),
        "{}",
        refresh.stderr
    );
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert_eq!(file_mode(&store), 0o600, "the save rewrote the store 0600");

    let again = env.run(&["status"]);
    assert_eq!(again.code, 0);
    assert!(
        !again.stderr.contains("readable"),
        "no warning once private: {}",
        again.stderr
    );
    withings.verify();
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
