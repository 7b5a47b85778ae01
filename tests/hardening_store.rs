//! The store under hostile conditions, through the real binary: a store
//! reached through a symlink, a disk that is full before the request or
//! fills up while Withings answers, a generation at its maximum, and
//! warnings that are said once per run.
//! `cargo test --features failpoints --test hardening_store`

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;
use support::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A Withings stand-in that issues `mock-refresh-<n>`; `before_answer`
/// runs first (to fill the disk while the request is out).
struct Rotating {
    issued: Arc<AtomicU64>,
    before_answer: Option<PathBuf>,
}

impl Respond for Rotating {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        if let Some(dir) = &self.before_answer {
            fill_disk(dir);
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200).set_body_json(token_body(
            &format!("mock-access-{n}"),
            &format!("mock-refresh-{n}"),
            10800,
        ))
    }
}

fn withings_mock(rt: &tokio::runtime::Runtime, fill_before_answer: Option<PathBuf>) -> (MockServer, Arc<AtomicU64>) {
    let server = rt.block_on(MockServer::start());
    let issued = Arc::new(AtomicU64::new(0));
    let responder = Rotating {
        issued: issued.clone(),
        before_answer: fill_before_answer,
    };
    rt.block_on(
        Mock::given(method("POST"))
            .and(path("/v2/oauth2"))
            .respond_with(responder)
            .mount(&server),
    );
    (server, issued)
}

/// Writes to `dir` until its file system is full.
fn fill_disk(dir: &Path) {
    use std::io::Write;
    let Ok(mut filler) = std::fs::File::create(dir.join("filler")) else {
        return;
    };
    while filler.write_all(&[1u8; 4096]).and_then(|()| filler.sync_all()).is_ok() {}
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An env whose store holds a set that is not due (expires in 2.5 h,
/// refreshed 3 h before that: 1 h buffer), with Withings at a mock that
/// must not be asked.
fn not_due(rt: &tokio::runtime::Runtime) -> (TestEnv, Arc<AtomicU64>, MockServer) {
    let (server, issued) = withings_mock(rt, None);
    let mut env = TestEnv::new();
    env.withings(&server.uri());
    env.seed_store("seed-access", "seed-refresh", 150 * 60);
    (env, issued, server)
}

/// The binary as `env.std_cmd()` runs it, but started by `sh` with files
/// capped at 8 KiB (`ulimit -f 16` counts 512-byte blocks). SIGXFSZ is
/// ignored, so an oversized write fails with EFBIG, as a full disk does.
fn run_with_small_files(env: &TestEnv, args: &[&str]) -> Output {
    let mut cmd = StdCommand::new("/bin/sh");
    cmd.args(["-c", r#"trap '' XFSZ; ulimit -f 16 && exec "$0" "$@""#, BIN])
        .args(args)
        .env_clear()
        .env("HOME", env.home())
        .env("XDG_STATE_HOME", env.home().join("state"))
        .env("PATH", "/usr/bin:/bin")
        .current_dir(env.work_dir())
        .stdin(Stdio::null());
    for (k, v) in &env.vars {
        cmd.env(k, v);
    }
    cmd.output().expect("run withings-token under sh")
}

#[test]
fn a_store_that_cannot_be_saved_fails_before_anything_is_sent() {
    let rt = runtime();
    let (server, issued) = withings_mock(&rt, None);
    let mut env = TestEnv::new();
    env.withings(&server.uri());
    env.seed_store("seed-access", "seed-refresh", -60);
    let stored = env.store_bytes();

    let output = run_with_small_files(&env, &["refresh", "--no-railway", "--retries", "0"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("CONFIGURATION_ERROR"), "{stderr}");
    assert!(stderr.contains("cannot reserve"), "{stderr}");
    assert!(stderr.contains("nothing was sent to Withings"), "{stderr}");
    assert_eq!(issued.load(Ordering::SeqCst), 0, "the request went out");
    assert_eq!(rt.block_on(server.received_requests()).unwrap().len(), 0);
    assert_eq!(env.store_bytes(), stored);
    assert!(!env.journal_path().exists(), "journal left behind");
    assert_eq!(env.store_temp_files(), Vec::<String>::new());

    // With room again, the same store refreshes.
    env.cmd().args(["refresh", "--no-railway"]).assert().success();
    assert_eq!(env.stored_refresh_token(), "mock-refresh-1");
}

/// A 64 KiB tmpfs, unmounted on drop.
struct TinyDisk {
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl TinyDisk {
    fn mount() -> Option<TinyDisk> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = StdCommand::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| TinyDisk {
            root: dir.path().to_path_buf(),
            _dir: dir,
        })
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = StdCommand::new("umount").arg(&self.root).status();
    }
}

#[test]
fn a_disk_that_fills_up_while_withings_answers_does_not_lose_the_rotated_pair() {
    let Some(disk) = TinyDisk::mount() else {
        eprintln!(
            "skipped: mounting a 64 KiB tmpfs is not permitted here (needs root); \
             a_store_that_cannot_be_saved_fails_before_anything_is_sent still runs"
        );
        return;
    };
    let rt = runtime();
    let (server, issued) = withings_mock(&rt, Some(disk.root.clone()));
    let mut env = TestEnv::new();
    env.withings(&server.uri());
    env.seed_store("seed-access", "seed-refresh", -60);
    let store = disk.root.join("tokens.json");
    std::fs::copy(env.store_path(), &store).expect("store onto the tiny disk");
    env.set("WITHINGS_TOKEN_STORE", store.display().to_string());

    let output = env
        .std_cmd()
        .args(["refresh", "--no-railway", "--retries", "0"])
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    assert_eq!(saved["tokens"]["refresh_token"], "mock-refresh-1");
    assert_eq!(saved["previous"]["refresh_token"], "seed-refresh");
    assert_eq!(saved["generation"], 2);
}

#[test]
fn a_store_at_the_largest_generation_is_refused_before_anything_is_sent() {
    let rt = runtime();
    let (server, issued) = withings_mock(&rt, None);
    let mut env = TestEnv::new();
    env.withings(&server.uri());
    env.seed_store("seed-access", "seed-refresh", -60);
    let mut store = env.store_json();
    store["generation"] = json!(u64::MAX);
    env.write_store_bytes(&serde_json::to_vec_pretty(&store).unwrap());
    let stored = env.store_bytes();

    let output = env.std_cmd().args(["refresh", "--no-railway"]).output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("18446744073709551615"), "{stderr}");
    assert!(stderr.contains("nothing was sent to Withings"), "{stderr}");
    assert_eq!(issued.load(Ordering::SeqCst), 0);
    assert_eq!(env.store_bytes(), stored, "the generation wrapped or the store changed");
    assert!(!env.journal_path().exists());
}

#[test]
fn refresh_through_a_symlinked_store_replaces_the_real_file_and_keeps_the_link() {
    let rt = runtime();
    let (server, _) = withings_mock(&rt, None);
    let mut env = TestEnv::new();
    env.withings(&server.uri());
    env.seed_store("seed-access", "seed-refresh", -60);
    let link = env.work_dir().join("tokens.json");
    std::os::unix::fs::symlink(env.store_path(), &link).unwrap();

    env.cmd()
        .args(["--store", "tokens.json", "refresh", "--no-railway"])
        .assert()
        .success();
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
    let rt = runtime();
    let (env, issued, _server) = not_due(&rt);
    std::fs::set_permissions(env.store_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    // --if-needed reads the store more than once (before and under the lock).
    let output = env
        .std_cmd()
        .args(["refresh", "--if-needed", "--no-railway"])
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(issued.load(Ordering::SeqCst), 0);
    assert_eq!(stderr.matches("readable by group or others").count(), 1, "{stderr}");
}

#[test]
fn withings_tokens_own_directory_is_made_private_and_it_is_said_once() {
    let rt = runtime();
    let (env, issued, _server) = not_due(&rt);
    std::fs::set_permissions(env.store_path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let dir = env.store_path().parent().unwrap().to_path_buf();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();

    let output = env
        .std_cmd()
        .args(["refresh", "--if-needed", "--no-railway"])
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(issued.load(Ordering::SeqCst), 0);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(
        stderr.matches("it is withings-token's own, so it is now 0700").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_project_directory_holding_the_store_is_warned_about_once_and_left_as_it_is() {
    let rt = runtime();
    let (env, issued, _server) = not_due(&rt);
    let project = env.work_dir();
    let store = project.join("tokens.json");
    std::fs::copy(env.store_path(), &store).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&project, std::fs::Permissions::from_mode(0o755)).unwrap();

    let output = env
        .std_cmd()
        .args(["--store", "tokens.json", "refresh", "--if-needed", "--no-railway"])
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(issued.load(Ordering::SeqCst), 0);
    assert_eq!(mode(&project), 0o755, "a user's directory was chmod-ed");
    assert_eq!(stderr.matches("is open to group or others").count(), 1, "{stderr}");
    assert!(stderr.contains("chmod 700"), "{stderr}");
}
