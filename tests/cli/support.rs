//! Shared test kit: every run of the real binary starts from a cleared
//! environment in its own temporary HOME, and every peer listens on a free
//! loopback port. Nothing here touches the internet.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_withings-token");

/// One isolated user: a temporary HOME, XDG_STATE_HOME inside it, and a
/// working directory with no `.env` unless the test writes one.
pub struct TestEnv {
    pub dir: TempDir,
    pub vars: Vec<(String, String)>,
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

    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.vars.push((key.to_owned(), value.into()));
        self
    }

    /// Withings app credentials and an API base pointing at `base`.
    pub fn withings(&mut self, base: &str) -> &mut Self {
        self.set("WITHINGS_CLIENT_ID", "test-client-id")
            .set("WITHINGS_CLIENT_SECRET", "test-client-secret-value")
            .set("WITHINGS_API_URL", base)
            .set("WITHINGS_REDIRECT_URI", "https://example.com/callback")
    }

    /// The binary with a cleared environment plus this env's variables.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("HOME", self.home())
            .env("XDG_STATE_HOME", self.home().join("state"))
            .env("PATH", "/usr/bin:/bin")
            .current_dir(self.work_dir())
            .timeout(Duration::from_secs(60));
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    /// Same as [`cmd`], as a std process (for concurrent runs and kills).
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
}

pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A Withings success body.
pub fn token_body(access: &str, refresh: &str, expires_in: i64) -> Value {
    json!({
        "status": 0,
        "body": {
            "userid": "363",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": expires_in,
            "scope": "user.info,user.metrics",
            "csrf_token": "csrf",
            "token_type": "Bearer",
        }
    })
}

/// A runtime that keeps wiremock servers alive for a blocking test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The built-in sandbox as a child process on a free loopback port.
pub struct SandboxProcess {
    child: Child,
    pub env: HashMap<String, String>,
    pub addr: String,
}

impl SandboxProcess {
    pub fn start() -> SandboxProcess {
        let mut child = StdCommand::new(BIN)
            .args(["sandbox", "--listen", "127.0.0.1:0"])
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sandbox");
        let stdout = child.stdout.take().expect("stdout");
        let mut env = HashMap::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("sandbox line");
            if let Some((k, v)) = line.split_once('=') {
                env.insert(k.to_owned(), v.to_owned());
            }
            if line.starts_with("RAILWAY_API_URL=") {
                break;
            }
        }
        let addr = env["WITHINGS_API_URL"].trim_start_matches("http://").to_owned();
        SandboxProcess { child, env, addr }
    }

    /// Points `env` at this sandbox (Withings and Railway).
    pub fn configure(&self, env: &mut TestEnv) {
        for (k, v) in &self.env {
            env.set(k, v.clone());
        }
    }

    /// Queues a fault, e.g. `json!({"kind": "http500", "count": 2})`.
    pub fn fault(&self, fault: Value) {
        let (status, _) = http(&self.addr, "POST", "/_sandbox/faults", Some(&fault.to_string()));
        assert_eq!(status, 204, "fault not accepted");
    }

    pub fn stats(&self) -> Value {
        let (status, body) = http(&self.addr, "GET", "/_sandbox/stats", None);
        assert_eq!(status, 200);
        serde_json::from_str(&body).expect("stats json")
    }

    /// Follows the consent page and returns the redirect URL (with code).
    pub fn consent(&self, authorization_url: &str) -> String {
        let path = authorization_url
            .split_once(&self.addr)
            .map(|(_, p)| p)
            .expect("url on sandbox");
        let (status, head) = http_head(&self.addr, "GET", path);
        assert_eq!(status, 302);
        head.lines()
            .find_map(|l| l.strip_prefix("location: ").or_else(|| l.strip_prefix("Location: ")))
            .expect("location")
            .trim()
            .to_owned()
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn raw_request(addr: &str, method: &str, path: &str, body: Option<&str>) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect sandbox");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

/// A tiny HTTP/1.1 client for the sandbox's control endpoints.
pub fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let response = raw_request(addr, method, path, body);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn http_head(addr: &str, method: &str, path: &str) -> (u16, String) {
    let response = raw_request(addr, method, path, None);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let head = response
        .split_once("\r\n\r\n")
        .map(|(h, _)| h.to_owned())
        .unwrap_or_default();
    (status, head)
}

/// Polls `check` until it holds or `deadline` passes.
pub fn wait_until(deadline: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Authorises `env` against the sandbox (auth-url, consent, exchange), so
/// its store holds a refresh token the sandbox issued and still honours.
pub fn authorise_with_sandbox(env: &TestEnv, sandbox: &SandboxProcess) {
    let out = env
        .cmd()
        .args(["auth-url", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).expect("auth-url json");
    let redirect = sandbox.consent(report["authorization_url"].as_str().expect("authorization_url"));
    env.cmd()
        .args(["exchange", &redirect, "--no-railway"])
        .assert()
        .success();
}

impl TestEnv {
    /// Rewrites the store's `tokens.expires_at` one minute into the past, so
    /// `refresh --if-needed` finds the set due.
    pub fn make_store_due(&self) {
        let mut store = self.store_json();
        store["tokens"]["expires_at"] = json!(rfc3339(chrono::Utc::now() - chrono::Duration::seconds(60)));
        self.write_store_bytes(&serde_json::to_vec_pretty(&store).expect("json"));
    }

    /// Temporary files (any `*.tmp.*`) beside the store: a killed writer's leftovers.
    pub fn store_temp_files(&self) -> Vec<String> {
        self.store_dir_entries()
            .into_iter()
            .filter(|name| name.contains(".tmp."))
            .collect()
    }

    pub fn journal_path(&self) -> PathBuf {
        self.store_path().with_file_name("tokens.json.journal")
    }
}

/// A sandbox and an env pointed at it whose store holds a live refresh token.
pub fn authorised() -> (SandboxProcess, TestEnv) {
    let sandbox = SandboxProcess::start();
    let mut env = TestEnv::new();
    sandbox.configure(&mut env);
    authorise_with_sandbox(&env, &sandbox);
    (sandbox, env)
}
