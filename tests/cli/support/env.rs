//! One user and one run: [`TestEnv`] (a cleared environment in its own
//! temporary HOME, its store and env file) and [`Run`] (what a finished run
//! said), with the `given_*` situations most tests start from.

use super::*;

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use assert_cmd::Command;
use tempfile::TempDir;

/// One isolated user: a temporary HOME, XDG_STATE_HOME inside it, and a
/// working directory with no `.env` unless the test writes one.
pub struct TestEnv {
    dir: TempDir,
    vars: Vec<(String, String)>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("work")).expect("work dir");
        TestEnv { dir, vars: Vec::new() }
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// The contract's default store path under this HOME.
    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("state/withings-token/tokens.json")
    }

    pub fn journal_path(&self) -> PathBuf {
        self.store_path().with_file_name("tokens.json.journal")
    }

    /// Writes `.env` in the working directory; returns its path.
    pub fn write_env_file(&self, text: &str) -> PathBuf {
        let path = self.work_dir().join(".env");
        std::fs::write(&path, text).expect("write .env");
        path
    }

    /// Adds a variable; a later setting of the same name wins.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.vars.push((key.to_owned(), value.into()));
        self
    }

    /// Withings app credentials and an API base pointing at `base`.
    pub fn withings(&mut self, base: &str) -> &mut Self {
        self.set("WITHINGS_CLIENT_ID", CLIENT_ID)
            .set("WITHINGS_CLIENT_SECRET", CLIENT_SECRET)
            .set("WITHINGS_API_URL", base)
            .set("WITHINGS_REDIRECT_URI", "https://example.com/callback")
    }

    /// The binary with a cleared environment plus this env's variables, as
    /// a std process (for concurrent runs and kills).
    pub fn std_cmd(&self) -> StdCommand {
        let mut cmd = StdCommand::new(BIN);
        cmd.env_clear()
            .env("HOME", self.home())
            .env("XDG_STATE_HOME", self.home().join("state"))
            .env("PATH", "/usr/bin:/bin")
            .current_dir(self.work_dir());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    /// Same as [`TestEnv::std_cmd`], killed after a minute.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::from_std(self.std_cmd());
        cmd.timeout(Duration::from_secs(60));
        cmd
    }

    /// Runs the binary with exactly `args`.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.cmd().args(args))
    }

    /// Runs the binary with `args` as [`TestEnv::run`] does, but started by
    /// `sh` after `prelude` (e.g. `ulimit -f 16`), and killed after `timeout`:
    /// for limits a test imposes on the process (file size, memory).
    pub fn run_under_sh(&self, prelude: &str, args: &[&str], timeout: Duration) -> Run {
        let launcher = ["-c", &format!(r#"{prelude} && exec "$0" "$@""#), BIN];
        self.run_through("/bin/sh", &launcher, args, timeout)
    }

    /// Runs the binary with `args` as a user who is not root: as is when
    /// this test is not root; else as `nobody` (65534) through util-linux's
    /// `setpriv`, with this env's files given to it first. For what root
    /// alone can do (read through a mode-000 directory).
    pub fn run_as_a_user(&self, args: &[&str]) -> Run {
        if !is_root() {
            return self.run(args);
        }
        let given = StdCommand::new("chown")
            .args(["-R", "65534:65534"])
            .arg(self.home())
            .status()
            .expect("chown");
        assert!(given.success(), "chown -R 65534 {}", self.home().display());
        let launcher = ["--reuid=65534", "--regid=65534", "--clear-groups", BIN];
        self.run_through("setpriv", &launcher, args, Duration::from_secs(60))
    }

    /// Runs `program LAUNCHER... ARGS...`, where the launcher ends by
    /// starting the binary, with this env's environment and working
    /// directory, killed after `timeout`.
    fn run_through(&self, program: &str, launcher: &[&str], args: &[&str], timeout: Duration) -> Run {
        let mut cmd = self.std_cmd_of(program);
        cmd.args(launcher).args(args);
        let mut cmd = Command::from_std(cmd);
        cmd.timeout(timeout);
        Run::of(&mut cmd)
    }

    /// `program` (not the binary) with this env's environment and working
    /// directory and no stdin, for a test that starts the binary through it.
    pub fn std_cmd_of(&self, program: &str) -> StdCommand {
        let as_usual = self.std_cmd();
        let mut cmd = StdCommand::new(program);
        cmd.env_clear()
            .current_dir(as_usual.get_current_dir().expect("work dir"))
            .stdin(Stdio::null());
        for (k, v) in as_usual.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        cmd
    }

    /// Runs the binary with `args` under a clock moved by `offset` (as
    /// Debian's `faketime -f` takes it: `+365d`, `-10m`), with [`FAST`].
    /// `.ci/test` installs faketime.
    pub fn run_with_clock(&self, offset: &str, args: &[&str]) -> Run {
        let args: Vec<&str> = args.iter().chain(FAST.iter()).copied().collect();
        self.run_through("faketime", &["-f", offset, BIN], &args, Duration::from_secs(60))
    }

    /// Runs the binary with `args`, then [`FAST`].
    pub fn run_fast(&self, args: &[&str]) -> Run {
        self.run_with(args, &FAST)
    }

    /// Runs the binary with `args`, then `pace` (one of the paces above).
    pub fn run_with(&self, args: &[&str], pace: &[&str]) -> Run {
        Run::of(self.cmd().args(args).args(pace))
    }

    /// Writes a store holding `refresh` that expires `expires_in_secs` from now
    /// (negative: already expired), refreshed 3 h before expiry.
    pub fn seed_store(&self, access: &str, refresh: &str, expires_in_secs: i64) {
        let now = chrono::Utc::now();
        let expires = now + chrono::Duration::seconds(expires_in_secs);
        let refreshed = expires - chrono::Duration::hours(3);
        let store = json!({
            "version": 1,
            "generation": 1,
            "tokens": {
                "access_token": access,
                "refresh_token": refresh,
                "expires_at": rfc3339(expires),
                "last_refreshed": rfc3339(refreshed),
                "userid": "363",
                "scope": "user.info,user.metrics",
            },
        });
        self.write_store_bytes(serde_json::to_vec_pretty(&store).expect("json").as_slice());
    }

    pub fn write_store_bytes(&self, bytes: &[u8]) {
        let path = self.store_path();
        std::fs::create_dir_all(path.parent().expect("parent")).expect("store dir");
        std::fs::write(&path, bytes).expect("write store");
    }

    /// Rewrites the store's `tokens.expires_at` one minute into the past, so
    /// `refresh --if-needed` finds the set due.
    pub fn make_store_due(&self) {
        let mut store = self.store_json();
        store["tokens"]["expires_at"] = json!(rfc3339(chrono::Utc::now() - chrono::Duration::seconds(60)));
        self.write_store_bytes(&serde_json::to_vec_pretty(&store).expect("json"));
    }

    pub fn store_bytes(&self) -> Vec<u8> {
        std::fs::read(self.store_path()).unwrap_or_default()
    }

    pub fn store_json(&self) -> Value {
        serde_json::from_slice(&self.store_bytes()).expect("store parses")
    }

    pub fn stored_refresh_token(&self) -> String {
        self.store_json()["tokens"]["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn generation(&self) -> u64 {
        self.store_json()["generation"].as_u64().expect("generation")
    }

    /// Files in the store directory (to find stray temp files).
    pub fn store_dir_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.store_path().parent().expect("parent"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Temporary files (any `*.tmp.*`) beside the store: a killed writer's leftovers.
    pub fn store_temp_files(&self) -> Vec<String> {
        self.store_dir_entries()
            .into_iter()
            .filter(|name| name.contains(".tmp."))
            .collect()
    }
}

/// A user whose store holds [`OLD_ACCESS`] / [`OLD_REFRESH`], expiring
/// `seconds` from now (negative: already expired); no Withings configured.
pub fn given_store_expiring_in(seconds: i64) -> TestEnv {
    let env = TestEnv::new();
    env.seed_store(OLD_ACCESS, OLD_REFRESH, seconds);
    env
}

/// A user whose Withings app talks to `withings_url` and whose store holds
/// [`OLD_ACCESS`] / [`OLD_REFRESH`], expired a minute ago.
pub fn given_expired_store(withings_url: &str) -> TestEnv {
    let mut env = given_store_expiring_in(-60);
    env.withings(withings_url);
    env
}

/// What one run of the binary left behind.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `cmd` to its end. A run killed by a signal, or writing anything
    /// but UTF-8, fails the test here.
    pub fn of(cmd: &mut Command) -> Run {
        let output = cmd.output().expect("run withings-token");
        Run {
            code: output.status.code().expect("exited normally"),
            stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
        }
    }

    /// stdout, which must be exactly one JSON document.
    pub fn json(&self) -> Value {
        let docs = self.json_docs();
        assert_eq!(docs.len(), 1, "expected exactly one JSON document:\n{}", self.stdout);
        docs.into_iter().next().expect("one document")
    }

    /// Every JSON document on stdout, in order.
    pub fn json_docs(&self) -> Vec<Value> {
        serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A user whose store holds a set that is not due (expires in 2.5 h,
/// refreshed 3 h before that: 1 h buffer), with Withings at a mock that
/// must not be asked.
pub fn given_a_set_not_due() -> (TestEnv, Arc<AtomicU64>, Upstream) {
    let (withings, issued) = withings_always_rotating();
    let mut env = given_store_expiring_in(150 * 60);
    env.withings(&withings.uri());
    (env, issued, withings)
}

pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A store after a failed refresh: the set and its lock, untouched, and
/// the account's event record (its alert state) with its own lock.
pub const STORE_WITH_ALERT_STATE: [&str; 4] = [
    "tokens.events.json",
    "tokens.events.json.lock",
    "tokens.json",
    "tokens.json.lock",
];
